"""Promise 5: the pickle reader cannot be turned, and checks every size before it allocates.

Hostile pickles are written opcode by opcode (the helpers of `test_reliability_files`), torch
storages in the legacy format `Storage.__reduce__` writes. Files with a network's structure are
genuine reference records with one claim changed, pickled as `torch_utils.persistence` would.
Everything is loaded in child processes; the memory figure of each file is its own: the child
forks a fresh process per file, which reports its peak RSS (VmHWM) over its RSS at the fork.

The bound: peak RSS growth while loading any file <= 3 x its size + 64 MiB (the reader's budget is
3 x size + 32 MiB; the rest is the interpreter's and torch's own slack).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from test_model_files import _reconstruct_persistent_obj, persistence_module  # noqa: F401 (a fixture)
from test_reliability_files import P4, STOP, _call1, _global, _persistent, _str

from autolume_graph.gan.safe_format import save_model
from autolume_graph.gan.safe_pickle import ModuleRecord, read_generator
from autolume_graph.gan.stylegan2 import make_settings

BOUND_FACTOR, BOUND_BASE = 3, 64 << 20
RUN_BYTES = 4 << 20  # each opcode run; the unbounded reader took 80-90x this


# --- opcode helpers ------------------------------------------------------------------------------
def _int(value: int) -> bytes:
    """LONG1: any integer."""
    data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def _tuple(values) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def _bytes(data: bytes) -> bytes:
    return b"\x8e" + struct.pack("<Q", len(data)) + data  # BINBYTES8


def _legacy_storage(data: bytes, claimed: int | None = None, count: int | None = None) -> bytes:
    """What `torch.save(float_storage, _use_new_zipfile_serialization=False)` writes, claims adjustable."""
    numel = len(data) // 4
    p2 = b"\x80\x02"
    return (p2 + _int(0x1950A86A20F9469CFC6C) + STOP + p2 + b"M\xe9\x03" + STOP
            + p2 + b"}" + _str("little_endian") + b"\x88s" + STOP
            + p2 + b"(" + _str("storage") + b"ctorch\nFloatStorage\n" + _str("0") + _str("cpu")
            + _int(numel if claimed is None else claimed) + b"NtQ" + STOP
            + p2 + b"]" + _str("0") + b"a" + STOP
            + struct.pack("<q", numel if count is None else count) + data)


def _storage(floats: int = 4, **claims) -> bytes:
    return _call1(_global("torch.storage", "_load_from_bytes"), _bytes(_legacy_storage(b"\0" * 4 * floats, **claims)))


def _tensor(storage: bytes, offset: int, size, stride) -> bytes:
    return (_global("torch._utils", "_rebuild_tensor_v2") + b"(" + storage + _int(offset) + _tuple(size)
            + _tuple(stride) + b"\x89" + _global("collections", "OrderedDict") + b")R" + b"tR")


def _dtype(code: str, state_order: str = "<", flags: int = 0) -> bytes:
    """numpy.dtype(code, False, True) and the BUILD numpy writes after it."""
    return (_global("numpy", "dtype") + _str(code) + b"\x89\x88\x87R"
            + b"(K\x03" + _str(state_order) + b"NNN" + _int(-1) + _int(-1) + _int(flags) + b"tb")


def _array(shape, raw: bytes) -> bytes:
    """numpy's _reconstruct(ndarray, (0,), b'b') and its BUILD with (1, shape, dtype, False, raw)."""
    return (_global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray") + _tuple((0,))
            + b"C\x01b\x87R" + b"(K\x01" + _tuple(shape) + _dtype("f8") + b"\x89" + _bytes(raw) + b"tb")


def _write(folder: Path, files: dict[str, bytes]) -> list[str]:
    folder.mkdir(exist_ok=True)
    paths = []
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(str(path))
    return paths


# Loads each file in a process forked for it, and prints one JSON line per file.
MEASURE = r"""
import json, os, sys
from autolume_graph.gan.loader import ModelFileError, load_model

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))

for path in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        start = status("VmRSS")
        try:
            load_model(path)
            message = "LOADED"
        except ModelFileError as exc:
            message = str(exc)
        report = {"message": message, "growth": (status("VmHWM") - start) * 1024, "size": os.path.getsize(path)}
        os.write(write, json.dumps(report).encode())
        os._exit(0)
    os.close(write)
    data = b"".join(iter(lambda: os.read(read, 65536), b""))
    os.waitpid(pid, 0)
    print(json.dumps({os.path.basename(path): json.loads(data)}))
"""


def _measure(paths: list[str]) -> dict[str, dict]:
    out = subprocess.run([sys.executable, "-c", MEASURE, *paths], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    results = {}
    for line in out.stdout.splitlines():
        results.update(json.loads(line))
    assert sorted(results) == sorted(Path(p).name for p in paths), out.stderr
    return results


def _assert_refused_within_bound(paths: list[str], results: dict[str, dict]) -> None:
    for path in paths:
        result = results[Path(path).name]
        message = result["message"]
        assert message != "LOADED" and "\n" not in message and message.startswith(path), (path, message)
        assert result["growth"] <= BOUND_FACTOR * result["size"] + BOUND_BASE, (path, result)


# --- 1. nothing a file does changes what a later load uses ---------------------------------------
def turning_pickles() -> dict[str, bytes]:
    """Each tries to change something shared through a state-setting opcode."""
    return {
        "build_sets_function_defaults": P4 + _global("torch._utils", "_rebuild_tensor_v2") + b"N}"
                                        + _str("__defaults__") + b"Ns\x86b" + STOP,
        "build_sets_class_attribute": P4 + _global("dnnlib.util", "EasyDict") + b"N}" + _str("__getattr__")
                                      + b"Ns\x86b" + STOP,
        "build_updates_class_dict": P4 + _global("collections", "OrderedDict") + b"}" + _str("injected")
                                    + b"K\x01sb" + STOP,
        "setitems_on_a_class": P4 + _global("collections", "OrderedDict") + b"(" + _str("k") + _str("v") + b"u" + STOP,
        "appends_on_a_marker": P4 + _global("numpy", "ndarray") + b"(Ne" + STOP,
        "dtype_state_sets_flags": P4 + _dtype("f4", flags=0x3F) + STOP,
        "dtype_byte_order_flip": P4 + _dtype("f4", state_order=">") + STOP,  # allowed, on a fresh copy only
        "build_on_a_tensor": P4 + _tensor(_storage(4), 0, (4,), (1,)) + b"(" + _storage(4) + _int(0)
                             + _tuple((10**6,)) + _tuple((0,)) + b"tb" + STOP,
        "setitem_on_a_record": P4 + _persistent(b"") + _str("k") + _str("v") + b"s" + STOP,
        "newobj_of_a_function": P4 + _global("torch._utils", "_rebuild_tensor_v2") + b")\x81" + STOP,
        "ext_opcode": P4 + b"\x82\x01" + STOP,
    }


TURN_CHILD = r"""
import collections, json, sys
import numpy as np, torch
from autolume_graph.gan.loader import ModelFileError, load_model
from autolume_graph.gan.safe_pickle import EasyDict

def shared_state():
    f4 = np.dtype("f4")
    return repr((torch._utils._rebuild_tensor_v2.__defaults__, EasyDict.__dict__.get("__getattr__"),
                 sorted(vars(collections.OrderedDict)), f4.byteorder, f4.hasobject, f4.flags, np.float32(1).tobytes()))

def render(path):
    model = load_model(path, cache=False)  # the reader itself, after the hostile files: never a cache hit
    return model(torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(5)), psi=0.7)

references = sys.argv[1:3]
before = [render(p) for p in references]
state = shared_state()
results = {}
for path in sys.argv[3:]:
    try:
        load_model(path, cache=False)
        results[path] = "LOADED"
    except ModelFileError as exc:
        results[path] = str(exc)
after = [render(p) for p in references]
results["shared state unchanged"] = shared_state() == state
results["renders identical"] = all(torch.equal(a, b) for a, b in zip(before, after))
print(json.dumps(results))
"""


def test_no_pickle_can_change_what_a_later_load_uses(tmp_path: Path, reference_dir: Path) -> None:
    paths = _write(tmp_path / "turn", {f"{name}.pkl": data for name, data in turning_pickles().items()})
    references = [str(reference_dir / "sg2_64_tiny.pkl"), str(reference_dir / "sg3t_64_tiny.pkl")]
    out = subprocess.run([sys.executable, "-c", TURN_CHILD, *references, *paths], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    for path in paths:
        message = results[path]
        assert message != "LOADED" and "\n" not in message and message.startswith(path), (path, message)
    named = {Path(p).stem: results[p] for p in paths}
    assert "BUILD on the global torch tensor is not allowed" in named["build_sets_function_defaults"]
    assert "cannot add items to the global OrderedDict" in named["setitems_on_a_class"]
    assert "numpy dtype state other than a byte order" in named["dtype_state_sets_flags"]
    assert "holds a Float32DType, not a generator" in named["dtype_byte_order_flip"]
    assert "BUILD on a Tensor is not allowed" in named["build_on_a_tensor"]
    assert "cannot add items to a ModuleRecord" in named["setitem_on_a_record"]
    assert results["shared state unchanged"] is True
    assert results["renders identical"] is True


# --- 2. tensors and arrays: claimed sizes checked against their storage --------------------------
def sized_pickles() -> dict[str, bytes]:
    huge = 10**9
    return {
        "zero_stride_huge_shape": P4 + _tensor(_storage(4), 0, (huge, huge), (0, 0)) + STOP,
        "negative_stride": P4 + _tensor(_storage(4), 3, (4,), (-1,)) + STOP,
        "offset_past_the_end": P4 + _tensor(_storage(4), 2, (4,), (1,)) + STOP,
        "overlapping_view_of_more_elements": P4 + _tensor(_storage(2000), 0, (1000, 1000), (1, 1)) + STOP,
        "nine_dimensions": P4 + _tensor(_storage(4), 0, (1,) * 9, (1,) * 9) + STOP,
        "storage_claims_more_than_it_holds": P4 + _tensor(_storage(4, claimed=huge), 0, (4,), (1,)) + STOP,
        "storage_count_differs": P4 + _tensor(_storage(4, count=huge), 0, (4,), (1,)) + STOP,
        "array_shape_beyond_its_bytes": P4 + _array((10**6,), b"\0" * 8) + STOP,
        "array_reconstructed_huge": P4 + _global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray")
                                    + _tuple((10**11,)) + b"C\x01b\x87R" + STOP,
        "scalar_bytes_short": P4 + _global("numpy.core.multiarray", "scalar") + _dtype("f8") + b"C\x02ab\x86R" + STOP,
        # 10,000 full views of one 1 MB storage: each is charged what a network would copy from it.
        "many_views_of_one_storage": P4 + _storage(1 << 18) + b"\x94]("
                                     + (_global("torch._utils", "_rebuild_tensor_v2") + b"(h\x00" + _int(0)
                                        + _tuple((1 << 18,)) + _tuple((1,)) + b"\x89N" + b"tR") * 10_000
                                     + b"e" + STOP,
    }


def _safetensors(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def sized_safetensors() -> dict[str, bytes]:
    """Our own format: safetensors checks its header against the file before reading a tensor."""
    return {
        "tensor_past_the_file": _safetensors({"w": {"dtype": "F32", "shape": [1 << 30], "data_offsets": [0, 4 << 30]}},
                                             b"\0" * 16),
        "shape_over_its_bytes": _safetensors({"w": {"dtype": "F32", "shape": [1 << 20] * 2, "data_offsets": [0, 16]}},
                                             b"\0" * 16),
        "header_of_90_mb": struct.pack("<Q", 90 << 20) + b"{" + b" " * 100,
    }


def test_tensor_and_array_sizes_are_checked_against_their_storage(tmp_path: Path) -> None:
    paths = _write(tmp_path / "sized", {f"{name}.pkl": data for name, data in sized_pickles().items()}
                   | {f"{name}.safetensors": data for name, data in sized_safetensors().items()})
    results = _measure(paths)
    _assert_refused_within_bound(paths, results)
    named = {name.split(".")[0]: result["message"] for name, result in results.items()}
    for name in ("zero_stride_huge_shape", "negative_stride", "offset_past_the_end",
                 "overlapping_view_of_more_elements"):
        assert "does not fit its storage" in named[name], named[name]
    assert "at most 8 integers" in named["nine_dimensions"]
    assert "storage claims 1000000000 elements but holds 4" in named["storage_claims_more_than_it_holds"]
    assert "numpy array of shape (1000000,)" in named["array_shape_beyond_its_bytes"]
    assert "only an empty numpy.ndarray" in named["array_reconstructed_huge"]
    assert "needs more memory than a file of its size may take" in named["many_views_of_one_storage"]
    for name in sized_safetensors():
        assert "not a readable safetensors file" in named[name], named[name]


# --- 3. network dimensions: bounded and matched to the tensors before allocation ------------------
class _AsPersistent:
    """Pickles a ModuleRecord the way `torch_utils.persistence` pickles a module (other children as they are)."""

    def __init__(self, record: ModuleRecord) -> None:
        self.record = record

    def __reduce__(self):
        r = self.record
        state = {**r.attrs, "training": False, "_parameters": OrderedDict(r.params),
                 "_buffers": OrderedDict(r.buffers), "_init_kwargs": {},
                 "_modules": OrderedDict((k, _AsPersistent(v) if isinstance(v, ModuleRecord) else v)
                                         for k, v in r.children.items())}
        meta = {"type": "class", "version": 6, "module_src": "# omitted", "class_name": r.class_name, "state": state}
        return _reconstruct_persistent_obj, (meta,)


def _changed(reference: Path, change) -> bytes:
    record = read_generator(reference).record
    change(record)
    return pickle.dumps({"G_ema": _AsPersistent(record)}, protocol=4)


def _sg3_sizes(record: ModuleRecord, size: int) -> None:
    synthesis = record.children["synthesis"]
    synthesis.attrs["img_resolution"] = size
    synthesis.children["input"].attrs["size"] = [size, size]
    for name in synthesis.attrs["layer_names"]:
        synthesis.children[name].attrs.update(in_size=[size, size], out_size=[size, size])


@pytest.mark.usefixtures("persistence_module")
def test_network_dimensions_are_checked_before_the_network_is_allocated(tmp_path: Path, reference_dir: Path) -> None:
    sg2, sg3 = reference_dir / "sg2_64_tiny.pkl", reference_dir / "sg3t_64_tiny.pkl"
    synthesis = lambda r: r.children["synthesis"]  # noqa: E731
    huge_view = torch.zeros(1).expand(512, 1 << 14, 1 << 14)  # 137 billion elements over one
    files = {
        "stored_resolution_huge.pkl": _changed(sg2, lambda r: synthesis(r).attrs.update(img_resolution=1 << 16)),
        "layer_resolution_huge.pkl": _changed(
            sg2, lambda r: synthesis(r).children["b64"].children["conv1"].attrs.update(resolution=1 << 15)),
        "const_claims_huge_shape.pkl": _changed(
            sg2, lambda r: synthesis(r).children["b4"].params.update(const=huge_view)),
        "num_ws_huge.pkl": _changed(sg2, lambda r: r.children["mapping"].attrs.update(num_ws=10**7)),
        "z_dim_huge.pkl": _changed(sg3, lambda r: r.children["mapping"].attrs.update(z_dim=1 << 30)),
        "sg3_layer_sizes_huge.pkl": _changed(sg3, lambda r: _sg3_sizes(r, 4096)),
        "sg3_layer_sizes_do_not_chain.pkl": _changed(
            sg3, lambda r: synthesis(r).children[synthesis(r).attrs["layer_names"][3]].attrs.update(
                in_size=[4000, 4000])),
    }
    paths = _write(tmp_path / "dims", files)
    # Our own format: settings of a 512 px, 2048-channel network (GBs of weights) over the tiny model's tensors.
    from autolume_graph.gan.default_model import make_random_model

    tiny = make_random_model(make_settings(16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256,
                                           channel_max=16), seed=1)
    tiny.settings = lambda: make_settings(512, channel_base=1 << 22, channel_max=2048)
    paths.append(str(save_model(tiny, tmp_path / "dims" / "safetensors_claims_huge_settings.safetensors")))
    results = _measure(paths)
    _assert_refused_within_bound(paths, results)
    named = {name.split(".")[0]: result["message"] for name, result in results.items()}
    assert "do not double from 4 to 65536" in named["stored_resolution_huge"]
    assert "holds layers of another resolution" in named["layer_resolution_huge"]
    assert "does not fit its storage" in named["const_claims_huge_shape"]
    assert "num_ws is 10000000, outside 1..64" in named["num_ws_huge"]
    assert "z_dim is 1073741824, outside 1..4096" in named["z_dim_huge"]
    assert "feature map" in named["sg3_layer_sizes_huge"]
    assert "do not chain" in named["sg3_layer_sizes_do_not_chain"]
    assert "missing tensor" in named["safetensors_claims_huge_settings"]


# --- 4. opcode runs: peak memory within 3 x file size + 64 MiB -------------------------------------
def opcode_runs() -> dict[str, bytes]:
    """Runs of cheap opcodes that each leave an object, memo entry or stack slot behind."""
    n = RUN_BYTES

    def run(unit: bytes, head: bytes = b"") -> bytes:
        return P4 + head + unit * (n // len(unit)) + STOP

    memo_dict = _global("torch_utils.persistence", "_reconstruct_persistent_obj") + b"\x94" \
        + b"}(" + _str("type") + _str("class") + _str("state") + b"}u\x94"
    return {
        "empty_lists": run(b"]"),
        "empty_dicts": run(b"}"),
        "empty_sets": run(b"\x8f"),
        "empty_tuples": run(b")"),
        "nones": run(b"N"),
        "dups": run(b"2", head=b"N"),
        "marks": run(b"("),
        "memoised_dicts": run(b"}\x94"),
        "new_ints": run(b"J\x00\x00\x01\x00"),
        "astral_strings": run(_str("\U0001f600a")),
        "nested_one_tuples": run(b"\x85", head=b"N"),
        "list_of_nones": run(b"N", head=b"](") [:-1] + b"e" + STOP,
        "dict_of_int_keys": P4 + b"}(" + b"".join(b"J" + struct.pack("<i", i) + b"N" for i in range(n // 6)) + b"u"
                            + STOP,
        "ordered_dicts_by_reduce": run(b"h\x00)R", head=_global("collections", "OrderedDict") + b"\x94"),
        "records_by_reduce": run(b"h\x00h\x01\x85R", head=memo_dict),
        "unknowns_by_reduce": run(b"h\x00)R", head=_global("timm.models", "Block") + b"\x94"),
        "items_dropped_into_an_unknown": run(b"N", head=_global("timm.models", "Block") + b")R(")[:-1] + b"u" + STOP,
        "memo_put_at_a_huge_index": P4 + b"Nr\xff\xff\xff\x7f" + STOP,
        "frame_of_a_terabyte": P4 + b"\x95" + struct.pack("<Q", 1 << 40) + STOP,
        "long_text_with_an_astral_char": P4 + b"X" + struct.pack("<I", n) + ("\U0001f600" + "a" * (n - 4)).encode()
                                         + STOP,
    }


def test_opcode_runs_stay_within_the_memory_bound(tmp_path: Path, reference_dir: Path) -> None:
    paths = _write(tmp_path / "runs", {f"{name}.pkl": data for name, data in opcode_runs().items()})
    genuine_files = ("sg2_64_tiny.pkl", "sg3t_64_tiny.pkl", "tf_sg2_32.pkl")
    results = _measure(paths + [str(reference_dir / name) for name in genuine_files])
    _assert_refused_within_bound(paths, results)
    for genuine in genuine_files:
        result = results[genuine]
        assert result["message"] == "LOADED", result
        assert result["growth"] <= BOUND_FACTOR * result["size"] + BOUND_BASE, (genuine, result)


@pytest.mark.parametrize("name", ["nones", "memoised_dicts"])
def test_a_run_is_refused_by_the_budget(name: str, tmp_path: Path) -> None:
    """The runs above stop at the budget, not at some later check (the bound holds because of it)."""
    paths = _write(tmp_path, {f"{name}.pkl": opcode_runs()[name]})
    assert "needs more memory than a file of its size may take" in _measure(paths)[f"{name}.pkl"]["message"]


# --- 5. parts the reader does not know: inert, never run; the generator loads unless it needs one -------
class _Global:
    """Pickles as the global `module.name` (STACK_GLOBAL), whatever this process has under that name."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, *args):
        raise AssertionError("only pickled")


class _Call:
    """Pickles as `func(*args)` (REDUCE); callable, so that a call's result can be called in turn."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args):
        raise AssertionError("only pickled")


class _New:
    """Pickles as `cls.__new__(cls)` (NEWOBJ), then BUILD with `state`: how torch modules and most objects pickle."""

    def __init__(self, cls: _Global, state) -> None:
        self.cls, self.state = cls, state


class _Writer(pickle._Pickler):
    """The pure-Python pickler, able to name any global and to write NEWOBJ of a class that is not here."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_global(self, obj: _Global) -> None:
        self.save(obj.module)
        self.save(obj.name)
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)

    def _save_new(self, obj: _New) -> None:
        self.save(obj.cls)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self.save(obj.state)
        self.write(pickle.BUILD)

    dispatch[_Global] = _save_global
    dispatch[_New] = _save_new


def _dumps(data) -> bytes:
    buf = io.BytesIO()
    _Writer(buf, protocol=4).dump(data)
    return buf.getvalue()


def _payloads(marker: Path) -> dict[str, object]:
    """Calls that would create `marker`, and ways of smuggling one into what a file builds."""
    touch = f"touch {marker}"
    system = _Global("os", "system")
    return {
        "os_system": _Call(system, touch),
        "posix_system": _Call(_Global("posix", "system"), touch),
        "eval": _Call(_Global("builtins", "eval"), f"__import__('os').system({touch!r})"),
        "exec": _Call(_Global("builtins", "exec"), f"import os; os.system({touch!r})"),
        "popen": _Call(_Global("subprocess", "Popen"), ["touch", str(marker)]),
        "getattr_chain": _Call(_Call(_Global("builtins", "getattr"), _Call(_Global("builtins", "__import__"), "os"),
                                     "system"), touch),
        "call_of_a_call": _Call(_Call(_Global("importlib", "import_module"), "os"), touch),
        "reconstructor": _Call(_Global("copyreg", "_reconstructor"), system, _Global("builtins", "object"), touch),
        "setstate_in_build": _New(_Global("pg_modules.blocks", "Hook"), {"__setstate__": system, "__dict__": touch,
                                                                         "__class__": system}),
        "call_as_state_of_a_known_dict": _Call(_Global("collections", "OrderedDict"), [("x", _Call(system, touch))]),
        "torch_load": _Call(_Global("torch", "load"), str(marker)),
    }


def _discriminator(marker: Path) -> object:
    """A projected-GAN-like discriminator: unknown classes, a real torch module, and every payload inside."""
    payloads = _payloads(marker)
    feature = _New(_Global("timm.models.efficientnet", "EfficientNet"), {"blocks": list(payloads.values()),
                                                                          "conv": torch.nn.Conv2d(3, 4, 3)})
    return _New(_Global("pg_modules.discriminator", "ProjectedDiscriminator"),
                {"feature_network": feature, "discriminator": torch.nn.Sequential(torch.nn.Conv2d(4, 1, 1)),
                 **payloads})


def _render_seed(model) -> torch.Tensor:
    return model(torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(5)), psi=0.7)


@pytest.mark.usefixtures("persistence_module")
def test_unknown_parts_beside_the_generator_run_nothing_and_the_generator_loads(tmp_path: Path,
                                                                              reference_dir: Path) -> None:
    from autolume_graph.gan.loader import load_model

    marker = tmp_path / "MARKER"
    reference = reference_dir / "sg2_64_tiny.pkl"
    record = read_generator(reference).record
    snapshot = {"G": None, "D": _discriminator(marker), "G_ema": _AsPersistent(record),
                "augment_pipe": _New(_Global("training.augment", "AugmentPipe"), {"p": _payloads(marker)["eval"]}),
                "training_set_kwargs": _Call(_Global("dnnlib.util", "EasyDict"), {"path": "x"}),
                "progress": _payloads(marker)["getattr_chain"]}
    folder = tmp_path / "files"
    folder.mkdir()
    path = folder / "projected.pkl"
    path.write_bytes(_dumps(snapshot))
    model = load_model(path)
    assert torch.equal(_render_seed(model), _render_seed(load_model(reference)))
    g_unknown = _New(_Global("timm.models.efficientnet", "EfficientNet"), {"x": _payloads(marker)["popen"]})
    with pytest.raises(Exception, match="forbidden global timm.models.efficientnet.EfficientNet in G "):
        load_model(_write(folder, {"g_is_unknown.pkl": _dumps({"G": g_unknown, "G_ema": None})})[0], network="G")
    assert not marker.exists(), "a payload ran"
    assert sorted(p.name for p in folder.iterdir()) == ["g_is_unknown.pkl", "projected.pkl"]


def _needs(record: ModuleRecord, where: str, name: str, value) -> ModuleRecord:
    """The record with `value` as child or attribute `name` of the submodule at dotted path `where`."""
    target = dict(record.walk())[where]
    (target.children if isinstance(value, (torch.nn.Module, _New)) else target.attrs)[name] = value
    return record


@pytest.mark.usefixtures("persistence_module")
@pytest.mark.parametrize("where, name, value, named", [
    ("synthesis.b8.conv1", "affine", torch.nn.Linear(512, 128), "torch.nn.modules.linear.Linear"),
    ("synthesis", "b4", _New(_Global("timm.layers", "Block"), {}), "timm.layers.Block"),
    ("mapping", "activation", _Call(_Global("os", "system"), "touch MARKER"), "os.system"),
    ("synthesis.b4", "layers", [{"f": _Call(_Call(_Global("builtins", "getattr"), 1, "x"), 2)}], "builtins.getattr"),
])
def test_a_generator_that_needs_an_unknown_class_is_refused_naming_it(tmp_path: Path, reference_dir: Path, where,
                                                                     name, value, named,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from autolume_graph.gan.loader import ModelFileError, load_model

    record = _needs(read_generator(reference_dir / "sg2_64_tiny.pkl").record, where, name, value)
    path = _write(tmp_path, {"needs.pkl": _dumps({"G_ema": _AsPersistent(record)})})[0]
    monkeypatch.chdir(tmp_path)  # where a `touch MARKER` would land
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(path) and "\n" not in message, message
    assert f"forbidden global {named} in G_ema" in message, message
    assert sorted(os.listdir(tmp_path)) == ["needs.pkl"]
