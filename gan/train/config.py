"""Training options: `TrainConfig` (what the user sets) and `ResolvedConfig` (every value concrete).

Defaults follow NVIDIA's StyleGAN3 `train.py` and its paper (Karras et al. 2021) and the ADA
paper's heuristics, scaled by resolution and batch where the official code does so:

- mapping depth 8 (StyleGAN2) / 2 (StyleGAN3); z_dim = w_dim = 512; cbase 32768, cmax 512,
  doubled for StyleGAN3-R (which also uses 1x1 convolutions and radial filters);
- G lr 0.002 (StyleGAN2) / 0.0025 (StyleGAN3), D lr 0.002, Adam betas (0, 0.99), eps 1e-8;
- batch (when not given) max(min(gpus * min(4096 // res, 32), 64), gpus) and
  gamma 0.0002 * res^2 / batch (ADA paper's "auto" config);
- EMA half-life batch * 10 / 32 kimg with a 0.05 ramp-up (none when fine-tuning);
- lazy R1 every 16 D steps; StyleGAN2 only: path length weight 2 every 4 G steps, style mixing 0.9;
- StyleGAN3-R only: D input blur sigma 10 fading out over batch * 200 / 32 kimg;
- ADA target 0.6 and 500 kimg for p to go from 0 to 1;
- fine-tuning (weights only): ADA 100 kimg, no EMA ramp-up, no D blur (as the official resume);
  G starts from the model's G_ema (ours: the official resume takes its G), so the fine-tuned
  model stays in the lineage of the generator it will be blended with.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from gan import config_help
from gan.config_help import opt
from gan.errors import UserError

CFGS = ("stylegan2", "stylegan3-t", "stylegan3-r")
AUGS = ("ada", "noaug", "fixed")
DEVICES = ("auto", "cpu", "cuda")
OPTIONS_FILE = "training_options.json"


def opt_list(help: str):
    return field(default_factory=list, metadata={"help": help})


@dataclass
class TrainConfig:
    """What to train. Fields left None get the official default for the resolution (see the
    module docstring); `resolve_config` fills them in."""

    # --- what and where -----------------------------------------------------------------
    cfg: str = opt("stylegan3-t", "network config: stylegan2, stylegan3-t, stylegan3-r")
    data: str = opt("", "training data set: folder or zip of square power-of-two images")
    outdir: str = opt("runs", "root folder of runs; each run gets outdir/<00000-name>/")
    desc: str | None = opt(None, "run name suffix (default: <cfg>-<data set name>)")
    resume: str | None = opt(
        None,
        "continue or fine-tune from: a run folder (continues it in place), one of our snapshots "
        "(continues its counters in a new run) or any loadable model incl. official .pkl (fine-tunes)",
    )
    finetune: bool = opt(
        False,
        "use `resume` only as starting weights: kimg, optimizer state and augment p start fresh "
        "(a fine-tune run that is continued later stays a fine-tune)",
    )
    # --- hardware -----------------------------------------------------------------------
    device: str = opt("auto", "cpu, cuda or auto (cuda when available)")
    gpus: int | None = opt(None, "number of processes (default: WORLD_SIZE under torchrun, else 1)")
    batch: int | None = opt(None, "total batch size over all processes")
    batch_gpu: int | None = opt(None, "images per process per step (less than batch/gpus: accumulate)")
    workers: int | None = opt(None, "data loader worker processes (default 0 on CPU, 3 on CUDA)")
    fp32: bool = opt(False, "no float16 layers on CUDA (CPU always runs float32)")
    # --- duration and output ------------------------------------------------------------
    kimg: float = opt(25000, "train until this many thousand real images were shown")
    tick_kimg: float = opt(4, "thousand images per progress tick")
    snap: int = opt(50, "ticks between snapshots (and metrics, sample grids)")
    metrics: list[str] = opt_list("metrics per snapshot (names of gan.metrics.METRICS)")
    metrics_num: int | None = opt(None, "generated samples per metric (default: the metric's own, e.g. 50k)")
    grid_cols: int = opt(8, "columns of the sample grid")
    grid_rows: int = opt(4, "rows of the sample grid")
    seed: int = opt(0, "random seed")
    # --- data ---------------------------------------------------------------------------
    mirror: bool = opt(False, "add x-flipped copies of the training images")
    cond: bool = opt(False, "train a class-conditional model from dataset.json labels")
    max_size: int | None = opt(None, "use a fixed random subset of this many images")
    # --- augmentation -------------------------------------------------------------------
    aug: str = opt("ada", "ada (adaptive p), noaug, or fixed (p stays at --p)")
    target: float = opt(0.6, "ADA target of E[sign(D(real))]")
    p: float | None = opt(None, "augment probability: fixed p (default 0.2) or ADA start (0)")
    ada_kimg: float | None = opt(None, "kimg for ADA p to go from 0 to 1 (default 500; 100 fine-tuning)")
    # --- networks -----------------------------------------------------------------------
    cbase: int = opt(32768, "channel base (doubled for stylegan3-r)")
    cmax: int = opt(512, "maximum channels per layer (doubled for stylegan3-r)")
    map_depth: int | None = opt(None, "mapping layers (default 8 stylegan2, 2 stylegan3)")
    z_dim: int = opt(512, "latent z size")
    w_dim: int = opt(512, "intermediate latent w size")
    mbstd_group: int = opt(4, "D minibatch-stddev group size")
    # --- optimisation -------------------------------------------------------------------
    glr: float | None = opt(None, "G learning rate (default 0.002 sg2, 0.0025 sg3)")
    dlr: float = opt(0.002, "D learning rate")
    gamma: float | None = opt(None, "R1 weight (default 0.0002 * res^2 / batch)")
    r1_interval: int = opt(16, "D steps between lazy R1 steps (0 = no R1)")
    g_reg_interval: int = opt(4, "G steps between lazy path-length steps (stylegan2)")
    pl_weight: float | None = opt(None, "path length weight (default 2 sg2, 0 sg3)")
    pl_batch_shrink: int = opt(2, "path length batch = batch_gpu / this")
    pl_decay: float = opt(0.01, "decay of the running mean path length")
    style_mixing: float | None = opt(None, "style mixing probability (0.9 sg2, 0 sg3)")
    ema_kimg: float | None = opt(None, "G_ema half-life in kimg (default batch*10/32)")
    ema_rampup: float | None = opt(None, "EMA ramp-up: half-life <= kimg * this (default 0.05; 0 = off)")
    blur_init_sigma: float | None = opt(None, "initial D input blur sigma (default 10 sg3-r, else 0)")
    blur_fade_kimg: float | None = opt(None, "kimg over which the D blur fades out (default batch*200/32)")
    # --- class balance (ours, see gan.train.balance) --------------------------------------
    balance_classifier: str | None = opt(
        None,
        "classifier file (gan.edit.classifier) that pushes the class shares of the generated images "
        "towards the data set's labels (dataset.json attributes); off when unset",
    )
    balance_head: str = opt(
        "style",
        "the classifier heads (attributes) whose class shares are balanced, comma-separated, each "
        "optionally with its own weight: e.g. style,glasses:1",
    )
    balance_weight: float = opt(
        8.0, "weight of the class-balance term in the G loss (8 balanced the toon model's styles)"
    )
    dry_run: bool = opt(False, "validate and print the resolved options, do not train")

    # --- validation ---------------------------------------------------------------------

    def validate(self) -> None:
        """Check every option on its own (no file access beyond existence); raise UserError."""
        _choice("cfg", self.cfg, CFGS)
        _choice("aug", self.aug, AUGS)
        _choice("device", self.device, DEVICES)
        if not self.data:
            raise UserError("no training data set given: set --data to a folder or zip of images")
        if not os.path.exists(self.data):
            raise UserError(f"data set {self.data} does not exist")
        if not self.outdir:
            raise UserError("no output folder given: set --outdir")
        if self.resume is not None and not os.path.exists(self.resume):
            raise UserError(f"--resume {self.resume} does not exist")
        if self.finetune and self.resume is None:
            raise UserError("--finetune needs --resume MODEL (the weights to start from)")
        if self.balance_classifier is not None and not os.path.isfile(self.balance_classifier):
            raise UserError(f"--balance-classifier {self.balance_classifier} is not a file")
        if self.balance_classifier is not None:
            self.balance_heads()
        if not self.balance_weight >= 0:
            raise UserError(f"--balance-weight must be 0 or more, not {self.balance_weight!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but no CUDA device is available; use --device cpu")
        if self.metrics_num is not None and (isinstance(self.metrics_num, bool) or self.metrics_num < 2):
            raise UserError(f"--metrics-num must be at least 2, not {self.metrics_num!r}")
        for name in ("gpus", "batch", "batch_gpu", "max_size", "metrics_num"):
            _positive(name, getattr(self, name), allow_none=True)
        for name in ("snap", "grid_cols", "grid_rows", "cbase", "cmax", "z_dim", "w_dim", "mbstd_group"):
            _positive(name, getattr(self, name))
        for name in ("pl_batch_shrink",):
            _positive(name, getattr(self, name))
        _positive("kimg", self.kimg, real=True)
        _positive("tick_kimg", self.tick_kimg, real=True)
        _positive("dlr", self.dlr, real=True)
        _positive("glr", self.glr, real=True, allow_none=True)
        _positive("ada_kimg", self.ada_kimg, real=True, allow_none=True)
        _positive("ema_kimg", self.ema_kimg, real=True, allow_none=True)
        _positive("map_depth", self.map_depth, allow_none=True)
        for name in ("gamma", "pl_weight", "ema_rampup", "blur_init_sigma", "blur_fade_kimg"):
            _non_negative(name, getattr(self, name))
        for name in ("r1_interval", "g_reg_interval", "workers"):
            _non_negative(name, getattr(self, name), integer=True)
        for name in ("target", "p", "style_mixing", "pl_decay"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise UserError(f"--{_flag(name)} must be between 0 and 1, not {value!r}")
        if self.p is not None and self.aug == "noaug":
            raise UserError("--p sets the augmentation probability, but --aug noaug turns augmentation off")
        if self.batch is not None and self.batch_gpu is not None and self.batch % self.batch_gpu:
            raise UserError(f"--batch {self.batch} must be a multiple of --batch-gpu {self.batch_gpu}")
        if self.metrics:
            from gan.metrics import METRICS

            unknown = [m for m in self.metrics if m not in METRICS]
            if unknown:
                raise UserError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def balance_heads(self) -> list[tuple[str, float]]:
        """(head, weight) for each entry of balance_head, NAME or NAME:WEIGHT (default balance_weight)."""
        heads = []
        for entry in self.balance_head.split(","):
            name, _, weight = (part.strip() for part in entry.partition(":"))
            if not name and not weight:
                continue
            try:
                value = float(weight) if weight else self.balance_weight
            except ValueError:
                value = math.nan
            if not name or not value >= 0 or not math.isfinite(value):
                raise UserError(
                    f"--balance-head entry '{entry.strip()}' is not HEAD or HEAD:WEIGHT with a weight of 0 "
                    "or more (e.g. style,glasses:1)"
                )
            heads.append((name, value))
        if not heads:
            raise UserError("--balance-head names no classifier head: give e.g. style or style,glasses:1")
        return heads

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        # balance_temperature (1.0 in every run that wrote it) was replaced by counting by argmax.
        values = {k: v for k, v in values.items() if not (k == "balance_temperature" and v == 1.0)}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown training option(s) {', '.join(unknown)}")
        return cls(**values)


def field_help(name: str) -> str:
    """The help text of a TrainConfig field (for the CLI and the GUI)."""
    return config_help.field_help(TrainConfig, name)


def load_run_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The TrainConfig a run was started with (from its training_options.json)."""
    path = os.path.join(run_dir, OPTIONS_FILE)
    try:
        with open(path) as f:
            options = json.load(f)
        return TrainConfig.from_dict(options["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read the options of run {run_dir} from {path}: {exc}") from None


# --- resolution -------------------------------------------------------------------------------


@dataclass
class DataInfo:
    """What the loop needs to know about the data set."""

    path: str
    name: str
    resolution: int
    channels: int
    label_dim: int
    size: int  # number of items (with mirrored copies)


@dataclass
class ResumeNets:
    """The networks' settings of the model to resume from."""

    arch: str
    g_kwargs: dict
    d_kwargs: dict | None


@dataclass
class ResolvedConfig:
    """Every training value concrete; written to training_options.json."""

    config: TrainConfig  # as given
    data: DataInfo
    device: str  # torch device type of this run
    world_size: int
    batch: int
    batch_gpu: int
    accum_rounds: int  # batch_gpu passes per process per step
    workers: int
    gamma: float
    glr: float
    dlr: float
    g_reg_interval: int  # 0 = no lazy G regularisation (no path length)
    r1_interval: int
    pl_weight: float
    style_mixing: float
    ema_kimg: float
    ema_rampup: float
    blur_init_sigma: float
    blur_fade_kimg: float
    augment_p: float  # starting p (0 for noaug)
    ada_kimg: float
    g_kwargs: dict
    d_kwargs: dict

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["config"] = self.config.to_dict()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


def default_batch(resolution: int, gpus: int) -> int:
    """ADA paper's "auto" batch size."""
    return max(min(gpus * min(4096 // resolution, 32), 64), gpus)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_config(
    config: TrainConfig,
    data: DataInfo,
    world_size: int = 1,
    resume: ResumeNets | None = None,
) -> ResolvedConfig:
    """Fill in the defaults. resume: the networks of the model to resume from; their settings
    win over cbase/cmax/map_depth (and must fit the data)."""
    config.validate()
    c = config
    gpus = c.gpus if c.gpus is not None else world_size
    if gpus != world_size:
        raise UserError(
            f"--gpus {gpus} but {world_size} process(es) were started; launch N processes with "
            f"`torchrun --nproc_per_node N -m gan.cli train ...` and leave --gpus unset"
        )
    device = resolve_device(c.device)
    res = data.resolution
    batch = c.batch if c.batch is not None else default_batch(res, gpus)
    batch_gpu = c.batch_gpu if c.batch_gpu is not None else max(batch // gpus, 1)
    if batch % (batch_gpu * gpus):
        raise UserError(
            f"--batch {batch} must be a multiple of --batch-gpu {batch_gpu} times {gpus} process(es)"
        )
    group = min(c.mbstd_group, batch_gpu)
    if batch_gpu % group:
        raise UserError(
            f"--batch-gpu {batch_gpu} must be a multiple of the D minibatch-stddev group ({group}); "
            "change --batch/--batch-gpu or --mbstd-group"
        )
    if c.cond and data.label_dim == 0:
        raise UserError(f"--cond needs class labels, but {data.path} has no labels in dataset.json")
    sg2 = c.cfg == "stylegan2"
    fine = c.finetune  # a fine-tune run (also when continued): fine-tuning defaults below
    pl_weight = c.pl_weight if c.pl_weight is not None else (2.0 if sg2 else 0.0)
    if pl_weight > 0 and not sg2:
        raise UserError("path length regularisation (--pl-weight) is for StyleGAN2 only; use --cfg stylegan2")
    g_kwargs, d_kwargs = _network_kwargs(c, data, device, batch, batch_gpu)
    if resume is not None:
        g_kwargs, d_kwargs = _resume_network_kwargs(c, data, g_kwargs, d_kwargs, resume)
    p_default = 0.2 if c.aug == "fixed" else 0.0
    return ResolvedConfig(
        config=c,
        data=data,
        device=device,
        world_size=gpus,
        batch=batch,
        batch_gpu=batch_gpu,
        accum_rounds=batch // (batch_gpu * gpus),
        workers=c.workers if c.workers is not None else (3 if device == "cuda" else 0),
        gamma=c.gamma if c.gamma is not None else 0.0002 * res**2 / batch,
        glr=c.glr if c.glr is not None else (0.002 if sg2 else 0.0025),
        dlr=c.dlr,
        g_reg_interval=c.g_reg_interval if pl_weight > 0 else 0,
        r1_interval=c.r1_interval,
        pl_weight=pl_weight,
        style_mixing=c.style_mixing if c.style_mixing is not None else (0.9 if sg2 else 0.0),
        ema_kimg=c.ema_kimg if c.ema_kimg is not None else batch * 10 / 32,
        ema_rampup=c.ema_rampup if c.ema_rampup is not None else (0.0 if fine else 0.05),
        blur_init_sigma=(
            c.blur_init_sigma
            if c.blur_init_sigma is not None
            else (10.0 if c.cfg == "stylegan3-r" and not fine else 0.0)
        ),
        blur_fade_kimg=c.blur_fade_kimg if c.blur_fade_kimg is not None else batch * 200 / 32,
        augment_p=0.0 if c.aug == "noaug" else (c.p if c.p is not None else p_default),
        ada_kimg=c.ada_kimg if c.ada_kimg is not None else (100.0 if fine else 500.0),
        g_kwargs=g_kwargs,
        d_kwargs=d_kwargs,
    )


def _network_kwargs(c: TrainConfig, data: DataInfo, device: str, batch: int, batch_gpu: int):
    fp16_res = 4 if device == "cuda" and not c.fp32 else 0
    conv_clamp = None if c.fp32 else 256
    cbase, cmax = (c.cbase * 2, c.cmax * 2) if c.cfg == "stylegan3-r" else (c.cbase, c.cmax)
    map_depth = c.map_depth if c.map_depth is not None else (8 if c.cfg == "stylegan2" else 2)
    g = dict(
        z_dim=c.z_dim,
        w_dim=c.w_dim,
        c_dim=data.label_dim if c.cond else 0,
        img_resolution=data.resolution,
        img_channels=data.channels,
        mapping_kwargs=dict(num_layers=map_depth),
        channel_base=cbase,
        channel_max=cmax,
        num_fp16_res=fp16_res,
        conv_clamp=conv_clamp,
    )
    if c.cfg == "stylegan2":
        g["fused_modconv_default"] = "inference_only"  # plain convs train faster than grouped ones
    else:
        g["magnitude_ema_beta"] = 0.5 ** (batch / 20e3)
    if c.cfg == "stylegan3-r":
        g.update(conv_kernel=1, use_radial_filters=True)
    d = dict(
        c_dim=g["c_dim"],
        img_resolution=data.resolution,
        img_channels=data.channels,
        channel_base=c.cbase,
        channel_max=c.cmax,
        num_fp16_res=fp16_res,
        conv_clamp=conv_clamp,
        block_kwargs={},
        mapping_kwargs={},
        epilogue_kwargs=dict(mbstd_group_size=min(c.mbstd_group, batch_gpu)),
    )
    return g, d


def _resume_network_kwargs(c: TrainConfig, data: DataInfo, g_new: dict, d_new: dict, resume: ResumeNets):
    """The resumed model's own settings, checked against the data; fp16 follows this device."""
    if resume.arch != c.cfg:
        raise UserError(
            f"the model to resume ({c.resume}) is {resume.arch} but --cfg is {c.cfg}; use --cfg {resume.arch}"
        )
    g_old, d_old = resume.g_kwargs, resume.d_kwargs
    checks = [
        ("resolution", g_old.get("img_resolution"), data.resolution),
        ("number of channels", g_old.get("img_channels"), data.channels),
        ("label size", g_old.get("c_dim", 0), g_new["c_dim"]),
    ]
    for what, old, new in checks:
        if old != new:
            hint = " (train with or without --cond, as the model was)" if what == "label size" else ""
            raise UserError(
                f"the model to resume ({c.resume}) has {what} {old}, but the data set {data.path} "
                f"needs {new}{hint}; convert the data set or choose another model"
            )
    g = dict(g_old, num_fp16_res=g_new["num_fp16_res"])
    if d_old is None:
        d = d_new  # a generator-only file: fine-tune G against a fresh D
    else:
        d = dict(d_old, num_fp16_res=d_new["num_fp16_res"])
        d["epilogue_kwargs"] = dict(d_old.get("epilogue_kwargs") or {}, **d_new["epilogue_kwargs"])
    return g, d


# --- small checks -----------------------------------------------------------------------------


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise UserError(f"--{_flag(name)} must be one of {', '.join(choices)}, not {value!r}")


def _positive(name: str, value, real: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    kinds = (int, float) if real else (int,)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0 or not math.isfinite(value):
        kind = "a positive number" if real else "a positive integer"
        raise UserError(f"--{_flag(name)} must be {kind}, not {value!r}")


def _non_negative(name: str, value, integer: bool = False) -> None:
    if value is None:
        return
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0 or not math.isfinite(value):
        kind = "a non-negative integer" if integer else "a non-negative number"
        raise UserError(f"--{_flag(name)} must be {kind}, not {value!r}")
