"""The node canvas: one Dear PyGui editor node per graph node, drawn from a GraphView.

Edits go out as commands (links, delinks, add, delete, paste, move, rename, undo/redo); what is
drawn changes only when a new GraphView arrives, so a refused link is never drawn. Live values
(OSC) are not undoable: an undo that overwrites one says so in the status bar. New nodes land at
the nearest free spot (placement.py); the node search and the canvas menu open at the cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

import dearpygui.dearpygui as dpg

from autolume_graph.commands import AddNode, Connect, Disconnect, RemoveNode, Rename
from autolume_graph.graph import Edge
from autolume_graph.node import Node, NodeState
from autolume_graph.registry import Registry
from autolume_graph.runtime import NodeStat, Runtime, Snapshot
from autolume_graph.ui import node_editors
from autolume_graph.ui.clipboard import Clip, copy_nodes, paste
from autolume_graph.ui.node_search import NodeSearch
from autolume_graph.ui.pending import Pending
from autolume_graph.ui.placement import MoveNodes, Point, Rect, bounds, frame_offset, free_offset, overlaps, shifted
from autolume_graph.ui.popup import Popup
from autolume_graph.ui.view import EMPTY, GraphView, NodeView
from autolume_graph.ui.widgets import ERROR_COLOR, Item, ParamWidgets, has_widget

STATUS_COLOR = (170, 170, 170, 255)
PORT_COLOR = (200, 200, 140, 255)
SELECTED_COLOR = (255, 200, 60, 255)
GRID = (280, 260)  # spacing of nodes placed where the file has no position
NODE_PADDING = 8.0  # the editor's padding around a node's contents (its rect is the contents)
ROW_HEIGHT = 24.0  # a guess at one pin row, for a node not drawn yet
NODE_WIDTH = 280.0
DUPLICATE_OFFSET = 40.0
MINIMAP_FRACTION = 0.2  # of the editor's size: Dear PyGui's default minimap size
MINIMAP_CORNERS = {dpg.mvNodeMiniMap_Location_BottomRight: (1, 1), dpg.mvNodeMiniMap_Location_BottomLeft: (0, 1),
                   dpg.mvNodeMiniMap_Location_TopRight: (1, 0), dpg.mvNodeMiniMap_Location_TopLeft: (0, 0)}


TITLE_COLORS = {NodeState.ERROR: (170, 40, 40, 255), NodeState.WAITING: (150, 110, 20, 255),
                NodeState.LOADING: (150, 110, 20, 255)}


def state_themes() -> dict[NodeState, Item]:
    """A node theme per state that colours the title bar (states without one keep the default)."""
    themes = {}
    for state, color in TITLE_COLORS.items():
        with dpg.theme() as theme, dpg.theme_component(dpg.mvAll):
            for part in (dpg.mvNodeCol_TitleBar, dpg.mvNodeCol_TitleBarHovered, dpg.mvNodeCol_TitleBarSelected):
                dpg.add_theme_color(part, color, category=dpg.mvThemeCat_Nodes)
        themes[state] = theme
    return themes


def node_title(node: NodeView) -> str:
    return f"{node.name} [{node.type_name}]"


def estimated_size(kind: type[Node]) -> Point:
    """How big a node of this class will be drawn, before it is: one row per pin and a status line."""
    rows = 2 + len(kind.inputs) + len(kind.outputs) + sum(1 for p in kind.params.values() if has_widget(p))
    return NODE_WIDTH, rows * ROW_HEIGHT


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
        self.tips: dict[str, Item] = {}  # the status and error in full, shown on hover over the node
        self.shown_state: dict[str, NodeState] = {}
        self.state_themes = state_themes()
        self.extras: dict[str, node_editors.Refresh] = {}
        self.pins: dict[Item, tuple[str, str, bool]] = {}
        self.pin_of: dict[tuple[str, str, bool], Item] = {}
        self.links: dict[Item, Edge] = {}
        self.saved_pos: dict[str, tuple[float, float]] = {}
        self.clip: Clip | None = None
        self.all_selected = False  # "Select all": Dear PyGui 2.3 cannot select nodes, so the canvas marks them
        with dpg.group(horizontal=True):
            dpg.add_button(label="Undo", callback=lambda: self.undo())
            dpg.add_button(label="Redo", callback=lambda: self.redo())
            dpg.add_button(label="Delete", callback=lambda: self.delete_selected())
            dpg.add_button(label="Duplicate", callback=lambda: self.duplicate_selected())
            self.name_input = dpg.add_input_text(hint="new name", width=160, on_enter=True,
                                                 callback=lambda: self.rename_selected(dpg.get_value(self.name_input)))
            dpg.add_button(label="Rename", callback=lambda: self.rename_selected(dpg.get_value(self.name_input)))
        # the minimap starts hidden and, shown (M), sits in a corner no node is under: it never covers pins
        with dpg.group() as self.editor_box:  # the editor has no rectangle of its own: its group has
            self.editor = dpg.add_node_editor(callback=self.on_link, delink_callback=self.on_delink, minimap=False,
                                              width=-1, height=-1)
        self.search = NodeSearch(registry, lambda name, pos: self.add_node(name, pos))
        self.menu = Popup(150)
        self.menu_at: Point = (0.0, 0.0)
        for label, action in (("Add node...", self._menu_search), ("Paste", self._menu_paste),
                              ("Select all", self.select_all), ("Frame all", self.frame_all)):
            dpg.add_selectable(label=label, parent=self.menu.window, user_data=action,
                               callback=lambda s, a, act: self._menu_choose(act))
        with dpg.theme() as self.selected_theme, dpg.theme_component(dpg.mvAll):
            dpg.add_theme_color(dpg.mvNodeCol_NodeOutline, SELECTED_COLOR, category=dpg.mvThemeCat_Nodes)
            dpg.add_theme_style(dpg.mvNodeStyleVar_NodeBorderThickness, 3, category=dpg.mvThemeCat_Nodes)

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
                if node.pos and node.pos != self.view.nodes[node_id].pos and node.pos != self.saved_pos[node_id]:
                    dpg.set_item_pos(self.items[node_id], [*node.pos])  # moved by an edit (framing, undo)
                    self.saved_pos[node_id] = node.pos
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
        with dpg.tooltip(status):  # a node item takes no tooltip: its first line does
            self.tips[node.id] = dpg.add_text(cls.__doc__.strip().splitlines()[0] if cls.__doc__ else node.type_name,
                                              wrap=360)
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
        self.tips.pop(node_id, None)
        self.shown_state.pop(node_id, None)
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
                self._show_state(node_id, item, stat)
            self.widgets.refresh(node_id, snapshot)
            if not dragging:
                self._save_pos(node_id, item)

    def _show_state(self, node_id: str, item: Item, stat: NodeStat) -> None:
        """The title bar's colour says the node's state (red: an error of any kind; amber: waiting or
        loading); hovering the node's first line shows its whole status and error."""
        if self.shown_state.get(node_id) == stat.state:
            return
        self.shown_state[node_id] = stat.state
        dpg.bind_item_theme(item, self.state_themes.get(stat.state, 0))
        lines = [line for line in (stat.error, stat.status) if line]
        if lines:
            dpg.set_value(self.tips[node_id], "\n".join(lines))

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
        if self.all_selected:
            return list(self.items)
        return [self.node_of[i] for i in dpg.get_selected_nodes(self.editor) if i in self.node_of]

    def select_all(self) -> None:
        """Mark every node selected (outlined) until the next click on the canvas."""
        self.all_selected = True
        for item in self.items.values():
            dpg.bind_item_theme(item, self.selected_theme)

    def _unselect_all(self) -> None:
        if self.all_selected:
            self.all_selected = False
            for item in self.items.values():
                dpg.bind_item_theme(item, 0)

    def add_node(self, type_name: str, pos: Point | None = None) -> Future:
        """Add a node at `pos` (canvas coordinates), or at the nearest spot there that no node covers."""
        node = self.registry.create(type_name)
        count = len(self.items)
        x, y = pos or (60 + 30 * (count % 10), 60 + 30 * (count % 10))
        width, height = estimated_size(type(node))
        dx, dy = free_offset([(x, y, x + width, y + height)], list(self.node_rects().values()))
        node.ui["pos"] = [x + dx, y + dy]
        return self.pending.submit(AddNode(node))

    def delete_selected(self) -> None:
        for link in dpg.get_selected_links(self.editor):
            self.on_delink(self.editor, link)
        for node_id in self.selected():
            self.pending.submit(RemoveNode(node_id))

    def _copy(self, on_copied: Callable[[Clip], None]) -> None:
        chosen = self.selected()
        if not chosen:
            self.pending.inform("select nodes first (click a title, drag a box, or Select all)")
            return
        rects = self.node_rects()
        self.pending.submit(copy_nodes(chosen, [rects[i] for i in chosen]), on_result=on_copied)

    def copy_selected(self) -> None:
        """Ctrl+C: the selected nodes, with the links among them, values and bindings."""
        def copied(clip: Clip) -> None:
            self.clip = clip
            self.pending.inform(f"copied {len(clip.nodes)} node(s)")

        self._copy(copied)

    def paste_at(self, point: Point) -> None:
        """Ctrl+V: new copies of the copied nodes, their top-left at `point` (canvas) or the nearest free spot."""
        if self.clip is None:
            self.pending.inform("nothing to paste: copy nodes first (Ctrl+C)")
            return
        self._paste(self.clip, point)

    def duplicate_selected(self) -> None:
        """Ctrl+D: copy and paste the selection next to itself (the clipboard keeps what it had)."""
        def copied(clip: Clip) -> None:
            x0, y0, _, _ = bounds(list(clip.rects))
            self._paste(clip, (x0 + DUPLICATE_OFFSET, y0 + DUPLICATE_OFFSET))

        self._copy(copied)

    def _paste(self, clip: Clip, point: Point) -> None:
        x0, y0, _, _ = bounds(list(clip.rects))
        wanted = [shifted(rect, point[0] - x0, point[1] - y0) for rect in clip.rects]
        dx, dy = free_offset(wanted, list(self.node_rects().values()))
        self.pending.submit(paste(clip, [(rect[0] + dx, rect[1] + dy) for rect in wanted]))

    def frame_all(self) -> None:
        """F: move the graph (one undoable edit) so every node is in view; the editor has no panning API."""
        rects = self.node_rects()
        if not rects:
            self.pending.inform("nothing to frame: the graph is empty")
            return
        x0, y0, x1, y1 = self.area()
        (ax, ay), (bx, by) = self.to_canvas((x0, y0)), self.to_canvas((x1, y1))
        dx, dy = frame_offset(list(rects.values()), (ax, ay, bx, by))
        if abs(dx) < 1 and abs(dy) < 1:
            self.pending.inform("every node is in view")
            return
        self.pending.submit(MoveNodes({node_id: (r[0] + dx, r[1] + dy) for node_id, r in rects.items()}))

    def toggle_minimap(self) -> None:
        """M: show the minimap in a corner with no node under it (bottom right when every corner has one)."""
        if dpg.get_item_configuration(self.editor)["minimap"]:
            dpg.configure_item(self.editor, minimap=False)
            return
        x0, y0, x1, y1 = self.area()
        (ax, ay), (bx, by) = self.to_canvas((x0, y0)), self.to_canvas((x1, y1))
        width, height = (bx - ax) * MINIMAP_FRACTION, (by - ay) * MINIMAP_FRACTION
        rects = list(self.node_rects().values())

        def covers(right: int, down: int) -> bool:
            left, top = ax + right * (bx - ax - width), ay + down * (by - ay - height)
            return any(overlaps(rect, (left, top, left + width, top + height), 0.0) for rect in rects)

        corner = next((where for where, (right, down) in MINIMAP_CORNERS.items() if not covers(right, down)), None)
        if corner is None:
            self.pending.inform("the minimap covers nodes in every corner: press M to hide it, F to frame")
        dpg.configure_item(self.editor, minimap=True,
                           minimap_location=dpg.mvNodeMiniMap_Location_BottomRight if corner is None else corner)

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
        if note is None:
            self.pending.inform("nothing to undo")
        elif note:
            self.report(note)

    def redo(self) -> None:
        self.pending.submit(lambda rt: rt.redo(), on_result=lambda done: None if done else
                            self.pending.inform("nothing to redo"))

    # --- where things are: screen (viewport) and canvas (node editor) coordinates ----------
    def area(self) -> Rect:
        """The node editor's rectangle on screen."""
        (x0, y0), (x1, y1) = dpg.get_item_rect_min(self.editor_box), dpg.get_item_rect_max(self.editor_box)
        return float(x0), float(y0), float(x1), float(y1)

    def _origin(self) -> Point:
        """Where canvas (0, 0) is on screen, panning included: read off any drawn node."""
        for item in self.items.values():
            if dpg.is_item_visible(item):
                (sx, sy), (px, py) = dpg.get_item_rect_min(item), dpg.get_item_pos(item)
                return sx - px - NODE_PADDING, sy - py - NODE_PADDING
        x0, y0, _, _ = self.area()
        return x0, y0

    def to_canvas(self, screen: Point) -> Point:
        ox, oy = self._origin()
        return screen[0] - ox, screen[1] - oy

    def node_rects(self) -> dict[str, Rect]:
        """Each drawn node's rectangle in canvas coordinates."""
        rects = {}
        for node_id, item in self.items.items():
            x, y = dpg.get_item_pos(item)
            (x0, y0), (x1, y1) = dpg.get_item_rect_min(item), dpg.get_item_rect_max(item)
            rects[node_id] = (float(x), float(y), x + x1 - x0 + 2 * NODE_PADDING, y + y1 - y0 + 2 * NODE_PADDING)
        return rects

    @staticmethod
    def mouse() -> Point:
        x, y = dpg.get_mouse_pos(local=False)
        return float(x), float(y)

    def takes_input(self) -> bool:
        """The pointer is over the node editor and no search or menu is open."""
        x, y = self.mouse()
        x0, y0, x1, y1 = self.area()
        return x0 <= x <= x1 and y0 <= y <= y1 and not self.search.showing and not self.menu.showing

    def _on_empty_canvas(self) -> bool:
        x, y = self.to_canvas(self.mouse())
        return self.takes_input() and not any(r[0] <= x <= r[2] and r[1] <= y <= r[3]
                                              for r in self.node_rects().values())

    # --- the search and the menu at the cursor --------------------------------------------
    def open_search(self, screen: Point | None = None) -> None:
        """Tab: the node search at the cursor (or at `screen`); Enter places the node there."""
        point = screen or self.mouse()
        self.search.open(point, self.to_canvas(point))

    def on_double_click(self) -> None:
        if self._on_empty_canvas():
            self.open_search()

    def on_right_click(self) -> None:
        if self._on_empty_canvas():
            self.menu_at = self.mouse()
            self.menu.show_at(self.menu_at)

    def on_left_click(self) -> None:
        """A click outside the search or menu closes it; a click on the canvas ends Select all."""
        point = self.mouse()
        for popup in (self.search.popup, self.menu):
            if popup.showing and not popup.contains(point):
                popup.hide()
        if self.takes_input():
            self._unselect_all()

    def on_escape(self) -> None:
        self.search.close()
        self.menu.hide()
        self._unselect_all()

    def _menu_choose(self, action: Callable[[], None]) -> None:
        self.menu.hide()
        action()

    def _menu_search(self) -> None:
        self.open_search(self.menu_at)

    def _menu_paste(self) -> None:
        self.paste_at(self.to_canvas(self.menu_at))
