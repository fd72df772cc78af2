"""FID and KID from feature arrays, feature statistics, and the per-data-set statistics cache.

FID (Heusel et al. 2017): ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).
KID (Binkowski et al. 2018): unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, averaged
over random subsets of at most 1000 features, as StyleGAN's metric code does.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from gan.io.files import create_temp_file


@dataclass
class FeatureStats:
    """Mean and covariance of a feature set, plus the features themselves when captured."""

    num: int
    mean: np.ndarray  # [D] float64
    cov: np.ndarray  # [D, D] float64, unbiased (divides by num - 1)
    features: np.ndarray | None = None  # [num, D] float32

    def save(self, path: str | os.PathLike) -> None:
        """Write as .npz atomically (temp file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"num": np.int64(self.num), "mean": self.mean, "cov": self.cov}
        if self.features is not None:
            arrays["features"] = self.features
        fd, tmp = create_temp_file(path, suffix=".npz")
        os.close(fd)
        try:
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @staticmethod
    def load(path: str | os.PathLike) -> FeatureStats:
        with np.load(path) as data:
            features = data["features"] if "features" in data else None
            return FeatureStats(int(data["num"]), data["mean"], data["cov"], features)


class _RunningMoments:
    """Mean and scatter matrix merged batch by batch (Chan et al.), stable in float64."""

    def __init__(self):
        self.n = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        nb = x.shape[0]
        if nb == 0:
            return
        mean_b = x.mean(axis=0)
        centred = x - mean_b
        m2_b = centred.T @ centred
        if self.n == 0:
            self.n, self.mean, self.m2 = nb, mean_b, m2_b
            return
        n = self.n + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2_b + np.outer(delta, delta) * (self.n * nb / n)
        self.n = n


class FeatureAccumulator:
    """Feature statistics of one detector, fed batch by batch: several detectors can share one
    pass over the (expensive) generated images."""

    def __init__(self, detector: torch.nn.Module, capture_all: bool = False):
        self.detector = detector
        self.device = next(detector.parameters()).device
        self.capture_all = capture_all
        self._moments = _RunningMoments()
        self._captured: list[np.ndarray] = []

    @property
    def num(self) -> int:
        return self._moments.n

    @torch.no_grad()
    def add(self, images: torch.Tensor | np.ndarray) -> None:
        """uint8 images [N, C, H, W]."""
        features = self.detector(torch.as_tensor(images).to(self.device)).to(torch.float64).cpu().numpy()
        self._moments.add(features)
        if self.capture_all:
            self._captured.append(features.astype(np.float32))

    def stats(self) -> FeatureStats:
        moments = self._moments
        if moments.n < 2:
            raise ValueError(f"feature statistics need at least 2 images, got {moments.n}")
        features = np.concatenate(self._captured) if self.capture_all else None
        return FeatureStats(moments.n, moments.mean, moments.m2 / (moments.n - 1), features)


def compute_feature_stats(
    image_batches: Iterable[torch.Tensor | np.ndarray],
    detector: torch.nn.Module,
    max_items: int | None = None,
    capture_all: bool = False,
) -> FeatureStats:
    """Run the detector over uint8 image batches [N, C, H, W] and collect feature statistics.

    Stops after max_items images (None: the whole iterable).
    """
    acc = FeatureAccumulator(detector, capture_all)
    for batch in image_batches:
        if max_items is not None and acc.num >= max_items:
            break
        images = torch.as_tensor(batch)
        if max_items is not None:
            images = images[: max_items - acc.num]
        acc.add(images)
    return acc.stats()


def stats_from_features(features: np.ndarray) -> FeatureStats:
    moments = _RunningMoments()
    moments.add(features)
    return FeatureStats(moments.n, moments.mean, moments.m2 / (moments.n - 1), np.asarray(features))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("FID: the two feature statistics have different dimensions")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrtm warns on singular input; handled below
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # Singular product (fewer samples than dimensions): regularise the diagonals slightly.
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Rounding gives the square root tiny imaginary parts; large ones mean broken statistics.
        scale = max(np.abs(covmean.real).max(), 1e-12)
        imag = np.abs(covmean.imag).max()
        if imag > 1e-3 * scale:
            raise ValueError(f"FID: the matrix square root has a large imaginary part ({imag})")
        covmean = covmean.real
    fid = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)
    return float(fid)


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


def kernel_inception_distance(
    real: np.ndarray,
    fake: np.ndarray,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 0,
) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets."""
    real = np.asarray(real, np.float64)
    fake = np.asarray(fake, np.float64)
    d = real.shape[1]
    m = min(real.shape[0], fake.shape[0], max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 features in each set")
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(fake.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        # Within-set sums leave out the diagonal (unbiased estimate).
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        total += within - 2 * kxy.sum() / (m * m)
    return float(total / num_subsets)


# ---------------------------------------------------------------------------------------------
# Cache of real-data statistics


def _dataset_fingerprint(path: str | os.PathLike) -> dict:
    """Identity of a data set on disk: its absolute path and the sizes and times of its files."""
    p = Path(path).resolve()
    if p.is_file():
        st = p.stat()
        return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    digest = hashlib.sha256()
    count = 0
    for root, dirs, files in os.walk(p):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            st = os.stat(full)
            digest.update(f"{os.path.relpath(full, p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            count += 1
    return {"path": str(p), "files": count, "listing": digest.hexdigest()}


def stats_cache_path(
    cache_root: str | os.PathLike,
    dataset_path: str | os.PathLike,
    max_items: int | None,
    resolution: int,
    detector_hash: str,
) -> Path:
    """The .npz file holding one data set's statistics for one detector and item count."""
    key = dict(
        _dataset_fingerprint(dataset_path), max_items=max_items, resolution=resolution, detector=detector_hash
    )
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    name = Path(dataset_path).name or "dataset"
    return Path(cache_root) / "dataset-stats" / f"{name}-{digest}.npz"


def cached_dataset_stats(
    cache_file: Path | None,
    compute,
    capture_all: bool,
) -> FeatureStats:
    """Load the statistics from cache_file when present (and holding features if needed);
    otherwise compute() them and store them."""
    if cache_file is not None and cache_file.is_file():
        try:
            stats = FeatureStats.load(cache_file)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            stats = None  # unreadable cache entries are recomputed
        if stats is not None and (stats.features is not None or not capture_all):
            return stats
    stats = compute()
    if cache_file is not None:
        stats.save(cache_file)
    return stats
