"""Control signals: constants, LFOs and arithmetic, to wire into any numeric parameter."""

from __future__ import annotations

import math
from typing import Any

from autolume_graph.node import CookContext, Node
from autolume_graph.params import GENERIC_LIMIT, Choice, Float, Input, Output
from autolume_graph.tempo.lock import BeatFollower, beats_param
from autolume_graph.tempo.wires import TEMPO, Tempo
from autolume_graph.types import PortType

ANY_NUMBER = (-GENERIC_LIMIT, GENERIC_LIMIT)  # a plain number: any value float32 math carries with room


class Constant(Node):
    """A number you can set, bind to OSC, and wire into several parameters at once."""

    category = "signal"
    outputs = {"value": Output(PortType.FLOAT, "the value")}
    params = {"value": Float(0.0, -10.0, 10.0, clip=False, limit=ANY_NUMBER, doc="the number sent out")}

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {"value": params["value"]}


_WAVES = {
    "sine": lambda p: math.sin(2 * math.pi * p),
    "triangle": lambda p: 1 - 4 * abs(p - 0.5),
    "saw": lambda p: 2 * p - 1,
    "square": lambda p: 1.0 if p < 0.5 else -1.0,
}


class LFO(Node):
    """A low-frequency oscillator on the runtime clock, for motion that renders the same offline; with a
    tempo wired (Link, MIDI clock, Tempo) one cycle lasts `beats` beats, on the beat, instead."""

    category = "signal"
    time_dependent = True
    inputs = {"tempo": Input(TEMPO, "optional: lock the wave to this tempo, `beats` per cycle")}
    outputs = {"value": Output(PortType.FLOAT, "offset + amplitude * wave(t)")}
    params = {
        "wave": Choice("sine", tuple(_WAVES), doc="wave shape"),
        "frequency": Float(0.25, 0.0, 10.0, unit="Hz", clip=False, limit=(-1000.0, 1000.0),
                           doc="cycles per second (with no tempo wired)"),
        "amplitude": Float(1.0, 0.0, 10.0, clip=False, limit=ANY_NUMBER, doc="half the peak-to-peak swing"),
        "offset": Float(0.0, -10.0, 10.0, clip=False, limit=ANY_NUMBER, doc="centre value"),
        "phase": Float(0.0, 0.0, 1.0, unit="cycles", doc="shift of the wave"),
        "beats": beats_param(4.0, "one cycle"),
    }

    def reset(self) -> None:
        self._follower = BeatFollower()

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        tempo = inputs.get("tempo")
        if isinstance(tempo, Tempo):
            cycles = self._follower.follow(tempo) / params["beats"]
        else:
            cycles = ctx.time * params["frequency"]
        position = (cycles + params["phase"]) % 1.0
        return {"value": params["offset"] + params["amplitude"] * _WAVES[params["wave"]](position)}


_OPS = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b if b else 0.0,
    "min": min,
    "max": max,
    "power": lambda a, b: math.copysign(abs(a) ** b, a) if a or b > 0 else 0.0,
}


class Math(Node):
    """Combine two numbers; an unwired operand uses its parameter value."""

    category = "signal"
    outputs = {"value": Output(PortType.FLOAT, "a (op) b")}
    params = {
        "op": Choice("add", tuple(_OPS), doc="operation"),
        "a": Float(0.0, -10.0, 10.0, clip=False, limit=ANY_NUMBER, doc="first operand (wire a signal here)"),
        "b": Float(0.0, -10.0, 10.0, clip=False, limit=ANY_NUMBER, doc="second operand (wire a signal here)"),
    }

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {"value": float(_OPS[params["op"]](params["a"], params["b"]))}
