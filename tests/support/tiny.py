"""What the test packages share: tiny networks and training configs, a tiny data set, the
explorer tests' ops choice, and fakes. Tests import from here (`tests.support.tiny`), never from
a conftest or another test module; conftest files only turn these into fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import torch

# Latent sizes, resolution and mapping depth of every tiny generator (16 px, 16 channels).
TINY_COMMON = dict(z_dim=16, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=2))
# TrainConfig values of the tiny training runs (with cfg, data, outdir and batch added).
TINY_TRAIN = dict(cbase=256, cmax=16, z_dim=16, w_dim=16, map_depth=2, device="cpu", grid_rows=1, workers=0)
# The ops implementation the explorer tests' bridges use. 'auto' (the compiled CPU kernels):
# plain-torch 'ref' needs no build but renders a 16 px StyleGAN3 about 10x slower.
OPS = "auto"


def tiny_kwargs(arch: str, c_dim: int = 0, **changes) -> dict:
    """Generator kwargs of a tiny network of `arch` ('stylegan2', 'stylegan3-t', 'stylegan3-r')."""
    if arch == "stylegan2":
        kwargs = dict(channel_base=256)
    elif arch == "stylegan3-t":
        kwargs = dict(channel_base=512)
    elif arch == "stylegan3-r":
        kwargs = dict(channel_base=512, conv_kernel=1, use_radial_filters=True)
    else:
        raise ValueError(arch)
    return {**TINY_COMMON, **kwargs, "c_dim": c_dim, "channel_max": 16, "num_fp16_res": 0, **changes}


def make_plain_generator(arch: str, c_dim: int = 0, seed: int = 0, **changes) -> torch.nn.Module:
    """A tiny generator as initialised (torch seed `seed`), in eval mode."""
    from gan.networks import build_generator

    torch.manual_seed(seed)
    return build_generator(arch, tiny_kwargs(arch, c_dim, **changes)).eval()


def make_tiny_generator(arch: str, c_dim: int = 0, seed: int = 0) -> torch.nn.Module:
    """A tiny generator with a non-zero w_avg and noise strength, where the official initial
    values would hide mistakes (truncation, noise)."""
    G = make_plain_generator(arch, c_dim, seed)
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg) * 0.5)
        for name, param in G.named_parameters():
            if name.endswith("noise_strength"):
                param.fill_(0.2)
    return G.requires_grad_(False)


def save_tiny(path, arch: str, c_dim: int = 0) -> str:
    """make_tiny_generator saved in our format at `path`; returns the path as a string."""
    from gan.model_io import save_model

    save_model(path, make_tiny_generator(arch, c_dim=c_dim), arch=arch, metadata={"note": "tiny test model"})
    return str(path)


def tiny_train_config(data: str, outdir, **changes):
    """gan.train.config.TrainConfig of a tiny StyleGAN2 run (batch 8, no augmentation)."""
    from gan.train.config import TrainConfig

    values = dict(cfg="stylegan2", data=data, outdir=str(outdir), batch=8, aug="noaug", **TINY_TRAIN)
    return TrainConfig(**{**values, **changes})


def make_blobs(dest, n: int = 64, res: int = 16, seed: int = 0, labels: bool = False) -> str:
    """A data set of discs of three colours at random places on a dark background."""
    from gan.data.dataset_tool import DatasetWriter

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:res, 0:res] + 0.5
    colours = np.array([[1, 0.2, 0.2], [0.2, 1, 0.2], [0.2, 0.2, 1]])
    with DatasetWriter(dest) as writer:
        for i in range(n):
            cx, cy = rng.uniform(res * 0.3, res * 0.7, 2)
            r = rng.uniform(res * 0.15, res * 0.3)
            inside = (((xx - cx) ** 2 + (yy - cy) ** 2) < r * r)[..., None]
            img = np.where(inside, colours[i % 3], 0.1)
            writer.add((img * 255).astype(np.uint8), i % 3 if labels else None)
    return str(dest)


def select(combo, data) -> None:
    """Choose the combo box entry whose data is `data` (never by position: entries move)."""
    index = combo.findData(data)
    assert index >= 0, f"no entry with data {data!r} in {combo.objectName() or combo}"
    combo.setCurrentIndex(index)


def entry(combo, data):
    """The QStandardItem of the combo box entry whose data is `data` (e.g. to check isEnabled)."""
    index = combo.findData(data)
    assert index >= 0, f"no entry with data {data!r}"
    return combo.model().item(index)


@dataclass
class FakeSummary:
    """Stands in for gan.train.loop.RunSummary in fake training loops."""

    run_dir: str
    kimg: float
    snapshot_path: str | None
    stopped: bool
    reason: str
    message: str = ""


def run_app(*args, timeout=240) -> subprocess.CompletedProcess:
    """The explorer's entry point in a fresh, headless process."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run(
        [sys.executable, "-c", "import sys; from explorer.app import main; sys.exit(main())", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
