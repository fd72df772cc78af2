"""`gan generate`: render seeds to PNG files that carry their recipe."""

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
HELP = "Render images for a list of seeds into PNG files (with the recipe in a text chunk)."


def _pair(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers 'x,y', got {text!r}") from None
    return x, y


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model file (.safetensors or official .pkl)")
    p.add_argument("--seeds", required=True, help="seeds, e.g. 0-7 or 1,5,9-11")
    p.add_argument("--outdir", required=True, help="directory for the PNG files (created if needed)")
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


def run(args: argparse.Namespace) -> int:
    from gan.model_io import load_model  # heavy import; keep `gan --help` fast
    from gan.train.snapshot import save_image_grid

    seeds = parse_seeds(args.seeds)
    if not all(math.isfinite(v) for v in (args.psi, args.rotate, *args.translate)):
        raise UserError("--psi, --translate and --rotate must be finite numbers")
    device = _check_device(args.device)
    model = load_model(args.model, device=device, training_nets=False)
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
