"""Applies OSC to the graph once per frame: bound parameters and the system addresses under /autolume/.

Also records what arrived for the editor's OSC monitor, and learns: `learn(node_id, param)` binds that
parameter to the next address that arrives (an undoable SetBinding), as TouchDesigner's and
Resolume's learn do.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from autolume_graph.commands import SetBinding
from autolume_graph.expr import ExpressionError, Mapping, compile_mapping
from autolume_graph.graph import GraphError
from autolume_graph.node import Node
from autolume_graph.osc.mailbox import Mailbox
from autolume_graph.osc.monitor import OSCMonitor
from autolume_graph.osc.oscquery import ParamInfo
from autolume_graph.params import Binding, ParamError, ParamType

SystemHandler = Callable[[tuple], None]

MONITORED_PER_FRAME = 64  # the monitor shows that many: a flood of distinct addresses costs no more
MAPPING_CACHE = 256
"""Compiled mappings kept (least recently used dropped): endless distinct mapping texts cost no memory."""


class OSCControl:
    """The render thread's side of OSC: drain the mailbox, map, coerce and set parameters."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self.system: dict[str, SystemHandler] = {}
        self.latencies: deque[float] = deque(maxlen=100_000)
        self._table: dict[str, list[tuple[Node, str, Mapping]]] = {}
        self._table_key: tuple[int, int] | None = None
        self._mappings: OrderedDict[str, Mapping] = OrderedDict()
        self.monitor = OSCMonitor()
        self.learning: tuple[str, str] | None = None  # (node id, parameter) waiting for an address
        self.learned: tuple[str, str, str] | None = None  # (node name, parameter, address) of the last learn

    def learn(self, node_id: str, param: str | None) -> None:
        """Bind `param` of `node_id` to the next address that arrives (None: stop waiting). Render thread."""
        self.learning = (node_id, param) if param is not None else None

    def _mapping(self, text: str) -> Mapping:
        found = self._mappings.get(text)
        if found is None:
            found = self._mappings[text] = compile_mapping(text)
            if len(self._mappings) > MAPPING_CACHE:
                self._mappings.popitem(last=False)
        else:
            self._mappings.move_to_end(text)
        return found

    @property
    def cached_mappings(self) -> int:
        """How many compiled mappings are kept (at most MAPPING_CACHE)."""
        return len(self._mappings)

    def table(self, graph: Any) -> dict[str, list[tuple[Node, str, Mapping]]]:
        """Address -> bound (node, parameter, mapping); rebuilt only when the graph's structure changes."""
        key = (id(graph), graph.structure_version,
               tuple((n.id, n.values[p]) for n in graph.nodes.values() for p in n.binding_params))
        if key != self._table_key:
            table: dict[str, list[tuple[Node, str, Mapping]]] = {}
            for node in graph.nodes.values():
                for name, param in node.params.items():
                    binding = node.binding(name)
                    if not (param.osc_addressable and binding.enabled):
                        continue
                    try:
                        mapping = self._mapping(binding.mapping)
                    except ExpressionError as exc:
                        self.mailbox.warn("bad-mapping", f"{node.name}.{name}: {exc}")
                        continue
                    table.setdefault(binding.address, []).append((node, name, mapping))
            self._table, self._table_key = table, key
        return self._table

    def __call__(self, runtime: Any) -> None:
        """Frame hook: the latest message of each address, applied before the frame cooks."""
        inbox = self.mailbox.drain()
        if not inbox:
            return
        arrivals = self.mailbox.arrivals
        now = time.perf_counter()
        table = self.table(runtime.graph)
        for index, (address, (args, t_received)) in enumerate(inbox.items()):
            monitored = index < MONITORED_PER_FRAME
            handler = self.system.get(address)
            if handler is not None:
                try:
                    handler(args)
                except Exception as exc:  # noqa: BLE001 - nothing a message carries may end the frame
                    self.mailbox.warn("bad-system-message", f"{address}: {type(exc).__name__}: {exc}")
                if monitored:
                    self.monitor.record(address, args, arrivals.get(address, 1), (), True)
                continue
            if self.learning is not None:
                self._learn_from(runtime, address)
                table = self.table(runtime.graph)  # the learned binding listens from this message on
            targets = table.get(address)
            if monitored:
                self.monitor.record(address, args, arrivals.get(address, 1),
                                    tuple(f"{node.name}.{name}" for node, name, _ in targets or ()), False)
            if not targets:
                self.mailbox.warn("unknown-address", address)
                continue
            for node, name, mapping in targets:
                self._apply(node, name, mapping, args)
            self.latencies.append(now - t_received)
        self.monitor.publish()

    def _learn_from(self, runtime: Any, address: str) -> None:
        node_id, param = self.learning
        self.learning = None
        try:
            node = runtime.graph.node(node_id)
            runtime.history.do(SetBinding(node_id, param, Binding(True, address, node.binding(param).mapping)))
        except (GraphError, KeyError) as exc:
            self.mailbox.warn("learn", f"{address}: {exc}")
            return
        self.learned = (node.name, param, address)

    def _apply(self, node: Node, name: str, mapping: Mapping, args: tuple) -> None:
        param = node.params[name]
        try:
            if param.type.osc_text and args and isinstance(args[0], str):
                value: Any = args[0]
            elif param.type is ParamType.TRIGGER and (not args or args[0] is None):
                value = True  # an OSC impulse (no argument) fires a trigger
            else:
                value = mapping.apply_args(args)
            node.set_value(name, value)
        except ExpressionError as exc:
            self.mailbox.warn("mapping-error", f"{node.name}.{name}: {exc}")
        except ParamError as exc:
            self.mailbox.warn("bad-value", f"{node.name}.{name}: {exc}")

    def describe(self, graph: Any) -> list[ParamInfo]:
        """The bound parameters as OSCQuery entries, with current values."""
        out = []
        for node in list(graph.nodes.values()):
            for name, param in node.params.items():
                binding = node.binding(name)
                if not (param.osc_addressable and binding.enabled):
                    continue
                out.append(ParamInfo(binding.address, param.type.osc_type, param.min, param.max,
                                     node.values.get(name), param.doc or name,
                                     list(param.choices) or None))
        return out
