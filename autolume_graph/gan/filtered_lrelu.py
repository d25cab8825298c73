"""StyleGAN3's filtered leaky ReLU, fast on CPU.

The activation of an alias-free layer runs at a raised sampling rate: upsample by `up` with a
low-pass filter, leaky ReLU, low-pass again and keep every `down`-th sample. Written literally
(zero-stuff, full-rate convolution, subsample) most multiplications hit stuffed zeros or samples
that are thrown away. Here the upsampling is polyphase (one short filter per output phase, run
at the input rate) and the downsampling a strided convolution, each separable filter applied as
two 1-D passes; a radial (non-separable) down filter takes a strided 2-D depthwise convolution.

On the CPU the upsampling goes further (`_BandedUpsample1d`): depthwise convolutions run far below
the CPU's multiply-add rate, so each 1-D upsampling pass is a matrix product instead, the banded
operator cut into blocks of output rows, each block one small dense matrix times the input rows it
reads (a few times the multiply-adds of the filter, at matrix-product speed; on a shared 2-core AVX2
CPU: x2 on 4x upsampling, about even on 2x).
`CPU_BANDED = False` keeps the polyphase convolutions, for the side-by-side benchmark.

Fastest on the CPU is our C kernel (`kernels/cpu_filtered_lrelu`), built at first use for the machine:
it takes each channel through all the steps while the channel sits in cache (x4-8 over the banded
path on the large layers here). Until it is built, or where it cannot be (no C compiler), the banded
path runs; `activation_kernel` says which and why. `CPU_FUSED = False` keeps the torch paths.

`filtered_lrelu_reference` is the literal definition that the fast paths are checked against. On CUDA
the activation is one fused Triton kernel per layer (`kernels/`) where Triton runs, else the literal
form, which beats the polyphase one there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import kernels
from .kernels import cpu_filtered_lrelu
from .kernels.cpu_filtered_lrelu import CpuFilteredLReLU
from .kernels.filtered_lrelu_tiles import FusedFilteredLReLU

# On CUDA the fused kernel runs where `kernels.available` says it can; bench_gpu.py turns it off to compare.
CUDA_USES_FUSED = True
_FUSED_FAILURE: dict[str, str] = {}  # device type: why its fused kernel failed, once it has (not tried again)
# Without it, on CUDA the literal form's few large kernels beat many small polyphase ones when launched eagerly;
# benchmarks/bench_gpu.py compares both (also under CUDA graphs) and may flip this.
CUDA_USES_LITERAL = True
# On the CPU: the upsampling as blocked matrix products (see module doc); False: polyphase convolutions.
CPU_BANDED = True
# On the CPU: the C kernel once it is built; False: the torch paths above, for the side-by-side benchmark.
CPU_FUSED = True
BLOCK_INPUT_ROWS = 16  # input rows each block of the banded upsampling steps by (measured best: 16 of 8..32)


class _Upsample1d(torch.nn.Module):
    """Upsample one axis (2 = H, 3 = W) by `up` with filter f, then pad/crop as upfirdn2d does.

    Phase r of the result is a short depthwise convolution of the input with taps f[r::up], run
    at the input rate and written straight into every up-th column/row of the output.
    """

    def __init__(self, f: torch.Tensor, up: int, pad0: int, pad1: int, length: int, channels: int, dim: int):
        super().__init__()
        self.up, self.dim = up, dim
        k = f.numel()
        taps = math.ceil(k / up)
        self.out_len = length * up + pad0 + pad1 - k + 1
        # Output n is sample n + start of the full convolution of the zero-stuffed input with f;
        # that sample, q * up + r, is phase r's convolution at q.
        start = k - 1 - pad0
        q0, q1 = start // up, -(-(start + self.out_len) // up)
        lo, hi = taps - 1 - q0, q1 - length  # input padding; negative crops
        self.crop = (max(-lo, 0), length - max(-hi, 0))
        lo, hi = max(lo, 0), max(hi, 0)
        self.conv_pad = max(lo, hi)
        skip = self.conv_pad - lo  # extra leading outputs from the symmetric conv padding
        self.phases = []  # (first output index, first phase sample, count) per phase
        for r in range(up):
            n0 = (r - start) % up
            count = len(range(n0, self.out_len, up))
            self.phases.append((n0, skip + (n0 + start - r) // up - q0, count))
        padded = torch.zeros(taps * up, dtype=torch.float32)
        padded[:k] = f * up  # gain `up` per axis: up**2 over both
        w = padded.view(taps, up).t().flip(1)  # [up, taps], flipped because conv2d correlates
        shape = (1, taps) if dim == 3 else (taps, 1)
        self.register_buffer("weight", w[:, None, None].expand(up, channels, 1, taps).reshape(
            up, channels, 1, *shape).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.narrow(self.dim, self.crop[0], self.crop[1] - self.crop[0])
        if self.dim == 3:
            out = x.new_empty(b, h, self.out_len, c).permute(0, 3, 1, 2)
            pad = (0, self.conv_pad)
        else:
            out = x.new_empty(b, self.out_len, w, c).permute(0, 3, 1, 2)
            pad = (self.conv_pad, 0)
        for r, (n0, q0, count) in enumerate(self.phases):
            y = F.conv2d(x, self.weight[r], padding=pad, groups=c)
            dst = out[:, :, :, n0 :: self.up] if self.dim == 3 else out[:, :, n0 :: self.up, :]
            dst.copy_(y.narrow(self.dim, q0, count))
        return out


class _BandedUpsample1d(torch.nn.Module):
    """`_Upsample1d` on NHWC data as matrix products: [batch, length, N] -> [batch, out_len, N].

    The 1-D upsampling is a banded matrix (each output a filter's few taps of the input). Its output
    rows are cut into blocks of `up * BLOCK_INPUT_ROWS`; block j reads the input rows in a window
    that steps by BLOCK_INPUT_ROWS, so one batched product of each block's dense piece with an
    unfolded (strided, overlapping) view of the zero-padded input gives every output row at once.
    The matrix comes from running the polyphase form on the unit vectors, so both agree by construction.
    """

    def __init__(self, f: torch.Tensor, up: int, pad0: int, pad1: int, length: int):
        super().__init__()
        step = BLOCK_INPUT_ROWS
        polyphase = _Upsample1d(f, up, pad0, pad1, length, channels=length, dim=3)
        rows, out_len = up * step, polyphase.out_len
        # channel i holds the i-th unit vector: output row i is the operator's column i
        op = polyphase(torch.eye(length).view(1, length, 1, length)).reshape(length, out_len).t()
        blocks = -(-out_len // rows)
        used = [op[j * rows:(j + 1) * rows].ne(0).any(0).nonzero() for j in range(blocks)]
        lo = [int(u.min()) if len(u) else j * step for j, u in enumerate(used)]
        hi = [int(u.max()) if len(u) else j * step for j, u in enumerate(used)]
        self.lead = max(0, max(j * step - lo[j] for j in range(blocks)))
        self.span = max(hi[j] - (j * step - self.lead) + 1 for j in range(blocks))
        self.step, self.blocks, self.out_len = step, blocks, out_len
        self.trail = max(0, (blocks - 1) * step + self.span - self.lead - length)
        pieces = torch.zeros(blocks, rows, self.span)
        for j in range(blocks):
            start, end = j * step - self.lead, min((j + 1) * rows, out_len)
            a, b = max(start, 0), min(start + self.span, length)
            pieces[j, :end - j * rows, a - start:b - start] = op[j * rows:end, a:b]
        self.register_buffer("pieces", pieces, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, n = x.shape
        x = F.pad(x, (0, 0, self.lead, self.trail))
        windows = x.unfold(1, self.span, self.step)[:, :self.blocks].transpose(2, 3)  # [batch, blocks, span, N]
        return torch.matmul(self.pieces, windows).view(batch, -1, n)[:, :self.out_len]


class FilteredLReLU(torch.nn.Module):
    """bias -> upsample(up_filter) -> lrelu * gain, clamp -> downsample(down_filter), for one layer.

    Geometry (sizes, padding) is fixed at construction, so each frame runs only convolutions.
    Filters follow upfirdn2d: a 1-D filter is separable, a 2-D one is applied as is; the upsampling
    gain is up**2 overall. Results come out channels_last, which CPU depthwise convolutions favour.
    """

    def __init__(
        self,
        up_filter: torch.Tensor | None,
        down_filter: torch.Tensor | None,
        up: int,
        down: int,
        padding: list[int],
        in_size: tuple[int, int],
        channels: int,
        gain: float,
        slope: float,
        clamp: float | None,
    ):
        super().__init__()
        self.slope, self.down, self.gain = float(slope), down, float(gain)
        # clamp(g * y, c) == g * clamp(y, c / g): the gain rides on the down filter.
        self.clamp = None if clamp is None or clamp < 0 else float(clamp) / gain
        px0, px1, py0, py1 = (int(p) for p in padding)
        w, h = in_size
        fu = torch.ones(1) if up_filter is None else up_filter.detach().to(torch.float32).cpu()
        if fu.ndim != 1:
            raise ValueError("the up filter must be 1-D (separable)")
        self.upsampling, self.padding = up > 1 or fu.numel() > 1, [px0, px1, py0, py1]
        self.up_w = _Upsample1d(fu, up, px0, px1, w, channels, dim=3)
        self.up_h = _Upsample1d(fu, up, py0, py1, h, channels, dim=2)
        self.banded_w = _BandedUpsample1d(fu, up, px0, px1, w) if self.upsampling else None
        self.banded_h = _BandedUpsample1d(fu, up, py0, py1, h) if self.upsampling else None
        fd = torch.ones(1) if down_filter is None else down_filter.detach().to(torch.float32).cpu()
        fd = fd.flip(list(range(fd.ndim))) * gain ** (fd.ndim / 2)
        self.radial = fd.ndim == 2
        if self.radial:
            self.register_buffer("down_2d", fd.expand(channels, 1, *fd.shape).contiguous(), persistent=False)
        else:
            self.register_buffer("down_w", fd.expand(channels, 1, 1, fd.numel()).contiguous(), persistent=False)
            self.register_buffer(
                "down_h", fd.view(-1, 1).expand(channels, 1, fd.numel(), 1).contiguous(), persistent=False)
        self.filtering_down = self.radial or down > 1 or fd.numel() > 1
        # On CUDA the literal form's few large kernels beat many small polyphase ones (H200, 256 px:
        # 40 vs 58 ms per frame), so it keeps the stored filters for that path.
        self.literal_args = (up, down, [px0, px1, py0, py1], float(gain), float(slope), clamp)
        self.register_buffer("up_filter", None if up_filter is None else fu, persistent=False)
        self.register_buffer("down_filter", None if down_filter is None else down_filter.detach().to(
            torch.float32).cpu(), persistent=False)
        # The fused kernels' geometry is made on first use: a CPU never needs the CUDA one, nor a GPU the CPU's.
        self.kernel_args = (up_filter, down_filter, up, down, [px0, px1, py0, py1], in_size, gain, slope, clamp)
        self._fused_on: dict[str, FusedFilteredLReLU | CpuFilteredLReLU] = {}
        if CPU_FUSED:
            cpu_filtered_lrelu.support()  # starts the C kernel's build (on a thread of its own) while the model loads

    def fused(self, device: torch.device) -> FusedFilteredLReLU | CpuFilteredLReLU:
        """This layer's fused kernel for `device` (Triton on CUDA, C on the CPU), made the first time."""
        key = str(device)
        if key not in self._fused_on:
            if device.type == "cpu":
                self._fused_on[key] = CpuFilteredLReLU(*self.kernel_args)
            else:
                self._fused_on[key] = FusedFilteredLReLU(*self.kernel_args).to(device)
        return self._fused_on[key]

    def forward(self, x: torch.Tensor, bias: torch.Tensor, scale: torch.Tensor | None = None,
                channels_last: bool = False) -> torch.Tensor:
        """The activation of x * scale + bias, scale [B, C] (the demodulation; the C kernel folds it in);
        `channels_last`: the C kernel writes the result so (the other paths keep their own layouts)."""
        kernel, _ = activation_kernel(x.device)
        if kernel == "fused" and not x.is_cuda and kernels.autograd_needed(x, bias, scale):
            kernel = "banded" if CPU_BANDED else "polyphase"  # the C kernel has no backward pass
        if kernel == "fused":
            try:
                return self._fused_forward(x, bias, scale, channels_last)
            except Exception as exc:  # a GPU, toolchain or machine the kernel fails on: the picture goes on
                _FUSED_FAILURE.setdefault(x.device.type, f"fused kernel failed: {type(exc).__name__}: {exc}"
                                          .splitlines()[0])
                kernel, _ = activation_kernel(x.device)
        if scale is not None:
            x = x * scale.view(*scale.shape, 1, 1).to(x.dtype)
        if kernel == "literal":
            return filtered_lrelu_reference(x, self.up_filter, self.down_filter, bias, *self.literal_args)
        c = x.shape[1]
        x = x + bias.view(1, -1, 1, 1)
        if self.upsampling and CPU_BANDED:
            x = self._banded_upsample(x.contiguous(memory_format=torch.channels_last))
        elif self.upsampling:
            x = self.up_h(self.up_w(x.contiguous(memory_format=torch.channels_last)))
        else:
            x = F.pad(x, self.padding)
        if self.slope != 1:
            x = F.leaky_relu_(x, self.slope)
        if self.clamp is not None:
            x = x.clamp_(-self.clamp, self.clamp)
        if self.radial:
            return F.conv2d(x, self.down_2d, stride=self.down, groups=c)
        if not self.filtering_down:
            return x * self.gain if self.gain != 1 else x
        x = F.conv2d(x, self.down_w, stride=(1, self.down), groups=c)
        return F.conv2d(x, self.down_h, stride=(self.down, 1), groups=c)

    def _fused_forward(self, x: torch.Tensor, bias: torch.Tensor, scale: torch.Tensor | None,
                       channels_last: bool) -> torch.Tensor:
        kernel = self.fused(x.device)
        if x.is_cuda:
            return kernel(x if scale is None else x * scale.view(*scale.shape, 1, 1).to(x.dtype), bias)
        return kernel(x.to(torch.float32), bias, scale, channels_last).to(x.dtype)

    def _banded_upsample(self, x: torch.Tensor) -> torch.Tensor:
        """Both axes' upsampling on the NHWC memory of channels_last x; the result is channels_last."""
        b, c, h, _ = x.shape
        x = self.banded_w(x.permute(0, 2, 3, 1).reshape(b * h, -1, c))  # [B*H, W', C]
        width = x.shape[1]
        x = self.banded_h(x.reshape(b, h, width * c))  # [B, H', W'*C]
        return x.view(b, -1, width, c).permute(0, 3, 1, 2)


def activation_kernel(device: torch.device | str) -> tuple[str, str]:
    """The form the activation takes on `device` ("fused", "literal", "banded" or "polyphase"), and why."""
    device = torch.device(device)
    if device.type == "cpu":
        fused = _fused_support("cpu", cpu_filtered_lrelu.support(), CPU_FUSED, "C kernel switched off")
        return ("fused" if fused.available else "banded" if CPU_BANDED else "polyphase"), fused.reason
    if device.type != "cuda":
        return "polyphase", f"{device.type}: not CUDA"
    fused = _fused_support("cuda", kernels.available(device), CUDA_USES_FUSED, "fused kernel switched off")
    return ("fused" if fused.available else "literal" if CUDA_USES_LITERAL else "polyphase"), fused.reason


def _fused_support(device_type: str, found: kernels.Support, switched_on: bool, off: str) -> kernels.Support:
    """The fused kernel's availability on a device type after a failure there, or the benchmarks' switch."""
    if device_type in _FUSED_FAILURE:
        return kernels.Support(False, _FUSED_FAILURE[device_type])
    return found if switched_on else kernels.Support(False, off)


def _lrelu_gain_clamp(x: torch.Tensor, slope: float, gain: float, clamp: float | None) -> torch.Tensor:
    if slope != 1:
        x = F.leaky_relu(x, slope)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def _zero_stuff_pad(x: torch.Tensor, up: int, padding: list[int]) -> torch.Tensor:
    b, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(b, c, h, up, w, up)
        z[:, :, :, 0, :, 0] = x
        x = z.view(b, c, h * up, w * up)
    return F.pad(x, [int(p) for p in padding])


def _fir(x: torch.Tensor, f: torch.Tensor | None, gain: float) -> torch.Tensor:
    """Full-rate depthwise convolution with f (true convolution, as upfirdn2d)."""
    if f is None:
        return x * gain
    c = x.shape[1]
    f = (f.to(x) * gain ** (f.ndim / 2)).flip(list(range(f.ndim)))
    if f.ndim == 2:
        return F.conv2d(x, f.expand(c, 1, *f.shape), groups=c)
    x = F.conv2d(x, f.expand(c, 1, 1, f.numel()), groups=c)
    return F.conv2d(x, f.view(-1, 1).expand(c, 1, f.numel(), 1), groups=c)


def filtered_lrelu_reference(
    x: torch.Tensor,
    up_filter: torch.Tensor | None,
    down_filter: torch.Tensor | None,
    bias: torch.Tensor,
    up: int,
    down: int,
    padding: list[int],
    gain: float,
    slope: float,
    clamp: float | None,
) -> torch.Tensor:
    """The literal definition: zero-stuff, pad, filter at the full rate, lrelu, filter, subsample."""
    x = x + bias.view(1, -1, 1, 1)
    x = _fir(_zero_stuff_pad(x, up, padding), up_filter, up**2)
    x = _lrelu_gain_clamp(x, slope, gain, clamp)
    return _fir(x, down_filter, 1.0)[:, :, ::down, ::down]
