"""Our own model file: one `.safetensors` file whose header carries the JSON settings. No pickle.

A single file (rather than a weights + config pair) is saved atomically (temp file, then rename) and
cannot lose its config. The header metadata key `autolume_graph` holds JSON with `format`,
`version`, `family`, `settings` (the model's `settings()`) and, where the writer has any, `extra`: a
flat mapping of strings kept with the model (the model cache's key and load note; files without it
load as before, and readers that predate it ignore it). The registered family's
`build_from_settings` (`family.family_named`) rebuilds the structure (bounded and matched against the tensors first,
`model.build_checked`) and the tensors load by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from autolume_graph.atomic import write_with

from .family import family_named
from .model import StyleGANModel, build_checked
from .safe_pickle import ModelFileError

FORMAT = "autolume-graph-model"
VERSION = 1
SUFFIX = ".safetensors"
METADATA_KEY = "autolume_graph"


def save_model(model: StyleGANModel, path: str | Path, *, overwrite: bool = True,
               extra: dict[str, str] | None = None) -> Path:
    """Write `model` (and the strings `extra`, if any) to `path` atomically (`atomic.write_with`);
    `overwrite=False` never replaces an existing file but takes the next free name. Returns where it went."""
    tensors = _separate_float32(model)
    # One metadata key: safetensors writes several in hash order, which would vary the bytes per run.
    header = {"format": FORMAT, "version": VERSION, "family": model.family, "settings": model.settings()}
    if extra:
        header["extra"] = dict(extra)
    metadata = {METADATA_KEY: json.dumps(header, sort_keys=True)}
    return write_with(path, lambda temp: safetensors.torch.save_file(tensors, str(temp), metadata=metadata),
                      overwrite=overwrite)


def _separate_float32(model: StyleGANModel) -> dict[str, torch.Tensor]:
    """The model's tensors as float32 on CPU. safetensors refuses tensors that share memory (a filter
    buffer several layers hold), so those are copied; the rest are written from where they are."""
    tensors, storages = {}, set()
    for name, value in model.state_dict().items():
        tensor = value.detach().to("cpu", torch.float32).contiguous()
        if tensor.untyped_storage().data_ptr() in storages:
            tensor = tensor.clone()
        storages.add(tensor.untyped_storage().data_ptr())
        tensors[name] = tensor
    return tensors


def is_safe_format(path: Path) -> bool:
    """True when the file starts like a safetensors file (8-byte header length, then JSON)."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def load_safe_model(path: Path) -> StyleGANModel:
    """Rebuild a model saved by `save_model`; errors are ModelFileError without the path prefix."""
    return load_safe_entry(path)[0]


def load_safe_entry(path: Path) -> tuple[StyleGANModel, dict[str, str]]:
    """`load_safe_model` and the file's `extra` strings (empty where it has none or they are not strings)."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as exc:  # a corrupt header or payload is a bad file, never a crash
        raise ModelFileError(f"not a readable safetensors file ({_first_line(exc)})") from None
    try:
        header = json.loads(metadata[METADATA_KEY])
    except (KeyError, ValueError):
        raise ModelFileError("safetensors file without autolume-graph model settings") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError("safetensors file without autolume-graph model settings")
    if header.get("version") != VERSION:
        raise ModelFileError(f"model format version {header.get('version')} is not supported")
    family = family_named(header.get("family"))
    if not isinstance(header.get("settings"), dict):
        raise ModelFileError("model settings are not a mapping")
    extra = header.get("extra")
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in [*extra, *extra.values()]):
        extra = {}
    # Settings are bounded and matched against the file's tensors before the network is allocated.
    model = build_checked(family.build_from_settings, header["settings"], tensors).eval().requires_grad_(False)
    return model, extra


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
