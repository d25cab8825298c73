"""StyleGAN3-R's modulated 1x1 convolutions by our matrix product: against torch's convolution in
float64, the layouts in and out, when it is used, and the reference network rendered through it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autolume_graph.gan import pointwise, stylegan3
from autolume_graph.gan.cpu_features import Support
from autolume_graph.gan.kernels import cpu_gemm, cpu_winograd
from autolume_graph.gan.safe_pickle import read_generator


@pytest.fixture
def built() -> None:
    for support in (cpu_gemm.support(wait_s=120), cpu_winograd.support(wait_s=120)):
        if not support.available:
            if os.environ.get("AUTOLUME_CI"):
                pytest.fail(f"our C kernels must build under CI: {support.reason}")
            pytest.skip(support.reason)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize(("batch", "cin", "cout", "height", "width"),
                         [(1, 64, 48, 9, 13), (2, 37, 21, 5, 7), (1, 3, 1, 1, 1)])  # columns not whole strips
def test_matches_the_convolution(built, layout, batch, cin, cout, height, width) -> None:
    gen = torch.Generator().manual_seed(batch * cin + cout)
    x = torch.randn(batch, cin, height, width, generator=gen).contiguous(memory_format=layout)
    weight = torch.randn(cout, cin, 1, 1, generator=gen)
    gains = torch.rand(batch, cin, generator=gen) + 0.5
    got = pointwise.conv1x1(x, weight, gains)
    want = F.conv2d(x.double() * gains.double()[:, :, None, None], weight.double())
    assert got.shape == want.shape
    assert got.is_contiguous(memory_format=torch.channels_last) or cout % cpu_gemm.strip()  # padded rows: a view
    assert (got.double() - want).abs().max().item() < 1e-5 * max(1.0, want.abs().max().item())


def test_used_only_where_it_pays_and_nothing_needs_a_gradient(built, monkeypatch) -> None:
    monkeypatch.setattr(pointwise, "support", lambda: Support(True, "test"))
    big = torch.zeros(1, 8, 128, 128)
    assert pointwise.pays_off(big, torch.zeros(8, 8, 1, 1))
    assert not pointwise.pays_off(torch.zeros(1, 8, 127, 128))  # below MIN_PIXELS
    assert not pointwise.pays_off(big.bfloat16())
    with torch.enable_grad():  # other test modules switch gradients off for the whole process
        assert not pointwise.pays_off(big, torch.zeros(8, 8, 1, 1, requires_grad=True))
    monkeypatch.setattr(pointwise, "support", lambda: Support(False, "test"))
    assert not pointwise.pays_off(big)


def test_the_choice_is_measured_and_says_why(built, monkeypatch) -> None:
    measured = pointwise.support()
    assert measured.reason.startswith(("ours (", "oneDNN (")) and "ms" in measured.reason
    monkeypatch.setattr(cpu_gemm, "support", lambda wait_s=0.0: Support(False, "no compiler"))
    off = pointwise.support()
    assert not off.available and "no compiler" in off.reason


def test_the_reference_network_renders_the_same_through_it(built, reference_dir: Path, monkeypatch) -> None:
    model = stylegan3.build_from_record(read_generator(reference_dir / "sg3r_64_tiny.pkl").record)
    ws = torch.from_numpy(np.load(reference_dir / "sg3r_64_tiny" / "seed0000_psi1.0_const.npz")["w"])
    calls = []
    with torch.no_grad():
        monkeypatch.setattr(pointwise, "pays_off", lambda *args: False)
        plain = model.synthesis(ws, noise_mode="const")
        monkeypatch.setattr(pointwise, "pays_off", lambda x, *operands: calls.append(x.shape) or True)
        ours = model.synthesis(ws, noise_mode="const")
    assert len(calls) == sum(layer.conv_kernel == 1 for layer in model.synthesis.layers())
    assert (ours - plain).abs().max().item() < 1e-5
