"""Alias-suppressed leaky ReLU of StyleGAN3: bias, upsample+filter, lrelu, filter+downsample."""

from __future__ import annotations

import math

import torch

from ops_cuda._dispatch import get_registry
from ops_cuda.bias_act import bias_act_ref
from ops_cuda.upfirdn2d import Padding, get_filter_size, parse_padding, upfirdn2d_ref


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
    impl: str = "auto",
) -> torch.Tensor:
    """y = downsample(fd, clamp(lrelu(upsample(fu, x + b), slope) * gain)).

    fu/fd are 1-D (separable) or 2-D float32 filters or None (identity). The upsampling uses
    gain up**2 to preserve the mean; `padding` ([x0, x1, y0, y1], int or [px, py]) is applied to
    the upsampled signal. Output size: (in * up + pads - (fu_taps - 1) - (fd_taps - 1) + down - 1) // down.
    """
    if x.ndim != 4:
        raise ValueError(f"filtered_lrelu expects x of shape [N, C, H, W], got {tuple(x.shape)}")
    if not (isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1):
        raise ValueError(f"filtered_lrelu: up and down must be ints >= 1, got {up}, {down}")
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[1]):
        raise ValueError(f"filtered_lrelu: b has shape {tuple(b.shape)}, expected ({x.shape[1]},)")
    if clamp is not None and clamp < 0:
        raise ValueError(f"filtered_lrelu: clamp must be None or >= 0, got {clamp}")
    get_filter_size(fu)  # validates the filter shapes
    get_filter_size(fd)
    fn = get_registry().resolve("filtered_lrelu", impl, x.device)
    return fn(
        x,
        fu,
        fd,
        b,
        up,
        down,
        parse_padding(padding),
        float(gain),
        float(slope),
        None if clamp is None else float(clamp),
        bool(flip_filter),
    )


def filtered_lrelu_ref(
    x: torch.Tensor,
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    b: torch.Tensor | None,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float,
    slope: float,
    clamp: float | None,
    flip_filter: bool,
) -> torch.Tensor:
    """Reference built from bias_act and upfirdn2d; padding is (x0, x1, y0, y1)."""
    x = bias_act_ref(x, b, 1, "linear", 0.0, 1.0, None)
    x = upfirdn2d_ref(x, fu, (up, up), (1, 1), padding, flip_filter, float(up**2))
    x = bias_act_ref(x, None, 1, "lrelu", slope, gain, clamp)
    x = upfirdn2d_ref(x, fd, (1, 1), (down, down), (0, 0, 0, 0), flip_filter, 1.0)
    return x
