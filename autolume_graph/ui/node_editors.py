"""Small editors for DATA parameters of particular node types, keyed on type_name.

A type that is not installed, or a value of a shape these editors do not know, gets no editor:
the node still works and its other parameters keep their widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dearpygui.dearpygui as dpg

from autolume_graph.commands import SetParam
from autolume_graph.runtime import NodeStat
from autolume_graph.ui.pending import Pending
from autolume_graph.ui.view import NodeView

Refresh = Callable[[NodeStat | None], None]
MIX_SOURCES = ("A", "B", "X")


def _summary(entry: Any) -> str:
    shape = getattr(entry, "shape", None)
    if shape is not None:
        return f"array {tuple(shape)}"
    if isinstance(entry, dict):
        return ", ".join(f"{k}={v}" for k, v in list(entry.items())[:3] if not hasattr(v, "shape")) or "entry"
    return str(entry)[:40]


def keyframe_list(node: NodeView, pending: Pending, param: str = "keyframes") -> Refresh | None:
    """The keyframes of a KeyframeLoop: one line each, select and Remove."""
    if param not in node.node.params:
        return None
    listbox = dpg.add_listbox([], num_items=4, width=220, label=param)
    shown: list[Any] = [None]

    def remove() -> None:
        entries = list(node.node.values.get(param) or [])
        items = dpg.get_item_configuration(listbox)["items"]
        label = dpg.get_value(listbox)
        if label in items:
            del entries[items.index(label)]
            pending.submit(SetParam(node.id, param, entries))

    dpg.add_button(label="Remove keyframe", callback=remove)

    def refresh(stat: NodeStat | None) -> None:
        entries = node.node.values.get(param)
        if entries is not shown[0]:
            shown[0] = entries
            dpg.configure_item(listbox, items=[f"{i}: {_summary(e)}" for i, e in enumerate(entries or [])])

    return refresh


def mix_table(node: NodeView, pending: Pending, param: str = "mix") -> Refresh | None:
    """ModelMix's per-layer source: A, B or X (removed) for each entry of a {layer: source} mapping."""
    value = node.node.values.get(param)
    if param not in node.node.params or not isinstance(value, dict):
        return None
    radios: dict[str, int | str] = {}
    with dpg.table(header_row=True, width=240, policy=dpg.mvTable_SizingStretchProp):
        dpg.add_table_column(label="layer")
        dpg.add_table_column(label="source")
        for layer, source in value.items():
            with dpg.table_row():
                dpg.add_text(str(layer))

                def choose(sender: Any, choice: str, layer: str = layer) -> None:
                    mix = dict(node.node.values.get(param) or {})
                    mix[layer] = choice
                    pending.submit(SetParam(node.id, param, mix))

                radios[str(layer)] = dpg.add_radio_button(MIX_SOURCES, default_value=str(source), horizontal=True,
                                                          callback=choose)

    def refresh(stat: NodeStat | None) -> None:
        for layer, source in (node.node.values.get(param) or {}).items():
            radio = radios.get(str(layer))
            if radio is not None and dpg.get_value(radio) != source:
                dpg.set_value(radio, source)

    return refresh


def layer_markers(node: NodeView, pending: Pending) -> Refresh | None:
    """LayerTransform's targets: its status line lists layers with T (transform) / N (noise) markers."""
    text = dpg.add_text("", wrap=260)

    def refresh(stat: NodeStat | None) -> None:
        lines = [part.strip() for part in (stat.status if stat else "").split(";") if part.strip()]
        dpg.set_value(text, "\n".join(lines))

    return refresh


EDITORS: dict[str, Callable[[NodeView, Pending], Refresh | None]] = {
    "KeyframeLoop": keyframe_list,
    "ModelMix": mix_table,
    "LayerTransform": layer_markers,
}


def build(node: NodeView, pending: Pending) -> Refresh | None:
    """The node's editor in a static attribute of the current node, or None for other types."""
    make = EDITORS.get(node.type_name)
    if make is None:
        return None
    with dpg.node_attribute(attribute_type=dpg.mvNode_Attr_Static):
        return make(node, pending)
