"""ModelMix: exact ends, in-place re-mix, dropped resolutions, saving, and refusals that keep the last mix."""

from __future__ import annotations

import time
from typing import Any

import pytest
import torch

from autolume_graph.gan import wires
from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.loader import load_model
from autolume_graph.gan.stylegan2 import make_settings
from autolume_graph.graph import Edge, Graph
from autolume_graph.node import CookContext, Node, NodeError
from autolume_graph.params import Data, Input, Output
from autolume_graph.scheduler import Scheduler
from nodes.model_mix import ModelMix

CTX = CookContext()
# the reference tiny model's layout: 128 channels at every resolution, two mapping layers
TINY = {"z_dim": 512, "w_dim": 512, "mapping_layers": 2, "channel_base": 16384, "channel_max": 128}


@pytest.fixture(scope="module")
def a(reference_dir):
    return load_model(reference_dir / "sg2_64_tiny.pkl")


@pytest.fixture(scope="module")
def b(a):
    return make_random_model(a.settings(), seed=1)


@pytest.fixture(scope="module")
def w(a):
    with torch.inference_mode():
        return a.mapping(torch.randn(1, a.z_dim, generator=torch.Generator().manual_seed(5)))


@pytest.fixture(scope="module")
def ends(a, b, w):
    return {"a": render(a, w), "b": render(b, w)}


def render(model, w):
    with torch.inference_mode():
        return model.synthesis(w[:, :model.num_ws])


def mix(node, a, b, **values):
    params = {**node.values, **values}
    return node.cook(CTX, {"a": a, "b": b}, params)


@pytest.mark.parametrize(("values", "side"), [
    ({}, "a"), ({"crossfade": 1.0}, "b"), ({"b_from_resolution": 4}, "b"),
    ({"mix": {str(r): 1 for r in (4, 8, 16, 32, 64)}}, "b"), ({"crossfade": 1.0, "mix": {"4": 0}}, "mixed"),
    ({"mode": "advanced", "mix": {f"b{r}": 1.0 for r in (4, 8, 16, 32, 64)}}, "b"),
])
def test_the_ends_render_exactly_like_a_and_b(a, b, w, ends, values, side):
    model = mix(ModelMix(), a, b, **values)["model"]
    image = render(model, w)
    if side == "mixed":
        assert not torch.equal(image, ends["a"]) and not torch.equal(image, ends["b"])
    else:
        assert torch.equal(image, ends[side])
    assert torch.equal(model.mapping.w_avg, a.mapping.w_avg)  # the mapping network stays A's


def test_remixing_writes_in_place_and_touches_only_what_is_set(a, b):
    node = ModelMix()
    model = mix(node, a, b, crossfade=0.25)["model"]
    pointers = {k: v.data_ptr() for k, v in model.state_dict().items()}
    out = mix(node, a, b, crossfade=0.75, mode="advanced", mix={"b16.conv0": 1, "b32": 0})["model"]
    assert out is model and {k: v.data_ptr() for k, v in model.state_dict().items()} == pointers
    state, sa, sb = model.state_dict(), a.state_dict(), b.state_dict()
    name = "synthesis.b8.conv1.weight"
    torch.testing.assert_close(state[name], torch.lerp(sa[name], sb[name], 0.75))
    assert torch.equal(state["synthesis.b16.conv0.weight"], sb["synthesis.b16.conv0.weight"])
    assert torch.equal(state["synthesis.b32.conv1.weight"], sa["synthesis.b32.conv1.weight"])
    assert mix(node, a, b, crossfade=0.75, mode="advanced", mix={"b16.conv0": 1, "b32": 0}) == {}


def test_dropping_a_resolution_aligns_a_with_a_lower_resolution_b(a, w):
    small = make_random_model(make_settings(32, **TINY), seed=2)
    node = ModelMix()
    with pytest.raises(NodeError, match="missing from model B"):
        mix(node, a, small, mix={"64": 1})
    model = mix(node, a, small, crossfade=1.0, mix={"64": "X"})["model"]
    assert (model.img_resolution, model.num_ws, node.status) == (32, small.num_ws, "32 px, 1 block(s) dropped")
    assert torch.equal(render(model, w), render(small, w))
    model = mix(node, a, small, mode="advanced", mix={"b32.conv1": "x"})["model"]  # its block and above
    assert model.img_resolution == 16 and render(model, w).shape == (1, 3, 16, 16)


def test_a_saved_mix_loads_back_identical(a, b, w, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOLUME_MODELS", str(tmp_path))
    node = ModelMix()
    model = mix(node, a, b, crossfade=0.3, mix={"64": "X"}, save_name="blend", save=True)["model"]
    expected = render(model, w)
    mix(node, a, b, crossfade=0.9, mix={"64": "X"})  # changing the mix at once must not reach the file
    deadline = time.monotonic() + 20
    while node.animating(node.values) and time.monotonic() < deadline:
        time.sleep(0.02)
        mix(node, a, b, crossfade=0.9, mix={"64": "X"})
    assert node.status.endswith("saved blend.safetensors")
    assert torch.equal(render(load_model(tmp_path / "blend.safetensors"), w), expected)
    mix(node, a, b, save_name="..", save=True)
    assert "not a usable file name" in node.status and [p.name for p in tmp_path.iterdir()] == ["blend.safetensors"]


class Hold(Node):
    """Puts the model in its `value` on a wire."""

    outputs = {"model": Output(wires.MODEL)}
    params = {"value": Data(None)}

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {"model": params["value"]}


class Take(Node):
    """A sink remembering the model it was last given."""

    sink = True
    inputs = {"model": Input(wires.MODEL)}

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self.model = inputs.get("model")
        return {}


@pytest.mark.parametrize(("make_other", "message"), [
    (lambda ref: make_random_model(make_settings(64, **{**TINY, "channel_max": 64}), seed=3),
     "NodeError: synthesis.b4.const: shape (128, 4, 4) in A but (64, 4, 4) in B"),
    (lambda ref: load_model(ref / "sg3t_64_tiny.pkl"),
     "NodeError: cannot mix a stylegan2 model with a stylegan3 model"),
], ids=["channels", "family"])
def test_an_incompatible_b_is_one_line_and_the_last_mix_keeps_rendering(a, b, w, ends, reference_dir, make_other,
                                                                         message):
    graph = Graph()
    held_a, held_b, node, take = (graph.add_node(n) for n in (Hold(), Hold(), ModelMix(), Take()))
    graph.add_edge(Edge(held_a.id, "model", node.id, "a"))
    graph.add_edge(Edge(held_b.id, "model", node.id, "b"))
    graph.add_edge(Edge(node.id, "model", take.id, "model"))
    held_a.set_value("value", a)
    held_b.set_value("value", b)
    node.set_value("crossfade", 1.0)
    scheduler = Scheduler(graph)
    scheduler.run_frame(CTX)
    good = take.model
    held_b.set_value("value", make_other(reference_dir))
    report = scheduler.run_frame(CTX)
    assert report.errors == {node.id: message}
    assert take.model is good and node.last_outputs["model"] is good
    assert torch.equal(render(good, w), ends["b"])  # the failed pair wrote nothing into it
    held_b.set_value("value", b)
    assert scheduler.run_frame(CTX).errors == {} and take.model is good and node.error == ""


def test_bad_mix_entries_name_the_valid_keys(a, b):
    with pytest.raises(NodeError, match=r"no mix key '128' in simple mode \(keys: 4, 8, 16, 32, 64\)"):
        mix(ModelMix(), a, b, mix={"128": 1})
    with pytest.raises(NodeError, match='must be 0..1 or "X"'):
        mix(ModelMix(), a, b, mix={"16": "half"})


def test_dropping_is_refused_for_stylegan3(reference_dir):
    sg3 = load_model(reference_dir / "sg3t_64_tiny.pkl")
    node = ModelMix()
    with pytest.raises(NodeError, match="StyleGAN2 models only"):
        mix(node, sg3, sg3, mix={"84": "X"})
    assert mix(node, sg3, sg3, crossfade=0.5, mix={"input": 0})["model"].family == "stylegan3"
