"""Fused GPU kernels for the GAN layer, and whether they can run here.

Triton ships with CUDA builds of torch; CPU builds lack it, and a CUDA build may still fail to
import it (no compiler toolchain, a driver too old). The fused path is chosen only where
`available` says so, and says why not otherwise. Under Triton's interpreter (TRITON_INTERPRET=1,
set before triton is imported) the same kernels run on CPU tensors, which is how the tests check them.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch

from ..cpu_features import Support


def interpreting() -> bool:
    """Whether Triton runs kernels in its (CPU, numpy) interpreter instead of compiling them."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@functools.cache
def _triton_importable() -> Support:
    if importlib.util.find_spec("triton") is None:
        return Support(False, "triton is not installed (it ships with CUDA builds of torch)")
    try:
        import triton
    except Exception as exc:  # a broken install raises anything from OSError to RuntimeError
        return Support(False, f"triton does not import: {type(exc).__name__}: {exc}".splitlines()[0])
    return Support(True, f"triton {triton.__version__}")


def autograd_needed(*tensors: torch.Tensor | None) -> bool:
    """Whether a result of these tensors must carry gradients, which our C kernels do not compute."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def available(device: torch.device | str) -> Support:
    """Whether the fused kernels can run on `device`: a CUDA device with Triton, or any device under
    Triton's interpreter."""
    return _available(torch.device(device).type, interpreting())


@functools.cache
def _available(device_type: str, interpreter: bool) -> Support:
    found = _triton_importable()
    if not found.available:
        return found
    if interpreter:
        return Support(True, f"{found.reason}, interpreter")
    if device_type != "cuda":
        return Support(False, f"fused kernels are for CUDA, not {device_type}")
    if not torch.cuda.is_available():
        return Support(False, "no CUDA device")
    return Support(True, f"{found.reason} on {torch.cuda.get_device_name()}")
