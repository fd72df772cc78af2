"""Face detection with 5 landmarks: our own MTCNN (Zhang et al. 2016, "Joint Face Detection and
Alignment using Multi-task Cascaded Convolutional Networks") in plain torch.

Only the trained weights come from elsewhere: the `facenet-pytorch` wheel ships them as plain
state_dicts (`facenet_pytorch/data/{pnet,rnet,onet}.pt`, MIT licence). Its code imports
torchvision, which does not install beside our torch build, so the package is installed with
`pip install --no-deps facenet-pytorch==2.6.0` (the Makefile's set-up does it) and never
imported: we locate the files through its import spec and read them with
`torch.load(weights_only=True)`. Nothing is downloaded at run time.

The cascade: an image pyramid (smallest face `min_face` px, step `factor`) through the fully
convolutional P-Net (12x12 windows, stride 2), non-maximum suppression per scale and over all
scales, box regression; square crops of the survivors at 24 px through R-Net, again at 48 px
through O-Net, which also gives the landmarks (left eye, right eye, nose, left and right mouth
corner, "left" meaning the image's left).

Coordinates are continuous pixel coordinates: (0, 0) is the top-left corner of the top-left
pixel, a box is (x0, y0, x1, y1) with x1 - x0 its width.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gan.errors import Cancelled, UserError

WEIGHTS_PACKAGE = "facenet_pytorch"
WEIGHTS_ENV = "GAN_MTCNN_WEIGHTS"  # optional folder holding pnet.pt, rnet.pt, onet.pt
INSTALL_HINT = (
    "install its weights with `pip install --no-deps facenet-pytorch==2.6.0` (`make run` / `make test` "
    f"do it), set {WEIGHTS_ENV} to a folder holding pnet.pt, rnet.pt and onet.pt, or give a crop box instead"
)
WEIGHT_FILES = ("pnet.pt", "rnet.pt", "onet.pt")
LANDMARK_NAMES = ("left eye", "right eye", "nose", "mouth left", "mouth right")


@dataclass
class DetectorConfig:
    min_face: int = field(default=20, metadata={"help": "smallest face side searched, in pixels"})
    factor: float = field(default=0.709, metadata={"help": "scale step of the image pyramid (< 1)"})
    thresholds: tuple[float, float, float] = field(
        default=(0.6, 0.7, 0.7), metadata={"help": "face probability each stage (P, R, O-Net) requires"}
    )
    max_side: int = field(
        default=800,
        metadata={"help": "larger images are searched at this size (faces keep full-size coordinates)"},
    )

    def validate(self) -> None:
        if self.min_face < 12:
            raise UserError(f"min_face must be at least 12 pixels (P-Net's window), not {self.min_face}")
        if not 0.1 <= self.factor < 1:
            raise UserError(f"factor must be from 0.1 to below 1, not {self.factor}")
        if len(self.thresholds) != 3 or not all(0 < t < 1 for t in self.thresholds):
            raise UserError(f"thresholds must be three probabilities, not {self.thresholds}")
        if self.max_side < 48:
            raise UserError(f"max_side must be at least 48, not {self.max_side}")


@dataclass(eq=False)
class Face:
    box: np.ndarray  # float32 [4]: x0, y0, x1, y1 in image pixels
    score: float  # O-Net's face probability
    landmarks: np.ndarray  # float32 [5, 2] (x, y): LANDMARK_NAMES

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


# --- networks --------------------------------------------------------------------------------
# Layer names and shapes are those of the weight files. The three networks were trained (in Caffe)
# on transposed images, so the dense layers of R-Net and O-Net expect their input flattened in
# (x, y, channel) order rather than torch's (channel, y, x).


class PNet(torch.nn.Module):
    """12x12 window -> face probability and box offsets; fully convolutional (stride 2)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = torch.nn.Conv2d(3, 10, 3), torch.nn.PReLU(10)
        self.conv2, self.prelu2 = torch.nn.Conv2d(10, 16, 3), torch.nn.PReLU(16)
        self.conv3, self.prelu3 = torch.nn.Conv2d(16, 32, 3), torch.nn.PReLU(32)
        self.conv4_1 = torch.nn.Conv2d(32, 2, 1)  # face / not face
        self.conv4_2 = torch.nn.Conv2d(32, 4, 1)  # box offsets

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu1(self.conv1(x))
        x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return F.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


def _caffe_flatten(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 2, 1).flatten(1)


class RNet(torch.nn.Module):
    """24x24 crop -> face probability and box offsets."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = torch.nn.Conv2d(3, 28, 3), torch.nn.PReLU(28)
        self.conv2, self.prelu2 = torch.nn.Conv2d(28, 48, 3), torch.nn.PReLU(48)
        self.conv3, self.prelu3 = torch.nn.Conv2d(48, 64, 2), torch.nn.PReLU(64)
        self.dense4, self.prelu4 = torch.nn.Linear(576, 128), torch.nn.PReLU(128)
        self.dense5_1 = torch.nn.Linear(128, 2)
        self.dense5_2 = torch.nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_caffe_flatten(self.prelu3(self.conv3(x)))))
        return F.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(torch.nn.Module):
    """48x48 crop -> face probability, box offsets and 5 landmarks (5 x, then 5 y, in box units)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = torch.nn.Conv2d(3, 32, 3), torch.nn.PReLU(32)
        self.conv2, self.prelu2 = torch.nn.Conv2d(32, 64, 3), torch.nn.PReLU(64)
        self.conv3, self.prelu3 = torch.nn.Conv2d(64, 64, 3), torch.nn.PReLU(64)
        self.conv4, self.prelu4 = torch.nn.Conv2d(64, 128, 2), torch.nn.PReLU(128)
        self.dense5, self.prelu5 = torch.nn.Linear(1152, 256), torch.nn.PReLU(256)
        self.dense6_1 = torch.nn.Linear(256, 2)
        self.dense6_2 = torch.nn.Linear(256, 4)
        self.dense6_3 = torch.nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_caffe_flatten(self.prelu4(self.conv4(x)))))
        return F.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


# --- weights ---------------------------------------------------------------------------------


def weights_dir() -> Path:
    """The folder holding pnet.pt, rnet.pt and onet.pt (UserError with the fix when missing):
    $GAN_MTCNN_WEIGHTS, else the installed facenet-pytorch package's data folder, else
    resources/mtcnn/ (where the standalone app bundles them)."""
    from gan.resources import RESOURCES

    env = os.environ.get(WEIGHTS_ENV)
    candidates = [Path(env)] if env else []
    if not env:
        # find_spec locates the installed package without running its __init__ (which would
        # import torchvision).
        try:
            spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            candidates.append(Path(next(iter(spec.submodule_search_locations))) / "data")
        candidates.append(RESOURCES / "mtcnn")
    for folder in candidates:
        if all((folder / n).is_file() for n in WEIGHT_FILES):
            return folder
    if env:
        missing = [n for n in WEIGHT_FILES if not (candidates[0] / n).is_file()]
        raise UserError(f"{env} lacks {', '.join(missing)}; {INSTALL_HINT}")
    raise UserError(f"face detection needs the MTCNN weights: {INSTALL_HINT}")


def _load(net: torch.nn.Module, path: Path) -> torch.nn.Module:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as exc:  # a damaged or foreign file: say which and how to fix it
        raise UserError(f"{path} is not the MTCNN weight file expected ({exc}); {INSTALL_HINT}") from None
    return net.eval().requires_grad_(False)


class FaceDetector:
    """The three networks, loaded once; `detect(image)` finds faces in a uint8 RGB image."""

    def __init__(self, folder: str | os.PathLike | None = None, config: DetectorConfig | None = None):
        folder = Path(folder) if folder is not None else weights_dir()
        self.config = config or DetectorConfig()
        self.config.validate()
        self.pnet = _load(PNet(), folder / "pnet.pt")
        self.rnet = _load(RNet(), folder / "rnet.pt")
        self.onet = _load(ONet(), folder / "onet.pt")

    @torch.no_grad()
    def detect(self, image: np.ndarray, should_stop: Callable[[], bool] | None = None) -> list[Face]:
        """Faces in image (uint8 [H, W, 3]), most probable first."""
        img = np.asarray(image)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise UserError(
                f"face detection needs a uint8 [H, W, 3] image, got {img.dtype} {list(img.shape)}"
            )
        h, w = img.shape[:2]
        shrink = min(1.0, self.config.max_side / max(h, w))
        x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)[None].float()
        if shrink < 1:
            x = F.interpolate(x, size=(max(1, round(h * shrink)), max(1, round(w * shrink))), mode="area")
        x = (x - 127.5) / 128.0  # the networks' input scaling
        faces = self._cascade(x, should_stop)
        scale = np.float32(1.0 / (x.shape[3] / w))
        for f in faces:
            f.box = f.box * scale
            f.landmarks = f.landmarks * scale
        return faces

    def _cascade(self, x: torch.Tensor, should_stop) -> list[Face]:
        c = self.config
        boxes = self._stage1(x, should_stop)
        if len(boxes) == 0:
            return []
        # Stage 2: R-Net on 24 px crops refines and filters the candidates.
        boxes = _square(boxes)
        prob, reg = self.rnet(_crops(x, boxes, 24))
        keep = prob >= c.thresholds[1]
        boxes, prob, reg = boxes[keep], prob[keep], reg[keep]
        if len(boxes) == 0:
            return []
        keep = nms(boxes, prob, 0.7)
        boxes = _square(_regress(boxes[keep], reg[keep]))
        if should_stop is not None and should_stop():
            raise Cancelled("face detection was stopped")
        # Stage 3: O-Net on 48 px crops: final boxes and the landmarks.
        prob, reg, marks = self.onet(_crops(x, boxes, 48))
        keep = prob >= c.thresholds[2]
        boxes, prob, reg, marks = boxes[keep], prob[keep], reg[keep], marks[keep]
        if len(boxes) == 0:
            return []
        size = (boxes[:, 2:] - boxes[:, :2])[:, None, :]  # [N, 1, 2]
        points = boxes[:, None, :2] + torch.stack([marks[:, :5], marks[:, 5:]], dim=2) * size
        boxes = _regress(boxes, reg)
        keep = nms(boxes, prob, 0.7, mode="min")
        return [
            Face(box=boxes[i].numpy().astype(np.float32), score=float(prob[i]), landmarks=points[i].numpy())
            for i in keep.tolist()
        ]

    def _stage1(self, x: torch.Tensor, should_stop) -> torch.Tensor:
        """P-Net over the pyramid: candidate boxes [N, 5] (x0, y0, x1, y1, score), regressed."""
        c = self.config
        h, w = x.shape[2:]
        found = []
        for scale in pyramid_scales(h, w, c.min_face, c.factor):
            if should_stop is not None and should_stop():
                raise Cancelled("face detection was stopped")
            size = (max(12, math.ceil(h * scale)), max(12, math.ceil(w * scale)))
            prob, reg = self.pnet(F.interpolate(x, size=size, mode="area"))
            iy, ix = torch.nonzero(prob[0] >= c.thresholds[0], as_tuple=True)
            if len(iy) == 0:
                continue
            # Output cell (iy, ix) looked at the 12x12 window at (2 ix, 2 iy) of the scaled image.
            sx, sy = size[1] / w, size[0] / h  # the true scale after rounding the size up
            x0, y0 = 2 * ix.float() / sx, 2 * iy.float() / sy
            boxes = torch.stack([x0, y0, x0 + 12 / sx, y0 + 12 / sy], dim=1)
            score = prob[0, iy, ix]
            offsets = reg[0, :, iy, ix].T
            keep = nms(boxes, score, 0.5)
            found.append(torch.cat([_regress(boxes[keep], offsets[keep]), score[keep, None]], dim=1))
        if not found:
            return torch.zeros([0, 4])
        allb = torch.cat(found)
        keep = nms(allb[:, :4], allb[:, 4], 0.7)
        return allb[keep, :4]


def pyramid_scales(h: int, w: int, min_face: int, factor: float) -> list[float]:
    """Scales at which P-Net's 12 px window sees faces from min_face px up to the whole image."""
    scales, scale = [], 12.0 / min_face
    while min(h, w) * scale >= 12:
        scales.append(scale)
        scale *= factor
    return scales


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float, mode: str = "union") -> torch.Tensor:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first: a box is
    dropped when its overlap with a better kept box exceeds threshold (overlap = intersection over
    union, or over the smaller area with mode 'min')."""
    order = torch.argsort(scores, descending=True)
    boxes = boxes.float()
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        if rest.numel() == 0:
            break
        lt = torch.maximum(boxes[i, :2], boxes[rest, :2])
        rb = torch.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = (rb - lt).clamp(min=0).prod(dim=1)
        if mode == "min":
            overlap = inter / torch.minimum(area[i], area[rest]).clamp(min=1e-9)
        else:
            overlap = inter / (area[i] + area[rest] - inter).clamp(min=1e-9)
        order = rest[overlap <= threshold]
    return torch.tensor(keep, dtype=torch.long)


def _regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Boxes moved by the networks' offsets (in units of the box's width and height)."""
    wh = (boxes[:, 2:4] - boxes[:, :2]).repeat(1, 2)
    return boxes[:, :4] + offsets * wh


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes grown to squares of their longer side about their centres."""
    centre = (boxes[:, :2] + boxes[:, 2:4]) / 2
    half = (boxes[:, 2:4] - boxes[:, :2]).max(dim=1, keepdim=True).values / 2
    return torch.cat([centre - half, centre + half], dim=1)


def _crops(x: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Square crops of x (black outside the image) resized to size x size, [N, 3, size, size]."""
    h, w = x.shape[2:]
    black = -127.5 / 128.0
    out = torch.full([len(boxes), 3, size, size], black)
    for i, b in enumerate(boxes.round().long().tolist()):
        x0, y0, x1, y1 = b
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        crop = torch.full([1, 3, y1 - y0, x1 - x0], black)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            crop[:, :, sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = x[:, :, sy0:sy1, sx0:sx1]
        out[i] = F.interpolate(crop, size=(size, size), mode="area")[0]
    return out


def detect_faces(image: np.ndarray, config: DetectorConfig | None = None) -> list[Face]:
    """Faces in a uint8 RGB image with a detector made for this call (see FaceDetector)."""
    return FaceDetector(config=config).detect(image)
