"""Promise 5: nothing is lost. A save killed (SIGKILL) just before it commits leaves the previous file
intact and loadable; a preset folder with a corrupt file still loads the rest.
The graph-file case is tests/test_serialize.py::test_save_is_atomic_when_killed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from killed_save import save_killed
from test_model_files import TINY

from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.latent import load_vector, save_vector
from autolume_graph.gan.loader import load_model
from autolume_graph.gan.safe_format import save_model
from autolume_graph.gan.store import RECENT_FILE, add_recent_model, recent_models
from autolume_graph.graph import Graph
from autolume_graph.presets import PresetFolder
from autolume_graph.registry import default_registry

TESTS = Path(__file__).resolve().parent
TINY_CHILD = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from test_model_files import TINY
from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.safe_format import save_model
"""


def _one_node_graph(name: str) -> Graph:
    graph = Graph()
    graph.add_node(default_registry().create("LFO"), name=name)
    return graph


def test_preset_save_killed_keeps_the_old_preset(tmp_path: Path) -> None:
    PresetFolder(tmp_path).save("show", _one_node_graph("keep"))
    save_killed("""
from autolume_graph.graph import Graph
from autolume_graph.presets import PresetFolder
from autolume_graph.registry import default_registry
graph = Graph(); graph.add_node(default_registry().create("Constant"), name="new")
""", f"PresetFolder({str(tmp_path)!r}).save('show', graph)")
    assert [n.name for n in PresetFolder(tmp_path).load("show").nodes.values()] == ["keep"]


def test_model_save_killed_keeps_the_old_model(tmp_path: Path) -> None:
    old = make_random_model(TINY, seed=3)
    path = save_model(old, tmp_path / "mix.safetensors")
    save_killed(TINY_CHILD, f"save_model(make_random_model(TINY, seed=5), {str(path)!r})")
    loaded = load_model(path)
    for name, tensor in old.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_vector_save_killed_keeps_the_old_vector(tmp_path: Path) -> None:
    path = tmp_path / "v.npy"
    old = np.arange(8, dtype=np.float32).reshape(1, 8)
    save_vector(path, old)
    save_killed("import numpy as np\nfrom autolume_graph.gan.latent import save_vector",
                f"save_vector({str(path)!r}, np.ones((1, 8), np.float32))")
    assert np.array_equal(load_vector(path, 8, 2, 4)[0], old)


def test_recent_models_write_killed_keeps_the_old_list(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOLUME_CACHE", str(tmp_path))
    add_recent_model("/models/a.pkl")
    save_killed(f"import os\nos.environ['AUTOLUME_CACHE'] = {str(tmp_path)!r}\n"
                "from autolume_graph.gan.store import add_recent_model", "add_recent_model('/models/b.pkl')")
    assert recent_models() == ["/models/a.pkl"]
    assert json.loads((tmp_path / RECENT_FILE).read_text()) == ["/models/a.pkl"]


def test_preset_folder_with_a_corrupt_file_loads_the_others(tmp_path: Path) -> None:
    presets = PresetFolder(tmp_path)
    for name in ("intro", "outro"):
        presets.save(name, _one_node_graph(name))
    (tmp_path / "broken.agraph").write_bytes(b"\x82\xa6format\xaeautolume-graph\xa6schema")  # cut short
    graphs, failures = presets.load_all()
    assert sorted(graphs) == ["intro", "outro"]
    assert list(failures) == ["broken"] and "\n" not in failures["broken"]
