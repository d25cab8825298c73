"""ModelMix: blend two generators live, per resolution or per layer, and save the blend.

The mixed model is built once per (A, B) pair as a copy of A's structure; a change of the mix
rewrites its weights in place (`ModelMixer`), so the next frame renders it with no reload and
no allocation. A mapping network is never mixed: the output keeps A's.

"X" drops a resolution and everything above it, to bring a higher-resolution A down to a
lower-resolution B. That makes a smaller network (a new build, the one slow change), and only
for families that declare how to cut their blocks (`Family.drop_blocks`): StyleGAN2 skip
generators, where every block has its own toRGB so the sum of the kept blocks' RGB outputs is a
complete image at the lower size. StyleGAN3 layers all feed one
final output and cannot be cut.

`save` writes only into the models folder (`autolume_graph.workspace`), `save_name` reduced to a
plain file name, never over an existing model (the next free `NAME-N` is taken); neither is bound
to OSC unless the user binds it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autolume_graph import workspace
from autolume_graph.atomic import remove_stale_temps
from autolume_graph.failure_memo import FailureMemo
from autolume_graph.gan import wires
from autolume_graph.gan.family import families, family_of
from autolume_graph.gan.mixing import MixError, ModelMixer, block_of, layer_of, resolution_of
from autolume_graph.gan.model import StyleGANModel
from autolume_graph.gan.safe_format import SUFFIX, save_model
from autolume_graph.node import CookContext, Node, NodeError, NodeStatus
from autolume_graph.params import Bool, Choice, Data, Float, Input, Int, Output, String, Trigger
from autolume_graph.roles import Role

DROP = "X"
_PREFIX = "synthesis."


def _short(group: str) -> str:
    return group.removeprefix(_PREFIX)


def _block(group: str) -> str:
    """The block a block or layer group belongs to (`synthesis.b16.conv0` -> `synthesis.b16`)."""
    return ".".join(group.split(".")[:2])


def _resolution_key(block: str) -> str:
    """The simple-mode key of a block: its resolution, or its own name where it states none."""
    res = resolution_of(block)
    return str(res) if res is not None else _short(block)


@dataclass
class _Mixed:
    """The mix of one (A, B, dropped blocks) triple and the weights last written into it."""

    a: StyleGANModel
    b: StyleGANModel
    drop: frozenset[str]
    model: StyleGANModel
    mixer: ModelMixer
    b_blocks: frozenset[str]
    weights: dict[str, float] | None = None


def _build(a: StyleGANModel, b: StyleGANModel, drop: frozenset[str]) -> _Mixed:
    """A new model with A's structure (less dropped blocks) whose own tensors the mixer writes into."""
    if a.family != b.family:
        raise MixError(f"cannot mix a {a.family} model with a {b.family} model")
    (ah, aw), (bh, bw) = a.img_size, b.img_size
    if ah * bw != bh * aw:  # another aspect ratio: no layer's maps match, whatever is dropped
        raise MixError(f"cannot mix models of different shapes: A is {aw}x{ah} px, B is {bw}x{bh} px")
    family = family_of(a)
    settings = a.settings()
    if drop:
        if family.drop_blocks is None:
            can = " and ".join(f.title for f in families() if f.drop_blocks is not None)
            raise MixError(f"dropping (X) is for {can} models only")
        settings = family.drop_blocks(settings, drop)
    a_state, b_state = a.state_dict(), b.state_dict()
    model = family.build_from_settings(settings)
    model = model.to(next(iter(a_state.values())).device).eval().requires_grad_(False)
    if hasattr(model, "set_channels_last"):  # A's memory layout, so all-A renders bit-identically
        model.set_channels_last(bool(getattr(a.synthesis, "channels_last", False)))
    mixer = ModelMixer(a_state, b_state, drop, out=model.state_dict())
    return _Mixed(a, b, drop, model, mixer, frozenset(filter(None, map(block_of, b_state))))


def _save_new(model: StyleGANModel, path: Path) -> Path:
    """Save `model` as a new file at `path` (or the next free name); stale temporary files go first."""
    remove_stale_temps(path.parent)
    return save_model(model, path, overwrite=False)


class ModelMix(Node):
    """Crossfades models A and B per resolution or per layer; "X" drops resolutions (StyleGAN2)."""

    category = "generator"
    roles = frozenset({Role.MIXER})
    inputs = {
        "a": Input(wires.MODEL, "model A: the structure and mapping network of the mix"),
        "b": Input(wires.MODEL, "model B: same family, picture shape and layer shapes as A"),
    }
    outputs = {"model": Output(wires.MODEL, "the mixed generator, updated in place as the mix changes",
                                in_place=True)}
    params = {
        "use_mix": Bool(True, doc="use the mixed model; off passes model A through unchanged (B may be unwired)"),
        "mode": Choice("simple", ("simple", "advanced"), doc="keys of `mix`: resolutions or layer names"),
        "mix": Data(None, doc='{"16": 0.5, "64": "X"} (simple) or {"b16.conv0": 1} (advanced): 0 = A, '
                              '1 = B, "X" drops that resolution and above; set keys override the sliders'),
        "crossfade": Float(0.0, 0.0, 1.0, doc="0 = A, 1 = B: for every block that `mix` does not set"),
        "b_from_resolution": Int(0, 0, 1024, doc="blocks at this resolution and above come from B (0: none)"),
        "save_name": String("", writes=True, doc="file name in the models folder for `save`"),
        "save": Trigger(writes=True, doc="save the mixed model into the models folder (never over an existing one)"),
    }

    def reset(self) -> None:
        self._mixed: _Mixed | None = None
        self._sent: StyleGANModel | None = None  # the model last put out (A while off, else the mix)
        self._failures = FailureMemo()  # by (a, b, drop): a slider sweep does not rebuild a pair that failed
        self._groups: tuple[StyleGANModel, str, list[str], dict[str, list[str]]] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._saving: Future | None = None
        self._save_note = ""

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def animating(self, params: dict[str, Any]) -> bool:
        return self._saving is not None

    def _mix_groups(self, a: StyleGANModel, mode: str) -> tuple[list[str], dict[str, list[str]]]:
        """A's blocks in order and the `mix` keys of `mode` with the groups each one sets (cached per A)."""
        if self._groups is None or self._groups[0] is not a or self._groups[1] != mode:
            names = list(a.state_dict())
            blocks = list(dict.fromkeys(filter(None, map(block_of, names))))
            groups: dict[str, list[str]] = {}
            if mode == "simple":
                for block in blocks:
                    groups.setdefault(_resolution_key(block), []).append(block)
            else:
                groups = {_short(g): [g] for g in dict.fromkeys([*blocks, *filter(None, map(layer_of, names))])}
            self._groups = (a, mode, blocks, groups)
        return self._groups[2], self._groups[3]

    def mix_keys(self) -> list[str]:
        """The keys `mix` takes in the current mode (resolutions or layers of A), once A is known."""
        return list(self._groups[3]) if self._groups is not None else []

    def editor_data(self) -> dict[str, Any]:
        """The mix table's rows."""
        return {"mix_keys": self.mix_keys()}

    def _choices(self, a: StyleGANModel, params: dict[str, Any]) -> tuple[dict[str, float], frozenset[str]]:
        """`mix` as {block or layer: t}, and the blocks its "X"s drop (the first and all above)."""
        entries = params["mix"] or {}
        if not isinstance(entries, Mapping):
            raise NodeError('mix must be a mapping like {"16": 0.5}')
        blocks, groups = self._mix_groups(a, params["mode"])
        weights: dict[str, float] = {}
        drop_from = len(blocks)
        for key, value in entries.items():
            members = groups.get(str(key))
            if members is None:
                raise NodeError(f"no mix key {key!r} in {params['mode']} mode (keys: {', '.join(groups)})")
            if isinstance(value, str) and value.upper() == DROP:
                drop_from = min(drop_from, blocks.index(_block(members[0])))
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                weights.update(dict.fromkeys(members, min(max(float(value), 0.0), 1.0)))
            else:
                raise NodeError(f'mix value of {key!r} must be 0..1 or "X", not {value!r}')
        drop = frozenset(blocks[drop_from:])
        return {g: t for g, t in weights.items() if _block(g) not in drop}, drop

    def _pair(self, a: StyleGANModel, b: StyleGANModel, drop: frozenset[str]) -> _Mixed:
        """The mix of this pair, built once; a failure is remembered so a slider sweep does not rebuild."""
        mixed = self._mixed
        if mixed is not None and (mixed.a, mixed.b, mixed.drop) == (a, b, drop):
            return mixed
        failure = self._failures.failure((a, b, drop))
        if failure is not None:
            raise NodeError(failure)
        try:
            mixed = _build(a, b, drop)
        except MixError as exc:
            raise NodeError(self._failures.remember((a, b, drop), str(exc))) from None
        self._mixed = mixed
        self._failures.forget()
        return mixed

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        a, b = inputs.get("a"), inputs.get("b")
        if a is not None and not params["use_mix"]:
            self._mix_groups(a, params["mode"])  # the mix table keeps its rows while off
            self._finish_save()
            if params["save"]:
                self._save_note = "save: turn use_mix on to save the mix"
            self.status = NodeStatus.of("off: model A passed through", self._save_note)
            return self._send(a)
        if a is None or b is None:
            raise NodeError("connect models a and b")
        explicit, drop = self._choices(a, params)
        mixed = self._pair(a, b, drop)
        b_from, fade = params["b_from_resolution"], params["crossfade"]
        weights = {block: 1.0 if b_from and (resolution_of(block) or 0) >= b_from else fade
                   for block in mixed.mixer.blocks if block in mixed.b_blocks}
        weights.update(explicit)
        changed = weights != mixed.weights
        if changed:
            try:
                mixed.mixer.mix(weights)
            except MixError as exc:
                raise NodeError(str(exc)) from None
            mixed.weights = weights
        if params["save"]:
            self._start_save(params["save_name"], mixed.model)
        self._finish_save()
        cut = f", {len(drop)} block(s) dropped" if drop else ""
        self.status = NodeStatus.of(f"{mixed.model.size_label}{cut}", self._save_note)
        return self._send(mixed.model, changed)

    def _send(self, model: StyleGANModel, changed: bool = False) -> dict[str, Any]:
        """The output only on a change: another model (the toggle, a new pair) or new weights written in place."""
        if model is self._sent and not changed:
            return {}
        self._sent = model
        return {"model": model}

    def _start_save(self, name: str, model: StyleGANModel) -> None:
        """Snapshot on the render thread (the mix may change next frame), write in a worker."""
        if self._saving is not None:
            self._save_note = "save: the last save is still running"
            return
        try:
            path = workspace.output_path("models", name, SUFFIX)
        except (OSError, workspace.WriteRefused) as exc:
            self._save_note = f"save: {exc}"
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-mix-save")
        self._saving = self._executor.submit(_save_new, copy.deepcopy(model), path)
        self._save_note = f"saving {path.name}..."

    def _finish_save(self) -> None:
        if self._saving is None or not self._saving.done():
            return
        error = self._saving.exception()
        self._save_note = f"save failed: {error}" if error else f"saved {self._saving.result().name}"
        self._saving = None
