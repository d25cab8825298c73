"""Reading files that a user, a graph file or an OSC message names: refused early, bounded, off the render thread.

A path can name anything: a FIFO or `/dev/stdin` that blocks forever, `/dev/zero` that never ends, a
directory, a huge file, a small archive that inflates to gigabytes, a file on a hung network share.
So every such read

1. opens with O_NONBLOCK and checks, on the descriptor it then reads, that it is a regular file no
   larger than its kind allows (`SIZE_LIMITS`), before reading a byte; reads at most that much;
2. inflates an archive member only after checking its declared size, and never past the limit even
   when the declaration lies (`BoundedZip`);
3. runs in a small pool off the render thread (`ReadPool`) where every read has a deadline: past it
   the read's future fails, its thread is written off and another takes its place, so a read stuck
   in the kernel cannot starve the others, and the threads stay few (`workers + spare + max_stuck`);
4. is tracked per node by a `BackgroundRead`: the node keeps its value while the read runs, shows
   "loading NAME...", and gets the outcome once; a failure stays in its status and is not retried
   until the node's path or trigger asks again.
"""

from __future__ import annotations

import io
import os
import stat
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from autolume_graph.node import NodeError

MiB = 1 << 20
SIZE_LIMITS = {"vector": 4 * MiB, "directions": 16 * MiB, "model": 4096 * MiB, "graph": 64 * MiB,
               "audio": 1024 * MiB}
"""The largest file of each kind that is read (a w vector of 18 x 512 float64 is 72 KiB, GANSpace
directions a few MB, the largest StyleGAN pickles about 1 GB)."""
INFLATE_LIMITS = {"vector": 4 * MiB, "directions": 16 * MiB}
"""The most bytes all members of one archive of each kind may inflate to, together."""
MAX_CENTRAL_DIRECTORY = 64 * 1024  # bytes of zip member records (~1,000 members): their parsing costs memory too


class FileRefused(ValueError):
    """A file that is not read: not a regular file, too large, unreadable. The message is one line naming it."""


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MB" if n >= MiB else f"{n} bytes"


def _what(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a plain file")


def _reason(exc: BaseException) -> str:
    text = str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextmanager
def open_regular(path: str | os.PathLike, kind: str) -> Iterator[BinaryIO]:
    """`path` opened for reading, checked on the open descriptor to be a regular file within `kind`'s size limit.

    O_NONBLOCK makes the open itself return at once where it could wait (a FIFO without a writer, a
    file leased by another program); the check runs on the descriptor that is read, so a file swapped
    in after the check is not the one read.
    """
    limit = SIZE_LIMITS[kind]
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileRefused(f"{path}: no such file") from None
    except BlockingIOError:
        raise FileRefused(f"{path}: held by another program (try again)") from None
    except OSError as exc:
        raise FileRefused(f"{path}: cannot open ({_reason(exc)})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(f"{path}: {_what(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise FileRefused(f"{path}: {_size(info.st_size)}, more than the {_size(limit)} a {kind} file may have")
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_regular(path: str | os.PathLike, kind: str) -> bytes:
    """The bytes of a regular file of `kind` (see `open_regular`); a file that grows past the limit is refused."""
    limit = SIZE_LIMITS[kind]
    with open_regular(path, kind) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise FileRefused(f"{path}: cannot read ({_reason(exc)})") from None
    if len(data) > limit:
        raise FileRefused(f"{path}: more than the {_size(limit)} a {kind} file may have")
    return data


@contextmanager
def checked_path(path: str | os.PathLike, kind: str) -> Iterator[Path]:
    """A path naming exactly the file `open_regular` checked, for readers that open by name (model loaders).

    On Linux it is `/proc/self/fd/N` of the checked descriptor, open while the block runs, so the file
    read is the file checked; elsewhere the path itself.
    """
    with open_regular(path, kind) as handle:
        pinned = Path(f"/proc/self/fd/{handle.fileno()}")
        yield pinned if pinned.exists() else Path(path)


def is_zip(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


class BoundedZip:
    """The members of an in-memory zip archive (.npz), each inflated only within what is left of `kind`'s limit.

    The member records are bounded before zipfile parses them; a member's declared size is checked
    before it is inflated, and inflating stops past the limit whatever the declaration said.
    """

    def __init__(self, data: bytes, path: str | os.PathLike, kind: str) -> None:
        self.path = path
        self._limit = self._left = INFLATE_LIMITS[kind]
        end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
        if end < 0 or len(data) < end + 22:
            raise FileRefused(f"{path}: cannot read (not a complete zip archive)")
        if int.from_bytes(data[end + 12:end + 16], "little") > MAX_CENTRAL_DIRECTORY:
            raise FileRefused(f"{path}: an archive with too many members")
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise FileRefused(f"{path}: cannot read ({_reason(exc)})") from None

    @property
    def names(self) -> list[str]:
        return self._zip.namelist()

    def read(self, name: str) -> bytes:
        """The inflated bytes of member `name`; refused before inflating when it would pass the limit."""
        info = self._zip.getinfo(name)
        over = f"{self.path}: member {name} inflates past the {_size(self._limit)} an archive of this kind may hold"
        if info.file_size > self._left:
            raise FileRefused(over)
        try:
            with self._zip.open(info) as member:
                data = member.read(self._left + 1)
        except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError, EOFError) as exc:
            raise FileRefused(f"{self.path}: cannot read member {name} ({_reason(exc)})") from None
        if len(data) > self._left:
            raise FileRefused(over)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._zip.close()


# --- the pool --------------------------------------------------------------------------------


@dataclass(eq=False)
class _Job:
    call: Callable[[], Any]
    future: Future
    deadline: float
    prefix: str  # "NAME: " for the timeout messages
    queued_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None


class ReadPool:
    """Runs reads on a few threads; every read has a deadline, and reads stuck past it cannot starve the rest.

    Up to `workers` threads run reads. A read that waits `patience` seconds because they are all busy
    (slow or stuck) gets one of `spare` extra threads. A read running past its deadline fails its
    future with a timeout, and its thread is written off: it ends when its call returns (Python cannot
    stop it sooner) and no longer takes a place, so a new thread can start. At most `max_stuck`
    threads are written off at a time; past that a stuck thread keeps its place, and reads that find
    no place before their deadline fail the same way. So threads never number more than
    `workers + spare + max_stuck`. Threads are daemons and end after `idle_s` without work.
    """

    def __init__(self, name: str, workers: int = 2, spare: int = 2, max_stuck: int = 4, deadline: float = 10.0,
                 patience: float = 0.5, idle_s: float = 30.0) -> None:
        self.name = name
        self.workers, self.spare, self.max_stuck = workers, spare, max_stuck
        self.deadline, self.patience, self.idle_s = deadline, patience, idle_s
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._running: dict[threading.Thread, _Job] = {}
        self._threads: set[threading.Thread] = set()
        self._written_off: set[threading.Thread] = set()
        self._free = 0  # threads started or waiting that will take the next queued reads
        self._closed = False
        self._watching = False
        self._serial = 0

    def submit(self, call: Callable[..., Any], *args: Any, name: str = "", deadline: float | None = None) -> Future:
        """A Future of `call(*args)`; on failure its exception is the call's, or a FileRefused timeout naming `name`."""
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self.name}: the read pool is closed")
            self._queue.append(_Job(lambda: call(*args), future, self.deadline if deadline is None else deadline,
                                    f"{name}: " if name else ""))
            self._start_threads(time.monotonic())
            if not self._watching:
                self._watching = True
                self._spawn(self._watch, "watchdog")
            self._cond.notify_all()
        return future

    @property
    def thread_count(self) -> int:
        """Reading threads alive now, written off ones included (never more than workers + spare + max_stuck)."""
        with self._cond:
            return len(self._threads)

    def close(self, wait: bool = True, timeout: float | None = None) -> None:
        """Take no more reads; with `wait`, wait (at most `timeout` s) until the queued and running ones have
        finished or failed by their deadlines."""
        until = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while wait and self._busy() and (until is None or time.monotonic() < until):
                self._cond.wait(0.1)

    # --- inside: every method below runs with self._cond held, except the read itself ---
    def _busy(self) -> bool:
        """Whether a read is queued or running and not yet failed."""
        return bool(self._queue) or any(not job.future.done() for job in self._running.values())

    def _spawn(self, target: Callable[[], None], role: str) -> threading.Thread:
        self._serial += 1
        thread = threading.Thread(target=target, name=f"{self.name}-{role}-{self._serial}", daemon=True)
        thread.start()
        return thread

    def _start_threads(self, now: float) -> None:
        for job in list(self._queue)[self._free:]:  # the reads no free thread will take
            places = len(self._threads) - len(self._written_off)
            if places >= self.workers + self.spare:
                return
            if places >= self.workers and now - job.queued_at < self.patience:
                return  # the reads behind this one have waited less
            self._free += 1
            self._threads.add(self._spawn(self._work, "reader"))

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                job = self._next_job()
                self._free -= 1
                if job is None:
                    self._threads.discard(me)
                    return
                self._running[me] = job
            try:  # the read, outside the lock: it may block
                outcome, failed = job.call(), False
            except BaseException as exc:  # noqa: BLE001 - handed to the future
                outcome, failed = exc, True
            with self._cond:
                del self._running[me]
                if not job.future.done():
                    (job.future.set_exception if failed else job.future.set_result)(outcome)
                self._cond.notify_all()
                if me in self._written_off:  # a replacement has taken its place
                    self._written_off.discard(me)
                    self._threads.discard(me)
                    return
                self._free += 1

    def _next_job(self) -> _Job | None:
        idle_until = time.monotonic() + self.idle_s
        while True:
            while self._queue:
                job = self._queue.popleft()
                if job.future.set_running_or_notify_cancel():
                    job.started_at = time.monotonic()
                    return job
            if self._closed or time.monotonic() >= idle_until:
                return None
            self._cond.wait(idle_until - time.monotonic())

    def _watch(self) -> None:
        """Fails reads past their deadline, writes off their threads, starts spare threads for waiting reads."""
        with self._cond:
            while self._busy():
                now = time.monotonic()
                for thread, job in list(self._running.items()):
                    if not job.future.done() and now - job.started_at >= job.deadline:
                        job.future.set_exception(FileRefused(
                            f"{job.prefix}read did not finish within {job.deadline:g} s (a slow or hung file system?)"))
                    timed_out = job.future.done() and thread not in self._written_off
                    if timed_out and len(self._written_off) < self.max_stuck:
                        self._written_off.add(thread)
                for job in [j for j in self._queue if now - j.queued_at >= j.deadline]:
                    self._queue.remove(job)
                    if job.future.set_running_or_notify_cancel():
                        job.future.set_exception(FileRefused(
                            f"no reader free within {job.deadline:g} s ({len(self._written_off)} reads stuck)"))
                self._start_threads(now)
                self._cond.notify_all()
                self._cond.wait(self._next_event(now))
            self._watching = False

    def _next_event(self, now: float) -> float:
        """Seconds until a running read's deadline, or a queued read's patience or deadline, is reached."""
        times = [job.started_at + job.deadline for job in self._running.values() if not job.future.done()]
        for job in self._queue:
            times += [job.queued_at + min(self.patience, job.deadline), job.queued_at + job.deadline]
        return max(min((t - now for t in times if t > now), default=0.05), 0.005)


_shared: ReadPool | None = None
_shared_lock = threading.Lock()


def shared_reads() -> ReadPool:
    """The process-wide pool for the files nodes read (vectors, directions, keyframes)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ReadPool("file-read")
        return _shared


# --- one node's read --------------------------------------------------------------------------


class BackgroundRead:
    """One node's latest file read: run off the render thread, its outcome taken once on the render thread.

    A node starts a read when its path or trigger says so, never every frame. While the read runs,
    `pending` is true (the node keeps cooking, so it sees the result land) and `status` says what it
    does ("loading NAME..."). `take` gives the result once it has landed, or raises the failure once
    as a one-line NodeError; the failure then stays in `status` until the next read or `forget`.
    """

    def __init__(self, pool: ReadPool | None = None, key: Hashable = None) -> None:
        self._pool = pool
        self._future: Future | None = None
        self._label = ""
        self.failure = ""
        self.key = key  # what the last `start_for` read was for (a graph's saved path: already read)

    def start_for(self, key: Hashable, label: str, call: Callable[..., Any], *args: Any) -> None:
        """`start`, unless the last read was for `key` (a path), whatever came of it: a bad file is reported
        once, not read again every frame, and a new key reads at once."""
        if key != self.key:
            self.key = key
            self.start(label, call, *args)

    def start(self, label: str, call: Callable[..., Any], *args: Any) -> None:
        """Read with `call(*args)`; `label` says what it does ("loading x.npy"). A read still queued is
        dropped; one already running is ignored when it lands."""
        self.forget()
        self._label = label
        self._future = (self._pool or shared_reads()).submit(call, *args, name=label)

    def forget(self) -> None:
        """Drop the read in progress and the failure shown."""
        if self._future is not None:
            self._future.cancel()
        self._future, self.failure = None, ""

    @property
    def pending(self) -> bool:
        """Whether a read is running or has landed and not been taken yet."""
        return self._future is not None

    @property
    def status(self) -> str:
        if self._future is not None:
            return f"{self._label}..."
        return f"failed: {self.failure}" if self.failure else ""

    def wait(self, timeout: float | None = None) -> None:
        """Wait (off the render thread, e.g. in `Node.prepare`) until the read has landed; never raises."""
        if self._future is not None:
            try:
                self._future.exception(timeout)
            except Exception:  # noqa: BLE001 - a timeout or cancellation shows when the node takes it
                pass

    def take(self) -> Any:
        """The result once it has landed, else None; a failure raises NodeError (once)."""
        future = self._future
        if future is None or not future.done():
            return None
        self._future = None
        error = future.exception()
        if error is not None:
            text = str(error).strip().splitlines()
            self.failure = text[0] if text else type(error).__name__
            raise NodeError(self.failure)
        return future.result()
