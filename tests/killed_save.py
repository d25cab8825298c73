"""Run a save in a child process that is SIGKILLed at the last moment before the file would change."""

from __future__ import annotations

import subprocess
import sys

_KILL_ON_COMMIT = """
import os, signal
def _die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
os.fsync = os.replace = _die  # the data is written; flushing it or renaming it over the old file dies
"""


def save_killed(setup: str, save: str) -> None:
    """Run `setup`, then `save` with fsync/replace replaced by SIGKILL; assert the child was killed."""
    proc = subprocess.run([sys.executable, "-c", f"{setup}\n{_KILL_ON_COMMIT}\n{save}"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr or "the save finished: it never reached fsync or replace"
