"""The editor's status bar: one line, errors in red and confirmations in grey.

An error stays until something replaces it: a later message, or a later edit that succeeded (an
undo after a refused link must not leave the refusal showing).
"""

from __future__ import annotations

import dearpygui.dearpygui as dpg

ERROR_COLOR = (255, 90, 90, 255)
INFO_COLOR = (200, 200, 200, 255)
READY = "ready"


class StatusBar:
    """`error(message)`, `inform(message)`, and `succeeded()` after any edit that went through.

    Made before the layout (everything reports to it); `attach` puts its line where it is called.
    """

    def __init__(self) -> None:
        self.item: int | str | None = None
        self.text = READY
        self.showing_error = False

    def attach(self) -> None:
        self.item = dpg.add_text(self.text)
        self._draw()

    def show(self, message: str, error: bool) -> None:
        self.text, self.showing_error = message, error
        self._draw()

    def _draw(self) -> None:
        if self.item is not None:
            dpg.set_value(self.item, self.text)
            dpg.configure_item(self.item, color=ERROR_COLOR if self.showing_error else INFO_COLOR)

    def error(self, message: str) -> None:
        self.show(message, True)

    def inform(self, message: str) -> None:
        self.show(message, False)

    def succeeded(self) -> None:
        """An edit went through: an error about an earlier one no longer applies."""
        if self.showing_error:
            self.inform(READY)
