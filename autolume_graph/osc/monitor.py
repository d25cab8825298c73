"""What arrived over OSC lately, for the editor's OSC monitor: per address the latest arguments, the
message rate, and which parameters it drove (none: an unknown address).

Recorded on the render thread right after the mailbox is drained; `entries()` is an immutable view
that the UI thread reads without a lock (the reference is swapped whole, as snapshots are).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass

MAX_ADDRESSES = 64  # the most recently seen; older ones drop off the list
RATE_WINDOW_S = 2.0
MAX_ARGS_TEXT = 60


@dataclass(frozen=True)
class AddressSeen:
    """One address as the monitor shows it; `targets` are "node.param" names ("" entries: none)."""

    address: str
    args: str
    count: int
    rate: float  # messages per second over the last RATE_WINDOW_S
    targets: tuple[str, ...]
    system: bool
    last: float  # time.monotonic() of the latest

    @property
    def unknown(self) -> bool:
        return not self.targets and not self.system


def args_text(args: tuple) -> str:
    """Arguments as a short line (a long blob must not widen the panel)."""
    text = " ".join(repr(a) if isinstance(a, str) else str(a) for a in args)
    return text if len(text) <= MAX_ARGS_TEXT else text[:MAX_ARGS_TEXT - 3] + "..."


class OSCMonitor:
    """`record(...)` per drained address on the render thread; `entries()` for the editor."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, tuple[int, deque[tuple[float, int]]]] = OrderedDict()
        self._view: tuple[AddressSeen, ...] = ()
        self._pending: list[AddressSeen] = []

    def record(self, address: str, args: tuple, arrivals: int, targets: tuple[str, ...], system: bool,
               now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        count, window = self._seen.pop(address, (0, deque()))
        window.append((now, arrivals))
        while window and now - window[0][0] > RATE_WINDOW_S:
            window.popleft()
        self._seen[address] = (count + arrivals, window)
        if len(self._seen) > MAX_ADDRESSES:
            self._seen.popitem(last=False)
        rate = sum(n for _, n in window) / RATE_WINDOW_S
        self._pending.append(AddressSeen(address, args_text(args), count + arrivals, rate, targets, system, now))

    def publish(self) -> None:
        """After a frame's records: the new view, newest first, one entry per address."""
        if not self._pending:
            return
        fresh = {entry.address: entry for entry in self._pending}
        kept = [entry for entry in self._view if entry.address not in fresh and entry.address in self._seen]
        self._view = tuple(sorted(fresh.values(), key=lambda e: -e.last)) + tuple(kept)
        self._pending = []

    def entries(self) -> tuple[AddressSeen, ...]:
        return self._view
