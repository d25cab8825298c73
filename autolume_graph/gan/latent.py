"""Latent-space math: seeds, smooth walks, seamless loops, vector and direction files.

Everything here is pure numpy and deterministic: a node calls these with its parameters and
the render clock, so an offline render at a fixed step reproduces the live frames exactly.
Vectors are "in distribution" when each component has std ~1 (z ~ N(0, I)); the walks and
loops below are built so that holds along the whole path, not only at the keyframes.
"""

from __future__ import annotations

import functools
import io
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from autolume_graph.atomic import write_with
from autolume_graph.file_reads import BoundedZip, FileRefused, is_zip, read_regular

from .accel import to_device


class VectorFileError(ValueError):
    """A vector or direction file that cannot be used; the message is one line naming it."""


# --- seeds ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _seed_z_cached(seed: int, z_dim: int) -> np.ndarray:
    z = np.random.RandomState(seed).randn(1, z_dim)
    z.setflags(write=False)
    return z


def seed_z(seed: int, z_dim: int) -> np.ndarray:
    """NVIDIA's seed convention `RandomState(seed).randn(1, z_dim)`, (1, z_dim) float64.

    Seeds wrap mod 2**32 (RandomState's range) so any integer, e.g. one driven over OSC, is
    valid. Recent seeds are cached; callers get a copy they may write to.
    """
    return _seed_z_cached(int(seed) % 2**32, int(z_dim)).copy()


def fractional_seed_z(seed: float, z_dim: int) -> np.ndarray:
    """A continuous path between integer seeds, equal to `seed_z` at integers.

    Between floor and ceil we use `cos(f*pi/2) * a + sin(f*pi/2) * b`. For independent
    N(0, 1) components the weights' squares sum to 1, so every blend is again exactly N(0, 1)
    (std 1 halfway, where a plain lerp would shrink it to 0.71); for 512-d seeds this is
    practically the slerp between them, without slerp's division by a small sine.
    """
    lo = math.floor(seed)
    f = float(seed) - lo
    a = seed_z(lo, z_dim)
    if f == 0.0:
        return a
    angle = 0.5 * math.pi * f
    return math.cos(angle) * a + math.sin(angle) * seed_z(lo + 1, z_dim)


def _rng(*keys: int) -> np.random.Generator:
    """A generator keyed by integers of any sign (SeedSequence only takes non-negative ones)."""
    return np.random.default_rng([(2 * k if k >= 0 else -2 * k - 1) for k in keys])


# --- closed / open cubic interpolation ----------------------------------------------------


def catmull_rom_weights(f: float) -> np.ndarray:
    """Uniform Catmull-Rom weights of points i-1, i, i+1, i+2 at local position f in [0, 1)."""
    f2, f3 = f * f, f * f * f
    return 0.5 * np.array([-f + 2 * f2 - f3, 2 - 5 * f2 + 3 * f3, f + 4 * f2 - 3 * f3, -f2 + f3])


class RandomWalk:
    """A smooth, endless, seeded random walk in z.

    Random N(0, I) keypoints sit at integer walk positions u and a Catmull-Rom spline runs
    through them (C1: no jumps in position or velocity). A spline blend of independent
    keypoints has variance sum(w_i^2) < 1 between keypoints, so we divide by its square root:
    each component is then exactly N(0, 1) at every u. That factor is symmetric about
    each segment's midpoint with zero slope at the keypoints, so the walk stays C1.

    `value(t)` = `at(t * speed)` is a pure function of time. A node whose speed changes
    live should accumulate its own phase (`u += speed * dt`) and call `at(u)`, so a speed
    change bends the path instead of jumping along it.
    """

    def __init__(self, seed: int, z_dim: int, speed: float = 0.25) -> None:
        self.seed = int(seed)
        self.z_dim = int(z_dim)
        self.speed = float(speed)
        self._keys: dict[int, np.ndarray] = {}

    def _keypoint(self, k: int) -> np.ndarray:
        point = self._keys.get(k)
        if point is None:
            if len(self._keys) > 64:
                self._keys.clear()
            point = _rng(self.seed, k).standard_normal((1, self.z_dim))
            self._keys[k] = point
        return point

    def at(self, u: float) -> np.ndarray:
        """The walk at position u (one keypoint per unit), (1, z_dim) float64."""
        i = math.floor(u)
        w = catmull_rom_weights(u - i)
        points = [self._keypoint(i + j) for j in (-1, 0, 1, 2)]
        blend = sum(wj * p for wj, p in zip(w, points, strict=True))
        return blend / math.sqrt(float(np.sum(w * w)))

    def value(self, t: float) -> np.ndarray:
        """The walk at time t seconds: `at(t * speed)`."""
        return self.at(t * self.speed)


# --- loops ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _loop_basis(seed: int, z_dim: int, harmonics: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = _rng(seed, z_dim)
    centre = rng.standard_normal((1, z_dim))
    cos_vecs = rng.standard_normal((harmonics, z_dim))
    sin_vecs = rng.standard_normal((harmonics, z_dim))
    for arr in (centre, cos_vecs, sin_vecs):
        arr.setflags(write=False)
    return centre, cos_vecs, sin_vecs


def noise_loop(alpha: float, seed: int, radius: float, z_dim: int, harmonics: int = 3) -> np.ndarray:
    """A seamless random loop in z: alpha 0 and 1 give the same point, with equal velocity.

    z(alpha) = sqrt(1 - r^2) c + r * sum_k a_k (cos(2 pi k alpha) u_k + sin(2 pi k alpha) v_k)
    with c, u_k, v_k independent N(0, I) from the seed and a_k ~ 1/k normalised so that
    sum a_k^2 = 1. For every alpha the coefficients' squares sum to 1, so each component is
    exactly N(0, 1) along the whole loop (std 1, measured ~1 in tests). `radius` in [0, 1]
    (clipped) is the share of the vector that moves: 0 is a still point, 1 a loop through
    independent samples. Higher harmonics (k = 2, 3) make the loop wander rather than trace
    one flat circle; all are periodic in alpha, so the wrap is smooth to every order.
    """
    r = min(max(float(radius), 0.0), 1.0)
    centre, cos_vecs, sin_vecs = _loop_basis(int(seed) % 2**32, int(z_dim), int(harmonics))
    if r == 0.0:
        return centre.copy()
    k = np.arange(1, harmonics + 1)
    amp = 1.0 / k
    amp /= np.linalg.norm(amp)
    phase = 2.0 * np.pi * k * (float(alpha) % 1.0)
    ring = (amp * np.cos(phase)) @ cos_vecs + (amp * np.sin(phase)) @ sin_vecs
    return math.sqrt(1.0 - r * r) * centre + r * ring[None, :]


def keyframe_index_alpha(alpha: float, n: int) -> tuple[int, float]:
    """Loop position alpha in [0, 1) -> (keyframe index, local alpha in [0, 1) to the next)."""
    u = (float(alpha) % 1.0) * n
    index = min(int(math.floor(u)), n - 1)
    return index, min(max(u - index, 0.0), 1.0)


def keyframe_alpha(index: int, local_alpha: float, n: int) -> float:
    """Inverse of `keyframe_index_alpha`: (index, local alpha) -> loop position in [0, 1)."""
    return ((int(index) + float(local_alpha)) / n) % 1.0


def keyframe_loop(alpha: float, keyframes: Sequence[np.ndarray]) -> np.ndarray:
    """A closed C1 curve through N >= 1 keyframes, keyframe i at alpha = i / N.

    A uniform Catmull-Rom spline on the closed sequence (its tangent at keyframe i is
    (k[i+1] - k[i-1]) / 2), so position and velocity are continuous everywhere, across the
    1 -> 0 wrap included; slerp with linear alpha would jerk at every keyframe. Keyframes
    may be z (z_dim,) / (1, z_dim) or w (num_ws, w_dim): the math runs along the last axis.

    Norm correction: a spline between far-apart vectors cuts inside the shell where samples
    live (its norm dips, like a lerp). Each row is rescaled to the spline of the keyframes'
    row norms, which keeps the curve through the keyframes and C1. (Uniform, not centripetal,
    parameterisation: random keyframes are nearly equidistant in high dimensions.)
    """
    n = len(keyframes)
    if n == 0:
        raise ValueError("keyframe_loop needs at least one keyframe")
    index, f = keyframe_index_alpha(alpha, n)
    if n == 1 or f == 0.0:
        return np.array(keyframes[index], dtype=np.float64)
    points = [np.asarray(keyframes[(index + j) % n], dtype=np.float64) for j in (-1, 0, 1, 2)]
    w = catmull_rom_weights(f)
    blend = sum(wj * p for wj, p in zip(w, points, strict=True))
    target = sum(wj * np.linalg.norm(p, axis=-1, keepdims=True) for wj, p in zip(w, points, strict=True))
    norm = np.linalg.norm(blend, axis=-1, keepdims=True)
    return np.where(norm > 1e-12, blend * (target / np.maximum(norm, 1e-12)), blend)


# --- vector files --------------------------------------------------------------------------
# Read through autolume_graph.file_reads: regular files only, a size cap per kind, archives inflated
# within a bound. Arrays are parsed from the bytes read without unpickling and without trusting the
# header's size (its element count must match the bytes that are there).


def _parse_npy(data: bytes, where: str) -> np.ndarray:
    """The array in .npy bytes, never unpickling; its header must describe exactly the bytes that follow."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy version {version[0]}.{version[1]}")
    except Exception as exc:  # numpy raises ValueError/EOFError/SyntaxError/... for bad headers
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise VectorFileError(f"{where}: cannot read ({reason})") from None
    if dtype.hasobject:
        raise VectorFileError(f"{where}: cannot read (object (pickled) arrays are not accepted)")
    count = math.prod(shape)
    need, have = count * dtype.itemsize, len(data) - stream.tell()
    if need != have:
        raise VectorFileError(f"{where}: cannot read (the header says {need} bytes of data, the file has {have})")
    return np.frombuffer(data, dtype, count, stream.tell()).reshape(shape, order="F" if fortran else "C")


def _read(path: Path, kind: str) -> bytes:
    try:
        return read_regular(path, kind)
    except FileRefused as exc:
        raise VectorFileError(str(exc)) from None


def _read_arrays(path: Path, kind: str, names: Sequence[str] = ()) -> Iterator[np.ndarray]:
    """The array of an .npy file, or the arrays of an .npz (those in `names` first), inflated one at a time.

    Any failure is one VectorFileError line naming the file.
    """
    data = _read(path, kind)
    if not is_zip(data):
        yield _parse_npy(data, str(path))
        return
    try:
        archive = BoundedZip(data, path, kind)
        try:
            members = [n for n in archive.names if n.endswith(".npy")]
            order = [f"{k}.npy" for k in names if f"{k}.npy" in members]
            for member in order + [m for m in members if m not in order]:
                yield _parse_npy(archive.read(member), f"{path}: {member}")
        finally:
            archive.close()
    except FileRefused as exc:
        raise VectorFileError(str(exc)) from None


def _check_numeric(path: Path | str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind not in "fiu":
        raise VectorFileError(f"{path}: dtype {arr.dtype} is not a real number type")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise VectorFileError(f"{path}: contains NaN or infinity")
    return arr


def read_vector_array(path: str | os.PathLike) -> np.ndarray:
    """The real-valued array of a vector .npy as float32, of any shape (`fit_latent` checks it against a model)."""
    path = Path(path)
    data = _read(path, "vector")
    if is_zip(data):
        raise VectorFileError(f"{path}: an .npz archive, expected a single .npy array")
    return _check_numeric(path, _parse_npy(data, str(path)))


def fit_latent(arr: np.ndarray, z_dim: int, num_ws: int, w_dim: int, where: str | os.PathLike
               ) -> tuple[np.ndarray, str]:
    """(array, "z") shaped (1, z_dim) or (array, "w") shaped (1, num_ws, w_dim) from a vector of a fitting shape.

    z: (z_dim,) / (1, z_dim); w: (num_ws, w_dim) / (1, num_ws, w_dim). Anything else raises VectorFileError.
    """
    arr = _check_numeric(where, np.asarray(arr))
    if arr.shape in ((z_dim,), (1, z_dim)):
        return arr.reshape(1, z_dim), "z"
    if arr.shape in ((num_ws, w_dim), (1, num_ws, w_dim)):
        return arr.reshape(1, num_ws, w_dim), "w"
    raise VectorFileError(f"{where}: shape {arr.shape} fits neither z ({z_dim},) nor w ({num_ws}, {w_dim})")


def load_vector(path: str | os.PathLike, z_dim: int, num_ws: int, w_dim: int) -> tuple[np.ndarray, str]:
    """A saved latent: (array, "z") shaped (1, z_dim) or (array, "w") shaped (1, num_ws, w_dim), float32.

    Never unpickles; any unusable file raises VectorFileError. Reads the file on the calling thread:
    nodes run it in `autolume_graph.file_reads`' pool.
    """
    return fit_latent(read_vector_array(path), z_dim, num_ws, w_dim, path)


def save_vector(path: str | os.PathLike, array: np.ndarray | torch.Tensor, *, overwrite: bool = True) -> Path:
    """Write a latent as .npy atomically (a temporary file beside it, then renamed); returns where it went.

    `overwrite` False: an existing file is never replaced, not even one that appears meanwhile; the next
    free name `NAME-N.npy` is taken instead.
    """
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.dtype.kind not in "fiu":
        raise VectorFileError(f"{path}: refusing to save dtype {array.dtype}")

    def write(temp: Path) -> None:
        with open(temp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)

    return write_with(path, write, overwrite=overwrite)


# --- directions ----------------------------------------------------------------------------

_DIRECTION_KEYS = ("comp", "components", "directions", "lat_comp")


def _as_rows(arr: np.ndarray, dim: int) -> np.ndarray | None:
    """(k, dim) rows from an array of directions, or None if no axis has length dim."""
    arr = np.squeeze(arr) if arr.ndim > 2 else arr  # GANSpace's lat_comp is (k, 1, dim)
    if arr.ndim == 1 and arr.shape[0] == dim:
        return arr[None, :]
    if arr.ndim != 2:
        return None
    if arr.shape[1] == dim:
        return arr
    if arr.shape[0] == dim:  # one direction per column
        return arr.T
    return None


def load_directions(path: str | os.PathLike, dim: int) -> np.ndarray:
    """GANSpace-style directions as unit rows (k, dim) float32.

    .npy: a 2-D array, one direction per row (or per column when only the columns have
    length dim). .npz: the first of the keys comp / components / directions / lat_comp,
    else the first array with an axis of length dim; members are inflated one at a time, only
    as far as needed, within the size bound of a directions file.
    """
    path = Path(path)
    arrays = _read_arrays(path, "directions", _DIRECTION_KEYS)
    try:
        for arr in arrays:
            if arr.dtype.kind not in "fiu":
                continue
            rows = _as_rows(arr, dim)
            if rows is not None:
                rows = _check_numeric(path, rows)
                norms = np.linalg.norm(rows, axis=1, keepdims=True)
                if (norms < 1e-8).any():
                    raise VectorFileError(f"{path}: contains a zero-length direction")
                return rows / norms
    finally:
        arrays.close()
    raise VectorFileError(f"{path}: no real-valued array with an axis of length {dim}")


def random_directions(n: int, dim: int, seed: int) -> np.ndarray:
    """n reproducible unit directions (n, dim) float32, orthonormal when n <= dim."""
    g = np.random.RandomState(int(seed) % 2**32).randn(dim, n)
    if n <= dim:
        q, r = np.linalg.qr(g)
        q *= np.sign(np.diag(r))  # makes the factorisation unique, so the seed fixes it
        return q.T.astype(np.float32)
    return (g / np.linalg.norm(g, axis=0)).T.astype(np.float32)


def apply_directions(
    w: np.ndarray | torch.Tensor, directions: np.ndarray | torch.Tensor, amounts: Sequence[float]
) -> np.ndarray | torch.Tensor:
    """w + sum_i amounts[i] * directions[i], broadcast over w's leading axes (e.g. num_ws).

    Uses the first len(amounts) directions; works on numpy arrays or torch tensors (then
    the result keeps w's device and dtype; keep directions as a tensor there to avoid copies).
    """
    k = len(amounts)
    if k > directions.shape[0]:
        raise ValueError(f"{k} amounts for only {directions.shape[0]} directions")
    if isinstance(w, torch.Tensor):
        dirs = to_device(torch.as_tensor(directions[:k], dtype=w.dtype), w.device)
        return w + to_device(torch.as_tensor(amounts, dtype=w.dtype), w.device) @ dirs
    w = np.asarray(w)
    return w + np.asarray(amounts, dtype=w.dtype) @ np.asarray(directions[:k], dtype=w.dtype)
