"""Projection: find the latent (w, or W+) and noise that make the generator draw a given image.

Following NVIDIA's projector (stylegan2-ada-pytorch `projector.py`, read for its facts): start
from the average w (of `w_avg_samples` mapped random z), optimise with Adam (betas 0.9, 0.999)
under a learning rate that ramps up over the first 5% of the steps and down along a cosine over
the last 25%, add Gaussian noise to w whose strength (5% of the ws' spread) fades out quadratically
over the first 75% of the steps, optimise the per-pixel noise buffers of StyleGAN2 from random
values, penalise their autocorrelation at every scale (weight 1e5) and renormalise them to zero
mean and unit variance after every step. StyleGAN3 has no noise buffers.

Our distance (NVIDIA's uses LPIPS only) is a weighted sum of
- pixel L2 (mean squared difference of the [-1, 1] images),
- 1 - multi-scale SSIM,
- the distance of the model's own discriminator features (when the model file has D, or one
  is given), which cares about what the model was trained to tell apart,
- LPIPS on VGG16 features, only when the user points to VGG weights (`VGGPerceptual`).

With `w_plus`, the last `w_plus_share` of the steps refine one w per layer (W+) from the w found,
with a penalty pulling every layer's w towards it (so edits still behave). The result is plain
data (`Projection`), saved as .npz; rendering it through a blended model uses the same latent.

Several targets of the same size can be projected in one batch when the model has no noise
buffers (or noise is not optimised): each image's w is optimised independently (Adam is
per-element, every loss term per image), image i with the w-noise seed `seed + i`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
import torch.nn.functional as F

from gan.errors import Cancelled, UserError
from gan.photo.losses import DiscriminatorFeatures, VGGPerceptual, ms_ssim

FORMAT_NAME = "stylegan-explorer-projection"
FORMAT_VERSION = 1
NOISE_SUFFIX = "noise_const"


@dataclass
class ProjectConfig:
    steps: int = field(default=150, metadata={"help": "optimisation steps in total"})
    w_plus: bool = field(
        default=False,
        metadata={"help": "refine one w per layer (W+) after the shared w: closer, less editable"},
    )
    w_plus_share: float = field(default=0.4, metadata={"help": "share of the steps spent refining W+"})
    w_plus_weight: float = field(
        default=0.5,
        metadata={
            "help": "W+ penalty: squared distance of each layer's w from the shared w (in the ws' spread)"
        },
    )
    w_plus_lr: float = field(default=0.02, metadata={"help": "peak learning rate of the W+ refinement"})
    learning_rate: float = field(default=0.1, metadata={"help": "peak learning rate (NVIDIA: 0.1)"})
    lr_rampup: float = field(default=0.05, metadata={"help": "share of the steps the learning rate ramps up"})
    lr_rampdown: float = field(default=0.25, metadata={"help": "share of the steps it ramps down (cosine)"})
    w_noise: float = field(default=0.05, metadata={"help": "initial noise added to w, times the ws' spread"})
    w_noise_ramp: float = field(
        default=0.75, metadata={"help": "share of the steps over which that noise fades"}
    )
    optimize_noise: bool = field(default=True, metadata={"help": "optimise StyleGAN2's noise buffers too"})
    noise_regularize: float = field(
        default=1e5, metadata={"help": "weight of the noise autocorrelation penalty"}
    )
    pixel_weight: float = field(default=1.0, metadata={"help": "weight of the pixel L2 distance"})
    ssim_weight: float = field(default=0.5, metadata={"help": "weight of 1 - multi-scale SSIM"})
    d_weight: float = field(
        default=0.3, metadata={"help": "weight of the discriminator feature distance (if D)"}
    )
    lpips_weight: float = field(default=1.0, metadata={"help": "weight of LPIPS (only with VGG weights)"})
    w_avg_samples: int = field(default=10000, metadata={"help": "random z mapped to find the average w"})
    class_idx: int | None = field(default=None, metadata={"help": "class of a conditional model"})
    seed: int = field(default=0, metadata={"help": "seed of the w statistics, noise init and w noise"})
    preview_every: int = field(default=5, metadata={"help": "send the current image every this many steps"})

    def validate(self) -> None:
        if not 1 <= self.steps <= 100_000:
            raise UserError(f"steps must be from 1 to 100000, not {self.steps}")
        if not 0 < self.w_plus_share < 1:
            raise UserError(f"w_plus_share must be between 0 and 1, not {self.w_plus_share}")
        for name in ("learning_rate", "w_plus_lr"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name} must be positive")
        for name in ("lr_rampup", "lr_rampdown", "w_noise_ramp"):
            if not 0 < getattr(self, name) <= 1:
                raise UserError(f"{name} must be a share of the steps in (0, 1], not {getattr(self, name)}")
        for name in (
            "w_noise",
            "noise_regularize",
            "pixel_weight",
            "ssim_weight",
            "d_weight",
            "lpips_weight",
            "w_plus_weight",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise UserError(f"{name} must be a finite number >= 0, not {value}")
        if self.w_avg_samples < 100:
            raise UserError(f"w_avg_samples must be at least 100, not {self.w_avg_samples}")
        if self.preview_every < 1:
            raise UserError("preview_every must be at least 1")

    @classmethod
    def preset(cls, name: str, **overrides) -> ProjectConfig:
        if name not in PRESETS:
            raise UserError(f"unknown preset {name!r}; choose {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


# Quality presets (step counts; "best" also refines W+). "default" is sized to project a 64 px
# model in about half a minute on a 2-core laptop CPU (docs/benchmarks.md).
PRESETS: dict[str, dict] = {
    "fast": dict(steps=60),
    "default": dict(steps=150),
    "best": dict(steps=600, w_plus=True),
}


@dataclass
class ProjectProgress:
    step: int  # steps done (1 .. steps)
    steps: int
    phase: str  # 'w' or 'w+'
    loss: float  # total loss of the step (sum over a batch)
    image: np.ndarray | None  # uint8 [H, W, 3], the current reconstruction of the first target, or None


@dataclass(eq=False)
class Projection:
    ws: np.ndarray  # float32 [num_ws, w_dim]: the latent to render (every row equal unless w_plus)
    w_plus: bool
    noise: dict[str, np.ndarray]  # StyleGAN2 noise buffer name -> float32 [H, W]; empty for StyleGAN3
    image: np.ndarray  # uint8 [H, W, 3]: the final reconstruction
    target: np.ndarray  # uint8 [H, W, 3]: what was projected
    losses: dict[str, float]  # final distance terms (pixel, ms_ssim, d, lpips, total)
    history: np.ndarray  # float32 [steps]: total loss per step
    config: dict  # the ProjectConfig used
    seconds: float
    model: dict = field(default_factory=dict)  # sha256, path, arch of the model projected into
    source: dict = field(default_factory=dict)  # the photo and how it was cropped (JSON-able)

    @property
    def w(self) -> np.ndarray:
        """The shared w [w_dim] (the first row)."""
        return self.ws[0]


# --- set-up ----------------------------------------------------------------------------------


def threads_for_load() -> int | None:
    """1 when other processes keep every core busy (1-minute load average above the core count),
    else None (torch's default). On a busy 2-core machine two torch threads mostly wait for each
    other's time slices: a 64 px projection step took 7x longer with two than with one."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    return 1 if load > (os.cpu_count() or 1) else None


@torch.no_grad()
def w_stats(
    G: torch.nn.Module, samples: int, seed: int, class_idx: int | None = None
) -> tuple[torch.Tensor, float]:
    """(average w [w_dim], spread): the mean of `samples` mapped random z and the root mean
    squared distance of those ws from it (NVIDIA's w_std)."""
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(int(seed))
    ws = []
    for start in range(0, samples, 2000):
        n = min(2000, samples - start)
        z = torch.randn([n, G.z_dim], generator=gen).to(device)
        ws.append(G.mapping(z, _class_vector(G, class_idx, n, device))[:, 0])
    w = torch.cat(ws)
    avg = w.mean(0)
    return avg, float((w - avg).square().sum(1).mean().sqrt())


def _class_vector(G, class_idx: int | None, n: int, device) -> torch.Tensor:
    c = torch.zeros([n, G.c_dim], device=device)
    if G.c_dim > 0:
        if class_idx is None or not 0 <= int(class_idx) < G.c_dim:
            raise UserError(f"this model is conditional: choose a class from 0 to {G.c_dim - 1}")
        c[:, int(class_idx)] = 1
    return c


def noise_buffers(G: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The per-pixel noise buffers of a generator's synthesis network (StyleGAN2), by full name."""
    return {f"synthesis.{n}": b for n, b in G.synthesis.named_buffers() if n.endswith(NOISE_SUFFIX)}


def _to_float(images: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.asarray(images, np.float32) / 127.5 - 1).permute(0, 3, 1, 2).to(device)


def _to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> uint8 [N, H, W, 3], rounded like gan.render does."""
    out = (img.detach().permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()
    if out.shape[3] == 1:
        out = np.repeat(out, 3, axis=3)
    return np.ascontiguousarray(out[..., :3])


def _check_targets(G, target: np.ndarray) -> np.ndarray:
    t = np.asarray(target)
    if t.ndim == 3:
        t = t[None]
    res = int(G.img_resolution)
    if t.dtype != np.uint8 or t.ndim != 4 or t.shape[3] != 3:
        raise UserError(
            f"the target must be uint8 [H, W, 3] (or a batch of them), got {t.dtype} {list(t.shape)}"
        )
    if t.shape[1:3] != (res, res):
        raise UserError(
            f"the target is {t.shape[2]}x{t.shape[1]} pixels; this model draws {res}x{res}: align or crop "
            "the photo to the model's resolution first"
        )
    if int(G.img_channels) != 3:
        raise UserError(f"projection needs an RGB model; this one has {G.img_channels} channel(s)")
    return t


def _lr_ramp(t: float, rampup: float, rampdown: float) -> float:
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return ramp * min(1.0, t / rampup)


def _noise_penalty(bufs: list[torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation of each noise buffer with itself shifted by one pixel, in x and in y,
    at every scale down to 8 px (halving by average pooling): white noise scores ~0."""
    total = torch.zeros([])
    for buf in bufs:
        v = buf[None, None]
        while True:
            total = (
                total
                + (v * torch.roll(v, 1, dims=3)).mean() ** 2
                + (v * torch.roll(v, 1, dims=2)).mean() ** 2
            )
            if v.shape[2] <= 8:
                break
            v = F.avg_pool2d(v, 2)
    return total


class _Distance:
    """The weighted distance to fixed targets, per image."""

    def __init__(self, target: torch.Tensor, config: ProjectConfig, D, vgg: VGGPerceptual | None):
        self.target, self.config = target, config
        self.dfeat = DiscriminatorFeatures(D) if (D is not None and config.d_weight > 0) else None
        self.vgg = vgg if config.lpips_weight > 0 else None
        with torch.no_grad():
            self.d_target = self.dfeat(target) if self.dfeat is not None else None
            self.v_target = self.vgg(target) if self.vgg is not None else None

    def __call__(self, img: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        parts = {"pixel": (img - self.target).square().flatten(1).mean(1)}
        if c.ssim_weight > 0:
            parts["ms_ssim"] = 1 - ms_ssim(img, self.target)
        if self.dfeat is not None:
            parts["d"] = DiscriminatorFeatures.distance(self.dfeat(img), self.d_target)
        if self.vgg is not None:
            parts["lpips"] = self.vgg.distance(self.vgg(img), self.v_target)
        weights = {
            "pixel": c.pixel_weight,
            "ms_ssim": c.ssim_weight,
            "d": c.d_weight,
            "lpips": c.lpips_weight,
        }
        total = sum(weights[k] * v for k, v in parts.items())
        return total, parts


# --- projection ------------------------------------------------------------------------------


def project(
    G: torch.nn.Module,
    target: np.ndarray,
    config: ProjectConfig | None = None,
    *,
    D: torch.nn.Module | None = None,
    vgg: VGGPerceptual | None = None,
    on_step: Callable[[ProjectProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Projection]:
    """Project target (uint8 [H, W, 3] at G's resolution, or a batch [N, H, W, 3]) into G.
    Returns one Projection per target. G itself is not changed (its noise buffers are copied).
    should_stop() returning True raises gan.errors.Cancelled."""
    config = config or ProjectConfig()
    config.validate()
    t_start = time.perf_counter()
    targets = _check_targets(G, target)
    n = len(targets)
    G = copy.deepcopy(G).eval().requires_grad_(False)
    device = next(G.parameters()).device
    bufs = noise_buffers(G) if config.optimize_noise else {}
    if bufs and n > 1:
        raise UserError(
            "several targets share one set of noise buffers: project them one at a time, "
            "or without optimising noise"
        )
    w_avg, w_std = w_stats(G, config.w_avg_samples, config.seed, config.class_idx)
    target_t = _to_float(targets, device)
    distance = _Distance(target_t, config, D.to(device) if D is not None else None, vgg)

    gen = torch.Generator().manual_seed(int(config.seed))
    for buf in bufs.values():
        buf.copy_(torch.randn(buf.shape, generator=gen))
        buf.requires_grad_(True)
    w_gens = [torch.Generator().manual_seed(int(config.seed) + i) for i in range(n)]
    noise_list = list(bufs.values())

    steps_w = config.steps - (round(config.steps * config.w_plus_share) if config.w_plus else 0)
    steps_w = max(1, steps_w)
    steps_plus = config.steps - steps_w
    history: list[float] = []

    def run_step(ws: torch.Tensor, optimizer, lr: float, extra: torch.Tensor | None, step: int, phase: str):
        for group in optimizer.param_groups:
            group["lr"] = lr
        img = G.synthesis(ws, noise_mode="const", force_fp32=True)
        total, _ = distance(img)
        loss = total.sum()
        if extra is not None:
            loss = loss + extra
        if noise_list:
            loss = loss + _noise_penalty(noise_list) * config.noise_regularize
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for buf in noise_list:  # keep the noise white: zero mean, unit variance
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()
        history.append(float(loss.detach()))
        if on_step is not None:
            preview = step % config.preview_every == 0 or step == config.steps
            on_step(
                ProjectProgress(
                    step, config.steps, phase, history[-1], _to_uint8(img[:1])[0] if preview else None
                )
            )
        if should_stop is not None and should_stop():
            raise Cancelled("projection was stopped")

    # Phase 1: one w per image, shared by every layer.
    w_opt = w_avg.detach().reshape(1, 1, -1).repeat(n, 1, 1).requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt, *noise_list], betas=(0.9, 0.999), lr=config.learning_rate)
    for i in range(steps_w):
        t = i / steps_w
        noise_scale = w_std * config.w_noise * max(0.0, 1.0 - t / config.w_noise_ramp) ** 2
        w_noise = torch.stack([torch.randn(w_opt.shape[1:], generator=g) for g in w_gens]).to(device)
        ws = (w_opt + w_noise * noise_scale).expand(-1, G.num_ws, -1)
        lr = config.learning_rate * _lr_ramp(t, config.lr_rampup, config.lr_rampdown)
        run_step(ws, optimizer, lr, None, i + 1, "w")
    ws_final = w_opt.detach().expand(-1, G.num_ws, -1).clone()

    # Phase 2 (optional): one w per layer, pulled towards the shared one.
    if steps_plus > 0:
        anchor = w_opt.detach()
        ws_opt = ws_final.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([ws_opt, *noise_list], betas=(0.9, 0.999), lr=config.w_plus_lr)
        for i in range(steps_plus):
            t = i / steps_plus
            lr = config.w_plus_lr * _lr_ramp(t, config.lr_rampup, config.lr_rampdown)
            penalty = (ws_opt - anchor).square().sum(2).mean(1).sum() / (w_std**2) * config.w_plus_weight
            run_step(ws_opt, optimizer, lr, penalty, steps_w + i + 1, "w+")
        ws_final = ws_opt.detach().clone()

    with torch.no_grad():
        img = G.synthesis(ws_final, noise_mode="const", force_fp32=True)
        total, parts = distance(img)
    images = _to_uint8(img)
    noise = {name: buf.detach().cpu().numpy().astype(np.float32).copy() for name, buf in bufs.items()}
    seconds = time.perf_counter() - t_start
    out = []
    for k in range(n):
        losses = {name: float(v[k]) for name, v in parts.items()}
        losses["total"] = float(total[k])
        out.append(
            Projection(
                ws=ws_final[k].cpu().numpy().astype(np.float32),
                w_plus=bool(config.w_plus),
                noise=noise,
                image=images[k],
                target=np.ascontiguousarray(targets[k]),
                losses=losses,
                history=np.asarray(history, np.float32),
                config=asdict(config),
                seconds=seconds,
            )
        )
    return out


# --- files -----------------------------------------------------------------------------------


def save_projection(path: str | os.PathLike, p: Projection) -> None:
    """Write a projection as .npz (arrays only; metadata as a JSON string), atomically."""
    import io

    from gan.io.files import atomic_write_bytes, write_error

    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "w_plus": p.w_plus,
        "losses": p.losses,
        "config": p.config,
        "seconds": p.seconds,
        "model": p.model,
        "source": p.source,
        "noise_names": sorted(p.noise),
    }
    arrays = {
        "ws": p.ws.astype(np.float32),
        "image": p.image,
        "target": p.target,
        "history": p.history.astype(np.float32),
        "meta": np.array(json.dumps(meta)),
    }
    for i, name in enumerate(sorted(p.noise)):
        arrays[f"noise{i}"] = p.noise[name].astype(np.float32)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:
        raise write_error(str(path), exc) from None


def load_projection(path: str | os.PathLike) -> Projection:
    """Read a .npz written by save_projection (no pickles are read)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a projection file (.npz written by `gan project`): {exc}") from None
    try:
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != FORMAT_NAME:
            raise ValueError(f"format is {meta.get('format')!r}")
        if meta.get("version") != FORMAT_VERSION:
            raise ValueError(f"version {meta.get('version')!r} is not {FORMAT_VERSION}")
        ws = np.asarray(arrays["ws"], dtype=np.float32)
        if ws.ndim != 2 or not np.isfinite(ws).all():
            raise ValueError(f"ws must be a finite [num_ws, w_dim] array, got shape {list(ws.shape)}")
        names = list(meta.get("noise_names", []))
        noise = {name: np.asarray(arrays[f"noise{i}"], np.float32) for i, name in enumerate(names)}
        known = {f.name for f in fields(ProjectConfig)}
        config = {k: v for k, v in dict(meta.get("config", {})).items() if k in known}
        return Projection(
            ws=ws,
            w_plus=bool(meta.get("w_plus", False)),
            noise=noise,
            image=np.asarray(arrays["image"], np.uint8),
            target=np.asarray(arrays["target"], np.uint8),
            losses={k: float(v) for k, v in dict(meta.get("losses", {})).items()},
            history=np.asarray(arrays.get("history", np.zeros(0)), np.float32),
            config=config,
            seconds=float(meta.get("seconds", 0.0)),
            model=dict(meta.get("model", {})),
            source=dict(meta.get("source", {})),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{path} is damaged or not a projection file: {exc}") from None
