"""Running Triton kernels under its CPU interpreter from a test: in one child process, so TRITON_INTERPRET (read
when triton is imported) never leaks into other tests."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch


def interpreted(tmp_path_factory: pytest.TempPathFactory, cases: dict, script: str) -> dict:
    """Every case through `script` (a test file whose `__main__` reads cases.pt and writes out.pt) in one child
    process under the interpreter; its results."""
    folder = tmp_path_factory.mktemp("triton")
    torch.save(cases, folder / "cases.pt")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, script, str(folder / "cases.pt"), str(folder / "out.pt")], env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"the interpreted kernels failed:\n{done.stderr[-3000:]}")
    return torch.load(folder / "out.pt")
