"""Winograd F(4x4, 3x3) on the CPU: our C data transforms around batched matrix products (torch's or ours).

Tiles go in blocks of `BLOCK_BYTES`: transform, products, output pass, each over the whole block (the
buffers kept per thread between frames: no fresh pages to fault in each time). With our product and
filters small enough for the last-level cache, all three run in one C call instead, each thread on
chunks small enough for its own caches, so that the 36 values per tile and channel never go out to
memory (`winograd_fused`).
Any layout in, the same layout out; the input may be scaled per sample and channel on the way in
(the style modulation), which costs nothing there.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import torch

from ..cpu_features import Support, last_level_cache_bytes
from . import cpu_build, cpu_epilogue, cpu_gemm
from .cpu_build import Strides

SOURCE = Path(__file__).with_name("cpu_winograd.c")
BLOCK_BYTES = 32 << 20  # one block's transformed input (or products); 16-64 MB measured best at 512 channels, 148 px
# The whole convolution chunk by chunk in each thread's caches (our product only) pays where the filters,
# read once per chunk, stay in the last-level cache: measured on a 2-core AVX2 EPYC (32 MB L3) against our
# product over whole blocks (`python benchmarks/bench_winograd_layers.py`): x1.2-1.5 with 128-256 x 128-181
# channels on 256-276 px maps (filters 2.4-6.7 MB), x0.5 at 256 x 256 channels (9.4 MB) and below.
# Chunks of 128-256 KB measured best, in whole register tiles of the product (`_whole_tiles`: 7 tiles
# took 1.3-1.45x as long as 6 at 64-128 channels on 148-276 px maps).
CHUNK_BYTES = 256 << 10
FUSED_CACHE_SHARE = 4  # fused where the filters take at most this fraction of the last-level cache
_WORKSPACE = threading.local()


_I, _P = ctypes.c_int, ctypes.c_void_p


def _functions():
    transform_in = cpu_build.function(SOURCE, "winograd_input", None,
                                      [_P, Strides, _P, _I, _I, _I, _I, _I, _I, _I, _I, _P, _I])
    transform_out = cpu_build.function(SOURCE, "winograd_output", None,
                                       [_P, _I, _I, _I, _I, _I, _I, _I, _I, _I, _P, Strides,
                                        ctypes.POINTER(cpu_epilogue.Epilogue), _I])
    if transform_in is None or transform_out is None:
        raise RuntimeError(f"the CPU Winograd transforms are not loaded: {cpu_build.status(SOURCE).reason}")
    return transform_in, transform_out


def _fused():
    fused = cpu_build.function(SOURCE, "winograd_fused", ctypes.c_int,
                               [_P, Strides, _P, _I, _I, _I, _I, _P, _I, _I, _I, _I, _I, _I, _I, _I, _P, Strides,
                                ctypes.POINTER(cpu_epilogue.Epilogue), _I, _I])
    if fused is None:
        raise RuntimeError(f"the CPU Winograd convolution is not loaded: {cpu_build.status(SOURCE).reason}")
    return fused


def channels_last_copy(x: torch.Tensor) -> torch.Tensor:
    """x [B, C, H, W] contiguous (planes) as a channels-last copy in this thread's scratch, by our C transpose
    (torch's copy to channels-last costs as much as the transform saves)."""
    batch, channels, height, width = x.shape
    convert = cpu_build.function(SOURCE, "to_channels_last", None, [_P, _I, _I, _I, _P, _I])
    if convert is None:
        raise RuntimeError(f"the CPU Winograd transforms are not loaded: {cpu_build.status(SOURCE).reason}")
    pixels = _buffer("channels_last", x.numel())
    convert(x.data_ptr(), batch, channels, height * width, pixels.data_ptr(), torch.get_num_threads())
    return pixels.view(batch, height, width, channels).permute(0, 3, 1, 2)


def _buffer(name: str, numel: int) -> torch.Tensor:
    """This thread's scratch buffer `name` with at least `numel` floats, kept between calls."""
    held = getattr(_WORKSPACE, name, None)
    if held is None or held.numel() < numel:
        with torch.inference_mode(False):  # a normal tensor: written in and out of inference mode alike
            held = torch.empty(numel, dtype=torch.float32)
        setattr(_WORKSPACE, name, held)
    return held[:numel]


def _whole_tiles(tiles: int, rows: int) -> int:
    """`tiles` rounded down to a multiple of `rows`, at least `rows`: the products' rows per pass, in whole
    register tiles of our product (`cpu_gemm.tile_rows`), which pays for whole tiles."""
    return max(rows, tiles // rows * rows)


def conv3x3(x: torch.Tensor, u: torch.Tensor | cpu_gemm.Packed, pad: int = 1, gains: torch.Tensor | None = None,
            scale: torch.Tensor | None = None, bias: torch.Tensor | None = None,
            noise: torch.Tensor | None = None, slope: float = 1.0, clamp: float | None = None,
            up: int = 1) -> torch.Tensor:
    """`F.conv2d(x * gains, weight, padding=pad)` for u = `winograd.transform_weight(weight)` ([36, I, O]
    for torch.bmm, or packed for `cpu_gemm`);
    x [B, I, H, W] float32 on the CPU in any layout, gains [B, I] or None; the result channels-last where x
    is channels-last or planes (these are transposed first, by our C code), else contiguous.
    With `up` 2 the weight holds four phases [4 O, I, 3, 3] (`winograd.up2_phases`), interleaved into
    a [B, O, 2 H', 2 W'] result.

    Then, in the output transform's pass: * scale [B, O] + bias [O] + noise ([H', W'] or [B, 1, H', W'],
    of the result's size) (each where given), leaky ReLU of `slope` (1: none), clamp to +-clamp (None: none).
    """
    batch, channels, height, width = x.shape
    packed = isinstance(u, cpu_gemm.Packed)
    columns = u.columns if packed else u.shape[2]
    row_width = u.width if packed else columns  # of the products' rows
    out_ch = columns // (up * up)
    out_h, out_w = height + 2 * pad - 2, width + 2 * pad - 2
    tiles_y, tiles_x = -(-out_h // 4), -(-out_w // 4)
    tiles = batch * tiles_y * tiles_x
    if channels > 1 and x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last):
        x = channels_last_copy(x)  # the transforms read and write whole channel vectors
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and channels > 1 \
        else torch.contiguous_format
    y = torch.empty(batch, out_ch, up * out_h, up * out_w, memory_format=layout)
    epilogue, _kept = cpu_epilogue.epilogue(tuple(y.shape[-2:]), scale, bias, noise, slope, clamp)
    gains = cpu_epilogue.floats(gains)
    x_strides, y_strides = Strides(*x.stride()), Strides(*y.stride())
    gains_ptr = None if gains is None else gains.data_ptr()
    threads = torch.get_num_threads()
    if packed and 4 * u.strips.numel() <= last_level_cache_bytes() // FUSED_CACHE_SHARE:
        # the whole convolution in C, chunk by chunk in each thread's caches
        chunk = _whole_tiles(CHUNK_BYTES // (36 * 4 * (channels + row_width)), cpu_gemm.tile_rows())
        if _fused()(x.data_ptr(), x_strides, gains_ptr, channels, height, width, pad, u.strips.data_ptr(), row_width,
                    out_ch, up, out_h, out_w, tiles_y, tiles_x, tiles, y.data_ptr(), y_strides, ctypes.byref(epilogue),
                    chunk, threads):
            raise MemoryError("the CPU Winograd convolution could not allocate its buffers")
        return y
    transform_in, transform_out = _functions()
    block = _whole_tiles(BLOCK_BYTES // (36 * 4 * max(channels, row_width)), cpu_gemm.tile_rows() if packed else 1)
    for first in range(0, tiles, block):
        count = min(block, tiles - first)
        v = _buffer("input", 36 * count * channels).view(36, count, channels)
        m = _buffer("products", 36 * count * row_width).view(36, count, row_width)
        transform_in(x.data_ptr(), x_strides, gains_ptr, channels, height, width, pad, tiles_y, tiles_x, first, count,
                     v.data_ptr(), threads)
        if packed:
            cpu_gemm.bmm(v, u, m)
        else:
            torch.bmm(v, u, out=m)
        transform_out(m.data_ptr(), row_width, out_ch, up, out_h, out_w, tiles_y, tiles_x, first, count, y.data_ptr(),
                      y_strides, ctypes.byref(epilogue), threads)
    return y


def support(wait_s: float = 0.0) -> Support:
    """Whether the transforms are built and loaded (waiting up to `wait_s`), and what was built or why not."""
    return cpu_build.support(SOURCE, wait_s)
