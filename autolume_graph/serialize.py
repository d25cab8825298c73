"""Graph files: msgpack, values keyed by name, arrays as an ext type, never pickle.

Layout (schema 2): {format, schema, nodes: {id: {type, type_version, name, params, bindings[, midi_bindings]}},
edges: [{src, src_port, dst, dst_port}], settings, ui: {id: {...}}}. `midi_bindings` (written only where a node
has one; older files have none) maps a parameter to {port, channel, kind, number, mapping}.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from autolume_graph.atomic import write_atomic
from autolume_graph.expr import ExpressionError, compile_mapping
from autolume_graph.file_reads import FileRefused, read_regular
from autolume_graph.graph import Edge, Graph
from autolume_graph.msgpack_budget import DecodeBudgetError, decoded_size
from autolume_graph.node import Node, PlaceholderNode
from autolume_graph.params import Binding, MidiBinding, Param, ParamError, ParamType, midi_bindable
from autolume_graph.registry import Registry, default_registry
from autolume_graph.scheduler import build_plan

log = logging.getLogger(__name__)

FORMAT = "autolume-graph"
SCHEMA = 2
EXT_ARRAY = 1
# The memory decoding may take (see msgpack_budget): 8 bytes per byte of the file, plus 16 MiB so that small
# files of many small values always load (the default graph's names and numbers count 20 bytes per byte).
DECODED_BYTES_PER_FILE_BYTE = 8
DECODED_BYTES_BASE = 16 * 1024 * 1024
MAX_ARRAY_DIMS = 8  # latents are at most 3-d; each dimension costs an array 16 bytes (see msgpack_budget)
# Far beyond any show, and small enough that checking every edge for cycles stays within seconds.
MAX_NODES = 1000
MAX_EDGES = 2000
# The settings a session reads, with their types: a value of another type is dropped, not trusted.
SETTING_TYPES: dict[str, type] = {"osc_host": str, "osc_port": int, "osc_allow": str}


class GraphFileError(ValueError):
    """A graph file that cannot be loaded; one line naming the file and the reason."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))  # a reason quoted from a library stays on one line


def _encode(obj: Any) -> Any:
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # a torch tensor, without importing torch
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("object arrays cannot be saved")
        arr = np.ascontiguousarray(obj)
        return msgpack.ExtType(EXT_ARRAY, msgpack.packb([arr.dtype.str, list(arr.shape), arr.tobytes()]))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    raise TypeError(f"cannot save a {type(obj).__name__}")


def _decode_ext(code: int, data: bytes) -> Any:
    if code != EXT_ARRAY:
        raise ValueError(f"unknown extension type {code}")
    dtype_str, shape, raw = _unpack_bounded(data)
    dtype = np.dtype(dtype_str)
    if dtype.hasobject or dtype.kind not in "biufc":
        raise ValueError(f"array dtype {dtype_str!r} is not allowed")
    if not isinstance(shape, list) or len(shape) > MAX_ARRAY_DIMS or not all(
            type(n) is int and n >= 0 for n in shape):
        raise ValueError("array shape must be a short list of sizes")
    count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise ValueError("array data does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def pack(data: dict[str, Any]) -> bytes:
    return msgpack.packb(data, default=_encode, use_bin_type=True)


def _unpack_bounded(data: bytes, **options: Any) -> Any:
    """Decode msgpack once its decoded size is known to fit the budget (DecodeBudgetError otherwise)."""
    decoded_size(data, DECODED_BYTES_PER_FILE_BYTE * len(data) + DECODED_BYTES_BASE)
    return msgpack.unpackb(data, **options)


def unpack(raw: bytes) -> Any:
    return _unpack_bounded(raw, ext_hook=_decode_ext, raw=False, strict_map_key=False)


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    ui: dict[str, Any] = {}
    for node in graph.nodes.values():
        if isinstance(node, PlaceholderNode):
            entry = {"type": node.missing_type, "type_version": node.missing_version, "params": node.raw_values}
        else:
            entry = {"type": node.type_name, "type_version": node.type_version, "params": dict(node.values)}
        entry["name"] = node.name
        entry["bindings"] = {k: b.to_dict() for k, b in node.bindings.items()}
        if node.midi_bindings:
            entry["midi_bindings"] = {k: b.to_dict() for k, b in node.midi_bindings.items()}
        nodes[node.id] = entry
        if node.ui:
            ui[node.id] = dict(node.ui)
    edges = [{"src": e.src, "src_port": e.src_port, "dst": e.dst, "dst_port": e.dst_port} for e in graph.edges]
    return {"format": FORMAT, "schema": SCHEMA, "nodes": nodes, "edges": edges,
            "settings": dict(graph.settings), "ui": ui}


def _migrate_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 kept nodes in a list, links as 4-tuples and positions under `layout`."""
    nodes = {n["id"]: {"type": n["type"], "type_version": 1, "name": n.get("name", ""),
                       "params": n.get("params", {}), "bindings": {}} for n in data.get("nodes", [])}
    edges = [dict(zip(("src", "src_port", "dst", "dst_port"), link, strict=True)) for link in data.get("links", [])]
    ui = {k: {"pos": list(v)} for k, v in (data.get("layout") or {}).items()}
    return {"format": FORMAT, "schema": 2, "nodes": nodes, "edges": edges, "settings": {}, "ui": ui}


MIGRATIONS = {1: _migrate_v1}


def _loads_as_default(param: Param) -> bool:
    """A trigger, or a switch declared to write files: loading a graph must never fire one."""
    return param.type is ParamType.TRIGGER or (param.writes and param.type is ParamType.BOOL)


def _build_node(entry: dict[str, Any], registry: Registry) -> Node:
    type_name = str(entry.get("type", ""))
    version = int(entry.get("type_version", 1))
    params = entry.get("params") or {}
    if type_name not in registry.types:
        return PlaceholderNode(type_name, version, params)
    cls = registry.types[type_name]
    node = cls()
    if version < cls.type_version:
        params = cls.migrate_params(version, dict(params))
    for name, value in params.items():
        if name not in node.params:
            log.warning("%s: dropping unknown parameter %r", type_name, name)
            continue
        if _loads_as_default(node.params[name]):
            continue
        try:
            node.values[name] = node.params[name].coerce(value)
        except ParamError as exc:
            log.warning("%s.%s: keeping the default (%s)", type_name, name, exc)
    node.reset()
    for name, b in (entry.get("bindings") or {}).items():
        if name in node.params and isinstance(b, dict):
            binding = Binding.from_dict(b)
            problem = binding.problem()
            if problem is not None:
                log.warning("%s.%s: dropping the OSC binding (%s)", type_name, name, problem)
                continue
            node.bindings[name] = binding
    node.midi_bindings.update(_midi_bindings(node, type_name, entry.get("midi_bindings")))
    return node


def _midi_bindings(node: Node, type_name: str, raw: Any) -> dict[str, MidiBinding]:
    """The file's MIDI bindings of `node` that can listen; a bad one is dropped with a warning."""
    kept = {}
    for name, data in (raw if isinstance(raw, dict) else {}).items():
        try:
            if name not in node.params or not midi_bindable(node.params[name]) or not isinstance(data, dict):
                raise ParamError("not a parameter MIDI can drive")
            binding = MidiBinding.from_dict(data)
            problem = binding.problem() or _mapping_problem(binding.mapping)
            if problem is not None:
                raise ParamError(problem)
        except ParamError as exc:
            log.warning("%s.%s: dropping the MIDI binding (%s)", type_name, name, exc)
            continue
        kept[name] = binding
    return kept


def _mapping_problem(text: str) -> str | None:
    try:
        compile_mapping(text)
    except ExpressionError as exc:
        return f"mapping {text!r}: {exc}"
    return None


def _settings(raw: Any) -> dict[str, Any]:
    """The file's settings, keeping only known ones of the right type (a session trusts these)."""
    settings = {}
    for key, value in dict(raw or {}).items():
        kind = SETTING_TYPES.get(key)
        if kind is None or type(value) is not kind:
            log.warning("dropping graph setting %r = %r", key, value)
            continue
        settings[key] = value
    return settings


def graph_from_dict(data: Any, registry: Registry | None = None, source: str = "graph") -> Graph:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GraphFileError(f"{source}: not an autolume-graph file")
    schema = data.get("schema")
    if not isinstance(schema, int) or schema < 1:
        raise GraphFileError(f"{source}: missing or invalid schema version")
    if schema > SCHEMA:
        raise GraphFileError(f"{source}: made by a newer autolume-graph (schema {schema}, this reads {SCHEMA})")
    while schema < SCHEMA:
        try:
            data = MIGRATIONS[schema](data)
        except Exception as exc:
            raise GraphFileError(f"{source}: cannot migrate schema {schema} ({type(exc).__name__}: {exc})") from None
        schema = data["schema"]
    registry = registry or default_registry()
    graph = Graph()
    try:
        if len(data["nodes"]) > MAX_NODES or len(data["edges"]) > MAX_EDGES:
            raise ValueError(f"more than {MAX_NODES} nodes or {MAX_EDGES} edges")
        for node_id, entry in data["nodes"].items():
            node = _build_node(entry, registry)
            graph.add_node(node, str(node_id), entry.get("name") or None)
            node.ui = dict((data.get("ui") or {}).get(node_id) or {})
        for e in data["edges"]:
            edge = Edge(str(e["src"]), str(e["src_port"]), str(e["dst"]), str(e["dst_port"]))
            graph.add_edge(edge)
        build_plan(graph)  # a graph that cannot be cooked is refused here, never on the render thread
        graph.settings = _settings(data.get("settings"))
    except Exception as exc:
        raise GraphFileError(f"{source}: invalid graph ({type(exc).__name__}: {exc})") from None
    return graph


def save_graph(graph: Graph, path: str | Path) -> None:
    """Save atomically: a crash mid-save leaves the previous file."""
    write_atomic(path, pack(graph_to_dict(graph)))


def read_graph_data(path: str | Path) -> dict[str, Any]:
    """A graph file's data: read as a regular file of bounded size (never a FIFO or device), then decoded."""
    path = Path(path)
    try:
        raw = read_regular(path, "graph")
    except FileRefused as exc:
        raise GraphFileError(str(exc)) from None
    try:
        return unpack(raw)
    except DecodeBudgetError as exc:
        raise GraphFileError(f"{path}: not a readable graph file ({exc})") from None
    except Exception as exc:
        reason = "truncated file" if "incomplete" in str(exc).lower() else f"{type(exc).__name__}: {exc}"
        raise GraphFileError(f"{path}: not a readable graph file ({reason})") from None


def load_graph(path: str | Path, registry: Registry | None = None) -> Graph:
    """Read a graph file; any problem is a GraphFileError with one line."""
    return graph_from_dict(read_graph_data(path), registry, str(path))
