"""A TensorFlow StyleGAN2 generator (`G_main` with mapping and synthesis components) as NVIDIA's PyTorch record.

The record has the children, attributes and tensors NVIDIA's `networks.Generator` would pickle, so
the StyleGAN2 family builds it as it builds any snapshot, and nothing TensorFlow-specific reaches
the network. The conversion, in numpy (facts as NVIDIA's `legacy.py` states them):

* conv weights are HWIO: transposed to OIHW; an up-sampling conv's kernel is also flipped in space
  (TensorFlow runs it as a transposed convolution), as is the resnet shortcut's;
* dense weights are [in, out]: transposed; the mapping's gains are lrmul / sqrt(in) and lrmul;
* the style (`mod_bias`) is biased by +1 in TensorFlow's graph, so `affine.bias` is `mod_bias + 1`;
* `noiseN` buffers [1, 1, r, r] are the conv layers' `noise_const` in layer order, `noise_strength`
  is a scalar; `dlatent_avg` is `mapping.w_avg`; `lod` (progressive growing) is ignored;
* the resample kernel ([1, 3, 3, 1] unless the kwargs say otherwise) becomes the normalised 2-D filter;
* a conditional network's `LabelEmbed` (StyleGAN2-ADA's) is the mapping's `embed`.

Every dimension comes from the variables' names and shapes; the build kwargs only settle what
shapes cannot show (gains, activation, kernel, clamp). A variable this conversion does not use is
refused, so nothing of a network we do not understand is silently dropped.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import torch

from .records import ModelFileError, ModuleRecord, TFNetwork

RESAMPLE_KERNEL = [1, 3, 3, 1]  # TensorFlow StyleGAN2's default low-pass filter
MAPPING_LRMUL = 0.01  # G_mapping's default learning-rate multiplier (the gains follow it)
DLATENT_AVG_BETA = 0.995
IGNORED = re.compile(r"(.*/)?lod|synthesis/ToRGB_lod[1-9]\d*/.*")  # progressive growing's leftovers
_BLOCK = re.compile(r"synthesis/(\d+)x\1/.*")


class _Variables:
    """A network's variables by full name (`synthesis/8x8/Conv1/weight`); each is taken once, checked."""

    def __init__(self, net: TFNetwork) -> None:
        self.left: dict[str, np.ndarray] = {}
        self._collect("", net)

    def _collect(self, prefix: str, net: TFNetwork) -> None:
        self.left.update((prefix + name, value) for name, value in net.variables.items())
        for name, comp in net.components.items():
            self._collect(f"{prefix}{name}/", comp)

    def has(self, name: str) -> bool:
        return name in self.left

    def take(self, name: str, ndim: int) -> np.ndarray:
        value = self.left.pop(name, None)
        if value is None:
            raise ModelFileError(f"TensorFlow network has no variable {name}")
        if value.ndim != ndim or value.dtype.kind != "f":
            raise ModelFileError(f"TensorFlow variable {name} is {value.dtype} of shape {value.shape}, "
                                 f"expected {ndim} dimensions of floats")
        return value.astype(np.float32)

    def check_all_used(self) -> None:
        unused = sorted(name for name in self.left if not IGNORED.fullmatch(name))
        if unused:
            raise ModelFileError(f"TensorFlow variable {unused[0]} is not part of a StyleGAN2 generator"
                                 + (f" (+{len(unused) - 1} more)" if unused[1:] else ""))


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32, order="C"))  # a copy, 0-d kept


def _conv_weight(hwio: np.ndarray, flip: bool = False) -> torch.Tensor:
    """HWIO -> OIHW, flipped in space for TensorFlow's transposed (up-sampling) convolutions."""
    return _tensor((hwio[::-1, ::-1] if flip else hwio).transpose(3, 2, 0, 1))


def _fc(weight: np.ndarray, bias: np.ndarray, activation: str, lrmul: float, bias_offset: float = 0.0
        ) -> ModuleRecord:
    in_features, out_features = weight.shape
    return ModuleRecord("FullyConnectedLayer", attrs={
        "in_features": in_features, "out_features": out_features, "activation": activation,
        "weight_gain": lrmul / math.sqrt(in_features), "bias_gain": lrmul,
    }, params={"weight": _tensor(weight.T), "bias": _tensor(bias + bias_offset)})


def _affine(v: _Variables, scope: str) -> ModuleRecord:
    """The style of a modulated layer: `mod_bias` + 1, as TensorFlow adds it in the graph."""
    return _fc(v.take(f"{scope}/mod_weight", 2), v.take(f"{scope}/mod_bias", 1), "linear", 1.0, bias_offset=1.0)


def _kwarg(nets: tuple[TFNetwork, ...], name: str, default: Any) -> Any:
    """A build kwarg: the component's own, else the generator's (which TensorFlow passes down), else the default."""
    return next((net.static_kwargs[name] for net in nets if net.static_kwargs.get(name) is not None), default)


def _resample_filter(kernel: Any) -> torch.Tensor:
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim == 1:
        k = np.outer(k, k)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or not 1 <= k.shape[0] <= 64 or not np.isfinite(k).all() \
            or k.sum() == 0 or not np.array_equal(k, k[::-1, ::-1]):
        raise ModelFileError(f"resample kernel {np.asarray(kernel).tolist()!r:.60} is not a small symmetric filter")
    return _tensor(k / k.sum())


class _Synthesis:
    """Builds the synthesis record block by block from `synthesis/...` variables."""

    def __init__(self, v: _Variables, nets: tuple[TFNetwork, ...]) -> None:
        self.v = v
        self.activation = str(_kwarg(nets, "nonlinearity", "lrelu"))  # its gain: the activation's own default
        self.conv_clamp = _kwarg(nets, "conv_clamp", None)
        self.filter = _resample_filter(_kwarg(nets, "resample_kernel", RESAMPLE_KERNEL))
        names = {m.group(1) for m in map(_BLOCK.fullmatch, v.left) if m}
        self.resolutions = sorted(int(r) for r in names)
        if not self.resolutions or self.resolutions != [4 << i for i in range(len(self.resolutions))]:
            raise ModelFileError(f"TensorFlow synthesis blocks {self.resolutions[:12]} do not double from 4")
        self.img_resolution = self.resolutions[-1]
        self._lod_torgb()
        self.architecture = str(_kwarg(nets, "architecture", self._architecture()))
        self.w_dim = self._shape("synthesis/4x4/Conv/mod_weight")[0]  # dense [in, out]: in is the style's w
        self.img_channels = self._shape(f"synthesis/{self.img_resolution}x{self.img_resolution}/ToRGB/weight")[-1]
        self.layer_idx = 0  # TensorFlow numbers the noise inputs in layer order

    def _shape(self, name: str) -> tuple[int, ...]:
        if not self.v.has(name) or self.v.left[name].ndim < 1:
            raise ModelFileError(f"TensorFlow network has no variable {name}")
        return tuple(int(n) for n in self.v.left[name].shape)

    def _lod_torgb(self) -> None:
        """StyleGAN2's progressive configs name the output layer ToRGB_lod0: it is the last block's ToRGB."""
        res = self.img_resolution
        for name in [n for n in self.v.left if n.startswith("synthesis/ToRGB_lod0/")]:
            self.v.left[f"synthesis/{res}x{res}/ToRGB/{name.rsplit('/', 1)[1]}"] = self.v.left.pop(name)

    def _architecture(self) -> str:
        if any(self.v.has(f"synthesis/{r}x{r}/Skip/weight") for r in self.resolutions):
            return "resnet"
        return "skip" if all(self.v.has(f"synthesis/{r}x{r}/ToRGB/weight") for r in self.resolutions) else "orig"

    def _layer(self, scope: str, res: int, up: int) -> ModuleRecord:
        v = self.v
        weight = _conv_weight(v.take(f"{scope}/weight", 4), flip=up > 1)
        noise = v.has(f"{scope}/noise_strength")
        params = {"weight": weight, "bias": _tensor(v.take(f"{scope}/bias", 1))}
        buffers = {"resample_filter": self.filter}
        if noise:
            params["noise_strength"] = _tensor(v.take(f"{scope}/noise_strength", 0))
            buffers["noise_const"] = _tensor(v.take(f"synthesis/noise{self.layer_idx}", 4)[0, 0])
        self.layer_idx += 1
        out_channels, in_channels, kernel = weight.shape[0], weight.shape[1], weight.shape[-1]
        return ModuleRecord("SynthesisLayer", attrs={
            "in_channels": in_channels, "out_channels": out_channels, "w_dim": self.w_dim, "resolution": res,
            "up": up, "use_noise": noise, "activation": self.activation, "conv_clamp": self.conv_clamp,
            "padding": kernel // 2,
        }, params=params, buffers=buffers, children={"affine": _affine(v, scope)})

    def _torgb(self, scope: str) -> ModuleRecord:
        weight = _conv_weight(self.v.take(f"{scope}/weight", 4))
        in_channels, kernel = weight.shape[1], weight.shape[-1]
        return ModuleRecord("ToRGBLayer", attrs={
            "in_channels": in_channels, "out_channels": weight.shape[0], "w_dim": self.w_dim,
            "conv_clamp": self.conv_clamp, "weight_gain": 1 / math.sqrt(in_channels * kernel * kernel),
        }, params={"weight": weight, "bias": _tensor(self.v.take(f"{scope}/bias", 1))},
            children={"affine": _affine(self.v, scope)})

    def _skip(self, scope: str) -> ModuleRecord:
        weight = _conv_weight(self.v.take(f"{scope}/weight", 4), flip=True)
        return ModuleRecord("Conv2dLayer", attrs={
            "in_channels": weight.shape[1], "out_channels": weight.shape[0], "activation": "linear", "up": 2,
            "down": 1, "conv_clamp": self.conv_clamp, "padding": 0, "act_gain": 1.0,
            "weight_gain": 1 / math.sqrt(weight.shape[1] * weight.shape[-1] ** 2),
        }, params={"weight": weight, "bias": None}, buffers={"resample_filter": self.filter})

    def _block(self, res: int) -> ModuleRecord:
        scope = f"synthesis/{res}x{res}"
        children, params = {}, {}
        if res == 4:
            const = self.v.take(f"{scope}/Const/const", 4)
            if const.shape[0] != 1:
                raise ModelFileError(f"TensorFlow variable {scope}/Const/const has shape {const.shape}")
            params["const"] = _tensor(const[0])
            children["conv1"] = self._layer(f"{scope}/Conv", res, 1)
            in_channels = 0
        else:
            children["conv0"] = self._layer(f"{scope}/Conv0_up", res, 2)
            children["conv1"] = self._layer(f"{scope}/Conv1", res, 1)
            in_channels = children["conv0"].attrs["in_channels"]
            if self.architecture == "resnet":
                children["skip"] = self._skip(f"{scope}/Skip")
        is_last = res == self.img_resolution
        if self.architecture == "skip" or is_last:
            children["torgb"] = self._torgb(f"{scope}/ToRGB")
        return ModuleRecord("SynthesisBlock", attrs={
            "in_channels": in_channels, "w_dim": self.w_dim, "resolution": res,
            "img_channels": self.img_channels,
            "is_last": is_last, "architecture": self.architecture, "use_fp16": False,
            "num_conv": 1 if res == 4 else 2, "num_torgb": int("torgb" in children),
        }, params=params, buffers={"resample_filter": self.filter}, children=children)

    def record(self) -> ModuleRecord:
        blocks = {f"b{res}": self._block(res) for res in self.resolutions}
        last = blocks[f"b{self.img_resolution}"]
        num_ws = sum(b.attrs["num_conv"] for b in blocks.values()) + last.attrs["num_torgb"]
        return ModuleRecord("SynthesisNetwork", attrs={
            "w_dim": self.w_dim, "img_resolution": self.img_resolution,
            "img_resolution_log2": int(math.log2(self.img_resolution)),
            "img_channels": self.img_channels, "num_fp16_res": 0, "block_resolutions": self.resolutions,
            "num_ws": num_ws,
        }, children=blocks)


def _mapping(v: _Variables, nets: tuple[TFNetwork, ...], num_ws: int) -> ModuleRecord:
    """Dense layers with the mapping's lrmul gains; a class embedding where the network is conditional.

    StyleGAN2-ADA's `LabelEmbed` (a plain dense layer, normalised, appended to the normalised z) is
    NVIDIA's PyTorch `embed`; the original StyleGAN2's `LabelConcat` (concatenated before the
    normalisation, no bias) computes something else and is refused.
    """
    if v.has("mapping/LabelConcat/weight"):
        raise ModelFileError("conditional TensorFlow StyleGAN2 with LabelConcat (the original repo's) is not "
                             "supported; StyleGAN2-ADA's LabelEmbed is")
    if not _kwarg(nets, "normalize_latents", True):
        raise ModelFileError("TensorFlow mapping without normalize_latents is not supported")
    lrmul = float(_kwarg(nets, "mapping_lrmul", MAPPING_LRMUL))
    activation = str(_kwarg(nets, "mapping_nonlinearity", "lrelu"))
    num_layers = 0
    layers = {}
    if v.has("mapping/LabelEmbed/weight"):
        layers["embed"] = _fc(v.take("mapping/LabelEmbed/weight", 2), v.take("mapping/LabelEmbed/bias", 1), "linear",
                              1.0)
    c_dim = layers["embed"].attrs["in_features"] if layers else 0
    if int(_kwarg(nets, "label_size", 0) or 0) != c_dim:
        raise ModelFileError(f"TensorFlow network with label_size {_kwarg(nets, 'label_size', 0)} has a class "
                             f"embedding of {c_dim}")
    while v.has(f"mapping/Dense{num_layers}/weight"):
        scope = f"mapping/Dense{num_layers}"
        layers[f"fc{num_layers}"] = _fc(v.take(f"{scope}/weight", 2), v.take(f"{scope}/bias", 1), activation, lrmul)
        num_layers += 1
    if not num_layers:
        raise ModelFileError("TensorFlow mapping network has no Dense layers")
    w_avg = v.take("dlatent_avg", 1)
    embed_features = layers["embed"].attrs["out_features"] if c_dim else 0
    return ModuleRecord("MappingNetwork", attrs={
        "z_dim": layers["fc0"].attrs["in_features"] - embed_features, "c_dim": c_dim, "w_dim": w_avg.shape[0],
        "num_ws": num_ws,
        "num_layers": num_layers, "w_avg_beta": float(_kwarg(nets, "dlatent_avg_beta", DLATENT_AVG_BETA)),
    }, buffers={"w_avg": _tensor(w_avg)}, children=layers)


def generator_record(net: TFNetwork) -> ModuleRecord:
    """The generator record of a TensorFlow StyleGAN2 `G_main` network (Gs or G), tensors converted."""
    for part in ("mapping", "synthesis"):
        if part not in net.components:
            raise ModelFileError(f"TensorFlow network {net.name!r} has no {part} component")
    v = _Variables(net)
    synthesis = _Synthesis(v, (net.components["synthesis"], net)).record()
    mapping = _mapping(v, (net.components["mapping"], net), synthesis.attrs["num_ws"])
    v.check_all_used()
    return ModuleRecord("Generator", attrs={
        "z_dim": mapping.attrs["z_dim"], "c_dim": mapping.attrs["c_dim"], "w_dim": mapping.attrs["w_dim"],
        "img_resolution": synthesis.attrs["img_resolution"], "img_channels": synthesis.attrs["img_channels"],
        "num_ws": synthesis.attrs["num_ws"],
    }, children={"mapping": mapping, "synthesis": synthesis})
