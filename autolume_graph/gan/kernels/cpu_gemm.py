"""Our batched matrix product (`cpu_gemm.c`) for the Winograd convolution, where it beats torch's.

The BLAS torch ships with is fast on the CPUs it was tuned for and slow on others (MKL on a 2-core
AMD EPYC: 60-100 GFLOP/s where oneDNN's convolutions reach 120-130 on the same cores). Which product
runs is decided once per process by timing both on a Winograd-sized product (`choice`), and reported.
Ours takes the constant operand (the transformed filters) packed in strips of `strip()` columns.
"""

from __future__ import annotations

import ctypes
import functools
import time
from pathlib import Path

import torch

from ..cpu_features import Support
from . import cpu_build

SOURCE = Path(__file__).with_name("cpu_gemm.c")
_I, _P = ctypes.c_int, ctypes.c_void_p
TRIAL_SHAPE = (36, 192, 256, 256)  # batch, rows, depth, columns: a mid-sized Winograd layer's products
TRIAL_ROUNDS = 3


def _function():
    return cpu_build.function(SOURCE, "gemm_batched", None, [_P, _P, _P, _I, _I, _I, _I, _I])


@functools.cache
def strip() -> int:
    """Columns per packed strip (two vector registers' worth on this CPU); needs the library built."""
    return cpu_build.function(SOURCE, "gemm_strip", ctypes.c_int, [])()


def pack(b: torch.Tensor) -> torch.Tensor:
    """[batch, k, n] -> [batch, n / strip, k, strip], the layout `bmm` takes; n a multiple of `strip()`."""
    batch, k, n = b.shape
    return b.reshape(batch, k, n // strip(), strip()).permute(0, 2, 1, 3).contiguous()


def unpack(packed: torch.Tensor) -> torch.Tensor:
    """`pack`'s inverse: [batch, n / strip, k, strip] -> [batch, k, n]."""
    batch, strips, k, width = packed.shape
    return packed.permute(0, 2, 1, 3).reshape(batch, k, strips * width)


def bmm(a: torch.Tensor, packed: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out = a @ unpack(packed): a [batch, m, k] and out [batch, m, n] contiguous float32 on the CPU."""
    batch, m, k = a.shape
    _function()(a.data_ptr(), packed.data_ptr(), out.data_ptr(), batch, m, k, out.shape[2], torch.get_num_threads())
    return out


def _best_ms(run) -> float:
    run()
    best = float("inf")
    for _ in range(TRIAL_ROUNDS):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return 1000 * best


@functools.cache
def _measured() -> Support:
    batch, m, k, n = TRIAL_SHAPE
    with torch.inference_mode(False):
        a, b = torch.randn(batch, m, k), torch.randn(batch, k, n)
        packed, out = pack(b), torch.empty(batch, m, n)
        theirs = _best_ms(lambda: torch.bmm(a, b, out=out))
        ours = _best_ms(lambda: bmm(a, packed, out))
    figures = f"ours {ours:.1f} ms, torch.bmm {theirs:.1f} ms on {batch}x[{m}x{k}]@[{k}x{n}]"
    return Support(ours < theirs, f"{'ours' if ours < theirs else 'torch.bmm'} ({figures})")


def choice(wait_s: float = 0.0) -> Support:
    """Whether our product runs (it is built, waiting up to `wait_s`, and measured faster here), and why."""
    built = cpu_build.support(SOURCE, wait_s)
    if not built.available:
        return Support(False, f"torch.bmm (ours not built: {built.reason})")
    return _measured()
