"""Read StyleGAN network pickles as data, never as code, within a memory budget.

Training snapshots pickle every network module through `torch_utils.persistence`,
embedding the module's Python source. We allow only the handful of globals such files
reference, turn each persistent object into a plain `ModuleRecord` (class name,
attributes, parameters, buffers, children) and never import or run the embedded source.
TensorFlow pickles hold `dnnlib.tflib.network.Network` objects: each becomes a `TFNetwork`
(name, build function's name, kwargs, components, variables) without its build source, and
`tf_stylegan2` turns a StyleGAN2 one into the record NVIDIA's PyTorch code would have pickled.
Any other global is an inert `pickle_reader.Unknown`: a discriminator or augment pipeline may
need classes we do not know, and still the generator loads unless it needs one itself.
The reader (`pickle_reader`) lets no file change anything but what it made itself and stops a
file that would take more than 3x its size + 32 MiB; tensors and arrays are checked against
their storage first (`pickled_arrays`).
"""

from __future__ import annotations

import collections
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import pickled_arrays, tf_stylegan2, unsupported
from .pickle_reader import ITEM_COST, Allowed, BoundedFile, Budget, Reader, Table, Unknown, first_unknown
from .records import ModelFileError, ModuleRecord, TFNetwork

__all__ = ["GeneratorChoice", "ModelFileError", "ModuleRecord", "TFNetwork", "read_generator", "read_pickle"]

RECORD_COST = 2048  # a ModuleRecord: the object and its five dicts
MAX_MODULE_DEPTH = 64
MAX_MODULES = 10_000  # per tree, a module shared by two parents counting twice


def _record_from_persistent(reader: Reader, meta: Any) -> ModuleRecord:
    """A persistent module as a record; its tree is bounded in depth and size (children are complete)."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise pickle.UnpicklingError("malformed persistent object")
    state = meta["state"]
    children, foreign, depth, modules = {}, {}, 1, 1
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if isinstance(child, Unknown):
            foreign[name] = child
            continue
        known = reader.registry.get(id(child))
        if not isinstance(child, ModuleRecord) or known is None or known[0] is not child:
            raise pickle.UnpicklingError(f"submodule {name!r} is not a persistent module")
        children[name] = child
        depth, modules = max(depth, known[1] + 1), modules + known[2]
    if depth > MAX_MODULE_DEPTH or modules > MAX_MODULES:
        raise pickle.UnpicklingError(f"modules nested deeper than {MAX_MODULE_DEPTH} or over {MAX_MODULES} of them")
    reader.budget.charge(RECORD_COST + ITEM_COST * len(state))
    record = ModuleRecord(
        class_name=str(meta.get("class_name")),
        attrs={k: v for k, v in state.items() if not k.startswith("_") and k != "training"},
        params=dict(state.get("_parameters") or {}),
        buffers=dict(state.get("_buffers") or {}),
        children=children,
        init_kwargs=dict(state.get("_init_kwargs") or {}),
        foreign=foreign,
    )
    reader.registry[id(record)] = (record, depth, modules)
    return record


class EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict: a dict whose keys also read as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def _container(kind: type) -> Callable[..., Any]:
    def make(reader: Reader, *args: Any) -> Any:
        made = kind(*args)
        reader.budget.charge(ITEM_COST * len(made))
        return made

    return make


TF_STATE_TYPES = {"version": int, "name": str, "static_kwargs": dict, "components": dict, "build_module_src": str,
                  "build_func_name": str, "variables": list}


def _set_tf_network_state(reader: Reader, net: TFNetwork, state: Any) -> None:
    """The Network's state dict, every entry checked; the build source is dropped unread."""
    if not isinstance(state, dict) or any(not isinstance(state.get(k), kind) for k, kind in TF_STATE_TYPES.items()):
        raise pickle.UnpicklingError("malformed TensorFlow network state")
    components = state["components"]
    for name, comp in components.items():
        if not isinstance(name, str) or not isinstance(comp, TFNetwork) or not comp.built:
            raise pickle.UnpicklingError(f"TensorFlow component {name!r} is not a network")
    variables = {}
    for item in state["variables"]:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], np.ndarray)) or item[0] in variables:
            raise pickle.UnpicklingError("TensorFlow variables are not unique (name, array) pairs")
        variables[item[0]] = item[1]
    reader.budget.charge(ITEM_COST * (len(variables) + len(components)))
    net.name, net.build_func_name, net.version = state["name"], state["build_func_name"], state["version"]
    net.static_kwargs, net.components, net.variables, net.built = state["static_kwargs"], components, variables, True


SNAPSHOT_GLOBALS: Table = {
    ("dnnlib.tflib.network", "Network"): Allowed("TensorFlow network", lambda reader: TFNetwork(), newobj=True,
                                                  set_state=_set_tf_network_state),
    ("torch_utils.persistence", "_reconstruct_persistent_obj"):
        Allowed("persistent module", _record_from_persistent),
    ("dnnlib.util", "EasyDict"): Allowed("EasyDict", _container(EasyDict), fills=True, newobj=True),
    ("collections", "OrderedDict"): Allowed("OrderedDict", _container(collections.OrderedDict), fills=True,
                                            newobj=True),
    **pickled_arrays.GLOBALS,
}


def read_pickle(path: str | Path) -> Any:
    """Unpickle `path` allowing only StyleGAN snapshot globals; raise ModelFileError otherwise."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            return Reader(BoundedFile(f, size), Budget.for_size(size), SNAPSHOT_GLOBALS).load()
    except ModelFileError:
        raise
    except EOFError:
        raise ModelFileError(f"{path}: truncated pickle") from None
    except Exception as exc:  # any failure inside unpickling is a bad file, never a crash
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(f"{path}: cannot read network pickle ({reason})") from None


NETWORKS = ("G_ema", "G")  # which generator of a training snapshot: the averaged one (default) or the trained


@dataclass
class GeneratorChoice:
    """The generator record read from a file, which network it is, and why, if not the one asked for."""

    record: ModuleRecord
    network: str
    note: str = ""


def read_generator(path: str | Path, network: str = "G_ema") -> GeneratorChoice:
    """The generator of a snapshot: `network` (G_ema or G), else the other with a note; or a bare generator.

    TensorFlow pickles (`(G, D, Gs)` or a bare Gs) give Gs as G_ema, converted to NVIDIA's record layout.
    A generator that needs a class the reader does not know, or one of a kind we do not render
    (`unsupported`), is refused in one line naming it.
    """
    if network not in NETWORKS:
        raise ModelFileError(f"network must be one of {', '.join(NETWORKS)}, not {network!r}")
    if Path(path).is_file():
        unsupported.check_file(path)
    data = read_pickle(path)
    nets = _networks(data)
    found = [k for k in (network, *NETWORKS) if k in nets]
    if not found:
        unsupported.check_data(path, data)
        if isinstance(data, dict):
            raise ModelFileError(f"{path}: pickle holds no generator (no G_ema or G)")
        raise ModelFileError(f"{path}: pickle holds a {type(data).__name__}, not a generator")
    chosen = nets[found[0]]
    note = ""
    if found[0] != network:
        note = "the file holds one network" if chosen is data else f"the file has no {network}; showing {found[0]}"
    if isinstance(chosen, ModuleRecord):
        unsupported.check_record(path, chosen)
    unknown = first_unknown(chosen)
    if unknown is not None:
        unsupported.check_unknown(path, unknown)
        raise ModelFileError(f"{path}: forbidden global {unknown.name} in {found[0]} (a class the reader does not "
                             f"know; nothing was imported or run)")
    if isinstance(chosen, TFNetwork):
        unsupported.check_tf_network(path, chosen)
        chosen = tf_stylegan2.generator_record(chosen)
        unsupported.check_record(path, chosen)
    if "synthesis" not in chosen.children or "mapping" not in chosen.children:
        raise ModelFileError(f"{path}: {chosen.class_name} is not a StyleGAN generator")
    return GeneratorChoice(chosen, found[0], note)


GENERATOR_KINDS = (ModuleRecord, TFNetwork, Unknown)


def _networks(data: Any) -> dict[str, Any]:
    """The generators a file holds, by the name we give them: a snapshot's G_ema / G, TensorFlow's Gs / G."""
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(net, TFNetwork) for net in data):
        return {"G_ema": data[2], "G": data[0]}
    if isinstance(data, GENERATOR_KINDS):
        return {"G_ema": data}
    if isinstance(data, dict):
        return {k: data[k] for k in NETWORKS if isinstance(data.get(k), GENERATOR_KINDS)}
    return {}
