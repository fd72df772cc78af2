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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

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
) -> torch.Tensor:
    """F.conv2d(x, w, padding=padding) for x [N, C, H, W], w [O, C, 3, 3] (float32/64, CPU) with
    the transforms of extension `ext`. The tiles go in bands of tile rows whose transformed input
    and output (a^2 / m^2 times the input's and output's size) fit in about band_bytes, in one pair
    of buffers: few, equal allocations keep the process's peak memory where torch's convolution
    leaves it."""
    n, in_ch, h, wd = x.shape
    out_ch = w.shape[0]
    py, px = padding
    out_h, out_w = h + 2 * py - 2, wd + 2 * px - 2
    if out_h < 1 or out_w < 1:
        raise ValueError(f"winograd conv3x3: input {tuple(x.shape)} with padding {padding} gives no output")
    a = m + 2
    u = transform_weight(w.to(x.dtype), m)  # [a*a, O, C]
    th_all, tw = -(-out_h // m), -(-out_w // m)
    row_bytes = a * a * n * (in_ch + out_ch) * tw * x.element_size()  # V and M of one tile row
    band = max(1, min(th_all, band_bytes // row_bytes))
    v_buf = x.new_empty([a * a * in_ch * n * band * tw])
    m_buf = x.new_empty([a * a * out_ch * n * band * tw])
    y = x.new_empty([n, out_ch, out_h, out_w])
    x = x.contiguous()
    for ty0 in range(0, th_all, band):
        th = min(band, th_all - ty0)
        v = v_buf[: a * a * in_ch * n * th * tw].view(a * a, in_ch, n, th * tw)
        mm = m_buf[: a * a * out_ch * n * th * tw].view(a * a, out_ch, n * th * tw)
        ext.winograd_input(x, v, m, ty0, th, tw, py, px)
        torch.bmm(u, v.view(a * a, in_ch, n * th * tw), out=mm)
        ext.winograd_output(mm.view(a * a, out_ch, n, th * tw), y, m, ty0, th, tw)
    return y


def tile_for(x: torch.Tensor, w: torch.Tensor, padding: tuple[int, int]) -> int | None:
    """The tile size conv3x3_auto would use for F.conv2d(x, w, padding=padding), or None when it
    runs torch's convolution: no CPU float32/64 input, an empty batch, a gradient needed (the
    backward stays with torch's convolution), or `pick_tile` prefers oneDNN."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or x.shape[0] == 0:
        return None
    if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
        return None
    py, px = padding
    return pick_tile(x.shape[1], w.shape[0], x.shape[2] + 2 * py - 2, x.shape[3] + 2 * px - 2, x.shape[0])


def conv3x3_auto(ext, x: torch.Tensor, w: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    """F.conv2d(x, w, padding=padding), by Winograd where `tile_for` says so."""
    m = tile_for(x, w, padding)
    return F.conv2d(x, w, padding=padding) if m is None else conv3x3(ext, x, w, padding, m)
