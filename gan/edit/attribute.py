"""InterFaceGAN-style attribute directions: a linear boundary in W between images with and
without an attribute; the boundary's unit normal is the direction.

1. Sample z, map to w (no truncation), render the images (const noise).
2. Label them with `label_fn(images, ws) -> {key: scores [N] in [0, 1]}` (for example
   `classifier_label_fn(load_classifier(...))`, or any function; images are float NCHW in [-1, 1],
   None when `render=False`).
3. Per attribute: binary labels `score > 0.5`, a linear SVM on the ws (80 % of the samples,
   balanced class weights), its held-out accuracy on the other 20 %, the unit normal pointing
   towards "has the attribute".
4. Conditional orthogonalisation (InterFaceGAN's conditional manipulation): each direction has
   the span of the `condition_on` directions of *other* attributes projected out, so moving along
   "anime" leaves the hair-colour boundaries' scores unchanged to first order.

Attribute names: a score key (e.g. "glasses", "style=anime"), a group of keys "<name>=<class>"
(e.g. "hair_colour" -> "hair_colour=black", ..., one one-vs-rest direction per class), or a class
name that ends exactly one key (e.g. "anime" -> "style=anime"; the direction is named "anime").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch

from gan.edit.directions import Direction, orthogonalize
from gan.edit.pca import sample_w
from gan.errors import Cancelled, UserError
from gan.progress import Progress

LabelFn = Callable[[torch.Tensor | None, torch.Tensor], dict[str, np.ndarray]]


def classifier_label_fn(clf) -> LabelFn:
    """Scores from a gan.edit.classifier.Classifier: a two-class head with classes ["no", "yes"]
    gives one key named like the head ("glasses"); any other head gives "<head>=<class>" keys."""

    def label(images: torch.Tensor | None, ws: torch.Tensor) -> dict[str, np.ndarray]:
        if images is None:
            raise UserError("the classifier labels images; do not use render=False with it")
        probs = clf.classify(images)
        out = {}
        for head, classes in clf.heads.items():
            if [c.lower() for c in classes] == ["no", "yes"]:
                out[head] = probs[head][:, 1]
            else:
                for i, c in enumerate(classes):
                    out[f"{head}={c}"] = probs[head][:, i]
        return out

    return label


def label_keys(clf) -> list[str]:
    """The score keys `classifier_label_fn(clf)` returns, without labelling anything (so a command
    can name its directions, and refuse to overwrite them, before the long work starts)."""
    keys = []
    for head, classes in clf.heads.items():
        if [c.lower() for c in classes] == ["no", "yes"]:
            keys.append(head)
        else:
            keys += [f"{head}={c}" for c in classes]
    return keys


def resolve_attributes(requested: list[str], keys: list[str]) -> list[tuple[str, str, str]]:
    """(direction name, score key, group) for each requested attribute (see the module docstring)."""
    out = []
    for name in requested:
        if name in keys:
            out.append((name, name, name.split("=", 1)[0]))
            continue
        group = [k for k in keys if k.startswith(name + "=")]
        if group:
            out += [(k, k, name) for k in group]
            continue
        alias = [k for k in keys if k.endswith("=" + name)]
        if len(alias) == 1:
            out.append((name, alias[0], alias[0].split("=", 1)[0]))
            continue
        raise UserError(f"unknown attribute {name!r}; the labels have: {', '.join(sorted(keys))}")
    return out


@torch.no_grad()
def label_samples(
    G: torch.nn.Module,
    ws: np.ndarray,
    label_fn: LabelFn,
    render: bool = True,
    batch_size: int = 32,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, np.ndarray]:
    """Scores of label_fn for every w (rendered with const noise when render=True)."""
    device = next(G.parameters()).device
    scores: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(ws), batch_size):
        if should_stop is not None and should_stop():
            raise Cancelled("labelling samples was stopped")
        w = torch.from_numpy(ws[i : i + batch_size]).to(device)
        images = None
        if render:
            images = G.synthesis(w[:, None].repeat(1, G.num_ws, 1), noise_mode="const").float().cpu()
        for key, value in label_fn(images, w.cpu()).items():
            value = np.asarray(value, dtype=np.float64).reshape(-1)
            if len(value) != len(w):
                raise ValueError(
                    f"label function returned {len(value)} scores of {key!r} for {len(w)} images"
                )
            scores.setdefault(key, []).append(value)
        if progress is not None:
            progress(min(i + batch_size, len(ws)), len(ws))
    return {k: np.concatenate(v) for k, v in scores.items()}


def fit_boundary(ws: np.ndarray, positive: np.ndarray, name: str, seed: int = 0) -> tuple[np.ndarray, float]:
    """Unit normal (towards positive) of a linear SVM separating ws, and its held-out accuracy."""
    from sklearn.svm import LinearSVC

    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if min(n_pos, n_neg) < 5:
        raise UserError(
            f"attribute {name!r}: {n_pos} of {len(positive)} samples have it and {n_neg} do not; a boundary "
            "needs at least 5 of each. Use more samples, or check that the model and classifier fit together."
        )
    order = np.random.default_rng(seed).permutation(len(ws))
    split = max(1, int(0.8 * len(ws)))
    train, test = order[:split], order[split:]
    x = ws.astype(np.float64)
    # A constant shift keeps the intercept small relative to the ws (LinearSVC penalises it too).
    mean = x[train].mean(axis=0)
    svm = LinearSVC(C=1.0, class_weight="balanced", max_iter=20000, random_state=seed)
    svm.fit(x[train] - mean, positive[train])
    normal = svm.coef_[0]
    norm = np.linalg.norm(normal)
    if not norm > 0:
        raise UserError(f"attribute {name!r}: the boundary fit failed (zero normal)")
    accuracy = float((svm.predict(x[test] - mean) == positive[test]).mean()) if len(test) else float("nan")
    return (normal / norm).astype(np.float32), accuracy


def compute_attribute_directions(
    G: torch.nn.Module,
    label_fn: LabelFn,
    attributes: list[str],
    num_samples: int = 2000,
    condition_on: list[str] | tuple[str, ...] = (),
    seed: int = 0,
    render: bool = True,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_skip: Callable[[str, str], None] | None = None,
) -> list[Direction]:
    """Directions for the requested attributes (see the module docstring), in the requested order.

    A class of a group attribute with too few positive or negative samples (e.g. a hair colour
    the model never draws) is skipped: on_skip(key, reason), or a warning without on_skip.
    An attribute named explicitly that cannot be fitted raises UserError.

    progress(done, total, stage) with stage 'sampling' or 'labelling'; should_stop() is polled
    between batches and raises gan.errors.Cancelled."""
    if not attributes:
        raise UserError("name at least one attribute")
    if num_samples < 20:
        raise UserError(f"{num_samples} samples are too few for a boundary; use a few thousand")

    def stage(name):
        return None if progress is None else (lambda done, total, what="": progress(done, total, name))

    ws = sample_w(G, num_samples, seed=seed, progress=stage("sampling"), should_stop=should_stop)
    scores = label_samples(
        G, ws, label_fn, render=render, progress=stage("labelling"), should_stop=should_stop
    )
    keys = sorted(scores)
    wanted = resolve_attributes(list(attributes), keys)
    conditions = resolve_attributes(list(condition_on), keys)
    normals: dict[str, np.ndarray] = {}
    accuracies: dict[str, float] = {}
    requested = set(attributes) | set(condition_on)
    failed: set[str] = set()
    for name, key, _ in wanted + conditions:
        if key in normals or key in failed:
            continue
        try:
            normals[key], accuracies[key] = fit_boundary(ws, scores[key] > 0.5, key, seed)
        except UserError as exc:
            if name in requested:  # named explicitly: the user asked for exactly this one
                raise
            failed.add(key)
            # One class of a group (e.g. a hair colour the model never draws): skip it, say so.
            if on_skip is None:
                warnings.warn(f"skipped {key}: {exc}", stacklevel=2)
            else:
                on_skip(key, str(exc))
    wanted = [w for w in wanted if w[1] in normals]
    conditions = [c for c in conditions if c[1] in normals]
    if not wanted:
        raise UserError(f"no direction could be fitted for {', '.join(attributes)} (see the skipped classes)")
    directions = []
    for name, key, group in wanted:
        others = [c for c in conditions if c[2] != group]
        vector = orthogonalize(normals[key], [normals[c[1]] for c in others]) if others else normals[key]
        share = float((scores[key] > 0.5).mean())
        note = f"; orthogonal to {', '.join(c[0] for c in others)}" if others else ""
        directions.append(
            Direction(
                name=name,
                kind="attribute",
                vector=vector,
                scale=float(max(np.std(ws.astype(np.float64) @ vector.astype(np.float64)), 1e-12)),
                help=f"towards '{key}' (InterFaceGAN boundary in W, held-out accuracy {accuracies[key]:.2f}, "
                f"{num_samples} samples, {100 * share:.0f}% positive{note})",
            )
        )
    return directions
