"""Winograd F(4x4, 3x3) convolution: equal to the direct convolution, and used where it pays."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autolume_graph.gan import winograd
from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.stylegan2 import make_settings


@pytest.mark.parametrize("shape", [(1, 128, 64, 16, 16), (2, 32, 48, 13, 7), (1, 8, 8, 1, 1), (3, 16, 24, 5, 9)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_matches_direct_convolution(shape: tuple[int, ...], layout: torch.memory_format) -> None:
    batch, cin, cout, height, width = shape
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(batch, cin, height, width, generator=gen).contiguous(memory_format=layout)
    weight = torch.randn(cout, cin, 3, 3, generator=gen) / (9 * cin) ** 0.5
    got = winograd.conv3x3(x, winograd.transform_weight(weight))
    want = F.conv2d(x, weight, padding=1)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert (got - want).abs().max().item() < 1e-4


def test_pays_off_on_small_wide_layers_only() -> None:
    assert winograd.pays_off(512, 512, 64, 64)
    assert winograd.pays_off(256, 256, 8, 8)
    assert not winograd.pays_off(256, 256, 128, 128)  # map too large for the channel count
    assert not winograd.pays_off(128, 128, 8, 8)  # too few channels
    assert not winograd.pays_off(512, 128, 8, 8)
    assert not winograd.pays_off(512, 512, 4, 4)  # a single tile


def test_fast_path_uses_it_and_renders_the_same_picture() -> None:
    model = make_random_model(make_settings(32, z_dim=64, w_dim=64, mapping_layers=2, channel_base=8192,
                                            channel_max=256), seed=5)
    ws = model.mapping(torch.randn(2, 64, generator=torch.Generator().manual_seed(1)), psi=0.8)
    synthesis = model.synthesis
    synthesis.winograd = False
    direct = synthesis(ws, noise_mode="const")
    assert not [m for m in synthesis.modules() if "winograd" in m.__dict__.get("_derived", {})]
    synthesis.winograd = True
    used = synthesis(ws, noise_mode="const")
    layers = [m for m in synthesis.modules() if "winograd" in m.__dict__.get("_derived", {})]
    # 256 channels at every resolution (channel_base 8192): the 3x3 convolutions from 8 px on
    assert {layer.name for layer in layers} == {"b8.conv1", "b16.conv1", "b32.conv1"}
    assert (used - direct).abs().max().item() < 1e-4
