"""Timing the ways of doing one thing, once per process, to pick a kernel on the CPU it runs on.

Each turn runs a way twice and times the second run: right after a torch operator its OpenMP threads
keep spinning for a while and would slow whatever comes first, and in a frame that is not the same
way again. The ways alternate, so a slow spell of the machine weighs on all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .cpu_features import Support


def best_ms(ways: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Each way's best time in milliseconds over `rounds` alternating turns."""
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(rounds):
        for name, run in ways.items():
            run()
            start = time.perf_counter()
            run()
            best[name] = min(best[name], 1000 * (time.perf_counter() - start))
    return best


def ours_if_faster(ours: Callable[[], object], name: str, theirs: Callable[[], object], rounds: int,
                   trial: str) -> Support:
    """Available where `ours` beat `theirs` (named `name`), the timings on `trial` in the reason."""
    best = best_ms({"ours": ours, name: theirs}, rounds)
    faster = best["ours"] < best[name]
    return Support(faster, f"{'ours' if faster else name} (a {trial}: ours {best['ours']:.1f} ms, "
                           f"{name} {best[name]:.1f} ms)")
