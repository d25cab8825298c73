"""The fused filtered leaky ReLU for the CPU: tables from the definition, our C kernel on plane ranges.

Each of the activation's four resampling steps is a banded operator along one axis; this module
writes each as a table (for every output row: which input rows, with which weights) straight from
upfirdn2d's definition (zero-stuff, pad, convolve with the flipped filter times the gain, keep every
down-th sample), and hands the tables to `cpu_filtered_lrelu.c`, which runs all steps on one channel
plane at a time. A radial down filter is its singular value decomposition cut where the terms fall
below float32's resolution (2 to 4 separable terms for StyleGAN3-R's 12x12 jinc filters).
The C side shares the planes out between `torch.get_num_threads()` threads itself (`cpu_parallel.h`).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import torch

from ..cpu_features import Support
from . import cpu_build
from .cpu_build import Strides

SOURCE = Path(__file__).with_name("cpu_filtered_lrelu.c")
RANK_TOLERANCE = 1e-6  # singular values of a radial filter below this fraction of the largest are dropped


class Band(ctypes.Structure):
    _fields_ = [("rows", ctypes.c_int), ("taps", ctypes.c_int),
                ("idx", ctypes.POINTER(ctypes.c_int)), ("w", ctypes.POINTER(ctypes.c_float))]


def _band(idx: np.ndarray, weights: np.ndarray) -> tuple[Band, tuple[np.ndarray, np.ndarray]]:
    """A ctypes Band over int32/float32 copies of the table, and the arrays that must outlive it."""
    idx, weights = np.ascontiguousarray(idx, np.int32), np.ascontiguousarray(weights, np.float32)
    band = Band(idx.shape[0], idx.shape[1], idx.ctypes.data_as(ctypes.POINTER(ctypes.c_int)),
                weights.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
    return band, (idx, weights)


def upsample_table(f: np.ndarray, up: int, pad0: int, pad1: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and weights of one axis of upfirdn2d(up, pad, f * up): output n = sum_k g[k] * padded[n + k]
    with g the flipped filter, where padded holds input i at position up * i + pad0 and zeros elsewhere."""
    g = f[::-1].astype(np.float64) * up
    rows = length * up + pad0 + pad1 - len(g) + 1
    k = up * np.arange(length)[None, :] + pad0 - np.arange(rows)[:, None]  # tap of input i in output n
    valid = (k >= 0) & (k < len(g))
    taps = max(int(valid.sum(1).max()), 1)
    idx = np.zeros((rows, taps), np.int64)
    weights = np.zeros((rows, taps), np.float64)
    for n in range(rows):  # a few hundred rows, once per layer
        inputs = np.flatnonzero(valid[n])
        idx[n, :len(inputs)] = inputs
        weights[n, :len(inputs)] = g[k[n, inputs]]
    return idx, weights


def downsample_table(h: np.ndarray, down: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and weights of a valid correlation with h (already flipped) keeping every `down`-th output."""
    rows = -(-(length - len(h) + 1) // down)
    idx = down * np.arange(rows)[:, None] + np.arange(len(h))[None, :]
    return idx, np.broadcast_to(h, idx.shape)


def down_terms(down_filter: torch.Tensor | None, gain: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(filter along x, filter along y) pairs, flipped, gain folded in, that sum to the down filter."""
    f = np.ones(1) if down_filter is None else down_filter.detach().cpu().double().numpy()
    f = f[(slice(None, None, -1),) * f.ndim]
    if f.ndim == 1:
        return [(f * gain**0.5, f * gain**0.5)]
    u, s, vt = np.linalg.svd(f * gain)
    keep = max(int((s > RANK_TOLERANCE * s[0]).sum()), 1)
    return [(vt[r], s[r] * u[:, r]) for r in range(keep)]


class CpuFilteredLReLU:
    """bias -> upsample -> lrelu * gain, clamp -> downsample for one layer's geometry, by the C kernel.

    Takes x [B, C, H, W] float32 in any layout and returns [B, C, H', W'] float32 (planes or channels-last);
    same arguments as `filtered_lrelu.FilteredLReLU`. Callers check `support()` first.
    """

    def __init__(self, up_filter: torch.Tensor | None, down_filter: torch.Tensor | None, up: int, down: int,
                 padding: list[int], in_size: tuple[int, int], gain: float, slope: float, clamp: float | None):
        px0, px1, py0, py1 = (int(p) for p in padding)
        w, h = in_size
        fu = np.ones(1) if up_filter is None else up_filter.detach().cpu().double().numpy()
        if fu.ndim != 1:
            raise ValueError("the up filter must be 1-D (separable)")
        self.in_hw = (h, w)
        self.slope = float(slope)
        self.clamp = -1.0 if clamp is None or clamp < 0 else float(clamp) / gain  # the gain rides on the down filter
        self._keep: list[np.ndarray] = []
        self.up_y = self._keep_band(*upsample_table(fu, up, py0, py1, h))
        self.up_x = self._keep_band(*upsample_table(fu, up, px0, px1, w))
        terms = down_terms(down_filter, gain)
        self.down_x = (Band * len(terms))(*(self._keep_band(*downsample_table(fx, down, self.up_x.rows))
                                            for fx, _ in terms))
        self.down_y = (Band * len(terms))(*(self._keep_band(*downsample_table(fy, down, self.up_y.rows))
                                            for _, fy in terms))
        self.terms = len(terms)
        self.out_hw = (self.down_y[0].rows, self.down_x[0].rows)

    def _keep_band(self, idx: np.ndarray, weights: np.ndarray) -> Band:
        band, arrays = _band(idx, weights)
        self._keep.extend(arrays)
        return band

    def __call__(self, x: torch.Tensor, bias: torch.Tensor, scale: torch.Tensor | None = None,
                 channels_last: bool = False) -> torch.Tensor:
        """The activation of x * scale (per sample and channel, [B, C]; none: 1) + bias; x in any layout,
        the result contiguous planes or, with `channels_last`, channels-last."""
        kernel = _kernel()
        batch, channels, h, w = x.shape
        if (h, w) != self.in_hw:
            raise ValueError(f"this layer takes {self.in_hw[0]}x{self.in_hw[1]} maps, not {h}x{w}")
        bias = bias.detach().to(torch.float32).contiguous()
        if scale is not None:
            scale = scale.detach().to(torch.float32).reshape(batch * channels).contiguous()
        out = torch.empty(batch, channels, *self.out_hw,
                          memory_format=torch.channels_last if channels_last else torch.contiguous_format)

        code = kernel(ctypes.c_void_p(x.data_ptr()), Strides(*x.stride()),
                      ctypes.c_void_p(None if scale is None else scale.data_ptr()), ctypes.c_void_p(bias.data_ptr()),
                      batch, channels, h, w, self.up_y, self.up_x, self.slope, self.clamp, self.terms, self.down_x,
                      self.down_y, ctypes.c_void_p(out.data_ptr()), int(channels_last), torch.get_num_threads())
        if code:
            raise MemoryError("the CPU activation kernel could not allocate its buffers")
        return out


def _kernel():
    fn = cpu_build.function(SOURCE, "filtered_lrelu", ctypes.c_int, [
        ctypes.c_void_p, Strides, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
        ctypes.c_int, Band, Band, ctypes.c_float, ctypes.c_float, ctypes.c_int, ctypes.POINTER(Band),
        ctypes.POINTER(Band), ctypes.c_void_p, ctypes.c_int, ctypes.c_int])
    if fn is None:
        raise RuntimeError(f"the CPU activation kernel is not loaded: {cpu_build.status(SOURCE).reason}")
    return fn


def support(wait_s: float = 0.0) -> Support:
    """Whether the kernel is built and loaded (waiting up to `wait_s`), and what was built or why not."""
    return cpu_build.support(SOURCE, wait_s)
