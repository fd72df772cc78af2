"""How close a model's samples are to its real training images: classifier statistics and SWD.

    report = measure_quality(model.G, clf, "toon64.zip", seeds=range(1000, 1200), G_init=G0)
    report.heads["style"].generated_confident   # fraction of confident style calls (p >= 0.9)
    report.swd["swd"], report.swd_init["swd"]    # SWD x1000 to the real images, model vs init

Classifier part: the seeds' images (seed -> z by the official rule, constant noise, so the seeds
mean the same images as `gan generate` and the explorer) and `num_real` real images, drawn from
the data set with the official seeded-subset rule, go through the classifier. Per head: the class
distribution, the mean confidence (max softmax probability) and the fraction of confident calls,
for both sets; when the data set's `dataset.json` has toon `attributes`, also the classifier's
accuracy on the real images (the reference point: how far to trust the generated-image numbers).

SWD part: `swd_num` generated images (seeds 0 .. swd_num-1, psi 1 like the official metrics)
against `swd_num` real images, with gan.metrics.swd; the same for `G_init`, a model at
initialisation, so the distance has a baseline next to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from gan.edit.measure import render_edited
from gan.errors import Cancelled, UserError
from gan.metrics import swd as swd_metric
from gan.progress import Progress


@dataclass
class HeadStats:
    """Classifier statistics of one head (attribute) on generated and real images."""

    classes: list[str] = field(metadata={"help": "class names of the head"})
    generated_rates: list[float] = field(metadata={"help": "fraction of generated images per class"})
    real_rates: list[float] = field(metadata={"help": "fraction of real images per class"})
    generated_confidence: float = field(metadata={"help": "mean max softmax probability, generated"})
    real_confidence: float = field(metadata={"help": "mean max softmax probability, real"})
    generated_confident: float = field(
        metadata={"help": "fraction of generated images whose max probability >= the threshold"}
    )
    real_confident: float = field(metadata={"help": "the same for the real images"})
    rate_distance: float = field(
        default=0.0,
        metadata={"help": "total variation distance of the two class distributions (0 same .. 1 disjoint)"},
    )
    real_accuracy: float | None = field(
        default=None, metadata={"help": "accuracy on the real images (None: data set has no attributes)"}
    )


@dataclass
class QualityReport:
    """What measure_quality found; plain values only."""

    num_generated: int = field(metadata={"help": "seeds classified"})
    num_real: int = field(metadata={"help": "real images classified"})
    psi: float = field(metadata={"help": "truncation psi of the classified images"})
    threshold: float = field(metadata={"help": "confidence threshold of a 'confident' call"})
    heads: dict[str, HeadStats] = field(metadata={"help": "per classifier head"})
    swd_num: int = field(default=0, metadata={"help": "images per set for SWD (0: SWD not measured)"})
    swd: dict[str, float] = field(
        default_factory=dict, metadata={"help": "SWD x1e3 model vs real: per level (swd_64...) and 'swd'"}
    )
    swd_init: dict[str, float] | None = field(
        default=None, metadata={"help": "the same for the model at initialisation (None: not given)"}
    )
    seconds: dict[str, float] = field(default_factory=dict, metadata={"help": "wall time per stage"})


def fresh_generator(arch: str, g_kwargs: dict, seed: int = 0) -> torch.nn.Module:
    """A generator at initialisation with the given architecture; the global torch RNG is untouched."""
    from gan.networks import build_generator

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = build_generator(arch, dict(g_kwargs))
    return G.eval().requires_grad_(False)


def _load_real(
    dataset, indices: np.ndarray, should_stop, progress: Progress | None, stage: str
) -> np.ndarray:
    """uint8 NHWC images of the dataset items."""
    out = []
    for k, i in enumerate(indices):
        if should_stop is not None and k % 64 == 0 and should_stop():
            raise Cancelled("reading real images was stopped")
        out.append(np.asarray(dataset[int(i)][0]).transpose(1, 2, 0))
        if progress is not None and ((k + 1) % 64 == 0 or k + 1 == len(indices)):
            progress(k + 1, len(indices), stage)
    return np.ascontiguousarray(np.stack(out))


def _toon_labels(dataset, indices: np.ndarray, heads: dict[str, list[str]]) -> dict[str, np.ndarray] | None:
    """True class per head of the items from dataset.json `attributes` (toon data sets), else None."""
    from gan.data.dataset import FileSource, read_dataset_json

    files = FileSource(dataset.path)
    try:
        meta = read_dataset_json(files)
    finally:
        files.close()
    attributes = dict(meta.get("attributes") or []) if isinstance(meta, dict) else {}
    if not attributes:
        return None
    labels = {}
    for head in heads:
        values = []
        for i in indices:
            attrs = attributes.get(dataset.image_name(int(i)))
            if attrs is None or head not in attrs:
                return None  # not a complete toon labelling: no accuracy rather than a wrong one
            values.append(int(attrs[head]))
        labels[head] = np.array(values, dtype=np.int64)
    return labels


def head_stats(
    classes: list[str],
    gen_probs: np.ndarray,
    real_probs: np.ndarray,
    threshold: float,
    real_labels: np.ndarray | None = None,
) -> HeadStats:
    """Statistics of one head from class probabilities [N, num_classes] of both sets."""
    k = len(classes)

    def rates(p: np.ndarray) -> list[float]:
        return (np.bincount(p.argmax(axis=1), minlength=k) / max(len(p), 1)).tolist()

    gen_rates, real_rates = rates(gen_probs), rates(real_probs)
    return HeadStats(
        classes=list(classes),
        generated_rates=gen_rates,
        real_rates=real_rates,
        generated_confidence=float(gen_probs.max(axis=1).mean()),
        real_confidence=float(real_probs.max(axis=1).mean()),
        generated_confident=float((gen_probs.max(axis=1) >= threshold).mean()),
        real_confident=float((real_probs.max(axis=1) >= threshold).mean()),
        rate_distance=0.5 * float(np.abs(np.subtract(gen_rates, real_rates)).sum()),
        real_accuracy=None
        if real_labels is None
        else float((real_probs.argmax(axis=1) == real_labels).mean()),
    )


def _render(
    G, seeds: list[int], psi: float, batch_size: int, stage: str, progress, should_stop
) -> np.ndarray:
    out = []
    for i in range(0, len(seeds), batch_size):
        out.append(render_edited(G, seeds[i : i + batch_size], psi=psi, should_stop=should_stop))
        if progress is not None:
            progress(min(i + batch_size, len(seeds)), len(seeds), stage)
    return np.concatenate(out)


def _nchw_batches(images: np.ndarray, batch_size: int = 256):
    for i in range(0, len(images), batch_size):
        yield torch.from_numpy(np.ascontiguousarray(images[i : i + batch_size].transpose(0, 3, 1, 2)))


@torch.no_grad()
def measure_quality(
    G: torch.nn.Module,
    classifier,
    data: str,
    seeds: Iterable[int],
    num_real: int = 200,
    psi: float = 1.0,
    threshold: float = 0.9,
    swd_num: int = 1000,
    G_init: torch.nn.Module | None = None,
    real_seed: int = 0,
    batch_size: int = 16,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> QualityReport:
    """Classifier statistics and SWD of G's samples against the real images of `data` (see module doc).

    swd_num = 0 skips SWD. G_init: a model at initialisation for the SWD baseline (same image size).
    """
    from gan.data.dataset import ImageDataset, seeded_subset

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise UserError("no seeds to classify; pass e.g. --seeds 1000-1199")
    if not 0 < threshold <= 1:
        raise UserError(f"the confidence threshold must be in (0, 1], not {threshold}")
    dataset = ImageDataset(data)
    try:
        if dataset.num_channels != 3 or G.img_channels != 3:
            raise UserError(
                f"the classifier needs RGB images: the data set has {dataset.num_channels} channel(s), "
                f"the model {G.img_channels}"
            )
        for what, n in (("num_real", num_real), ("swd_num", swd_num)):
            if n > len(dataset):
                raise UserError(
                    f"{what} is {n} but {data} has only {len(dataset)} images; "
                    f"lower it to at most {len(dataset)}"
                )
        if num_real < 1 or swd_num < 0:
            raise UserError(f"num_real must be at least 1 and swd_num at least 0 (got {num_real}, {swd_num})")
        if swd_num and dataset.resolution != G.img_resolution:
            raise UserError(
                f"SWD compares images of equal size: the data set is {dataset.resolution} px, the model "
                f"{G.img_resolution} px; use a data set of the model's size or --swd-num 0"
            )
        if G_init is not None and (G_init.img_resolution, G_init.img_channels) != (G.img_resolution, 3):
            raise UserError(
                f"the initial model makes {G_init.img_resolution} px images, the model {G.img_resolution} px"
            )
        seconds: dict[str, float] = {}

        start = time.perf_counter()
        generated = _render(G, seeds, psi, batch_size, "rendering seeds", progress, should_stop)
        seconds["render seeds"] = time.perf_counter() - start
        start = time.perf_counter()
        indices = seeded_subset(len(dataset), num_real, real_seed)
        real = _load_real(dataset, indices, should_stop, progress, "reading real images")
        labels = _toon_labels(dataset, indices, classifier.heads)
        gen_probs = classifier.classify(generated)
        real_probs = classifier.classify(real)
        heads = {
            head: head_stats(
                classes,
                gen_probs[head],
                real_probs[head],
                threshold,
                None if labels is None else labels[head],
            )
            for head, classes in classifier.heads.items()
        }
        seconds["classify"] = time.perf_counter() - start
        report = QualityReport(len(seeds), num_real, float(psi), float(threshold), heads, swd_num=swd_num)

        if swd_num:
            start = time.perf_counter()
            swd_real = _load_real(
                dataset,
                seeded_subset(len(dataset), swd_num, real_seed),
                should_stop,
                progress,
                "SWD real images",
            )
            swd_seeds = list(range(swd_num))
            fake = _render(G, swd_seeds, 1.0, batch_size, "SWD model images", progress, should_stop)
            report.swd = swd_metric.swd(_nchw_batches(swd_real), _nchw_batches(fake), seed=real_seed)
            seconds["swd model"] = time.perf_counter() - start
            if G_init is not None:
                start = time.perf_counter()
                fake = _render(
                    G_init, swd_seeds, 1.0, batch_size, "SWD initial model images", progress, should_stop
                )
                report.swd_init = swd_metric.swd(_nchw_batches(swd_real), _nchw_batches(fake), seed=real_seed)
                seconds["swd init"] = time.perf_counter() - start
        report.seconds = seconds
        return report
    finally:
        dataset.close()
