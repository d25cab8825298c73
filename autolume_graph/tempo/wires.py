"""The tempo wire: one value a tempo source (Link, MIDI clock) sends each frame, read by what locks to it."""

from __future__ import annotations

from dataclasses import dataclass

from autolume_graph.types import WireType

TEMPO = WireType("tempo", "a Tempo (autolume_graph/tempo/wires.py): bpm, the beat position and whether it plays")


@dataclass(frozen=True)
class Tempo:
    """The tempo at this frame. `beat` counts beats since the source's origin (continuous, fractional:
    3.5 = halfway through the fourth beat); `quantum` is the beats in one bar (Link's quantum, 4 for MIDI
    clock unless set). A stopped source keeps its last beat and says `playing=False`."""

    bpm: float
    beat: float
    playing: bool = True
    quantum: float = 4.0
    source: str = ""  # "link", "midi clock", ...: shown on the nodes that lock to it

    @property
    def phase(self) -> float:
        """Where in the bar, 0..1."""
        return (self.beat % self.quantum) / self.quantum if self.quantum > 0 else 0.0

    def seconds(self, beats: float) -> float:
        """How long `beats` beats last at this tempo."""
        return 60.0 * beats / self.bpm if self.bpm > 0 else 0.0
