"""The editor application: layout, the UI frame, keyboard shortcuts, and `autolume-graph edit`.

The UI frame never waits on the render thread: it polls finished futures, asks for a new
GraphView when the structure may have moved, and draws the latest snapshot.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import dearpygui.dearpygui as dpg
import numpy as np

from autolume_graph.graph import Graph
from autolume_graph.registry import Registry, default_registry
from autolume_graph.runtime import Runtime
from autolume_graph.session import Session
from autolume_graph.ui.canvas import Canvas
from autolume_graph.ui.models import ModelsPanel
from autolume_graph.ui.palette import Palette
from autolume_graph.ui.panels import OutputPanel
from autolume_graph.ui.pending import Pending
from autolume_graph.ui.presets import Outcome, PresetsPanel, pack_graph, write_in_worker
from autolume_graph.ui.status import StatusBar
from autolume_graph.ui.view import capture_if_changed
from autolume_graph.ui.widgets import ParamWidgets

SIDE_WIDTH = 470
STATUS_HEIGHT = 28


class Editor:
    """The whole window over one Session. Tests build it and call `render` to draw frames by hand."""

    def __init__(self, session: Session, registry: Registry | None = None, path: str | Path | None = None,
                 width: int = 1600, height: int = 1000) -> None:
        self.session = session
        self.runtime = session.runtime
        self.path = Path(path) if path else None
        self.registry = registry or default_registry()
        self._view_query: Future | None = None
        self._saves: list[Outcome] = []
        self._engine_error = ""  # the engine failure last shown in the status bar
        dpg.create_context()
        dpg.configure_app(manual_callback_management=True)
        dpg.create_viewport(title=f"autolume-graph {self.path.name if self.path else ''}".strip(),
                            width=width, height=height, x_pos=0, y_pos=0)
        self.status = StatusBar()
        self.pending = Pending(self.runtime, self.status)
        self.widgets = ParamWidgets(self.pending)
        with dpg.window(tag="main", no_scrollbar=True):
            with dpg.group(horizontal=True):
                with dpg.child_window(width=-SIDE_WIDTH - 8, height=-STATUS_HEIGHT):
                    self.canvas = Canvas(self.pending, self.registry, self.widgets, self.report)
                with dpg.child_window(width=SIDE_WIDTH, height=-STATUS_HEIGHT):
                    self.output = OutputPanel(session)
                    with dpg.tab_bar():
                        with dpg.tab(label="Nodes"):
                            self.palette = Palette(self.registry, lambda name: self.canvas.add_node(name))
                        with dpg.tab(label="Models"):
                            self.models = ModelsPanel(self.pending, lambda: self.canvas.view, self.canvas.selected)
                        with dpg.tab(label="Presets"):
                            self.presets = PresetsPanel(session, self.pending)
            self.status.attach()
        self._bind_keys()
        dpg.set_primary_window("main", True)
        dpg.setup_dearpygui()
        dpg.show_viewport()

    def _bind_keys(self) -> None:
        def with_ctrl(action: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                if dpg.is_key_down(dpg.mvKey_LControl) or dpg.is_key_down(dpg.mvKey_RControl):
                    action()
            return run

        def on_canvas(action: Callable[[], None]) -> Callable[[], None]:
            return lambda: dpg.is_item_hovered(self.canvas.editor) and action()

        with dpg.handler_registry():
            dpg.add_key_press_handler(dpg.mvKey_Z, callback=with_ctrl(self.canvas.undo))
            dpg.add_key_press_handler(dpg.mvKey_Y, callback=with_ctrl(self.canvas.redo))
            dpg.add_key_press_handler(dpg.mvKey_S, callback=with_ctrl(self.save))
            dpg.add_key_press_handler(dpg.mvKey_D, callback=with_ctrl(on_canvas(self.canvas.duplicate_selected)))
            dpg.add_key_press_handler(dpg.mvKey_Delete, callback=on_canvas(self.canvas.delete_selected))

    # --- status bar -----------------------------------------------------------------
    def report(self, message: str, error: bool = True) -> None:
        """One line in the status bar (errors in red)."""
        self.status.show(message, error)

    def save(self) -> None:
        """Save the graph to the file it was opened from (packed on the render thread, written in a worker)."""
        if self.path is None:
            self.report("no graph file to save to: save it as a preset")
            return
        path = self.path
        self.pending.submit(pack_graph, on_result=lambda data: write_in_worker(path, data, self._saves))

    # --- the UI frame ---------------------------------------------------------------
    def frame(self) -> None:
        """Everything of one UI frame except drawing: callbacks, finished work, view, widgets, panels."""
        dpg.run_callbacks(dpg.get_callback_queue())
        self.pending.poll()
        self._update_view()
        snapshot = self.runtime.snapshot
        self.canvas.refresh(snapshot)
        self.output.update(snapshot, self.canvas.view)
        self.presets.poll()
        if snapshot.engine_error != self._engine_error:
            self._engine_error = snapshot.engine_error
            if snapshot.engine_error:
                self.report(snapshot.engine_error)
        while self._saves:
            self.report(*self._saves.pop(0))

    def _update_view(self) -> None:
        query = self._view_query
        if query is not None and not query.done():
            return
        if query is not None and query.exception() is None and query.result() is not None:
            self.canvas.apply_view(query.result())
        self._view_query = self.runtime.submit(capture_if_changed(self.canvas.view.key))

    def render(self, frames: int = 1) -> None:
        """Run `frames` UI frames, drawing each."""
        for _ in range(frames):
            self.frame()
            dpg.render_dearpygui_frame()

    def run(self) -> None:
        """The UI loop, until the window closes."""
        while dpg.is_dearpygui_running():
            self.render()

    def capture(self, max_frames: int = 30) -> np.ndarray:
        """The window as drawn: float32 RGBA [H, W, 4] in [0, 1], from Dear PyGui's frame buffer."""
        got: list[np.ndarray] = []

        def grabbed(sender: object, buffer: object) -> None:
            width, height = dpg.get_viewport_client_width(), dpg.get_viewport_client_height()
            got.append(np.array(buffer, dtype=np.float32).reshape(height, width, 4))

        dpg.output_frame_buffer(callback=grabbed)
        for _ in range(max_frames):
            self.render()
            if got:
                return got[0]
        raise RuntimeError("Dear PyGui returned no frame buffer")

    def close(self) -> None:
        dpg.destroy_context()


def cmd_edit(args: argparse.Namespace) -> int:
    """`autolume-graph edit [GRAPH]`: the shipped default graph when none is named (empty if not shipped)."""
    from autolume_graph.errors import UserError
    from autolume_graph.graph_files import open_graph, resolve_graph_path

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("no screen to open the editor on (DISPLAY is not set); "
                        "run headless instead: autolume-graph run [GRAPH]")
    try:
        graph = open_graph(args.graph)
    except UserError:
        if args.graph:
            raise
        print("autolume-graph: no shipped default graph; starting with an empty one", file=sys.stderr)
        graph = Graph()
    # Ctrl+S writes back to a named file; the shipped default is never overwritten (save a preset instead).
    path = resolve_graph_path(args.graph) if args.graph else None
    session = Session(Runtime(graph, device="auto"))
    session.start_services()
    session.runtime.start()
    editor = Editor(session, path=path)
    try:
        editor.run()
    finally:
        editor.close()
        session.close()
    return 0
