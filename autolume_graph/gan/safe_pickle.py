"""Read NVIDIA StyleGAN network pickles as data, never as code, within a memory budget.

Training snapshots pickle every network module through `torch_utils.persistence`,
embedding the module's Python source. We allow only the handful of globals such files
reference, turn each persistent object into a plain `ModuleRecord` (class name,
attributes, parameters, buffers, children) and never import or run the embedded source.
The reader (`pickle_reader`) lets no file change anything but what it made itself and stops a
file that would take more than 3x its size + 32 MiB; tensors and arrays are checked against
their storage first (`pickled_arrays`).
"""

from __future__ import annotations

import collections
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import pickled_arrays
from .pickle_reader import ITEM_COST, Allowed, BoundedFile, Budget, Reader, Table

RECORD_COST = 2048  # a ModuleRecord: the object and its five dicts
MAX_MODULE_DEPTH = 64
MAX_MODULES = 10_000  # per tree, a module shared by two parents counting twice


class ModelFileError(ValueError):
    """A model file that cannot be read; the message is one line naming the file."""


@dataclass
class ModuleRecord:
    """One persistent torch module of a pickle, as plain data.

    Tensors read from a pickle view the file's bytes: treat them as read-only.
    """

    class_name: str
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, torch.Tensor] = field(default_factory=dict)
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    children: dict[str, ModuleRecord] = field(default_factory=dict)
    init_kwargs: dict[str, Any] = field(default_factory=dict)

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Every parameter and buffer under this module, keyed by dotted name."""
        out = {prefix + k: v for k, v in {**self.params, **self.buffers}.items() if v is not None}
        for name, child in self.children.items():
            out.update(child.state_dict(f"{prefix}{name}."))
        return out

    def walk(self, prefix: str = ""):
        """Yield (dotted name, record) for this module and every descendant."""
        yield prefix.rstrip("."), self
        for name, child in self.children.items():
            yield from child.walk(f"{prefix}{name}.")


def _record_from_persistent(reader: Reader, meta: Any) -> ModuleRecord:
    """A persistent module as a record; its tree is bounded in depth and size (children are complete)."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise pickle.UnpicklingError("malformed persistent object")
    state = meta["state"]
    children, depth, modules = {}, 1, 1
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        known = reader.registry.get(id(child))
        if not isinstance(child, ModuleRecord) or known is None or known[0] is not child:
            raise pickle.UnpicklingError(f"submodule {name!r} is not a persistent module")
        children[name] = child
        depth, modules = max(depth, known[1] + 1), modules + known[2]
    if depth > MAX_MODULE_DEPTH or modules > MAX_MODULES:
        raise pickle.UnpicklingError(f"modules nested deeper than {MAX_MODULE_DEPTH} or over {MAX_MODULES} of them")
    reader.budget.charge(RECORD_COST + ITEM_COST * len(state))
    record = ModuleRecord(
        class_name=str(meta.get("class_name")),
        attrs={k: v for k, v in state.items() if not k.startswith("_") and k != "training"},
        params=dict(state.get("_parameters") or {}),
        buffers=dict(state.get("_buffers") or {}),
        children=children,
        init_kwargs=dict(state.get("_init_kwargs") or {}),
    )
    reader.registry[id(record)] = (record, depth, modules)
    return record


class EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict: a dict whose keys also read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def _container(kind: type) -> Callable[..., Any]:
    def make(reader: Reader, *args: Any) -> Any:
        made = kind(*args)
        reader.budget.charge(ITEM_COST * len(made))
        return made

    return make


SNAPSHOT_GLOBALS: Table = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"):
        Allowed("persistent module", _record_from_persistent),
    ("dnnlib.util", "EasyDict"): Allowed("EasyDict", _container(EasyDict), fills=True, newobj=True),
    ("collections", "OrderedDict"): Allowed("OrderedDict", _container(collections.OrderedDict), fills=True,
                                            newobj=True),
    **pickled_arrays.GLOBALS,
}


def read_pickle(path: str | Path) -> Any:
    """Unpickle `path` allowing only StyleGAN snapshot globals; raise ModelFileError otherwise."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            return Reader(BoundedFile(f, size), Budget.for_size(size), SNAPSHOT_GLOBALS).load()
    except ModelFileError:
        raise
    except EOFError:
        raise ModelFileError(f"{path}: truncated pickle") from None
    except Exception as exc:  # any failure inside unpickling is a bad file, never a crash
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(f"{path}: cannot read network pickle ({reason})") from None


NETWORKS = ("G_ema", "G")  # which generator of a training snapshot: the averaged one (default) or the trained


@dataclass
class GeneratorChoice:
    """The generator record read from a file, which network it is, and why, if not the one asked for."""

    record: ModuleRecord
    network: str
    note: str = ""


def read_generator(path: str | Path, network: str = "G_ema") -> GeneratorChoice:
    """The generator of a snapshot: `network` (G_ema or G), else the other with a note; or a bare generator."""
    if network not in NETWORKS:
        raise ModelFileError(f"network must be one of {', '.join(NETWORKS)}, not {network!r}")
    data = read_pickle(path)
    if isinstance(data, ModuleRecord):
        choice = GeneratorChoice(data, network, "" if network == "G_ema" else "the file holds one network")
    elif isinstance(data, dict):
        found = [k for k in (network, *NETWORKS) if isinstance(data.get(k), ModuleRecord)]
        if not found:
            raise ModelFileError(f"{path}: pickle holds no generator (no G_ema or G)")
        note = "" if found[0] == network else f"the file has no {network}; showing {found[0]}"
        choice = GeneratorChoice(data[found[0]], found[0], note)
    else:
        raise ModelFileError(f"{path}: pickle holds a {type(data).__name__}, not a generator")
    record = choice.record
    if "synthesis" not in record.children or "mapping" not in record.children:
        raise ModelFileError(f"{path}: {record.class_name} is not a StyleGAN generator")
    return choice
