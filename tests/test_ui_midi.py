"""MIDI learn and the MIDI monitor in the editor, with real clicks and keys (xdotool) under a private Xvfb, in a
child process with its own Dear PyGui context, and a real JACK MIDI controller port.

Right-click a parameter, MIDI Learn, move a knob (a CC on the controller's port): the parameter is bound to it
and driven by it, the popup shows the binding, the monitor lists the control and what it drove, Clear MIDI
unbinds it, and undo brings the binding back.
"""

from __future__ import annotations

from pathlib import Path

from tests.ui_input import ARTIFACTS, Pointer, centre, needs_input, print_scene, run_scene

VIEWPORT = (1400, 900)
PANEL_POS, PANEL_SIZE = (20, 300), (900, 580)


def drive(folder: Path) -> dict:
    """The whole session: returns what was observed at each step."""
    import dearpygui.dearpygui as dpg

    from autolume_graph.graph import Graph
    from autolume_graph.midi.control import span_mapping
    from autolume_graph.params import MidiBinding
    from autolume_graph.registry import default_registry
    from autolume_graph.runtime import Runtime
    from autolume_graph.session import Session
    from autolume_graph.ui.app import Editor
    from autolume_graph.ui.osc_panel import OSCPanel
    from tests.midi_support import Controller

    controller = Controller()
    graph = Graph()
    mix = graph.add_node(default_registry().create("Math"), name="mix")
    mix.ui["pos"] = [60, 60]
    session = Session(Runtime(graph, fps=60.0), osc=False, preset_dir=folder / "presets")
    session.runtime.start()
    editor = Editor(session, width=VIEWPORT[0], height=VIEWPORT[1])
    with dpg.window(label="OSC and MIDI", pos=PANEL_POS, width=PANEL_SIZE[0], height=PANEL_SIZE[1],
                    no_close=True) as panel_window:
        panel = OSCPanel(session, editor.pending)
    editor.widgets.popup.on_midi_learn = panel.learn_midi  # as the editor's OSC tab does
    popup = editor.widgets.popup
    seen: dict = {}

    def render(frames: int = 1) -> None:
        for _ in range(frames):
            editor.frame()
            panel.update()
            dpg.render_dearpygui_frame()

    pointer = Pointer(lambda: render(), lambda: editor.status.text, key_at=(1000, 200))
    until, click = pointer.until, pointer.click

    def binding() -> MidiBinding | None:
        return session.runtime.call(lambda rt: rt.graph.node(mix.id).midi_bindings.get("b"))

    def value() -> float:
        return session.runtime.snapshot.nodes[mix.id].values["b"]

    def monitor_row(address: str) -> list[str] | None:
        for row, cells in panel.midi_rows:
            if dpg.is_item_shown(row) and dpg.get_value(cells[0]) == address:
                return [dpg.get_value(c) for c in cells]
        return None

    def open_popup() -> None:
        click(*centre(editor.widgets.by_node[mix.id]["b"].widget), button="3")
        until(lambda: dpg.is_item_shown(popup.window), "the popup")
        render(3)

    try:
        render(10)
        open_popup()
        until(lambda: dpg.get_value(popup.midi_line) == "MIDI: not bound", "the MIDI line")
        seen["midi_shown"] = dpg.is_item_shown(popup.midi_group) and dpg.is_item_shown(popup.midi_learn_button)
        click(*centre(popup.midi_learn_button))
        seen["popup_closed"] = not dpg.is_item_shown(popup.window)
        until(lambda: session.midi.learning is not None, "learning")
        until(lambda: f"jack: {controller.name}" in session.midi.port_lines(), "the controller's port read")
        render(5)
        seen["learning_line"] = dpg.get_value(panel.midi_learn_line)
        dpg.output_frame_buffer(file=str(ARTIFACTS / "ui-midi-learning.png"))
        render(3)

        controller.cc(21, 64)  # the knob moves
        expected = MidiBinding(controller.name, 1, "cc", 21, span_mapping(mix.params["b"]))
        until(lambda: binding() == expected, "the learned binding")
        until(lambda: abs(value() - (-10 + 64 / 127 * 20)) < 1e-9, "b driven by the knob")
        controller.cc(21, 127)
        until(lambda: value() == 10.0, "b driven again")
        until(lambda: (monitor_row(f"{controller.name} ch 1 cc 21") or [""] * 4)[3] == "mix.b", "the monitor row")
        seen["mapping"] = expected.mapping
        seen["learned_line"] = dpg.get_value(panel.midi_learn_line)
        seen["row"] = monitor_row(f"{controller.name} ch 1 cc 21")
        seen["ports_line"] = dpg.get_value(panel.midi_ports)
        dpg.set_y_scroll(panel_window, 10000)  # the MIDI section is below the OSC one
        render(5)
        dpg.output_frame_buffer(file=str(ARTIFACTS / "ui-midi-monitor.png"))
        render(3)
        dpg.set_y_scroll(panel_window, 0)
        render(3)

        open_popup()
        label = f"MIDI: cc 21 ch 1 on {controller.name} ({expected.mapping})"
        until(lambda: dpg.get_value(popup.midi_line) == label, "the binding in the popup")
        seen["popup_line"] = dpg.get_value(popup.midi_line)
        render(5)
        dpg.output_frame_buffer(file=str(ARTIFACTS / "ui-midi-learned.png"))
        render(3)

        click(*centre(popup.midi_clear_button))
        until(lambda: binding() is None, "the cleared binding")
        until(lambda: dpg.get_value(popup.midi_line) == "MIDI: not bound", "the popup cleared")
        controller.cc(21, 0)
        render(20)
        seen["after_clear"] = value()
        pointer.keys("ctrl+z")  # undo the clear
        until(lambda: binding() == expected, "the binding back")
        controller.cc(21, 0)
        until(lambda: value() == -10.0, "driven after the undo")
        seen["undone"] = True
    finally:
        editor.close()
        session.close()
        controller.close()
    return seen


@needs_input
def test_midi_learn_and_monitor_with_real_input(tmp_path: Path, jack_server) -> None:
    seen = run_scene("tests.test_ui_midi", str(tmp_path), timeout=180)
    assert seen["midi_shown"] is True and seen["popup_closed"] is True
    assert seen["learning_line"] == "MIDI learning mix.b: move a control..."
    assert seen["mapping"] == "-10 + x*20"
    assert seen["learned_line"].startswith("MIDI learned cc 21 ch 1 on ") and seen["learned_line"].endswith("-> mix.b")
    assert seen["row"][1] in ("64", "127") and seen["row"][3] == "mix.b"
    assert seen["ports_line"].startswith("MIDI ports: jack: ")
    assert seen["popup_line"].startswith("MIDI: cc 21 ch 1 on ") and seen["popup_line"].endswith("(-10 + x*20)")
    assert seen["after_clear"] == 10.0  # unbound: the knob no longer moves it
    assert seen["undone"] is True


if __name__ == "__main__":
    print_scene(lambda folder: drive(Path(folder)))
