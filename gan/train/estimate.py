"""How long training will take, measured before it starts (`gan train --dry-run`, the dialog).

`estimate_training(config)` builds the configured networks (the resumed ones when resuming),
runs a few training passes of every phase (G main, G path length, D main, D R1) on a few real
images and extrapolates:

    step time   = (t_Gmain + t_Dmain + t_Greg / g_reg_interval + t_Dreg / r1_interval)
                  * batch / images per measured pass
    s/kimg      = step time * 1000 / batch
    time to end = s/kimg * (kimg - kimg already done)

A pass costs about linearly in its images, so measuring with fewer images than the batch (a
full batch may take minutes on a CPU) scales up fairly. The first pass is a warm-up (kernel
loading, allocation) and is not counted when there is time for another. Metrics, snapshots and
sample grids are not included. Snapshot size: a model file holds G_ema, D and the training G in
float32, the training state two Adam moments per parameter.

`cpu_sized(resolution)` are settings that train at a useful pace on a CPU (those the shipped toon
model was trained with), offered when no GPU is present.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from gan.errors import Cancelled
from gan.train.config import ResolvedConfig, TrainConfig


@dataclass
class Estimate:
    """Plain numbers (CLI, dialog)."""

    device: str
    cfg: str
    resolution: int
    batch: int
    g_params: int
    d_params: int
    sec_per_kimg: float  # measured (extrapolated to the batch)
    sec_per_step: float
    seconds_to_end: float  # from the starting kimg to config.kimg
    kimg: float  # config.kimg
    start_kimg: float  # where the run starts (a continued run: its counter)
    snapshot_bytes: int  # one model file plus one training state
    measured_passes: int  # full passes (all phases) that were timed
    images_per_pass: int
    phase_seconds: dict[str, float] = field(default_factory=dict)  # per measured pass
    note: str = ""  # e.g. "the first pass includes warm-up"

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_sized(resolution: int | None = None) -> dict:
    """TrainConfig values for training on a CPU: narrow networks, small batch, short ticks.

    The shipped toon model (64 px) was trained with these: about 4 min per kimg on 2 cores.
    Larger images get the same channel budget (the widest layers stay at cmax) and shorter ticks."""
    res = resolution or 64
    return dict(
        cbase=4096,
        cmax=64 if res <= 64 else 128,
        z_dim=128,
        w_dim=128,
        batch=8,
        tick_kimg=1.0 if res <= 64 else 0.25,
        snap=5,
    )


def snapshot_bytes(G: torch.nn.Module, D: torch.nn.Module) -> int:
    """Bytes of one snapshot: the model file (G_ema, D, training G in float32) and its state."""

    def size(m: torch.nn.Module, params_only: bool = False) -> int:
        tensors = list(m.parameters()) + ([] if params_only else list(m.buffers()))
        return sum(t.numel() * 4 for t in tensors)

    model_file = 2 * size(G) + size(D)
    adam_moments = 2 * (size(G, True) + size(D, True))
    return model_file + adam_moments


def estimate_training(
    config: TrainConfig,
    passes: int = 3,
    max_seconds: float = 60.0,
    images: int = 4,
    should_stop: Callable[[], bool] | None = None,
    prepared=None,
) -> Estimate:
    """Measure `passes` timed passes (plus a warm-up when it fits in `max_seconds`) with at most
    `images` images each; stops early after max_seconds with what it has."""
    from gan.train.prepare import prepare

    if prepared is None:
        prepared = prepare(config, build=False)
    r: ResolvedConfig = prepared.resolved
    device = torch.device("cuda" if r.device == "cuda" else "cpu")
    from gan.train.augment import AugmentPipe, augment_preset
    from gan.train.loss import LossSettings, StyleGANLoss
    from gan.train.prepare import build_networks
    from gan.train.stats import StatsCollector

    torch.manual_seed(config.seed)
    G, D = build_networks(r, device)
    g_count = sum(p.numel() for p in G.parameters())
    d_count = sum(p.numel() for p in D.parameters())
    pipe = None
    if config.aug != "noaug":
        pipe = AugmentPipe(**augment_preset("bgc"), p=max(r.augment_p, 0.2)).train().to(device)
        pipe.requires_grad_(False)
    settings = LossSettings(
        r1_gamma=r.gamma if r.r1_interval > 0 else 0.0,
        pl_weight=r.pl_weight,
        pl_batch_shrink=config.pl_batch_shrink,
        pl_decay=config.pl_decay,
        style_mixing=r.style_mixing,
        blur_init_sigma=r.blur_init_sigma,
        blur_fade_kimg=r.blur_fade_kimg,
    )
    loss = StyleGANLoss(G, D, settings, StatsCollector(device), pipe)
    n = max(1, min(images, r.batch_gpu))
    dataset = prepared.dataset
    reals = torch.stack([torch.from_numpy(dataset[i % len(dataset)][0]) for i in range(n)])
    reals = reals.to(device).to(torch.float32) / 127.5 - 1
    labels = torch.stack([torch.from_numpy(dataset.get_label(i % len(dataset))) for i in range(n)])
    labels = labels.to(device).reshape(n, -1)
    phases = [("Gmain", G), ("Dmain", D)]
    if r.g_reg_interval > 0:
        phases.append(("Greg", G))
    if r.r1_interval > 0 and r.gamma > 0:
        phases.append(("Dreg", D))

    def one_pass() -> dict[str, float]:
        out = {}
        for name, module in phases:
            if should_stop is not None and should_stop():
                raise Cancelled("the estimate was cancelled")
            z = torch.randn([n, G.z_dim], device=device)
            start = time.perf_counter()
            module.requires_grad_(True)
            if name == "Gmain":
                loss.g_main(z, labels, 1.0, 0)
            elif name == "Greg":
                loss.g_reg(z, labels, 1.0)
            elif name == "Dmain":
                loss.d_main(reals, labels, z, labels, 1.0, 0)
            else:
                loss.d_reg(reals, labels, 1.0, 0)
            module.requires_grad_(False)
            for p in module.parameters():
                p.grad = None
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            out[name] = time.perf_counter() - start
        return out

    clock = time.monotonic()
    timed: list[dict[str, float]] = [one_pass()]
    warmup_dropped = False
    # The first pass loads kernels and allocates: drop it when another pass fits the budget.
    if time.monotonic() - clock < max_seconds / 3:
        timed, warmup_dropped = [], True
        while len(timed) < passes and (not timed or time.monotonic() - clock < max_seconds):
            timed.append(one_pass())
    per_pass = {name: statistics.median(t[name] for t in timed) for name, _ in phases}
    step = per_pass["Gmain"] + per_pass["Dmain"]
    if "Greg" in per_pass:
        step += per_pass["Greg"] / r.g_reg_interval
    if "Dreg" in per_pass:
        step += per_pass["Dreg"] / r.r1_interval
    step *= (r.batch / r.world_size) / n  # each process does batch / world_size images per step
    sec_per_kimg = step * 1000.0 / r.batch
    start_kimg = _start_kimg(prepared)
    remaining = max(float(config.kimg) - start_kimg, 0.0)
    note = "" if warmup_dropped else "one pass filled the time budget; it includes warm-up (kernel loading)"
    return Estimate(
        device=r.device,
        cfg=config.cfg,
        resolution=r.data.resolution,
        batch=r.batch,
        g_params=int(g_count),
        d_params=int(d_count),
        sec_per_kimg=sec_per_kimg,
        sec_per_step=step,
        seconds_to_end=sec_per_kimg * remaining,
        kimg=float(config.kimg),
        start_kimg=start_kimg,
        snapshot_bytes=snapshot_bytes(G, D),
        measured_passes=len(timed),
        images_per_pass=n,
        phase_seconds=per_pass,
        note=note,
    )


def _start_kimg(prepared) -> float:
    """kimg the run starts at: a continued run's counter, else 0."""
    resume = prepared.resume
    if resume is None or resume.mode != "continue":
        return 0.0
    training = resume.model.metadata.get("training") if isinstance(resume.model.metadata, dict) else None
    kimg = training.get("kimg") if isinstance(training, dict) else None
    return float(kimg) if isinstance(kimg, (int, float)) and math.isfinite(kimg) else 0.0


def duration(seconds: float) -> str:
    """'3 min 20 s', '5 h 02 min', '12 days 4 h' (inf: 'forever')."""
    if not math.isfinite(seconds):
        return "forever"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400 * 2:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} days {s % 86400 // 3600} h"


def size_text(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def format_estimate(e: Estimate) -> str:
    """Lines for a terminal: speed, time to the end, snapshot size."""
    lines = [
        f"estimate ({e.cfg}, {e.resolution} px, batch {e.batch}, {e.device}; measured over "
        f"{e.measured_passes} pass(es) of {e.images_per_pass} image(s), "
        f"G {e.g_params / 1e6:.2f} M / D {e.d_params / 1e6:.2f} M parameters):",
        f"  {e.sec_per_kimg:,.0f} s/kimg ({duration(e.sec_per_step)} per step of {e.batch} images)",
        f"  {duration(e.seconds_to_end)} to reach {e.kimg:g} kimg"
        + (f" from {e.start_kimg:g}" if e.start_kimg else "")
        + " (without metrics and snapshots)",
        f"  each snapshot: {size_text(e.snapshot_bytes)} (model file + training state)",
    ]
    if e.note:
        lines.append(f"  note: {e.note}")
    return "\n".join(lines)
