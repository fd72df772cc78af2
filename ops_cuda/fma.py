"""Fused multiply-add a * b + c (the noise/bias step of StyleGAN2's modulated conv)."""

from __future__ import annotations

import torch

from ops_cuda._dispatch import get_registry


def fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, impl: str = "auto") -> torch.Tensor:
    """a * b + c with broadcasting; gradients are summed back to each input's shape."""
    return get_registry().resolve("fma", impl, a.device)(a, b, c)


def fma_ref(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(c, a, b)
