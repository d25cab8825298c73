"""ModelLoader: a network pickle or our own model file, loaded off the render thread and shared."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch

from autolume_graph.devices import CHOICES
from autolume_graph.gan import wires
from autolume_graph.gan.mixing import block_of
from autolume_graph.gan.model import StyleGANModel
from autolume_graph.gan.store import shared_store
from autolume_graph.node import CookContext, Node, NodeError, NodeState, NodeStatus
from autolume_graph.params import Choice, FilePath, Output
from autolume_graph.roles import Role

from .model_mix import ModelMix


class ModelCrossfade:
    """One model crossfaded into another for a preset morph: ModelMix's per-block mix at one weight for the
    synthesis network, the mapping network and w_avg blended alike, so the last frame is the new model.

    Built off the render thread; `at(t)` rewrites the weights in place. Models that cannot mix (another
    family or shape) raise NodeError here, before the morph starts."""

    def __init__(self, a: StyleGANModel, b: StyleGANModel) -> None:
        self.a, self.b = a, b
        self._mix = ModelMix()
        self.model = self._mix.cook(CookContext(), {"a": a, "b": b}, self._mix.values)["model"]
        b_state, out = b.state_dict(), self.model.state_dict()
        self._outside = [(out[name], a_value, b_state[name].to(a_value.device))
                         for name, a_value in a.state_dict().items()
                         if block_of(name) is None and a_value.is_floating_point() and name in out
                         and name in b_state and b_state[name].shape == a_value.shape]

    def at(self, t: float) -> StyleGANModel:
        self._mix.cook(CookContext(), {"a": self.a, "b": self.b}, {**self._mix.values, "crossfade": t})
        with torch.no_grad():
            for dst, a_value, b_value in self._outside:
                torch.lerp(a_value, b_value, t, out=dst)
        return self.model


class ModelLoader(Node):
    """Loads a StyleGAN2/3 model by path or by name in models/ ("default": the embedded model)."""

    category = "generator"
    roles = frozenset({Role.MODEL_SOURCE, Role.MORPHS_OUTPUTS})
    outputs = {"model": Output(wires.MODEL, "the loaded generator, on the device")}
    params = {
        "path": FilePath("default", kind="model", doc="a .pkl, our model file, a name in models/, or default"),
        "device": Choice("auto", CHOICES, doc="auto: the runtime's device"),
        "network": Choice("G_ema", ("G_ema", "G"),
                          doc="a training snapshot's generator: G_ema (NVIDIA's tools) or G (what Autolume Live "
                              "renders); a file without it falls back to the other, with a note"),
    }

    def reset(self) -> None:
        self._future: Future | None = None
        self._key: tuple[str, str, str] | None = None
        self._cooked: Future | None = None  # the finished load a cook has already passed on (or raised)

    def _device(self, params: dict[str, Any], ctx_device: str) -> str:
        return ctx_device if params["device"] == "auto" else params["device"]

    def animating(self, params: dict[str, Any]) -> bool:
        # Until a cook has seen the load finish: one that finishes between two frames must still be cooked.
        return self._future is not None and self._future is not self._cooked

    def _request(self, params: dict[str, Any], device: str) -> Future:
        key = (params["path"], self._device(params, device), params["network"])
        if key != self._key or self._future is None:
            self._key = key
            self._future = shared_store().request(*key)
        return self._future

    def prepare(self, device: str) -> None:
        """Before a graph goes live: wait for its model, so a preset switch shows it on the first frame."""
        future = self._request(self.values, device)
        try:
            future.result(timeout=300)
        except Exception:  # noqa: BLE001 - the error shows on the node when it cooks
            pass

    def loaded(self) -> StyleGANModel | None:
        """The model once its load finished well (None while loading or after a failure)."""
        future = self._future
        return future.result() if future is not None and future.done() and future.exception() is None else None

    def prepare_morph(self, start: dict[str, Any], target: ModelLoader) -> ModelCrossfade | str:
        """Off the render thread: the crossfade from the running model into the preset's (prepared) one, or
        why there is none (the morph then switches models at its midpoint)."""
        old, new = start.get("model"), target.loaded()
        if old is None or new is None:
            return "no model to crossfade from or to"
        try:
            return ModelCrossfade(old, new)
        except NodeError as exc:
            return str(exc)

    def morph_outputs(self, start: dict[str, Any], now: dict[str, Any], t: float,
                      prepared: ModelCrossfade | str | None) -> dict[str, Any]:
        """The crossfaded model; without one for this pair (shapes differ), the old model until the midpoint."""
        old, new = start.get("model"), now.get("model")
        if old is None or new is None or old is new:
            return now
        if isinstance(prepared, ModelCrossfade) and prepared.a is old and prepared.b is new:
            return {"model": prepared.at(t)}
        why = prepared if isinstance(prepared, str) else "not prepared for these models"
        self.status = NodeStatus.of(f"morph: {why}; the model switches at the midpoint")
        return {"model": old if t < 0.5 else new}

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        future = self._request(params, ctx.device)
        if not future.done():
            self.status = NodeStatus.of(f"loading {Path(params['path']).name}...", state=NodeState.LOADING)
            return {}
        self._cooked = future
        error = future.exception()
        if error is not None:
            self.status = ""
            raise NodeError(str(error))
        model = future.result()
        self.status = model.load_note  # a file without the network asked for: the other one, and why
        return {"model": model}

