"""Latest-wins OSC mailbox between the server thread and the render thread.

A controller can send thousands of messages a second; a frame only needs the newest value per
address. The server thread overwrites one dict entry per message and the render thread swaps
the whole dict out once per frame, so neither side ever waits on the other for more than a
dict assignment, and a flood costs memory bounded by the number of distinct addresses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

Inbox = dict[str, tuple[tuple, float]]
Problem = tuple[float, str, str]  # (time.monotonic(), kind, detail)
RECENT_PROBLEMS = 32


class RateLimitedLog:
    """Logs at most one line per kind per `interval_s`, carrying how many occurred meanwhile.

    A garbage flood must not turn into a flood of log lines (which would stall the very thread
    that should be draining the socket).
    """

    def __init__(
        self,
        logger: logging.Logger = log,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def __call__(self, kind: str, detail: str = "", occurrences: int = 1) -> bool:
        """Note `occurrences` of `kind`; return True when a line was emitted for it."""
        now = self._clock()
        with self._lock:
            n = self._pending.get(kind, 0) + occurrences
            last = self._last.get(kind)
            if last is not None and now - last < self._interval:
                self._pending[kind] = n
                return False
            self._pending[kind] = 0
            self._last[kind] = now
        suffix = f" (latest: {detail})" if detail else ""
        if last is None:
            self._logger.warning("osc: %s%s", kind if n == 1 else f"{n} x {kind}", suffix)
        else:
            self._logger.warning("osc: %d x %s in the last %.0f s%s", n, kind, now - last, suffix)
        return True


class Mailbox:
    """Per-address latest value, posted by one thread and drained by another, plus counters.

    Counter kinds are free-form; the server uses "received", "coalesced" (overwritten before
    a drain), "malformed", "bad-typetag", "overflow", "refused-sender" (outside the allow-list);
    the engine adds its own such as "unknown-address", "bad-type", "mapping-error".
    """

    def __init__(self, max_addresses: int = 4096, log: RateLimitedLog | None = None) -> None:
        self._lock = threading.Lock()
        self._inbox: Inbox = {}
        self._arrivals: dict[str, int] = {}  # messages per address since the last drain, coalesced ones too
        self.arrivals: dict[str, int] = {}  # those of the last drain (render thread)
        self._counts: dict[str, int] = {}
        self._problems: deque[Problem] = deque(maxlen=RECENT_PROBLEMS)
        self._max = max_addresses
        self._log = log if log is not None else RateLimitedLog()

    def post(self, address: str, args: tuple, t_received: float) -> None:
        """Store the newest args for `address` (server thread); O(1), never blocks for long."""
        self.post_many([(address, args)], t_received)

    def post_many(self, messages: list[tuple[str, tuple]], t_received: float) -> None:
        """`post` each (address, args) in order, under one lock: a batch of datagrams costs one acquisition."""
        refused = 0
        with self._lock:
            inbox, counts, arrivals = self._inbox, self._counts, self._arrivals
            counts["received"] = counts.get("received", 0) + len(messages)
            for address, args in messages:
                known = address in inbox
                if known:
                    counts["coalesced"] = counts.get("coalesced", 0) + 1
                elif len(inbox) >= self._max:
                    refused += 1
                    continue
                inbox[address] = (args, t_received)
                arrivals[address] = arrivals.get(address, 0) + 1
        if refused:
            self.warn("overflow", f"more than {self._max} addresses between two drains", refused)

    def drain(self) -> Inbox:
        """Take everything posted since the last drain (render thread, once per frame); `arrivals` then
        holds how many messages each address got since the drain before."""
        with self._lock:
            inbox, self._inbox = self._inbox, {}
            self.arrivals, self._arrivals = self._arrivals, {}
        return inbox

    def count(self, kind: str, n: int = 1) -> None:
        """Add `n` to counter `kind`."""
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + n

    def warn(self, kind: str, detail: str = "", n: int = 1) -> None:
        """Count `n` problems of `kind`, keep the latest among the recent ones, and log, rate-limited per kind."""
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + n
            self._problems.append((time.monotonic(), kind, detail))
        self._log(kind, detail, n)

    def problems(self) -> list[Problem]:
        """The latest problems (at most RECENT_PROBLEMS), oldest first: the editor's OSC monitor shows them."""
        with self._lock:
            return list(self._problems)

    def counts(self) -> dict[str, int]:
        """A snapshot of all counters."""
        with self._lock:
            return dict(self._counts)
