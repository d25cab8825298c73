"""Recognise model files of kinds we do not render, so that the refusal names the kind in one line.

Told apart by what the reader sees, never by running anything: the class names of persistent
modules and of unknown globals (projected-GAN and StyleGAN-T pickle plain torch modules, which
the reader keeps as `Unknown`s naming their class), a record's children and attributes
(StyleGAN-XL's class-embedding mapping and super-resolution stages), a TensorFlow network's build
function (StyleGAN1's `G_style`, ProGAN's `G_paper`), the tensor names of a state dict
(BigGAN, the PyTorch ports of StyleGAN1/ProGAN), and the image channels (only RGB renders through
Preview, NDI and the recorder). A `torch.save` checkpoint (zip or legacy) is opened only to read
its tensor names: its pickle runs through the same restricted reader, tensors as names only.
"""

from __future__ import annotations

import collections
import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from . import pickled_arrays
from .pickle_reader import ITEM_COST, Allowed, BoundedFile, Budget, Reader, Table, Unknown
from .records import ModelFileError, ModuleRecord, TFNetwork

ONLY = "(only StyleGAN2/3)"
CHANNEL_NAMES = {1: "grayscale", 2: "grayscale + alpha", 4: "RGBA"}
MAX_CHECKPOINT_PICKLE = 256 << 20  # a state dict's pickle holds names and shapes, not weights
MAX_KEYS = 100_000

# Classes that projected-GAN and StyleGAN-T generators pickle as plain torch modules; ProGAN's TensorFlow network.
UNKNOWN_KINDS = (
    (re.compile(r"pg_modules\.networks_fastgan\..*|training\.networks_fastgan\..*"), "projected-GAN (FastGAN)"),
    (re.compile(r"pg_modules\..*"), "projected-GAN"),
    (re.compile(r"networks\.(generator|clip|shared)\..*"), "StyleGAN-T"),
    (re.compile(r"tfutil\.Network"), "TensorFlow ProGAN"),  # progressive_growing_of_gans pickles (G, D, Gs) of these
)
TF_KINDS = {"G_style": "StyleGAN1", "G_paper": "ProGAN"}

# Tensor-name patterns of state dicts (a plain dict of tensors, or one under "g_ema" / "generator" ...).
KEY_KINDS: tuple[tuple[Callable[[set[str]], bool], str], ...] = (
    (lambda k: _any(k, r"(.*\.)?shared\.weight") and _any(k, r"(.*\.)?blocks\.\d+\..*"), "BigGAN"),
    (lambda k: _any(k, r"(.*\.)?gen_z\.weight(_orig)?") or _any(k, r"(.*\.)?embeddings\.weight")
     and _any(k, r".*generator\.layers\.\d+\..*"), "BigGAN"),
    (lambda k: _any(k, r"(.*\.)?g_synthesis\..*") or _any(k, r"(.*\.)?progression\.\d+\..*")
     and _any(k, r"(.*\.)?style\.\d+\..*"), "StyleGAN1"),
    (lambda k: _any(k, r"(.*\.)?(scaleLayers|toRGBLayers|formatLayer)\b.*") or _any(k, r"(.*\.)?progression\.\d+\..*"),
     "ProGAN"),
    (lambda k: _any(k, r"(.*\.)?convs\.\d+\.conv\.weight") and _any(k, r"(.*\.)?to_rgbs\.\d+\..*"),
     "rosinality's stylegan2-pytorch"),
)


def _any(keys: set[str], pattern: str) -> bool:
    compiled = re.compile(pattern)
    return any(compiled.fullmatch(key) for key in keys)


def refuse(path: str | Path, kind: str) -> None:
    raise ModelFileError(f"{path}: {kind} generators are not supported {ONLY}")


def check_unknown(path: str | Path, unknown: Unknown) -> None:
    """A generator of a class the reader does not know: name its kind where the class says it."""
    for pattern, kind in UNKNOWN_KINDS:
        if pattern.fullmatch(unknown.name):
            refuse(path, kind)


def check_tf_network(path: str | Path, net: TFNetwork) -> None:
    """A TensorFlow network that is not StyleGAN2's `G_main`: StyleGAN1, ProGAN, or another by its build function."""
    func = net.build_func_name.rsplit(".", 1)[-1]
    if func in TF_KINDS:
        refuse(path, f"TensorFlow {TF_KINDS[func]}")
    if func != "G_main":
        raise ModelFileError(f"{path}: TensorFlow network {net.name!r} built by {func!r} is not a StyleGAN2 "
                             f"generator {ONLY}")


def check_record(path: str | Path, record: ModuleRecord) -> None:
    """A generator record of a kind we do not render: StyleGAN-XL, or images not RGB."""
    mapping = record.children.get("mapping")
    if record.class_name == "SuperresGenerator" or "path_stem" in record.attrs or mapping is not None and (
            "embed_proj" in mapping.children or "embed" in mapping.foreign):
        refuse(path, "StyleGAN-XL")
    channels = record.attrs.get("img_channels")
    if isinstance(channels, int) and channels != 3:
        name = CHANNEL_NAMES.get(channels, "not RGB")
        raise ModelFileError(f"{path}: networks with {channels} image channels ({name}) are not supported "
                             f"(only RGB: 3 channels)")


def check_data(path: str | Path, data: Any) -> None:
    """A file without a generator we read: a state dict (BigGAN, ports of StyleGAN1/ProGAN) or a torch.save."""
    if type(data) is int and data == pickled_arrays.LEGACY_MAGIC:
        _refuse_checkpoint(path, lambda: _legacy_checkpoint(Path(path)))
    for item in data if isinstance(data, tuple) else ():
        if isinstance(item, Unknown):
            check_unknown(path, item)
    keys = state_dict_keys(data)
    if keys:
        _refuse_state_dict(path, keys)


def check_file(path: str | Path) -> None:
    """Before unpickling: a `torch.save` zip checkpoint is refused, named by its tensor names where they tell."""
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            _refuse_checkpoint(path, lambda: _zip_checkpoint(Path(path)))


def _refuse_checkpoint(path: str | Path, read: Callable[[], Any]) -> None:
    try:
        data = read()
    except Exception as exc:  # a checkpoint we cannot read is still a checkpoint: say so in one line
        raise ModelFileError(f"{path}: a PyTorch checkpoint (torch.save) we cannot read ({str(exc)[:80] or exc!r}), "
                             f"not a network pickle {ONLY}") from None
    keys = state_dict_keys(data)
    if keys:
        _refuse_state_dict(path, keys)
    raise ModelFileError(f"{path}: a PyTorch checkpoint (torch.save), not a network pickle {ONLY}")


def _zip_checkpoint(path: Path) -> Any:
    """The object of a zip `torch.save` file: its `data.pkl`, storages left unread."""
    with zipfile.ZipFile(path) as archive:
        entry = next((i for i in archive.infolist() if i.filename.endswith("/data.pkl")), None)
        if entry is None or entry.file_size > MAX_CHECKPOINT_PICKLE:
            raise ValueError("no data.pkl of a reasonable size")
        raw = archive.read(entry)
    return _names_only(BoundedFile(io.BytesIO(raw), len(raw)), len(raw))


def _refuse_state_dict(path: str | Path, keys: set[str]) -> None:
    kind = next((kind for matches, kind in KEY_KINDS if matches(keys)), None)
    if kind is not None:
        refuse(path, kind)
    raise ModelFileError(f"{path}: a PyTorch state dict (weights without the network's structure) is not a "
                         f"network pickle {ONLY}")


def state_dict_keys(data: Any, prefix: str = "", depth: int = 0) -> set[str]:
    """Dotted tensor names of a state dict, also one nested under a checkpoint's keys; empty if there is none."""
    if not isinstance(data, dict) or depth > 3:
        return set()
    keys: set[str] = set()
    for key, value in list(data.items())[:MAX_KEYS]:
        if not isinstance(key, str):
            continue
        if isinstance(value, dict):
            keys |= state_dict_keys(value, f"{prefix}{key}.", depth + 1)
        elif _is_tensor(value):
            keys.add(prefix + key)
    return keys


def _is_tensor(value: Any) -> bool:
    return isinstance(value, (_TensorName, torch.Tensor))


class _TensorName:
    """A checkpoint's tensor, of which only the existence is read."""

    __slots__ = ()


def _tensor_name(reader: Reader, *args: Any) -> _TensorName:
    return _TensorName()


def _parameter(reader: Reader, data: Any, *args: Any) -> Any:
    return data


def _ordered_dict(reader: Reader, *args: Any) -> collections.OrderedDict:
    made = collections.OrderedDict(*args)
    reader.budget.charge(ITEM_COST * len(made))
    return made


NAMES_ONLY: Table = {
    ("torch._utils", "_rebuild_tensor_v2"): Allowed("tensor name", _tensor_name),
    ("torch._utils", "_rebuild_parameter"): Allowed("parameter", _parameter),
    ("collections", "OrderedDict"): Allowed("OrderedDict", _ordered_dict, fills=True, newobj=True),
}


def _names_only(file: BoundedFile, size: int) -> Any:
    """A checkpoint pickle whose storages (persistent ids) are never read: tensors become `_TensorName`s."""
    return Reader(file, Budget.for_size(size), NAMES_ONLY, lambda reader, pid: _TensorName()).load()


def _legacy_checkpoint(path: Path) -> Any:
    """The object of a legacy `torch.save` file: after its magic number, protocol and system info."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        file = BoundedFile(f, size)
        for _ in range(3):
            Reader(file, Budget.for_size(size), {}).load()
        return _names_only(file, size)
