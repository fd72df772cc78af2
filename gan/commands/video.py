"""`gan video`: MP4 loops (rotation, translation, seed interpolation, direction sweep), of one
model or of several side by side (`--compare A B C`)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from dataclasses import replace

from gan.config_help import add_config_arguments, config_from_args, field_help
from gan.errors import Cancelled, UserError
from gan.seeds import parse_seeds

NAME = "video"
HELP = (
    "Render an MP4 loop: StyleGAN3 rotation or translation, seed interpolation or a direction sweep; "
    "--compare puts several models side by side."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from gan.compare import MAX_MODELS
    from gan.video import (
        INTERP_SPACES,
        KINDS,
        NOISE_MODES,
        PRESETS,
        TRANSLATE_PATHS,
        UPSCALE_FILTERS,
        VideoJob,
    )

    models = p.add_mutually_exclusive_group(required=True)
    models.add_argument("--model", help="model file (.safetensors or official .pkl)")
    models.add_argument(
        "--compare",
        nargs="+",
        metavar="MODEL",
        help=f"2 to {MAX_MODELS} model files side by side, each labelled with its name and architecture, "
        "same seed and input transform (--kind rotate or translate)",
    )
    p.add_argument(
        "--labels", help="--compare: comma-separated panel labels, one per model (default: file name · arch)"
    )
    p.add_argument("--out", required=True, help="output .mp4 file (written completely or not at all)")
    p.add_argument("--seeds", default="0", help="seed(s), e.g. 3 or 0,5,9; " + field_help(VideoJob, "seeds"))
    add_config_arguments(
        p,
        VideoJob,
        [f.name for f in dataclasses.fields(VideoJob) if f.name not in _NOT_OPTIONS],
        flags={
            "class_idx": "--class",
            "translate_path": "--path",
            "translate_amount": "--amount",
            "interp_space": "--space",
            "direction_name": "--direction",
        },
        choices={
            "kind": KINDS,
            "noise_mode": NOISE_MODES,
            "translate_path": TRANSLATE_PATHS,
            "interp_space": INTERP_SPACES,
            "upscale_filter": UPSCALE_FILTERS,
            "preset": PRESETS,
        },
        metavars={
            "class_idx": "N",
            "duration": "SEC",
            "size": "PX",
            "translate_amount": "R",
            "upscale": "N",
            "direction_name": "NAME",
        },
        notes={"size": " (--compare: of each panel)"},
    )
    p.add_argument(
        "--direction-file",
        default=None,
        metavar="FILE.npy",
        help="sweep: a direction saved with numpy.save, [w_dim] or [num_ws, w_dim]",
    )
    p.add_argument(
        "--layers",
        default=None,
        metavar="START:END",
        help="sweep: w index range the direction applies to, e.g. 0:6 (default all)",
    )
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1, ...")


# VideoJob fields that are not options of their own: seeds, the direction vector and its layers
# are parsed from their own formats (--seeds, --direction-file, --layers); the base view is the
# explorer's.
_NOT_OPTIONS = ("view", "seeds", "direction", "layer_start", "layer_end")


def _layers(text: str | None) -> tuple[int, int | None]:
    if text is None:
        return 0, None
    try:
        start, end = text.split(":")
        return int(start or 0), (int(end) if end else None)
    except ValueError:
        raise UserError(f"--layers {text!r}: expected START:END, e.g. 0:6 or 4:") from None


def _direction_file(path: str):
    import numpy as np

    try:
        vector = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"--direction-file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"--direction-file {path} is not a numpy .npy array: {exc}") from None
    if vector.ndim not in (1, 2) or not np.issubdtype(vector.dtype, np.floating):
        raise UserError(f"--direction-file {path}: expected a float [w_dim] or [num_ws, w_dim] array")
    if not np.isfinite(vector).all():
        raise UserError(f"--direction-file {path} contains NaN or inf values")
    return vector.astype(np.float32)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gan.commands.generate import _check_device
    from gan.compare import COMPARE_KINDS, MAX_MODELS, render_compare_video
    from gan.model_io import load_model
    from gan.render import Renderer
    from gan.video import VideoJob, job_warnings, render_video

    if not all(math.isfinite(v) for v in (args.psi, args.fps, args.duration, args.strength)):
        raise UserError("--psi, --fps, --duration and --strength must be finite numbers")
    start, end = _layers(args.layers)
    job = replace(
        config_from_args(VideoJob, args),
        seeds=parse_seeds(args.seeds),
        direction=_direction_file(args.direction_file) if args.direction_file else None,
        layer_start=start,
        layer_end=end,
    )
    job.validate()  # before the (slow) model load
    paths = args.compare or [args.model]
    labels = None
    if args.compare:
        if not 2 <= len(paths) <= MAX_MODELS:
            raise UserError(f"--compare takes 2 to {MAX_MODELS} model files, not {len(paths)}")
        if job.kind not in COMPARE_KINDS:
            raise UserError(
                f"--compare makes a {' or '.join(COMPARE_KINDS)} loop; --kind {job.kind} is not one"
            )
        if args.labels is not None:
            labels = [t.strip() for t in args.labels.split(",")]
            if len(labels) != len(paths):
                raise UserError(
                    f"--labels gives {len(labels)} label(s) for {len(paths)} models: one per model"
                )
    elif args.labels is not None:
        raise UserError("--labels is for --compare")
    device = _check_device(args.device)
    renderers = [
        Renderer(
            load_model(path, device=device, training_nets=False),
            device=device,
            activation_cache_bytes=64 * 2**20,
        )
        for path in paths
    ]
    for message in job_warnings(job, [r.model.arch for r in renderers]):
        print(f"{'note' if args.compare else 'warning'}: {message}", file=sys.stderr)
    bars: list = []  # made at the first frame, so set-up errors do not print an empty bar

    def progress(done: int, total: int, what: str = "") -> None:
        if not bars:
            bars.append(tqdm(total=total, desc="video", unit="frame", file=sys.stderr))
        bars[0].update(done - bars[0].n)

    try:
        if args.compare:
            result = render_compare_video(job, renderers, args.out, labels=labels, progress=progress)
        else:
            result = render_video(job, renderers[0], args.out, progress=progress)
    except Cancelled as exc:
        raise UserError(str(exc)) from None
    finally:
        for bar in bars:
            bar.close()
    print(
        f"{result.path}: {result.frames} frames, {result.width}x{result.height}, {result.fps:g} fps, "
        f"{result.bytes / 1024:.0f} KiB in {result.seconds:.1f} s "
        f"(rendering {result.render_ms_per_frame:.0f} ms a frame)"
    )
    return 0
