"""VideoRecorder and write_png: real encodes decoded back with PyAV, real IO failures."""

from __future__ import annotations

import os
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from autolume_graph.outputs.errors import OutputError
from autolume_graph.outputs.recorder import VideoRecorder, write_png


def _smooth(h: int, w: int, i: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([40 + 150 * x / w + 2 * i, 30 + 180 * y / h, 128 + 60 * np.sin((x + y) / 40 + i / 5)], -1)
    return img.astype(np.uint8)


def _decode(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        return [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def test_irregular_timestamps_and_pixels_survive(tmp_path: Path) -> None:
    times = 3.25 + np.cumsum(np.r_[0, np.random.default_rng(1).uniform(0.008, 0.09, 29)])
    frames = [_smooth(96, 160, i) for i in range(30)]
    path = tmp_path / "take.mp4"
    with VideoRecorder(path, fps_hint=30, queue_size=32) as rec:
        for frame, t in zip(frames, times, strict=True):
            assert rec.write(frame, t)
    assert rec.error is None
    assert rec.frames_written == 30 and rec.dropped == 0
    decoded = _decode(path)
    assert len(decoded) == 30
    got_times = np.array([t for t, _ in decoded])
    assert np.max(np.abs(got_times - (times - times[0]))) < 1e-3  # relative to the first frame
    for (_, got), want in zip(decoded, frames, strict=True):
        err = np.abs(got.astype(np.int16) - want).mean()
        assert err < 3, f"mean abs error {err:.2f}"


def test_odd_size_is_padded_to_even_and_bgra_accepted(tmp_path: Path) -> None:
    frame = _smooth(95, 161)
    bgra = np.dstack([frame[..., ::-1], np.full(frame.shape[:2], 255, np.uint8)])
    with VideoRecorder(tmp_path / "odd.mp4") as rec:
        rec.write(frame, 0.0)
        rec.write(frame[::-1], 0.04)  # a strided view is fine too
        rec.write(bgra, 0.08)
    assert rec.error is None
    (_, first), (_, flipped), (_, from_bgra) = _decode(tmp_path / "odd.mp4")
    assert first.shape == (96, 162, 3)
    assert np.abs(first[:95, :161].astype(np.int16) - frame).mean() < 3
    assert np.abs(flipped[:95, :161].astype(np.int16) - frame[::-1]).mean() < 3
    assert np.abs(from_bgra[:95, :161].astype(np.int16) - frame).mean() < 3
    assert np.abs(from_bgra[95].astype(np.int16) - from_bgra[94]).mean() < 3  # padding repeats the edge


def test_full_queue_drops_instead_of_blocking(tmp_path: Path) -> None:
    frame = _smooth(720, 1280)
    rec = VideoRecorder(tmp_path / "burst.mp4", queue_size=2)
    n = 40
    worst = 0.0
    for i in range(n):
        t0 = time.perf_counter()
        rec.write(frame, i / 30)
        worst = max(worst, time.perf_counter() - t0)
    rec.close()
    assert rec.error is None
    assert rec.dropped > 0
    assert rec.frames_written + rec.dropped == n
    assert worst < 0.05, f"write() took {worst * 1e3:.1f} ms"
    assert len(_decode(tmp_path / "burst.mp4")) == rec.frames_written


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_unwritable_path_is_one_error_line(tmp_path: Path, where: str) -> None:
    if where == "under-a-file":
        (tmp_path / "plain").write_text("not a directory")
        path = tmp_path / "plain" / "take.mp4"
    else:
        path = Path("/proc/autolume-graph-test/take.mp4")
    rec = VideoRecorder(path)
    for i in range(5):
        rec.write(_smooth(64, 64), i / 30)  # must not raise, before or after the failure
    rec.close()
    assert isinstance(rec.error, OutputError)
    assert "\n" not in str(rec.error) and "take.mp4" in str(rec.error)
    assert not rec.write(_smooth(64, 64), 1.0)


def test_full_disk_is_one_error_line(tiny_disk: Path) -> None:
    noise = np.random.default_rng(0)
    rec = VideoRecorder(tiny_disk / "take.mp4", crf=0, preset="ultrafast", queue_size=64)
    for i in range(40):  # lossless noise: far more than 200 KiB
        rec.write(noise.integers(0, 256, (256, 256, 3), dtype=np.uint8), i / 30)
    rec.close()
    assert isinstance(rec.error, OutputError)
    assert "\n" not in str(rec.error)
    assert "space" in str(rec.error).lower()


def test_write_png_round_trip_and_atomic(tmp_path: Path) -> None:
    bgra = np.dstack([_smooth(33, 47)[..., ::-1], np.full((33, 47), 255, np.uint8)])
    rgb = bgra[..., 2::-1]  # the strided view FrameConverter hands out
    path = tmp_path / "snap.png"
    path.write_bytes(b"old")
    write_png(rgb, path)
    assert np.array_equal(np.asarray(Image.open(path)), rgb)
    assert os.listdir(tmp_path) == ["snap.png"]
    with pytest.raises(OutputError, match="snap.png"):
        write_png(rgb, tmp_path / "snap.png" / "snap.png")
    assert os.listdir(tmp_path) == ["snap.png"]
