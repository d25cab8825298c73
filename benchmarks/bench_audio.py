"""Audio analysis cost: what a frame pays (live and offline) and what the analysis thread does per frame.

Run: python benchmarks/bench_audio.py [--seconds S] [--fps F]

The frame's cost is the AudioFile and AudioAnalysis cooks on the render thread: live they hand the
frame's samples to the analysis thread and read its latest result; offline (fixed step) the frame
also waits for the analysis of its own samples. The budget is 0.5 ms per frame.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from autolume_graph.audio.analysis import AnalysisConfig, Analyzer
from autolume_graph.audio.file_source import Clip, Playhead
from autolume_graph.node import CookContext
from autolume_graph.registry import default_registry

RATE = 48000


def cpu_line() -> str:
    name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), platform.processor() or "unknown CPU") \
        if Path("/proc/cpuinfo").exists() else platform.processor() or "unknown CPU"
    return f"CPU {name}, {os.cpu_count()} cores, numpy {np.__version__}, python {platform.python_version()}"


def signal(seconds: float) -> np.ndarray:
    """A tone under a 120 BPM click, so every part of the analysis has work."""
    t = np.arange(int(seconds * RATE)) / RATE
    out = 0.3 * np.sin(2 * np.pi * 220 * t)
    for start in range(0, len(t), RATE // 2):
        out[start:start + 240] += np.random.default_rng(start).standard_normal(len(out[start:start + 240])) * 0.5
    return out.astype(np.float32)


def figures(times_ms: list[float]) -> str:
    ordered = sorted(times_ms)
    return (f"mean {statistics.mean(ordered):.3f} ms  p50 {statistics.median(ordered):.3f} ms  "
            f"p99 {ordered[int(len(ordered) * 0.99)]:.3f} ms")


def frame_cost(path: str, frames: int, fps: float, fixed_step: bool, paced: bool) -> list[float]:
    """Per frame, the AudioFile and AudioAnalysis cooks as the render thread runs them; `paced`: the thread
    sleeps out each frame (an idle live loop: on a VM the first work after a sleep runs slower)."""
    registry = default_registry()
    source, analysis = registry.create("AudioFile"), registry.create("AudioAnalysis")
    source.set_value("path", path)
    source.prepare("cpu")
    times = []
    try:
        for frame in range(frames):
            t = frame / fps if fixed_step else frame / fps + 1e-7  # live: a wall time, never exactly frame / fps
            ctx = CookContext(time=t, dt=1.0 / fps if frame else 0.0, frame=frame, fps=fps)
            start = time.perf_counter()
            out = source.cook(ctx, {}, dict(source.values))
            analysis.cook(ctx, {"audio": out["audio"]}, dict(analysis.values))
            times.append((time.perf_counter() - start) * 1000)
            if paced:
                time.sleep(1.0 / fps)
    finally:
        analysis.close()
    return times[10:]


def thread_cost(samples: np.ndarray, fps: float) -> list[float]:
    """Per frame, the analysis of that frame's samples (the work the analysis thread does)."""
    analyzer = Analyzer(AnalysisConfig(RATE))
    head = Playhead(Clip(samples, RATE))
    times = []
    for _ in range(int(len(samples) / RATE * fps)):
        span = head.advance(1.0 / fps, True, True, False)
        start = time.perf_counter()
        analyzer.feed(span.samples)
        times.append((time.perf_counter() - start) * 1000)
    return times[10:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="audio analysed per figure")
    parser.add_argument("--fps", type=float, default=60.0)
    args = parser.parse_args()
    print(cpu_line())
    samples = signal(args.seconds)
    frames = int(args.seconds * args.fps)
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "bench.wav")
        with wave.open(path, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes((samples * 32767).astype("<i2").tobytes())
        paced = frame_cost(path, frames, args.fps, fixed_step=False, paced=True)
        busy = frame_cost(path, frames, args.fps, fixed_step=False, paced=False)
        offline = frame_cost(path, frames, args.fps, fixed_step=True, paced=False)
    work = thread_cost(samples, args.fps)
    print(f"{args.fps:g} fps, 48 kHz, 8 bands, 32-bin spectrum, {frames} frames:")
    print(f"  render thread, live, paced (sleeps between):  {figures(paced)} per frame (budget 0.5 ms)")
    print(f"  render thread, live, frames back to back:     {figures(busy)} per frame (budget 0.5 ms)")
    print(f"  render thread, offline (waits for its frame): {figures(offline)} per frame")
    print(f"  analysis thread, one frame's audio:           {figures(work)} per frame")


if __name__ == "__main__":
    main()
