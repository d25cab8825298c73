"""Output nodes through a real Runtime: NDIOut to a loopback NDI receiver, Recorder decoded back,
OutputWindow's child process under Xvfb. The images come from the tiny reference generator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from generator_graph import attach, generator_graph
from ndi_support import connect_receiver, find_url, receive
from PIL import Image
from ui_support import xvfb_display

from autolume_graph.outputs.frames import FrameConverter
from autolume_graph.outputs.ndi_pool import SenderPool, pool
from autolume_graph.outputs.window import monitor_rect
from autolume_graph.runtime import Runtime
from autolume_graph.session import Session

TESTS = Path(__file__).resolve().parent




def _pixels(image) -> np.ndarray:
    return FrameConverter().convert(image).bgra.copy()


def _new_images(runtime: Runtime, n: int) -> int:
    """Step `n` frames; how many brought a new picture (all kept alive, so their ids are distinct)."""
    images = [runtime.step().published["preview"] for _ in range(n)]
    return len({id(image) for image in images})


def _close_to(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got[..., :3].astype(np.int16) - want[..., :3]).mean())


# --- NDIOut --------------------------------------------------------------------------------
def test_ndi_out_sends_the_image_and_resends_a_still_one(ndi, reference_dir: Path) -> None:
    graph = generator_graph(reference_dir, seed=3.0)
    node = attach(graph, "NDIOut", sender_name="agtest-node")
    runtime = Runtime(graph, fps=25, fixed_step=True)
    try:
        snap = runtime.step()
        want = _pixels(snap.published["preview"])
        assert node.error == "" and node.sender is not None
        # The picture is still: this receiver connects after the only new frame was sent.
        recv = connect_receiver(ndi, find_url(ndi, node.sender.source_name()))
        try:
            got, rate_n, rate_d, _ = receive(ndi, recv, runtime.step, want.shape[:2])
        finally:
            ndi.recv_destroy(recv)
    finally:
        runtime.close()
    assert (rate_n, rate_d) == (25, 1)
    assert _close_to(got, want) < 8


def test_preset_swap_keeps_the_same_sender_and_the_receiver(ndi, reference_dir: Path) -> None:
    first = generator_graph(reference_dir, seed=1.0)
    old = attach(first, "NDIOut", sender_name="agtest-swap")
    runtime = Runtime(first, fps=30, fixed_step=True)
    try:
        runtime.step()
        sender = old.sender
        recv = connect_receiver(ndi, find_url(ndi, sender.source_name()))
        try:
            receive(ndi, recv, runtime.step, (64, 64))
            second = generator_graph(reference_dir, seed=7.0)
            new = attach(second, "NDIOut", sender_name="agtest-swap")
            runtime.swap_graph(second)  # what a preset switch does between two frames
            assert old.sender is None and pool.held("agtest-swap")
            want = _pixels(runtime.step().published["preview"])
            assert new.sender is sender
            got, *_ = receive(ndi, recv, runtime.step, (64, 64))
        finally:
            ndi.recv_destroy(recv)
    finally:
        runtime.close()
    assert _close_to(got, want) < 8  # the new graph's picture, on the receiver connected before


def test_pool_closes_a_sender_only_after_the_grace_period(ndi) -> None:
    senders = SenderPool(grace=0.2)
    first = senders.acquire("agtest-grace", 30)
    senders.release(first)
    assert senders.acquire("agtest-grace", 30) is first  # re-acquired in time: same source
    senders.release(first)
    deadline = time.monotonic() + 5
    while senders.held("agtest-grace") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not senders.held("agtest-grace")
    second = senders.acquire("agtest-grace", 30)
    assert second is not first
    senders.release(second)


def test_missing_ndi_runtime_is_a_node_error_and_the_graph_runs_on(reference_dir: Path) -> None:
    code = f"""
import sys
sys.modules["NDIlib"] = None
sys.path.insert(0, {str(TESTS)!r})
from pathlib import Path
from generator_graph import attach, generator_graph
from autolume_graph.runtime import Runtime
graph = generator_graph(Path({str(reference_dir)!r}), anim=True)
node = attach(graph, "NDIOut")
runtime = Runtime(graph, fps=30, fixed_step=True)
images = [runtime.step().published["preview"] for _ in range(4)]
print(repr(node.error))
print(len(set(map(id, images))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    error, images = out.stdout.splitlines()
    assert error.startswith("'NodeError: NDI runtime could not be loaded (ModuleNotFoundError")
    assert images == "4"  # a new picture every frame despite the failed output


# --- Recorder ------------------------------------------------------------------------------
def _decode(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def _finish(runtime: Runtime, node) -> None:
    """Stop recording and step until the file is finished in the background."""
    node.set_value("record", False)
    deadline = time.monotonic() + 20
    while not node.status.startswith("saved") and time.monotonic() < deadline:
        runtime.step()
        time.sleep(0.01)
    assert node.status.startswith("saved"), node.error or node.status


def test_recorder_writes_every_frame_at_its_runtime_time(reference_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOLUME_WORKDIR", str(tmp_path))
    graph = generator_graph(reference_dir, anim=True, speed=2.0)
    node = attach(graph, "Recorder", path="take-{time}.mp4")
    runtime = Runtime(graph, fps=20, fixed_step=True)
    session = Session(runtime, osc=False, preset_dir=tmp_path / "presets")
    session.control.system["/autolume/record"]((1,))  # the system OSC address drives `record`
    n = 12
    try:
        for _ in range(n):
            runtime.step()
        assert node.error == "" and node.recorder.dropped == 0
        _finish(runtime, node)
    finally:
        session.close()
    [path] = (tmp_path / "recordings").glob("take-*.mp4")
    decoded = _decode(path)
    assert len(decoded) == n
    assert np.allclose([t for t, _ in decoded], np.arange(n) / 20, atol=1e-3)
    assert np.abs(decoded[0][1].astype(np.int16) - decoded[-1][1]).mean() > 1  # the frames moved


def test_snapshot_writes_the_image_as_png(reference_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOLUME_WORKDIR", str(tmp_path))
    graph = generator_graph(reference_dir, seed=5.0)
    node = attach(graph, "Recorder", path="rec-{time}.mp4")
    runtime = Runtime(graph, fps=30, fixed_step=True)
    try:
        want = _pixels(runtime.step().published["preview"])[..., 2::-1]
        node.set_value("snapshot", True)
        runtime.step()
        node.set_value("snapshot_dir", "snaps")
        node.set_value("snapshot", True)
        runtime.step()
    finally:
        runtime.close()
    assert node.error == ""
    [beside] = (tmp_path / "recordings").glob("rec-*.png")
    [in_dir] = (tmp_path / "recordings" / "snaps").glob("rec-*.png")
    for path in (beside, in_dir):
        assert np.array_equal(np.asarray(Image.open(path)), want)
    assert not list(tmp_path.rglob("*.mp4"))  # a snapshot records nothing


def test_unwritable_folder_is_a_node_error_and_rendering_continues(reference_dir: Path, tmp_path: Path,
                                                                     monkeypatch) -> None:
    (tmp_path / "plain").write_text("a file, not a folder")
    monkeypatch.setenv("AUTOLUME_WORKDIR", str(tmp_path / "plain"))  # its recordings/ cannot be made
    graph = generator_graph(reference_dir, anim=True)
    node = attach(graph, "Recorder", path="take.mp4", record=True)
    runtime = Runtime(graph, fps=30, fixed_step=True)
    try:
        assert _new_images(runtime, 8) == 8
    finally:
        runtime.close()
    assert "take.mp4" in node.error and "\n" not in node.error
    assert node.values["record"] is True


# --- OutputWindow --------------------------------------------------------------------------
def _step_until(runtime: Runtime, done, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        runtime.step()
        time.sleep(0.02)
    assert done()


def test_monitor_rectangles_come_from_the_display(monkeypatch: pytest.MonkeyPatch) -> None:
    if os.environ.get("DISPLAY"):
        pytest.skip("needs a private Xvfb of a known size; DISPLAY is already set")
    with xvfb_display("1280x720x24"):
        assert monitor_rect(0) == (0, 0, 1280, 720)
        assert monitor_rect(2) == (0, 0, 1280, 720)  # one monitor there: indices wrap
    monkeypatch.delenv("DISPLAY", raising=False)
    assert monitor_rect(1) == (1920, 0, 1920, 1080)  # no display: assumed side by side


def test_output_window_shows_frames_and_its_death_does_not_stop_rendering(reference_dir: Path) -> None:
    graph = generator_graph(reference_dir, anim=True)
    node = attach(graph, "OutputWindow", monitor=0, fullscreen=False)
    runtime = Runtime(graph, fps=30, fixed_step=True)
    with xvfb_display("1280x720x24"):
        try:
            _step_until(runtime, lambda: node.window is not None and node.window.shown >= 2)
            first = node.window.pid
            os.kill(first, signal.SIGKILL)
            _step_until(runtime, lambda: node.status.startswith("window closed"))
            before = runtime.snapshot.frame
            assert _new_images(runtime, 5) == 5 and runtime.snapshot.frame == before + 5
            assert node.error == "" and node.window.pid == first  # not reopened on its own
            node.set_value("enabled", False)
            runtime.step()
            assert node.window is None
            node.set_value("enabled", True)
            _step_until(runtime, lambda: node.window is not None and node.window.shown >= 1)
            assert node.window.pid != first
        finally:
            runtime.close()
    assert node.window is None
