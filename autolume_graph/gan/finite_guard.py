"""Holds back pictures that are not finite (NaN or inf anywhere), without waiting for the GPU.

A parameter far out of range (psi, a layer multiplier) can overflow the synthesis: the frame
comes out NaN, which shows as black. On the CPU the check is immediate and the caller refuses
the frame. On CUDA, reading a flag every frame would make the render thread wait for the GPU,
so the picture is chosen on the device instead (the new one where it is finite, else the last
good one), and the flag travels to pinned host memory behind an event that a later frame reads
once the GPU has passed it. CUDA graph replays reuse their output buffer, so the held picture
is always a fresh tensor, never that buffer.
"""

from __future__ import annotations

from collections import deque

import torch

IN_FLIGHT = 8
"""CUDA frames whose flag may wait to be read; beyond, the oldest unread is dropped (a newer one tells more)."""


class FiniteGuard:
    """Per producer: `check(image)` gives the picture to publish; `verdict()` says how the last one read went."""

    def __init__(self) -> None:
        self._held: torch.Tensor | None = None
        self._flags: torch.Tensor | None = None  # pinned host slots for "all finite", one per frame in flight
        self._in_flight: deque[tuple[torch.cuda.Event, int]] = deque()
        self._next_slot = 0
        self._last_finite: bool | None = None

    @property
    def pending(self) -> bool:
        """A CUDA frame's flag has not been read yet."""
        return bool(self._in_flight)

    def check(self, image: torch.Tensor) -> torch.Tensor:
        """The picture to publish for `image`; on the CPU a non-finite one is known at once (see `verdict`)."""
        low, high = torch.aminmax(image)  # NaN propagates, inf shows at an end: one pass, ~17x isfinite().all()
        finite = torch.isfinite(low) & torch.isfinite(high)
        if image.device.type != "cuda":
            self._last_finite = bool(finite)
            return image
        with torch.inference_mode():  # the synthesis hands out inference tensors; stay among them
            held = self._held
            if held is None or held.shape != image.shape or held.dtype != image.dtype or held.device != image.device:
                held = torch.zeros_like(image)
            self._held = picture = torch.where(finite, image, held)
            if self._flags is None:
                self._flags = torch.empty(IN_FLIGHT, dtype=torch.bool, pin_memory=True)
            if len(self._in_flight) == IN_FLIGHT:
                self._in_flight.popleft()
            slot, self._next_slot = self._next_slot, (self._next_slot + 1) % IN_FLIGHT
            self._flags[slot].copy_(finite, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(image.device))
        self._in_flight.append((event, slot))
        return picture

    def verdict(self) -> bool | None:
        """Whether the newest frame read back was finite; None while none has been (CUDA, GPU still busy)."""
        while self._in_flight and self._in_flight[0][0].query():
            _, slot = self._in_flight.popleft()
            self._last_finite = bool(self._flags[slot])
        return self._last_finite
