"""Shared fixtures: tiny random generators saved in our model format (16 px, 16 channels).

`tiny_sg2_model_path` / `tiny_sg3t_model_path` are session-scoped paths to `.safetensors` files
written with `gan.model_io.save_model`. Weights are random but fixed (torch seed), and `w_avg`
is non-zero so truncation changes the image.
"""

from __future__ import annotations

import pytest
import torch

TINY_COMMON = dict(z_dim=16, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2))


def make_tiny_generator(arch: str, c_dim: int = 0, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    if arch == "stylegan2":
        from gan.networks.stylegan2 import Generator

        G = Generator(c_dim=c_dim, channel_base=256, channel_max=16, num_fp16_res=0, **TINY_COMMON)
    elif arch == "stylegan3-t":
        from gan.networks.stylegan3 import Generator

        G = Generator(c_dim=c_dim, channel_base=512, channel_max=16, num_fp16_res=0, **TINY_COMMON)
    else:
        raise ValueError(arch)
    with torch.no_grad():
        # Non-zero where the official initial values would hide mistakes (truncation, noise).
        G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg) * 0.5)
        for name, param in G.named_parameters():
            if name.endswith("noise_strength"):
                param.fill_(0.2)
    return G.eval().requires_grad_(False)


def save_tiny(path, arch: str, c_dim: int = 0) -> str:
    from gan.model_io import save_model

    save_model(path, make_tiny_generator(arch, c_dim=c_dim), arch=arch, metadata={"note": "tiny test model"})
    return str(path)


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
