"""Shared, bounded model cache that loads off the caller's thread and remembers failures.

Nodes on the render thread call `request` every frame they need a model: it returns at once with a
Future. A model loaded once is shared by every graph naming it (keyed by resolved path, file mtime,
device and network: a training snapshot's G_ema or G; least recently used beyond `capacity` is
dropped). A failed load is remembered by path, mtime and network and answered with the same
one-line ModelFileError until the file changes.

Loads run in a `ReadPool`: only a regular file within the model size limit is read (a FIFO, a device
or a directory is refused at once), and a load stuck past `LOAD_DEADLINE_S` (a hung file system) fails
and gives its place to the next, so no file can keep later models from loading.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path

import torch

from autolume_graph import workspace
from autolume_graph.failure_memo import FailureMemo
from autolume_graph.file_reads import FileRefused, ReadPool, checked_path
from autolume_graph.recent import push_recent, read_recent

from .default_model import cache_dir, default_model_file, default_model_path
from .loader import load_model
from .model import StyleGANModel
from .safe_format import SUFFIX
from .safe_pickle import ModelFileError

DEFAULT_NAME = "default"
MODEL_SUFFIXES = (".pkl", SUFFIX)
RECENT_FILE = "recent_models.json"
RECENT_MAX = 10
_DEFAULT_MTIME = -1  # the default model's bytes are fixed by its versioned name
LOAD_DEADLINE_S = 300.0  # the largest pickles take tens of seconds on a slow machine
FAILURES_KEPT = 64


def models_dir() -> Path:
    """The workspace's models folder (`$AUTOLUME_MODELS`, else `models/` in the working folder): the one
    the Models tab lists and a saved mix goes into."""
    return workspace.folder("models")


def resolve_model_path(name: str | Path, folder: Path | None = None) -> Path:
    """"default", a path, or a bare name (with or without suffix) looked up in the models folder."""
    if str(name) == DEFAULT_NAME:
        return default_model_file()
    path = Path(name).expanduser()
    if path.is_absolute() or path.exists() or len(path.parts) > 1:
        return path.resolve()
    folder = folder or models_dir()
    candidates = [folder / path.name] + [folder / (path.name + s) for s in MODEL_SUFFIXES if not path.suffix]
    return next((c for c in candidates if c.exists()), candidates[0]).resolve()


def list_models(folder: Path | None = None) -> list[Path]:
    """Network pickles and our safetensors models directly in `folder` (default: the models folder)."""
    folder = folder or models_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)


def recent_models() -> list[str]:
    """Most recently loaded model paths, newest first (empty when the list is missing or corrupt)."""
    return read_recent(cache_dir() / RECENT_FILE, RECENT_MAX)


def add_recent_model(path: str | Path) -> None:
    """Put `path` first in the recent list (atomic write)."""
    push_recent(cache_dir() / RECENT_FILE, path, RECENT_MAX)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _load_checked(path: Path, device: str | torch.device, network: str) -> StyleGANModel:
    """`load_model` on exactly the file checked to be a regular file within the model size limit."""
    try:
        with checked_path(path, "model") as pinned:
            try:
                return load_model(pinned, device, network=network)
            except ModelFileError as exc:  # name the user's path, not the descriptor's
                raise ModelFileError(str(exc).replace(str(pinned), str(path))) from None
    except FileRefused as exc:
        raise ModelFileError(str(exc)) from None


def _failed(message: str) -> Future:
    future: Future = Future()
    future.set_exception(ModelFileError(message))
    return future


class ModelStore:
    """Loads models in a small thread pool; see the module docstring."""

    def __init__(self, capacity: int = 4, workers: int = 2, folder: Path | None = None,
                 deadline: float = LOAD_DEADLINE_S) -> None:
        self.capacity = capacity
        self.folder = folder
        # a load that waits 5 s behind slow or stuck ones gets a spare thread; a stuck one is written off
        self._pool = ReadPool("model-load", workers=workers, spare=2, deadline=deadline, patience=5.0)
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple[Path, int | None, str, str], Future] = OrderedDict()
        self._failures = FailureMemo(FAILURES_KEPT)  # by (path, mtime, network): a changed file is tried again

    def request(self, name: str | Path, device: str | torch.device = "cpu", network: str = "G_ema") -> Future:
        """A Future of the model; never blocks. Its exception, if any, is a one-line ModelFileError.

        `network` picks a training snapshot's G_ema or G (see `load_model`; the model's `load_note`
        says when the file lacked it and the other was loaded)."""
        is_default = str(name) == DEFAULT_NAME
        path = resolve_model_path(name, self.folder)
        mtime = _DEFAULT_MTIME if is_default else _mtime(path)
        with self._lock:
            message = self._failures.failure((path, mtime, network))
            if message is not None:
                return _failed(message)
            key = (path, mtime, str(device), network)
            future = self._models.get(key)
            if future is None:
                future = self._pool.submit(self._load, path, mtime, device, network, is_default, name=str(path))
                self._models[key] = future
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)
            else:
                self._models.move_to_end(key)
            return future

    def get(self, name: str | Path, device: str | torch.device = "cpu", timeout: float | None = None,
            network: str = "G_ema") -> StyleGANModel:
        """Blocking convenience for scripts and tests."""
        return self.request(name, device, network).result(timeout)

    def _load(self, path: Path, mtime: int | None, device: str | torch.device, network: str, is_default: bool
              ) -> StyleGANModel:
        try:
            model = _load_checked(default_model_path() if is_default else path, device, network)
        except Exception as exc:  # every failure is reported as one line and remembered
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if not isinstance(exc, ModelFileError):
                message = f"{path}: {message}"
            self._remember_failure(path, mtime, device, network, message)
            raise ModelFileError(message) from None
        if not is_default:
            add_recent_model(path)
        return model

    def _remember_failure(self, path: Path, mtime: int | None, device: str | torch.device, network: str,
                          message: str) -> None:
        with self._lock:
            self._models.pop((path, mtime, str(device), network), None)
            self._failures.remember((path, mtime, network), message)

    def close(self, timeout: float | None = None) -> None:
        """Take no more loads; waits (at most `timeout` s) for pending ones to finish or fail by their deadline."""
        self._pool.close(wait=True, timeout=timeout)


_shared: ModelStore | None = None
_shared_lock = threading.Lock()


def shared_store() -> ModelStore:
    """The process-wide store, so every graph and preset that names a model shares one copy."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ModelStore()
        return _shared
