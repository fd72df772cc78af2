"""Upsample (zero insertion), pad, FIR filter, downsample: `upfirdn2d` and its helpers.

Semantics follow NVIDIA's StyleGAN2/3 `upfirdn2d`: the filter is applied as a true convolution
(flipped) unless flip_filter=True, and a 1-D filter means the separable outer product f x f.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ops_cuda._dispatch import get_registry

Scaling = int | Sequence[int]
Padding = int | Sequence[int]


def parse_scaling(scaling: Scaling) -> tuple[int, int]:
    """int or [sx, sy] -> (sx, sy), both >= 1."""
    if isinstance(scaling, int):
        scaling = [scaling, scaling]
    sx, sy = (int(s) for s in scaling)
    if sx < 1 or sy < 1:
        raise ValueError(f"up/down factors must be >= 1, got {scaling}")
    return sx, sy


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """int, [px, py] or [x0, x1, y0, y1] -> (x0, x1, y0, y1); negative values crop."""
    if isinstance(padding, int):
        padding = [padding, padding]
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    if len(padding) != 4:
        raise ValueError(f"padding must be an int or have 2 or 4 entries, got {padding}")
    x0, x1, y0, y1 = padding
    return x0, x1, y0, y1


def get_filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a filter; None means the 1x1 identity."""
    if f is None:
        return 1, 1
    if f.ndim not in (1, 2):
        raise ValueError(f"filter must be 1-D or 2-D, got shape {tuple(f.shape)}")
    return int(f.shape[-1]), int(f.shape[0])


def setup_filter(
    f,
    device: torch.device | str = "cpu",
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """Turn taps (list, array or tensor) into a float32 filter tensor for upfirdn2d.

    A 1-D input stays 1-D (separable) when separable=True, or by default when it has >= 8 taps;
    otherwise it becomes its 2-D outer product. normalize makes the taps sum to 1; gain is the
    overall gain of the 2-D filter (so a separable filter gets sqrt(gain) per pass).
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim not in (0, 1, 2) or f.numel() == 0:
        raise ValueError(f"filter must be a non-empty scalar, 1-D or 2-D, got shape {tuple(f.shape)}")
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError("a 2-D filter cannot be made separable")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Pad-upsample-filter-downsample a batch of images [N, C, H, W].

    Steps: insert up-1 zeros after each pixel, pad (or crop, if negative) by `padding`, convolve
    with f (times gain over the 2-D filter), keep every down-th pixel.
    """
    if x.ndim != 4:
        raise ValueError(f"upfirdn2d expects x of shape [N, C, H, W], got {tuple(x.shape)}")
    if f is not None and (f.ndim not in (1, 2) or f.dtype != torch.float32):
        raise ValueError("upfirdn2d: f must be None or a float32 1-D/2-D tensor (see setup_filter)")
    fn = get_registry().resolve("upfirdn2d", impl, x.device)
    up, down, padding = parse_scaling(up), parse_scaling(down), parse_padding(padding)
    return fn(x, f, up, down, padding, bool(flip_filter), float(gain))


def upfirdn2d_ref(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: tuple[int, int],
    down: tuple[int, int],
    padding: tuple[int, int, int, int],
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """Reference; up/down are (x, y), padding (x0, x1, y0, y1)."""
    n, c, h, w = x.shape
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = padding
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)

    # Zero insertion: each pixel is followed by up-1 zeros in each direction.
    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    # Positive padding pads with zeros, negative padding crops.
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]

    # conv2d correlates, so flip the taps to get a convolution unless asked not to.
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        weight = f[None, None].repeat(c, 1, 1, 1)
        x = F.conv2d(x, weight, groups=c)
    else:
        weight = f[None, None].repeat(c, 1, 1)  # [C, 1, taps]
        x = F.conv2d(x, weight.unsqueeze(2), groups=c)  # horizontal pass
        x = F.conv2d(x, weight.unsqueeze(3), groups=c)  # vertical pass

    return x[:, :, ::downy, ::downx]


def _resampling_padding(
    f: torch.Tensor | None, padding: Padding, factors: tuple[int, int], up: bool
) -> list[int]:
    """`padding` plus what centres filter f when resampling by `factors` (x, y), as
    [x0, x1, y0, y1]. The formulas are NVIDIA's, so outputs line up with theirs sample for sample."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = get_filter_size(f)
    sx, sy = factors

    def sides(taps: int, s: int) -> tuple[int, int]:
        return ((taps + s - 1) // 2 if up else (taps - s + 1) // 2), (taps - s) // 2

    (bx, ax), (by, ay) = sides(fw, sx), sides(fh, sy)
    return [px0 + bx, px1 + ax, py0 + by, py1 + ay]


def filter2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Filter with f keeping the size (plus `padding`); the filter is centred."""
    pad = _resampling_padding(f, padding, (1, 1), up=True)  # factor 1: centred, fw // 2 before
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Upsample by `up` (output size H*up, W*up plus `padding`), filtering with f. The gain is
    multiplied by up*up: zero insertion keeps 1 in up*up samples, and this keeps the mean."""
    upx, upy = parse_scaling(up)
    pad = _resampling_padding(f, padding, (upx, upy), up=True)
    gain = gain * upx * upy
    return upfirdn2d(x, f, up=(upx, upy), padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)


def downsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    down: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Downsample by `down` (output size H/down, W/down plus `padding`), filtering with f first."""
    downx, downy = parse_scaling(down)
    pad = _resampling_padding(f, padding, (downx, downy), up=False)
    return upfirdn2d(x, f, down=(downx, downy), padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)
