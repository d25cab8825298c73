"""The torch devices a show can run on, which of them this machine has, and what `auto` picks.

CUDA (NVIDIA), MPS (Apple Silicon's Metal) and the CPU. Everything that offers a device choice (CLI,
editor, ModelLoader) lists these; asking for one this machine lacks is one clear line, never a crash.
"""

from __future__ import annotations

DEVICES = ("cpu", "cuda", "mps")
CHOICES = ("auto", *DEVICES)


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str) -> str:
    """`auto` is CUDA when present, else Apple's MPS when present, else the CPU; others as given."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "mps" if _mps_available() else "cpu"


def device_problem(device: str) -> str | None:
    """Why `device` (resolved) cannot run here, or None when it can."""
    import torch

    kind = device.split(":", 1)[0]
    if kind == "cpu":
        return None
    if kind == "cuda":
        return None if torch.cuda.is_available() else f"no CUDA device here (torch {torch.__version__})"
    if kind == "mps":
        return None if _mps_available() else f"no Apple GPU (MPS) here (torch {torch.__version__})"
    return f"unknown device {device!r}: {', '.join(CHOICES)}"


def synchronize(device: str) -> None:
    """Wait for the device's queued work (for timing); nothing to wait for on the CPU."""
    import torch

    kind = device.split(":", 1)[0]
    if kind == "cuda":
        torch.cuda.synchronize()
    elif kind == "mps":
        torch.mps.synchronize()


def available_accelerators() -> list[str]:
    """The non-CPU devices this machine has, for tests that run the CPU's reference checks on each."""
    return [device for device in DEVICES[1:] if device_problem(device) is None]
