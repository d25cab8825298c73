"""Mapping: a latent on a latent wire becomes per-layer w, with diversity (truncation ψ)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

from autolume_graph.gan import wires
from autolume_graph.gan.accel import MappingRunner, to_device
from autolume_graph.gan.latent_value import Latent
from autolume_graph.node import CookContext, Node, NodeError
from autolume_graph.params import Float, Input, Int, Output
from autolume_graph.roles import Role


class Mapping(Node):
    """z -> w through the model's mapping network; diversity ψ pulls w toward the average image."""

    category = "latent"
    roles = frozenset({Role.MAPPER})
    inputs = {
        "model": Input(wires.MODEL, "the generator whose mapping network is used"),
        "latent": Input(wires.LATENT, "latent from a seed, vector or loop node"),
    }
    outputs = {"w": Output(wires.W, "per-layer w [1, num_ws, w_dim] on the device")}
    params = {
        "psi": Float(1.0, 0.0, 2.0, clip=False, limit=(-100.0, 100.0),
                     doc="diversity: 0 is the average image, 1 the model's own range"),
        "cutoff": Int(0, 0, 32, doc="apply diversity to the first N layers only (0: all)"),
    }

    def reset(self) -> None:
        self._mapping = MappingRunner()
        self._cache: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def _map_term(self, model: Any, value: torch.Tensor, project: bool, kind: str, device: str) -> torch.Tensor:
        key = (id(model), id(value), project, kind)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is value:  # ids are reused once a tensor dies: check identity
            self._cache.move_to_end(key)
            return hit[1]
        source = value
        value = to_device(value, device)
        if kind == "w":
            if tuple(value.shape[1:]) != (model.num_ws, model.w_dim):
                raise NodeError(f"w of shape {tuple(value.shape)} does not fit this model "
                                f"({model.num_ws} x {model.w_dim})")
            w = value
        elif value.shape[-1] != model.z_dim:
            raise NodeError(f"z has {value.shape[-1]} values, the model wants {model.z_dim}")
        elif project:
            w = self._mapping(model, value)
        else:
            if model.z_dim != model.w_dim:
                raise NodeError("Project off needs z_dim == w_dim")
            w = value.unsqueeze(1).expand(1, model.num_ws, model.w_dim)
        self._cache[key] = (source, w)
        if len(self._cache) > 64:
            self._cache.popitem(last=False)
        return w

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        model, latent = inputs.get("model"), inputs.get("latent")
        if model is None or latent is None:
            raise NodeError("connect a model and a latent")
        if not isinstance(latent, Latent):
            raise NodeError("the latent input needs a latent wire")
        device = str(model.mapping.w_avg.device)
        w = sum(term.coef * self._map_term(model, term.value, term.project, term.kind, device)
                for term in latent.terms)
        psi, cutoff = params["psi"], params["cutoff"] or model.num_ws
        if psi != 1.0:
            w = w.clone()
            w[:, :cutoff] = model.mapping.w_avg.lerp(w[:, :cutoff], psi)
        return {"w": w}
