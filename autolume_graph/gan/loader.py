"""Open any supported model file as a `StyleGANModel`, or fail with one line naming file and reason.

Supported: NVIDIA and Autolume network pickles (training snapshots or bare generators, read as data
by `safe_pickle`) of every registered family (`family`: StyleGAN2 and StyleGAN3), TensorFlow
StyleGAN2 pickles (converted by `tf_stylegan2`), and our own safetensors format (`safe_format`);
other kinds are refused by name (`unsupported`).
Loading only reads; a failure leaves nothing changed. Every size a file claims is checked before
anything is allocated: by the pickle reader (`pickle_reader`, `pickled_arrays`) and against the
network's structure (`model.build_checked`).

A pickle is read through one pinned descriptor (`file_reads.checked_path`), so the bytes the model
cache hashes and the bytes the reader converts come from the same file; its first load also writes
the converted generator to the model cache and later loads of the same bytes read that (`model_cache`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from autolume_graph.file_reads import FileRefused, checked_path

from . import model_cache
from .family import family_for_record
from .model import StyleGANModel
from .safe_format import is_safe_format, load_safe_model
from .safe_pickle import ModelFileError, read_generator

__all__ = ["ModelFileError", "load_model"]


def load_model(path: str | Path, device: str | torch.device = "cpu", network: str = "G_ema", *,
               cache: bool = True) -> StyleGANModel:
    """The generator in `path` in eval mode on `device` (channels_last on CPU, where it is faster).

    `network` picks a training snapshot's G_ema (default) or G; when the file lacks it the other is
    loaded and `model.load_note` says so. Bad input raises ModelFileError with one line: the path, a colon, the reason.
    `cache=False` reads a pickle without the model cache (neither reads nor writes an entry).
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, not a model file")
    try:
        if is_safe_format(path):
            model = load_safe_model(path)
            note = "" if network == "G_ema" else "our model file holds one network"
        else:
            model, note = _load_pickle(path, network, cache)
    except ModelFileError as exc:
        message = str(exc).splitlines()[0] if str(exc) else "unreadable model"
        raise ModelFileError(message if message.startswith(f"{path}:") else f"{path}: {message}") from None
    except Exception as exc:  # a file we misread must never take the caller down with a traceback
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path}: cannot build network ({reason})") from None
    model = model.to(device).eval().requires_grad_(False)
    model.load_note = note
    return model.set_channels_last(torch.device(device).type == "cpu")


def _load_pickle(path: Path, network: str, cache: bool) -> tuple[StyleGANModel, str]:
    """The generator of a pickle and its note: from the model cache where it holds these bytes, else
    read, built, and written to the cache."""
    try:
        with checked_path(path, "model") as pinned:
            try:
                source = model_cache.source_of(pinned, network) if cache else None
                found = model_cache.lookup(source) if source else None
                if found:
                    return found
                choice = read_generator(pinned, network)
                model = family_for_record(choice.record).build_from_record(choice.record)
                if source:
                    model_cache.remember(source, pinned, model, choice.note)
                return model, choice.note
            except ModelFileError as exc:  # name the caller's path, not the descriptor's
                raise ModelFileError(str(exc).replace(str(pinned), str(path))) from None
    except FileRefused as exc:
        raise ModelFileError(str(exc)) from None
