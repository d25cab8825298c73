"""Atomic file writes: a crash or a SIGKILL mid-write leaves the previous file intact.

Every output is written to a hidden temporary file beside its target and renamed over it only once
it is complete and on disk. The temporary name carries the writer's PID,
`.NAME.PID.RANDOM.partial.SUFFIX` (the target's suffix last, so a muxer that picks its format from
the name still does), so `remove_stale_temps` can tell a killed writer's leftovers from a live
writer's file: a temp whose PID is gone, or belongs to a process started after the file was last
written (the PID was reused), is stale. Writers on other machines sharing the folder are not told
apart from dead ones.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from autolume_graph.workspace import unused

_NAME_KEPT = 100  # of the target's name in the temp's, so the temp's stays under NAME_MAX
_TEMP = re.compile(r"\..+\.(?P<pid>[1-9]\d{0,9})\.[0-9a-f]{8}\.partial(\.[^./]+)?")
_CLOCK_SLACK = 1.0  # seconds: /proc gives the boot time in whole seconds


def temp_beside(path: str | Path) -> Path:
    """Create an empty temporary file beside `path` (its folder must exist) and return its name."""
    path = Path(path)
    while True:
        temp = path.with_name(f".{path.name[:_NAME_KEPT]}.{os.getpid()}.{secrets.token_hex(4)}.partial{path.suffix}")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666))
        except FileExistsError:
            continue
        return temp


def publish(temp: str | Path, path: str | Path, *, overwrite: bool = True) -> Path:
    """Flush `temp` to disk and move it to `path`; returns where it went.

    `overwrite`: replace `path` in one rename (the user named it). Otherwise an existing file is never
    replaced, not even one that appears while writing: the next free `NAME-N` is taken instead.
    """
    temp, path = Path(temp), Path(path)
    with open(temp, "rb") as f:  # on disk before the rename, or a power cut could leave an empty file
        os.fsync(f.fileno())
    if overwrite:
        os.replace(temp, path)
        return path
    while True:
        try:
            os.link(temp, path)  # fails where `path` exists: no window in which another file is replaced
        except FileExistsError:
            path = unused(path)
            continue
        except OSError:  # a file system without hard links: check, then rename
            path = unused(path)
            os.rename(temp, path)
            return path
        os.unlink(temp)
        return path


def write_with(path: str | Path, write: Callable[[Path], object], *, overwrite: bool = True) -> Path:
    """Create the folder, let `write` fill a temporary file beside `path`, then `publish` it; returns
    where it went. On any failure the temporary file is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_beside(path)
    try:
        write(temp)
        return publish(temp, path, overwrite=overwrite)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file beside it, replacing `path` at the end."""
    write_with(path, lambda temp: temp.write_bytes(data))


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove the temporary files that killed writers of this program left in `folder`; returns them.
    Called where outputs start, so a killed render's leftovers go with the next one."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.fullmatch(entry.name)
        try:
            if not match or not entry.is_file(follow_symlinks=False):
                continue
            if _owner_alive(int(match["pid"]), entry.stat(follow_symlinks=False).st_mtime):
                continue
            os.unlink(entry.path)
        except OSError:  # gone already, or not ours to remove
            continue
        removed.append(Path(entry.path))
    return removed


def _owner_alive(pid: int, written: float) -> bool:
    """Whether process `pid` may still be writing a file last written at `written`."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    except OverflowError:
        return False
    started = _start_time(pid)
    return started is None or started <= written + _CLOCK_SLACK


def _start_time(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), from /proc; None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None
