"""What this CPU can do that changes which kernels pay: asked at run time, never assumed from the build.

The CPU model changes between machines (one has AVX-512 with native bfloat16, another AVX2 only), and
torch's own capability string names only the vector ISA. Native bfloat16 arithmetic (AVX512_BF16's dot
products, AMX tiles, Arm's BF16 extension) is what makes bfloat16 faster than float32; without it torch
emulates bfloat16 by converting to float32, which is slower than float32 alone.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags (x86, Linux)
FORCE_BF16_ENV = "AUTOLUME_CPU_BF16"  # "force": run bfloat16 where it is emulated (to check its accuracy)


@dataclass(frozen=True)
class Support:
    available: bool
    reason: str  # what was found: the flag that makes it native, or why it is off


def cpu_flags() -> set[str]:
    """The CPU's feature flags as the kernel lists them (x86 and Arm Linux); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith(("flags", "Features"))), "")
    return set(line.partition(":")[2].split())


DEFAULT_LAST_LEVEL_CACHE = 8 << 20  # where the system does not say


@functools.cache
def last_level_cache_bytes() -> int:
    """The largest CPU cache's size as Linux reports it (shared by the cores it serves), else a default."""
    sizes = []
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = entry.read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes, default=DEFAULT_LAST_LEVEL_CACHE)


def _mac_has_bf16() -> bool:
    try:
        out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True,
                             timeout=2.0).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False
    return out == "1"


@functools.cache
def _native_bfloat16() -> Support:
    if platform.system() == "Darwin":
        found = _mac_has_bf16()
        return Support(found, "Arm FEAT_BF16" if found else "this Mac reports no FEAT_BF16")
    flags = cpu_flags()
    native = [flag for flag in NATIVE_BF16_FLAGS if flag in flags]
    if native:
        return Support(True, "+".join(native))
    return Support(False, f"this CPU reports no native bfloat16 ({' / '.join(NATIVE_BF16_FLAGS)}); "
                          f"torch would emulate it, slower than float32")


def bfloat16_support() -> Support:
    """Whether bfloat16 pays on this CPU; `AUTOLUME_CPU_BF16=force` runs it anyway (emulated where not native)."""
    found = _native_bfloat16()
    if not found.available and os.environ.get(FORCE_BF16_ENV) == "force":
        return Support(True, f"forced by {FORCE_BF16_ENV}=force (emulated)")
    return found


def describe() -> str:
    """One line for benchmark figures: the vector ISA torch's kernels chose and the bfloat16 verdict."""
    bf16 = _native_bfloat16()
    verdict = f"native ({bf16.reason})" if bf16.available else "emulated"
    return f"{torch.backends.cpu.get_cpu_capability()}, bfloat16 {verdict}"
