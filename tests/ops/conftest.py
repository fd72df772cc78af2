"""Shared by the ops tests: the official implementation's op fixtures, runs of its bias_act,
upfirdn2d and filtered_lrelu cases through our ops, and a max-abs-difference."""

import json

import numpy as np
import pytest
import torch

from ops_cuda import bias_act, filtered_lrelu, upfirdn2d
from tests.support.paths import OFFICIAL as FIXTURES


@pytest.fixture(scope="session")
def official():
    """(tensors by name, parameters by op) from NVIDIA's implementation (tests/fixtures/official)."""
    data = np.load(FIXTURES / "ops.npz")
    params = json.loads((FIXTURES / "ops.json").read_text())
    return {k: torch.from_numpy(data[k]) for k in data.files}, params


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach() - b).abs().max().item()


def official_bias_act(official, impl: str):
    """NVIDIA's bias_act case through our op with `impl` (its settings are the op's keyword
    arguments), backward through its grad_weights: (y, x, b) with x.grad and b.grad filled."""
    t, params = official
    x = t["bias_act/x"].clone().requires_grad_()
    b = t["bias_act/b"].clone().requires_grad_()
    y = bias_act.bias_act(x, b, impl=impl, **params["bias_act"])
    (y * t["bias_act/grad_weights"]).sum().backward()
    return y, x, b


def official_upfirdn2d(official, impl: str):
    """NVIDIA's upfirdn2d case through our op with `impl`, backward through its grad_weights:
    (y, x) with x.grad filled."""
    t, params = official
    x = t["upfirdn2d/x"].clone().requires_grad_()
    y = upfirdn2d.upfirdn2d(x, t["upfirdn2d/f"], impl=impl, **params["upfirdn2d"])
    (y * t["upfirdn2d/grad_weights"]).sum().backward()
    return y, x


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
