"""Patching habits on the canvas, driven with real key and mouse events (xdotool) under a private Xvfb,
in a child process with its own Dear PyGui context: the node search at the cursor (Tab, double-click),
placement that never covers a node, wiring by dragging pins (and a refused wire), the canvas menu,
copy/paste/duplicate, undo/redo, framing and the minimap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ui_input import ARTIFACTS, Pointer, needs_input, print_scene, run_scene, xdo

VIEWPORT = (1600, 1000)


def drive(folder: Path) -> dict:
    """The whole session: returns what was observed at each step."""
    import dearpygui.dearpygui as dpg

    from autolume_graph.commands import SetParam
    from autolume_graph.graph import Edge, Graph
    from autolume_graph.registry import default_registry
    from autolume_graph.runtime import Runtime
    from autolume_graph.session import Session
    from autolume_graph.ui.app import Editor
    from autolume_graph.ui.placement import overlaps
    from tests.ui_support import TestPattern

    registry = default_registry()
    graph = Graph()
    lfo = graph.add_node(registry.create("LFO"), name="lfo")
    math = graph.add_node(registry.create("Math"), name="math")
    pattern = graph.add_node(TestPattern(), name="pattern")
    preview = graph.add_node(registry.create("Preview"), name="preview")
    lfo.ui["pos"], math.ui["pos"] = [30, 30], [380, 30]
    pattern.ui["pos"], preview.ui["pos"] = [30, 330], [380, 420]
    graph.add_edge(Edge(pattern.id, "image", preview.id, "image"))
    session = Session(Runtime(graph, fps=60.0), osc_port=0, preset_dir=folder / "presets")
    session.start_services()
    session.runtime.start()
    editor = Editor(session, width=VIEWPORT[0], height=VIEWPORT[1])
    canvas = editor.canvas
    seen: dict = {}

    until = Pointer(editor.render, lambda: editor.status.text).until

    def at(x: float, y: float) -> None:
        xdo("mousemove", str(int(x)), str(int(y)))
        editor.render(3)

    def key(combo: str) -> None:
        xdo("key", combo)
        editor.render(4)

    def shot(name: str) -> None:
        dpg.output_frame_buffer(file=str(ARTIFACTS / name))
        editor.render(3)

    def graph_call(work: Callable) -> object:
        return session.runtime.call(work)

    def names() -> dict[str, str]:
        return graph_call(lambda rt: {n.name: n.id for n in rt.graph.nodes.values()})

    def edges() -> set[tuple[str, str, str, str]]:
        return graph_call(lambda rt: {(rt.graph.nodes[e.src].name, e.src_port, rt.graph.nodes[e.dst].name,
                                       e.dst_port) for e in rt.graph.edges})

    def drawn() -> bool:
        return set(canvas.items) == set(graph_call(lambda rt: set(rt.graph.nodes)))

    def no_overlaps() -> bool:
        rects = list(canvas.node_rects().values())
        return not any(overlaps(a, b, 0.0) for i, a in enumerate(rects) for b in rects[i + 1:])

    def title_of(name: str) -> tuple[float, float]:
        (x0, y0) = dpg.get_item_rect_min(canvas.items[names()[name]])
        return x0 + 12, y0 + 6

    def pin(name: str, port: str, output: bool) -> tuple[float, float]:
        """The screen position of a pin's circle: on the node's edge, level with the pin's row."""
        node = canvas.items[names()[name]]
        row = dpg.get_item_children(canvas.pin_of[(names()[name], port, output)], 1)[0]  # the pin's label or widget
        (ay0, ay1) = dpg.get_item_rect_min(row)[1], dpg.get_item_rect_max(row)[1]
        edge = dpg.get_item_rect_max(node)[0] + 8 if output else dpg.get_item_rect_min(node)[0] - 8
        return edge, (ay0 + ay1) / 2

    def wire(start: tuple[float, float], end: tuple[float, float]) -> None:
        at(*start)
        xdo("mousedown", "1")
        editor.render(3)
        for step in range(1, 9):
            at(start[0] + (end[0] - start[0]) * step / 8, start[1] + (end[1] - start[1]) * step / 8)
        xdo("mouseup", "1")
        editor.render(5)

    empty = (600.0, 520.0)  # a spot on the canvas no node covers, until the search puts lfo1 there
    spare = (650.0, 430.0)  # one that stays free
    try:
        until(drawn, "the graph drawn")
        editor.render(5)
        shot("ui-patching-start.png")
        at(*empty)
        key("ctrl+z")  # nothing to undo yet: a grey line, not an error
        until(lambda: editor.status.text == "nothing to undo", "the nothing-to-undo line")
        seen["nothing_to_undo_is_error"] = editor.status.showing_error

        # Tab: the search at the cursor, typing filters, Enter places the node there
        key("Tab")
        seen["search_open"] = canvas.search.showing
        seen["search_at"] = [v - c for v, c in zip(dpg.get_item_pos(canvas.search.popup.window), empty, strict=True)]
        wanted = canvas.to_canvas(empty)
        xdo("type", "--delay", "40", "lfo")
        editor.render(4)
        seen["search_matches"] = canvas.search.shown
        shot("ui-node-search.png")
        key("Return")
        until(lambda: "lfo1" in names(), "the LFO placed from the search")
        until(drawn, "the new LFO drawn")
        editor.render(3)
        placed = graph_call(lambda rt: rt.graph.node("lfo1").ui["pos"])
        seen["placed_off_by"] = [abs(placed[0] - wanted[0]), abs(placed[1] - wanted[1])]
        seen["search_closed"] = not canvas.search.showing

        # over an existing node: the new one goes to the nearest free spot
        at(*title_of("math"))
        key("Tab")
        xdo("type", "--delay", "40", "constant")
        editor.render(4)
        key("Return")
        until(lambda: "constant" in names(), "the Constant placed over math")
        until(drawn, "the Constant drawn")
        editor.render(3)
        seen["no_overlap_after_search"] = no_overlaps()

        # a double-click on empty canvas opens the search too; Escape closes it
        at(*spare)
        for _ in range(3):  # a busy machine's slow frames can stretch two clicks past the double-click time
            xdo("click", "--repeat", "2", "--delay", "60", "1")
            editor.render(4)
            if canvas.search.showing:
                break
        seen["double_click_opens"] = canvas.search.showing
        key("Escape")
        seen["escape_closes"] = not canvas.search.showing

        # wiring by dragging from an output pin to an input pin; a wrong type is refused in red
        wire(pin("lfo", "value", True), pin("math", "a", False))
        until(lambda: ("lfo", "value", "math", "a") in edges(), "the dragged wire")
        until(lambda: len(canvas.links) == len(edges()), "the wire drawn")
        seen["wired"] = True
        wire(pin("pattern", "image", True), pin("math", "b", False))
        until(lambda: editor.status.showing_error, "the refused wire's reason, in red")
        seen["refused"] = [editor.status.text, ("pattern", "image", "math", "b") in edges()]

        # the canvas menu: Select all, then copy everything and paste it at the cursor
        graph_call(SetParam(names()["lfo"], "frequency", 2.5))
        at(*spare)
        xdo("click", "3")
        editor.render(4)
        seen["menu_open"] = canvas.menu.showing
        shot("ui-canvas-menu.png")
        select_all = dpg.get_item_children(canvas.menu.window, 1)[2]
        (x0, y0), (x1, y1) = dpg.get_item_rect_min(select_all), dpg.get_item_rect_max(select_all)
        at((x0 + x1) / 2, (y0 + y1) / 2)
        xdo("click", "1")
        editor.render(4)
        seen["selected_all"] = sorted(canvas.selected()) == sorted(names().values())
        key("ctrl+c")
        until(lambda: canvas.clip is not None, "the copy")
        count = len(names())
        at(*spare)
        xdo("click", "1")  # ends Select all
        editor.render(3)
        at(60, 700)
        key("ctrl+v")
        until(lambda: len(names()) == 2 * count, "the paste")
        until(drawn, "the pasted nodes drawn")
        editor.render(3)
        shot("ui-pasted.png")
        copies = edges()
        seen["pasted_links"] = sorted(e for e in copies if e[0] == "lfo2" or e[0] == "pattern1")
        seen["pasted_value"] = graph_call(lambda rt: rt.graph.node("lfo2").values["frequency"])
        seen["no_overlap_after_paste"] = no_overlaps()
        key("ctrl+z")  # the paste is one undo step
        until(lambda: len(names()) == count, "the undone paste")
        key("ctrl+y")
        until(lambda: len(names()) == 2 * count, "the redone paste")
        key("ctrl+z")
        until(lambda: len(names()) == count, "the paste undone again")
        until(drawn, "the canvas after undo")

        # select one node by its title, Ctrl+D: a copy next to it, on no other node
        at(*title_of("lfo"))
        xdo("click", "1")
        editor.render(4)
        seen["selected_one"] = canvas.selected() == [names()["lfo"]]
        key("ctrl+d")
        until(lambda: len(names()) == count + 1, "the duplicate")
        until(drawn, "the duplicate drawn")
        editor.render(3)
        seen["duplicate_names"] = sorted(set(names()) - {"lfo", "lfo1", "math", "pattern", "preview", "constant"})
        seen["no_overlap_after_duplicate"] = no_overlaps()

        # pan the editor (middle drag) until nodes leave the view; F brings every node back into it
        at(*spare)
        xdo("mousedown", "2")
        for step in range(1, 11):
            at(spare[0] + 60 * step, spare[1] + 30 * step)
        xdo("mouseup", "2")
        editor.render(4)

        def inside() -> bool:
            ax0, ay0, ax1, ay1 = canvas.area()
            return all(ax0 <= dpg.get_item_rect_min(i)[0] and dpg.get_item_rect_max(i)[0] <= ax1 and
                       ay0 <= dpg.get_item_rect_min(i)[1] and dpg.get_item_rect_max(i)[1] <= ay1
                       for i in canvas.items.values())

        seen["inside_before_frame"] = inside()
        at(*spare)
        key("f")
        until(inside, "the framed graph")
        editor.render(5)
        seen["inside_after_frame"] = inside()
        shot("ui-framed.png")
        key("ctrl+z")  # framing is one undoable edit
        until(lambda: not inside(), "the framing undone")
        key("ctrl+y")
        until(inside, "the framing redone")
        key("m")  # the minimap goes to a corner with no node under it
        seen["minimap"] = dpg.get_item_configuration(canvas.editor)["minimap"]
        shot("ui-minimap.png")
    finally:
        editor.close()
        session.close()
    return seen


@needs_input
def test_search_wiring_menu_clipboard_and_framing_with_real_input(tmp_path: Path) -> None:
    seen = run_scene("tests.test_ui_patching", str(tmp_path), timeout=240)
    assert seen["nothing_to_undo_is_error"] is False
    assert seen["search_open"] is True
    assert all(abs(d) <= 4 for d in seen["search_at"])  # at the cursor
    assert seen["search_matches"] == ["LFO  (signal)"]
    assert all(d <= 30 for d in seen["placed_off_by"])  # at the cursor's canvas position
    assert seen["search_closed"] is True
    assert seen["no_overlap_after_search"] is True
    assert seen["double_click_opens"] is True and seen["escape_closes"] is True
    assert seen["wired"] is True
    reason, linked = seen["refused"]
    assert "cannot connect" in reason and not linked
    assert seen["menu_open"] is True and seen["selected_all"] is True
    assert ["pattern1", "image", "preview1", "image"] in seen["pasted_links"]
    assert ["lfo2", "value", "math1", "a"] in seen["pasted_links"]
    assert seen["pasted_value"] == pytest.approx(2.5)
    assert seen["no_overlap_after_paste"] is True
    assert seen["selected_one"] is True
    assert seen["duplicate_names"] == ["lfo2"]
    assert seen["no_overlap_after_duplicate"] is True
    assert seen["inside_before_frame"] is False and seen["inside_after_frame"] is True
    assert seen["minimap"] is True


def test_free_offset_steps_down_or_right_to_the_nearest_free_spot() -> None:
    from autolume_graph.ui.placement import frame_offset, free_offset, overlaps, shifted

    taken = [(0.0, 0.0, 200.0, 100.0), (0.0, 130.0, 200.0, 230.0)]
    assert free_offset([(500.0, 500.0, 600.0, 560.0)], taken) == (0.0, 0.0)  # free already: stays
    wanted = (20.0, 20.0, 120.0, 80.0)
    dx, dy = free_offset([wanted], taken)
    assert dx >= 0 and dy >= 0 and not any(overlaps(shifted(wanted, dx, dy), t) for t in taken)
    assert (dx, dy) == (216.0, 0.0)  # to the right beats below both nodes
    dx, dy = frame_offset(taken, (-1000.0, -1000.0, -200.0, -200.0))
    assert all(-1000 <= x0 + dx and x1 + dx <= -200 and -1000 <= y0 + dy and y1 + dy <= -200
               for x0, y0, x1, y1 in taken)


def test_a_paste_is_one_undo_step_with_new_names_values_and_its_links() -> None:
    from autolume_graph.graph import Edge, Graph
    from autolume_graph.registry import default_registry
    from autolume_graph.runtime import Runtime
    from autolume_graph.ui.clipboard import copy_nodes, paste

    registry = default_registry()
    graph = Graph()
    lfo = graph.add_node(registry.create("LFO"), name="lfo")
    math = graph.add_node(registry.create("Math"), name="math")
    graph.add_node(registry.create("Constant"), name="spare")
    graph.add_edge(Edge(lfo.id, "value", math.id, "a"))
    lfo.set_value("frequency", 2.5)
    runtime = Runtime(graph)
    clip = runtime.call(copy_nodes([lfo.id, math.id], [(0, 0, 10, 10), (20, 0, 30, 10)]))
    lfo.set_value("frequency", 1.0)  # later changes do not reach the clip
    for _ in range(2):  # one clip pastes any number of times
        runtime.call(paste(clip, [(100.0, 100.0), (200.0, 100.0)]))
    names = sorted(n.name for n in graph.nodes.values())
    assert names == ["lfo", "lfo1", "lfo2", "math", "math1", "math2", "spare"]
    assert graph.node("lfo1").values["frequency"] == 2.5 and graph.node("lfo1").ui["pos"] == [100.0, 100.0]
    assert Edge(graph.node("lfo2").id, "value", graph.node("math2").id, "a") in graph.edges
    assert runtime.undo() and len(graph.nodes) == 5 and len(graph.edges) == 2
    assert runtime.redo() and len(graph.nodes) == 7 and len(graph.edges) == 3


if __name__ == "__main__":
    print_scene(lambda folder: drive(Path(folder)))
