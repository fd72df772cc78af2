"""Equivariance metrics EQ-T, EQ-T_frac and EQ-R (Karras et al. 2021, "Alias-Free GANs", App. E).

For a random w (psi 1) we render the image twice: once with the identity input transform and
once with the network's input translated or rotated. The first image is then moved by the same
amount with an ideal (band-limited) resampling operator, and the two are compared inside the
region where both are defined. The score is the PSNR in dB of the pooled mean squared error over
all samples, for images in [-1, 1] (peak-to-peak 2).

The input is StyleGAN3's Fourier features; for StyleGAN2 it is the learned 4x4 constant,
resampled as a band-limited periodic picture spanning the image (the same matrix moves both the
same way, see `gan.networks.stylegan2.transform_const`). StyleGAN2's noise inputs and padding
stay fixed to the pixel grid, so it scores far lower: the paper's texture sticking, measured.

Translations are fractions of the image size in [-0.125, 0.125]; EQ-T snaps them to whole output
pixels (an exact shift), EQ-T_frac does not (a Lanczos-windowed sinc shift, a = 3). Rotations are
uniform over the full circle; the reference rotates the image with an oriented band-limiting
filter on a 4x upsampled grid, and the network's output passes through the matching
"pseudo-rotation" filter so both sides hold the same frequencies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from gan.errors import UserError
from gan.networks.stylegan2 import SynthesisNetwork as StyleGAN2Synthesis
from gan.progress import Progress

# ---------------------------------------------------------------------------------------------
# Resampling operators. Images are [N, C, H, W]; translations are in pixels (x right, y down).


def sinc(x: torch.Tensor) -> torch.Tensor:
    """Normalised sinc: sin(pi x) / (pi x)."""
    y = (x * math.pi).abs()
    return torch.where(y < 1e-30, torch.ones_like(x), torch.sin(y) / y.clamp_min(1e-30))


def lanczos_window(x: torch.Tensor, a: float) -> torch.Tensor:
    return torch.where(x.abs() < a, sinc(x / a), torch.zeros_like(x))


def rotation_matrix(angle: float) -> torch.Tensor:
    """3x3 matrix in the convention of the StyleGAN3 input transform."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def _valid_range(shift: int, lo_margin: int, hi_margin: int, size: int) -> torch.Tensor:
    """1-D mask of output indices m in [0, size) with shift + lo_margin <= m < size + shift - hi_margin."""
    m = torch.arange(size)
    return ((m >= shift + lo_margin) & (m < size + shift - hi_margin)).float()


def integer_translate(x: torch.Tensor, tx: int, ty: int) -> tuple[torch.Tensor, torch.Tensor]:
    """z[y, x] = x[y - ty, x - tx]; the mask marks pixels that came from inside the image."""
    _, _, h, w = x.shape
    mask = _valid_range(ty, 0, 0, h)[:, None] * _valid_range(tx, 0, 0, w)[None, :]
    if abs(tx) >= w or abs(ty) >= h:
        return torch.zeros_like(x), torch.zeros_like(x)
    # F.pad with a negative amount crops: pad in front, cut the same amount at the back.
    z = F.pad(x, [tx, -tx, ty, -ty])
    return z, mask.to(x).expand_as(x)


def _lanczos_shift_1d(x: torch.Tensor, shift: float, a: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift along dim (-1: width, -2: height) by a real amount with a Lanczos-a kernel."""
    size = x.shape[dim]
    i = math.floor(shift)
    frac = shift - i
    b = a - 1
    # z[m] = sum_k h[k] x[m - i - k] for k in [-b, a]; h[k] = L(k - frac), normalised to sum 1.
    k = torch.arange(-b, a + 1, dtype=torch.float64)
    h = sinc(k - frac) * sinc((k - frac) / a)
    h = (h / h.sum()).to(x.dtype).flip(0)  # conv2d correlates, so the taps run from k=a down to k=-b
    n, c, hh, ww = x.shape
    if dim == -1:
        xp = F.pad(x, [i + a, b - i, 0, 0])
        z = F.conv2d(xp.reshape(n * c, 1, hh, -1), h.view(1, 1, 1, -1)).reshape(n, c, hh, ww)
    else:
        xp = F.pad(x, [0, 0, i + a, b - i])
        z = F.conv2d(xp.reshape(n * c, 1, -1, ww), h.view(1, 1, -1, 1)).reshape(n, c, hh, ww)
    return z, _valid_range(i, a, b, size)


def fractional_translate(
    x: torch.Tensor, tx: float, ty: float, a: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Band-limited translation by (tx, ty) pixels; mask: pixels whose whole kernel saw the image."""
    _, _, h, w = x.shape
    if abs(tx) >= w - 2 * a or abs(ty) >= h - 2 * a:
        return torch.zeros_like(x), torch.zeros_like(x)
    z, mx = _lanczos_shift_1d(x, tx, a, dim=-1)
    z, my = _lanczos_shift_1d(z, ty, a, dim=-2)
    return z, (my[:, None] * mx[None, :]).to(x).expand_as(x)


def _circular_conv2d(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return torch.fft.irfftn(torch.fft.rfftn(p) * torch.fft.rfftn(q), s=p.shape)


def bandlimit_filter(
    mat: torch.Tensor,
    a: int = 3,
    amax: int = 16,
    aflt: int = 64,
    up: int = 4,
    cutoff_in: float = 1.0,
    cutoff_out: float = 1.0,
) -> torch.Tensor:
    """Oriented low-pass FIR filter for resampling through the 2x2 linear part of mat.

    It keeps only frequencies representable both before and after the transform: the
    convolution of the input-space sinc with the output-space (transformed) sinc, windowed by
    the convolution of the two corresponding Lanczos windows. The taps sit on a grid of 1/up
    pixel; the result has 2*amax*up - 1 taps per side, and each of its up x up polyphase
    components sums to 1, so upsampling with it preserves the mean.
    """
    if not a <= amax < aflt:
        raise ValueError("bandlimit_filter needs a <= amax < aflt")
    # float32 like the reference implementation (and 4x faster than float64 here).
    m = torch.as_tensor(mat, dtype=torch.float32)[:2, :2]
    n = 2 * aflt * up - 1
    taps = torch.fft.ifftshift((torch.arange(n, dtype=torch.float32) - n // 2) / up)  # 0 at index 0
    yi, xi = torch.meshgrid(taps, taps, indexing="ij")
    xo = m[0, 0] * xi + m[0, 1] * yi
    yo = m[1, 0] * xi + m[1, 1] * yi
    f = _circular_conv2d(
        sinc(xi * cutoff_in) * sinc(yi * cutoff_in), sinc(xo * cutoff_out) * sinc(yo * cutoff_out)
    )
    win = _circular_conv2d(
        lanczos_window(xi, a) * lanczos_window(yi, a), lanczos_window(xo, a) * lanczos_window(yo, a)
    )
    f = torch.fft.fftshift(f * win)  # back to the centre
    keep = 2 * amax * up - 1
    start = n // 2 - keep // 2
    f = f[start : start + keep, start : start + keep].double()
    for ry in range(up):
        for rx in range(up):
            f[ry::up, rx::up] /= f[ry::up, rx::up].sum()
    return f.float()


def affine_warp(
    x: torch.Tensor, mat: torch.Tensor, up: int = 4, a: int = 3, amax: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample x through the affine map mat (StyleGAN3 convention: output(p) = input(mat^-1 p),
    coordinates normalised to [-1, 1] across the image, translations in image sizes).

    The image is upsampled up x with the band-limiting filter, then read bilinearly at the
    mapped pixel centres. The mask keeps pixels whose nearest upsampled sample is free of
    border effects.
    """
    n, c, h, w = x.shape
    mat = torch.as_tensor(mat, dtype=torch.float64)
    f = bandlimit_filter(mat, a=a, amax=amax, up=up).to(x)
    half = f.shape[0] // 2

    # Fine grid: v[k] = sum_i x[i] f[k - up*i]; sample k lies at pixel coordinate (k - half)/up + 0.5.
    v = F.conv_transpose2d(x.reshape(n * c, 1, h, w), f[None, None], stride=up)
    v = v.reshape(n, c, v.shape[-2], v.shape[-1])

    # Where each output pixel centre comes from, in normalised then in pixel coordinates.
    inv = torch.linalg.inv(mat)
    yn, xn = torch.meshgrid(
        (2 * torch.arange(h, dtype=torch.float64) + 1) / h - 1,
        (2 * torch.arange(w, dtype=torch.float64) + 1) / w - 1,
        indexing="ij",
    )
    xs = inv[0, 0] * xn + inv[0, 1] * yn + 2 * inv[0, 2]
    ys = inv[1, 0] * xn + inv[1, 1] * yn + 2 * inv[1, 2]
    px = (xs + 1) / 2 * w  # pixel coordinates, 0 at the image's left edge
    py = (ys + 1) / 2 * h

    fine_x = (px - 0.5) * up + half
    fine_y = (py - 0.5) * up + half
    grid = torch.stack([2 * fine_x / (v.shape[3] - 1) - 1, 2 * fine_y / (v.shape[2] - 1) - 1], dim=-1)
    grid = grid.to(x).unsqueeze(0).expand(n, -1, -1, -1)
    z = F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=True)

    # Valid: the nearest fine sample is at least half+1 fine steps inside the image's upsampled span.
    rx, ry = torch.round(px * up), torch.round(py * up)
    valid = (rx >= half + 1) & (rx < w * up - half - 1) & (ry >= half + 1) & (ry < h * up - half - 1)
    return z, valid.to(x).expand_as(x)


def rotate(x: torch.Tensor, angle: float, a: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Band-limited rotation (the paper's operator R_alpha)."""
    return affine_warp(x, rotation_matrix(angle), up=4, a=a, amax=2 * a)


def pseudo_rotate(x: torch.Tensor, angle: float, a: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Filter x to the frequencies a rotation by angle would keep, without rotating (R*_alpha)."""
    f = bandlimit_filter(rotation_matrix(-angle), a=a, amax=2 * a, up=1).to(x)
    n, c, h, w = x.shape
    pad = f.shape[0] // 2
    # The filter is point-symmetric, so correlation equals convolution.
    y = F.conv2d(x.reshape(n * c, 1, h, w), f[None, None], padding=pad).reshape(n, c, h, w)
    mask = torch.zeros_like(x)
    mask[:, :, pad:-pad, pad:-pad] = 1
    return y, mask


# ---------------------------------------------------------------------------------------------
# The metric


@dataclass(frozen=True)
class EquivarianceConfig:
    """Settings of the equivariance metrics (defaults: the StyleGAN3 paper's).

    translate_max: largest translation, as a fraction of the image size.
    rotate_max: largest rotation, as a fraction of pi (1.0: the full circle).
    batch_size: samples per synthesis call (each call renders 2x this many images).
    lanczos_a: Lanczos window radius of the resampling filters.
    """

    translate_max: float = 0.125
    rotate_max: float = 1.0
    batch_size: int = 8
    lanczos_a: int = 3


def has_input_transform(G: torch.nn.Module) -> bool:
    """True for generators whose synthesis takes `input_transform`: StyleGAN3 (Fourier-feature
    input with a `transform` buffer) and our StyleGAN2 (resampled constant)."""
    synthesis = getattr(G, "synthesis", None)
    if isinstance(synthesis, StyleGAN2Synthesis):
        return True
    return getattr(getattr(synthesis, "input", None), "transform", None) is not None


def random_one_hot(n: int, c_dim: int, gen: torch.Generator) -> torch.Tensor:
    c = torch.zeros(n, c_dim)
    if c_dim:
        c[torch.arange(n), torch.randint(0, c_dim, (n,), generator=gen)] = 1
    return c


@torch.no_grad()
def compute_equivariance(
    G: torch.nn.Module,
    num_samples: int,
    *,
    eqt_int: bool = False,
    eqt_frac: bool = False,
    eqr: bool = False,
    config: EquivarianceConfig | None = None,
    seed: int = 0,
    label_sampler: Callable[[int, torch.Generator], torch.Tensor] | None = None,
    progress: Progress | None = None,
) -> dict[str, float]:
    """PSNR (dB) for each requested metric: keys 'eqt_int', 'eqt_frac', 'eqr'.

    All requested metrics share the mapping outputs and reference images of each batch; every
    sample gets its own random translation / angle. label_sampler(n, gen) gives labels for
    conditional generators (default: uniform random classes). progress(done, num_samples,
    "equivariance samples") after each batch.
    """
    if not has_input_transform(G):
        raise UserError(
            f"EQ-T / EQ-R need a StyleGAN2 or StyleGAN3 generator whose synthesis network takes an input "
            f"transform; {type(G).__name__} has none. Measure a model built by `gan.networks`."
        )
    if not (eqt_int or eqt_frac or eqr):
        return {}
    config = config or EquivarianceConfig()
    device = next(G.parameters()).device
    res = G.img_resolution
    a = config.lanczos_a
    gen = torch.Generator().manual_seed(seed)
    requested = [name for name, on in (("eqt_int", eqt_int), ("eqt_frac", eqt_frac), ("eqr", eqr)) if on]
    sums = {name: [0.0, 0.0] for name in requested}  # squared error, valid pixel count

    done = 0
    while done < num_samples:
        n = min(config.batch_size, num_samples - done)
        z = torch.randn(n, G.z_dim, generator=gen)
        c = label_sampler(n, gen) if label_sampler is not None else random_one_hot(n, G.c_dim, gen)
        ws = G.mapping(z.to(device), c.to(device), truncation_psi=1)

        # Per requested metric: the per-sample input transforms and the matching comparisons.
        jobs = []
        if eqt_int:
            t = torch.round((torch.rand(n, 2, generator=gen) * 2 - 1) * config.translate_max * res)
            compare = [partial(_compare_integer, shift=s) for s in t.long().tolist()]
            jobs.append(("eqt_int", _translation_batch(-t / res), compare))
        if eqt_frac:
            t = (torch.rand(n, 2, generator=gen) * 2 - 1) * config.translate_max
            compare = [partial(_compare_fractional, shift=s, a=a) for s in (t * res).tolist()]
            jobs.append(("eqt_frac", _translation_batch(-t), compare))
        if eqr:
            angles = ((torch.rand(n, generator=gen) * 2 - 1) * (config.rotate_max * math.pi)).tolist()
            compare = [partial(_compare_rotation, angle=ang, a=a) for ang in angles]
            jobs.append(("eqr", torch.stack([rotation_matrix(-ang) for ang in angles]), compare))

        # One synthesis call renders the references (identity transform) and all transformed inputs.
        transforms = torch.cat([torch.eye(3).expand(n, 3, 3)] + [job[1] for job in jobs])
        images = (
            G.synthesis(
                ws.repeat(len(jobs) + 1, 1, 1),
                noise_mode="const",
                force_fp32=True,
                input_transform=transforms.to(device),
            )
            .float()
            .cpu()
        )
        orig = images[:n]
        for j, (name, _, compare) in enumerate(jobs):
            out = images[(j + 1) * n : (j + 2) * n]
            for i in range(n):
                ref, got, mask = compare[i](orig[i : i + 1], out[i : i + 1])
                sums[name][0] += float(((ref - got).double().square() * mask).sum())
                sums[name][1] += float(mask.double().sum())
        done += n
        if progress is not None:
            progress(done, num_samples, "equivariance samples")

    return {name: _psnr(err, cnt) for name, (err, cnt) in sums.items()}


def _compare_integer(orig, out, shift):
    ref, mask = integer_translate(orig, shift[0], shift[1])
    return ref, out, mask


def _compare_fractional(orig, out, shift, a):
    ref, mask = fractional_translate(orig, shift[0], shift[1], a)
    return ref, out, mask


def _compare_rotation(orig, out, angle, a):
    # Both sides are band-limited the same way: the reference by rotating, the output by R*.
    ref, ref_mask = rotate(orig, angle, a)
    got, got_mask = pseudo_rotate(out, angle, a)
    return ref, got, ref_mask * got_mask


def _translation_batch(t: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3).repeat(t.shape[0], 1, 1)
    m[:, :2, 2] = t
    return m


def _psnr(squared_error_sum: float, count: float) -> float:
    """PSNR in dB for the value range [-1, 1]; inf for a perfect match, nan without valid pixels."""
    if count == 0:
        return float("nan")
    mse = squared_error_sum / count
    if mse == 0:
        return float("inf")
    return float(20 * np.log10(2.0) - 10 * np.log10(mse))
