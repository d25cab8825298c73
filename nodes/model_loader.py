"""ModelLoader: a network pickle or our own model file, loaded off the render thread and shared."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

from autolume_graph.gan import wires
from autolume_graph.gan.store import shared_store
from autolume_graph.node import CookContext, Node, NodeError, NodeState, NodeStatus
from autolume_graph.params import Choice, FilePath, Output
from autolume_graph.roles import Role


class ModelLoader(Node):
    """Loads a StyleGAN2/3 model by path or by name in models/ ("default": the embedded model)."""

    category = "generator"
    roles = frozenset({Role.MODEL_SOURCE})
    outputs = {"model": Output(wires.MODEL, "the loaded generator, on the device")}
    params = {
        "path": FilePath("default", kind="model", doc="a .pkl, our model file, a name in models/, or default"),
        "device": Choice("auto", ("auto", "cpu", "cuda"), doc="auto: the runtime's device"),
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

