"""MIDIIn: one MIDI control (a CC, a note, pitch bend, aftertouch, a program change) as wires."""

from __future__ import annotations

from typing import Any

from autolume_graph.midi.events import MidiEvent
from autolume_graph.midi.ports import reader_for
from autolume_graph.node import CookContext, Node, NodeState, NodeStatus
from autolume_graph.params import MIDI_KINDS, Choice, DeviceName, Int, Output
from autolume_graph.types import PortType

SCALES = ("0-1", "raw")


class MIDIIn(Node):
    """The latest value of a MIDI control on a port, a trigger when it fires, the velocity and a gate.

    Ports are read off the render thread (autolume_graph/midi/ports.py); a port that is missing or unplugged
    says so on the node and is opened again when it comes back, while the wires keep their last values."""

    category = "midi"
    outputs = {
        "value": Output(PortType.FLOAT, "the control's value: 0..1, or raw (CC 0-127, pitch bend -8192..8191)"),
        "trigger": Output(PortType.TRIGGER, "fires on a note pressed, a program change, or a control rising "
                                            "through its middle"),
        "velocity": Output(PortType.FLOAT, "the latest note-on's velocity, 0..1 (notes only)"),
        "gate": Output(PortType.BOOL, "on while the note is held, or while the control is past its middle"),
    }
    params = {
        "port": DeviceName("", kind="midi in", doc="MIDI input port (empty: the first one found)"),
        "channel": Int(0, 0, 16, doc="MIDI channel 1-16 (0: any channel)"),
        "kind": Choice("cc", MIDI_KINDS, doc="the message to follow"),
        "number": Int(0, 0, 127, doc="the CC or note number (pitch bend, aftertouch and program have none)"),
        "scale": Choice("0-1", SCALES, doc="the value as 0..1, or as the raw MIDI number"),
    }

    def reset(self) -> None:
        self._follows: tuple = ()
        self._last: MidiEvent | None = None
        self._velocity = 0.0

    def animating(self, params: dict[str, Any]) -> bool:
        return True  # a port is read each frame; outputs change (and wake what is wired) only when it sends

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        reader = self._reader = reader_for(getattr(self, "_reader", None), params["port"])
        follows = (params["channel"], params["kind"], params["number"])
        if follows != self._follows:
            self.reset()
            self._follows = follows
        events, missed = reader.read()
        fired = False
        for event in events:
            if not event.matches(*follows):
                continue
            previous = self._last.unit if self._last is not None else 0.0
            fired = fired or event.note_on or event.kind == "program" or (
                event.kind != "note" and previous < 0.5 <= event.unit)
            if event.note_on:
                self._velocity = event.unit
            self._last = event
        flood = f"{missed} messages dropped (flood)" if missed else ""
        self.status = NodeStatus.of(reader.status, flood,
                                    state=NodeState.INFO if reader.port else NodeState.WAITING)
        last = self._last
        if last is None:
            value, gate = 0.0, False
        else:
            value = float(last.value) if params["scale"] == "raw" else last.unit
            gate = last.note_on if last.kind == "note" else last.unit >= 0.5
        return {"value": value, "trigger": fired, "velocity": self._velocity, "gate": gate}

    def close(self) -> None:
        reader, self._reader = getattr(self, "_reader", None), None
        if reader is not None:
            reader.close()
