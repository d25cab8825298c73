"""The render thread's own clock: wall time for live shows, a fixed step for offline renders."""

from __future__ import annotations

import time


class Clock:
    """Gives the time of each frame; `tick` is called once per frame by the render thread."""

    def __init__(self, fixed_fps: float | None = None, start: float = 0.0) -> None:
        self.fixed_fps = fixed_fps
        self.time = start
        self.dt = 0.0
        self.frame = -1
        self._origin = time.perf_counter() - start

    def tick(self) -> None:
        self.frame += 1
        if self.fixed_fps is not None:
            now = self.frame / self.fixed_fps
        else:
            now = time.perf_counter() - self._origin
        self.dt = now - self.time if self.frame > 0 else 0.0
        self.time = now
