"""Converted network pickles kept on disk, so a pickle's second load skips unpickling and rebuilding.

The first load of a pickle writes its generator in our safe format (`safe_format`); later loads of
the same bytes read that instead. Only pickles are cached: our own files and the default model are
already in the fast format.

Key (`SourceKey`): the pickle's size, mtime_ns and SHA-256 of its whole content (read in 1 MiB
chunks, about 0.3 s for 300 MB where the CPU hashes SHA-256 in hardware, faster than BLAKE2b there),
the network asked for (G_ema or G), and `code_version()`: `CACHE_VERSION`, the torch, numpy and
safetensors versions and a hash of the source of this package, so any change in the reading or
conversion code invalidates every old entry without anyone having to remember a version number.
Size and mtime alone could collide (a copy that keeps mtimes); the content hash cannot.
Touching the file makes a new key (the old entry ages out).

Where: `$AUTOLUME_MODEL_CACHE`, else `models/` in the program's cache folder (`cache_folder.cache_dir`:
`$AUTOLUME_CACHE`, else `~/.cache/autolume-graph`), beside the default model: entries are derived
data anyone can rebuild, so they stay out of the artist's show folders (which get copied and backed
up) and one conversion serves every working folder. Entries made by other code are never used (see
the key), so a cache shared by runs of different versions is safe.

Bound: `$AUTOLUME_MODEL_CACHE_MAX` bytes in all (`4G`, `500M`, a plain number; default 4 GiB, `0`
turns the cache off). A hit marks its entry's mtime; past the bound the entries least recently
used go first. Only file names of the entry pattern are ever removed.

Trust: an entry is any file to us. It is read like a user's file (`checked_path`: a regular file in
the model size limit) through the same bounded `load_safe_entry`, and used only if the full key
stored in it matches; a corrupt, truncated, foreign or stale entry is a miss, is converted again
and replaced. Writes are atomic (`save_model`: a temp file renamed over the entry), so two loads of
one file at once each publish a whole entry. A load never fails because of the cache: a full disk,
a read-only folder or any other write error is one warning in the log, and the model loads.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy
import safetensors
import torch

from autolume_graph.atomic import remove_stale_temps
from autolume_graph.file_reads import _reason, checked_path

from .default_model import cache_dir
from .model import StyleGANModel
from .safe_format import SUFFIX, load_safe_entry, save_model

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # of the entry layout below; the code that converts is covered by `code_version`
FOLDER_ENV = "AUTOLUME_MODEL_CACHE"
MAX_ENV = "AUTOLUME_MODEL_CACHE_MAX"
DEFAULT_MAX_BYTES = 4 << 30
CHUNK = 1 << 20
ENTRY = re.compile(r"[0-9a-f]{40}" + re.escape(SUFFIX))
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)i?b?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class SourceKey:
    """What a cache entry was made from; equal keys mean equal bytes read by equal code."""

    size: int
    mtime_ns: int
    sha256: str
    network: str
    code: str

    def text(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def entry_name(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()[:40] + SUFFIX


@dataclass(frozen=True)
class Source:
    """A pickle about to be read: its key, and the stat fields that tell whether it changed meanwhile."""

    key: SourceKey
    identity: tuple[int, ...]


def cache_folder() -> Path:
    """`$AUTOLUME_MODEL_CACHE`, else `models` in the program's cache folder (this one not created here)."""
    env = os.environ.get(FOLDER_ENV)
    return Path(env).expanduser() if env else cache_dir() / "models"


def max_bytes() -> int:
    """The bound on all entries together, from `$AUTOLUME_MODEL_CACHE_MAX` (0: no cache)."""
    text = os.environ.get(MAX_ENV, "")
    if not text.strip():
        return DEFAULT_MAX_BYTES
    match = _SIZE.fullmatch(text)
    if match is None:
        log.warning("%s=%r is not a size like 4G or 500M; using 4G", MAX_ENV, text)
        return DEFAULT_MAX_BYTES
    return int(float(match[1]) * _UNITS[match[2].lower()])


@functools.cache
def code_version() -> str:
    """`CACHE_VERSION`, the versions of the libraries that read files, and the source of this package
    (reader, networks, safe format), hashed."""
    versions = (CACHE_VERSION, torch.__version__, numpy.__version__, safetensors.__version__)
    digest = hashlib.sha256(repr(versions).encode())
    package = Path(__file__).resolve().parent
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _identity(info: os.stat_result) -> tuple[int, ...]:
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


def source_of(path: Path, network: str) -> Source | None:
    """The key of the pickle at `path` (stat and hash from one open of that file: pass the pinned path
    the reader will read); None when the cache is off or the file cannot be hashed."""
    if max_bytes() <= 0:
        return None
    try:
        with open(path, "rb", buffering=0) as f:
            info = os.fstat(f.fileno())
            digest, buffer = hashlib.sha256(), bytearray(CHUNK)
            view = memoryview(buffer)
            while count := f.readinto(buffer):
                digest.update(view[:count])
        key = SourceKey(info.st_size, info.st_mtime_ns, digest.hexdigest(), network, code_version())
    except OSError as exc:
        log.warning("model cache not used for %s (%s)", path, _reason(exc))
        return None
    return Source(key, _identity(info))


def lookup(source: Source) -> tuple[StyleGANModel, str] | None:
    """The cached model and its load note, or None where there is no usable entry."""
    try:
        entry = cache_folder() / source.key.entry_name()
        if not entry.is_file():
            return None
        with checked_path(entry, "model") as pinned:
            model, extra = load_safe_entry(pinned)
    except Exception as exc:  # whatever an entry holds, it is only ever a miss
        log.info("model cache entry for %s unreadable (%s); converting again", source.key.sha256, _reason(exc))
        return None
    if extra.get("cache_key") != source.key.text():
        log.info("model cache entry %s is for other bytes; converting again", entry)
        return None
    try:
        os.utime(entry)  # most recently used
    except OSError:
        pass
    return model, extra.get("load_note", "")


def remember(source: Source, path: Path, model: StyleGANModel, note: str) -> None:
    """Write `model` (freshly converted from `path`, on CPU) as the entry for `source`; never raises.

    Skipped where the file changed while it was read (the bytes hashed may not be the bytes converted)."""
    folder = None
    try:
        if _identity(os.stat(path)) != source.identity:
            log.info("model cache not written for %s: the file changed while it was read", path)
            return
        limit = max_bytes()
        size = sum(t.numel() * 4 for t in model.state_dict().values())  # saved as float32
        if size > limit:
            log.info("model cache not written for %s: %d bytes exceed %s=%d", path, size, MAX_ENV, limit)
            return
        folder = cache_folder()
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(folder)
        entry = save_model(model, folder / source.key.entry_name(),
                           extra={"cache_key": source.key.text(), "load_note": note})
        _evict(folder, entry, limit)
    except Exception as exc:  # a full disk or a read-only folder costs speed next time, never this load
        log.warning("model cache not written in %s (%s); the model loaded anyway", folder or "its folder",
                    _reason(exc))


def _evict(folder: Path, keep: Path, limit: int) -> None:
    """Remove the least recently used entries (never `keep`) until all together fit in `limit`."""
    entries = []
    for item in os.scandir(folder):
        if ENTRY.fullmatch(item.name) and item.is_file(follow_symlinks=False):
            info = item.stat(follow_symlinks=False)
            entries.append((info.st_mtime_ns, info.st_size, Path(item.path)))
    total = sum(size for _, size, _ in entries)
    for _, size, entry in sorted(entries):
        if total <= limit:
            break
        if entry == keep:
            continue
        try:
            entry.unlink()
        except OSError:
            continue
        total -= size

