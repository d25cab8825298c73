"""Process-wide NDI senders shared by name, so a preset switch never withdraws the source.

Why: a preset switch closes the old graph's nodes and the new graph's NDIOut opens its sender a
frame later. Destroying and re-creating an NDI sender makes the source vanish from receivers
(TouchDesigner, Resolume and OBS drop the input and may not reconnect on their own). The pool
counts holders per name and closes a sender only after `grace` seconds without one, so a node
that asks for the same name in time gets the very same sender.

A sender keeps the frame rate it was created with (it is metadata only: the render loop sets the
pace); nodes sharing a name share one source.

At the end of a run the grace period must not outlive the process: `close_all` closes every
sender at once (the command line calls it after the graph has stopped; see `ndi.shutdown`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from autolume_graph.outputs.ndi import NDISender

GRACE_SECONDS = 2.0


@dataclass
class _Entry:
    sender: NDISender
    refs: int = 1
    timer: threading.Timer | None = None


class SenderPool:
    """NDI senders by name with reference counts and a delayed close."""

    def __init__(self, grace: float = GRACE_SECONDS) -> None:
        self.grace = grace
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def acquire(self, name: str, fps: float) -> NDISender:
        """The live sender called `name`, or a new one; raises OutputError if NDI cannot run."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                entry.refs += 1
                if entry.timer is not None:
                    entry.timer.cancel()
                    entry.timer = None
                return entry.sender
            sender = NDISender(name, fps)
            self._entries[name] = _Entry(sender)
            return sender

    def release(self, sender: NDISender) -> None:
        """Drop one hold; the last one schedules the close after the grace period."""
        with self._lock:
            entry = self._entries.get(sender.name)
            if entry is None or entry.sender is not sender:
                return
            entry.refs -= 1
            if entry.refs > 0:
                return
            entry.timer = threading.Timer(self.grace, self._expire, (sender.name, entry))
            entry.timer.daemon = True
            entry.timer.start()

    def held(self, name: str) -> bool:
        """Whether a sender called `name` is live (held, or released but within its grace period)."""
        with self._lock:
            return name in self._entries

    def close_all(self) -> None:
        """Close every sender now, held or in its grace period (the show is over)."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
            for entry in entries:
                if entry.timer is not None:
                    entry.timer.cancel()
                entry.sender.close()

    def _expire(self, name: str, entry: _Entry) -> None:
        # Closed under the lock: NDI refuses a second source of the same name while the first one
        # exists, so an `acquire` of this name must wait until the old sender is really gone.
        with self._lock:
            if self._entries.get(name) is not entry or entry.refs > 0:
                return
            del self._entries[name]
            entry.sender.close()


pool = SenderPool()
