"""Our batched matrix product (`cpu_gemm.c`) for the Winograd convolution, where it beats torch's.

The BLAS torch ships with is fast on the CPUs it was tuned for and slow on others (MKL on a 2-core
AMD EPYC: 60-100 GFLOP/s where oneDNN's convolutions reach 120-130 on the same cores). Which product
runs is decided once per process by timing a Winograd layer with each (`winograd.products`): alone,
the two compare differently than between the transforms, where torch's OpenMP threads, still spinning
after each product, share the cores with our transforms' threads. Ours takes the constant operand (the
transformed filters) packed in strips of `strip()` columns.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from ..cpu_features import Support
from . import cpu_build

SOURCE = Path(__file__).with_name("cpu_gemm.c")
_I, _P = ctypes.c_int, ctypes.c_void_p


def _function():
    return cpu_build.function(SOURCE, "gemm_batched", None, [_P, _P, _P, _I, _I, _I, _I, _I])


@functools.cache
def strip() -> int:
    """Columns per packed strip (two vector registers' worth on this CPU); needs the library built."""
    return cpu_build.function(SOURCE, "gemm_strip", ctypes.c_int, [])()


@functools.cache
def tile_rows() -> int:
    """Rows of the left operand per register tile: callers that choose how many rows a product gets
    pay for whole tiles of them (7 rows cost as much as 12); needs the library built."""
    return cpu_build.function(SOURCE, "gemm_tile_rows", ctypes.c_int, [])()


@dataclass(frozen=True)
class Packed:
    """A constant right-hand operand [batch, k, columns] in our product's layout: `strips`
    [batch, width / strip, k, strip], the last strip padded with zero columns up to `width`."""

    strips: torch.Tensor
    columns: int

    @property
    def width(self) -> int:
        return self.strips.shape[1] * self.strips.shape[3]

    @property
    def requires_grad(self) -> bool:
        return self.strips.requires_grad


def pack(b: torch.Tensor) -> Packed:
    """[batch, k, n] in `bmm`'s layout."""
    batch, k, n = b.shape
    padded = torch.nn.functional.pad(b, (0, -n % strip()))
    return Packed(padded.reshape(batch, k, -1, strip()).permute(0, 2, 1, 3).contiguous(), n)


def unpack(packed: Packed) -> torch.Tensor:
    """`pack`'s inverse: [batch, k, columns]."""
    strips = packed.strips
    return strips.permute(0, 2, 1, 3).reshape(strips.shape[0], strips.shape[2], -1)[:, :, :packed.columns]


def bmm(a: torch.Tensor, packed: Packed, out: torch.Tensor) -> torch.Tensor:
    """out = a @ unpack(packed), padding columns included: a [batch, m, k] and out [batch, m, packed.width]
    contiguous float32 on the CPU."""
    batch, m, k = a.shape
    _function()(a.data_ptr(), packed.strips.data_ptr(), out.data_ptr(), batch, m, k, packed.width,
                torch.get_num_threads())
    return out


def support(wait_s: float = 0.0) -> Support:
    """Whether our product is built and loaded (waiting up to `wait_s`), and what was built or why not."""
    return cpu_build.support(SOURCE, wait_s)
