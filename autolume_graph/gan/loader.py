"""Open any supported model file as a `StyleGANModel`, or fail with one line naming file and reason.

Supported: NVIDIA network pickles (training snapshots or bare generators, read as data by
`safe_pickle`) of StyleGAN2 and StyleGAN3, and our own safetensors format (`safe_format`).
Loading only reads; a failure leaves nothing changed. Every size a file claims is checked before
anything is allocated: by the pickle reader (`pickle_reader`, `pickled_arrays`) and against the
network's structure (`model.build_checked`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from .model import StyleGANModel
from .safe_format import is_safe_format, load_safe_model
from .safe_pickle import ModelFileError, ModuleRecord, read_generator

__all__ = ["ModelFileError", "detect_family", "load_model"]


def detect_family(record: ModuleRecord) -> str:
    """'stylegan3' when the synthesis network starts from a SynthesisInput, else 'stylegan2'."""
    synthesis_input = record.children["synthesis"].children.get("input")
    return "stylegan3" if synthesis_input is not None and synthesis_input.class_name == "SynthesisInput" \
        else "stylegan2"


def _build_from_record(record: ModuleRecord) -> StyleGANModel:
    if detect_family(record) == "stylegan2":
        from .stylegan2 import build_from_record

        return build_from_record(record)
    try:
        stylegan3 = importlib.import_module("autolume_graph.gan.stylegan3")
    except ModuleNotFoundError as exc:
        if exc.name != "autolume_graph.gan.stylegan3":
            raise
        raise ModelFileError("StyleGAN3 not supported yet") from None
    return stylegan3.build_from_record(record)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> StyleGANModel:
    """The generator in `path` in eval mode on `device` (channels_last on CPU, where it is faster).

    Bad input raises ModelFileError with one line: the path, a colon, the reason.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, not a model file")
    try:
        if is_safe_format(path):
            model = load_safe_model(path)
        else:
            model = _build_from_record(read_generator(path))
    except ModelFileError as exc:
        message = str(exc).splitlines()[0] if str(exc) else "unreadable model"
        raise ModelFileError(message if message.startswith(f"{path}:") else f"{path}: {message}") from None
    except Exception as exc:  # a file we misread must never take the caller down with a traceback
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path}: cannot build network ({reason})") from None
    model = model.to(device).eval().requires_grad_(False)
    return model.set_channels_last(torch.device(device).type == "cpu")
