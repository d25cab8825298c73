"""MIDI messages as the graph reads them: decoded once, as they are taken from the port, into small immutable
events, so readers only compare fields."""

from __future__ import annotations

from typing import NamedTuple

from autolume_graph.params import MIDI_NUMBERED

PITCH_CENTRE = 8192
PITCH_SPAN = 16383
SONG_POSITION_TICKS = 6  # a song position counts sixteenths: six clock ticks each

# the high nibble of a channel message's status byte -> its kind
_CHANNEL = {0x80: "note", 0x90: "note", 0xA0: "poly aftertouch", 0xB0: "cc", 0xC0: "program",
            0xD0: "aftertouch", 0xE0: "pitch bend"}
_SYSTEM = {0xF8: "clock", 0xFA: "start", 0xFB: "continue", 0xFC: "stop"}
_DATA_BYTES = {0xC0: 1, 0xD0: 1}  # program and channel pressure carry one data byte, the others two


class MidiEvent(NamedTuple):
    """One message: `channel` 1-16 (0 for clock and transport), `number` the CC or note (0 where the kind has
    none), `value` raw (CC value, velocity, pitch bend -8192..8191, pressure, program, song position), `t` the
    time.perf_counter() it arrived."""

    kind: str
    channel: int
    number: int
    value: int
    t: float

    @property
    def unit(self) -> float:
        """The value as 0..1 (pitch bend's centre is 0.5)."""
        if self.kind == "pitch bend":
            return (self.value + PITCH_CENTRE) / PITCH_SPAN
        return min(self.value / 127.0, 1.0)

    @property
    def note_on(self) -> bool:
        return self.kind == "note" and self.value > 0

    @property
    def label(self) -> str:
        """E.g. "ch 1 cc 7" (the monitor's message column)."""
        number = f" {self.number}" if self.kind in MIDI_NUMBERED else ""
        return f"ch {self.channel} {self.kind}{number}" if self.channel else self.kind

    def matches(self, channel: int, kind: str, number: int) -> bool:
        """Whether this is the control a binding or a node follows (channel 0: any channel)."""
        return (self.kind == kind and (channel == 0 or channel == self.channel)
                and (kind not in MIDI_NUMBERED or number == self.number))


def parse(data: list[int], t: float) -> MidiEvent | None:
    """The event in one message's raw bytes, or None for one the graph does not read (sysex, active sensing,
    running status fragments) or a malformed one. Decoded by hand rather than by mido, whose parser costs
    ~30 us a message: a flood is decoded on the render thread (tests check both agree)."""
    if not data:
        return None
    status = data[0]
    if not 0x80 <= status <= 0xFF or (len(data) > 1 and not 0 <= min(data[1:]) <= max(data[1:]) <= 0x7F):
        return None
    if status in _SYSTEM:
        return MidiEvent(_SYSTEM[status], 0, 0, 0, t) if len(data) == 1 else None
    if status == 0xF2:
        return MidiEvent("song position", 0, 0, data[1] | data[2] << 7, t) if len(data) == 3 else None
    high = status & 0xF0
    if high not in _CHANNEL or len(data) != 1 + _DATA_BYTES.get(high, 2):
        return None
    channel = (status & 0x0F) + 1
    if high == 0xE0:
        return MidiEvent("pitch bend", channel, 0, (data[1] | data[2] << 7) - PITCH_CENTRE, t)
    if high in _DATA_BYTES:
        return MidiEvent(_CHANNEL[high], channel, 0, data[1], t)
    return MidiEvent(_CHANNEL[high], channel, data[1], 0 if high == 0x80 else data[2], t)
