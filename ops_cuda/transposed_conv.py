"""Stride-2 3x3 transposed convolution (StyleGAN2's upsampling layers) as one matrix product and a
col2im pass, for the CPU.

conv_transpose2d(x, w, stride=2) sums, for every input pixel, the 3x3 patch w[:, o] * x[:, y, x]
into the output at (2y + ky, 2x + kx). That is cols = w[I, O*9]^T @ x[I, H*W] (one large matmul,
the weight read in place as a transposed operand) followed by scattering the nine taps of each
column (`col2im_s2k3` in the C++ extension, each output row written once). oneDNN's transposed
convolution runs at half its forward-convolution speed at StyleGAN2's shapes; the matmul runs at
the BLAS's. Gradients stay with torch's convolution (this path is for inference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def runs_gemm(x: torch.Tensor, w: torch.Tensor, stride: int, groups: int) -> bool:
    """True where conv_transpose_gemm applies: CPU float32/64, stride 2, a 3x3 kernel, no groups,
    no gradient needed."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or x.shape[0] == 0:
        return False
    if stride != 2 or groups != 1 or w.shape[2:] != (3, 3) or w.dtype != x.dtype:
        return False
    return not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))


def conv_transpose_gemm(ext, x: torch.Tensor, w: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    """F.conv_transpose2d(x, w, stride=2, padding=padding) for x [N, I, H, W], w [I, O, 3, 3]."""
    n, in_ch, h, wd = x.shape
    out_ch = w.shape[1]
    wt = w.reshape(in_ch, out_ch * 9).t()  # a transposed view: the BLAS reads it in place
    xs = x.reshape(n, in_ch, h * wd).contiguous()
    cols = x.new_empty([n, out_ch * 9, h * wd])
    for k in range(n):  # one matmul per sample, straight into place (a broadcast matmul copies)
        torch.mm(wt, xs[k], out=cols[k])
    return ext.col2im_s2k3(cols, h, wd, padding[0], padding[1])


def conv_transpose_ref(
    x: torch.Tensor, w: torch.Tensor, stride: int, padding: tuple[int, int], groups: int
) -> torch.Tensor:
    """The 'conv_transpose2d' op: torch's transposed convolution (w [I, O/groups, kh, kw])."""
    return F.conv_transpose2d(x, w, stride=stride, padding=list(padding), groups=groups)
