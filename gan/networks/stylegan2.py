"""StyleGAN2 generator and discriminator ("Analyzing and Improving the Image Quality of StyleGAN").

Class structure, constructor arguments (with their official defaults) and parameter/buffer names
follow NVIDIA's PyTorch `networks_stylegan2.py` (StyleGAN3 repository), so official weights load by
name and outputs agree with the official code to float32 rounding.

Conventions shared with the official code:
- Weights are stored at unit scale; convolution / dense gains (equalized learning rate) are
  applied at run time.
- float16 is only used on CUDA (blocks at the highest `num_fp16_res` resolutions); on any other
  device every block runs in float32.

Beyond the official API, `SynthesisNetwork.forward` takes an optional per-sample input transform
([N, 3, 3], the StyleGAN3 convention), applied by band-limited resampling of the learned 4x4
constant (see `transform_const`). It lets the renderer and the equivariance metrics move a
StyleGAN2 picture like a StyleGAN3 one; StyleGAN2 is not built to follow it, so the output is
only roughly translated (its noise and padding stay put: "texture sticking").
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import torch

from gan.networks.generator import GeneratorBase
from gan.networks.layers import FullyConnectedLayer, attrs_repr
from gan.networks.mapping import MappingNetwork
from ops_cuda import modconv
from ops_cuda.bias_act import ACTIVATIONS, bias_act
from ops_cuda.conv2d_resample import conv2d_resample
from ops_cuda.upfirdn2d import downsample2d, setup_filter, upsample2d

DEFAULT_FILTER = (1, 3, 3, 1)
ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("random", "const", "none")


def _channels(res: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // res, channel_max)


def _fp16_resolution(img_resolution_log2: int, num_fp16_res: int) -> int:
    """Lowest resolution that runs in float16 (never below 8)."""
    return max(2 ** (img_resolution_log2 + 1 - num_fp16_res), 8)


def _check_resolution(img_resolution: int) -> int:
    if img_resolution < 4 or img_resolution & (img_resolution - 1) != 0:
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
    return int(np.log2(img_resolution))


def _check_architecture(architecture: str) -> None:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")


# ---- modulated convolution -------------------------------------------------------------------------


def modulated_conv2d(
    x: torch.Tensor,  # [N, I, H, W] input activations
    weight: torch.Tensor,  # [O, I, kh, kw] unit-scale weights
    styles: torch.Tensor,  # [N, I] per-sample input channel scales
    noise: torch.Tensor | None = None,  # added to the output, broadcastable to [N, O, H', W']
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
) -> torch.Tensor:
    """Convolution with per-sample weights w' = w * style (and, with demodulation, rescaled so
    every output channel has unit expected magnitude).

    fused_modconv=True runs one grouped convolution with the per-sample weights; False scales the
    activations before and after a shared convolution instead (cheaper to back-propagate)."""
    _out_channels, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        # Rescale before forming the products so nothing overflows float16; demodulation removes
        # any constant factor again.
        weight = weight * (
            1 / np.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    # The ops impl switch picks NVIDIA's formulation ('ref': the fused grouped convolution or, with
    # fused_modconv=False, its non-fused path) or the cheaper one with the same result.
    x = modconv.modulated_conv2d(
        x,
        weight,
        styles,
        demodulate=demodulate,
        padding=padding,
        up=up,
        down=down,
        resample_filter=resample_filter,
        flip_weight=flip_weight,
        fused=fused_modconv,
    )
    if noise is not None:
        x = x.add_(noise.to(x.dtype))
    return x


# ---- input transform -------------------------------------------------------------------------------


def _dft_basis(pos: torch.Tensor, size: int) -> torch.Tensor:
    """[..., size] complex basis of the trigonometric polynomial through `size` periodic samples,
    evaluated at real sample positions pos [...] (in samples; integer = on a sample).

    Frequencies k in fft order (0, 1, ..., -1) contribute exp(2 pi i k pos / size). The Nyquist
    frequency (size even) contributes cos(pi pos), the mean of its two aliases +-size/2: that keeps
    the polynomial real for real samples and still equal to them at integer positions."""
    k = torch.fft.fftfreq(size, d=1.0 / size, dtype=torch.float64, device=pos.device)  # integers
    phase = pos.unsqueeze(-1) * k * (2 * math.pi / size)
    basis = torch.polar(torch.ones_like(phase), phase)
    if size % 2 == 0:
        basis[..., size // 2] = torch.cos(pos * math.pi).to(basis.dtype)
    return basis


def transform_const(const: torch.Tensor, transform: torch.Tensor) -> torch.Tensor:
    """Resample a learned constant [C, S, S] through per-sample input transforms [N, 3, 3] -> [N, C, S, S].

    The constant is read as samples of a continuous, periodic, band-limited picture spanning the
    whole image: the trigonometric polynomial of its 2-D DFT. Output pixel (i, j) takes that
    picture's value at transform @ p, where p is the pixel centre in the StyleGAN3 input
    convention: x right, y down, in units of the image size, centred at 0. So the same matrix moves
    a StyleGAN2 picture as it moves a StyleGAN3 one: out(p) = in(A p + t); a translation t of -1/S
    moves the content one constant pixel to the right (torch.roll by +1), and rotations evaluate
    the polynomial at rotated positions.

    Where every pixel lands on a sample (identity, whole-pixel shifts, quarter turns) the samples
    are copied, which is the polynomial's exact value there without floating-point rounding."""
    if const.ndim != 3 or const.shape[1] != const.shape[2]:
        raise ValueError(f"const must be [C, S, S], got {list(const.shape)}")
    transform = transform.reshape(-1, 3, 3).to(device=const.device, dtype=torch.float64)
    channels, size = const.shape[0], const.shape[-1]
    n = transform.shape[0]

    centres = (torch.arange(size, dtype=torch.float64, device=const.device) + 0.5) / size - 0.5
    yy, xx = torch.meshgrid(centres, centres, indexing="ij")
    p = torch.stack([xx.reshape(-1), yy.reshape(-1), torch.ones_like(xx.reshape(-1))])
    q = transform[:, :2] @ p  # [N, 2, S*S] source positions, image units
    col = (q[:, 0] + 0.5) * size - 0.5  # [N, S*S] in constant pixels
    row = (q[:, 1] + 0.5) * size - 0.5

    # sum_{k,l} C[k, l] B_k(row) B_l(col) / S^2, with C the DFT of each channel.
    coeffs = torch.fft.fft2(const.to(torch.float64)).reshape(channels, size * size)
    basis = _dft_basis(row, size).unsqueeze(-1) * _dft_basis(col, size).unsqueeze(-2)  # [N, P, S, S]
    basis = basis.reshape(n, size * size, size * size)
    out = (basis @ coeffs.t()).real / (size * size)  # [N, P, C]
    out = out.transpose(1, 2).reshape(n, channels, size, size).to(const.dtype)

    # Exact copies where the transform maps the pixel grid onto itself (tolerance: float32 matrices).
    row_i, col_i = row.round(), col.round()
    on_grid = ((row - row_i).abs() < 1e-5).all(dim=1) & ((col - col_i).abs() < 1e-5).all(dim=1)
    if bool(on_grid.any()):
        flat = (row_i.long() % size) * size + (col_i.long() % size)  # [N, P]
        copied = const.reshape(channels, -1)[:, flat].permute(1, 0, 2).reshape(n, channels, size, size)
        out = torch.where(on_grid.reshape(n, 1, 1, 1), copied, out)
    return out


# ---- layers ----------------------------------------------------------------------------------------


class Conv2dLayer(torch.nn.Module):
    """Plain convolution with equalized learning rate, optional FIR up/downsampling, bias and
    activation. trainable=False stores weight and bias as buffers (frozen discriminator layers)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = DEFAULT_FILTER,
        conv_clamp: float | None = None,  # clamp the output to +-conv_clamp, None = off
        channels_last: bool = False,
        trainable: bool = True,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation].def_gain

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(
            memory_format=memory_format
        )
        bias_value = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias_value) if bias_value is not None else None
        else:
            self.register_buffer("weight", weight)
            if bias_value is not None:
                self.register_buffer("bias", bias_value)
            else:
                self.bias = None

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        # A transposed conv (up > 1) is cheaper without the weight flip; the filter is symmetric anyway.
        x = conv2d_resample(
            x,
            w.to(x.dtype),
            f=self.resample_filter,
            up=self.up,
            down=self.down,
            padding=self.padding,
            flip_weight=(self.up == 1),
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return attrs_repr(self, "in_channels", "out_channels", "activation", "up", "down")


class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 convolution (optionally upsampling 2x) + per-pixel noise + bias + activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,  # output resolution
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = DEFAULT_FILTER,
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation].def_gain

        # Styles start at 1 (bias_init=1) so an untrained layer is an ordinary convolution.
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        )
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = True, gain=1
    ) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            shape = [x.shape[0], 1, self.resolution, self.resolution]
            noise = torch.randn(shape, device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=noise,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            flip_weight=(self.up == 1),
            fused_modconv=fused_modconv,
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return attrs_repr(self, "in_channels", "out_channels", "w_dim", "resolution", "up", "activation")


class ToRGBLayer(torch.nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation or noise."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        )
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        # No demodulation here, so the equalized-lr gain goes into the styles instead.
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return attrs_repr(self, "in_channels", "out_channels", "w_dim")


# ---- generator -------------------------------------------------------------------------------------


class SynthesisBlock(torch.nn.Module):
    """One resolution of the synthesis network: [const | upsampling conv0] + conv1 (+ toRGB).

    Consumes num_conv + num_torgb ws; the toRGB w is shared with the next block's first conv."""

    def __init__(
        self,
        in_channels: int,  # 0 = first block (learned constant input)
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = DEFAULT_FILTER,
        conv_clamp: float | None = 256,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        fused_modconv_default: bool | str = True,  # True, False or 'inference_only'
        **layer_kwargs,
    ):
        _check_architecture(architecture)
        super().__init__()
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture = img_channels, is_last, architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.fused_modconv_default = fused_modconv_default
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.num_conv = 0
        self.num_torgb = 0
        common = dict(
            w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, channels_last=self.channels_last
        )

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, up=2, resample_filter=resample_filter, **common, **layer_kwargs
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **common, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(
                out_channels,
                img_channels,
                w_dim=w_dim,
                conv_clamp=conv_clamp,
                channels_last=self.channels_last,
            )
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels,
                out_channels,
                kernel_size=1,
                bias=False,
                up=2,
                resample_filter=resample_filter,
                channels_last=self.channels_last,
            )

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,  # [N, num_conv + num_torgb, w_dim]
        force_fp32: bool = False,
        fused_modconv: bool | str | None = None,
        update_emas: bool = False,  # accepted for the official call signature; nothing to update
        input_transform: torch.Tensor | None = None,  # [N, 3, 3] for the const (first block only)
        **layer_kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if ws.ndim != 3 or ws.shape[1] != self.num_conv + self.num_torgb or ws.shape[2] != self.w_dim:
            raise ValueError(
                f"block b{self.resolution} needs ws [N, {self.num_conv + self.num_torgb}, {self.w_dim}], "
                f"got {list(ws.shape)}"
            )
        w_iter = iter(ws.unbind(dim=1))
        if ws.device.type != "cuda":
            force_fp32 = True  # float16 convolutions are slow or missing off the GPU
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        memory_format = (
            torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format
        )
        if fused_modconv is None:
            fused_modconv = self.fused_modconv_default
        if fused_modconv == "inference_only":
            fused_modconv = not self.training

        if input_transform is not None and self.in_channels != 0:
            raise ValueError(f"block b{self.resolution} has no constant input to transform")
        if self.in_channels == 0 and input_transform is not None:
            # Only the constant moves: the noise inputs and the zero padding of every convolution
            # stay fixed to the pixel grid, which is why StyleGAN2 is not equivariant.
            transform = input_transform.reshape(-1, 3, 3)
            if transform.shape[0] not in (1, ws.shape[0]):
                raise ValueError(
                    f"input transform has {transform.shape[0]} matrices for a batch of {ws.shape[0]}"
                )
            x = transform_const(self.const.to(torch.float32), transform)
            x = x.expand(ws.shape[0], -1, -1, -1).to(dtype=dtype, memory_format=memory_format)
        elif self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == "resnet":
            # sqrt(0.5) on both branches keeps the sum at unit variance.
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=np.sqrt(0.5), **layer_kwargs)
            x = y.add_(x)
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img.add_(y) if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return attrs_repr(self, "resolution", "architecture", "use_fp16")


class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, img_resolution, img_resolution] in ~[-1, 1]."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,  # channels at resolution r: min(channel_base // r, channel_max)
        channel_max: int = 512,
        num_fp16_res: int = 4,  # float16 in this many highest resolutions (CUDA only)
        **block_kwargs,
    ):
        super().__init__()
        self.img_resolution_log2 = _check_resolution(img_resolution)
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        fp16_resolution = _fp16_resolution(self.img_resolution_log2, num_fp16_res)

        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = _channels(res // 2, channel_base, channel_max) if res > 4 else 0
            is_last = res == img_resolution
            block = SynthesisBlock(
                in_channels,
                _channels(res, channel_base, channel_max),
                w_dim=w_dim,
                resolution=res,
                img_channels=img_channels,
                is_last=is_last,
                use_fp16=res >= fp16_resolution,
                **block_kwargs,
            )
            # Blocks overlap by their toRGB w, so only the last one's toRGB adds a w.
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def block_ws(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """The slice of ws each block reads, in block order."""
        out, w_idx = [], 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            out.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
            w_idx += block.num_conv
        return out

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "random",
        force_fp32: bool = False,
        update_emas: bool = False,
        input_transform: torch.Tensor | None = None,  # [N, 3, 3] (StyleGAN3 convention); None = none
        **block_kwargs,
    ) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        ws = ws.to(torch.float32)
        x = img = None
        for res, cur_ws in zip(self.block_resolutions, self.block_ws(ws)):
            block = getattr(self, f"b{res}")
            # Only the first block has the constant the transform applies to.
            extra = {"input_transform": input_transform} if block.in_channels == 0 else {}
            x, img = block(
                x,
                img,
                cur_ws,
                noise_mode=noise_mode,
                force_fp32=force_fp32,
                update_emas=update_emas,
                **extra,
                **block_kwargs,
            )
        return img

    def extra_repr(self) -> str:
        return attrs_repr(self, "w_dim", "num_ws", "img_resolution", "img_channels", "num_fp16_res")


class Generator(GeneratorBase):
    """z (+ class c) -> mapping -> ws -> synthesis -> image."""

    synthesis_class = SynthesisNetwork


# ---- discriminator ---------------------------------------------------------------------------------


class DiscriminatorBlock(torch.nn.Module):
    """One resolution of the discriminator: [fromRGB] + conv0 + downsampling conv1 (+ resnet skip)."""

    def __init__(
        self,
        in_channels: int,  # 0 = first block (reads the image)
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        first_layer_idx: int,  # index of this block's first layer, counting from the input
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: Sequence[float] = DEFAULT_FILTER,
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        freeze_layers: int = 0,  # layers with index < freeze_layers are frozen (stored as buffers)
    ):
        _check_architecture(architecture)
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"in_channels must be 0 or tmp_channels ({tmp_channels}), got {in_channels}")
        super().__init__()
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.first_layer_idx, self.architecture = first_layer_idx, architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))

        self.num_layers = 0

        def next_trainable() -> bool:
            trainable = self.first_layer_idx + self.num_layers >= freeze_layers
            self.num_layers += 1
            return trainable

        common = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, tmp_channels, kernel_size=1, trainable=next_trainable(), **common
            )
        self.conv0 = Conv2dLayer(
            tmp_channels, tmp_channels, kernel_size=3, trainable=next_trainable(), **common
        )
        self.conv1 = Conv2dLayer(
            tmp_channels,
            out_channels,
            kernel_size=3,
            down=2,
            resample_filter=resample_filter,
            trainable=next_trainable(),
            **common,
        )
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels,
                out_channels,
                kernel_size=1,
                bias=False,
                down=2,
                resample_filter=resample_filter,
                trainable=next_trainable(),
                channels_last=self.channels_last,
            )

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if (x if x is not None else img).device.type != "cuda":
            force_fp32 = True
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        memory_format = (
            torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format
        )
        if x is not None:
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None

        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y.add_(x)
        else:
            x = self.conv0(x)
            x = self.conv1(x)
        return x, img

    def extra_repr(self) -> str:
        return attrs_repr(self, "resolution", "architecture", "use_fp16")


class MinibatchStdLayer(torch.nn.Module):
    """Appends the mean standard deviation over groups of samples as extra feature channels,
    so the discriminator can see a lack of variety in a minibatch."""

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        # Sample i belongs to group i % (n // g); channels are split into f parts.
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [n // g, f]
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return attrs_repr(self, "group_size", "num_channels")


class DiscriminatorEpilogue(torch.nn.Module):
    """The 4x4 end of the discriminator: minibatch stddev, conv, fc, output (projected on the
    class embedding cmap when conditional)."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,  # 0 = unconditional
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,  # None = whole minibatch
        mbstd_num_channels: int = 1,  # 0 = no minibatch stddev layer
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ):
        _check_architecture(architecture)
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.img_channels, self.architecture = img_channels, architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = (
            MinibatchStdLayer(group_size=mbstd_group_size, num_channels=mbstd_num_channels)
            if mbstd_num_channels > 0
            else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels,
            in_channels,
            kernel_size=3,
            activation=activation,
            conv_clamp=conv_clamp,
        )
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(
        self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None, force_fp32: bool = False
    ) -> torch.Tensor:
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)  # always float32 here
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            # Projection discriminator: score = <features, class embedding> / sqrt(dim).
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x

    def extra_repr(self) -> str:
        return attrs_repr(self, "resolution", "architecture")


class Discriminator(torch.nn.Module):
    """image [N, C, H, W] (+ class c) -> logits [N, 1]."""

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 4,
        conv_clamp: float | None = 256,
        cmap_dim: int | None = None,  # class embedding size, None = channels at 4x4
        block_kwargs: dict | None = None,
        mapping_kwargs: dict | None = None,
        epilogue_kwargs: dict | None = None,
    ):
        super().__init__()
        block_kwargs = dict(block_kwargs or {})
        mapping_kwargs = dict(mapping_kwargs or {})
        epilogue_kwargs = dict(epilogue_kwargs or {})
        self.init_kwargs = copy.deepcopy(
            dict(
                c_dim=c_dim,
                img_resolution=img_resolution,
                img_channels=img_channels,
                architecture=architecture,
                channel_base=channel_base,
                channel_max=channel_max,
                num_fp16_res=num_fp16_res,
                conv_clamp=conv_clamp,
                cmap_dim=cmap_dim,
                block_kwargs=block_kwargs,
                mapping_kwargs=mapping_kwargs,
                epilogue_kwargs=epilogue_kwargs,
            )
        )
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.img_resolution_log2 = _check_resolution(img_resolution)
        if img_resolution < 8:
            raise ValueError(f"the discriminator needs img_resolution >= 8, got {img_resolution}")
        self.block_resolutions = [2**i for i in range(self.img_resolution_log2, 2, -1)]
        fp16_resolution = _fp16_resolution(self.img_resolution_log2, num_fp16_res)
        channels_at_4 = _channels(4, channel_base, channel_max)
        if cmap_dim is None:
            cmap_dim = channels_at_4
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)

        layer_idx = 0
        for res in self.block_resolutions:
            tmp_channels = _channels(res, channel_base, channel_max)
            block = DiscriminatorBlock(
                tmp_channels if res < img_resolution else 0,
                tmp_channels,
                _channels(res // 2, channel_base, channel_max),
                resolution=res,
                first_layer_idx=layer_idx,
                use_fp16=res >= fp16_resolution,
                **block_kwargs,
                **common,
            )
            setattr(self, f"b{res}", block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs
            )
        self.b4 = DiscriminatorEpilogue(
            channels_at_4, cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **common
        )

    def forward(
        self, img: torch.Tensor, c: torch.Tensor | None, update_emas: bool = False, **block_kwargs
    ) -> torch.Tensor:
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, **block_kwargs)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

    def extra_repr(self) -> str:
        return attrs_repr(self, "c_dim", "img_resolution", "img_channels")
