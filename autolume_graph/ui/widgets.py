"""Parameter widgets drawn from the declarations; changes become SetParam commands.

Each UI frame the widgets of visible nodes are refreshed from the snapshot's copy of the values,
so values set elsewhere (OSC, undo, a preset) show up, except on a widget being dragged or whose
own change is not in a snapshot yet. Right-click a widget for its OSC binding (and Learn).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import dearpygui.dearpygui as dpg

from autolume_graph import device_lists
from autolume_graph.commands import SetBinding, SetMidiBinding, SetParam
from autolume_graph.params import Binding, MidiBinding, Param, ParamType, midi_bindable
from autolume_graph.runtime import Snapshot
from autolume_graph.ui.dialogs import open_file
from autolume_graph.ui.pending import Pending, reason
from autolume_graph.ui.status import ERROR_COLOR
from autolume_graph.ui.view import NodeView

Item = int | str
SLIDER_SPAN_MAX = 100000  # wider integer ranges (seeds) get a drag widget instead of a slider

ParamKey = tuple[str, str]
OnChange = Callable[[Item, Any, ParamKey], None]


def _number_format(param: Param, spec: str) -> str:
    return f"{spec} {param.unit.replace('%', '%%')}" if param.unit else spec


def _float(name: str, param: Param, value: Any, on_change: OnChange, common: dict[str, Any], width: int) -> Item:
    fmt = _number_format(param, "%.3f")
    if param.min is not None and param.max is not None:
        return dpg.add_slider_float(default_value=value, min_value=param.min, max_value=param.max,
                                    width=width, format=fmt, **common)
    return dpg.add_drag_float(default_value=value, speed=0.01, width=width, format=fmt, **common)


def _int(name: str, param: Param, value: Any, on_change: OnChange, common: dict[str, Any], width: int) -> Item:
    fmt = _number_format(param, "%d")
    if param.min is not None and param.max is not None and param.max - param.min <= SLIDER_SPAN_MAX:
        return dpg.add_slider_int(default_value=value, min_value=int(param.min), max_value=int(param.max),
                                  width=width, format=fmt, **common)
    return dpg.add_drag_int(default_value=value, width=width, format=fmt,
                            min_value=int(param.min or 0), max_value=int(param.max or 0), **common)


def _checkbox(name: str, param: Param, value: Any, on_change: OnChange, common: dict[str, Any], width: int) -> Item:
    return dpg.add_checkbox(default_value=bool(value), **common)


def _button(name: str, param: Param, value: Any, on_change: OnChange, common: dict[str, Any], width: int) -> Item:
    return dpg.add_button(label=name, callback=lambda s, a, u: on_change(s, True, u), user_data=common["user_data"])


def _combo(name: str, param: Param, value: Any, on_change: OnChange, common: dict[str, Any], width: int) -> Item:
    return dpg.add_combo(items=list(param.choices), default_value=value, width=width, **common)


def _text(name: str, param: Param, value: Any, on_change: OnChange, common: dict[str, Any], width: int) -> Item:
    return dpg.add_input_text(default_value=value, width=width, on_enter=True, **common)


def _file(name: str, param: Param, value: Any, on_change: OnChange, common: dict[str, Any], width: int) -> Item:
    with dpg.group(horizontal=True):
        text = dpg.add_input_text(default_value=value, width=width - 30, on_enter=True, **common)

        def chosen(path: str) -> None:
            dpg.set_value(text, path)
            on_change(text, path, common["user_data"])

        dpg.add_button(label="...", callback=lambda: open_file(chosen, param.file_kind, dpg.get_value(text)))
    return text


def _device(name: str, param: Param, value: Any, on_change: OnChange, common: dict[str, Any], width: int) -> Item:
    """A chooser of the devices found (listed off the UI thread: a driver may be slow); "rescan" lists again.
    A name not found now (unplugged, or from another machine's file) stays chosen and shown."""
    with dpg.group(horizontal=True):
        combo = dpg.add_combo(items=[value] if value else [], default_value=value, width=width - 30, **common)

        def rescan() -> None:
            def work() -> None:
                found = device_lists.available(param.device_kind)
                current = dpg.get_value(combo)
                names = list(found.names) + ([current] if current and current not in found.names else [])
                dpg.configure_item(combo, items=names)
                dpg.set_item_label(combo, f"{name} ({found.problem})" if found.problem else name)

            threading.Thread(target=work, name=f"list-{param.device_kind}", daemon=True).start()

        dpg.add_button(label="rescan", callback=rescan)
        rescan()
    return combo


WidgetBuilder = Callable[[str, Param, Any, OnChange, dict[str, Any], int], Item]
WIDGETS: dict[str, WidgetBuilder] = {
    "float": _float, "int": _int, "checkbox": _checkbox, "button": _button,
    "combo": _combo, "text": _text, "file": _file, "device": _device,
}
"""Widget kind (ParamKind.widget) -> builder; a new parameter type names one of these kinds."""


def make_widget(name: str, param: Param, value: Any, on_change: OnChange, key: ParamKey, width: int) -> Item:
    """The widget of one parameter (inside the current container); returns the item holding its value."""
    build = WIDGETS.get(param.type.widget)
    if build is None:
        raise ValueError(f"no widget of kind {param.type.widget!r} for {param.type.name} parameters")
    return build(name, param, value, on_change, {"label": name, "callback": on_change, "user_data": key}, width)


def _same(shown: Any, value: Any) -> bool:
    """Sliders hold float32: a difference below that precision is no change."""
    if isinstance(shown, float) and isinstance(value, float):
        return abs(shown - value) <= 1e-6 * max(1.0, abs(value))
    return shown == value


def has_widget(param: Param) -> bool:
    """Parameter types without a widget kind (DATA) have node-specific editors instead."""
    return bool(param.type.widget)


@dataclass
class ParamSlot:
    node_id: str
    name: str
    param: Param
    widget: Item


Learner = Callable[[NodeView, str], None]


class OscPopup:
    """The OSC binding of one parameter: Use OSC, address and mapping; a refused mapping shows why.

    Learn (shown once `on_learn` is set, by the OSC panel) binds the parameter to the next address
    that arrives. While open, the fields follow the node's view: a rename shows the address kept.
    Below, its MIDI binding (asked of the render thread: views carry none): MIDI Learn (once
    `on_midi_learn` is set) binds it to the next control moved; Clear MIDI unbinds it.
    """

    def __init__(self, pending: Pending) -> None:
        self.pending = pending
        self.target: ParamKey | None = None
        self._shown: Binding | None = None
        self.on_learn: Learner | None = None
        self.on_midi_learn: Learner | None = None
        self._node: NodeView | None = None
        with dpg.window(label="OSC and MIDI binding", show=False, autosize=True, no_collapse=True) as self.window:
            self.title = dpg.add_text("")
            self.enabled = dpg.add_checkbox(label="Use OSC")
            self.address = dpg.add_input_text(label="address", width=220)
            self.mapping = dpg.add_input_text(label="mapping (in x)", width=220, on_enter=True,
                                              callback=lambda: self.apply())
            with dpg.group(horizontal=True):
                dpg.add_button(label="Apply", callback=lambda: self.apply())
                self.learn_button = dpg.add_button(label="Learn", show=False, callback=lambda: self.learn())
                dpg.add_button(label="Close", callback=lambda: dpg.hide_item(self.window))
            self.error = dpg.add_text("", color=ERROR_COLOR, wrap=300)
            with dpg.group() as self.midi_group:
                dpg.add_separator()
                self.midi_line = dpg.add_text("MIDI: not bound")
                with dpg.group(horizontal=True):
                    self.midi_learn_button = dpg.add_button(label="MIDI Learn", callback=lambda: self.learn_midi())
                    self.midi_clear_button = dpg.add_button(label="Clear MIDI", callback=lambda: self.clear_midi())

    def open(self, node: NodeView, name: str) -> None:
        self.target = (node.id, name)
        self._fill(node)
        dpg.set_value(self.error, "")
        dpg.configure_item(self.learn_button, show=self.on_learn is not None)
        dpg.configure_item(self.midi_group, show=midi_bindable(node.kind.params[name]))
        dpg.configure_item(self.midi_learn_button, show=self.on_midi_learn is not None)
        dpg.set_item_pos(self.window, dpg.get_mouse_pos(local=False))
        dpg.show_item(self.window)
        dpg.focus_item(self.window)

    def _fill(self, node: NodeView) -> None:
        name = self.target[1]
        binding = node.bindings[name]
        self._node, self._shown = node, binding
        dpg.set_value(self.title, f"{node.name}.{name}")
        dpg.set_value(self.enabled, binding.enabled)
        dpg.set_value(self.address, binding.address)
        dpg.set_value(self.mapping, binding.mapping)
        self._ask_midi()

    def _ask_midi(self) -> None:
        """Show the parameter's MIDI binding once the render thread has said what it is."""
        target = self.target

        def shown(binding: MidiBinding | None) -> None:
            if self.target == target:
                dpg.set_value(self.midi_line, f"MIDI: {binding.label} ({binding.mapping})" if binding
                              else "MIDI: not bound")

        def ask(runtime: Any) -> MidiBinding | None:
            node = runtime.graph.nodes.get(target[0])
            return node.midi_bindings.get(target[1]) if node is not None else None

        self.pending.submit(ask, on_result=shown)

    def follow(self, node: NodeView) -> None:
        """A new view of `node`: show its binding when it changed (a rename, a learn, an undo)."""
        if self.target is None or self.target[0] != node.id or not dpg.is_item_shown(self.window):
            return
        if node.bindings.get(self.target[1]) != self._shown or node.name != self._node.name:
            self._fill(node)
        elif node is not self._node:  # a new structure: perhaps a MIDI binding learned, cleared or undone
            self._node = node
            self._ask_midi()

    def learn_midi(self) -> None:
        """Bind the shown parameter to the next MIDI control moved, and get out of the way."""
        if self.target is None or self.on_midi_learn is None or self._node is None:
            return
        self.on_midi_learn(self._node, self.target[1])
        dpg.hide_item(self.window)

    def clear_midi(self) -> None:
        if self.target is not None:
            self.pending.submit(SetMidiBinding(self.target[0], self.target[1], None),
                                on_result=lambda _: self._ask_midi(), on_error=self._refused)

    def learn(self) -> None:
        """Start learning for the shown parameter and get out of the way of the controller."""
        if self.target is None or self.on_learn is None or self._node is None:
            return
        self.on_learn(self._node, self.target[1])
        dpg.hide_item(self.window)

    def apply(self) -> None:
        if self.target is None:
            return
        node_id, name = self.target
        binding = Binding(bool(dpg.get_value(self.enabled)), dpg.get_value(self.address).strip(),
                          dpg.get_value(self.mapping).strip() or "x")
        self.pending.submit(SetBinding(node_id, name, binding),
                            on_result=lambda _: dpg.set_value(self.error, ""),
                            on_error=self._refused)

    def _refused(self, exc: BaseException) -> None:
        dpg.set_value(self.error, reason(exc))
        self.pending.report(reason(exc))


class ParamWidgets:
    """Every parameter widget on the canvas: SetParam on change, refresh from values, OSC popup."""

    def __init__(self, pending: Pending, width: int = 160) -> None:
        """Call outside any container: it makes the root-level OSC popup and click handler."""
        self.pending = pending
        self.width = width
        self.slots: dict[Item, ParamSlot] = {}
        self.by_node: dict[str, dict[str, ParamSlot]] = {}
        self.nodes: dict[str, NodeView] = {}
        self._in_flight: dict[ParamKey, Future] = {}  # a widget's own change, not applied yet
        self._landed: dict[ParamKey, int] = {}  # ... applied after the snapshot of this frame was published
        self.popup = OscPopup(pending)
        with dpg.item_handler_registry() as self._handlers:
            dpg.add_item_clicked_handler(button=dpg.mvMouseButton_Right, callback=self._on_right_click)

    def add(self, node: NodeView, name: str, param: Param) -> Item:
        """Make the widget of `node`'s parameter `name` in the current container."""
        widget = make_widget(name, param, node.values[name], self.on_change, (node.id, name), self.width)
        if param.doc:
            with dpg.tooltip(widget):
                dpg.add_text(param.doc)
        if param.osc_addressable:
            dpg.bind_item_handler_registry(widget, self._handlers)
        slot = ParamSlot(node.id, name, param, widget)
        self.slots[widget] = slot
        self.by_node.setdefault(node.id, {})[name] = slot
        self.nodes[node.id] = node
        return widget

    def forget(self, node_id: str) -> None:
        for slot in self.by_node.pop(node_id, {}).values():
            self.slots.pop(slot.widget, None)
        self.nodes.pop(node_id, None)

    def set_wired(self, node_id: str, wired: set[str]) -> None:
        """A wire drives these parameters: their widgets are disabled."""
        for name, slot in self.by_node.get(node_id, {}).items():
            (dpg.disable_item if name in wired else dpg.enable_item)(slot.widget)

    def on_change(self, sender: Item, value: Any, key: ParamKey) -> None:
        """A widget changed (the Dear PyGui callback): submit the new value."""
        self._in_flight[key] = self.pending.submit(SetParam(key[0], key[1], value))

    def _awaiting(self, key: ParamKey, frame: int) -> bool:
        """Whether the widget's own change may not be in the snapshot of `frame` yet (so it must not be undone)."""
        future = self._in_flight.get(key)
        if future is not None:
            if not future.done():
                return True
            del self._in_flight[key]
            self._landed[key] = frame  # the render thread may not have published the frame that applied it
        landed = self._landed.get(key)
        if landed is None:
            return False
        if frame <= landed:
            return True
        del self._landed[key]
        return False

    def refresh(self, node_id: str, snapshot: Snapshot) -> None:
        """Show the node's published values, leaving alone a widget in use or awaiting its own change."""
        node = self.nodes.get(node_id)
        if node is None:
            return
        values = node.current_values(snapshot.nodes.get(node_id))
        for name, slot in self.by_node.get(node_id, {}).items():
            if self._awaiting((node_id, name), snapshot.frame):
                continue
            if slot.param.type is ParamType.TRIGGER or dpg.is_item_active(slot.widget):
                continue
            value = values.get(name)
            if not _same(dpg.get_value(slot.widget), value):
                dpg.set_value(slot.widget, value)

    def update_node(self, node: NodeView) -> None:
        """The node was renamed or moved: keep its latest view for the OSC popup's default address."""
        if node.id in self.nodes:
            self.nodes[node.id] = node
            self.popup.follow(node)

    def _on_right_click(self, sender: Item, app_data: Any) -> None:
        slot = self.slots.get(app_data[1]) if isinstance(app_data, (list, tuple)) else None
        if slot is not None and slot.node_id in self.nodes:
            self.popup.open(self.nodes[slot.node_id], slot.name)
