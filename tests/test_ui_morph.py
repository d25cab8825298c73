"""The presets panel's morph time, driven with real clicks and keys (xdotool) under a private Xvfb, in a child
process with its own Dear PyGui context.

Open the Presets tab, type a morph time of 2 s, click a preset's slot and Load: the running value passes
through the values between the two presets' (it does not jump), the status bar says it is morphing, then
that the preset is loaded; with the time back at 0 a Load switches at once.
"""

from __future__ import annotations

from pathlib import Path

from tests.ui_input import ARTIFACTS, Pointer, centre, needs_input, print_scene, run_scene, xdo

VIEWPORT = (1400, 900)


def drive(folder: Path) -> dict:
    """The whole session: returns what was observed at each step."""
    import dearpygui.dearpygui as dpg

    from autolume_graph.graph import Graph
    from autolume_graph.registry import default_registry
    from autolume_graph.runtime import Runtime
    from autolume_graph.session import Session
    from autolume_graph.ui.app import Editor

    def level_graph(value: float) -> Graph:
        graph = Graph()
        node = graph.add_node(default_registry().create("Constant"), name="level")
        node.set_value("value", value)
        node.ui["pos"] = [60, 60]
        return graph

    graph = level_graph(0.0)
    level = next(iter(graph.nodes))
    session = Session(Runtime(graph, fps=60.0), osc_port=0, preset_dir=folder / "presets")
    session.presets.save("bright", level_graph(10.0))
    session.presets.save("dark", level_graph(-5.0))
    session.start_services()
    session.runtime.start()
    editor = Editor(session, width=VIEWPORT[0], height=VIEWPORT[1])
    panel = editor.presets
    seen: dict = {}
    values: list[float] = []

    def render() -> None:
        editor.frame()
        dpg.render_dearpygui_frame()
        stat = session.runtime.snapshot.nodes.get(level)
        if stat is not None:
            values.append(stat.values["value"])

    pointer = Pointer(render, lambda: editor.status.text)
    until, click = pointer.until, pointer.click

    def item_labelled(label: str, kind: str, within: int | str | None = None) -> int | str:
        items = dpg.get_item_children(within, 1) if within is not None else dpg.get_all_items()
        return next(i for i in items if dpg.get_item_type(i) == kind and dpg.get_item_label(i) == label)

    def slot(name: str) -> int | str:
        rows = dpg.get_item_children(panel.grid, 1)
        return next(i for row in rows for i in dpg.get_item_children(row, 1) if dpg.get_item_label(i) == name)

    def set_morph_time(text: str) -> None:
        (x0, _), (_, y1) = dpg.get_item_rect_min(panel.morph), dpg.get_item_rect_max(panel.morph)
        click(x0 + 20, y1 - 8)  # the field, left of its label (the item's rect holds both)
        until(lambda: dpg.is_item_active(panel.morph), "the morph time in edit")
        for keys in ("ctrl+a", "BackSpace"):
            xdo("key", keys)
            pointer.frames(3)
        pointer.type(text)
        xdo("key", "Return")
        pointer.frames(3)

    try:
        pointer.frames(10)
        tab = item_labelled("Presets", "mvAppItemType::mvTab")
        click(*centre(tab))
        for _ in range(20):  # the side panel scrolls: the wheel brings the presets' buttons up
            if dpg.is_item_visible(panel.morph) and dpg.get_item_rect_max(panel.morph)[1] < VIEWPORT[1] - 40:
                break
            xdo("click", "5")
            pointer.frames(3)
        until(lambda: dpg.is_item_visible(panel.morph), "the presets panel in view")
        load = item_labelled("Load", "mvAppItemType::mvButton", dpg.get_item_parent(panel.name))
        set_morph_time("2")
        seen["morph_time"] = dpg.get_value(panel.morph)
        click(*centre(slot("bright")))
        until(lambda: panel.chosen == "bright", "the slot chosen")
        start_graph = session.runtime.graph
        values.clear()
        click(*centre(load))
        seen["status_morphing"] = editor.status.text
        until(lambda: 3.0 < values[-1] < 7.0, "the value halfway")
        dpg.output_frame_buffer(file=str(ARTIFACTS / "ui-morph.png"))
        until(lambda: session.runtime.graph is not start_graph, "the preset swapped in", timeout=30)
        until(lambda: "loaded" in editor.status.text, "the loaded line")
        seen["status_loaded"] = editor.status.text
        seen["values"] = list(values)
        seen["error"] = editor.status.showing_error

        set_morph_time("0")
        seen["morph_time_zero"] = dpg.get_value(panel.morph)
        click(*centre(slot("dark")))
        until(lambda: panel.chosen == "dark", "the dark slot chosen")
        values.clear()
        bright_graph = session.runtime.graph
        click(*centre(load))
        until(lambda: session.runtime.graph is not bright_graph, "the instant switch")
        until(lambda: values[-1] == -5.0, "the dark value")
        seen["instant_values"] = sorted(set(values))
    finally:
        editor.close()
        session.close()
    return seen


@needs_input
def test_the_presets_panel_morphs_over_the_time_typed_beside_load(tmp_path: Path) -> None:
    seen = run_scene("tests.test_ui_morph", str(tmp_path), timeout=180)
    assert seen["morph_time"] == 2.0
    assert seen["status_morphing"] == "morphing into preset bright over 2 s..."
    values = seen["values"]
    between = [v for v in values if 0.0 < v < 10.0]
    assert len(between) >= 5, values
    assert all(a <= b for a, b in zip(values, values[1:], strict=False)), "the value goes one way"
    assert values[-1] == 10.0
    assert seen["status_loaded"] == "preset bright loaded" and seen["error"] is False
    assert seen["morph_time_zero"] == 0.0
    assert set(seen["instant_values"]) <= {10.0, -5.0}, "at 0 s a Load switches at once"


if __name__ == "__main__":
    print_scene(lambda folder: drive(Path(folder)))
