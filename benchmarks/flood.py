"""Hostile OSC at 5,000 datagrams/s while rendering: no crash, valid messages applied, CPU per frame.

A sender process fires random datagrams (garbage bytes, truncated messages, wrong types, unknown
addresses, valid values for bound parameters) at `--rate` per second. The graph is the tiny
reference model at 64 px with an animated seed, stepped at `--fps`. Quiet and flooded phases of
`--seconds` in all each, in `ROUNDS` alternating rounds. Quiet: the same sender sends the same mix but aims all
but its valid messages at a closed port (the same parameter changes at the same pace, the same
sending work on this 2-core machine), so what differs is the garbage arriving. Each round compares the
two kinds' median CPU per frame; the median of the rounds' ratios is the figure, so one slow spell of
the neighbours (one round) does not decide it. The figure compared is the render thread's own CPU time
per frame (`time.thread_time()` around `runtime.step()`, torch on one thread so the whole frame's
work is on that thread): wall-clock fps on a shared 2-core machine measures the neighbours.
After the flood the sender sends final values; each must be the parameter's value.

    python benchmarks/flood.py --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

# (address, lo, hi, final value) of bound parameters of the generator graph
TARGETS = [("/mapping/psi", 0.0, 2.0, 0.625), ("/generate/noise_strength", 0.0, 2.0, 1.25),
           ("/seedlatent/seed", 0.0, 100000.0, 4242.0)]
ROUNDS = 4  # quiet/flooded pairs per measurement


def osc_message(address: str, tags: str, *args: Any) -> bytes:
    """An OSC message with float (f) and string (s) arguments, encoded by hand: no library checks."""
    def pad(b: bytes) -> bytes:
        return b + b"\0" * (4 - len(b) % 4)
    body = b"".join(struct.pack(">f", a) if t == "f" else pad(a.encode()) for t, a in zip(tags, args, strict=True))
    return pad(address.encode()) + pad(("," + tags).encode()) + body


def _random_datagram(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    address, lo, hi, _ = rng.choice(TARGETS)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 200))
    if kind == 1:
        return osc_message(address, "f", rng.uniform(lo, hi))[: rng.randrange(1, 12)]  # truncated
    if kind == 2:
        return osc_message(address, "s", "not a number")
    if kind == 3:
        return osc_message(f"/nobody/{rng.randrange(100)}", "f", 1.0)
    if kind == 4:
        return b"#bundle\0" + rng.randbytes(rng.randrange(0, 60))
    return osc_message(address, "f", rng.uniform(lo, hi))


def send(host: str, port: int, rate: float, seconds: float, valid_only: bool = False) -> None:
    """The sender process: random datagrams at `rate`/s, then each target's final value a few times.

    `valid_only` sends the same mix but aims all but its valid messages at a closed port: the same
    parameter changes at the same pace and the same sending work, without the garbage arriving.
    """
    rng = random.Random(7)
    decoy = (host, _closed_port())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    print("sending", flush=True)
    total, k, start = int(rate * seconds), 0, time.perf_counter()
    while k < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        for _ in range(due - k):
            datagram = _random_datagram(rng)
            valid = datagram.startswith(b"/") and not datagram.startswith(b"/nobody") and len(datagram) % 4 == 0 \
                and b",f" in datagram
            sock.sendto(datagram, decoy if valid_only and not valid else (host, port))
        k = due
        time.sleep(0.0005)
    for _ in range(5):
        for address, _, _, final in TARGETS:
            sock.sendto(osc_message(address, "f", final), (host, port))
        time.sleep(0.02)
    print(json.dumps({"sent": k, "elapsed": time.perf_counter() - start}), flush=True)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _phase(runtime: Any, port: int, rate: float, seconds: float, fps: float, valid_only: bool) -> dict[str, Any]:
    """Step at `fps` while a sender sends to `port`: this thread's CPU ms of each frame, and wall fps."""
    args = [sys.executable, __file__, "--send", str(port), str(rate), str(seconds)] + ["--valid-only"] * valid_only
    sender = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    sender.stdout.readline()  # frames count from the first datagram on, not while the sender starts
    cpu_ms: list[float] = []
    start = next_frame = time.perf_counter()
    while sender.poll() is None:
        t0 = time.thread_time()
        runtime.step()
        cpu_ms.append(1000 * (time.thread_time() - t0))
        next_frame += 1.0 / fps
        time.sleep(max(0.0, next_frame - time.perf_counter()))
    wall = time.perf_counter() - start
    sent = json.loads(sender.stdout.read())["sent"]
    return {"cpu_ms": cpu_ms, "fps": len(cpu_ms) / wall, "sent_per_s": sent / seconds}


def _combine(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """One kind of phase over its rounds: the median CPU per frame, mean fps, the slowest sending rate."""
    return {"cpu_ms_per_frame": statistics.median(ms for one in rounds for ms in one["cpu_ms"]),
            "fps": statistics.fmean(one["fps"] for one in rounds),
            "sent_per_s": min(one["sent_per_s"] for one in rounds)}


def measure(reference: Path, seconds: float, rate: float = 5000, fps: float = 60) -> dict[str, Any]:
    """Quiet then flooded phase; the figures, the final parameter values and the server's counters."""
    import torch
    from generator_graph import generator_graph

    from autolume_graph.runtime import Runtime
    from autolume_graph.session import Session

    torch.set_num_threads(1)
    graph = generator_graph(reference, anim=True, speed=3.0)
    session = Session(Runtime(graph, fps=fps), osc_host="127.0.0.1", osc_port=0, preset_dir=reference / "none")
    session.start_services()
    try:
        for _ in range(30):  # warm-up
            session.runtime.step()
        # alternate quiet and flooded rounds, so a slow spell of the neighbours weighs on both kinds
        phases: dict[str, list[dict[str, Any]]] = {"quiet": [], "flooded": []}
        port = session.osc_server.address[1]
        for _ in range(ROUNDS):
            phases["quiet"].append(_phase(session.runtime, port, rate, seconds / ROUNDS, fps, valid_only=True))
            phases["flooded"].append(_phase(session.runtime, port, rate, seconds / ROUNDS, fps, valid_only=False))
        quiet, flooded = _combine(phases["quiet"]), _combine(phases["flooded"])
        ratio = statistics.median(statistics.median(f["cpu_ms"]) / statistics.median(q["cpu_ms"])
                                  for q, f in zip(phases["quiet"], phases["flooded"], strict=True))
        for _ in range(10):  # the last datagrams reach the mailbox and are applied
            session.runtime.step()
            time.sleep(0.01)
        values = {address: graph.node(address.split("/")[1]).values[address.split("/")[2]]
                  for address, *_ in TARGETS}
        return {"quiet": quiet, "flooded": flooded, "cpu_ratio": ratio, "values": values,
                "server_running": session.osc_server.running, "counts": session.mailbox.counts(),
                "errors": {n.name: n.error for n in graph.nodes.values() if n.error}}
    finally:
        session.close()


def main() -> None:
    if sys.argv[1:2] == ["--send"]:
        send("127.0.0.1", int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), "--valid-only" in sys.argv)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60, help="length of each phase")
    ap.add_argument("--rate", type=float, default=5000, help="datagrams per second")
    ap.add_argument("--reference", type=Path,
                    default=Path(os.environ.get("AUTOLUME_REFERENCE", REPO.parent / "shared" / "reference")))
    args = ap.parse_args()
    result = measure(args.reference, args.seconds, args.rate)
    q, f = result["quiet"], result["flooded"]
    print(f"quiet:   {q['cpu_ms_per_frame']:.3f} ms CPU/frame, {q['fps']:.1f} fps")
    print(f"flooded: {f['cpu_ms_per_frame']:.3f} ms CPU/frame, {f['fps']:.1f} fps, {f['sent_per_s']:.0f} datagrams/s")
    print(f"CPU per frame: {100 * (result['cpu_ratio'] - 1):+.1f}% (median of {ROUNDS} rounds' ratios)")
    print(f"final values: {result['values']}  server running: {result['server_running']}")
    print(f"counters: {result['counts']}")


if __name__ == "__main__":
    main()
