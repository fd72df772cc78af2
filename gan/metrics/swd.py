"""Sliced Wasserstein distance on Laplacian pyramids (Karras et al. 2018, Progressive GAN).

Each image is split into a Laplacian pyramid from full resolution down to 16 px. From every
level, 128 random 7x7 neighbourhoods per image form descriptors of C*49 values. Per level and per
set, each channel is normalised to zero mean and unit variance. The distance between two
descriptor sets is the sliced Wasserstein distance: project both onto random unit directions,
sort, and average the absolute differences (4 repeats of 128 directions = 512 projections).
Results are reported x1000 like the paper's tables; `swd` is the average over levels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SWDConfig:
    """Settings of the Progressive GAN SWD metric.

    patch_size: side of the square neighbourhoods taken from each pyramid level.
    patches_per_image: neighbourhoods drawn per image and level.
    min_resolution: the coarsest pyramid level.
    dir_repeats / dirs_per_repeat: random projections, in groups (4 x 128 = 512).
    """

    patch_size: int = 7
    patches_per_image: int = 128
    min_resolution: int = 16
    dir_repeats: int = 4
    dirs_per_repeat: int = 128


def _binomial_kernel(channels: int, device) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device) / 16
    return (k[:, None] * k[None, :]).expand(channels, 1, 5, 5).contiguous()


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    # Mirror the border (reflection without repeating the edge pixel).
    return F.conv2d(F.pad(x, [2, 2, 2, 2], mode="reflect"), kernel, groups=x.shape[1])


def _pyr_down(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return _blur(x, kernel)[:, :, ::2, ::2]


def _pyr_up(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    up = torch.zeros(n, c, h * 2, w * 2, dtype=x.dtype, device=x.device)
    up[:, :, ::2, ::2] = x
    return _blur(up, kernel * 4)  # x4 restores the energy of the inserted zeros


def laplacian_pyramid(images: torch.Tensor, min_resolution: int = 16) -> list[torch.Tensor]:
    """Band-pass levels from fine to coarse; the last level is the low-pass residual."""
    x = images.float()
    kernel = _binomial_kernel(x.shape[1], x.device)
    levels = []
    while x.shape[-1] > min_resolution and x.shape[-2] > min_resolution:
        small = _pyr_down(x, kernel)
        levels.append(x - _pyr_up(small, kernel))
        x = small
    levels.append(x)
    return levels


def _random_patches(level: torch.Tensor, count: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """count random size x size neighbourhoods per image: [N * count, C * size * size]."""
    n, c, h, w = level.shape
    ys = torch.randint(0, h - size + 1, (n, count), generator=gen)
    xs = torch.randint(0, w - size + 1, (n, count), generator=gen)
    offs = torch.arange(size)
    rows = (ys[..., None] + offs)[..., :, None]  # [n, count, size, 1]
    cols = (xs[..., None] + offs)[..., None, :]  # [n, count, 1, size]
    flat = level.reshape(n, c, h * w)
    index = (rows * w + cols).reshape(n, 1, count * size * size).expand(n, c, -1)
    patches = torch.gather(flat, 2, index).reshape(n, c, count, size * size)
    return patches.permute(0, 2, 1, 3).reshape(n * count, c * size * size)


class DescriptorSet:
    """Collects pyramid-level descriptors of a stream of images."""

    def __init__(self, config: SWDConfig, seed: int):
        self.config = config
        self.gen = torch.Generator().manual_seed(seed)
        self.levels: list[list[torch.Tensor]] = []
        self.resolutions: list[int] = []
        self.num_images = 0

    def add(self, images: torch.Tensor | np.ndarray) -> None:
        images = torch.as_tensor(images).cpu()
        pyramid = laplacian_pyramid(images, self.config.min_resolution)
        if not self.levels:
            self.levels = [[] for _ in pyramid]
            self.resolutions = [lvl.shape[-1] for lvl in pyramid]
        for store, level in zip(self.levels, pyramid):
            cfg = self.config
            store.append(_random_patches(level, cfg.patches_per_image, cfg.patch_size, self.gen))
        self.num_images += images.shape[0]

    def finalize(self) -> list[torch.Tensor]:
        """Per level: descriptors with each channel normalised to zero mean, unit variance."""
        size2 = self.config.patch_size**2
        out = []
        for store in self.levels:
            desc = torch.cat(store)
            store.clear()
            by_channel = desc.view(desc.shape[0], -1, size2)
            for ch in range(by_channel.shape[1]):
                values = by_channel[:, ch].double()  # float64 statistics, one channel at a time
                mean = values.mean()
                std = (values - mean).square().mean().sqrt().clamp_min(1e-12)
                by_channel[:, ch] = ((values - mean) / std).float()
            out.append(desc)
        return out


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, config: SWDConfig, gen: torch.Generator) -> float:
    """Average over random unit directions of the 1-D Wasserstein-1 distance of the projections."""
    if a.shape != b.shape:
        raise ValueError(f"SWD: descriptor sets differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    results = []
    for _ in range(config.dir_repeats):
        dirs = torch.randn(a.shape[1], config.dirs_per_repeat, generator=gen)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        # A few directions at a time keeps the sorted projections small in memory.
        dists = []
        for chunk in dirs.split(32, dim=1):
            # [dirs, N] rows, sorted by numpy (several times faster than torch.sort on CPU).
            pa = np.sort((chunk.T @ a.T).numpy(), axis=1)
            pb = np.sort((chunk.T @ b.T).numpy(), axis=1)
            dists.append(np.abs(pa - pb).mean(axis=1, dtype=np.float64))
        results.append(float(np.concatenate(dists).mean()))
    return float(np.mean(results))


def swd(
    images_a: Iterable[torch.Tensor | np.ndarray],
    images_b: Iterable[torch.Tensor | np.ndarray],
    config: SWDConfig | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """SWD x1000 between two streams of image batches [N, C, H, W] (same count and size).

    Returns one entry per level, named by its resolution (`swd_64`, ...), and `swd`, their mean.
    """
    config = config or SWDConfig()
    sets = []
    for offset, stream in enumerate((images_a, images_b)):
        ds = DescriptorSet(config, seed + 1000 * offset)
        for batch in stream:
            ds.add(batch)
        sets.append(ds)
    a, b = sets
    if a.num_images != b.num_images or a.resolutions != b.resolutions:
        raise ValueError(
            f"SWD needs two image sets of equal count and size: {a.num_images} images at "
            f"{a.resolutions[:1]} px vs {b.num_images} at {b.resolutions[:1]} px"
        )
    gen = torch.Generator().manual_seed(seed + 7)
    result = {}
    for res, da, db in zip(a.resolutions, a.finalize(), b.finalize()):
        result[f"swd_{res}"] = sliced_wasserstein(da, db, config, gen) * 1e3
    result["swd"] = float(np.mean(list(result.values())))
    return result
