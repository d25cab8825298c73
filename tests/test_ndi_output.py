"""NDISender against a real NDI receiver on loopback (no mDNS: a finder with extra IP 127.0.0.1)."""

from __future__ import annotations

import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest
from ndi_support import connect_receiver, find_url, receive

from autolume_graph.outputs.errors import OutputError
from autolume_graph.outputs.ndi import NDISender, load_runtime

try:
    ndi = load_runtime()
except OutputError as exc:  # report exactly why NDI cannot run here
    pytest.skip(str(exc), allow_module_level=True)


def _gradient(h: int, w: int) -> np.ndarray:
    """A smooth BGRX pattern: NDI's SpeedHQ codec is lossy, smooth content stays close."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 4), np.uint8)
    img[..., 0] = 30 + 190 * x / (w - 1)
    img[..., 1] = 20 + 200 * y / (h - 1)
    img[..., 2] = 128 + 100 * np.sin((x + y) / (w + h) * np.pi * 2)
    img[..., 3] = 255
    return img


def _receive(sender: NDISender, receiver: object, frame: np.ndarray):
    """Keep sending `frame` until one arrives; returns (pixels copy, frame_rate_N, frame_rate_D, fourcc)."""
    return receive(ndi, receiver, lambda: sender.send(frame), frame.shape[:2])


def test_frames_arrive_with_pixels_and_frame_rate() -> None:
    with NDISender("agtest-pixels", fps=Fraction(30000, 1001)) as sender:
        assert sender.frame_rate == (30000, 1001)
        url = find_url(ndi, sender.source_name())
        assert url.startswith("127.0.0.1:")
        receiver = connect_receiver(ndi, url)
        try:
            sent = _gradient(96, 160)
            got, rate_n, rate_d, fourcc = _receive(sender, receiver, sent)
            assert sender.connections() == 1
        finally:
            ndi.recv_destroy(receiver)
    assert (rate_n, rate_d) == (30000, 1001)
    assert fourcc in (ndi.FOURCC_VIDEO_TYPE_BGRX, ndi.FOURCC_VIDEO_TYPE_BGRA)
    err = np.abs(got[..., :3].astype(np.int16) - sent[..., :3]).mean()
    assert err < 8, f"mean abs error {err:.2f}"
    assert np.abs(got[..., :3].astype(np.int16) - sent[..., :3]).max() < 64


def test_receiver_closing_mid_stream_does_not_stall_send() -> None:
    with NDISender("agtest-close", fps=60) as sender:
        receiver = connect_receiver(ndi, find_url(ndi, sender.source_name()))
        frame = _gradient(720, 1280)
        _receive(sender, receiver, frame)
        ndi.recv_destroy(receiver)
        sent_before = sender.sent
        worst = 0.0
        for _ in range(100):
            t0 = time.perf_counter()
            sender.send(frame)
            worst = max(worst, time.perf_counter() - t0)
            time.sleep(0.002)
        deadline = time.monotonic() + 5
        while sender.sent <= sent_before + 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sender.sent > sent_before + 5, "sender thread stopped sending after the receiver left"
        assert worst < 0.05, f"send() blocked for {worst * 1e3:.1f} ms"
        assert sender.error is None
    t0 = time.perf_counter()
    sender.close()  # second close is a no-op
    assert time.perf_counter() - t0 < 0.1


def test_latest_wins_counts_dropped_frames() -> None:
    frame = _gradient(1080, 1920)
    sender = NDISender("agtest-drops")
    n = 60
    for _ in range(n):
        sender.send(frame)
    sender.close()
    assert sender.dropped > 0
    assert n - 1 <= sender.sent + sender.dropped <= n  # at most the last frame was still waiting


def test_rename_recreates_the_source() -> None:
    with NDISender("agtest-old") as sender:
        sender.rename("agtest-new")
        assert sender.name == "agtest-new"
        assert sender.source_name().endswith("(agtest-new)")
        receiver = connect_receiver(ndi, find_url(ndi, sender.source_name()))
        try:
            _receive(sender, receiver, _gradient(64, 64))
        finally:
            ndi.recv_destroy(receiver)


def test_missing_runtime_is_one_output_error_line() -> None:
    code = (
        "import sys; sys.modules['NDIlib'] = None\n"
        "from autolume_graph.outputs.ndi import NDISender\n"
        "from autolume_graph.outputs.errors import OutputError\n"
        "try:\n    NDISender()\nexcept OutputError as e:\n    print(repr(str(e)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("'NDI runtime could not be loaded (ModuleNotFoundError")
    assert out.stdout.count("\n") == 1


def test_pool_close_all_closes_held_and_lingering_senders() -> None:
    from autolume_graph.outputs.ndi_pool import SenderPool

    senders = SenderPool(grace=60.0)
    held = senders.acquire("agtest-held", 30)
    lingering = senders.acquire("agtest-lingering", 30)
    senders.release(lingering)  # in its grace period: would live another minute
    senders.close_all()
    assert held.closed and lingering.closed
    assert not senders.held("agtest-held") and not senders.held("agtest-lingering")


SENDER_LEFT_OPEN = """
import sys, numpy as np
from autolume_graph.outputs.ndi_pool import pool
sender = pool.acquire(sys.argv[1], 30)
sender.send(np.zeros((64, 64, 4), np.uint8))
pool.release(sender)  # still alive for the pool's grace period when the interpreter exits
"""


def test_a_sender_alive_at_exit_does_not_abort_the_process() -> None:
    """Without `ndi.shutdown` at exit, libndi's static destructors abort most such processes (status 134)."""
    runs = [subprocess.Popen([sys.executable, "-c", SENDER_LEFT_OPEN, f"agtest-exit-{i}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(8)]
    results = [(run.wait(60), run.stderr.read()) for run in runs]
    assert [code for code, _ in results] == [0] * len(runs), results
    assert not any("terminate" in err for _, err in results), results
