"""A fresh random-weight StyleGAN3 (T or R) of any resolution, as a pickle-like `ModuleRecord`.

For tests and benchmarks that need sizes no reference file covers; it lives with the tests because
the product never builds a random StyleGAN3 (only the StyleGAN2 default model). The layer schedule follows the
Alias-Free GAN paper (Karras et al. 2021, appendix F): cutoffs rise geometrically from 2 to half the
image resolution over the non-critical layers, stopbands likewise from 2**2.1 to 2**0.3 above the
last cutoff, each layer samples at the smallest power of two that holds its stopband (capped at the
resolution) plus a 10-pixel margin, the last two layers are critically sampled and channels fall as
1 / cutoff. Filters are Kaiser-windowed sinc (separable) or jinc (radial) low-passes.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from autolume_graph.gan.safe_pickle import ModuleRecord

CONFIGS = {  # channel_base, channel_max, conv_kernel, radial down filters
    "T": (32768, 512, 3, False),
    "R": (65536, 1024, 1, True),
}
NUM_LAYERS, NUM_CRITICAL, MARGIN, FILTER_SIZE, LRELU_UPSAMPLING = 14, 2, 10, 6, 2


def _kaiser_beta(numtaps: int, width: float) -> float:
    """Kaiser window beta for a transition `width` (fraction of Nyquist), Kaiser's formulas."""
    atten = 2.285 * (numtaps - 1) * math.pi * width + 7.95
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> torch.Tensor | None:
    """Kaiser-windowed low-pass with unit DC gain: 1-D sinc, or 2-D jinc when radial; None for 1 tap."""
    if numtaps == 1:
        return None
    window = np.kaiser(numtaps, _kaiser_beta(numtaps, width / (fs / 2)))
    x = np.arange(numtaps) - (numtaps - 1) / 2
    if radial:
        r = torch.from_numpy(np.hypot(*np.meshgrid(x / fs, x / fs)))
        f = (torch.special.bessel_j1(2 * cutoff * math.pi * r) / (math.pi * r)).numpy()
        f = f * np.outer(window, window)
    else:
        c = cutoff / (fs / 2)
        f = c * np.sinc(c * x) * window
    return torch.from_numpy(f / f.sum()).to(torch.float32)


def _fc(gen: torch.Generator, in_features: int, out_features: int, activation: str = "linear",
        lr_multiplier: float = 1.0, bias_init: float | list[float] = 0.0) -> ModuleRecord:
    return ModuleRecord(
        "FullyConnectedLayer",
        attrs={"in_features": in_features, "out_features": out_features, "activation": activation,
               "weight_gain": lr_multiplier / math.sqrt(in_features), "bias_gain": lr_multiplier},
        params={"weight": torch.randn(out_features, in_features, generator=gen) / lr_multiplier,
                "bias": torch.full([out_features], 0.0) + torch.as_tensor(bias_init, dtype=torch.float32)},
    )


def random_record(img_resolution: int, config: str = "T", seed: int = 0, channel_base: int | None = None,
                  channel_max: int | None = None, z_dim: int = 512, w_dim: int = 512,
                  mapping_layers: int = 2, img_channels: int = 3, conv_clamp: float = 256) -> ModuleRecord:
    """A generator record laid out as NVIDIA's StyleGAN3 config `T` or `R`, with seeded random weights."""
    base, cmax, conv_kernel, radial = CONFIGS[config]
    channel_base, channel_max = channel_base or base, channel_max or cmax
    gen = torch.Generator().manual_seed(seed)
    # Per-layer schedule (index 0 .. NUM_LAYERS, the last being toRGB).
    exponents = np.minimum(np.arange(NUM_LAYERS + 1) / (NUM_LAYERS - NUM_CRITICAL), 1)
    cutoffs = 2 * (img_resolution / 2 / 2) ** exponents
    last_stopband = img_resolution / 2 * 2**0.3
    stopbands = 2**2.1 * (last_stopband / 2**2.1) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + MARGIN * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    num_ws = NUM_LAYERS + 2

    synthesis = ModuleRecord("SynthesisNetwork", attrs={
        "w_dim": w_dim, "num_ws": num_ws, "img_resolution": img_resolution, "img_channels": img_channels,
        "output_scale": 0.25, "layer_names": []})
    c0 = int(channels[0])
    radii = torch.rand(c0, generator=gen).sqrt() * cutoffs[0]  # uniform in the disc of the bandwidth
    angles = torch.rand(c0, generator=gen) * 2 * math.pi
    synthesis.children["input"] = ModuleRecord(
        "SynthesisInput",
        attrs={"w_dim": w_dim, "channels": c0, "size": np.array([int(sizes[0])] * 2),
               "sampling_rate": float(rates[0]), "bandwidth": float(cutoffs[0])},
        params={"weight": torch.randn(c0, c0, generator=gen)},
        buffers={"transform": torch.eye(3), "freqs": torch.stack([radii * angles.cos(), radii * angles.sin()], 1),
                 "phases": torch.rand(c0, generator=gen) - 0.5},
        children={"affine": _fc(gen, w_dim, 4, bias_init=[1.0, 0.0, 0.0, 0.0])},
    )
    for idx in range(NUM_LAYERS + 1):
        prev = max(idx - 1, 0)
        is_torgb = idx == NUM_LAYERS
        critical = idx >= NUM_LAYERS - NUM_CRITICAL
        in_ch, out_ch = int(channels[prev]), int(channels[idx])
        in_size, out_size = int(sizes[prev]), int(sizes[idx])
        kernel = 1 if is_torgb else conv_kernel
        tmp_rate = max(rates[prev], rates[idx]) * (1 if is_torgb else LRELU_UPSAMPLING)
        up = int(np.rint(tmp_rate / rates[prev]))
        down = int(np.rint(tmp_rate / rates[idx]))
        up_taps = FILTER_SIZE * up if up > 1 and not is_torgb else 1
        down_taps = FILTER_SIZE * down if down > 1 and not is_torgb else 1
        down_radial = radial and not critical
        pad_total = (out_size - 1) * down + 1 - (in_size + kernel - 1) * up + up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        pad_hi = pad_total - pad_lo
        name = f"L{idx}_{out_size}_{out_ch}"
        synthesis.attrs["layer_names"].append(name)
        synthesis.children[name] = ModuleRecord(
            "SynthesisLayer",
            attrs={"w_dim": w_dim, "is_torgb": is_torgb, "is_critically_sampled": critical,
                   "in_channels": in_ch, "out_channels": out_ch,
                   "in_size": np.array([in_size] * 2), "out_size": np.array([out_size] * 2),
                   "in_sampling_rate": int(rates[prev]), "out_sampling_rate": int(rates[idx]),
                   "tmp_sampling_rate": int(tmp_rate), "in_cutoff": float(cutoffs[prev]),
                   "out_cutoff": float(cutoffs[idx]), "in_half_width": float(half_widths[prev]),
                   "out_half_width": float(half_widths[idx]), "conv_kernel": kernel, "conv_clamp": conv_clamp,
                   "up_factor": up, "up_taps": up_taps, "down_factor": down, "down_taps": down_taps,
                   "down_radial": down_radial, "padding": [pad_lo, pad_hi, pad_lo, pad_hi]},
            params={"weight": torch.randn(out_ch, in_ch, kernel, kernel, generator=gen),
                    "bias": torch.randn(out_ch, generator=gen) * 0.1},
            buffers={"magnitude_ema": torch.ones([]),
                     "up_filter": lowpass_filter(up_taps, cutoffs[prev], half_widths[prev] * 2, tmp_rate),
                     "down_filter": lowpass_filter(down_taps, cutoffs[idx], half_widths[idx] * 2, tmp_rate,
                                                   radial=down_radial)},
            children={"affine": _fc(gen, w_dim, in_ch, bias_init=1.0)},
        )
    mapping = ModuleRecord(
        "MappingNetwork",
        attrs={"z_dim": z_dim, "c_dim": 0, "w_dim": w_dim, "num_ws": num_ws, "num_layers": mapping_layers},
        buffers={"w_avg": torch.zeros(w_dim)},
        children={f"fc{i}": _fc(gen, z_dim if i == 0 else w_dim, w_dim, "lrelu", lr_multiplier=0.01)
                  for i in range(mapping_layers)},
    )
    return ModuleRecord(
        "Generator",
        attrs={"z_dim": z_dim, "c_dim": 0, "w_dim": w_dim, "img_resolution": img_resolution,
               "img_channels": img_channels, "num_ws": num_ws},
        children={"synthesis": synthesis, "mapping": mapping},
    )
