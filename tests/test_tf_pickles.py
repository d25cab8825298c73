"""TensorFlow StyleGAN2 pickles: read as data (their build source never runs), converted to our network.

The reference `tf_sg2_32.pkl` is a `(G, D, Gs)` tuple; `img` is NVIDIA's conversion of Gs, `img_G` of G.
Variants are written here by re-pickling its networks through a stand-in `dnnlib.tflib.network.Network`
class (NEWOBJ + BUILD of the state dict, as TensorFlow's pickles hold them).
"""

from __future__ import annotations

import copyreg
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.generate import seed_to_z, to_uint8
from autolume_graph.gan.loader import ModelFileError, load_model
from autolume_graph.gan.safe_pickle import TFNetwork, read_pickle
from autolume_graph.gan.stylegan2 import make_settings

torch.set_grad_enabled(False)


@pytest.fixture(scope="module")
def tf_pickle(reference_dir: Path) -> Path:
    return reference_dir / "tf_sg2_32.pkl"


def _cases(reference_dir: Path) -> list[Path]:
    cases = sorted((reference_dir / "tf_sg2_32").glob("*.npz"))
    assert cases
    return cases


def render_case(model, case) -> torch.Tensor:
    z = seed_to_z(int(case["seed"]), model.z_dim)
    ws = model.mapping(z, psi=float(case["truncation_psi"]))
    return model.synthesis(ws, noise_mode=str(case["noise_mode"]))


def assert_matches(model, reference_dir: Path, key: str) -> None:
    for path in _cases(reference_dir):
        case = np.load(path)
        image = render_case(model, case)
        assert image.shape == case[key].shape
        assert np.abs(image.numpy() - case[key]).max() < 1e-3, path.name
        if key == "img":
            assert (to_uint8(image) == case["img_uint8"]).all(axis=-1).mean() >= 0.999, path.name


@pytest.mark.parametrize("network, key", [("G_ema", "img"), ("G", "img_G")])
def test_every_case_matches_nvidias_conversion(tf_pickle: Path, reference_dir: Path, network: str, key: str) -> None:
    model = load_model(tf_pickle, network=network)
    assert model.family == "stylegan2" and model.load_note == ""
    assert (model.z_dim, model.w_dim, model.img_size, model.img_channels) == (128, 128, (32, 32), 3)
    assert model.mapping.num_layers == 8
    assert_matches(model, reference_dir, key)


def test_g_and_gs_differ(tf_pickle: Path, reference_dir: Path) -> None:
    case = np.load(_cases(reference_dir)[0])
    g, gs = (render_case(load_model(tf_pickle, network=n), case) for n in ("G", "G_ema"))
    assert (g - gs).abs().max() > 0.05


# --- re-pickled variants --------------------------------------------------------------------------
class Network:
    """Pickles as TensorFlow's `dnnlib.tflib.network.Network`: NEWOBJ with no arguments, then its state dict."""

    def __init__(self, state: dict) -> None:
        self.state = state

    def __reduce__(self):
        return copyreg.__newobj__, (type(self),), self.state


@pytest.fixture()
def tflib_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `dnnlib.tflib.network.Network` nameable so pickle can write our stand-in under that name."""
    names = ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    Network.__module__ = "dnnlib.tflib.network"
    sys.modules["dnnlib.tflib.network"].Network = Network


def as_pickled(net: TFNetwork, source: str = "# build source omitted") -> Network:
    """A network read from a file, as TensorFlow pickles it again (build source replaced)."""
    return Network({
        "version": net.version, "name": net.name, "static_kwargs": dict(net.static_kwargs),
        "components": {k: as_pickled(c, source) for k, c in net.components.items()},
        "build_module_src": source, "build_func_name": net.build_func_name,
        "variables": [(k, np.array(v)) for k, v in net.variables.items()],
    })


@pytest.fixture(scope="module")
def networks(tf_pickle: Path) -> tuple[TFNetwork, TFNetwork, TFNetwork]:
    data = read_pickle(tf_pickle)
    assert isinstance(data, tuple) and all(isinstance(n, TFNetwork) for n in data)
    return data


def _write(path: Path, data) -> Path:
    path.write_bytes(pickle.dumps(data, protocol=4))
    return path


def test_the_file_is_read_as_data(networks) -> None:
    g, d, gs = networks
    assert [n.name for n in networks] == ["G", "D", "Gs"]
    assert set(gs.components) == {"mapping", "synthesis"} and gs.build_func_name.endswith("G_main")
    assert gs.variables["dlatent_avg"].shape == (128,)
    assert not hasattr(gs, "build_module_src")  # dropped unread


@pytest.mark.usefixtures("tflib_module")
def test_build_source_never_runs(networks, tmp_path: Path, reference_dir: Path) -> None:
    marker = tmp_path / "MARKER"
    payload = f"import os\nos.system('touch {marker}')\n"
    path = _write(tmp_path / "tf.pkl", tuple(as_pickled(n, payload) for n in networks))
    assert_matches(load_model(path), reference_dir, "img")
    assert not marker.exists()


@pytest.mark.usefixtures("tflib_module")
def test_a_bare_gs_loads_and_says_it_holds_one_network(networks, tmp_path: Path, reference_dir: Path) -> None:
    path = _write(tmp_path / "gs.pkl", as_pickled(networks[2]))
    model = load_model(path, network="G")
    assert model.load_note == "the file holds one network"
    assert_matches(model, reference_dir, "img")


def _variant(networks, change) -> tuple:
    g, d, gs = (as_pickled(n) for n in networks)
    change(gs.state)
    return g, d, gs


def _component(state: dict, name: str) -> dict:
    return state["components"][name].state


@pytest.mark.usefixtures("tflib_module")
@pytest.mark.parametrize("change, reason", [
    (lambda s: _component(s, "synthesis")["variables"].append(("32x32/Extra/weight", np.zeros(3, np.float32))),
     "TensorFlow variable synthesis/32x32/Extra/weight is not part of a StyleGAN2 generator"),
    (lambda s: s["variables"].clear(), "TensorFlow network has no variable dlatent_avg"),
    (lambda s: _component(s, "mapping")["variables"].__setitem__(
        0, ("Dense0/weight", np.zeros((4, 4, 4), np.float32))), "expected 2 dimensions"),
    (lambda s: _component(s, "mapping")["static_kwargs"].update(label_size=10), "label_size 10 has a class embedding"),
    (lambda s: _component(s, "mapping")["variables"].append(("LabelConcat/weight", np.zeros((10, 128), np.float32))),
     "LabelConcat (the original repo's) is not supported"),
    (lambda s: s["components"].pop("mapping"), "has no mapping component"),
    (lambda s: _component(s, "synthesis")["static_kwargs"].update(resample_kernel=[1, 2, 5]), "not a small symmetric"),
])
def test_what_we_cannot_convert_is_refused_in_one_line(networks, tmp_path: Path, change, reason: str) -> None:
    path = _write(tmp_path / "tf.pkl", _variant(networks, change))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message and reason in message, message


@pytest.mark.usefixtures("tflib_module")
def test_a_network_cannot_be_its_own_component(networks, tmp_path: Path) -> None:
    gs = as_pickled(networks[2])
    gs.state["components"]["synthesis"] = gs  # pickled by memo: BUILD has not run on it yet
    path = _write(tmp_path / "loop.pkl", gs)
    with pytest.raises(ModelFileError, match="component 'synthesis' is not a network"):
        load_model(path)


# --- our networks written as TensorFlow's StyleGAN2(-ADA) would: conditional, resnet, orig -------------
def _hwio(weight: torch.Tensor, flip: bool = False) -> np.ndarray:
    hwio = weight.detach().numpy().transpose(2, 3, 1, 0)
    return hwio[::-1, ::-1] if flip else hwio


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _modulated(scope: str, layer, flip: bool = False) -> list[tuple[str, np.ndarray]]:
    out = [(f"{scope}/weight", _hwio(layer.weight, flip)), (f"{scope}/bias", _np(layer.bias)),
           (f"{scope}/mod_weight", _np(layer.affine.weight).T), (f"{scope}/mod_bias", _np(layer.affine.bias) - 1)]
    if getattr(layer, "use_noise", False):
        out.append((f"{scope}/noise_strength", _np(layer.noise_strength)))
    return out


def as_tensorflow(model) -> Network:
    """A StyleGAN2 of ours as the Gs that TensorFlow's StyleGAN2-ADA code would pickle (names, layouts, +1, flips)."""
    mapping, synthesis = model.mapping, model.synthesis
    fcs = [getattr(mapping, f"fc{i}") for i in range(mapping.num_layers)]
    dense = [(f"Dense{i}/{k}", _np(p).T if k == "weight" else _np(p)) for i, fc in enumerate(fcs)
             for k, p in (("weight", fc.weight), ("bias", fc.bias))]
    if mapping.c_dim:
        dense += [("LabelEmbed/weight", _np(mapping.embed.weight).T), ("LabelEmbed/bias", _np(mapping.embed.bias))]
    layers, noise = [], []
    for block in synthesis.blocks():
        scope = f"{block.resolution}x{block.resolution}"
        if block.in_channels == 0:
            layers.append((f"{scope}/Const/const", _np(block.const)[None]))
        names = ["Conv"] if block.conv0 is None else ["Conv0_up", "Conv1"]
        for name, layer in zip(names, block.layers(), strict=True):
            layers += _modulated(f"{scope}/{name}", layer, flip=layer.up > 1)
            noise.append(_np(layer.noise_const)[None, None])
        if block.torgb is not None:
            layers += _modulated(f"{scope}/ToRGB", block.torgb)
        if block.skip is not None:
            layers.append((f"{scope}/Skip/weight", _hwio(block.skip.weight, flip=True)))
    layers += [(f"noise{i}", n) for i, n in enumerate(noise)]
    kwargs = {"label_size": mapping.c_dim, "resolution": model.img_resolution, "mapping_lrmul": fcs[0].bias_gain,
              "conv_clamp": synthesis.blocks()[0].conv1.conv_clamp}

    def net(name: str, func: str, variables: list, components: dict | None = None) -> Network:
        return Network({"version": 4, "name": name, "static_kwargs": kwargs, "components": components or {},
                        "build_module_src": "# omitted", "build_func_name": f"training.networks.{func}",
                        "variables": [(k, np.array(v, dtype=np.float32)) for k, v in variables]})

    return net("Gs", "G_main", [("lod", np.float32(0)), ("dlatent_avg", _np(mapping.w_avg))], {
        "mapping": net("G_mapping", "G_mapping", dense),
        "synthesis": net("G_synthesis", "G_synthesis_stylegan2", layers)})


@pytest.mark.usefixtures("tflib_module")
def test_a_conditional_network_converts_with_its_class_embedding(tmp_path: Path, reference_dir: Path) -> None:
    """sg2c_64 written as TensorFlow's StyleGAN2-ADA would: NVIDIA's pictures of class 3."""
    path = _write(tmp_path / "tf_conditional.pkl", as_tensorflow(load_model(reference_dir / "sg2c_64.pkl")))
    model = load_model(path)
    assert model.mapping.c_dim == 10
    for case_path in sorted((reference_dir / "sg2c_64").glob("*.npz")):
        case = np.load(case_path)
        c = torch.nn.functional.one_hot(torch.tensor([int(case["class_idx"])]), model.mapping.c_dim)
        ws = model.mapping(seed_to_z(int(case["seed"]), model.z_dim), c=c, psi=float(case["truncation_psi"]))
        image = model.synthesis(ws, noise_mode=str(case["noise_mode"]))
        assert np.abs(image.numpy() - case["img"]).max() < 1e-3, case_path.name


@pytest.mark.usefixtures("tflib_module")
@pytest.mark.parametrize("architecture", ["resnet", "orig"])
def test_resnet_and_orig_architectures_are_read_from_the_variables(tmp_path: Path, architecture: str) -> None:
    """The architecture is not in the kwargs: it is the Skip layers' and the ToRGBs' presence."""
    settings = make_settings(32, z_dim=64, w_dim=64, mapping_layers=3, channel_base=512, channel_max=32,
                             architecture=architecture)
    original = make_random_model(settings, seed=11)
    model = load_model(_write(tmp_path / f"{architecture}.pkl", as_tensorflow(original)))
    assert [b.architecture for b in model.synthesis.blocks()] == [architecture] * 4
    z = seed_to_z(3, 64)
    for mode in ("const", "none"):
        assert (model(z, psi=0.7, noise_mode=mode) - original(z, psi=0.7, noise_mode=mode)).abs().max() < 1e-5
