"""A small window floating at the cursor (the node search, the canvas menu), hidden until asked for.

A plain window without a title bar rather than a Dear PyGui popup, so that its owner decides when it
closes (Escape, a choice, a click outside) and a text box in it keeps the keyboard.
"""

from __future__ import annotations

import dearpygui.dearpygui as dpg

from autolume_graph.ui.placement import Point
from autolume_graph.ui.widgets import Item


class Popup:
    """Add its contents with `parent=popup.window`; `show_at(point)`, `hide()`, `contains(point)`."""

    def __init__(self, width: int, height: int = 0) -> None:
        self.window: Item = dpg.add_window(show=False, no_title_bar=True, no_resize=True, no_move=True,
                                           no_collapse=True, no_saved_settings=True, width=width, height=height,
                                           autosize=not height, no_scrollbar=True)

    @property
    def showing(self) -> bool:
        return bool(dpg.is_item_shown(self.window))

    def show_at(self, point: Point) -> None:
        dpg.configure_item(self.window, show=True, pos=[int(point[0]), int(point[1])])
        dpg.focus_item(self.window)

    def hide(self) -> None:
        dpg.configure_item(self.window, show=False)

    def contains(self, point: Point) -> bool:
        if not self.showing:
            return False
        (x, y), (width, height) = dpg.get_item_pos(self.window), dpg.get_item_rect_size(self.window)
        return x <= point[0] <= x + width and y <= point[1] <= y + height
