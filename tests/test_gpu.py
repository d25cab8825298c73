"""The GPU path: frames are queued without waiting for the GPU; float16 and CUDA graphs stay close
to the CPU's float32. CUDA only: skipped with the reason on machines without a CUDA device."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from autolume_graph.bench import bench_runtime
from autolume_graph.gan.accel import SynthesisRunner, to_device
from autolume_graph.gan.latent import apply_directions
from autolume_graph.gan.loader import load_model
from autolume_graph.gan.sg3_config import random_record
from autolume_graph.gan.stylegan3 import build_from_record
from autolume_graph.runtime import Runtime

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

GPU_BUSY_CYCLES = 1_000_000_000  # about half a second of GPU time queued ahead of the frames


def test_host_latents_reach_the_gpu_without_waiting_for_it() -> None:
    z = torch.randn(1, 512)
    torch.cuda._sleep(GPU_BUSY_CYCLES)
    on_gpu = to_device(z, "cuda")
    assert not torch.cuda.current_stream().query()  # queued behind the busy stream, not waited for
    assert torch.equal(on_gpu.cpu(), z)


def test_animated_frames_are_queued_without_waiting_for_the_gpu(reference_dir: Path) -> None:
    runtime = bench_runtime(str(reference_dir / "sg2_64_tiny.pkl"), "cuda")
    try:
        for _ in range(10):  # the model loads, the CUDA graphs are captured
            runtime.step()
        torch.cuda.synchronize()
        torch.cuda._sleep(GPU_BUSY_CYCLES)
        for _ in range(3):
            runtime.step()
        assert not torch.cuda.current_stream().query()  # three frames queued behind the busy stream
        assert not any(node.error for node in runtime.graph.nodes.values())
        first = _published(runtime).cpu()
        time.sleep(0.2)
        assert not torch.equal(first, _published(runtime).cpu())  # the seed animates: real, new frames
    finally:
        runtime.close()


def _published(runtime: Runtime) -> torch.Tensor:
    return next(iter(runtime.step().published.values()))


def test_shifting_w_on_the_gpu_does_not_wait_for_it() -> None:
    w, dirs = torch.randn(1, 8, 512), torch.nn.functional.normalize(torch.randn(3, 512), dim=1)
    w_gpu, dirs_gpu = w.cuda(), dirs.cuda()
    torch.cuda._sleep(GPU_BUSY_CYCLES)
    shifted = apply_directions(w_gpu, dirs_gpu, [0.5, -1.0, 2.0])
    assert not torch.cuda.current_stream().query()
    assert torch.allclose(shifted.cpu(), apply_directions(w, dirs, [0.5, -1.0, 2.0]), atol=1e-5)


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


def test_stylegan3_input_transform_is_set_without_waiting() -> None:
    model = build_from_record(random_record(16, "T", seed=1)).cuda()
    torch.cuda._sleep(GPU_BUSY_CYCLES)
    model.set_transform(0.25, 0.0, 30.0)
    assert not torch.cuda.current_stream().query()
    cpu = build_from_record(random_record(16, "T", seed=1))
    cpu.set_transform(0.25, 0.0, 30.0)
    assert torch.equal(model.synthesis.input.transform.cpu(), cpu.synthesis.input.transform)
