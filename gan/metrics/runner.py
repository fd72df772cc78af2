"""Compute named metrics of a generator: the entry point for `gan metrics` and the training loop.

Metric names follow NVIDIA's StyleGAN code: `fid50k_full` (50k generated images against the
whole data set), `kid50k_full`, the legacy `fid50k` / `kid50k` (at most 50k real images),
`eqt50k_int`, `eqt50k_frac`, `eqr50k`; plus `swd` (Progressive GAN's SWD, x1000, on equally
many real and generated images) and `fd_toon10k_full` / `kid_toon10k_full` (and 50k): the same
Fréchet distance and KID in the feature space of the shipped toon classifier, which is not FID
(see `gan.metrics.toon_features`). `num` overrides the number of generated samples.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gan.data.dataset import seeded_subset
from gan.errors import UserError
from gan.metrics import equivariance, fid, inception, swd, toon_features
from gan.progress import Progress


@dataclass(frozen=True)
class MetricSpec:
    """kind: 'fid' | 'kid' | 'swd' | 'eq'. num_gen: generated samples by default.
    max_real: real images used (None: all). eq: which equivariance flavour.
    features: the feature network of 'fid' / 'kid': 'inception' or 'toon' (the toon classifier)."""

    kind: str
    num_gen: int
    max_real: int | None = None
    eq: str = ""
    help: str = ""
    features: str = "inception"


METRICS: dict[str, MetricSpec] = {
    "fid50k_full": MetricSpec("fid", 50000, None, help="FID, 50k generated vs. the whole data set"),
    "kid50k_full": MetricSpec("kid", 50000, 1000000, help="KID, 50k generated vs. up to 1M real"),
    "fid50k": MetricSpec("fid", 50000, 50000, help="FID, 50k generated vs. up to 50k real (legacy)"),
    "kid50k": MetricSpec("kid", 50000, 50000, help="KID, 50k generated vs. up to 50k real (legacy)"),
    "eqt50k_int": MetricSpec("eq", 50000, eq="eqt_int", help="EQ-T: PSNR (dB) under integer translation"),
    "eqt50k_frac": MetricSpec("eq", 50000, eq="eqt_frac", help="EQ-T_frac: PSNR (dB), sub-pixel shifts"),
    "eqr50k": MetricSpec("eq", 50000, eq="eqr", help="EQ-R: PSNR (dB) under rotation"),
    "swd": MetricSpec("swd", 2048, 2048, help="sliced Wasserstein distance x1e3 on Laplacian pyramids"),
    "fd_toon10k_full": MetricSpec(
        "fid",
        10000,
        None,
        features="toon",
        help="Fréchet distance in the toon classifier's feature space (not FID), 10k generated vs all real",
    ),
    "kid_toon10k_full": MetricSpec(
        "kid",
        10000,
        1000000,
        features="toon",
        help="KID in the toon classifier's feature space (not Inception KID), 10k generated",
    ),
    "fd_toon50k_full": MetricSpec(
        "fid", 50000, None, features="toon", help="as fd_toon10k_full with 50k generated images"
    ),
    "kid_toon50k_full": MetricSpec(
        "kid", 50000, 1000000, features="toon", help="as kid_toon10k_full with 50k generated images"
    ),
}


@dataclass
class MetricsReport:
    values: dict[str, float] = field(default_factory=dict)  # metric name -> value
    skipped: dict[str, str] = field(default_factory=dict)  # metric name -> why it was not computed
    seconds: dict[str, float] = field(default_factory=dict)  # metric name -> wall time


@dataclass
class _Context:
    G: torch.nn.Module
    dataset: object | None
    dataset_path: str | None
    num: int | None
    batch_size: int
    seed: int
    device: torch.device
    cache: Path | None
    progress: Progress | None


def run_metrics(
    metric_names: list[str] | str,
    G: torch.nn.Module,
    dataset=None,
    num: int | None = None,
    *,
    inception_path: str | os.PathLike | None = None,
    inception_source: inception.WeightsSource | None = None,
    detector: torch.nn.Module | None = None,
    classifier_path: str | os.PathLike | None = None,
    batch_size: int = 16,
    seed: int = 0,
    cache: bool | str | os.PathLike = True,
    progress: Progress | None = None,
) -> MetricsReport:
    """Compute the named metrics. dataset: None, a path, or an object with len() and
    [i] -> (uint8 CHW array, label). Metrics that cannot run (no Inception weights, no input
    transform in a StyleGAN2 generator) are listed in `skipped` with the reason.
    classifier_path: the toon classifier of fd_toon / kid_toon (default: the shipped one)."""
    if isinstance(metric_names, str):
        metric_names = metric_names.split(",")
    names = [n.strip() for n in metric_names if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise UserError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    if num is not None and num < 2:
        raise UserError("--num must be at least 2")
    needs_data = [n for n in names if METRICS[n].kind in ("fid", "kid", "swd")]
    dataset, dataset_path = _open_dataset(dataset, bool(G.c_dim)) if dataset is not None else (None, None)
    if needs_data and dataset is None:
        raise UserError(f"{', '.join(needs_data)} compare against real images: give a data set (--data)")
    if cache is True:
        cache_root = inception.cache_dir()
    else:
        cache_root = Path(cache) if cache else None
    ctx = _Context(
        G, dataset, dataset_path, num, batch_size, seed, next(G.parameters()).device, cache_root, progress
    )
    report = MetricsReport()

    # FID / KID style metrics, per feature network; the generated images are made once for all.
    feature_names = [n for n in names if METRICS[n].kind in ("fid", "kid")]
    if feature_names:
        start = time.time()
        loaders = {
            "inception": lambda: (
                detector or inception.load_inception(inception_path, inception_source, ctx.device)
            ),
            "toon": lambda: toon_features.load_toon_features(classifier_path, ctx.device),
        }
        groups: dict[str, tuple[torch.nn.Module, list[str]]] = {}
        for features in dict.fromkeys(METRICS[n].features for n in feature_names):
            group = [n for n in feature_names if METRICS[n].features == features]
            try:
                groups[features] = (loaders[features](), group)
            except UserError as exc:
                for n in group:
                    report.skipped[n] = str(exc)
        if groups:
            report.values.update(_feature_metrics(ctx, list(groups.values())))
            for _, group in groups.values():
                for n in group:
                    report.seconds[n] = time.time() - start

    eq_names = [n for n in names if METRICS[n].kind == "eq"]
    if eq_names:
        start = time.time()
        if not equivariance.has_input_transform(G):
            for n in eq_names:
                report.skipped[n] = (
                    f"{type(G).__name__} has no input transform; "
                    "EQ-T / EQ-R need a StyleGAN2 or StyleGAN3 model"
                )
        else:
            report.values.update(_equivariance_metrics(ctx, eq_names))
            for n in eq_names:
                report.seconds[n] = time.time() - start

    if "swd" in names:
        start = time.time()
        report.values["swd"] = _swd_metric(ctx)
        report.seconds["swd"] = time.time() - start

    # Keep the caller's order.
    report.values = {n: report.values[n] for n in names if n in report.values}
    return report


def compute(
    metric_names: list[str] | str, G: torch.nn.Module, dataset=None, num: int | None = None, **kwargs
) -> dict[str, float]:
    """Like run_metrics, returning only the values; skipped metrics are left out with a warning."""
    report = run_metrics(metric_names, G, dataset, num, **kwargs)
    for name, reason in report.skipped.items():
        warnings.warn(f"metric {name} skipped: {reason}", stacklevel=2)
    return report.values


# ---------------------------------------------------------------------------------------------
# Data


def _open_dataset(dataset, use_labels: bool) -> tuple[object, str | None]:
    """A path is opened without mirroring (as the official metrics do); objects are used as given."""
    if isinstance(dataset, (str, os.PathLike)):
        if not os.path.exists(dataset):
            raise UserError(f"data set {dataset} does not exist")
        from gan.data.dataset import ImageDataset  # only needed when given a path

        return ImageDataset(dataset, use_labels=use_labels), os.fspath(dataset)
    path = getattr(dataset, "path", None)
    return dataset, (os.fspath(path) if path is not None else None)


def _real_batches(dataset, indices: np.ndarray, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(indices), batch_size):
        images = [np.asarray(dataset[int(i)][0]) for i in indices[start : start + batch_size]]
        yield torch.from_numpy(np.stack(images))


def _label(dataset, index: int) -> np.ndarray:
    get_label = getattr(dataset, "get_label", None)
    return np.asarray(get_label(index) if get_label is not None else dataset[index][1], dtype=np.float32)


def _label_sampler(ctx: _Context):
    """Labels for conditional generators: drawn from the data set when there is one."""
    c_dim = ctx.G.c_dim
    if not c_dim or ctx.dataset is None:
        return None

    def sample(n: int, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, len(ctx.dataset), (n,), generator=gen).tolist()
        return torch.from_numpy(np.stack([_label(ctx.dataset, i).reshape(c_dim) for i in idx]))

    return sample


@torch.no_grad()
def generated_batches(
    G: torch.nn.Module, num: int, batch_size: int, seed: int, label_sampler=None
) -> Iterator[torch.Tensor]:
    """uint8 [N, C, H, W] images from random z (psi 1), as the official metric code makes them."""
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    done = 0
    while done < num:
        n = min(batch_size, num - done)
        z = torch.randn(n, G.z_dim, generator=gen)
        if label_sampler is not None:
            c = label_sampler(n, gen)
        else:
            c = equivariance.random_one_hot(n, G.c_dim, gen)
        ws = G.mapping(z.to(device), c.to(device), truncation_psi=1)
        img = G.synthesis(ws, noise_mode="random")
        yield (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu()
        done += n


def _with_progress(batches, what: str, total: int, ctx: _Context):
    done = 0
    for batch in batches:
        yield batch
        done += batch.shape[0]
        if ctx.progress is not None:
            ctx.progress(min(done, total), total, what)


# ---------------------------------------------------------------------------------------------
# Metric groups


def _feature_metrics(ctx: _Context, groups: list[tuple[torch.nn.Module, list[str]]]) -> dict[str, float]:
    """FID / KID style metrics; groups: (feature network, its metric names). One pass over the
    generated images feeds every feature network."""
    all_names = [n for _, group in groups for n in group]
    num_gen = {n: ctx.num or METRICS[n].num_gen for n in all_names}
    gen_total = max(num_gen.values())
    accumulators = []
    for detector, group in groups:
        kid_wanted = any(METRICS[n].kind == "kid" for n in group)
        # FID of fewer images than generated needs the features themselves, KID always does.
        keep_features = kid_wanted or any(num_gen[n] < gen_total for n in group)
        accumulators.append(fid.FeatureAccumulator(detector, capture_all=keep_features))
    batches = generated_batches(ctx.G, gen_total, ctx.batch_size, ctx.seed, _label_sampler(ctx))
    for batch in _with_progress(batches, "generated images", gen_total, ctx):
        for acc in accumulators:
            acc.add(batch)

    results = {}
    for (detector, group), acc in zip(groups, accumulators):
        gen_stats = acc.stats()
        kid_wanted = any(METRICS[n].kind == "kid" for n in group)
        for name in group:
            spec = METRICS[name]
            # `num` replaces the "50k" of the name; the *_full metrics keep using the whole data set.
            max_real = spec.max_real
            if ctx.num is not None and not name.endswith("_full"):
                max_real = min(max_real or ctx.num, ctx.num)
            real = _real_stats(ctx, detector, max_real, capture_all=kid_wanted)
            if spec.kind == "fid":
                gen = gen_stats
                if num_gen[name] != gen_stats.num:
                    gen = fid.stats_from_features(gen_stats.features[: num_gen[name]])
                results[name] = fid.fid_from_stats(real, gen)
            else:
                gen_feats = gen_stats.features[: num_gen[name]]
                results[name] = fid.kernel_inception_distance(real.features, gen_feats, seed=ctx.seed)
    return results


def _real_stats(ctx: _Context, detector, max_real: int | None, capture_all: bool) -> fid.FeatureStats:
    indices = seeded_subset(len(ctx.dataset), max_real, ctx.seed)
    cache_file = None
    if ctx.cache is not None and ctx.dataset_path is not None:
        sample = np.asarray(ctx.dataset[0][0])
        cache_file = fid.stats_cache_path(
            ctx.cache, ctx.dataset_path, len(indices), int(sample.shape[-1]), getattr(detector, "sha256", "")
        )

    def compute() -> fid.FeatureStats:
        batches = _with_progress(
            _real_batches(ctx.dataset, indices, ctx.batch_size), "real images", len(indices), ctx
        )
        return fid.compute_feature_stats(batches, detector, capture_all=capture_all)

    return fid.cached_dataset_stats(cache_file, compute, capture_all)


def _equivariance_metrics(ctx: _Context, names: list[str]) -> dict[str, float]:
    by_num: dict[int, list[str]] = {}
    for name in names:
        by_num.setdefault(ctx.num or METRICS[name].num_gen, []).append(name)
    results = {}
    for num, group in by_num.items():
        flags = {METRICS[n].eq: True for n in group}
        psnr = equivariance.compute_equivariance(
            ctx.G,
            num,
            **flags,
            seed=ctx.seed,
            label_sampler=_label_sampler(ctx),
            progress=ctx.progress,
            config=equivariance.EquivarianceConfig(batch_size=max(1, ctx.batch_size // 2)),
        )
        for n in group:
            results[n] = psnr[METRICS[n].eq]
    return results


def _swd_metric(ctx: _Context) -> float:
    shape = tuple(np.asarray(ctx.dataset[0][0]).shape)
    expected = (ctx.G.img_channels, ctx.G.img_resolution, ctx.G.img_resolution)
    if shape != expected:
        raise UserError(f"SWD compares images of equal size: data set {shape}, model {expected}")
    num = min(ctx.num or METRICS["swd"].num_gen, len(ctx.dataset))
    indices = seeded_subset(len(ctx.dataset), num, ctx.seed)
    real = _with_progress(_real_batches(ctx.dataset, indices, ctx.batch_size), "real images", num, ctx)
    fake_batches = generated_batches(ctx.G, num, ctx.batch_size, ctx.seed, _label_sampler(ctx))
    fake = _with_progress(fake_batches, "generated images", num, ctx)
    return swd.swd(real, fake, seed=ctx.seed)["swd"]
