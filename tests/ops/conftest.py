"""Shared by the ops tests: the official implementation's op fixtures and a max-abs-difference."""

import json

import numpy as np
import pytest
import torch

from tests.support.paths import OFFICIAL as FIXTURES


@pytest.fixture(scope="session")
def official():
    """(tensors by name, parameters by op) from NVIDIA's implementation (tests/fixtures/official)."""
    data = np.load(FIXTURES / "ops.npz")
    params = json.loads((FIXTURES / "ops.json").read_text())
    return {k: torch.from_numpy(data[k]) for k in data.files}, params


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach() - b).abs().max().item()
