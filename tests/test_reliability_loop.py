"""Promise 1: nothing that comes in stops or freezes the frame loop, and no graph file writes or eats memory.

A real Runtime runs its render thread while commands, frame hooks, preset switches and OSC frame
rates (real UDP on 127.0.0.1) attack it; its frame counter must keep advancing. Graph files are real
files on disk; the memory of reading each hostile one is measured in its own child process.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
from engine_nodes import Clock, Sink, Source
from generator_graph import generator_graph
from pythonosc.udp_client import SimpleUDPClient

from autolume_graph.commands import SetParam
from autolume_graph.errors import UserError
from autolume_graph.graph import Edge, Graph, GraphError
from autolume_graph.node import PlaceholderNode
from autolume_graph.params import ParamType
from autolume_graph.presets import PresetFolder
from autolume_graph.registry import default_registry
from autolume_graph.runtime import MAX_FPS, PLAN, PRESET_SWITCH, FrameRateError, Runtime, bounded_fps
from autolume_graph.serialize import (
    DECODED_BYTES_BASE,
    DECODED_BYTES_PER_FILE_BYTE,
    MAX_NODES,
    SCHEMA,
    GraphFileError,
    load_graph,
    save_graph,
)
from autolume_graph.session import Session

FIXTURES = Path(__file__).parent / "fixtures"
# Stated bound of reading a graph file: the file's bytes, the decoded objects (at most
# DECODED_BYTES_PER_FILE_BYTE x size + DECODED_BYTES_BASE, checked before decoding) and slack for the allocator.
MEMORY_BOUND_PER_BYTE = DECODED_BYTES_PER_FILE_BYTE + 4
MEMORY_BOUND_BASE = DECODED_BYTES_BASE + 16 * 1024 * 1024


def frames_advance(runtime: Runtime, count: int = 3, timeout: float = 20.0) -> None:
    """Wait until the render thread has made `count` more frames."""
    start = runtime.snapshot.frame
    deadline = time.monotonic() + timeout
    while runtime.snapshot.frame < start + count:
        assert time.monotonic() < deadline, f"the frame counter stopped at {runtime.snapshot.frame} (was {start})"
        time.sleep(0.01)


def wait_until(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def cyclic_graph_through_a_placeholder() -> Graph:
    """What check_edge refuses, built by appending edges directly: a graph no plan exists for."""
    graph = Graph()
    future = graph.add_node(PlaceholderNode("FutureNode"), name="future")
    preview = graph.add_node(default_registry().create("Preview"), name="preview")
    graph.edges += [Edge(future.id, "image", preview.id, "image"), Edge(preview.id, "image", future.id, "in")]
    return graph


def test_the_render_thread_survives_commands_hooks_swaps_and_plans(reference_dir: Path, tmp_path: Path) -> None:
    graph = generator_graph(reference_dir, anim=True)
    runtime = Runtime(graph, fps=30)
    session = Session(runtime, osc=False, preset_dir=tmp_path)
    runtime.start()
    try:
        frames_advance(runtime)
        assert "preview" in runtime.snapshot.published

        # a command that raises, one the graph refuses, one that exits: each goes back to its submitter
        failing = [runtime.submit(lambda rt: 1 / 0), runtime.submit(SetParam("mapping", "nope", 1)),
                   runtime.submit(lambda rt: sys.exit(3))]
        frames_advance(runtime)
        assert [type(f.exception(timeout=5)) for f in failing] == [ZeroDivisionError, GraphError, SystemExit]

        # a frame hook that raises: listed as an engine error while it fails, cleared once it is gone
        def broken_hook(rt: Runtime) -> None:
            raise RuntimeError("hook broke")

        runtime.frame_hooks.append(broken_hook)
        frames_advance(runtime)
        assert "hook broke" in runtime.snapshot.engine_error
        report = io.StringIO()
        session.report_errors(report)
        assert "frame hooks: broken_hook: RuntimeError: hook broke" in report.getvalue()
        runtime.frame_hooks.remove(broken_hook)
        frames_advance(runtime)
        assert runtime.snapshot.engine_errors == {}

        # a preset switch to a graph that cannot be cooked: refused, the old graph keeps rendering
        session.switch_to(cyclic_graph_through_a_placeholder())
        wait_until(lambda: PRESET_SWITCH in runtime.snapshot.engine_errors, what="the refused switch")
        assert "cycle" in runtime.snapshot.engine_errors[PRESET_SWITCH]
        assert "cycle" in session.errors["preset"]
        assert runtime.graph is graph
        shown = runtime.snapshot.published["preview"]
        frames_advance(runtime)
        assert runtime.snapshot.published["preview"] is not shown  # the old graph animates on

        # the live graph stops planning (an edge appended past the checks): the last good plan renders
        generate, loader = graph.node("generate"), graph.node("modelloader")

        def close_a_cycle(rt: Runtime) -> None:
            rt.graph.edges.append(Edge(generate.id, "image", loader.id, "path"))
            rt.graph.structure_version += 1

        runtime.call(close_a_cycle)
        frames_advance(runtime)
        assert "cycle" in runtime.snapshot.engine_errors[PLAN]
        shown = runtime.snapshot.published["preview"]
        frames_advance(runtime)
        assert runtime.snapshot.published["preview"] is not shown

        def open_it_again(rt: Runtime) -> None:
            rt.graph.edges.pop()
            rt.graph.structure_version += 1

        runtime.call(open_it_again)
        frames_advance(runtime)
        assert PLAN not in runtime.snapshot.engine_errors
        assert runtime.running and not any(stat.error for stat in runtime.snapshot.nodes.values())
    finally:
        session.close()


def test_a_node_whose_bookkeeping_raises_is_a_node_error() -> None:
    class BrokenAnimating(Source):
        def animating(self, params: dict) -> bool:
            raise RuntimeError("animating broke")

    graph = Graph()
    broken, clock = graph.add_node(BrokenAnimating(), name="broken"), graph.add_node(Clock(), name="clock")
    sink, other = graph.add_node(Sink(), name="sink"), graph.add_node(Sink(), name="other")
    graph.add_edge(Edge(broken.id, "value", sink.id, "value"))
    graph.add_edge(Edge(clock.id, "value", other.id, "value"))
    runtime = Runtime(graph, fps=0)
    for _ in range(3):
        runtime.step()
    assert broken.error == "RuntimeError: animating broke"
    assert len(other.received) == 3


def test_frame_rates_over_real_udp_are_bounded_and_never_stall_the_loop(tmp_path: Path) -> None:
    graph = Graph()
    clock, sink = graph.add_node(Clock(), name="clock"), graph.add_node(Sink(), name="sink")
    graph.add_edge(Edge(clock.id, "value", sink.id, "value"))
    runtime = Runtime(graph, fps=30)
    session = Session(runtime, osc_host="127.0.0.1", osc_port=0, oscquery_port=0, preset_dir=tmp_path)
    session.start_services()
    client = SimpleUDPClient(*session.osc_server.address)
    runtime.start()

    def refusals() -> int:
        return session.mailbox.counts().get("bad-system-message", 0)

    def send(value: object) -> None:
        client.send_message("/autolume/fps", value)

    try:
        for value, applied in ((1e-6, 1.0), (1e-30, 1.0), (1e30, MAX_FPS), (float("nan"), None), (-5, None),
                               ("x", None), (float("inf"), None), ([], None)):
            before = refusals()
            send(value)
            if applied is None:
                wait_until(lambda before=before: refusals() > before, what=f"the refusal of {value!r}")
                assert runtime.target_fps == 30.0
            else:
                wait_until(lambda applied=applied: runtime.target_fps == applied, what=f"fps {value!r} applied")
            frames_advance(runtime, 2, timeout=10)
            send(30.0)  # read within a frame even at the slowest rate
            wait_until(lambda: runtime.target_fps == 30.0, timeout=5, what=f"fps 30 after {value!r}")
            start = runtime.snapshot.frame
            time.sleep(0.5)
            assert runtime.snapshot.frame - start >= 3, f"after /autolume/fps {value!r}: loop too slow"
        assert session.osc_server.running and runtime.running
    finally:
        session.close()


def test_frame_rates_are_validated_wherever_they_come_from() -> None:
    assert [bounded_fps(v) for v in (0, 1e-30, 0.5, 30, 1e9)] == [0.0, 1.0, 1.0, 30.0, MAX_FPS]
    for bad in (float("nan"), float("inf"), -1, "30", None, True):
        with pytest.raises(FrameRateError):
            bounded_fps(bad)
    with pytest.raises(UserError):  # the CLI prints it as one line
        Runtime(Graph(), fps=float("nan"))
    with pytest.raises(UserError):
        Runtime(Graph(), fps=0, fixed_step=True)


def _graph_file(nodes: dict, edges: list) -> bytes:
    return msgpack.packb({"format": "autolume-graph", "schema": SCHEMA, "nodes": nodes, "edges": edges})


def test_a_cycle_through_an_unknown_node_type_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "cycle.agraph"
    path.write_bytes(_graph_file(
        {"n1": {"type": "FutureNode", "name": "future"}, "n2": {"type": "Math", "name": "mix"}},
        [{"src": "n1", "src_port": "out", "dst": "n2", "dst_port": "a"},
         {"src": "n2", "src_port": "value", "dst": "n1", "dst_port": "in"}]))
    with pytest.raises(GraphFileError) as info:
        load_graph(path)
    assert "cycle" in str(info.value) and "\n" not in str(info.value)
    graph = Graph()  # the same edit in the editor is refused too
    future, mix = graph.add_node(PlaceholderNode("FutureNode")), graph.add_node(default_registry().create("Math"))
    graph.add_edge(Edge(future.id, "out", mix.id, "a"))
    with pytest.raises(GraphError, match="cycle"):
        graph.add_edge(Edge(mix.id, "value", future.id, "in"))
    out = subprocess.run([sys.executable, "-m", "autolume_graph.cli", "run", str(path), "--frames", "2", "--no-osc"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2 and "cycle" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def _fires(param) -> bool:
    return param.type is ParamType.TRIGGER or (param.writes and param.type is ParamType.BOOL)


def test_loading_a_graph_never_fires_a_trigger_or_a_writing_switch(tmp_path: Path) -> None:
    registry = default_registry()
    firing = {name: [p for p, param in cls.params.items() if _fires(param)] for name, cls in registry.types.items()}
    assert any(firing.values())
    path = tmp_path / "all.agraph"
    path.write_bytes(_graph_file({f"n{i}": {"type": name, "params": dict.fromkeys(params, True)}
                                  for i, (name, params) in enumerate(sorted(firing.items()))}, []))
    for node in load_graph(path).nodes.values():
        for name in firing[node.type_name]:
            assert node.values[name] is False, (node.type_name, name)


def test_a_graph_file_that_says_save_writes_nothing_when_run(reference_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLUME_WORKDIR", str(tmp_path))
    victim = tmp_path / "victim.npy"
    victim.write_bytes(b"keep")
    graph = generator_graph(reference_dir, "VectorLatent")
    vector = graph.node("vectorlatent")
    vector.values.update(save=True, path=str(victim))
    save_graph(graph, tmp_path / "show.agraph")
    assert msgpack.unpackb((tmp_path / "show.agraph").read_bytes())["nodes"][vector.id]["params"]["save"] is True
    loaded = load_graph(tmp_path / "show.agraph")
    for node in loaded.nodes.values():
        node.prepare("cpu")
    runtime = Runtime(loaded, fps=0)
    for _ in range(10):
        runtime.step()
        time.sleep(0.05)  # saves run off the render thread: give one time to land
    runtime.close()
    assert "preview" in runtime.snapshot.published
    assert victim.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["show.agraph", "victim.npy"]


def _corrupt_schema_1() -> dict[str, bytes]:
    good = msgpack.unpackb((FIXTURES / "graph_schema1.agraph").read_bytes())

    def variant(**changes) -> bytes:
        return msgpack.packb({**good, **changes})

    return {"link_of_three": variant(links=[["a", "value", "b"]]), "nodes_a_dict": variant(nodes={"a": 1}),
            "node_without_id": variant(nodes=[{"type": "LFO"}]), "nodes_a_number": variant(nodes=5),
            "layout_of_numbers": variant(layout={"a": 5}), "node_a_string": variant(nodes=["abc"])}


def test_old_schema_migration_errors_are_one_line(tmp_path: Path) -> None:
    for name, data in _corrupt_schema_1().items():
        path = tmp_path / f"{name}.agraph"
        path.write_bytes(data)
        with pytest.raises(GraphFileError) as info:
            load_graph(path)
        message = str(info.value)
        assert message.startswith(str(path)) and "schema 1" in message and "\n" not in message, message


def test_a_preset_folder_loads_every_good_preset_whatever_the_others_hold(tmp_path: Path) -> None:
    folder = PresetFolder(tmp_path)
    graph = Graph()
    graph.add_node(default_registry().create("LFO"), name="keep")
    folder.save("good", graph)
    (tmp_path / "old.agraph").write_bytes((FIXTURES / "graph_schema1.agraph").read_bytes())
    bad = _corrupt_schema_1()
    for name, data in bad.items():
        (tmp_path / f"{name}.agraph").write_bytes(data)
    (tmp_path / "truncated.agraph").write_bytes((FIXTURES / "graph_schema1.agraph").read_bytes()[:-7])
    (tmp_path / "folder.agraph").mkdir()
    os.mkfifo(tmp_path / "fifo.agraph")  # would block a reader that opened it
    graphs, failures = folder.load_all()
    assert sorted(graphs) == ["good", "old"]
    assert sorted(failures) == sorted([*bad, "truncated", "folder", "fifo"])
    assert all("\n" not in reason and str(tmp_path) in reason for reason in failures.values()), failures


# --- memory: each file read in its own child, which reports its peak RSS growth ---------------------
# VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's (the whole pytest process) on Linux.
MEMORY_CHILD = r"""
import json, sys
from autolume_graph.serialize import GraphFileError, load_graph
def peak_rss():
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
before = peak_rss()
try:
    load_graph(sys.argv[1])
    message = "LOADED"
except GraphFileError as exc:
    message = str(exc)
print(json.dumps({"message": message, "growth": peak_rss() - before}))
"""
N = 2_000_000  # objects: files of 2-9 MB (decoded without the budget, the empty arrays take 73x: 146 MB)


def _array32(count: int, item: bytes) -> bytes:
    return b"\xdd" + count.to_bytes(4, "big") + item * count


def hostile_memory_files() -> dict[str, bytes]:
    distinct_keys = b"".join(b"\xce" + i.to_bytes(4, "big") + b"\xc0" for i in range(N // 4))
    return {
        "empty_arrays": _array32(N, b"\x90"),
        "one_pair_maps": _array32(N, b"\x81\x00\xc0"),
        "short_non_ascii_strings": _array32(N, b"\xa2\xc3\xa9"),
        # these three fit the budget: they decode (the most a file can take), then are refused as no graph
        "small_ints": _array32(N, b"\x01"),
        "floats": _array32(N // 4, b"\xcb" + b"\x3f\xf0" + b"\0" * 6),
        "empty_arrays_between_bins": _array32(N // 16, b"\x92\x90\xc4\x20" + b"\0" * 32),
        "distinct_keys": b"\xdf" + (N // 4).to_bytes(4, "big") + distinct_keys,
        "lists_in_a_graph": _graph_file({"n1": {"type": "LFO", "params": {"phase": [[]] * N}}}, []),
    }


def test_reading_a_hostile_graph_file_stays_within_a_small_multiple_of_its_size(tmp_path: Path) -> None:
    children = {}
    for name, data in hostile_memory_files().items():
        path = tmp_path / f"{name}.agraph"
        path.write_bytes(data)
        children[name] = (len(data), subprocess.Popen([sys.executable, "-c", MEMORY_CHILD, str(path)],
                                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    figures = {}
    for name, (size, child) in children.items():
        stdout, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr
        result = json.loads(stdout)
        figures[name] = (size, result["growth"], result["message"])
        assert result["message"] != "LOADED" and "\n" not in result["message"], (name, result)
        bound = MEMORY_BOUND_PER_BYTE * size + MEMORY_BOUND_BASE
        assert result["growth"] < bound, (name, size, result["growth"], bound)
    print("\n".join(f"{n}: {size / 1e6:.1f} MB file, peak RSS growth {g / 1e6:.1f} MB ({g / size:.1f}x): {m}"
                    for n, (size, g, m) in figures.items()))


def test_a_file_within_its_memory_budget_still_meets_the_node_limit(tmp_path: Path) -> None:
    path = tmp_path / "nodes.agraph"
    path.write_bytes(_graph_file({f"n{i}": {"type": "LFO"} for i in range(MAX_NODES + 1)}, []))
    with pytest.raises(GraphFileError, match=f"more than {MAX_NODES} nodes"):
        load_graph(path)
