"""The fused Triton filtered leaky ReLU against the literal definition, under Triton's interpreter on CPU tensors.

The interpreter must be switched on (TRITON_INTERPRET=1) before triton is imported, and must not leak to
other tests, so the kernels run in one child process over every case; the reference and the comparisons
run here. Shapes are small but cover every code path: up 1/2/3/4, down 1/2, separable and radial down
filters, no filters, crops and pads (odd and even), clamp on and off, several tiles per plane (a small
`max_block`), strided (channels_last) input, float32 and float16; plus layers of the reference networks.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch
from triton_support import interpreted

from autolume_graph.gan.filtered_lrelu import filtered_lrelu_reference
from autolume_graph.gan.kernels.filtered_lrelu_tiles import FusedFilteredLReLU

TOLERANCE = {torch.float32: 1e-4, torch.float16: 1e-2}
# (model, layer, dtypes): upsampling by 4 (separable, radial), the final crop and toRGB (no filters, no lrelu)
LAYERS = [("sg3t_64_tiny", "L4_52_128", TOLERANCE), ("sg3t_64_tiny", "L13_64_128", [torch.float32]),
          ("sg3t_64_tiny", "L14_64_3", [torch.float32]), ("sg3r_64_tiny", "L4_52_256", TOLERANCE)]
LAYER_RUNS = [(model, layer, dtype) for model, layer, dtypes in LAYERS for dtype in dtypes]

# name: up, down, up taps, down taps, radial, padding [x0, x1, y0, y1], input (h, w), clamp, max_block
CASES = {
    "up2_down2": (2, 2, 12, 12, False, [9, 8, 9, 8], (9, 8), 4.0, 16),
    "up4_down2_crop": (4, 2, 24, 12, False, [-6, -9, -6, -9], (18, 17), 4.0, 32),
    "up2_down2_odd_crop": (2, 2, 12, 12, False, [-5, -6, -4, -7], (22, 21), None, 16),
    "up2_radial": (2, 2, 12, 12, True, [11, 10, 11, 10], (9, 8), 4.0, 32),
    "up4_radial_crop": (4, 2, 24, 12, True, [-2, -5, -2, -5], (12, 13), None, 16),
    "up3_down1": (3, 1, 9, 5, False, [3, 4, 2, 5], (7, 6), 3.0, 32),
    "up1_down2": (1, 2, 1, 6, False, [2, 3, 3, 2], (12, 13), None, 16),
    "up2_no_filters": (2, 1, 1, 1, False, [1, 0, 0, 1], (6, 7), 4.0, 16),
    "plain": (1, 1, 1, 1, False, [0, 0, 0, 0], (10, 9), None, 16),
}
STRIDED = ("up2_down2", "up2_radial")  # layout is independent of the geometry: two cases suffice
RUNS = [(name, dtype, layout) for name in CASES for dtype in TOLERANCE for layout in ("contiguous", "channels_last")
        if layout == "contiguous" or (dtype == torch.float32 and name in STRIDED)]


def _inputs(name: str, dtype: torch.dtype, layout: str) -> dict:
    up, down, taps_up, taps_down, radial, padding, (h, w), clamp, max_block = CASES[name]
    gen = torch.Generator().manual_seed(len(name) * 31 + up * 7 + down)
    scale = 4.0 if dtype == torch.float32 else 1.0  # float32 cases push well past the clamp
    x = torch.randn(2, 2, h, w, generator=gen) * scale
    bias = torch.tensor([1.0, -0.6]) * scale  # levels the low-pass filters keep: past the clamp, below zero
    fu = torch.rand(taps_up, generator=gen) if taps_up > 1 else None  # asymmetric on purpose: flips must be right
    fd = torch.rand((taps_down, taps_down) if radial else (taps_down,), generator=gen) if taps_down > 1 else None
    fu = None if fu is None else fu / fu.sum()
    fd = None if fd is None else fd / fd.sum()
    args = dict(up_filter=fu, down_filter=fd, up=up, down=down, padding=padding, gain=1.5, slope=0.2, clamp=clamp)
    return {"x": x, "bias": bias, "args": args, "max_block": max_block, "dtype": dtype, "layout": layout}


@functools.cache
def _network(path: Path) -> torch.nn.Module:
    from autolume_graph.gan.safe_pickle import read_generator
    from autolume_graph.gan.stylegan3 import build_from_record

    return build_from_record(read_generator(path).record)


def _layer_inputs(reference_dir: Path, model: str, layer_name: str, dtype: torch.dtype) -> dict:
    layer = getattr(_network(reference_dir / f"{model}.pkl").synthesis, layer_name)
    k = layer.conv_kernel - 1
    gen = torch.Generator().manual_seed(len(layer_name))
    scale = 300.0 if dtype == torch.float32 else 1.0  # float32: past the 256 clamp after the gain
    channels = 1  # the general cases cover several planes
    x = torch.randn(1, channels, layer.in_size[1] + k, layer.in_size[0] + k, generator=gen) * scale
    args = dict(up_filter=layer.up_filter, down_filter=layer.down_filter, up=layer.up_factor,
                down=layer.down_factor, padding=layer.padding, gain=1.0 if layer.is_torgb else math.sqrt(2),
                slope=1.0 if layer.is_torgb else 0.2, clamp=layer.conv_clamp)
    # The layer's own fused activation (as built by the dispatch), not one made here from the arguments.
    return {"x": x, "bias": layer.bias[:channels].detach().clone(), "args": args,
            "fused": FusedFilteredLReLU(*layer.act.kernel_args),
            "dtype": dtype, "layout": "contiguous"}


def _require_triton() -> None:
    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed (pip install triton==3.9.0; .ci/run installs it)")


@pytest.fixture(scope="module")
def kernel_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    _require_triton()
    return interpreted(tmp_path_factory, {f"{n}-{d}-{lay}": _inputs(n, d, lay) for n, d, lay in RUNS}, __file__)


@pytest.fixture(scope="module")
def layer_outputs(tmp_path_factory: pytest.TempPathFactory, reference_dir: Path) -> tuple[dict, dict]:
    _require_triton()
    cases = {f"{m}-{name}-{d}": _layer_inputs(reference_dir, m, name, d) for m, name, d in LAYER_RUNS}
    return cases, interpreted(tmp_path_factory, cases, __file__)


def _definition(case: dict) -> torch.Tensor:
    """The literal definition in float64: near the 256 clamp, float32's own rounding in it reaches 1e-4."""
    args = {k: v.double() if torch.is_tensor(v) else v for k, v in case["args"].items()}
    return filtered_lrelu_reference(case["x"].double(), bias=case["bias"].double(), **args)


def _check(case: dict, got: torch.Tensor) -> None:
    expected = _definition(case)
    assert got.dtype == case["dtype"]
    assert got.shape == expected.shape
    error = (got.float() - expected).abs().max().item()
    assert error <= TOLERANCE[case["dtype"]], f"max |fused - reference| = {error:.3g}"
    assert expected.abs().max() > 0.5  # the comparison is not between near-zero maps


@pytest.mark.parametrize("name,dtype,layout", RUNS, ids=[f"{n}-{str(d)[6:]}-{lay}" for n, d, lay in RUNS])
def test_fused_equals_the_definition(kernel_outputs, name, dtype, layout):
    _check(_inputs(name, dtype, layout), kernel_outputs[f"{name}-{dtype}-{layout}"])


def test_clamp_cases_reach_the_clamp():
    """The clamped float32 cases would differ without the clamp, so they test it."""
    for name, (*_, clamp, _) in CASES.items():
        if clamp is not None:
            case = _inputs(name, torch.float32, "contiguous")
            unclamped = filtered_lrelu_reference(case["x"], bias=case["bias"], **{**case["args"], "clamp": None})
            assert unclamped.abs().max() > clamp * 1.2, name


def test_tiles_cover_several_per_plane():

    case = _inputs("up2_down2", torch.float32, "contiguous")
    h, w = case["x"].shape[2:]
    act = FusedFilteredLReLU(**case["args"], in_size=(w, h), max_block=case["max_block"])
    assert act.y.tiles > 1 and act.x.tiles > 1


@pytest.mark.parametrize("model,layer,dtype", LAYER_RUNS, ids=[f"{m}-{lay}-{str(d)[6:]}" for m, lay, d in LAYER_RUNS])
def test_reference_network_layers(layer_outputs, model, layer, dtype):
    cases, outputs = layer_outputs
    key = f"{model}-{layer}-{dtype}"
    _check(cases[key], outputs[key])


def test_off_cuda_the_triton_kernel_is_not_chosen():
    from autolume_graph.gan import kernels
    from autolume_graph.gan.filtered_lrelu import activation_kernel
    from autolume_graph.gan.kernels import cpu_filtered_lrelu

    if kernels.interpreting():
        pytest.skip("TRITON_INTERPRET=1 is set for this whole run: the interpreter runs the kernels anywhere")
    assert not kernels.available("cpu").available
    assert kernels.available("cpu").reason
    built = cpu_filtered_lrelu.support(wait_s=120)
    kernel, reason = activation_kernel("cpu")
    assert (kernel, reason) == (("fused", built.reason) if built.available else ("banded", built.reason))


def _child(cases_path: str, out_path: str) -> None:
    """Runs in the child: every case through the fused kernel, results saved for the parent to check."""
    from autolume_graph.gan import kernels

    assert kernels.available("cpu").available, kernels.available("cpu").reason
    outputs = {}
    for key, case in torch.load(cases_path, weights_only=False).items():
        x = case["x"].to(case["dtype"])
        if case["layout"] == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        act = case.get("fused") or FusedFilteredLReLU(**case["args"], in_size=(x.shape[3], x.shape[2]),
                                                      max_block=case["max_block"])
        outputs[key] = act(x, case["bias"])
    torch.save(outputs, out_path)


if __name__ == "__main__":
    _child(*sys.argv[1:])
