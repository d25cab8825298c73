"""Tempo lock: the manual Tempo node on a fixed-step runtime drives LFO and loops by the beat, and Perfect Loop
pulses (real UDP OSC on 127.0.0.1) arrive exactly on the bar frames."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from osc_receiver import received

from autolume_graph.graph import Edge, Graph
from autolume_graph.node import CookContext, Node
from autolume_graph.params import Input
from autolume_graph.registry import default_registry
from autolume_graph.render import loop_seconds
from autolume_graph.runtime import Runtime
from autolume_graph.serialize import graph_from_dict, graph_to_dict
from autolume_graph.tempo.lock import STEP_BACK_BEATS, BeatFollower
from autolume_graph.tempo.wires import Tempo
from autolume_graph.types import PortType

FPS = 10.0
BPM = 120.0  # 2 beats a second: 0.2 beats a frame, a 4-beat bar every 20 frames


class Record(Node):
    """Test sink: each frame, what arrives on each wired port."""

    sink = True
    time_dependent = True
    inputs = {port: Input(PortType.ANY) for port in ("beat", "bar", "tick", "lfo", "alpha")}

    def reset(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self.frames.append({"frame": ctx.frame, **inputs})
        return {}

    def column(self, port: str) -> list[Any]:
        return [f[port] for f in self.frames]

    def fired(self, port: str) -> list[int]:
        return [f["frame"] for f in self.frames if f[port]]


def make(type_name: str, **values: Any) -> Node:
    node = default_registry().create(type_name)
    for name, value in values.items():
        node.set_value(name, value)
    return node


class Patch:
    """A Tempo node, whatever locks to it, and a Record sink, on a fixed-step runtime."""

    def __init__(self, **tempo_values: Any) -> None:
        self.graph = Graph()
        self.tempo = self.graph.add_node(make("Tempo", bpm=BPM, **tempo_values), name="tempo")
        self.record = self.graph.add_node(Record(), name="record")
        for port in ("beat", "bar", "tick"):
            self.wire(self.tempo, port, self.record, port)

    def wire(self, src: Node, src_port: str, dst: Node, dst_port: str) -> None:
        self.graph.add_edge(Edge(src.id, src_port, dst.id, dst_port))

    def locked(self, type_name: str, port: str, **values: Any) -> Node:
        """A node of `type_name` locked to the tempo, its `port` recorded as `lfo` or `alpha`."""
        node = self.graph.add_node(make(type_name, **values))
        self.wire(self.tempo, "tempo", node, "tempo")
        self.wire(node, port, self.record, "alpha" if port == "alpha" else "lfo")
        return node

    def run(self, frames: int, receiver: socket.socket | None = None, between: Any = None) -> list[int]:
        """Step `frames` frames (calling `between(frame)` before each); the frames a pulse arrived after."""
        runtime = Runtime(self.graph, fps=FPS, fixed_step=True)
        pulsed = []
        try:
            for frame in range(frames):
                if between is not None:
                    between(frame)
                snapshot = runtime.step()
                assert not any(n.error for n in self.graph.nodes.values()), [n.error for n in self.graph.nodes.values()]
                for message in received(receiver) if receiver is not None else ():
                    assert message.address == "/test/bar" and message.params == [1]
                    pulsed.append(snapshot.frame)
        finally:
            runtime.close()
        return pulsed


def _perfect_loop(receiver: socket.socket) -> dict[str, Any]:
    return {"perfect_loop": True, "osc_port": receiver.getsockname()[1], "osc_address": "/test/bar"}


def test_tempo_counts_beats_and_bars_on_the_fixed_step_clock():
    patch = Patch()
    patch.run(101)
    beats = patch.record.column("beat")
    assert beats == pytest.approx([0.2 * i for i in range(101)], abs=1e-9)
    assert patch.record.fired("bar") == [20, 40, 60, 80, 100]
    assert patch.record.fired("tick") == list(range(5, 101, 5))
    assert patch.tempo.tempo == Tempo(BPM, pytest.approx(20.0), True, 4.0, "tempo")


@pytest.mark.parametrize("beats", [4.0, 2.0, 8.0])
def test_a_locked_lfo_cycles_every_n_beats_whatever_its_frequency(beats):
    patch = Patch()
    patch.locked("LFO", "value", wave="saw", frequency=3.0, beats=beats)
    patch.run(60)
    expected = [2 * ((0.2 * i / beats) % 1.0) - 1 for i in range(60)]
    assert patch.record.column("lfo") == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("type_name,beats,bars", [("NoiseLoop", 8.0, [40, 80, 120]),
                                                  ("KeyframeLoop", 4.0, [20, 40, 60, 80, 100, 120])])
def test_perfect_loop_fires_on_the_bar(receiver, type_name, beats, bars):
    patch = Patch()
    loop = patch.locked(type_name, "alpha", beats=beats, time=3.3, **_perfect_loop(receiver))
    pulsed = patch.run(121, receiver)
    assert pulsed == bars
    assert set(pulsed) <= set(patch.record.fired("bar"))
    alphas = patch.record.column("alpha")
    assert alphas == pytest.approx([(0.2 * i / beats) % 1.0 for i in range(121)], abs=1e-9)
    assert loop.cycle_seconds(loop.values) == pytest.approx(beats * 60 / BPM)


def test_a_tempo_change_bends_the_loop_and_a_stopped_tempo_holds_it():
    patch = Patch()
    patch.locked("NoiseLoop", "alpha", beats=16.0)

    def between(frame: int) -> None:
        if frame == 30:
            patch.tempo.set_value("bpm", 60.0)  # 0.1 beats a frame
        if frame == 50:
            patch.tempo.set_value("playing", False)
        if frame == 60:
            patch.tempo.set_value("playing", True)

    patch.run(80, between=between)
    alphas = patch.record.column("alpha")
    steps = [b - a for a, b in zip(alphas, alphas[1:], strict=False)]
    assert all(step >= -1e-12 for step in steps), "the loop never runs backwards (no wrap before beat 16)"
    assert steps[:29] == pytest.approx([0.2 / 16] * 29)
    assert steps[30:49] == pytest.approx([0.1 / 16] * 19)
    assert steps[50:59] == pytest.approx([0.0] * 9)  # stopped: held
    assert steps[60:] == pytest.approx([0.1 / 16] * 19)  # playing again: on from where it held
    beats = patch.record.column("beat")
    assert beats[50:61] == pytest.approx([beats[50]] * 11)


def test_a_restart_takes_the_loop_to_its_start_without_a_pulse(receiver):
    patch = Patch()
    patch.locked("NoiseLoop", "alpha", beats=8.0, **_perfect_loop(receiver))
    pulsed = patch.run(40, receiver, between=lambda frame: frame == 30 and patch.tempo.set_value("restart", True))
    assert pulsed == []
    alphas = patch.record.column("alpha")
    assert alphas[29] == pytest.approx(29 * 0.2 / 8) and alphas[30] == 0.0 and alphas[31] == pytest.approx(0.2 / 8)


def test_the_follower_holds_small_steps_back_and_follows_restarts():
    follower = BeatFollower()
    assert follower.follow(Tempo(120.0, 10.0)) == 10.0
    assert follower.follow(Tempo(120.0, 10.0 - STEP_BACK_BEATS / 2)) == 10.0  # a reading a little early
    assert follower.follow(Tempo(120.0, 10.1)) == 10.1
    assert follower.follow(Tempo(120.0, 12.0, playing=False)) == 10.1  # stopped: held
    assert follower.follow(Tempo(120.0, 0.0)) == 0.0  # a restart


def test_unlocked_nodes_run_on_seconds_and_hz_as_before():
    patch = Patch()
    loop = patch.graph.add_node(make("NoiseLoop", time=2.0, beats=3.0))
    lfo = patch.graph.add_node(make("LFO", wave="saw", frequency=0.5, beats=3.0))
    patch.wire(loop, "alpha", patch.record, "alpha")
    patch.wire(lfo, "value", patch.record, "lfo")
    patch.run(25)
    assert patch.record.column("alpha") == pytest.approx([(i / FPS / 2.0) % 1.0 for i in range(25)], abs=1e-9)
    assert patch.record.column("lfo") == pytest.approx([2 * ((i / FPS * 0.5) % 1.0) - 1 for i in range(25)])
    assert loop.cycle_seconds(loop.values) == 2.0


def test_render_loop_takes_the_cycle_from_the_wired_tempo():
    patch = Patch(quantum=3.0)
    patch.tempo.set_value("bpm", 90.0)
    patch.locked("KeyframeLoop", "alpha", beats=6.0, time=7.0)
    saved = graph_to_dict(patch.graph)
    assert loop_seconds(graph_from_dict(saved)) == pytest.approx(4.0)  # 6 beats at 90 BPM, before any frame
    saved["edges"] = [e for e in saved["edges"] if e["dst_port"] != "tempo"]
    unlocked = graph_from_dict(saved)
    assert len(unlocked.edges) == len(patch.graph.edges) - 1
    assert loop_seconds(unlocked) == 7.0
