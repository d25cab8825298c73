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

from autolume_graph.registry import Registry, default_registry
from autolume_graph.runtime import Runtime
from autolume_graph.session import Session
from autolume_graph.ui.canvas import Canvas
from autolume_graph.ui.graph_file import GraphDocument, open_for_editing, recent_graphs
from autolume_graph.ui.models import ModelsPanel
from autolume_graph.ui.osc_panel import OSCPanel
from autolume_graph.ui.palette import Palette
from autolume_graph.ui.panels import OutputPanel
from autolume_graph.ui.pending import Pending
from autolume_graph.ui.presets import PresetsPanel
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
        self.registry = registry or default_registry()
        self._view_query: Future | None = None
        self._engine_error = ""  # the engine failure last shown in the status bar
        self._title = ""
        dpg.create_context()
        dpg.configure_app(manual_callback_management=True)
        # closing asks about unsaved edits first (`request_close`)
        dpg.create_viewport(title="autolume-graph", width=width, height=height, x_pos=0, y_pos=0,
                            disable_close=True)
        dpg.set_exit_callback(lambda: self.request_close())
        self.status = StatusBar()
        self.pending = Pending(self.runtime, self.status)
        self.widgets = ParamWidgets(self.pending)
        self.document = GraphDocument(session, self.pending, Path(path) if path else None,
                                      self.runtime.call(lambda rt: rt.history.version))
        with dpg.window(tag="main", no_scrollbar=True):
            self._menu()
            with dpg.group(horizontal=True):
                with dpg.child_window(width=-SIDE_WIDTH - 8, height=-STATUS_HEIGHT):
                    self.canvas = Canvas(self.pending, self.registry, self.widgets, self.report)
                with dpg.child_window(width=SIDE_WIDTH, height=-STATUS_HEIGHT):
                    self.output = OutputPanel(session, self.pending)
                    with dpg.tab_bar():
                        with dpg.tab(label="Nodes"):
                            self.palette = Palette(self.registry, lambda name: self.canvas.add_node(name))
                        with dpg.tab(label="Models"):
                            self.models = ModelsPanel(self.pending, lambda: self.canvas.view, self.canvas.selected)
                        with dpg.tab(label="Presets"):
                            self.presets = PresetsPanel(session, self.pending)
                        with dpg.tab(label="OSC"):
                            self.osc_panel = OSCPanel(session, self.pending)
                            self.widgets.popup.on_learn = self.osc_panel.learn
                            self.widgets.popup.on_midi_learn = self.osc_panel.learn_midi
            self.status.attach()
        self._bind_keys()
        dpg.set_primary_window("main", True)
        dpg.setup_dearpygui()
        dpg.show_viewport()

    def _menu(self) -> None:
        document = self.document
        with dpg.menu_bar():
            with dpg.menu(label="File"):
                dpg.add_menu_item(label="New", shortcut="Ctrl+N", callback=lambda: document.new())
                dpg.add_menu_item(label="Open...", shortcut="Ctrl+O", callback=lambda: document.open())
                self.recent_menu = dpg.add_menu(label="Open recent")
                dpg.add_menu_item(label="Save", shortcut="Ctrl+S", callback=lambda: document.save())
                dpg.add_menu_item(label="Save As...", shortcut="Ctrl+Shift+S", callback=lambda: document.save_as())
        self._recent_shown: list[str] = []

    def _refresh_recent(self) -> None:
        recent = recent_graphs()
        if recent == self._recent_shown:
            return
        self._recent_shown = recent
        dpg.delete_item(self.recent_menu, children_only=True)
        for entry in recent:
            dpg.add_menu_item(label=entry, parent=self.recent_menu, user_data=entry,
                              callback=lambda s, a, u: self.document.open_recent(u))

    def request_close(self) -> None:
        """The window's close button (or a test): quit now, or after the unsaved-edits prompt."""
        self.document.close(dpg.stop_dearpygui)

    def _bind_keys(self) -> None:
        canvas, search = self.canvas, self.canvas.search

        def ctrl_down() -> bool:
            return dpg.is_key_down(dpg.mvKey_LControl) or dpg.is_key_down(dpg.mvKey_RControl)

        def with_ctrl(action: Callable[[], None], shift: bool = False) -> Callable[[], None]:
            def run() -> None:
                shifted = dpg.is_key_down(dpg.mvKey_LShift) or dpg.is_key_down(dpg.mvKey_RShift)
                if ctrl_down() and shifted == shift:
                    action()
            return run

        def on_canvas(action: Callable[[], None]) -> Callable[[], None]:
            """Keys for the canvas act only with the pointer over it and no search or menu open."""
            return lambda: canvas.takes_input() and action()

        def plain(action: Callable[[], None]) -> Callable[[], None]:
            return on_canvas(lambda: ctrl_down() or action())

        def searching(action: Callable[[], None]) -> Callable[[], None]:
            return lambda: search.showing and action()

        with dpg.handler_registry():
            dpg.add_key_press_handler(dpg.mvKey_Z, callback=with_ctrl(canvas.undo))
            dpg.add_key_press_handler(dpg.mvKey_Y, callback=with_ctrl(canvas.redo))
            dpg.add_key_press_handler(dpg.mvKey_S, callback=with_ctrl(self.document.save))
            dpg.add_key_press_handler(dpg.mvKey_S, callback=with_ctrl(self.document.save_as, shift=True))
            dpg.add_key_press_handler(dpg.mvKey_N, callback=with_ctrl(self.document.new))
            dpg.add_key_press_handler(dpg.mvKey_O, callback=with_ctrl(self.document.open))
            dpg.add_key_press_handler(dpg.mvKey_C, callback=with_ctrl(on_canvas(canvas.copy_selected)))
            dpg.add_key_press_handler(dpg.mvKey_V, callback=with_ctrl(on_canvas(
                lambda: canvas.paste_at(canvas.to_canvas(canvas.mouse())))))
            dpg.add_key_press_handler(dpg.mvKey_D, callback=with_ctrl(on_canvas(canvas.duplicate_selected)))
            dpg.add_key_press_handler(dpg.mvKey_A, callback=with_ctrl(on_canvas(canvas.select_all)))
            dpg.add_key_press_handler(dpg.mvKey_Delete, callback=on_canvas(canvas.delete_selected))
            dpg.add_key_press_handler(dpg.mvKey_Tab, callback=plain(canvas.open_search))
            dpg.add_key_press_handler(dpg.mvKey_F, callback=plain(canvas.frame_all))
            dpg.add_key_press_handler(dpg.mvKey_M, callback=plain(canvas.toggle_minimap))
            dpg.add_key_press_handler(dpg.mvKey_Return, callback=searching(search.choose))
            dpg.add_key_press_handler(dpg.mvKey_Up, callback=searching(lambda: search.move(-1)))
            dpg.add_key_press_handler(dpg.mvKey_Down, callback=searching(lambda: search.move(1)))
            dpg.add_key_press_handler(dpg.mvKey_Escape, callback=canvas.on_escape)
            dpg.add_mouse_click_handler(dpg.mvMouseButton_Left, callback=canvas.on_left_click)
            dpg.add_mouse_click_handler(dpg.mvMouseButton_Right, callback=canvas.on_right_click)
            dpg.add_mouse_double_click_handler(dpg.mvMouseButton_Left, callback=canvas.on_double_click)

    # --- status bar -----------------------------------------------------------------
    def report(self, message: str, error: bool = True) -> None:
        """One line in the status bar (errors in red)."""
        self.status.show(message, error)

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
        self.osc_panel.update()
        self.document.poll(snapshot.edit_version)
        if self.document.title != self._title:
            self._title = self.document.title
            dpg.set_viewport_title(self._title)
        self._refresh_recent()
        if snapshot.engine_error != self._engine_error:
            self._engine_error = snapshot.engine_error
            if snapshot.engine_error:
                self.report(snapshot.engine_error)

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

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("no screen to open the editor on (DISPLAY is not set); "
                        "run headless instead: autolume-graph run [GRAPH]")
    graph, path = open_for_editing(args.graph)
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
