"""Image distances for projection: SSIM / multi-scale SSIM, the model's own discriminator
features, and a VGG16 perceptual distance (LPIPS) when the user provides VGG weights.

All take float images NCHW in [-1, 1] and return one value per image ([N]), so a batch of
targets is a batch of independent problems.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from gan.errors import UserError

# Multi-scale SSIM weights per scale, finest first (Wang, Simoncelli, Bovik 2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
_C1, _C2 = 0.01**2, 0.03**2  # for a data range of 1


def _gauss(window: int, sigma: float, device) -> torch.Tensor:
    x = torch.arange(window, dtype=torch.float32, device=device) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter over each channel, 'valid' (no padding)."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _ssim_parts(x: torch.Tensor, y: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(luminance * contrast-structure, contrast-structure), averaged per image; x, y in [0, 1]."""
    g = _gauss(window, SSIM_SIGMA, x.device)
    # The five local means in one pair of depthwise convolutions (a projection step runs this at
    # every scale; ten small convolutions cost more in overhead than in arithmetic).
    mx, my, mxx, myy, mxy = _blur(torch.cat([x, y, x * x, y * y, x * y], dim=1), g).chunk(5, dim=1)
    sxx = mxx - mx * mx
    syy = myy - my * my
    sxy = mxy - mx * my
    cs = (2 * sxy + _C2) / (sxx + syy + _C2)
    lum = (2 * mx * my + _C1) / (mx * mx + my * my + _C1)
    return (lum * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Structural similarity (11x11 Gaussian window, sigma 1.5) per image; images in [-1, 1]."""
    window = min(SSIM_WINDOW, x.shape[2], x.shape[3])
    return _ssim_parts((x + 1) / 2, (y + 1) / 2, window)[0]


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM per image; images in [-1, 1]. Uses as many of the 5 standard scales as
    the image holds with an 11 px window (at least one), the weights renormalised to sum to 1."""
    size = min(x.shape[2], x.shape[3])
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and size >> scales >= SSIM_WINDOW:
        scales += 1
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], device=x.device)
    weights = weights / weights.sum()
    x, y = (x + 1) / 2, (y + 1) / 2
    window = min(SSIM_WINDOW, size)
    out = torch.ones(x.shape[0], device=x.device)
    for i in range(scales):
        full, cs = _ssim_parts(x, y, window)
        # Negative similarities (anti-correlated patches) count as 0, so the powers stay real.
        value = full if i == scales - 1 else cs
        out = out * value.clamp(min=1e-6) ** weights[i]
        if i < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (peak 255)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 [H, W, 3] images (channels averaged), the ssim() of this module."""
    ta = torch.from_numpy(np.asarray(a, np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    tb = torch.from_numpy(np.asarray(b, np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    return float(ssim(ta, tb)[0])


def _unit_channels(f: torch.Tensor) -> torch.Tensor:
    """Features scaled to unit length over channels at every pixel (as LPIPS does)."""
    return f / (f.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()


class DiscriminatorFeatures(torch.nn.Module):
    """The activations after each block of a StyleGAN2-layout discriminator (before its 4x4
    epilogue, whose minibatch-stddev layer would mix the images of a batch)."""

    def __init__(self, D: torch.nn.Module):
        super().__init__()
        if not hasattr(D, "block_resolutions"):
            raise UserError(f"{type(D).__name__} is not a discriminator with blocks; cannot use its features")
        self.D = D.eval().requires_grad_(False)

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        x, feats = None, []
        for res in self.D.block_resolutions:
            x, img = getattr(self.D, f"b{res}")(x, img, force_fp32=True)
            feats.append(_unit_channels(x.float()))
        return feats

    @staticmethod
    def distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        """Mean over blocks of the per-pixel squared distance of unit features, per image."""
        return torch.stack([(x - y).square().sum(1).flatten(1).mean(1) for x, y in zip(a, b)]).mean(0)


# --- VGG16 perceptual distance (LPIPS) ---------------------------------------------------------

# torchvision's vgg16 `features` layout: conv channels, "M" = 2x2 max pool.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# LPIPS taps the ReLU after these convolutions (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3),
# indices into torchvision's `features` Sequential.
_TAPS = (3, 8, 15, 22, 29)
# LPIPS' input scaling of [-1, 1] images to ImageNet statistics.
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class VGGPerceptual(torch.nn.Module):
    """LPIPS distance on VGG16 features.

    vgg_path: torchvision's VGG16 weights (`vgg16-397923af.pth` or any state_dict with the
    `features.N.weight/bias` keys), read with torch.load(weights_only=True), which runs no code.
    lin_path: optional LPIPS v0.1 linear weights for VGG (`lin0.model.1.weight` ... `lin4...`);
    without them every channel counts equally (the uncalibrated "baseline" LPIPS variant)."""

    def __init__(self, vgg_path: str | os.PathLike, lin_path: str | os.PathLike | None = None):
        super().__init__()
        layers: list[torch.nn.Module] = []
        cin = 3
        for v in _VGG16:
            if v == "M":
                layers.append(torch.nn.MaxPool2d(2, 2))
            else:
                layers += [torch.nn.Conv2d(cin, v, 3, padding=1), torch.nn.ReLU()]
                cin = v
        self.features = torch.nn.Sequential(*layers)
        state = _torch_load(vgg_path, "VGG16 weights")
        wanted = {k: v for k, v in state.items() if k.startswith("features.")}
        try:
            self.load_state_dict(wanted, strict=True)
        except RuntimeError as exc:
            raise UserError(
                f"{vgg_path} is not torchvision's VGG16 weights (need features.0 ... features.28): "
                f"{str(exc).splitlines()[0]}"
            ) from None
        self.lin: list[torch.Tensor] | None = None
        if lin_path is not None:
            lin = _torch_load(lin_path, "LPIPS linear weights")
            try:
                self.lin = [lin[f"lin{i}.model.1.weight"].float().reshape(1, -1, 1, 1) for i in range(5)]
            except KeyError as exc:
                raise UserError(f"{lin_path} lacks the LPIPS key {exc}; expected lpips' vgg.pth") from None
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        if img.shape[2] > 256:  # VGG was trained at 224 px; larger images only cost time
            img = F.interpolate(img, size=(256, 256), mode="area")
        x = (img - self.shift) / self.scale
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                feats.append(_unit_channels(x))
                if i == _TAPS[-1]:
                    break
        return feats

    def distance(self, a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        total = 0
        for i, (x, y) in enumerate(zip(a, b)):
            d = (x - y).square()
            d = (d * self.lin[i].to(d.device)).sum(1) if self.lin is not None else d.sum(1)
            total = total + d.flatten(1).mean(1)
        return total


def _torch_load(path, what: str) -> dict:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{what}: {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, or one holding more than tensors
        raise UserError(f"{what}: cannot read {path} as plain tensors ({exc})") from None
    if not isinstance(state, dict):
        raise UserError(f"{what}: {path} holds a {type(state).__name__}, not a state_dict")
    return state
