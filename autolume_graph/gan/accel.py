"""GPU fast path: network calls replayed from captured CUDA graphs, optionally in float16.

Eager PyTorch spends most of a small network's frame launching kernels; a CUDA graph launches a
whole call at once. A graph bakes in everything but its input buffers, so one is captured per set
of options (model, weights version, noise, edits, precision) and reused while they stay put.
Options that change every frame (an animated noise strength, say) would recapture every frame, so
while they are moving the call runs eagerly and a graph is captured once they have settled; a call
that cannot be captured runs eagerly for good. Host values reach the GPU without a stream sync
(`to_device`), so no frame waits for the previous one.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import torch

from .cpu_features import bfloat16_support

SETTLE_SECONDS = 0.5
MAX_GRAPHS = 4
MAX_UNCAPTURABLE = 64


PRECISIONS = ("auto", "float32", "float16", "bfloat16")


def choose_precision(precision: str, device: torch.device | str) -> tuple[torch.dtype, str]:
    """The dtype `precision` runs in on `device`, and why it is not the one asked for ("" when it is).

    `auto` is float16 on CUDA (the networks clamp activations for it) and float32 elsewhere. float16
    on a CPU would only be slower (float32). bfloat16 runs on CUDA, and on a CPU only where it has
    native bfloat16 arithmetic (checked at run time: cpu_features); elsewhere float32, with the reason.
    """
    device = torch.device(device)
    on_cuda = device.type == "cuda"
    if precision == "float16" or (precision == "auto" and on_cuda):
        return (torch.float16, "") if on_cuda else (torch.float32, "float16 is for CUDA: float32 on the CPU")
    if precision == "bfloat16":
        if on_cuda:
            return torch.bfloat16, ""
        if device.type == "cpu":
            support = bfloat16_support()
            return (torch.bfloat16, "") if support.available else (torch.float32, f"bfloat16 off: {support.reason}")
        return torch.float32, f"bfloat16 is not offered on {device.type}: float32"
    return torch.float32, ""


def to_device(value: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """`value.to(device)` that never waits for the GPU.

    A plain host-to-device copy synchronizes the stream: a latent sent each frame would make the
    frame wait for the previous one to finish before its own work is queued, so the CPU's share of
    every frame (engine, launches) would stop overlapping the GPU's. Staging in pinned memory lets
    the copy run asynchronously, in stream order.
    """
    device = torch.device(device)
    if device.type != "cuda" or value.device.type != "cpu":
        return value.to(device)
    return value.pin_memory().to(device, non_blocking=True)


def _autocast(dtype: torch.dtype, device: torch.device) -> contextlib.AbstractContextManager:
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


class CaptureError(RuntimeError):
    """A call that runs eagerly but cannot be captured (it waits for the GPU from the host, say)."""


class _Captured:
    """One captured graph: a static input buffer in, static outputs out."""

    def __init__(self, run: Callable[[torch.Tensor], Any], x: torch.Tensor) -> None:
        self.run = run  # keeps what the key names by id alive, so those ids stay unique
        self.x = x.clone()
        torch.backends.cudnn.benchmark = True  # shapes are fixed per graph: let cuDNN pick its fastest
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm up (cuDNN's algorithm choice) outside the capture
                run(self.x)
        current = torch.cuda.current_stream()
        current.wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(self.graph):
                self.out = run(self.x)
        except RuntimeError as exc:
            torch.cuda.set_stream(current)  # a failed capture can leave its own stream current
            raise CaptureError(str(exc).splitlines()[0]) from exc

    def __call__(self, x: torch.Tensor) -> Any:
        self.x.copy_(x)
        self.graph.replay()
        return self.out


class GraphCache:
    """Replays `run(x)` from a captured CUDA graph per key; runs eagerly while keys keep changing,
    and for good where a capture fails (the picture must not stop for want of a graph)."""

    def __init__(self) -> None:
        self._graphs: OrderedDict[Hashable, _Captured] = OrderedDict()
        self._uncapturable: set[Hashable] = set()
        self._last_key: Hashable = None
        self._key_changed_at = float("-inf")
        self.captures = 0

    def __call__(self, key: Hashable, run: Callable[[torch.Tensor], Any], x: torch.Tensor) -> Any:
        now = time.perf_counter()
        key = (key, tuple(x.shape), x.dtype, x.device)
        if key != self._last_key:
            self._last_key, self._key_changed_at = key, now
        captured = self._graphs.get(key)
        if captured is None:
            if key in self._uncapturable or (now - self._key_changed_at < SETTLE_SECONDS and self._graphs):
                return run(x)  # options are moving: stay eager until they settle
            try:
                captured = self._graphs[key] = _Captured(run, x)
            except CaptureError:
                if len(self._uncapturable) >= MAX_UNCAPTURABLE:
                    self._uncapturable.clear()
                self._uncapturable.add(key)
                return run(x)
            self.captures += 1
            while len(self._graphs) > MAX_GRAPHS:
                self._graphs.popitem(last=False)
        self._graphs.move_to_end(key)
        return captured(x)


def _float(out: Any) -> Any:
    return out.float() if torch.is_tensor(out) else tuple(o.float() for o in out)


class WeightsVersion:
    """A number that grows with every in-place write to a model's tensors (ModelMix's crossfade).

    A captured graph replays what was derived from the weights at capture time (scaled and cast
    copies), so it is keyed by this too: a changed mix is rendered eagerly, then captured anew.
    The model's `live_buffers` (controls written every frame, read live by the graph) do not count.
    """

    def __init__(self) -> None:
        self._model: torch.nn.Module | None = None
        self._tensors: list[torch.Tensor] = []

    def __call__(self, model: torch.nn.Module) -> int:
        if model is not self._model:
            live = set(getattr(model, "live_buffers", ()))
            self._model = model
            self._tensors = [*model.parameters(), *(t for name, t in model.named_buffers() if name not in live)]
        return sum(t._version for t in self._tensors)


class SynthesisRunner:
    """Runs `model.synthesis` in the chosen precision, through CUDA graphs where that is possible."""

    def __init__(self, use_graphs: bool = True) -> None:
        self.use_graphs = use_graphs
        self.graphs = GraphCache()
        self.weights_version = WeightsVersion()
        self.precision_note = ""  # why the last call ran in another precision than asked ("" when it did not)

    def __call__(self, model: Any, ws: torch.Tensor, precision: str = "auto", **options: Any) -> Any:
        device = ws.device
        dtype, self.precision_note = choose_precision(precision, device)

        def run(w: torch.Tensor) -> Any:
            with torch.inference_mode(), _autocast(dtype, device):
                return _float(model.synthesis(w, **options))

        graphable = (self.use_graphs and device.type == "cuda" and options.get("capture") is None
                     and options.get("noise_mode", "const") != "random")
        if not graphable:
            return run(ws)
        key = (id(model), self.weights_version(model), dtype, options.get("noise_mode"), options.get("noise_scale"),
               tuple(sorted((options.get("layer_noise_scale") or {}).items())),
               tuple((k, id(v)) for k, v in sorted((options.get("layer_edits") or {}).items())))
        return self.graphs(key, run, ws)


class MappingRunner:
    """`model.mapping(z, c)` in float32, through a CUDA graph on the GPU (8 small layers: launch-bound).

    A conditional model's class vector travels in the graph's input buffer beside z, so a class
    that moves every frame (a blend driven by an LFO) replays the same graph instead of recapturing.
    """

    def __init__(self) -> None:
        self.graphs = GraphCache()
        self.weights_version = WeightsVersion()

    def __call__(self, model: Any, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        z_dim = z.shape[-1]

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return model.mapping(x[:, :z_dim], c=x[:, z_dim:] if c is not None else None, psi=1.0)

        x = z if c is None else torch.cat([z.to(torch.float32), c.to(z.device, torch.float32)], dim=1)
        if x.device.type != "cuda":
            return run(x)
        key = (id(model), self.weights_version(model))
        return self.graphs(key, run, x).clone()  # the graph's output buffer is reused next call
