"""Small node types for engine tests: they count their cooks and can be told to fail."""

from __future__ import annotations

from typing import Any

from autolume_graph.node import CookContext, Node
from autolume_graph.params import Bool, Float, Input, Output, Trigger
from autolume_graph.registry import Registry
from autolume_graph.types import PortType


class Source(Node):
    outputs = {"value": Output(PortType.FLOAT)}
    params = {"value": Float(1.0, clip=False)}

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {"value": params["value"]}


class Clock(Node):
    time_dependent = True
    outputs = {"value": Output(PortType.FLOAT)}

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {"value": ctx.time}


class Add(Node):
    inputs = {"a": Input(PortType.FLOAT), "b": Input(PortType.FLOAT)}
    outputs = {"value": Output(PortType.FLOAT)}
    params = {"offset": Float(0.0, clip=False), "fail": Bool(False), "fire": Trigger()}

    def reset(self) -> None:
        self.fired = 0

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if params["fail"]:
            raise RuntimeError("told to fail")
        self.fired += params["fire"]
        return {"value": (inputs.get("a") or 0.0) + (inputs.get("b") or 0.0) + params["offset"]}


class Image(Node):
    inputs = {"image": Input(PortType.IMAGE)}


class Sink(Node):
    sink = True
    inputs = {"value": Input(PortType.FLOAT)}

    def reset(self) -> None:
        self.received: list[float] = []

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self.received.append(inputs.get("value"))
        ctx.services["publish"][self.name] = inputs.get("value")
        return {}


def registry() -> Registry:
    reg = Registry()
    for cls in (Source, Clock, Add, Image, Sink):
        reg.register(cls)
    return reg
