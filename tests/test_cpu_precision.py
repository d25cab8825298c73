"""bfloat16 on the CPU: chosen at run time from what the CPU reports, accurate to a stated bound where it runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from generator_graph import generator_graph

from autolume_graph.gan import cpu_features
from autolume_graph.gan.accel import SynthesisRunner, choose_precision
from autolume_graph.gan.loader import load_model
from autolume_graph.runtime import Runtime


def _native() -> bool:
    return cpu_features._native_bfloat16().available


def test_the_cpus_own_flags_decide_and_an_unsupported_cpu_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cpu_features.FORCE_BF16_ENV, raising=False)
    dtype, note = choose_precision("bfloat16", "cpu")
    flags = cpu_features.cpu_flags()
    native = any(flag in flags for flag in cpu_features.NATIVE_BF16_FLAGS)
    assert native == _native()
    if native:
        assert (dtype, note) == (torch.bfloat16, "")
    else:
        assert dtype == torch.float32 and note.startswith("bfloat16 off: this CPU reports no native bfloat16")
    assert choose_precision("float32", "cpu") == (torch.float32, "")
    assert choose_precision("auto", "cpu") == (torch.float32, "")
    assert choose_precision("float16", "cpu")[0] == torch.float32
    assert "AVX" in cpu_features.describe() or "bfloat16" in cpu_features.describe()


def test_forcing_bfloat16_runs_it_where_it_is_emulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cpu_features.FORCE_BF16_ENV, "force")
    assert choose_precision("bfloat16", "cpu") == (torch.bfloat16, "")


@pytest.mark.parametrize("name", ["sg2_64_tiny", "sg3t_64_tiny", "sg3r_64_tiny"])
def test_bfloat16_pictures_stay_near_float32(reference_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Measured on the reference networks, seeds 0-4: max |diff| 0.016-0.037 (pictures span [-1, 1]); every
    uint8 value within 4 steps of float32's, 77-99% within 1 step (seed 3 is the worst of them)."""
    monkeypatch.setenv(cpu_features.FORCE_BF16_ENV, "force")
    model = load_model(reference_dir / f"{name}.pkl", "cpu", cache=False)
    z = torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        w = model.mapping(z, None, psi=1.0)
    runner = SynthesisRunner(use_graphs=False)
    exact = runner(model, w, "float32", noise_mode="const")
    half = runner(model, w, "bfloat16", noise_mode="const")
    assert half.dtype == torch.float32 and runner.precision_note == ""
    diff = (exact - half).abs()
    assert 0 < diff.max().item() <= 0.06  # bfloat16 really ran (not a silent float32)

    def to_uint8(x: torch.Tensor) -> torch.Tensor:
        return ((x.clamp(-1, 1) + 1) * 127.5).round()

    steps = (to_uint8(exact) - to_uint8(half)).abs()
    assert (steps <= 4).float().mean().item() >= 0.999
    assert (steps <= 1).float().mean().item() >= 0.7


def test_generate_shows_why_bfloat16_is_off(reference_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cpu_features.FORCE_BF16_ENV, raising=False)
    graph = generator_graph(reference_dir)
    generate = next(n for n in graph.nodes.values() if n.type_name == "Generate")
    runtime = Runtime(graph, fps=30, fixed_step=True)
    try:
        exact = runtime.step().published["preview"]
        generate.set_value("precision", "bfloat16")
        second = runtime.step().published["preview"]
    finally:
        runtime.close()
    assert generate.error == ""
    if _native():
        assert "bfloat16" not in generate.status and not torch.equal(exact, second)
    else:
        assert "bfloat16 off: this CPU reports no native bfloat16" in generate.status
        assert torch.equal(exact, second)  # float32, as before: the picture goes on unchanged
