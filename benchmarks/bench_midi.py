"""MIDI in: what a frame pays to read a port (idle, a busy controller, a flood), and how close MIDI clock's
tempo comes to the sender's, on a private JACK server (dummy driver, 48 kHz, 256-frame periods).

Run: python benchmarks/bench_midi.py [--seconds S]

The frame's cost is a MIDIIn cook plus the MIDIControl frame hook with one bound parameter, both reading
the same shared port: taking what rtmidi queued, decoding it, applying the latest value. (A flood past what
a frame takes, QUEUE messages, overflows rtmidi's queue: RtMidi then writes a line to stderr per message lost.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SERVER = f"autolume-bench-{os.getpid()}"


def frames(step, seconds: float) -> list[float]:
    costs, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        step()
        costs.append((time.perf_counter() - start) * 1e3)
        time.sleep(1 / 60)
    return costs


def line(label: str, costs: list[float]) -> None:
    costs = sorted(costs)
    print(f"{label:<34} median {statistics.median(costs):6.3f} ms   p99 {costs[int(0.99 * len(costs))]:6.3f} ms"
          f"   max {costs[-1]:6.3f} ms   ({len(costs)} frames)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    os.environ["JACK_DEFAULT_SERVER"], os.environ["JACK_NO_START_SERVER"] = SERVER, "1"
    jackd = subprocess.Popen([shutil.which("jackd") or "jackd", "--no-realtime", "-n", SERVER, "-d", "dummy",
                              "-r", "48000", "-p", "256"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        run(args.seconds)
    finally:
        jackd.terminate()
        jackd.wait(5)


def run(seconds: float) -> None:
    from autolume_graph.commands import SetMidiBinding
    from autolume_graph.graph import Edge, Graph
    from autolume_graph.params import MidiBinding
    from autolume_graph.registry import default_registry
    from autolume_graph.runtime import Runtime
    from autolume_graph.session import Session
    from tests.engine_nodes import Sink
    from tests.midi_support import Controller

    controller = Controller()
    graph = Graph()
    node = graph.add_node(default_registry().create("MIDIIn"), name="knob")
    node.set_value("port", controller.name)
    sink = graph.add_node(Sink(), name="sink")
    graph.add_edge(Edge(node.id, "value", sink.id, "value"))
    lfo = graph.add_node(default_registry().create("LFO"), name="lfo")
    session = Session(Runtime(graph, fps=0), osc=False)
    session.runtime.call(SetMidiBinding(lfo.id, "phase", MidiBinding(controller.name, 0, "cc", 1)))
    step = session.runtime.step
    while node.status != f"jack: {controller.name}":
        step()
        time.sleep(0.01)
    hook = [0.0]
    midi = session.midi

    def timed_hook(runtime) -> None:
        start = time.perf_counter()
        midi(runtime)
        hook[0] = (time.perf_counter() - start) * 1e3

    session.runtime.frame_hooks[session.runtime.frame_hooks.index(midi)] = timed_hook

    def cook_cost() -> float:
        return node.cook_ms + hook[0]

    def measured(label: str, rate: float) -> None:
        stop = threading.Event()

        def send() -> None:  # in bursts each 10 ms: `rate` messages a second
            burst, i = max(1, int(rate / 100)), 0
            while not stop.is_set():
                for _ in range(burst):
                    controller.cc(1, i % 128)
                    i += 1
                time.sleep(0.01)

        sender = threading.Thread(target=send)
        sender.start()
        costs: list[float] = []
        frames(lambda: (step(), costs.append(cook_cost())), seconds)
        stop.set()
        sender.join()
        line(label, costs)

    costs: list[float] = []
    frames(lambda: (step(), costs.append(cook_cost())), seconds)
    line("idle port (MIDIIn + bindings)", costs)
    measured("controller at 500 msg/s", 500.0)
    measured("flood at 20000 msg/s", 20000.0)
    measured("flood at 100000 msg/s", 100000.0)
    session.close()

    clock_graph = Graph()
    clock = clock_graph.add_node(default_registry().create("MIDIClock"), name="clock")
    clock.set_value("port", controller.name)
    clock_sink = clock_graph.add_node(Sink(), name="sink")
    clock_graph.add_edge(Edge(clock.id, "bpm", clock_sink.id, "value"))
    runtime = Runtime(clock_graph, fps=0)
    while clock.status != f"jack: {controller.name}":
        runtime.step()
        time.sleep(0.01)
    for bpm in (90.0, 120.0, 174.0):
        controller.send(0xFA)
        tick, sent, start, heard = 60.0 / (bpm * 24), 0, time.perf_counter(), []
        while time.perf_counter() - start < seconds:
            controller.send(0xF8)
            sent += 1
            while time.perf_counter() < start + sent * tick:
                runtime.step()
                if clock.tempo is not None and sent > 48:
                    heard.append(clock.tempo.bpm)
                time.sleep(0.002)
        errors = [abs(b - bpm) for b in heard]
        print(f"MIDI clock at {bpm:5.1f} bpm: heard median {statistics.median(heard):7.2f}, worst error "
              f"{max(errors):5.2f} bpm after the first two beats ({len(heard)} frames)")
    runtime.close()
    controller.close()


if __name__ == "__main__":
    main()
