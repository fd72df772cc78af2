"""Shared by the ops tests: the official implementation's op fixtures, a run of its filtered_lrelu
cases and a max-abs-difference."""

import json

import numpy as np
import pytest
import torch

from ops_cuda import filtered_lrelu
from tests.support.paths import OFFICIAL as FIXTURES


@pytest.fixture(scope="session")
def official():
    """(tensors by name, parameters by op) from NVIDIA's implementation (tests/fixtures/official)."""
    data = np.load(FIXTURES / "ops.npz")
    params = json.loads((FIXTURES / "ops.json").read_text())
    return {k: torch.from_numpy(data[k]) for k in data.files}, params


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach() - b).abs().max().item()


FILTERED_LRELU_SETTINGS = ("up", "down", "padding", "gain", "slope", "clamp", "flip_filter")


def official_filtered_lrelu(official, layer: str, impl: str):
    """NVIDIA's filtered_lrelu case `layer` through our op with `impl`, backward through its
    grad_weights: (y, x, b, the case's key prefix) with x.grad and b.grad filled."""
    t, params = official
    k = f"filtered_lrelu_{layer}/"
    settings = {name: params[f"filtered_lrelu_{layer}"][name] for name in FILTERED_LRELU_SETTINGS}
    x = t[k + "x"].clone().requires_grad_()
    b = t[k + "b"].clone().requires_grad_()
    fu = t[k + "fu"] if t[k + "fu"].numel() else None  # empty means identity
    fd = t[k + "fd"] if t[k + "fd"].numel() else None
    y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl=impl, **settings)
    (y * t[k + "grad_weights"]).sum().backward()
    return y, x, b, k
