"""The model cache: a pickle's second load reads the converted entry, renders the same, and nothing about
the cache (stale, corrupt, full, read-only, racing) can change what loads or make a load fail."""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import torch
from test_model_files import _snapshot_generator, persistence_module  # noqa: F401 (a fixture)

from autolume_graph.gan import loader, model_cache
from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.loader import ModelFileError, load_model
from autolume_graph.gan.safe_format import load_safe_entry, save_model
from autolume_graph.gan.store import ModelStore
from autolume_graph.gan.stylegan2 import make_settings

torch.set_grad_enabled(False)

SMALL = make_settings(16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=16)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with an empty model cache of its own."""
    monkeypatch.setenv(model_cache.FOLDER_ENV, str(tmp_path / "model_cache"))
    monkeypatch.delenv(model_cache.MAX_ENV, raising=False)


def _entries() -> list[Path]:
    folder = model_cache.cache_folder()
    return sorted(p for p in folder.iterdir() if model_cache.ENTRY.fullmatch(p.name)) if folder.is_dir() else []


def _render(model) -> torch.Tensor:
    z = torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(7))
    return model(z, psi=0.7, noise_mode="const")


def _copy(reference: Path, folder: Path, name: str = "model.pkl") -> Path:
    target = folder / name
    shutil.copyfile(reference, target)
    return target


class _ReaderCalls:
    """The real pickle reader, counted; `broken` makes every call fail as an unreadable file would."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.broken = False
        self._real = loader.read_generator
        monkeypatch.setattr(loader, "read_generator", self)

    def __call__(self, path, network="G_ema"):
        self.calls += 1
        if self.broken:
            raise ModelFileError(f"{path}: reader made to fail")
        return self._real(path, network)


@pytest.fixture()
def reader(monkeypatch) -> _ReaderCalls:
    return _ReaderCalls(monkeypatch)


@pytest.mark.parametrize("name", ["sg2_64_tiny.pkl", "sg3t_64_tiny.pkl"])
def test_second_load_reads_the_entry_and_renders_bit_identically(reference_dir, reader, name):
    path = reference_dir / name
    load_model(path)
    assert reader.calls == 1 and len(_entries()) == 1
    reader.broken = True
    second = load_model(path)  # no reader: only the entry can have made it
    assert reader.calls == 1
    reader.broken = False
    uncached = load_model(path, cache=False)
    assert reader.calls == 2 and len(_entries()) == 1
    assert type(second) is type(uncached) and second.settings() == uncached.settings()
    assert torch.equal(_render(second), _render(uncached))


def test_touching_or_changing_the_pickle_converts_again(reference_dir, tmp_path, reader):
    path = _copy(reference_dir / "sg2_64_tiny.pkl", tmp_path)
    load_model(path)
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))  # same bytes, touched
    load_model(path)
    assert reader.calls == 2 and len(_entries()) == 2
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF  # a byte before the final STOP: same size, and the mtime is put back below
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    reader.broken = True
    with pytest.raises(ModelFileError, match="reader made to fail"):
        load_model(path)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "foreign", "directory"])
def test_a_bad_entry_is_ignored_and_replaced(reference_dir, reader, damage):
    path = reference_dir / "sg2_64_tiny.pkl"
    expected = _render(load_model(path))
    [entry] = _entries()
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    elif damage == "garbage":
        entry.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    elif damage == "foreign":  # a whole, valid model file of other bytes under this entry's name
        save_model(make_random_model(SMALL, seed=1), entry)
    else:
        entry.unlink()
        entry.mkdir()
    model = load_model(path)
    assert reader.calls == 2 and torch.equal(_render(model), expected)
    if damage == "directory":  # cannot be replaced: still loads, converting each time
        assert entry.is_dir()
        return
    reader.broken = True
    assert torch.equal(_render(load_model(path)), expected)  # the rewritten entry answers
    _, extra = load_safe_entry(entry)
    assert extra["cache_key"] == model_cache.source_of(path, "G_ema").key.text()


@pytest.fixture()
def read_only_folder(tmp_path: Path):
    """A folder nothing can be written into: a read-only tmpfs as root (who ignores modes), else mode 0555."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    mounted = False
    if os.access(folder, os.W_OK):
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot make a read-only folder: {' '.join(result.stderr.split())}")
        mounted = True
    try:
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)
        folder.chmod(0o755)


@pytest.mark.parametrize("where", ["read_only", "full_disk", "under_a_file", "program_cache_under_a_file"])
def test_a_cache_that_cannot_be_written_never_fails_the_load(reference_dir, tmp_path, monkeypatch, caplog,
                                                             request, where):
    if where == "read_only":
        folder = request.getfixturevalue("read_only_folder") / "models"
    elif where == "full_disk":
        folder = request.getfixturevalue("tiny_disk")
    else:
        (tmp_path / "a_file").write_bytes(b"")
        folder = tmp_path / "a_file" / "models"
    if where == "program_cache_under_a_file":  # the default place, where even its parent cannot be made
        monkeypatch.delenv(model_cache.FOLDER_ENV)
        monkeypatch.setenv("AUTOLUME_CACHE", str(folder.parent))
    else:
        monkeypatch.setenv(model_cache.FOLDER_ENV, str(folder))
    path = reference_dir / "sg2_64_tiny.pkl"
    with caplog.at_level(logging.WARNING, logger=model_cache.__name__):
        model = load_model(path)
    assert torch.equal(_render(model), _render(load_model(path, cache=False)))
    [warning] = [r.getMessage() for r in caplog.records]
    assert "model cache not written" in warning and "\n" not in warning
    assert not folder.is_dir() or list(folder.iterdir()) == []  # no entry, no temp file left behind


def test_g_and_g_ema_are_cached_apart_with_their_notes(reference_dir, tmp_path, reader, persistence_module):  # noqa: F811
    path = tmp_path / "snapshot.pkl"
    trained, averaged = make_random_model(SMALL, seed=4), make_random_model(SMALL, seed=5)
    path.write_bytes(pickle.dumps({"G": _snapshot_generator(trained), "G_ema": _snapshot_generator(averaged)}))
    only_ema = reference_dir / "sg2_64_tiny.pkl"  # holds no G: asking for it falls back with a note
    first = [load_model(p, network=n) for p in (path, only_ema) for n in ("G_ema", "G")]
    assert len(_entries()) == 4 and reader.calls == 4
    reader.broken = True
    second = [load_model(p, network=n) for p in (path, only_ema) for n in ("G_ema", "G")]
    assert [m.load_note for m in second] == [m.load_note for m in first]
    assert [bool(m.load_note) for m in first] == [False, False, False, True]
    assert [torch.equal(_render(a), _render(b)) for a, b in zip(first, second, strict=True)] == [True] * 4
    assert torch.equal(_render(second[0]), _render(averaged)) and torch.equal(_render(second[1]), _render(trained))


def test_least_recently_used_entries_go_past_the_bound(reference_dir, tmp_path, monkeypatch, reader):
    paths = [_copy(reference_dir / "sg2_64_tiny.pkl", tmp_path, f"{name}.pkl") for name in "abc"]
    for n, path in enumerate(paths):  # same bytes, other mtimes: three keys
        os.utime(path, ns=(10**18, 10**18 + n * 10**9))
    load_model(paths[0])
    [entry_a] = _entries()
    monkeypatch.setenv(model_cache.MAX_ENV, str(int(entry_a.stat().st_size * 2.5)))
    load_model(paths[1])
    [entry_b] = set(_entries()) - {entry_a}
    load_model(paths[0])  # a hit: a is now used more recently than b
    load_model(paths[2])
    assert reader.calls == 3
    assert entry_a in _entries() and entry_b not in _entries() and len(_entries()) == 2
    assert sum(p.stat().st_size for p in _entries()) <= int(entry_a.stat().st_size * 2.5)
    monkeypatch.setenv(model_cache.MAX_ENV, "1K")  # smaller than any model: nothing is written
    load_model(paths[1])
    assert len(_entries()) == 2


def test_our_files_and_a_cache_turned_off_write_nothing(reference_dir, tmp_path, monkeypatch, reader):
    load_model(save_model(make_random_model(SMALL, seed=1), tmp_path / "ours.safetensors"))
    load_model(reference_dir / "sg2_64_tiny.pkl", cache=False)
    monkeypatch.setenv(model_cache.MAX_ENV, "0")
    load_model(reference_dir / "sg2_64_tiny.pkl")
    assert _entries() == [] and reader.calls == 2


def test_a_file_changed_while_read_is_not_cached(reference_dir, tmp_path, monkeypatch):
    path = _copy(reference_dir / "sg2_64_tiny.pkl", tmp_path)
    real = loader.read_generator

    def read_then_touch(pinned, network="G_ema"):  # another program writes the file during the read
        choice = real(pinned, network)
        os.utime(path, ns=(0, 10**9))
        return choice

    monkeypatch.setattr(loader, "read_generator", read_then_touch)
    load_model(path)
    assert _entries() == []


def test_loads_racing_on_one_file_leave_one_whole_entry(reference_dir):
    path = reference_dir / "sg2_64_tiny.pkl"
    results: list[torch.Tensor] = []
    threads = [threading.Thread(target=lambda: results.append(_render(load_model(path)))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [entry] = _entries()
    assert list(entry.parent.iterdir()) == [entry]  # no temp file left
    expected = _render(load_model(path, cache=False))
    assert len(results) == 3 and all(torch.equal(r, expected) for r in results)
    assert load_safe_entry(entry)[1]["cache_key"] == model_cache.source_of(path, "G_ema").key.text()


def test_the_store_hits_the_entry_through_its_pinned_file(reference_dir, tmp_path, monkeypatch, reader):
    monkeypatch.setenv("AUTOLUME_CACHE", str(tmp_path / "program_cache"))  # its recent-models list
    monkeypatch.delenv(model_cache.FOLDER_ENV)  # the default place: beside it
    assert model_cache.cache_folder() == tmp_path / "program_cache" / "models"
    path = _copy(reference_dir / "sg2_64_tiny.pkl", tmp_path)
    for broken in (False, True):
        reader.broken = broken
        store = ModelStore()
        try:
            assert store.get(path).img_resolution == 64
        finally:
            store.close()
    assert reader.calls == 1 and len(_entries()) == 1


def test_every_reference_pickle_comes_back_the_same(reference_dir, reader):
    """Whatever family or layout the reader builds, the entry holds the same network (settings, tensors, note)."""
    checked = 0
    for path in sorted(reference_dir.glob("*.pkl")):
        try:
            converted = load_model(path, network="G")  # a miss: the reader's own model, written to the cache
        except ModelFileError:  # not (yet) read by the reader: nothing to cache
            continue
        reader.broken = True
        cached = load_model(path, network="G")
        reader.broken = False
        assert type(cached) is type(converted) and cached.settings() == converted.settings(), path
        assert cached.load_note == converted.load_note, path
        mine, theirs = cached.state_dict(), converted.state_dict()
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine), path
        checked += 1
    assert checked >= 3  # at least sg2, sg3t, sg3r


@pytest.mark.parametrize(("text", "expected"), [("", 4 << 30), ("4G", 4 << 30), ("500M", 500 << 20),
                                                ("1.5k", 1536), ("2 GiB", 2 << 30), ("0", 0), ("lots", 4 << 30)])
def test_the_bound_reads_sizes_as_people_write_them(monkeypatch, text, expected):
    monkeypatch.setenv(model_cache.MAX_ENV, text)
    assert model_cache.max_bytes() == expected


def test_an_entry_is_written_without_copying_but_shared_tensors_still_save(tmp_path):
    """Writing an entry skips the copy of every tensor; tensors two layers share are still written apart."""
    model = make_random_model(SMALL, seed=2)
    block = getattr(model.synthesis, model.synthesis.block_names[-1])
    block.conv1.resample_filter = block.conv0.resample_filter  # one buffer held by two layers
    loaded, _ = load_safe_entry(save_model(model, tmp_path / "shared.safetensors"))
    mine, theirs = model.state_dict(), loaded.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine) and torch.equal(_render(loaded), _render(model))
