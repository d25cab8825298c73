"""`network: G_ema | G`: which generator of a training snapshot is rendered, everywhere it can be chosen.

The snapshot is built here from the reference `sg2_64_tiny.pkl`: its network as G_ema and, as G,
the same network with its weights moved (as training's G differs from its moving average).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from generator_graph import generator_graph
from test_model_files import _snapshot_generator, persistence_module  # noqa: F401 (a fixture)

from autolume_graph.cli import main
from autolume_graph.gan.generate import render_seed
from autolume_graph.gan.loader import load_model
from autolume_graph.gan.safe_pickle import ModelFileError
from autolume_graph.gan.store import ModelStore
from autolume_graph.node import NodeState
from autolume_graph.runtime import Runtime
from autolume_graph.serialize import graph_from_dict, graph_to_dict

torch.set_grad_enabled(False)


@pytest.fixture()
def snapshot(tmp_path, reference_dir, persistence_module) -> Path:  # noqa: F811
    """A training snapshot whose G and G_ema differ."""
    ema = load_model(reference_dir / "sg2_64_tiny.pkl")
    trained = load_model(reference_dir / "sg2_64_tiny.pkl")
    generator = torch.Generator().manual_seed(0)
    for tensor in trained.parameters():
        tensor.mul_(1 + 0.3 * torch.randn(tensor.shape, generator=generator))
    path = tmp_path / "snapshot.pkl"
    path.write_bytes(pickle.dumps({"G": _snapshot_generator(trained), "D": None,
                                   "G_ema": _snapshot_generator(ema), "augment_pipe": None}, protocol=4))
    return path


def _render(model) -> np.ndarray:
    return render_seed(model, 1, psi=0.7)[0].numpy()


def test_load_model_picks_g_or_g_ema(snapshot, reference_dir):
    ema, trained = load_model(snapshot), load_model(snapshot, network="G")
    assert ema.load_note == "" and trained.load_note == ""
    assert np.array_equal(_render(ema), _render(load_model(reference_dir / "sg2_64_tiny.pkl")))
    assert np.abs(_render(ema) - _render(trained)).max() > 0.05


def test_store_keeps_each_network_apart(snapshot):
    store = ModelStore(capacity=4)
    try:
        ema, trained = store.get(snapshot), store.get(snapshot, network="G")
        assert ema is not trained and store.get(snapshot) is ema and store.get(snapshot, network="G") is trained
        assert np.array_equal(_render(trained), _render(load_model(snapshot, network="G")))
    finally:
        store.close()


def _loader(graph):
    return next(n for n in graph.nodes.values() if n.type_name == "ModelLoader")


def test_model_loader_network_is_saved_and_renders_g(snapshot, reference_dir):
    graph = generator_graph(reference_dir, seed=1.0)
    loader = _loader(graph)
    assert loader.values["network"] == "G_ema" and loader.params["network"].choices == ("G_ema", "G")
    loader.set_value("path", str(snapshot))
    loader.set_value("network", "G")
    reloaded = graph_from_dict(graph_to_dict(graph))
    assert _loader(reloaded).values["network"] == "G"
    _loader(reloaded).prepare("cpu")
    Runtime(reloaded, fps=10, fixed_step=True).step()
    model = _loader(reloaded).last_outputs["model"]
    assert _loader(reloaded).status == ""
    assert np.array_equal(_render(model), _render(load_model(snapshot, network="G")))


def test_model_loader_falls_back_with_a_note(reference_dir):
    graph = generator_graph(reference_dir, seed=0.0)
    loader = _loader(graph)
    loader.set_value("path", str(reference_dir / "sg2c_64.pkl"))  # only G_ema is set in this file
    loader.set_value("network", "G")
    loader.prepare("cpu")
    Runtime(graph, fps=10, fixed_step=True).step()
    status = loader.node_status
    assert not loader.error and status.state == NodeState.INFO
    assert status.message == "the file has no G; showing G_ema"
    assert np.array_equal(_render(loader.last_outputs["model"]), _render(load_model(reference_dir / "sg2c_64.pkl")))


def test_generate_network_g(snapshot, tmp_path, capsys):
    out = tmp_path / "g.npy"
    assert main(["generate", str(snapshot), "--seed", "1", "--psi", "0.7", "--network", "G", "--out", str(out)]) == 0
    assert np.array_equal(np.load(out), _render(load_model(snapshot, network="G")))
    assert capsys.readouterr().err == ""


def test_generate_network_g_falls_back_with_a_note(reference_dir, tmp_path, capsys):
    out = tmp_path / "g.npy"
    assert main(["generate", str(reference_dir / "sg2_64_tiny.pkl"), "--network", "G", "--out", str(out)]) == 0
    assert capsys.readouterr().err.strip() == "autolume-graph: note: the file has no G; showing G_ema"


def test_generate_network_g_matches_autolume_live(reference_dir, tmp_path):
    """Autolume Live renders a snapshot's G: `img_G` of the non-square Autolume vector."""
    path = reference_dir / "autolume_48x64.pkl"
    try:
        load_model(path)
    except ModelFileError as exc:
        pytest.skip(f"the non-square Autolume model does not load yet: {exc}")
    for case_path in sorted((reference_dir / "autolume_48x64").glob("*.npz")):
        case = np.load(case_path)
        out = tmp_path / f"{case_path.stem}.npy"
        assert main(["generate", str(path), "--seed", str(int(case["seed"])),
                     "--psi", str(float(case["truncation_psi"])), "--noise-mode", str(case["noise_mode"]),
                     "--network", "G", "--out", str(out)]) == 0
        image = np.load(out)
        assert image.shape == case["img_G"].shape[1:] and np.abs(image - case["img_G"][0]).max() < 1e-3
        assert np.abs(image - case["img"][0]).max() > 0.05  # G_ema's picture is another one
