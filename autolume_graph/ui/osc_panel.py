"""The OSC panel: what arrived lately (and what it drove), the server's problems, and OSC learn; below, the
same for MIDI: each port's state, the controls moved lately and MIDI learn.

A performer wiring a controller needs to see whether anything arrives at all, at which address,
and why nothing moves: unknown addresses are highlighted and the server's errors are listed here
rather than only in the terminal. The panel reads the monitor's immutable view and the mailbox's
problem list, never the graph; learning goes to the render thread as submitted work.
"""

from __future__ import annotations

import time

import dearpygui.dearpygui as dpg

from autolume_graph.osc.mailbox import Problem
from autolume_graph.osc.monitor import AddressSeen
from autolume_graph.session import Session
from autolume_graph.ui.pending import Pending
from autolume_graph.ui.status import ERROR_COLOR, INFO_COLOR
from autolume_graph.ui.view import NodeView

UNKNOWN_COLOR = (255, 170, 60, 255)  # an address nothing is bound to: the usual reason nothing moves
SYSTEM_COLOR = (140, 190, 255, 255)
DRIVING_COLOR = (255, 255, 255, 255)
REFRESH_S = 0.1  # a controller streaming at 60 Hz changes the view every frame; ten redraws a second tell all
COLUMNS = ("address", "args", "msg/s", "drove")
MIDI_COLUMNS = ("port and message", "value", "msg/s", "drove")
LEARN_HINT = "learn: right-click a parameter, then Learn"
MIDI_LEARN_HINT = "MIDI learn: right-click a parameter, then MIDI Learn"


def drove(entry: AddressSeen, unknown: str = "unknown address") -> str:
    """The monitor's last column: the parameters an address (or a MIDI control) set, or why it set none."""
    if entry.system:
        return "(system)"
    return ", ".join(entry.targets) if entry.targets else unknown


def color_of(entry: AddressSeen) -> tuple[int, int, int, int]:
    if entry.system:
        return SYSTEM_COLOR
    return UNKNOWN_COLOR if entry.unknown else DRIVING_COLOR


def problem_line(problem: Problem, now_mono: float, now_wall: float) -> str:
    """One problem as "HH:MM:SS kind: detail" (problems carry monotonic times)."""
    at, kind, detail = problem
    clock = time.strftime("%H:%M:%S", time.localtime(now_wall - (now_mono - at)))
    return f"{clock} {kind}: {detail}" if detail else f"{clock} {kind}"


class OSCPanel:
    """Build inside the container that should hold it; `update()` each UI frame; `learn` from a parameter."""

    def __init__(self, session: Session, pending: Pending) -> None:
        self.session = session
        self.pending = pending
        self._entries: tuple[AddressSeen, ...] = ()
        self._last_problem: Problem | None = None
        self._learn_state: tuple = (session.control.learning, session.control.learned, False)
        self._target = ""  # "node.param" of the latest Learn
        self._asking = False  # while that request is on its way to the render thread
        self._next_refresh = 0.0
        self.rows: list[tuple[int | str, list[int | str]]] = []
        midi = session.midi
        self._midi_entries: tuple[AddressSeen, ...] = ()
        self._midi_learn_state: tuple = (midi.learning, midi.learned, False)
        self._midi_target = ""
        self._midi_asking = False
        self.midi_rows: list[tuple[int | str, list[int | str]]] = []
        with dpg.group(horizontal=True):
            self.learn_line = dpg.add_text(LEARN_HINT, color=INFO_COLOR)
            self.cancel_button = dpg.add_button(label="Cancel", show=False, callback=lambda: self.cancel_learn())
        self.table = dpg.add_table(header_row=True, height=300, scrollY=True, policy=dpg.mvTable_SizingStretchProp)
        for label in COLUMNS:
            dpg.add_table_column(label=label, parent=self.table)
        dpg.add_text("problems (newest first)")
        self.problems = dpg.add_child_window(height=160)
        dpg.add_text("none", color=INFO_COLOR, parent=self.problems)
        dpg.add_separator()
        with dpg.group(horizontal=True):
            self.midi_learn_line = dpg.add_text(MIDI_LEARN_HINT, color=INFO_COLOR)
            self.midi_cancel_button = dpg.add_button(label="Cancel##midi", show=False,
                                                     callback=lambda: self.cancel_midi_learn())
        self.midi_ports = dpg.add_text("MIDI ports: none read", color=INFO_COLOR, wrap=440)
        self.midi_table = dpg.add_table(header_row=True, height=160, scrollY=True,
                                        policy=dpg.mvTable_SizingStretchProp)
        for label in MIDI_COLUMNS:
            dpg.add_table_column(label=label, parent=self.midi_table)
        pending.submit(lambda rt: midi.monitor_all(True))  # the editor shows every port, bound or not

    # --- learn ----------------------------------------------------------------------
    def learn(self, node: NodeView, param: str) -> None:
        """Bind `node`'s `param` to the next address that arrives (the OSC popup's Learn button)."""
        control, node_id = self.session.control, node.id
        self._target, self._asking = f"{node.name}.{param}", True
        self.pending.submit(lambda rt: control.learn(node_id, param), on_result=lambda _: self._asked())
        self._draw_learn()

    def cancel_learn(self) -> None:
        control = self.session.control
        self._asking = False
        self.pending.submit(lambda rt: control.learn("", None))

    def _asked(self) -> None:
        self._asking = False

    def learn_midi(self, node: NodeView, param: str) -> None:
        """Bind `node`'s `param` to the next MIDI control moved (the popup's MIDI Learn button)."""
        midi, node_id = self.session.midi, node.id
        self._midi_target, self._midi_asking = f"{node.name}.{param}", True
        self.pending.submit(lambda rt: midi.learn(node_id, param), on_result=lambda _: self._midi_asked())
        self._draw_midi_learn()

    def cancel_midi_learn(self) -> None:
        midi = self.session.midi
        self._midi_asking = False
        self.pending.submit(lambda rt: midi.learn("", None))

    def _midi_asked(self) -> None:
        self._midi_asking = False

    def _draw_midi_learn(self) -> None:
        midi = self.session.midi
        learning = midi.learning is not None or self._midi_asking
        if learning:
            dpg.set_value(self.midi_learn_line, f"MIDI learning {self._midi_target}: move a control...")
        elif midi.learned is not None:
            name, param, label = midi.learned
            dpg.set_value(self.midi_learn_line, f"MIDI learned {label} -> {name}.{param}")
        else:
            dpg.set_value(self.midi_learn_line, MIDI_LEARN_HINT)
        dpg.configure_item(self.midi_learn_line, color=UNKNOWN_COLOR if learning else INFO_COLOR)
        dpg.configure_item(self.midi_cancel_button, show=learning)

    def _draw_learn(self) -> None:
        control = self.session.control
        learning = control.learning is not None or self._asking
        if learning:
            dpg.set_value(self.learn_line, f"learning {self._target}: move a control...")
        elif control.learned is not None:
            name, param, address = control.learned
            dpg.set_value(self.learn_line, f"learned {address} -> {name}.{param}")
        else:
            dpg.set_value(self.learn_line, LEARN_HINT)
        dpg.configure_item(self.learn_line, color=UNKNOWN_COLOR if learning else INFO_COLOR)
        dpg.configure_item(self.cancel_button, show=learning)

    # --- each UI frame ----------------------------------------------------------------
    def update(self) -> None:
        """Redraw what changed: the learn line at once, the tables at most every REFRESH_S."""
        control = self.session.control
        learn_state = (control.learning, control.learned, self._asking)
        if learn_state != self._learn_state:
            if control.learned is not None and control.learned != self._learn_state[1]:
                name, param, address = control.learned
                self.pending.inform(f"learned {address} -> {name}.{param}")
            self._learn_state = learn_state
            self._draw_learn()
        midi = self.session.midi
        midi_state = (midi.learning, midi.learned, self._midi_asking)
        if midi_state != self._midi_learn_state:
            if midi.learned is not None and midi.learned != self._midi_learn_state[1]:
                name, param, label = midi.learned
                self.pending.inform(f"MIDI learned {label} -> {name}.{param}")
            self._midi_learn_state = midi_state
            self._draw_midi_learn()
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + REFRESH_S
        entries = control.monitor.entries()
        if entries is not self._entries:
            self._entries = entries
            self._draw_entries(entries, self.table, self.rows, COLUMNS)
        midi_entries = midi.monitor.entries()
        if midi_entries is not self._midi_entries:
            self._midi_entries = midi_entries
            self._draw_entries(midi_entries, self.midi_table, self.midi_rows, MIDI_COLUMNS, "not bound")
        ports = "; ".join(midi.port_lines()) or "none read"
        if dpg.get_value(self.midi_ports) != f"MIDI ports: {ports}":
            dpg.set_value(self.midi_ports, f"MIDI ports: {ports}")
        problems = sorted([*self.session.mailbox.problems(), *self.session.midi.problems])  # by time
        last = problems[-1] if problems else None
        if last != self._last_problem:
            self._last_problem = last
            self._draw_problems(problems, now)

    def _draw_entries(self, entries: tuple[AddressSeen, ...], table: int | str, rows: list, columns: tuple[str, ...],
                      unknown: str = "unknown address") -> None:
        while len(rows) < len(entries):
            with dpg.table_row(parent=table) as row:
                cells = [dpg.add_text("") for _ in columns]
            rows.append((row, cells))
        for index, (row, cells) in enumerate(rows):
            if index >= len(entries):
                dpg.hide_item(row)
                continue
            entry = entries[index]
            dpg.show_item(row)
            color = color_of(entry)
            texts = (entry.address, entry.args, f"{entry.rate:.1f}", drove(entry, unknown))
            for cell, text in zip(cells, texts, strict=True):
                dpg.set_value(cell, text)
                dpg.configure_item(cell, color=color)

    def _draw_problems(self, problems: list[Problem], now: float) -> None:
        dpg.delete_item(self.problems, children_only=True)
        wall = time.time()
        for problem in reversed(problems):
            dpg.add_text(problem_line(problem, now, wall), color=ERROR_COLOR, wrap=420, parent=self.problems)
