"""StyleGAN3 T and R against images rendered by NVIDIA's reference code, plus the fast activation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sg3_random import random_record

from autolume_graph.gan.filtered_lrelu import FilteredLReLU, filtered_lrelu_reference
from autolume_graph.gan.safe_pickle import read_generator
from autolume_graph.gan.stylegan3 import build_from_record, build_from_settings

MODELS = ["sg3t_64_tiny", "sg3r_64_tiny"]
TRANSFORM = re.compile(r"_tx(-?[\d.]+)_ty(-?[\d.]+)_rot(-?[\d.]+)$")


@pytest.fixture(scope="module", params=MODELS)
def loaded(request, reference_dir: Path):
    record = read_generator(reference_dir / f"{request.param}.pkl").record
    return request.param, record, build_from_record(record), reference_dir / request.param


def _to_uint8(img: torch.Tensor) -> np.ndarray:
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()


def test_every_reference_case_matches(loaded):
    _, _, model, folder = loaded
    cases = sorted(folder.glob("seed*.npz"))
    assert len(cases) >= 17 and any(TRANSFORM.search(case.stem) for case in cases)
    for case in cases:
        data = np.load(case)
        found = TRANSFORM.search(case.stem)
        tx, ty, rot = (float(v) for v in found.groups()) if found else (0.0, 0.0, 0.0)
        model.set_transform(tx, ty, rot)
        expected_transform = data["transform"] if found else np.eye(3)
        np.testing.assert_allclose(model.synthesis.input.transform.numpy(), expected_transform, atol=1e-6)
        with torch.no_grad():
            ws = model.mapping(torch.from_numpy(data["z"]), psi=float(data["truncation_psi"]))
            img = model.synthesis(torch.from_numpy(data["w"]), noise_mode=str(data["noise_mode"]))
        assert (ws - torch.from_numpy(data["w"])).abs().max() <= 1e-4, case.name
        assert (img - torch.from_numpy(data["img"])).abs().max() <= 1e-3, case.name
        assert (_to_uint8(img) == data["img_uint8"]).mean() >= 0.999, case.name
    model.set_transform(0, 0, 0)


def test_transform_moves_the_picture(loaded):
    _, _, model, folder = loaded
    ws = torch.from_numpy(np.load(folder / "seed0000_psi1.0_const.npz")["w"])
    with torch.no_grad():
        plain = model.synthesis(ws)
        model.set_transform(0.3, -0.2, 20)
        moved = model.synthesis(ws)
        model.set_transform(0, 0, 0)
        back = model.synthesis(ws)
    assert (plain - moved).abs().max() > 0.1
    assert torch.equal(plain, back)


def test_edits_and_capture_without_hooks(loaded):
    _, _, model, folder = loaded
    ws = torch.from_numpy(np.load(folder / "seed0001_psi1.0_const.npz")["w"])
    names = model.layer_names()
    assert names[0] == "input" and len(names) == model.num_ws - 1  # toRGB makes the image, not a map
    with torch.no_grad():
        img, act = model.synthesis(ws, capture=names[3])
        edited, act_edited = model.synthesis(ws, layer_edits={names[3]: lambda x: x * 0}, capture=names[3])
        with pytest.raises(KeyError):
            model.synthesis(ws, capture="nope")
    info = model.layer_info()[3]
    assert act.shape == (1, info.channels, info.resolution, info.resolution)
    assert act.abs().max() > 0 and act_edited.abs().max() == 0
    assert (img - edited).abs().max() > 0.01


def test_settings_rebuild_the_same_network(loaded):
    _, record, model, folder = loaded
    rebuilt = build_from_settings(model.settings())
    rebuilt.load_state_dict(model.state_dict())
    ws = torch.from_numpy(np.load(folder / "seed0042_psi0.7_const.npz")["w"])
    with torch.no_grad():
        assert torch.equal(rebuilt.synthesis(ws), model.synthesis(ws))
    assert model.family == "stylegan3" and model.img_resolution == 64 and model.num_ws == 16


@pytest.mark.parametrize("name,config,base,cmax", [("sg3t_64_tiny", "T", 8192, 128), ("sg3r_64_tiny", "R", 16384, 256)])
def test_random_config_schedule_equals_the_pickles(reference_dir: Path, name, config, base, cmax):
    stored = read_generator(reference_dir / f"{name}.pkl").record.children["synthesis"]
    made = random_record(64, config, channel_base=base, channel_max=cmax).children["synthesis"]
    assert made.attrs["layer_names"] == stored.attrs["layer_names"]
    assert made.attrs["output_scale"] == stored.attrs["output_scale"]
    for key in ("channels", "size", "sampling_rate", "bandwidth"):
        np.testing.assert_allclose(made.children["input"].attrs[key], stored.children["input"].attrs[key])
    for layer in stored.attrs["layer_names"]:
        ours, theirs = made.children[layer], stored.children[layer]
        for key, value in ours.attrs.items():
            np.testing.assert_allclose(np.asarray(value, dtype=float), np.asarray(theirs.attrs[key], dtype=float),
                                       rtol=1e-12, err_msg=f"{layer}.{key}")
        for key in ("up_filter", "down_filter"):
            if theirs.buffers[key] is None:
                assert ours.buffers[key] is None
            else:
                torch.testing.assert_close(ours.buffers[key], theirs.buffers[key], atol=1e-6, rtol=0)


@pytest.mark.parametrize("up,down,taps_up,taps_down,padding,radial", [
    (2, 2, 12, 12, [9, 8, 9, 8], False),
    (4, 2, 24, 12, [-6, -9, -6, -9], False),
    (2, 2, 12, 12, [-5, -6, -4, -7], False),
    (2, 2, 12, 12, [11, 10, 11, 10], True),
    (3, 1, 9, 5, [3, 4, 2, 5], False),
])
def test_fast_filtered_lrelu_equals_the_definition(up, down, taps_up, taps_down, padding, radial):
    gen = torch.Generator().manual_seed(up * 100 + down)
    x = torch.randn(2, 5, 23, 19, generator=gen) * 3
    bias = torch.randn(5, generator=gen)
    fu = torch.rand(taps_up, generator=gen)  # asymmetric on purpose: flips must be right
    fd = torch.rand((taps_down, taps_down) if radial else (taps_down,), generator=gen)
    fu, fd = fu / fu.sum(), fd / fd.sum()  # unit DC gain, as real low-pass filters
    fast = FilteredLReLU(fu, fd, up, down, padding, (19, 23), 5, gain=1.5, slope=0.2, clamp=4.0)
    expected = filtered_lrelu_reference(x, fu, fd, bias, up, down, padding, 1.5, 0.2, 4.0)
    got = fast(x, bias)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
