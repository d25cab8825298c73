"""Graph files in the editor (New, Open, Save As, the unsaved mark and prompt), driven with real key and
mouse events (xdotool) under a private Xvfb, in a child process with its own Dear PyGui context.

The window's close button needs a window manager, which Xvfb lacks: closing is driven one layer below,
through the editor's close handler (`Editor.request_close`), which the close button calls.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.ui_input import ARTIFACTS, Pointer, needs_input, print_scene, run_scene, xdo

VIEWPORT = (1400, 900)
DIALOG = (700, 420)  # dialogs._open's size, centred in the viewport


def drive(folder: Path) -> dict:
    """The whole session: returns what was observed at each step."""
    import dearpygui.dearpygui as dpg

    from autolume_graph.commands import SetParam
    from autolume_graph.graph import Graph
    from autolume_graph.registry import default_registry
    from autolume_graph.runtime import Runtime
    from autolume_graph.session import Session
    from autolume_graph.ui.app import Editor

    registry = default_registry()
    graph = Graph()
    graph.add_node(registry.create("Constant"), name="level")
    session = Session(Runtime(graph, fps=60.0), osc_port=0, preset_dir=folder / "presets")
    session.start_services()
    session.runtime.start()
    editor = Editor(session, width=VIEWPORT[0], height=VIEWPORT[1])
    seen: dict = {}
    pointer = Pointer(editor.render, lambda: editor.status.text)
    until, keys = pointer.until, pointer.keys
    left, bottom = (VIEWPORT[0] - DIALOG[0]) // 2, (VIEWPORT[1] + DIALOG[1]) // 2

    def choose_in_dialog(typed: str) -> None:
        pointer.frames(10)
        pointer.click(left + 300, bottom - 43)
        xdo("key", "ctrl+a", "BackSpace")
        pointer.type(typed)
        pointer.click(left + 18, bottom - 18)

    click_item = pointer.click_item

    def edit() -> None:
        level = session.runtime.call(lambda rt: rt.graph.node("level").id)
        session.runtime.call(SetParam(level, "value", time.monotonic() % 7))

    def title() -> str:
        return editor.document.title

    try:
        editor.render(5)
        seen["clean_title"] = title()
        edit()
        until(lambda: title().startswith("* "), "the unsaved mark")
        seen["dirty_title"] = title()

        keys("ctrl+shift+s")  # Save As: the dialog, a name without the suffix
        choose_in_dialog(str(folder / "show1"))
        until(lambda: not title().startswith("* "), "the save")
        seen["saved_title"] = title()
        seen["saved_exists"] = (folder / "show1.agraph").is_file()

        edit()
        until(lambda: title().startswith("* "), "the unsaved mark again")
        keys("ctrl+n")  # New over unsaved edits: the prompt, then Discard
        until(lambda: editor.document.prompt.showing, "the unsaved prompt")
        dpg.output_frame_buffer(file=str(ARTIFACTS / "ui-unsaved-prompt.png"))
        editor.render(3)
        click_item(editor.document.prompt.discard_button)
        until(lambda: title() == "untitled - autolume-graph", "the new graph")
        seen["new_nodes"] = len(session.runtime.snapshot.nodes)

        keys("ctrl+o")  # Open: the dialog, a full path typed
        choose_in_dialog(str(folder / "show1.agraph"))
        until(lambda: title() == "show1.agraph - autolume-graph", "the reopened file")
        until(lambda: len(session.runtime.snapshot.nodes) == 1, "the reopened graph's node")
        seen["reopened_nodes"] = [stat.name for stat in session.runtime.snapshot.nodes.values()]

        edit()
        until(lambda: title().startswith("* "), "the unsaved mark before closing")
        editor.request_close()  # the close button's handler
        until(lambda: editor.document.prompt.showing, "the prompt on close")
        click_item(editor.document.prompt.cancel_button)
        editor.render(5)
        seen["running_after_cancel"] = bool(dpg.is_dearpygui_running())
        editor.request_close()
        until(lambda: editor.document.prompt.showing, "the prompt on close again")
        click_item(editor.document.prompt.save_button)  # Save, then quit
        until(lambda: not dpg.is_dearpygui_running(), "the quit after saving")
        seen["saved_on_quit"] = not title().startswith("* ")
    finally:
        editor.close()
        session.close()
    return seen


@needs_input
def test_new_open_save_as_and_the_unsaved_prompt_with_real_input(tmp_path: Path) -> None:
    seen = run_scene("tests.test_ui_graph_files", str(tmp_path))
    assert seen["clean_title"] == "untitled - autolume-graph"
    assert seen["dirty_title"] == "* untitled - autolume-graph"
    assert seen["saved_title"] == "show1.agraph - autolume-graph" and seen["saved_exists"]
    assert seen["new_nodes"] == 0
    assert seen["reopened_nodes"] == ["level"]
    assert seen["running_after_cancel"] is True
    assert seen["saved_on_quit"] is True


def test_edit_creates_a_named_new_graph_file(tmp_path: Path) -> None:
    """`autolume-graph edit new.agraph` makes the file and saves back to it; a typo of a name is refused."""
    from autolume_graph.errors import UserError
    from autolume_graph.ui.graph_file import graph_path, open_for_editing

    assert graph_path(tmp_path / "set") == tmp_path / "set.agraph"
    assert graph_path(tmp_path / "set.agraph") == tmp_path / "set.agraph"
    target = tmp_path / "fresh.agraph"
    graph, path = open_for_editing(str(target))
    assert target.is_file() and graph.nodes == {} and path == target
    with pytest.raises(UserError):
        open_for_editing("no-such-shipped-graph")
    graph, path = open_for_editing(None)
    assert path is None and graph.nodes  # the shipped default, never saved over


if __name__ == "__main__":
    print_scene(lambda folder: drive(Path(folder)))
