"""Model mixing on state dicts: exact ends, mean halfway, in-place re-mix, clear refusals."""

from __future__ import annotations

import pytest
import torch

from autolume_graph.gan.mixing import MixError, ModelMixer, block_of, family_of, layer_of


def _sg2(seed: int, resolutions=(4, 8, 16)) -> dict[str, torch.Tensor]:
    """A miniature StyleGAN2-shaped state dict (names and grouping, not the real sizes)."""
    g = torch.Generator().manual_seed(seed)
    sd = {"mapping.fc0.weight": torch.randn(8, 8, generator=g), "mapping.w_avg": torch.randn(8, generator=g)}
    for res in resolutions:
        p = f"synthesis.b{res}."
        if res == 4:
            sd[p + "const"] = torch.randn(4, 4, 4, generator=g)
        sd[p + "conv1.weight"] = torch.randn(4, 4, 3, 3, generator=g)
        sd[p + "conv1.noise_const"] = torch.randn(res, res, generator=g)
        sd[p + "torgb.weight"] = torch.randn(3, 4, 1, 1, generator=g)
    sd["synthesis.b4.counter"] = torch.tensor(seed)  # a non-float buffer stays A's
    return sd


def test_grouping_names():
    assert block_of("synthesis.b16.conv0.weight") == "synthesis.b16"
    assert layer_of("synthesis.b16.conv0.weight") == "synthesis.b16.conv0"
    assert layer_of("synthesis.b4.const") == "synthesis.b4"
    assert block_of("synthesis.L3_52_128.weight") == "synthesis.L3_52_128"
    assert block_of("mapping.fc0.weight") is None
    assert family_of(_sg2(0)) == "stylegan2"
    assert family_of({"synthesis.L0_36_512.weight": torch.zeros(1)}) == "stylegan3"


def test_ends_are_exact_and_halfway_is_the_mean():
    a, b = _sg2(0), _sg2(1)
    mixer = ModelMixer(a, b)
    blocks = {blk: 1.0 for blk in mixer.blocks}
    out = mixer.mix(blocks)
    for name in a:
        if name.startswith("synthesis.") and a[name].is_floating_point():
            assert torch.equal(out[name], b[name]), name
        else:
            assert torch.equal(out[name], a[name]), name
    out = mixer.mix({})
    for name in a:
        assert torch.equal(out[name], a[name]), name
    out = mixer.mix({blk: 0.5 for blk in mixer.blocks})
    for name in mixer.layers:
        weight = name + ".weight"
        if weight in a:
            torch.testing.assert_close(out[weight], (a[weight] + b[weight]) / 2)
    assert torch.equal(out["mapping.fc0.weight"], a["mapping.fc0.weight"])


def test_per_block_and_per_layer_weights():
    a, b = _sg2(0), _sg2(1)
    out = ModelMixer(a, b).mix({"synthesis.b8": 1.0, "synthesis.b8.torgb": 0.0, "synthesis.b16.conv1": 2.0})
    assert torch.equal(out["synthesis.b8.conv1.weight"], b["synthesis.b8.conv1.weight"])
    assert torch.equal(out["synthesis.b8.torgb.weight"], a["synthesis.b8.torgb.weight"])
    assert torch.equal(out["synthesis.b16.conv1.weight"], b["synthesis.b16.conv1.weight"])  # clipped to 1
    assert torch.equal(out["synthesis.b16.torgb.weight"], a["synthesis.b16.torgb.weight"])


def test_remix_is_in_place_without_new_tensors():
    a, b = _sg2(0), _sg2(1)
    mixer = ModelMixer(a, b)
    first = mixer.mix({"synthesis.b8": 0.3})
    ptrs = {k: v.data_ptr() for k, v in first.items()}
    tensors = {k: id(v) for k, v in first.items()}
    snapshot = first["synthesis.b8.conv1.weight"].clone()
    second = mixer.mix({"synthesis.b8": 0.7, "synthesis.b16": 0.2})
    assert second is first
    assert {k: v.data_ptr() for k, v in second.items()} == ptrs
    assert {k: id(v) for k, v in second.items()} == tensors
    assert not torch.equal(second["synthesis.b8.conv1.weight"], snapshot)
    for name in a:  # inputs untouched
        assert torch.equal(a[name], _sg2(0)[name]) and torch.equal(b[name], _sg2(1)[name])


def test_writes_into_a_given_output_state_dict():
    a, b = _sg2(0), _sg2(1)
    live = {k: torch.empty_like(v) for k, v in a.items()}
    mixer = ModelMixer(a, b, out=live)
    mixer.mix({"synthesis.b16": 1.0})
    assert all(mixer.out[k] is live[k] for k in live)
    assert torch.equal(live["synthesis.b16.torgb.weight"], b["synthesis.b16.torgb.weight"])
    assert torch.equal(live["mapping.w_avg"], a["mapping.w_avg"])


def test_incompatible_models_raise_one_line():
    a, b = _sg2(0), _sg2(1)
    b["synthesis.b8.conv1.weight"] = torch.zeros(4, 4, 1, 1)
    with pytest.raises(MixError, match="synthesis.b8.conv1.weight") as info:
        ModelMixer(a, b)
    assert "\n" not in str(info.value)
    with pytest.raises(MixError, match="stylegan3"):
        ModelMixer(_sg2(0), {"synthesis.L0_36_512.weight": torch.zeros(1)})
    with pytest.raises(MixError, match="unknown mix group"):
        ModelMixer(_sg2(0), _sg2(1)).mix({"synthesis.b1024": 0.5})


def test_drop_aligns_a_higher_resolution_model():
    hi, lo = _sg2(0, (4, 8, 16, 32)), _sg2(1, (4, 8, 16))
    with pytest.raises(MixError, match="missing from model B"):
        ModelMixer(hi, lo).mix({"synthesis.b32": 0.5})
    mixer = ModelMixer(hi, lo, drop=["synthesis.b32"])
    assert mixer.resolution == 16 and mixer.dropped == ["synthesis.b32"]
    out = mixer.mix({blk: 1.0 for blk in mixer.blocks})
    assert not any(k.startswith("synthesis.b32.") for k in out)
    assert set(out) == set(lo)
    with pytest.raises(MixError, match="highest-resolution"):
        ModelMixer(hi, lo, drop=["synthesis.b8"])
