"""Whether StyleGAN2's layers run their fused Triton kernels (`triton_stylegan2`) on a device, and why.

On CUDA they run where `kernels.available` says Triton can, unless switched off (bench_gpu.py compares
both) or a kernel has failed once: then every layer goes back to the plain PyTorch path for the rest
of the process, so the picture goes on. Under Triton's interpreter they run on CPU tensors too (tests).
"""

from __future__ import annotations

import torch

from . import available, interpreting

CUDA_USES_FUSED = True
_FAILURE: list[str] = []  # the first failure, once a kernel has raised


def kernel_choice(device: torch.device | str) -> tuple[str, str]:
    """The form StyleGAN2's layers take on `device` ("fused" or "eager"), and why."""
    device = torch.device(device)
    if device.type != "cuda" and not interpreting():
        return "eager", f"{device.type}: not CUDA"
    if _FAILURE:
        return "eager", _FAILURE[0]
    if not CUDA_USES_FUSED:
        return "eager", "fused kernels switched off"
    support = available(device)
    return ("fused" if support.available else "eager"), support.reason


def uses_fused(x: torch.Tensor) -> bool:
    """Whether the layer computing from `x` should take the fused kernels."""
    return (x.is_cuda or interpreting()) and kernel_choice(x.device)[0] == "fused"


def record_failure(exc: Exception) -> None:
    """Remember why a fused kernel failed; from now on `kernel_choice` says eager."""
    _FAILURE.append(f"fused kernel failed: {type(exc).__name__}: {exc}".splitlines()[0])
