"""OSCIn and OSCOut: OSC values as wires, to drive any input, and any value sent back out."""

from __future__ import annotations

from typing import Any

from autolume_graph.expr import ExpressionError, compile_mapping
from autolume_graph.node import CookContext, Node, NodeError
from autolume_graph.osc.client import OSCSender
from autolume_graph.params import Binding, Bool, Float, Input, Int, Output, String, Trigger
from autolume_graph.roles import Role
from autolume_graph.types import PortType

from .signals import ANY_NUMBER


class OSCIn(Node):
    """The latest value sent to an OSC address (through its mapping), as a wire into any input."""

    category = "osc"
    binding_params = ("address", "mapping")
    outputs = {"value": Output(PortType.FLOAT, "the mapped value last received")}
    params = {
        "address": String("/in/1", doc="OSC address to listen to"),
        "mapping": String("x", doc="expression in x applied to each value, e.g. x*2+0.5"),
        "value": Float(0.0, -1.0, 1.0, clip=False, limit=ANY_NUMBER, doc="the current value (set by OSC, or by hand)"),
    }

    def binding(self, name: str) -> Binding:
        if name == "value":
            return Binding(True, self.values["address"], self.values["mapping"] or "x")
        return super().binding(name)

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        try:
            compile_mapping(params["mapping"])
        except ExpressionError as exc:
            raise NodeError(f"mapping: {exc}") from None
        return {"value": params["value"]}


class OSCOut(Node):
    """Sends a value (when it changes, or every frame) or a trigger to an OSC address."""

    category = "osc"
    roles = frozenset({Role.SINK})
    inputs = {"value": Input(PortType.FLOAT, "the value to send")}
    params = {
        "host": String("127.0.0.1", doc="receiver's address", resets=True),
        "port": Int(9000, 1, 65535, doc="receiver's UDP port", resets=True),
        "address": String("/autolume/out", doc="OSC address to send to"),
        "every_frame": Bool(False, doc="send every frame, not only when the value changes"),
        "send": Trigger(doc="send the current value now"),
    }

    def reset(self) -> None:
        self.close()  # a new host or port: the next send opens a new socket
        self._last: float | None = None

    def animating(self, params: dict[str, Any]) -> bool:
        return bool(params["every_frame"])

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        value = inputs.get("value")
        value = 1.0 if value is None else float(value)
        if value != self._last or params["every_frame"] or params["send"]:
            if self._sender is None:
                self._sender = OSCSender(params["host"], params["port"])
            self.status = "" if self._sender.send(params["address"], value) else "send failed (see log)"
            self._last = value
        return {}

    def close(self) -> None:
        sender, self._sender = getattr(self, "_sender", None), None
        if sender is not None:
            sender.close()
