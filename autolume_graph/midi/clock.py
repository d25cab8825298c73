"""Following MIDI clock: 24 ticks per beat (0xF8), start (0xFA), continue (0xFB), stop (0xFC) and song
position, into a Tempo. The tempo is the mean tick interval over the last two beats, so one late tick (a
JACK period, a busy sender) moves it little; the beat is interpolated between ticks so pictures move smoothly.
"""

from __future__ import annotations

from collections import deque

from autolume_graph.midi.events import SONG_POSITION_TICKS, MidiEvent
from autolume_graph.tempo.wires import Tempo

PPQ = 24  # clock ticks per quarter note
WINDOW_TICKS = 2 * PPQ
GAP_S = 1.0  # ticks further apart than this: the clock stopped sending; the next start measures afresh
SOURCE = "midi clock"


class ClockFollower:
    """Feed it a port's events in order (`follow`); `tempo(now)` is None until two ticks have come."""

    def __init__(self, quantum: float = 4.0) -> None:
        self.quantum = quantum
        self._times: deque[float] = deque(maxlen=WINDOW_TICKS + 1)
        self.ticks = 0  # since start, while playing
        self.playing = False
        self.bpm = 0.0

    def follow(self, event: MidiEvent) -> None:
        if event.kind == "clock":
            if self._times and event.t - self._times[-1] > GAP_S:
                self._times.clear()
            self._times.append(event.t)
            if len(self._times) > 1:
                span = self._times[-1] - self._times[0]
                self.bpm = 60.0 * (len(self._times) - 1) / (PPQ * span) if span > 0 else self.bpm
            if self.playing:
                self.ticks += 1
        elif event.kind == "start":
            self.ticks, self.playing = 0, True
        elif event.kind == "continue":
            self.playing = True
        elif event.kind == "stop":
            self.playing = False
        elif event.kind == "song position":
            self.ticks = event.value * SONG_POSITION_TICKS

    def missed(self) -> None:
        """Events were lost (a flood): the tick count is off and the interval window is not to be trusted."""
        self._times.clear()

    def tempo(self, now: float) -> Tempo | None:
        if self.bpm <= 0:
            return None
        beat = self.ticks / PPQ
        if self.playing and self._times:  # part of the way to the next tick, never past it
            tick_s = 60.0 / (self.bpm * PPQ)
            beat += min((now - self._times[-1]) / tick_s, 0.999) / PPQ
        return Tempo(self.bpm, beat, self.playing, self.quantum, SOURCE)
