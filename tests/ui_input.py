"""Real mouse and key events for the editor tests: xdotool under a private Xvfb, in a child process.

Each test module has a `drive(...)` function that builds an Editor and plays a scene; the test runs
that module as `python -m tests.MODULE ARGS` inside `xvfb_display` (`run_scene`), and the scene
prints what it saw as one JSON line. Without a window manager keys go to the window under the
pointer, so `Pointer.keys` moves it over the viewport first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts"

needs_input = pytest.mark.skipif(shutil.which("xdotool") is None or shutil.which("Xvfb") is None,
                                 reason="needs xdotool and Xvfb (.ci/run installs both)")


def xdo(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True)


def run_scene(module: str, *args: str, timeout: float = 180) -> dict:
    """Run `module`'s scene in a child process on a private display; what it printed, as a dict."""
    from tests.ui_support import xvfb_display

    ARTIFACTS.mkdir(exist_ok=True)
    with xvfb_display("1600x1000x24"):
        child = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                               timeout=timeout, env=dict(os.environ), cwd=REPO)
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


def print_scene(drive: Callable[..., dict]) -> None:
    """A scene module's `__main__`: play `drive(*argv)` and print what it saw."""
    print(json.dumps(drive(*sys.argv[1:])))


class Pointer:
    """Clicks, keys and waits on a running editor; `render` draws one UI frame."""

    def __init__(self, render: Callable[[], None], status: Callable[[], str] = lambda: "",
                 key_at: tuple[int, int] = (400, 400)) -> None:
        self.render = render
        self.status = status
        self.key_at = key_at

    def frames(self, count: int) -> None:
        for _ in range(count):
            self.render()

    def until(self, check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; status: {self.status()}")
            self.render()

    def click(self, x: float, y: float, button: str = "1") -> None:
        xdo("mousemove", str(int(x)), str(int(y)))
        self.frames(2)
        xdo("click", button)
        self.frames(3)

    def click_item(self, item: int | str, button: str = "1") -> None:
        self.click(*centre(item), button=button)

    def keys(self, *combos: str) -> None:
        xdo("mousemove", *map(str, self.key_at))
        self.frames(3)
        xdo("key", *combos)
        self.frames(3)

    def type(self, text: str) -> None:
        xdo("type", "--delay", "15", text)
        self.frames(3)


def centre(item: int | str) -> tuple[int, int]:
    """The middle of a drawn Dear PyGui item, in screen pixels."""
    import dearpygui.dearpygui as dpg

    (x0, y0), (x1, y1) = dpg.get_item_rect_min(item), dpg.get_item_rect_max(item)
    return int((x0 + x1) / 2), int((y0 + y1) / 2)
