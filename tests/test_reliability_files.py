"""Promise 2: hostile files run nothing, fail with one line, and do not blow up memory.

Network pickles are written opcode by opcode (no Python object is pickled to make them), graph
files as raw msgpack, vector files as real object-dtype .npy with a payload that would create a
marker file. Everything is loaded in one child process, which also reports its peak RSS growth.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np
import torch

from autolume_graph.serialize import MAX_NODES, SCHEMA

MAX_RSS_GROWTH_KB = 160_000


# --- pickle opcodes ----------------------------------------------------------------------------
def _str(text: str) -> bytes:
    """SHORT_BINUNICODE (or BINUNICODE for long text)."""
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data if len(data) < 256 else b"X" + struct.pack("<I", len(data)) + data


def _global(module: str, name: str) -> bytes:
    """STACK_GLOBAL from two pushed strings: what protocol 4 writes."""
    return _str(module) + _str(name) + b"\x93"


def _call1(func: bytes, arg: bytes) -> bytes:
    return func + arg + b"\x85R"  # TUPLE1, REDUCE


P4, STOP = b"\x80\x04", b"."


def _persistent(state_items: bytes) -> bytes:
    """torch_utils.persistence._reconstruct_persistent_obj({"type": "class", "state": {...}})."""
    meta = b"}(" + _str("type") + _str("class") + _str("state") + b"}(" + state_items + b"uu"
    return _call1(_global("torch_utils.persistence", "_reconstruct_persistent_obj"), meta)


def _storage_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save(torch.zeros(4).untyped_storage(), buf, _use_new_zipfile_serialization=False)  # as pickles hold it
    data = buf.getvalue()
    return b"\x8e" + struct.pack("<Q", len(data)) + data  # BINBYTES8


def hostile_pickles(marker: Path) -> dict[str, bytes]:
    touch = f"touch {marker}"
    return {
        "reduce_os_system": P4 + _call1(_global("os", "system"), _str(touch)) + STOP,
        "reduce_posix_system": P4 + _call1(_global("posix", "system"), _str(touch)) + STOP,
        "builtins_eval": P4 + _call1(_global("builtins", "eval"), _str(f"__import__('os').system({touch!r})")) + STOP,
        "builtins_exec": P4 + _call1(_global("builtins", "exec"), _str(f"import os; os.system({touch!r})")) + STOP,
        "subprocess_popen": P4 + _call1(_global("subprocess", "Popen"), _str(touch)) + b"\x85R" + STOP,
        "importlib_import_module": P4 + _call1(_global("importlib", "import_module"), _str("os")) + STOP,
        "protocol0_global": b"cos\nsystem\n(S'" + touch.encode() + b"'\ntR.",
        "inst_opcode": b"(S'" + touch.encode() + b"'\nios\nsystem\n.",
        "obj_opcode": P4 + b"(" + _global("os", "system") + _str(touch) + b"o" + STOP,
        "stack_global_from_memo": P4 + _str("os") + b"\x94" + _str("system") + b"\x94" + b"h\x00h\x01\x93"
                                  + _str(touch) + b"\x85R" + STOP,
        "forbidden_in_container_in_persistent_state": P4 + _persistent(
            _str("_modules") + _call1(_global("collections", "OrderedDict"), b"]("
                                      + b"(" + _str("x") + _call1(_global("os", "system"), _str(touch)) + b"te")
        ) + STOP,
        "huge_tensor_shape": P4 + _global("torch._utils", "_rebuild_tensor_v2") + b"("
                             + _call1(_global("torch.storage", "_load_from_bytes"), _storage_bytes())
                             + b"K\x00" + b"J\x00\xca\x9a;J\x00\xca\x9a;\x86" + b"J\x00\xca\x9a;K\x01\x86"
                             + b"\x89" + _global("collections", "OrderedDict") + b")Rt" + b"R" + STOP,
        "huge_ndarray_shape": P4 + _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray")
                              + b"\x8a\x05" + (10**11).to_bytes(5, "little") + b"\x85" + _str("f8") + b"\x87R" + STOP,
        "object_dtype": P4 + _call1(_global("numpy", "dtype"), _str("O")) + STOP,
        "deep_nesting": P4 + b"(" * 200_000 + b"l" * 200_000 + STOP,
        "gigabyte_length_prefix": P4 + b"B" + struct.pack("<I", 1 << 30) + b"abc",
        "exabyte_length_prefix": P4 + b"\x8d" + struct.pack("<Q", 1 << 60) + b"abc",
        "persistent_id": P4 + _str("x") + b"Q" + STOP,
    }


# --- graph files -------------------------------------------------------------------------------
def _graph(nodes, edges=(), **extra) -> bytes:
    return msgpack.packb({"format": "autolume-graph", "schema": SCHEMA, "nodes": nodes, "edges": edges, **extra})


def _array_ext(dtype, shape, raw: bytes, code: int = 1) -> msgpack.ExtType:
    return msgpack.ExtType(code, msgpack.packb([dtype, shape, raw]))


def _with_value(value) -> bytes:
    return _graph({"n1": {"type": "LFO", "name": "l", "params": {"phase": value}}})


def hostile_graphs(marker: Path) -> dict[str, bytes]:
    payload = pickle.dumps(np.array([0], dtype=object))  # an object array as npy-in-ext bytes
    return {
        "map32_declares_4g_entries": b"\xdf\xff\xff\xff\xff" + b"\xa1a\xc0" * 4,
        "array32_declares_4g_items": b"\xdd\xff\xff\xff\xff\xc0",
        "bin32_declares_1gb": b"\x81\xa6format\xc6\x40\x00\x00\x00abc",
        "ext32_declares_1gb": b"\xc9\x40\x00\x00\x00\x01abc",
        "deep_nesting": b"\x91" * 100_000 + b"\xc0",
        "ext_object_dtype": _with_value(_array_ext("|O", [1], b"\0" * 8)),
        "ext_structured_object_dtype": _with_value(_array_ext([["a", "|O"]], [1], b"\0" * 8)),
        "ext_unicode_dtype": _with_value(_array_ext("<U2", [1], b"\0" * 8)),
        "ext_pickled_payload": _with_value(_array_ext("|O", [1], payload)),
        "ext_overflowing_shape": _with_value(_array_ext("<f4", [2**32, 2**32], b"")),
        "ext_unknown_code": _with_value(_array_ext("<f4", [1], b"\0" * 4, code=7)),
        "ext_not_msgpack": _with_value(msgpack.ExtType(1, b"\xc1\xc1")),
        "nodes_is_a_list": _graph([1, 2]),
        "node_is_a_number": _graph({"n1": 5}),
        "params_is_a_list": _graph({"n1": {"type": "LFO", "params": [1]}}),
        "name_is_a_number": _graph({"n1": {"type": "LFO", "name": 12}}),
        "edges_is_a_dict": _graph({}, edges={"a": "b"}),
        "edge_is_a_string": _graph({"n1": {"type": "LFO"}}, edges=["n1"]),
        "settings_is_a_string": _graph({}, settings="abc"),
        "too_many_nodes": _graph({f"n{i}": {"type": "LFO"} for i in range(100_000)}),
        "too_many_edges": _graph({"n1": {"type": "Math"}}, edges=[{}] * (MAX_NODES * 10)),
    }


# --- vector files ------------------------------------------------------------------------------
class _Touch:
    """Pickles as `os.system("touch MARKER")`: the payload a hostile .npy would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def hostile_npy(marker: Path) -> dict[str, bytes]:
    buf = io.BytesIO()
    np.save(buf, np.array([_Touch(marker)] * 4, dtype=object), allow_pickle=True)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**11,)})
    return {"object_dtype_payload": buf.getvalue(), "huge_declared_shape": header.getvalue() + b"\0" * 64}


CHILD = r"""
import json, sys
from pathlib import Path
from autolume_graph.gan.loader import ModelFileError, load_model
from autolume_graph.gan.latent import VectorFileError, load_vector
from autolume_graph.serialize import GraphFileError, load_graph
from autolume_graph.presets import PresetFolder
load = {".pkl": load_model, ".agraph": load_graph, ".npy": lambda p: load_vector(p, 512, 8, 512)}
refusals = (ModelFileError, GraphFileError, VectorFileError)
def peak_kb():  # VmHWM: this process's own peak (ru_maxrss starts at the forking parent's on Linux)
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
before = peak_kb()
results = {}
for path in map(Path, sys.argv[1:]):
    try:
        load[path.suffix](path)
        results[path.name] = "LOADED"
    except refusals as exc:
        results[path.name] = str(exc)
graphs, failures = PresetFolder(Path(sys.argv[1]).parent).load_all()  # the preset browser's way in
results["presets loaded"] = sorted(graphs)
results["rss growth kb"] = peak_kb() - before
print(json.dumps(results))
"""


def test_hostile_files_are_refused_in_one_line_and_run_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    folder = tmp_path / "files"
    folder.mkdir()
    written = []
    for suffix, files in ((".pkl", hostile_pickles(marker)), (".agraph", hostile_graphs(marker)),
                          (".npy", hostile_npy(marker))):
        for name, data in files.items():
            path = folder / f"{name}{suffix}"
            path.write_bytes(data)
            written.append(str(path))
    out = subprocess.run([sys.executable, "-c", CHILD, *written], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert not marker.exists(), "a payload ran"
    assert sorted(os.listdir(folder)) == sorted(Path(p).name for p in written)  # nothing written beside
    for path in map(Path, written):
        message = results[path.name]
        assert message != "LOADED" and "\n" not in message and message.startswith(str(path)), (path.name, message)
    assert "forbidden global os.system" in results["reduce_os_system.pkl"]
    assert "forbidden global builtins.eval" in results["builtins_eval.pkl"]
    assert "does not fit its storage" in results["huge_tensor_shape.pkl"]
    assert "object" in results["object_dtype_payload.npy"]
    assert "bytes of memory" in results["too_many_nodes.agraph"]  # refused before decoding: see test_reliability_loop
    assert results["presets loaded"] == []
    print("peak RSS growth", results["rss growth kb"], "kB")
    assert results["rss growth kb"] < MAX_RSS_GROWTH_KB, results["rss growth kb"]


def test_wrongly_typed_settings_are_dropped_so_a_session_starts(tmp_path: Path) -> None:
    path = tmp_path / "settings.agraph"
    path.write_bytes(_graph({}, settings={"osc_port": "abc", "osc_host": 7, "preset_dir": 5, "extra": 1}))
    out = subprocess.run([sys.executable, "-m", "autolume_graph.cli", "run", str(path), "--frames", "2",
                          "--fps", "0"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
