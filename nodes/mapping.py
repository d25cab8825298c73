"""Mapping: a latent on a latent wire becomes per-layer w, with diversity (truncation ψ) and, for a
conditional model, the class (an index, or a blend of classes on the `class_weights` wire)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

from autolume_graph.gan import wires
from autolume_graph.gan.accel import MappingRunner, to_device
from autolume_graph.gan.latent_value import Latent
from autolume_graph.gan.mapping import ClassInput, class_input
from autolume_graph.node import CookContext, Node, NodeError, NodeStatus
from autolume_graph.params import Float, Input, Int, Output
from autolume_graph.roles import Role
from autolume_graph.types import PortType


class Mapping(Node):
    """z -> w through the model's mapping network; diversity ψ pulls w toward the average image.

    A conditional model maps z with a class: `class`, or the blend on `class_weights` when wired
    (see `gan.mapping.class_input`); the status says when either was clipped, padded or cut.
    """

    category = "latent"
    roles = frozenset({Role.MAPPER})
    inputs = {
        "model": Input(wires.MODEL, "the generator whose mapping network is used"),
        "latent": Input(wires.LATENT, "latent from a seed, vector or loop node"),
        "class_weights": Input(PortType.ANY, "a blend of classes: a list of weights (negatives count as 0, "
                               "divided by their sum), or one number t between classes (2.25: 3/4 class 2, "
                               "1/4 class 3); overrides `class`"),
    }
    outputs = {"w": Output(wires.W, "per-layer w [1, num_ws, w_dim] on the device")}
    params = {
        "psi": Float(1.0, 0.0, 2.0, clip=False, limit=(-100.0, 100.0),
                     doc="diversity: 0 is the average image, 1 the model's own range"),
        "cutoff": Int(0, 0, 32, doc="apply diversity to the first N layers only (0: all)"),
        "class": Int(0, 0, 99, clip=False, limit=(0, 4095),
                     doc="a conditional model's class (clipped to its count; unconditional models ignore it)"),
    }

    def reset(self) -> None:
        self._mapping = MappingRunner()
        self._cache: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def _map_term(self, model: Any, value: torch.Tensor, project: bool, kind: str, device: str,
                  classes: ClassInput) -> torch.Tensor:
        conditioned = project and kind != "w"
        key = (id(model), id(value), project, kind, classes.weights if conditioned else ())
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
            c = classes.tensor()
            w = self._mapping(model, value, None if c is None else to_device(c, device))
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
        try:
            classes = class_input(model.c_dim, params["class"], inputs.get("class_weights"))
        except ValueError as exc:
            raise NodeError(str(exc)) from None
        self.status = NodeStatus.of(classes.note)
        device = str(model.mapping.w_avg.device)
        w = sum(term.coef * self._map_term(model, term.value, term.project, term.kind, device, classes)
                for term in latent.terms)
        psi, cutoff = params["psi"], params["cutoff"] or model.num_ws
        if psi != 1.0:
            w = w.clone()
            w[:, :cutoff] = model.mapping.w_avg.lerp(w[:, :cutoff], psi)
        return {"w": w}
