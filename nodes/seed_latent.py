"""SeedLatent: a latent from a seed number, with drag and a smooth seed animation.

Fractional seeds blend neighbouring seeds (`fractional_seed_z`), so animation and drag move
continuously through latent space instead of jumping from seed to seed.
"""

from __future__ import annotations

from typing import Any

from autolume_graph.gan import wires
from autolume_graph.gan.latent import fractional_seed_z
from autolume_graph.gan.latent_morph import morph_latent_outputs
from autolume_graph.gan.latent_value import Latent
from autolume_graph.node import CookContext, Node
from autolume_graph.params import Bool, Float, Input, Output
from autolume_graph.roles import Role
from autolume_graph.types import PortType

DEFAULT_Z_DIM = 512
SEED_WRAP = 2.0**32  # seeds wrap modulo this: NumPy's RandomState takes 32-bit seeds
SEED_LIMIT = (-(2.0**53), 2.0**53)  # seed and drag: every whole number a float holds exactly


def latent_dims(model: Any) -> tuple[int, int, int]:
    """(z_dim, num_ws, w_dim) of a wired model; without one z is 512 and w's shape unknown (-1, -1)."""
    if model is None:
        return DEFAULT_Z_DIM, -1, -1
    return int(model.z_dim), int(model.num_ws), int(model.w_dim)


class SeedLatent(Node):
    """z = RandomState(seed).randn(1, z_dim), NVIDIA's convention, so seeds match other StyleGAN tools.

    The shown seed is `seed + offset`. The offset grows by `speed * dt` while anim is on (the
    runtime clock, so offline renders repeat the live motion) and by every change of `drag`, a
    relative control: wire a mouse delta, an endless encoder or an OSC fader into it and each
    change moves the seed by that much. Setting `seed` itself clears the offset, as typing a
    seed does in Autolume: the same value again too (`/seed/seed 42` after the animation moved
    on returns to seed 42).
    """

    category = "latent"
    roles = frozenset({Role.MORPHS_OUTPUTS})
    morph_outputs = staticmethod(morph_latent_outputs)  # a preset morph slerps the latent, never the seed number
    inputs = {"model": Input(wires.MODEL, "optional: the generator whose z_dim to use (default 512)")}
    outputs = {
        "z": Output(wires.LATENT, "the latent"),
        "seed": Output(PortType.FLOAT, "the seed shown now (seed + drag + animation)"),
    }
    params = {
        "seed": Float(0.0, 0.0, 100000.0, clip=False, limit=SEED_LIMIT, every_write=True,
                      doc="seed; fractions blend neighbours, wraps mod 2**32; setting it (again) jumps back to it"),
        "project": Bool(True, doc="map z through the mapping network (off: use z as w directly)"),
        "anim": Bool(False, doc="move the seed continuously"),
        "speed": Float(0.5, -10.0, 10.0, clip=False, limit=(-10000.0, 10000.0), unit="seeds/s",
                       doc="animation speed"),
        "drag": Float(0.0, -100.0, 100.0, clip=False, limit=SEED_LIMIT,
                      doc="relative control: each change is added to the seed"),
    }

    def reset(self) -> None:
        self._offset = 0.0
        self._base_seed: float | None = None
        self._seed_writes = 0
        self._last_drag: float | None = None
        self._last_time: float | None = None  # runtime time of the last animated cook

    def animating(self, params: dict[str, Any]) -> bool:
        return bool(params["anim"])

    def _current_seed(self, ctx: CookContext, params: dict[str, Any]) -> float:
        writes = self.write_counts.get("seed", 0)
        if params["seed"] != self._base_seed or writes != self._seed_writes:
            self._base_seed, self._seed_writes, self._offset = params["seed"], writes, 0.0
        if self._last_drag is not None:
            self._offset += params["drag"] - self._last_drag
        self._last_drag = params["drag"]
        if params["anim"]:
            if self._last_time is not None:
                self._offset += params["speed"] * max(ctx.time - self._last_time, 0.0)
            self._last_time = ctx.time
        else:
            self._last_time = None
        return (params["seed"] + self._offset) % SEED_WRAP

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        seed = self._current_seed(ctx, params)
        z_dim = latent_dims(inputs.get("model"))[0]
        return self.cached_outputs((seed, params["project"], z_dim), lambda: {
            "z": Latent.of(fractional_seed_z(seed, z_dim), "z", params["project"]), "seed": seed})
