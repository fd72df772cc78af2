"""Stride-2 3x3 transposed convolution as a matmul and a C++ col2im (ops_cuda/transposed_conv.py):
equal to torch's conv_transpose2d at every size and padding, taken only where it applies (never
under gradients), and StyleGAN2 still matches NVIDIA's outputs with its upsampling layers on it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ops_cuda
from ops_cuda import _native, conv2d_resample, transposed_conv, upfirdn2d
from ops_cuda._dispatch import get_registry


@pytest.fixture(scope="module")
def ext():
    return _native.load_extension("cpu")  # col2im is C++: a failed build fails these tests


# N, I, O, H, W, padding (y, x): 1x1 inputs, odd and unequal sizes, crops that reach the last tap.
SHAPES = [
    (1, 5, 3, 1, 1, (0, 0)),
    (1, 5, 3, 1, 1, (1, 1)),
    (2, 7, 4, 3, 5, (0, 1)),
    (1, 8, 6, 4, 4, (1, 0)),
    (3, 16, 9, 7, 6, (1, 1)),
    (1, 4, 2, 2, 3, (2, 1)),
]


@pytest.mark.parametrize("shape", SHAPES)
def test_gemm_and_col2im_equal_conv_transpose2d(ext, shape):
    n, i, o, h, w, pad = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, i, h, w, generator=gen, dtype=torch.float64)
    wt = torch.randn(i, o, 3, 3, generator=gen, dtype=torch.float64)
    expected = F.conv_transpose2d(x, wt, stride=2, padding=pad)
    got = transposed_conv.conv_transpose_gemm(ext, x, wt, pad)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=0, atol=1e-12)
    # float32: the matmul sums in another order, nothing else differs.
    got32 = transposed_conv.conv_transpose_gemm(ext, x.float(), wt.float(), pad)
    assert torch.allclose(got32.double(), expected, rtol=0, atol=1e-4)


def test_registry_op_takes_the_gemm_only_where_it_applies(ext, monkeypatch):
    calls = []
    real = transposed_conv.conv_transpose_gemm

    def spy(*args):
        calls.append(args[1].shape)
        return real(*args)

    monkeypatch.setattr(transposed_conv, "conv_transpose_gemm", spy)
    op = get_registry().resolve("conv_transpose2d", "cpu", torch.device("cpu"))
    x = torch.randn(1, 4, 5, 5)
    w = torch.randn(4, 6, 3, 3)
    op(x, w, 2, (0, 0), 1)
    assert len(calls) == 1
    op(x, torch.randn(4, 6, 4, 4), 2, (0, 0), 1)  # 4x4 kernel
    op(x, w, 1, (0, 0), 1)  # stride 1
    op(torch.randn(1, 4, 5, 5), torch.randn(4, 3, 3, 3), 2, (0, 0), 2)  # groups
    op(x.requires_grad_(True), w, 2, (0, 0), 1)  # gradient needed: torch's convolution
    assert len(calls) == 1


def test_gradients_stay_with_torch_and_are_right():
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 6, 3, 3, dtype=torch.float64, requires_grad=True)
    op = get_registry().resolve("conv_transpose2d", "cpu", torch.device("cpu"))
    assert torch.autograd.gradcheck(lambda a, b: op(a, b, 2, (1, 1), 1), (x, w))


@pytest.mark.parametrize("flip_weight", [True, False])
def test_conv2d_resample_upsampling_equals_reference(flip_weight):
    """The transposed weight (and, for flip_weight, its flipped taps) made in one copy, then the op."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 6, 6, generator=gen)
    w = torch.nn.Parameter(torch.randn(5, 8, 3, 3, generator=gen), requires_grad=False)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    ref = conv2d_resample.conv2d_resample(x, w, f=f, up=2, padding=1, flip_weight=flip_weight, impl="ref")
    for impl in ("cpu", "ref"):
        with ops_cuda.cached_weights(ops_cuda.WeightCache()):
            for _ in range(2):  # computed, then from the cache
                y = conv2d_resample.conv2d_resample(
                    x, w, f=f, up=2, padding=1, flip_weight=flip_weight, impl=impl
                )
                assert torch.allclose(y, ref, rtol=0, atol=1e-5)
