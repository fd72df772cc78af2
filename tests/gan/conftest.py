"""Fixtures: tiny random generators saved in our model format (16 px, 16 channels; see
tests.support.tiny).

`tiny_sg2_model_path` / `tiny_sg3t_model_path` are session-scoped paths to `.safetensors` files
written with `gan.model_io.save_model`. Weights are random but fixed (torch seed), and `w_avg`
is non-zero so truncation changes the image.
"""

from __future__ import annotations

import pytest

from tests.support.tiny import save_tiny


@pytest.fixture(scope="session")
def tiny_sg2_model_path(tmp_path_factory) -> str:
    return save_tiny(tmp_path_factory.mktemp("models") / "tiny_sg2.safetensors", "stylegan2")


@pytest.fixture(scope="session")
def tiny_sg3t_model_path(tmp_path_factory) -> str:
    return save_tiny(tmp_path_factory.mktemp("models") / "tiny_sg3t.safetensors", "stylegan3-t")


@pytest.fixture
def tiny_model_file():
    """Function to save a tiny model: tiny_model_file(path, arch, c_dim=0) -> str path."""
    return save_tiny
