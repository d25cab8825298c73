"""LayerTransform: edits reach the right layers exactly, are built once, stack, and view a layer."""

from __future__ import annotations

import pytest
import torch

from autolume_graph.gan.edits import LayerEdits, activation_to_image
from autolume_graph.gan.loader import load_model
from autolume_graph.node import CookContext, NodeError
from nodes.generate import Generate
from nodes.layer_transform import LayerTransform

CTX = CookContext()


@pytest.fixture(scope="module")
def model(reference_dir):
    return load_model(reference_dir / "sg2_64_tiny.pkl")


@pytest.fixture(scope="module")
def w(model):
    with torch.inference_mode():
        return model.mapping(torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(3)))


def transform(model, edits=None, **values):
    node = LayerTransform()
    params = {**node.values, **values}
    out = node.cook(CTX, {"model": model, "edits": edits}, params)
    return node, params, out["edits"]


def generate(model, w, edits=None):
    """Generate with the stored noise, as `model.synthesis` renders by default."""
    node = Generate()
    values = {**node.values, "noise_mode": "const"}
    return node.cook(CTX, {"model": model, "w": w, "edits": edits}, values)["image"]


def capture(model, w, layer, edits=None):
    with torch.inference_mode():
        return model.synthesis(w, layer_edits=edits, capture=layer)[1]


@pytest.mark.parametrize("values", [
    {"op": "rotate", "amount": 0.0}, {"op": "rotate", "amount": 360.0}, {"op": "translate"},
    {"op": "scale", "amount": 1.0}, {"op": "multiply", "amount": 1.0}, {"op": "dilate", "amount": 1.0},
    {"op": "ablate", "select": "random", "fraction": 0.0},
])
def test_identity_transforms_leave_the_image_bit_identical(model, w, values):
    node, _, edits = transform(model, target="8,16,64", **values)
    assert edits.edits == {} and node.status == ""
    assert torch.equal(generate(model, w, edits), generate(model, w))


def test_quarter_turn_on_one_layer_is_rot90_of_that_map(model, w):
    node, _, edits = transform(model, mode="advanced", target="b16.conv0", op="rotate", amount=90.0)
    assert list(edits.edits) == ["b16.conv0"] and node.status == "T: b16.conv0"
    plain = capture(model, w, "b16.conv0")
    assert torch.equal(capture(model, w, "b16.conv0", edits.edits), torch.rot90(plain, 1, dims=(2, 3)))
    assert not torch.equal(generate(model, w, edits), generate(model, w))


def ablated_channels(model, w, seed):
    _, _, edits = transform(model, mode="advanced", target="b32.conv1", op="ablate", select="random",
                            fraction=0.25, select_seed=seed)
    x = capture(model, w, "b32.conv1", edits.edits)
    return (x.abs().amax(dim=(0, 2, 3)) == 0).nonzero().flatten().tolist()


def test_random_channel_selection_is_reproducible_from_its_seed(model, w):
    first = ablated_channels(model, w, 7)
    assert len(first) == 32  # a quarter of 128
    assert ablated_channels(model, w, 7) == first
    assert ablated_channels(model, w, 8) != first


def test_plan_is_built_once_and_reused_until_an_op_parameter_changes(model):
    node, params, edits = transform(model, target="16", op="rotate", amount=30.0)
    edit = edits.edits["b16.conv0"]
    assert node.cook(CTX, {"model": model}, params)["edits"] is edits  # unchanged: the same object, nothing rebuilt
    for name, value in [("view", True), ("noise_strength", 0.5), ("view_channel", 4)]:
        params[name] = value
        out = node.cook(CTX, {"model": model}, params)["edits"]
        assert out.edits["b16.conv0"] is edit, name
    params["amount"] = 31.0
    assert node.cook(CTX, {"model": model}, params)["edits"].edits["b16.conv0"] is not edit


def test_layer_view_shows_the_captured_activation(model, w):
    node, _, edits = transform(model, mode="advanced", target="b16.conv1,b32.conv0", view=True,
                               view_channel=5, view_normalize="std")
    assert (edits.view, edits.view_channel, edits.view_normalize) == ("b16.conv1", 5, "std")
    assert node.status == "view: b16.conv1"
    image = generate(model, w, edits)
    activation = capture(model, w, "b16.conv1")
    assert activation.shape == (1, 128, 16, 16) and image.shape == (1, 3, 64, 64)
    assert torch.equal(image, activation_to_image(activation, 5, "std", (64, 64)))
    assert torch.equal(image[..., ::4, ::4], (activation[:, 5:8] - activation[:, 5:8].mean(dim=(2, 3), keepdim=True))
                       / activation[:, 5:8].std(dim=(2, 3), keepdim=True) / 3)


def test_stacked_transforms_chain_and_noise_overrides_reach_generate(model, w):
    _, _, first = transform(model, mode="advanced", target="b16.conv0", op="rotate", amount=90.0)
    node, _, both = transform(model, first, mode="advanced", target="b16.conv0 b64.conv0", op="rotate",
                              amount=90.0, noise_strength=0.0)
    assert node.status == "T: b16.conv0 b64.conv0 | N: b16.conv0 b64.conv0"
    assert both.noise == {"b16.conv0": 0.0, "b64.conv0": 0.0}
    plain = capture(model, w, "b16.conv0")
    assert torch.equal(capture(model, w, "b16.conv0", both.edits), torch.rot90(plain, 2, dims=(2, 3)))
    with torch.inference_mode():
        expected = model.synthesis(w, layer_edits=both.edits, layer_noise_scale=both.noise)
    assert torch.equal(generate(model, w, both), expected)
    assert not torch.equal(expected, model.synthesis(w, layer_edits=both.edits))


@pytest.mark.parametrize(("mode", "target", "named"), [
    ("simple", "16,128", "resolutions: 4, 8, 16, 32, 64"),
    ("simple", "b16.conv0", "resolutions: 4, 8, 16, 32, 64"),
    ("advanced", "b16.conv9", "layers: b4.conv1, b8.conv0, b8.conv1, b16.conv0"),
])
def test_a_bad_target_is_one_line_naming_the_choices(model, mode, target, named):
    with pytest.raises(NodeError) as err:
        transform(model, mode=mode, target=target)
    assert named in str(err.value) and "\n" not in str(err.value)


def test_a_target_without_a_model_or_a_foreign_wire_is_refused(model):
    node = LayerTransform()
    with pytest.raises(NodeError, match="connect a model"):
        node.cook(CTX, {}, dict(node.values))
    with pytest.raises(NodeError, match="EDITS wire"):
        node.cook(CTX, {"model": model, "edits": torch.zeros(1)}, dict(node.values))
    assert isinstance(node.cook(CTX, {"model": model}, dict(node.values))["edits"], LayerEdits)
