"""Per-frame cost of the output path: conversion, NDI hand-off and throughput, recorder enqueue.

    python benchmarks/bench_outputs.py [--device cpu|cuda] [--seconds 1.5]

"caller" columns are what the render thread pays; "thread" columns are what the sink threads
manage in the background (NDI with one loopback receiver draining frames, x264 veryfast crf 18).
Sinks whose runtime is missing (NDIlib, PyAV) are reported and skipped.
"""

from __future__ import annotations

import argparse
import threading
import time

import torch

from autolume_graph.outputs.errors import OutputError
from autolume_graph.outputs.frames import FrameConverter

SIZES = (256, 512, 1024)


def _image(size: int, device: str) -> torch.Tensor:
    return torch.randn(1, 3, size, size, device=device).mul_(0.5).clamp_(-1, 1)


def _per_frame_ms(fn, seconds: float) -> float:
    for _ in range(3):
        fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return (time.perf_counter() - t0) / n * 1e3


def bench_convert(size: int, device: str, seconds: float) -> float:
    conv, image = FrameConverter(), _image(size, device)
    return _per_frame_ms(lambda: conv.convert(image).bgra, seconds)


def bench_ndi(size: int, device: str, seconds: float) -> str:
    from autolume_graph.outputs.ndi import NDISender, load_runtime

    ndi = load_runtime()
    conv, image = FrameConverter(), _image(size, device)
    with NDISender(f"bench-{size}", fps=60) as sender:
        finder = ndi.find_create_v2(ndi.FindCreate(p_extra_ips="127.0.0.1"))
        url = None
        while url is None:
            ndi.find_wait_for_sources(finder, 100)
            url = next((s.url_address for s in ndi.find_get_current_sources(finder)
                        if s.ndi_name == sender.source_name()), None)
        ndi.find_destroy(finder)
        receiver = ndi.recv_create_v3(ndi.RecvCreateV3(color_format=ndi.RECV_COLOR_FORMAT_BGRX_BGRA))
        ndi.recv_connect(receiver, ndi.Source(p_url_address=url))
        received, stop = [0], threading.Event()

        def drain() -> None:
            while not stop.is_set():
                kind, video, _, _ = ndi.recv_capture_v2(receiver, 50)
                if kind == ndi.FRAME_TYPE_VIDEO:
                    received[0] += 1
                    ndi.recv_free_video_v2(receiver, video)

        drainer = threading.Thread(target=drain)
        drainer.start()
        sender.connections(2000)
        sent0, t0 = sender.sent, time.perf_counter()
        caller_ms = _per_frame_ms(lambda: sender.send(conv.convert(image).bgra), seconds)
        fps = (sender.sent - sent0) / (time.perf_counter() - t0)
        stop.set()
        drainer.join()
        ndi.recv_destroy(receiver)
    return f"convert+send {caller_ms:6.2f} ms | NDI thread {fps:6.1f} fps, received {received[0]}"


def bench_recorder(size: int, device: str, seconds: float) -> str:
    import tempfile

    from autolume_graph.outputs.recorder import VideoRecorder

    conv, image = FrameConverter(), _image(size, device)
    with tempfile.TemporaryDirectory() as tmp:
        rec = VideoRecorder(f"{tmp}/bench.mp4", fps_hint=30, queue_size=8)
        clock = [0.0]

        def write() -> None:
            clock[0] += 1 / 30
            rec.write(conv.convert(image).bgra, clock[0])

        t0 = time.perf_counter()
        caller_ms = _per_frame_ms(write, seconds)
        rec.close()
        fps = rec.frames_written / (time.perf_counter() - t0)
    return (f"convert+write {caller_ms:6.2f} ms | encoder {fps:6.1f} fps, "
            f"{rec.frames_written} written, {rec.dropped} dropped, error={rec.error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=1.5)
    args = parser.parse_args()
    print(f"device={args.device} torch threads={torch.get_num_threads()}")
    for size in SIZES:
        print(f"{size:5d}px convert {bench_convert(size, args.device, args.seconds):6.2f} ms/frame")
        for name, bench in (("ndi", bench_ndi), ("rec", bench_recorder)):
            try:
                print(f"{size:5d}px {name}: {bench(size, args.device, args.seconds)}")
            except (ImportError, OutputError) as exc:
                print(f"{size:5d}px {name}: skipped ({exc})")


if __name__ == "__main__":
    main()
