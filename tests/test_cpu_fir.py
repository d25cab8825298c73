"""Our C filter-and-finish pass (kernels/cpu_fir) against the torch path it replaces in StyleGAN2's
up-sampling layers on the CPU: the depthwise filter, then scale, bias, noise, leaky ReLU and clamp."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from kernel_builds import require_built

from autolume_graph.gan.kernels import cpu_fir
from autolume_graph.gan.stylegan2 import fir_filter


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    require_built(cpu_fir.support)


def _filter(taps: list[float]) -> torch.Tensor:
    f = torch.outer(torch.tensor(taps), torch.tensor(taps[::-1]))  # asymmetric: a flip left out shows
    return f / f.sum()


def _torch_path(t, f, gain, pad0, pad1, scale, bias, noise, slope, clamp) -> torch.Tensor:
    y = fir_filter(t, f, gain, pad0, pad1)
    if scale is not None:
        y = y * scale[:, :, None, None]
    if bias is not None:
        y = y + bias[None, :, None, None]
    if noise is not None:
        y = y + noise
    y = F.leaky_relu(y, slope)
    return y if clamp is None else y.clamp(-clamp, clamp)


@pytest.mark.parametrize("batch, channels, size, taps, pads, noise_kind, clamp", [
    (1, 64, (33, 33), [1.0, 3.0, 3.0, 1.0], (1, 1), "const", 256.0),  # StyleGAN2's up layer, whole vectors
    (2, 37, (17, 21), [1.0, 2.0, 5.0, 1.0], (2, 0), "random", 0.3),  # channel tail, asymmetric pads, clamping
    (1, 5, (6, 9), [1.0], (0, 0), None, None),  # one tap: the finish alone, channels fewer than a vector
    (3, 16, (9, 7), [1.0, 4.0, 1.0], (-1, 3), "const", 1.0),  # a crop before, more padding after
])
def test_matches_the_torch_path(batch, channels, size, taps, pads, noise_kind, clamp) -> None:
    gen = torch.Generator().manual_seed(channels)
    t = torch.randn(batch, channels, *size, generator=gen).contiguous(memory_format=torch.channels_last)
    f = _filter(taps)
    out_h = size[0] + sum(pads) - len(taps) + 1
    out_w = size[1] + sum(pads) - len(taps) + 1
    scale = torch.rand(batch, channels, generator=gen) + 0.5
    bias = torch.randn(channels, generator=gen)
    noise = {None: None, "const": torch.randn(out_h, out_w, generator=gen),
             "random": torch.randn(batch, 1, out_h, out_w, generator=gen)}[noise_kind]
    got = cpu_fir.fir_finish(t, cpu_fir.separable(f, 4.0), *pads, scale, bias, noise, 0.2, clamp)
    want = _torch_path(t, f, 4.0, *pads, scale, bias, noise, 0.2, clamp)
    assert got.shape == want.shape == (batch, channels, out_h, out_w)
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert (got - want).abs().max().item() < 1e-5


def test_planar_input_and_no_finish() -> None:
    t = torch.randn(1, 24, 10, 12, generator=torch.Generator().manual_seed(3))  # planes: converted first
    f = _filter([1.0, 3.0, 3.0, 1.0])
    got = cpu_fir.fir_finish(t, cpu_fir.separable(f, 2.0), 1, 1)
    assert (got - fir_filter(t, f, 2.0, 1, 1)).abs().max().item() < 1e-5


def test_only_outer_products_are_separable() -> None:
    assert cpu_fir.separable(_filter([1.0, 3.0, 3.0, 1.0]), 4.0) is not None
    assert cpu_fir.separable(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), 4.0) is None  # rank 2
    assert cpu_fir.separable(torch.zeros(4, 4), 4.0) is None
    assert cpu_fir.separable(torch.ones(4), 4.0) is None  # not a 2-D filter


def test_noise_of_another_size_is_refused() -> None:
    t = torch.randn(1, 8, 10, 10).contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="noise of"):
        cpu_fir.fir_finish(t, cpu_fir.separable(_filter([1.0, 1.0]), 1.0), 0, 0, noise=torch.zeros(5, 5))
