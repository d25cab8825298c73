"""The node search at the cursor (Tab or a double-click on the canvas), as in TouchDesigner and Max.

Typing filters the registry's node types, Up/Down choose, Enter places the chosen type where the
search was opened, Escape closes. It knows nothing of the graph: `on_choose` does the placing.
"""

from __future__ import annotations

from collections.abc import Callable

import dearpygui.dearpygui as dpg

from autolume_graph.registry import Registry
from autolume_graph.ui.palette import matching, type_docs, type_labels
from autolume_graph.ui.placement import Point
from autolume_graph.ui.popup import Popup

WIDTH = 300


class NodeSearch:
    """`open(screen, canvas)` shows it at `screen`; Enter calls `on_choose(type_name, canvas)`."""

    def __init__(self, registry: Registry, on_choose: Callable[[str, Point], None]) -> None:
        self.on_choose = on_choose
        self.entries = type_labels(registry)
        self.docs = type_docs(registry)
        self.shown: list[str] = list(self.entries)
        self.at: Point = (0.0, 0.0)
        self.popup = Popup(WIDTH)
        with dpg.group(parent=self.popup.window):
            self.text = dpg.add_input_text(hint="search nodes", width=-1, callback=lambda: self.filter())
            self.list = dpg.add_listbox(self.shown, num_items=8, width=-1, callback=lambda: self._show_doc())
            self.doc = dpg.add_text("", wrap=WIDTH - 16)

    @property
    def showing(self) -> bool:
        return self.popup.showing

    def open(self, screen: Point, canvas: Point) -> None:
        self.at = canvas
        dpg.set_value(self.text, "")
        self.filter()
        self.popup.show_at(screen)
        dpg.focus_item(self.text)

    def close(self) -> None:
        self.popup.hide()

    def filter(self) -> None:
        self.shown = matching(list(self.entries), dpg.get_value(self.text))
        dpg.configure_item(self.list, items=self.shown)
        dpg.set_value(self.list, self.shown[0] if self.shown else "")
        self._show_doc()

    def move(self, step: int) -> None:
        """Up (-1) or Down (+1) in the filtered list, stopping at its ends."""
        if not self.shown:
            return
        current = dpg.get_value(self.list)
        index = self.shown.index(current) if current in self.shown else 0
        dpg.set_value(self.list, self.shown[max(0, min(len(self.shown) - 1, index + step))])
        self._show_doc()

    def chosen(self) -> str | None:
        return self.entries.get(dpg.get_value(self.list)) if self.shown else None

    def choose(self) -> None:
        """Enter: place the chosen type and close (nothing matches: stay open)."""
        name = self.chosen()
        if name is not None:
            self.close()
            self.on_choose(name, self.at)

    def _show_doc(self) -> None:
        name = self.chosen()
        dpg.set_value(self.doc, self.docs.get(name, "") if name else "no node type matches")
