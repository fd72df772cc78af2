"""Crop, rotate and scale a face the way a model's training data was aligned.

The FFHQ recipe (NVlabs/ffhq-dataset): from the eye centres and the mouth corners,

    eye_avg = (eye_l + eye_r) / 2            eye_to_eye = eye_r - eye_l
    mouth_avg = (mouth_l + mouth_r) / 2      eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - rot90(eye_to_mouth)     (the face's horizontal axis, from both cues)
    x = unit(x) * max(2.0 |eye_to_eye|, 1.8 |eye_to_mouth|)
    y = rot90(x);  centre = eye_avg + 0.1 eye_to_mouth

and the output square has corners centre -+ x -+ y. The three numbers (2.0, 1.8, 0.1) are an
`AlignTemplate`; the shipped toon models use their own (TOON), measured from the toon drawing
so a toon face lands where the training images had it. Pixels the square takes from outside
the photo are filled by mirroring the photo, blurred and faded towards its median colour (as
FFHQ does), so the model sees no hard black edge.

A crop box is the fallback (no face found, or not a face model): an axis-aligned square, same
resampling and padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import PIL.Image
import PIL.ImageFilter

from gan.errors import UserError

QUAD = PIL.Image.Transform.QUAD


@dataclass(frozen=True)
class AlignTemplate:
    name: str
    eye_scale: float  # half the output side, in eye distances (when larger than the mouth term)
    mouth_scale: float  # half the output side, in eye-to-mouth distances
    centre_shift: float  # output centre = eye midpoint + centre_shift * eye_to_mouth


FFHQ = AlignTemplate("ffhq", eye_scale=2.0, mouth_scale=1.8, centre_shift=0.1)
# The mean toon face (photo style, no pose; tests/gan/test_photo_align.py recomputes it): eye
# distance 0.193, eye-to-mouth 0.164 and eye midpoint y 0.455, in image units. So half the image
# is 2.6 eye distances and the centre lies 0.27 of the eye-to-mouth vector below the eyes. The
# mouth term only takes over when the eyes look closer together than in any toon face (eye-to-
# mouth above 1.15 eye distances, a turned head).
TOON = AlignTemplate("toon", eye_scale=2.6, mouth_scale=2.26, centre_shift=0.27)
TEMPLATES = {t.name: t for t in (FFHQ, TOON)}


@dataclass(eq=False)
class Aligned:
    image: np.ndarray  # uint8 [size, size, 3]
    quad: np.ndarray  # float64 [4, 2]: source-image corners of the output (top-left, bottom-left,
    #                   bottom-right, top-right)

    def to_output(self, points: np.ndarray) -> np.ndarray:
        """Source-image points -> output pixel coordinates (continuous, (0, 0) = top-left corner)."""
        size = self.image.shape[0]
        origin, down, right = self.quad[0], self.quad[1] - self.quad[0], self.quad[3] - self.quad[0]
        m = np.stack([right, down], axis=1) / size  # output unit vectors in source pixels
        return (np.linalg.solve(m, (np.asarray(points, np.float64) - origin).T)).T


def template_named(name: str) -> AlignTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise UserError(f"unknown alignment template {name!r}; choose {', '.join(TEMPLATES)}") from None


def template_for_model(metadata: dict) -> AlignTemplate:
    """The template a model's training data was aligned with: metadata["align_template"] when the
    model names one, TOON for models trained on our toon data sets (their data file is called
    toon*), otherwise FFHQ (NVIDIA's face models and most community ones)."""
    named = metadata.get("align_template")
    if isinstance(named, str) and named in TEMPLATES:
        return TEMPLATES[named]
    data = str(((metadata.get("training") or {}).get("config") or {}).get("data") or "")
    if data.replace("\\", "/").rsplit("/", 1)[-1].lower().startswith("toon"):
        return TOON
    return FFHQ


def face_quad(landmarks: np.ndarray, template: AlignTemplate = FFHQ) -> np.ndarray:
    """The output square's corners (see the module docstring) from 5 landmarks [5, 2] (left eye,
    right eye, nose, mouth left, mouth right)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (5, 2) or not np.isfinite(lm).all():
        raise UserError(f"expected 5 finite (x, y) landmarks, got shape {list(lm.shape)}")
    eye_l, eye_r, _, mouth_l, mouth_r = lm
    eye_avg = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    eye_to_mouth = (mouth_l + mouth_r) / 2 - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    norm = np.hypot(*x)
    if norm < 1e-6:
        raise UserError("the landmarks are degenerate (eyes and mouth on one spot); use a crop box")
    x = (
        x
        / norm
        * max(template.eye_scale * np.hypot(*eye_to_eye), template.mouth_scale * np.hypot(*eye_to_mouth))
    )
    y = np.array([-x[1], x[0]])
    c = eye_avg + template.centre_shift * eye_to_mouth
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def box_quad(x: float, y: float, size: float) -> np.ndarray:
    """The quad of an axis-aligned square crop box with its top-left corner at (x, y)."""
    if not size > 0 or not np.isfinite([x, y, size]).all():
        raise UserError(f"a crop box needs a positive size and finite position, got {x}, {y}, {size}")
    return np.array([[x, y], [x, y + size], [x + size, y + size], [x + size, y]], dtype=np.float64)


def align_face(
    image: np.ndarray, landmarks: np.ndarray, size: int, template: AlignTemplate = FFHQ
) -> Aligned:
    """The face with these landmarks, aligned by template, as a size x size image."""
    return warp_quad(image, face_quad(landmarks, template), size)


def crop_box(image: np.ndarray, x: float, y: float, box: float, size: int) -> Aligned:
    """The square (x, y, box) of image resampled to size x size (outside: mirrored and faded)."""
    return warp_quad(image, box_quad(x, y, box), size)


def centre_box(image: np.ndarray) -> tuple[float, float, float]:
    """The largest centred square: the default crop box."""
    h, w = np.asarray(image).shape[:2]
    side = min(h, w)
    return (w - side) / 2, (h - side) / 2, float(side)


def warp_quad(image: np.ndarray, quad: np.ndarray, size: int) -> Aligned:
    """Resample the quad (corners: top-left, bottom-left, bottom-right, top-right of the output)
    of image to size x size: shrink first when the quad is much larger than the output, pad
    outside pixels, then resample (see below)."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise UserError(f"alignment needs a uint8 [H, W, 3] image, got {img.dtype} {list(img.shape)}")
    if not 4 <= int(size) <= 4096:
        raise UserError(f"the output size must be from 4 to 4096 pixels, not {size}")
    size = int(size)
    quad = np.asarray(quad, dtype=np.float64).copy()
    original_quad = quad.copy()
    pil = PIL.Image.fromarray(img)
    side = float(np.hypot(*(quad[3] - quad[0])))

    # Shrink: reduce the photo so the quad is at most about twice the output (a box filter does
    # the averaging the bilinear quad sampling would skip).
    shrink = int(np.floor(side / size * 0.5))
    if shrink > 1:
        pil = pil.resize(
            (max(1, round(pil.width / shrink)), max(1, round(pil.height / shrink))), PIL.Image.Resampling.BOX
        )
        quad /= shrink
        side /= shrink

    # Crop to the quad plus a border, then pad where the quad leaves the photo.
    border = max(int(round(side * 0.1)), 3)
    lo = np.floor(quad.min(axis=0)).astype(int) - border
    hi = np.ceil(quad.max(axis=0)).astype(int) + border
    crop = (max(lo[0], 0), max(lo[1], 0), min(hi[0], pil.width), min(hi[1], pil.height))
    if crop[2] <= crop[0] or crop[3] <= crop[1]:
        raise UserError("the crop lies entirely outside the photo; move the crop box onto the picture")
    pil = pil.crop(crop)
    quad -= crop[:2]
    pad = (max(-lo[0], 0), max(-lo[1], 0), max(hi[0] - crop[2], 0), max(hi[1] - crop[3], 0))
    if max(pad) > 0:
        pil, offset = _pad_mirrored(pil, pad, side)
        quad += offset

    # Reducing: sample at up to 4x the output (bilinear), then reduce with a Lanczos filter, so
    # every source pixel counts. Same size or enlarging: sample once, bicubic (no extra blur).
    factor = int(min(4, max(1, np.ceil(side / size))))
    if factor == 1:
        out = pil.transform((size, size), QUAD, quad.flatten().tolist(), PIL.Image.Resampling.BICUBIC)
    else:
        big = factor * size
        out = pil.transform((big, big), QUAD, quad.flatten().tolist(), PIL.Image.Resampling.BILINEAR)
        out = out.resize((size, size), PIL.Image.Resampling.LANCZOS)
    return Aligned(image=np.asarray(out, dtype=np.uint8).copy(), quad=original_quad)


def _pad_mirrored(pil: PIL.Image.Image, pad: tuple[int, int, int, int], side: float):
    """pil grown by pad (left, top, right, bottom): mirrored content, blurred and faded to the
    median colour with the distance from the photo. Returns (image, (dx, dy) added to coordinates)."""
    a = np.asarray(pil, dtype=np.float32)
    h, w = a.shape[:2]
    # Mirroring needs at least one pixel; a pad larger than the image mirrors repeatedly.
    left, top, right, bottom = (int(max(p, round(side * 0.3))) if p > 0 else 0 for p in pad)
    padded = np.pad(a, ((top, bottom), (left, right), (0, 0)), mode="symmetric")
    ph, pw = padded.shape[:2]
    yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
    # 0 inside the photo, rising to 1 at the far edge of each padded side.
    fade = np.zeros((ph, pw), np.float32)
    if left:
        fade = np.maximum(fade, (left - xx) / left)
    if right:
        fade = np.maximum(fade, (xx - (left + w - 1)) / right)
    if top:
        fade = np.maximum(fade, (top - yy) / top)
    if bottom:
        fade = np.maximum(fade, (yy - (top + h - 1)) / bottom)
    fade = np.clip(fade, 0, 1)[:, :, None]
    blurred = np.asarray(
        PIL.Image.fromarray(np.clip(padded + 0.5, 0, 255).astype(np.uint8)).filter(
            PIL.ImageFilter.GaussianBlur(float(max(1.0, side * 0.02)))
        ),
        dtype=np.float32,
    )
    out = padded + (blurred - padded) * np.clip(fade * 3.0, 0, 1)
    out += (np.median(a.reshape(-1, 3), axis=0) - out) * fade
    return PIL.Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8)), np.array([left, top], np.float64)
