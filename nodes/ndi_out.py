"""NDIOut: the picture goes out as an NDI source for TouchDesigner, Resolume, OBS.

The sender comes from a process-wide pool keyed by name (`outputs.ndi_pool`), so a preset
switch to a graph whose NDIOut has the same name keeps the source alive for receivers.

A still picture is re-sent every `RESEND_SECONDS`: NDI sends nothing unless a frame is pushed,
so without it a receiver that connects while the picture is still would show nothing, and
receivers that time out an idle source would drop it. Re-sending at the full frame rate would
only spend compression and bandwidth on identical frames.
"""

from __future__ import annotations

import time
from typing import Any

from autolume_graph.failure_memo import FailureMemo
from autolume_graph.node import CookContext, Node, NodeError
from autolume_graph.outputs.errors import OutputError
from autolume_graph.outputs.latest import LatestFrame
from autolume_graph.outputs.ndi import NDISender
from autolume_graph.outputs.ndi_pool import pool
from autolume_graph.params import Bool, Input, String
from autolume_graph.roles import Role
from autolume_graph.types import PortType

RESEND_SECONDS = 0.5


class NDIOut(Node):
    """Sends the image as an NDI source; if NDI cannot load, the node shows why and the graph runs on."""

    category = "output"
    roles = frozenset({Role.SINK, Role.FRAME_SENDER})
    inputs = {"image": Input(PortType.IMAGE, "image to send")}
    params = {
        "sender_name": String("autolume-graph", doc="NDI source name receivers see (as 'HOST (name)')"),
        "enabled": Bool(True, doc="off withdraws the source"),
    }

    def reset(self) -> None:
        self._latest = LatestFrame()
        self._sender: NDISender | None = None
        self._sent_at = float("-inf")
        self._failures = FailureMemo()  # by sender name: NDI is not retried every frame

    @property
    def sender(self) -> NDISender | None:
        """The pooled sender this node holds now (None before its first cook or when disabled)."""
        return self._sender

    def animating(self, params: dict[str, Any]) -> bool:
        return bool(params["enabled"] and self._latest.frame is not None and not self._failures
                    and time.monotonic() - self._sent_at >= RESEND_SECONDS)

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        fresh = self._latest.update(inputs.get("image"))
        if not params["enabled"]:
            self.close()
            self.status = "disabled"
            return {}
        sender = self._sender_named(params["sender_name"], ctx.fps)
        if sender.error is not None:
            raise NodeError(str(sender.error))
        frame = self._latest.frame
        self.status = "" if frame is not None else "waiting for an image"
        if frame is not None and (fresh or time.monotonic() - self._sent_at >= RESEND_SECONDS):
            sender.send(frame.bgra)
            self._sent_at = time.monotonic()
        return {}

    def _sender_named(self, name: str, fps: float) -> NDISender:
        if self._sender is not None and self._sender.name != name:
            self.close()
        failure = self._failures.failure(name)
        if failure is not None:
            raise NodeError(failure)
        if self._sender is None:
            try:
                self._sender = pool.acquire(name, fps if fps > 0 else 30.0)
            except OutputError as exc:
                raise NodeError(self._failures.remember(name, str(exc))) from None
            self._failures.forget()
        return self._sender

    def close(self) -> None:
        """Hand the sender back to the pool; a later cook acquires one again (and retries a failed NDI)."""
        if self._sender is not None:
            pool.release(self._sender)
            self._sender = None
        self._sent_at = float("-inf")
        self._failures.forget()
