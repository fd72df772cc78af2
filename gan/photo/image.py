"""Open a photo for projection: JPEG, PNG or WebP, EXIF orientation applied, large images
shrunk first, always RGB uint8 [H, W, 3].

Every problem is a UserError saying what was wrong and what to do.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import PIL.Image
import PIL.ImageOps

from gan.errors import UserError

FORMATS = ("JPEG", "PNG", "WEBP", "MPO")  # MPO: multi-picture JPEG as phone cameras write them
DEFAULT_MAX_SIDE = 2048  # larger photos are shrunk to this (aligning needs far fewer pixels)
MAX_PIXELS = 200_000_000  # refuse anything larger before decoding (decompression bombs)
MIN_SIDE = 16


@dataclass(eq=False)
class Photo:
    image: np.ndarray  # uint8 [H, W, 3], upright
    source: str  # the file it came from
    original_size: tuple[int, int]  # (width, height) of the upright image before shrinking
    scale: float  # image pixels per original pixel (1.0 when not shrunk)


def photo_from_array(image: np.ndarray, source: str = "<array>") -> Photo:
    """A Photo of an image already in memory (uint8 [H, W, 3], or [H, W] grey, or RGBA)."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise UserError(f"{source}: the image must be uint8, not {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise UserError(f"{source}: expected an [H, W, 3] RGB image, got shape {list(a.shape)}")
    a = np.ascontiguousarray(a[:, :, :3])
    h, w = a.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise UserError(f"{source} is only {w}x{h} pixels; a photo needs at least {MIN_SIDE} on each side")
    return Photo(image=a, source=source, original_size=(w, h), scale=1.0)


def open_photo(path: str | os.PathLike, max_side: int = DEFAULT_MAX_SIDE) -> Photo:
    """Read a photo file. Its longer side is shrunk to max_side (area-averaging) if larger;
    transparent pixels are put on white."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist")
    if os.path.isdir(path):
        raise UserError(f"{path} is a folder; choose an image file (JPEG, PNG or WebP)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            im = PIL.Image.open(path)
    except PIL.Image.DecompressionBombWarning:
        raise UserError(f"{path} is too many pixels to open safely; shrink it first") from None
    except PIL.UnidentifiedImageError:
        raise UserError(f"{path} is not an image this program can read (use JPEG, PNG or WebP)") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    with im:
        if im.format not in FORMATS:
            raise UserError(
                f"{path} is a {im.format} image; open a JPEG, PNG or WebP photo (convert it first)"
            )
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise UserError(f"{path} is {w}x{h} pixels, more than this program opens; shrink it first")
        try:
            # EXIF orientations 5-8 turn the picture by 90 degrees: width and height swap.
            original = (h, w) if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)
            if im.format in ("JPEG", "MPO") and max(w, h) > 2 * max_side:
                # Let the JPEG decoder skip detail we would throw away (1/2, 1/4 or 1/8 scale).
                im.draft("RGB", (max_side, max_side))
            im.load()
            upright = PIL.ImageOps.exif_transpose(im)
        except (OSError, ValueError, SyntaxError) as exc:
            raise UserError(f"{path} is damaged or truncated and cannot be decoded: {exc}") from None
    rgb = _to_rgb(upright)
    if min(rgb.size) < MIN_SIDE:
        raise UserError(
            f"{path} is only {rgb.size[0]}x{rgb.size[1]} pixels; a photo needs at least {MIN_SIDE}"
        )
    if max(rgb.size) > max_side:
        f = max_side / max(rgb.size)
        size = (max(1, round(rgb.size[0] * f)), max(1, round(rgb.size[1] * f)))
        rgb = rgb.resize(size, PIL.Image.Resampling.BOX if f < 0.5 else PIL.Image.Resampling.LANCZOS)
    scale = rgb.size[0] / original[0]
    return Photo(
        image=np.asarray(rgb, dtype=np.uint8).copy(), source=path, original_size=original, scale=scale
    )


def _to_rgb(im: PIL.Image.Image) -> PIL.Image.Image:
    """RGB, with any transparency composited over white (16-bit and palette images included)."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if a.max() > 255 else 255.0
        return PIL.Image.fromarray(np.clip(a / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        white = PIL.Image.new("RGBA", im.size, (255, 255, 255, 255))
        return PIL.Image.alpha_composite(white, im).convert("RGB")
    return im.convert("RGB")
