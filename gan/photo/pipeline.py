"""Photo -> aligned target -> projection, the steps the command line, the benchmark and the
explorer share.

    photo = open_photo("me.jpg")
    faces = find_faces(photo)                       # may be empty: then give a crop box
    target = prepare_target(photo, 64, template_for_model(model.metadata), face=faces[0])
    D, where = discriminator_for(model)             # None when the model file has no D
    [result] = project(model.G, target.image, ProjectConfig.preset("default"), D=D)
    result.source = target.describe(); result.model = model_description(model)
    render_args = projection_render_args(result)    # gan.render.RenderArgs with ws and noise
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan.errors import UserError
from gan.photo.align import Aligned, AlignTemplate, align_face, centre_box, crop_box
from gan.photo.image import Photo
from gan.photo.mtcnn import DetectorConfig, Face, FaceDetector
from gan.photo.project import Projection

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Target:
    aligned: Aligned
    how: str  # 'face' or 'crop'
    template: str | None  # alignment template name when how == 'face'
    photo: Photo
    face: Face | None = None
    box: tuple[float, float, float] | None = None  # the crop box in photo pixels, when how == 'crop'

    @property
    def image(self) -> np.ndarray:
        return self.aligned.image

    def describe(self) -> dict:
        """JSON-able record of where the target came from (stored with the projection)."""
        d = {
            "photo": os.path.abspath(self.photo.source)
            if not self.photo.source.startswith("<")
            else self.photo.source,
            "how": self.how,
            "template": self.template,
            "quad": (self.aligned.quad / self.photo.scale).round(3).tolist(),  # in original photo pixels
        }
        if self.face is not None:
            d["landmarks"] = (self.face.landmarks / self.photo.scale).round(3).tolist()
        return d


def find_faces(
    photo: Photo, detector: FaceDetector | None = None, config: DetectorConfig | None = None
) -> list[Face]:
    """Faces of a photo, largest first (the usual subject), in the photo's pixel coordinates."""
    detector = detector or FaceDetector(config=config)
    faces = detector.detect(photo.image)
    return sorted(faces, key=lambda f: -f.size)


def prepare_target(
    photo: Photo,
    resolution: int,
    template: AlignTemplate,
    face: Face | None = None,
    box: tuple[float, float, float] | None = None,
) -> Target:
    """The model-sized target: the face aligned by template, or the square crop box (x, y, size)
    in photo pixels (default: the largest centred square) when no face is given."""
    if face is not None:
        return Target(
            align_face(photo.image, face.landmarks, resolution, template), "face", template.name, photo, face
        )
    box = tuple(float(v) for v in (box if box is not None else centre_box(photo.image)))
    return Target(crop_box(photo.image, *box, resolution), "crop", None, photo, box=box)


def parse_crop(text: str, photo: Photo | None = None) -> tuple[float, float, float]:
    """'x,y,size' in original photo pixels -> a box in the (possibly shrunk) photo's pixels."""
    try:
        x, y, size = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--crop {text!r}: expected x,y,size (top-left corner and side, in pixels)") from None
    if not size > 0:
        raise UserError(f"--crop {text!r}: the size must be positive")
    scale = photo.scale if photo is not None else 1.0
    return x * scale, y * scale, size * scale


def model_description(model) -> dict:
    return {"sha256": model.sha256, "path": os.path.abspath(str(model.source)), "arch": model.arch}


def discriminator_for(model):
    """(D, where it came from) for projecting into a LoadedModel, or (None, why not).

    The model's own D when its file has one; for a generator converted from a training snapshot
    (metadata "converted_from": file name and sha256, as the shipped default model records) the
    D of that snapshot when it lies next to the model or in a training/*/ folder beside it and
    its sha256 matches."""
    if model.D is not None:
        return model.D, "the model file"
    origin = model.metadata.get("converted_from") if isinstance(model.metadata, dict) else None
    if not isinstance(origin, dict) or not origin.get("file") or not origin.get("sha256"):
        return None, "the model file has no discriminator"
    from gan.io.files import file_sha256
    from gan.model_io import load_model

    folder = Path(str(model.source)).resolve().parent
    name = Path(str(origin["file"])).name
    for candidate in [folder / name, *sorted(folder.glob(f"training/*/{name}"))]:
        if not candidate.is_file():
            continue
        try:
            if file_sha256(candidate) != origin["sha256"]:
                continue
            snapshot = load_model(candidate, device=next(model.G.parameters()).device, training_nets=True)
        except UserError as exc:
            log.warning("cannot use %s for its discriminator: %s", candidate, exc)
            continue
        if snapshot.D is not None:
            return snapshot.D, str(candidate)
    return (
        None,
        f"the model file has no discriminator and its training snapshot {name} was not found beside it",
    )


def load_discriminator(path: str, model):
    """D from another model file (--discriminator), checked to fit the model's images."""
    from gan.model_io import load_model

    other = load_model(path, device=next(model.G.parameters()).device, training_nets=True)
    if other.D is None:
        raise UserError(f"{path} has no discriminator (only {', '.join(other.networks)})")
    if int(other.D.img_resolution) != int(model.G.img_resolution):
        raise UserError(
            f"the discriminator of {path} sees {other.D.img_resolution} px images; the model draws "
            f"{model.G.img_resolution} px"
        )
    return other.D


def projection_render_args(p: Projection, **overrides):
    """gan.render.RenderArgs that render the projection (its ws and noise); overrides set other
    fields (edits, translate, ...)."""
    from gan.render import RenderArgs

    fields = {"w": p.ws, "noise": dict(p.noise) or None, "noise_mode": "const", **overrides}
    return RenderArgs(**fields)
