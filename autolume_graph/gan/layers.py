"""Building blocks shared by StyleGAN2 and StyleGAN3: bias+activation and the fully connected layer.

Both families use "equalized learning rate" layers: weights are stored unscaled and multiplied by a
constant gain at run time, so a network file's raw tensors only render correctly together with the
gains stored in each layer's attributes. Every setting is therefore read from the stored record, never
assumed from class defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any

import torch
import torch.nn.functional as F

from .safe_pickle import ModelFileError, ModuleRecord

# The gain each activation applies by default so that activations keep unit variance.
ACTIVATION_GAINS: dict[str, float] = {"linear": 1.0, "relu": math.sqrt(2), "lrelu": math.sqrt(2)}
LRELU_SLOPE = 0.2
ACTIVATION_SLOPES = {"linear": 1.0, "relu": 0.0, "lrelu": LRELU_SLOPE}  # each as a leaky ReLU


def bias_act(
    x: torch.Tensor,
    bias: torch.Tensor | None,
    activation: str = "linear",
    gain: float = 1.0,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply the activation, scale by `gain`, clamp to +-`clamp`.

    Only the first step makes a new tensor; the rest work in place on it (one pass less each over
    the feature map, which is most of the non-convolution time on the CPU). `x` is never modified.
    """
    if bias is not None:
        x = x + bias.reshape([1, -1] + [1] * (x.ndim - 2))
    elif activation != "linear" or gain != 1 or (clamp is not None and clamp >= 0):
        x = x.clone()
    if activation == "lrelu":
        F.leaky_relu_(x, LRELU_SLOPE)
    elif activation == "relu":
        F.relu_(x)
    elif activation != "linear":
        raise ValueError(f"unsupported activation {activation!r}")
    if gain != 1:
        x.mul_(gain)
    if clamp is not None and clamp >= 0:
        x.clamp_(-clamp, clamp)
    return x


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast runs convolutions and matmuls in on this device type, None while it is off."""
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None


def derived(owner: torch.nn.Module, name: str, sources: tuple[torch.Tensor, ...], build: Callable[[], Any],
            extra: Hashable = None) -> Any:
    """`build()` kept on `owner` until a source tensor changes, so per-frame work skips constant math.

    A source counts as changed when its storage (`data_ptr`: `.to()`, `load_state_dict` into new
    storage) or its `_version` (any in-place write, e.g. ModelMix's `copy_`) differs. Inference
    tensors carry no version counter, and tensors that need grad must stay in the graph: neither is
    cached.
    """
    if any(t.is_inference() or (t.requires_grad and torch.is_grad_enabled()) for t in sources):
        return build()
    key = (extra, *((t.data_ptr(), t._version) for t in sources))
    cache = owner.__dict__.setdefault("_derived", {})
    hit = cache.get(name)
    if hit is not None and hit[0] == key:
        return hit[1]
    with torch.inference_mode(False):  # a normal tensor, so that it can be the source of another one
        value = build()
    cache[name] = (key, value)
    return value


def attr(record: ModuleRecord, name: str, default: Any = ...) -> Any:
    """A stored layer attribute as a plain Python value (numpy scalars become float/int)."""
    if name in record.attrs:
        value = record.attrs[name]
    elif default is not ...:
        value = default
    else:
        raise ModelFileError(f"{record.class_name} has no stored attribute {name!r}")
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


def tensor(record: ModuleRecord, name: str) -> torch.Tensor:
    """A stored parameter or buffer, or a ModelFileError naming what is missing."""
    found = record.params.get(name, record.buffers.get(name))
    if found is None:
        raise ModelFileError(f"{record.class_name} has no tensor {name!r}")
    return found


def check_activation(activation: str) -> str:
    """Reject activations we do not implement at load time rather than at the first frame."""
    if activation not in ACTIVATION_GAINS:
        raise ModelFileError(f"unsupported activation {activation!r}")
    return activation


class FullyConnectedLayer(torch.nn.Module):
    """y = act(x @ (weight * weight_gain).T + bias * bias_gain) * default gain of act.

    `weight_gain` is lr_multiplier / sqrt(in_features) and `bias_gain` is lr_multiplier in NVIDIA's
    networks; both are stored on each layer, so take them from there (`settings_from_record`).
    Parameter names (`weight`, `bias`) equal the pickle's.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        activation: str = "linear",
        weight_gain: float | None = None,
        bias_gain: float = 1.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = check_activation(activation)
        self.weight_gain = float(weight_gain if weight_gain is not None else 1 / math.sqrt(in_features))
        self.bias_gain = float(bias_gain)
        self.weight = torch.nn.Parameter(torch.zeros(out_features, in_features))
        self.bias = torch.nn.Parameter(torch.zeros(out_features)) if bias else None
        self.fast = True  # cache the gain-scaled weights; False recomputes them per call (benchmark baseline)

    @staticmethod
    def settings_from_record(record: ModuleRecord) -> dict[str, Any]:
        """Constructor keyword arguments read from a stored FullyConnectedLayer (JSON-able)."""
        weight = tensor(record, "weight")
        return {
            "in_features": int(weight.shape[1]),
            "out_features": int(weight.shape[0]),
            "activation": str(attr(record, "activation", "linear")),
            "weight_gain": float(attr(record, "weight_gain")),
            "bias_gain": float(attr(record, "bias_gain", 1.0)),
            "bias": record.params.get("bias") is not None,
        }

    @classmethod
    def from_record(cls, record: ModuleRecord) -> FullyConnectedLayer:
        """A ready layer with the record's settings and weights."""
        layer = cls(**cls.settings_from_record(record))
        layer.load_state_dict(record.state_dict())
        return layer

    def settings(self) -> dict[str, Any]:
        """The constructor arguments, for saving in our own model format."""
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "activation": self.activation,
            "weight_gain": self.weight_gain,
            "bias_gain": self.bias_gain,
            "bias": self.bias is not None,
        }

    def scaled_params(self, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """weight * weight_gain and bias * bias_gain (cast to `dtype` if given), cached while the
        parameters are unchanged."""
        if not self.fast:
            return self._scale(dtype)
        sources = (self.weight,) if self.bias is None else (self.weight, self.bias)
        return derived(self, "scaled", sources, lambda: self._scale(dtype), extra=dtype)

    def _scale(self, dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        b = self.bias
        if b is not None and self.bias_gain != 1:
            b = b * self.bias_gain
        w = self.weight * self.weight_gain
        if dtype is None:
            return w, b
        return w.to(dtype), None if b is None else b.to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Under autocast the weights are kept in its dtype rather than cast on every call (same values).
        w, b = self.scaled_params(autocast_dtype(x.device.type))
        if self.activation == "linear":
            return F.linear(x, w, b)
        return bias_act(F.linear(x, w), b, self.activation, ACTIVATION_GAINS[self.activation])


def unit_styles(styles: torch.Tensor) -> torch.Tensor:
    """Styles [B, I] scaled to a largest magnitude of 1 per sample. A demodulated layer's output does not
    change with the styles' scale, but the input map scaled by huge styles (a far-out w) overflows
    float32 before the demodulation brings it back, and so do the styles' squares."""
    peak = styles.detach().abs().amax(dim=1, keepdim=True)
    return styles / torch.where(peak > 0, peak, torch.ones_like(peak))
