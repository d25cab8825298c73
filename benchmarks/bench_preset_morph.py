"""What a preset morph costs a running show: frame intervals while it morphs, next to the steady show's.

The show renders the default model every frame, its seed animating (ModelLoader -> SeedLatent -> Mapping
-> Generate -> Preview); the preset has another seed, another psi and another model of the same
architecture (the default one with every weight moved), so the morph slerps the latent, blends psi and
crossfades the two models. Prints the frame-interval figures of the steady show and of the request
(preparing off the render thread: the target model's load and the crossfade's build, then the morph),
and what one crossfade step (all weights rewritten) costs on its own.

    .venv/bin/python benchmarks/bench_preset_morph.py [--seconds 3] [--fps 30] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from autolume_graph.gan.safe_format import SUFFIX, save_model
from autolume_graph.gan.store import shared_store
from autolume_graph.graph import Edge, Graph
from autolume_graph.registry import default_registry
from autolume_graph.runtime import Runtime
from autolume_graph.session import Session
from nodes.model_loader import ModelCrossfade


def show_graph(model: str, seed: float, psi: float) -> Graph:
    graph = Graph()
    make = default_registry().create
    loader, latent, mapping = (graph.add_node(make(t)) for t in ("ModelLoader", "SeedLatent", "Mapping"))
    generate, preview = graph.add_node(make("Generate")), graph.add_node(make("Preview"))
    loader.set_value("path", model)
    latent.set_value("seed", seed)
    latent.set_value("anim", True)  # the steady show renders every frame too: the figures compare like for like
    mapping.set_value("psi", psi)
    for edge in (Edge(loader.id, "model", mapping.id, "model"), Edge(loader.id, "model", generate.id, "model"),
                 Edge(latent.id, "z", mapping.id, "latent"), Edge(mapping.id, "w", generate.id, "w"),
                 Edge(generate.id, "image", preview.id, "image")):
        graph.add_edge(edge)
    return graph


def intervals(stamps: list[float]) -> str:
    gaps = sorted(b - a for a, b in zip(stamps, stamps[1:], strict=False))
    if not gaps:
        return "no frames"
    p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))]
    return (f"{len(stamps)} frames, interval median {statistics.median(gaps) * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, max {gaps[-1] * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-morph-"))
    base = shared_store().get("default", args.device, timeout=300)
    other = copy.deepcopy(base)
    with torch.no_grad():
        for tensor in other.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor) * 0.1)
    other_path = save_model(other.cpu(), folder / f"other{SUFFIX}")
    graph = show_graph("default", 1.0, 1.0)
    for node in graph.nodes.values():
        node.prepare(args.device)
    session = Session(Runtime(graph, fps=args.fps, device=args.device), osc=False, preset_dir=folder / "presets")
    session.presets.save("other", show_graph(str(other_path), 7.0, 0.5))
    stamps: list[float] = []
    session.runtime.frame_hooks.append(lambda rt: stamps.append(time.perf_counter()))
    session.runtime.start()
    try:
        time.sleep(2.0)
        steady = list(stamps)
        stamps.clear()
        began = time.perf_counter()
        worker = session.switch_preset("other", seconds=args.seconds)
        worker.join()
        total = time.perf_counter() - began
        morphing = list(stamps)
    finally:
        session.close()
    print(f"device {args.device}, default model {base.size_label}, morph {args.seconds:g} s at {args.fps:g} fps")
    print(f"steady show:        {intervals(steady)}")
    print(f"preparing + morph:  {intervals(morphing)} (the request to the preset running: {total:.2f} s)")
    if session.errors:
        print(f"errors: {session.errors}")
    started = time.perf_counter()
    fade = ModelCrossfade(base, shared_store().get(str(other_path), args.device, timeout=300))
    built = time.perf_counter() - started
    steps = [0.1 * i for i in range(1, 21)]
    started = time.perf_counter()
    for t in steps:
        fade.at(t % 1.0)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    step_ms = (time.perf_counter() - started) / len(steps) * 1000
    print(f"crossfade build (off the render thread): {built * 1000:.0f} ms; one step (all weights): {step_ms:.2f} ms")


if __name__ == "__main__":
    main()
