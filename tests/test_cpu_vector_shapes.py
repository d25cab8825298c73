"""Our C kernels on other CPUs' vectors: the kernel tests again, with the kernels built for an Arm
machine's 4 lanes and an AVX-512 machine's 16 (both with 32 registers, so 12-row product tiles), which
this CPU runs with its own instructions (the compiler splits or narrows the vectors). Lane counts and
tile heights change every loop bound, strip width and remainder in the kernels; the arithmetic is the
same, so the same tolerances hold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kernel_builds import require_built

from autolume_graph.gan.kernels import cpu_build, cpu_gemm

KERNEL_TESTS = ("test_cpu_kernels.py", "test_winograd.py", "test_cpu_fir.py", "test_pointwise.py",
                "test_stylegan3_cpu_fast.py")
NOT_KERNEL_ARITHMETIC = "not choice_is_measured"  # which way is faster here: timing, the same for any build
HERE = Path(__file__).parent


def _run(vectors: str, code: list[str]) -> subprocess.CompletedProcess:
    env = os.environ | {cpu_build.VECTORS_ENV: vectors}
    return subprocess.run([sys.executable, *code], cwd=HERE.parent, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.parametrize(("vectors", "strip", "tile_rows"), [("16x32", 8, 12), ("64x32", 32, 12)])
def test_the_kernels_pass_their_tests_with_another_cpus_vectors(vectors: str, strip: int, tile_rows: int) -> None:
    require_built(cpu_gemm.support)  # a compiler is here
    shape = _run(vectors, ["-c", "from autolume_graph.gan.kernels import cpu_build, cpu_gemm\n"
                                 "assert cpu_build.library(cpu_gemm.SOURCE, 120) is not None\n"
                                 "print(cpu_gemm.strip(), cpu_gemm.tile_rows())"])
    assert shape.returncode == 0, shape.stderr
    assert shape.stdout.split() == [str(strip), str(tile_rows)]  # the build took the shape asked for
    tests = _run(vectors, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", NOT_KERNEL_ARITHMETIC,
                           *(str(HERE / name) for name in KERNEL_TESTS)])
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout, tests.stdout[-2000:]
