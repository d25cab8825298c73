"""The GAN family registry: what the loader, the safe format, mixing and the nodes ask of a family.

A family is one module in `autolume_graph/gan/families/` that calls `register_family` with a
`Family`; every module there is imported the first time the registry is asked, so adding a family
is adding one file. A model names its family in `model.family` (the registry key, also written into
saved files), and `family_of(model)` finds the declaration.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .model import StyleGANModel
from .safe_pickle import ModelFileError, ModuleRecord

FAMILIES_PACKAGE = "autolume_graph.gan.families"
SYNTHESIS = "synthesis."


@dataclass(frozen=True)
class Family:
    """One GAN family's declaration.

    `recognises` tells a generator record of this family from a pickle (its class names and
    attributes); a family that leaves it None reads every generator no other family recognises
    (StyleGAN2, NVIDIA's plain generator). `blocks` fullmatches the names of the synthesis blocks
    that mixing crossfades (the name part after `synthesis.`), with a group `resolution` where the
    name states one. `drop_blocks(settings, blocks)` gives the settings without those top blocks
    (ModelMix's "X"); None where the family's layers cannot be cut. `set_input_transform(model, tx,
    ty, rotate_deg)` is what Generate calls for a family whose input can be moved; None where not.
    """

    name: str
    title: str  # for people: "StyleGAN2"
    build_from_record: Callable[[ModuleRecord], StyleGANModel]
    build_from_settings: Callable[[dict[str, Any]], StyleGANModel]
    blocks: re.Pattern[str]
    recognises: Callable[[ModuleRecord], bool] | None = None
    drop_blocks: Callable[[dict[str, Any], frozenset[str]], dict[str, Any]] | None = None
    set_input_transform: Callable[[StyleGANModel, float, float, float], None] | None = None

    def owns_block(self, block: str) -> bool:
        """True for a block name (`synthesis.b16`) of this family's synthesis network."""
        return block.startswith(SYNTHESIS) and self.blocks.fullmatch(block.removeprefix(SYNTHESIS)) is not None

    def block_resolution(self, block: str) -> int | None:
        """The resolution a block name of this family states (`synthesis.b64` -> 64), if it states one."""
        match = self.blocks.fullmatch(block.removeprefix(SYNTHESIS)) if block.startswith(SYNTHESIS) else None
        resolution = match.groupdict().get("resolution") if match else None
        return int(resolution) if resolution is not None else None


_registry: dict[str, Family] = {}
_discovered = False
_discovery = threading.Lock()  # no thread sees the registry half discovered


def register_family(family: Family) -> Family:
    """Add `family` (replacing one of the same name); at most one family may read unrecognised records."""
    catch_all = [f.name for f in _registry.values() if f.recognises is None and f.name != family.name]
    if family.recognises is None and catch_all:
        raise ValueError(f"{family.name} and {catch_all[0]} both read every unrecognised generator")
    _registry[family.name] = family
    return family


def families() -> list[Family]:
    """Every registered family, the bundled ones imported on first use (by whichever thread asks first)."""
    global _discovered
    with _discovery:
        if not _discovered:
            package = importlib.import_module(FAMILIES_PACKAGE)
            for info in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{FAMILIES_PACKAGE}.{info.name}")
            _discovered = True
    return list(_registry.values())


def family_named(name: Any) -> Family:
    """The family registered as `name`, or ModelFileError (a saved file naming a family we lack)."""
    found = next((f for f in families() if f.name == name), None)
    if found is None:
        raise ModelFileError(f"unknown model family {name!r}")
    return found


def family_of(model: StyleGANModel) -> Family:
    """The declaration of `model`'s family."""
    return family_named(model.family)


def family_for_record(record: ModuleRecord) -> Family:
    """The family that recognises a pickle's generator record, else the one reading unrecognised ones."""
    known = families()
    found = next((f for f in known if f.recognises is not None and f.recognises(record)), None)
    found = found or next((f for f in known if f.recognises is None), None)
    if found is None:
        raise ModelFileError(f"no model family reads a {record.class_name}")
    return found


def family_of_blocks(blocks: Iterable[str]) -> Family | None:
    """The family whose synthesis block names these are (a state dict's), None when no family's are."""
    blocks = list(blocks)
    return next((f for f in families() if any(f.owns_block(b) for b in blocks)), None)


def block_resolution(block: str) -> int | None:
    """The resolution a block name states, whichever family's block it is."""
    return next((r for r in (f.block_resolution(block) for f in families()) if r is not None), None)
