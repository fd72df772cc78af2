"""Custom ops of StyleGAN2/3 (bias_act, upfirdn2d, filtered_lrelu, conv2d_resample, fma, modconv;
conv2d_resample's stride-1 3x3 convolutions run by Winograd on the CPU where faster: winograd;
results derived from frozen weights kept between forwards: weight_cache; freed memory kept
for the next forward: allocator).

Each op has a pure-torch reference ('ref', the ground truth) and faster 'cpu' / 'cuda'
implementations (fused C++ / CUDA kernels; modconv's are a cheaper formulation in plain torch);
`impl='auto'` picks the fastest that is available (see `_dispatch`).
"""

from __future__ import annotations

import torch

from ops_cuda import allocator, bias_act, conv2d_resample, filtered_lrelu, fma, modconv, upfirdn2d
from ops_cuda._dispatch import get_registry, prefer_impl
from ops_cuda.weight_cache import WeightCache, cached_weights

__all__ = [
    "WeightCache",
    "allocator",
    "bias_act",
    "cached_weights",
    "capabilities",
    "conv2d_resample",
    "filtered_lrelu",
    "fma",
    "modconv",
    "prefer_impl",
    "upfirdn2d",
]


def capabilities(device: torch.device | str | None = None, build: bool = False) -> dict[str, dict[str, str]]:
    """op -> {'impl': what impl='auto' runs ('ref'/'cpu'/'cuda'), 'reason': why not faster,
    'device': the device type asked about (default: cuda if available, else cpu),
    'state': 'ready' | 'not built' | 'unavailable' | 'ref only' (no native kernel exists for it)}.

    Never compiles unless build=True: a kernel that is not built yet (nor cached on disk) is
    reported as state 'not built' (its first use builds it, 20-60 s). A cached build is loaded,
    which takes well under a second."""
    return get_registry().capabilities(device, build=build)
