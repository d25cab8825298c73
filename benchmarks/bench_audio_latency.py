"""Live audio-to-picture latency: from the arrival of the audio block that holds a click (its time in the
capture callback) to the published frame whose picture shows it.

Run: python benchmarks/bench_audio_latency.py [--clicks N] [--fps F] [--block auto|64|...|2048] [REFERENCE_DIR]

A private JACK server on its dummy driver (48 kHz, 256-frame periods) carries clicks, played at random
times by a JACK client of this script, into AudioIn; AudioAnalysis's peak drives Color's brightness on
the tiny reference generator's picture (a still seed, so only a click changes it). The render loop is
the runtime's own (step, then wait for the next frame), on this thread, so each frame's publish time is
read as it happens. A frame shows the audio since the frame before, analysed on the analysis thread: the
expected latency is the wait for the next frame plus about one frame.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "benchmarks"), str(REPO)]

from bench_audio import cpu_line  # noqa: E402
from generator_graph import add, generator_graph  # noqa: E402
from test_audio_in import RATE, Player, click_track, wait_for  # noqa: E402

from autolume_graph.graph import Edge, Graph  # noqa: E402
from autolume_graph.runtime import Runtime  # noqa: E402

LOUD = 0.05  # a sample above this after QUIET_S of quiet starts a click
QUIET_S = 0.2
REACTS = 0.1  # a picture this much brighter (mean, -1..1 scale) than the still one shows a click


def latency_graph(reference: Path, device: str, block: str) -> tuple[Graph, object]:
    graph = generator_graph(reference)
    generate, preview = (next(n for n in graph.nodes.values() if n.type_name == t) for t in ("Generate", "Preview"))
    graph.remove_edge(graph.incoming(preview.id)["image"])
    color = add(graph, "Color")
    source, analysis = add(graph, "AudioIn", device=device, block_size=block), add(graph, "AudioAnalysis")
    for edge in (Edge(generate.id, "image", color.id, "image"), Edge(color.id, "image", preview.id, "image"),
                 Edge(source.id, "audio", analysis.id, "audio"), Edge(analysis.id, "peak", color.id, "brightness")):
        graph.add_edge(edge)
    return graph, source


def measure(reference: Path, clicks: int, fps: float, block: str) -> tuple[list[float], float, int, int]:
    """Latencies (ms), the frame rate reached, the block size in use and the dropouts."""
    rng = np.random.default_rng(7)
    times = list(0.5 + np.cumsum(rng.uniform(0.35, 0.8, clicks)))
    player = Player("autolume-bench-clicks")
    graph, source = latency_graph(reference, player.device, block)
    runtime = Runtime(graph, fps=fps)
    latencies: list[float] = []
    try:
        wait_for(lambda: (runtime.step(), source.source is not None and source.source.block_frames() > 0)[1],
                 what="the stream", show=lambda: source.status)
        for _ in range(int(fps)):  # the analysis settles on silence
            still = float(runtime.step().published["preview"].mean())
        player.play(click_track(times, times[-1] + 0.5))
        quiet_since, pending = 0, []  # the last loud sample's frame number; arrivals of clicks not yet seen
        due, start, frames = time.perf_counter(), time.perf_counter(), 0
        while not player.done or pending:
            snapshot = runtime.step()
            published = time.monotonic()
            frames += 1
            span, (first, _) = source.last_outputs["audio"], source.source.last_read
            for index in np.flatnonzero(np.abs(span.samples) > LOUD):
                count = first + int(index)
                if count - quiet_since > QUIET_S * span.rate:
                    pending.append(source.source.arrival(count))
                quiet_since = count
            if pending and float(snapshot.published["preview"].mean()) > still + REACTS:
                latencies.append((published - pending.pop(0)) * 1000.0)
            if time.perf_counter() - start > times[-1] + 10:
                break
            due = runtime.wait_for_next_frame(due)
        rate = frames / (time.perf_counter() - start)
        in_use, dropouts = source.source.block_frames(), source.source.dropouts()
    finally:
        runtime.close()
        player.close()
    if len(latencies) != clicks:
        print(f"warning: {len(latencies)} of {clicks} clicks seen on the picture")
    return latencies, rate, in_use, dropouts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", nargs="?", default=str(REPO.parent / "shared" / "reference"))
    parser.add_argument("--clicks", type=int, default=40)
    parser.add_argument("--fps", type=float, default=60.0)
    parser.add_argument("--block", default="auto")
    args = parser.parse_args()
    import torch

    name = f"autolume-bench-latency-{os.getpid()}"
    server = subprocess.Popen([shutil.which("jackd") or "jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r",
                               str(RATE), "-p", "256"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["JACK_DEFAULT_SERVER"], os.environ["JACK_NO_START_SERVER"] = name, "1"
    try:
        time.sleep(1.0)
        latencies, rate, block, dropouts = measure(Path(args.reference), args.clicks, args.fps, args.block)
    finally:
        server.terminate()
        server.wait(timeout=10)
    ordered = np.sort(latencies)
    print(cpu_line())
    print(f"CPU kernels {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} torch threads; "
          f"JACK dummy 48 kHz, 256-frame periods; AudioIn block {args.block} (in use: {block} frames), "
          f"{dropouts} dropouts; {args.fps:g} fps asked, {rate:.1f} reached")
    print(f"audio block arrival -> published frame, {len(ordered)} clicks: p50 {np.percentile(ordered, 50):.1f} ms  "
          f"p99 {np.percentile(ordered, 99):.1f} ms  min {ordered[0]:.1f} ms  max {ordered[-1]:.1f} ms  "
          f"(one frame: {1000.0 / args.fps:.1f} ms)")


if __name__ == "__main__":
    main()
