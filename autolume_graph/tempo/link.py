"""An Ableton Link session (the `aalink` binding) on a thread of its own, read by the frame without waiting.

aalink runs on asyncio, so the session lives on its own thread with its own event loop and is touched
only there: the thread applies what the node asks for (a `LinkWish`, swapped in whole) and samples the
session every few ms into a `LinkReading`, swapped in whole too. The render thread only reads the last
reading and extrapolates it to the frame's moment (`beat_at`), which is exact until the tempo changes
and a few ms stale at worst. A missing or failing binding leaves `error` set (one line), no reading.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from autolume_graph.outputs.errors import one_line

SAMPLE_S = 0.005  # how often the session is sampled: a reading is at most this old plus a frame's wait
CLOSE_WAIT_S = 1.0  # how long closing waits for the thread to leave the session (Link says goodbye to peers)


@dataclass(frozen=True)
class LinkWish:
    """What the node asks of the session. `proposal` counts tempo proposals: a new count proposes `bpm`
    (so the session's tempo, set by any peer, is not fought every frame)."""

    enabled: bool = True
    bpm: float = 120.0
    proposal: int = 0
    quantum: float = 4.0
    start_stop_sync: bool = False


@dataclass(frozen=True)
class LinkReading:
    """One sample of the session, taken at `at` on time.monotonic()."""

    at: float
    bpm: float
    beat: float
    playing: bool
    quantum: float
    peers: int
    enabled: bool

    def beat_at(self, now: float) -> float:
        """The session's beat at `now` (time.monotonic()), from this reading's tempo."""
        return self.beat + (now - self.at) * self.bpm / 60.0


class LinkSession:
    """One Link session for one node: join, follow, propose; `close` leaves it."""

    def __init__(self, wish: LinkWish) -> None:
        self._wish = wish
        self.reading: LinkReading | None = None
        self.error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ableton link", daemon=True)
        self._thread.start()

    def ask(self, wish: LinkWish) -> None:
        """Ask for `wish`; the session thread applies it within a sample."""
        self._wish = wish

    def close(self) -> None:
        """Leave the session; waits a bounded time for the thread."""
        self._stop.set()
        self._thread.join(CLOSE_WAIT_S)

    def _run(self) -> None:
        try:
            from aalink import Link  # a native binding: imported on this thread, only when a session starts
        except Exception as exc:  # noqa: BLE001 - missing, or built for another Python: the node says so
            self.error = f"Ableton Link unavailable ({one_line(exc)})"
            return
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._follow(Link))
        except Exception as exc:  # noqa: BLE001 - the show goes on: the node shows the line and counts alone
            self.error = f"Ableton Link failed ({one_line(exc)})"
        finally:
            loop.close()

    async def _follow(self, link_type: type) -> None:
        wish = self._wish
        link = link_type(wish.bpm)
        applied: LinkWish | None = None
        try:
            while not self._stop.is_set():
                wish = self._wish
                if wish != applied:
                    _apply(link, wish, applied)
                    applied = wish
                beat, bpm = float(link.beat), float(link.tempo)
                self.reading = LinkReading(time.monotonic(), bpm, beat, bool(link.playing), float(link.quantum),
                                           int(link.num_peers), bool(link.enabled))
                await asyncio.sleep(SAMPLE_S)
        finally:
            link.enabled = False


def _apply(link: object, wish: LinkWish, applied: LinkWish | None) -> None:
    """Set on `link` what `wish` changes from `applied` (None: everything but the tempo it was made with)."""
    link.enabled = wish.enabled
    link.quantum = wish.quantum
    link.start_stop_sync_enabled = wish.start_stop_sync
    if applied is not None and wish.proposal != applied.proposal:
        link.tempo = wish.bpm
