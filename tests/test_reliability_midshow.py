"""Promise 4: failures mid-show leave the previous state rendering, with the error on the node.

Also pinned elsewhere: an NDI receiver vanishing (tests/test_ndi_output.py::
test_receiver_closing_mid_stream_does_not_stall_send), a missing NDI runtime and a killed output
window (tests/test_output_nodes.py), a bad keyframe vector file (tests/test_latent_nodes.py::
test_keyframe_loop_bad_vector_is_a_node_error).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from generator_graph import attach, generator_graph

from autolume_graph.graph import Graph
from autolume_graph.node import Node
from autolume_graph.runtime import Runtime


def _of(graph: Graph, type_name: str) -> Node:
    return next(n for n in graph.nodes.values() if n.type_name == type_name)


def _step_until(runtime: Runtime, done, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        runtime.step()
        time.sleep(0.005)
    assert done()


def _new_images(runtime: Runtime, n: int) -> int:
    """Step `n` frames; how many brought a new picture (all kept alive, so their ids are distinct)."""
    images = [runtime.step().published["preview"] for _ in range(n)]
    return len({id(image) for image in images})


@pytest.mark.parametrize("bad", ["corrupt", "missing"])
def test_model_path_switched_to_a_bad_file_keeps_the_old_model_rendering(reference_dir: Path, tmp_path: Path,
                                                                         bad: str) -> None:
    graph = generator_graph(reference_dir, anim=True)
    loader = _of(graph, "ModelLoader")
    runtime = Runtime(graph, fps=30, fixed_step=True)
    try:
        runtime.step()
        model = loader.last_outputs["model"]
        path = tmp_path / "bad.pkl"
        if bad == "corrupt":
            path.write_bytes((reference_dir / "sg2_64_tiny.pkl").read_bytes()[:50_000])
        loader.set_value("path", str(path))
        _step_until(runtime, lambda: loader.error != "")
        assert str(path) in loader.error and "\n" not in loader.error
        assert _new_images(runtime, 5) == 5  # the show goes on with the previous model
        assert loader.last_outputs["model"] is model and _of(graph, "Generate").error == ""
    finally:
        runtime.close()


def test_missing_vector_file_keeps_the_vector(reference_dir: Path, tmp_path: Path) -> None:
    graph = generator_graph(reference_dir, latent="VectorLatent")
    node = _of(graph, "VectorLatent")
    runtime = Runtime(graph, fps=30, fixed_step=True)
    try:
        before = runtime.step().published["preview"]
        vector = node.values["vector"]
        node.set_value("path", str(tmp_path / "gone.npy"))
        node.set_value("load", True)
        _step_until(runtime, lambda: node.error != "")
        after = runtime.step().published["preview"]
        assert "gone.npy" in node.status and "no such file" in node.status
        assert node.values["vector"] is vector and after is before
    finally:
        runtime.close()


def test_keyframe_vector_missing_mid_show_keeps_rendering(reference_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "key.npy"
    np.save(path, np.random.default_rng(0).standard_normal((1, 512)).astype(np.float32))
    graph = generator_graph(reference_dir, latent="KeyframeLoop", count=2, time=1.0,
                            keyframes=[{"seed": 1}, {"vector": str(path)}])
    node = _of(graph, "KeyframeLoop")
    node.prepare("cpu")  # as a render or a preset switch does: the keyframes' files are read before frame 0
    runtime = Runtime(graph, fps=30, fixed_step=True)
    try:
        assert _new_images(runtime, 3) == 3 and node.error == ""
        path.unlink()
        node.set_value("keyframes", [{"seed": 1}, {"vector": str(path)}, {"seed": 2}])
        node.set_value("count", 3)
        _step_until(runtime, lambda: node.error != "")
        assert "key.npy" in node.error
        held = runtime.snapshot.published["preview"]
        assert all(runtime.step().published["preview"] is held for _ in range(3))  # last good frame held
    finally:
        runtime.close()


def test_disk_full_while_recording_keeps_rendering(reference_dir: Path, tiny_disk: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOLUME_WORKDIR", str(tiny_disk))  # its recordings/ is on the tiny disk
    graph = generator_graph(reference_dir, anim=True, speed=5.0)
    graph.node("generate").set_value("noise_mode", "random")
    graph.node("generate").set_value("noise_anim", True)  # noisy frames: 200 KiB fill quickly
    recorder = attach(graph, "Recorder", path="take.mp4", record=True)
    runtime = Runtime(graph, fps=30, fixed_step=True)
    try:
        deadline = time.monotonic() + 180  # until the disk is full: a loaded machine makes fewer frames a second
        frames = 0
        while recorder.error == "" and time.monotonic() < deadline:
            frames += _new_images(runtime, 10)
            time.sleep(0.01)
        assert "space" in recorder.error.lower() and "\n" not in recorder.error, recorder.error or recorder.status
        assert _new_images(runtime, 10) == 10  # rendering goes on with the disk full
        assert all(n.error == "" for n in graph.nodes.values() if n is not recorder)
    finally:
        recorder.set_value("record", False)
        runtime.step()
        runtime.close()
