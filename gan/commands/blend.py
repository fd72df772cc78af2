"""`gan blend BASE TUNED`: layer-swap a model with one fine-tuned from it (see gan.edit.blend).

    gan blend base.safetensors anime.safetensors --resolution 32 --weight 0.7 --out blended.safetensors
    gan blend base.safetensors anime.safetensors --grid blend.png --measure

--out writes the blended generator as a model of its own (metadata["blend"] records what was
mixed). --grid writes a PNG with one row per seed and one column per weight of --weights;
--measure classifies --seeds at each of those weights with the toon classifier.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, fields

from gan.commands.stage_bars import StageBars
from gan.config_help import add_config_arguments, config_from_args, field_help, opt
from gan.errors import UserError
from gan.resources import SHIPPED_CLASSIFIER

NAME = "blend"
HELP = "Blend a model with one fine-tuned from it (layer swap): write the blend, a grid, class rates."


def _weights(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"weights must be numbers separated by commas, got {text!r}"
        ) from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"weights must be from 0 to 1, got {text!r}")
    return values


@dataclass
class BlendConfig:
    """Options of `gan blend`: the two models, what to write and what to measure."""

    base: str = opt(help="the base model (its mapping network and coarse layers stay)")
    tuned: str = opt(help="a model fine-tuned from BASE")
    resolution: int | None = opt(
        None,
        help="layers at and above this resolution are blended (default: the middle one; "
        "`gan info` lists a model's layers)",
    )
    weight: float = opt(1.0, help="blend weight for --out, 0 (base) to 1 (tuned); default 1")
    out: str | None = opt(None, help="write the blended generator to this .safetensors file")
    force: bool = opt(False, help="overwrite --out if it exists")
    grid: str | None = opt(None, help="write a PNG: rows are --grid-seeds, columns are --weights")
    grid_seeds: str = opt("0-7", help="seeds of the grid rows (default 0-7)")
    weights: tuple[float, ...] = opt((0.0, 0.25, 0.5, 0.75, 1.0), help="weights of --grid / --measure")
    measure: bool = opt(False, help="print the classifier's class rates at each weight")
    seeds: str = opt("1000-1199", help="seeds --measure classifies (default 1000-1199)")
    classifier: str = opt(str(SHIPPED_CLASSIFIER), help="classifier file (default: shipped)")
    psi: float = opt(1.0, help="truncation psi of the grid and --measure (default 1)")
    device: str = opt("cpu", help="torch device (default cpu)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    # The two models are positional arguments, which the generator (options only) does not make.
    for name in ("base", "tuned"):
        p.add_argument(name, metavar=name.upper(), help=field_help(BlendConfig, name))
    options = [f.name for f in fields(BlendConfig) if f.name not in ("base", "tuned")]
    add_config_arguments(
        p, BlendConfig, options, types={"weights": _weights}, shown={"weights": "0,0.25,0.5,0.75,1"}
    )


def run(args: argparse.Namespace) -> int:
    from gan.edit.blend import blend_generators, blend_models, check_blendable, default_blend_resolution
    from gan.model_io import load_model
    from gan.seeds import parse_seeds

    config = config_from_args(BlendConfig, args)
    if not (config.out or config.grid or config.measure):
        raise UserError("nothing to do: give --out, --grid and/or --measure")
    if config.out:
        _check_out(config.out, config.force)  # before loading and blending, which take a while
    base = load_model(config.base, device=config.device, training_nets=False)
    tuned = load_model(config.tuned, device=config.device, training_nets=False)
    reason = check_blendable(base, tuned)
    if reason is not None:
        raise UserError(f"cannot blend {config.base} with {config.tuned}: {reason}")
    resolution = config.resolution if config.resolution is not None else default_blend_resolution(base)
    print(f"blending layers at and above resolution {resolution}", file=sys.stderr)

    if config.out:
        _write(blend_models(base, tuned, resolution, config.weight), config.out, config.force)
    blended = {w: blend_generators(base, tuned, resolution, w) for w in config.weights}
    if config.grid:
        _write_grid(blended, parse_seeds(config.grid_seeds), config.psi, config.grid)
    if config.measure:
        _measure(blended, parse_seeds(config.seeds), config.psi, config.classifier, config.device)
    return 0


def _check_out(out: str, force: bool) -> None:
    if not out.endswith(".safetensors"):
        raise UserError(f"--out must end in .safetensors, got {out!r}")
    if os.path.exists(out) and not force:
        raise UserError(f"{out} already exists; pass --force to overwrite it")


def _write(model, out: str, force: bool) -> None:
    from gan.io.files import write_error
    from gan.model_io import save_model

    _check_out(out, force)  # again: it may have appeared while blending
    try:
        save_model(out, model.G, arch=model.arch, metadata=model.metadata)
    except OSError as exc:
        raise write_error(out, exc) from None
    print(f"wrote {out}", file=sys.stderr)


def _write_grid(blended: dict, seeds: list[int], psi: float, path: str) -> None:
    import io

    import PIL.Image

    from gan.edit.measure import columns_grid, render_edited
    from gan.io.files import atomic_write_bytes

    grid = columns_grid([render_edited(G, seeds, psi=psi) for G in blended.values()])
    buf = io.BytesIO()
    PIL.Image.fromarray(grid).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    print(
        f"grid written to {path} (columns: weights {', '.join(f'{w:g}' for w in blended)})", file=sys.stderr
    )


def _measure(blended: dict, seeds: list[int], psi: float, classifier_path: str, device: str) -> None:
    from gan.edit.classifier import load_classifier
    from gan.edit.measure import render_edited

    clf = load_classifier(classifier_path, device=device)
    bars = StageBars()
    predicted = {}
    for i, (w, G) in enumerate(blended.items()):
        predicted[w] = clf.predict(render_edited(G, seeds, psi=psi))
        bars((i + 1) * len(seeds), len(blended) * len(seeds), "classify (images)")
    print(f"class rates of {len(seeds)} seeds at blend weights {' / '.join(f'{w:g}' for w in blended)}:")
    for head, classes in clf.heads.items():
        for index, cls in enumerate(classes):
            rates = " / ".join(f"{100 * float((p[head] == index).mean()):.0f}%" for p in predicted.values())
            print(f"  {head}={cls}: {rates}")
