"""`autolume-graph convert`: a pickle (TensorFlow's here) to our safe format, through the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autolume_graph import convert
from autolume_graph.cli import main
from autolume_graph.gan.loader import load_model
from autolume_graph.gan.safe_format import is_safe_format

torch.set_grad_enabled(False)


def _render(model) -> torch.Tensor:
    z = torch.randn(2, model.z_dim, generator=torch.Generator().manual_seed(3))
    return torch.cat([model(z, psi=0.7, noise_mode=mode) for mode in ("const", "none")])


@pytest.mark.parametrize("network", ["G_ema", "G"])
def test_a_tensorflow_pickle_converts_and_renders_the_same(reference_dir: Path, tmp_path: Path, capsys,
                                                            network: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert, "PROGRESS_FROM", 1 << 20)  # the vector is 16 MB: show its progress
    source, target = reference_dir / "tf_sg2_32.pkl", tmp_path / "tf.safetensors"
    assert main(["convert", str(source), str(target), "--network", network]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(target) and is_safe_format(target)
    phases = err.splitlines()
    assert len(phases) == 3 and all(line.startswith("convert: [") for line in phases), err
    assert "reading" in phases[0] and "MB" in phases[0] and "stylegan2 32x32" in phases[1] and "wrote" in phases[2]
    assert torch.equal(_render(load_model(target)), _render(load_model(source, network=network)))


def _refused(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("autolume-graph: "), err
    return err


def test_an_existing_target_is_never_replaced(reference_dir: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "taken.safetensors"
    target.write_bytes(b"mine")
    err = _refused(["convert", str(reference_dir / "sg2_64_tiny.pkl"), str(target)], capsys)
    assert "exists" in err and target.read_bytes() == b"mine"


@pytest.mark.parametrize("make, reason", [
    (lambda d: d / "missing.pkl", "no such file"),
    (lambda d: (d / "junk.pkl").write_bytes(b"\x80\x04junk") and d / "junk.pkl", "cannot read network pickle"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys, make, reason: str) -> None:
    source, target = make(tmp_path), tmp_path / "out.safetensors"
    assert reason in _refused(["convert", str(source), str(target)], capsys)
    assert not target.exists()


def test_the_target_must_be_our_format(reference_dir: Path, tmp_path: Path, capsys) -> None:
    assert ".safetensors" in _refused(["convert", str(reference_dir / "sg2_64_tiny.pkl"), str(tmp_path / "x.pkl")],
                                      capsys)


def test_small_files_convert_quietly(reference_dir: Path, tmp_path: Path, capsys) -> None:
    assert (reference_dir / "tf_sg2_32.pkl").stat().st_size < convert.PROGRESS_FROM
    target = tmp_path / "quiet.safetensors"
    assert main(["convert", str(reference_dir / "tf_sg2_32.pkl"), str(target)]) == 0
    assert capsys.readouterr().err == ""
