"""The OSC panel and OSC learn in the editor, driven with real key and mouse events (xdotool) under a
private Xvfb, in a child process with its own Dear PyGui context, and real UDP OSC on 127.0.0.1.

Right-click a parameter, Learn, move a controller (a UDP message to /fader/1): the parameter is bound to
/fader/1 and driven by it, the monitor lists /fader/1 -> mix.b, an address nothing listens to is
highlighted, a rename keeps the addresses controllers use, and undo takes the rename and the learn back.
"""

from __future__ import annotations

import socket
from pathlib import Path

from tests.ui_input import ARTIFACTS, Pointer, centre, needs_input, print_scene, run_scene, xdo

VIEWPORT = (1400, 900)
PANEL_POS, PANEL_SIZE = (20, 430), (900, 440)


def drive(folder: Path) -> dict:
    """The whole session: returns what was observed at each step."""
    import dearpygui.dearpygui as dpg
    from pythonosc.udp_client import SimpleUDPClient

    from autolume_graph.graph import Graph
    from autolume_graph.registry import default_registry
    from autolume_graph.runtime import Runtime
    from autolume_graph.session import Session
    from autolume_graph.ui.app import Editor
    from autolume_graph.ui.osc_panel import UNKNOWN_COLOR, OSCPanel

    graph = Graph()
    mix = graph.add_node(default_registry().create("Math"), name="mix")
    mix.ui["pos"] = [60, 60]
    session = Session(Runtime(graph, fps=60.0), osc_port=0, preset_dir=folder / "presets")
    session.start_services()
    session.runtime.start()
    editor = Editor(session, width=VIEWPORT[0], height=VIEWPORT[1])
    with dpg.window(label="OSC", pos=PANEL_POS, width=PANEL_SIZE[0], height=PANEL_SIZE[1], no_close=True):
        panel = OSCPanel(session, editor.pending)
    editor.widgets.popup.on_learn = panel.learn  # as the editor's OSC tab does
    client = SimpleUDPClient(*session.osc_server.address)
    seen: dict = {}

    def render(frames: int = 1) -> None:
        for _ in range(frames):
            editor.frame()
            panel.update()
            dpg.render_dearpygui_frame()

    # keys go to the window under the pointer: the canvas, off the panel
    pointer = Pointer(lambda: render(), lambda: editor.status.text, key_at=(1000, 200))
    until, click, keys = pointer.until, pointer.click, pointer.keys

    def binding(param: str) -> tuple[bool, str]:
        found = session.runtime.call(lambda rt: rt.graph.node(mix.id).binding(param))
        return found.enabled, found.address

    def widget(param: str) -> int | str:
        return editor.widgets.by_node[mix.id][param].widget

    def monitor_row(address: str) -> tuple[list[str], tuple] | None:
        for row, cells in panel.rows:
            if dpg.is_item_shown(row) and dpg.get_value(cells[0]) == address:
                return [dpg.get_value(c) for c in cells], tuple(dpg.get_item_configuration(cells[0])["color"])
        return None

    def problem_lines() -> list[str]:
        return [dpg.get_value(item) for item in dpg.get_item_children(panel.problems, 1)]

    def open_popup(param: str) -> None:
        click(*centre(widget(param)), button="3")
        until(lambda: dpg.is_item_shown(editor.widgets.popup.window), "the OSC popup")
        render(3)

    try:
        render(10)
        open_popup("b")
        seen["popup_default"] = dpg.get_value(editor.widgets.popup.address)
        dpg.output_frame_buffer(file=str(ARTIFACTS / "ui-osc-popup.png"))
        render(3)
        click(*centre(editor.widgets.popup.learn_button))
        seen["popup_closed"] = not dpg.is_item_shown(editor.widgets.popup.window)
        until(lambda: session.control.learning is not None, "learning")
        render(5)
        seen["learning_line"] = dpg.get_value(panel.learn_line)

        client.send_message("/fader/1", 0.75)  # the controller moves
        until(lambda: binding("b") == (True, "/fader/1"), "the learned binding")
        until(lambda: session.runtime.snapshot.nodes[mix.id].values["b"] == 0.75, "b driven by /fader/1")
        client.send_message("/fader/1", 0.25)
        until(lambda: session.runtime.snapshot.nodes[mix.id].values["b"] == 0.25, "b driven again")
        client.send_message("/nobody/listens", 1.0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:  # a datagram that is no OSC at all
            raw.sendto(b"/broken\x00garbage", session.osc_server.address)
        until(lambda: any("malformed" in line for line in problem_lines()), "the server's error in the panel")
        until(lambda: monitor_row("/nobody/listens") is not None, "the unknown address in the monitor")
        until(lambda: monitor_row("/fader/1") is not None and monitor_row("/fader/1")[0][3] == "mix.b",
              "the monitor row of /fader/1")
        seen["learned_line"] = dpg.get_value(panel.learn_line)
        seen["problems"] = problem_lines()
        seen["fader_row"], seen["fader_color"] = monitor_row("/fader/1")
        seen["unknown_row"], seen["unknown_color"] = monitor_row("/nobody/listens")
        seen["unknown_highlighted"] = [round(c * 255) for c in seen["unknown_color"]] == list(UNKNOWN_COLOR)
        render(5)
        dpg.output_frame_buffer(file=str(ARTIFACTS / "ui-osc-monitor.png"))
        render(3)

        # rename through the canvas, the popup of a open: select the node by its title, type the name, Enter
        open_popup("a")
        (x0, y0) = dpg.get_item_rect_min(editor.canvas.items[mix.id])
        click(int(x0) + 30, int(y0) + 8)
        until(lambda: editor.canvas.selected() == [mix.id], "the node selected")
        click(*centre(editor.canvas.name_input))
        xdo("type", "--delay", "15", "blend")
        xdo("key", "Return")
        until(lambda: session.runtime.snapshot.nodes[mix.id].name == "blend", "the rename")
        until(lambda: dpg.get_value(editor.widgets.popup.title) == "blend.a", "the open popup following the rename")
        seen["renamed_bindings"] = [binding("b"), binding("a")]
        seen["popup_after_rename"] = [dpg.get_value(editor.widgets.popup.title),
                                      dpg.get_value(editor.widgets.popup.address)]
        client.send_message("/mix/a", 3.0)  # the controller's old address still drives it
        until(lambda: session.runtime.snapshot.nodes[mix.id].values["a"] == 3.0, "a driven at its kept address")
        dpg.output_frame_buffer(file=str(ARTIFACTS / "ui-osc-after-rename.png"))
        render(3)

        keys("ctrl+z")  # undo the rename
        until(lambda: session.runtime.snapshot.nodes[mix.id].name == "mix", "the undone rename")
        keys("ctrl+z")  # undo the learn
        until(lambda: binding("b") == (True, "/mix/b"), "the undone learn")
        seen["undone"] = [binding("b"), session.runtime.snapshot.nodes[mix.id].name]
    finally:
        editor.close()
        session.close()
    return seen


@needs_input
def test_osc_learn_monitor_and_rename_with_real_input(tmp_path: Path) -> None:
    seen = run_scene("tests.test_ui_osc", str(tmp_path), timeout=180)
    assert seen["popup_default"] == "/mix/b"
    assert seen["popup_closed"] is True
    assert seen["learning_line"].startswith("learning mix.b")
    assert seen["learned_line"] == "learned /fader/1 -> mix.b"
    assert seen["fader_row"][0] == "/fader/1" and seen["fader_row"][3] == "mix.b"
    assert seen["unknown_row"][3] == "unknown address" and seen["unknown_highlighted"] is True
    assert seen["fader_color"] != seen["unknown_color"]
    assert any(" malformed: " in line for line in seen["problems"]), seen["problems"]  # newest first
    assert any(line.endswith("unknown-address: /nobody/listens") for line in seen["problems"])
    assert seen["renamed_bindings"] == [[True, "/fader/1"], [True, "/mix/a"]]
    assert seen["popup_after_rename"] == ["blend.a", "/mix/a"]
    assert seen["undone"] == [[True, "/mix/b"], "mix"]


if __name__ == "__main__":
    print_scene(lambda folder: drive(Path(folder)))
