"""Our MTCNN: NMS and the pyramid, the weight files and their errors, and the detector on
rendered toon faces (photo style), whose true landmarks are known."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from gan.data.toon import render_toon, sample_image
from gan.errors import UserError
from gan.photo.image import photo_from_array
from gan.photo.mtcnn import WEIGHTS_ENV, DetectorConfig, FaceDetector, nms, pyramid_scales, weights_dir
from gan.photo.pipeline import find_faces
from gan.photo.toon_landmarks import toon_landmarks


def _weights_or_skip():
    try:
        return weights_dir()
    except UserError as exc:
        pytest.skip(f"MTCNN weights not installed: {exc}")


@pytest.fixture(scope="module")
def detector():
    _weights_or_skip()
    return FaceDetector()


def _toon(index: int, res: int):
    identity, pose, style = sample_image(999, index, ("photo",))
    return np.asarray(render_toon(identity, style, pose, res)), toon_landmarks(identity, style, pose) * res


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = torch.tensor(
        [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 4, 4]], dtype=torch.float32
    )
    scores = torch.tensor([0.6, 0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2, 3]  # box 0 overlaps box 1 by IoU 0.68
    assert nms(boxes, scores, 0.7).tolist() == [1, 2, 3, 0]
    # 'min' mode: the small box lies inside box 0 (overlap 1 over its own area).
    assert nms(boxes[[0, 3]], scores[[0, 3]], 0.7, mode="min").tolist() == [1]


def test_pyramid_covers_min_face_to_the_whole_image():
    scales = pyramid_scales(100, 200, 20, 0.709)
    assert scales[0] == pytest.approx(12 / 20)
    assert 100 * scales[-1] >= 12 > 100 * scales[-1] * 0.709
    assert all(b < a for a, b in zip(scales, scales[1:]))


def test_missing_weights_say_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(UserError, match="pip install --no-deps facenet-pytorch"):
        weights_dir()


def test_weights_are_found_in_resources_when_the_package_is_missing(tmp_path, monkeypatch):
    """The standalone app bundles the three files in resources/mtcnn/."""
    import importlib.util

    import gan.resources

    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    monkeypatch.setattr(gan.resources, "RESOURCES", tmp_path)
    with pytest.raises(UserError, match="needs the MTCNN weights"):
        weights_dir()
    (tmp_path / "mtcnn").mkdir()
    for name in ("pnet.pt", "rnet.pt", "onet.pt"):
        (tmp_path / "mtcnn" / name).write_bytes(b"x")
    assert weights_dir() == tmp_path / "mtcnn"


def test_damaged_weights_are_an_error(tmp_path, monkeypatch):
    for name in ("pnet.pt", "rnet.pt", "onet.pt"):
        (tmp_path / name).write_bytes(b"not a torch file")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(UserError, match="not the MTCNN weight file"):
        FaceDetector()


def test_bad_detector_settings_are_errors():
    with pytest.raises(UserError, match="min_face"):
        DetectorConfig(min_face=5).validate()
    with pytest.raises(UserError, match="factor"):
        DetectorConfig(factor=1.0).validate()


def test_weight_files_load_into_our_networks():
    folder = _weights_or_skip()
    det = FaceDetector(folder)
    assert sum(p.numel() for p in det.onet.parameters()) > 300_000


# Faces of seed 999 the detector finds at 128, 224 and 256 px (it misses about 1 in 6 toon faces).
@pytest.mark.parametrize("index", [2, 3, 8])
def test_detector_finds_a_rendered_face_and_its_landmarks(detector, index):
    image, truth = _toon(index, 256)
    faces = detector.detect(image)
    assert len(faces) == 1
    face = faces[0]
    eye_dist = np.linalg.norm(truth[1] - truth[0])
    errors = np.linalg.norm(face.landmarks - truth, axis=1) / eye_dist
    assert errors[:2].max() < 0.2, errors  # eyes
    assert errors.max() < 0.4, errors  # nose and mouth corners are vaguer in a drawing
    x0, y0, x1, y1 = face.box
    assert x0 < truth[0, 0] < x1 and y0 < truth[0, 1] < y1 and face.score > 0.7


def test_detector_finds_nothing_in_a_flat_picture(detector):
    assert detector.detect(np.full((200, 300, 3), 128, np.uint8)) == []


def test_large_photos_are_searched_small_but_answered_in_full_size(detector):
    image, truth = _toon(8, 256)
    big = np.asarray(PIL.Image.fromarray(image).resize((1100, 1100), PIL.Image.BICUBIC))
    detector_small = FaceDetector(config=DetectorConfig(max_side=300))
    faces = detector_small.detect(big)
    assert len(faces) == 1
    eye_dist = np.linalg.norm(truth[1] - truth[0]) * 1100 / 256
    assert np.linalg.norm(faces[0].landmarks[0] - truth[0] * 1100 / 256) < 0.25 * eye_dist


def test_several_faces_are_all_returned_largest_first(detector):
    small, _ = _toon(2, 128)
    large, _ = _toon(8, 224)
    canvas = np.full((224, 224 + 128 + 40, 3), 128, np.uint8)
    canvas[:224, :224] = large
    canvas[48:176, 264:392] = small
    faces = find_faces(photo_from_array(canvas), detector=detector)
    assert len(faces) == 2
    assert faces[0].size > faces[1].size
    assert faces[0].box[2] < 230 and faces[1].box[0] > 230
