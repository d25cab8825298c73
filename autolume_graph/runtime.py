"""The frame loop. One render thread owns the graph; others submit edits and read snapshots."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from autolume_graph.clock import Clock
from autolume_graph.commands import Command, History, RemoveNode
from autolume_graph.graph import Graph
from autolume_graph.node import CookContext
from autolume_graph.scheduler import FrameReport, Scheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeStat:
    name: str
    type_name: str
    cook_ms: float
    error: str
    status: str


@dataclass(frozen=True)
class Snapshot:
    """What the render thread publishes after each frame; readers never touch the live graph."""

    frame: int = -1
    time: float = 0.0
    fps: float = 0.0
    frame_ms: float = 0.0
    nodes: dict[str, NodeStat] = field(default_factory=dict)
    published: dict[str, Any] = field(default_factory=dict)


def resolve_device(device: str) -> str:
    """`auto` is CUDA when present, else the CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


FrameHook = Callable[["Runtime"], None]


class Runtime:
    """Runs the graph: applies queued edits at frame boundaries, cooks, publishes a snapshot."""

    def __init__(self, graph: Graph, fps: float = 30.0, fixed_step: bool = False, device: str = "cpu",
                 services: dict[str, Any] | None = None) -> None:
        self.graph = graph
        self.history = History(graph)
        self.scheduler = Scheduler(graph)
        self.target_fps = fps
        self.clock = Clock(fps if fixed_step else None)
        self.device = resolve_device(device)
        self.services: dict[str, Any] = dict(services or {})
        self.frame_hooks: list[FrameHook] = []
        self.snapshot = Snapshot()
        self.last_report = FrameReport()
        self._queue: queue.SimpleQueue[tuple[Any, Future]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._fps_ema = 0.0
        self._last_step: float | None = None

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
        if isinstance(work, Command):
            self.history.do(work)
            if isinstance(work, RemoveNode) and work._node is not None:
                work._node.close()
            return None
        return work(self)

    def _drain_queue(self) -> None:
        while True:
            try:
                work, future = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                result = self._apply(work)
            except Exception as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def swap_graph(self, graph: Graph) -> None:
        """Replace the running graph (a preset switch) between two frames; the old one's nodes close."""
        old = self.graph
        self.graph = graph
        self.history = History(graph)
        self.scheduler = Scheduler(graph)
        for node in old.nodes.values():
            node.close()

    # --- the frame -------------------------------------------------------------------
    def step(self) -> Snapshot:
        """Make one frame on the calling thread."""
        start = time.perf_counter()
        self._drain_queue()
        for hook in list(self.frame_hooks):
            try:
                hook(self)
            except Exception:  # a broken hook must not stop the show
                log.exception("frame hook failed")
        self.clock.tick()
        ctx = CookContext(self.clock.time, self.clock.dt, self.clock.frame, self.device,
                          self.target_fps, self.services)
        published: dict[str, Any] = {}
        ctx.services = {**self.services, "publish": published}
        self.last_report = self.scheduler.run_frame(ctx)
        now = time.perf_counter()
        frame_ms = (now - start) * 1000.0
        if self._last_step is not None and now > self._last_step:
            rate = 1.0 / (now - self._last_step)
            self._fps_ema = rate if self._fps_ema == 0 else 0.9 * self._fps_ema + 0.1 * rate
        self._last_step = now
        nodes = {
            n.id: NodeStat(n.name, n.type_name, n.cook_ms, n.error, n.status) for n in self.graph.nodes.values()
        }
        # a sink's last image stays up until it publishes again (never blank), but only while it exists
        names = {n.name for n in self.graph.nodes.values()}
        merged = {k: v for k, v in self.snapshot.published.items() if k in names}
        merged.update(published)
        self.snapshot = Snapshot(self.clock.frame, self.clock.time, self._fps_ema, frame_ms, nodes, merged)
        return self.snapshot

    def _loop(self) -> None:
        next_deadline = time.perf_counter()
        while not self._stop.is_set():
            self.step()
            now = time.perf_counter()
            if self.target_fps > 0:
                next_deadline = max(next_deadline + 1.0 / self.target_fps, now - 0.5 / self.target_fps)
                delay = next_deadline - time.perf_counter()
                if delay > 0:
                    self._stop.wait(delay)

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
        self._drain_queue()

    def close(self) -> None:
        self.stop()
        for node in self.graph.nodes.values():
            node.close()

    @property
    def running(self) -> bool:
        return self._thread is not None
