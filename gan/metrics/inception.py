"""The Inception-v3 feature network used for FID and KID, and where its weights come from.

This is the TensorFlow-ported "FID Inception" (the graph of `inception-2015-12-05` as
pytorch-fid runs it): torchvision's Inception-v3 layout with 1008 classes, no auxiliary head,
average pools that ignore padding, and a max pool in the last block. It returns the 2048-d
features of the final average pool. The weights are pytorch-fid's state dict
`pt_inception-2015-12-05-6726825d.pth`, found in this order: an explicit path (`--inception`,
or the environment variable GAN_INCEPTION_WEIGHTS), the cache directory, then a one-time
download from pytorch-fid's release page (sha256 checked, written atomically).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gan.errors import UserError
from gan.io.files import create_temp_file

OFFICIAL_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
OFFICIAL_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
# torch.hub convention: the digits after the last '-' are the start of the file's sha256.
OFFICIAL_SHA256_PREFIX = "6726825d"
ENV_VAR = "GAN_INCEPTION_WEIGHTS"


# ---------------------------------------------------------------------------------------------
# Network


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (TF epsilon 1e-3), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's 'SAME' average pool divides by the number of real (unpadded) inputs.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_3x3(x))
        return torch.cat([b1, b5, b3, bp], dim=1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], dim=1)


class InceptionC(nn.Module):
    """Factorised 7x7 convolutions."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_avg_pool_3x3(x))
        return torch.cat([b1, b7, bd, bp], dim=1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], dim=1)


class InceptionE(nn.Module):
    """Expanded filter bank. The TF graph's second E block pools with max instead of average."""

    def __init__(self, in_channels: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], dim=1)
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _avg_pool_3x3(x)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, bd, bp], dim=1)


class FIDInceptionV3(nn.Module):
    """Images in, 2048-d pool features out.

    Input: uint8 [N, C, H, W] (0..255) or float [N, C, H, W] in [0, 1]; C is 1 or 3.
    The image is resized to 299x299 (bilinear) and scaled to [-1, 1], as pytorch-fid does.
    `fc` is unused for features but part of the weights file, so it is kept for a strict load.
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)
        self.sha256 = ""  # digest of the weights file, set by load_inception (part of cache keys)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return x.mean(dim=(2, 3))


# ---------------------------------------------------------------------------------------------
# Weights: resolution, download, loading


def cache_dir() -> Path:
    """Where downloaded weights and cached data set statistics live."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "stylegan-explorer"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsSource:
    """Where to look for the Inception weights and how to fetch them.

    url: where to download from when no local file exists.
    filename: the file's name inside the cache directory.
    sha256_prefix: the expected digest (or its leading characters) of the downloaded file.
    cache: the cache directory (None: `cache_dir()`).
    allow_download: False never touches the network.
    timeout: seconds to wait for the server.
    """

    url: str = OFFICIAL_URL
    filename: str = OFFICIAL_FILENAME
    sha256_prefix: str = OFFICIAL_SHA256_PREFIX
    cache: Path | None = None
    allow_download: bool = True
    timeout: float = 30.0


def download_file(url: str, dest: Path, sha256_prefix: str, timeout: float = 30.0) -> Path:
    """Fetch url into dest atomically, refusing it unless its sha256 starts with sha256_prefix.

    Raises OSError / urllib.error.URLError on network failures and UserError on a bad checksum.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = create_temp_file(dest, suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if not actual.startswith(sha256_prefix.lower()):
            raise UserError(
                f"the file downloaded from {url} has sha256 {actual}, expected one starting with "
                f"{sha256_prefix}; it was discarded. Try again later or download it by hand."
            )
        os.replace(tmp_name, dest)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return dest


def resolve_weights(path: str | os.PathLike | None = None, source: WeightsSource | None = None) -> Path:
    """Find the Inception weights file: explicit path, $GAN_INCEPTION_WEIGHTS, cache, download."""
    source = source or WeightsSource()
    explicit = path or os.environ.get(ENV_VAR)
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            origin = "--inception" if path else f"${ENV_VAR}"
            raise UserError(f"Inception weights file {p} (from {origin}) does not exist.")
        return p

    cached = Path(source.cache or cache_dir()) / source.filename
    if cached.is_file():
        return cached

    how_to = f"Download {source.url} and save it as {cached}, or pass --inception PATH (or set ${ENV_VAR})."
    if not source.allow_download:
        raise UserError(f"the Inception weights for FID/KID are missing (not found at {cached}). {how_to}")
    try:
        return download_file(source.url, cached, source.sha256_prefix, source.timeout)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"the Inception weights for FID/KID are missing (not found at {cached}) and could not be "
            f"downloaded ({reason}). {how_to}"
        ) from exc


def load_inception(
    path: str | os.PathLike | None = None,
    source: WeightsSource | None = None,
    device: str | torch.device = "cpu",
) -> FIDInceptionV3:
    """Resolve the weights, load them strictly and return the network in eval mode."""
    source = source or WeightsSource()
    weights = resolve_weights(path, source)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or non-tensor files
        raise UserError(f"cannot read Inception weights {weights}: {exc}") from exc
    if not isinstance(state, dict):
        raise UserError(f"Inception weights {weights} do not hold a state dict")

    net = FIDInceptionV3()
    expected = net.state_dict()
    # Files written by old torch versions have no batch-norm step counters; torch fills them in.
    missing = sorted(k for k in expected if k not in state and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in expected)
    wrong_shape = sorted(
        k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong_shape:
        problems = (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape))
        parts = [
            f"{label} ({len(keys)}): {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
            for label, keys in problems
            if keys
        ]
        raise UserError(
            f"{weights} is not the FID Inception-v3 state dict ({OFFICIAL_FILENAME}): " + "; ".join(parts)
        )
    net.load_state_dict(state, strict=False)
    net.sha256 = file_sha256(weights)
    if not path and not os.environ.get(ENV_VAR) and not net.sha256.startswith(source.sha256_prefix):
        raise UserError(
            f"the cached Inception weights {weights} have sha256 {net.sha256}, expected one starting with "
            f"{source.sha256_prefix}. Delete the file so it is downloaded again."
        )
    return net.eval().requires_grad_(False).to(device)
