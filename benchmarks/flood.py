"""Hostile OSC at 5,000 datagrams/s while rendering: no crash, valid messages applied, CPU per frame.

A sender process fires random datagrams (garbage bytes, truncated messages, wrong types, unknown
addresses, valid values for bound parameters) at `--rate` per second. The graph is the tiny
reference model at 64 px with an animated seed, stepped at `--fps`. Quiet and flooded slots of
`SLOT_SECONDS` alternate for `--seconds` of each kind. In a quiet slot the same sender sends the same
mix but aims all but its valid messages at a closed port (the same parameter changes at the same
pace, the same sending work on this 2-core machine), so what differs is the garbage arriving. Slots
are short so that the neighbours' slow spells (seconds long on a shared machine) weigh on both kinds
alike; a frame counts for the slot it starts and ends in, from `GUARD_SECONDS` after the slot began
(the server's queue has switched by then). The figure compared is the render thread's own CPU time per
frame (`time.thread_time()` around `runtime.step()`, torch on one thread so the whole frame's work is
on that thread), the median of each kind: wall-clock fps on a shared 2-core machine measures the
neighbours. After the flood the sender sends final values; each must be the parameter's value.

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
SLOT_SECONDS = 0.5  # quiet and flooded slots alternate this often
GUARD_SECONDS = 0.03  # frames starting this soon after a slot began are not counted (the queue switches)


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


def send(host: str, port: int, rate: float, seconds: float) -> None:
    """The sender process: random datagrams at `rate`/s in alternating quiet and flooded slots from the
    monotonic time the parent writes on stdin, then each target's final value a few times.

    In quiet slots all but the valid messages go to a closed port: the same parameter changes at the
    same pace and the same sending work, without the garbage arriving.
    """
    rng = random.Random(7)
    decoy = (host, _closed_port())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    time.sleep(max(0.0, start - time.monotonic()))
    sent = {"quiet": 0, "flooded": 0}
    total, k = int(2 * rate * seconds), 0
    while k < total:
        now = time.monotonic()
        due = min(total, int((now - start) * rate) + 1)
        kind = slot_kind(now - start)
        for _ in range(due - k):
            datagram = _random_datagram(rng)
            valid = datagram.startswith(b"/") and not datagram.startswith(b"/nobody") and len(datagram) % 4 == 0 \
                and b",f" in datagram
            sock.sendto(datagram, decoy if kind == "quiet" and not valid else (host, port))
        sent[kind] += due - k
        k = due
        time.sleep(0.0005)
    for _ in range(5):
        for address, _, _, final in TARGETS:
            sock.sendto(osc_message(address, "f", final), (host, port))
        time.sleep(0.02)
    print(json.dumps(sent), flush=True)


def slot_kind(elapsed: float) -> str:
    """Which kind of slot `elapsed` seconds after the start falls in."""
    return "flooded" if int(elapsed // SLOT_SECONDS) % 2 else "quiet"


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _frames(runtime: Any, port: int, rate: float, seconds: float, fps: float) -> dict[str, Any]:
    """Step at `fps` while the sender alternates slots: each kind's frames' CPU ms, fps and sending rate."""
    sender = subprocess.Popen([sys.executable, __file__, "--send", str(port), str(rate), str(seconds)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    sender.stdout.readline()
    start = time.monotonic() + 0.2
    sender.stdin.write(f"{start}\n")
    sender.stdin.close()
    cpu_ms: dict[str, list[float]] = {"quiet": [], "flooded": []}
    next_frame = start
    time.sleep(max(0.0, start - time.monotonic()))
    while time.monotonic() < start + 2 * seconds:
        began, t0 = time.monotonic(), time.thread_time()
        runtime.step()
        ms, ended = 1000 * (time.thread_time() - t0), time.monotonic()
        slot = (began - start) // SLOT_SECONDS
        if slot == (ended - start) // SLOT_SECONDS and began - start - slot * SLOT_SECONDS >= GUARD_SECONDS:
            cpu_ms[slot_kind(began - start)].append(ms)
        next_frame += 1.0 / fps
        time.sleep(max(0.0, next_frame - time.monotonic()))
    sent = json.loads(sender.stdout.read())
    sender.wait(timeout=30)
    return {kind: {"cpu_ms_per_frame": statistics.median(ms), "fps": len(ms) / seconds,
                   "frames": len(ms), "sent_per_s": sent[kind] / seconds} for kind, ms in cpu_ms.items()}


def measure(reference: Path, seconds: float, rate: float = 5000, fps: float = 60) -> dict[str, Any]:
    """`seconds` of quiet and of flooded slots; the figures, the final parameter values and the server's counters."""
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
        kinds = _frames(session.runtime, session.osc_server.address[1], rate, seconds, fps)
        quiet, flooded = kinds["quiet"], kinds["flooded"]
        for _ in range(10):  # the last datagrams reach the mailbox and are applied
            session.runtime.step()
            time.sleep(0.01)
        values = {address: graph.node(address.split("/")[1]).values[address.split("/")[2]]
                  for address, *_ in TARGETS}
        return {"quiet": quiet, "flooded": flooded,
                "cpu_ratio": flooded["cpu_ms_per_frame"] / quiet["cpu_ms_per_frame"], "values": values,
                "server_running": session.osc_server.running, "counts": session.mailbox.counts(),
                "errors": {n.name: n.error for n in graph.nodes.values() if n.error}}
    finally:
        session.close()


def main() -> None:
    if sys.argv[1:2] == ["--send"]:
        send("127.0.0.1", int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60, help="time of each kind of slot, in all")
    ap.add_argument("--rate", type=float, default=5000, help="datagrams per second")
    ap.add_argument("--reference", type=Path,
                    default=Path(os.environ.get("AUTOLUME_REFERENCE", REPO.parent / "shared" / "reference")))
    args = ap.parse_args()
    result = measure(args.reference, args.seconds, args.rate)
    q, f = result["quiet"], result["flooded"]
    for kind, figures in (("quiet", q), ("flooded", f)):
        print(f"{kind + ':':9}{figures['cpu_ms_per_frame']:.3f} ms CPU/frame (median of {figures['frames']} frames), "
              f"{figures['fps']:.1f} fps, {figures['sent_per_s']:.0f} datagrams/s sent")
    print(f"CPU per frame: {100 * (result['cpu_ratio'] - 1):+.1f}% ({SLOT_SECONDS} s slots alternating)")
    print(f"final values: {result['values']}  server running: {result['server_running']}")
    print(f"counters: {result['counts']}")


if __name__ == "__main__":
    main()
