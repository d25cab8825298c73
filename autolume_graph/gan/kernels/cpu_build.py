"""Our C kernels for the CPU, compiled at first use for the machine they run on, loaded with ctypes.

A wheel cannot know the CPU it will meet (AVX2 here, AVX-512 there, Arm on a Mac), so the source ships
and the system's C compiler builds it with `-march=native`: the compiler, not us, picks the vector
instructions this CPU has. The library is cached under the program's cache folder, named by a hash of
the source, the compiler's version and the CPU's flags, so a changed source, compiler or CPU (a home
folder shared between machines) builds anew. The build runs on a thread of its own; until it is done,
or where it fails (no compiler: most Windows and Mac machines without developer tools), callers use
their torch path and `status` says why. `AUTOLUME_CPU_KERNELS=off` keeps the torch paths.
`AUTOLUME_CPU_VECTORS=BYTESxREGISTERS` (16x32, 64x32, ...) builds for another CPU's vector width and
register count than this one's, so the tests run an Arm or AVX-512 machine's lanes and tiles here.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...cache_folder import cache_dir
from ..cpu_features import Support, cpu_flags

SWITCH_ENV = "AUTOLUME_CPU_KERNELS"  # "off": never build or use the C kernels
BUILD_TIMEOUT_S = 120.0
VECTORS_ENV = "AUTOLUME_CPU_VECTORS"
POOL_ENV = "AUTOLUME_CPU_POOL"  # "own": our threads even where torch's OpenMP team could run the shares
FLAGS = ("-O3", "-march=native", "-shared", "-fPIC", "-std=c11", "-pthread")


def _flags() -> tuple[str, ...]:
    """FLAGS, and the vector shape `AUTOLUME_CPU_VECTORS` asks for (ignored unless it reads BYTESxREGISTERS
    with bytes 16, 32 or 64 and 16 or 32 registers)."""
    asked = os.environ.get(VECTORS_ENV, "").lower().split("x")
    if len(asked) == 2 and asked[0] in ("16", "32", "64") and asked[1] in ("16", "32"):
        return (*FLAGS, f"-DVECTOR_BYTES={asked[0]}", f"-DVECTOR_REGISTERS={asked[1]}")
    return FLAGS


def openmp_runtime() -> Path | None:
    """The GNU OpenMP runtime loaded in this process (torch's, on Linux), if any and not switched off.

    Our kernels then run their shares on its threads, the ones torch's operators use: after each
    operator those threads spin for a while waiting for more work, and our own threads, started beside
    them, had to share the cores with that spinning (a StyleGAN2 256 px layer 80 ms alone, 110 ms
    between torch's operators)."""
    if os.environ.get(POOL_ENV, "").lower() == "own":
        return None
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux
        return None
    return next((Path(path) for line in maps.splitlines() for path in line.split()[5:6]
                 if Path(path).name.startswith("libgomp") and ".so" in Path(path).name), None)


def _link_args() -> tuple[str, ...]:
    """With an OpenMP runtime loaded: compile the kernels' OpenMP form and link that very file (its
    name, not the system's copy of libgomp, which would be a second team of threads)."""
    runtime = openmp_runtime()
    if runtime is None:
        return ("-lm",)
    return ("-fopenmp", str(runtime), f"-Wl,-rpath,{runtime.parent}", "-Wl,--as-needed", "-lm")


@dataclass
class _Build:
    """One source's build, started once per process."""

    source: Path
    done: threading.Event = field(default_factory=threading.Event)
    library: ctypes.CDLL | None = None
    reason: str = "building"


_BUILDS: dict[Path, _Build] = {}
_LOCK = threading.Lock()


def _compiler() -> str | None:
    return next((found for name in (os.environ.get("CC", ""), "cc", "gcc", "clang") if name
                 for found in [shutil.which(name)] if found), None)


def _compiler_version(compiler: str) -> str:
    result = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30)
    return result.stdout.splitlines()[0] if result.stdout else compiler


def _library_path(source: Path, compiler: str, flags: tuple[str, ...], link: tuple[str, ...]) -> Path:
    key = hashlib.sha256()
    for part in (source, *sorted(source.parent.glob("*.h"))):  # the source and the headers beside it
        key.update(part.read_bytes())
    for part in (_compiler_version(compiler), " ".join((*flags, *link)), platform.machine(),
                 " ".join(sorted(cpu_flags()))):
        key.update(part.encode())
    return cache_dir() / "kernels" / f"{source.stem}-{key.hexdigest()[:16]}.so"


def _build(job: _Build) -> None:
    try:
        compiler = _compiler()
        if compiler is None:
            job.reason = "no C compiler found (cc, gcc or clang): the torch path runs"
            return
        flags, link = _flags(), _link_args()  # read once: the file's name and its build agree
        target = _library_path(job.source, compiler, flags, link)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
                built = Path(scratch) / target.name
                result = subprocess.run([compiler, *flags, str(job.source), "-o", str(built), *link],
                                        capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
                if result.returncode != 0:
                    first = (result.stderr.strip().splitlines() or ["no message"])[0]
                    job.reason = f"{Path(compiler).name} failed on {job.source.name}: {first}"
                    return
                os.replace(built, target)  # atomic: another process never loads half a file
        job.library = ctypes.CDLL(str(target))
        threads = "torch's OpenMP threads" if "-fopenmp" in link else "its own threads"
        shown = " ".join(flag for flag in flags if flag == "-march=native" or flag.startswith("-DVECTOR"))
        job.reason = f"{job.source.stem} built with {Path(compiler).name} {shown}, runs on {threads}"
    except Exception as exc:  # a timeout, a full disk, an unloadable file: the torch path goes on
        job.reason = f"building {job.source.name} failed: {type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        job.done.set()


def start(source: Path) -> _Build:
    """The build of `source`, started on a thread of its own the first time it is asked for."""
    with _LOCK:
        job = _BUILDS.get(source)
        if job is None:
            job = _BUILDS[source] = _Build(source)
            if os.environ.get(SWITCH_ENV, "").lower() == "off":
                job.reason = f"C kernels switched off ({SWITCH_ENV}=off)"
                job.done.set()
            else:
                threading.Thread(target=_build, args=(job,), name=f"build {source.stem}", daemon=True).start()
    return job


def library(source: Path, wait_s: float = 0.0) -> ctypes.CDLL | None:
    """The loaded library if it is built (waiting up to `wait_s` for it), else None; starts the build."""
    job = start(source)
    job.done.wait(wait_s)
    return job.library


def function(source: Path, name: str, restype: Any, argtypes: list[Any]) -> Any:
    """The library's function `name` with its C signature declared, or None while it is not built."""
    lib = library(source)
    if lib is None:
        return None
    fn = getattr(lib, name)
    if fn.argtypes is None:
        fn.restype, fn.argtypes = restype, argtypes
    return fn


class Strides(ctypes.Structure):
    """A tensor's element strides as the kernels take them (`cpu_common.h`): pass `Strides(*t.stride())`."""

    _fields_ = [("batch", ctypes.c_ssize_t), ("channel", ctypes.c_ssize_t), ("row", ctypes.c_ssize_t),
                ("column", ctypes.c_ssize_t)]


def support(source: Path, wait_s: float = 0.0) -> Support:
    """Whether `source` is built and loaded (waiting up to `wait_s`), and what was built or why not."""
    library(source, wait_s)
    return status(source)


def status(source: Path) -> Support:
    """Whether the library is loaded, and what was built or why not (while building: "building")."""
    job = start(source)
    return Support(job.library is not None, job.reason)
