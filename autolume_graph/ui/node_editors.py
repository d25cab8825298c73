"""Small editors for DATA parameters of particular node types, keyed on the role the node declares.

A type that is not installed, or a value of a shape these editors do not know, gets no editor:
the node still works and its other parameters keep their widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dearpygui.dearpygui as dpg

from autolume_graph.commands import SetParam
from autolume_graph.roles import Role
from autolume_graph.runtime import NodeStat
from autolume_graph.ui.pending import Pending
from autolume_graph.ui.view import NodeView

Refresh = Callable[[NodeStat | None], None]


def _summary(entry: Any) -> str:
    shape = getattr(entry, "shape", None)
    if shape is not None:
        return f"array {tuple(shape)}"
    if isinstance(entry, dict):
        return ", ".join(f"{k}={v}" for k, v in list(entry.items())[:3] if not hasattr(v, "shape")) or "entry"
    return str(entry)[:40]


def keyframe_list(node: NodeView, pending: Pending, param: str = "keyframes") -> Refresh | None:
    """The keyframes of a KeyframeLoop: one line each; add a seed keyframe, remove the selected one."""
    if param not in node.kind.params:
        return None
    listbox = dpg.add_listbox([], num_items=4, width=220, label=param)
    seed = dpg.add_input_int(label="seed", default_value=0, width=120)
    project = dpg.add_checkbox(label="project", default_value=True)
    shown: list[Any] = [None]
    latest = [node.values]

    def entries() -> list[Any]:
        return list(latest[0].get(param) or [])

    def add() -> None:
        pending.submit(SetParam(node.id, param, [*entries(), {"seed": dpg.get_value(seed),
                                                              "project": dpg.get_value(project)}]))

    def remove() -> None:
        items = dpg.get_item_configuration(listbox)["items"]
        label = dpg.get_value(listbox)
        if label in items:
            kept = entries()
            del kept[items.index(label)]
            pending.submit(SetParam(node.id, param, kept))

    with dpg.group(horizontal=True):
        dpg.add_button(label="Add seed keyframe", callback=add)
        dpg.add_button(label="Remove", callback=remove)

    def refresh(stat: NodeStat | None) -> None:
        latest[0] = node.current_values(stat)
        value = latest[0].get(param)
        if value is not shown[0]:
            shown[0] = value
            dpg.configure_item(listbox, items=[f"{i}: {_summary(e)}" for i, e in enumerate(value or [])])

    return refresh


MIX_CHOICES = {"-": None, "A": 0.0, "B": 1.0, "X": "X"}


def mix_table(node: NodeView, pending: Pending, param: str = "mix") -> Refresh | None:
    """ModelMix's table: per resolution (or layer) take A, B, drop it (X), or leave it to the crossfade (-)."""
    if param not in node.kind.params or Role.MIXER not in node.kind.roles:
        return None
    table = dpg.add_table(header_row=True, width=260, policy=dpg.mvTable_SizingStretchProp)
    dpg.add_table_column(label="layer", parent=table)
    dpg.add_table_column(label="source", parent=table)
    radios: dict[str, int | str] = {}
    shown_keys: list[list[str]] = [[]]
    latest = [node.values]

    def choose(sender: Any, label: str, key: str) -> None:
        mix = dict(latest[0].get(param) or {})
        if MIX_CHOICES[label] is None:
            mix.pop(key, None)
        else:
            mix[key] = MIX_CHOICES[label]
        pending.submit(SetParam(node.id, param, mix))

    def label_of(value: Any) -> str:
        return next((k for k, v in MIX_CHOICES.items() if v == value and v is not None), "-")

    def refresh(stat: NodeStat | None) -> None:
        latest[0] = node.current_values(stat)
        keys = list(stat.editor.get("mix_keys", [])) if node.published_in(stat) else []
        if keys != shown_keys[0]:  # A (or the mode) changed: rebuild the rows
            shown_keys[0] = keys
            for row in dpg.get_item_children(table, 1) or []:
                dpg.delete_item(row)
            radios.clear()
            for key in keys:
                with dpg.table_row(parent=table):
                    dpg.add_text(key)
                    radios[key] = dpg.add_radio_button(list(MIX_CHOICES), horizontal=True, default_value="-",
                                                       callback=choose, user_data=key)
        mix = latest[0].get(param) or {}
        for key, radio in radios.items():
            label = label_of(mix.get(key))
            if dpg.get_value(radio) != label:
                dpg.set_value(radio, label)

    return refresh


def layer_markers(node: NodeView, pending: Pending) -> Refresh | None:
    """LayerTransform's targets: its status line lists layers with T (transform) / N (noise) markers."""
    text = dpg.add_text("", wrap=260)

    def refresh(stat: NodeStat | None) -> None:
        dpg.set_value(text, "\n".join(stat.status_parts if stat else ()))

    return refresh


EDITORS: dict[str, Callable[[NodeView, Pending], Refresh | None]] = {
    Role.KEYFRAMES: keyframe_list,
    Role.MIXER: mix_table,
    Role.LAYER_EDITS: layer_markers,
}


def build(node: NodeView, pending: Pending) -> Refresh | None:
    """The editor of the node's first role that has one, in a static attribute of the current node, or None."""
    make = next((EDITORS[role] for role in EDITORS if role in node.kind.roles), None)
    if make is None:
        return None
    with dpg.node_attribute(attribute_type=dpg.mvNode_Attr_Static):
        return make(node, pending)
