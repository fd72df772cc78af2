"""Adaptive discriminator augmentation (ADA, Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data").

`AugmentPipe` applies the paper's differentiable augmentations to the images shown to D (real and
generated alike), each with probability `p` (a buffer). Geometric ones are combined into one
affine transform per image and resampled once: reflect-pad, 2x upsample with the sym6 wavelet
low-pass, bilinear grid_sample, 2x downsample with the same filter (as the official code does, so
the resampling hardly blurs or aliases). Colour ones are combined into one 4x4 matrix.
`AdaController` moves `p` so that E[sign(D(real))] stays near its target.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ops_cuda.upfirdn2d import upfirdn2d

# Low-pass decomposition filter of the Symlet-6 wavelet (12 taps; orthogonal, so up- then
# down-sampling with it reconstructs the input exactly).
SYM6 = (
    0.015404109327027373,
    0.0034907120842174702,
    -0.11799011114819057,
    -0.048311742585633,
    0.4910559419267466,
    0.787641141030194,
    0.3379294217276218,
    -0.07263752278646252,
    -0.021060292512300564,
    0.04472490177066578,
    0.0017677118642428036,
    -0.007800708325034148,
)

_BLIT = ("xflip", "rotate90", "xint")
_GEOM = ("scale", "rotate", "aniso", "xfrac")
_COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
_PRESETS = {"blit": _BLIT, "geom": _GEOM, "color": _COLOR, "bg": _BLIT + _GEOM, "bgc": _BLIT + _GEOM + _COLOR}


def augment_preset(name: str) -> dict[str, float]:
    """AugmentPipe kwargs of a named preset of the paper ('bgc' is the default of ADA training)."""
    if name not in _PRESETS:
        raise ValueError(f"unknown augmentation preset {name!r}; choose from {', '.join(_PRESETS)}")
    return {aug: 1.0 for aug in _PRESETS[name]}


class AugmentPipe(torch.nn.Module):
    """Each augmentation argument is the relative probability of that augmentation (multiplied by
    `p`); the others are the strengths of the official implementation."""

    def __init__(
        self,
        xflip: float = 0,
        rotate90: float = 0,
        xint: float = 0,
        xint_max: float = 0.125,
        scale: float = 0,
        rotate: float = 0,
        aniso: float = 0,
        xfrac: float = 0,
        scale_std: float = 0.2,
        rotate_max: float = 1,
        aniso_std: float = 0.2,
        xfrac_std: float = 0.125,
        brightness: float = 0,
        contrast: float = 0,
        lumaflip: float = 0,
        hue: float = 0,
        saturation: float = 0,
        brightness_std: float = 0.2,
        contrast_std: float = 0.5,
        hue_max: float = 1,
        saturation_std: float = 1,
        p: float = 0.0,
    ):
        super().__init__()
        self.init_kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__", "p")}
        for name, value in self.init_kwargs.items():
            setattr(self, name, float(value))
        self.register_buffer("p", torch.tensor(float(p)))  # overall augmentation probability
        filt = torch.tensor(SYM6, dtype=torch.float32)
        self.register_buffer("filter", filt / filt.sum(), persistent=False)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """images: [N, C, H, W] float (D's input range, about [-1, 1]). generator: for reproducible draws."""
        if images.ndim != 4:
            raise ValueError(f"expected images of shape [N, C, H, W], got {list(images.shape)}")
        draw = _Draw(generator, images.device)
        images = self._geometric(images, draw)
        return self._color(images, draw)

    # --- geometric ----------------------------------------------------------------------

    def _geometric(self, images: torch.Tensor, draw: _Draw) -> torch.Tensor:
        n, _c, h, w = images.shape
        dev = images.device
        p = self.p
        # G maps output pixel coordinates (origin at the image centre) to input coordinates, so
        # each augmentation multiplies by the inverse of its forward transform on the right.
        G = torch.eye(3, device=dev).expand(n, 3, 3)
        if self.xflip > 0:
            i = torch.floor(draw.rand([n]) * 2)
            i = torch.where(draw.rand([n]) < self.xflip * p, i, 0.0)
            G = G @ _scale2d(1 - 2 * i, 1)
        if self.rotate90 > 0:
            i = torch.floor(draw.rand([n]) * 4)
            i = torch.where(draw.rand([n]) < self.rotate90 * p, i, 0.0)
            G = G @ _rotate2d(-math.pi / 2 * i)
        if self.xint > 0:
            t = (draw.rand([n, 2]) * 2 - 1) * self.xint_max
            t = torch.where(draw.rand([n, 1]) < self.xint * p, t, 0.0)
            G = G @ _translate2d(torch.round(t[:, 0] * w), torch.round(t[:, 1] * h))
        if self.scale > 0:
            s = torch.exp2(draw.randn([n]) * self.scale_std)
            s = torch.where(draw.rand([n]) < self.scale * p, s, 1.0)
            G = G @ _scale2d(s, s)
        # Rotation is drawn twice (before and after anisotropic scaling) with a probability such
        # that at least one of the two happens with probability rotate * p.
        p_rot = 1 - torch.sqrt(torch.clamp(1 - self.rotate * p, min=0))
        if self.rotate > 0:
            theta = (draw.rand([n]) * 2 - 1) * math.pi * self.rotate_max
            theta = torch.where(draw.rand([n]) < p_rot, theta, 0.0)
            G = G @ _rotate2d(-theta)
        if self.aniso > 0:
            s = torch.exp2(draw.randn([n]) * self.aniso_std)
            s = torch.where(draw.rand([n]) < self.aniso * p, s, 1.0)
            G = G @ _scale2d(s, 1 / s)
        if self.rotate > 0:
            theta = (draw.rand([n]) * 2 - 1) * math.pi * self.rotate_max
            theta = torch.where(draw.rand([n]) < p_rot, theta, 0.0)
            G = G @ _rotate2d(-theta)
        if self.xfrac > 0:
            t = draw.randn([n, 2]) * self.xfrac_std
            t = torch.where(draw.rand([n, 1]) < self.xfrac * p, t, 0.0)
            G = G @ _translate2d(t[:, 0] * w, t[:, 1] * h)
        if not bool((G != torch.eye(3, device=dev)).any()):
            return images  # nothing drawn: skip the (costly, nearly exact) resampling
        return self._resample(images, G)

    def _resample(self, images: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        n, c, h, w = images.shape
        f = self.filter
        fpad = f.numel() // 4  # border (in input pixels) the filters need
        # Pad so that every output pixel, plus the filter support, samples real (mirrored) content.
        cx, cy = (w - 1) / 2, (h - 1) / 2
        corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device=images.device)
        reach = (G @ corners.T)[:, :2, :].permute(1, 0, 2).flatten(1)  # [2, n*4] input x, y of output corners
        margin = torch.cat([-reach, reach]).max(dim=1).values  # how far left, up, right, down
        margin = margin + torch.tensor([fpad * 2 - cx, fpad * 2 - cy] * 2, device=images.device)
        margin = margin.clamp(min=0).minimum(torch.tensor([w - 1, h - 1] * 2, device=images.device))
        mx0, my0, mx1, my1 = (int(v) for v in margin.ceil().tolist())
        images = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
        dev = images.device
        G = _translate2d((mx0 - mx1) / 2, (my0 - my1) / 2).to(dev) @ G

        images = _upsample2x(images, f)
        G = _scale2d(2, 2).to(dev) @ G @ _scale2d(0.5, 0.5).to(dev)
        # The filters' phase (as in the official code).
        G = _translate2d(-0.5, -0.5).to(dev) @ G @ _translate2d(0.5, 0.5).to(dev)

        shape = [n, c, (h + fpad * 2) * 2, (w + fpad * 2) * 2]
        # Pixel coordinates -> grid_sample's [-1, 1] coordinates, on both sides.
        to_unit = _scale2d(2 / images.shape[3], 2 / images.shape[2]).to(dev)
        G = to_unit @ G @ _scale2d(shape[3] / 2, shape[2] / 2).to(dev)
        grid = F.affine_grid(G[:, :2, :].to(images.dtype), shape, align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return _downsample2x(images, f, crop=fpad * 2)

    # --- colour -------------------------------------------------------------------------

    def _color(self, images: torch.Tensor, draw: _Draw) -> torch.Tensor:
        n, c, h, w = images.shape
        dev = images.device
        p = self.p
        eye = torch.eye(4, device=dev)
        M = eye.expand(n, 4, 4)
        changed = False
        if self.brightness > 0:
            b = draw.randn([n]) * self.brightness_std
            b = torch.where(draw.rand([n]) < self.brightness * p, b, 0.0)
            M, changed = _translate3d(b, b, b) @ M, True
        if self.contrast > 0:
            s = torch.exp2(draw.randn([n]) * self.contrast_std)
            s = torch.where(draw.rand([n]) < self.contrast * p, s, 1.0)
            M, changed = _scale3d(s, s, s) @ M, True
        luma = torch.tensor([1, 1, 1, 0], device=dev, dtype=torch.float32) / math.sqrt(3)  # luma axis
        luma_outer = torch.outer(luma, luma)
        if self.lumaflip > 0:
            i = torch.floor(draw.rand([n, 1, 1]) * 2)
            i = torch.where(draw.rand([n, 1, 1]) < self.lumaflip * p, i, 0.0)
            M, changed = (eye - 2 * luma_outer * i) @ M, True  # mirror colours through the grey plane
        if self.hue > 0 and c > 1:
            theta = (draw.rand([n]) * 2 - 1) * math.pi * self.hue_max
            theta = torch.where(draw.rand([n]) < self.hue * p, theta, 0.0)
            M, changed = _rotate3d(luma, theta) @ M, True  # rotate around the grey axis
        if self.saturation > 0 and c > 1:
            s = torch.exp2(draw.randn([n, 1, 1]) * self.saturation_std)
            s = torch.where(draw.rand([n, 1, 1]) < self.saturation * p, s, 1.0)
            M, changed = (luma_outer + (eye - luma_outer) * s) @ M, True
        if not changed:
            return images
        M = M.to(images.dtype)
        flat = images.reshape(n, c, h * w)
        if c == 3:
            flat = M[:, :3, :3] @ flat + M[:, :3, 3:]
        elif c == 1:
            m = M[:, :3, :].mean(dim=1, keepdim=True)  # act on the grey value
            flat = flat * m[:, :, :3].sum(dim=2, keepdim=True) + m[:, :, 3:]
        else:
            raise ValueError(f"colour augmentations need 1 or 3 channels, not {c}")
        return flat.reshape(n, c, h, w)


class AdaController:
    """Adjusts `pipe.p` from the discriminator's outputs on real images.

    The loop calls `observe(real_logits)` on every D step and `update()` every `interval` steps;
    p moves by sign(mean sign - target) * images seen / (kimg * 1000), within [0, 1].
    """

    def __init__(self, pipe: AugmentPipe, target: float = 0.6, kimg: float = 500):
        if kimg <= 0:
            raise ValueError("kimg must be positive")
        self.pipe = pipe
        self.target = target
        self.kimg = kimg
        self.last_sign_mean = float("nan")  # E[sign(D(real))] of the last update, for statistics
        self._sum: torch.Tensor | None = None
        self._count: torch.Tensor | None = None

    def observe(self, real_logits: torch.Tensor) -> None:
        signs = torch.sign(real_logits.detach()).float()
        total = torch.stack([signs.sum(), torch.tensor(float(signs.numel()), device=signs.device)])
        self._sum = total if self._sum is None else self._sum + total

    def update(self, num_images: int | None = None) -> float:
        """Move p; num_images defaults to the number of logits observed (on all ranks) since the
        last update. Returns the new p."""
        if self._sum is None:
            return float(self.pipe.p)
        total, self._sum = self._sum, None
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(total)
        sign_sum, count = total.tolist()
        self.last_sign_mean = sign_sum / count
        n = count if num_images is None else num_images
        step = math.copysign(1.0, self.last_sign_mean - self.target) * n / (self.kimg * 1000)
        if self.last_sign_mean == self.target:
            step = 0.0
        with torch.no_grad():
            self.pipe.p.copy_((self.pipe.p + step).clamp(0, 1))
        return float(self.pipe.p)


# --- helpers --------------------------------------------------------------------------------


class _Draw:
    """Random numbers from an optional generator, delivered on the images' device."""

    def __init__(self, generator: torch.Generator | None, device: torch.device):
        self.generator = generator
        self.device = device

    def rand(self, shape: list[int]) -> torch.Tensor:
        if self.generator is None:
            return torch.rand(shape, device=self.device)
        return torch.rand(shape, generator=self.generator, device=self.generator.device).to(self.device)

    def randn(self, shape: list[int]) -> torch.Tensor:
        if self.generator is None:
            return torch.randn(shape, device=self.device)
        return torch.randn(shape, generator=self.generator, device=self.generator.device).to(self.device)


def _matrix(*rows) -> torch.Tensor:
    """Batched matrix from rows of numbers and [N] tensors: [N, R, C] (or [R, C] without tensors)."""
    elems = [e for row in rows for e in row]
    like = next((e for e in elems if isinstance(e, torch.Tensor)), None)
    if like is None:
        return torch.tensor(rows, dtype=torch.float32)
    elems = [torch.as_tensor(e, dtype=torch.float32, device=like.device) for e in elems]
    elems = torch.broadcast_tensors(*elems)
    return torch.stack(elems, dim=-1).reshape(*elems[0].shape, len(rows), len(rows[0]))


def _translate2d(tx, ty) -> torch.Tensor:
    return _matrix([1, 0, tx], [0, 1, ty], [0, 0, 1])


def _scale2d(sx, sy) -> torch.Tensor:
    return _matrix([sx, 0, 0], [0, sy, 0], [0, 0, 1])


def _rotate2d(theta: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(theta), torch.sin(theta)
    return _matrix([cos, -sin, 0], [sin, cos, 0], [0, 0, 1])


def _translate3d(tx, ty, tz) -> torch.Tensor:
    return _matrix([1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1])


def _scale3d(sx, sy, sz) -> torch.Tensor:
    return _matrix([sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1])


def _rotate3d(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rotation by theta [N] around the unit vector axis[:3] (Rodrigues' formula)."""
    x, y, z = (float(a) for a in axis[:3])
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    return _matrix(
        [x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0],
        [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0],
        [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0],
        [0, 0, 0, 1],
    )


def _upsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x upsampling with filter f (gain 2 per axis), aligned like the official upsample2d. Runs
    on the ops' upfirdn2d (impl switch: our kernels, or 'ref'), which skips the inserted zeros."""
    pad0, pad1 = (f.numel() + 1) // 2, (f.numel() - 2) // 2
    return upfirdn2d(x, f, up=2, padding=[pad0, pad1, pad0, pad1], gain=4.0)


def _downsample2x(x: torch.Tensor, f: torch.Tensor, crop: int) -> torch.Tensor:
    """2x downsampling with filter f (not flipped), after cropping `crop` pixels per side, aligned
    like the official downsample2d(padding=-crop, flip_filter=True)."""
    pad0, pad1 = (f.numel() - 1) // 2 - crop, (f.numel() - 2) // 2 - crop
    return upfirdn2d(x, f, down=2, padding=[pad0, pad1, pad0, pad1], flip_filter=True)
