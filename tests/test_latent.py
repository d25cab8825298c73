"""Latent math: seed convention, seamless loops, smooth walks, safe vector files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autolume_graph.gan.latent import (
    RandomWalk,
    VectorFileError,
    apply_directions,
    fractional_seed_z,
    keyframe_alpha,
    keyframe_index_alpha,
    keyframe_loop,
    load_directions,
    load_vector,
    noise_loop,
    random_directions,
    save_vector,
    seed_z,
)

Z = 512


def test_seed_z_follows_nvidia_convention_and_wraps():
    np.testing.assert_array_equal(seed_z(7, Z), np.random.RandomState(7).randn(1, Z))
    np.testing.assert_array_equal(seed_z(7 + 2**32, Z), seed_z(7, Z))
    np.testing.assert_array_equal(seed_z(-1, Z), np.random.RandomState(2**32 - 1).randn(1, Z))
    assert seed_z(3, Z).shape == (1, Z) and seed_z(3, Z).dtype == np.float64
    scratch = seed_z(3, Z)
    scratch[:] = 0.0  # callers own their copy; the cache is unharmed
    np.testing.assert_array_equal(seed_z(3, Z), np.random.RandomState(3).randn(1, Z))


def test_fractional_seed_matches_integers_and_keeps_std_halfway():
    np.testing.assert_array_equal(fractional_seed_z(5.0, Z), seed_z(5, Z))
    np.testing.assert_allclose(fractional_seed_z(5.999999, Z), seed_z(6, Z), atol=1e-4)
    halfway = np.concatenate([fractional_seed_z(s + 0.5, Z) for s in range(40)])
    assert abs(halfway.std() - 1.0) < 0.02  # a plain lerp would give ~0.71
    lerp = 0.5 * (seed_z(0, Z) + seed_z(1, Z))
    assert np.linalg.norm(fractional_seed_z(0.5, Z)) > 1.3 * np.linalg.norm(lerp)


def _wrap_checks(path, eps=1e-6):
    """Distance and finite-difference velocity mismatch at the alpha 1 -> 0 wrap."""
    p0, p1 = path(0.0), path(1.0)
    v_start = (path(eps) - path(0.0)) / eps
    v_end = (path(1.0) - path(1.0 - eps)) / eps
    v_scale = np.linalg.norm(v_start)
    return np.linalg.norm(p1 - p0), np.linalg.norm(v_end - v_start) / v_scale, v_scale


def test_noise_loop_is_seamless():
    dist, dv, speed = _wrap_checks(lambda a: noise_loop(a, seed=3, radius=0.7, z_dim=Z))
    assert dist == 0.0
    assert dv < 1e-3 and speed > 1.0


def test_noise_loop_radius_zero_is_still_and_seed_moves_start():
    still = [noise_loop(a, seed=3, radius=0.0, z_dim=Z) for a in np.linspace(0, 1, 7)]
    for z in still:
        np.testing.assert_array_equal(z, still[0])
    assert not np.allclose(noise_loop(0.0, 4, 0.5, Z), noise_loop(0.0, 3, 0.5, Z))


@pytest.mark.parametrize("radius", [0.3, 1.0])
def test_noise_loop_stays_in_distribution(radius):
    stds = [noise_loop(a, seed=11, radius=radius, z_dim=Z).std() for a in np.linspace(0, 1, 50)]
    assert 0.8 <= min(stds) and max(stds) <= 1.2


def test_noise_loop_radius_scales_motion():
    def span(r):
        return np.linalg.norm(noise_loop(0.5, 1, r, Z) - noise_loop(0.0, 1, r, Z))

    assert 0 < span(0.2) < span(0.6) < span(1.0)


def _keyframes(n):
    return [seed_z(100 + i, Z) for i in range(n)]


@pytest.mark.parametrize("n", [2, 3, 5])
def test_keyframe_loop_passes_through_keyframes(n):
    keys = _keyframes(n)
    for i, k in enumerate(keys):
        np.testing.assert_allclose(keyframe_loop(i / n, keys), k, atol=1e-12)


@pytest.mark.parametrize("n", [3, 5])
def test_keyframe_loop_is_seamless_and_smooth_at_keyframes(n):
    keys = _keyframes(n)

    def path(a):
        return keyframe_loop(a, keys)

    dist, dv, _ = _wrap_checks(path)
    assert dist < 1e-12 and dv < 1e-2
    eps = 1e-5
    for i in range(1, n):  # velocity continuous across every interior keyframe too
        a = i / n
        v_in = (path(a) - path(a - eps)) / eps
        v_out = (path(a + eps) - path(a)) / eps
        assert np.linalg.norm(v_out - v_in) / np.linalg.norm(v_in) < 1e-2


def test_wrap_check_detects_a_velocity_jump():
    keys = _keyframes(3)

    def polyline(a):  # linear segments between keyframes: continuous, but kinked at each one
        i, f = keyframe_index_alpha(a, 3)
        return (1 - f) * keys[i] + f * keys[(i + 1) % 3]

    dist, dv, _ = _wrap_checks(polyline)
    assert dist < 1e-12 and dv > 0.5


def test_keyframe_loop_stays_in_distribution_and_handles_one_key():
    keys = _keyframes(4)
    stds = [keyframe_loop(a, keys).std() for a in np.linspace(0, 1, 41)]
    assert 0.8 <= min(stds) and max(stds) <= 1.2
    np.testing.assert_array_equal(keyframe_loop(0.37, keys[:1]), keys[0])


def test_keyframe_loop_works_on_w_shaped_keys():
    keys = [np.random.RandomState(i).randn(16, 64) for i in range(3)]
    out = keyframe_loop(0.5, keys)
    assert out.shape == (16, 64)
    np.testing.assert_allclose(keyframe_loop(1 / 3, keys), keys[1], atol=1e-12)


def test_keyframe_index_alpha_round_trips():
    assert keyframe_index_alpha(0.0, 4) == (0, 0.0)
    assert keyframe_index_alpha(1.0, 4) == (0, 0.0)
    index, local = keyframe_index_alpha(0.6, 4)
    assert index == 2 and local == pytest.approx(0.4)
    for alpha in np.linspace(0, 0.999, 23):
        assert keyframe_alpha(*keyframe_index_alpha(alpha, 7), 7) == pytest.approx(alpha)


def test_random_walk_is_smooth_deterministic_and_in_distribution():
    walk = RandomWalk(seed=5, z_dim=Z, speed=0.5)
    ts = np.arange(0.0, 20.0, 1 / 120)
    path = np.concatenate([walk.value(t) for t in ts])
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    # neighbouring samples of N(0, I) are ~sqrt(2 * 512) = 32 apart: a jump would show
    assert steps.max() < 0.5
    accel = np.linalg.norm(np.diff(path, 2, axis=0), axis=1)
    assert accel.max() < 0.02  # C1: velocity changes only a little per step, even at keypoints
    assert 0.9 < path.std() < 1.1
    np.testing.assert_array_equal(RandomWalk(5, Z, 0.5).value(7.3), walk.value(7.3))
    assert not np.allclose(RandomWalk(6, Z, 0.5).value(7.3), walk.value(7.3))
    assert np.linalg.norm(path[-1] - path[0]) > 10  # it does wander


# --- files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, kind", [((512,), "z"), ((1, 512), "z"), ((16, 64), "w"), ((1, 16, 64), "w")])
def test_load_vector_accepts_shapes(tmp_path, shape, kind):
    arr = np.random.RandomState(0).randn(*shape)
    save_vector(tmp_path / "v.npy", arr)
    out, got = load_vector(tmp_path / "v.npy", z_dim=512, num_ws=16, w_dim=64)
    assert got == kind and out.dtype == np.float32
    assert out.shape == ((1, 512) if kind == "z" else (1, 16, 64))
    np.testing.assert_allclose(out.ravel(), arr.ravel(), rtol=1e-6)


def test_save_vector_is_atomic_and_takes_tensors(tmp_path):
    target = tmp_path / "v.npy"
    save_vector(target, torch.ones(1, 512))
    save_vector(target, torch.zeros(1, 512))
    assert [p.name for p in tmp_path.iterdir()] == ["v.npy"]
    np.testing.assert_array_equal(load_vector(target, 512, 16, 64)[0], np.zeros((1, 512)))


def _expect_error(path, match):
    with pytest.raises(VectorFileError, match=match) as info:
        load_vector(path, z_dim=512, num_ws=16, w_dim=64)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_load_vector_rejects_bad_shapes_and_values(tmp_path):
    np.save(tmp_path / "shape.npy", np.zeros((3, 3)))
    _expect_error(tmp_path / "shape.npy", "shape")
    bad = np.zeros(512)
    bad[4] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    _expect_error(tmp_path / "nan.npy", "NaN")
    bad[4] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    _expect_error(tmp_path / "inf.npy", "infinity")
    np.save(tmp_path / "str.npy", np.array(["a"] * 512))
    _expect_error(tmp_path / "str.npy", "dtype")
    _expect_error(tmp_path / "missing.npy", "no such file")


def test_load_vector_rejects_truncated_file(tmp_path):
    np.save(tmp_path / "full.npy", np.zeros(512))
    data = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    _expect_error(tmp_path / "cut.npy", "cannot read")
    (tmp_path / "junk.npy").write_bytes(b"not a numpy file at all")
    _expect_error(tmp_path / "junk.npy", "cannot read")


class _Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_vector_never_unpickles_object_arrays(tmp_path):
    marker = tmp_path / "pwned"
    arr = np.empty(512, dtype=object)
    arr[:] = 0.0
    arr[0] = _Payload(str(marker))
    np.save(tmp_path / "obj.npy", arr, allow_pickle=True)
    assert not marker.exists()
    _expect_error(tmp_path / "obj.npy", "object")
    with pytest.raises(VectorFileError):
        load_directions(tmp_path / "obj.npy", 512)
    assert not marker.exists()


# --- directions --------------------------------------------------------------------------------


def test_load_directions_rows_columns_npz_and_normalises(tmp_path):
    rows = np.random.RandomState(1).randn(5, 64) * 3
    np.save(tmp_path / "rows.npy", rows)
    got = load_directions(tmp_path / "rows.npy", 64)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(got[2], rows[2] / np.linalg.norm(rows[2]), atol=1e-6)
    np.save(tmp_path / "cols.npy", rows.T)
    np.testing.assert_allclose(load_directions(tmp_path / "cols.npy", 64), got, atol=1e-6)
    np.savez(tmp_path / "gs.npz", lat_mean=np.zeros(64), lat_comp=rows[:, None, :], lat_stdev=np.ones(5))
    np.testing.assert_allclose(load_directions(tmp_path / "gs.npz", 64), got, atol=1e-6)
    np.savez(tmp_path / "c.npz", other=np.zeros((2, 7)), comp=rows)
    np.testing.assert_allclose(load_directions(tmp_path / "c.npz", 64), got, atol=1e-6)
    np.save(tmp_path / "wrong.npy", rows)
    with pytest.raises(VectorFileError, match="length 32"):
        load_directions(tmp_path / "wrong.npy", 32)


def test_random_directions_orthonormal_and_reproducible():
    d = random_directions(8, 64, seed=2)
    np.testing.assert_allclose(d @ d.T, np.eye(8), atol=1e-5)
    np.testing.assert_array_equal(d, random_directions(8, 64, seed=2))
    assert not np.allclose(d, random_directions(8, 64, seed=3))
    many = random_directions(10, 4, seed=0)
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-6)


def test_apply_directions_numpy_and_torch():
    d = random_directions(3, 8, seed=0)
    w = np.random.RandomState(0).randn(4, 8).astype(np.float32)
    out = apply_directions(w, d, [2.0, 0.0])
    np.testing.assert_allclose(out, w + 2.0 * d[0], atol=1e-6)
    np.testing.assert_allclose(((out - w) @ d.T)[:, :2], [[2.0, 0.0]] * 4, atol=1e-5)
    tw = torch.from_numpy(w)
    tout = apply_directions(tw, torch.from_numpy(d), [2.0, 0.0, -1.0])
    np.testing.assert_allclose(tout.numpy(), w + 2.0 * d[0] - d[2], atol=1e-5)
    with pytest.raises(ValueError):
        apply_directions(w, d, [1.0] * 4)
