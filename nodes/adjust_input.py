"""AdjustInput: move w along up to 16 directions, one slider each (random or GANSpace directions).

The directions live in a Data parameter, so a graph keeps the directions it was made with even
when they were random or the file they came from is gone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from autolume_graph.file_reads import BackgroundRead
from autolume_graph.gan import wires
from autolume_graph.gan.accel import to_device
from autolume_graph.gan.latent import (
    VectorFileError,
    apply_directions,
    fit_latent,
    load_directions,
    random_directions,
)
from autolume_graph.node import CookContext, Node, NodeError, NodeStatus
from autolume_graph.params import Data, FilePath, Float, Input, Int, Output, Trigger

from .vector_latent import read_latent_file

MAX_SLIDERS = 16
SLIDER_LIMIT = 50.0  # past this a direction's amount only blows the picture out


def _read_directions(path: str, w_dim: int) -> np.ndarray:
    """The first MAX_SLIDERS directions of a GANSpace file (run in the read pool), or a one-line NodeError."""
    try:
        return load_directions(Path(path).expanduser(), w_dim)[:MAX_SLIDERS]
    except VectorFileError as exc:
        raise NodeError(str(exc)) from None


def _fitting(rows: np.ndarray, path: str, num_ws: int, w_dim: int) -> np.ndarray:
    """Rows (k, w_dim) or (k, num_ws, w_dim) read for sizes that changed since do not fit: say so."""
    if rows.shape[-1] != w_dim or (rows.ndim == 3 and rows.shape[1] != num_ws):
        raise NodeError(f"{path}: directions of shape {rows.shape[1:]} do not fit w ({num_ws} x {w_dim}); "
                        "set the path again")
    return rows


def _read_slider_direction(path: str, num_ws: int, w_dim: int) -> np.ndarray:
    """A slider vector, (w_dim,) for every layer or (num_ws, w_dim) per layer, scaled to per-layer RMS norm 1
    (run in the read pool), or a one-line NodeError."""
    try:
        vector = fit_latent(read_latent_file(path), w_dim, num_ws, w_dim, path)[0][0]
    except VectorFileError as exc:
        raise NodeError(str(exc)) from None
    rms = float(np.linalg.norm(vector)) / np.sqrt(vector.shape[0] if vector.ndim == 2 else 1)
    if rms < 1e-8:
        raise NodeError(f"{path}: a zero-length direction")
    return vector / rms


def _unit_rows(count: int, dim: int) -> np.ndarray:
    """`count` fresh random unit directions (`randomize`: new every press, kept in the graph)."""
    rows = np.random.default_rng().standard_normal((count, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _with_rows(dirs: np.ndarray, start: int, rows: np.ndarray) -> np.ndarray:
    """A copy of `dirs` with rows start.. replaced; a per-layer row (num_ws, w_dim) makes all per-layer."""
    if rows.ndim > dirs.ndim:
        dirs = np.broadcast_to(dirs[:, None, :], (dirs.shape[0], *rows.shape[1:]))
    elif rows.ndim < dirs.ndim:
        rows = np.broadcast_to(rows[:, None, :], (rows.shape[0], *dirs.shape[1:]))
    dirs = np.array(dirs, dtype=np.float32)
    dirs[start:start + len(rows)] = rows
    return dirs


def _shift(w: torch.Tensor, dirs: torch.Tensor, amounts: tuple[float, ...]) -> torch.Tensor:
    """w + sum_i amounts[i] * dirs[i]: a (w_dim,) direction moves every layer, a (num_ws, w_dim) one each its own."""
    if dirs.ndim == 2:
        return apply_directions(w, dirs, amounts)
    flat = apply_directions(w.reshape(w.shape[0], -1), dirs.reshape(dirs.shape[0], -1), amounts)
    return flat.reshape(w.shape)


class AdjustInput(Node):
    """Sliders that move w along directions: random by default (from `direction_seed`), or loaded.

    `directions_path` loads a GANSpace .npy/.npz (one direction per row, unit length) into the
    first sliders when the path is set; the rest keep theirs. `load_slider_vector` loads one
    .npy, (w_dim,) for every layer or (num_ws, w_dim) per layer, into one slider, scaled so its
    per-layer RMS norm is 1 and a slider's amount means the same for every direction. Files are
    read off the render thread; the sliders keep working with the previous directions meanwhile,
    and a bad file is reported on the node (its error stays in the status) while they stay.
    """

    category = "latent"
    inputs = {"w": Input(wires.W, "per-layer w [1, num_ws, w_dim] from Mapping")}
    outputs = {"w": Output(wires.W, "w moved along the directions")}
    params = {
        "count": Int(6, 1, MAX_SLIDERS, doc="number of sliders in use"),
        **{f"slider{i}": Float(0.0, -5.0, 5.0, clip=False, limit=(-SLIDER_LIMIT, SLIDER_LIMIT),
                               doc=f"amount along direction {i}")
           for i in range(MAX_SLIDERS)},
        "direction_seed": Int(0, 0, 2**31 - 1, doc="seed of the random directions (changing it replaces all)"),
        "directions_path": FilePath("", kind="directions", doc="GANSpace .npy/.npz: one direction per row"),
        "randomize_all": Trigger(doc="new random directions for every slider"),
        "randomize_one": Trigger(doc="a new random direction for slider randomize_index"),
        "randomize_index": Int(0, 0, MAX_SLIDERS - 1, doc="the slider randomize_one changes"),
        "slider_vector_path": FilePath("", kind="vector", doc=".npy direction for one slider"),
        "slider_vector_index": Int(0, 0, MAX_SLIDERS - 1, doc="the slider load_slider_vector sets"),
        "load_slider_vector": Trigger(doc="load slider_vector_path into slider slider_vector_index"),
        "directions": Data(None, doc="(16, w_dim) or per-layer (16, num_ws, w_dim) directions"),
    }

    def reset(self) -> None:
        # a saved graph's directions are kept: only a *change* of seed or path replaces them
        self._seen_seed = self.values["direction_seed"]
        self._tensor: tuple[np.ndarray, torch.Tensor] | None = None  # directions on w's device
        self._file_dirs = BackgroundRead(key=self.values["directions_path"])  # read off the render thread
        self._slider = BackgroundRead()  # slider_vector_path
        self._slider_at = ("", 0)  # (path, slider index) of the slider vector being read

    def animating(self, params: dict[str, Any]) -> bool:
        return self._file_dirs.pending or self._slider.pending

    def _directions(self, params: dict[str, Any], num_ws: int, w_dim: int) -> np.ndarray:
        """The directions after this cook's edits, stored back into the `directions` parameter."""
        dirs = params["directions"]
        if params["randomize_all"]:
            dirs = _unit_rows(MAX_SLIDERS, w_dim)
        elif dirs is None or params["direction_seed"] != self._seen_seed:
            dirs = random_directions(MAX_SLIDERS, w_dim, params["direction_seed"])
        dirs = np.asarray(dirs, dtype=np.float32)
        if dirs.ndim not in (2, 3) or dirs.shape[0] != MAX_SLIDERS or dirs.shape[-1] != w_dim \
                or (dirs.ndim == 3 and dirs.shape[1] != num_ws):
            raise NodeError(f"directions of shape {dirs.shape} do not fit w ({num_ws} x {w_dim}); "
                            "randomize_all or change direction_seed")
        path = params["directions_path"]
        if path:
            self._file_dirs.start_for(path, f"loading {Path(path).name}", _read_directions, path, w_dim)
        if params["load_slider_vector"]:
            self._slider_at = (params["slider_vector_path"], params["slider_vector_index"])
            self._slider.start(f"loading {Path(self._slider_at[0]).name}", _read_slider_direction,
                                 self._slider_at[0], num_ws, w_dim)
        try:  # each landed file is kept at once, so a failure of the other cannot lose it
            rows = self._file_dirs.take()
            if rows is not None:
                dirs = self.values["directions"] = _with_rows(dirs, 0, _fitting(rows, path, num_ws, w_dim))
            row = self._slider.take()
            if row is not None:
                path, index = self._slider_at
                dirs = self.values["directions"] = _with_rows(dirs, index, _fitting(row[None], path, num_ws, w_dim))
        finally:
            self.status = NodeStatus.of(self._file_dirs.status, self._slider.status)
        if params["randomize_one"]:
            dirs = _with_rows(dirs, params["randomize_index"], _unit_rows(1, w_dim))
        self._seen_seed = params["direction_seed"]
        if dirs is not params["directions"]:
            self.values["directions"] = dirs
        return dirs

    def _on_device(self, dirs: np.ndarray, like: torch.Tensor) -> torch.Tensor:
        if self._tensor is None or self._tensor[0] is not dirs or self._tensor[1].device != like.device:
            self._tensor = (dirs, to_device(torch.as_tensor(dirs, dtype=like.dtype), like.device))
        return self._tensor[1]

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        w = inputs.get("w")
        if not torch.is_tensor(w) or w.ndim != 3:
            raise NodeError("connect a per-layer w [1, num_ws, w_dim]")
        dirs = self._directions(params, w.shape[1], w.shape[2])
        amounts = tuple(params[f"slider{i}"] for i in range(min(max(params["count"], 1), MAX_SLIDERS)))
        if not any(amounts):
            return {"w": w}
        return self.cached_outputs((w, amounts, dirs), lambda: {"w": _shift(w, self._on_device(dirs, w), amounts)})
