"""The frame loop. One render thread owns the graph; others submit edits and read snapshots."""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from autolume_graph.clock import Clock
from autolume_graph.commands import Command, History
from autolume_graph.devices import device_problem, resolve_device
from autolume_graph.errors import UserError
from autolume_graph.graph import Graph, GraphError
from autolume_graph.node import CookContext, Node, NodeState
from autolume_graph.outputs.errors import one_line
from autolume_graph.scheduler import FrameReport, Scheduler, build_plan

log = logging.getLogger(__name__)

# A frame rate is 0 (as fast as the graph cooks) or clipped into this range.
MIN_FPS, MAX_FPS = 1.0, 1000.0
# The longest the loop sleeps at once: a new frame rate (or stop) is seen within this, however slow the last one.
WAIT_SLICE_S = 0.05
# Where the runtime's own failures are listed (Snapshot.engine_errors); node errors stay on their nodes.
PLAN, PRESET_SWITCH, COMMANDS, HOOKS, CLOCK, COOK, PUBLISH = (
    "plan", "preset switch", "commands", "frame hooks", "clock", "cook", "publish")


class FrameRateError(UserError, ValueError):
    """A frame rate that is not a finite number >= 0."""


def bounded_fps(value: object) -> float:
    """0 (unlimited) or a rate clipped into [MIN_FPS, MAX_FPS]; anything else is refused with one line."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise FrameRateError(f"frame rate {value!r}: expected 0 (unlimited) or a positive number")
    return 0.0 if value == 0 else min(max(float(value), MIN_FPS), MAX_FPS)


@dataclass(frozen=True)
class NodeStat:
    """One node as readers see it after a frame; `values` and `editor` are copies the render thread never
    touches again (the editor draws from them, never from the node)."""

    name: str
    type_name: str
    cook_ms: float
    error: str
    status: str
    values: dict[str, Any] = field(default_factory=dict)  # the parameter values, by name
    editor: dict[str, Any] = field(default_factory=dict)  # the node's `editor_data()`
    state: NodeState = NodeState.OK  # what the node is doing (ERROR while `error` is set)
    status_parts: tuple[str, ...] = ()  # the parts of `status`, for an editor that lists them
    instance: int = 0  # id() of the node: tells it from a node that later took its id (or a preset's)


@dataclass(frozen=True)
class Snapshot:
    """What the render thread publishes after each frame; readers never touch the live graph."""

    frame: int = -1
    time: float = 0.0
    fps: float = 0.0
    frame_ms: float = 0.0
    nodes: dict[str, NodeStat] = field(default_factory=dict)
    published: dict[str, Any] = field(default_factory=dict)
    engine_errors: dict[str, str] = field(default_factory=dict)  # what failed around the nodes, by source
    edit_version: int = 0  # the history's version (`commands.History.version`): unsaved edits show as a change

    @property
    def engine_error(self) -> str:
        """The engine's failures as one line ("" when all is well)."""
        return "; ".join(f"{source}: {message}" for source, message in self.engine_errors.items())


FrameHook = Callable[["Runtime"], None]


class Runtime:
    """Runs the graph: applies queued edits at frame boundaries, cooks, publishes a snapshot.

    `step` never raises: a failing command goes to its submitter, a failing hook, plan, cook or publish
    is listed in `engine_errors` (and the snapshot) and the last good picture stays published.
    """

    def __init__(self, graph: Graph, fps: float = 30.0, fixed_step: bool = False, device: str = "cpu",
                 services: dict[str, Any] | None = None) -> None:
        self.graph = graph
        self.history = History(graph)
        self.scheduler = Scheduler(graph)
        self.target_fps = fps
        if fixed_step and not self.target_fps:
            raise FrameRateError("a fixed-step clock needs a frame rate above 0")
        self.clock = Clock(self.target_fps if fixed_step else None)
        self.device = resolve_device(device)
        self.services: dict[str, Any] = dict(services or {})
        self.frame_hooks: list[FrameHook] = []
        self.snapshot = Snapshot()
        self._stats: dict[str, tuple[tuple, NodeStat]] = {}  # each node's last published stat, by what it shows
        self.last_report = FrameReport()
        self.engine_errors: dict[str, str] = {}
        self._queue: queue.SimpleQueue[tuple[Any, Future]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._fps_ema = 0.0
        self._last_step: float | None = None
        self._open: dict[int, Node] = {}  # the nodes opened and not yet closed, by identity
        self._tracked: tuple[int, int] | None = None  # (graph, structure version) `_open` was last matched to
        self._track_nodes()

    @property
    def target_fps(self) -> float:
        return self._target_fps

    @target_fps.setter
    def target_fps(self, value: float) -> None:
        """Validated wherever it comes from (CLI, OSC, editor): see `bounded_fps`."""
        self._target_fps = bounded_fps(value)

    # --- submissions from other threads ------------------------------------------------
    def submit(self, work: Command | Callable[[Runtime], Any]) -> Future:
        """Queue an edit command (undoable) or a callable run on the render thread at the next boundary."""
        future: Future = Future()
        self._queue.put((work, future))
        return future

    def call(self, work: Command | Callable[[Runtime], Any], timeout: float = 10.0) -> Any:
        """Submit and wait: from another thread while running, or at once when the loop is not running."""
        if self._thread is None or threading.current_thread() is self._thread:
            return self._apply(work)
        return self.submit(work).result(timeout)

    def _apply(self, work: Command | Callable[[Runtime], Any]) -> Any:
        try:
            if isinstance(work, Command):
                self.history.do(work)
                return None
            return work(self)
        finally:
            self._track_nodes()

    def undo(self) -> bool:
        """Undo the last edit (on the render thread: submit `lambda rt: rt.undo()`); False if there is none."""
        try:
            return self.history.undo()
        finally:
            self._track_nodes()

    def redo(self) -> bool:
        """Redo the last undone edit; False if there is none."""
        try:
            return self.history.redo()
        finally:
            self._track_nodes()

    def _track_nodes(self) -> None:
        """Close the nodes that left the running graph and open those that entered it, since the last look.

        The one place the node lifecycle is kept, whatever moved them (a command, undo, redo, a preset
        switch), so each node is opened once when it enters and closed once when it leaves.
        """
        key = (id(self.graph), self.graph.structure_version)
        if key == self._tracked:
            return
        self._tracked = key
        live = {id(n): n for n in self.graph.nodes.values()}
        _close_all(n for k, n in self._open.items() if k not in live)
        _open_all(n for k, n in live.items() if k not in self._open)
        self._open = live

    def _drain_queue(self, limit: int | None = None) -> None:
        """Apply queued work (at most `limit` items, so a busy submitter cannot hold a frame); each failure goes
        to its submitter's future."""
        count = self._queue.qsize() if limit is None else limit
        for _ in range(count):
            try:
                work, future = self._queue.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue  # the submitter gave up on it
            try:
                result = self._apply(work)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - even SystemExit from a command must not end the loop
                future.set_exception(exc)
            else:
                future.set_result(result)

    def set_device(self, device: str) -> str:
        """Move the running graph to `device` ("cpu", "cuda", "mps", "auto") between two frames (render thread).

        Every node cooks again on the next frame with the new device (models load there off the render
        thread, the old one shows meanwhile). A device that is not here is refused and nothing moves."""
        resolved = resolve_device(device)
        problem = device_problem(resolved)
        if problem is not None:
            raise ValueError(f"{problem}: staying on {self.device}")
        self.device = resolved
        return resolved

    def swap_graph(self, graph: Graph) -> int:
        """Replace the running graph (a preset switch) between two frames; the old one's nodes close.

        The new graph is planned first: one that cannot be cooked raises GraphError and the old graph keeps
        rendering, with the reason in `engine_errors`. Returns the new history's version.
        """
        try:
            plan = build_plan(graph)
        except GraphError as exc:
            self._note(PRESET_SWITCH, f"kept the running graph: {exc}")
            raise
        self._note(PRESET_SWITCH, "")
        self.graph = graph
        self.history = History(graph)
        self.scheduler = Scheduler(graph, plan)
        self._track_nodes()
        return self.history.version

    # --- the frame -------------------------------------------------------------------
    def _note(self, source: str, message: str) -> None:
        """List (or, with "", clear) the failure of one source in `engine_errors`, logging each new one."""
        if not message:
            self.engine_errors.pop(source, None)
            return
        if self.engine_errors.get(source) != message:
            log.warning("%s: %s", source, message)
        self.engine_errors[source] = message

    def _contained(self, source: str, work: Callable[..., Any], *args: Any) -> Any:
        """Run one phase of a frame; a failure is listed under `source` (until it succeeds again), never raised."""
        try:
            result = work(*args)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - the frame loop outlives whatever a phase does
            self._note(source, one_line(exc))
            return None
        self._note(source, "")
        return result

    def _run_hooks(self) -> str:
        """Run every frame hook, each even when another fails; the failures as one line ("" for none)."""
        failures = []
        for hook in list(self.frame_hooks):
            try:
                hook(self)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - a broken hook must not stop the show
                failures.append(f"{_hook_name(hook)}: {one_line(exc)}")
        return "; ".join(failures)

    def step(self) -> Snapshot:
        """Make one frame on the calling thread; it never raises (failures are in `engine_errors`)."""
        start = time.perf_counter()
        self._contained(COMMANDS, self._drain_queue)
        self._track_nodes()  # nodes a frame hook or a direct edit moved since the last frame
        self._note(HOOKS, self._run_hooks())
        self._contained(CLOCK, self.clock.tick)
        published: dict[str, Any] = {}
        report = self._contained(COOK, self._cook, published)
        if report is not None:
            self.last_report = report
        self._note(PLAN, self.scheduler.plan_error)
        self._contained(PUBLISH, self._publish, start, published)
        return self.snapshot

    def _cook(self, published: dict[str, Any]) -> FrameReport:
        ctx = CookContext(self.clock.time, self.clock.dt, self.clock.frame, self.device,
                          self.target_fps, self.services, fixed_step=self.clock.fixed_fps is not None)
        ctx.services = {**self.services, "publish": published}
        return self.scheduler.run_frame(ctx)

    def _publish(self, start: float, published: dict[str, Any]) -> None:
        now = time.perf_counter()
        frame_ms = (now - start) * 1000.0
        if self._last_step is not None and now > self._last_step:
            rate = 1.0 / (now - self._last_step)
            self._fps_ema = rate if self._fps_ema == 0 else 0.9 * self._fps_ema + 0.1 * rate
        self._last_step = now
        nodes = {n.id: self._stat(n) for n in self.graph.nodes.values()}
        if len(self._stats) > len(nodes):  # nodes left the graph: forget their stats
            self._stats = {k: v for k, v in self._stats.items() if k in nodes}
        # a sink's last image stays up until it publishes again (never blank), but only while it exists
        names = {n.name for n in self.graph.nodes.values()}
        merged = {k: v for k, v in self.snapshot.published.items() if k in names}
        merged.update(published)
        self.snapshot = Snapshot(self.clock.frame, self.clock.time, self._fps_ema, frame_ms, nodes, merged,
                                 dict(self.engine_errors), self.history.version)

    def _stat(self, n: Node) -> NodeStat:
        """The node as readers see it; the previous stat again while nothing it shows can have changed
        (values and editor data change only through `set_value` or a cook)."""
        key = (id(n), n.name, n.param_version, n.cook_count, n.error, n.own_status, n.input_status)
        found = self._stats.get(n.id)
        if found is not None and found[0] == key:
            return found[1]
        status = n.node_status
        stat = NodeStat(n.name, n.type_name, n.cook_ms, n.error, status.message, dict(n.values), n.editor_data(),
                        status.state, status.parts, id(n))
        self._stats[n.id] = (key, stat)
        return stat

    def _loop(self) -> None:
        due = time.perf_counter()
        while not self._stop.is_set():
            try:
                self.step()
            except BaseException:  # noqa: BLE001 - step contains its phases; this is the last guard of the thread
                log.exception("frame failed")
            due = self.wait_for_next_frame(due)

    def wait_for_next_frame(self, due: float) -> float:
        """Sleep until the next frame is due, in short slices that re-read `target_fps`; returns when it was due.

        A late frame catches up by at most half a frame, so a stall is not followed by a burst.
        """
        while not self._stop.is_set():
            period = 1.0 / self.target_fps if self.target_fps else 0.0
            now = time.perf_counter()
            next_due = max(due + period, now - period / 2)
            if now >= next_due:
                return next_due
            self._stop.wait(min(next_due - now, WAIT_SLICE_S))
        return due

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="autolume-render", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the render thread after its current frame, then apply what is still queued."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._contained(COMMANDS, self._drain_queue)

    def close(self) -> None:
        """Stop, then close every open node (once: a second close closes nothing)."""
        self.stop()
        _close_all(self._open.values())
        self._open = {}

    @property
    def running(self) -> bool:
        return self._thread is not None




def _hook_name(hook: FrameHook) -> str:
    return getattr(hook, "__name__", None) or type(hook).__name__


def _close_all(nodes: Iterable[Node]) -> None:
    """Close each node; one that fails to close is logged and the others still close."""
    for node in list(nodes):
        try:
            node.close()
        except Exception:  # noqa: BLE001 - a node's own cleanup must not stop the others'
            log.exception("closing %r failed", node)


def _open_all(nodes: Iterable[Node]) -> None:
    """Open each node; one that fails to open shows the error on itself and the others still open."""
    for node in list(nodes):
        try:
            node.open()
        except Exception as exc:  # noqa: BLE001 - a node's own start must not stop the others'
            node.error = one_line(exc)
            log.exception("opening %r failed", node)
