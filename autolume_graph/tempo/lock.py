"""Locking a cycle to the beat: the `beats` parameter, and the beat a loop or an LFO follows."""

from __future__ import annotations

from autolume_graph.params import Float

from .wires import Tempo

STEP_BACK_BEATS = 0.5
"""A source's beat falling back by less than this is a reading a little early (a clock read between two
samples, MIDI clock jitter): the follower holds until the source passes it again. A larger fall is a
restart (a song position, a new Link timeline) and is followed."""


def beats_param(default: float, what: str) -> Float:
    """The `beats` parameter of a node that locks its cycle to a wired tempo."""
    return Float(default, 0.25, 64.0, clip=False, limit=(1.0 / 64.0, 65536.0), unit="beats",
                 doc=f"{what} in beats when a tempo is wired (a multiple of the bar's beats ends it on the bar)")


class BeatFollower:
    """The beat a locked cycle follows: the source's beat, held while the source is stopped and through a
    small step back, so a loop never runs backwards on a jittery clock; a restart is followed."""

    def __init__(self) -> None:
        self.beat: float | None = None

    def follow(self, tempo: Tempo) -> float:
        """The beat to use this frame."""
        last = self.beat
        if last is None or (tempo.playing and not last - STEP_BACK_BEATS < tempo.beat < last):
            self.beat = tempo.beat
        return self.beat
