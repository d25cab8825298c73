"""`autolume-graph bench`: end-to-end fps of a graph, per-node cost, the bare generator and the overhead.

Given a model file instead of a graph, benchmarks the default graph (animated seed) with that model.
Output sinks other than the Preview (NDI, windows, recorders) are left out: the bench itself copies
each frame to host memory, as they would, and times that copy.
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

from autolume_graph import huge_pages
from autolume_graph.gan import cpu_features, pointwise, winograd
from autolume_graph.gan.filtered_lrelu import activation_kernel
from autolume_graph.gan.kernels import cpu_fir
from autolume_graph.gan.kernels.stylegan2_dispatch import kernel_choice
from autolume_graph.graph import Graph
from autolume_graph.roles import Role
from autolume_graph.runtime import Runtime, resolve_device

MODEL_SUFFIXES = (".pkl", ".agm", ".safetensors")


def _graph_for(target: str) -> Graph:
    from autolume_graph.graph_files import open_graph
    from autolume_graph.graphs.shipped import build_default

    if Path(target).suffix.lower() in MODEL_SUFFIXES or target.startswith("model:"):
        graph = build_default()
        graph.node("model").set_value("path", target.removeprefix("model:"))
        return graph
    return open_graph(target)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _generator_ms(model: Any, device: str, frames: int) -> float:
    """The bare generator: eager float32 mapping + synthesis of a fresh z each frame, waited on each
    frame, as NVIDIA's forward runs; the baseline the end-to-end figure is compared with."""
    zs = torch.randn(frames + 3, 1, model.z_dim, device=device)
    times = []
    with torch.inference_mode():
        for i, z in enumerate(zs):
            _sync(device)
            t0 = time.perf_counter()
            model.synthesis(model.mapping(z), noise_mode="const")
            _sync(device)
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


class _OSCProbe:
    """Sends one OSC message per frame to a bound parameter from another thread, at a random phase."""

    def __init__(self, runtime: Runtime) -> None:
        from autolume_graph.osc.bindings import OSCControl
        from autolume_graph.osc.mailbox import Mailbox
        from autolume_graph.osc.server import OSCServer

        mapping = next((n for n in runtime.graph.nodes.values() if Role.MAPPER in n.roles), None)
        if mapping is None:
            raise LookupError("no Mapping node to probe")
        self.address = mapping.binding("psi").address
        self.control = OSCControl(Mailbox())
        runtime.frame_hooks.append(self.control)
        self.server = OSCServer(self.control.mailbox, "127.0.0.1", 0)
        self.server.start()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._thread.start()

    def _send(self) -> None:
        from pythonosc.osc_message_builder import OscMessageBuilder

        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        i = 0
        while not self._stop.wait(0.011):
            builder = OscMessageBuilder(address=self.address)
            builder.add_arg(0.8 + 1e-4 * (i % 2), "f")
            sock.sendto(builder.build().dgram, self.server.address)
            i += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.stop()


def bench_runtime(target: str, device: str) -> Runtime:
    """The graph of `target` with only its preview as a sink, unpaced, its models loading now."""
    from autolume_graph.render import keep_only_preview

    graph = _graph_for(target)
    keep_only_preview(graph)
    runtime = Runtime(graph, fps=0, device=device)
    for node in graph.nodes.values():
        node.prepare(device)
    return runtime


def loaded_model(graph: Graph) -> Any:
    """The model of the graph's first model source (a ModelLoader), or None while there is none."""
    return next((n.last_outputs.get("model") for n in graph.nodes.values() if Role.MODEL_SOURCE in n.roles), None)


def build_cpu_kernels(wait_s: float = 120.0) -> None:
    """Our C kernels built (or failed, with a reason) and their choices measured before anything is
    timed, so that a figure never mixes in the torch paths that run while they build."""
    from autolume_graph.gan.kernels import cpu_filtered_lrelu, cpu_fir, cpu_gemm, cpu_winograd

    cpu_filtered_lrelu.support(wait_s)
    cpu_fir.support(wait_s)
    cpu_winograd.support(wait_s)
    cpu_gemm.support(wait_s)
    winograd.products()  # measured now, once
    pointwise.support()  # likewise


def run_bench(target: str, frames: int = 100, device: str = "auto", warmup: int = 5) -> dict[str, Any]:
    from autolume_graph.outputs.frames import FrameConverter

    device = resolve_device(device)
    if torch.device(device).type == "cpu":
        build_cpu_kernels()
    runtime = bench_runtime(target, device)
    graph = runtime.graph
    try:
        probe: _OSCProbe | None = _OSCProbe(runtime)
    except (ImportError, LookupError, OSError):
        probe = None
    converter = FrameConverter()
    frame_ms, copy_ms, cook_ms = [], [], []
    per_node: dict[str, list[float]] = {n.name: [] for n in graph.nodes.values()}
    osc_ms: list[float] = []
    pending = None  # the previous frame's host copy: it lands while this frame computes (pipelined)
    for i in range(warmup + frames):
        before = len(probe.control.latencies) if probe else 0
        t0 = time.perf_counter()
        snap = runtime.step()
        image = next(iter(snap.published.values()), None)
        t1 = time.perf_counter()
        if pending is not None:
            pending.wait()
        pending = converter.convert(image) if image is not None else None
        t2 = time.perf_counter()
        if i < warmup:
            continue
        frame_ms.append((t2 - t0) * 1000)
        copy_ms.append((t2 - t1) * 1000)
        report = runtime.last_report
        cook_ms.append(sum(report.cook_ms.values()))
        for node_id, ms in report.cook_ms.items():
            per_node[graph.nodes[node_id].name].append(ms)
        if probe:
            osc_ms += [(lat + t2 - t0) * 1000 for lat in list(probe.control.latencies)[before:]]
    if pending is not None:
        pending.wait()
    if probe:
        probe.close()
    model = loaded_model(graph)
    errors = {n.name: n.error for n in graph.nodes.values() if n.error}
    runtime.close()
    ms = statistics.median(frame_ms)
    result: dict[str, Any] = {
        "target": target,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        **kernel_report(device),
        "frames": frames,
        "image_size": list(reversed(model.img_size)) if model is not None else None,  # [width, height]
        "fps": 1000.0 / ms,
        "ms_per_frame": ms,
        "copy_out_ms": statistics.median(copy_ms),
        "cook_ms": statistics.median(cook_ms),
        "engine_overhead_ms": max(0.0, ms - statistics.median(cook_ms) - statistics.median(copy_ms)),
        "per_node_ms": {k: sum(v) / frames for k, v in per_node.items() if v},
        "generator_ms": _generator_ms(model, device, min(frames, 50)) if model is not None else None,
        "osc_to_frame_ms_p50": statistics.median(osc_ms) if osc_ms else None,
        "osc_to_frame_ms_p99": sorted(osc_ms)[int(0.99 * (len(osc_ms) - 1))] if osc_ms else None,
        "errors": errors,
    }
    return result


# kernel_report's entries as `bench` prints them
KERNEL_LABELS = {"cpu_kernels": "torch CPU kernels", "cpu": "CPU", "sg3_activation": "StyleGAN3 activation",
                 "sg2_layers": "StyleGAN2 layers", "winograd": "Winograd 3x3",
                 "winograd_products": "Winograd products", "pointwise": "1x1 convolutions",
                 "sg2_up_filter": "StyleGAN2 up-sampling filter", "huge_pages": "huge pages"}


def kernel_report(device: str) -> dict[str, str]:
    """The kernels a figure on `device` comes from, chosen at run time: one line each."""
    return {
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),  # the vector ISA torch's CPU kernels chose
        "cpu": cpu_features.describe(),  # ISA and whether bfloat16 is native here
        "sg3_activation": "{} ({})".format(*activation_kernel(device)),  # StyleGAN3's filtered lrelu form
        "sg2_layers": "{} ({})".format(*kernel_choice(device)),  # StyleGAN2's layers: fused Triton or eager
        "winograd": "{} transforms ({})".format(*_winograd(device)),  # 3x3 convolutions on the CPU
        "winograd_products": winograd.products().reason if torch.device(device).type == "cpu" else "-",
        "pointwise": pointwise.support().reason if torch.device(device).type == "cpu" else "-",  # StyleGAN3-R
        "sg2_up_filter": _up_filter(device),  # after oneDNN's transposed convolutions
        "huge_pages": huge_pages.describe() if torch.device(device).type == "cpu" else "-",  # fresh tensors' pages
    }


def _up_filter(device: str) -> str:
    if torch.device(device).type != "cpu":
        return "-"
    found = cpu_fir.support()
    return f"C, with the finish ({found.reason})" if found.available else f"torch ({found.reason})"


def _winograd(device: str) -> tuple[str, str]:
    if torch.device(device).type != "cpu":
        return "no", f"{device}: direct convolutions"
    found = winograd.transforms()
    return ("C" if found.available else "torch"), found.reason


def print_report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    size = result["image_size"]
    image = f", {size[0]}x{size[1]} image" if size else ""
    print(f"{result['target']} on {result['device']}{image} ({result['torch_threads']} torch threads): "
          f"{result['fps']:.2f} fps end to end ({result['ms_per_frame']:.2f} ms/frame incl. copy to host)")
    for key, label in KERNEL_LABELS.items():
        print(f"  {label}: {result[key]}")
    if result["generator_ms"] is not None:
        print(f"  bare generator (eager float32 mapping + synthesis): {result['generator_ms']:.2f} ms "
              f"= {1000 / result['generator_ms']:.2f} fps")
    print(f"  copy out {result['copy_out_ms']:.3f} ms, engine overhead {result['engine_overhead_ms']:.3f} ms")
    if result["osc_to_frame_ms_p50"] is not None:
        print(f"  OSC arrival -> frame done: p50 {result['osc_to_frame_ms_p50']:.1f} ms, "
              f"p99 {result['osc_to_frame_ms_p99']:.1f} ms")
    for name, node_ms in sorted(result["per_node_ms"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:>20}: {node_ms:8.3f} ms/frame")
    for name, error in result["errors"].items():
        print(f"  ! {name}: {error}", file=sys.stderr)
