"""Our default graph end to end against NVIDIA's own generator forward, side by side on one pickle.

NVIDIA's code is not part of this repository: `--nvidia` points at a checkout of NVlabs/stylegan3
(its `training/networks_stylegan2.py`, `torch_utils/` and `dnnlib/`; their `dnnlib` imports
`requests`, so install that beside us). Their Generator is built
from the init kwargs stored in the pickle and gets its weights through our safe reader, so nothing
embedded in the pickle runs. Both run on the CPU in this process with the same torch threads,
in alternating runs of a few frames (medians), so a noisy neighbour slows both alike:

- NVIDIA: `G(z, c, noise_mode="const", force_fp32=True)`, a fresh z each frame, float32
  (`force_fp32`: their fp16 layers in half precision on a CPU would only be slower);
- ours, end to end: `Runtime.step()` of the default graph (animated seed, so the mapping re-runs
  every frame) plus the frame's copy to host uint8, as `autolume-graph bench` measures it;
- ours, bare: mapping + synthesis of a fresh z, the figure `bench` reports as `generator_ms`.

    python benchmarks/bench_vs_nvidia.py --nvidia ~/src/stylegan3 [MODEL.pkl] [--frames N]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from bench_stylegan2 import interleaved_ms

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "sg2_64_tiny.pkl"


def nvidia_generator(source: Path, pickle_path: Path) -> Callable[[], torch.Tensor]:
    """NVIDIA's StyleGAN2 Generator for the pickle's G_ema, weights from our reader; a frame callable."""
    from autolume_graph.gan.safe_pickle import read_generator

    sys.path.insert(0, str(source))
    from training.networks_stylegan2 import Generator  # NVIDIA's code, from the user's checkout

    record = read_generator(pickle_path)
    generator = Generator(**record.init_kwargs).eval().requires_grad_(False)
    generator.load_state_dict(record.state_dict(), strict=True)
    label = torch.zeros([1, generator.c_dim])

    def frame() -> torch.Tensor:
        with torch.no_grad():
            return generator(torch.randn(1, generator.z_dim), label, noise_mode="const", force_fp32=True)
    return frame


def our_frames(pickle_path: Path) -> tuple[Callable[[], object], Callable[[], object]]:
    """(default graph step + host copy, bare mapping + synthesis) for the same pickle."""
    from autolume_graph.bench import bench_runtime, loaded_model
    from autolume_graph.outputs.frames import FrameConverter

    runtime = bench_runtime(str(pickle_path), "cpu")
    graph = runtime.graph
    converter = FrameConverter()
    runtime.step()
    errors = {n.name: n.error for n in graph.nodes.values() if n.error}
    if errors:
        raise SystemExit(f"the default graph failed on {pickle_path}: {errors}")
    model = loaded_model(graph)

    def end_to_end() -> object:
        snap = runtime.step()
        return converter.convert(next(iter(snap.published.values())))

    def bare() -> object:
        with torch.inference_mode():
            return model.synthesis(model.mapping(torch.randn(1, model.z_dim)), noise_mode="const")
    return end_to_end, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=REFERENCE, help="an NVIDIA StyleGAN2 pickle")
    parser.add_argument("--nvidia", type=Path, required=True, help="a checkout of NVlabs/stylegan3")
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    fns = {"nvidia": nvidia_generator(args.nvidia, args.model)}
    fns["ours end to end"], fns["ours bare"] = our_frames(args.model)
    ms = interleaved_ms(fns, args.frames, run_length=4)
    print(f"{args.model.name}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.frames} interleaved frames")
    for name, value in ms.items():
        print(f"  {name:16s} {value:8.2f} ms  {1000 / value:7.2f} fps   x{ms['nvidia'] / value:.2f} NVIDIA's rate")


if __name__ == "__main__":
    main()
