"""Soak: `autolume-graph run` for many frames while OSC changes parameters at random; RSS must not grow.

The graph is the tiny reference model at 64 px (or `--model`) with an animated seed, run headless as
`autolume-graph run GRAPH --frames N --fps 0 --osc-port P`; a sender process sends random values to
bound parameters until the run ends. VmRSS of the run is sampled from /proc every 0.1 s; growth is
the median of the last quarter of the run against the highest sample of its second quarter (after
warm-up: model load, first cooks, caches). RSS swings by several percent for seconds at a time as
the allocator takes and returns memory, so growth is measured against the top of the band it
reached, which a leak leaves behind.

    python benchmarks/soak.py --frames 20000 [--model FILE]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flood import REPO, TARGETS, osc_message


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kb(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in text.splitlines() if line.startswith("VmRSS:")), None)


def _window(samples: list[tuple[float, int]], start: float, stop: float) -> list[int]:
    """The VmRSS samples taken in [start, stop] s (the last one if none was)."""
    return [rss for t, rss in samples if start <= t <= stop] or [samples[-1][1]]


def send_random(port: int, rate: float, seed: int = 3) -> None:
    """The sender process: random in-range values to bound parameters at `rate`/s, until killed."""
    rng = random.Random(seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while True:
        address, lo, hi, _ = rng.choice(TARGETS)
        sock.sendto(osc_message(address, "f", rng.uniform(lo, hi)), ("127.0.0.1", port))
        time.sleep(1.0 / rate)


def soak(reference: Path, frames: int, rate: float = 200, model: Path | None = None) -> dict[str, Any]:
    """Run the soak; returncode, stderr, duration, and RSS after warm-up and at the end (kB)."""
    from generator_graph import generator_graph

    from autolume_graph.serialize import save_graph

    with tempfile.TemporaryDirectory() as tmp:
        graph_path = Path(tmp) / "soak.agraph"
        graph = generator_graph(reference, anim=True, speed=3.0)
        if model is not None:
            next(n for n in graph.nodes.values() if n.type_name == "ModelLoader").set_value("path", str(model))
        save_graph(graph, graph_path)
        port = _free_udp_port()
        run = subprocess.Popen([sys.executable, "-m", "autolume_graph.cli", "run", str(graph_path), "--frames",
                                str(frames), "--fps", "0", "--osc-host", "127.0.0.1", "--osc-port", str(port)],
                               stderr=subprocess.PIPE, text=True, cwd=tmp)
        sender = subprocess.Popen([sys.executable, __file__, "--send", str(port), str(rate)])
        samples: list[tuple[float, int]] = []
        start = time.perf_counter()
        try:
            while run.poll() is None:
                rss = _rss_kb(run.pid)
                if rss is not None:
                    samples.append((time.perf_counter() - start, rss))
                time.sleep(0.1)
        finally:
            sender.kill()
            sender.wait()
        seconds = time.perf_counter() - start
        stderr = run.stderr.read()
    warm = max(_window(samples, seconds / 4, seconds / 2))
    end = int(statistics.median(_window(samples, 3 * seconds / 4, seconds)))
    return {"returncode": run.returncode, "stderr": stderr, "seconds": seconds, "frames": frames,
            "rss_warm_kb": warm, "rss_end_kb": end, "growth": end / warm - 1.0}


def main() -> None:
    if sys.argv[1:2] == ["--send"]:
        send_random(int(sys.argv[2]), float(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=200, help="OSC messages per second")
    ap.add_argument("--reference", type=Path,
                    default=Path(os.environ.get("AUTOLUME_REFERENCE", REPO.parent / "shared" / "reference")))
    ap.add_argument("--model", type=Path, help="another model file instead of the tiny reference")
    args = ap.parse_args()
    r = soak(args.reference, args.frames, args.rate, args.model and args.model.resolve())
    fps = r["frames"] / r["seconds"]
    print(f"{r['frames']} frames in {r['seconds']:.0f} s ({fps:.0f} fps), exit {r['returncode']}")
    print(f"RSS after warm-up {r['rss_warm_kb'] / 1024:.1f} MiB, at the end {r['rss_end_kb'] / 1024:.1f} MiB "
          f"({100 * r['growth']:+.2f}%)")
    if "Traceback" in r["stderr"]:
        print(r["stderr"])


if __name__ == "__main__":
    main()
