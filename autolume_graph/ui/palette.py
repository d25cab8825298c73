"""A searchable list of every registered node type; choosing one adds it to the graph.

The labels, docs and filter are shared with the canvas's node search (node_search.py).
"""

from __future__ import annotations

from collections.abc import Callable

import dearpygui.dearpygui as dpg

from autolume_graph.registry import Registry


def type_labels(registry: Registry) -> dict[str, str]:
    """Each node type's list label ("Name  (category)") to its type name, by category then name."""
    return {f"{name}  ({cls.category})": name for name, cls in
            sorted(registry.types.items(), key=lambda kv: (kv[1].category, kv[0]))}


def type_docs(registry: Registry) -> dict[str, str]:
    """The first line of each node type's docstring."""
    return {name: (cls.__doc__ or "").strip().split("\n")[0] for name, cls in registry.types.items()}


def matching(labels: list[str], text: str) -> list[str]:
    """The labels containing `text` (any case), those starting with it first."""
    needle = text.strip().lower()
    found = [label for label in labels if needle in label.lower()]
    return sorted(found, key=lambda label: not label.lower().startswith(needle))


class Palette:
    """Filter box and list of node types (by category), and an Add button."""

    def __init__(self, registry: Registry, on_add: Callable[[str], None]) -> None:
        self.on_add = on_add
        self.entries = type_labels(registry)
        self.docs = type_docs(registry)
        self.search = dpg.add_input_text(hint="search node types", width=-1, callback=lambda: self.filter())
        self.list = dpg.add_listbox(list(self.entries), num_items=14, width=-1)
        dpg.add_button(label="Add node", width=-1, callback=lambda: self.add_selected())
        self.doc = dpg.add_text("", wrap=420)
        dpg.configure_item(self.list, callback=lambda: self._show_doc())

    def filter(self) -> None:
        shown = matching(list(self.entries), dpg.get_value(self.search))
        dpg.configure_item(self.list, items=shown)
        if shown:
            dpg.set_value(self.list, shown[0])
        self._show_doc()

    def selected(self) -> str | None:
        return self.entries.get(dpg.get_value(self.list))

    def add_selected(self) -> None:
        name = self.selected()
        if name is not None:
            self.on_add(name)

    def _show_doc(self) -> None:
        name = self.selected()
        dpg.set_value(self.doc, self.docs.get(name, "") if name else "")
