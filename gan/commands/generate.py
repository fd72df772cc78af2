"""`gan generate`: render seeds (or a projection's latents, `--latents`) to PNG files that carry
their recipe, optionally moved along the model's directions (`--direction NAME=VALUE`) and
rendered through a blend with a fine-tuned model (`--blend FILE`)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model file (.safetensors or official .pkl)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--seeds", help="seeds, e.g. 0-7 or 1,5,9-11")
    source.add_argument(
        "--latents", metavar="FILE.npz", help="render a projection written by `gan project` instead of seeds"
    )
    p.add_argument("--outdir", default=None, help="directory for the PNG files (created if needed)")
    p.add_argument(
        "--out",
        default=None,
        metavar="FILE.png",
        help="--latents: the PNG to write (default: OUTDIR/<name>.png, or <name>-render.png next to it)",
    )
    p.add_argument(
        "--direction",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="move along a stored direction by VALUE slider units, e.g. anime=4 (repeatable; "
        "`gan directions list` shows them)",
    )
    p.add_argument(
        "--blend",
        default=None,
        metavar="FILE",
        help="render through MODEL blended with this fine-tuned model",
    )
    p.add_argument(
        "--blend-resolution",
        type=int,
        default=None,
        help="--blend: first blended resolution (default: middle)",
    )
    p.add_argument("--blend-weight", type=float, default=1.0, help="--blend: weight 0 (base) to 1 (tuned)")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi (default 1 = none)")
    p.add_argument("--trunc-cutoff", type=int, default=None, metavar="K", help="truncate only the first K ws")
    p.add_argument(
        "--class", dest="class_idx", type=int, default=None, metavar="N", help="class of a conditional model"
    )
    p.add_argument(
        "--noise-mode", choices=NOISE_MODES, default="const", help="per-pixel noise (default const)"
    )
    p.add_argument(
        "--translate",
        type=_pair,
        default=(0.0, 0.0),
        metavar="X,Y",
        help="input translation in image sizes, e.g. 0.3,0.1",
    )
    p.add_argument("--rotate", type=float, default=0.0, metavar="DEG", help="input rotation in degrees")
    p.add_argument(
        "--grid", type=int, default=0, metavar="COLS", help="also write all seeds into grid.png, COLS per row"
    )
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1, ...")


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
    from gan.model_io import load_model  # heavy import; keep `gan --help` fast
    from gan.train.snapshot import save_image_grid

    if args.latents is not None:
        return _run_latents(args)
    if args.outdir is None:
        raise UserError("--seeds writes into a folder: give --outdir")
    if args.out is not None:
        raise UserError("--out is for --latents; seeds go to --outdir")
    seeds = parse_seeds(args.seeds)
    if not all(math.isfinite(v) for v in (args.psi, args.rotate, *args.translate)):
        raise UserError("--psi, --translate and --rotate must be finite numbers")
    wanted = _parse_directions(args.direction)
    device = _check_device(args.device)
    model = load_model(args.model, device=device, training_nets=False)
    edits = _edits(model, wanted)
    if args.blend is not None:
        model = _blended(model, args.blend, args.blend_resolution, args.blend_weight, device)
    G = model.G
    if G.c_dim > 0 and args.class_idx is None:
        raise UserError(f"{args.model} is a conditional model: give --class from 0 to {G.c_dim - 1}")
    if G.c_dim == 0 and args.class_idx is not None:
        raise UserError(f"{args.model} is not conditional: leave out --class")
    if args.class_idx is not None and not 0 <= args.class_idx < G.c_dim:
        raise UserError(
            f"--class {args.class_idx} is out of range: this model has classes 0 to {G.c_dim - 1}"
        )
    if args.trunc_cutoff is not None and not 0 <= args.trunc_cutoff <= G.num_ws:
        raise UserError(f"--trunc-cutoff must be between 0 and {G.num_ws} for this model")
    if args.grid < 0:
        raise UserError("--grid must be a positive number of columns (or 0 for no grid)")
    outdir = _make_outdir(args.outdir)

    renderer = Renderer(model, device=device, activation_cache_bytes=0)  # every seed differs: no reuse
    ref = model_ref(model)
    images = []
    for seed in tqdm(seeds, desc="generate", unit="img", file=sys.stderr):
        render_args = RenderArgs(
            seed=seed,
            class_idx=args.class_idx,
            psi=args.psi,
            truncation_cutoff=args.trunc_cutoff,
            noise_mode=args.noise_mode,
            translate=args.translate,
            rotate=args.rotate,
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
        if args.grid:
            images.append(result.image.transpose(2, 0, 1))
    if args.grid:
        path = outdir / "grid.png"
        try:
            save_image_grid(np.stack(images), str(path), cols=min(args.grid, len(images)))
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return 0


def _run_latents(args: argparse.Namespace) -> int:
    """Render a projection (.npz from `gan project`) with the edits, transform and blend asked for."""
    from gan.model_io import load_model
    from gan.photo.pipeline import projection_render_args
    from gan.photo.project import load_projection

    if args.grid or args.class_idx is not None or args.trunc_cutoff is not None or args.psi != 1.0:
        raise UserError("--grid, --class, --psi and --trunc-cutoff apply to seeds, not to --latents")
    if args.noise_mode != "const":
        raise UserError("--latents renders with the projection's own noise; leave out --noise-mode")
    if not all(math.isfinite(v) for v in (args.rotate, *args.translate)):
        raise UserError("--translate and --rotate must be finite numbers")
    wanted = _parse_directions(args.direction)
    projection = load_projection(args.latents)
    device = _check_device(args.device)
    model = load_model(args.model, device=device, training_nets=False)
    projected_into = projection.model.get("sha256")
    if projected_into and projected_into != model.sha256:
        print(
            f"note: {args.latents} was projected into {projection.model.get('path', 'another model')}, "
            f"not {args.model}; the latents only mean the same in models of one lineage",
            file=sys.stderr,
        )
    edits = _edits(model, wanted)
    if args.blend is not None:
        model = _blended(model, args.blend, args.blend_resolution, args.blend_weight, device)
    render_args = projection_render_args(
        projection, edits=edits, translate=args.translate, rotate=args.rotate
    )
    result = Renderer(model, device=device, activation_cache_bytes=0).render(render_args)
    if result.error is not None:
        raise UserError(f"{args.latents}: {result.error}")
    if args.out is not None:
        path = Path(args.out)
    elif args.outdir is not None:
        path = _make_outdir(args.outdir) / (Path(args.latents).stem + ".png")
    else:
        path = Path(args.latents).with_name(Path(args.latents).stem + "-render.png")
    try:
        write_png(path, result.image, recipe_to_dict(render_args, model_ref(model), result.w))
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}", file=sys.stderr)
    return 0
