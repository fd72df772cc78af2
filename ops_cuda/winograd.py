"""Stride-1 3x3 convolution by Winograd's minimal filtering, F(m x m, 3 x 3), on the CPU.

A 3x3 convolution computed tile by tile: each a x a input tile d (a = m + 2) gives an m x m output
tile Y = A^T [(G g G^T) * (B^T d B)] A (Lavin and Gray, "Fast Algorithms for Convolutional Neural
Networks", 2015). Summed over the input channels, the elementwise products become a^2 matrix
products [O, C] @ [C, tiles]: a^2 / m^2 multiply-adds per output instead of 9 (F(2x2): 4, F(4x4):
2.25). The transforms (C++, ops_cpu.cpp) cost memory passes, so it only pays with enough channels
and tiles: `pick_tile` chooses, per layer, F(4x4), F(2x2) or torch's own convolution (oneDNN),
after timings of this project's generator layers (`python -m bench.conv3x3`, docs/benchmarks.md).
The output differs from a direct convolution by float rounding only (F(4x4): ~1e-5 relative per
layer).

Modulated convolutions (`scaled_conv3x3_auto`) keep the shared weight and pass their per-sample
channel scales to the C++ transforms, which apply them as they read the input and write the
output. StyleGAN2's upsampling layer (a stride-2 transposed convolution, then a 4-tap filter) is
four 3x3 phase convolutions at the input's resolution (`transform_weight_up2`), whose outputs the
output transform writes interleaved: by F(4x4) as many multiply-adds as the transposed
convolution, without its output copy and filter pass. Transformed weights are kept between
forwards under an active `ops_cuda.WeightCache`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ops_cuda.weight_cache import derived

# G per output tile size m (interpolation points 0, 1, -1, 2, -2 and infinity): the weight
# transform. B^T and A^T, the input and output transforms, are written out in ops_cpu.cpp.
_G = {
    2: [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
    4: [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
}
TILE_SIZES = tuple(_G)


@dataclass(frozen=True)
class TileRule:
    """When Winograd beats oneDNN's direct convolution (fp32, one core of an AVX-512 Xeon;
    `python -m bench.conv3x3`, with --batch 8 for a batch): from 32 channels on, on all but small
    images. F(4x4) saves the most multiply-adds, but on small images at batch 1 it has few tiles,
    i.e. narrow matmuls, which run slower (then F(2x2)). oneDNN gains more from a batch than the
    transforms do: a batch needs more channels or larger images."""

    min_in_channels: int = field(default=32, metadata={"help": "fewer input channels: oneDNN"})
    min_out_channels: int = field(default=32, metadata={"help": "fewer output channels: oneDNN"})
    min_size: int = field(
        default=24, metadata={"help": "smaller outputs (either side): oneDNN (too few tiles for the matmuls)"}
    )
    f4_min_size: int = field(
        default=48, metadata={"help": "batch 1: outputs at least this large use F(4x4), smaller ones F(2x2)"}
    )
    batch_f4_min_size: int = field(default=32, metadata={"help": "the same for a batch"})
    batch_min_in_channels: int = field(
        default=128, metadata={"help": "a batch with fewer input channels needs outputs of batch_min_size"}
    )
    batch_min_size: int = field(default=64, metadata={"help": "see batch_min_in_channels"})


def pick_tile(
    in_ch: int, out_ch: int, out_h: int, out_w: int, batch: int = 1, rule: TileRule = TileRule()
) -> int | None:
    """The output tile size m for this layer at this batch size, or None for a direct convolution."""
    size = min(out_h, out_w)
    if in_ch < rule.min_in_channels or out_ch < rule.min_out_channels or size < rule.min_size:
        return None
    if batch == 1:
        return 4 if size >= rule.f4_min_size else 2
    if in_ch < rule.batch_min_in_channels and size < rule.batch_min_size:
        return None
    return 4 if size >= rule.batch_f4_min_size else 2


def transform_weight(w: torch.Tensor, m: int) -> torch.Tensor:
    """w [O, C, 3, 3] -> U [a*a, O, C], U[:, o, c] = G w[o, c] G^T flattened (one matmul)."""
    out_ch, in_ch = w.shape[:2]
    g = torch.tensor(_G[m], dtype=torch.float64)
    k = torch.kron(g, g).to(w.dtype)  # [a*a, 9]: row (i, j) maps the taps to U[i, j]
    return (k @ w.reshape(out_ch * in_ch, 9).t()).reshape(-1, out_ch, in_ch)


def conv3x3(
    ext,
    x: torch.Tensor,
    w: torch.Tensor,
    padding: tuple[int, int],
    m: int,
    band_bytes: int = 16 << 20,
    in_scale: torch.Tensor | None = None,
    out_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """F.conv2d(x * in_scale, w, padding=padding) * out_scale for x [N, C, H, W], w [O, C, 3, 3]
    (float32/64, CPU), in_scale [N, C] and out_scale [N, O] optional, with the transforms of
    extension `ext` (see `convolve`)."""
    u = transform_weight(w.to(x.dtype), m)
    return convolve(ext, x, u, conv_out_size(x, padding), padding, m, 1, band_bytes, in_scale, out_scale)


def conv_out_size(x: torch.Tensor, padding: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a stride-1 3x3 convolution of x [N, C, H, W] with this padding."""
    return x.shape[2] + 2 * padding[0] - 2, x.shape[3] + 2 * padding[1] - 2


def convolve(
    ext,
    x: torch.Tensor,
    u: torch.Tensor,
    out_size: tuple[int, int],
    padding: tuple[int, int],
    m: int,
    up: int = 1,
    band_bytes: int = 16 << 20,
    in_scale: torch.Tensor | None = None,
    out_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """The Winograd convolution of x [N, C, H, W] with the transformed weight u [a*a, up*up*O, C]
    (a = m + 2): out_size (per phase) outputs of each of the up*up phase convolutions, placed
    interleaved into y [N, O, up*out_h, up*out_w] (up = 1: a plain convolution). The channel scales
    are applied inside the transforms. The tiles go in bands of tile rows whose transformed input
    and output (a^2 / m^2 times the input's and output's size) fit in about band_bytes, in one pair
    of buffers: few, equal allocations keep the process's peak memory where torch's convolution
    leaves it."""
    n, in_ch, h, wd = x.shape
    chans = u.shape[1]
    out_h, out_w = out_size
    if out_h < 1 or out_w < 1:
        raise ValueError(f"winograd conv3x3: input {tuple(x.shape)} with padding {padding} gives no output")
    py, px = padding
    a = m + 2
    th_all, tw = -(-out_h // m), -(-out_w // m)
    row_bytes = a * a * n * (in_ch + chans) * tw * x.element_size()  # V and M of one tile row
    band = max(1, min(th_all, band_bytes // row_bytes))
    v_buf = x.new_empty([a * a * in_ch * n * band * tw])
    m_buf = x.new_empty([a * a * chans * n * band * tw])
    y = x.new_empty([n, chans // (up * up), up * out_h, up * out_w])
    x = x.contiguous()
    no_scale = x.new_empty([0])
    in_scale = no_scale if in_scale is None else in_scale.to(x.dtype).expand(n, in_ch).contiguous()
    out_scale = no_scale if out_scale is None else out_scale.to(x.dtype).expand(n, y.shape[1]).contiguous()
    for ty0 in range(0, th_all, band):
        th = min(band, th_all - ty0)
        v = v_buf[: a * a * in_ch * n * th * tw].view(a * a, in_ch, n, th * tw)
        mm = m_buf[: a * a * chans * n * th * tw].view(a * a, chans, n * th * tw)
        ext.winograd_input(x, v, m, ty0, th, tw, py, px, in_scale)
        torch.bmm(u, v.view(a * a, in_ch, n * th * tw), out=mm)
        ext.winograd_output(mm.view(a * a, chans, n, th * tw), y, m, ty0, th, tw, out_scale, up)
    return y


def up2_supported(w: torch.Tensor, f: torch.Tensor | None, padding: int) -> bool:
    """Whether `transform_weight_up2` covers conv2d_resample(x, w, f, up=2, padding=padding): a 3x3
    kernel, a 4-tap filter (1-D, or 2-D 4x4) and padding 1, StyleGAN2's upsampling layers."""
    return w.shape[2:] == (3, 3) and f is not None and f.shape in ((4,), (4, 4)) and padding == 1


def _up2_phase_taps(f: torch.Tensor, flip_weight: bool) -> torch.Tensor:
    """L [4, 9, 9]: phase py*2+px's 3x3 kernel = L[phase] @ (the layer's 9 taps).

    conv2d_resample's up=2 path (a transposed convolution, then f with gain 4) is one convolution
    of the zero-stuffed input with the 6x6 kernel K = w (*) 4f (a true convolution; w flipped for
    flip_weight). Output pixel (2q + py, 2r + px) depends on the input rows q-1 .. q+1 and columns
    r-1 .. r+1 only, through K's taps of its parity: phase kernel k[t, u] = K[4 + py - 2t, 4 + px - 2u],
    a stride-1 3x3 correlation with padding 1 at the input's resolution."""
    g = (f if f.ndim == 2 else torch.outer(f, f)).to(torch.float64) * 4
    taps = torch.zeros(2, 2, 3, 3, 3, 3, dtype=torch.float64)  # [py, px, t, u, a, b]
    for py in range(2):
        for px in range(2):
            for t in range(3):
                for u in range(3):
                    for a in range(3):
                        for b in range(3):
                            # K[r, c] = sum_ab w'[a, b] g[r - a, c - b], w' = w flipped or not
                            r, c = 4 + py - 2 * t - a, 4 + px - 2 * u - b
                            if 0 <= r < 4 and 0 <= c < 4:
                                wa, wb = (2 - a, 2 - b) if flip_weight else (a, b)
                                taps[py, px, t, u, wa, wb] = g[r, c]
    return taps.reshape(4, 9, 9)


def transform_weight_up2(w: torch.Tensor, f: torch.Tensor, m: int, flip_weight: bool) -> torch.Tensor:
    """w [O, C, 3, 3] -> U [a*a, 4*O, C] of the four phase convolutions (phase-major channels) that
    together equal conv2d_resample(x, w, f, up=2, padding=1, flip_weight=flip_weight); see
    `up2_supported`. Runs as `convolve(..., padding=(1, 1), up=2)`."""
    out_ch, in_ch = w.shape[:2]
    g = torch.tensor(_G[m], dtype=torch.float64)
    k = (torch.kron(g, g) @ _up2_phase_taps(f, flip_weight)).transpose(0, 1)  # [a*a, 4, 9]
    u = k.reshape(-1, 9).to(w.dtype) @ w.reshape(out_ch * in_ch, 9).t()  # [a*a * 4, O * C]
    return u.reshape(-1, 4 * out_ch, in_ch)


def tile_for(
    x: torch.Tensor,
    w: torch.Tensor,
    padding: tuple[int, int],
    up: int = 1,
    scales: tuple[torch.Tensor | None, ...] = (),
) -> int | None:
    """The tile size conv3x3_auto (up = 1) or a scaled up=2 layer would use for x and w (and
    padding (1, 1) for up = 2), or None when it runs torch's convolution: no CPU float32/64 input,
    an empty batch, a gradient needed (the backward stays with torch's convolution), or
    `pick_tile` prefers oneDNN. An upsampling layer is four phase convolutions at the input's
    resolution, i.e. one with 4x the output channels."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or x.shape[0] == 0:
        return None
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, w, *scales)):
        return None
    if up == 2:
        # Four 3x3 phases by F(4x4) do the direct transposed convolution's multiply-adds (F(2x2):
        # 16/9 of them); what they save is its output's copy and the separate FIR pass.
        m = pick_tile(x.shape[1], 4 * w.shape[0], x.shape[2], x.shape[3], x.shape[0])
        return m if m == 4 else None
    return pick_tile(x.shape[1], w.shape[0], *conv_out_size(x, padding), x.shape[0])


def conv3x3_auto(ext, x: torch.Tensor, w: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    """F.conv2d(x, w, padding=padding), by Winograd where `tile_for` says so."""
    m = tile_for(x, w, padding)
    return F.conv2d(x, w, padding=padding) if m is None else conv3x3(ext, x, w, padding, m)


def _oriented(w: torch.Tensor, flip_weight: bool, x: torch.Tensor) -> torch.Tensor:
    return (w if flip_weight else w.flip([2, 3])).to(x.dtype)


def scaled_conv3x3_auto(
    ext,
    x: torch.Tensor,
    w: torch.Tensor,
    padding: int,
    up: int,
    f: torch.Tensor | None,
    flip_weight: bool,
    in_scale: torch.Tensor | None,
    out_scale: torch.Tensor | None,
) -> torch.Tensor | None:
    """The 'scaled_conv3x3' op by Winograd (see conv2d_resample.scaled_conv3x3_ref), or None where
    `tile_for` prefers torch's convolution or the layer is not one Winograd covers."""
    scales = (in_scale, out_scale)
    if up == 1:
        m = tile_for(x, w, (padding, padding), scales=scales)
        if m is None:
            return None
        # torch convolutions correlate: flip_weight=False asks for a true convolution.
        u = derived(
            w,
            ("winograd", m, flip_weight, x.dtype),
            lambda: transform_weight(_oriented(w, flip_weight, x), m),
        )
        pad = (padding, padding)
        return convolve(ext, x, u, conv_out_size(x, pad), pad, m, in_scale=in_scale, out_scale=out_scale)
    if up != 2 or not up2_supported(w, f, padding):
        return None
    m = tile_for(x, w, (1, 1), up=2, scales=scales)
    if m is None:
        return None
    key = ("winograd_up2", m, flip_weight, x.dtype, tuple(f.flatten().tolist()))
    u = derived(w, key, lambda: transform_weight_up2(w.to(x.dtype), f, m, flip_weight))
    return convolve(ext, x, u, tuple(x.shape[2:]), (1, 1), m, up=2, in_scale=in_scale, out_scale=out_scale)
