"""StyleGAN2 on the family registry: NVIDIA's plain generator, blocks `b<resolution>` that can be cut."""

from __future__ import annotations

import re
from typing import Any

from ..family import SYNTHESIS, Family, register_family
from ..mixing import MixError
from ..stylegan2 import build_from_record, build_from_settings


def drop_blocks(settings: dict[str, Any], drop: frozenset[str]) -> dict[str, Any]:
    """Settings without the dropped (top) blocks; the mapping makes fewer ws.

    Only a skip generator can be cut: each of its blocks adds its own toRGB to the image, so the sum
    of the kept blocks' outputs is a complete image at the lower resolution.
    """
    synthesis = settings["synthesis"]
    blocks = [dict(b) for b in synthesis["blocks"] if f"{SYNTHESIS}b{b['resolution']}" not in drop]
    if not blocks:
        raise MixError("cannot drop every resolution")
    if blocks[-1]["torgb"] is None:
        raise MixError("dropping (X) needs a skip generator (a toRGB at every resolution)")
    blocks[-1]["is_last"] = True
    num_ws = sum(b["num_conv"] for b in blocks) + blocks[-1]["num_torgb"]
    return {"mapping": {**settings["mapping"], "num_ws": num_ws},
            "synthesis": {**synthesis, "img_resolution": blocks[-1]["resolution"], "num_ws": num_ws,
                          "blocks": blocks}}


STYLEGAN2 = register_family(Family(
    name="stylegan2",
    title="StyleGAN2",
    build_from_record=build_from_record,
    build_from_settings=build_from_settings,
    blocks=re.compile(r"b(?P<resolution>\d+)"),
    drop_blocks=drop_blocks,
))
