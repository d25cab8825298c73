"""VectorLatent: a free latent vector (random, loaded or saved) with a smooth random-walk animation.

The current vector lives in a Data parameter, so it is saved with the graph and a render of the
saved graph starts from exactly what was on screen.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from autolume_graph import workspace
from autolume_graph.file_reads import BackgroundRead
from autolume_graph.gan import wires
from autolume_graph.gan.latent import RandomWalk, VectorFileError, fit_latent, read_vector_array, save_vector
from autolume_graph.gan.latent_morph import morph_latent_outputs
from autolume_graph.gan.latent_value import Latent
from autolume_graph.node import CookContext, Node, NodeError, NodeStatus
from autolume_graph.params import Bool, Data, FilePath, Float, Input, Output, Trigger
from autolume_graph.roles import Role

from .seed_latent import latent_dims


def read_latent_file(path: str) -> np.ndarray:
    """A vector file's array (any shape), read where it is called: nodes call it through a BackgroundRead."""
    if not path:
        raise NodeError("set a vector file path first")
    try:
        return read_vector_array(Path(path).expanduser())
    except VectorFileError as exc:
        raise NodeError(str(exc)) from None


def fit_latent_file(array: np.ndarray, path: str, model: Any) -> tuple[np.ndarray, str]:
    """A vector read by `read_latent_file` as (1, z_dim) "z" or (1, num_ws, w_dim) "w", or a one-line NodeError."""
    try:
        return fit_latent(array, *latent_dims(model), path)
    except VectorFileError as exc:
        hint = " (connect a model to load a per-layer w)" if model is None else ""
        raise NodeError(f"{exc}{hint}") from None


def load_latent_file(path: str, model: Any) -> tuple[np.ndarray, str]:
    """A vector file read and fitted to `model`'s sizes, or a one-line NodeError (run in the read pool)."""
    return fit_latent_file(read_latent_file(path), path, model)


def write_vector(name: str, vector: np.ndarray) -> Path:
    """`vector` saved as a new file in the vectors folder, named after `name` (a plain name, never overwriting)."""
    try:
        return save_vector(workspace.output_path("vectors", Path(name).name or "vector", ".npy"), vector,
                           overwrite=False)
    except (OSError, VectorFileError, workspace.WriteRefused) as exc:
        raise NodeError(f"cannot save {name or 'vector'}: {exc}") from None


def _kind(vector: np.ndarray) -> str:
    return "w" if vector.ndim == 3 else "z"


def _ease_into_walk(origin: np.ndarray, walk: RandomWalk, u: float) -> np.ndarray:
    """From `origin` at u=0 into the walk by u=1: cos/sin weights keep N(0, I), smoothstep keeps it C1."""
    x = min(max(u, 0.0), 1.0)
    angle = 0.5 * math.pi * x * x * (3.0 - 2.0 * x)
    return math.cos(angle) * origin + math.sin(angle) * walk.at(u)


class VectorLatent(Node):
    """A latent vector you randomize, animate as a smooth random walk, save and load (.npy).

    Anim eases from the current vector into a seeded random walk (seeded by the vector itself,
    so the same vector always walks the same way) on the runtime clock; the vector shown is
    written back to the `vector` parameter, so stopping holds it and saving keeps it. Loading
    reads `path` off the render thread and accepts z (z_dim,) / (1, z_dim) and, with a model
    connected, per-layer w (num_ws, w_dim), which bypasses the mapping network; anim walks z
    vectors only. A bad file keeps the vector. Saving writes a new file in the vectors folder,
    named after `path` (`vectors/NAME.npy`, or `NAME-1.npy` where that exists).
    """

    category = "latent"
    roles = frozenset({Role.MORPHS_OUTPUTS})
    morph_outputs = staticmethod(morph_latent_outputs)  # a preset morph slerps the latent, never the vector
    inputs = {"model": Input(wires.MODEL, "optional: the generator whose sizes to use (default z 512)")}
    outputs = {"z": Output(wires.LATENT, "the latent")}
    params = {
        "randomize": Trigger(doc="draw a new random vector"),
        "anim": Bool(False, doc="walk smoothly and endlessly through latent space"),
        "speed": Float(0.25, 0.0, 4.0, clip=False, limit=(-64.0, 64.0), unit="steps/s",
                       doc="walk speed: new random directions per second"),
        "project": Bool(True, doc="map z through the mapping network (off: use z as w directly)"),
        "path": FilePath("", kind="vector", doc=".npy file to load from; saving uses its name in the vectors folder"),
        "save": Trigger(writes=True, doc="write the current vector to a new file in the vectors folder"),
        "load": Trigger(doc="read the vector from path"),
        "vector": Data(None, doc="the current vector: (1, z_dim) z or (1, num_ws, w_dim) w"),
    }

    def reset(self) -> None:
        self._walk: RandomWalk | None = None
        self._origin: np.ndarray | None = None
        self._u = 0.0
        self._last_time = 0.0
        self._shown: np.ndarray | None = None  # what the walk last wrote to `vector`
        self._load = BackgroundRead()
        self._save = BackgroundRead()  # a save runs in the same pool: a hung disk cannot stop the frame either
        self._note = ""  # where the last save went

    def animating(self, params: dict[str, Any]) -> bool:
        return bool(params["anim"]) or self._load.pending or self._save.pending

    def _walk_from(self, vector: np.ndarray, ctx: CookContext, speed: float) -> np.ndarray:
        """The next point of the walk, (re)starting it when the vector was replaced from outside."""
        if self._walk is None or vector is not self._shown:
            self._origin = vector.astype(np.float64)
            self._walk = RandomWalk(zlib.crc32(vector.tobytes()), vector.shape[-1])
            self._u = 0.0
        else:
            self._u += speed * max(ctx.time - self._last_time, 0.0)
        self._last_time = ctx.time
        self._shown = _ease_into_walk(self._origin, self._walk, self._u).astype(np.float32)
        return self._shown

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        model = inputs.get("model")
        path = params["path"]
        if params["randomize"]:
            self._load.forget()  # the later action wins over a read still on its way
        elif params["load"]:
            self._load.start(f"loading {Path(path).name}", load_latent_file, path, model)
        try:
            saved = self._save.take()
            if saved is not None:
                self._note = f"saved {saved}"
            loaded = self._load.take()
        finally:
            self._show_status()
        vector = params["vector"] if loaded is None else loaded[0]
        if vector is None or params["randomize"]:
            vector = np.random.default_rng().standard_normal((1, latent_dims(model)[0])).astype(np.float32)
        vector = np.asarray(vector, dtype=np.float32)
        if vector.ndim not in (2, 3) or vector.shape[0] != 1:
            raise NodeError(f"vector of shape {vector.shape} is neither (1, z_dim) nor (1, num_ws, w_dim)")
        if params["anim"]:
            if _kind(vector) == "w":
                raise NodeError("anim walks z vectors; a per-layer w is loaded")
            vector = self._walk_from(vector, ctx, params["speed"])
        else:
            self._walk = None
        self.values["vector"] = vector
        if params["save"]:
            self._note = ""
            self._save.start("saving", write_vector, path, vector)  # every press saves anew
            self._show_status()
        project = params["project"]
        return self.cached_outputs((vector, project), lambda: {"z": Latent.of(vector, _kind(vector), project)})

    def _show_status(self) -> None:
        self.status = NodeStatus.of(self._load.status, self._save.status or self._note)
