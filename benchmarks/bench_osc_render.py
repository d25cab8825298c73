"""OSC flood while the default graph renders: fps with and without, last values applied, latency.

A separate process sends `--rate` messages/s for `--seconds` to several bound parameters of the
running default graph (on the CPU here). We compare the render fps of a quiet phase and a flooded
phase of equal length. In the quiet phase the same parameters change at a performer's pace
(`--quiet-rate`, default 480 messages/s: each of the 8 addresses about once per frame at 60 fps),
so both phases re-render the same changes and what differs is the flood itself. We check each
parameter ends on the last value sent, and report latency from the datagram's arrival to the drain at the
start of the frame that applied it, and to the end of that frame.

    python benchmarks/bench_osc_render.py --rate 5000 --seconds 10
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

from bench_osc import percentile, sender

from autolume_graph.commands import SetBinding
from autolume_graph.graph_files import open_graph
from autolume_graph.params import Binding
from autolume_graph.runtime import Runtime
from autolume_graph.session import Session

# parameters of the default graph; each must end on the last value sent, as its range coerces it
TARGETS = [("mapping", "psi"), ("generate", "noise_strength"), ("generate", "translate_x"), ("seed", "speed"),
           ("generate", "translate_y"), ("generate", "rotate"), ("seed", "drag"), ("seed", "seed")]


def run_phase(session: Session, seconds: float, fps: float) -> tuple[int, list[float], list[float]]:
    """Step the runtime at `fps` for `seconds`; return frames and the two latency lists (s)."""
    runtime, control = session.runtime, session.control
    to_drain: list[float] = []
    to_done: list[float] = []
    frames = 0
    end = time.perf_counter() + seconds
    next_frame = time.perf_counter()
    while time.perf_counter() < end:
        before = len(control.latencies)
        start = time.perf_counter()
        runtime.step()
        done = time.perf_counter()
        frames += 1
        fresh = list(control.latencies)[before:]
        to_drain += fresh
        to_done += [lat + (done - start) for lat in fresh]
        if fps > 0:
            next_frame += 1.0 / fps
            time.sleep(max(0.0, next_frame - time.perf_counter()))
    return frames, to_drain, to_done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--quiet-rate", type=float, default=480, help="messages/s in the quiet phase")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--fps", type=float, default=0, help="target fps (0: as fast as the CPU renders)")
    args = ap.parse_args()

    graph = open_graph("default")
    session = Session(Runtime(graph, fps=args.fps, device="cpu"), osc_port=0, oscquery_port=0)
    for node in graph.nodes.values():
        node.prepare("cpu")
    for i, (node_name, param) in enumerate(TARGETS):
        session.runtime.call(SetBinding(graph.node(node_name).id, param, Binding(True, f"/bench/p{i}", "x")))
    session.start_services()
    run_phase(session, 2.0, args.fps)  # warm up
    ctx = mp.get_context("spawn")
    results: mp.Queue = ctx.Queue()

    def flood(port: int, rate: float) -> mp.Process:
        proc = ctx.Process(target=sender, args=(host, port, rate, args.seconds, len(TARGETS), results))
        proc.start()
        time.sleep(0.5)  # the sender process starting up
        return proc

    host, port = session.osc_server.address
    paced = flood(port, args.quiet_rate)
    quiet_frames, _, _ = run_phase(session, args.seconds, args.fps)
    results.get(timeout=60)
    paced.join()
    proc = flood(port, args.rate)
    flood_frames, to_drain, to_done = run_phase(session, args.seconds, args.fps)
    report = results.get(timeout=60)
    proc.join()
    run_phase(session, 0.5, args.fps)  # let the tail arrive
    wrong = {}
    for i, (node_name, param) in enumerate(TARGETS):
        node = graph.node(node_name)
        value, sent = node.values[param], report["last"].get(f"/bench/p{i}")
        expected = None if sent is None else node.params[param].coerce(sent)
        if expected is not None and value != expected:
            wrong[f"{node_name}.{param}"] = (value, expected)
    counts = session.mailbox.counts()
    session.close()

    quiet_fps, flood_fps = quiet_frames / args.seconds, flood_frames / args.seconds
    ms = 1000.0
    print(f"default graph on cpu: paced ({args.quiet_rate:g}/s) {quiet_fps:.2f} fps, "
          f"flooded ({args.rate:g}/s) {flood_fps:.2f} fps "
          f"({100 * (flood_fps / quiet_fps - 1):+.1f}%), frame period {ms / flood_fps:.1f} ms")
    print(f"sender: {report['sent']} messages in {report['elapsed']:.1f} s over {len(TARGETS)} addresses; "
          f"server received {counts.get('received', 0)}")
    print(f"last value of every address applied: {'yes' if not wrong else f'NO {wrong}'}")
    for name, lat in (("arrival -> drain (frame start)", to_drain), ("arrival -> frame done", to_done)):
        print(f"{name:>31}: p50 {percentile(lat, 0.5) * ms:7.1f} ms  p99 {percentile(lat, 0.99) * ms:7.1f} ms"
              f"  (n={len(lat)})")


if __name__ == "__main__":
    main()
