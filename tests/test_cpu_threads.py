"""Which threads our C kernels run their shares on: torch's own OpenMP team where torch loaded a GNU
OpenMP runtime (Linux wheels), so no thread of ours competes with torch's spinning ones for the cores;
our own pool otherwise (and with AUTOLUME_CPU_POOL=own)."""

from __future__ import annotations

import os

import pytest
import torch
from kernel_builds import require_built

from autolume_graph.gan.kernels import cpu_build, cpu_gemm


def _threads() -> set[str]:
    return set(os.listdir("/proc/self/task"))


def _product_on_two_threads() -> torch.Tensor:
    """A product of two row blocks of our gemm, so two threads take shares; returns it."""
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(1, 192, 64, generator=gen), torch.randn(1, 64, cpu_gemm.strip(), generator=gen)
    out = torch.empty(1, 192, cpu_gemm.strip())
    cpu_gemm.bmm(a, cpu_gemm.pack(b), out)
    torch.testing.assert_close(out, a @ b, rtol=1e-5, atol=1e-5)
    return out


@pytest.fixture
def fresh_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOLUME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_build, "_BUILDS", {})
    if torch.get_num_threads() < 2 or not os.path.isdir("/proc/self/task"):
        pytest.skip("needs two torch threads and Linux's thread list")
    if cpu_build.openmp_runtime() is None:
        pytest.skip("torch loaded no GNU OpenMP runtime here: the kernels use their own threads")


def test_the_shares_run_on_torchs_openmp_team_and_start_no_thread(fresh_builds):
    require_built(cpu_gemm.support)
    assert "torch's OpenMP threads" in cpu_gemm.support().reason
    torch.randn(1 << 22).sum()  # torch's team for this thread exists (it does after any operator)
    before = _threads()
    _product_on_two_threads()
    assert _threads() <= before
    runtimes = {line.split()[5] for line in open("/proc/self/maps") if "libgomp" in line and len(line.split()) > 5}
    assert runtimes == {str(cpu_build.openmp_runtime())}  # one runtime in the process: torch's


def test_switched_to_our_own_pool_the_kernels_start_their_threads(fresh_builds, monkeypatch):
    monkeypatch.setenv(cpu_build.POOL_ENV, "own")
    require_built(cpu_gemm.support)
    assert "its own threads" in cpu_gemm.support().reason
    torch.randn(1 << 22).sum()
    before = _threads()
    _product_on_two_threads()  # the first call of this build starts its pool (once per library)
    assert _threads() - before
