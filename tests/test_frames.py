"""FrameConverter: NVIDIA's value convention, BGRX layout, buffer reuse, CUDA async copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autolume_graph.outputs.frames import FrameConverter


def _reference(image: torch.Tensor) -> np.ndarray:
    """The StyleGAN tools' conversion, RGB HxWx3."""
    return (image * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).cpu().numpy()


def _image(h: int, w: int, device: str = "cpu") -> torch.Tensor:
    g = torch.Generator().manual_seed(h * w)
    # beyond [-1, 1] to exercise the clamp, plus exact integer boundaries for truncation
    x = torch.randn(1, 3, h, w, generator=g) * 0.8
    x[0, 0, 0, :4] = torch.tensor([-1.5, 1.5, (3 - 128) / 127.5, (200.5 - 128) / 127.5])
    return x.to(device)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_matches_reference_in_bgrx_and_rgb(device: str) -> None:
    conv = FrameConverter()
    image = _image(40, 56, device)
    frame = conv.convert(image)
    want = _reference(image)
    assert frame.bgra.shape == (40, 56, 4) and frame.bgra.dtype == np.uint8
    assert np.array_equal(frame.bgra[..., :3], want[..., ::-1])
    assert (frame.bgra[..., 3] == 255).all()
    assert np.array_equal(frame.rgb, want)
    assert np.shares_memory(frame.rgb, frame.bgra)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"))])
def test_buffers_alternate_and_are_reused(device: str) -> None:
    conv = FrameConverter()
    a, b = _image(32, 32, device), -_image(32, 32, device)
    f1, f2, f3 = conv.convert(a), conv.convert(b), conv.convert(a)
    assert np.array_equal(f2.rgb, _reference(b))  # still valid after one more convert
    assert f1.bgra is f3.bgra and f1.bgra is not f2.bgra  # two buffers, reused
    assert np.array_equal(f3.rgb, _reference(a))
    assert conv.convert(_image(16, 24, device)).bgra.shape == (16, 24, 4)  # size change reallocates


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_copy_is_pinned_and_asynchronous() -> None:
    conv = FrameConverter()
    image = _image(1024, 1024, "cuda")
    torch.cuda._sleep(200_000_000)  # keep the stream busy: convert must return before the copy lands
    frame = conv.convert(image)
    assert not frame.ready()
    assert np.array_equal(frame.rgb, _reference(image))
    assert frame.ready()
    assert torch.from_numpy(frame.bgra).is_pinned()


def test_grayscale_and_bad_shapes() -> None:
    conv = FrameConverter()
    gray = torch.linspace(-1, 1, 64).reshape(1, 1, 8, 8)
    got = conv.convert(gray).rgb
    want = (gray * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0, 0].numpy()
    assert all(np.array_equal(got[..., c], want) for c in range(3))
    with pytest.raises(ValueError):
        conv.convert(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError):
        conv.convert(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
