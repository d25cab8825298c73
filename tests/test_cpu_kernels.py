"""Our C kernels for the CPU: built at first use, cached, and the fused StyleGAN3 activation they run
checked against the definition on every code path; where they cannot be built the torch path runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from kernel_builds import require_built
from sg3_random import lowpass_filter, random_record

from autolume_graph.gan import filtered_lrelu, stylegan3
from autolume_graph.gan.filtered_lrelu import FilteredLReLU, activation_kernel, filtered_lrelu_reference
from autolume_graph.gan.kernels import cpu_build, cpu_filtered_lrelu
from autolume_graph.gan.kernels.cpu_filtered_lrelu import CpuFilteredLReLU
from autolume_graph.gan.safe_pickle import read_generator


@pytest.fixture(scope="module")
def built() -> None:
    require_built(cpu_filtered_lrelu.support)


def _definition(x, fu, fd, bias, up, down, padding, gain, slope, clamp) -> torch.Tensor:
    """filtered_lrelu_reference in float64: the numbers both float32 paths are held to."""
    as64 = [None if f is None else f.double() for f in (fu, fd)]
    return filtered_lrelu_reference(x.double(), as64[0], as64[1], bias.double(), up, down, padding, gain, slope, clamp)


CASES = [  # up, up taps, down, down taps, radial, padding, (width, height), clamp
    (2, 12, 2, 12, False, [9, 8, 9, 8], (38, 38), 256.0),  # StyleGAN3-T's usual layer
    (4, 24, 2, 12, False, [-6, -9, -6, -9], (38, 38), 256.0),  # rate doubling, cropping padding
    (2, 12, 2, 12, True, [11, 10, 11, 10], (36, 36), 256.0),  # StyleGAN3-R's radial down filter
    (3, 9, 1, 5, False, [4, 3, 2, 5], (17, 23), 1.5),  # odd factor, no decimation, clamp reached
    (1, 1, 1, 1, False, [0, 0, 0, 0], (40, 33), None),  # toRGB: bias (and clamp) only
    (2, 12, 2, 1, False, [0, 1, 2, 3], (9, 70), 0.5),  # no down filter, odd / even padding
    (1, 7, 2, 12, True, [-1, 2, 3, -2], (45, 30), None),  # filter without upsampling, radial, mixed crops
    (2, 1, 2, 12, False, [5, 5, 5, 5], (130, 12), 2.0),  # zero-stuffing without a filter; rows past 64
]


@pytest.mark.parametrize(("up", "up_taps", "down", "down_taps", "radial", "padding", "size", "clamp"), CASES)
def test_fused_activation_equals_the_definition(built, up, up_taps, down, down_taps, radial, padding, size, clamp):
    gen = torch.Generator().manual_seed(up * 1000 + up_taps * 10 + down_taps)
    channels, (w, h) = 5, size
    fu = lowpass_filter(up_taps, cutoff=2.0, width=1.5, fs=8.0 * up) if up_taps > 1 else None
    fd = lowpass_filter(down_taps, cutoff=2.0, width=1.5, fs=8.0, radial=radial) if down_taps > 1 else None
    gain, slope = (1.0, 1.0) if up_taps == 1 and up == 1 else (math.sqrt(2), 0.2)
    x = torch.randn(2, channels, h, w, generator=gen) * 3
    bias = torch.randn(channels, generator=gen)
    scale = torch.rand(2, channels, generator=gen) + 0.5  # the demodulation, folded into the first pass
    got = CpuFilteredLReLU(fu, fd, up, down, padding, (w, h), gain, slope, clamp)(x, bias, scale)
    x = x * scale[:, :, None, None]
    expected = _definition(x, fu, fd, bias, up, down, padding, gain, slope, clamp)
    assert got.shape == expected.shape
    assert got.dtype == torch.float32
    assert (got.double() - expected).abs().max() <= 1e-4 * max(1.0, expected.abs().max().item())
    if clamp is not None and clamp < 3:  # the clamp changed the picture, so it was tested
        unclamped = _definition(x, fu, fd, bias, up, down, padding, gain, slope, None)
        assert (unclamped - expected).abs().max() > 0.1


@pytest.mark.parametrize("channels", [3, 16, 37])  # a partial group of 16, one, several with a remainder
def test_channels_last_input_and_partial_channel_groups(built, channels):
    gen = torch.Generator().manual_seed(channels)
    fu = lowpass_filter(12, cutoff=2.0, width=1.5, fs=16.0)
    fd = lowpass_filter(12, cutoff=2.0, width=1.5, fs=8.0, radial=True)
    x = (torch.randn(2, channels, 21, 19, generator=gen) * 3).contiguous(memory_format=torch.channels_last)
    bias, scale = torch.randn(channels, generator=gen), torch.rand(2, channels, generator=gen) + 0.5
    args = (2, 2, [9, 8, 10, 7], math.sqrt(2), 0.2, 1.0)
    kernel = CpuFilteredLReLU(fu, fd, args[0], args[1], args[2], (19, 21), *args[3:])
    got = kernel(x, bias, scale)
    expected = _definition(x * scale[:, :, None, None], fu, fd, bias, *args)
    assert got.is_contiguous()
    assert (got.double() - expected).abs().max() <= 1e-4 * max(1.0, expected.abs().max().item())
    pixels = kernel(x, bias, scale, channels_last=True)  # the same values, written through the group transpose
    assert pixels.is_contiguous(memory_format=torch.channels_last) and torch.equal(pixels, got)


def test_a_3x3_layer_hands_the_next_its_pixels_channels_last(built, monkeypatch):
    monkeypatch.setattr(filtered_lrelu, "_FUSED_FAILURE", {})  # a failure here must not outlive the test
    model = stylegan3.build_from_record(random_record(64, "T", seed=3))
    layers = [layer for layer in model.synthesis.layers() if not layer.is_torgb]
    layer = layers[len(layers) // 2]
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, layer.in_channels, layer.in_size[1], layer.in_size[0], generator=gen)
    w = torch.randn(1, layer.affine.weight.shape[1], generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = layer(x, w)
    assert not filtered_lrelu._FUSED_FAILURE
    assert layer._next_reads_pixels(x) and out.is_contiguous(memory_format=torch.channels_last)
    torgb = model.synthesis.layers()[-1]
    assert torgb.is_torgb and not torgb._next_reads_pixels(x)  # the picture: planes


def test_radial_filter_terms_sum_to_the_filter():
    fd = lowpass_filter(12, cutoff=2.5, width=1.5, fs=8.0, radial=True)
    terms = cpu_filtered_lrelu.down_terms(fd, gain=2.0)
    assert 1 < len(terms) < 12  # cut where the singular values fall below float32's resolution
    rebuilt = sum(np.outer(fy, fx) for fx, fy in terms)
    flipped = fd.double().numpy()[::-1, ::-1] * 2.0
    assert np.abs(rebuilt - flipped).max() <= 1e-5 * np.abs(flipped).max()


@pytest.mark.parametrize("name", ["sg3t_64_tiny", "sg3r_64_tiny"])
def test_every_layer_of_the_reference_networks(built, reference_dir: Path, name):
    model = stylegan3.build_from_record(read_generator(reference_dir / f"{name}.pkl").record)
    for layer in model.synthesis.layers():
        k = layer.conv_kernel - 1
        gen = torch.Generator().manual_seed(len(layer.name))
        x = torch.randn(1, layer.out_channels, layer.in_size[1] + k, layer.in_size[0] + k, generator=gen) * 100
        bias = layer.bias.detach()
        got = layer.act.fused(torch.device("cpu"))(x, bias)
        expected = _definition(x, layer.up_filter, layer.down_filter, bias, *layer.act.literal_args)
        assert (got.double() - expected).abs().max() <= 1e-4 * expected.abs().max(), layer.name


def test_the_layer_runs_it_on_the_cpu_and_matches_the_torch_path(built, monkeypatch):
    model = stylegan3.build_from_record(random_record(64, "R", seed=2))
    ws = model.mapping(torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(1)))
    assert activation_kernel("cpu") == ("fused", cpu_filtered_lrelu.support().reason)
    with torch.no_grad():
        fused = model.synthesis(ws)
        monkeypatch.setattr(filtered_lrelu, "CPU_FUSED", False)
        assert activation_kernel("cpu")[0] == "banded"
        banded = model.synthesis(ws)
    assert (fused - banded).abs().max() <= 1e-4


def test_bfloat16_goes_through_float32_and_comes_back(built):
    fu = lowpass_filter(12, cutoff=2.0, width=1.5, fs=16.0)
    act = FilteredLReLU(fu, fu, 2, 2, [9, 8, 9, 8], (20, 20), 3, gain=math.sqrt(2), slope=0.2, clamp=None)
    x, bias = torch.randn(1, 3, 20, 20), torch.randn(3)
    out = act(x.to(torch.bfloat16), bias.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert (out.float() - act(x, bias)).abs().max() <= 0.1


def test_a_failing_kernel_switches_to_the_torch_path_and_says_why(built, monkeypatch):
    def broken(self, x, bias, scale=None, channels_last=False):
        raise MemoryError("no buffers")

    monkeypatch.setattr(filtered_lrelu, "_FUSED_FAILURE", {})
    monkeypatch.setattr(CpuFilteredLReLU, "__call__", broken)
    fu = lowpass_filter(12, cutoff=2.0, width=1.5, fs=16.0)
    act = FilteredLReLU(fu, fu, 2, 2, [9, 8, 9, 8], (20, 20), 3, gain=math.sqrt(2), slope=0.2, clamp=None)
    x, bias = torch.randn(1, 3, 20, 20), torch.randn(3)
    out = act(x, bias)  # the picture goes on
    expected = _definition(x, fu, fu, bias, 2, 2, [9, 8, 9, 8], math.sqrt(2), 0.2, None)
    assert (out.double() - expected).abs().max() <= 1e-4
    kernel, reason = activation_kernel("cpu")
    assert kernel == "banded" and "MemoryError: no buffers" in reason


# --- the build itself, on small sources of the tests' own, in a cache folder of the test's own


def _source(folder: Path, body: str) -> Path:
    path = folder / "probe.c"
    path.write_text(body)
    return path


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("AUTOLUME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_build, "_BUILDS", {})
    return tmp_path


def test_a_source_is_built_once_and_cached_under_a_name_that_follows_it(own_cache):
    source = _source(own_cache, "int twice(int x) { return 2 * x; }\n")
    lib = cpu_build.library(source, wait_s=120.0)
    if lib is None:
        pytest.skip(cpu_build.status(source).reason)
    assert lib.twice(21) == 42
    assert "built with" in cpu_build.status(source).reason
    first = sorted((own_cache / "cache" / "kernels").glob("probe-*.so"))
    assert len(first) == 1
    cpu_build._BUILDS.clear()  # a new process: finds the cached file
    assert cpu_build.library(source, wait_s=120.0).twice(5) == 10
    assert sorted((own_cache / "cache" / "kernels").glob("probe-*.so")) == first
    source.write_text("int twice(int x) { return x + x; }\n")  # an edited source builds anew
    cpu_build._BUILDS.clear()
    assert cpu_build.library(source, wait_s=120.0).twice(4) == 8
    assert len(list((own_cache / "cache" / "kernels").glob("probe-*.so"))) == 2


def test_a_source_that_does_not_compile_is_one_line_and_no_library(own_cache):
    if cpu_build._compiler() is None:
        pytest.skip("no C compiler here")
    source = _source(own_cache, "int broken( { return; }\n")
    assert cpu_build.library(source, wait_s=120.0) is None
    status = cpu_build.status(source)
    assert not status.available and "failed on probe.c" in status.reason and "\n" not in status.reason


def test_without_a_compiler_the_reason_says_so(own_cache, monkeypatch):
    monkeypatch.setenv("PATH", str(own_cache / "empty"))
    monkeypatch.delenv("CC", raising=False)
    source = _source(own_cache, "int one(void) { return 1; }\n")
    assert cpu_build.library(source, wait_s=120.0) is None
    assert "no C compiler" in cpu_build.status(source).reason


def test_switched_off_nothing_is_built(own_cache, monkeypatch):
    monkeypatch.setenv(cpu_build.SWITCH_ENV, "off")
    source = _source(own_cache, "int one(void) { return 1; }\n")
    assert cpu_build.library(source, wait_s=120.0) is None
    assert "switched off" in cpu_build.status(source).reason
    assert not (own_cache / "cache" / "kernels").exists()


@pytest.fixture
def gemm():
    from autolume_graph.gan.kernels import cpu_gemm

    require_built(cpu_gemm.support)
    return cpu_gemm


# rows not a multiple of the register tile (6) nor of the row block (96); depth past one block (256);
# columns in whole strips and not
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 7, 5, 16), (2, 97, 300, 48), (36, 200, 513, 181), (4, 6, 256, 5)])
def test_our_batched_product_matches_float64(gemm, shape) -> None:
    batch, m, k, n = shape
    gen = torch.Generator().manual_seed(sum(shape))
    a, b = torch.randn(batch, m, k, generator=gen), torch.randn(batch, k, n, generator=gen)
    packed = gemm.pack(b)
    assert packed.width % gemm.strip() == 0 and packed.width - n < gemm.strip()
    assert torch.equal(gemm.unpack(packed), b)
    out = torch.full((batch, m, packed.width), float("nan"))
    gemm.bmm(a, packed, out)
    want = torch.bmm(a.double(), b.double())
    assert (out[:, :, :n].double() - want).abs().max().item() < 1e-5 * k ** 0.5 * 4
    assert (out[:, :, n:] == 0).all()  # the padding columns multiply zeros
