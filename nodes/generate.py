"""Generate: the synthesis network renders per-layer w into an image that stays on the device."""

from __future__ import annotations

from typing import Any

import torch

from autolume_graph.gan import wires
from autolume_graph.gan.accel import PRECISIONS, SynthesisRunner
from autolume_graph.gan.edits import LayerEdits, activation_to_image
from autolume_graph.gan.family import family_of
from autolume_graph.gan.finite_guard import FiniteGuard
from autolume_graph.node import CookContext, Node, NodeError, NodeStatus
from autolume_graph.params import Bool, Choice, Float, Input, Int, Output
from autolume_graph.types import PortType

NOT_FINITE = "the image is not finite (NaN or inf): psi, a layer transform or noise out of range?"


class Generate(Node):
    """Renders w with the model's synthesis network: noise controls, layer edits, StyleGAN3 input transform."""

    category = "generator"
    inputs = {
        "model": Input(wires.MODEL, "the generator"),
        "w": Input(wires.W, "per-layer w from Mapping (or AdjustInput)"),
        "edits": Input(wires.EDITS, "layer transforms, per-layer noise and layer view"),
    }
    outputs = {"image": Output(PortType.IMAGE, "RGB [1, 3, H, W], nominal [-1, 1], on the device")}
    params = {
        "noise": Bool(True, doc="noise on/off: off gives smooth images without texture"),
        "noise_mode": Choice("random", ("random", "const"),
                             doc="random: seeded noise (Noise Seed and Anim change the texture); "
                                 "const: the noise stored in the model (Seed and Anim do nothing)"),
        "noise_strength": Float(1.0, 0.0, 2.0, clip=False, limit=(-100.0, 100.0),
                                doc="global noise: scales every layer's noise"),
        "noise_seed": Int(0, 0, 2**31 - 1, doc="seed of random noise: new texture, same image (random mode)"),
        "noise_anim": Bool(False, doc="a new noise seed every frame (random mode)"),
        "translate_x": Float(0.0, -1.0, 1.0, clip=False, limit=(-100.0, 100.0),
                             doc="StyleGAN3 only: shift the input in x"),
        "translate_y": Float(0.0, -1.0, 1.0, clip=False, limit=(-100.0, 100.0),
                             doc="StyleGAN3 only: shift the input in y"),
        "rotate": Float(0.0, -180.0, 180.0, unit="deg", clip=False, limit=(-36000.0, 36000.0),
                        doc="StyleGAN3 only: rotate the input"),
        "precision": Choice("auto", PRECISIONS,
                            doc="auto: float16 on CUDA, float32 on the CPU (exact); bfloat16: on CUDA, and on "
                                "CPUs with native bfloat16 (elsewhere float32, and the node says why)"),
        "cuda_graphs": Bool(True, doc="on CUDA, replay the synthesis as one captured graph (much faster)"),
    }

    def reset(self) -> None:
        self._runner = SynthesisRunner()
        self._guard = FiniteGuard()
        self._computed: tuple = ()  # (inputs, (weights version, params, noise frame), picture) of the last one

    def animating(self, params: dict[str, Any]) -> bool:
        # on CUDA the finiteness of a picture is read a frame or so later: cook again to read it
        return bool(params["noise"] and params["noise_anim"]) or self._guard.pending

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        sources = (inputs.get("model"), inputs.get("w"), inputs.get("edits"))
        weights = self._runner.weights_version(sources[0]) if sources[0] is not None else None
        settings = (weights, params, ctx.frame if params["noise_anim"] else None)
        computed = self._computed
        if computed and self._guard.pending and _same(computed[0], sources) and computed[1] == settings:
            return self._read_back(computed[2])  # nothing changed: this cook only reads the verdict
        picture = self._guard.check(self._render(ctx, params, *sources))
        self._computed = (sources, settings, picture)
        self.status = noise_status(params).joined(NodeStatus.of(self._runner.precision_note))
        return self._read_back(picture)

    def _read_back(self, picture: torch.Tensor) -> dict[str, Any]:
        if self._guard.verdict() is False:
            raise NodeError(NOT_FINITE)
        return {"image": picture}  # the same tensor again is no change: the engine tells

    def _render(self, ctx: CookContext, params: dict[str, Any], model: Any, w: Any, edits: Any) -> torch.Tensor:
        if model is None or w is None:
            raise NodeError("connect a model and w")
        if not torch.is_tensor(w) or tuple(w.shape[1:]) != (model.num_ws, model.w_dim):
            raise NodeError(f"w does not fit this model ({model.num_ws} x {model.w_dim})")
        edits = LayerEdits() if edits is None else edits
        if not isinstance(edits, LayerEdits):
            raise NodeError("the edits input needs an EDITS wire")
        move_input = family_of(model).set_input_transform
        if move_input is not None:
            move_input(model, params["translate_x"], params["translate_y"], params["rotate"])
        mode = params["noise_mode"] if params["noise"] else "none"
        seed = params["noise_seed"] + (ctx.frame if params["noise_anim"] else 0)
        self._runner.use_graphs = params["cuda_graphs"]
        out = self._runner(
            model, w, params["precision"], noise_mode=mode, noise_scale=params["noise_strength"], noise_seed=seed,
            layer_noise_scale=edits.noise or None, layer_edits=edits.edits or None, capture=edits.view,
        )
        if edits.view is None:
            return out
        _, activation = out
        return activation_to_image(activation, edits.view_channel, edits.view_normalize, model.img_size)


def noise_status(params: dict[str, Any]) -> NodeStatus:
    """Which noise is on, so Seed and Anim never seem to do nothing without a word."""
    if not params["noise"]:
        return NodeStatus.of("noise off")
    if params["noise_mode"] == "const":
        moved = params["noise_seed"] != 0 or params["noise_anim"]
        return NodeStatus.of("noise: stored in the model" + (" (Seed and Anim act in random mode)" if moved else ""))
    return NodeStatus.of(f"noise: seeded {'animated' if params['noise_anim'] else params['noise_seed']}")


def _same(a: tuple, b: tuple) -> bool:
    return all(x is y for x, y in zip(a, b, strict=True))
