"""The command line: the shipped default graph, headless runs, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from autolume_graph.graphs.shipped import SHIPPED

from autolume_graph.gan.loader import load_model
from autolume_graph.serialize import graph_to_dict, read_graph_data

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autolume_graph.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_shipped_graphs_are_up_to_date():
    for name, build in SHIPPED.items():
        assert read_graph_data(REPO / "graphs" / f"{name}.agraph") == graph_to_dict(build()), \
            f"graphs/{name}.agraph is stale: run python -m autolume_graph.graphs.shipped"


def test_run_default_graph_writes_frames(tmp_path):
    out = tmp_path / "frames.npy"
    proc = cli("run", "--frames", "3", "--fps", "0", "--no-osc", "--device", "cpu", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "fps" in proc.stdout
    frames = np.load(out)
    assert frames.shape == (3, 256, 256, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # a picture, not a blank
    assert not np.array_equal(frames[0], frames[2])  # the default seed animates


def test_nodes_lists_every_type_with_osc_addresses():
    proc = cli("nodes")
    assert proc.returncode == 0, proc.stderr
    for type_name in ("ModelLoader", "SeedLatent", "Mapping", "Generate", "Preview", "NDIOut", "LFO"):
        assert f"\n{type_name}  [" in "\n" + proc.stdout
    assert "osc /seedlatent/seed" in proc.stdout and "[0.0, 2.0]" in proc.stdout


def test_dump_prints_json():
    proc = cli("dump", "default")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["format"] == "autolume-graph" and any(n["type"] == "Generate" for n in data["nodes"].values())


def test_user_mistakes_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.agraph"
    bad.write_bytes(b"\x00\x01garbage")
    for args in (["run", str(tmp_path / "missing.agraph")], ["dump", str(bad)],
                 ["generate", str(tmp_path / "nope.pkl"), "--out", str(tmp_path / "a.png")]):
        proc = cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("autolume-graph: "), (args, proc.stderr)


def test_bench_json_reports_the_figures(reference_dir):
    proc = cli("bench", str(reference_dir / "sg2_64_tiny.pkl"), "--frames", "5", "--device", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in ("fps", "ms_per_frame", "generator_ms", "engine_overhead_ms", "copy_out_ms", "per_node_ms"):
        assert result[key] is not None, key
    assert result["fps"] > 0 and result["per_node_ms"]["generate"] > 0 and not result["errors"]
    assert result["torch_threads"] >= 1
    model = load_model(reference_dir / "sg2_64_tiny.pkl")
    assert result["image_size"] == [model.img_size[1], model.img_size[0]]  # width, height


def test_bench_says_which_kernels_made_the_figure(reference_dir):
    from autolume_graph.bench import KERNEL_LABELS

    proc = cli("bench", str(reference_dir / "sg2_64_tiny.pkl"), "--frames", "2", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for label in KERNEL_LABELS.values():  # each kernel choice on a line of its own, with its reason
        line = next((x for x in lines if x.strip().startswith(f"{label}: ")), None)
        assert line is not None and len(line.split(": ", 1)[1]) > 1, (label, proc.stdout)
    products = next(x for x in lines if "Winograd products: " in x)
    assert "ms" in products  # the timings that chose the product


def test_edit_without_a_screen_says_so_in_one_line():
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-m", "autolume_graph.cli", "edit"], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=env)
    assert proc.returncode == 2 and "autolume-graph run" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
