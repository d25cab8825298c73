"""The hand-over between the render thread and an output's own thread: reused buffers and a queue.

Why one piece: every output that must not stall the frame loop (NDI sends, video encoding) does the
same three things: the render thread takes a free buffer and copies the frame into it, a worker
thread takes the frames in order and runs the slow part, and closing stops the worker. Two policies
decide what happens when the worker falls behind:

* latest wins (``capacity=None``): one waiting frame; a newer one replaces it and reuses its buffer.
  For live outputs, where only the newest picture matters.
* bounded queue (``capacity=N``): up to N buffers in use; a frame that finds none free is dropped.
  For recordings, where every frame kept is written in order.

Either way a drop is counted in ``dropped``, the caller never waits, and buffers are reused while
the frame size stays the same.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

import numpy as np


class FrameWorker:
    """Frames copied into reused buffers on the caller's thread, taken in order on the worker's thread."""

    def __init__(self, name: str, capacity: int | None = None) -> None:
        self.name = name
        self._latest_wins = capacity is None
        self._capacity = capacity
        self._cond = threading.Condition()
        self._queue: deque[tuple[np.ndarray, float]] = deque()
        self._free: list[np.ndarray] = []
        self._allocated = 0
        self._stopped = False  # no more frames accepted
        self._drain = True  # whether the worker still gets the queued frames after `stop`
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def start(self, run: Callable[[], None]) -> None:
        """Run `run` (the output's loop over `next_frame`) on the worker thread."""
        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()

    @property
    def stopped(self) -> bool:
        """Whether frames are no longer accepted (closed, or the worker gave up)."""
        return self._stopped

    def offer(self, shape: tuple[int, ...], fill: Callable[[np.ndarray], None], t: float = 0.0) -> bool:
        """Queue a frame: `fill` writes it into a free uint8 buffer of `shape` (outside the lock, so the
        worker runs on meanwhile). False when dropped or stopped; a replaced waiting frame counts as dropped."""
        with self._cond:
            if self._stopped:
                return False
            if self._latest_wins and self._queue:  # not yet taken: the new frame wins, reuse its buffer
                buf = self._queue.pop()[0]
                self.dropped += 1
                if buf.shape != shape:
                    self._allocated -= 1
                    buf = self._take_free(shape)
            else:
                buf = self._take_free(shape)
            if buf is None:
                self.dropped += 1
                return False
        fill(buf)
        with self._cond:
            self._queue.append((buf, t))
            self._cond.notify()
        return True

    def next_frame(self) -> tuple[np.ndarray, float] | None:
        """On the worker thread: the next frame and its time, waiting for one; None once stopped (after the
        queued frames, unless stopped without draining). Give the buffer back with `recycle`."""
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            if not self._queue or not self._drain:
                return None
            return self._queue.popleft()

    def recycle(self, buf: np.ndarray) -> None:
        """Give a buffer from `next_frame` back for reuse (as soon as its pixels have been read)."""
        with self._cond:
            self._free.append(buf)

    def stop(self, drain: bool = True) -> None:
        """Accept no more frames; `drain`: the worker still gets the queued ones. From either thread."""
        with self._cond:
            self._stopped = True
            if not drain:
                self._drain = False
                self._queue.clear()
            self._cond.notify()

    def close(self, drain: bool = True) -> None:
        """`stop`, then wait for the worker thread to end."""
        self.stop(drain)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _take_free(self, shape: tuple[int, ...]) -> np.ndarray | None:
        while self._free:
            buf = self._free.pop()
            if buf.shape == shape:
                return buf
            self._allocated -= 1
        if self._capacity is None or self._allocated < self._capacity:
            self._allocated += 1
            return np.empty(shape, np.uint8)
        return None
