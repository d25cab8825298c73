"""Model files: bad input fails with one line and runs nothing; snapshots and our format load right."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import safetensors.torch
import torch

from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.loader import ModelFileError, load_model
from autolume_graph.gan.safe_format import save_model
from autolume_graph.gan.stylegan2 import StyleGAN2, make_settings

torch.set_grad_enabled(False)

TINY = make_settings(16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=16)


@pytest.fixture(scope="module")
def tiny() -> StyleGAN2:
    return make_random_model(TINY, seed=3)


def _render(model, seed: int = 0) -> torch.Tensor:
    return model(torch.randn(2, model.z_dim, generator=torch.Generator().manual_seed(seed)), psi=0.8)


def _assert_one_line_error(path: Path, reason: str) -> None:
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and reason in message, message


# --- Hostile and malformed pickles -------------------------------------------------------------

class _Payload:
    """Pickles as a call of `func(*args)`: what a malicious model file would smuggle in."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, object]:
    touch = f"touch {marker}"
    return {
        "os_system": _Payload(os.system, touch),
        "eval": _Payload(eval, f"__import__('os').system({touch!r})"),
        "exec": _Payload(exec, f"import os; os.system({touch!r})"),
        "subprocess": _Payload(subprocess.call, ["touch", str(marker)]),
        "popen": _Payload(os.popen, touch),
        "nested_in_snapshot": {"G": None, "G_ema": _Payload(os.system, touch)},
    }


@pytest.mark.parametrize("kind", list(_payloads(Path("x"))))
def test_forbidden_global_never_runs(tmp_path, kind):
    marker = tmp_path / "MARKER"
    path = tmp_path / f"{kind}.pkl"
    path.write_bytes(pickle.dumps(_payloads(marker)[kind], protocol=4))
    _assert_one_line_error(path, "forbidden global")
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing else written


def test_missing_file_and_directory(tmp_path):
    _assert_one_line_error(tmp_path / "nope.pkl", "no such file")
    _assert_one_line_error(tmp_path, "directory")


def test_truncated_pickle(tmp_path, reference_dir):
    path = tmp_path / "cut.pkl"
    path.write_bytes((reference_dir / "sg2_64_tiny.pkl").read_bytes()[:200_000])
    _assert_one_line_error(path, "truncated")


@pytest.mark.parametrize("data, reason", [
    ({"resolution": 64, "weights": [1, 2, 3]}, "no generator"),
    ({"G_ema": {"mapping": 1, "synthesis": 2}}, "no generator"),
    ([1, 2, 3], "list"),
])
def test_pickle_without_generator(tmp_path, data, reason):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(data))
    _assert_one_line_error(path, reason)


# --- Snapshots crafted from allowed globals only ------------------------------------------------

def _reconstruct_persistent_obj(meta):  # stands in for NVIDIA's; the reader never imports it
    raise AssertionError("only the pickle's name matters")


@pytest.fixture()
def persistence_module(monkeypatch):
    """Make `torch_utils.persistence._reconstruct_persistent_obj` nameable so pickle can write it."""
    package, module = types.ModuleType("torch_utils"), types.ModuleType("torch_utils.persistence")
    _reconstruct_persistent_obj.__module__ = module.__name__
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj
    package.persistence = module
    monkeypatch.setitem(sys.modules, "torch_utils", package)
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", module)


class _Persistent:
    """Pickles like a `torch_utils.persistence` module: class name, placeholder source, state dict."""

    def __init__(self, class_name: str, module: torch.nn.Module, children: dict, **attrs):
        self.class_name = class_name
        self.state = {
            "training": False,
            "_parameters": OrderedDict((k, torch.nn.Parameter(v.clone(), requires_grad=False))
                                       for k, v in module.named_parameters(recurse=False)),
            "_buffers": OrderedDict((k, v.clone()) for k, v in module.named_buffers(recurse=False)),
            "_modules": OrderedDict(children),
            "_init_kwargs": {},
            **attrs,
        }

    def __reduce__(self):
        meta = {"type": "class", "version": 6, "module_src": "# source omitted",
                "class_name": self.class_name, "state": self.state}
        return _reconstruct_persistent_obj, (meta,)


def _fc(layer) -> _Persistent:
    return _Persistent("FullyConnectedLayer", layer, {}, in_features=layer.in_features,
                       out_features=layer.out_features, activation=layer.activation,
                       weight_gain=layer.weight_gain, bias_gain=layer.bias_gain)


def _snapshot_generator(model: StyleGAN2) -> _Persistent:
    """The generator as NVIDIA's persistent modules would pickle it (attributes as stored there)."""
    blocks = {}
    for name in model.synthesis.block_names:
        block = getattr(model.synthesis, name)
        kids = {}
        for conv_name in ("conv0", "conv1"):
            conv = getattr(block, conv_name)
            if conv is not None:
                kids[conv_name] = _Persistent(
                    "SynthesisLayer", conv, {"affine": _fc(conv.affine)}, resolution=conv.resolution,
                    up=conv.up, use_noise=conv.use_noise, activation=conv.activation,
                    conv_clamp=conv.conv_clamp, padding=conv.padding, act_gain=conv.act_gain)
        if block.torgb is not None:
            kids["torgb"] = _Persistent("ToRGBLayer", block.torgb, {"affine": _fc(block.torgb.affine)},
                                        conv_clamp=block.torgb.conv_clamp, weight_gain=block.torgb.weight_gain)
        blocks[name] = _Persistent(
            "SynthesisBlock", block, kids, in_channels=block.in_channels, resolution=block.resolution,
            is_last=block.is_last, architecture=block.architecture, use_fp16=False,
            num_conv=block.num_conv, num_torgb=block.num_torgb)
    syn = model.synthesis
    synthesis = _Persistent("SynthesisNetwork", syn, blocks, w_dim=syn.w_dim, img_resolution=syn.img_resolution,
                            img_channels=syn.img_channels, num_ws=syn.num_ws, num_fp16_res=0,
                            block_resolutions=[b.resolution for b in syn.blocks()])
    fcs = {f"fc{i}": _fc(getattr(model.mapping, f"fc{i}")) for i in range(model.mapping.num_layers)}
    mapping = _Persistent("MappingNetwork", model.mapping, fcs, z_dim=model.z_dim, c_dim=0,
                          w_dim=model.w_dim, num_ws=model.num_ws, num_layers=len(fcs), w_avg_beta=0.998)
    return _Persistent("Generator", torch.nn.Module(), {"synthesis": synthesis, "mapping": mapping},
                       z_dim=model.z_dim, c_dim=0, w_dim=model.w_dim, img_resolution=model.img_resolution,
                       img_channels=model.img_channels, num_ws=model.num_ws)


@pytest.mark.parametrize("layout", ["G_ema", "G", "bare"])
def test_snapshot_layouts(tmp_path, tiny, persistence_module, layout):
    gen = _snapshot_generator(tiny)
    data = {"bare": gen, "G": {"G": gen, "D": None, "G_ema": None},
            "G_ema": {"G": None, "D": None, "G_ema": gen, "augment_pipe": None, "training_set_kwargs": None}}
    path = tmp_path / "snapshot.pkl"
    path.write_bytes(pickle.dumps(data[layout], protocol=4))
    loaded = load_model(path)
    assert loaded.family == "stylegan2" and loaded.layer_names() == tiny.layer_names()
    assert torch.equal(_render(loaded), _render(tiny))


def test_snapshot_prefers_g_ema(tmp_path, tiny, persistence_module):
    other = make_random_model(TINY, seed=4)
    path = tmp_path / "snapshot.pkl"
    path.write_bytes(pickle.dumps({"G": _snapshot_generator(other), "G_ema": _snapshot_generator(tiny)}))
    assert torch.equal(_render(load_model(path)), _render(tiny))


def test_stylegan3_record_is_recognised(tmp_path, tiny, persistence_module):
    gen = _snapshot_generator(tiny)
    gen.state["_modules"]["synthesis"].state["_modules"]["input"] = _Persistent(
        "SynthesisInput", torch.nn.Module(), {})
    path = tmp_path / "sg3.pkl"
    path.write_bytes(pickle.dumps({"G_ema": gen}))
    try:
        import autolume_graph.gan.stylegan3  # noqa: F401
    except ModuleNotFoundError:
        _assert_one_line_error(path, "StyleGAN3 not supported yet")
    else:
        with pytest.raises(ModelFileError):  # a StyleGAN2 body under an SG3 input is no valid SG3
            load_model(path)


# --- Our safe format ------------------------------------------------------------------------------

def test_safe_format_round_trip_is_bit_identical(tmp_path, reference_dir):
    original = load_model(reference_dir / "sg2_64_tiny.pkl")
    path = save_model(original, tmp_path / "sg2.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sg2.safetensors"]  # temp file gone
    copy = load_model(path)
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(9))
    for mode in ("const", "none"):
        assert torch.equal(copy(z, psi=0.6, noise_mode=mode), original(z, psi=0.6, noise_mode=mode))
    assert copy.layer_info() == original.layer_info()


def _rewrite(path: Path, change) -> None:
    tensors = safetensors.torch.load_file(path)
    with open(path, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    change(tensors)
    safetensors.torch.save_file(tensors, path, metadata=header["__metadata__"])


def test_safe_format_missing_tensor(tmp_path, tiny):
    path = save_model(tiny, tmp_path / "m.safetensors")
    _rewrite(path, lambda t: t.pop("synthesis.b8.conv1.weight"))
    _assert_one_line_error(path, "missing tensor synthesis.b8.conv1.weight")


def test_safe_format_wrong_shape(tmp_path, tiny):
    path = save_model(tiny, tmp_path / "m.safetensors")
    _rewrite(path, lambda t: t.update({"mapping.fc0.weight": torch.zeros(3, 3)}))
    _assert_one_line_error(path, "mapping.fc0.weight has shape (3, 3)")


def test_safetensors_without_settings(tmp_path):
    path = tmp_path / "weights.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, path)
    _assert_one_line_error(path, "without autolume-graph model settings")


def test_corrupt_safetensors(tmp_path, tiny):
    path = save_model(tiny, tmp_path / "m.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    _assert_one_line_error(path, "not a readable safetensors file")
