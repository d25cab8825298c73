"""The GAN family registry: StyleGAN2/3 are declared on it, and a new family is one file.

The throwaway family in `plugins/tiny_family.py` is loaded from its file alone and must then be
detected in a pickle, built, saved to and loaded from our safetensors format, mixed with itself
and rendered by the Generate node in a real graph, with no other file knowing it.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path
from types import ModuleType

import pytest
import torch
from test_model_files import _fc, _Persistent, persistence_module  # noqa: F401 (a fixture)

from autolume_graph.gan import family as registry
from autolume_graph.gan.family import families, family_named, family_of
from autolume_graph.gan.loader import load_model
from autolume_graph.gan.mixing import family_of as family_of_state
from autolume_graph.gan.mixing import resolution_of
from autolume_graph.gan.safe_format import save_model
from autolume_graph.gan.safe_pickle import ModelFileError
from autolume_graph.graph import Edge, Graph
from autolume_graph.node import CookContext, NodeError
from autolume_graph.registry import default_registry
from autolume_graph.scheduler import Scheduler
from nodes.model_mix import ModelMix

TINY_FILE = Path(__file__).parent / "plugins" / "tiny_family.py"
FAMILIES_DIR = Path(registry.__file__).parent / "families"


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The tiny family's one file, imported the way a plugin is; the registry is restored afterwards."""
    families()  # the bundled families first, so the restored registry keeps them
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    spec = importlib.util.spec_from_file_location("tiny_family_plugin", TINY_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _render(model: torch.nn.Module, mapping: torch.nn.Module | None = None) -> torch.Tensor:
    """The picture of a fixed z, through `mapping` (a mix keeps A's) or the model's own."""
    z = torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(3))
    return model.synthesis((mapping or model.mapping)(z), noise_mode="const")


def _pickle(model, path: Path) -> Path:
    """`model` as NVIDIA's persistence would pickle a generator of class `TinyGenerator`."""
    syn, mapping = model.synthesis, model.mapping
    layer = _Persistent("TinyLayer", syn.layer, {"conv": _Persistent("Conv2d", syn.layer.conv, {})})
    synthesis = _Persistent("TinySynthesis", syn, {"layer": layer}, w_dim=syn.w_dim, channels=syn.channels,
                            resolution=syn.img_resolution, img_channels=syn.img_channels)
    fcs = {f"fc{i}": _fc(getattr(mapping, f"fc{i}")) for i in range(mapping.num_layers)}
    mapping_record = _Persistent("MappingNetwork", mapping, fcs, z_dim=mapping.z_dim, c_dim=0, num_ws=mapping.num_ws,
                                 num_layers=mapping.num_layers)
    generator = _Persistent("TinyGenerator", torch.nn.Module(), {"synthesis": synthesis, "mapping": mapping_record})
    path.write_bytes(pickle.dumps({"G_ema": generator}, protocol=4))
    return path


def test_stylegan2_and_stylegan3_are_registered_families(reference_dir: Path) -> None:
    assert {"stylegan2", "stylegan3"} <= {f.name for f in families()}
    assert sorted(p.stem for p in FAMILIES_DIR.glob("*.py") if p.stem != "__init__") == ["stylegan2", "stylegan3"]
    sg2, sg3 = load_model(reference_dir / "sg2_64_tiny.pkl"), load_model(reference_dir / "sg3t_64_tiny.pkl")
    assert family_of(sg2) is family_named("stylegan2") and family_of(sg3) is family_named("stylegan3")
    assert family_of(sg2).drop_blocks is not None and family_of(sg2).set_input_transform is None
    assert family_of(sg3).drop_blocks is None and family_of(sg3).set_input_transform is not None
    assert family_of_state(sg2.state_dict()) == "stylegan2" and family_of_state(sg3.state_dict()) == "stylegan3"
    assert resolution_of("synthesis.b32") == 32 and resolution_of("synthesis.L3_52_128") == 52
    assert resolution_of("synthesis.input") is None


def test_the_shared_synthesis_start_checks_every_family_before_work(reference_dir: Path) -> None:
    for name in ("sg2_64_tiny.pkl", "sg3t_64_tiny.pkl"):
        model = load_model(reference_dir / name)
        ws = model.mapping(torch.zeros(1, model.z_dim))
        with pytest.raises(ValueError, match="noise_mode"):
            model.synthesis(ws, noise_mode="loud")
        with pytest.raises(KeyError, match="no layer named"):
            model.synthesis(ws, capture="nowhere")
        image, activation = model.synthesis(ws, capture=model.layer_names()[1])
        assert image.is_contiguous() and activation.shape[1] == model.layer_info()[1].channels


@pytest.mark.usefixtures("persistence_module")
def test_a_family_file_is_detected_in_a_pickle_built_saved_and_loaded(tiny, tmp_path) -> None:
    original = tiny.make_random(seed=1)
    loaded = load_model(_pickle(original, tmp_path / "tiny.pkl"))
    assert isinstance(loaded, tiny.TinyGAN) and family_of(loaded) is tiny.TINY
    assert torch.equal(_render(loaded), _render(original))
    saved = load_model(save_model(loaded, tmp_path / "tiny.safetensors"))
    assert isinstance(saved, tiny.TinyGAN) and torch.equal(_render(saved), _render(original))
    assert _render(saved).shape == (1, 3, 8, 8)


def test_without_its_file_the_family_is_unknown() -> None:
    with pytest.raises(ModelFileError, match="unknown model family 'tiny'"):
        family_named("tiny")


def test_a_family_file_mixes_with_itself(tiny) -> None:
    a, b = tiny.make_random(seed=1), tiny.make_random(seed=2)
    node = ModelMix()
    for crossfade, expected in ((0.0, a), (1.0, b)):
        node.values.update(crossfade=crossfade)
        mixed = node.cook(CookContext(), {"a": a, "b": b}, dict(node.values))["model"]
        assert isinstance(mixed, tiny.TinyGAN) and torch.equal(_render(mixed), _render(expected, a.mapping))
    node.values.update(crossfade=0.5)
    half = node.cook(CookContext(), {"a": a, "b": b}, dict(node.values))["model"].synthesis.layer.conv.weight
    assert torch.equal(half, torch.lerp(a.synthesis.layer.conv.weight, b.synthesis.layer.conv.weight, 0.5))
    assert node.mix_keys() == ["layer"]
    node.values.update(mix={"layer": "X"})
    with pytest.raises(NodeError, match="StyleGAN2 models only"):
        node.cook(CookContext(), {"a": a, "b": b}, dict(node.values))


@pytest.mark.usefixtures("persistence_module")
def test_a_family_file_renders_through_generate_in_a_graph(tiny, tmp_path) -> None:
    """ModelLoader (pickle) + ModelLoader (our format) -> ModelMix -> Generate -> Preview, as in a show."""
    a, b = tiny.make_random(seed=1), tiny.make_random(seed=2)
    paths = (_pickle(a, tmp_path / "a.pkl"), save_model(b, tmp_path / "b.safetensors"))
    graph = Graph()

    def add(type_name: str, **values):
        node = graph.add_node(default_registry().create(type_name))
        for name, value in values.items():
            node.set_value(name, value)
        return node

    loader_a, loader_b = (add("ModelLoader", path=str(path), device="cpu") for path in paths)
    mix, seed, mapping = add("ModelMix", crossfade=1.0), add("SeedLatent", seed=5), add("Mapping")
    generate, preview = add("Generate", translate_x=0.5), add("Preview")
    for edge in (Edge(loader_a.id, "model", mix.id, "a"), Edge(loader_b.id, "model", mix.id, "b"),
                 Edge(loader_a.id, "model", mapping.id, "model"), Edge(loader_a.id, "model", seed.id, "model"),
                 Edge(seed.id, "z", mapping.id, "latent"),
                 Edge(mix.id, "model", generate.id, "model"), Edge(mapping.id, "w", generate.id, "w"),
                 Edge(generate.id, "image", preview.id, "image")):
        graph.add_edge(edge)
    for loader in (loader_a, loader_b):
        loader.prepare("cpu")
    published: dict = {}
    report = Scheduler(graph).run_frame(CookContext(services={"publish": published}))
    assert not report.errors, report.errors
    image = published[preview.name]
    w = mapping.last_outputs["w"]
    assert image.shape == (1, 3, 8, 8) and torch.equal(image, load_model(paths[1]).synthesis(w))
