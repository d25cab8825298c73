"""Where the program may write: known folders under the working folder, and names that cannot leave them.

Everything written (recordings, snapshots, vectors, mixed models, presets) goes into one of these
folders. A name from a graph file, an OSC message or the editor is reduced to a plain file name in
its folder: no directories, no `..`, no leading dot, no control characters. The user chooses the
folders (the working folder, `$AUTOLUME_WORKDIR`, `$AUTOLUME_MODELS` for models, or `set_folder` from
the CLI or the editor); an input never does.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

FOLDERS = {"recordings": "recordings", "snapshots": "recordings", "vectors": "vectors", "models": "models",
           "presets": "presets"}
FOLDER_ENV = {"models": "AUTOLUME_MODELS"}  # the folder the model store lists, where one is set
MAX_NAME = 120

_configured: dict[str, Path] = {}
_lock = threading.Lock()
_UNSAFE = re.compile(r"[^\w.\-+ {}()\[\]@,=]", re.UNICODE)


class WriteRefused(ValueError):
    """A write the workspace does not allow (an unknown kind, a name that is empty once sanitized)."""


def root() -> Path:
    """`$AUTOLUME_WORKDIR`, else the current working folder."""
    env = os.environ.get("AUTOLUME_WORKDIR")
    return Path(env).expanduser().resolve() if env else Path.cwd().resolve()


def set_folder(kind: str, folder: str | Path | None) -> None:
    """The user's own folder for `kind` (CLI flag, editor setting); None restores the default."""
    if kind not in FOLDERS:
        raise WriteRefused(f"unknown output kind {kind!r}")
    with _lock:
        if folder is None:
            _configured.pop(kind, None)
        else:
            _configured[kind] = Path(folder).expanduser().resolve()


def folder(kind: str) -> Path:
    """The folder `kind` writes into (not created here): the user's choice, its environment variable, or
    its folder under the working folder."""
    if kind not in FOLDERS:
        raise WriteRefused(f"unknown output kind {kind!r}")
    with _lock:
        found = _configured.get(kind)
    if found is not None:
        return found
    env = os.environ.get(FOLDER_ENV.get(kind, ""))
    return Path(env).expanduser().resolve() if env else root() / FOLDERS[kind]


def safe_name(name: str, suffix: str = "") -> str:
    """`name` as a plain file name: its last component, unsafe characters replaced, `suffix` enforced."""
    base = re.split(r"[\\/]", str(name))[-1].strip()
    base = _UNSAFE.sub("_", base).lstrip(".").strip()
    if suffix and not base.lower().endswith(suffix.lower()):
        base = f"{Path(base).stem if Path(base).suffix else base}{suffix}"
    stem, ext = (base[: -len(suffix)], suffix) if suffix else (base, "")
    stem = stem[:MAX_NAME].rstrip(". ")
    if not stem or stem in (".", ".."):
        raise WriteRefused(f"{name!r}: not a usable file name")
    return stem + ext


def unused(path: Path) -> Path:
    """`path`, or `path` with a `-N` suffix where it exists: an earlier file is never overwritten."""
    candidate, n = path, 1
    while candidate.exists() or candidate.is_symlink():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def output_path(kind: str, name: str, suffix: str = "", *, overwrite: bool = False, create: bool = True,
                sub: str = "") -> Path:
    """Where to write `name` of `kind`: inside its folder (or its plain sub-folder `sub`), sanitized,
    never over an existing file unless `overwrite` (the user confirmed it). Creates the folder unless
    `create` is False."""
    target_dir = folder(kind) / safe_name(sub) if sub.strip() else folder(kind)
    if create:
        target_dir.mkdir(parents=True, exist_ok=True)
    if target_dir.exists() and not inside(kind, target_dir):  # a sub-folder that is a link out
        raise WriteRefused(f"{sub!r}: leads outside the {kind} folder")
    path = target_dir / safe_name(name, suffix)
    if path.is_symlink():  # a link planted in the folder could point anywhere
        path = unused(path)
    return path if overwrite else unused(path)


def inside(kind: str, path: str | Path) -> bool:
    """Whether `path` (resolved, links followed) lies inside the folder of `kind`."""
    try:
        Path(path).resolve().relative_to(folder(kind).resolve())
    except ValueError:
        return False
    return True
