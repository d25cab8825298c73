"""Layer ops: exact identities, exact quarter turns, hand-computed resamples and pointwise values."""

from __future__ import annotations

import pytest
import torch

from autolume_graph.gan.layer_ops import OpSpec, build_edit, channel_selection


def _ramp(n=4, c=1):
    """[1, c, n, n] with value 100*channel + n*row + col: easy to predict after moves."""
    base = torch.arange(n * n, dtype=torch.float32).reshape(1, 1, n, n)
    return torch.cat([base + 100 * i for i in range(c)], dim=1)


@pytest.mark.parametrize(
    "op",
    [
        OpSpec("translate", x=0.0, y=0.0),
        OpSpec("rotate", 0.0),
        OpSpec("rotate", 360.0),
        OpSpec("scale", 1.0),
        OpSpec("multiply", 1.0),
        OpSpec("dilate", 1),
        OpSpec("ablate", channels=torch.tensor([], dtype=torch.long)),
    ],
)
def test_identity_ops_return_the_input_itself(op):
    x = torch.randn(2, 3, 8, 8)
    assert build_edit([op])(x) is x
    assert build_edit([op, op])(x) is x


def test_cancelling_quarter_turns_are_skipped():
    x = torch.randn(1, 2, 6, 6)
    assert build_edit([OpSpec("rotate", 90), OpSpec("rotate", -90)])(x) is x


@pytest.mark.parametrize("degrees, k", [(90, 1), (180, 2), (270, 3), (-90, 3), (450, 1)])
def test_quarter_turns_equal_rot90_exactly(degrees, k):
    x = torch.randn(2, 3, 7, 7)
    torch.testing.assert_close(
        build_edit([OpSpec("rotate", degrees)])(x), torch.rot90(x, k, dims=(2, 3)), rtol=0, atol=0
    )


def test_resampled_rotation_turns_the_same_way_as_rot90():
    x = torch.randn(1, 2, 8, 8)
    near = build_edit([OpSpec("rotate", 89.9999)])(x)
    assert (near - torch.rot90(x, 1, dims=(2, 3))).abs().max() < 1e-3
    assert (near - torch.rot90(x, 3, dims=(2, 3))).abs().max() > 0.5
    half = build_edit([OpSpec("rotate", 180)])(torch.randn(1, 1, 4, 6))  # non-square, even turn
    assert half.shape == (1, 1, 4, 6)


def test_translate_moves_content_by_whole_pixels():
    x = _ramp(4)
    right = build_edit([OpSpec("translate", x=0.25)])(x)[0, 0]
    expected = torch.tensor([[0, 0, 1, 2], [0, 4, 5, 6], [0, 8, 9, 10], [0, 12, 13, 14]], dtype=torch.float32)
    torch.testing.assert_close(right, expected, rtol=0, atol=0)
    up = build_edit([OpSpec("translate", y=-0.5)])(x)[0, 0]
    torch.testing.assert_close(up[:2], x[0, 0, 2:], rtol=0, atol=0)
    assert (up[2:] == 0).all()


def test_scale_samples_the_centre_bilinearly():
    # On a linear ramp v = 8*row + col bilinear sampling is exact: zoom x2 about the centre
    # maps output pixel p (centre-relative) to input p / 2, i.e. index 1.75 + i / 2.
    x = _ramp(8)
    out = build_edit([OpSpec("scale", 2.0)])(x)[0, 0]
    idx = 1.75 + torch.arange(8, dtype=torch.float32) / 2
    torch.testing.assert_close(out, 8 * idx[:, None] + idx[None, :])


def test_fused_affine_equals_sequential_ops():
    x = torch.randn(1, 3, 16, 16)
    ops = [OpSpec("scale", 0.5), OpSpec("translate", x=0.125)]
    fused = build_edit(ops)(x)
    half = build_edit([ops[0]])(x)
    sequential = build_edit([ops[1]])(half)  # a whole-pixel (2 px) shift of the scaled map is exact
    torch.testing.assert_close(fused, sequential, atol=1e-5, rtol=1e-5)
    reversed_order = build_edit(ops[::-1])(x)  # shifting first: the shift is halved too
    assert (reversed_order - fused).abs().max() > 0.1


def test_random_selection_is_reproducible_and_sized():
    a = channel_selection(64, "random", 0.25, seed=9)
    assert torch.equal(a, channel_selection(64, "random", 0.25, seed=9))
    assert not torch.equal(a, channel_selection(64, "random", 0.25, seed=10))
    assert a.numel() == 16 and torch.equal(a, a.sort().values) and a.unique().numel() == 16
    assert channel_selection(64, "random", 1.0, seed=9) is None
    assert channel_selection(64, "all") is None
    assert torch.equal(channel_selection(10, "range", start=3, end=6), torch.tensor([3, 4, 5]))
    assert channel_selection(10, "range", start=-5, end=99) is None
    with pytest.raises(ValueError):
        channel_selection(10, "odd")


def test_ops_touch_only_selected_channels_and_never_the_input():
    x = torch.randn(2, 6, 5, 5)
    before = x.clone()
    sel = channel_selection(6, "range", start=1, end=3)
    out = build_edit([OpSpec("ablate", channels=sel), OpSpec("rotate", 90, channels=sel)])(x)
    torch.testing.assert_close(x, before, rtol=0, atol=0)
    assert (out[:, 1:3] == 0).all()
    torch.testing.assert_close(out[:, [0, 3, 4, 5]], x[:, [0, 3, 4, 5]], rtol=0, atol=0)


def test_erode_dilate_values():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    dil = build_edit([OpSpec("dilate", 3)])(x)[0, 0]
    assert dil.sum() == 9 and (dil[1:4, 1:4] == 1).all()
    ero = build_edit([OpSpec("erode", 3)])(dil[None, None])[0, 0]
    torch.testing.assert_close(ero, x[0, 0], rtol=0, atol=0)
    ones = torch.ones(1, 1, 4, 4)  # the border is not eroded by padding
    torch.testing.assert_close(build_edit([OpSpec("erode", 3)])(ones), ones, rtol=0, atol=0)
    assert build_edit([OpSpec("dilate", 2)])(x)[0, 0].sum() == 9  # even kernels round up to odd


def test_pointwise_values():
    x = torch.tensor([[[[-2.0, 0.5], [1.0, 3.0]]]])
    torch.testing.assert_close(build_edit([OpSpec("invert")])(x), -x, rtol=0, atol=0)
    torch.testing.assert_close(build_edit([OpSpec("invert"), OpSpec("invert")])(x), x, rtol=0, atol=0)
    torch.testing.assert_close(
        build_edit([OpSpec("threshold", 0.75)])(x), torch.tensor([[[[0.0, 0.0], [1.0, 1.0]]]]), rtol=0, atol=0
    )
    torch.testing.assert_close(build_edit([OpSpec("multiply", -0.5)])(x), -0.5 * x, rtol=0, atol=0)
    torch.testing.assert_close(
        build_edit([OpSpec("flip_h")])(x), torch.tensor([[[[0.5, -2.0], [3.0, 1.0]]]]), rtol=0, atol=0
    )
    torch.testing.assert_close(
        build_edit([OpSpec("flip_v")])(x), torch.tensor([[[[1.0, 3.0], [-2.0, 0.5]]]]), rtol=0, atol=0
    )
    assert (build_edit([OpSpec("ablate")])(x) == 0).all()


def test_unknown_op_is_refused_at_build_time():
    with pytest.raises(ValueError, match="unknown layer op"):
        build_edit([OpSpec("melt")])
