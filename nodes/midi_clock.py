"""MIDIClock: a MIDI clock from a port (a DAW, a drum machine) as a tempo source and as numbers."""

from __future__ import annotations

import time
from typing import Any

from autolume_graph.midi.clock import ClockFollower
from autolume_graph.midi.ports import reader_for
from autolume_graph.node import CookContext, Node, NodeState, NodeStatus
from autolume_graph.params import DeviceName, Int, Output
from autolume_graph.roles import Role
from autolume_graph.tempo.wires import TEMPO, Tempo
from autolume_graph.types import PortType


class MIDIClock(Node):
    """Follows the MIDI clock on a port: its tempo (smoothed over two beats), the beat since start, and
    whether it plays. Before the first ticks the tempo wire carries nothing and the numbers are 0."""

    category = "midi"
    roles = frozenset({Role.TEMPO_SOURCE})
    outputs = {
        "tempo": Output(TEMPO, "bpm, beat and playing, for what locks to a tempo"),
        "bpm": Output(PortType.FLOAT, "beats per minute (0 before the clock is heard)"),
        "beat": Output(PortType.FLOAT, "beats since the last start (fractional; held while stopped)"),
        "playing": Output(PortType.BOOL, "between start (or continue) and stop"),
    }
    params = {
        "port": DeviceName("", kind="midi in", doc="MIDI input port sending clock (empty: the first one found)"),
        "beats_per_bar": Int(4, 1, 16, doc="beats in one bar (the tempo's quantum)"),
    }

    def reset(self) -> None:
        self.tempo: Tempo | None = None
        self._follower = ClockFollower()

    def animating(self, params: dict[str, Any]) -> bool:
        return True

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        reader = self._reader = reader_for(getattr(self, "_reader", None), params["port"])
        follower = self._follower
        follower.quantum = float(params["beats_per_bar"])
        events, missed = reader.read()
        if missed:
            follower.missed()
        for event in events:
            follower.follow(event)
        self.tempo = follower.tempo(time.perf_counter())
        heard = f"{self.tempo.bpm:.1f} bpm{'' if self.tempo.playing else ', stopped'}" if self.tempo else ""
        self.status = NodeStatus.of(reader.status, heard, state=NodeState.INFO if reader.port else NodeState.WAITING)
        if self.tempo is None:
            return {"bpm": 0.0, "beat": 0.0, "playing": False}
        return {"tempo": self.tempo, "bpm": self.tempo.bpm, "beat": self.tempo.beat, "playing": self.tempo.playing}

    def close(self) -> None:
        reader, self._reader = getattr(self, "_reader", None), None
        if reader is not None:
            reader.close()
