"""Winograd F(4x4, 3x3) convolution: equal to the direct convolution, and used where it pays."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from autolume_graph.gan import winograd
from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.kernels import cpu_winograd
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


def test_with_torch_transforms_it_pays_on_small_wide_layers_only(monkeypatch) -> None:
    monkeypatch.setattr(winograd, "C_TRANSFORMS", False)
    assert not winograd.transforms().available
    assert winograd.pays_off(512, 512, 64, 64)
    assert winograd.pays_off(256, 256, 8, 8)
    assert not winograd.pays_off(256, 256, 128, 128)  # map too large for the channel count
    assert not winograd.pays_off(128, 128, 8, 8)  # too few channels
    assert not winograd.pays_off(512, 128, 8, 8)
    assert not winograd.pays_off(512, 512, 4, 4)  # a single tile


def test_with_c_transforms_it_pays_from_32_channels_and_16_px_at_any_size(c_transforms) -> None:
    assert winograd.pays_off(512, 512, 148, 148)
    assert winograd.pays_off(128, 181, 276, 276)
    assert winograd.pays_off(256, 256, 16, 16)
    assert winograd.pays_off(32, 512, 512, 512)
    assert not winograd.pays_off(16, 512, 256, 256)  # too few channels
    assert winograd.pays_off(128, 512, 8, 8)  # wide layers from 8 px
    assert not winograd.pays_off(64, 64, 8, 8)  # too few tiles for the channel count
    assert not winograd.pays_off(512, 512, 4, 4)  # a single tile


def test_fast_path_uses_it_and_renders_the_same_picture(monkeypatch) -> None:
    monkeypatch.setattr(winograd, "C_TRANSFORMS", False)  # the layer choice of the torch transforms
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


@pytest.fixture
def c_transforms():
    support = cpu_winograd.support(wait_s=120)
    if not support.available:
        if os.environ.get("AUTOLUME_CI"):
            pytest.fail(f"the C transforms must build under CI: {support.reason}")
        pytest.skip(support.reason)


@pytest.mark.parametrize("shape", [(1, 128, 64, 16, 16), (2, 32, 48, 13, 7), (1, 8, 8, 1, 1), (3, 16, 24, 5, 9),
                                   (1, 9, 20, 30, 11)])  # channels not a multiple of the vector width
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("pad", [1, 2])
def test_c_transforms_match_direct_convolution_with_gains(product, monkeypatch, shape, layout, pad) -> None:
    monkeypatch.setattr(cpu_winograd, "BLOCK_BYTES", 4096)  # several blocks of tiles even on small maps
    batch, cin, cout, height, width = shape
    gen = torch.Generator().manual_seed(sum(shape) + pad)
    x = torch.randn(batch, cin, height, width, generator=gen).contiguous(memory_format=layout)
    weight = torch.randn(cout, cin, 3, 3, generator=gen) / (9 * cin) ** 0.5
    gains = torch.rand(batch, cin, generator=gen) + 0.5
    got = winograd.conv3x3(x, winograd.transform_weight(weight), pad, gains)
    want = F.conv2d(x * gains[:, :, None, None], weight, padding=pad)
    assert got.shape == want.shape and got.dtype == want.dtype
    # planes are transposed to channels-last pixels first (the transforms read channel vectors), and stay so
    assert got.is_contiguous(memory_format=torch.channels_last if cin > 1 else torch.contiguous_format)
    assert (got - want).abs().max().item() < 1e-4


def test_c_transforms_make_the_same_picture_as_torch_transforms(c_transforms, monkeypatch) -> None:
    model = make_random_model(make_settings(64, z_dim=64, w_dim=64, mapping_layers=2, channel_base=8192,
                                            channel_max=256), seed=6)
    ws = model.mapping(torch.randn(1, 64, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        fast = model.synthesis(ws, noise_mode="const")
        used = [m.name for m in model.synthesis.modules() if "winograd" in m.__dict__.get("_derived", {})]
        monkeypatch.setattr(winograd, "C_TRANSFORMS", False)
        model.synthesis.winograd = False
        direct = model.synthesis(ws, noise_mode="const")
    assert {"b16.conv1", "b32.conv1", "b64.conv1"} <= set(used)  # 256 channels from 16 px on
    assert (fast - direct).abs().max().item() < 1e-4


@pytest.mark.parametrize("c_side", [True, False], ids=["C transforms", "torch transforms"])
@pytest.mark.parametrize("noise_shape", ["shared", "per sample", None])
def test_the_layer_epilogue_in_the_output_pass(product, monkeypatch, c_side, noise_shape) -> None:
    monkeypatch.setattr(winograd, "C_TRANSFORMS", c_side)
    gen = torch.Generator().manual_seed(11)
    batch, cin, cout, size = 2, 12, 20, 9
    x = torch.randn(batch, cin, size, size, generator=gen).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(cout, cin, 3, 3, generator=gen) / (9 * cin) ** 0.5
    scale, bias = torch.rand(batch, cout, generator=gen) + 0.5, torch.randn(cout, generator=gen)
    noise = {"shared": torch.randn(size, size, generator=gen), "per sample": torch.randn(
        batch, 1, size, size, generator=gen), None: None}[noise_shape]
    got = winograd.conv3x3(x, winograd.transform_weight(weight), 1, None, scale, bias, noise, 0.2, 0.8)
    want = F.conv2d(x, weight, padding=1) * scale[:, :, None, None] + bias[None, :, None, None]
    want = F.leaky_relu(want + (0 if noise is None else noise), 0.2).clamp(-0.8, 0.8)
    assert (want.abs() == 0.8).float().mean() > 0.05  # the clamp is reached
    assert (got - want).abs().max().item() < 1e-4


def test_c_transforms_work_in_and_out_of_inference_mode_and_leave_gradients_to_torch(c_transforms) -> None:
    gen = torch.Generator().manual_seed(3)
    x, weight = torch.randn(1, 16, 20, 20, generator=gen), torch.randn(16, 16, 3, 3, generator=gen)
    with torch.inference_mode():  # the thread's buffers are made here first
        first = winograd.conv3x3(x, winograd.transform_weight(weight))
    again = winograd.conv3x3(x, winograd.transform_weight(weight))  # and written again outside it
    assert torch.equal(first, again)
    x.requires_grad_(True)
    with torch.enable_grad():  # other test modules switch it off for the whole session
        winograd.conv3x3(x, winograd.transform_weight(weight)).sum().backward()  # the torch path, differentiable
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_styles_are_scaled_to_one_so_a_far_out_w_cannot_overflow_the_modulation() -> None:
    from autolume_graph.gan.layers import unit_styles

    styles = torch.randn(3, 40, generator=torch.Generator().manual_seed(4))
    styles[2] = 0
    scaled = unit_styles(styles * 1e36)
    assert torch.isfinite(scaled).all() and torch.isfinite(scaled.square().sum(1)).all()
    assert torch.allclose(scaled, unit_styles(styles))
    assert torch.allclose(scaled[:2].abs().amax(1), torch.ones(2)) and (scaled[2] == 0).all()


@pytest.fixture(params=["fused", "blocks", "torch.bmm"])
def product(request, c_transforms, monkeypatch):
    """Every way the C transforms run, whichever this CPU's measurement chose: our product with the whole
    convolution fused chunk by chunk (several chunks), our product over whole blocks, torch.bmm."""
    from autolume_graph.gan.cpu_features import Support
    from autolume_graph.gan.kernels import cpu_build, cpu_gemm

    ours = request.param != "torch.bmm"
    built = cpu_build.support(cpu_gemm.SOURCE, wait_s=120)
    if ours and not built.available:
        pytest.fail(f"our product did not build: {built.reason}")
    monkeypatch.setattr(winograd, "products", lambda: Support(ours, "forced by the test"))
    monkeypatch.setattr(cpu_winograd, "CHUNK_BYTES", 1)  # chunks of the fewest tiles
    if request.param == "blocks":
        monkeypatch.setattr(cpu_winograd, "FUSED_CACHE_SHARE", 1 << 40)  # no filters fit
    return ours


def _up_reference(x: torch.Tensor, weight: torch.Tensor, f: torch.Tensor, pad0: int) -> torch.Tensor:
    """StyleGAN2's up-sampling convolution as the slow path computes it: transposed conv, then the filter."""
    from autolume_graph.gan.stylegan2 import fir_filter

    return fir_filter(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2), f, 4, pad0, f.shape[-1] - 2 - pad0)


@pytest.mark.parametrize(("taps", "pad0"), [(4, 1), (2, 0), (2, 1), (2, -1)])
def test_up_sampling_convolution_splits_into_four_3x3_phases(taps: int, pad0: int) -> None:
    gen = torch.Generator().manual_seed(taps + pad0)
    weight = torch.randn(5, 7, 3, 3, generator=gen, dtype=torch.float64)
    f = torch.rand(taps, taps, generator=gen, dtype=torch.float64)  # not symmetric: a flip would show
    x = torch.randn(2, 7, 9, 6, generator=gen, dtype=torch.float64)
    phases = F.conv2d(x, winograd.up2_phases(weight, f, pad0), padding=1)  # [2, 4 O, 9, 6]
    interleaved = phases.view(2, 2, 2, 5, 9, 6).permute(0, 3, 4, 1, 5, 2).reshape(2, 5, 18, 12)
    assert (interleaved - _up_reference(x, weight, f, pad0)).abs().max().item() < 1e-12


@pytest.mark.parametrize(("taps", "pad0"), [(4, 0), (4, 2), (6, 2)])
def test_phases_that_need_more_than_3_taps_are_refused(taps: int, pad0: int) -> None:
    assert winograd.up2_phases(torch.randn(4, 4, 3, 3), torch.rand(taps, taps), pad0) is None


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("shape", [(1, 24, 32, 9, 13), (2, 9, 21, 6, 5)])  # 4 x 21 columns: not whole strips
@pytest.mark.parametrize("noise_shape", ["shared", "per sample"])
def test_up_sampling_through_winograd_with_the_layer_epilogue(product, monkeypatch, layout, shape,
                                                               noise_shape) -> None:
    from autolume_graph.gan.kernels import cpu_gemm

    monkeypatch.setattr(cpu_winograd, "BLOCK_BYTES", 8192)  # several blocks of tiles
    batch, cin, cout, height, width = shape
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(batch, cin, height, width, generator=gen).contiguous(memory_format=layout)
    weight = torch.randn(cout, cin, 3, 3, generator=gen) / (9 * cin) ** 0.5
    f = torch.rand(4, 4, generator=gen)
    f /= f.sum()
    gains, scale = torch.rand(batch, cin, generator=gen) + 0.5, torch.rand(batch, cout, generator=gen) + 0.5
    bias = torch.randn(cout, generator=gen)
    noise = torch.randn(2 * height, 2 * width, generator=gen) if noise_shape == "shared" else torch.randn(
        batch, 1, 2 * height, 2 * width, generator=gen)
    want = _up_reference(x * gains[:, :, None, None], weight, f, 1) * scale[:, :, None, None]
    want = F.leaky_relu(want + bias[None, :, None, None] + noise, 0.2).clamp(-0.8, 0.8)
    assert (want.abs() == 0.8).float().mean() > 0.05  # the clamp is reached
    filters = winograd.transform_weight(winograd.up2_phases(weight, f, 1))
    assert isinstance(filters, cpu_gemm.Packed) == product  # packed only for our product
    for c_side in (True, False):
        monkeypatch.setattr(winograd, "C_TRANSFORMS", c_side)
        got = winograd.conv3x3(x, filters, 1, gains, scale, bias, noise, 0.2, 0.8, up=2)
        assert got.shape == want.shape
        assert (got - want).abs().max().item() < 1e-4, c_side


def test_fast_path_up_samples_through_winograd_and_renders_the_same_picture(product, monkeypatch) -> None:
    monkeypatch.setattr(winograd, "UP_MIN_SIDE", 8)  # this small model's maps
    model = make_random_model(make_settings(64, z_dim=64, w_dim=64, mapping_layers=2, channel_base=4096,
                                            channel_max=128), seed=8)
    ws = model.mapping(torch.randn(1, 64, generator=torch.Generator().manual_seed(3)))
    with torch.no_grad():
        model.synthesis.winograd = False
        direct = model.synthesis(ws, noise_mode="const")
        model.synthesis.winograd = True
        fast = model.synthesis(ws, noise_mode="const")
    split = {m.name for m in model.synthesis.modules()
             if m.__dict__.get("_derived", {}).get("winograd", (None, None))[1] is not None and m.up == 2}
    assert split == {"b16.conv0", "b32.conv0", "b64.conv0"}  # 8 px input maps and up
    assert (fast - direct).abs().max().item() < 1e-4


def test_up_layers_on_small_maps_keep_the_transposed_convolution(c_transforms) -> None:
    assert winograd.pays_off(256, 128, 128, 128, up=2)
    assert winograd.pays_off(64, 32, 256, 256, up=2)
    assert not winograd.pays_off(512, 512, 32, 32, up=2)
    assert not winograd.pays_off(512, 512, 128, 128, up=3)


def test_the_product_is_chosen_by_timing_a_layer_and_says_so(c_transforms) -> None:
    from autolume_graph.gan.kernels import cpu_build, cpu_gemm

    if not cpu_build.support(cpu_gemm.SOURCE, wait_s=120).available:
        pytest.fail("our product did not build")
    chosen = winograd.products()
    assert chosen.reason.startswith("ours" if chosen.available else "torch.bmm")
    assert chosen.reason.count(" ms") == 2  # both timings, on the trial layer
    filters = winograd.transform_weight(torch.randn(16, 8, 3, 3))
    assert isinstance(filters, cpu_gemm.Packed) == chosen.available  # the filters' layout follows it


def test_a_failing_c_path_falls_back_to_the_torch_transforms_and_says_why(product, monkeypatch) -> None:
    monkeypatch.setattr(winograd, "_C_FAILURE", [])

    def fails(*args, **kwargs):
        raise MemoryError("the CPU Winograd convolution could not allocate its buffers")
    monkeypatch.setattr(cpu_winograd, "conv3x3", fails)
    gen = torch.Generator().manual_seed(12)
    x, weight = torch.randn(1, 16, 12, 12, generator=gen), torch.randn(32, 16, 3, 3, generator=gen) / 12
    got = winograd.conv3x3(x, winograd.transform_weight(weight))  # filters packed or not: either is taken
    assert (got - F.conv2d(x, weight, padding=1)).abs().max().item() < 1e-4  # the picture goes on
    found = winograd.transforms()
    assert not found.available and "MemoryError" in found.reason
    assert not winograd.pays_off(512, 512, 64, 64, up=2)  # the phases need the C transforms
