"""Pickers instead of typed strings: LayerTransform's targets from the model's list, KeyframeLoop's keyframes
(seeds or saved vectors) always as many as its count, and ModelMix's on/off toggle.

The node behaviour is tested directly; the editors are driven with real key and mouse events (xdotool)
under a private Xvfb, in a child process with its own Dear PyGui context.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from autolume_graph.gan.loader import load_model
from autolume_graph.node import CookContext, NodeError
from nodes.layer_transform import LayerTransform
from nodes.loops import KeyframeLoop
from nodes.model_mix import ModelMix
from tests.ui_input import ARTIFACTS, Pointer, centre, needs_input, print_scene, run_scene, xdo

CTX = CookContext()
VIEWPORT = (1400, 900)
TINY = "sg2_64_tiny.pkl"


@pytest.fixture(scope="module")
def model(reference_dir):
    return load_model(reference_dir / TINY)


def cook(node, inputs, **values):
    for name, value in values.items():
        node.set_value(name, value)
    return node.cook(CTX, inputs, dict(node.values))


def test_layer_transform_publishes_the_models_targets_and_what_target_picks(model):
    node = LayerTransform()
    assert node.editor_data() == {}  # no model seen yet: nothing to pick from
    cook(node, {"model": model}, target="16, 32")
    assert node.editor_data() == {"targets": ["4", "8", "16", "32", "64"], "picked": ["16", "32"]}
    node.set_value("mode", "advanced")
    advanced = node.editor_data()["targets"]
    assert "b16.conv0" in advanced and advanced == [info.name for info in model.layer_info()]
    with pytest.raises(NodeError, match="layers: b4.conv1"):  # the picker's names are the ones the node takes
        cook(node, {"model": model}, target="nope")


def test_keyframe_loop_lists_exactly_count_keyframes():
    node = KeyframeLoop()
    node.set_value("count", 3)
    node.set_value("keyframes", [{"seed": 9, "project": False}])
    assert node.editor_data() == {"keyframes": [{"seed": 9, "project": False}, {"seed": 1}, {"seed": 2}]}
    node.set_value("count", 1)  # fewer: the rest stays stored, unused, until the count grows again
    assert node.editor_data() == {"keyframes": [{"seed": 9, "project": False}]}
    node.set_value("keyframes", [{"seed": 4}, {"vector": "walk.npy"}])
    node.set_value("count", 2)
    assert node.editor_data() == {"keyframes": [{"seed": 4}, {"vector": "walk.npy"}]}


def test_keyframe_labels():
    from autolume_graph.ui.node_editors import keyframe_label

    assert keyframe_label({"seed": 12}) == "seed 12"
    assert keyframe_label({"vector": "/somewhere/walk.npy", "project": False}) == "vector walk.npy (no project)"
    assert keyframe_label({"vector": np.zeros((1, 512))}) == "vector (1, 512)"
    assert keyframe_label({}) == "needs a seed or a vector"


def test_model_mix_off_passes_model_a_through(model):
    from autolume_graph.gan.default_model import make_random_model

    other = make_random_model(model.settings(), seed=1)
    node = ModelMix()
    assert cook(node, {"a": model, "b": None}, use_mix=False) == {"model": model}  # B may be unwired while off
    assert "off" in node.status
    assert cook(node, {"a": model, "b": other}, crossfade=0.5) == {}  # off: A still, no change downstream
    mixed = cook(node, {"a": model, "b": other}, use_mix=True)["model"]
    assert mixed is not model and mixed is not other
    assert cook(node, {"a": model, "b": other}) == {}  # on, nothing changed: the mix as before
    assert cook(node, {"a": model, "b": other}, use_mix=False) == {"model": model}
    assert cook(node, {"a": model, "b": other}, use_mix=True) == {"model": mixed}  # back on: the same mix
    with pytest.raises(NodeError, match="connect models a and b"):
        cook(node, {"a": model, "b": None})


def drive(model_path: str) -> dict:
    """The editor session: returns what was observed at each step."""
    import dearpygui.dearpygui as dpg

    from autolume_graph.graph import Edge, Graph
    from autolume_graph.registry import default_registry
    from autolume_graph.runtime import Runtime
    from autolume_graph.session import Session
    from autolume_graph.ui.app import Editor

    registry = default_registry()
    graph = Graph()
    loader = graph.add_node(registry.create("ModelLoader"), name="loader")
    loader.set_value("path", model_path)
    loader.ui["pos"] = [20, 20]
    layers = graph.add_node(registry.create("LayerTransform"), name="bend")
    layers.ui["pos"] = [310, 20]
    loop = graph.add_node(registry.create("KeyframeLoop"), name="loop")
    loop.ui["pos"] = [20, 170]
    mixer = graph.add_node(registry.create("ModelMix"), name="mixer")
    mixer.ui["pos"] = [600, 20]
    mapping = graph.add_node(registry.create("Mapping"), name="map")
    generate = graph.add_node(registry.create("Generate"), name="gen")
    preview = graph.add_node(registry.create("Preview"), name="out")
    for index, node in enumerate((mapping, generate, preview)):
        node.ui["pos"] = [840, 20 + 200 * index]
    for src, sp, dst, dp in [(loader, "model", layers, "model"), (loader, "model", mixer, "a"),
                             (loader, "model", mixer, "b"), (mixer, "model", mapping, "model"),
                             (mixer, "model", generate, "model"), (loop, "z", mapping, "latent"),
                             (mapping, "w", generate, "w"), (layers, "edits", generate, "edits"),
                             (generate, "image", preview, "image")]:
        graph.add_edge(Edge(src.id, sp, dst.id, dp))
    session = Session(Runtime(graph, fps=30.0), osc_port=0)
    session.start_services()
    session.runtime.start()
    editor = Editor(session, width=VIEWPORT[0], height=VIEWPORT[1])
    seen: dict = {}

    pointer = Pointer(editor.render, lambda: editor.status.text)
    click = pointer.click

    def until(check: Callable[[], bool], what: str) -> None:
        pointer.until(check, what, timeout=60.0)

    def of_type(node_id: str, kind: str, label: str = "") -> int | str:
        """The one item of Dear PyGui type `kind` (and label) inside the canvas node of `node_id`."""
        found, stack = [], [editor.canvas.items[node_id]]
        while stack:
            item = stack.pop()
            if dpg.get_item_type(item) == f"mvAppItemType::{kind}" and (not label or dpg.get_item_label(item) == label):
                found.append(item)
            for children in (dpg.get_item_children(item) or {}).values():
                stack.extend(children)
        assert len(found) == 1, (kind, label, found)
        return found[0]

    def values(node_id: str) -> dict:
        return session.runtime.snapshot.nodes[node_id].values

    try:
        until(lambda: (stat := session.runtime.snapshot.nodes.get(layers.id)) is not None
              and stat.editor.get("targets"), "the model's targets")
        editor.render(5)
        picker = of_type(layers.id, "mvCombo", "pick")
        until(lambda: "[ ] 16" in dpg.get_item_configuration(picker)["items"], "the picker's items")
        seen["picker_items"] = dpg.get_item_configuration(picker)["items"]
        (x0, y0), (_, y1) = dpg.get_item_rect_min(picker), dpg.get_item_rect_max(picker)
        click(int(x0) + 40, int((y0 + y1) / 2))  # open the list
        dpg.output_frame_buffer(file=str(ARTIFACTS / "ui-picker-open.png"))
        editor.render(3)
        row = y1 - y0  # the list's rows are about as high as the combo, right below it
        click(int(x0) + 40, int(y1 + 2.5 * row))  # the third row: resolution 16
        until(lambda: values(layers.id)["target"] == "16", "the picked target")
        until(lambda: "[x] 16" in dpg.get_item_configuration(picker)["items"], "the pick marked")
        seen["target_after_pick"] = values(layers.id)["target"]

        listbox = of_type(loop.id, "mvListbox")
        seed = of_type(loop.id, "mvInputInt", "seed")
        click(*centre(seed))
        xdo("key", "ctrl+a", "BackSpace")
        xdo("type", "--delay", "15", "77")
        xdo("key", "Return")
        editor.render(3)
        click(*centre(of_type(loop.id, "mvButton", "Add seed")))
        until(lambda: values(loop.id)["count"] == 5, "the count after adding")
        until(lambda: len(dpg.get_item_configuration(listbox)["items"]) == 5, "the list after adding")
        seen["after_add"] = [values(loop.id)["count"], dpg.get_item_configuration(listbox)["items"]]
        (lx0, ly0), _ = dpg.get_item_rect_min(listbox), dpg.get_item_rect_max(listbox)
        click(int(lx0) + 40, int(ly0) + 8)  # the first line
        click(*centre(of_type(loop.id, "mvButton", "Remove")))
        until(lambda: values(loop.id)["count"] == 4, "the count after removing")
        until(lambda: len(dpg.get_item_configuration(listbox)["items"]) == 4, "the list after removing")
        seen["after_remove"] = [values(loop.id)["count"], dpg.get_item_configuration(listbox)["items"]]

        toggle = editor.widgets.by_node[mixer.id]["use_mix"].widget
        seen["use_mix_before"] = values(mixer.id)["use_mix"]
        click(*centre(toggle))
        until(lambda: values(mixer.id)["use_mix"] is False, "use_mix off")
        until(lambda: "off" in session.runtime.snapshot.nodes[mixer.id].status, "the mixer's off status")
        editor.render(5)
        dpg.output_frame_buffer(file=str(ARTIFACTS / "ui-pickers.png"))
        editor.render(3)
    finally:
        editor.close()
        session.close()
    return seen


@needs_input
def test_the_pickers_with_real_input(reference_dir: Path) -> None:
    seen = run_scene("tests.test_pickers", str(reference_dir / TINY), timeout=240)
    assert seen["picker_items"] == ["[ ] 4", "[ ] 8", "[ ] 16", "[ ] 32", "[ ] 64"]
    assert seen["target_after_pick"] == "16"
    assert seen["after_add"] == [5, ["0: seed 0", "1: seed 1", "2: seed 2", "3: seed 3", "4: seed 77"]]
    assert seen["after_remove"] == [4, ["0: seed 1", "1: seed 2", "2: seed 3", "3: seed 77"]]
    assert seen["use_mix_before"] is True


if __name__ == "__main__":
    print_scene(drive)
