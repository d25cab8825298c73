"""Latent nodes through the engine: seeds, vectors, loops with Perfect Loop over real UDP, AdjustInput."""

from __future__ import annotations

import socket
import time
from typing import Any

import numpy as np
import pytest
import torch
from osc_receiver import received

from autolume_graph.gan.latent import fractional_seed_z, random_directions, save_vector, seed_z
from autolume_graph.gan.latent_value import Latent
from autolume_graph.graph import Edge, Graph
from autolume_graph.node import CookContext, Node, NodeError, same_value
from autolume_graph.params import Input, Output, ParamType
from autolume_graph.registry import default_registry
from autolume_graph.runtime import Runtime
from autolume_graph.types import PortType

Z = 512


class Collect(Node):
    """Test sink: records (frame, value) each time its input changes."""

    sink = True
    inputs = {"value": Input(PortType.ANY)}

    def reset(self) -> None:
        self.received: list[tuple[int, Any]] = []

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        self.received.append((ctx.frame, inputs.get("value")))
        return {}


class Constant(Node):
    """Test source: a fixed value on an ANY wire (a w tensor, a model)."""

    outputs = {"value": Output(PortType.ANY)}

    def __init__(self, value: Any = None) -> None:
        super().__init__()
        self.value = value

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        return {"value": self.value}


def make(type_name: str, **values: Any) -> Node:
    node = default_registry().create(type_name)
    for name, value in values.items():
        node.set_value(name, value)
    return node


def wire(node: Node, port: str = "z", fps: float = 10.0) -> tuple[Runtime, Collect]:
    """`node.port` into a recording sink, on a fixed-step runtime."""
    graph = Graph()
    graph.add_node(node)
    sink = graph.add_node(Collect())
    graph.add_edge(Edge(node.id, port, sink.id, "value"))
    return Runtime(graph, fps=fps, fixed_step=True), sink


def z_of(latent: Latent) -> np.ndarray:
    """The single z of a one-term latent, as float64."""
    assert isinstance(latent, Latent) and len(latent.terms) == 1 and latent.terms[0].kind == "z"
    return latent.terms[0].value.double().numpy()


def cook(node: Node, frame: int = 0, fps: float = 10.0, inputs: dict | None = None, **overrides: Any) -> dict:
    """Cook a node outside a graph, as the scheduler would (params = values + overrides)."""
    ctx = CookContext(time=frame / fps, dt=1.0 / fps if frame else 0.0, frame=frame, fps=fps,
                      services={"publish": {}})
    return node.cook(ctx, inputs or {}, {**node.values, **overrides})


def unchanged(before: dict, after: dict) -> bool:
    """Whether the engine would see no change from `before` to `after` (the same objects or plain values)."""
    return before.keys() == after.keys() and all(same_value(before[k], after[k]) for k in before)


def cook_landed(node: Node, **kwargs: Any) -> dict:
    """Cook as frames would (triggers fire once) until the node's file reads have landed; the last outputs."""
    deadline = time.monotonic() + 10.0
    while True:
        out = cook(node, **kwargs)
        for name, param in node.params.items():
            if param.type is ParamType.TRIGGER:
                node.values[name] = False
        if not node.status.startswith("loading") or time.monotonic() > deadline:
            return out
        time.sleep(0.005)


def step_landed(runtime: Runtime, node: Node) -> None:
    """Step frames until `node`'s file reads and saves have landed (it says "loading"/"saving" meanwhile)."""
    deadline = time.monotonic() + 10.0
    runtime.step()
    while node.status.startswith(("loading", "saving")) and time.monotonic() < deadline:
        time.sleep(0.005)
        runtime.step()


# --- SeedLatent ----------------------------------------------------------------------------


def test_seed_latent_is_nvidia_seed_and_wraps():
    node = make("SeedLatent", seed=42)
    out = cook(node)
    np.testing.assert_allclose(z_of(out["z"]), np.random.RandomState(42).randn(1, Z), rtol=1e-6, atol=1e-6)
    assert out["z"].terms[0].project
    assert unchanged(out, cook(node))  # nothing changed: downstream does not recook
    wrapped = make("SeedLatent", seed=42 + 2**32)
    np.testing.assert_array_equal(z_of(cook(wrapped)["z"]), z_of(out["z"]))


def test_fractional_seed_halfway_is_the_blend():
    z = z_of(cook(make("SeedLatent", seed=3.5))["z"])
    expected = np.sqrt(0.5) * (seed_z(3, Z) + seed_z(4, Z))
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-5)


def test_seed_latent_through_mapping_is_reference_w(reference_dir):
    from autolume_graph.gan.loader import load_model

    model = load_model(reference_dir / "sg2_64_tiny.pkl")
    for seed, psi in ((42, 1.0), (1234, 0.7)):
        ref = np.load(reference_dir / "sg2_64_tiny" / f"seed{seed:04d}_psi{psi}_const.npz")
        latent = cook(make("SeedLatent", seed=seed), inputs={"model": model})["z"]
        mapping = make("Mapping", psi=psi)
        w = cook(mapping, inputs={"model": model, "latent": latent})["w"]
        np.testing.assert_allclose(w.numpy(), ref["w"], atol=1e-4)


def _seed_run(frames: int, changes: dict[int, dict[str, Any]] | None = None) -> list[float]:
    """The seed shown at each frame; checks the z sent out is that seed's z."""
    node = make("SeedLatent", seed=10, anim=True, speed=2.0)
    runtime, _ = wire(node, "seed")
    seeds = []
    for frame in range(frames):
        for name, value in (changes or {}).get(frame, {}).items():
            node.set_value(name, value)
        runtime.step()
        seeds.append(node.last_outputs["seed"])
        np.testing.assert_allclose(z_of(node.last_outputs["z"]), fractional_seed_z(seeds[-1], Z), atol=1e-6)
    return seeds


def test_seed_anim_follows_the_fixed_step_clock():
    seeds = _seed_run(12)
    assert seeds == _seed_run(12)  # offline renders repeat exactly
    np.testing.assert_allclose(seeds, [10 + 2.0 * k / 10 for k in range(12)], atol=1e-9)
    # a speed change bends the motion: no jump, the next step simply has the new size
    bent = _seed_run(8, {4: {"speed": -1.0}})
    np.testing.assert_allclose(np.diff(bent), [0.2, 0.2, 0.2, -0.1, -0.1, -0.1, -0.1], atol=1e-9)


def test_seed_anim_off_holds_and_resumes():
    seeds = _seed_run(8, {3: {"anim": False}, 6: {"anim": True}})
    np.testing.assert_allclose(seeds, [10.0, 10.2, 10.4, 10.4, 10.4, 10.4, 10.4, 10.6], atol=1e-9)


def test_drag_moves_the_seed_continuously():
    node = make("SeedLatent", seed=7, drag=100.0)  # the first drag value is a reference, not a jump
    runtime, _ = wire(node)
    zs, seeds = [], []
    for drag in (100.0, 100.05, 100.1, 100.15, 100.2):
        node.set_value("drag", drag)
        runtime.step()
        zs.append(z_of(node.last_outputs["z"]))
        seeds.append(node.last_outputs["seed"])
    np.testing.assert_allclose(seeds, [7.0, 7.05, 7.1, 7.15, 7.2], atol=1e-9)
    steps = [np.linalg.norm(b - a) for a, b in zip(zs, zs[1:], strict=False)]
    seed_gap = np.linalg.norm(seed_z(8, Z) - seed_z(7, Z))
    assert max(steps) < 0.1 * seed_gap  # small drags make small moves
    node.set_value("seed", 3.0)  # typing a seed shows that seed
    runtime.step()
    assert node.last_outputs["seed"] == 3.0


# --- VectorLatent --------------------------------------------------------------------------


class _Marker:
    """Pickles into a call that creates a file: proof of whether a loader unpickled anything."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_vector_latent_save_load_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOLUME_WORKDIR", str(tmp_path))
    node = make("VectorLatent", path=str(tmp_path / "vectors" / "v.npy"))
    runtime, _ = wire(node)
    runtime.step()
    first = node.values["vector"].copy()
    node.set_value("save", True)
    step_landed(runtime, node)
    assert node.status == f"saved {tmp_path / 'vectors' / 'v.npy'}"
    node.set_value("randomize", True)
    runtime.step()
    assert not np.array_equal(node.values["vector"], first)
    node.set_value("load", True)
    step_landed(runtime, node)
    assert node.error == ""
    np.testing.assert_array_equal(node.values["vector"], first)
    np.testing.assert_array_equal(z_of(node.last_outputs["z"]), first)


@pytest.mark.parametrize("bad", ["wrong_shape", "object_dtype", "truncated"])
def test_vector_latent_bad_file_keeps_vector(tmp_path, bad):
    marker = tmp_path / "marker"
    path = tmp_path / f"{bad}.npy"
    if bad == "wrong_shape":
        np.save(path, np.zeros((3, 7), np.float32))
    elif bad == "object_dtype":
        probe = tmp_path / "probe"
        np.save(tmp_path / "probe.npy", np.array([_Marker(str(probe))], dtype=object), allow_pickle=True)
        np.load(tmp_path / "probe.npy", allow_pickle=True)
        assert probe.exists()  # the payload really runs when unpickled
        np.save(path, np.array([_Marker(str(marker))], dtype=object), allow_pickle=True)
    else:
        save_vector(path, np.ones((1, Z), np.float32))
        path.write_bytes(path.read_bytes()[:-100])
    node = make("VectorLatent", path=str(path))
    runtime, sink = wire(node)
    runtime.step()
    before = node.values["vector"].copy()
    node.set_value("load", True)
    step_landed(runtime, node)
    assert node.error and "\n" not in node.error and str(path) in node.error
    np.testing.assert_array_equal(node.values["vector"], before)
    np.testing.assert_array_equal(z_of(node.last_outputs["z"]), before)
    assert len(sink.received) == 1  # the output never changed
    assert not marker.exists()


def test_vector_anim_is_smooth_and_repeatable():
    start = seed_z(5, Z).astype(np.float32)

    def run() -> list[np.ndarray]:
        node = make("VectorLatent", anim=True, speed=1.0)
        node.set_value("vector", start)
        runtime, _ = wire(node)
        out = []
        for _ in range(30):
            runtime.step()
            out.append(z_of(node.last_outputs["z"]))
        return out

    path = run()
    np.testing.assert_array_equal(np.stack(path), np.stack(run()))
    np.testing.assert_allclose(path[0], start, atol=1e-6)  # starts where the vector was
    steps = [np.linalg.norm(b - a) for a, b in zip(path, path[1:], strict=False)]
    assert max(steps) < 0.25 * np.linalg.norm(path[-1] - path[0])  # no jumps on the way
    assert abs(np.stack(path).std() - 1.0) < 0.1  # stays in distribution


# --- loops ---------------------------------------------------------------------------------


def _at(node: Node, alpha: float, **overrides: Any) -> Latent:
    return cook(node, use_alpha=True, alpha=alpha, **overrides)["z"]


def _blend(latent: Latent) -> np.ndarray:
    """The latent's terms summed linearly: continuous exactly when its coefficients are."""
    return sum(t.coef * t.value.double().reshape(1, -1).numpy() for t in latent.terms)


@pytest.mark.parametrize("setup", [
    ("NoiseLoop", {"seed": 3, "radius": 0.8}),
    ("KeyframeLoop", {"count": 5}),
    ("KeyframeLoop", {"keyframes": [{"seed": 0}, {"seed": 1, "project": False}, {"seed": 2}]}),
])
def test_loops_are_seamless_at_the_wrap(setup):
    type_name, values = setup
    eps = 1e-4  # the Z wire carries float32: smaller steps measure rounding, not velocity

    def path(alpha: float) -> np.ndarray:
        return _blend(_at(make(type_name, **values), alpha))

    np.testing.assert_allclose(path(0.0), path(1.0), atol=1e-7)
    v_start = (path(eps) - path(0.0)) / eps
    v_end = (path(1.0) - path(1.0 - eps)) / eps
    assert np.linalg.norm(v_start) > 1.0
    assert np.linalg.norm(v_end - v_start) / np.linalg.norm(v_start) < 1e-2  # a kink would be O(1)


def test_keyframe_loop_passes_through_keyframes():
    node = make("KeyframeLoop", count=4, keyframes=[{"seed": 9}])
    for i, seed in enumerate((9, 1, 2, 3)):  # missing entries are seeds i
        np.testing.assert_allclose(z_of(_at(node, i / 4)), seed_z(seed, Z), atol=1e-5)
    np.testing.assert_allclose(z_of(_at(node, 0.0, index=2)), seed_z(2, Z), atol=1e-5)
    mixed = make("KeyframeLoop", keyframes=[{"seed": 0}, {"seed": 1, "project": False}, {"seed": 2}], count=3)
    latent = _at(mixed, 1 / 3)
    assert [(t.coef, t.project) for t in latent.terms] == [(1.0, False)]
    mid = _at(mixed, 0.5)
    assert {t.project for t in mid.terms} == {True, False}
    assert abs(sum(t.coef for t in mid.terms) - 1.0) < 1e-9  # spline weights: a partition of unity


def test_keyframe_loop_bad_vector_is_a_node_error(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(5, np.float32))
    node = make("KeyframeLoop", keyframes=[{"seed": 0}, {"vector": str(bad)}], count=2)
    with pytest.raises(NodeError, match="bad.npy"):
        cook_landed(node, use_alpha=True, alpha=0.0)
    with pytest.raises(NodeError, match="bad.npy"):  # held, not read again, until keyframes are set again
        _at(node, 0.0)
    good = tmp_path / "good.npy"
    save_vector(good, seed_z(77, Z))
    node.set_value("keyframes", [{"seed": 0}, {"vector": str(good)}])
    np.testing.assert_allclose(z_of(cook_landed(node, use_alpha=True, alpha=0.5)["z"]), seed_z(77, Z), atol=1e-5)


def _loop_frames(node: Node, receiver: socket.socket, frames: int, fps: float) -> tuple[list[int], Collect]:
    node.set_value("perfect_loop", True)
    node.set_value("osc_port", receiver.getsockname()[1])
    node.set_value("osc_address", "/test/loop")
    runtime, sink = wire(node, "alpha", fps)
    pulsed = []
    for _ in range(frames):
        snapshot = runtime.step()
        for message in received(receiver):
            assert message.address == "/test/loop" and message.params == [1]
            pulsed.append(snapshot.frame)
    runtime.close()
    return pulsed, sink


@pytest.mark.parametrize("type_name,seconds,fps", [("NoiseLoop", 1.1, 10.0), ("KeyframeLoop", 0.5, 12.0)])
def test_perfect_loop_pulses_once_per_cycle(receiver, type_name, seconds, fps):
    node = make(type_name, time=seconds)
    assert node.cycle_seconds(node.values) == seconds
    period = round(seconds * fps)
    pulsed, sink = _loop_frames(node, receiver, 4 * period + 2, fps)
    assert pulsed == [period, 2 * period, 3 * period, 4 * period]
    alphas = dict(sink.received)
    assert alphas[period] == 0.0 and alphas[period - 1] == pytest.approx(1 - 1 / period)


def test_stop_after_one_holds_at_the_start(receiver):
    node = make("NoiseLoop", time=0.5, stop_after_one=True)
    pulsed, sink = _loop_frames(node, receiver, 15, 10.0)
    assert pulsed == [5]
    assert [frame for frame, _ in sink.received] == [0, 1, 2, 3, 4, 5]  # nothing changes after the hold
    assert sink.received[-1][1] == 0.0
    np.testing.assert_array_equal(z_of(node.last_outputs["z"]), z_of(_at(make("NoiseLoop"), 0.0)))
    assert not node.animating(node.values)


# --- AdjustInput ---------------------------------------------------------------------------

NUM_WS = 4


def _w() -> torch.Tensor:
    return torch.randn(1, NUM_WS, Z, generator=torch.Generator().manual_seed(0))


def test_adjust_input_zero_sliders_pass_w_through():
    w = _w()
    node = make("AdjustInput")
    assert cook(node, inputs={"w": w})["w"] is w
    assert cook(node, inputs={"w": w})["w"] is w


def test_adjust_input_moves_along_one_direction():
    w = _w()
    node = make("AdjustInput", direction_seed=7, slider2=1.5)
    out = cook(node, inputs={"w": w})["w"]
    direction = random_directions(16, Z, 7)[2]
    expected = w.numpy() + 1.5 * direction[None, None, :]
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)
    assert np.linalg.norm(out.numpy() - w.numpy(), axis=-1) == pytest.approx(np.full((1, NUM_WS), 1.5), abs=1e-4)
    node.set_value("slider2", 1.5 + 0.0)  # same value: no change reported
    assert cook(node, inputs={"w": w})["w"] is out


def test_adjust_input_directions_reproducible_from_seed():
    w = _w()
    a, b, c = make("AdjustInput", direction_seed=3), make("AdjustInput", direction_seed=3), make("AdjustInput")
    for node in (a, b, c):
        cook(node, inputs={"w": w})
    np.testing.assert_array_equal(a.values["directions"], b.values["directions"])
    assert not np.allclose(a.values["directions"], c.values["directions"])
    c.set_value("direction_seed", 3)
    cook(c, inputs={"w": w})
    np.testing.assert_array_equal(c.values["directions"], a.values["directions"])


def test_adjust_input_loads_directions_and_rejects_bad_files(tmp_path):
    w = _w()
    node = make("AdjustInput", slider0=2.0)
    cook(node, inputs={"w": w})
    components = np.eye(3, Z, dtype=np.float32) * 5.0
    np.savez(tmp_path / "ganspace.npz", lat_comp=components[:, None, :])
    node.set_value("directions_path", str(tmp_path / "ganspace.npz"))
    out = cook_landed(node, inputs={"w": w})["w"]
    np.testing.assert_allclose(out.numpy() - w.numpy(), np.broadcast_to(2.0 * np.eye(1, Z), (1, NUM_WS, Z)),
                               atol=1e-5)
    before = node.values["directions"].copy()
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    node.set_value("directions_path", str(bad))
    with pytest.raises(NodeError, match="bad.npy"):
        cook_landed(node, inputs={"w": w})
    np.testing.assert_array_equal(node.values["directions"], before)
    assert node.status.startswith("failed: ") and "bad.npy" in node.status  # shown while the sliders work on
    assert cook(node, inputs={"w": w}, slider0=1.0)["w"] is not None


def test_adjust_input_per_layer_slider_vector(tmp_path):
    w = _w()
    per_layer = np.zeros((NUM_WS, Z), np.float32)
    per_layer[1, 0] = per_layer[3, 1] = 10.0  # moves only layers 1 and 3
    save_vector(tmp_path / "v.npy", per_layer)
    node = make("AdjustInput", slider_vector_path=str(tmp_path / "v.npy"), slider_vector_index=4,
                load_slider_vector=True, slider4=1.0)
    out = cook_landed(node, inputs={"w": w})["w"]
    delta = (out - w).numpy()[0]
    rms = np.sqrt(np.mean(np.sum(per_layer**2, axis=1)))
    np.testing.assert_allclose(delta, per_layer / rms, atol=1e-5)
    assert node.values["directions"].shape == (16, NUM_WS, Z)


def test_adjust_input_in_a_running_graph():
    graph = Graph()
    source = graph.add_node(Constant(_w()))
    adjust = graph.add_node(make("AdjustInput", slider0=1.0))
    sink = graph.add_node(Collect())
    graph.add_edge(Edge(source.id, "value", adjust.id, "w"))
    graph.add_edge(Edge(adjust.id, "w", sink.id, "value"))
    runtime = Runtime(graph, fps=10, fixed_step=True)
    for _ in range(3):
        runtime.step()
    assert len(sink.received) == 1 and adjust.error == ""
    adjust.set_value("slider0", 2.0)
    runtime.step()
    assert len(sink.received) == 2


def test_saved_graph_keeps_vector_and_directions(tmp_path):
    from autolume_graph.serialize import load_graph, save_graph

    components = tmp_path / "ganspace.npy"
    np.save(components, np.eye(2, Z, dtype=np.float32))
    graph = Graph()
    vector = graph.add_node(make("VectorLatent"))
    adjust = graph.add_node(make("AdjustInput", direction_seed=5, directions_path=str(components)))
    cook(vector)
    cook_landed(adjust, inputs={"w": _w()})
    save_graph(graph, tmp_path / "g.agraph")
    components.unlink()  # the saved graph must not need the file any more
    loaded = load_graph(tmp_path / "g.agraph", default_registry())
    vector2, adjust2 = loaded.node(vector.name), loaded.node(adjust.name)
    np.testing.assert_array_equal(z_of(cook(vector2)["z"]), vector.values["vector"])
    cook(adjust2, inputs={"w": _w()})
    np.testing.assert_array_equal(adjust2.values["directions"], adjust.values["directions"])
    np.testing.assert_array_equal(adjust2.values["directions"][:2], np.eye(2, Z))
