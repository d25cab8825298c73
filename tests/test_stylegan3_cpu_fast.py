"""StyleGAN3's fast CPU path (the fused C activation or banded-matrix upsampling, Winograd 3x3 convs)
against the previous path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sg3_random import lowpass_filter, random_record

from autolume_graph.gan import filtered_lrelu, stylegan3
from autolume_graph.gan.filtered_lrelu import FilteredLReLU, filtered_lrelu_reference
from autolume_graph.gan.safe_pickle import read_generator


def _previous_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filtered_lrelu, "CPU_BANDED", False)
    monkeypatch.setattr(filtered_lrelu, "CPU_FUSED", False)
    monkeypatch.setattr(stylegan3, "CPU_WINOGRAD", False)


def test_fast_path_is_the_default():
    assert filtered_lrelu.CPU_BANDED and filtered_lrelu.CPU_FUSED and stylegan3.CPU_WINOGRAD


@pytest.mark.parametrize(("up", "taps", "padding", "size"), [
    (2, 12, [10, 9, 10, 9], (20, 20)),
    (4, 24, [21, 20, 21, 20], (18, 18)),
    (2, 12, [3, 1, 0, 5], (11, 17)),  # asymmetric, sizes not a multiple of the block
    (2, 12, [-2, 0, 1, -1], (40, 37)),  # negative padding crops
    (1, 5, [2, 2, 1, 3], (19, 23)),  # filter without upsampling
    (4, 8, [0, 0, 0, 0], (50, 7)),
])
def test_banded_upsampling_equals_polyphase_and_definition(monkeypatch, up, taps, padding, size):
    monkeypatch.setattr(filtered_lrelu, "CPU_FUSED", False)  # the torch paths (the C kernel: test_cpu_kernels)
    gen = torch.Generator().manual_seed(up * 100 + taps)
    channels, (w, h) = 5, size
    fu = lowpass_filter(taps, cutoff=2.0, width=1.5, fs=8.0)
    fd = lowpass_filter(12, cutoff=2.0, width=1.5, fs=8.0)
    act = FilteredLReLU(fu, fd, up, 2, padding, (w, h), channels, gain=2**0.5, slope=0.2, clamp=1.5)
    x, bias = torch.randn(2, channels, h, w, generator=gen), torch.randn(channels, generator=gen)
    fast = act(x, bias)
    with monkeypatch.context() as patch:
        patch.setattr(filtered_lrelu, "CPU_BANDED", False)
        previous = act(x, bias)
    expected = filtered_lrelu_reference(x, fu, fd, bias, up, 2, padding, 2**0.5, 0.2, 1.5)
    assert fast.shape == previous.shape == expected.shape
    assert (fast - previous).abs().max() <= 1e-5
    assert (fast - expected).abs().max() <= 1e-5
    assert fast.is_contiguous(memory_format=torch.channels_last)


@pytest.fixture(scope="module")
def wide_layer():
    """A StyleGAN3-T layer wide enough (256 channels, 36 px) for Winograd to pay, with its input."""
    model = stylegan3.build_from_record(random_record(16, "T", seed=3, channel_base=8192, channel_max=256))
    gen = torch.Generator().manual_seed(2)
    return model.synthesis.layers()[1], torch.randn(1, 256, 36, 36, generator=gen), torch.randn(1, 512, generator=gen)


def test_winograd_layer_matches_the_direct_convolution_and_follows_new_weights(wide_layer, monkeypatch):
    layer, x, w = wide_layer
    assert layer._uses_winograd(x)  # the test must exercise Winograd

    def fast_and_previous() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad(), monkeypatch.context() as patch:
            fast = layer(x, w)
            _previous_path(patch)
            return fast, layer(x, w)

    fast, previous = fast_and_previous()
    assert (fast - previous).abs().max() <= 1e-4 * previous.abs().max()
    # The cached transformed filters are rebuilt when the weights change (e.g. a model mix writes them).
    saved = layer.weight.detach().clone()
    with torch.no_grad():
        layer.weight.add_(torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(4)))
    try:
        changed, previous_changed = fast_and_previous()
    finally:
        with torch.no_grad():
            layer.weight.copy_(saved)
    assert (changed - fast).abs().max() > 1e-2
    assert (changed - previous_changed).abs().max() <= 1e-4 * previous_changed.abs().max()


@pytest.mark.parametrize("name", ["sg3t_64_tiny", "sg3r_64_tiny"])
def test_reference_networks_match_previous_path_and_images(reference_dir: Path, monkeypatch, name):
    model = stylegan3.build_from_record(read_generator(reference_dir / f"{name}.pkl").record)
    data = np.load(reference_dir / name / "seed0000_psi1.0_const.npz")
    ws = torch.from_numpy(data["w"])
    with torch.no_grad():
        fast = model.synthesis(ws)
        _previous_path(monkeypatch)
        previous = model.synthesis(ws)
    assert (fast - previous).abs().max() <= 1e-4
    assert (fast - torch.from_numpy(data["img"])).abs().max() <= 1e-3
