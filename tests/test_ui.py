"""The Dear PyGui editor, under a private Xvfb: drawing, links, widgets, OSC, screenshot."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

dpg = pytest.importorskip("dearpygui.dearpygui")

from pythonosc.udp_client import SimpleUDPClient  # noqa: E402

from autolume_graph.graph import Edge, Graph  # noqa: E402
from autolume_graph.node import NodeState  # noqa: E402
from autolume_graph.registry import default_registry  # noqa: E402
from autolume_graph.runtime import Runtime  # noqa: E402
from autolume_graph.session import Session  # noqa: E402
from autolume_graph.ui.app import Editor  # noqa: E402
from tests.ui_support import TestPattern, xvfb_display  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GRAPH = REPO / "graphs" / "default.agraph"
ARTIFACT = REPO / "artifacts" / "ui-editor.png"
MODEL_WAIT_S = 60.0  # generous: CI machines are shared


@pytest.fixture(scope="module", autouse=True)
def display() -> Iterator[str]:
    with xvfb_display() as name:
        yield name


def small_graph() -> Graph:
    """lfo -> math.a (a wire into a parameter), pattern -> preview, and a spare constant."""
    registry = default_registry()
    graph = Graph()
    lfo = graph.add_node(registry.create("LFO"), name="lfo")
    math = graph.add_node(registry.create("Math"), name="math")
    graph.add_node(registry.create("Constant"), name="constant")
    pattern = graph.add_node(TestPattern(), name="pattern")
    preview = graph.add_node(registry.create("Preview"), name="preview")
    graph.add_edge(Edge(lfo.id, "value", math.id, "a"))
    graph.add_edge(Edge(pattern.id, "image", preview.id, "image"))
    return graph


@pytest.fixture(scope="module")
def editor_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Session, Editor]]:
    """One editor for the module: Dear PyGui 2.3 may crash on window events after a context is remade."""
    folder = tmp_path_factory.mktemp("ui")
    session = Session(Runtime(Graph(), fps=30.0, fixed_step=True), osc_port=0, preset_dir=folder / "presets")
    session.start_services()
    editor = Editor(session, width=1400, height=900)
    try:
        yield session, editor
    finally:
        editor.close()
        session.close()


def show(session: Session, editor: Editor, graph: Graph) -> None:
    """Swap `graph` in (as a preset switch does) and let the editor redraw."""
    session.runtime.call(lambda rt: rt.swap_graph(graph))
    settle(session, editor)


@pytest.fixture
def shown(editor_session: tuple[Session, Editor]) -> tuple[Session, Editor]:
    show(*editor_session, small_graph())
    return editor_session


def settle(session: Session, editor: Editor, cycles: int = 4) -> None:
    """Alternate runtime frames and UI frames so submitted work lands and the UI sees it."""
    for _ in range(cycles):
        editor.render()
        session.runtime.step()
    editor.render()


def node_id(session: Session, name: str) -> str:
    return session.runtime.graph.node(name).id


def drawn_edges(editor: Editor) -> set[tuple[str, str, str, str]]:
    """Edges as the canvas draws them, read back from Dear PyGui's link items."""
    pins = editor.canvas.pins
    found = set()
    for link in editor.canvas.links:
        config = dpg.get_item_configuration(link)
        src, dst = pins[config["attr_1"]], pins[config["attr_2"]]
        found.add((src[0], src[1], dst[0], dst[1]))
    return found


def test_one_editor_node_per_graph_node_with_pins_and_links(shown: tuple[Session, Editor]) -> None:
    session, editor = shown
    graph = session.runtime.graph
    canvas = editor.canvas
    assert set(canvas.items) == set(graph.nodes)
    for node in graph.nodes.values():
        assert dpg.get_item_label(canvas.items[node.id]) == f"{node.name} [{node.type_name}]"
        for port in node.inputs:
            assert dpg.get_item_configuration(canvas.pin_of[(node.id, port, False)])["attribute_type"] \
                == dpg.mvNode_Attr_Input
        for port in node.outputs:
            assert dpg.get_item_configuration(canvas.pin_of[(node.id, port, True)])["attribute_type"] \
                == dpg.mvNode_Attr_Output
        assert {name for (nid, name, out) in canvas.pin_of if nid == node.id and not out} \
            == set(node.inputs) | set(node.params)
    assert drawn_edges(editor) == {(e.src, e.src_port, e.dst, e.dst_port) for e in graph.edges}
    math = node_id(session, "math")
    assert not dpg.is_item_enabled(editor.widgets.by_node[math]["a"].widget)  # a wire drives it
    assert dpg.is_item_enabled(editor.widgets.by_node[math]["b"].widget)


def test_link_through_the_editor_reaches_the_graph_and_a_bad_one_is_refused(shown: tuple[Session, Editor]) -> None:
    session, editor = shown
    canvas, graph = editor.canvas, session.runtime.graph
    constant, math, pattern = (node_id(session, n) for n in ("constant", "math", "pattern"))
    good = Edge(constant, "value", math, "b")

    canvas.on_link(canvas.editor, (canvas.pin_of[(constant, "value", True)], canvas.pin_of[(math, "b", False)]))
    settle(session, editor)
    assert good in graph.edges
    assert (constant, "value", math, "b") in drawn_edges(editor)

    before = len(canvas.links)
    canvas.on_link(canvas.editor, (canvas.pin_of[(pattern, "image", True)], canvas.pin_of[(math, "b", False)]))
    settle(session, editor)
    assert all(e.src != pattern or e.dst != math for e in graph.edges)
    assert len(canvas.links) == before
    assert "cannot connect pattern.image (image) to math.b (float)" in editor.status.text

    link = next(item for item, edge in canvas.links.items() if edge == good)
    canvas.on_delink(canvas.editor, link)
    settle(session, editor)
    assert good not in graph.edges
    assert (constant, "value", math, "b") not in drawn_edges(editor)


def change_widget(widget: int | str, value: object) -> None:
    """What Dear PyGui does when the user moves a widget: the value changes, then its callback runs."""
    dpg.set_value(widget, value)
    dpg.get_item_callback(widget)(widget, value, dpg.get_item_user_data(widget))


def test_widgets_change_engine_parameters(shown: tuple[Session, Editor]) -> None:
    session, editor = shown
    math = session.runtime.graph.node("math")
    slots = editor.widgets.by_node[math.id]
    change_widget(slots["b"].widget, 0.75)
    change_widget(slots["op"].widget, "multiply")
    session.runtime.step()
    assert math.values["b"] == pytest.approx(0.75)
    assert math.values["op"] == "multiply"
    settle(session, editor)
    assert dpg.get_value(slots["b"].widget) == pytest.approx(0.75)

    editor.canvas.undo()
    settle(session, editor)
    assert math.values["op"] == "add"
    assert dpg.get_value(slots["op"].widget) == "add"


def test_osc_message_moves_the_widget(shown: tuple[Session, Editor]) -> None:
    session, editor = shown
    widget = editor.widgets.by_node[node_id(session, "math")]["b"].widget
    host, port = session.osc_server.address
    SimpleUDPClient(host, port).send_message("/math/b", 0.25)
    deadline = time.monotonic() + 5
    while dpg.get_value(widget) != pytest.approx(0.25) and time.monotonic() < deadline:
        time.sleep(0.02)
        settle(session, editor, cycles=1)
    assert dpg.get_value(widget) == pytest.approx(0.25)
    assert session.runtime.graph.node("math").values["b"] == pytest.approx(0.25)


def test_osc_popup_refuses_a_bad_mapping_with_its_reason(shown: tuple[Session, Editor]) -> None:
    session, editor = shown
    math = session.runtime.graph.node("math")
    popup = editor.widgets.popup
    popup.open(editor.canvas.view.nodes[math.id], "b")
    assert dpg.get_value(popup.address) == "/math/b"
    dpg.set_value(popup.mapping, "x +")
    popup.apply()
    settle(session, editor)
    assert "mapping 'x +'" in dpg.get_value(popup.error)
    assert "b" not in math.bindings

    dpg.set_value(popup.address, "/fader/1")
    dpg.set_value(popup.mapping, "x * 2")
    popup.apply()
    settle(session, editor)
    assert dpg.get_value(popup.error) == ""
    assert math.bindings["b"].address == "/fader/1" and math.bindings["b"].mapping == "x * 2"
    dpg.hide_item(popup.window)


def test_add_duplicate_rename_delete_and_undo(shown: tuple[Session, Editor]) -> None:
    session, editor = shown
    canvas, graph = editor.canvas, session.runtime.graph
    canvas.add_node("Constant", (500, 400))
    settle(session, editor)
    added = next(n for n in graph.nodes.values() if n.name == "constant1")
    assert added.ui["pos"] == [500, 400]
    assert dpg.get_item_label(canvas.items[added.id]) == "constant1 [Constant]"

    dpg.set_value(editor.widgets.by_node[added.id]["value"].widget, 0.0)
    canvas.rename_selected("nothing-selected")
    settle(session, editor)
    assert "select one node" in editor.status.text

    canvas.undo()
    settle(session, editor)
    assert added.id not in graph.nodes and added.id not in canvas.items
    canvas.redo()
    settle(session, editor)
    assert added.id in graph.nodes and added.id in canvas.items


def test_node_error_shows_in_its_header(editor_session: tuple[Session, Editor]) -> None:
    session, editor = editor_session
    graph = small_graph()
    gen = graph.add_node(default_registry().create("Generate"), name="gen")
    preview = graph.add_node(default_registry().create("Preview"), name="preview2")
    graph.add_edge(Edge(gen.id, "image", preview.id, "image"))
    show(session, editor, graph)
    status, error = editor.canvas.header[gen.id]
    assert dpg.get_value(error).endswith("connect a model and w")
    assert dpg.is_item_shown(error)
    assert dpg.get_value(status).strip().endswith("ms")
    # issue 20: the header turns red and the message is there on hover; a healthy node keeps the default
    canvas = editor.canvas
    assert dpg.get_item_info(canvas.items[gen.id])["theme"] == canvas.state_themes[NodeState.ERROR]
    assert "connect a model and w" in dpg.get_value(canvas.tips[gen.id])
    assert dpg.get_item_info(canvas.items[node_id(session, "lfo")])["theme"] in (None, 0)
    pixels = editor.capture()
    ARTIFACT.parent.mkdir(exist_ok=True)
    from PIL import Image

    Image.fromarray((pixels[..., :3] * 255).round().astype(np.uint8)).save(ARTIFACT.with_name("ui-node-error.png"))
    y0 = int(dpg.get_item_rect_min(canvas.items[gen.id])[1])
    x1 = int(dpg.get_item_rect_max(canvas.items[gen.id])[0])
    red, green, _ = pixels[y0 + 6, x1 - 8, :3]  # right of the title text
    assert red > green + 0.2, (red, green)  # the drawn title bar is red


def test_screenshot_shows_the_editor_and_the_output(editor_session: tuple[Session, Editor]) -> None:
    """The shipped default graph, switched in as a preset (its model preloaded), after some frames."""
    from autolume_graph.serialize import load_graph

    session, editor = editor_session
    earlier = dict(session.runtime.snapshot.published)  # a swap keeps the last graph's images

    def new_image() -> bool:
        return any(image is not earlier.get(name) for name, image in session.runtime.snapshot.published.items())

    session.switch_to(load_graph(DEFAULT_GRAPH))
    deadline = time.monotonic() + MODEL_WAIT_S
    while not new_image() and time.monotonic() < deadline:
        settle(session, editor, cycles=1)
    assert new_image(), "the default graph rendered nothing"
    settle(session, editor, cycles=10)
    pixels = editor.capture()
    ARTIFACT.parent.mkdir(exist_ok=True)
    from PIL import Image

    Image.fromarray((pixels[..., :3] * 255).round().astype(np.uint8)).save(ARTIFACT)

    assert pixels.shape[:2] == (dpg.get_viewport_client_height(), dpg.get_viewport_client_width())
    assert pixels[..., :3].std() > 0.05
    assert editor.output.image is not None
    (x0, y0), (x1, y1) = dpg.get_item_rect_min(editor.output.image), dpg.get_item_rect_max(editor.output.image)
    region = pixels[int(y0):int(y1), int(x0):int(x1), :3]
    assert region.size > 0 and region.std() > 0.05
    titles = {dpg.get_item_label(item) for item in editor.canvas.items.values()}
    assert {f"{n.name} [{n.type_name}]" for n in session.runtime.graph.nodes.values()} == titles


def test_mix_table_lists_the_model_resolutions_and_sets_the_mix(editor_session: tuple[Session, Editor],
                                                                 reference_dir: Path) -> None:
    session, editor = editor_session
    registry = default_registry()
    graph = Graph()
    loader = graph.add_node(registry.create("ModelLoader"), name="loader")
    loader.set_value("path", str(reference_dir / "sg2_64_tiny.pkl"))
    mix = graph.add_node(registry.create("ModelMix"), name="mix")
    generate = graph.add_node(registry.create("Generate"), name="gen")
    mapping = graph.add_node(registry.create("Mapping"), name="map")
    seed = graph.add_node(registry.create("SeedLatent"), name="seed")
    preview = graph.add_node(registry.create("Preview"), name="out")
    for src, sp, dst, dp in [(loader, "model", mix, "a"), (loader, "model", mix, "b"), (mix, "model", mapping, "model"),
                             (mix, "model", generate, "model"), (seed, "z", mapping, "latent"),
                             (mapping, "w", generate, "w"), (generate, "image", preview, "image")]:
        graph.add_edge(Edge(src.id, sp, dst.id, dp))
    session.switch_to(graph)
    deadline = time.monotonic() + MODEL_WAIT_S
    while not mix.mix_keys() and time.monotonic() < deadline:
        settle(session, editor, cycles=1)
    settle(session, editor)
    assert mix.mix_keys() == ["4", "8", "16", "32", "64"]
    # the table's radio for resolution 32: choose B, as a click would
    radios = [item for item in dpg.get_all_items()
              if dpg.get_item_type(item) == "mvAppItemType::mvRadioButton" and dpg.get_item_user_data(item) == "32"]
    assert len(radios) == 1
    dpg.set_value(radios[0], "B")
    dpg.get_item_callback(radios[0])(radios[0], "B", "32")
    settle(session, editor)
    assert mix.values["mix"] == {"32": 1.0}


def test_the_performance_panel_moves_osc_to_another_port(editor_session: tuple[Session, Editor]) -> None:
    session, editor = editor_session
    before = session.osc_server.address[1]
    dpg.set_value(editor.output.osc_port, 0)
    editor.output._listen()
    settle(session, editor)
    after = session.osc_server.address[1]
    assert after != before and session.runtime.graph.settings["osc_port"] == 0
    SimpleUDPClient("127.0.0.1", after).send_message("/autolume/fps", 25.0)
    deadline = time.monotonic() + 5
    while session.runtime.target_fps != 25.0 and time.monotonic() < deadline:
        settle(session, editor, cycles=1)
    assert session.runtime.target_fps == 25.0


def test_status_bar_confirms_in_grey_and_an_edit_clears_a_stale_error(shown: tuple[Session, Editor]) -> None:
    """Issue 20 bug 8: a refusal is red until a later edit goes through; saves and preset loads confirm."""
    session, editor = shown
    canvas = editor.canvas
    constant, math, pattern = (node_id(session, n) for n in ("constant", "math", "pattern"))
    canvas.on_link(canvas.editor, (canvas.pin_of[(pattern, "image", True)], canvas.pin_of[(math, "b", False)]))
    settle(session, editor)
    assert editor.status.showing_error and "cannot connect" in editor.status.text
    canvas.on_link(canvas.editor, (canvas.pin_of[(constant, "value", True)], canvas.pin_of[(math, "b", False)]))
    settle(session, editor)
    assert not editor.status.showing_error and "cannot connect" not in editor.status.text

    editor.presets.save("status-check")
    deadline = time.monotonic() + 10
    while "saved" not in editor.status.text and time.monotonic() < deadline:
        settle(session, editor, cycles=1)
    assert "saved" in editor.status.text and not editor.status.showing_error

    editor.presets.load("status-check")
    assert editor.status.text == "loading preset status-check..." and not editor.status.showing_error
    deadline = time.monotonic() + 10
    while "loaded" not in editor.status.text and time.monotonic() < deadline:
        settle(session, editor, cycles=1)
    assert editor.status.text == "preset status-check loaded" and not editor.status.showing_error


def test_the_device_switch_refuses_an_absent_gpu_and_the_panel_keeps_its_place(
        shown: tuple[Session, Editor]) -> None:
    """Issue 20: the performance panel's CPU/GPU switch; a picture of another shape does not move the panel."""
    import torch

    session, editor = shown
    fps_at = dpg.get_item_rect_min(editor.output.fps)
    editor.output._show(np.zeros((48, 64, 4), np.float32))  # a non-square model's picture
    settle(session, editor)
    assert dpg.get_item_rect_min(editor.output.fps) == fps_at
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal cannot be shown")
    change_widget(editor.output.device, "cuda")
    deadline = time.monotonic() + 5
    while not editor.status.showing_error and time.monotonic() < deadline:
        settle(session, editor, cycles=1)
    assert "no CUDA device here" in editor.status.text
    assert dpg.get_value(editor.output.device) == "cpu" and session.runtime.device == "cpu"
    change_widget(editor.output.device, "cpu")
    settle(session, editor)
    assert editor.status.text == "running on cpu" and not editor.status.showing_error
