"""The node canvas: one Dear PyGui editor node per graph node, drawn from a GraphView.

Edits go out as commands (links, delinks, add, delete, duplicate, rename, undo/redo); what is
drawn changes only when a new GraphView arrives, so a refused link is never drawn. Live values
(OSC) are not undoable: an undo that overwrites one says so in the status bar.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from concurrent.futures import Future

import dearpygui.dearpygui as dpg

from autolume_graph.commands import AddNode, Connect, Disconnect, RemoveNode, Rename
from autolume_graph.graph import Edge
from autolume_graph.node import Node
from autolume_graph.registry import Registry
from autolume_graph.runtime import Runtime, Snapshot
from autolume_graph.ui import node_editors
from autolume_graph.ui.pending import Pending
from autolume_graph.ui.view import EMPTY, GraphView, NodeView
from autolume_graph.ui.widgets import ERROR_COLOR, Item, ParamWidgets, has_widget

STATUS_COLOR = (170, 170, 170, 255)
PORT_COLOR = (200, 200, 140, 255)
GRID = (280, 260)  # spacing of nodes placed where the file has no position


def node_title(node: NodeView) -> str:
    return f"{node.name} [{node.type_name}]"


def clone(node: Node, offset: float = 40.0) -> Node:
    """A fresh node of the same type with copies of the values and bindings (run on the render thread)."""
    twin = type(node)()
    for name, value in node.values.items():
        twin.values[name] = copy.deepcopy(value)
    twin.reset()
    twin.bindings = {k: copy.copy(b) for k, b in node.bindings.items()}
    x, y = node.ui.get("pos", (0.0, 0.0))
    twin.ui["pos"] = [x + offset, y + offset]
    return twin


def undo_step(runtime: Runtime) -> str | None:
    """Render-thread work: undo one edit. None when there was none, else the edit's `undo_note` ("" mostly)."""
    history = runtime.history
    note = history.undo_stack[-1].undo_note(runtime.graph) if history.undo_stack else ""
    return note if runtime.undo() else None


def place(node: NodeView, pos: tuple[float, ...]) -> Callable[[Runtime], None]:
    """Render-thread work: keep a dragged node's position, on that node only (not on one that took its id)."""
    def work(runtime: Runtime) -> None:
        live = runtime.graph.nodes.get(node.id)
        if live is not None and id(live) == node.instance:
            live.ui["pos"] = [*pos]

    return work


class Canvas:
    """The node editor and its toolbar; build it inside the container that should hold it."""

    def __init__(self, pending: Pending, registry: Registry, widgets: ParamWidgets,
                 report: Callable[[str], None]) -> None:
        self.pending = pending
        self.registry = registry
        self.widgets = widgets
        self.report = report
        self.view: GraphView = EMPTY
        self.items: dict[str, Item] = {}
        self.node_of: dict[Item, str] = {}
        self.header: dict[str, tuple[Item, Item]] = {}
        self.extras: dict[str, node_editors.Refresh] = {}
        self.pins: dict[Item, tuple[str, str, bool]] = {}
        self.pin_of: dict[tuple[str, str, bool], Item] = {}
        self.links: dict[Item, Edge] = {}
        self.saved_pos: dict[str, tuple[float, float]] = {}
        with dpg.group(horizontal=True):
            dpg.add_button(label="Undo", callback=lambda: self.undo())
            dpg.add_button(label="Redo", callback=lambda: self.redo())
            dpg.add_button(label="Delete", callback=lambda: self.delete_selected())
            dpg.add_button(label="Duplicate", callback=lambda: self.duplicate_selected())
            self.name_input = dpg.add_input_text(hint="new name", width=160, on_enter=True,
                                                 callback=lambda: self.rename_selected(dpg.get_value(self.name_input)))
            dpg.add_button(label="Rename", callback=lambda: self.rename_selected(dpg.get_value(self.name_input)))
        self.editor = dpg.add_node_editor(callback=self.on_link, delink_callback=self.on_delink, minimap=True,
                                          minimap_location=dpg.mvNodeMiniMap_Location_BottomRight,
                                          width=-1, height=-1)

    # --- drawing the view ---------------------------------------------------------
    def apply_view(self, view: GraphView) -> None:
        """Bring the drawing up to `view`: add, remove and retitle nodes, redraw every link."""
        for link in self.links:  # first: deleting a node that still has links crashes Dear PyGui
            dpg.delete_item(link)
        self.links = {}
        if view.key[0] != self.view.key[0]:  # another graph (a preset): start over
            for node_id in list(self.items):
                self._remove(node_id)
        for node_id in [i for i in self.items if i not in view.nodes or
                        view.nodes[i].instance != self.view.nodes[i].instance]:
            self._remove(node_id)
        for index, (node_id, node) in enumerate(view.nodes.items()):
            if node_id in self.items:
                dpg.configure_item(self.items[node_id], label=node_title(node))
                self.widgets.update_node(node)
            else:
                self._add(node, node.pos or (40 + GRID[0] * (index % 4), 40 + GRID[1] * (index // 4)))
        self.view = view
        for edge in view.edges:
            start = self.pin_of.get((edge.src, edge.src_port, True))
            end = self.pin_of.get((edge.dst, edge.dst_port, False))
            if start is not None and end is not None:
                self.links[dpg.add_node_link(start, end, parent=self.editor)] = edge
        for node_id in view.nodes:
            self.widgets.set_wired(node_id, view.wired_params(node_id))

    def _add(self, node: NodeView, pos: tuple[float, float]) -> None:
        cls = node.kind
        with dpg.node(label=node_title(node), parent=self.editor, pos=[int(pos[0]), int(pos[1])]) as item:
            with dpg.node_attribute(attribute_type=dpg.mvNode_Attr_Static):
                status = dpg.add_text("", color=STATUS_COLOR)
                error = dpg.add_text("", color=ERROR_COLOR, wrap=260, show=False)
            for port, decl in cls.inputs.items():
                self._pin(node.id, port, False, f"> {port} ({decl.type.name})", decl.doc)
            for name, param in cls.params.items():
                if has_widget(param):
                    with dpg.node_attribute(attribute_type=dpg.mvNode_Attr_Input) as attr:
                        self.widgets.add(node, name, param)
                    self._remember_pin(attr, node.id, name, False)
            extra = node_editors.build(node, self.pending)
            if extra is not None:
                self.extras[node.id] = extra
            for port, decl in cls.outputs.items():
                self._pin(node.id, port, True, f"{port} ({decl.type.name}) >", decl.doc)
        self.items[node.id] = item
        self.node_of[item] = node.id
        self.header[node.id] = (status, error)
        self.saved_pos[node.id] = (float(pos[0]), float(pos[1])) if node.pos else (float("nan"), 0.0)

    def _pin(self, node_id: str, port: str, output: bool, label: str, doc: str) -> None:
        kind = dpg.mvNode_Attr_Output if output else dpg.mvNode_Attr_Input
        with dpg.node_attribute(attribute_type=kind) as attr:
            text = dpg.add_text(label, color=PORT_COLOR)
            if doc:
                with dpg.tooltip(text):
                    dpg.add_text(doc)
        self._remember_pin(attr, node_id, port, output)

    def _remember_pin(self, attr: Item, node_id: str, port: str, output: bool) -> None:
        self.pins[attr] = (node_id, port, output)
        self.pin_of[(node_id, port, output)] = attr

    def _remove(self, node_id: str) -> None:
        item = self.items.pop(node_id)
        self.node_of.pop(item, None)
        self.header.pop(node_id, None)
        self.extras.pop(node_id, None)
        self.saved_pos.pop(node_id, None)
        self.widgets.forget(node_id)
        for key in [k for k in self.pin_of if k[0] == node_id]:
            self.pins.pop(self.pin_of.pop(key), None)
        dpg.delete_item(item)

    # --- each UI frame --------------------------------------------------------------
    def refresh(self, snapshot: Snapshot) -> None:
        """Status lines and widget values of visible nodes; positions once a drag ends."""
        dragging = dpg.is_mouse_button_down(dpg.mvMouseButton_Left)
        for node_id, item in self.items.items():
            if not dpg.is_item_visible(item):
                continue
            stat = snapshot.nodes.get(node_id)
            if not self.view.nodes[node_id].published_in(stat):
                stat = None  # the snapshot is older than this node: it shows the one that had its id
            if node_id in self.extras:
                self.extras[node_id](stat)
            if stat is not None:
                status, error = self.header[node_id]
                dpg.set_value(status, f"{stat.cook_ms:6.2f} ms" + (f"  {stat.status}" if stat.status else ""))
                dpg.set_value(error, stat.error)
                dpg.configure_item(error, show=bool(stat.error))
            self.widgets.refresh(node_id, snapshot)
            if not dragging:
                self._save_pos(node_id, item)

    def _save_pos(self, node_id: str, item: Item) -> None:
        pos = tuple(float(v) for v in dpg.get_item_pos(item))
        if pos != self.saved_pos.get(node_id):
            self.saved_pos[node_id] = pos
            self.pending.submit(place(self.view.nodes[node_id], pos))

    # --- edits ------------------------------------------------------------------------
    def on_link(self, sender: Item, app_data: tuple[Item, Item]) -> Future | None:
        """Dear PyGui's link callback: ask the graph for the edge; it is drawn once the graph has it."""
        a, b = (self.pins.get(p) for p in app_data)
        if a is None or b is None:
            return None
        if not a[2]:
            a, b = b, a
        if not a[2] or b[2]:
            self.report("link an output to an input or a parameter")
            return None
        return self.pending.submit(Connect(Edge(a[0], a[1], b[0], b[1])))

    def on_delink(self, sender: Item, link: Item) -> Future | None:
        edge = self.links.get(link)
        return None if edge is None else self.pending.submit(Disconnect(edge))

    def selected(self) -> list[str]:
        return [self.node_of[i] for i in dpg.get_selected_nodes(self.editor) if i in self.node_of]

    def add_node(self, type_name: str, pos: tuple[float, float] | None = None) -> Future:
        node = self.registry.create(type_name)
        count = len(self.items)
        node.ui["pos"] = list(pos or (60 + 30 * (count % 10), 60 + 30 * (count % 10)))
        return self.pending.submit(AddNode(node))

    def delete_selected(self) -> None:
        for link in dpg.get_selected_links(self.editor):
            self.on_delink(self.editor, link)
        for node_id in self.selected():
            self.pending.submit(RemoveNode(node_id))

    def duplicate_selected(self) -> None:
        for node_id in self.selected():
            self.pending.submit(lambda rt, i=node_id: rt.call(AddNode(clone(rt.graph.node(i)))))

    def rename_selected(self, name: str) -> None:
        chosen = self.selected()
        if len(chosen) != 1:
            self.report("select one node to rename")
            return
        self.pending.submit(Rename(chosen[0], name.strip()))

    def undo(self) -> None:
        """Undo one edit; the status bar says when that overwrote a live (OSC) value set since the edit."""
        self.pending.submit(undo_step, on_result=self._undone)

    def _undone(self, note: str | None) -> None:
        if note is None or note:
            self.report(note or "nothing to undo")

    def redo(self) -> None:
        self.pending.submit(lambda rt: rt.redo(), on_result=lambda done: None if done else
                            self.report("nothing to redo"))
