"""MIDI clock in: a real JACK port sending 24 ticks a beat, start, stop, song position and continue into a
MIDIClock node (a tempo source); and the follower's arithmetic on exact times."""

from __future__ import annotations

import threading
import time

import pytest

from autolume_graph.graph import Edge, Graph
from autolume_graph.midi.clock import PPQ, ClockFollower
from autolume_graph.midi.events import MidiEvent
from autolume_graph.registry import default_registry
from autolume_graph.roles import Role
from autolume_graph.runtime import Runtime
from autolume_graph.tempo.wires import Tempo
from tests.engine_nodes import Sink
from tests.midi_support import Controller, step_until

CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2


def ticks(follower: ClockFollower, count: int, bpm: float, start: float = 0.0) -> float:
    """Feed `count` ticks at `bpm` from `start`; the time of the last."""
    step = 60.0 / (bpm * PPQ)
    for i in range(count):
        follower.follow(MidiEvent("clock", 0, 0, 0, start + i * step))
    return start + (count - 1) * step


def test_the_follower_measures_counts_and_holds() -> None:
    follower = ClockFollower()
    assert follower.tempo(0.0) is None
    follower.follow(MidiEvent("start", 0, 0, 0, 0.0))
    last = ticks(follower, 48, 120.0)
    tempo = follower.tempo(last)
    assert tempo.bpm == pytest.approx(120.0) and tempo.playing and tempo.source == "midi clock"
    assert tempo.beat == pytest.approx(2.0)
    assert follower.tempo(last + 10.0).beat < 2.0 + 1 / PPQ  # between ticks, never past the next one
    last = ticks(follower, 96, 90.0, last + 60.0 / (90 * PPQ))  # the tempo changes: two beats later, it is it
    assert follower.tempo(last).bpm == pytest.approx(90.0)
    follower.follow(MidiEvent("stop", 0, 0, 0, last))
    held = follower.tempo(last + 5.0)
    assert not held.playing and held.beat == pytest.approx(6.0)
    follower.follow(MidiEvent("song position", 0, 0, 16, last))  # sixteen sixteenths: four beats
    follower.follow(MidiEvent("continue", 0, 0, 0, last))
    assert follower.tempo(last).beat == pytest.approx(4.0) and follower.tempo(last).playing
    late = ticks(follower, 30, 140.0, last + 5.0)  # after a gap the window starts afresh
    assert follower.tempo(late).bpm == pytest.approx(140.0)


class Sender:
    """Sends MIDI clock at `bpm` from a thread, on an absolute schedule (a late tick does not shift the rest)."""

    def __init__(self, controller: Controller, bpm: float) -> None:
        self.controller, self.step = controller, 60.0 / (bpm * PPQ)
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.perf_counter()
        while not self._stop.is_set():
            self.controller.send(CLOCK)
            self.sent += 1
            delay = start + self.sent * self.step - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_clock_at_120_bpm_from_a_real_port(jack_server) -> None:
    controller = Controller(port="clock")
    graph = Graph()
    clock = graph.add_node(default_registry().create("MIDIClock"), name="clock")
    clock.set_value("port", controller.name)
    sink = graph.add_node(Sink(), name="sink")
    graph.add_edge(Edge(clock.id, "bpm", sink.id, "value"))
    assert Role.TEMPO_SOURCE in clock.roles
    runtime = Runtime(graph, fps=0)
    sender = None
    try:
        step_until(runtime.step, lambda: clock.status == f"jack: {controller.name}", "the port")
        assert clock.tempo is None and clock.last_outputs["bpm"] == 0.0
        controller.send(START)
        sender = Sender(controller, 120.0)
        step_until(runtime.step, lambda: sender.sent >= 5 * PPQ, "five beats sent", timeout=20)
        step_until(runtime.step, lambda: clock.tempo is not None and clock.tempo.beat >= 4.5, "five beats heard")
        tempo = clock.tempo
        assert isinstance(tempo, Tempo) and tempo.playing and tempo.source == "midi clock"
        assert 110.0 < tempo.bpm < 130.0, tempo
        assert clock.last_outputs["tempo"] is tempo and clock.last_outputs["playing"] is True
        assert clock.last_outputs["bpm"] == tempo.bpm and "bpm" in clock.status

        controller.send(STOP)  # the clock keeps ticking while stopped, as most devices' does
        step_until(runtime.step, lambda: clock.tempo.playing is False, "stopped")
        held = clock.tempo.beat
        time.sleep(0.3)
        step_until(runtime.step, lambda: True, "a frame")
        assert clock.tempo.beat == held and not clock.last_outputs["playing"] and clock.tempo.bpm > 100
        assert "stopped" in clock.status

        controller.send(SONG_POSITION, 16, 0)  # bar 2 (sixteen sixteenths), then continue from there
        controller.send(CONTINUE)
        step_until(runtime.step, lambda: clock.tempo.playing and clock.tempo.beat >= 4.5, "continued")
        assert clock.tempo.beat < 8.0 and clock.error == ""
    finally:
        if sender is not None:
            sender.stop()
        runtime.close()
        controller.close()
