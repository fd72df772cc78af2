"""The 'cpu' implementations (C++ kernels). Importing this module builds or loads the extension,
so a failed build surfaces as an import error, which the dispatcher turns into one warning and a
fallback to the reference ops."""

from __future__ import annotations

import torch

from ops_cuda import _native, _native_ops, transposed_conv, winograd
from ops_cuda.conv2d_resample import scaled_conv3x3_ref

_EXT = _native.load_extension("cpu")
_IMPLS = _native_ops.make_impls(_EXT, "cpu")

bias_act_cpu = _IMPLS["bias_act"]
upfirdn2d_cpu = _IMPLS["upfirdn2d"]
filtered_lrelu_cpu = _IMPLS["filtered_lrelu"]


def conv3x3_cpu(x: torch.Tensor, w: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    return winograd.conv3x3_auto(_EXT, x, w, padding)


def scaled_conv3x3_cpu(*args) -> torch.Tensor:
    """scaled_conv3x3_ref's arguments: by Winograd where it runs, else the reference."""
    y = winograd.scaled_conv3x3_auto(_EXT, *args)
    return scaled_conv3x3_ref(*args) if y is None else y


def conv_transpose_cpu(
    x: torch.Tensor, w: torch.Tensor, stride: int, padding: tuple[int, int], groups: int
) -> torch.Tensor:
    """transposed_conv.conv_transpose_ref's arguments: a matmul and col2im where it applies."""
    if transposed_conv.runs_gemm(x, w, stride, groups):
        return transposed_conv.conv_transpose_gemm(_EXT, x, w, padding)
    return transposed_conv.conv_transpose_ref(x, w, stride, padding, groups)
