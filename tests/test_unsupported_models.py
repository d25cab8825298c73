"""Kinds we do not render are refused in one line that names the kind; nothing in the file runs.

Every file is small and synthetic, written here with the layout its tool writes (class names,
children, build functions, tensor names), never real weights.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from test_model_files import _snapshot_generator, persistence_module  # noqa: F401 (a fixture)
from test_reliability_pickles import _AsPersistent, _Call, _dumps, _Global, _New, _payloads
from test_tf_pickles import as_pickled, tflib_module  # noqa: F401 (a fixture)

from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.loader import ModelFileError, load_model
from autolume_graph.gan.safe_pickle import read_generator, read_pickle
from autolume_graph.gan.stylegan2 import make_settings


def _refused(path: Path, reason: str) -> str:
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message and reason in message, message
    return message


def _write(path: Path, data) -> Path:
    path.write_bytes(_dumps(data))
    return path


# --- generators of other kinds ---------------------------------------------------------------------
@pytest.mark.usefixtures("persistence_module")
def test_stylegan_xl_is_named(tmp_path: Path, reference_dir: Path) -> None:
    """StyleGAN-XL's mapping embeds classes with a torch Embedding (pickled as a plain module) + embed_proj."""
    record = read_generator(reference_dir / "sg3t_64_tiny.pkl").record
    mapping = record.children["mapping"]
    mapping.children["embed"] = torch.nn.Embedding(10, 4)
    mapping.children["embed_proj"] = mapping.children["fc0"]
    _refused(_write(tmp_path / "sgxl.pkl", {"G_ema": _AsPersistent(record)}),
             "StyleGAN-XL generators are not supported (only StyleGAN2/3)")
    record = read_generator(reference_dir / "sg3t_64_tiny.pkl").record
    record.class_name, record.attrs["path_stem"], record.attrs["up_factor"] = "SuperresGenerator", "stem.pkl", 2
    _refused(_write(tmp_path / "sgxl_superres.pkl", {"G_ema": _AsPersistent(record)}), "StyleGAN-XL generators")


@pytest.mark.parametrize("module, kind", [
    ("pg_modules.networks_fastgan", "projected-GAN (FastGAN) generators are not supported"),
    ("pg_modules.networks_stylegan2", "projected-GAN generators are not supported"),
    ("networks.generator", "StyleGAN-T generators are not supported"),
])
def test_plain_torch_generators_are_named_by_their_class(tmp_path: Path, module: str, kind: str) -> None:
    marker = tmp_path / "MARKER"
    generator = _New(_Global(module, "Generator"), {
        "mapping": _New(_Global(module, "DummyMapping"), {}), "synthesis": torch.nn.Conv2d(4, 3, 3),
        "hook": _payloads(marker)["os_system"]})
    path = _write(tmp_path / "g.pkl", {"G": generator, "D": _payloads(marker)["eval"], "G_ema": generator})
    _refused(path, kind)
    assert not marker.exists()


@pytest.fixture(scope="module")
def tf_networks(reference_dir: Path) -> tuple:
    return read_pickle(reference_dir / "tf_sg2_32.pkl")


@pytest.mark.usefixtures("tflib_module")
@pytest.mark.parametrize("func, kind", [("training.networks_stylegan.G_style", "TensorFlow StyleGAN1"),
                                        ("networks.G_paper", "TensorFlow ProGAN")])
def test_tensorflow_stylegan1_and_progan_are_named(tf_networks, tmp_path: Path, func: str, kind: str) -> None:
    g, d, gs = (as_pickled(n) for n in tf_networks)
    gs.state["build_func_name"] = func
    _refused(_write(tmp_path / "tf.pkl", (g, d, gs)), f"{kind} generators are not supported (only StyleGAN2/3)")


def test_tensorflow_progan_of_its_own_network_class_is_named(tmp_path: Path) -> None:
    """progressive_growing_of_gans pickles `tfutil.Network` objects (state: build_func_name networks.G_paper)."""
    net = _New(_Global("tfutil", "Network"), {"build_func_name": "networks.G_paper", "variables": []})
    _refused(_write(tmp_path / "progan.pkl", (net, net, net)), "TensorFlow ProGAN generators are not supported")


@pytest.mark.usefixtures("tflib_module")
def test_another_tensorflow_network_is_named_by_its_build_function(tf_networks, tmp_path: Path) -> None:
    g, d, gs = (as_pickled(n) for n in tf_networks)
    _refused(_write(tmp_path / "d.pkl", d), "TensorFlow network 'D' built by 'D_stylegan2' is not a StyleGAN2")


@pytest.mark.usefixtures("persistence_module")
@pytest.mark.parametrize("channels, name", [(1, "grayscale"), (4, "RGBA")])
def test_images_other_than_rgb_are_refused_naming_the_channels(tmp_path: Path, channels: int, name: str) -> None:
    settings = make_settings(16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=16,
                             img_channels=channels)
    path = tmp_path / "channels.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _snapshot_generator(make_random_model(settings, seed=2))}))
    _refused(path, f"networks with {channels} image channels ({name}) are not supported (only RGB")


# --- state dicts and torch.save checkpoints ---------------------------------------------------------
def _t(*shape: int) -> torch.Tensor:
    return torch.zeros(shape)


STATE_DICTS = {
    "BigGAN": {"shared.weight": _t(10, 4), "linear.weight": _t(8, 4), "blocks.0.0.conv1.weight": _t(4, 4, 3, 3)},
    "BigGAN (Hugging Face)": {"embeddings.weight": _t(4, 10), "generator.gen_z.weight_orig": _t(8, 4),
                              "generator.layers.0.conv_0.weight_orig": _t(4, 4, 1, 1)},
    "StyleGAN1": {"g_mapping.dense0.weight": _t(4, 4), "g_synthesis.blocks.4x4.const": _t(1, 4, 4, 4)},
    "StyleGAN1 (style-based-gan)": {"generator": {"progression.0.conv1.conv.weight": _t(4, 4, 3, 3),
                                                  "style.1.linear.weight": _t(4, 4)}},
    "ProGAN": {"netG": {"scaleLayers.0.0.module.weight": _t(4, 4, 3, 3), "toRGBLayers.0.module.weight": _t(3, 4, 1, 1),
                        "formatLayer.module.weight": _t(16, 4)}},
    "rosinality's stylegan2-pytorch": {"g_ema": {"style.1.weight": _t(4, 4), "convs.0.conv.weight": _t(1, 4, 4, 3, 3),
                                                        "to_rgbs.0.conv.weight": _t(1, 3, 4, 1, 1)}},
}
WRITERS = {
    "pickle": lambda data, path: path.write_bytes(pickle.dumps(data, protocol=4)),
    "torch_save_zip": lambda data, path: torch.save(data, path),
    "torch_save_legacy": lambda data, path: torch.save(data, path, _use_new_zipfile_serialization=False),
}


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("kind", list(STATE_DICTS))
def test_state_dicts_are_named_by_their_tensor_names(tmp_path: Path, kind: str, writer: str) -> None:
    path = tmp_path / "weights.pth"
    WRITERS[writer](STATE_DICTS[kind], path)
    _refused(path, f"{kind.split(' (')[0]} generators are not supported (only StyleGAN2/3)")


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_state_dict_we_cannot_name_says_what_it_is(tmp_path: Path, writer: str) -> None:
    path = tmp_path / "weights.pth"
    WRITERS[writer]({"model": {"encoder.weight": _t(2, 2)}, "epoch": 3}, path)
    _refused(path, "a PyTorch state dict (weights without the network's structure)")


def test_a_checkpoint_without_tensors_is_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "opt.pt"
    torch.save({"epoch": 3, "lr": np.float64(0.1)}, path)
    _refused(path, "a PyTorch checkpoint (torch.save), not a network pickle")


def test_a_hostile_checkpoint_runs_nothing(tmp_path: Path) -> None:
    """torch.save of payloads: its pickle goes through the same reader, whose unknown globals never run."""
    marker = tmp_path / "MARKER"
    path = tmp_path / "hostile.pt"
    torch.save({"w": _t(2), "x": _Call(__import__("os").system, f"touch {marker}")}, path)
    path_legacy = tmp_path / "hostile_legacy.pt"
    torch.save({"x": _Call(eval, f"__import__('os').system('touch {marker}')")}, path_legacy,
               _use_new_zipfile_serialization=False)
    _refused(path, "a PyTorch state dict")
    _refused(path_legacy, "a PyTorch checkpoint")
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.pt", "hostile_legacy.pt"]
