"""Procedural "toon faces": the project's own face data set, in a photo and an anime style.

Every image is one random identity drawn in one style with a random pose. An identity (skin tone,
face shape, hair colour and style, eye colour, mouth, glasses, earrings, shirt, background) can
be drawn in either style, so the same person exists as a soft-shaded "photo" face (natural
proportions, small eyes, subtle nose shading) and as an "anime" face (flat cel colours, dark
outlines, large eyes with highlights, tiny nose, pointed chin). Pose: a small in-plane rotation
and translation of the head and shoulders in front of a fixed background.

Drawing happens at `supersample` times the output size and is reduced with a LANCZOS filter,
which anti-aliases every edge. Image `i` of a data set with seed `s` depends only on `(s, i)`
(`numpy.random.SeedSequence([s, i])`): the same command writes the same pixels, and image `i` has
the same identity and pose whatever `--styles` and `--count` are.

`dataset.json` written by `make_toon_dataset` (the official layout plus extra keys):

    labels          [[name, style], ...]  style domain as the class label: 0 photo, 1 anime
    class_names     ["photo", "anime"]
    attributes      [[name, {attribute: value}], ...], one dict per image with the keys
                      style        0 photo, 1 anime
                      skin_tone    0..4, light to dark (SKIN_TONES)
                      face_shape   0 oval, 1 round, 2 square, 3 heart (FACE_SHAPES; the jaw of
                                   the photo style; anime faces always end in a pointed chin)
                      hair_colour  0 black, 1 brown, 2 blonde, 3 red, 4 blue (HAIR_COLOURS)
                      hair_style   0 short, 1 bob, 2 long, 3 bun (HAIR_STYLES)
                      eye_colour   0 brown, 1 blue, 2 green, 3 grey (EYE_COLOURS)
                      mouth        0 smile, 1 neutral, 2 open (MOUTHS)
                      glasses      0 / 1
                      earrings     0 / 1
                      background   0 flat, 1 vertical gradient
                      rotate       head rotation in degrees (counter-clockwise)
                      translate    [x, y] head offset in units of the image size
    attribute_classes  {attribute: [class names]} for the class-valued attributes above
    toon            {"version", "seed", "resolution", "styles", "supersample"}
"""

from __future__ import annotations

import colorsys
import contextlib
import functools
import math
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import PIL.Image
import PIL.ImageChops
import PIL.ImageDraw
import PIL.ImageFilter

from gan.errors import Cancelled, UserError
from gan.progress import Progress

GENERATOR_VERSION = 1  # bump when the pictures change, so data sets record what drew them
STYLES = ("photo", "anime")
SKIN_TONES = ("very light", "light", "medium", "tan", "dark")
FACE_SHAPES = ("oval", "round", "square", "heart")
HAIR_COLOURS = ("black", "brown", "blonde", "red", "blue")
HAIR_STYLES = ("short", "bob", "long", "bun")
EYE_COLOURS = ("brown", "blue", "green", "grey")
MOUTHS = ("smile", "neutral", "open")
ATTRIBUTE_CLASSES = {
    "style": list(STYLES),
    "skin_tone": list(SKIN_TONES),
    "face_shape": list(FACE_SHAPES),
    "hair_colour": list(HAIR_COLOURS),
    "hair_style": list(HAIR_STYLES),
    "eye_colour": list(EYE_COLOURS),
    "mouth": list(MOUTHS),
    "glasses": ["no", "yes"],
    "earrings": ["no", "yes"],
    "background": ["flat", "gradient"],
}

_SKIN_RGB = ((255, 226, 204), (238, 192, 158), (209, 156, 112), (166, 112, 74), (104, 66, 44))
# (photo, anime): anime palettes are brighter and more saturated.
_HAIR_RGB = (
    ((34, 28, 28), (40, 36, 52)),
    ((104, 64, 34), (128, 78, 40)),
    ((222, 186, 110), (250, 214, 120)),
    ((164, 54, 30), (214, 64, 44)),
    ((46, 80, 170), (60, 110, 230)),
)
_EYE_RGB = ((96, 58, 30), (58, 108, 190), (56, 136, 76), (118, 124, 134))
_LIP_RGB = (190, 96, 96)
_OUTLINE = (34, 24, 30)
_MAX_ROTATE = 12.0  # degrees
_MAX_TRANSLATE = 0.06  # image sizes
_MARGIN = 0.22  # the head layer extends this far (image sizes) beyond the picture on every side


@dataclass(frozen=True)
class ToonIdentity:
    """Who is drawn: everything except the style and the pose. Colours are RGB 0..255."""

    skin_tone: int  # index into SKIN_TONES
    skin: tuple[int, int, int]
    face_shape: int  # index into FACE_SHAPES
    face_width: float  # half width of the face, image sizes
    face_height: float  # half height of the face, image sizes
    hair_colour: int  # index into HAIR_COLOURS
    hair_jitter: tuple[int, int, int]  # added to the palette colour of the style
    hair_style: int  # index into HAIR_STYLES
    parting: float  # -1..1: where the fringe parts (left .. right)
    eye_colour: int  # index into EYE_COLOURS
    eye_spacing: float  # 0..1 jitter of the eye distance
    mouth: int  # index into MOUTHS
    glasses: bool
    glasses_rgb: tuple[int, int, int]
    earrings: bool
    shirt: tuple[int, int, int]
    background: int  # 0 flat, 1 gradient
    bg_top: tuple[int, int, int]
    bg_bottom: tuple[int, int, int]

    def attributes(self) -> dict:
        return {
            "skin_tone": self.skin_tone,
            "face_shape": self.face_shape,
            "hair_colour": self.hair_colour,
            "hair_style": self.hair_style,
            "eye_colour": self.eye_colour,
            "mouth": self.mouth,
            "glasses": int(self.glasses),
            "earrings": int(self.earrings),
            "background": self.background,
        }


@dataclass(frozen=True)
class ToonPose:
    rotate: float = 0.0  # degrees, counter-clockwise
    translate: tuple[float, float] = (0.0, 0.0)  # (x, y) in image sizes


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def _jitter(rgb, rng: np.random.Generator, amount: int) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def sample_identity(rng: np.random.Generator) -> ToonIdentity:
    skin_tone = int(rng.integers(len(SKIN_TONES)))
    face_shape = int(rng.integers(len(FACE_SHAPES)))
    width = float(rng.uniform(0.2, 0.225)) * (1.06 if face_shape in (1, 2) else 1.0)
    height = float(rng.uniform(0.255, 0.28)) * (0.94 if face_shape == 1 else 1.0)
    bg_hue = float(rng.uniform())
    bg_top = _hsv(bg_hue, float(rng.uniform(0.15, 0.5)), float(rng.uniform(0.55, 0.95)))
    bg_bottom = _hsv(
        bg_hue + float(rng.uniform(-0.12, 0.12)), float(rng.uniform(0.2, 0.6)), float(rng.uniform(0.35, 0.8))
    )
    return ToonIdentity(
        skin_tone=skin_tone,
        skin=_jitter(_SKIN_RGB[skin_tone], rng, 8),
        face_shape=face_shape,
        face_width=width,
        face_height=height,
        hair_colour=int(rng.integers(len(HAIR_COLOURS))),
        hair_jitter=tuple(int(x) for x in rng.integers(-12, 13, size=3)),
        hair_style=int(rng.integers(len(HAIR_STYLES))),
        parting=float(rng.uniform(-1, 1)),
        eye_colour=int(rng.integers(len(EYE_COLOURS))),
        eye_spacing=float(rng.uniform()),
        mouth=int(rng.integers(len(MOUTHS))),
        glasses=bool(rng.uniform() < 0.3),
        glasses_rgb=_hsv(float(rng.uniform()), float(rng.uniform(0.0, 0.7)), float(rng.uniform(0.1, 0.45))),
        earrings=bool(rng.uniform() < 0.25),
        shirt=_hsv(float(rng.uniform()), float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.3, 0.9))),
        background=int(rng.uniform() < 0.5),
        bg_top=bg_top,
        bg_bottom=bg_bottom,
    )


def sample_pose(rng: np.random.Generator) -> ToonPose:
    rotate = float(rng.uniform(-_MAX_ROTATE, _MAX_ROTATE))
    tx, ty = (float(v) for v in rng.uniform(-_MAX_TRANSLATE, _MAX_TRANSLATE, size=2))
    return ToonPose(rotate=rotate, translate=(tx, ty))


def image_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def sample_image(
    seed: int, index: int, styles: tuple[str, ...] = STYLES
) -> tuple[ToonIdentity, ToonPose, str]:
    """Identity, pose and style of image `index` of a data set with `seed`."""
    rng = image_rng(seed, index)
    identity = sample_identity(rng)
    pose = sample_pose(rng)
    style = styles[int(rng.integers(len(styles)))] if len(styles) > 1 else styles[0]
    return identity, pose, style


# --- drawing ---------------------------------------------------------------------------------


def _scale(rgb, f: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(round(c * f), 0, 255)) for c in rgb)


def _mix(a, b, t: float) -> tuple[int, int, int]:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


class _Layer:
    """An RGBA layer addressed in image units: (0, 0) is the top-left, (1, 1) the bottom-right
    of the final picture; the layer extends _MARGIN beyond it on every side."""

    def __init__(self, k: float):
        self.k = k  # pixels per image unit
        self.size = round(k * (1 + 2 * _MARGIN))
        self.img = PIL.Image.new("RGBA", (self.size, self.size), (0, 0, 0, 0))
        self.draw = PIL.ImageDraw.Draw(self.img)

    def p(self, x: float, y: float) -> tuple[float, float]:
        return ((x + _MARGIN) * self.k, (y + _MARGIN) * self.k)

    def pts(self, points) -> list[tuple[float, float]]:
        return [self.p(x, y) for x, y in points]

    def w(self, width: float) -> int:
        return max(1, round(width * self.k))

    def box(self, cx: float, cy: float, rx: float, ry: float) -> list[float]:
        (x0, y0), (x1, y1) = self.p(cx - rx, cy - ry), self.p(cx + rx, cy + ry)
        return [x0, y0, x1, y1]

    def mask(self) -> tuple[PIL.Image.Image, PIL.ImageDraw.ImageDraw]:
        m = PIL.Image.new("L", self.img.size, 0)
        return m, PIL.ImageDraw.Draw(m)

    def paint(
        self, rgb, mask: PIL.Image.Image, blur: float = 0.0, clip: PIL.Image.Image | None = None
    ) -> None:
        """Paint rgb through mask (optionally blurred by `blur` image units, clipped by `clip`)."""
        box = mask.getbbox()
        if box is None:
            return
        if blur > 0:
            # Blur and composite only around what the mask covers: most of the layer is empty.
            r = math.ceil(3 * blur * self.k)
            x0, y0, x1, y1 = box
            box = (max(0, x0 - r), max(0, y0 - r), min(self.size, x1 + r), min(self.size, y1 + r))
            mask = mask.crop(box).filter(PIL.ImageFilter.GaussianBlur(blur * self.k))
        else:
            mask = mask.crop(box)
        if clip is not None:
            mask = PIL.ImageChops.multiply(mask, clip.crop(box))
        region = self.img.crop(box)
        colour = PIL.Image.new("RGBA", region.size, (*rgb, 255))
        self.img.paste(PIL.Image.composite(colour, region, mask), box[:2])


def _ellipse_pts(cx, cy, rx, ry, t0=0.0, t1=2 * math.pi, n=48) -> list[tuple[float, float]]:
    ts = np.linspace(t0, t1, n)
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in ts]


def _face_outline(
    ident: ToonIdentity, style: str, cx: float, cy: float, n: int = 72
) -> list[tuple[float, float]]:
    """Closed outline of the face, clockwise from the right cheek (image units, y down)."""
    fw, fh = ident.face_width, ident.face_height
    pts = []
    for t in np.linspace(0, 2 * math.pi, n, endpoint=False):
        s, c = math.sin(t), math.cos(t)
        if s < 0:  # upper half: the skull, round for every shape
            x, y = fw * c, fh * 0.92 * s
        elif style == "anime":
            # Round cheeks down to half the height, then nearly straight lines into a pointed chin.
            h = math.sqrt(1 - s * s) if s < 0.5 else math.sqrt(0.75) * ((1 - s) / 0.5) ** 0.85
            x, y = fw * math.copysign(h, c), fh * 1.05 * s
        else:
            taper = {0: 0.3, 1: 0.12, 2: 0.08, 3: 0.45}[ident.face_shape]
            power = {0: 2.0, 1: 2.0, 2: 4.5, 3: 1.6}[ident.face_shape]
            # Superellipse lower half; the jaw narrows towards the chin by `taper`.
            cx_ = math.copysign(abs(c) ** (2 / power), c)
            x = fw * cx_ * (1 - taper * s**2)
            y = fh * s
        pts.append((cx + x, cy + y))
    return pts


def render_toon(
    identity: ToonIdentity,
    style: str,
    pose: ToonPose = ToonPose(),
    resolution: int = 64,
    supersample: int | None = None,
) -> PIL.Image.Image:
    """One toon face as an RGB image of resolution x resolution pixels."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, not {style!r}")
    ss = supersample if supersample is not None else default_supersample(resolution)
    k = resolution * ss
    layer = _Layer(k)
    anime = style == "anime"
    _draw_head(layer, identity, anime)
    head = layer.img
    # Pose: rotate about the face centre and move; the background stays where it is.
    centre = layer.p(0.5, 0.5)
    dx, dy = pose.translate[0] * k, pose.translate[1] * k
    head = head.rotate(pose.rotate, resample=PIL.Image.BICUBIC, center=centre, translate=(dx, dy))
    off = round(_MARGIN * k)
    head = head.crop((off, off, off + k, off + k))
    canvas = _background(identity, k, anime)
    canvas.alpha_composite(head)
    out = canvas.convert("RGB")
    if not anime:
        out = out.filter(PIL.ImageFilter.GaussianBlur(0.35 * ss))  # a camera is never perfectly sharp
    return out.resize((resolution, resolution), PIL.Image.LANCZOS)


def default_supersample(resolution: int) -> int:
    return int(min(4, max(2, 512 // max(resolution, 1))))


def _background(ident: ToonIdentity, k: int, anime: bool) -> PIL.Image.Image:
    if ident.background == 0:
        return PIL.Image.new("RGBA", (k, k), (*ident.bg_top, 255))
    t = np.linspace(0.0, 1.0, k, dtype=np.float32)[:, None, None]
    top, bottom = np.array(ident.bg_top, np.float32), np.array(ident.bg_bottom, np.float32)
    if anime:  # cel look: a few flat bands instead of a smooth ramp
        t = np.floor(t * 4) / 3
    rows = (top + (bottom - top) * t).astype(np.uint8)
    arr = np.concatenate([np.broadcast_to(rows, (k, k, 3)), np.full((k, k, 1), 255, np.uint8)], axis=2)
    return PIL.Image.fromarray(np.ascontiguousarray(arr), "RGBA")


def _draw_head(L: _Layer, ident: ToonIdentity, anime: bool) -> None:
    cx, cy = 0.5, 0.45
    fw, fh = ident.face_width, ident.face_height
    skin = ident.skin
    hair = tuple(
        int(np.clip(c + j, 0, 255))
        for c, j in zip(_HAIR_RGB[ident.hair_colour][int(anime)], ident.hair_jitter)
    )
    ol = _OUTLINE if anime else None
    olw = L.w(0.011) if anime else 0
    shade = _scale(skin, 0.82)

    # Back hair, behind everything.
    back = _back_hair(ident, cx, cy)
    if back:
        L.draw.polygon(L.pts(back), fill=hair, outline=ol, width=olw)

    # Shoulders and neck.
    sh = [
        (cx - 0.42, 1.3),
        (cx - 0.4, cy + fh + 0.15),
        (cx - 0.22, cy + fh + 0.07),
        (cx + 0.22, cy + fh + 0.07),
        (cx + 0.4, cy + fh + 0.15),
        (cx + 0.42, 1.3),
    ]
    L.draw.polygon(L.pts(sh), fill=ident.shirt, outline=ol, width=olw)
    neck = [
        (cx - fw * 0.45, cy + fh * 0.5),
        (cx + fw * 0.45, cy + fh * 0.5),
        (cx + fw * 0.5, cy + fh + 0.09),
        (cx - fw * 0.5, cy + fh + 0.09),
    ]
    L.draw.polygon(L.pts(neck), fill=skin, outline=ol, width=olw)
    collar = _ellipse_pts(cx, cy + fh + 0.08, fw * 0.62, 0.05, 0, math.pi)
    L.draw.polygon(L.pts(collar), fill=skin, outline=None)
    if anime:
        L.draw.line(L.pts(collar), fill=ol, width=olw)
        # Cel shadow under the chin.
        L.draw.polygon(
            L.pts(
                [
                    (cx - fw * 0.47, cy + fh * 0.75),
                    (cx + fw * 0.47, cy + fh * 0.75),
                    (cx + fw * 0.48, cy + fh + 0.03),
                    (cx, cy + fh + 0.06),
                    (cx - fw * 0.48, cy + fh + 0.03),
                ]
            ),
            fill=shade,
        )
    else:
        m, d = L.mask()
        d.ellipse(L.box(cx, cy + fh * 0.95, fw * 0.7, fh * 0.22), fill=200)
        nm, nd = L.mask()
        nd.polygon(L.pts(neck), fill=255)
        L.paint(_scale(skin, 0.72), m, blur=0.03, clip=nm)

    # Ears.
    for side in (-1, 1):
        ex = cx + side * fw * 0.98
        L.draw.ellipse(L.box(ex, cy + 0.02, 0.028, 0.048), fill=skin, outline=ol, width=olw)
        if ident.earrings:
            ring = (232, 190, 60)
            ry = cy + 0.085
            if anime:
                L.draw.ellipse(L.box(ex, ry, 0.014, 0.014), fill=ring, outline=ol, width=max(1, olw // 2))
            else:
                L.draw.ellipse(L.box(ex, ry, 0.012, 0.012), fill=ring)
                L.draw.ellipse(L.box(ex - 0.004, ry - 0.004, 0.004, 0.004), fill=(255, 240, 190))

    # Face.
    outline = _face_outline(ident, "anime" if anime else "photo", cx, cy)
    L.draw.polygon(L.pts(outline), fill=skin, outline=ol, width=olw)
    face_mask, fd = L.mask()
    fd.polygon(L.pts(outline), fill=255)
    if not anime:
        # Soft shading: darker towards the edge of the face, a light forehead and cheeks.
        m, d = L.mask()
        d.polygon(L.pts(outline), fill=255)
        inner = _face_outline(ident, "photo", cx, cy - 0.01)
        d.polygon(L.pts([(cx + (x - cx) * 0.8, cy + (y - cy) * 0.82) for x, y in inner]), fill=0)
        L.paint(_scale(skin, 0.8), m, blur=0.035, clip=face_mask)
        m, d = L.mask()
        d.ellipse(L.box(cx, cy - fh * 0.45, fw * 0.5, fh * 0.2), fill=110)
        L.paint(_scale(skin, 1.08), m, blur=0.04, clip=face_mask)
        m, d = L.mask()
        for side in (-1, 1):
            d.ellipse(L.box(cx + side * fw * 0.55, cy + fh * 0.3, fw * 0.2, fh * 0.1), fill=90)
        L.paint(_mix(skin, (230, 100, 100), 0.5), m, blur=0.03, clip=face_mask)
    else:
        # Blush: two flat pink ellipses with hatch lines.
        blush = _mix(skin, (255, 120, 130), 0.4)
        for side in (-1, 1):
            bx, by = cx + side * fw * 0.55, cy + fh * 0.36
            L.draw.ellipse(L.box(bx, by, fw * 0.17, fh * 0.055), fill=blush)

    _draw_eyes(L, ident, cx, cy, anime)
    _draw_nose(L, ident, cx, cy, anime, face_mask)
    _draw_mouth(L, ident, cx, cy, anime)
    _draw_front_hair(L, ident, cx, cy, hair, anime, face_mask)
    if ident.glasses:
        _draw_glasses(L, ident, cx, cy, anime)


def _back_hair(ident: ToonIdentity, cx: float, cy: float) -> list[tuple[float, float]] | None:
    fw, fh = ident.face_width, ident.face_height
    top = _ellipse_pts(cx, cy - fh * 0.05, fw * 1.22, fh * 1.1, math.pi, 2 * math.pi, 32)
    style = HAIR_STYLES[ident.hair_style]
    if style == "short":
        return top + [(cx + fw * 1.12, cy + 0.02), (cx - fw * 1.12, cy + 0.02)]
    if style == "bob":
        return top + [
            (cx + fw * 1.28, cy + fh * 0.75),
            (cx + fw * 0.9, cy + fh * 0.85),
            (cx - fw * 0.9, cy + fh * 0.85),
            (cx - fw * 1.28, cy + fh * 0.75),
        ]
    if style == "long":
        return top + [
            (cx + fw * 1.4, cy + fh * 1.3),
            (cx + fw * 1.5, cy + fh + 0.2),
            (cx - fw * 1.5, cy + fh + 0.2),
            (cx - fw * 1.4, cy + fh * 1.3),
        ]
    # bun: short hair plus a knot on top
    knot = _ellipse_pts(cx, cy - fh * 1.15, fw * 0.55, fh * 0.33, math.pi * 0.85, math.pi * 2.15, 24)
    return top[:12] + knot + top[20:] + [(cx + fw * 1.12, cy + 0.0), (cx - fw * 1.12, cy + 0.0)]


def _draw_eyes(L: _Layer, ident: ToonIdentity, cx: float, cy: float, anime: bool) -> None:
    fw, fh = ident.face_width, ident.face_height
    iris = _EYE_RGB[ident.eye_colour]
    spacing = fw * (0.4 + 0.08 * ident.eye_spacing) + (0.05 * fw if anime else 0)
    for side in (-1, 1):
        ex = cx + side * spacing
        if anime:
            ey = cy + fh * 0.12
            rx, ry = fw * 0.25, fh * 0.22
            L.draw.ellipse(L.box(ex, ey, rx, ry), fill=(255, 255, 255), outline=_OUTLINE, width=L.w(0.006))
            # Iris: a tall ellipse, darker at the top (flat two-tone), with a black pupil.
            L.draw.ellipse(L.box(ex, ey + ry * 0.08, rx * 0.78, ry * 0.9), fill=iris)
            L.draw.chord(L.box(ex, ey + ry * 0.08, rx * 0.78, ry * 0.9), 180, 360, fill=_scale(iris, 0.6))
            L.draw.ellipse(L.box(ex, ey + ry * 0.15, rx * 0.36, ry * 0.45), fill=(20, 14, 20))
            # Highlights.
            L.draw.ellipse(
                L.box(ex - side * rx * 0.28, ey - ry * 0.28, rx * 0.26, ry * 0.2), fill=(255, 255, 255)
            )
            L.draw.ellipse(
                L.box(ex + side * rx * 0.3, ey + ry * 0.45, rx * 0.12, ry * 0.09), fill=(255, 255, 255)
            )
            # Thick upper lash line with a flick at the outer corner.
            lash = _ellipse_pts(ex, ey, rx * 1.08, ry * 1.02, math.pi * 1.05, math.pi * 1.95, 20)
            L.draw.line(L.pts(lash), fill=_OUTLINE, width=L.w(0.018), joint="curve")
            outer = (ex + side * rx * 1.05, ey - ry * 0.35)
            L.draw.line(
                L.pts([outer, (ex + side * rx * 1.35, ey - ry * 0.6)]), fill=_OUTLINE, width=L.w(0.012)
            )
            # Brow: a thin short arc high above the eye.
            brow = _ellipse_pts(ex, ey - ry * 1.45, rx * 0.9, ry * 0.3, math.pi * 1.15, math.pi * 1.85, 10)
            L.draw.line(L.pts(brow), fill=_OUTLINE, width=L.w(0.007))
        else:
            ey = cy + fh * 0.02
            rx, ry = fw * 0.19, fh * 0.065
            almond = _ellipse_pts(ex, ey, rx, ry, 0, 2 * math.pi, 32)
            almond = [(x, ey + (y - ey) * (1.25 if y < ey else 0.85)) for x, y in almond]
            L.draw.polygon(L.pts(almond), fill=(240, 236, 232))
            L.draw.ellipse(L.box(ex, ey, ry * 1.05, ry * 1.05), fill=iris)
            L.draw.ellipse(L.box(ex, ey, ry * 0.45, ry * 0.45), fill=(18, 14, 14))
            L.draw.ellipse(L.box(ex - ry * 0.35, ey - ry * 0.35, ry * 0.18, ry * 0.18), fill=(250, 250, 250))
            upper = [pt for pt in almond if pt[1] <= ey]
            upper.sort()
            L.draw.line(L.pts(upper), fill=_scale(ident.skin, 0.35), width=L.w(0.006), joint="curve")
            # Lid crease and brow.
            crease = _ellipse_pts(ex, ey - ry * 0.2, rx * 1.05, ry * 2.0, math.pi * 1.15, math.pi * 1.85, 12)
            L.draw.line(L.pts(crease), fill=_scale(ident.skin, 0.75), width=L.w(0.004))
            brow_rgb = _mix(_HAIR_RGB[ident.hair_colour][0], ident.skin, 0.3)
            brow = _ellipse_pts(ex, ey - ry * 2.2, rx * 1.25, ry * 1.5, math.pi * 1.1, math.pi * 1.9, 12)
            L.draw.line(L.pts(brow), fill=brow_rgb, width=L.w(0.012), joint="curve")


def _draw_nose(L: _Layer, ident: ToonIdentity, cx: float, cy: float, anime: bool, face_mask) -> None:
    fw, fh = ident.face_width, ident.face_height
    if anime:
        ny = cy + fh * 0.42
        L.draw.line(
            L.pts([(cx + fw * 0.02, ny - fh * 0.05), (cx - fw * 0.03, ny)]),
            fill=_scale(ident.skin, 0.6),
            width=L.w(0.006),
        )
        return
    # Photo: a soft shadow along one side of the bridge and under the tip, a highlight on the tip.
    m, d = L.mask()
    d.line(
        L.pts([(cx - fw * 0.1, cy + fh * 0.05), (cx - fw * 0.12, cy + fh * 0.38)]), fill=150, width=L.w(0.018)
    )
    d.ellipse(L.box(cx, cy + fh * 0.47, fw * 0.2, fh * 0.05), fill=170)
    L.paint(_scale(ident.skin, 0.7), m, blur=0.012, clip=face_mask)
    m, d = L.mask()
    d.ellipse(L.box(cx + fw * 0.02, cy + fh * 0.38, fw * 0.07, fh * 0.05), fill=120)
    L.paint(_scale(ident.skin, 1.1), m, blur=0.008, clip=face_mask)
    for side in (-1, 1):
        L.draw.ellipse(
            L.box(cx + side * fw * 0.1, cy + fh * 0.47, fw * 0.045, fh * 0.02), fill=_scale(ident.skin, 0.55)
        )


def _draw_mouth(L: _Layer, ident: ToonIdentity, cx: float, cy: float, anime: bool) -> None:
    fw, fh = ident.face_width, ident.face_height
    kind = MOUTHS[ident.mouth]
    if anime:
        my, mw = cy + fh * 0.66, fw * 0.2
        if kind == "open":
            # A "D" lying on its back: flat top, round bottom.
            pts = _ellipse_pts(cx, my - fh * 0.02, mw, fh * 0.12, 0, math.pi, 16)
            L.draw.polygon(L.pts(pts), fill=(150, 40, 50), outline=_OUTLINE, width=L.w(0.006))
            L.draw.chord(L.box(cx, my + fh * 0.08, mw * 0.55, fh * 0.04), 180, 360, fill=(235, 110, 120))
        elif kind == "smile":
            arc = _ellipse_pts(cx, my - fh * 0.05, mw, fh * 0.07, math.pi * 0.15, math.pi * 0.85, 12)
            L.draw.line(L.pts(arc), fill=_OUTLINE, width=L.w(0.008), joint="curve")
        else:
            L.draw.line(L.pts([(cx - mw * 0.6, my), (cx + mw * 0.6, my)]), fill=_OUTLINE, width=L.w(0.008))
        return
    my, mw = cy + fh * 0.66, fw * 0.36
    lip = _mix(_LIP_RGB, ident.skin, 0.35)
    if kind == "open":
        L.draw.ellipse(L.box(cx, my, mw * 0.8, fh * 0.09), fill=lip)
        L.draw.ellipse(L.box(cx, my, mw * 0.62, fh * 0.055), fill=(70, 24, 28))
        L.draw.chord(L.box(cx, my - fh * 0.02, mw * 0.55, fh * 0.04), 180, 360, fill=(236, 232, 226))
    else:
        curve = 0.05 if kind == "smile" else 0.0
        upper = [
            (cx + mw * t, my - fh * (0.035 + 0.02 * math.cos(t * 3.0)) - fh * curve * t * t)
            for t in np.linspace(-1, 1, 15)
        ]
        lower = [
            (cx + mw * t, my + fh * 0.05 * (1 - t * t) - fh * curve * t * t) for t in np.linspace(1, -1, 15)
        ]
        L.draw.polygon(L.pts(upper + lower), fill=lip)
        line = [(cx + mw * t, my - fh * curve * t * t) for t in np.linspace(-1, 1, 15)]
        L.draw.line(L.pts(line), fill=_scale(lip, 0.55), width=L.w(0.004), joint="curve")


def _draw_front_hair(
    L: _Layer, ident: ToonIdentity, cx: float, cy: float, hair, anime: bool, face_mask
) -> None:
    fw, fh = ident.face_width, ident.face_height
    style = HAIR_STYLES[ident.hair_style]
    # The cap over the skull, then a fringe whose lower edge depends on the style.
    cap = _ellipse_pts(cx, cy - fh * 0.05, fw * 1.16, fh * 1.04, math.pi * 1.0, math.pi * 2.0, 32)
    part = cx + ident.parting * fw * 0.5
    fringe_y = cy - fh * (0.42 if style != "long" else 0.38)
    if anime:
        # Spiky bangs: a zig-zag of points hanging over the forehead.
        n = 7
        xs = np.linspace(cx + fw * 1.12, cx - fw * 1.12, n * 2 + 1)
        edge = []
        for i, x in enumerate(xs):
            rel = (x - cx) / fw
            base = fringe_y + fh * 0.12 * (abs(rel) ** 2) * 1.8
            if i % 2 == 1:
                edge.append((x, base + fh * (0.16 + 0.04 * math.sin(i * 1.7 + ident.parting * 3))))
            else:
                edge.append((x, base - fh * 0.08))
        edge[0] = (cx + fw * 1.14, cy + fh * 0.2)
        edge[-1] = (cx - fw * 1.14, cy + fh * 0.2)
        poly = cap + edge
        L.draw.polygon(L.pts(poly), fill=hair, outline=_OUTLINE, width=L.w(0.011))
        # Cel shadow of the bangs on the forehead.
        sh = [(x, y + fh * 0.06) for x, y in edge[1:-1]]
        m, d = L.mask()
        d.polygon(L.pts(sh + [(x, y) for x, y in edge[-2:0:-1]]), fill=255)
        L.paint(_scale(ident.skin, 0.82), m, clip=PIL.ImageChops.subtract(face_mask, _poly_mask(L, poly)))
        # Shine band: a lighter arc across the top of the hair.
        band = _ellipse_pts(cx, cy - fh * 0.2, fw * 0.85, fh * 0.62, math.pi * 1.2, math.pi * 1.8, 16)
        L.draw.line(L.pts(band), fill=_mix(hair, (255, 255, 255), 0.45), width=L.w(0.018), joint="curve")
        return
    # Photo: a smooth sweep from the parting, soft gradient and a few strands.
    edge = []
    for t in np.linspace(1, -1, 25):
        x = cx + fw * 1.14 * t
        sweep = fh * 0.14 * (1 - abs(t - ident.parting * 0.5)) if abs(t - ident.parting * 0.5) < 1 else 0
        y = fringe_y + fh * 0.45 * abs(t) ** 3 + sweep
        edge.append((x, y))
    edge[0] = (cx + fw * 1.16, cy + fh * 0.1)
    edge[-1] = (cx - fw * 1.16, cy + fh * 0.1)
    poly = cap + edge
    m = _poly_mask(L, poly)
    L.paint(hair, m, blur=0.003)
    # Light from the top: a soft highlight on the crown, shadow at the edge of the fringe.
    hl, d = L.mask()
    d.ellipse(L.box(cx + ident.parting * fw * 0.2, cy - fh * 0.85, fw * 0.6, fh * 0.18), fill=140)
    L.paint(_mix(hair, (255, 255, 255), 0.35), hl, blur=0.03, clip=m)
    m2, d = L.mask()
    d.line(L.pts(edge), fill=255, width=L.w(0.03))
    L.paint(_scale(ident.skin, 0.7), m2, blur=0.015, clip=PIL.ImageChops.subtract(face_mask, m))
    for i in range(6):
        t0 = -0.8 + 0.32 * i
        crown = (part + fw * t0 * 0.3, cy - fh * 0.9)
        strand = [crown, (cx + fw * t0, cy - fh * 0.7), (cx + fw * t0 * 1.1, fringe_y)]
        L.draw.line(L.pts(strand), fill=_scale(hair, 0.86), width=L.w(0.003), joint="curve")


def _poly_mask(L: _Layer, poly) -> PIL.Image.Image:
    m, d = L.mask()
    d.polygon(L.pts(poly), fill=255)
    return m


def _draw_glasses(L: _Layer, ident: ToonIdentity, cx: float, cy: float, anime: bool) -> None:
    fw, fh = ident.face_width, ident.face_height
    spacing = fw * (0.4 + 0.08 * ident.eye_spacing) + (0.05 * fw if anime else 0)
    ey = cy + fh * (0.12 if anime else 0.02)
    rx, ry = (fw * 0.36, fh * 0.3) if anime else (fw * 0.3, fh * 0.16)
    width = L.w(0.012 if anime else 0.008)
    frame = _OUTLINE if anime else ident.glasses_rgb
    for side in (-1, 1):
        box = L.box(cx + side * spacing, ey, rx, ry)
        L.draw.rounded_rectangle(box, radius=min(rx, ry) * L.k * 0.6, outline=frame, width=width)
        L.draw.line(
            L.pts([(cx + side * (spacing + rx), ey - ry * 0.5), (cx + side * fw * 1.0, ey - ry * 0.7)]),
            fill=frame,
            width=width,
        )
    L.draw.arc(L.box(cx, ey - ry * 0.1, spacing - rx, fh * 0.06), 200, 340, fill=frame, width=width)


# --- data set --------------------------------------------------------------------------------


@dataclass
class ToonConfig:
    """Options of `gan dataset toon` (and of `make_toon_dataset`)."""

    out: str = field(metadata={"help": "output: a .zip file, or otherwise a folder"})
    count: int = field(default=10000, metadata={"help": "number of images"})
    resolution: int = field(default=64, metadata={"help": "image size in pixels (a power of two, 16..1024)"})
    seed: int = field(default=0, metadata={"help": "random seed; image i depends only on (seed, i)"})
    styles: tuple[str, ...] = field(
        default=STYLES, metadata={"help": "styles to draw, each image picks one at random: photo, anime"}
    )
    supersample: int | None = field(
        default=None,
        metadata={"help": "draw at this many times the size (1..8); default 4 up to 128 px, then 2"},
    )
    workers: int = field(
        default=1, metadata={"help": "processes drawing in parallel; the output is the same for any number"}
    )
    force: bool = field(default=False, metadata={"help": "replace an existing output"})

    def validate(self) -> None:
        if self.count < 1:
            raise UserError(f"--count must be at least 1, not {self.count}")
        if self.resolution < 16 or self.resolution > 1024 or self.resolution & (self.resolution - 1):
            raise UserError(f"--resolution must be a power of two from 16 to 1024, not {self.resolution}")
        if not self.styles:
            raise UserError("--styles must name at least one of: photo, anime")
        bad = [s for s in self.styles if s not in STYLES]
        if bad:
            raise UserError(f"--styles: unknown style(s) {', '.join(bad)}; choose from {', '.join(STYLES)}")
        if len(set(self.styles)) != len(self.styles):
            raise UserError(f"--styles lists a style twice: {','.join(self.styles)}")
        if self.supersample is not None and not 1 <= self.supersample <= 8:
            raise UserError(f"--supersample must be from 1 to 8, not {self.supersample}")
        if not 1 <= self.workers <= 64:
            raise UserError(f"--workers must be from 1 to 64, not {self.workers}")
        if self.seed < 0:
            raise UserError(f"--seed must not be negative, not {self.seed}")


@dataclass
class ToonReport:
    out: str
    count: int
    seconds: float
    style_counts: dict[str, int]

    @property
    def images_per_second(self) -> float:
        return self.count / max(self.seconds, 1e-9)

    def summary(self) -> str:
        styles = ", ".join(f"{n} {s}" for s, n in self.style_counts.items())
        return (
            f"{self.count} toon face(s) ({styles}) written to {self.out} in {self.seconds:.1f} s "
            f"({self.images_per_second:.1f} images/s)"
        )


def toon_image(
    seed: int, index: int, resolution: int, styles: tuple[str, ...] = STYLES, supersample: int | None = None
) -> tuple[PIL.Image.Image, dict]:
    """Image `index` of the data set with `seed`, and its attribute dict (see the module docstring)."""
    identity, pose, style = sample_image(seed, index, styles)
    image = render_toon(identity, style, pose, resolution, supersample)
    attrs = {
        "style": STYLES.index(style),
        **identity.attributes(),
        "rotate": round(pose.rotate, 4),
        "translate": [round(pose.translate[0], 5), round(pose.translate[1], 5)],
    }
    return image, attrs


def _draw_one(seed, resolution, styles, supersample, index):
    return toon_image(seed, index, resolution, styles, supersample)


def make_toon_dataset(
    config: ToonConfig,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ToonReport:
    """Write a toon data set (see the module docstring); atomic, like `gan dataset convert`.
    progress(done, total, "drawing toon faces") per image."""
    from gan.data.dataset_tool import DatasetWriter

    config.validate()
    start = time.perf_counter()
    attributes = []
    counts = dict.fromkeys(config.styles, 0)
    draw = functools.partial(
        _draw_one, config.seed, config.resolution, tuple(config.styles), config.supersample
    )
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(DatasetWriter(config.out, force=config.force))
        if config.workers > 1:
            # Ordered results: image i is always written i-th, so any worker count gives the same file.
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(config.workers))
            results = pool.imap(draw, range(config.count), chunksize=8)
        else:
            results = map(draw, range(config.count))
        for image, attrs in results:
            if should_stop is not None and should_stop():
                raise Cancelled("drawing the toon data set was stopped")  # the writer deletes the output
            name = writer.add(image, attrs["style"])
            attributes.append([name, attrs])
            counts[STYLES[attrs["style"]]] += 1
            if progress is not None:
                progress(len(attributes), config.count, "drawing toon faces")
        writer.meta["class_names"] = list(STYLES)
        writer.meta["attributes"] = attributes
        writer.meta["attribute_classes"] = ATTRIBUTE_CLASSES
        writer.meta["toon"] = {
            "version": GENERATOR_VERSION,
            "seed": config.seed,
            "resolution": config.resolution,
            "styles": list(config.styles),
            "supersample": config.supersample or default_supersample(config.resolution),
        }
    return ToonReport(os.path.abspath(config.out), config.count, time.perf_counter() - start, counts)
