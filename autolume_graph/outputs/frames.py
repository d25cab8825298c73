"""Generator image -> host uint8 BGRX buffer, converted once per frame and shared by every sink.

The value convention is NVIDIA's: ``(x * 127.5 + 128).clamp(0, 255)`` truncated to uint8, so
pixels match the reference StyleGAN tools bit for bit.

One host buffer per frame serves all sinks: ``HostFrame.bgra`` is what NDI sends (BGRX, X=255)
and ``HostFrame.rgb`` is a strided view of the same memory for the recorder and PNG snapshots.

On CUDA the quantisation runs on the device and the result is copied into pinned host memory with
``non_blocking=True``; a CUDA event marks when it has landed, so ``convert`` returns at once and
the render thread can queue the next frame while the copy runs. On CPU the quantised values are
written straight into the host buffer (no device copy, no staging copy).

Buffers are reused while the size stays the same. Two host buffers alternate, so a ``HostFrame``
stays valid until two further ``convert`` calls; sinks copy what they keep (NDI slot, recorder
queue), so handing a frame to them and converting the next one is safe.
"""

from __future__ import annotations

import numpy as np
import torch


class HostFrame:
    """One converted frame in host memory; reading it waits for the device copy if needed."""

    def __init__(self, bgra: np.ndarray, event: torch.cuda.Event | None) -> None:
        self._bgra = bgra
        self._event = event

    def ready(self) -> bool:
        """Whether the pixels have landed (never blocks)."""
        return self._event is None or self._event.query()

    def wait(self) -> None:
        """Block until the pixels have landed in host memory."""
        if self._event is not None:
            self._event.synchronize()
            self._event = None

    @property
    def bgra(self) -> np.ndarray:
        """HxWx4 uint8, B,G,R,X with X = 255 (valid as BGRA or BGRX)."""
        self.wait()
        return self._bgra

    @property
    def rgb(self) -> np.ndarray:
        """HxWx3 uint8 RGB: a strided view of the same buffer, no copy."""
        return self.bgra[..., 2::-1]


class FrameConverter:
    """Converts generator images ([1,C,H,W] or [C,H,W] float, C in {1,3}) into reused host buffers."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._scratch: torch.Tensor | None = None  # float32 [C,H,W] on the image's device
        self._device_bgra: torch.Tensor | None = None  # uint8 [H,W,4] on CUDA only
        self._host: list[tuple[np.ndarray, torch.Tensor]] = []  # (numpy view, tensor over it)
        self._events: list[torch.cuda.Event] = []
        self._turn = 0

    def convert(self, image: torch.Tensor) -> HostFrame:
        """Quantise `image` and start its transfer to host memory; returns without waiting."""
        chw = _as_chw(image)
        self._ensure_buffers(chw)
        host_np, host_t = self._host[self._turn]
        on_cuda = chw.device.type == "cuda"
        target = self._device_bgra if on_cuda else host_t
        scratch = self._scratch
        torch.mul(chw, 127.5, out=scratch)
        scratch.add_(128).clamp_(0, 255)
        # float -> uint8 copy truncates, as `.to(torch.uint8)` does; B,G,R from R,G,B.
        for dst, src in enumerate((2, 1, 0) if scratch.shape[0] == 3 else (0, 0, 0)):
            target[..., dst].copy_(scratch[src])
        event = None
        if on_cuda:
            host_t.copy_(target, non_blocking=True)
            event = self._events[self._turn]
            event.record(torch.cuda.current_stream(chw.device))
        self._turn ^= 1
        return HostFrame(host_np, event)

    def _ensure_buffers(self, chw: torch.Tensor) -> None:
        c, h, w = chw.shape
        key = (chw.device, c, h, w)
        if key == self._key:
            return
        on_cuda = chw.device.type == "cuda"
        self._scratch = torch.empty((c, h, w), dtype=torch.float32, device=chw.device)
        self._host = []
        for _ in range(2):
            t = torch.empty((h, w, 4), dtype=torch.uint8, pin_memory=on_cuda)
            t[..., 3] = 255
            self._host.append((t.numpy(), t))
        if on_cuda:
            self._device_bgra = torch.full((h, w, 4), 255, dtype=torch.uint8, device=chw.device)
            self._events = [torch.cuda.Event(), torch.cuda.Event()]
        else:
            self._device_bgra = None
            self._events = []
        self._key = key
        self._turn = 0


def _as_chw(image: torch.Tensor) -> torch.Tensor:
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected an image [1,C,H,W] or [C,H,W] with C in (1, 3), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"expected a floating-point image, got {image.dtype}")
    return image
