"""StyleGAN3 on the family registry: a synthesis that starts from a SynthesisInput, whose transform moves."""

from __future__ import annotations

import re

from ..family import Family, register_family
from ..safe_pickle import ModuleRecord
from ..stylegan3 import StyleGAN3, build_from_record, build_from_settings


def recognises(record: ModuleRecord) -> bool:
    """A generator whose synthesis network starts from a SynthesisInput (Fourier features)."""
    synthesis_input = record.children["synthesis"].children.get("input")
    return synthesis_input is not None and synthesis_input.class_name == "SynthesisInput"


STYLEGAN3 = register_family(Family(
    name="stylegan3",
    title="StyleGAN3",
    build_from_record=build_from_record,
    build_from_settings=build_from_settings,
    blocks=re.compile(r"L\d+_(?P<resolution>\d+)_\d+|input"),
    recognises=recognises,
    set_input_transform=StyleGAN3.set_transform,
))
