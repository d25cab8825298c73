"""Generate's noise controls act in the default graph (issue 20 bug 4) and the node says which noise is on."""

from __future__ import annotations

from pathlib import Path

import torch

from autolume_graph.runtime import Runtime
from autolume_graph.serialize import load_graph
from tests.generator_graph import generator_graph

REPO = Path(__file__).resolve().parents[1]


def picture(runtime: Runtime) -> torch.Tensor:
    runtime.step()
    return next(iter(runtime.snapshot.published.values())).clone()


def node_of(runtime: Runtime, type_name: str):
    return next(n for n in runtime.graph.nodes.values() if n.type_name == type_name)


def test_noise_seed_and_anim_change_the_texture_by_default(reference_dir: Path) -> None:
    runtime = Runtime(generator_graph(reference_dir, seed=3.0), fps=10, fixed_step=True)
    generate = node_of(runtime, "Generate")
    first = picture(runtime)
    assert generate.status == "noise: seeded 0"
    generate.set_value("noise_seed", 5)
    second = picture(runtime)
    assert not torch.equal(first, second) and generate.status == "noise: seeded 5"
    generate.set_value("noise_anim", True)
    frames = [picture(runtime) for _ in range(3)]
    assert not torch.equal(frames[0], frames[1]) and not torch.equal(frames[1], frames[2])
    assert generate.status == "noise: seeded animated"


def test_stored_noise_says_that_seed_and_anim_wait_for_random_mode(reference_dir: Path) -> None:
    runtime = Runtime(generator_graph(reference_dir, seed=3.0), fps=10, fixed_step=True)
    generate = node_of(runtime, "Generate")
    generate.set_value("noise_mode", "const")
    stored = picture(runtime)
    assert generate.status == "noise: stored in the model"
    generate.set_value("noise_seed", 9)
    assert torch.equal(picture(runtime), stored)
    assert generate.status == "noise: stored in the model (Seed and Anim act in random mode)"


def test_the_shipped_default_graph_uses_seeded_noise() -> None:
    graph = load_graph(REPO / "graphs" / "default.agraph")
    generate = next(n for n in graph.nodes.values() if n.type_name == "Generate")
    assert generate.values["noise_mode"] == "random"
