"""The training loop as an embeddable function (no Qt, no globals).

    summary = run(TrainConfig(data="toon.zip", cfg="stylegan3-t", kimg=500),
                  should_stop=lambda: cancel_requested, on_tick=lambda t: print(t.kimg))

`should_stop()` is polled before every step and between the phases of a step (G, G
regularisation, D, D regularisation), so a stop acts within one phase; the loop then writes a
snapshot and returns. A snapshot taken between phases records how many phases of its step were
done, and a run resumed from it finishes exactly that step (same batch, same random numbers).
`on_tick(TickInfo)` receives plain numbers and paths once per tick. A NaN or inf in a loss stops
the run before the optimizer step that would spread it, and so does divergence: a loss beyond
DIVERGED_LOSS, or a weight beyond DIVERGED_WEIGHT after an optimizer step. No snapshot is written
afterwards, so the newest snapshot on disk is always a good one.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from gan.data.dataset import InfiniteSampler
from gan.errors import UserError
from gan.io.files import file_sha256
from gan.train import distributed
from gan.train import snapshot as snap
from gan.train.augment import AdaController, AugmentPipe, augment_preset
from gan.train.balance import ClassBalance
from gan.train.config import OPTIONS_FILE, ResolvedConfig, TrainConfig, resolve_device
from gan.train.loss import LossSettings, StyleGANLoss
from gan.train.prepare import Prepared, ResumeSource, build_networks, prepare, training_metadata
from gan.train.stats import StatsCollector, StatsWriter
from ops_cuda.allocator import keep_freed_memory

ADA_INTERVAL = 4  # D steps between updates of the augmentation probability
ADAM_BETAS = (0.0, 0.99)
ADAM_EPS = 1e-8
# Divergence guard. Trained StyleGAN weights stay below ~1e3 (mapping layers store theirs x100 for
# their 0.01 learning-rate multiplier; the toon model's largest is 437) and losses below ~1e2;
# `--glr 1e8` puts weights at ~1e8 after one step.
DIVERGED_WEIGHT = 1e5  # largest |parameter| after an optimizer step
DIVERGED_LOSS = 1e5  # largest |loss| of a phase


@dataclass
class TickInfo:
    """Progress of one tick, as plain data (no tensors)."""

    tick: int
    kimg: float
    total_kimg: float
    sec_per_kimg: float
    eta_sec: float
    stats: dict[str, float] = field(default_factory=dict)  # Loss/G/loss, Progress/augment, Metrics/fid...
    snapshot_path: str | None = None  # written at this tick
    sample_grid_path: str | None = None
    run_dir: str = ""
    done: bool = False  # last tick of the run (finished, stopped or failed)
    message: str = ""  # what happened (metrics skipped, stop reason, error)


@dataclass
class RunSummary:
    run_dir: str
    kimg: float
    snapshot_path: str | None  # the newest snapshot (a good one)
    stopped: bool  # ended before reaching config.kimg
    reason: str  # 'done' | 'stopped' | 'nonfinite' (NaN/inf or diverged) | 'dry_run'
    message: str = ""
    already_done: bool = False  # a finished run was resumed without a higher kimg: nothing changed


class NonFiniteLoss(Exception):
    """A loss became NaN or inf, or training diverged (a loss or weight beyond its bound)."""


@dataclass
class _Phase:
    name: str  # Gmain | Greg | Dmain | Dreg
    module: torch.nn.Module
    opt: torch.optim.Optimizer
    interval: int


def run(
    config: TrainConfig,
    should_stop: Callable[[], bool] | None = None,
    on_tick: Callable[[TickInfo], None] | None = None,
) -> RunSummary:
    """Train as configured (see TrainConfig). Raises UserError for bad options before training."""
    keep_freed_memory()  # every step reallocates the same large buffers
    info = distributed.setup(resolve_device(config.device))
    try:
        prepared = prepare(config, world_size=info.world_size, build=config.dry_run)
        if config.dry_run:
            return RunSummary("", 0.0, None, False, "dry_run", prepared.resolved.to_json())
        return _Trainer(prepared, info).train(should_stop, on_tick)
    finally:
        distributed.teardown(info)


# ---------------------------------------------------------------------------------------------


class _Trainer:
    def __init__(
        self,
        prepared: Prepared,
        dist_info: distributed.DistInfo,
        snapshot_fault: Callable[[str], None] | None = None,
    ):
        """snapshot_fault: passed to gan.train.snapshot.commit_snapshot (tests crash there)."""
        self.r: ResolvedConfig = prepared.resolved
        self.cfg: TrainConfig = self.r.config
        self.dist = dist_info
        self.dataset = prepared.dataset
        self.device = self._device()
        self.stats = StatsCollector(self.device)
        self.cur_nimg = 0
        self.tick = 0
        self.batch_idx = 0
        self.last_snapshot: str | None = None
        self.phases_done = 0  # phases of the current step already done (non-zero only after a stop)
        self.snapshot_at = (-1, 0)  # (cur_nimg, phases_done) of the last snapshot written or resumed from
        self.snapshot_fault = snapshot_fault
        self.metrics_skipped: dict[str, str] = {}  # metric -> why it cannot run in this run
        torch.manual_seed(self.cfg.seed)  # identical initial weights on every rank
        self.G, self.D = build_networks(self.r, self.device)
        self.G_ema = _copy_net(self.G)
        self.augment_pipe, self.ada = self._augment()
        resume = prepared.resume
        resumed_training = training_metadata(resume)
        self._load_weights(resume)
        self.phases = self._phases()
        self.loss = StyleGANLoss(
            self.G, self.D, self._loss_settings(), self.stats, self.augment_pipe, self.ada, self._balance()
        )
        if resume is not None and resume.mode == "continue":
            self._load_state(resume.state_path, resume.model_path, resumed_training)
            self.last_snapshot = resume.model_path
        else:
            torch.manual_seed(self.cfg.seed * self.dist.world_size + self.dist.rank)
        # A finished run resumed without a higher --kimg: say so and touch nothing.
        self.already_done = resume is not None and resume.mode == "continue" and self._done()
        for net in (self.G, self.D, self.G_ema):
            distributed.broadcast_module(net)
        if self.already_done:
            self.run_dir = (resume.run_dir or "") if resume is not None else ""
        else:
            self.run_dir = self._run_dir(resume)
        self.grid_z, self.grid_c = self._grid_latents()

    # --- setup --------------------------------------------------------------------------

    def _device(self) -> torch.device:
        if self.r.device == "cuda":
            return torch.device("cuda", self.dist.local_rank)
        return torch.device("cpu")

    def _augment(self) -> tuple[AugmentPipe | None, AdaController | None]:
        if self.cfg.aug == "noaug":
            return None, None
        pipe = AugmentPipe(**augment_preset("bgc"), p=self.r.augment_p).train().requires_grad_(False)
        pipe = pipe.to(self.device)
        ada = (
            AdaController(pipe, target=self.cfg.target, kimg=self.r.ada_kimg)
            if self.cfg.aug == "ada"
            else None
        )
        return pipe, ada

    def _load_weights(self, resume: ResumeSource | None) -> None:
        if resume is None:
            return
        m = resume.model
        # Fine-tuning starts G from the published generator (G_ema), the one users see and blend
        # with: a run's G can have drifted far from its average, and a fine-tuned model must stay
        # in the lineage of the model it is blended with. Continuing a run keeps its own G.
        start_g = m.G if resume.mode == "finetune" or m.G_train is None else m.G_train
        with torch.no_grad():
            _copy_state(start_g, self.G, "G")
            _copy_state(m.G, self.G_ema, "G_ema")
            if m.D is not None:
                _copy_state(m.D, self.D, "D")
        resume.model = None  # free the CPU copies

    def _loss_settings(self) -> LossSettings:
        r = self.r
        return LossSettings(
            r1_gamma=r.gamma if r.r1_interval > 0 else 0.0,
            pl_weight=r.pl_weight,
            pl_batch_shrink=self.cfg.pl_batch_shrink,
            pl_decay=self.cfg.pl_decay,
            style_mixing=r.style_mixing,
            blur_init_sigma=r.blur_init_sigma,
            blur_fade_kimg=r.blur_fade_kimg,
        )

    def _balance(self) -> ClassBalance | None:
        """The class-balance term of the heads named in balance_head (none without a classifier)."""
        c = self.cfg
        if c.balance_classifier is None:
            return None
        seed = c.seed * self.dist.world_size + self.dist.rank
        return ClassBalance.from_files(c.balance_classifier, c.balance_heads(), c.data, self.device, seed)

    def _phases(self) -> list[_Phase]:
        r = self.r
        phases = []
        for name, module, lr, reg_interval in (
            ("G", self.G, r.glr, r.g_reg_interval),
            ("D", self.D, r.dlr, r.r1_interval if r.gamma > 0 else 0),
        ):
            # Lazy regularisation: the main steps' lr and betas are adjusted as in the paper.
            ratio = reg_interval / (reg_interval + 1) if reg_interval > 0 else 1.0
            opt = torch.optim.Adam(
                module.parameters(),
                lr=lr * ratio,
                betas=tuple(b**ratio for b in ADAM_BETAS),
                eps=ADAM_EPS,
                foreach=True,  # one fused update instead of a few small ops per tensor (also on CPU)
            )
            phases.append(_Phase(f"{name}main", module, opt, 1))
            if reg_interval > 0:
                phases.append(_Phase(f"{name}reg", module, opt, reg_interval))
        return phases

    def _run_dir(self, resume: ResumeSource | None) -> str:
        if resume is not None and resume.run_dir is not None:
            run_dir = resume.run_dir
            if self.dist.is_main:
                StatsWriter(os.path.join(run_dir, "stats.jsonl")).truncate_after(self.tick - 1)
                snap.remove_stale_temps(run_dir)  # pieces of a snapshot a crash interrupted
        elif self.dist.is_main:
            desc = self.cfg.desc or f"{self.cfg.cfg}-{self.r.data.name}"
            run_dir = snap.new_run_dir(self.cfg.outdir, desc)
        else:
            run_dir = ""
        if self.dist.is_main:
            self._write_options(run_dir)
        return run_dir

    def _write_options(self, run_dir: str) -> None:
        from gan.io.files import atomic_write_bytes

        atomic_write_bytes(os.path.join(run_dir, OPTIONS_FILE), self.r.to_json().encode())

    def _grid_latents(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.cfg.grid_cols * self.cfg.grid_rows
        gen = torch.Generator().manual_seed(self.cfg.seed)
        z = torch.randn([n, self.G.z_dim], generator=gen)
        idx = torch.randint(0, len(self.dataset), [n], generator=gen).tolist()
        c = torch.from_numpy(np.stack([self.dataset.get_label(i) for i in idx])).reshape(n, -1)
        return z.to(self.device), c.to(self.device)

    # --- state --------------------------------------------------------------------------

    def _state_dict(self) -> dict:
        state = {
            "version": 1,
            "cur_nimg": self.cur_nimg,
            "tick": self.tick,
            "batch_idx": self.batch_idx,
            "phases_done": self.phases_done,
            "optimizers": {ph.name: ph.opt.state_dict() for ph in self.phases if ph.name.endswith("main")},
            "augment_p": self.augment_pipe.p.detach().cpu().clone()
            if self.augment_pipe is not None
            else None,
            "pl_mean": self.loss.pl_mean.detach().cpu().clone(),
            "rng_cpu": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _load_state(self, path: str, model_path: str, training: dict) -> None:
        _check_pair(path, model_path, training)
        state = snap.load_state(path)
        _check_state_count(state, path, model_path, training)
        try:
            self.cur_nimg, self.tick, self.batch_idx = (
                int(state["cur_nimg"]),
                int(state["tick"]),
                int(state["batch_idx"]),
            )
            for ph in self.phases:
                if ph.name.endswith("main"):
                    # The saved state carries the old run's learning rate and betas; this run's
                    # options (e.g. --glr given to --resume) win.
                    options = [{k: g[k] for k in ("lr", "betas", "eps")} for g in ph.opt.param_groups]
                    ph.opt.load_state_dict(state["optimizers"][ph.name])
                    for group, wanted in zip(ph.opt.param_groups, options):
                        group.update(wanted)
            if self.augment_pipe is not None and state.get("augment_p") is not None:
                self.augment_pipe.p.copy_(state["augment_p"])
            self.loss.pl_mean.copy_(state["pl_mean"])
            self.phases_done = int(state.get("phases_done", 0))
            self.snapshot_at = self._position()
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise UserError(
                f"the training state {path} does not fit this run ({exc}); resume with --finetune instead"
            ) from None
        if self.dist.is_main:
            torch.set_rng_state(state["rng_cpu"])
            if self.device.type == "cuda" and "rng_cuda" in state:
                torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        else:
            torch.manual_seed(self.cfg.seed * self.dist.world_size + self.dist.rank + self.cur_nimg)

    # --- data ---------------------------------------------------------------------------

    def _batches(self):
        """Endless (images float [-1, 1], labels) batches of batch_gpu for this rank, continuing
        the sampler where the resumed run left it."""
        sampler = InfiniteSampler(self.dataset, self.dist.rank, self.dist.world_size, seed=self.cfg.seed)
        start = self.cur_nimg // self.dist.world_size  # items this rank has consumed so far
        loader = torch.utils.data.DataLoader(
            self.dataset,
            sampler=_Skip(sampler, start),
            batch_size=self.r.batch_gpu,
            num_workers=self.r.workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=2 if self.r.workers > 0 else None,
            persistent_workers=self.r.workers > 0,
            generator=torch.Generator().manual_seed(self.cfg.seed),  # keeps the global RNG stream intact
        )
        for images, labels in loader:
            images = images.to(self.device, non_blocking=True).to(torch.float32) / 127.5 - 1
            yield images, labels.to(self.device, non_blocking=True)

    def _gen_labels(self, n: int) -> torch.Tensor:
        if self.G.c_dim == 0:
            return torch.zeros([n, 0], device=self.device)
        idx = torch.randint(0, len(self.dataset), [n]).tolist()
        return torch.from_numpy(np.stack([self.dataset.get_label(i) for i in idx])).to(self.device)

    # --- training -----------------------------------------------------------------------

    def _done(self) -> bool:
        return self.cur_nimg >= self.cfg.kimg * 1000 and self.phases_done == 0

    def _position(self) -> tuple[int, int]:
        return self.cur_nimg, self.phases_done

    def _stop_requested(self, should_stop) -> bool:
        return distributed.any_flag(bool(should_stop and should_stop()), self.device)

    def train(self, should_stop, on_tick) -> RunSummary:
        if self.already_done:
            summary = self._summary(
                False,
                "done",
                f"the run is already finished: it reached {self.cur_nimg / 1000:.3f} kimg of "
                f"{self.cfg.kimg:g}; nothing was trained or written. To train further, raise --kimg",
            )
            summary.already_done = True
            return summary
        batches = self._batches()
        clock = _TickClock(self.cur_nimg)
        if self.dist.is_main and not os.path.exists(os.path.join(self.run_dir, "reals.png")):
            self._save_reals()
        while True:
            stop = self._stop_requested(should_stop)
            if not stop:
                try:
                    stop = not self._step(batches, should_stop)
                except NonFiniteLoss as exc:
                    return self._fail(str(exc), clock, on_tick)
            done = self._done()
            tick_due = self.tick == 0 or self.cur_nimg >= clock.start_nimg + self.cfg.tick_kimg * 1000
            if not (done or stop or tick_due):
                continue
            if stop and self.cur_nimg == clock.start_nimg and self.tick > 0:
                info = self._stop_between_ticks()  # nothing new to report since the last tick
            else:
                info = self._end_tick(clock, last=done or stop, stopped=stop and not done)
            if on_tick is not None and self.dist.is_main:
                on_tick(info)
            if done or stop:
                return self._summary(not done, "done" if done else "stopped", info.message)

    def _step(self, batches, should_stop=None) -> bool:
        """One training step: every phase due at this batch. Returns False when a stop was asked
        for between two phases; the step is then part-done (self.phases_done phases), which a
        snapshot records. A resumed part-done step fetches the same batch (the data position
        moves only when a step completes) and runs the phases left."""
        rounds = [next(batches) for _ in range(self.r.accum_rounds)]
        due = [ph for ph in self.phases if self.batch_idx % ph.interval == 0]
        first = self.phases_done
        for i, phase in enumerate(due[first:], start=first):
            if i > first and self._stop_requested(should_stop):
                self.phases_done = i
                return False
            phase.module.requires_grad_(True)
            phase.opt.zero_grad(set_to_none=True)
            losses = [self._accumulate(phase, img, c) for img, c in rounds]
            phase.module.requires_grad_(False)
            params = [p for p in phase.module.parameters()]
            distributed.average_gradients(params)
            self._check_finite(phase, losses)
            _sanitize_grads(params)
            phase.opt.step()
            self._check_weights(phase, params)
        self.phases_done = 0
        self._update_ema()
        self.cur_nimg += self.r.batch
        self.batch_idx += 1
        if self.ada is not None and self.batch_idx % ADA_INTERVAL == 0:
            self.ada.update()
        return True

    def _accumulate(self, phase: _Phase, real_img: torch.Tensor, real_c: torch.Tensor) -> torch.Tensor:
        n = real_img.shape[0]
        gen_z = torch.randn([n, self.G.z_dim], device=self.device)
        gen_c = self._gen_labels(n)
        loss, gain = self.loss, phase.interval
        if phase.name == "Gmain":
            return loss.g_main(gen_z, gen_c, gain, self.cur_nimg)
        if phase.name == "Greg":
            return loss.g_reg(gen_z, gen_c, gain)
        if phase.name == "Dmain":
            return loss.d_main(real_img, real_c, gen_z, gen_c, gain, self.cur_nimg)
        return loss.d_reg(real_img, real_c, gain, self.cur_nimg)

    def _check_finite(self, phase: _Phase, losses: list[torch.Tensor]) -> None:
        """NonFiniteLoss when a loss is NaN/inf or beyond DIVERGED_LOSS (before the optimizer step)."""
        largest = float(torch.stack(losses).abs().max())
        bad = not (largest <= DIVERGED_LOSS)  # also true for NaN
        if distributed.any_flag(bad, self.device):
            kimg = self.cur_nimg / 1000
            if math.isfinite(largest):
                what = f"reached {largest:.3g} (the guard stops above {DIVERGED_LOSS:g}): training diverged"
            else:
                what = "became NaN or inf"
            raise NonFiniteLoss(
                f"the {phase.name} loss {what} at {kimg:.3f} kimg; training stopped before the optimizer "
                "step, so no broken weights were saved. Lower --glr/--dlr or raise --gamma and resume from "
                "the last snapshot"
            )

    @torch.no_grad()
    def _check_weights(self, phase: _Phase, params: list[torch.nn.Parameter]) -> None:
        """NonFiniteLoss when the step just taken put a weight beyond DIVERGED_WEIGHT (or NaN/inf):
        the run stops before anything of it is saved."""
        largest = float(torch.stack(torch._foreach_norm(params, math.inf)).max()) if params else 0.0
        bad = not (largest <= DIVERGED_WEIGHT)
        if distributed.any_flag(bad, self.device):
            net = phase.name[0]
            raise NonFiniteLoss(
                f"training diverged at {self.cur_nimg / 1000:.3f} kimg: after the {phase.name} step the "
                f"largest {net} weight is {largest:.3g} (trained StyleGAN weights stay below ~1e3; the "
                f"guard stops above {DIVERGED_WEIGHT:g}). Nothing of it was saved. Lower --{net.lower()}lr "
                "(or raise --gamma) and resume from the last snapshot"
            )

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema_nimg = self.r.ema_kimg * 1000
        if self.r.ema_rampup > 0:
            ema_nimg = min(ema_nimg, self.cur_nimg * self.r.ema_rampup)
        beta = 0.5 ** (self.r.batch / max(ema_nimg, 1e-8))
        distributed.average_running_buffers(self.G)
        ema_params = list(self.G_ema.parameters())
        torch._foreach_lerp_(ema_params, list(self.G.parameters()), 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # --- ticks and snapshots ------------------------------------------------------------

    def _end_tick(self, clock: _TickClock, last: bool, stopped: bool) -> TickInfo:
        stats = self.stats.collect(_REPORTED)
        sec_per_kimg = clock.sec_per_kimg(self.cur_nimg)
        stats["Timing/sec_per_kimg"] = sec_per_kimg
        stats["Progress/kimg"] = self.cur_nimg / 1000
        stats["Progress/augment"] = float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0
        total_kimg = float(self.cfg.kimg)
        remaining = max(total_kimg - self.cur_nimg / 1000, 0.0)
        info = TickInfo(
            tick=self.tick,
            kimg=self.cur_nimg / 1000,
            total_kimg=total_kimg,
            sec_per_kimg=sec_per_kimg,
            eta_sec=remaining * sec_per_kimg if math.isfinite(sec_per_kimg) else math.nan,
            run_dir=self.run_dir,
            done=last,
            message="stopped on request" if stopped else ("finished" if last else ""),
        )
        self.tick += 1  # a snapshot's state records the tick to continue with
        if (last or info.tick % self.cfg.snap == 0) and self.snapshot_at != self._position():
            self._snapshot_and_metrics(info, stats)
        info.stats = stats
        if self.dist.is_main:
            record = {"tick": info.tick, "kimg": info.kimg, "timestamp": time.time(), **stats}
            StatsWriter(os.path.join(self.run_dir, "stats.jsonl")).write(record)
        clock.restart(self.cur_nimg)
        return info

    def _stop_between_ticks(self) -> TickInfo:
        info = TickInfo(
            tick=self.tick - 1,
            kimg=self.cur_nimg / 1000,
            total_kimg=float(self.cfg.kimg),
            sec_per_kimg=math.nan,
            eta_sec=math.nan,
            run_dir=self.run_dir,
            done=True,
            message="stopped on request",
        )
        if self.snapshot_at != self._position():
            self._snapshot_and_metrics(info, info.stats)
        return info

    def _snapshot_and_metrics(self, info: TickInfo, stats: dict[str, float]) -> None:
        if not self.dist.is_main:
            return
        if not snap.all_finite(self.G, self.D, self.G_ema):
            info.message = "weights are not finite; snapshot skipped to keep the last good one"
            return
        info.snapshot_path = self._write_snapshot()
        info.sample_grid_path = self._save_fakes()
        if self.cfg.metrics:
            skipped = self._metrics(stats)
            if skipped:
                info.message = "; ".join(filter(None, [info.message, skipped]))

    def _write_snapshot(self) -> str:
        """Commit model + training state + latest.json as one unit (see snapshot.commit_snapshot)."""
        from gan.io.safetensors_format import serialize

        model_name, state_name = snap.snapshot_names(self.cur_nimg, self.phases_done)
        state = snap.state_bytes(self._state_dict())
        metadata = {
            "training": {
                "state_file": state_name,
                "state_sha256": hashlib.sha256(state).hexdigest(),  # the pair, checked on resume
                "kimg": self.cur_nimg / 1000,
                "cur_nimg": self.cur_nimg,
                "phases_done": self.phases_done,
                "tick": self.tick,
                "augment_p": float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0,
                "data": self.r.data.path,
                "config": self.cfg.to_dict(),
            },
            "source": "gan train",
        }
        model = serialize(self.G_ema, D=self.D, G_train=self.G, arch=self.cfg.cfg, metadata=metadata)
        snap.commit_snapshot(
            self.run_dir, model, state, self.cur_nimg, self.tick, self.snapshot_fault, self.phases_done
        )
        model_path = os.path.join(self.run_dir, model_name)
        self.last_snapshot = model_path
        self.snapshot_at = self._position()
        return model_path

    @torch.no_grad()
    def _save_fakes(self) -> str:
        images = []
        for z, c in zip(self.grid_z.split(self.r.batch_gpu), self.grid_c.split(self.r.batch_gpu)):
            images.append(snap.to_uint8(self.G_ema(z, c, noise_mode="const")))
        path = os.path.join(self.run_dir, f"fakes{snap.snapshot_tag(self.cur_nimg, self.phases_done)}.png")
        snap.save_image_grid(np.concatenate(images), path, self.cfg.grid_cols)
        return path

    def _save_reals(self) -> None:
        n = self.cfg.grid_cols * self.cfg.grid_rows
        gen = np.random.default_rng(self.cfg.seed)
        idx = gen.choice(len(self.dataset), size=n, replace=len(self.dataset) < n)
        images = np.stack([self.dataset[int(i)][0] for i in idx])
        snap.save_image_grid(images, os.path.join(self.run_dir, "reals.png"), self.cfg.grid_cols)

    def _metrics(self, stats: dict[str, float]) -> str:
        """Compute the configured metrics on G_ema; a metric that cannot run (no Inception weights
        offline, a generator without input transform) is skipped from then on, with its reason."""
        from gan.metrics import run_metrics

        names = [n for n in self.cfg.metrics if n not in self.metrics_skipped]
        if names:
            try:
                report = run_metrics(
                    names,
                    self.G_ema,
                    dataset=self.cfg.data,
                    num=self.cfg.metrics_num,
                    batch_size=self.r.batch_gpu,
                    seed=self.cfg.seed,
                )
            except UserError as exc:
                self.metrics_skipped.update({n: str(exc) for n in names})
            else:
                self.metrics_skipped.update(report.skipped)
                for name, value in report.values.items():
                    stats[f"Metrics/{name}"] = float(value)
        return "; ".join(f"{n} skipped: {why}" for n, why in self.metrics_skipped.items())

    # --- endings ------------------------------------------------------------------------

    def _fail(self, message: str, clock: _TickClock, on_tick) -> RunSummary:
        stats = self.stats.collect(_REPORTED)
        info = TickInfo(
            tick=self.tick,
            kimg=self.cur_nimg / 1000,
            total_kimg=float(self.cfg.kimg),
            sec_per_kimg=clock.sec_per_kimg(self.cur_nimg),
            eta_sec=math.nan,
            stats=stats,
            snapshot_path=None,
            run_dir=self.run_dir,
            done=True,
            message=f"{message} ({self.last_snapshot or 'no snapshot was written yet'})",
        )
        if on_tick is not None and self.dist.is_main:
            on_tick(info)
        return self._summary(True, "nonfinite", info.message)

    def _summary(self, stopped: bool, reason: str, message: str) -> RunSummary:
        return RunSummary(self.run_dir, self.cur_nimg / 1000, self.last_snapshot, stopped, reason, message)


# Names every rank reports each tick (so the distributed all-reduce lines up).
_REPORTED = [
    "Loss/G/loss",
    "Loss/D/loss",
    "Loss/scores/fake",
    "Loss/scores/real",
    "Loss/signs/fake",
    "Loss/signs/real",
]


class _TickClock:
    def __init__(self, nimg: int):
        self.restart(nimg)

    def restart(self, nimg: int) -> None:
        self.start_nimg = nimg
        self.start_time = time.monotonic()

    def sec_per_kimg(self, nimg: int) -> float:
        done = nimg - self.start_nimg
        return (time.monotonic() - self.start_time) / (done / 1000) if done > 0 else math.nan


class _Skip(torch.utils.data.Sampler):
    """The indices of a sampler after the first `count`."""

    def __init__(self, sampler, count: int):
        self.sampler, self.count = sampler, count

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.count, None)


def _pair_fix(model_path: str) -> str:
    return (
        f"Resume from its weights only with `--resume {model_path} --finetune` (optimizer state, "
        "counters and augment p start fresh), or from an older snapshot whose state file matches"
    )


def _check_pair(state_path: str, model_path: str, training: dict) -> None:
    """UserError unless the state file is the one written with the model (by its sha256, which
    models written since snapshots are committed as one unit record)."""
    digest = training.get("state_sha256")
    if isinstance(digest, str) and file_sha256(state_path) != digest:
        raise UserError(
            f"the training state {state_path} is not the one written with {model_path} (its sha256 "
            "differs), so weights and optimizer state would come from different moments. "
            + _pair_fix(model_path)
        )


def _check_state_count(state: dict, state_path: str, model_path: str, training: dict) -> None:
    """UserError unless state and model record the same position (image count and phases of a
    part-done step): the check old run folders, without digests, get. A state overwritten by a
    later, unfinished snapshot is caught here."""
    if not isinstance(state, dict):
        return  # _load_state reports a malformed state when it reads the counters
    model_at = (training.get("cur_nimg"), training.get("phases_done", 0))
    state_at = (state.get("cur_nimg"), state.get("phases_done", 0))
    if isinstance(model_at[0], int) and isinstance(state_at[0], int) and model_at != state_at:
        raise UserError(
            f"the training state {state_path} is from {_where(*state_at)} but the snapshot "
            f"{model_path} is from {_where(*model_at)}: they were not written together (a crash or a "
            f"full disk while a snapshot was written). {_pair_fix(model_path)}"
        )


def _where(nimg: int, phases_done) -> str:
    text = f"{nimg / 1000:.3f} kimg"
    return f"{text} and {phases_done} phase(s) of the next step" if phases_done else text


def _sanitize_grads(params: list[torch.nn.Parameter]) -> None:
    """Replace NaN/inf gradient entries (as the official loop does); the common all-finite case is
    checked with one fused norm instead of rewriting every gradient."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all()):
        return
    for g in grads:
        torch.nan_to_num(g, nan=0, posinf=1e5, neginf=-1e5, out=g)


def _copy_net(net: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(net).eval().requires_grad_(False)


def _copy_state(src: torch.nn.Module, dst: torch.nn.Module, what: str) -> None:
    """Load src's parameters and buffers into dst (same architecture, maybe other fp16 settings)."""
    try:
        dst.load_state_dict(src.state_dict(), strict=True)
    except RuntimeError as exc:
        raise UserError(f"the resumed {what} does not fit the network built for this run: {exc}") from None
