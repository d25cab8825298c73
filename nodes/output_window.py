"""OutputWindow: a projector window, fullscreen on a chosen monitor, independent of the editor.

The window lives in a child process (`outputs.window`) fed through shared memory, so closing it,
or it crashing, never touches rendering: the node then shows "window closed" and opens a new
window only when one of its parameters changes (toggle `enabled` to reopen), never on its own.
"""

from __future__ import annotations

from typing import Any

from autolume_graph.node import CookContext, Node, NodeError
from autolume_graph.outputs.latest import LatestFrame
from autolume_graph.outputs.window import WindowProcess
from autolume_graph.params import Bool, Input, Int
from autolume_graph.roles import Role
from autolume_graph.types import PortType


class OutputWindow(Node):
    """Shows the image in its own window (a projector output), borderless over a whole monitor."""

    category = "output"
    roles = frozenset({Role.SINK, Role.OUTPUT_WINDOW})
    inputs = {"image": Input(PortType.IMAGE, "image to show")}
    params = {
        "monitor": Int(1, 0, 8, doc="monitor to show on (0: primary)"),
        "fullscreen": Bool(True, doc="cover the whole monitor without a border (off: a normal window)"),
        "enabled": Bool(True, doc="off closes the window; on opens it again"),
    }

    def reset(self) -> None:
        self._latest = LatestFrame()
        self._window: WindowProcess | None = None
        self._settings: tuple[int, bool] | None = None  # what the window was opened or moved with

    @property
    def window(self) -> WindowProcess | None:
        """The window's process handle (None before the first image or when disabled)."""
        return self._window

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self._latest.update(inputs.get("image"))
        if not params["enabled"]:
            self.close()
            self.status = "disabled"
            return {}
        frame = self._latest.frame
        if frame is None:
            self.status = "waiting for an image"
            return {}
        settings = (int(params["monitor"]), bool(params["fullscreen"]))
        h, w = frame.bgra.shape[:2]
        window = self._window
        if window is not None and not window.alive:
            if settings == self._settings:
                reason = window.exit_reason()
                self.status = f"window closed ({reason})" if reason else "window closed"
                return {}
            self.close()
        elif window is not None and not window.fits(w, h):
            self.close()
        if self._window is None:
            try:
                self._window = WindowProcess(w, h, *settings)
            except OSError as exc:
                raise NodeError(f"cannot open the output window: {exc}") from None
        elif settings != self._settings:
            self._window.configure(*settings)
        self._settings = settings
        self._window.show(frame.bgra)
        self.status = ""
        return {}

    def close(self) -> None:
        """Close the window; a later cook opens a new one."""
        if self._window is not None:
            self._window.close()
            self._window = None
        self._settings = None
