"""ModelStore: shared cache by path + mtime, remembered failures, name resolution; the default model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from autolume_graph.gan import default_model
from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.safe_format import save_model
from autolume_graph.gan.safe_pickle import ModelFileError
from autolume_graph.gan.store import ModelStore, list_models, recent_models, resolve_model_path
from autolume_graph.gan.stylegan2 import make_settings

torch.set_grad_enabled(False)

TINY = make_settings(8, z_dim=16, w_dim=16, mapping_layers=1, channel_base=64, channel_max=8)


@pytest.fixture()
def dirs(tmp_path, monkeypatch) -> Path:
    """A private cache and models folder, so nothing touches the user's."""
    monkeypatch.setenv("AUTOLUME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("AUTOLUME_MODELS", str(tmp_path / "models"))
    (tmp_path / "models").mkdir()
    return tmp_path / "models"


@pytest.fixture()
def store():
    store = ModelStore(capacity=2)
    yield store
    store.close()


def _bump_mtime(path: Path, seconds: int = 10) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))


def test_cache_reuse_by_path_and_mtime(dirs, store):
    path = save_model(make_random_model(TINY, 1), dirs / "a.safetensors")
    first = store.get("a")
    assert store.get(str(path)) is first and store.get("a.safetensors") is first
    _bump_mtime(path)
    reloaded = store.get("a")
    assert reloaded is not first
    assert recent_models()[0] == str(path.resolve())


def test_lru_is_bounded(dirs, store):
    for name in "abc":
        save_model(make_random_model(TINY, 1), dirs / f"{name}.safetensors")
    a = store.get("a")
    store.get("b")
    store.get("c")  # capacity 2: "a" is dropped
    assert store.get("a") is not a


def test_failure_is_cached_until_the_file_changes(dirs, store):
    path = dirs / "bad.pkl"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(ModelFileError) as first:
        store.get("bad")
    message = str(first.value)
    assert "\n" not in message and message.startswith(str(path.resolve()))
    # Replace the file with a good model but keep its mtime: the cached failure answers, no retry.
    stat = path.stat()
    save_model(make_random_model(TINY, 1), path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    future = store.request("bad")
    assert future.done() and str(future.exception()) == message
    _bump_mtime(path)
    assert store.get("bad").img_resolution == 8


def test_missing_name_fails_then_loads_once_present(dirs, store):
    with pytest.raises(ModelFileError, match="no such file"):
        store.get("later")
    save_model(make_random_model(TINY, 1), dirs / "later.safetensors")
    assert store.get("later").family == "stylegan2"


def test_list_and_resolve(dirs):
    for name in ("x.pkl", "y.safetensors", "notes.txt"):
        (dirs / name).write_bytes(b"")
    assert [p.name for p in list_models()] == ["x.pkl", "y.safetensors"]
    assert resolve_model_path("x") == (dirs / "x.pkl").resolve()
    assert resolve_model_path("default") == default_model.default_model_file()


def test_default_model_is_deterministic_and_renders(dirs, tmp_path, monkeypatch, store):
    first = default_model.default_model_path().read_bytes()
    monkeypatch.setenv("AUTOLUME_CACHE", str(tmp_path / "other_cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # another thread count must not change a single byte
    try:
        second = default_model.default_model_path().read_bytes()
    finally:
        torch.set_num_threads(threads)
    assert first == second
    model = store.get("default")
    assert (model.img_resolution, model.z_dim, model.num_ws) == (256, 512, 14)
    assert all(getattr(model.synthesis, n).conv1.noise_strength != 0 for n in model.synthesis.block_names)
    img = model(torch.randn(1, 512, generator=torch.Generator().manual_seed(0)), psi=0.7)
    assert img.shape == (1, 3, 256, 256) and 0.2 < img.std() < 1.5
