"""Work per StyleGAN2 frame under autocast, with the derived constants kept between frames and rebuilt.

On CUDA it counts the kernels one synthesis call launches (what a CUDA graph replays); on the CPU,
which has no kernels to count, the operators torch's profiler records at the top level (with
bfloat16 standing in for float16). Fewer launches matter most on the GPU, where a small network's
frame is made of many tiny kernels.

    python benchmarks/bench_ops.py [--size 512] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.stylegan2 import make_settings, set_fast_path

VIEWS = {"aten::view", "aten::reshape", "aten::unsqueeze", "aten::expand", "aten::transpose", "aten::t",
         "aten::select", "aten::slice", "aten::as_strided", "aten::permute", "aten::squeeze", "aten::alias",
         "aten::_unsafe_view", "aten::detach", "aten::empty", "aten::empty_like", "aten::empty_strided"}


def count(model: torch.nn.Module, ws: torch.Tensor, dtype: torch.dtype) -> int:
    """Kernels (CUDA) or top-level operators (CPU) of one synthesis call, after two warm-up calls."""
    device = ws.device.type

    def frame() -> None:
        with torch.inference_mode(), torch.autocast(device, dtype=dtype):
            model.synthesis(ws)

    frame()
    frame()
    activities = [ProfilerActivity.CUDA] if device == "cuda" else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        frame()
        if device == "cuda":
            torch.cuda.synchronize()
    if device == "cuda":
        return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
    return sum(1 for e in prof.events() if e.name.startswith("aten::") and e.name not in VIEWS
               and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    model = make_random_model(make_settings(args.size), seed=1).to(args.device).eval()
    ws = model.mapping(torch.randn(1, model.z_dim, device=args.device), psi=0.7)
    dtype = torch.float16 if args.device == "cuda" else torch.bfloat16
    what = "kernels" if args.device == "cuda" else "top-level operators"
    cached = count(set_fast_path(model, True), ws, dtype)
    rebuilt = count(set_fast_path(model, False), ws, dtype)
    print(f"StyleGAN2 {args.size} px on {args.device}, {dtype}: {what} per frame: "
          f"constants kept {cached}, rebuilt every frame {rebuilt}")


if __name__ == "__main__":
    main()
