"""Fit, Blend, Color and Feedback against numpy references, and their pictures into the real outputs
(Preview, Recorder decoded back, NDIOut to a loopback receiver) on non-square sizes."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from generator_graph import add, generator_graph

from autolume_graph.graph import Edge, Graph
from autolume_graph.node import CookContext, Node, NodeError
from autolume_graph.outputs.errors import OutputError
from autolume_graph.outputs.frames import FrameConverter
from autolume_graph.outputs.ndi import load_runtime
from autolume_graph.registry import default_registry
from autolume_graph.runtime import Runtime

RNG = np.random.default_rng(21)


def _node(type_name: str, **values) -> Node:
    node = default_registry().create(type_name)
    for name, value in values.items():
        node.set_value(name, value)
    return node


def _cook(node: Node, **inputs) -> torch.Tensor:
    return node.cook(CookContext(), inputs, node.values)["image"]


def _image(h: int, w: int) -> np.ndarray:
    """A random [1, 3, h, w] picture in [-1, 1]."""
    return RNG.uniform(-1, 1, (1, 3, h, w)).astype(np.float32)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.copy())


def _unit(a: np.ndarray) -> np.ndarray:
    return (a + 1) / 2


def _blocks(a: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """Box average over fy x fx blocks: what area resampling by a whole factor is."""
    n, c, h, w = a.shape
    return a.reshape(n, c, h // fy, fy, w // fx, fx).mean(axis=(3, 5))


# --- Fit -----------------------------------------------------------------------------------
def test_fit_contain_letterboxes_with_the_background_colour() -> None:
    src = _image(48, 64)
    out = _cook(_node("Fit", width=32, height=32, mode="contain", resampling="area", r=1.0, g=0.5, b=0.0),
                image=_t(src)).numpy()
    assert out.shape == (1, 3, 32, 32)
    # scaled by 1/2 to 24 x 32, centred: bars of 4 rows above and below
    np.testing.assert_allclose(out[..., 4:28, :], _blocks(src, 2, 2), atol=1e-5)
    for bar in (out[..., :4, :], out[..., 28:, :]):
        np.testing.assert_allclose(bar[0, :, 0, 0], [1.0, 0.0, -1.0])
        assert np.ptp(bar, axis=(2, 3)).max() == 0


def test_fit_cover_crops_the_centre_and_stretch_fills() -> None:
    src = _image(48, 64)
    cover = _cook(_node("Fit", width=24, height=24, mode="cover", resampling="area"), image=_t(src)).numpy()
    np.testing.assert_allclose(cover, _blocks(src[..., :, 8:56], 2, 2), atol=1e-5)  # the middle 48 x 48
    stretch = _cook(_node("Fit", width=16, height=24, mode="stretch", resampling="area"), image=_t(src)).numpy()
    np.testing.assert_allclose(stretch, _blocks(src, 2, 4), atol=1e-5)


@pytest.mark.parametrize("mode", ["contain", "cover", "stretch"])
@pytest.mark.parametrize("size", [(1920, 1080), (17, 301), (64, 48)])
def test_fit_output_is_exactly_the_size_asked(mode: str, size: tuple[int, int]) -> None:
    width, height = size
    src = np.full((1, 3, 48, 64), 0.25, np.float32)
    out = _cook(_node("Fit", width=width, height=height, mode=mode), image=_t(src))
    assert tuple(out.shape) == (1, 3, height, width)
    if mode != "contain":
        np.testing.assert_allclose(out.numpy(), 0.25, atol=1e-5)  # resampling keeps a flat picture flat


def test_fit_returns_the_same_tensor_while_nothing_changes_and_bounds_its_size() -> None:
    node, src = _node("Fit", width=40, height=20), _t(_image(48, 64))
    first = _cook(node, image=src)
    assert _cook(node, image=src) is first
    node.set_value("mode", "cover")
    assert _cook(node, image=src) is not first
    for mode in ("contain", "cover", "stretch"):
        assert _cook(_node("Fit", width=64, height=48, mode=mode), image=src) is src  # that size already
    node.set_value("width", 10**6)
    assert node.values["width"] == 8192  # a side costs memory: it is bounded
    with pytest.raises(NodeError, match="connect an image"):
        node.cook(CookContext(), {}, node.values)


# --- Blend ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, op", [
    ("crossfade", lambda a, b: b),
    ("add", lambda a, b: a + b),
    ("multiply", lambda a, b: a * b),
    ("screen", lambda a, b: 1 - (1 - a) * (1 - b)),
    ("difference", lambda a, b: np.abs(a - b)),
])
def test_blend_modes_match_their_formulas(mode: str, op) -> None:
    a, b = _image(48, 64), _image(48, 64)
    out = _cook(_node("Blend", mode=mode, amount=0.3), a=_t(a), b=_t(b)).numpy()
    ua, ub = _unit(a), _unit(b)
    want = (ua + 0.3 * (op(ua, ub) - ua)) * 2 - 1
    np.testing.assert_allclose(out, want, atol=1e-5)


def test_blend_resizes_b_to_a_and_says_so() -> None:
    a, b = _image(48, 64), np.full((1, 3, 30, 30), 0.5, np.float32)
    node = _node("Blend", mode="crossfade", amount=0.5)
    out = _cook(node, a=_t(a), b=_t(b)).numpy()
    assert out.shape == (1, 3, 48, 64)
    np.testing.assert_allclose(out, (a + 0.5) / 2, atol=1e-5)
    assert "b resized 30x30 -> 64x48" in node.status


def test_blend_passes_a_through_untouched_where_b_does_nothing() -> None:
    a, b = _t(_image(48, 64)), _t(_image(48, 64))
    assert _cook(_node("Blend", amount=0.0), a=a, b=b) is a
    assert _cook(_node("Blend", mode="crossfade", amount=1.0), a=a, b=b) is b
    node = _node("Blend")
    assert _cook(node, a=a) is a and "b not connected" in node.status


# --- Color ---------------------------------------------------------------------------------
def test_color_at_its_defaults_is_the_input_itself() -> None:
    src = _t(_image(48, 64))
    assert _cook(_node("Color"), image=src) is src
    assert _cook(_node("Color", hue=180.0, saturation=1.0), image=src) is not src


def test_color_hue_120_turns_red_into_green() -> None:
    src = _image(48, 64)
    out = _cook(_node("Color", hue=120.0), image=_t(src)).numpy()
    np.testing.assert_allclose(out, src[:, [2, 0, 1]], atol=1e-5)  # a third of a turn: R -> G -> B -> R


def test_color_saturation_zero_is_rec709_luma() -> None:
    src = _image(48, 64)
    out = _unit(_cook(_node("Color", saturation=0.0), image=_t(src)).numpy())
    u = _unit(src)
    luma = 0.2126 * u[:, 0] + 0.7152 * u[:, 1] + 0.0722 * u[:, 2]
    for c in range(3):
        np.testing.assert_allclose(out[:, c], luma, atol=1e-5)


def test_color_levels_then_contrast_and_brightness() -> None:
    src = _image(48, 64)
    node = _node("Color", in_black=0.2, in_white=0.8, gamma=2.0, out_black=0.1, out_white=0.9,
                 contrast=1.5, brightness=0.1)
    out = _unit(_cook(node, image=_t(src)).numpy())
    x = np.clip((_unit(src) - 0.2) / 0.6, 0, 1) ** 0.5 * 0.8 + 0.1
    np.testing.assert_allclose(out, (x - 0.5) * 1.5 + 0.5 + 0.1, atol=1e-5)


# --- Feedback ------------------------------------------------------------------------------
def test_feedback_max_keeps_the_decayed_past() -> None:
    node, a = _node("Feedback", mode="max", decay=0.5), _image(48, 64)
    first = _cook(node, image=_t(a))
    np.testing.assert_array_equal(first.numpy(), a)
    black = np.full_like(a, -1.0)
    out = _cook(node, image=_t(black)).numpy()
    np.testing.assert_allclose(out, _unit(a) * 0.5 * 2 - 1, atol=1e-5)
    again = _cook(node, image=_t(black)).numpy()
    np.testing.assert_allclose(again, _unit(a) * 0.25 * 2 - 1, atol=1e-5)


def test_feedback_mix_moves_the_past_each_frame() -> None:
    node, a = _node("Feedback", mode="mix", decay=0.75, translate_x=0.25), _image(48, 64)
    _cook(node, image=_t(a))
    b = _image(48, 64)
    out = _unit(_cook(node, image=_t(b)).numpy())
    moved = np.zeros_like(a)  # moved right by 16 of 64 pixels; black comes in from the left
    moved[..., 16:] = _unit(a)[..., :48]
    np.testing.assert_allclose(out, 0.25 * _unit(b) + 0.75 * moved, atol=1e-4)


def test_feedback_resets_on_a_new_size_and_rests_at_decay_zero() -> None:
    node = _node("Feedback", decay=0.9)
    assert node.animating(node.values)
    _cook(node, image=_t(_image(48, 64)))
    small = _image(32, 32)
    np.testing.assert_array_equal(_cook(node, image=_t(small)).numpy(), small)  # no past of another size
    node.set_value("decay", 0.0)
    assert not node.animating(node.values)
    src = _t(small)
    assert _cook(node, image=src) is src


# --- on the GPU ----------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("type_name, values, sizes", [
    ("Fit", {"mode": "contain", "r": 0.2}, {"image": (270, 480)}),
    ("Fit", {"mode": "cover", "width": 640, "height": 360, "resampling": "area"}, {"image": (1080, 1080)}),
    ("Blend", {"mode": "screen"}, {"a": (270, 480), "b": (64, 64)}),
    ("Color", {"hue": 33.0, "saturation": 1.4, "gamma": 1.7}, {"image": (270, 480)}),
    ("Feedback", {"zoom": 1.03, "rotate": 2.0, "translate_y": 0.01}, {"image": (270, 480)}),
])
def test_on_cuda_the_picture_matches_the_cpu_and_the_host_never_waits(type_name: str, values: dict,
                                                                       sizes: dict) -> None:
    from test_gpu import _host_never_waits

    frames = [{port: _t(_image(*size)) for port, size in sizes.items()} for _ in range(2)]
    on_cpu, on_gpu = _node(type_name, **values), _node(type_name, **values)
    want = [_cook(on_cpu, **frame) for frame in frames]
    moved = [{port: t.cuda() for port, t in frame.items()} for frame in frames]
    torch.cuda.synchronize()
    with _host_never_waits():
        got = [_cook(on_gpu, **frame) for frame in moved]  # the second: Feedback's past, cached weights
    for g, w in zip(got, want, strict=True):
        assert g.device.type == "cuda"
        torch.testing.assert_close(g.cpu(), w, atol=1e-4, rtol=0)


# --- into the outputs ----------------------------------------------------------------------
def _wire(graph: Graph, src: Node, dst: Node, src_port: str = "image", dst_port: str = "image") -> None:
    graph.add_edge(Edge(src.id, src_port, dst.id, dst_port))


def _generate(graph: Graph) -> Node:
    return next(n for n in graph.nodes.values() if n.type_name == "Generate")


def test_a_chain_of_all_four_reaches_the_preview(reference_dir: Path) -> None:
    graph = generator_graph(reference_dir, anim=True)
    generate = _generate(graph)
    color, feedback = add(graph, "Color", hue=45.0), add(graph, "Feedback", zoom=1.05)
    blend, fit = add(graph, "Blend", mode="screen"), add(graph, "Fit", width=96, height=40)
    shown = graph.add_node(default_registry().create("Preview"), name="fitted")
    for src, dst, dst_port in ((generate, color, "image"), (color, feedback, "image"), (feedback, blend, "a"),
                               (generate, blend, "b"), (blend, fit, "image"), (fit, shown, "image")):
        _wire(graph, src, dst, dst_port=dst_port)
    runtime = Runtime(graph, fps=30, fixed_step=True)
    try:
        pictures = [runtime.step().published["fitted"] for _ in range(3)]
    finally:
        runtime.close()
    assert all(n.error == "" for n in graph.nodes.values())
    assert all(tuple(p.shape) == (1, 3, 40, 96) and torch.isfinite(p).all() for p in pictures)
    assert not torch.equal(pictures[0], pictures[-1])


def test_fit_to_1920x1080_records_a_1920x1080_mp4(reference_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOLUME_WORKDIR", str(tmp_path))
    graph = generator_graph(reference_dir, anim=True)
    fit = add(graph, "Fit", width=1920, height=1080)
    recorder = add(graph, "Recorder", path="fit-{time}.mp4", record=True)
    _wire(graph, _generate(graph), fit)
    _wire(graph, fit, recorder)
    runtime = Runtime(graph, fps=30, fixed_step=True)
    try:
        for _ in range(3):
            runtime.step()
        recorder.set_value("record", False)
        deadline = time.monotonic() + 30
        while not recorder.status.startswith("saved") and time.monotonic() < deadline:
            runtime.step()
            time.sleep(0.01)
    finally:
        runtime.close()
    assert recorder.status.startswith("saved"), recorder.error or recorder.status
    [path] = (tmp_path / "recordings").glob("fit-*.mp4")
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 3 and all(f.shape == (1080, 1920, 3) for f in frames)


def test_fit_output_goes_out_over_ndi(reference_dir: Path) -> None:
    try:
        ndi = load_runtime()
    except OutputError as exc:
        pytest.skip(str(exc))
    from ndi_support import connect_receiver, find_url, receive

    graph = generator_graph(reference_dir, seed=2.0)
    fit = add(graph, "Fit", width=96, height=40, mode="cover")
    sender = add(graph, "NDIOut", sender_name="agtest-fit")
    _wire(graph, _generate(graph), fit)
    _wire(graph, fit, sender)
    runtime = Runtime(graph, fps=25, fixed_step=True)
    try:
        runtime.step()
        want = FrameConverter().convert(fit.last_outputs["image"]).bgra.copy()
        recv = connect_receiver(ndi, find_url(ndi, sender.sender.source_name()))
        try:
            got, *_ = receive(ndi, recv, runtime.step, (40, 96))
        finally:
            ndi.recv_destroy(recv)
    finally:
        runtime.close()
    assert got.shape[:2] == (40, 96)
    assert np.abs(got[..., :3].astype(np.int16) - want[..., :3]).mean() < 8


def test_output_window_shows_a_fit_larger_than_its_screen_and_a_new_size(reference_dir: Path) -> None:
    from ui_support import xvfb_display

    graph = generator_graph(reference_dir, anim=True)
    fit = add(graph, "Fit", width=1920, height=1080)
    window = add(graph, "OutputWindow", monitor=0, fullscreen=False)
    _wire(graph, _generate(graph), fit)
    _wire(graph, fit, window)
    runtime = Runtime(graph, fps=30, fixed_step=True)

    def shown() -> int:
        return 0 if window.window is None else window.window.shown

    def shows(width: int, height: int, after: int) -> bool:
        """Whether the window has shown two frames of this size since it had shown `after`."""
        runtime.step()
        time.sleep(0.02)
        return shown() >= after + 2 and fit.last_outputs["image"].shape[-2:] == (height, width)

    with xvfb_display("1280x720x24"):
        try:
            for width, height in ((1920, 1080), (96, 40)):
                fit.set_value("width", width)
                fit.set_value("height", height)
                after, deadline = shown(), time.monotonic() + 30
                while not shows(width, height, after) and time.monotonic() < deadline:
                    pass
                assert shows(width, height, after) and window.error == "", window.error or window.status
        finally:
            runtime.close()
