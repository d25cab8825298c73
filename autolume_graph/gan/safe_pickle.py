"""Read NVIDIA StyleGAN network pickles as data, never as code.

Training snapshots pickle every network module through `torch_utils.persistence`,
embedding the module's Python source. We allow only the handful of globals such files
reference, turn each persistent object into a plain `ModuleRecord` (class name,
attributes, parameters, buffers, children) and never import or run the embedded source.
"""

from __future__ import annotations

import collections
import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


class ModelFileError(ValueError):
    """A model file that cannot be read; the message is one line naming the file."""


@dataclass
class ModuleRecord:
    """One persistent torch module of a pickle, as plain data."""

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


def _record_from_persistent(meta: Any) -> ModuleRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise pickle.UnpicklingError("malformed persistent object")
    state = meta["state"]
    children = {}
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, ModuleRecord):
            raise pickle.UnpicklingError(f"submodule {name!r} is not a persistent module")
        children[name] = child
    attrs = {k: v for k, v in state.items() if not k.startswith("_") and k != "training"}
    return ModuleRecord(
        class_name=str(meta.get("class_name")),
        attrs=attrs,
        params=dict(state.get("_parameters") or {}),
        buffers=dict(state.get("_buffers") or {}),
        children=children,
        init_kwargs=dict(state.get("_init_kwargs") or {}),
    )


def _tensor_from_bytes(data: bytes) -> Any:
    # Storages are nested torch archives; torch's weights-only loader is itself restricted.
    return torch.load(io.BytesIO(data), weights_only=True)


def _safe_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError("object dtype is not allowed")
    return dtype


def _safe_scalar(dtype: np.dtype, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise pickle.UnpicklingError("only plain numeric numpy scalars are allowed")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _safe_reconstruct(cls: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    if cls is not np.ndarray:
        raise pickle.UnpicklingError("only numpy.ndarray may be reconstructed")
    return np.ndarray.__new__(np.ndarray, shape, _safe_dtype(dtype_code))


class EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict: a dict whose keys also read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _record_from_persistent,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _tensor_from_bytes,
    ("numpy.core.multiarray", "scalar"): _safe_scalar,
    ("numpy._core.multiarray", "scalar"): _safe_scalar,
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _safe_dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def read_pickle(path: str | Path) -> Any:
    """Unpickle `path` allowing only StyleGAN snapshot globals; raise ModelFileError otherwise."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a file")
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f).load()
    except ModelFileError:
        raise
    except EOFError:
        raise ModelFileError(f"{path}: truncated pickle") from None
    except Exception as exc:  # any failure inside unpickling is a bad file, never a crash
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(f"{path}: cannot read network pickle ({reason})") from None


def read_generator(path: str | Path) -> ModuleRecord:
    """The generator of a snapshot: `G_ema` preferred, then `G`, or a bare generator module."""
    data = read_pickle(path)
    if isinstance(data, ModuleRecord):
        record = data
    elif isinstance(data, dict):
        record = next((data[k] for k in ("G_ema", "G") if isinstance(data.get(k), ModuleRecord)), None)
        if record is None:
            raise ModelFileError(f"{path}: pickle holds no generator (no G_ema or G)")
    else:
        raise ModelFileError(f"{path}: pickle holds a {type(data).__name__}, not a generator")
    if "synthesis" not in record.children or "mapping" not in record.children:
        raise ModelFileError(f"{path}: {record.class_name} is not a StyleGAN generator")
    return record
