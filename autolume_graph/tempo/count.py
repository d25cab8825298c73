"""Beats counted on a clock at a set tempo: the manual Tempo node's beat, and Link's when Link is missing."""

from __future__ import annotations


class BeatCount:
    """The beat at a time `now` (seconds on any steady clock) for a tempo that may change.

    The count is `b0 + (now - t0) * bpm / 60` from an origin rebased whenever the tempo changes or the
    count stops or starts, so a new tempo bends the speed and the beat never jumps; stopped, it holds.
    On a fixed-step clock from 0 the beat of frame i is (i / fps) * bpm / 60 with no error summed up
    frame after frame, so an offline render locks to it the same every time.
    """

    def __init__(self) -> None:
        self._origin: tuple[float, float, float, bool] | None = None  # (t0, b0, bpm, playing)

    def beat(self, now: float, bpm: float, playing: bool = True) -> float:
        """The beat at `now` (the first call is beat 0)."""
        if self._origin is None:
            self._origin = (now, 0.0, bpm, playing)
        t0, b0, counted_bpm, counting = self._origin
        beat = b0 + (now - t0) * counted_bpm / 60.0 if counting else b0
        if (bpm, playing) != (counted_bpm, counting):
            self._origin = (now, beat, bpm, playing)
        return beat

    def start(self, now: float, bpm: float, playing: bool = True, beat: float = 0.0) -> None:
        """Count on from `beat` at `now` (beat 0: the downbeat of bar one)."""
        self._origin = (now, beat, bpm, playing)
