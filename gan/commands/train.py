"""`gan train`: train StyleGAN2 / StyleGAN3-T / StyleGAN3-R, or fine-tune / continue a run.

Every TrainConfig field is a flag (`--batch-gpu`, `--map-depth`, ...; booleans as --x/--no-x).
`--resume RUN_FOLDER` continues a run in place with the options it was started with (flags
given here override them); a finished run stays as it is unless --kimg is raised. Ctrl-C stops
after the current phase of the step (G, D or a regularisation pass) and writes a snapshot; a
second Ctrl-C waits for that snapshot (and says so), a third aborts without it (the previous
snapshot stays valid: snapshots are committed as one unit).
Several processes: `torchrun --nproc_per_node N -m gan.cli train ...`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import sys

from gan.config_help import add_config_arguments

NAME = "train"
HELP = "Train or fine-tune a StyleGAN2 / StyleGAN3 model (progress per tick, snapshots, resume)."

_CHOICES = {"cfg": ("stylegan2", "stylegan3-t", "stylegan3-r"), "aug": ("ada", "noaug", "fixed")}
_CHOICES["device"] = ("auto", "cpu", "cuda")
_UNSET_MEANS_OFF = ("resume", "balance_classifier")  # their None is "not used", not "resolved later"


def _fields():
    from gan.train.config import TrainConfig

    return dataclasses.fields(TrainConfig)


def _metric_list(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gan.train.config import TrainConfig

    lists = [f.name for f in _fields() if str(f.type) == "list[str]"]
    # None means "resolved later" (auto), except for the options it switches off.
    shown = {f.name: "none" if f.name in _UNSET_MEANS_OFF else "auto" for f in _fields() if f.default is None}
    add_config_arguments(
        parser,
        TrainConfig,
        types={name: _metric_list for name in lists},
        choices=_CHOICES,
        metavars={name: "A,B" for name in lists},
        shown=shown,
        unset_is_none=True,
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final summary")
    parser.add_argument(
        "--no-estimate",
        action="store_true",
        help="with --dry-run: only check the options, do not measure the training speed",
    )


def build_config(args: argparse.Namespace):
    """TrainConfig from the flags; a run folder given to --resume supplies the unset options."""
    from gan.train.config import TrainConfig, load_run_config
    from gan.train.snapshot import is_run_dir

    given = {f.name: getattr(args, f.name) for f in _fields() if getattr(args, f.name) is not None}
    resume = given.get("resume")
    if resume is not None and os.path.isdir(resume) and is_run_dir(resume) and not given.get("finetune"):
        base = load_run_config(resume).to_dict()
        base["dry_run"] = False
        # A fine-tune run stores finetune=True; continuing it starts no new fine-tune (the run stays
        # a fine-tune: gan.train.prepare reads that from the resumed snapshot).
        base["finetune"] = False
    else:
        base = TrainConfig().to_dict()
    base.update(given)
    return TrainConfig.from_dict(base)


def run(args: argparse.Namespace) -> int:
    from gan.train.loop import run as train_run

    config = build_config(args)
    stopper = _CtrlC()
    with stopper:
        summary = train_run(
            config, should_stop=stopper.requested, on_tick=None if args.quiet else _print_tick
        )
    if summary.reason == "nonfinite":
        print(f"gan train: error: {summary.message}", file=sys.stderr)
        return 1
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun only rank 0 reports
    if summary.reason == "dry_run" or summary.already_done:
        print(summary.message)
        if summary.reason == "dry_run" and not args.no_estimate:
            _print_estimate(config)
        return 0
    what = "finished" if summary.reason == "done" else "stopped"
    print(f"{what} at {summary.kimg:.3f} kimg; run folder {summary.run_dir}")
    print(f"last snapshot: {summary.snapshot_path}")
    return 0


def _print_estimate(config) -> None:
    """--dry-run: how long this takes here (measured), and CPU-sized settings without a GPU."""
    import dataclasses

    import torch

    from gan.train.estimate import cpu_sized, duration, estimate_training, format_estimate

    print("measuring the training speed on a few passes of these networks...", file=sys.stderr, flush=True)
    estimate = estimate_training(config)
    print(format_estimate(estimate))
    if estimate.device != "cpu" or torch.cuda.is_available():
        return
    preset = cpu_sized(estimate.resolution)
    if config.resume is not None:  # a resumed model keeps its own network sizes
        preset = {k: v for k, v in preset.items() if k not in ("cbase", "cmax", "z_dim", "w_dim")}
    changes = {k: v for k, v in preset.items() if getattr(config, k) != v}
    if not changes:
        print("  (these are the CPU-sized settings already)")
        return
    small = estimate_training(dataclasses.replace(config, **changes), max_seconds=30.0)
    if small.g_params + small.d_params >= estimate.g_params + estimate.d_params:
        return  # the networks asked for are smaller than the CPU-sized ones already
    flags = " ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in changes.items())
    print(
        f"no GPU here: CPU-sized settings ({flags}) train at about {small.sec_per_kimg:,.0f} s/kimg, "
        f"{duration(small.seconds_to_end)} to {small.kimg:g} kimg; add them to the command to use them"
    )


def _print_tick(info) -> None:
    s = info.stats
    parts = [
        f"tick {info.tick:<4d}",
        f"kimg {info.kimg:9.3f}/{info.total_kimg:g}",
        f"sec/kimg {info.sec_per_kimg:7.2f}",
        f"eta {_duration(info.eta_sec)}",
    ]
    for key, label in (
        ("Loss/G/loss", "G"),
        ("Loss/D/loss", "D"),
        ("Loss/r1_penalty", "r1"),
        ("Loss/pl_penalty", "pl"),
        ("Progress/augment", "p"),
    ):
        if key in s and math.isfinite(s[key]):
            parts.append(f"{label} {s[key]:.3f}")
    for key, value in s.items():
        if key.startswith("Metrics/"):
            parts.append(f"{key[8:]} {value:.3f}")
    line = "  ".join(parts)
    if info.snapshot_path:
        line += f"  -> {info.snapshot_path}"
    print(line, flush=True)
    if info.message:
        print(f"  {info.message}", flush=True)


def _duration(sec: float) -> str:
    if not math.isfinite(sec):
        return "?"
    sec = int(sec)
    d, rest = divmod(sec, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{d}d {h:02d}h {m:02d}m" if d else (f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s")


class _CtrlC:
    """First Ctrl-C asks the loop to stop (it writes a snapshot). Everything the loop does after
    that is the stop snapshot, so the second only says it is waiting for it; a third aborts."""

    def __init__(self):
        self._presses = 0
        self._previous = None

    def requested(self) -> bool:
        return self._presses > 0

    def _handle(self, signum, frame) -> None:
        self._presses += 1
        if self._presses == 1:
            print(
                "\nstopping after this step's current phase (G, D or regularisation) and writing a snapshot",
                file=sys.stderr,
            )
        elif self._presses == 2:
            print(
                "still stopping: waiting for the snapshot to be written so no training is lost "
                "(Ctrl-C once more aborts without it; the previous snapshot stays valid)",
                file=sys.stderr,
            )
        else:
            raise KeyboardInterrupt

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: no signal handling
            self._previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
