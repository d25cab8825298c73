"""A bounded log of one port's MIDI events, written by the port's callback thread and read by any number of
readers (MIDIIn nodes, clocks, the bindings), each from its own cursor.

The callback only appends (a lock held for one append); a reader copies what is new since its cursor. A flood
is bounded: past `capacity` unread events the oldest are gone and the reader is told how many it missed.
"""

from __future__ import annotations

import threading
from collections import deque
from itertools import islice

from autolume_graph.midi.events import MidiEvent

CAPACITY = 2048  # about 30 frames of a dense controller stream at 60 fps; a clock sends 48 a second


class EventLog:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._lock = threading.Lock()
        self._events: deque[MidiEvent] = deque(maxlen=capacity)
        self._end = 0  # how many events were ever posted: the cursor just past the newest

    def post(self, event: MidiEvent) -> None:
        """Append (callback thread); never waits longer than a reader's copy."""
        with self._lock:
            self._events.append(event)
            self._end += 1

    def cursor(self) -> int:
        """A cursor past everything posted so far: a new reader sees only what comes next."""
        with self._lock:
            return self._end

    def read(self, cursor: int) -> tuple[list[MidiEvent], int, int]:
        """(the events after `cursor`, oldest first; the new cursor; how many were lost to the bound)."""
        with self._lock:
            held = len(self._events)
            new = self._end - cursor
            take = min(new, held)
            events = list(islice(self._events, held - take, held)) if take > 0 else []
            return events, self._end, max(0, new - held)
