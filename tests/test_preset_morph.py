"""Preset morphs on a running show, asked for over real UDP OSC (`/autolume/preset NAME SECONDS`).

The show renders the tiny reference StyleGAN2 on the CPU; a frame hook records, on the render thread, what
every frame carried (parameter values, the latent, the model, the picture), so the tests read the morph
frame by frame: numbers pass through the values between, switches flip at the midpoint, latents slerp,
models crossfade, no frame is skipped, and a bad request is one line while the show goes on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pythonosc.udp_client import SimpleUDPClient

from autolume_graph.gan.latent_morph import morph_latent, slerp
from autolume_graph.gan.latent_value import Latent
from autolume_graph.gan.loader import load_model
from autolume_graph.gan.safe_format import SUFFIX, save_model
from autolume_graph.graph import Graph
from autolume_graph.morph import Morph, MorphError, blended, ease, morph_seconds
from autolume_graph.node import Node
from autolume_graph.params import Bool, Choice, Data, Float, Int, String
from autolume_graph.roles import Role
from autolume_graph.runtime import Runtime
from autolume_graph.session import Session
from autolume_graph.tempo.wires import Tempo
from tests.generator_graph import add, generator_graph

FPS = 30.0
MORPH_S = 1.5
WAIT_S = 60.0
STALL_S = 2.0  # generous: the longest a frame may take on a shared CPU while a morph runs


def show_graph(reference_dir: Path, model: str | Path | None = None, **values: Any) -> Graph:
    """The generator graph; `values` as {"node type.param": value}, `model` the loader's path."""
    graph = generator_graph(reference_dir, seed=1.0)
    by_type = {node.type_name: node for node in graph.nodes.values()}
    if model is not None:
        by_type["ModelLoader"].set_value("path", str(model))
    for key, value in values.items():
        type_name, param = key.split(".")
        by_type[type_name].set_value(param, value)
    return graph


class Frames:
    """A frame hook: what each frame the render thread made carried (read before the next frame's edits)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def __call__(self, rt: Runtime) -> None:
        nodes = {node.type_name: node for node in rt.graph.nodes.values()}
        self.rows.append({
            "frame": rt.snapshot.frame, "time": rt.clock.time, "graph": rt.graph, "wall": time.perf_counter(),
            "values": {(t, k): v for t, n in nodes.items() for k, v in n.values.items()},
            "z": nodes["SeedLatent"].last_outputs.get("z"), "model": nodes["ModelLoader"].last_outputs.get("model"),
            "status": nodes["ModelLoader"].status, "picture": "preview" in rt.snapshot.published,
        })

    def column(self, type_name: str, param: str) -> list[Any]:
        return [row["values"].get((type_name, param)) for row in self.rows]


@pytest.fixture
def show(tmp_path: Path, reference_dir: Path):
    """A running session with the generator graph, a presets folder, OSC on a free port, and a frame recorder."""
    session = Session(Runtime(show_graph(reference_dir), fps=FPS), osc_port=0, preset_dir=tmp_path / "presets")
    session.start_services()
    frames = Frames()
    session.runtime.frame_hooks.append(frames)
    session.runtime.start()
    try:
        yield session, frames, SimpleUDPClient(*session.osc_server.address)
    finally:
        session.close()


def until(condition, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def morph_and_wait(session: Session, frames: Frames, client: SimpleUDPClient, *args: Any) -> list[dict[str, Any]]:
    """Send /autolume/preset with `args`, wait for the preset's graph to run a few frames; the rows from the
    message on."""
    until(lambda: len(frames.rows) > 3, "the show to run")
    first, start_graph = len(frames.rows), session.runtime.graph
    client.send_message("/autolume/preset", list(args))
    until(lambda: session.runtime.graph is not start_graph and frames.rows[-1]["graph"] is session.runtime.graph
          and sum(row["graph"] is session.runtime.graph for row in frames.rows[first:]) > 3, "the preset to run")
    assert not session.errors, session.errors
    return frames.rows[first:]


def morph_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the old graph (the morph's frames), the last of the new one's dropped."""
    old = rows[0]["graph"]
    return [row for row in rows if row["graph"] is old]


def assert_no_frame_dropped(rows: list[dict[str, Any]]) -> None:
    """Every frame from the request on was made and published with a picture, none stalled."""
    numbers = [row["frame"] for row in rows]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "a frame was skipped"
    assert all(row["picture"] for row in rows), "a frame without a picture"
    gaps = np.diff([row["wall"] for row in rows])
    assert gaps.max() < STALL_S, f"a frame stalled {gaps.max():.2f} s"


def test_numbers_blend_switches_flip_at_the_midpoint_and_the_preset_holds(show, reference_dir: Path) -> None:
    session, frames, client = show
    target = show_graph(reference_dir, **{"Mapping.psi": 0.4, "Mapping.cutoff": 8, "Generate.noise": False,
                                          "Generate.noise_mode": "const"})
    session.presets.save("b", target)
    rows = morph_and_wait(session, frames, client, "b", MORPH_S)
    during = morph_rows(rows)
    psi = [r["values"][("Mapping", "psi")] for r in during]
    cutoff = [r["values"][("Mapping", "cutoff")] for r in during]
    noise = [r["values"][("Generate", "noise")] for r in during]
    modes = [r["values"][("Generate", "noise_mode")] for r in during]
    assert len(during) > 5, "the morph spread over frames"
    between = [p for p in psi if 0.4 < p < 1.0]
    assert len(between) >= 3, psi
    assert all(a >= b for a, b in zip(psi, psi[1:], strict=False)), "psi goes one way"
    assert all(isinstance(c, int) and 0 <= c <= 8 for c in cutoff) and any(0 < c < 8 for c in cutoff), cutoff
    flip = noise.index(False)
    assert 0 < flip < len(noise) and all(noise[:flip]) and not any(noise[flip:]), noise
    assert modes.index("const") == flip  # switches and choices flip together
    # the flip frame is the first whose blend passed the midpoint (psi halfway is 0.7)
    assert psi[flip] <= 0.7 + 1e-9 < psi[flip - 1]
    live = {node.type_name: node for node in session.runtime.graph.nodes.values()}
    assert live["Mapping"].values["psi"] == 0.4 and live["Generate"].values["noise_mode"] == "const"
    assert session.runtime.graph.nodes.keys() == target.nodes.keys()


def test_latents_slerp_and_no_frame_is_dropped(show, reference_dir: Path) -> None:
    session, frames, client = show
    session.presets.save("far", show_graph(reference_dir, **{"SeedLatent.seed": 7.0}))
    rows = morph_and_wait(session, frames, client, "far", MORPH_S)
    during = morph_rows(rows)
    after = [row for row in rows if row["graph"] is session.runtime.graph]
    start_z, end_z = during[0]["z"].terms[0].value, after[-1]["z"].terms[0].value
    assert not torch.allclose(start_z, end_z)
    seeds = [r["values"][("SeedLatent", "seed")] for r in during]
    jump = seeds.index(7.0)
    assert set(seeds[:jump]) == {1.0} and set(seeds[jump:]) == {7.0}, \
        "the seed is the preset's at once: the latent moves, not the seed number"
    middle = [r["z"] for r in during if r["z"] is not None]
    mids = [z.terms[0].value for z in middle if len(z.terms) == 1
            and not torch.allclose(z.terms[0].value, start_z) and not torch.allclose(z.terms[0].value, end_z)]
    assert len(mids) >= 3, "the latent passes through latents between"
    low, high = sorted((float(start_z.norm()), float(end_z.norm())))
    assert all(low - 1e-3 <= float(z.norm()) <= high + 1e-3 for z in mids), "slerp keeps the norm"
    halfway = min(mids, key=lambda z: abs(float((z - start_z).norm()) - float((z - end_z).norm())))
    assert float((halfway - start_z).norm()) > 1.0 and float((halfway - end_z).norm()) > 1.0
    assert_no_frame_dropped(rows)
    assert len(during) >= MORPH_S * FPS * 0.25, f"only {len(during)} frames in a {MORPH_S} s morph"


def perturbed_copy(reference_dir: Path, folder: Path) -> Path:
    """The tiny reference model with every weight moved: same architecture, another model (read anew: the
    running show's copy is in use on the render thread)."""
    other = load_model(reference_dir / "sg2_64_tiny.pkl", "cpu", cache=False)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for tensor in other.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn(tensor.shape, generator=generator) * 0.1)
    return save_model(other, folder / f"other{SUFFIX}")


def first_weight(model: Any) -> torch.Tensor:
    name = next(k for k in model.state_dict() if k.startswith("synthesis.") and "weight" in k)
    return model.state_dict()[name]


def test_models_of_one_architecture_crossfade(show, reference_dir: Path, tmp_path: Path) -> None:
    session, frames, client = show
    other = perturbed_copy(reference_dir, tmp_path)
    session.presets.save("other", show_graph(reference_dir, model=other))
    rows = morph_and_wait(session, frames, client, "other", MORPH_S)
    during = morph_rows(rows)
    old, new = during[0]["model"], rows[-1]["model"]
    assert old is not new
    wa, wb = first_weight(old), first_weight(new)
    mixed = [row for row in during if row["model"] is not old and row["model"] is not new]
    assert mixed, "the morph showed a crossfaded model"
    # each frame's weights lie on the line from the old model to the new one (recorded values are the
    # mix after that frame: compare the last one the mix wrote and the preset graph's model at the end)
    w = first_weight(mixed[-1]["model"])
    t = float(((w - wa) * (wb - wa)).sum() / ((wb - wa) ** 2).sum())
    assert 0.0 < t <= 1.0 and torch.allclose(w, torch.lerp(wa, wb, t), atol=1e-5)
    assert_no_frame_dropped(rows)  # while the preset's model loaded and the crossfade was built
    assert not any("switches at the midpoint" in row["status"] for row in during)


def test_a_morph_that_takes_over_a_crossfade_carries_it_on(show, reference_dir: Path, tmp_path: Path) -> None:
    session, frames, client = show
    other = perturbed_copy(reference_dir, tmp_path)
    session.presets.save("other", show_graph(reference_dir, model=other))
    session.presets.save("other-dim", show_graph(reference_dir, model=other, **{"Mapping.psi": 0.5}))
    until(lambda: len(frames.rows) > 3, "the show to run")
    start_graph, first_model = session.runtime.graph, frames.rows[-1]["model"]
    client.send_message("/autolume/preset", ["other", 30.0])
    until(lambda: frames.rows[-1]["model"] is not first_model, "the crossfade to start")
    # the same model as the morph it replaces: the loader's values no longer change, its crossfade goes on
    client.send_message("/autolume/preset", ["other-dim", 1.0])
    until(lambda: session.runtime.graph is not start_graph, "the second morph to end")
    rows = [row for row in frames.rows if row["graph"] is start_graph]
    assert not any("switches at the midpoint" in row["status"] for row in rows), "the crossfade went on"
    mixes = {id(row["model"]) for row in rows} - {id(first_model)}
    assert len(mixes) >= 2, "the second morph crossfaded from the first one's mix"
    until(lambda: frames.rows[-1]["graph"] is session.runtime.graph, "a frame of the preset")
    last_mix = next(row["model"] for row in reversed(rows) if row["model"] is not first_model)
    mix_w, start_w, end_w = (first_weight(m) for m in (last_mix, first_model, frames.rows[-1]["model"]))
    assert float((mix_w - end_w).norm()) < 0.1 * float((start_w - end_w).norm()), "it landed on the model"


def test_models_that_cannot_mix_switch_at_the_midpoint_with_a_note(show, reference_dir: Path) -> None:
    session, frames, client = show
    session.presets.save("sg3", show_graph(reference_dir, model=reference_dir / "sg3t_64_tiny.pkl"))
    rows = morph_and_wait(session, frames, client, "sg3", MORPH_S)
    during = morph_rows(rows)
    old = during[0]["model"]
    models = [row["model"] for row in during]
    switch = next(i for i, m in enumerate(models) if m is not old)
    assert all(m is not old for m in models[switch:]), "one switch, no going back"
    assert any("switches at the midpoint" in row["status"] for row in during)
    assert_no_frame_dropped(rows)


def test_another_shape_swaps_in_at_the_midpoint(show, reference_dir: Path) -> None:
    session, frames, client = show
    target = show_graph(reference_dir, **{"Mapping.psi": 0.4})
    add(target, "Constant", value=3.0)
    session.presets.save("bigger", target)
    rows = morph_and_wait(session, frames, client, "bigger", MORPH_S)
    during = morph_rows(rows)
    assert {row["values"][("Mapping", "psi")] for row in during} == {1.0}, "nothing blends across shapes"
    swapped = next(row for row in rows if row["graph"] is not rows[0]["graph"])
    assert swapped["time"] - during[0]["time"] >= MORPH_S * 0.5 - 1.0 / FPS


def test_no_time_switches_at_once_and_a_new_morph_takes_over(show, reference_dir: Path) -> None:
    session, frames, client = show
    session.presets.save("slow", show_graph(reference_dir, **{"Mapping.psi": 0.0}))
    session.presets.save("fast", show_graph(reference_dir, **{"Mapping.psi": 2.0}))
    until(lambda: len(frames.rows) > 3, "the show to run")
    start_graph = session.runtime.graph
    client.send_message("/autolume/preset", ["slow", 30.0])
    until(lambda: 0.0 < frames.rows[-1]["values"][("Mapping", "psi")] < 0.98, "the slow morph to move psi")
    client.send_message("/autolume/preset", ["fast", 0.5])
    until(lambda: session.runtime.graph is not start_graph, "the fast morph to end")
    psi = [row["values"][("Mapping", "psi")] for row in frames.rows if row["graph"] is start_graph]
    turn = int(np.argmin(psi))
    assert psi[turn] > 0.0 and all(a <= b for a, b in zip(psi[turn:], psi[turn + 1:], strict=False)), \
        "the fast morph started where the slow one was"
    assert {node.values.get("psi") for node in session.runtime.graph.nodes.values()} >= {2.0}
    fast_graph = session.runtime.graph
    client.send_message("/autolume/preset", ["slow"])  # no time: today's instant switch
    until(lambda: session.runtime.graph is not fast_graph, "the instant switch")
    assert not any(hook.__class__.__name__ == "Morph" for hook in session.runtime.frame_hooks)
    assert not session.errors, session.errors


def test_a_switch_during_a_morph_ends_it_where_it_was(show, reference_dir: Path) -> None:
    session, frames, _ = show
    until(lambda: len(frames.rows) > 3, "the show to run")
    morph = session.morph_to(show_graph(reference_dir, **{"Mapping.psi": 0.0, "SeedLatent.seed": 9.0}), 30.0)
    until(lambda: frames.rows[-1]["values"][("Mapping", "psi")] < 0.99, "the morph to move psi")
    assert session.runtime.scheduler.output_filters, "the latent is being blended"
    switched = session.switch_to(show_graph(reference_dir, **{"Mapping.psi": 2.0}))
    switched.result(timeout=WAIT_S)
    assert morph.result(timeout=WAIT_S) == "replaced"
    until(lambda: all(row["graph"] is session.runtime.graph for row in frames.rows[-3:]), "frames of the new graph")
    assert not any(isinstance(hook, Morph) for hook in session.runtime.frame_hooks)
    assert not session.runtime.scheduler.output_filters
    assert {row["values"][("Mapping", "psi")] for row in frames.rows[-3:]} == {2.0}, "the morph moves it no more"


def test_each_kind_of_parameter_has_its_rule() -> None:
    whole, level = Int(0, 0, 10), Float(0.0, 0.0, 1.0)
    assert blended(whole, 0, 10, 0.26) == 3 and blended(whole, 0, 10, 1.0) == 10
    assert blended(level, 0.0, 1.0, 0.25) == 0.25
    for param, start, end in ((Bool(False), False, True), (Choice("a", ("a", "b")), "a", "b"),
                              (Data(None), {"k": 1}, {"k": 2}), (String(""), "x", "y")):
        assert blended(param, start, end, 0.49) == start and blended(param, start, end, 0.5) == end


@pytest.mark.parametrize("args, expected", [
    ([42], "preset name as a string"),
    (["b", "soon"], "/autolume/preset NAME [TIME [seconds|beats]]"),
    (["b", 2.0, "bars"], "neither seconds nor beats"),
    (["b", -1.0], "/autolume/preset NAME [TIME [seconds|beats]]"),
    (["b", 2.0, "beats"], "needs a tempo"),
    (["b", 1e6], "longer than"),
])
def test_a_bad_request_is_one_line_and_the_show_goes_on(show, args: list, expected: str) -> None:
    session, frames, client = show
    until(lambda: len(frames.rows) > 3, "the show to run")
    start_graph, count = session.runtime.graph, len(frames.rows)
    client.send_message("/autolume/preset", args)
    until(lambda: "preset" in session.errors, "the error")
    assert expected in session.errors["preset"] and "\n" not in session.errors["preset"]
    until(lambda: len(frames.rows) > count + 10, "more frames")
    assert session.runtime.graph is start_graph and all(row["picture"] for row in frames.rows[count:])


def test_a_missing_preset_is_reported(show) -> None:
    session, frames, client = show
    until(lambda: len(frames.rows) > 3, "the show to run")
    client.send_message("/autolume/preset", ["nope", 1.0])
    until(lambda: "preset" in session.errors, "the error")
    assert "no preset named 'nope'" in session.errors["preset"]


class TempoStub(Node):
    """A node that follows a clock, as Link does: it holds its latest Tempo."""

    roles = frozenset({Role.TEMPO_SOURCE})

    def reset(self) -> None:
        self.tempo: Tempo | None = Tempo(bpm=120.0, beat=0.0)


def test_beats_are_read_at_the_tempo_of_the_graph() -> None:
    graph = Graph()
    assert morph_seconds((), graph) == 0.0 and morph_seconds((2.5,), graph) == 2.5
    assert morph_seconds((3, "s"), graph) == 3.0
    with pytest.raises(MorphError, match="needs a tempo"):
        morph_seconds((4, "beats"), graph)
    stub = graph.add_node(TempoStub())
    assert morph_seconds((4, "beats"), graph) == pytest.approx(2.0)
    stub.tempo = Tempo(bpm=90.0, beat=0.0)
    assert morph_seconds((3, "BEATS"), graph) == pytest.approx(2.0)


def test_slerp_keeps_the_norm_and_blends_mixed_latents() -> None:
    rng = np.random.default_rng(0)
    a, b = (torch.as_tensor(rng.standard_normal((1, 512)), dtype=torch.float32) for _ in range(2))
    for t in (0.25, 0.5, 0.75):
        mid = slerp(a, b, t)
        assert float(mid.norm()) == pytest.approx((1 - t) * float(a.norm()) + t * float(b.norm()), rel=1e-5)
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    assert torch.allclose(slerp(a, a, 0.3), a)
    w = Latent.of(rng.standard_normal((10, 512)), "w")
    blend = morph_latent(Latent.of(a), w, 0.25)
    assert [term.coef for term in blend.terms] == [0.75, 0.25] and blend.terms[1].kind == "w"
    assert ease(0.5) == 0.5 and ease(0.0) == 0.0 and ease(1.0) == 1.0


def test_every_node_that_sends_a_latent_morphs_it_along_the_sphere() -> None:
    """Latents slerp whichever node makes them: each latent source declares the role and the blend."""
    from autolume_graph.gan import wires
    from autolume_graph.registry import default_registry

    sources = {name: cls for name, cls in default_registry().types.items()
               if any(out.type == wires.LATENT for out in cls.outputs.values())}
    assert {"SeedLatent", "VectorLatent", "NoiseLoop", "KeyframeLoop"} <= set(sources)
    for name, cls in sources.items():
        assert Role.MORPHS_OUTPUTS in cls.roles and callable(getattr(cls, "morph_outputs", None)), name
