"""What a network file reads as, shared by the pickle reader and the converters built on it.

`ModuleRecord` is a persistent torch module as plain data, `TFNetwork` a TensorFlow network's
pickled state without its build source; `ModelFileError` is the one-line refusal of a file.
Kept apart from `safe_pickle` so that `tf_stylegan2` and `unsupported`, which it calls, can use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .pickle_reader import Unknown


class ModelFileError(ValueError):
    """A model file that cannot be read; the message is one line naming the file."""


@dataclass
class ModuleRecord:
    """One persistent torch module of a pickle, as plain data.

    Tensors read from a pickle view the file's bytes: treat them as read-only.
    """

    class_name: str
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, torch.Tensor] = field(default_factory=dict)
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    children: dict[str, ModuleRecord] = field(default_factory=dict)
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    foreign: dict[str, Unknown] = field(default_factory=dict)  # submodules of classes the reader does not know

    def held(self) -> list[Any]:
        """What the network built from this record uses (for `first_unknown`); not `init_kwargs`."""
        return [self.attrs, self.params, self.buffers, self.children, self.foreign]

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Every parameter and buffer under this module, keyed by dotted name."""
        out = {prefix + k: v for k, v in {**self.params, **self.buffers}.items() if v is not None}
        for name, child in self.children.items():
            out.update(child.state_dict(f"{prefix}{name}."))
        return out

    def walk(self, prefix: str = ""):
        """Yield (dotted name, record) for this module and every descendant."""
        yield prefix.rstrip("."), self
        for name, child in self.children.items():
            yield from child.walk(f"{prefix}{name}.")


@dataclass(eq=False)
class TFNetwork:
    """Stand-in for dnnlib.tflib.network.Network: a TensorFlow network's pickled state as data.

    Its `build_module_src` (the Python that would build the graph) is never kept; `variables` are
    numpy arrays by TensorFlow name (`4x4/Conv/weight`), `components` the sub-networks.
    """

    name: str = ""
    build_func_name: str = ""
    version: int = 0
    static_kwargs: dict[str, Any] = field(default_factory=dict)
    components: dict[str, TFNetwork] = field(default_factory=dict)
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    built: bool = False  # its state is set: only a built network can be a component, so none contains itself

    def held(self) -> list[Any]:
        return [self.static_kwargs, self.components]
