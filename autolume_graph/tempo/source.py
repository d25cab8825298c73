"""What every tempo source node sends (Link, the manual Tempo node): the tempo wire, its numbers, and
triggers on the frames a beat and a bar start."""

from __future__ import annotations

import math
from typing import Any

from autolume_graph.params import Output
from autolume_graph.types import PortType

from .wires import TEMPO, Tempo

EDGE_EPS = 1e-6
"""A beat within this of a whole beat counts as on it: a fixed-step clock lands on k beats up to rounding,
and that frame is the one that starts it."""

SOURCE_OUTPUTS = {
    "tempo": Output(TEMPO, "the tempo, for what locks to it (loops, LFOs, preset morphs)"),
    "bpm": Output(PortType.FLOAT, "beats per minute"),
    "beat": Output(PortType.FLOAT, "beats counted since the start (fractional)"),
    "phase": Output(PortType.FLOAT, "where in the bar, 0..1"),
    "playing": Output(PortType.BOOL, "whether the beat runs (stopped, it holds)"),
    "bar": Output(PortType.TRIGGER, "fires on the frame a bar starts"),
    "tick": Output(PortType.TRIGGER, "fires on the frame a beat starts"),
}


def _reached(value: float) -> int:
    """The whole beats (or bars) `value` has reached, counting a value a rounding short as reached."""
    return math.floor(value + EDGE_EPS)


class Downbeats:
    """Whether a frame starts a beat or a bar: each fires once when the beat passes a whole beat (bar),
    never on the first frame (nothing was crossed) nor on a step back."""

    def __init__(self) -> None:
        self._last: tuple[int, int] | None = None  # (beats, bars) reached

    def crossed(self, tempo: Tempo) -> tuple[bool, bool]:
        """(a beat started, a bar started) since the last frame."""
        now = (_reached(tempo.beat), _reached(tempo.beat / tempo.quantum) if tempo.quantum > 0 else 0)
        last, self._last = self._last, now
        if last is None:
            return False, False
        return now[0] > last[0], now[1] > last[1]


def source_outputs(tempo: Tempo, downbeats: Downbeats) -> dict[str, Any]:
    """The SOURCE_OUTPUTS of one frame's tempo."""
    tick, bar = downbeats.crossed(tempo)
    return {"tempo": tempo, "bpm": tempo.bpm, "beat": tempo.beat, "phase": tempo.phase, "playing": tempo.playing,
            "bar": bar, "tick": tick}
