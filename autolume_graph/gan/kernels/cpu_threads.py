"""Our C kernels' threads: a range of work split between `torch.get_num_threads()` threads.

ctypes releases the GIL for the length of each call, so plain Python threads run the kernels in
parallel; the pool is made once, and the calling thread takes the first share itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads() - 1), thread_name_prefix="cpu-kernel")


def split(run: Callable[[int, int], int], total: int) -> list[int]:
    """run(first, last) over [0, total) in contiguous shares, one per thread; the return codes."""
    parts = max(1, min(torch.get_num_threads(), total))
    bounds = [total * i // parts for i in range(parts + 1)]
    others = [_pool().submit(run, first, last) for first, last in zip(bounds[1:-1], bounds[2:], strict=True)]
    codes = [run(bounds[0], bounds[1])]
    return codes + [job.result() for job in others]
