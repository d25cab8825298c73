"""Fresh large tensors land on transparent huge pages once the package is imported (autolume_graph.huge_pages)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from autolume_graph import huge_pages

MEASURE = """
import resource
import autolume_graph
import torch
from autolume_graph import huge_pages
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    tensor = torch.empty(25_000_000)  # 100 MB: 24,414 pages of 4 KB
    tensor.fill_(1.0)
    del tensor
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4)
print(huge_pages.describe())
"""
PAGES_4K = 25_000_000 * 4 // 4096


def _faults_per_tensor(**env: str) -> tuple[float, str]:
    environment = {k: v for k, v in os.environ.items() if k != huge_pages.SWITCH_ENV} | env
    out = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, env=environment,
                         timeout=120, check=True).stdout.splitlines()
    return float(out[0]), out[1]


def _kernel_offers_huge_pages() -> bool:
    try:
        return "[never]" not in huge_pages.KERNEL_SETTING.read_text()
    except OSError:
        return False


@pytest.mark.skipif(not _kernel_offers_huge_pages(), reason="this kernel offers no transparent huge pages")
def test_importing_the_package_puts_large_tensors_on_huge_pages() -> None:
    faults, described = _faults_per_tensor()
    assert faults < PAGES_4K / 8, f"{faults} page faults for a 100 MB tensor"
    assert described.startswith("asked for")


def test_the_environment_keeps_its_own_choice() -> None:
    faults, described = _faults_per_tensor(**{huge_pages.SWITCH_ENV: "0"})
    assert faults > PAGES_4K / 2  # every 4 KB page faulted in
    assert described == f"off ({huge_pages.SWITCH_ENV}=0)"
