"""AudioIn's device chooser in the editor, with real clicks (xdotool) under a private Xvfb, on a real JACK server.

The chooser lists the input devices a fresh scan finds (the server's `system` and a JACK client this test
starts after the editor's process began looking): rescan lists again, a click on a name chooses it, and
the node then streams from it and says so (device, rate, channels, block size).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.ui_input import ARTIFACTS, Pointer, needs_input, print_scene, run_scene

VIEWPORT = (1400, 900)
ROW_H = 17  # a combo list row: the 13 px font and 4 px of item spacing (Dear PyGui's defaults)
FIRST_ROW = 16  # the first row's middle below the point a combo's rect reads as (measured on the screenshot)


def drive(folder: str, wanted: str) -> dict:
    import dearpygui.dearpygui as dpg

    from autolume_graph.graph import Edge, Graph
    from autolume_graph.registry import default_registry
    from autolume_graph.runtime import Runtime
    from autolume_graph.session import Session
    from autolume_graph.ui.app import Editor

    graph = Graph()
    node = graph.add_node(default_registry().create("AudioIn"), name="mic")
    node.ui["pos"] = [60, 60]
    sender = graph.add_node(default_registry().create("OSCOut"), name="level_out")  # pulls AudioIn each frame
    sender.set_value("port", 9)  # the discard port on 127.0.0.1: nobody listens
    sender.ui["pos"] = [820, 60]
    graph.add_edge(Edge(node.id, "level", sender.id, "value"))
    session = Session(Runtime(graph, fps=30.0), osc_port=0, preset_dir=Path(folder) / "presets")
    session.runtime.start()
    editor = Editor(session, width=VIEWPORT[0], height=VIEWPORT[1])
    seen: dict = {}

    def render() -> None:
        editor.frame()
        dpg.render_dearpygui_frame()

    pointer = Pointer(render, lambda: stat().status, key_at=(1000, 200))

    def listed() -> list[str]:
        return list(dpg.get_item_configuration(combo)["items"])

    def stat():  # noqa: ANN202 - the node as the editor sees it
        return session.runtime.snapshot.nodes[node.id]

    try:
        pointer.until(lambda: node.id in editor.widgets.by_node, "the node's widgets")
        pointer.frames(5)
        combo = editor.widgets.by_node[node.id]["device"].widget
        rescan = next(item for item in dpg.get_item_children(dpg.get_item_parent(combo), 1)
                      if dpg.get_item_label(item) == "rescan")
        pointer.until(lambda: wanted in listed(), "the JACK client in the list", timeout=30)
        dpg.configure_item(combo, items=[])  # forget the list: the rescan button must bring it back
        pointer.click_item(rescan)
        pointer.until(lambda: wanted in listed(), "the list after rescan", timeout=30)
        seen["listed"] = listed()
        seen["label"] = dpg.get_item_label(combo)  # no problem listing: the plain parameter name
        pointer.until(lambda: "Hz" in stat().status, "the default input streaming", timeout=30)
        seen["default_status"] = stat().status

        # inside a node a combo's rect reads as one point, its lower left corner (the screenshot shows it)
        x0, bottom = dpg.get_item_rect_min(combo)
        pointer.click(x0, bottom)  # the list opens below the combo, one row per name
        pointer.frames(5)
        dpg.output_frame_buffer(file=str(ARTIFACTS / "ui-audio-in-chooser.png"))
        pointer.frames(3)
        row = seen["listed"].index(wanted)
        pointer.click(x0 + 40, bottom + FIRST_ROW + ROW_H * row)
        pointer.until(lambda: stat().values["device"] == wanted, "the device chosen")
        pointer.until(lambda: stat().status.startswith(wanted) and "Hz" in stat().status, "the chosen one streaming",
                      timeout=30)
        seen["chosen_status"] = stat().status
        seen["shown"] = dpg.get_value(combo)
        pointer.frames(10)
        dpg.output_frame_buffer(file=str(ARTIFACTS / "ui-audio-in-chosen.png"))
        pointer.frames(3)
    finally:
        editor.close()
        session.close()
    return seen


@needs_input
def test_the_device_chooser_lists_the_jack_device_and_chooses_it(jack_server: str, tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from test_audio_in import Player

    player = Player(f"agtest-ui-{os.getpid()}")
    device = player.device
    try:
        seen = run_scene("tests.test_ui_audio_in", str(tmp_path), device, timeout=180)
    finally:
        player.close()
    assert "system (JACK Audio Connection Kit)" in seen["listed"] and device in seen["listed"]
    assert seen["default_status"].startswith("system (JACK Audio Connection Kit) | 48000 Hz | 2 ch")
    assert seen["chosen_status"].startswith(f"{device} | 48000 Hz | 1 ch (mix) | block")
    assert seen["shown"] == device and seen["label"] == "device"


if __name__ == "__main__":
    print_scene(drive)
