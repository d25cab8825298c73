"""The GPU path: frames are queued without waiting for the GPU; CUDA graphs follow weight changes and
stay close to the CPU's float32. Tests marked `needs_cuda` skip with the reason where there is no GPU."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from sg3_random import random_record

from autolume_graph.bench import bench_runtime
from autolume_graph.gan.accel import SETTLE_SECONDS, SynthesisRunner, WeightsVersion, to_device
from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.latent import apply_directions
from autolume_graph.gan.loader import load_model
from autolume_graph.gan.stylegan2 import make_settings
from autolume_graph.gan.stylegan3 import build_from_record
from autolume_graph.runtime import Runtime

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

@contextmanager
def _host_never_waits() -> Iterator[None]:
    """Any synchronization torch makes the host do (a blocking copy, `.item()`) raises inside."""
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


@needs_cuda
def test_host_latents_reach_the_gpu_without_waiting_for_it() -> None:
    z = torch.randn(1, 512)
    with pytest.raises(RuntimeError), _host_never_waits():
        z.to("cuda")  # what it replaces: a blocking copy, which synchronizes
    with _host_never_waits():
        on_gpu = to_device(z, "cuda")
    assert torch.equal(on_gpu.cpu(), z)


@needs_cuda
def test_animated_frames_are_queued_without_waiting_for_the_gpu(reference_dir: Path) -> None:
    runtime = bench_runtime(str(reference_dir / "sg2_64_tiny.pkl"), "cuda")
    try:
        for _ in range(10):  # the model loads, the CUDA graphs are captured
            runtime.step()
        with _host_never_waits():
            for _ in range(3):
                runtime.step()
        assert not any(node.error for node in runtime.graph.nodes.values())  # a sync would raise in a cook
        first = _published(runtime).cpu()
        time.sleep(0.2)
        assert not torch.equal(first, _published(runtime).cpu())  # the seed animates: real, new frames
    finally:
        runtime.close()


def _published(runtime: Runtime) -> torch.Tensor:
    return next(iter(runtime.step().published.values()))


@needs_cuda
def test_shifting_w_on_the_gpu_does_not_wait_for_it() -> None:
    w, dirs = torch.randn(1, 8, 512), torch.nn.functional.normalize(torch.randn(3, 512), dim=1)
    w_gpu, dirs_gpu = w.cuda(), dirs.cuda()
    with _host_never_waits():
        shifted = apply_directions(w_gpu, dirs_gpu, [0.5, -1.0, 2.0])
    assert torch.allclose(shifted.cpu(), apply_directions(w, dirs, [0.5, -1.0, 2.0]), atol=1e-5)


@needs_cuda
@pytest.mark.parametrize(("precision", "max_diff", "min_equal"), [("float32", 1e-4, 0.999), ("float16", 2e-2, 0.9)])
def test_cuda_graphs_match_the_cpu(reference_dir: Path, precision: str, max_diff: float, min_equal: float) -> None:
    cpu = load_model(reference_dir / "sg2_64_tiny.pkl")
    gpu = load_model(reference_dir / "sg2_64_tiny.pkl", "cuda")
    with torch.inference_mode():
        ws = cpu.mapping(torch.randn(1, cpu.z_dim, generator=torch.Generator().manual_seed(3)), psi=0.7)
        want = cpu.synthesis(ws)
    runner = SynthesisRunner()
    runner(gpu, ws.cuda(), precision)
    got = runner(gpu, ws.cuda(), precision)  # replayed from the captured graph
    assert runner.graphs.captures == 1
    assert got.dtype == torch.float32
    assert (got.cpu() - want).abs().max().item() < max_diff
    to8 = lambda x: (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)  # noqa: E731
    assert (to8(got.cpu()) == to8(want)).float().mean().item() > min_equal


@needs_cuda
def test_stylegan3_input_transform_is_set_without_waiting() -> None:
    model = build_from_record(random_record(16, "T", seed=1)).cuda()
    with _host_never_waits():
        model.set_transform(0.25, 0.0, 30.0)
    cpu = build_from_record(random_record(16, "T", seed=1))
    cpu.set_transform(0.25, 0.0, 30.0)
    assert torch.equal(model.synthesis.input.transform.cpu(), cpu.synthesis.input.transform)


def test_weights_version_grows_with_in_place_writes_but_not_live_buffers() -> None:
    sg2 = make_random_model(make_settings(16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=64,
                                          channel_max=16), seed=2)
    version = WeightsVersion()
    before = version(sg2)
    assert version(sg2) == before
    with torch.no_grad():
        torch.lerp(sg2.synthesis.b8.conv1.weight, torch.zeros(1), 0.5, out=sg2.synthesis.b8.conv1.weight)
    assert version(sg2) > before  # ModelMix's crossfade writes like this
    after_mix = version(sg2)
    with torch.no_grad():
        sg2.synthesis.b4.conv1.noise_const.copy_(torch.ones(4, 4))
    assert version(sg2) > after_mix  # buffers are weights too
    sg3 = build_from_record(random_record(16, "T", seed=1))
    before = version(sg3)
    sg3.set_transform(0.25, 0.0, 30.0)
    assert version(sg3) == before  # a control the captured graph reads as it is


@needs_cuda
def test_cuda_graph_follows_in_place_weight_changes(reference_dir: Path) -> None:
    model = load_model(reference_dir / "sg2_64_tiny.pkl", "cuda")
    ws = model.mapping(torch.randn(1, model.z_dim, device="cuda"), psi=0.7)
    runner, eager = SynthesisRunner(), SynthesisRunner(use_graphs=False)
    runner(model, ws, "float32")
    runner(model, ws, "float32")
    with torch.no_grad():  # what ModelMix does, in place: here on an affine layer, whose scaled copy is cached
        model.synthesis.b32.conv0.affine.weight.mul_(-1.0)
    want = eager(model, ws, "float32")
    assert torch.allclose(runner(model, ws, "float32"), want, atol=1e-5)  # rendered eagerly while it moves
    time.sleep(SETTLE_SECONDS)
    runner(model, ws, "float32")
    assert runner.graphs.captures == 2
    assert torch.allclose(runner(model, ws, "float32"), want, atol=1e-5)  # then captured anew


@needs_cuda
def test_stylegan3_transform_changes_are_replayed_by_one_graph() -> None:
    model = build_from_record(random_record(16, "T", seed=1)).cuda()
    ws = model.mapping(torch.randn(1, model.z_dim, device="cuda"), psi=0.7)
    runner, eager = SynthesisRunner(), SynthesisRunner(use_graphs=False)
    frames = []
    for step in range(4):
        model.set_transform(0.05 * step, 0.0, 10.0 * step)
        frames.append(runner(model, ws, "float32").clone())
        assert torch.allclose(frames[-1], eager(model, ws, "float32"), atol=1e-5)
    assert runner.graphs.captures == 1
    assert not torch.equal(frames[0], frames[-1])


@needs_cuda
def test_a_call_that_cannot_be_captured_runs_eagerly(reference_dir: Path) -> None:
    model = load_model(reference_dir / "sg2_64_tiny.pkl", "cuda")
    ws = model.mapping(torch.randn(1, model.z_dim, device="cuda"), psi=0.7)
    edits = {"b16.conv1": lambda x: x * float(x.abs().max() >= 0)}  # a host sync: no graph can hold it
    runner, eager = SynthesisRunner(), SynthesisRunner(use_graphs=False)
    for _ in range(3):
        got = runner(model, ws, "float32", layer_edits=edits)
    assert runner.graphs.captures == 0
    assert torch.allclose(got, eager(model, ws, "float32", layer_edits=edits), atol=1e-5)
    assert torch.cuda.current_stream() == torch.cuda.default_stream()
