"""`autolume-graph render`: exactly one seamless loop, a set length, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from generator_graph import add, generator_graph

from autolume_graph.cli import main
from autolume_graph.runtime import Runtime
from autolume_graph.serialize import load_graph, save_graph

LOOP_SECONDS, FPS = 1.0, 12


@pytest.fixture
def loop_graph(reference_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "loop.agraph"
    save_graph(generator_graph(reference_dir, "NoiseLoop", time=LOOP_SECONDS, radius=0.8), path)
    return path


def _decode(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(f.time, f.to_ndarray(format="rgb24").astype(np.float32)) for f in container.decode(video=0)]


def test_loop_renders_exactly_one_seamless_cycle(loop_graph: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "loop.mp4"
    assert main(["render", str(loop_graph), "--loop", "--fps", str(FPS), "--size", "48x32", "--out", str(out)]) == 0
    assert "12/12 frames" in capsys.readouterr().err  # the progress bar
    frames = _decode(out)
    n = round(LOOP_SECONDS * FPS)
    assert len(frames) == n
    assert np.allclose([t for t, _ in frames], np.arange(n) / FPS, atol=1e-3)
    assert frames[0][1].shape == (32, 48, 3)
    steps = [np.abs(b[1] - a[1]).mean() for a, b in zip(frames[:-1], frames[1:], strict=True)]
    wrap = np.abs(frames[0][1] - frames[-1][1]).mean()
    assert 0.3 * np.median(steps) < wrap < 1.5 * max(steps)  # last -> first is one ordinary step


def test_the_frame_after_the_loop_is_its_first(loop_graph: Path) -> None:
    runtime = Runtime(load_graph(loop_graph), fps=FPS, fixed_step=True)
    runtime.graph.node("modelloader").prepare("cpu")
    images = [runtime.step().published["preview"].clone() for _ in range(round(LOOP_SECONDS * FPS) + 1)]
    runtime.close()
    assert torch.allclose(images[-1], images[0], atol=1e-4)
    assert not torch.allclose(images[-2], images[0], atol=1e-2)


def test_seconds_sets_the_length_at_the_image_size(reference_dir: Path, tmp_path: Path) -> None:
    graph_path, out = tmp_path / "seed.agraph", tmp_path / "seed.mp4"
    save_graph(generator_graph(reference_dir, anim=True), graph_path)
    assert main(["render", str(graph_path), "--seconds", "0.5", "--fps", "10", "--out", str(out)]) == 0
    frames = _decode(out)
    assert len(frames) == 5 and frames[0][1].shape == (64, 64, 3)


def _two_loops(reference_dir: Path, path: Path) -> Path:
    graph = generator_graph(reference_dir, "NoiseLoop")
    add(graph, "KeyframeLoop")
    save_graph(graph, path)
    return path


@pytest.mark.parametrize("case, args, message", [
    ("no-loop", ["--loop"], "exactly one loop node"),
    ("two-loops", ["--loop"], "has 2: noiseloop, keyframeloop"),
    ("both", ["--loop", "--seconds", "2"], "one of --loop or --seconds"),
    ("neither", [], "one of --loop or --seconds"),
    ("size", ["--seconds", "1", "--size", "64by64"], "WIDTHxHEIGHT"),
    ("fps", ["--seconds", "1", "--fps", "0"], "a frame rate (above 0"),
    ("suffix", ["--seconds", "1", "--out", "x.gif"], "must be an .mp4"),
])
def test_bad_arguments_are_one_line_and_a_non_zero_exit(reference_dir: Path, tmp_path: Path, capsys,
                                                        case: str, args: list[str], message: str) -> None:
    graph = tmp_path / "g.agraph"
    if case == "two-loops":
        _two_loops(reference_dir, graph)
    else:
        save_graph(generator_graph(reference_dir), graph)
    out = ["--out", str(tmp_path / "x.mp4")] if "--out" not in args else []
    assert main(["render", str(graph), *args, *out]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "x.mp4").exists()
