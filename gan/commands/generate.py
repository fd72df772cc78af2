"""`gan generate`: render seeds (or a projection's latents, `--latents`) to PNG files that carry
their recipe, optionally moved along the model's directions (`--direction NAME=VALUE`) and
rendered through a blend with a fine-tuned model (`--blend FILE`)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from gan.config_help import add_config_arguments, config_from_args, opt
from gan.errors import UserError
from gan.recipe import model_ref, recipe_to_dict, write_png
from gan.render import NOISE_MODES, RenderArgs, Renderer
from gan.seeds import parse_seeds

NAME = "generate"
HELP = (
    "Render images for a list of seeds, or a projection's latents (--latents), into PNG files "
    "(with the recipe in a text chunk)."
)


def _pair(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers 'x,y', got {text!r}") from None
    return x, y


@dataclass
class GenerateConfig:
    """Options of `gan generate`: what to render (seeds or a projection) and how."""

    model: str = opt(help="model file (.safetensors or official .pkl)")
    seeds: str | None = opt(None, help="seeds, e.g. 0-7 or 1,5,9-11")
    latents: str | None = opt(None, help="render a projection written by `gan project` instead of seeds")
    outdir: str | None = opt(None, help="directory for the PNG files (created if needed)")
    out: str | None = opt(
        None, help="--latents: the PNG to write (default: OUTDIR/<name>.png, or <name>-render.png next to it)"
    )
    direction: list[str] = field(
        default_factory=list,
        metadata={
            "help": "move along a stored direction by VALUE slider units, e.g. anime=4 (repeatable; "
            "`gan directions list` shows them)"
        },
    )
    blend: str | None = opt(None, help="render through MODEL blended with this fine-tuned model")
    blend_resolution: int | None = opt(None, help="--blend: first blended resolution (default: middle)")
    blend_weight: float = opt(1.0, help="--blend: weight 0 (base) to 1 (tuned)")
    psi: float = opt(1.0, help="truncation psi (default 1 = none)")
    trunc_cutoff: int | None = opt(None, help="truncate only the first K ws")
    class_idx: int | None = opt(None, help="class of a conditional model")
    noise_mode: str = opt("const", help="per-pixel noise (default const)")
    translate: tuple[float, float] = opt((0.0, 0.0), help="input translation in image sizes, e.g. 0.3,0.1")
    rotate: float = opt(0.0, help="input rotation in degrees")
    grid: int = opt(0, help="also write all seeds into grid.png, COLS per row")
    device: str = opt("cpu", help="torch device: cpu (default), cuda, cuda:1, ...")


_SOURCE = ("seeds", "latents")  # what to render: exactly one of the two


def add_arguments(p: argparse.ArgumentParser) -> None:
    options = dict(
        flags={"class_idx": "--class"},
        types={"translate": _pair},
        choices={"noise_mode": NOISE_MODES},
        metavars={
            "latents": "FILE.npz",
            "out": "FILE.png",
            "direction": "NAME=VALUE",
            "blend": "FILE",
            "trunc_cutoff": "K",
            "class_idx": "N",
            "translate": "X,Y",
            "rotate": "DEG",
            "grid": "COLS",
        },
        # seeds / latents: one of the two is required; direction: none unless given
        shown={"translate": "0,0", "seeds": "", "latents": "", "direction": ""},
        repeated=("direction",),
    )
    add_config_arguments(p, GenerateConfig, ["model"], **options)
    # Seeds or a projection, exactly one: argparse's exclusive group holds the two generated options.
    add_config_arguments(p.add_mutually_exclusive_group(required=True), GenerateConfig, _SOURCE, **options)
    rest = [f.name for f in fields(GenerateConfig) if f.name not in ("model", *_SOURCE)]
    add_config_arguments(p, GenerateConfig, rest, **options)


def _check_device(name: str) -> str:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}: use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    return name


def _make_outdir(outdir: str) -> Path:
    path = Path(outdir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"--outdir {outdir} exists and is not a directory") from None
    except OSError as exc:
        raise UserError(f"cannot create --outdir {outdir}: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise UserError(f"--outdir {outdir} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"--outdir {outdir} is not writable")
    return path


def _parse_directions(specs: list[str]) -> list[tuple[str, float]]:
    out = []
    for spec in specs:
        name, sep, value = spec.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or not name or not math.isfinite(number):
            raise UserError(f"--direction {spec!r}: expected NAME=VALUE, e.g. anime=4")
        out.append((name, number))
    return out


def _edits(model, wanted: list[tuple[str, float]]) -> list:
    """gan.render.Edit for each (direction name, slider value)."""
    if not wanted:
        return []
    from gan.edit.directions import load_directions

    directions = {d.name: d for d in load_directions(model)}
    edits = []
    for name, value in wanted:
        if name not in directions:
            known = ", ".join(directions) or "none (compute some with `gan directions`)"
            raise UserError(f"--direction {name}: this model has no such direction; it has {known}")
        edits.append(directions[name].edit(value))
    return edits


def _blended(model, path: str, resolution: int | None, weight: float, device: str):
    from gan.edit.blend import blend_models, check_blendable, default_blend_resolution
    from gan.model_io import load_model

    tuned = load_model(path, device=device, training_nets=False)
    reason = check_blendable(model, tuned)
    if reason is not None:
        raise UserError(f"cannot blend {model.source} with {path}: {reason}")
    resolution = resolution if resolution is not None else default_blend_resolution(model)
    print(f"blending {path} from resolution {resolution} on, weight {weight:g}", file=sys.stderr)
    return blend_models(model, tuned, resolution, weight)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(GenerateConfig, args)
    if config.latents is not None:
        return _run_latents(config)
    return _run_seeds(config)


def _run_seeds(config: GenerateConfig) -> int:
    from gan.model_io import load_model  # heavy import; keep `gan --help` fast
    from gan.train.snapshot import save_image_grid

    if config.outdir is None:
        raise UserError("--seeds writes into a folder: give --outdir")
    if config.out is not None:
        raise UserError("--out is for --latents; seeds go to --outdir")
    seeds = parse_seeds(config.seeds)
    if not all(math.isfinite(v) for v in (config.psi, config.rotate, *config.translate)):
        raise UserError("--psi, --translate and --rotate must be finite numbers")
    wanted = _parse_directions(config.direction)
    device = _check_device(config.device)
    model = load_model(config.model, device=device, training_nets=False)
    edits = _edits(model, wanted)
    if config.blend is not None:
        model = _blended(model, config.blend, config.blend_resolution, config.blend_weight, device)
    G = model.G
    if G.c_dim > 0 and config.class_idx is None:
        raise UserError(f"{config.model} is a conditional model: give --class from 0 to {G.c_dim - 1}")
    if G.c_dim == 0 and config.class_idx is not None:
        raise UserError(f"{config.model} is not conditional: leave out --class")
    if config.class_idx is not None and not 0 <= config.class_idx < G.c_dim:
        raise UserError(
            f"--class {config.class_idx} is out of range: this model has classes 0 to {G.c_dim - 1}"
        )
    if config.trunc_cutoff is not None and not 0 <= config.trunc_cutoff <= G.num_ws:
        raise UserError(f"--trunc-cutoff must be between 0 and {G.num_ws} for this model")
    if config.grid < 0:
        raise UserError("--grid must be a positive number of columns (or 0 for no grid)")
    outdir = _make_outdir(config.outdir)

    renderer = Renderer(model, device=device, activation_cache_bytes=0)  # every seed differs: no reuse
    ref = model_ref(model)
    images = []
    for seed in tqdm(seeds, desc="generate", unit="img", file=sys.stderr):
        render_args = RenderArgs(
            seed=seed,
            class_idx=config.class_idx,
            psi=config.psi,
            truncation_cutoff=config.trunc_cutoff,
            noise_mode=config.noise_mode,
            translate=config.translate,
            rotate=config.rotate,
            edits=edits,
        )
        result = renderer.render(render_args)
        if result.error is not None:
            raise UserError(f"seed {seed}: {result.error}")
        path = outdir / f"seed{seed:04d}.png"
        try:
            write_png(path, result.image, recipe_to_dict(render_args, ref, result.w))
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
        if config.grid:
            images.append(result.image.transpose(2, 0, 1))
    if config.grid:
        path = outdir / "grid.png"
        try:
            save_image_grid(np.stack(images), str(path), cols=min(config.grid, len(images)))
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return 0


def _run_latents(config: GenerateConfig) -> int:
    """Render a projection (.npz from `gan project`) with the edits, transform and blend asked for."""
    from gan.model_io import load_model
    from gan.photo.pipeline import projection_render_args
    from gan.photo.project import load_projection

    if config.grid or config.class_idx is not None or config.trunc_cutoff is not None or config.psi != 1.0:
        raise UserError("--grid, --class, --psi and --trunc-cutoff apply to seeds, not to --latents")
    if config.noise_mode != "const":
        raise UserError("--latents renders with the projection's own noise; leave out --noise-mode")
    if not all(math.isfinite(v) for v in (config.rotate, *config.translate)):
        raise UserError("--translate and --rotate must be finite numbers")
    wanted = _parse_directions(config.direction)
    projection = load_projection(config.latents)
    device = _check_device(config.device)
    model = load_model(config.model, device=device, training_nets=False)
    projected_into = projection.model.get("sha256")
    if projected_into and projected_into != model.sha256:
        print(
            f"note: {config.latents} was projected into {projection.model.get('path', 'another model')}, "
            f"not {config.model}; the latents only mean the same in models of one lineage",
            file=sys.stderr,
        )
    edits = _edits(model, wanted)
    if config.blend is not None:
        model = _blended(model, config.blend, config.blend_resolution, config.blend_weight, device)
    render_args = projection_render_args(
        projection, edits=edits, translate=config.translate, rotate=config.rotate
    )
    result = Renderer(model, device=device, activation_cache_bytes=0).render(render_args)
    if result.error is not None:
        raise UserError(f"{config.latents}: {result.error}")
    if config.out is not None:
        path = Path(config.out)
    elif config.outdir is not None:
        path = _make_outdir(config.outdir) / (Path(config.latents).stem + ".png")
    else:
        path = Path(config.latents).with_name(Path(config.latents).stem + "-render.png")
    try:
        write_png(path, result.image, recipe_to_dict(render_args, model_ref(model), result.w))
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}", file=sys.stderr)
    return 0
