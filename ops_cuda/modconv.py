"""Modulated convolution of StyleGAN2/3: per-sample weights w[n, o, i] = weight[o, i] * styles[n, i],
optionally demodulated (each output channel of each sample scaled to unit expected magnitude).

Two formulations of the same maths, behind the usual impl switch:

- 'ref' is NVIDIA's: the per-sample weights [N, O, I, kh, kw] are formed and demodulated
  elementwise, then one grouped convolution runs over the batch (or, with fused=False, NVIDIA's
  non-fused path: activations scaled, a shared convolution, demodulation coefficients from the full
  per-sample product).
- 'cpu' / 'cuda' (plain torch, no build): the demodulation coefficients come from a small matmul,
  styles^2 [N, I] @ (sum over the taps of weight^2) [I, O] (the sums kept between forwards under
  an active `ops_cuda.WeightCache`), and are applied the cheapest way for the layer:
  - a 3x3 layer that runs by Winograd on the CPU (`winograd.tile_for`; StyleGAN2's upsampling
    layers as four phase convolutions) keeps one shared weight and takes both scales inside its
    transforms (the 'scaled_conv3x3' op): no pass over the weights or the activations, and a batch
    is one matmul;
  - else the styles and coefficients are folded into per-sample weights in one pass (then one
    grouped convolution) where the weight is smaller than a sample's activations (high
    resolutions, few channels; not for upsampling layers of a batch, where torch's grouped
    transposed convolution is slow);
  - else the styles scale the input channels, one convolution with the shared weight runs over the
    batch and the coefficients scale the output channels, so nothing of size N * O * I * kh * kw
    is formed (NVIDIA's non-fused path; also taken whenever only the styles need gradients, as in
    projection, where the backward then skips a weight gradient).
  1x1 layers without resampling (StyleGAN3-R, every toRGB) are one batched matmul with the folded
  [N, O, I] weights. Results equal 'ref' up to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ops_cuda import winograd
from ops_cuda._dispatch import get_registry
from ops_cuda.conv2d_resample import conv2d_resample
from ops_cuda.weight_cache import derived

DEMOD_EPS = 1e-8  # added to the squared weight norm before rsqrt, as in the official code


@dataclass(frozen=True)
class ModConv:
    """The settings of one modulated convolution, as modulated_conv2d documents them, checked and
    typed once there and handed to whichever implementation the registry picks."""

    demodulate: bool
    padding: int
    up: int
    down: int
    resample_filter: torch.Tensor | None
    flip_weight: bool
    input_gain: torch.Tensor | None
    normalize: bool
    fused: bool

    def resample_kwargs(self) -> dict:
        """conv2d_resample's keyword arguments for this layer's filter, resampling and padding."""
        return dict(
            f=self.resample_filter,
            up=self.up,
            down=self.down,
            padding=self.padding,
            flip_weight=self.flip_weight,
        )


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    padding: int = 0,
    up: int = 1,
    down: int = 1,
    resample_filter: torch.Tensor | None = None,
    flip_weight: bool = True,
    input_gain: torch.Tensor | None = None,
    normalize: bool = False,
    fused: bool = True,
    impl: str = "auto",
) -> torch.Tensor:
    """x [N, I, H, W], weight [O, I, kh, kw], styles [N, I] -> [N, O, H', W'].

    padding / up / down / resample_filter / flip_weight: as conv2d_resample. input_gain: scalar or
    [N, I], scales the input channels after demodulation (StyleGAN3). normalize: StyleGAN3's
    rescaling of weight (per output channel) and styles (over the whole tensor) to unit mean square
    before demodulating (demodulation cancels it up to the epsilon). fused: which of NVIDIA's two
    formulations 'ref' uses; the fast impls always take the cheaper one."""
    if x.ndim != 4 or weight.ndim != 4 or styles.ndim != 2:
        raise ValueError(
            f"modulated_conv2d expects x [N, I, H, W], weight [O, I, kh, kw], styles [N, I]; got "
            f"{tuple(x.shape)}, {tuple(weight.shape)}, {tuple(styles.shape)}"
        )
    if styles.shape != (x.shape[0], weight.shape[1]) or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"modulated_conv2d: styles {tuple(styles.shape)} and x {tuple(x.shape)} do not match "
            f"weight {tuple(weight.shape)} (need styles [N, I] and x [N, I, ...] with I = {weight.shape[1]})"
        )
    fn = get_registry().resolve("modulated_conv2d", impl, x.device)
    settings = ModConv(
        demodulate=bool(demodulate),
        padding=int(padding),
        up=int(up),
        down=int(down),
        resample_filter=resample_filter,
        flip_weight=bool(flip_weight),
        input_gain=input_gain,
        normalize=bool(normalize),
        fused=bool(fused),
    )
    return fn(x, weight, styles, settings)


def _input_gain(input_gain: torch.Tensor, n: int, in_ch: int) -> torch.Tensor:
    return input_gain.expand(n, in_ch) if input_gain.ndim else input_gain.reshape(1, 1).expand(n, in_ch)


def modulated_conv2d_ref(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, c: ModConv
) -> torch.Tensor:
    """NVIDIA's formulations (arguments already validated)."""
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if c.demodulate and c.normalize:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = None  # the per-sample weights [N, O, I, kh, kw], formed when NVIDIA's code forms them
    if c.demodulate or c.fused:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + DEMOD_EPS).rsqrt() if c.demodulate else None  # [N, O]
    conv = dict(c.resample_kwargs(), impl="ref")
    if not c.fused:
        s = styles if c.input_gain is None else styles * _input_gain(c.input_gain, n, in_ch)
        x = conv2d_resample(x * s.to(x.dtype).reshape(n, -1, 1, 1), weight.to(x.dtype), **conv)
        return x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1) if c.demodulate else x
    if c.demodulate:
        w = w * dcoefs.reshape(n, out_ch, 1, 1, 1)
    if c.input_gain is not None:
        w = w * _input_gain(c.input_gain, n, in_ch).reshape(n, 1, in_ch, 1, 1)
    x = x.reshape(1, n * in_ch, *x.shape[2:])
    x = conv2d_resample(x, w.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype), groups=n, **conv)
    return x.reshape(n, out_ch, *x.shape[2:])


def filter_sq_norms(weight: torch.Tensor) -> torch.Tensor:
    """[O, I]: the squared norm of each filter of weight [O, I, kh, kw]. An uncached forward reads
    every weight from memory for this: squaring it in one vectorised pass, then summing each run of
    taps by a matrix-vector product, takes 1.6 ms for a 512x512x3x3 weight (one core, cold cache)
    where einsum (a batched 1x9 dot product) takes 3.9 ms."""
    taps = weight.shape[2] * weight.shape[3]
    sq = weight.square().reshape(-1, taps)
    return (sq @ sq.new_ones(taps)).reshape(weight.shape[:2])


def _runs_winograd(x: torch.Tensor, weight: torch.Tensor, c: ModConv, scales: tuple) -> bool:
    """True when this layer runs by Winograd on the CPU with the scales inside the transforms
    (ops_cuda/winograd.py: 3x3 layers without downsampling, StyleGAN2's upsampling ones included,
    without gradients, where `winograd.pick_tile` prefers it to oneDNN)."""
    if weight.shape[2:] != (3, 3) or c.down != 1:
        return False
    if c.up == 1:
        return winograd.tile_for(x, weight, (c.padding, c.padding), scales=scales) is not None
    if c.up == 2 and winograd.up2_supported(weight, c.resample_filter, c.padding):
        return winograd.tile_for(x, weight, (1, 1), up=2, scales=scales) is not None
    return False


def modulated_conv2d_fast(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, c: ModConv
) -> torch.Tensor:
    """Demodulation from a small matmul; the scales folded into per-sample weights or applied to
    the activations, whichever touches fewer elements."""
    n = x.shape[0]
    in_ch, taps = weight.shape[1], weight.shape[2] * weight.shape[3]
    out_scale = None  # [N, O] or [1, O]
    if c.demodulate:
        wsq = derived(weight, "filter_norms", lambda: filter_sq_norms(weight))  # [O, I]
        if c.normalize:
            # weight / rms(weight[o]) is folded into the output scale instead of forming a new weight.
            inv_ms = wsq.sum(dim=1, keepdim=True).mul(1.0 / (in_ch * taps)).reciprocal()  # [O, 1]
            wsq = wsq * inv_ms
            styles = styles * styles.square().mean().rsqrt()
        out_scale = (styles.square() @ wsq.t() + DEMOD_EPS).rsqrt()  # [N, O]
        if c.normalize:
            out_scale = out_scale * inv_ms.sqrt().t()
    s = styles if c.input_gain is None else styles * _input_gain(c.input_gain, n, in_ch)
    conv = c.resample_kwargs()
    out_ch, kh, kw = weight.shape[0], weight.shape[2], weight.shape[3]
    if kh == 1 and kw == 1 and c.up == 1 and c.down == 1 and c.padding == 0:
        # A 1x1 layer is a per-sample matmul: fold both scales into [N, O, I] weights (HW times
        # fewer elements than the product) and run one bmm. torch's grouped 1x1 convolution on the
        # CPU loops over the groups with its slow path and concatenates the gradients.
        scale = (
            s.reshape(n, 1, in_ch)
            if out_scale is None
            else out_scale.reshape(n, -1, 1) * s.reshape(n, 1, in_ch)
        )
        w = (weight.reshape(1, out_ch, in_ch) * scale).to(x.dtype)  # [N, O, I]
        y = torch.bmm(w, x.reshape(n, in_ch, -1))
        return y.reshape(n, out_ch, *x.shape[2:])
    # Upsampling layers of a batch always scale the activations: torch's grouped transposed
    # convolution runs far below the shared one on the CPU (2x in the forward at 64 channels).
    # So does a frozen weight under gradients for the styles (projection): per-sample weights would
    # need a weight-gradient convolution in the backward; scaled activations need none.
    styles_only = torch.is_grad_enabled() and styles.requires_grad and not weight.requires_grad
    if _runs_winograd(x, weight, c, (s, out_scale)):
        # One shared weight, the scales applied inside the Winograd transforms: no pass over the
        # weight or the activations, and a batch is one matmul (grouped convolutions are not).
        conv3x3 = get_registry().resolve("scaled_conv3x3", "auto", x.device)
        return conv3x3(x, weight, c.padding, c.up, c.resample_filter, c.flip_weight, s, out_scale)
    out_pixels = (x.shape[2] * c.up // c.down) * (x.shape[3] * c.up // c.down)
    act_elements = in_ch * x.shape[2] * x.shape[3] + out_ch * out_pixels  # of one sample
    fold = not styles_only and (n == 1 or c.up == 1) and weight.numel() <= act_elements
    if fold:
        # Fold both scales into per-sample weights, one pass over them (the outer product of the
        # scales is only [N, O, I]), then one grouped convolution: cheaper than two passes over
        # the activations (forward and backward) wherever a sample's activations outweigh the
        # weight, as in the high-resolution and all small-channel layers.
        scale = (
            s.reshape(n, 1, in_ch)
            if out_scale is None
            else out_scale.reshape(n, -1, 1) * s.reshape(n, 1, in_ch)
        )
        w = weight.unsqueeze(0) * scale.unsqueeze(-1).unsqueeze(-1)  # [N, O or 1 -> O, I, kh, kw]
        w = w.expand(n, out_ch, in_ch, kh, kw).reshape(n * out_ch, in_ch, kh, kw)
        x = conv2d_resample(x.reshape(1, n * in_ch, *x.shape[2:]), w.to(x.dtype), groups=n, **conv)
        return x.reshape(n, out_ch, *x.shape[2:])
    x = x * s.to(x.dtype).reshape(n, in_ch, 1, 1)
    x = conv2d_resample(x, weight.to(x.dtype), **conv)
    if out_scale is not None:
        x = x * out_scale.to(x.dtype).reshape(out_scale.shape[0], -1, 1, 1)
    return x
