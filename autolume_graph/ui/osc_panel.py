"""The OSC panel: what arrived lately (and what it drove), the server's problems, and OSC learn.

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
LEARN_HINT = "learn: right-click a parameter, then Learn"


def drove(entry: AddressSeen) -> str:
    """The monitor's last column: the parameters an address set, or why it set none."""
    if entry.system:
        return "(system)"
    return ", ".join(entry.targets) if entry.targets else "unknown address"


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
        with dpg.group(horizontal=True):
            self.learn_line = dpg.add_text(LEARN_HINT, color=INFO_COLOR)
            self.cancel_button = dpg.add_button(label="Cancel", show=False, callback=lambda: self.cancel_learn())
        self.table = dpg.add_table(header_row=True, height=300, scrollY=True, policy=dpg.mvTable_SizingStretchProp)
        for label in COLUMNS:
            dpg.add_table_column(label=label, parent=self.table)
        dpg.add_text("problems (newest first)")
        self.problems = dpg.add_child_window(height=160)
        dpg.add_text("none", color=INFO_COLOR, parent=self.problems)

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
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + REFRESH_S
        entries = control.monitor.entries()
        if entries is not self._entries:
            self._entries = entries
            self._draw_entries(entries)
        problems = self.session.mailbox.problems()
        last = problems[-1] if problems else None
        if last != self._last_problem:
            self._last_problem = last
            self._draw_problems(problems, now)

    def _draw_entries(self, entries: tuple[AddressSeen, ...]) -> None:
        while len(self.rows) < len(entries):
            with dpg.table_row(parent=self.table) as row:
                cells = [dpg.add_text("") for _ in COLUMNS]
            self.rows.append((row, cells))
        for index, (row, cells) in enumerate(self.rows):
            if index >= len(entries):
                dpg.hide_item(row)
                continue
            entry = entries[index]
            dpg.show_item(row)
            color = color_of(entry)
            for cell, text in zip(cells, (entry.address, entry.args, f"{entry.rate:.1f}", drove(entry)), strict=True):
                dpg.set_value(cell, text)
                dpg.configure_item(cell, color=color)

    def _draw_problems(self, problems: list[Problem], now: float) -> None:
        dpg.delete_item(self.problems, children_only=True)
        wall = time.time()
        for problem in reversed(problems):
            dpg.add_text(problem_line(problem, now, wall), color=ERROR_COLOR, wrap=420, parent=self.problems)
