"""The node base class: a node declares its ports and parameters once and keeps its own state.

Subclasses set `inputs`, `outputs` and `params` as class attributes and implement `cook`.
Everything else (editor widgets, OSC addresses, saving, docs) is derived from those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property
from typing import Any, ClassVar

from autolume_graph.params import Binding, Input, MidiBinding, Output, Param, ParamType
from autolume_graph.roles import Role


@dataclass
class CookContext:
    """What a node may know about the frame being made: the runtime clock and the device.

    `fixed_step`: the clock advances by exactly 1 / fps a frame (an offline render), so a node that follows
    time (audio, tempo) renders the same every time; live, time is the wall clock."""

    time: float = 0.0
    dt: float = 0.0
    frame: int = 0
    device: str = "cpu"
    fps: float = 30.0
    services: dict[str, Any] = field(default_factory=dict)
    fixed_step: bool = False


class NodeError(RuntimeError):
    """A failure a node reports to the user; the message is shown on the node as one line."""


class NodeState(IntEnum):
    """What a node is doing, for the editor and the scheduler; a higher state outranks a lower one."""

    OK = 0
    INFO = 1
    LOADING = 2
    WAITING = 3
    ERROR = 4


@dataclass(frozen=True)
class NodeStatus:
    """A node's state and the parts of its status line, so no reader parses text."""

    state: NodeState = NodeState.OK
    parts: tuple[str, ...] = ()

    @classmethod
    def of(cls, *parts: str, state: NodeState = NodeState.INFO) -> NodeStatus:
        """`state` with the non-empty parts; OK when there are none."""
        kept = tuple(p for p in parts if p)
        return cls(state if kept else NodeState.OK, kept)

    @cached_property
    def message(self) -> str:
        """The parts as one line."""
        return " | ".join(self.parts)

    def joined(self, other: NodeStatus) -> NodeStatus:
        """Both statuses on one line, in the higher of the two states."""
        if not other.parts:
            return self
        return NodeStatus(max(self.state, other.state), self.parts + other.parts)


_PLAIN = (bool, int, float, complex, str, bytes, type(None))


def same_value(old: Any, new: Any) -> bool:
    """Whether `new` is no change from `old`: the same object, an equal plain value, or a tuple of such."""
    if old is new:
        return True
    if type(old) is not type(new):
        return False
    if isinstance(new, _PLAIN):
        return bool(old == new)
    if isinstance(new, tuple):
        return len(old) == len(new) and all(map(same_value, old, new))
    return False


class Node:
    """Base class of every node type."""

    type_name: ClassVar[str] = ""
    type_version: ClassVar[int] = 1
    category: ClassVar[str] = "misc"
    inputs: ClassVar[dict[str, Input]] = {}
    outputs: ClassVar[dict[str, Output]] = {}
    params: ClassVar[dict[str, Param]] = {}
    roles: ClassVar[frozenset[str]] = frozenset()  # see autolume_graph/roles.py
    sink: ClassVar[bool] = False  # derived from roles: Role.SINK; a class setting sink = True gets the role
    time_dependent: ClassVar[bool] = False
    binding_params: ClassVar[tuple[str, ...]] = ()  # parameters whose values change `binding()` (OSCIn)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type_name" not in cls.__dict__:
            cls.type_name = cls.__name__
        if cls.__dict__.get("sink"):
            cls.roles = cls.roles | {Role.SINK}
        cls.sink = Role.SINK in cls.roles
        clash = set(cls.inputs) & set(cls.params)
        if clash:
            raise TypeError(f"{cls.__name__}: names used both as input and parameter: {sorted(clash)}")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.values: dict[str, Any] = {k: p.default for k, p in self.params.items()}
        self.bindings: dict[str, Binding] = {}
        self.midi_bindings: dict[str, MidiBinding] = {}  # autolume_graph/midi/control.py applies them
        self.ui: dict[str, Any] = {}
        self.param_version = 0
        self.write_counts: dict[str, int] = {}  # per parameter, the writes through `set_value` that counted
        self.output_version = 0
        self.last_outputs: dict[str, Any] = {}
        self.error = ""
        self.own_status = NodeStatus()  # what the node says about itself (set through `status`)
        self.input_status = NodeStatus()  # what the engine says about its wired inputs (waiting, refused)
        self._cache_key: Any = None
        self._cached: dict[str, Any] = {}
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
        """Compute outputs from inputs and parameter values; raise to report an error.

        Return every output each cook: the engine compares each port with its last value (the same object,
        or an equal plain value, is no change) and tells the nodes downstream only of a real change, so a
        node keeps no bookkeeping to say "unchanged". `{}` means nothing new (a model still loading). An
        output declared `in_place` is the same object updated in place: each return of it is a change.
        Outputs rebuilt from the same inputs each cook go through `cached_outputs`.
        """
        return {}

    def open(self) -> None:
        """Start threads, sockets or windows; called by the engine when the node enters the running graph."""

    def prepare(self, device: str) -> None:
        """Called off the render thread before a graph goes live on `device`: wait for slow resources here."""

    def close(self) -> None:
        """Release threads, sockets and files; called by the engine when the node leaves the running graph
        (removed, undone, replaced by a preset, shut down), once for each `open`."""

    def editor_data(self) -> dict[str, Any]:
        """Small plain data the editor shows besides the parameters (ModelMix's mix keys), published with each
        snapshot on the render thread, because the editor never reads a node."""
        return {}

    @classmethod
    def migrate_params(cls, version: int, values: dict[str, Any]) -> dict[str, Any]:
        """Bring parameter values saved by an older `type_version` forward."""
        return values

    # --- helpers for subclasses ------------------------------------------------------
    @property
    def status(self) -> str:
        """The status line as text: the node's own parts, then the engine's notes on its inputs."""
        return self.node_status.message

    @status.setter
    def status(self, value: str | NodeStatus) -> None:
        """Set the node's own status: a NodeStatus, or text shown as INFO ("" for OK)."""
        self.own_status = value if isinstance(value, NodeStatus) else NodeStatus.of(value)

    @property
    def node_status(self) -> NodeStatus:
        """The whole status: ERROR while the node has an error, else the highest state of its parts."""
        status = self.own_status.joined(self.input_status)
        return status if not self.error else NodeStatus(NodeState.ERROR, status.parts)

    def cached_outputs(self, key: tuple, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The outputs `build` makes, built again only when `key` (compared by `same_value`) changes, so
        the engine sees the same objects, and no change, while what they depend on stays the same."""
        if self._cached and same_value(self._cache_key, key):
            return self._cached
        self._cache_key, self._cached = key, build()
        return self._cached

    # --- engine-facing helpers -----------------------------------------------------
    def set_value(self, name: str, value: Any) -> bool:
        """Coerce and store a parameter value; returns whether it changed (and bumps the version).

        The same value again is no change, except for an `every_write` parameter; `write_counts` counts
        the writes that were changes, so a node can tell a parameter was set again."""
        param = self.params[name]
        value = param.coerce(value)
        old = self.values.get(name)
        if param.type is not ParamType.DATA and old == value and type(old) is type(value) and not param.every_write:
            return False
        self.values[name] = value
        self.param_version += 1
        self.write_counts[name] = self.write_counts.get(name, 0) + 1
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
