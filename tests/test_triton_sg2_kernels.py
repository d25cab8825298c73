"""StyleGAN2's fused Triton kernels against plain PyTorch, under Triton's interpreter on CPU tensors.

As in test_triton_kernels.py, the interpreter (TRITON_INTERPRET=1, set before triton is imported) runs in
one child process over every case; references and comparisons run here. The epilogue cases cover noise
none / const / random, clamp on and off, each activation, the skip add, contiguous and channels_last maps,
several programs per map, float32 and float16; the modulation cases demodulation on and off, the plain and
the transposed (up-sampling) layout, rows longer than one block, and a gain. Then the reference network
sg2_64_tiny renders through the fused dispatch (every layer kind: up, plain, toRGB with the skip add) and
must match the plain path, in each noise mode.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from triton_support import interpreted

TOLERANCE = {torch.float32: 1e-5, torch.float16: 1e-2}
NETWORK_TOLERANCE = 1e-4  # a whole picture through 11 layers, float32

# name: noise (none/const/random), clamp, activation, skip, channels_last
EPILOGUES = {
    "plain": ("none", None, "lrelu", False, False),
    "const_clamp": ("const", 1.5, "lrelu", False, False),
    "random_clamp_cl": ("random", 1.5, "lrelu", False, True),
    "random_relu": ("random", None, "relu", False, False),
    "const_cl": ("const", None, "lrelu", False, True),
    "torgb_skip": ("none", 1.5, "linear", True, False),
    "torgb_skip_cl": ("none", 1.5, "linear", True, True),
}
EPILOGUE_RUNS = [(name, dtype) for name in EPILOGUES for dtype in TOLERANCE]
# name: out, in, kernel, batch, demodulate, transposed, gain, rows a program (1: the GPU's)
MODULATIONS = {
    "demod": (6, 5, 3, 2, True, False, 1.0, 1),
    "demod_rows": (6, 5, 3, 2, True, False, 1.0, 8),  # 12 rows: the second program's last rows masked
    "demod_transposed": (6, 5, 3, 2, True, True, 1.0, 1),
    "demod_long_rows": (3, 130, 3, 1, True, False, 1.0, 2),  # 1170 taps a row: more than one block
    "torgb": (3, 7, 1, 2, False, False, 0.25, 1),
}
MODULATION_RUNS = [(name, dtype) for name in MODULATIONS for dtype in TOLERANCE]
NOISE_MODES = ("const", "random", "none")


def _epilogue_case(name: str, dtype: torch.dtype) -> dict:
    noise_mode, clamp, activation, skip, channels_last = EPILOGUES[name]
    gen = torch.Generator().manual_seed(len(name))
    batch, channels, h, w = 2, 4, 16, 20  # 2560 elements: three programs of 1024
    x = (torch.randn(batch, channels, h, w, generator=gen) * 2).to(dtype)
    noise = {"none": None, "const": torch.randn(h, w, generator=gen),
             "random": torch.randn(batch, 1, h, w, generator=gen).to(dtype)}[noise_mode]
    return {"x": x.contiguous(memory_format=torch.channels_last) if channels_last else x,
            "bias": torch.tensor([0.5, -0.3, 1.2, -1.0]), "noise": noise,
            "strength": torch.tensor(0.7) if noise is not None else None, "noise_scale": 1.3,
            "block": 1024, "activation": activation, "gain": 1.4 if activation != "linear" else 1.0, "clamp": clamp,
            "skip": (torch.randn(batch, channels, h, w, generator=gen)).to(dtype).contiguous(
                memory_format=torch.channels_last if channels_last else torch.contiguous_format) if skip else None}


def _modulation_case(name: str, dtype: torch.dtype) -> dict:
    out_ch, in_ch, k, batch, demodulate, transposed, gain, rows = MODULATIONS[name]
    gen = torch.Generator().manual_seed(len(name))
    return {"weight": torch.randn(out_ch, in_ch, k, k, generator=gen),
            "styles": torch.randn(batch, in_ch, generator=gen), "demodulate": demodulate, "dtype": dtype,
            "transposed": transposed, "gain": gain, "rows_per_program": rows}


def _epilogue_reference(case: dict) -> torch.Tensor:
    x = case["x"].double() + case["bias"].double().view(1, -1, 1, 1)
    if case["noise"] is not None:
        x = x + case["noise"].double() * (case["strength"].double() * case["noise_scale"])
    x = {"linear": x, "relu": x.relu(), "lrelu": torch.nn.functional.leaky_relu(x, 0.2)}[case["activation"]]
    x = x * case["gain"]
    if case["clamp"] is not None:
        x = x.clamp(-case["clamp"], case["clamp"])
    return x if case["skip"] is None else x + case["skip"].double()


def _modulation_reference(case: dict) -> torch.Tensor:
    weight, styles = case["weight"].double(), case["styles"].double()
    batch, (out_ch, in_ch, kh, kw) = styles.shape[0], weight.shape
    w = weight.unsqueeze(0) * styles.reshape(batch, 1, in_ch, 1, 1)
    if case["demodulate"]:
        w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    w = w * case["gain"]
    if case["transposed"]:
        return w.transpose(1, 2).reshape(batch * in_ch, out_ch, kh, kw)
    return w.reshape(batch * out_ch, in_ch, kh, kw)


def _network_ws(model: torch.nn.Module) -> torch.Tensor:
    with torch.inference_mode():
        z = torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(3))
        return model.mapping(z, psi=0.7)


def _render(model: torch.nn.Module, ws: torch.Tensor) -> dict[str, torch.Tensor]:
    """The picture in each noise mode through the plain (cache off: no CPU reordering) formulation, and
    one up-sampling layer with its constants cached; on CPU tensors this is the fused path only under the
    interpreter."""
    from autolume_graph.gan.stylegan2 import _Pass, set_fast_path

    set_fast_path(model, False)
    with torch.inference_mode():
        out = {mode: model.synthesis(ws, noise_mode=mode, noise_seed=5) for mode in NOISE_MODES}
        layer = model.synthesis.b16.conv0
        x = torch.randn(1, layer.weight.shape[1], 8, 8, generator=torch.Generator().manual_seed(4)) * 3
        run = _Pass.start(model.synthesis._names, x.device, "const", cache=True, reorder=False)
        out["b16.conv0"] = layer(x, ws[:, 3], run)
    return out


def _network(path: Path) -> torch.nn.Module:
    from autolume_graph.gan.safe_pickle import read_generator
    from autolume_graph.gan.stylegan2 import build_from_record

    return build_from_record(read_generator(path).record)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory, reference_dir: Path) -> dict:
    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed (pip install triton==3.9.0; .ci/run installs it)")
    cases = {"epilogue": {f"{n}-{d}": _epilogue_case(n, d) for n, d in EPILOGUE_RUNS},
             "modulate": {f"{n}-{d}": _modulation_case(n, d) for n, d in MODULATION_RUNS},
             "network": str(reference_dir / "sg2_64_tiny.pkl")}
    return interpreted(tmp_path_factory, cases, __file__)


@pytest.fixture(scope="module")
def plain_images(reference_dir: Path) -> dict[str, torch.Tensor]:
    model = _network(reference_dir / "sg2_64_tiny.pkl")
    return _render(model, _network_ws(model))


def _close(got: torch.Tensor, expected: torch.Tensor, tolerance: float, floor: float = 0.5) -> None:
    assert got.shape == expected.shape
    error = (got.double() - expected).abs().max().item()
    assert error <= tolerance, f"max |fused - reference| = {error:.3g}"
    assert expected.abs().max() > floor  # the comparison is not between near-zero maps


@pytest.mark.parametrize("name,dtype", EPILOGUE_RUNS, ids=[f"{n}-{str(d)[6:]}" for n, d in EPILOGUE_RUNS])
def test_epilogue_equals_plain_pytorch(outputs, name, dtype):
    case = _epilogue_case(name, dtype)
    got = outputs["epilogue"][f"{name}-{dtype}"]
    assert got.dtype == dtype and got.stride() == case["x"].stride()  # in place: the layout is kept
    expected = _epilogue_reference(case)
    _close(got, expected, TOLERANCE[dtype] * max(1.0, expected.abs().max().item()))


def test_clamp_cases_reach_the_clamp():
    """The clamped cases would differ without the clamp, so they test it."""
    for name, (_, clamp, *_) in EPILOGUES.items():
        if clamp is not None:
            case = _epilogue_case(name, torch.float32)
            assert _epilogue_reference({**case, "clamp": None, "skip": None}).abs().max() > clamp * 1.2, name


@pytest.mark.parametrize("name,dtype", MODULATION_RUNS, ids=[f"{n}-{str(d)[6:]}" for n, d in MODULATION_RUNS])
def test_modulation_equals_plain_pytorch(outputs, name, dtype):
    case = _modulation_case(name, dtype)
    got = outputs["modulate"][f"{name}-{dtype}"]
    assert got.dtype == dtype
    expected = _modulation_reference(case)
    _close(got, expected, TOLERANCE[dtype] * max(1.0, expected.abs().max().item()), floor=0.1)


@pytest.mark.parametrize("mode", [*NOISE_MODES, "b16.conv0"])
def test_reference_network_fused_equals_plain(outputs, plain_images, mode):
    assert outputs["failures"] == [], "a fused kernel failed and the layers fell back to plain PyTorch"
    assert outputs["choice"][0] == "fused", outputs["choice"]
    expected = plain_images[mode].double()
    _close(outputs["network"][mode], expected, NETWORK_TOLERANCE)


def test_noise_modes_differ(plain_images):
    """The network's noise strengths are non-zero, so the noise cases test the noise inputs."""
    images = plain_images
    assert (images["const"] - images["none"]).abs().max() > 1e-2
    assert (images["random"] - images["const"]).abs().max() > 1e-2


def test_off_cuda_the_layers_stay_plain():
    from autolume_graph.gan.kernels import interpreting, stylegan2_dispatch

    if interpreting():
        pytest.skip("TRITON_INTERPRET=1 is set for this whole run: the interpreter runs the kernels anywhere")
    choice, reason = stylegan2_dispatch.kernel_choice("cpu")
    assert choice == "eager" and reason
    assert not stylegan2_dispatch.uses_fused(torch.zeros(1))


def _child(cases_path: str, out_path: str) -> None:
    """Runs in the child: every case through the fused kernels, results saved for the parent to check."""
    from autolume_graph.gan.kernels import stylegan2_dispatch, triton_stylegan2

    cases = torch.load(cases_path, weights_only=False)
    epilogues = {key: triton_stylegan2.epilogue(**case) for key, case in cases["epilogue"].items()}
    modulations = {key: triton_stylegan2.modulate(**case) for key, case in cases["modulate"].items()}
    model = _network(Path(cases["network"]))
    network = _render(model, _network_ws(model))
    torch.save({"epilogue": epilogues, "modulate": modulations, "network": network,
                "choice": stylegan2_dispatch.kernel_choice("cpu"), "failures": stylegan2_dispatch._FAILURE},
               out_path)


if __name__ == "__main__":
    _child(*sys.argv[1:])
