"""OSC input under load: a separate sender process floods loopback; we drain at frame rate.

Measures the server + mailbox side alone (`bench_osc_render.py` adds the render loop): whether
every address ends on its last value sent, how many messages were lost, the latency from send
(timestamp in the payload) to the drain that hands the value to a frame, and the CPU this process
spends per message (the server thread, plus the drains).

    python benchmarks/bench_osc.py --rate 5000 --seconds 5 --addresses 8 --drain-hz 60 [--batch-seconds S]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

from autolume_graph.osc import server as server_module
from autolume_graph.osc.mailbox import Mailbox
from autolume_graph.osc.server import OSCServer


def sender(host: str, port: int, rate: float, seconds: float, n_addresses: int, out: mp.Queue) -> None:
    """Send `rate` messages/s round-robin over n addresses; report the last seq per address."""
    import socket

    from pythonosc.osc_message_builder import OscMessageBuilder

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addresses = [f"/bench/p{i}" for i in range(n_addresses)]
    total = int(rate * seconds)
    last: dict[str, int] = {}
    start = time.perf_counter()
    k = 0
    while k < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while k < due:
            address = addresses[k % n_addresses]
            b = OscMessageBuilder(address=address)
            b.add_arg(k, "i")
            b.add_arg(time.time(), "d")  # wall clock: comparable across processes
            sock.sendto(b.build().dgram, (host, port))
            last[address] = k
            k += 1
        time.sleep(0.0005)
    out.put({"sent": k, "last": last, "elapsed": time.perf_counter() - start})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=5000, help="messages per second")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--addresses", type=int, default=8)
    ap.add_argument("--drain-hz", type=float, default=60)
    ap.add_argument("--batch-seconds", type=float, default=server_module.BATCH_SECONDS,
                    help="the server's pause after each wake-up (0: wake per datagram, as before batching)")
    args = ap.parse_args()
    server_module.BATCH_SECONDS = args.batch_seconds

    mailbox = Mailbox()
    server = OSCServer(mailbox, port=0)
    server.start()
    host, port = server.address
    ctx = mp.get_context("spawn")
    results: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=sender, args=(host, port, args.rate, args.seconds, args.addresses, results))
    proc.start()
    cpu_start, wall_start = os.times(), time.perf_counter()

    send_to_drain: list[float] = []
    receive_to_drain: list[float] = []
    last_seen: dict[str, int] = {}
    period = 1.0 / args.drain_hz
    next_frame = time.perf_counter()
    report = None
    quiet_until = None
    frames = 0
    while True:
        next_frame += period
        time.sleep(max(0.0, next_frame - time.perf_counter()))
        now_wall, now_mono = time.time(), time.monotonic()
        frames += 1
        for address, (osc_args, t_received) in mailbox.drain().items():
            seq, t_sent = osc_args
            last_seen[address] = max(seq, last_seen.get(address, -1))
            send_to_drain.append(now_wall - t_sent)
            receive_to_drain.append(now_mono - t_received)
        if report is None and not results.empty():
            report = results.get()
            cpu_end, wall_end = os.times(), time.perf_counter()
            quiet_until = time.perf_counter() + 0.3  # let the tail arrive
        if quiet_until is not None and time.perf_counter() > quiet_until:
            break
    proc.join()
    server.stop()

    counts = mailbox.counts()
    sent = report["sent"]
    received = counts.get("received", 0)
    stale = {a: (last_seen.get(a), s) for a, s in report["last"].items() if last_seen.get(a) != s}
    ms = 1000.0
    print(
        f"sender: {sent} messages in {report['elapsed']:.2f} s = {sent / report['elapsed']:.0f}/s "
        f"over {args.addresses} addresses; drained at {args.drain_hz:g} Hz ({frames} frames)"
    )
    print(
        f"server: received {received} ({sent - received} lost, {100 * (sent - received) / sent:.2f}%), "
        f"coalesced {counts.get('coalesced', 0)}, malformed {counts.get('malformed', 0)}"
    )
    print(f"last value per address: {'all correct' if not stale else f'STALE {stale}'}")
    cpu = cpu_end.user + cpu_end.system - cpu_start.user - cpu_start.system
    print(f"this process: {100 * cpu / (wall_end - wall_start):.1f}% of a core, "
          f"{1e6 * cpu / max(received, 1):.1f} us of CPU per message received")
    for name, lat in (("send -> drain", send_to_drain), ("receive -> drain", receive_to_drain)):
        print(
            f"{name:>17}: p50 {percentile(lat, 0.5) * ms:6.2f} ms  p99 {percentile(lat, 0.99) * ms:6.2f} ms  "
            f"max {max(lat) * ms:6.2f} ms  mean {statistics.fmean(lat) * ms:6.2f} ms  (n={len(lat)})"
        )


if __name__ == "__main__":
    main()
