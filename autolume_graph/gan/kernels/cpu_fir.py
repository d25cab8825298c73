"""A separable FIR filter with the layer's finish in one pass over channels-last maps (`cpu_fir.c`).

StyleGAN2's up-sampling layers on the CPU: oneDNN's transposed convolution, then this in place of a
depthwise convolution with the 4x4 filter and four more passes (scale, bias and noise, activation, clamp).
Filters that are not outer products of two vectors stay with the torch path (`separable` says None).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import torch

from ..cpu_features import Support
from . import cpu_build, cpu_epilogue

SOURCE = Path(__file__).with_name("cpu_fir.c")
_I, _P = ctypes.c_int, ctypes.c_void_p


def _function():
    fir = cpu_build.function(SOURCE, "fir_finish", ctypes.c_int,
                             [_P, _I, _I, _I, _I, _P, _I, _P, _I, _I, _P, _I, _I,
                              ctypes.POINTER(cpu_epilogue.Epilogue), _I])
    if fir is None:
        raise RuntimeError(f"the CPU FIR kernel is not loaded: {cpu_build.status(SOURCE).reason}")
    return fir


def separable(f: torch.Tensor, gain: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The true-convolution filter f [k, k] times `gain` as the vertical and horizontal correlation taps
    (float32) whose outer product it is, or None where it is no outer product (to float32's resolution)."""
    f64 = f.detach().to(torch.float64)
    total = f64.sum()
    if f64.ndim != 2 or total == 0:
        return None
    rows, columns = f64.sum(1), f64.sum(0)
    if not torch.allclose(torch.outer(rows, columns) / total, f64, rtol=1e-6, atol=1e-7 * f64.abs().max().item()):
        return None
    return (rows.flip(0) * (gain / total)).to(torch.float32), columns.flip(0).to(torch.float32)


def fir_finish(t: torch.Tensor, taps: tuple[torch.Tensor, torch.Tensor], pad0: int, pad1: int,
               scale: torch.Tensor | None = None, bias: torch.Tensor | None = None, noise: torch.Tensor | None = None,
               slope: float = 1.0, clamp: float | None = None) -> torch.Tensor:
    """t [B, C, H, W] float32 on the CPU, padded by pad0 zeros before and pad1 after each axis and correlated
    with `taps` (`separable`'s), then * scale [B, C] + bias [C] + noise ([H', W'] or [B, 1, H', W']), leaky
    ReLU of `slope` (1: none), clamp to +-clamp: a new channels-last [B, C, H', W']."""
    vertical, horizontal = taps
    t = t.contiguous(memory_format=torch.channels_last)
    batch, channels, height, width = t.shape
    out_h, out_w = height + pad0 + pad1 - len(vertical) + 1, width + pad0 + pad1 - len(horizontal) + 1
    y = torch.empty(batch, channels, out_h, out_w, memory_format=torch.channels_last)
    epilogue, _kept = cpu_epilogue.epilogue((out_h, out_w), scale, bias, noise, slope, clamp)
    if _function()(t.data_ptr(), batch, channels, height, width, vertical.data_ptr(), len(vertical),
                   horizontal.data_ptr(), len(horizontal), pad0, y.data_ptr(), out_h, out_w, ctypes.byref(epilogue),
                   torch.get_num_threads()):
        raise MemoryError("the CPU FIR kernel could not allocate its row buffers")
    return y


def support(wait_s: float = 0.0) -> Support:
    """Whether the kernel is built and loaded (waiting up to `wait_s`), and what was built or why not."""
    return cpu_build.support(SOURCE, wait_s)
