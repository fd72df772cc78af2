"""`gan directions pca | attribute | list`: compute and inspect latent directions of a model.

Directions are stored with the model (see gan.edit.directions): inside our .safetensors files,
in a `<model>.directions.json` sidecar next to official pickles; `--out F` writes them to F
instead (the sidecar format; rename it to `<model>.directions.json` to use it).

Nothing is replaced silently: writing a direction whose name the model already has, or anything
into a model shipped with the program (resources/models), needs `--force`; without it the
command stops before computing and says so (use `--out F` for a copy). Long steps report
progress (a bar on a terminal, a line every 15 s otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gan.commands.stage_bars import StageBars
from gan.config_help import add_config_arguments, config_from_args
from gan.edit.refine import RefineConfig
from gan.errors import UserError
from gan.resources import REFINE_CLASSIFIER, SHIPPED_CLASSIFIER

NAME = "directions"
HELP = "Compute latent directions (PCA, attribute) for a model, or list its directions."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="directions_action", required=True, metavar="ACTION")

    p = sub.add_parser("pca", help="GANSpace-style PCA directions of W.", description=_pca_description())
    _common(p)
    p.add_argument("--num-samples", type=int, default=10000, help="ws to sample (default 10000)")
    p.add_argument("--components", type=int, default=20, help="number of components (default 20)")
    p.set_defaults(_directions_run=_run_pca)

    p = sub.add_parser(
        "attribute",
        help="InterFaceGAN-style attribute directions from classifier labels.",
        description="Sample ws, render them, label the images with the classifier and fit a linear "
        "boundary in W per attribute; the unit normal is the direction. Each direction is made "
        "orthogonal to the --condition-on directions of the other attributes.",
    )
    _common(p)
    p.add_argument(
        "--classifier",
        default=str(SHIPPED_CLASSIFIER),
        help="classifier file (default: the shipped resources/classifier/toon_classifier.safetensors)",
    )
    p.add_argument(
        "--attributes",
        default="anime,hair_colour",
        help="comma-separated: anime, photo, glasses, hair_colour (one direction per colour), or a "
        "single class such as hair_colour=blonde (default anime,hair_colour)",
    )
    p.add_argument(
        "--condition-on",
        default=None,
        help="attributes to orthogonalise against (default: all other requested attributes; 'none' = off)",
    )
    p.add_argument("--num-samples", type=int, default=3000, help="images to sample and label (default 3000)")
    p.set_defaults(_directions_run=_run_attribute)

    p = sub.add_parser(
        "measure",
        help="Classify the images of seeds moved along a stored direction; optionally save a sweep grid.",
        description="Render the seeds at -strength, 0 and +strength slider units along a stored direction, "
        "classify them with the classifier and print the class rates and how often each head's class "
        "stays unchanged. --grid writes a PNG sweep (rows: seeds, columns: slider values).",
    )
    p.add_argument("--model", required=True, help="model file (.safetensors or official .pkl)")
    p.add_argument(
        "--direction", required=True, help="name of a stored direction (see `gan directions list`)"
    )
    p.add_argument("--strength", type=float, default=3.0, help="slider units (default 3)")
    p.add_argument("--seeds", default="1000-1199", help="seeds, e.g. 1000-1199 (default)")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi (default 1)")
    p.add_argument("--classifier", default=str(SHIPPED_CLASSIFIER), help="classifier file (default: shipped)")
    p.add_argument(
        "--control",
        action="store_true",
        help="also measure a random direction moved as far (how often classes change by any move this size)",
    )
    p.add_argument("--grid", default=None, help="also write a sweep grid PNG of the first --grid-seeds seeds")
    p.add_argument("--grid-seeds", type=int, default=8, help="rows of the grid (default 8)")
    p.add_argument("--grid-steps", type=int, default=7, help="columns of the grid (default 7)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument(
        "--set-range",
        nargs="?",
        const="both",
        choices=["both", "low", "high"],
        default=None,
        help="store the measured strengths as the direction's slider range: both ends (-strength.."
        "+strength), or only the low or high end (measure each end at its own --strength)",
    )
    p.add_argument(
        "--force", action="store_true", help="allow --set-range on a model shipped with the program"
    )
    p.set_defaults(_directions_run=_run_measure)

    p = sub.add_parser(
        "refine",
        help="Optimise a stored direction through the classifier: change one class, keep other heads.",
        description="Start from a stored direction and optimise its unit vector through the generator and "
        "the classifier so that +strength slider units give --target, -strength anything else, and the "
        "--keep heads' predictions stay as they were (KL). The refined direction replaces the stored one "
        "(same name and layer range). Measure it with another classifier than the one it was refined with.",
    )
    _common(p, replace=False)
    p.add_argument("--direction", default="anime", help="name of a stored direction (default anime)")
    p.add_argument(
        "--classifier",
        default=str(REFINE_CLASSIFIER),
        help="classifier to optimise through (default: the shipped toon_classifier_refine.safetensors, "
        "not the one `measure` judges with)",
    )
    add_config_arguments(
        p,
        RefineConfig,
        ["target", "strength", "steps", "batch", "lr", "keep", "keep_weight", "per_layer", "shift"],
        types={"keep": _split_tuple},
        notes={"keep": ", comma-separated"},
    )
    p.set_defaults(_directions_run=_run_refine)

    p = sub.add_parser("list", help="List the directions stored with a model.")
    p.add_argument("--model", required=True, help="model file (.safetensors or official .pkl)")
    p.add_argument("--json", action="store_true", help="print the full directions as JSON")
    p.set_defaults(_directions_run=_run_list)


def _pca_description() -> str:
    return (
        "Sample ws from the mapping network, fit a PCA and store the top components as directions "
        "pc0, pc1, ... (slider unit: the component's standard deviation; the first third act on the "
        "coarse ws, the middle third on the middle ws, the last third on the fine ws)."
    )


def _common(p: argparse.ArgumentParser, replace: bool = True) -> None:
    p.add_argument("--model", required=True, help="model file (.safetensors or official .pkl)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled ws (default 0)")
    p.add_argument(
        "--out", default=None, help="write the directions to this JSON file instead of with the model"
    )
    if replace:
        p.add_argument("--replace", action="store_true", help="drop the model's other stored directions")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace same-named directions / write into a shipped model / overwrite --out "
        "(otherwise refused before computing)",
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")


def run(args: argparse.Namespace) -> int:
    return args._directions_run(args)


def _load(args):
    from gan.model_io import load_model

    return load_model(args.model, device=args.device, training_nets=False)


def is_shipped(path: str) -> bool:
    """True for a model file shipped with the program (resources/models, also its sidecars)."""
    from gan.resources import RESOURCES

    try:
        return Path(path).resolve().is_relative_to((RESOURCES / "models").resolve())
    except OSError:
        return False


def _check_target(args, model, names: list[str]) -> None:
    """Refuse, before any computing, to replace directions or touch a shipped model without --force."""
    from gan.edit.directions import load_directions

    if args.force:
        return
    if args.out:
        if os.path.exists(args.out):
            raise UserError(f"--out {args.out} exists; choose another file or pass --force to overwrite it")
        return
    fix = "pass --force to write it anyway, or --out FILE to write the directions to a separate file"
    if is_shipped(args.model):
        raise UserError(
            f"{args.model} is a model shipped with the program (its directions were measured and "
            f"documented); {fix}"
        )
    existing = {d.name for d in load_directions(model)}
    clash = [n for n in names if n in existing]
    if clash:
        raise UserError(
            f"{args.model} already has direction(s) {', '.join(clash)}, which this would replace; {fix}"
        )


def _store(args, model, directions) -> str:
    from gan.edit.directions import SIDECAR_FORMAT, save_directions
    from gan.io.files import atomic_write_bytes

    if args.out:
        data = {
            "format": SIDECAR_FORMAT,
            "model_sha256": model.sha256,
            "directions": [d.to_json() for d in directions],
        }
        atomic_write_bytes(args.out, json.dumps(data, indent=1).encode())
        return args.out
    return save_directions(args.model, directions, replace=getattr(args, "replace", False))


def _report(directions, where: str) -> None:
    for d in directions:
        print(f"  {d.name}: {d.help}")
    print(f"{len(directions)} direction(s) written to {where}")


def _run_pca(args: argparse.Namespace) -> int:
    from gan.edit.pca import compute_pca_directions

    model = _load(args)
    _check_target(args, model, [f"pc{i}" for i in range(args.components)])
    print(f"sampling {args.num_samples} ws for {args.components} PCA directions", file=sys.stderr)
    bars = StageBars(unit="w")
    try:
        directions = compute_pca_directions(
            model.G,
            num_samples=args.num_samples,
            num_components=args.components,
            seed=args.seed,
            progress=lambda done, total, what="": bars(done, total, "sampling W"),
        )
    finally:
        bars.close()
    _report(directions, _store(args, model, directions))
    return 0


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _split_tuple(text: str) -> tuple[str, ...]:
    return tuple(_split(text))


def _run_attribute(args: argparse.Namespace) -> int:
    from gan.edit.attribute import (
        classifier_label_fn,
        compute_attribute_directions,
        label_keys,
        resolve_attributes,
    )
    from gan.edit.classifier import load_classifier

    attributes = _split(args.attributes)
    if not attributes:
        raise UserError("--attributes is empty; name at least one, e.g. anime")
    if args.condition_on is None:
        condition_on = attributes  # each attribute is made orthogonal to the others' directions
    elif args.condition_on.strip().lower() == "none":
        condition_on = []
    else:
        condition_on = _split(args.condition_on)
    if not os.path.isfile(args.classifier):
        raise UserError(f"classifier file {args.classifier} does not exist; pass --classifier PATH")
    clf = load_classifier(args.classifier, device=args.device)
    model = _load(args)
    names = [name for name, _key, _group in resolve_attributes(attributes, label_keys(clf))]
    _check_target(args, model, names)
    print(
        f"sampling {args.num_samples} ws, rendering and classifying them, then fitting {', '.join(names)}",
        file=sys.stderr,
    )
    bars = StageBars()
    try:
        directions = compute_attribute_directions(
            model.G,
            classifier_label_fn(clf),
            attributes,
            num_samples=args.num_samples,
            condition_on=condition_on,
            seed=args.seed,
            progress=bars,
            on_skip=lambda key, reason: print(f"skipped {key}: {reason}", file=sys.stderr),
        )
    finally:
        bars.close()
    _report(directions, _store(args, model, directions))
    return 0


def _run_refine(args: argparse.Namespace) -> int:
    from gan.edit.classifier import load_classifier
    from gan.edit.refine import refine_direction

    model = _load(args)
    direction = _stored(args, model)
    _check_target(args, model, [direction.name])
    clf = load_classifier(args.classifier, device=args.device)
    config = config_from_args(RefineConfig, args)
    bars = StageBars(unit="step")

    def progress(done: int, total: int, losses: str = "") -> None:
        bars(done, total, "refining", losses)

    try:
        refined, history = refine_direction(model.G, clf, direction, config, progress=progress)
    finally:
        bars.close()
    first, last = history[0], history[-1]
    print(
        f"target loss {first.target_loss:.3f} -> {last.target_loss:.3f}, keep loss {first.keep_loss:.3f} -> "
        f"{last.keep_loss:.3f} (first and last step)"
    )
    _report([refined], _store(args, model, [refined]))
    return 0


def _stored(args, model):
    """The stored direction named by --direction; UserError listing the stored ones otherwise."""
    from gan.edit.directions import load_directions

    by_name = {d.name: d for d in load_directions(model)}
    if args.direction not in by_name:
        known = ", ".join(by_name) or "none; compute some with `gan directions pca|attribute`"
        raise UserError(f"{args.model} has no direction {args.direction!r}; stored directions: {known}")
    return by_name[args.direction]


def _run_list(args: argparse.Namespace) -> int:
    from gan.edit.directions import load_directions
    from gan.model_io import load_model

    model = load_model(args.model, training_nets=False)
    directions = load_directions(model)
    if args.json:
        print(json.dumps([d.to_json() for d in directions], indent=1))
        return 0
    if not directions:
        print(f"{args.model} has no stored directions; compute some with `gan directions pca|attribute`")
        return 0
    for d in directions:
        end = model.G.num_ws if d.layer_end is None else d.layer_end
        slider = f"{d.range[0]:g}..{d.range[1]:g}"
        print(
            f"{d.name:<24} {d.kind:<9} ws {d.layer_start}..{end - 1:<4} unit {d.scale:.4g}  "
            f"slider {slider:<9} {d.help}"
        )
    return 0


def _run_measure(args: argparse.Namespace) -> int:
    import numpy as np
    import PIL.Image

    from gan.edit.classifier import load_classifier
    from gan.edit.measure import measure_edit, random_like, sweep_grid
    from gan.seeds import parse_seeds

    seeds = parse_seeds(args.seeds)
    model = _load(args)
    direction = _stored(args, model)
    if args.set_range:
        if not args.strength > 0:
            raise UserError(f"--set-range needs a positive --strength, not {args.strength:g}")
        if is_shipped(args.model) and not args.force:
            raise UserError(
                f"{args.model} is a model shipped with the program; pass --force to change its "
                f"direction {direction.name!r}"
            )
    clf = load_classifier(args.classifier, device=args.device)
    result = measure_edit(model.G, clf, direction, args.strength, seeds, psi=args.psi)
    print(result.summary())
    if args.control:
        control = measure_edit(model.G, clf, random_like(direction), args.strength, seeds, psi=args.psi)
        print(control.summary())
    if args.grid:
        values = np.linspace(-args.strength, args.strength, max(2, args.grid_steps))
        grid = sweep_grid(model.G, direction, values, seeds[: max(1, args.grid_seeds)], psi=args.psi)
        PIL.Image.fromarray(grid).save(args.grid)
        print(f"sweep grid written to {args.grid}")
    if args.set_range:
        _set_range(args, direction)
    return 0


def _set_range(args, direction) -> None:
    import dataclasses

    from gan.edit.directions import save_directions

    low, high = direction.range
    if args.set_range in ("both", "low"):
        low = -args.strength
    if args.set_range in ("both", "high"):
        high = args.strength
    changed = dataclasses.replace(direction, range=(low, high))
    where = save_directions(args.model, [changed])
    print(
        f"slider range of {direction.name!r} set to {low:g} .. {high:g} (was {direction.range[0]:g} .. "
        f"{direction.range[1]:g}) in {where}"
    )
