"""LayerTransform: bend the network's feature maps per resolution or per layer, and show a layer.

The edit callables are built when the parameters or the model change, never per frame, so a
frame costs one dict lookup and the call per edited layer. Several nodes chain on the EDITS
wire; a layer edited by two of them runs both, in chain order.
"""

from __future__ import annotations

import re
from typing import Any

from autolume_graph.gan import wires
from autolume_graph.gan.edits import Edit, LayerEdits
from autolume_graph.gan.layer_ops import KINDS, MAX_KERNEL, OpSpec, build_edit, channel_selection
from autolume_graph.gan.model import LayerInfo, StyleGANModel
from autolume_graph.node import CookContext, Node, NodeError, NodeStatus
from autolume_graph.params import Bool, Choice, Float, Input, Int, Output, String
from autolume_graph.roles import Role

_IDENTITY = build_edit(())  # build_edit hands back this very function for any no-op stack
_PLAN_PARAMS = ("mode", "target", "op", "amount", "x", "y", "select", "fraction", "select_seed", "start", "end")


def target_tokens(target: str) -> list[str]:
    """The resolutions or layer names `target` lists, in the order written."""
    return [t for t in re.split(r"[,\s]+", target) if t]


def target_choices(model: StyleGANModel, mode: str) -> list[str]:
    """What `target` may list in `mode`: the model's resolutions (simple) or its layer names (advanced)."""
    infos = model.layer_info()
    if mode == "simple":
        return list(dict.fromkeys(str(info.resolution) for info in infos))
    return [info.name for info in infos]


def target_layers(model: StyleGANModel, mode: str, target: str) -> list[LayerInfo]:
    """The layers `target` names, in the order written: resolutions (simple) or layer names (advanced)."""
    infos = model.layer_info()
    picked: list[LayerInfo] = []
    for token in target_tokens(target):
        if mode == "simple":
            found = [info for info in infos if str(info.resolution) == token]
            if not found:
                raise NodeError(f"no layers at resolution {token!r} "
                                f"(resolutions: {', '.join(target_choices(model, mode))})")
        else:
            found = [info for info in infos if info.name == token]
            if not found:
                raise NodeError(f"no layer named {token!r} (layers: {', '.join(target_choices(model, mode))})")
        picked.extend(info for info in found if info not in picked)
    return picked


NO_EDITS = LayerEdits()  # one object for "nothing wired in", so an unwired chain start is no change each cook


class LayerTransform(Node):
    """Transforms feature maps of chosen layers (affine, morphology, ...), overrides their noise, views one."""

    category = "generator"
    roles = frozenset({Role.LAYER_EDITS})
    inputs = {
        "edits": Input(wires.EDITS, "edits of an earlier LayerTransform to stack onto"),
        "model": Input(wires.MODEL, "the generator, for its layer names and resolutions"),
    }
    outputs = {"edits": Output(wires.EDITS, "incoming edits followed by this node's; into Generate")}
    params = {
        "mode": Choice("simple", ("simple", "advanced"), doc="target by resolution (simple) or by layer name"),
        "target": String("", doc='pick from the list below, or type: simple: resolutions like "16,32"; '
                                 'advanced: layer names like "b16.conv0"'),
        "op": Choice("rotate", KINDS, doc="what to do to the targeted feature maps"),
        "amount": Float(0.0, -360.0, 360.0, clip=False, limit=(-3600.0, 3600.0),
                        doc=f"rotate: degrees; scale/multiply: factor; threshold: level; "
                            f"erode/dilate: kernel (at most {MAX_KERNEL})"),
        "x": Float(0.0, -1.0, 1.0, clip=False, limit=(-10.0, 10.0),
                   doc="translate: fraction of the width, + moves right"),
        "y": Float(0.0, -1.0, 1.0, clip=False, limit=(-10.0, 10.0),
                   doc="translate: fraction of the height, + moves down"),
        "select": Choice("all", ("all", "random", "range"), doc="which channels the op touches"),
        "fraction": Float(0.5, 0.0, 1.0, doc="random: share of channels picked"),
        "select_seed": Int(0, 0, 2**31 - 1, doc="random: seed of the channel pick"),
        "start": Int(0, 0, 1024, doc="range: first channel"),
        "end": Int(1024, 0, 1024, doc="range: one past the last channel (clipped to the layer's count)"),
        "noise_strength": Float(-1.0, -1.0, 2.0, clip=False, limit=(-1.0, 100.0),
                                doc="noise of the targeted layers; negative: keep Generate's noise"),
        "view": Bool(False, doc="show the first targeted layer's feature map instead of the image"),
        "view_channel": Int(0, 0, 1023, doc="view: first of the three channels shown as RGB"),
        "view_normalize": Choice("minmax", ("minmax", "std"), doc="view: how activations map to colours"),
    }

    def reset(self) -> None:
        self._connected: StyleGANModel | None = None  # the model last wired in, for the target picker
        self._choices: tuple[StyleGANModel | None, str, list[str]] = (None, "", [])
        self._model: StyleGANModel | None = None
        self._plan_key: tuple = ()
        self._layers: list[LayerInfo] = []
        self._edits: dict[str, Edit] = {}

    def editor_data(self) -> dict[str, Any]:
        """The target picker: the connected model's choices in the current mode, and what `target` lists."""
        model, mode = self._connected, self.values["mode"]
        if model is None:
            return {}
        if self._choices[:2] != (model, mode):
            self._choices = (model, mode, target_choices(model, mode))
        return {"targets": self._choices[2], "picked": target_tokens(self.values["target"])}

    def _plan(self, model: StyleGANModel, params: dict[str, Any]) -> None:
        """Rebuild the per-layer edit callables only when the model or an op parameter changed."""
        key = tuple(params[name] for name in _PLAN_PARAMS)
        if model is self._model and key == self._plan_key:
            return
        layers = target_layers(model, params["mode"], params["target"])
        edits = {}
        for info in layers:
            channels = channel_selection(info.channels, params["select"], params["fraction"],
                                         params["select_seed"], params["start"], params["end"])
            edit = build_edit([OpSpec(params["op"], params["amount"], params["x"], params["y"], channels)])
            if edit is not _IDENTITY:
                edits[info.name] = edit
        self._model, self._plan_key, self._layers, self._edits = model, key, layers, edits

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        model, incoming = inputs.get("model"), inputs.get("edits")
        if model is None:
            raise NodeError("connect a model (its layers are the targets)")
        incoming = NO_EDITS if incoming is None else incoming
        if not isinstance(incoming, LayerEdits):
            raise NodeError("the edits input needs an EDITS wire")
        self._connected = model
        self._plan(model, params)
        strength = params["noise_strength"]
        noise = {info.name: strength for info in self._layers if strength >= 0 and info.noise}
        view = self._layers[0].name if params["view"] and self._layers else None
        parts = [f"{label}: {' '.join(names)}" for label, names in (("T", self._edits), ("N", noise)) if names]
        self.status = NodeStatus.of(*parts, f"view: {view}" if view else "")
        channel, normalize = params["view_channel"], params["view_normalize"]
        # the same incoming edits, plan, noise and view give the same edits object: no change downstream
        key = (incoming, self._edits, tuple(noise.items()), view, channel, normalize)
        return self.cached_outputs(
            key, lambda: {"edits": incoming.then(LayerEdits(self._edits, noise, view, channel, normalize))})
