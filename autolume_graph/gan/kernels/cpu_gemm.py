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
from dataclasses import dataclass
from pathlib import Path

import torch

from ..cpu_features import Support
from . import cpu_build

SOURCE = Path(__file__).with_name("cpu_gemm.c")
_I, _P = ctypes.c_int, ctypes.c_void_p
TRIAL_SHAPE = (36, 192, 256, 256)  # batch, rows, depth, columns: a mid-sized Winograd layer's products
TRIAL_ROUNDS = 5


def _function():
    return cpu_build.function(SOURCE, "gemm_batched", None, [_P, _P, _P, _I, _I, _I, _I, _I])


@functools.cache
def strip() -> int:
    """Columns per packed strip (two vector registers' worth on this CPU); needs the library built."""
    return cpu_build.function(SOURCE, "gemm_strip", ctypes.c_int, [])()


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


@functools.cache
def _measured() -> Support:
    """Both products timed in alternation on the trial shape, each its best of `TRIAL_ROUNDS`."""
    batch, m, k, n = TRIAL_SHAPE
    with torch.inference_mode(False):
        a, b = torch.randn(batch, m, k), torch.randn(batch, k, n)
        packed, out = pack(b), torch.empty(batch, m, n)  # n: whole strips
        runs = {"ours": lambda: bmm(a, packed, out), "torch.bmm": lambda: torch.bmm(a, b, out=out)}
        best = dict.fromkeys(runs, float("inf"))
        for round_ in range(TRIAL_ROUNDS + 1):  # the first round warms both up
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                if round_:
                    best[name] = min(best[name], 1000 * (time.perf_counter() - start))
    figures = f"ours {best['ours']:.1f} ms, torch.bmm {best['torch.bmm']:.1f} ms on {batch}x[{m}x{k}]@[{k}x{n}]"
    faster = best["ours"] < best["torch.bmm"]
    return Support(faster, f"{'ours' if faster else 'torch.bmm'} ({figures})")


def choice(wait_s: float = 0.0) -> Support:
    """Whether our product runs (it is built, waiting up to `wait_s`, and measured faster here), and why."""
    built = cpu_build.support(SOURCE, wait_s)
    if not built.available:
        return Support(False, f"torch.bmm (ours not built: {built.reason})")
    return _measured()
