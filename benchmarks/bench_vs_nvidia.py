"""Our default graph end to end against NVIDIA's own generator forward, side by side on one pickle.

NVIDIA's code is not part of this repository: `--nvidia` points at a checkout of NVlabs/stylegan3
(its `training/networks_stylegan2.py`, `networks_stylegan3.py`, `torch_utils/` and `dnnlib/`; their
`dnnlib` imports `requests` and their StyleGAN3 `scipy`, so install those beside us). Their Generator
(StyleGAN2 or StyleGAN3, as the pickle holds) is built from the init kwargs stored in the pickle and
gets its weights through our safe reader, so nothing embedded in the pickle runs.

`--make T|R|stylegan2 --size N` benchmarks a random-weight network of NVIDIA's own configuration
instead (their Generator built with their training defaults for that config, saved as a pickle in a
temporary folder, which our side then reads like any user's file): sizes no reference file covers.

Both run on the CPU in this process with the same torch threads, in
alternating runs of a few frames (medians), so a noisy neighbour slows both alike:

- NVIDIA: `G(z, c, noise_mode="const", force_fp32=True)`, a fresh z each frame, float32
  (`force_fp32`: their fp16 layers in half precision on a CPU would only be slower);
- ours, end to end: `Runtime.step()` of the default graph (animated seed, so the mapping re-runs
  every frame) plus the frame's copy to host uint8, as `autolume-graph bench` measures it;
- ours, bare: mapping + synthesis of a fresh z, the figure `bench` reports as `generator_ms`.

    python benchmarks/bench_vs_nvidia.py --nvidia ~/src/stylegan3 [MODEL.pkl] [--frames N]
    python benchmarks/bench_vs_nvidia.py --nvidia ~/src/stylegan3 --make T --size 256 --frames 2 --run-length 1

Every figure comes with the kernels our side chose (`autolume-graph bench`'s kernel lines).

Huge pages: importing our package asks torch to put large CPU tensors on transparent huge pages
(`autolume_graph.huge_pages`), and torch reads that once per process, so NVIDIA's side runs on them too
("huge_pages" in the kernel line). Their StyleGAN3 forward allocates many large intermediate maps and
gains far more from it than ours (about x2 on this 2-core EPYC, against ours x1.0-1.1). To compare with
their code as torch runs it by default (4 KB pages), start with `THP_MEM_ALLOC_ENABLE=0`: both sides
then run without huge pages. Quote which.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from bench_stylegan2 import interleaved_ms

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "sg2_64_tiny.pkl"


# NVIDIA's training defaults per config (their train.py): mapping depth, channels, kernel, filters.
CONFIGS = {
    "stylegan2": ("training.networks_stylegan2", dict(channel_base=32768, channel_max=512, mapping_kwargs=dict(
        num_layers=8))),
    "T": ("training.networks_stylegan3", dict(channel_base=32768, channel_max=512, mapping_kwargs=dict(
        num_layers=2))),
    "R": ("training.networks_stylegan3", dict(channel_base=65536, channel_max=1024, conv_kernel=1,
                                              use_radial_filters=True, mapping_kwargs=dict(num_layers=2))),
}


def made_pickle(source: Path, config: str, size: int, folder: Path) -> Path:
    """A random-weight generator of NVIDIA's `config` at `size` px, pickled by their code as training does."""
    import importlib

    sys.path.insert(0, str(source))
    module, kwargs = CONFIGS[config]
    torch.manual_seed(0)
    generator = importlib.import_module(module).Generator(  # NVIDIA's code, from the user's checkout
        z_dim=512, c_dim=0, w_dim=512, img_resolution=size, img_channels=3, **kwargs).eval()
    path = folder / f"nvidia_{config}_{size}.pkl"
    with path.open("wb") as f:
        pickle.dump({"G_ema": generator}, f)
    return path


def nvidia_generator(source: Path, pickle_path: Path) -> Callable[[], torch.Tensor]:
    """NVIDIA's Generator (StyleGAN2 or 3) for the pickle's G_ema, weights from our reader; a frame callable."""
    import importlib

    from autolume_graph.gan.safe_pickle import read_generator

    sys.path.insert(0, str(source))
    record = read_generator(pickle_path).record
    stylegan3 = "input" in record.children["synthesis"].children  # Fourier-feature input: StyleGAN3
    module = importlib.import_module(f"training.networks_stylegan{3 if stylegan3 else 2}")  # NVIDIA's code
    generator = module.Generator(**record.init_kwargs).eval().requires_grad_(False)
    generator.load_state_dict(record.state_dict(), strict=True)
    label = torch.zeros([1, generator.c_dim])

    def frame(z: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            z = torch.randn(1, generator.z_dim) if z is None else z
            return generator(z, label, noise_mode="const", force_fp32=True)
    return frame


def agreement(nvidia: Callable[..., torch.Tensor], pickle_path: Path) -> float:
    """Max |ours - NVIDIA's| over one image of the same z: the two sides compute the same picture."""
    from autolume_graph.bench import bench_runtime, loaded_model

    runtime = bench_runtime(str(pickle_path), "cpu")
    runtime.step()
    model = loaded_model(runtime.graph)
    z = torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(7))
    with torch.inference_mode():
        ours = model.synthesis(model.mapping(z), noise_mode="const")
    runtime.close()
    return (ours - nvidia(z)).abs().max().item()


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


def kernel_lines() -> str:
    """What produced our figures: CPU, precision and the kernels chosen, as `autolume-graph bench` says."""
    from autolume_graph.bench import build_cpu_kernels, kernel_report

    build_cpu_kernels()  # their first build, before anything is timed
    return ", ".join(f"{key} {value}" for key, value in kernel_report("cpu").items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=REFERENCE, help="an NVIDIA StyleGAN2 pickle")
    parser.add_argument("--nvidia", type=Path, required=True, help="a checkout of NVlabs/stylegan3")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--run-length", type=int, default=4, help="frames counted per turn (one more runs first)")
    parser.add_argument("--make", choices=sorted(CONFIGS), help="a random network of NVIDIA's config instead")
    parser.add_argument("--size", type=int, default=256, help="resolution for --make")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = made_pickle(args.nvidia, args.make, args.size, Path(folder)) if args.make else args.model
        fns = {"nvidia": nvidia_generator(args.nvidia, model)}
        fns["ours end to end"], fns["ours bare"] = our_frames(model)
        kernels, diff = kernel_lines(), agreement(fns["nvidia"], model)
        ms = interleaved_ms(fns, args.frames, run_length=args.run_length)
    print(f"{model.name}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.frames} interleaved frames; {kernels}; max |ours - NVIDIA's| {diff:.1e}")
    for name, value in ms.items():
        print(f"  {name:16s} {value:8.2f} ms  {1000 / value:7.2f} fps   x{ms['nvidia'] / value:.2f} NVIDIA's rate")


if __name__ == "__main__":
    main()
