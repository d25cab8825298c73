"""Devices: what `auto` picks, one clear line for a device this machine lacks, and the CPU's reference checks
run again on every accelerator torch offers here (CUDA, Apple's MPS)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autolume_graph.devices import CHOICES, available_accelerators, device_problem, resolve_device
from autolume_graph.gan.generate import render_seed
from autolume_graph.gan.loader import load_model

ACCELERATORS = available_accelerators() or [
    pytest.param("none", marks=pytest.mark.skip(reason="torch offers no accelerator here (no CUDA, no MPS)"))]


def test_auto_picks_the_best_device_here_and_a_missing_one_is_named() -> None:
    expected = "cuda" if torch.cuda.is_available() else ("mps" if "mps" in available_accelerators() else "cpu")
    assert resolve_device("auto") == expected
    assert device_problem("cpu") is None
    for device in ("cuda", "mps"):
        assert (device_problem(device) is None) == (device in available_accelerators())
    if "mps" not in available_accelerators():
        assert device_problem("mps").startswith("no Apple GPU (MPS) here")
    assert device_problem("tpu").startswith("unknown device 'tpu'")
    assert set(CHOICES) >= {"auto", "cpu", "cuda", "mps"}


@pytest.mark.skipif("mps" in available_accelerators(), reason="this machine has MPS")
def test_the_cli_refuses_mps_where_there_is_none_in_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "autolume_graph.cli", "run", "--frames", "1", "--no-osc",
                           "--device", "mps"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith("--device mps: no Apple GPU (MPS) here "
                                                         f"(torch {torch.__version__})")


@pytest.mark.parametrize("device", ACCELERATORS)
@pytest.mark.parametrize("name", ["sg2_64_tiny", "sg3t_64_tiny", "sg3r_64_tiny"])
def test_an_accelerator_renders_what_the_cpu_renders(reference_dir: Path, device: str, name: str) -> None:
    """float32 on the accelerator within 1e-4 of the CPU's float32 (which matches NVIDIA's within 1e-5)."""
    path = reference_dir / f"{name}.pkl"
    on_cpu = render_seed(load_model(path, "cpu", cache=False), 7, 0.7)
    on_device = render_seed(load_model(path, device, cache=False), 7, 0.7, device=device).cpu()
    assert (on_cpu - on_device).abs().max().item() <= 1e-4
