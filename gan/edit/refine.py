"""Refine a direction with a differentiable classifier so that it changes one attribute and keeps
the others.

An InterFaceGAN boundary keeps the conditioned attributes only to first order and only as far
as their linear boundaries describe them; a few slider units away, a toon face's hair colour
still flips in about a third of the images. Refinement optimises the direction itself, through
the generator and the classifier, at the slider strength it will be used at:

    loss = CE(target class | image at +strength) + CE(not target | image at -strength)
         + keep_weight * sum over kept heads and both signs of KL(p(head | image) || p(head | edited))

The vector stays a unit vector in W (projected each step), starts at the given direction, and
moves in slider units: the edit is `strength * std_W(d) * d`, with std_W the standard deviation
of sampled ws along d, the same slider unit `Direction.scale` uses, so the optimiser cannot buy
a larger effect by a larger move. With `per_layer` every w gets its own row (a W+ direction,
`Direction` with [num_ws, w_dim], unit RMS row norm, std_W the RMS of the rows' stds): the
coarse ws can change the drawing style while the fine ws hold the colours, which one vector
shared by all ws cannot do when style and hair colour are entangled in W.

Images are shifted by a random few pixels before classification (the augmentation the
classifier was trained with), so the direction has to change what the classifier sees in every
placement rather than a few pixels it happens to weigh.

The samples are fresh ws of a private random stream; the measurement seeds of `gan directions
measure` (1000-1199 by default) are never seen. Measure a refined direction with a classifier it
was not optimised against when the numbers are to be trusted (see resources/classifier/README.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from gan.edit.classifier import random_shift, to_input
from gan.edit.directions import Direction, unit
from gan.edit.pca import sample_w
from gan.errors import Cancelled, UserError
from gan.progress import Progress


@dataclass
class RefineConfig:
    target: str = field(
        default="style=anime",
        metadata={"help": "HEAD=CLASS the direction turns on at +strength and off at -strength"},
    )
    keep: tuple[str, ...] = field(
        default=("hair_colour", "glasses"),
        metadata={"help": "classifier heads whose prediction the edit must not change"},
    )
    strength: float = field(default=3.0, metadata={"help": "slider units the edit is optimised at"})
    steps: int = field(default=150, metadata={"help": "optimisation steps"})
    batch: int = field(default=8, metadata={"help": "ws per step (each rendered three times)"})
    lr: float = field(
        default=0.01, metadata={"help": "initial Adam learning rate of the unit vector (cosine decay to 0)"}
    )
    keep_weight: float = field(default=2.0, metadata={"help": "weight of the keep (KL) term"})
    per_layer: bool = field(
        default=False,
        metadata={"help": "optimise one row per w (a W+ direction) instead of one shared vector"},
    )
    shift: int = field(default=2, metadata={"help": "random image shift in pixels before classifying"})
    seed: int = field(default=0, metadata={"help": "seed of the sampled ws and shifts"})

    def validate(self, heads: dict[str, list[str]]) -> tuple[str, int]:
        """(target head, target class index); raises UserError naming what is wrong."""
        head, _, cls = self.target.partition("=")
        if head not in heads or cls not in heads[head]:
            known = ", ".join(f"{h}={c}" for h, cs in heads.items() for c in cs)
            raise UserError(f"target {self.target!r} is not a class of the classifier; it has: {known}")
        for k in self.keep:
            if k not in heads:
                raise UserError(f"keep head {k!r} is not a classifier head; it has: {', '.join(heads)}")
            if k == head:
                raise UserError(f"head {k!r} is the target; it cannot also be kept")
        for name in ("steps", "batch"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, not {getattr(self, name)}")
        if not self.strength > 0 or not self.lr > 0 or self.keep_weight < 0 or self.shift < 0:
            raise UserError("strength and lr must be positive; keep_weight and shift not negative")
        return head, heads[head].index(cls)


@dataclass
class RefineStep:
    step: int
    target_loss: float  # mean CE of the wanted class at +strength and -strength
    keep_loss: float  # mean KL of the kept heads


def _rms_row_norm(v: torch.Tensor) -> torch.Tensor:
    """Root mean square of the row norms of v [rows, w_dim]: the norm `unit` makes 1."""
    return v.norm() / len(v) ** 0.5


def _slider_unit(d: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """std of the sampled ws along each row of d [rows, w_dim], root mean square over rows."""
    return torch.sqrt(torch.einsum("rw,wv,rv->r", d, cov, d).mean())


def refine_direction(
    G: torch.nn.Module,
    classifier,
    direction: Direction,
    config: RefineConfig,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[Direction, list[RefineStep]]:
    """The refined direction (same name and layer range, new vector and slider unit) and the
    per-step losses. progress(done, total, losses) after each step; should_stop() is polled before each
    step and raises gan.errors.Cancelled."""
    head, target_idx = config.validate(classifier.heads)
    net = classifier.net
    device = next(G.parameters()).device
    # The slider unit of any unit vector d: sqrt(d^T C d), C the covariance of sampled ws.
    sampled = sample_w(G, 4000, seed=config.seed + 1).astype(np.float64)
    cov = torch.from_numpy(np.cov(sampled, rowvar=False)).float().to(device)
    gen = torch.Generator().manual_seed(int(config.seed))
    end = G.num_ws if direction.layer_end is None else direction.layer_end
    mask = torch.zeros([1, G.num_ws, 1], device=device)
    mask[:, direction.layer_start : end] = 1
    start = direction.vector.reshape(-1, G.w_dim)  # [1, w_dim] or [num_ws, w_dim]
    if config.per_layer:
        start = np.broadcast_to(start, (G.num_ws, G.w_dim))
    vector = torch.nn.Parameter(torch.from_numpy(unit(start)).to(device))
    opt = torch.optim.Adam([vector], lr=config.lr)
    # Decaying to 0 lets the last steps settle instead of ending on one noisy batch's update.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.steps)
    trainable = [p for p in list(G.parameters()) + list(net.parameters()) if p.requires_grad]
    history: list[RefineStep] = []

    def classify(images: torch.Tensor) -> dict[str, torch.Tensor]:
        return net(to_input(random_shift(images, config.shift, gen), net.config.resolution))

    try:
        for p in trainable:
            p.requires_grad_(False)
        for step in range(config.steps):
            if should_stop is not None and should_stop():
                raise Cancelled("refining the direction was stopped")
            z = torch.randn([config.batch, G.z_dim], generator=gen).to(device)
            c = torch.zeros([config.batch, G.c_dim], device=device)
            if G.c_dim > 0:
                c[torch.arange(config.batch), torch.randint(0, G.c_dim, (config.batch,), generator=gen)] = 1
            with torch.no_grad():
                ws = G.mapping(z, c, truncation_psi=1)
                base = classify(G.synthesis(ws, noise_mode="const"))
                base_logp = {k: F.log_softmax(base[k], dim=1) for k in config.keep}
            d = vector / _rms_row_norm(vector)
            move = config.strength * _slider_unit(d, cov) * d[None]  # [1, 1 or num_ws, w_dim]
            target_loss = keep_loss = torch.zeros([], device=device)
            for sign in (1.0, -1.0):
                images = G.synthesis(ws + sign * mask * move, noise_mode="const")
                logits = classify(images)
                logp = F.log_softmax(logits[head], dim=1)[:, target_idx]
                # +: the class itself; -: anything but it (log(1 - p), computed stably).
                wanted = logp if sign > 0 else torch.log1p(-logp.exp().clamp(max=1 - 1e-6))
                target_loss = target_loss - wanted.mean() / 2
                for k in config.keep:
                    kl = F.kl_div(
                        F.log_softmax(logits[k], dim=1), base_logp[k], log_target=True, reduction="batchmean"
                    )
                    keep_loss = keep_loss + kl / (2 * len(config.keep))
            loss = target_loss + config.keep_weight * keep_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            with torch.no_grad():
                vector /= _rms_row_norm(vector)
            record = RefineStep(step, float(target_loss.detach()), float(keep_loss.detach()))
            history.append(record)
            if progress is not None:
                losses = f"target {record.target_loss:.3f}, keep {record.keep_loss:.3f}"
                progress(len(history), config.steps, losses)
    finally:
        for p in trainable:
            p.requires_grad_(True)
    final = vector.detach()
    v = final.cpu().numpy().astype(np.float32)
    if not np.all(np.isfinite(v)):
        raise UserError("refinement diverged (non-finite vector); lower --lr")
    scale = float(_slider_unit(final, cov))
    cosine = float(np.sum(v * unit(np.broadcast_to(start, v.shape)))) / len(v)
    kept = ", ".join(config.keep) or "nothing"
    how = "refined per layer" if len(v) > 1 else "refined"
    note = (
        f"; {how} for {config.steps} steps at +-{config.strength:g} units towards {config.target}, "
        f"keeping {kept} (cosine to the start {cosine:.2f})"
    )
    v = v if len(v) > 1 else v[0]
    refined = dataclasses.replace(direction, vector=v, scale=max(scale, 1e-12), help=direction.help + note)
    return refined, history
