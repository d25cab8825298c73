"""The per-value finish of a layer (scale, bias, noise, leaky ReLU, clamp) as our C kernels take it
(`cpu_epilogue.h`), built from the layer's tensors."""

from __future__ import annotations

import ctypes

import torch


class Epilogue(ctypes.Structure):
    """What follows a convolution in the pass that writes its values (see `cpu_epilogue.h`)."""

    _fields_ = [("scale", ctypes.c_void_p), ("bias", ctypes.c_void_p), ("noise", ctypes.c_void_p),
                ("noise_batch", ctypes.c_ssize_t), ("slope", ctypes.c_float), ("clamp", ctypes.c_float)]


def floats(t: torch.Tensor | None) -> torch.Tensor | None:
    """t as the contiguous float32 values a kernel reads (None stays None)."""
    return None if t is None else t.detach().to(torch.float32).contiguous()


def epilogue(size: tuple[int, int], scale: torch.Tensor | None, bias: torch.Tensor | None,
             noise: torch.Tensor | None, slope: float, clamp: float | None
             ) -> tuple[Epilogue, tuple[torch.Tensor | None, ...]]:
    """The finish of an output of `size` (height, width): * scale [B, O] + bias [O] + noise ([H, W] or
    [B, 1, H, W]) (each optional), leaky ReLU of `slope` (1: none), clamp to +-clamp (None or < 0: none);
    with the float32 copies the struct points into, to be kept alive until the kernel returns."""
    scale, bias, noise = (floats(t) for t in (scale, bias, noise))
    if noise is not None and tuple(noise.shape[-2:]) != tuple(size):
        raise ValueError(f"noise of {tuple(noise.shape[-2:])} for a {tuple(size)} output")
    noise_batch = size[0] * size[1] if noise is not None and noise.ndim == 4 else 0
    made = Epilogue(*(None if t is None else t.data_ptr() for t in (scale, bias, noise)), noise_batch,
                    float(slope), -1.0 if clamp is None or clamp < 0 else float(clamp))
    return made, (scale, bias, noise)
