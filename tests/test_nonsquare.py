"""Non-square StyleGAN2 (Autolume's `init_res` [h0, w0]) through loading, rendering, edits, mixing and outputs.

The reference vectors are Autolume's 48x64 model and its square pruned model; a tiny random
[4, 7] model made here checks another aspect ratio and every size that depends on it.
"""

from __future__ import annotations

import json
import math
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from generator_graph import add
from ndi_support import connect_receiver, find_url, receive
from PIL import Image

from autolume_graph.cli import main
from autolume_graph.gan.default_model import make_random_model
from autolume_graph.gan.edits import LayerEdits
from autolume_graph.gan.family import family_for_record
from autolume_graph.gan.generate import render_seed, to_uint8
from autolume_graph.gan.layer_ops import KINDS, OpSpec, build_edit
from autolume_graph.gan.loader import load_model
from autolume_graph.gan.model import ModelFileError, check_settings
from autolume_graph.gan.safe_format import load_safe_model, save_model
from autolume_graph.gan.safe_pickle import read_generator
from autolume_graph.gan.stylegan2 import build_from_settings, make_settings
from autolume_graph.graph import Edge, Graph
from autolume_graph.node import CookContext, NodeError
from autolume_graph.osc.oscquery import OSCQueryServer, image_size_info
from autolume_graph.runtime import Runtime
from autolume_graph.serialize import load_graph, save_graph
from nodes.generate import Generate
from nodes.layer_transform import LayerTransform
from nodes.model_mix import ModelMix

torch.set_grad_enabled(False)
CTX = CookContext()
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
CASES = sorted(p.stem for p in (REFERENCE / "autolume_48x64").glob("*.npz")) or ["absent"]
SMALL = {"z_dim": 32, "w_dim": 32, "mapping_layers": 2, "channel_base": 256, "channel_max": 16}
WIDE = (4, 7)  # 16:9-ish, as Autolume makes from 1080x1920 footage


@pytest.fixture(scope="module")
def autolume(reference_dir: Path):
    return load_model(reference_dir / "autolume_48x64.pkl")


@pytest.fixture(scope="module")
def wide():
    """A tiny 32 px [4, 7] generator: 32 x 56 pictures."""
    return make_random_model(make_settings(32, init_res=WIDE, **SMALL), seed=11)


@pytest.fixture(scope="module")
def wide_w(wide):
    return wide.mapping(torch.randn(1, wide.z_dim, generator=torch.Generator().manual_seed(2)))


def _uint8_reference(img: np.ndarray) -> np.ndarray:
    """The README's conversion: (x * 127.5 + 128) clamped to 0..255, truncated, HWC."""
    return np.clip(img[0].transpose(1, 2, 0) * 127.5 + 128, 0, 255).astype(np.uint8)


def _check_case(model, data, key: str) -> None:
    img = render_seed(model, int(data["seed"]), float(data["truncation_psi"]), str(data["noise_mode"]))
    want = data[key]
    assert img.shape == want.shape
    assert np.abs(img.numpy() - want).max() <= 1e-3
    want_uint8 = data["img_uint8"] if key == "img" else _uint8_reference(want)
    assert (to_uint8(img) == want_uint8).all(axis=-1).mean() >= 0.999


# --- numerics against Autolume's own renders ----------------------------------------------
@pytest.mark.parametrize("name", ["autolume_48x64", "autolume_pruned_64"])
@pytest.mark.parametrize("network, key", [("G_ema", "img"), ("G", "img_G")])
@pytest.mark.parametrize("case", CASES)
def test_autolume_reference_cases(reference_dir: Path, name: str, network: str, key: str, case: str) -> None:
    model = _loaded(reference_dir / f"{name}.pkl", network)
    _check_case(model, np.load(reference_dir / name / f"{case}.npz"), key)


_LOADED: dict[tuple[Path, str], object] = {}


def _loaded(path: Path, network: str):
    """Each (file, network) loaded once for all its cases."""
    if (path, network) not in _LOADED:
        _LOADED[path, network] = load_model(path, network=network)
    return _LOADED[path, network]


def test_autolume_model_reports_its_shape(autolume, reference_dir: Path) -> None:
    assert autolume.img_size == (48, 64) and autolume.size_label == "64x48 px"
    assert autolume.settings()["synthesis"]["init_res"] == [3, 4]
    synthesis = autolume.synthesis
    assert tuple(synthesis.b4.const.shape[1:]) == (3, 4)
    assert tuple(synthesis.b8.conv0.noise_const.shape) == (6, 8)
    assert tuple(synthesis.b64.conv1.noise_const.shape) == (48, 64)
    trained = _loaded(reference_dir / "autolume_48x64.pkl", "G")
    assert trained.load_note == "" and trained.img_size == (48, 64)
    assert not torch.equal(trained.synthesis.b4.conv1.weight, synthesis.b4.conv1.weight)  # G is not G_ema


# --- the tiny [4, 7] model: every shape from init_res -------------------------------------
def test_wide_model_shapes_follow_init_res(wide, wide_w) -> None:
    assert wide.img_size == (32, 56) and wide.img_resolution == 32
    assert tuple(wide.synthesis.b4.const.shape[1:]) == (4, 7)
    for info in wide.layer_info():
        block = getattr(wide.synthesis, info.name.split(".")[0])
        conv = getattr(block, info.name.split(".")[1])
        want = (info.resolution * 4 // 4, info.resolution * 7 // 4)
        assert tuple(conv.noise_const.shape) == want, info.name
        assert tuple(wide.synthesis(wide_w, capture=info.name)[1].shape[2:]) == want, info.name
    for mode in ("const", "random", "none"):
        assert wide.synthesis(wide_w, noise_mode=mode, noise_seed=3).shape == (1, 3, 32, 56)
    one = wide.synthesis(wide_w, noise_mode="random", noise_seed=3)
    assert torch.equal(one, wide.synthesis(wide_w, noise_mode="random", noise_seed=3))
    assert not torch.equal(one, wide.synthesis(wide_w, noise_mode="random", noise_seed=4))


def test_plain_and_fast_paths_agree_on_a_wide_model(wide, wide_w) -> None:
    fast = wide.synthesis(wide_w, noise_mode="const")
    wide.synthesis.fast = False
    try:
        plain = wide.synthesis(wide_w, noise_mode="const")
    finally:
        wide.synthesis.fast = True
    assert (fast - plain).abs().max() < 1e-4


def test_per_layer_noise_on_a_wide_model(wide, wide_w) -> None:
    base = wide.synthesis(wide_w)
    quiet = wide.synthesis(wide_w, layer_noise_scale={"b16.conv1": 0.0})
    assert quiet.shape == base.shape and not torch.equal(quiet, base)
    assert torch.equal(wide.synthesis(wide_w, noise_scale=0.0), wide.synthesis(wide_w, noise_mode="none"))


def test_wide_model_round_trips_through_our_format(wide, wide_w, tmp_path: Path) -> None:
    path = save_model(wide, tmp_path / "wide.safetensors")
    again = load_safe_model(path)
    assert again.settings() == wide.settings() and again.img_size == (32, 56)
    assert all(torch.equal(a, b) for a, b in zip(wide.state_dict().values(), again.state_dict().values(),
                                                  strict=True))
    assert torch.equal(again.synthesis(wide_w), wide.synthesis(wide_w))
    assert load_model(path).img_size == (32, 56)


def test_square_settings_without_init_res_still_build() -> None:
    settings = make_settings(16, **SMALL)
    del settings["synthesis"]["init_res"]  # as files saved before init_res existed
    assert build_from_settings(settings).img_size == (16, 16)


@pytest.mark.parametrize("bad", [[3], [0, 4], [3, 4, 5], "34", [3.0, 4]])
def test_malformed_init_res_is_refused(bad) -> None:
    settings = make_settings(16, **SMALL)
    settings["synthesis"]["init_res"] = bad
    with pytest.raises(ModelFileError, match="init_res"):  # out of bounds: the check; any other: the build
        check_settings(settings)
        build_from_settings(settings)


def test_feature_map_bound_counts_init_res() -> None:
    layer = {"blocks": [{"resolution": 4096, "out_channels": 64}]}  # 64 x 4096^2 = the bound exactly
    check_settings(layer)
    check_settings({**layer, "init_res": [4, 4]})
    with pytest.raises(ModelFileError, match="64 x 4096 x 8192"):
        check_settings({**layer, "init_res": [4, 8]})


# --- LayerTransform on non-square maps ------------------------------------------------------
def _inverse_mapped(x: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Reference resample, per pixel: each output pixel centre (about the map centre, x right, y down)
    mapped back through inv(forward) and read bilinearly, zero outside the map."""
    _, _, h, w = x.shape
    inv = np.linalg.inv(forward)
    out = np.zeros_like(x)
    for i in range(h):
        for j in range(w):
            u, v = j + 0.5 - w / 2, i + 0.5 - h / 2
            su, sv = inv[0, 0] * u + inv[0, 1] * v, inv[1, 0] * u + inv[1, 1] * v
            sx, sy = su + w / 2 - 0.5, sv + h / 2 - 0.5  # source position in pixel indices
            x0, y0 = math.floor(sx), math.floor(sy)
            for yy, xx, weight in ((y0, x0, (1 - (sx - x0)) * (1 - (sy - y0))),
                                   (y0, x0 + 1, (sx - x0) * (1 - (sy - y0))),
                                   (y0 + 1, x0, (1 - (sx - x0)) * (sy - y0)),
                                   (y0 + 1, x0 + 1, (sx - x0) * (sy - y0))):
                if 0 <= yy < h and 0 <= xx < w:
                    out[:, :, i, j] += weight * x[:, :, yy, xx]
    return out


def _rotation(degrees: float) -> np.ndarray:
    """Counter-clockwise on screen with y down: (1, 0) (right) goes to (cos, -sin) (up at 90)."""
    a = math.radians(degrees)
    return np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])


@pytest.mark.parametrize("op, value, forward", [
    ("rotate", 30.0, _rotation(30.0)), ("rotate", 90.0, _rotation(90.0)), ("rotate", -135.0, _rotation(-135.0)),
    ("scale", 1.5, np.diag([1.5, 1.5])), ("scale", 0.6, np.diag([0.6, 0.6])),
])
def test_affine_ops_on_non_square_maps_match_per_pixel_inverse_mapping(op, value, forward) -> None:
    x = torch.randn(1, 3, 12, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = build_edit([OpSpec(op, value)])(x).numpy()
    assert got.shape == (1, 3, 12, 20)
    assert np.abs(got - _inverse_mapped(x.numpy(), forward)).max() < 1e-9


def test_quarter_turn_on_a_non_square_map_turns_about_its_centre() -> None:
    x = torch.zeros(1, 1, 12, 20, dtype=torch.float64)
    x[0, 0, 5:7, 14:16] = 1.0  # a blob right of the centre (rows 5-6 straddle it; columns 10+ are right)
    got = build_edit([OpSpec("rotate", 90.0)])(x)[0, 0]
    rows, cols = torch.nonzero(got > 0.5, as_tuple=True)
    assert set(cols.tolist()) == {9, 10} and set(rows.tolist()) == {0, 1}  # now above the centre, as far out


@pytest.mark.parametrize("op", KINDS)
def test_every_layer_op_runs_on_a_wide_model(wide, wide_w, op: str) -> None:
    node = LayerTransform()
    values = {**node.values, "target": "8,16", "op": op, "amount": {"rotate": 33.0, "scale": 1.4}.get(op, 3.0),
              "x": 0.25, "y": -0.1}
    edits = node.cook(CTX, {"model": wide}, values)["edits"]
    assert set(edits.edits) == {"b8.conv0", "b8.conv1", "b16.conv0", "b16.conv1"}
    generate = Generate()
    image = generate.cook(CTX, {"model": wide, "w": wide_w, "edits": edits}, dict(generate.values))["image"]
    assert image.shape == (1, 3, 32, 56) and torch.isfinite(image).all()
    assert not torch.equal(image, wide.synthesis(wide_w))


def test_layer_view_fills_the_non_square_picture(wide, wide_w) -> None:
    generate = Generate()
    edits = LayerEdits(view="b8.conv1")
    stored_noise = {**generate.values, "noise_mode": "const"}  # as synthesis renders by default
    image = generate.cook(CTX, {"model": wide, "w": wide_w, "edits": edits}, stored_noise)["image"]
    activation = wide.synthesis(wide_w, capture="b8.conv1")[1]
    assert activation.shape[2:] == (8, 14) and image.shape == (1, 3, 32, 56)
    shown = image[0, :, ::4, ::4]
    picked = activation[0, :3]
    lo, hi = picked.amin(dim=(1, 2), keepdim=True), picked.amax(dim=(1, 2), keepdim=True)
    assert torch.allclose(shown, (picked - lo) / (hi - lo) * 2 - 1, atol=1e-6)


# --- ModelMix -------------------------------------------------------------------------------
def _mix(node: ModelMix, a, b, **values):
    return node.cook(CTX, {"a": a, "b": b}, {**node.values, **values})


def test_wide_models_of_one_shape_mix(wide, wide_w) -> None:
    other = make_random_model(wide.settings(), seed=12)
    node = ModelMix()
    mixed = _mix(node, wide, other, crossfade=1.0)["model"]
    assert mixed.img_size == (32, 56) and node.status == "56x32 px"
    assert torch.equal(mixed.synthesis.b4.const, other.synthesis.b4.const)
    assert mixed.synthesis(wide_w).shape == (1, 3, 32, 56)


def test_dropping_a_resolution_keeps_the_aspect(wide, wide_w) -> None:
    small = make_random_model(make_settings(16, init_res=WIDE, **SMALL), seed=13)
    node = ModelMix()
    mixed = _mix(node, wide, small, mix={"32": "X"}, crossfade=1.0)["model"]
    assert mixed.img_size == (16, 28) and node.status == "28x16 px, 1 block(s) dropped"
    assert mixed.synthesis(wide_w[:, :mixed.num_ws]).shape == (1, 3, 16, 28)


def test_models_of_different_shapes_are_refused_naming_both(wide) -> None:
    square = make_random_model(make_settings(32, **SMALL), seed=14)
    with pytest.raises(NodeError, match=r"different shapes: A is 56x32 px, B is 32x32 px"):
        _mix(ModelMix(), wide, square)


# --- graphs and outputs at 48x64 ---------------------------------------------------------------
def _graph(reference_dir: Path, **seed_values) -> Graph:
    """ModelLoader(autolume_48x64) -> SeedLatent -> Mapping -> Generate -> Preview, the model not loaded yet."""
    graph = Graph()
    loader = add(graph, "ModelLoader", path=str(reference_dir / "autolume_48x64.pkl"), device="cpu")
    source = add(graph, "SeedLatent", **seed_values)
    mapping, preview = add(graph, "Mapping", psi=0.7), add(graph, "Preview")
    generate = add(graph, "Generate", noise_mode="const")  # the reference renders the stored noise
    for edge in (Edge(loader.id, "model", mapping.id, "model"), Edge(loader.id, "model", generate.id, "model"),
                 Edge(loader.id, "model", source.id, "model"),
                 Edge(source.id, "z", mapping.id, "latent"), Edge(mapping.id, "w", generate.id, "w"),
                 Edge(generate.id, "image", preview.id, "image")):
        graph.add_edge(edge)
    return graph


def _loaded_graph(graph: Graph) -> Graph:
    next(n for n in graph.nodes.values() if n.type_name == "ModelLoader").prepare("cpu")
    return graph


def _first_image(graph: Graph) -> torch.Tensor:
    runtime = Runtime(_loaded_graph(graph), fps=25, fixed_step=True)
    try:
        return runtime.step().published["preview"]
    finally:
        runtime.close()


def test_saved_and_reloaded_graph_renders_autolumes_picture(reference_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "wide.agraph"
    save_graph(_graph(reference_dir, seed=7.0), path)
    image = _first_image(load_graph(path))
    want = np.load(reference_dir / "autolume_48x64" / "seed0007_psi0.7_const.npz")["img"]
    assert image.shape == (1, 3, 48, 64)
    assert np.abs(image.numpy() - want).max() <= 1e-3




def test_ndi_frame_arrives_at_width_x_height(ndi, reference_dir: Path) -> None:
    graph = _loaded_graph(_graph(reference_dir, seed=3.0))
    generate = next(n for n in graph.nodes.values() if n.type_name == "Generate")
    node = add(graph, "NDIOut", sender_name="agtest-nonsquare")
    graph.add_edge(Edge(generate.id, "image", node.id, "image"))
    runtime = Runtime(graph, fps=25, fixed_step=True)
    try:
        runtime.step()
        assert node.error == "" and node.sender is not None
        recv = connect_receiver(ndi, find_url(ndi, node.sender.source_name()))
        try:
            got, _, _, _ = receive(ndi, recv, runtime.step, (48, 64))
        finally:
            ndi.recv_destroy(recv)
    finally:
        runtime.close()
    assert got.shape[:2] == (48, 64)  # receive() waited for yres 48, xres 64


def _decoded_size(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24").shape


def test_recorder_node_writes_a_48x64_video(reference_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOLUME_WORKDIR", str(tmp_path))
    graph = _loaded_graph(_graph(reference_dir, anim=True))
    generate = next(n for n in graph.nodes.values() if n.type_name == "Generate")
    node = add(graph, "Recorder", path="wide.mp4", record=True)
    graph.add_edge(Edge(generate.id, "image", node.id, "image"))
    runtime = Runtime(graph, fps=20, fixed_step=True)
    try:
        for _ in range(4):
            runtime.step()
        node.set_value("record", False)
        for _ in range(2000):
            if node.status.startswith("saved"):
                break
            runtime.step()
    finally:
        runtime.close()
    assert node.status.startswith("saved"), node.error or node.status
    assert _decoded_size(tmp_path / "recordings" / "wide.mp4") == (48, 64, 3)


@pytest.mark.parametrize("size, decoded", [(None, (48, 64, 3)), ("63x47", (48, 64, 3)), ("50x30", (30, 50, 3))])
def test_offline_render_keeps_the_shape_and_pads_odd_sizes(reference_dir: Path, tmp_path: Path, size, decoded,
                                                           ) -> None:
    graph_path, out = tmp_path / "wide.agraph", tmp_path / "wide.mp4"
    save_graph(_graph(reference_dir, anim=True), graph_path)
    args = ["render", str(graph_path), "--seconds", "0.2", "--fps", "10", "--out", str(out)]
    assert main(args + (["--size", size] if size else [])) == 0
    assert _decoded_size(out) == decoded


def test_autolume_stylegan3_epochs_attribute_changes_nothing(reference_dir: Path) -> None:
    """Autolume's StyleGAN3 is NVIDIA's file plus an `epochs` attribute on the generator."""
    record = read_generator(reference_dir / "sg3t_64_tiny.pkl").record
    plain = family_for_record(record).build_from_record(record)
    record.attrs["epochs"] = 12.5
    model = family_for_record(record).build_from_record(record)
    z = torch.randn(1, model.z_dim, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model(z), plain(z)) and model.img_size == (64, 64)


def test_snapshot_png_is_width_x_height(reference_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOLUME_WORKDIR", str(tmp_path))
    graph = _loaded_graph(_graph(reference_dir, seed=1.0))
    generate = next(n for n in graph.nodes.values() if n.type_name == "Generate")
    node = add(graph, "Recorder", path="still.mp4", snapshot=True)
    graph.add_edge(Edge(generate.id, "image", node.id, "image"))
    runtime = Runtime(graph, fps=20, fixed_step=True)
    try:
        runtime.step()
    finally:
        runtime.close()
    [png] = (tmp_path / "recordings").glob("still*.png")
    assert Image.open(png).size == (64, 48)  # PIL: (width, height)


def test_oscquery_publishes_the_picture_size_read_only() -> None:
    server = OSCQueryServer(lambda: image_size_info(48, 64), osc_port=1338, port=0)
    server.start()
    try:
        host, port = server.address
        with urllib.request.urlopen(f"http://{host}:{port}/autolume/image", timeout=5) as reply:
            tree = json.loads(reply.read())
    finally:
        server.stop()
    width, height = tree["CONTENTS"]["width"], tree["CONTENTS"]["height"]
    assert (width["VALUE"], height["VALUE"]) == ([64], [48])
    assert width["ACCESS"] == height["ACCESS"] == 1 and width["TYPE"] == "i"
