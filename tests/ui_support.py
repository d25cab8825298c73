"""Helpers of the UI tests: a private Xvfb display and an image node that needs no model."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from autolume_graph.node import CookContext, Node
from autolume_graph.params import Float, Output
from autolume_graph.types import PortType


def _started_display(server: subprocess.Popen, ready: int) -> str:
    """The display number Xvfb wrote to `ready` (`-displayfd`) once it accepts clients."""
    deadline = time.monotonic() + 10
    seen = b""
    os.set_blocking(ready, False)
    while not seen.endswith(b"\n"):
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("Xvfb did not start")
        try:
            seen += os.read(ready, 16)
        except BlockingIOError:
            time.sleep(0.05)
    return f":{int(seen)}"


@contextmanager
def xvfb_display(size: str = "1600x1000x24") -> Iterator[str]:
    """Use $DISPLAY when set; otherwise run a private Xvfb for the duration. Xvfb picks a free display
    itself (`-displayfd`), so test runs started at once never collide on a number."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    binary = shutil.which("Xvfb")
    if binary is None:
        raise RuntimeError("Xvfb is not installed and DISPLAY is unset")
    ready, write_end = os.pipe()
    server = subprocess.Popen([binary, "-displayfd", str(write_end), "-screen", "0", size, "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_end,))
    os.close(write_end)
    try:
        display = _started_display(server, ready)
        os.environ["DISPLAY"] = display
        yield display
    finally:
        os.close(ready)
        os.environ.pop("DISPLAY", None)
        server.terminate()
        server.wait(10)


class TestPattern(Node):
    """Moving colour bars: an image source for the preview without loading a model."""

    __test__ = False
    category = "test"
    time_dependent = True
    outputs = {"image": Output(PortType.IMAGE)}
    params = {"speed": Float(1.0, 0.0, 5.0)}

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        y, x = torch.meshgrid(torch.linspace(-1, 1, 256), torch.linspace(-1, 1, 256), indexing="ij")
        t = ctx.time * params["speed"]
        image = torch.stack([torch.sin(3 * x + t), torch.cos(2 * y - t), x * y])
        return {"image": image[None]}
