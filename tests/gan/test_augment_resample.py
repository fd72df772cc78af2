"""The augment pipe's geometric resampling (2x up with the sym6 filter, grid_sample, 2x down) on the
ops' upfirdn2d: the same images and gradients with our kernels as with the reference ops, and the
identity transform gives the input back (the filter pair is orthogonal, so up then down is exact)."""

from __future__ import annotations

import pytest
import torch

import ops_cuda
from gan.train.augment import AugmentPipe, augment_preset


def _run(impl: str, x: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    pipe = AugmentPipe(**augment_preset("bgc"), p=0.7)
    xx = x.clone().requires_grad_()
    with ops_cuda.prefer_impl(impl):
        y = pipe(xx, generator=torch.Generator().manual_seed(seed))
    weights = torch.linspace(-1, 1, y.numel()).reshape(y.shape)
    (y * weights).sum().backward()
    return y.detach(), xx.grad


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_ops_give_the_reference_images_and_gradients(seed):
    x = torch.randn([4, 3, 24, 20], generator=torch.Generator().manual_seed(0))
    y_ref, g_ref = _run("ref", x, seed)
    y_fast, g_fast = _run("auto", x, seed)
    assert not torch.equal(y_ref, x)  # something was augmented
    torch.testing.assert_close(y_fast, y_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(g_fast, g_ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("impl", ["ref", "auto"])
def test_identity_resampling_returns_the_input(impl):
    x = torch.randn([2, 3, 16, 16], generator=torch.Generator().manual_seed(5))
    pipe = AugmentPipe(**augment_preset("bg"))
    with ops_cuda.prefer_impl(impl):
        y = pipe._resample(x, torch.eye(3).expand(2, 3, 3))
    torch.testing.assert_close(y, x, rtol=0, atol=1e-5)
