"""Torch tensors and numpy arrays from a network pickle, each size checked before any view or allocation.

The globals a pickled tensor or array names, as `pickle_reader` table entries:

* `torch.storage._load_from_bytes`: a storage saved by `torch.save` in its legacy format (what
  `Storage.__reduce__` writes). We parse it ourselves, its small pickles through the same reader
  and budget; the element count it claims must fit the bytes that follow, and the result views
  those bytes (no copy).
* `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter`: a view of such a storage. Shape, stride
  and offset must fit the storage (no zero or negative stride over more than one element, no more
  elements than the storage holds); the view's float32 size is charged, since the network built
  from the file will hold that much.
* numpy `dtype`, `scalar`, `_reconstruct` (+ BUILD): plain numeric dtypes only, always a fresh
  copy (never the shared singleton); an array's bytes must equal its shape times its item size.
"""

from __future__ import annotations

import io
import math
import pickle
from typing import Any

import numpy as np
import torch

from .pickle_reader import Allowed, BoundedFile, Marker, Reader, Table

MAX_DIMS = 8
TENSOR_COST = 1024  # a tensor object and its TensorImpl
NUMERIC_KINDS = "biufc"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
LEGACY_HEADER_MAX = 1 << 16  # the small pickles before a legacy storage's bytes
STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "UntypedStorage": torch.uint8,
}
_STORAGE_TYPES: Table = {(module, name): Marker(f"torch.{name}", dtype) for name, dtype in STORAGE_DTYPES.items()
                         for module in ("torch", "torch.storage")}
NDARRAY = Marker("numpy.ndarray")


class Storage:
    """A flat storage read from a pickle: a 1-D tensor over the file's bytes."""

    __slots__ = ("data",)

    def __init__(self, data: torch.Tensor) -> None:
        self.data = data


def _refuse(message: str) -> None:
    raise pickle.UnpicklingError(message)


def _no_hooks(hooks: Any) -> bool:
    return hooks is None or (isinstance(hooks, dict) and not hooks)


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > MAX_DIMS or any(type(v) is not int for v in value):
        _refuse(f"{what} is not a tuple of at most {MAX_DIMS} integers")
    return tuple(value)


# --- torch storages ------------------------------------------------------------------------------
class _PendingStorage:
    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key: str, dtype: torch.dtype, numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel


def _storage_id(reader: Reader, pid: Any) -> _PendingStorage:
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], Marker)
            and pid[1].value is not None and isinstance(pid[2], str) and type(pid[4]) is int and pid[4] >= 0
            and pid[5] is None):
        _refuse("malformed storage record")
    return _PendingStorage(pid[2], pid[1].value, pid[4])


def _load_storage(reader: Reader, data: Any) -> Storage:
    """A legacy `torch.save` of one storage: magic, protocol, sys info, the storage record, its key, its bytes."""
    if not isinstance(data, bytearray):
        _refuse("storage data is not bytes")
    head_bytes = bytes(memoryview(data)[:LEGACY_HEADER_MAX])
    head = io.BytesIO(head_bytes)
    file = BoundedFile(head, len(head_bytes))

    def header(persistent=None) -> Any:
        return reader.nested(file, _STORAGE_TYPES, persistent)

    if header() != LEGACY_MAGIC or header() != LEGACY_PROTOCOL:
        _refuse("storage is not a legacy torch.save (magic number, protocol)")
    info = header()
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        _refuse("storage is not little-endian")
    pending = header(_storage_id)
    keys = header()
    if not isinstance(pending, _PendingStorage) or keys != [pending.key]:
        _refuse("storage record without its one key")
    start = head.tell()
    itemsize = torch.empty(0, dtype=pending.dtype).element_size()
    count = int.from_bytes(memoryview(data)[start:start + 8], "little", signed=True)
    if count != pending.numel or start + 8 + count * itemsize != len(data):
        _refuse(f"storage claims {pending.numel} elements but holds {count} in {len(data) - start - 8} bytes")
    if count == 0:
        return Storage(torch.empty(0, dtype=pending.dtype))
    return Storage(torch.frombuffer(data, dtype=pending.dtype, count=count, offset=start + 8))


# --- torch tensors -------------------------------------------------------------------------------
def _rebuild_tensor(reader: Reader, storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    if not isinstance(storage, Storage):
        _refuse("tensor without a storage")
    size, stride = _ints(size, "tensor shape"), _ints(stride, "tensor stride")
    if type(offset) is not int or len(size) != len(stride) or not isinstance(requires_grad, bool) \
            or not _no_hooks(backward_hooks) or not isinstance(metadata, (type(None), dict)):
        _refuse("malformed tensor record")
    available = storage.data.numel()
    numel = math.prod(size)
    fits = offset >= 0 and all(s >= 0 for s in size) and (
        offset <= available if numel == 0 else
        all(st >= 1 for s, st in zip(size, stride, strict=True) if s > 1)
        and all(st >= 0 for st in stride)
        and numel <= available - offset
        and offset + sum((s - 1) * st for s, st in zip(size, stride, strict=True)) < available)
    if not fits:
        _refuse(f"tensor of shape {size}, stride {stride}, offset {offset} does not fit its storage of "
                f"{available} elements")
    reader.budget.charge(TENSOR_COST + 4 * numel)  # what the network built from it will hold
    return storage.data.as_strided(size, stride, offset)


def _rebuild_parameter(reader: Reader, data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> Any:
    if not isinstance(data, torch.Tensor) or not _no_hooks(backward_hooks):
        _refuse("malformed parameter record")
    return data


# --- numpy ---------------------------------------------------------------------------------------
def _numeric(dtype: Any) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.kind not in NUMERIC_KINDS or dtype.subdtype is not None \
            or dtype.names is not None or dtype.hasobject:
        _refuse("only plain numeric numpy dtypes are allowed")
    return dtype


def _make_dtype(reader: Reader, spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    if isinstance(spec, (bytes, bytearray)):
        spec = bytes(spec).decode("ascii")
    if not isinstance(spec, str) or len(spec) > 8:
        _refuse("malformed numpy dtype")
    return np.dtype(_numeric(np.dtype(spec)), copy=True)  # a copy: BUILD must never reach the shared one


def _set_dtype_state(reader: Reader, dtype: np.dtype, state: Any) -> None:
    """Only the byte order may differ from the dtype's own state; the rest of the file's state is never used."""
    own = dtype.__reduce__()[2]
    same = isinstance(state, tuple) and len(state) == len(own) and all(
        type(a) is type(b) and a == b for i, (a, b) in enumerate(zip(state, own, strict=True)) if i != 1)
    if not same or state[1] not in ("<", ">", "|", "="):
        _refuse("numpy dtype state other than a byte order")
    dtype.__setstate__(own[:1] + (state[1],) + own[2:])


def _make_scalar(reader: Reader, dtype: Any, data: Any = None) -> Any:
    dtype = _numeric(dtype)
    if not isinstance(data, bytearray) or len(data) != dtype.itemsize:
        _refuse("numpy scalar whose bytes do not match its dtype")
    return np.frombuffer(bytes(data), dtype=dtype)[0]


def _reconstruct(reader: Reader, cls: Any, shape: Any, dtype: Any) -> np.ndarray:
    if cls is not NDARRAY or math.prod(_ints(shape, "array shape")) != 0:
        _refuse("only an empty numpy.ndarray may be reconstructed (its state brings the data)")
    return np.empty(0, dtype=_make_dtype(reader, dtype))


def _set_array_state(reader: Reader, array: np.ndarray, state: Any) -> None:
    if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1 and isinstance(state[3], bool)
            and isinstance(state[4], bytearray)):
        _refuse("malformed numpy array state")
    shape, dtype, raw = _ints(state[1], "array shape"), _numeric(state[2]), state[4]
    if any(s < 0 for s in shape) or math.prod(shape) * dtype.itemsize != len(raw):
        _refuse(f"numpy array of shape {shape} and dtype {dtype} with {len(raw)} bytes")
    reader.budget.charge(len(raw))
    array.__setstate__((1, shape, dtype, state[3], bytes(raw)))


_SCALAR = Allowed("numpy scalar", _make_scalar)
_RECONSTRUCT = Allowed("numpy _reconstruct", _reconstruct, set_state=_set_array_state)
GLOBALS: Table = {
    ("torch.storage", "_load_from_bytes"): Allowed("torch storage", _load_storage),
    ("torch._utils", "_rebuild_tensor_v2"): Allowed("torch tensor", _rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): Allowed("torch parameter", _rebuild_parameter),
    ("numpy", "dtype"): Allowed("numpy dtype", _make_dtype, set_state=_set_dtype_state),
    ("numpy", "ndarray"): NDARRAY,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
}
