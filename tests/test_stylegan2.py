"""StyleGAN2 renders NVIDIA's reference images exactly, and the model interface behaves as documented."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.generate import render_seed, save_image
from autolume_graph.gan.loader import load_model
from autolume_graph.gan.stylegan2 import make_settings, modulated_conv2d, set_fast_path, upsample2x

torch.set_grad_enabled(False)


def _cases(name: str) -> list[str]:
    """Case names from meta.json at collection time (same lookup as the `reference_dir` fixture)."""
    env = os.environ.get("AUTOLUME_REFERENCE")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "reference"
    meta = root / name / "meta.json"
    return json.loads(meta.read_text())["cases"] if meta.exists() else ["absent"]


@pytest.fixture(scope="module")
def sg2(reference_dir):
    return load_model(reference_dir / "sg2_64_tiny.pkl")


@pytest.mark.parametrize("case", _cases("sg2_64_tiny"))
def test_reference_case(sg2, reference_dir, case):
    data = np.load(reference_dir / "sg2_64_tiny" / f"{case}.npz")
    ws = sg2.mapping(torch.from_numpy(data["z"]), psi=float(data["truncation_psi"]))
    assert (ws - torch.from_numpy(data["w"])).abs().max() <= 1e-4
    img = sg2.synthesis(ws, noise_mode=str(data["noise_mode"]))
    assert img.shape == data["img"].shape and img.dtype == torch.float32
    assert (img - torch.from_numpy(data["img"])).abs().max() <= 1e-3
    u8 = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()
    assert (u8 == data["img_uint8"]).mean() >= 0.999


def test_reads_settings_from_layers(sg2, reference_dir):
    assert (sg2.family, sg2.num_ws, sg2.img_resolution, sg2.z_dim) == ("stylegan2", 10, 64, 512)
    assert sg2.mapping.fc0.bias_gain == pytest.approx(0.01)  # lr_multiplier, a class default
    assert sg2.synthesis.b8.conv0.conv_clamp == 256  # conv_clamp from the stored layer
    w_avg = np.load(reference_dir / "sg2_64_tiny" / "constants.npz")["w_avg"]
    assert torch.equal(sg2.mapping.w_avg, torch.from_numpy(w_avg))


def test_batch_matches_single(sg2):
    z = torch.from_numpy(np.random.RandomState(5).randn(3, 512)).float()
    batch = sg2(z, psi=0.7)
    singles = torch.cat([sg2(z[i:i + 1], psi=0.7) for i in range(3)])
    assert (batch - singles).abs().max() < 1e-5


def test_channels_last_matches(sg2):
    ws = sg2.mapping(torch.randn(2, 512, generator=torch.Generator().manual_seed(1)))
    assert sg2.synthesis.channels_last  # load_model's choice on CPU
    fast = sg2.synthesis(ws)
    sg2.set_channels_last(False)
    try:
        plain = sg2.synthesis(ws)
    finally:
        sg2.set_channels_last(True)
    assert (plain - fast).abs().max() < 1e-5


def test_truncation_cutoff(sg2):
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(2))
    full, cut = sg2.mapping(z), sg2.mapping(z, psi=0.5, cutoff=4)
    assert torch.equal(cut[:, 4:], full[:, 4:])
    assert torch.allclose(cut[:, :4], sg2.mapping.w_avg + 0.5 * (full[:, :4] - sg2.mapping.w_avg), atol=1e-6)


def test_noise_controls(sg2):
    ws = sg2.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(3)))
    const, none = sg2.synthesis(ws), sg2.synthesis(ws, noise_mode="none")
    assert not torch.equal(const, none)
    assert torch.equal(sg2.synthesis(ws, noise_scale=0.0), none)
    a = sg2.synthesis(ws, noise_mode="random", noise_seed=7)
    assert torch.equal(a, sg2.synthesis(ws, noise_mode="random", noise_seed=7))
    assert not torch.equal(a, sg2.synthesis(ws, noise_mode="random", noise_seed=8))
    all_off = {name: 0.0 for name in sg2.layer_names()}
    assert torch.equal(sg2.synthesis(ws, noise_scale=5.0, layer_noise_scale=all_off), none)
    one_on = sg2.synthesis(ws, noise_scale=0.0, layer_noise_scale={"b64.conv1": 1.0})
    assert not torch.equal(one_on, none)
    with pytest.raises(ValueError):
        sg2.synthesis(ws, noise_mode="loud")


def test_layer_edits_and_capture(sg2):
    ws = sg2.mapping(torch.randn(1, 512, generator=torch.Generator().manual_seed(4)))
    base = sg2.synthesis(ws)
    info = sg2.layer_info()
    assert [i.name for i in info][:3] == ["b4.conv1", "b8.conv0", "b8.conv1"]
    for layer in info:
        img, act = sg2.synthesis(ws, capture=layer.name)
        assert torch.equal(img, base)
        assert act.shape == (1, layer.channels, layer.resolution, layer.resolution)
    assert torch.equal(sg2.synthesis(ws, layer_edits={"b16.conv0": lambda x: x}), base)
    edited, act = sg2.synthesis(ws, layer_edits={"b16.conv0": torch.zeros_like}, capture="b16.conv0")
    assert not torch.equal(edited, base) and not act.any()
    with pytest.raises(KeyError):
        sg2.synthesis(ws, capture="b5.conv9")


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_architectures_render(architecture):
    settings = make_settings(16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=16,
                             architecture=architecture)
    model = make_random_model(settings, seed=1)
    names = [name for name, _ in model.named_children()] + [n for n, _ in model.synthesis.named_modules()]
    assert ("b16.skip" in names) == (architecture == "resnet")
    assert ("b8.torgb" in names) == (architecture == "skip")
    img = model(torch.randn(2, 32, generator=torch.Generator().manual_seed(0)))
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all() and img.std() > 0.01


def _zero_insert(x: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(*x.shape[:2], 2 * x.shape[2], 2 * x.shape[3])
    out[:, :, ::2, ::2] = x
    return out


def _true_conv(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, k.flip([2, 3]))


def test_upsampling_follows_upfirdn2d_definition():
    # Written from the definition: zero-insert, pad (taps+1)//2 before and (taps-2)//2 after,
    # true convolution with f * 4; an asymmetric filter catches any flip or offset mistake.
    gen = torch.Generator().manual_seed(0)
    x, f = torch.randn(1, 2, 5, 5, generator=gen), torch.rand(4, 4, generator=gen)
    expected = torch.cat([_true_conv(F.pad(_zero_insert(x[:, i:i + 1]), [2, 1, 2, 1]), (f * 4)[None, None])
                          for i in range(2)], 1)
    assert torch.allclose(upsample2x(x, f), expected, atol=1e-5)
    w = torch.randn(3, 2, 3, 3, generator=gen)
    # Up-sampling conv: filter after a pad of 1 + 2 before / 1 + 1 after, then true convolution with w.
    filtered = torch.cat([_true_conv(F.pad(_zero_insert(x[:, i:i + 1]), [3, 2, 3, 2]), (f * 4)[None, None])
                          for i in range(2)], 1)
    expected = _true_conv(filtered, w)
    got = modulated_conv2d(x, w, torch.ones(1, 2), demodulate=False, up=2, padding=1, resample_filter=f)
    assert got.shape == (1, 3, 10, 10)
    assert torch.allclose(got, expected, atol=1e-4)


def test_render_seed_and_save_image(sg2, reference_dir, tmp_path):
    data = np.load(reference_dir / "sg2_64_tiny" / "seed0042_psi0.7_const.npz")
    img = render_seed(sg2, 42, psi=0.7, noise_mode="const")
    assert (img - torch.from_numpy(data["img"])).abs().max() <= 1e-3
    png = np.asarray(Image.open(save_image(img, tmp_path / "out.png")))
    assert png.shape == (64, 64, 3) and (png == data["img_uint8"]).mean() >= 0.999
    raw = np.load(save_image(img, tmp_path / "out.npy"))
    assert raw.dtype == np.float32 and np.array_equal(raw, img[0].numpy())
    with pytest.raises(ValueError):
        save_image(img, tmp_path / "out.gif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy", "out.png"]


def test_half_precision_feature_maps_stay_half_between_layers():
    """Autocast (the GPU's float16 path, here the CPU's bfloat16) keeps conv layers' outputs half; the
    RGB image accumulates in float32 and stays close to the float32 picture."""
    model = make_random_model(make_settings(32, z_dim=64, w_dim=64, mapping_layers=2, channel_base=512,
                                            channel_max=32), seed=7)
    outputs: dict[str, torch.dtype] = {}
    for name, module in model.synthesis.named_modules():
        if name.endswith(("conv0", "conv1", "torgb")):
            module.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out.dtype))
    ws = model.mapping(torch.randn(1, 64, generator=torch.Generator().manual_seed(0)))
    full = model.synthesis(ws, noise_mode="const")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = model.synthesis(ws, noise_mode="const")
    assert {dtype for name, dtype in outputs.items() if "conv" in name} == {torch.bfloat16}
    assert {dtype for name, dtype in outputs.items() if "torgb" in name} == {torch.float32}
    assert half.dtype == torch.float32
    error = (half - full).abs()
    assert error.mean().item() < 0.01 and error.max().item() < 0.1


def _cached(model: torch.nn.Module) -> dict[tuple[str, str], int]:
    """Which derived tensors each module keeps, by identity."""
    return {(name, key): id(value[1]) for name, module in model.synthesis.named_modules()
            for key, value in module.__dict__.get("_derived", {}).items()}


def test_cached_weights_survive_inference_mode_frames():
    """Derived weights built from derived weights (the up-convolution's transposed, channels_last
    copy of the shared weight) stay cached when frames run under inference mode, as the graph runs them."""
    model = make_random_model(make_settings(32, z_dim=64, w_dim=64, mapping_layers=2, channel_base=512,
                                            channel_max=32), seed=8)

    def cached() -> dict[tuple[str, str], int]:
        return _cached(model)

    ws = model.mapping(torch.randn(1, 64, generator=torch.Generator().manual_seed(0)))
    with torch.inference_mode():
        first = model.synthesis(ws, noise_mode="const")
        after_first = cached()
        second = model.synthesis(ws, noise_mode="const")
    assert ("b8.conv0", "wt") in after_first  # 4 px input: the shared-weight path
    assert cached() == after_first
    assert torch.equal(first, second)


@pytest.mark.parametrize("architecture", ["skip", "resnet"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_autocast_path_keeps_its_constants_and_renders_bit_identically(architecture, channels_last):
    """Under autocast (CUDA's float16, here the CPU's bfloat16) the plain formulation runs with the
    constants it derives (cast weights, filters, scaled noise) kept between frames: the same pixels as
    rebuilding them every frame, and nothing rebuilt on the next frame."""
    model = make_random_model(make_settings(32, z_dim=64, w_dim=64, mapping_layers=2, channel_base=512,
                                            channel_max=32, architecture=architecture), seed=9)
    model.set_channels_last(channels_last)
    ws = model.mapping(torch.randn(1, 64, generator=torch.Generator().manual_seed(0)))

    def frames() -> list[torch.Tensor]:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return [model.synthesis(ws, noise_scale=0.5), model.synthesis(ws), model.synthesis(ws)]

    cached = frames()
    kept = _cached(model)
    assert {("b32.conv0", "fir"), ("b16.conv1", "noise"), ("b16.conv1", "bias"), ("b8.conv1.affine", "scaled")} \
        <= set(kept)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        again = model.synthesis(ws)
    assert _cached(model) == kept and torch.equal(again, cached[1])  # the next frame rebuilds nothing
    set_fast_path(model, False)  # nothing kept: every constant rebuilt per frame
    for got, want in zip(cached, frames(), strict=True):
        assert torch.equal(got, want)
