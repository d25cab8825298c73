"""The node base class: a node declares its ports and parameters once and keeps its own state.

Subclasses set `inputs`, `outputs` and `params` as class attributes and implement `cook`.
Everything else (editor widgets, OSC addresses, saving, docs) is derived from those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from autolume_graph.params import Binding, Input, Output, Param, ParamType


@dataclass
class CookContext:
    """What a node may know about the frame being made: the runtime clock and the device."""

    time: float = 0.0
    dt: float = 0.0
    frame: int = 0
    device: str = "cpu"
    fps: float = 30.0
    services: dict[str, Any] = field(default_factory=dict)


class NodeError(RuntimeError):
    """A failure a node reports to the user; the message is shown on the node as one line."""


class Node:
    """Base class of every node type."""

    type_name: ClassVar[str] = ""
    type_version: ClassVar[int] = 1
    category: ClassVar[str] = "misc"
    inputs: ClassVar[dict[str, Input]] = {}
    outputs: ClassVar[dict[str, Output]] = {}
    params: ClassVar[dict[str, Param]] = {}
    sink: ClassVar[bool] = False
    time_dependent: ClassVar[bool] = False
    binding_params: ClassVar[tuple[str, ...]] = ()  # parameters whose values change `binding()` (OSCIn)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type_name" not in cls.__dict__:
            cls.type_name = cls.__name__
        clash = set(cls.inputs) & set(cls.params)
        if clash:
            raise TypeError(f"{cls.__name__}: names used both as input and parameter: {sorted(clash)}")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.values: dict[str, Any] = {k: p.default for k, p in self.params.items()}
        self.bindings: dict[str, Binding] = {}
        self.ui: dict[str, Any] = {}
        self.param_version = 0
        self.output_version = 0
        self.last_outputs: dict[str, Any] = {}
        self.error = ""
        self.status = ""
        self.cook_ms = 0.0
        self.cook_count = 0
        self.reset()

    # --- what subclasses implement -------------------------------------------------
    def reset(self) -> None:
        """Forget state kept across frames; called on creation and when a `resets` parameter changes."""

    def animating(self, params: dict[str, Any]) -> bool:
        """Whether this node must cook this frame even with no change (animation, pending work)."""
        return self.time_dependent

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Compute outputs from inputs and parameter values; raise to report an error."""
        return {}

    def prepare(self, device: str) -> None:
        """Called off the render thread before a graph goes live on `device`: wait for slow resources here."""

    def close(self) -> None:
        """Release threads, sockets and files; called when the node leaves the running graph."""

    @classmethod
    def migrate_params(cls, version: int, values: dict[str, Any]) -> dict[str, Any]:
        """Bring parameter values saved by an older `type_version` forward."""
        return values

    # --- engine-facing helpers -----------------------------------------------------
    def set_value(self, name: str, value: Any) -> bool:
        """Coerce and store a parameter value; returns whether it changed (and bumps the version)."""
        param = self.params[name]
        value = param.coerce(value)
        old = self.values.get(name)
        if param.type is not ParamType.DATA and old == value and type(old) is type(value):
            return False
        self.values[name] = value
        self.param_version += 1
        if param.resets:
            self.reset()
        return True

    def binding(self, name: str) -> Binding:
        """The OSC binding of a parameter: by default at `/<node name>/<param>` with mapping `x`, enabled
        unless the parameter names a file or writes one (those only when the user binds them)."""
        found = self.bindings.get(name)
        if found is not None:
            return found
        return Binding(self.params[name].bound_by_default, f"/{self.name}/{name}", "x")

    def __repr__(self) -> str:
        return f"<{self.type_name} {self.name or self.id}>"


class PlaceholderNode(Node):
    """Stands in for a node type this installation lacks, keeping its data through load and save."""

    type_name = "Placeholder"

    def __init__(self, missing_type: str = "", type_version: int = 1, raw_values: dict | None = None) -> None:
        super().__init__()
        self.missing_type = missing_type
        self.missing_version = type_version
        self.raw_values = dict(raw_values or {})
        self.error = f"unknown node type {missing_type!r}"
