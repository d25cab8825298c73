"""Conditional networks: the class on the mapping step, matching NVIDIA's renders of `sg2c_64.pkl`.

Through `load_model` + mapping + synthesis, through the Mapping node in a running graph (a class
index, a blend of classes on the `class_weights` wire), and through `generate --class`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from generator_graph import add, generator_graph
from test_latent_nodes import Constant

from autolume_graph.cli import main
from autolume_graph.gan.accel import MappingRunner
from autolume_graph.gan.generate import seed_to_z, to_uint8
from autolume_graph.gan.loader import load_model
from autolume_graph.gan.mapping import class_input
from autolume_graph.gan.safe_format import save_model
from autolume_graph.graph import Edge, Graph
from autolume_graph.node import NodeState
from autolume_graph.runtime import Runtime

torch.set_grad_enabled(False)


def _cases(reference_dir: Path) -> list[Path]:
    return sorted((reference_dir / "sg2c_64").glob("*.npz"))


@pytest.fixture(scope="module")
def model(reference_dir):
    return load_model(reference_dir / "sg2c_64.pkl")


def _assert_matches(image: np.ndarray, case: Any) -> None:
    assert image.shape == case["img"].shape[1:]
    assert np.abs(image - case["img"][0]).max() < 1e-3
    pixels = to_uint8(torch.from_numpy(image)[None])
    assert (pixels == case["img_uint8"]).all(axis=-1).mean() >= 0.999


def _render(model, seed: int, psi: float, c: torch.Tensor | None, noise_mode: str = "const") -> np.ndarray:
    ws = model.mapping(seed_to_z(seed, model.z_dim), c=c, psi=psi)
    return model.synthesis(ws, noise_mode=noise_mode)[0].numpy()


def test_every_case_matches_nvidia(reference_dir, model):
    cases = _cases(reference_dir)
    assert cases and model.mapping.c_dim == 10
    for path in cases:
        case = np.load(path)
        c = class_input(model.mapping.c_dim, int(case["class_idx"])).tensor()
        z = torch.from_numpy(case["z"])
        ws = model.mapping(z, c=c, psi=float(case["truncation_psi"]))
        assert np.abs(ws.numpy() - case["w"]).max() < 1e-4, path.name
        _assert_matches(model.synthesis(ws, noise_mode=str(case["noise_mode"]))[0].numpy(), case)


def test_the_class_changes_the_picture_and_none_is_class_0(model):
    one_hot = [class_input(10, k).tensor() for k in (0, 3)]
    assert not np.allclose(_render(model, 0, 1.0, one_hot[0]), _render(model, 0, 1.0, one_hot[1]), atol=1e-2)
    assert np.array_equal(_render(model, 0, 1.0, None), _render(model, 0, 1.0, one_hot[0]))


def test_our_model_file_keeps_the_class_embedding(tmp_path, model):
    path = save_model(model, tmp_path / "sg2c.safetensors")
    again = load_model(path)
    assert again.mapping.c_dim == 10 and again.mapping.settings() == model.mapping.settings()
    c = class_input(10, 7).tensor()
    assert np.array_equal(_render(again, 1, 0.7, c), _render(model, 1, 0.7, c))


def test_class_input_rules():
    assert class_input(4, 2).weights == (0, 0, 1, 0) and not class_input(4, 2).note
    clipped = class_input(4, 9)
    assert clipped.weights == (0, 0, 0, 1) and "out of range 0..3" in clipped.note
    blend = class_input(4, 0, [3, -1, 1])  # negatives count as 0, the rest divided by their sum
    assert blend.weights == pytest.approx((0.75, 0, 0.25, 0)) and "padded" in blend.note
    cut = class_input(2, 0, np.array([1.0, 1.0, 5.0]))
    assert cut.weights == (0.5, 0.5) and "cut" in cut.note
    assert class_input(4, 0, 2.25).weights == pytest.approx((0, 0, 0.75, 0.25))
    assert class_input(4, 0, 7.5).weights == (0, 0, 0, 1) and "out of range" in class_input(4, 0, 7.5).note
    none_positive = class_input(3, 1, [0, -2, 0])
    assert none_positive.weights == (0, 1, 0) and "no positive" in none_positive.note
    assert class_input(0, 5).weights == () and "ignored" in class_input(0, 5).note
    assert class_input(0, 0).note == ""
    with pytest.raises(ValueError, match="numbers"):
        class_input(4, 0, "cat")


def test_mapping_runner_passes_the_class(model):
    z = seed_to_z(3, model.z_dim)
    c = class_input(10, 0, 4.5).tensor()
    assert torch.equal(MappingRunner()(model, z, c), model.mapping(z, c=c))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graph_replays_a_moving_class(reference_dir):
    """The class rides in the graph's input buffer: one capture serves every class, each one right."""
    cuda = load_model(reference_dir / "sg2c_64.pkl", device="cuda")
    runner, z = MappingRunner(), seed_to_z(0, cuda.z_dim).to("cuda")
    for t in (0.0, 2.5, 7.0, 9.0):
        c = class_input(10, 0, t).tensor("cuda")
        assert torch.allclose(runner(cuda, z, c), cuda.mapping(z, c=c), atol=1e-5), t
    assert runner.graphs.captures == 1


# --- the Mapping node in a running graph -----------------------------------------------------------

def _graph(reference_dir: Path, seed: int, psi: float, **mapping_values: Any) -> tuple[Graph, dict[str, Any]]:
    graph = Graph()
    loader = add(graph, "ModelLoader", path=str(reference_dir / "sg2c_64.pkl"), device="cpu")
    seed_node = add(graph, "SeedLatent", seed=float(seed))
    mapping = add(graph, "Mapping", psi=psi, **mapping_values)
    generate, preview = add(graph, "Generate", noise_mode="const"), add(graph, "Preview")
    for edge in (Edge(loader.id, "model", mapping.id, "model"), Edge(loader.id, "model", generate.id, "model"),
                 Edge(seed_node.id, "z", mapping.id, "latent"), Edge(mapping.id, "w", generate.id, "w"),
                 Edge(generate.id, "image", preview.id, "image")):
        graph.add_edge(edge)
    loader.prepare("cpu")
    return graph, {"mapping": mapping, "generate": generate}


def _frame(graph: Graph, nodes: dict[str, Any]) -> np.ndarray:
    runtime = Runtime(graph, fps=10, fixed_step=True)
    runtime.step()
    assert not nodes["mapping"].error and not nodes["generate"].error, nodes["mapping"].error
    return nodes["generate"].last_outputs["image"][0].numpy()


def test_mapping_node_class_matches_nvidia(reference_dir):
    for path in _cases(reference_dir):
        case = np.load(path)
        graph, nodes = _graph(reference_dir, int(case["seed"]), float(case["truncation_psi"]),
                              **{"class": int(case["class_idx"])})
        _assert_matches(_frame(graph, nodes), case)
        assert nodes["mapping"].status == ""


def test_mapping_node_clips_the_class_and_says_why(reference_dir, model):
    graph, nodes = _graph(reference_dir, 0, 1.0, **{"class": 42})
    image = _frame(graph, nodes)
    status = nodes["mapping"].node_status
    assert status.state == NodeState.INFO and "class 42 is out of range 0..9: using 9" in status.message
    assert np.abs(image - _render(model, 0, 1.0, class_input(10, 9).tensor())).max() < 1e-5


def test_class_weights_vector_overrides_the_index(reference_dir):
    graph, nodes = _graph(reference_dir, 1, 0.7, **{"class": 5})
    source = graph.add_node(Constant([0.0, 0.0, 0.0, 1.0]))  # no shipped node makes a list: a test source
    graph.add_edge(Edge(source.id, "value", nodes["mapping"].id, "class_weights"))
    _assert_matches(_frame(graph, nodes), np.load(reference_dir / "sg2c_64" / "seed0001_psi0.7_const_c3.npz"))
    assert nodes["mapping"].status == "4 class weights for 10 classes: padded with 0"


def test_a_number_on_class_weights_morphs_between_classes(reference_dir, model):
    """A Constant (or an LFO, or OSC through either) sets a position between classes."""
    graph, nodes = _graph(reference_dir, 1, 0.7)
    position = add(graph, "Constant", value=3.5)
    graph.add_edge(Edge(position.id, "value", nodes["mapping"].id, "class_weights"))
    runtime = Runtime(graph, fps=10, fixed_step=True)
    z = seed_to_z(1, model.z_dim)
    for value, weights in ((3.5, [0, 0, 0, 0.5, 0.5]), (6.0, [0] * 6 + [1])):
        position.set_value("value", value)
        runtime.step()
        want = model.mapping(z, c=class_input(10, 0, weights).tensor(), psi=0.7)
        assert torch.allclose(nodes["mapping"].last_outputs["w"], want, atol=1e-6), value
        assert nodes["mapping"].status == "" and not nodes["mapping"].error
    halfway = model.mapping(z, c=class_input(10, 0, 3.5).tensor(), psi=0.7)
    ends = [model.mapping(z, c=class_input(10, k).tensor(), psi=0.7) for k in (3, 4)]
    assert not torch.allclose(halfway, ends[0], atol=1e-3) and not torch.allclose(halfway, ends[1], atol=1e-3)


def test_unconditional_models_ignore_the_class(reference_dir):
    base = load_model(reference_dir / "sg2_64_tiny.pkl")
    graph = generator_graph(reference_dir, seed=2.0)
    mapping = next(n for n in graph.nodes.values() if n.type_name == "Mapping")
    mapping.set_value("class", 4)
    Runtime(graph, fps=10, fixed_step=True).step()
    assert not mapping.error and "unconditional model: class ignored" in mapping.status
    assert torch.equal(mapping.last_outputs["w"], base.mapping(seed_to_z(2, base.z_dim)))


# --- the command line ----------------------------------------------------------------------------

def test_generate_class_writes_nvidias_picture(reference_dir, tmp_path, capsys):
    case = np.load(reference_dir / "sg2c_64" / "seed0001_psi1.0_const_c3.npz")
    out = tmp_path / "x.npy"
    assert main(["generate", str(reference_dir / "sg2c_64.pkl"), "--seed", "1", "--psi", "1.0",
                 "--noise-mode", "const", "--class", "3", "--out", str(out)]) == 0
    image = np.load(out)
    assert image.dtype == np.float32
    _assert_matches(image, case)
    captured = capsys.readouterr()
    assert "64x64" in captured.out and "class 3" in captured.out and captured.err == ""


def test_generate_class_out_of_range_is_clipped_with_one_line(reference_dir, tmp_path, capsys):
    out = tmp_path / "x.npy"
    assert main(["generate", str(reference_dir / "sg2c_64.pkl"), "--class", "10", "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["autolume-graph: note: class 10 is out of range 0..9: using 9"]
    model = load_model(reference_dir / "sg2c_64.pkl")
    assert np.abs(np.load(out) - _render(model, 0, 1.0, class_input(10, 9).tensor())).max() < 1e-5


def test_generate_class_on_unconditional_model_is_a_note(reference_dir, tmp_path, capsys):
    plain, classed = tmp_path / "a.npy", tmp_path / "b.npy"
    model = str(reference_dir / "sg2_64_tiny.pkl")
    assert main(["generate", model, "--out", str(plain)]) == 0
    capsys.readouterr()
    assert main(["generate", model, "--class", "3", "--out", str(classed)]) == 0
    assert "unconditional: --class ignored" in capsys.readouterr().err
    assert np.array_equal(np.load(plain), np.load(classed))
