"""Small editors for parameters a plain widget edits badly (DATA lists and tables, picks from the model),
keyed on the role the node declares; what they list comes from the node's published editor data.

A type that is not installed, or a value of a shape these editors do not know, gets no editor:
the node still works and its other parameters keep their widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dearpygui.dearpygui as dpg

from autolume_graph import workspace
from autolume_graph.commands import SetParam
from autolume_graph.roles import Role
from autolume_graph.runtime import NodeStat
from autolume_graph.ui.dialogs import open_file
from autolume_graph.ui.pending import Pending
from autolume_graph.ui.view import NodeView

Refresh = Callable[[NodeStat | None], None]


def keyframe_label(entry: Any) -> str:
    """One keyframe as a line: "seed 12", "vector walk.npy", "vector (1, 512)"; "(no project)" when off."""
    if not isinstance(entry, dict):
        return "not a keyframe"
    vector = entry.get("vector")
    if "seed" in entry:
        text = f"seed {entry['seed']}"
    elif isinstance(vector, str):
        text = f"vector {Path(vector).name}"
    elif hasattr(vector, "shape"):
        text = f"vector {tuple(vector.shape)}"
    elif vector is not None:
        text = "vector (kept in the graph)"
    else:
        return "needs a seed or a vector"
    return text if entry.get("project", True) else f"{text} (no project)"


def keyframe_list(node: NodeView, pending: Pending, param: str = "keyframes") -> Refresh | None:
    """The keyframes of a KeyframeLoop, one line each, exactly as many as `count`: add a seed or a saved
    vector (.npy), remove the selected one; each edit sets the list and the count together."""
    if param not in node.kind.params or "count" not in node.kind.params:
        return None
    listbox = dpg.add_listbox([], num_items=4, width=220, label=param)
    seed = dpg.add_input_int(label="seed", default_value=0, width=120)
    project = dpg.add_checkbox(label="project", default_value=True)
    shown: list[Any] = [None]
    listed: list[list[Any]] = [[]]  # the keyframes as the node runs them (its editor data)

    def write(keyframes: list[Any]) -> None:
        pending.submit(SetParam(node.id, param, keyframes))
        pending.submit(SetParam(node.id, "count", len(keyframes)))

    def add(entry: dict[str, Any]) -> None:
        write([*listed[0], {**entry, "project": dpg.get_value(project)}])

    def remove() -> None:
        items = dpg.get_item_configuration(listbox)["items"]
        label = dpg.get_value(listbox)
        if label not in items:
            pending.report("select the keyframe to remove")
        elif len(listed[0]) <= 1:
            pending.report("a loop needs at least one keyframe")
        else:
            kept = list(listed[0])
            del kept[items.index(label)]
            write(kept)

    with dpg.group(horizontal=True):
        dpg.add_button(label="Add seed", callback=lambda: add({"seed": dpg.get_value(seed)}))
        dpg.add_button(label="Add vector...", callback=lambda: open_file(lambda path: add({"vector": path}),
                                                                          "vector", workspace.folder("vectors")))
        dpg.add_button(label="Remove", callback=remove)

    def refresh(stat: NodeStat | None) -> None:
        value = stat.editor.get(param) if node.published_in(stat) else None
        if value is not None and value is not shown[0]:
            shown[0] = listed[0] = value
            dpg.configure_item(listbox, items=[f"{i}: {keyframe_label(e)}" for i, e in enumerate(value)])

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


PICK_HINT = "pick a target"


def layer_targets(node: NodeView, pending: Pending, param: str = "target") -> Refresh | None:
    """LayerTransform's targets: pick the model's resolutions or layers from a list (a pick toggles one in
    `target`), and the status lines listing the edited layers with T (transform) / N (noise) markers."""
    if param not in node.kind.params:
        return None
    picker = dpg.add_combo([], default_value=PICK_HINT, width=200, label="pick")
    markers = dpg.add_text("", wrap=260)
    tokens: dict[str, str] = {}  # combo label -> resolution or layer name
    picked: list[list[str]] = [[]]

    def pick(sender: Any, label: str, user_data: Any) -> None:
        dpg.set_value(picker, PICK_HINT)
        token = tokens.get(label)
        if token is None:
            return
        now = picked[0]
        chosen = [t for t in now if t != token] if token in now else [*now, token]
        pending.submit(SetParam(node.id, param, ",".join(chosen)))

    dpg.set_item_callback(picker, pick)

    def refresh(stat: NodeStat | None) -> None:
        data = stat.editor if node.published_in(stat) else {}
        picked[0] = list(data.get("picked", []))
        labels = {f"[{'x' if t in picked[0] else ' '}] {t}": t for t in data.get("targets", [])}
        if labels != tokens:
            tokens.clear()
            tokens.update(labels)
            dpg.configure_item(picker, items=list(labels) or ["(connect a model)"])
        dpg.set_value(markers, "\n".join(stat.status_parts if stat else ()))

    return refresh


EDITORS: dict[str, Callable[[NodeView, Pending], Refresh | None]] = {
    Role.KEYFRAMES: keyframe_list,
    Role.MIXER: mix_table,
    Role.LAYER_EDITS: layer_targets,
}


def build(node: NodeView, pending: Pending) -> Refresh | None:
    """The editor of the node's first role that has one, in a static attribute of the current node, or None."""
    make = next((EDITORS[role] for role in EDITORS if role in node.kind.roles), None)
    if make is None:
        return None
    with dpg.node_attribute(attribute_type=dpg.mvNode_Attr_Static):
        return make(node, pending)
