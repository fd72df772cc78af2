"""Face alignment on synthetic faces with known landmarks (the procedural toon faces), crop
boxes and padding, and the toon template against the toon drawing's geometry."""

from __future__ import annotations

import numpy as np
import pytest

from gan.data.toon import ToonPose, render_toon, sample_image
from gan.errors import UserError
from gan.photo.align import (
    FFHQ,
    TOON,
    align_face,
    box_quad,
    centre_box,
    crop_box,
    face_quad,
    template_for_model,
    template_named,
)
from gan.photo.losses import psnr
from gan.photo.toon_landmarks import toon_landmarks


def _toon(index: int, pose: ToonPose | None, res: int, seed: int = 4321):
    """A photo-style toon face with a flat background (which stays put when the head turns)."""
    i = index
    while True:
        identity, sampled_pose, _ = sample_image(seed, i, ("photo",))
        if identity.background == 0:
            break
        i += 1000
    pose = sampled_pose if pose is None else pose
    image = np.asarray(render_toon(identity, "photo", pose, res))
    return image, toon_landmarks(identity, "photo", pose) * res


def test_toon_template_matches_the_mean_toon_face():
    eye_dist, eye_mouth, eye_y = [], [], []
    for i in range(500):
        identity, _, _ = sample_image(0, i, ("photo",))
        lm = toon_landmarks(identity, "photo")
        eyes, mouth = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2
        eye_dist.append(np.linalg.norm(lm[1] - lm[0]))
        eye_mouth.append(np.linalg.norm(mouth - eyes))
        eye_y.append(eyes[1])
    # Half the picture is eye_scale eye distances; the centre lies centre_shift eye-to-mouth below the eyes.
    assert 0.5 / np.mean(eye_dist) == pytest.approx(TOON.eye_scale, abs=0.05)
    assert (0.5 - np.mean(eye_y)) / np.mean(eye_mouth) == pytest.approx(TOON.centre_shift, abs=0.02)
    # The eye term decides the crop for every toon face.
    assert max(np.array(eye_mouth) / np.array(eye_dist)) * TOON.mouth_scale < TOON.eye_scale


@pytest.mark.parametrize("index", [0, 1, 2])
def test_alignment_undoes_the_pose(index):
    """The same face rendered turned and moved, aligned by its true landmarks, looks like the
    face rendered upright, aligned the same way."""
    turned, lm_turned = _toon(index, None, 192)
    upright, lm_upright = _toon(index, ToonPose(), 192)
    a = align_face(turned, lm_turned, 64, TOON).image
    b = align_face(upright, lm_upright, 64, TOON).image
    inner = slice(12, 52)  # the face; the corners may show padding or the unrotated background
    assert psnr(a[inner, inner], b[inner, inner]) > 24
    # A wrong alignment (no rotation undone) is clearly worse.
    c = align_face(turned, lm_upright, 64, TOON).image
    assert psnr(c[inner, inner], b[inner, inner]) < psnr(a[inner, inner], b[inner, inner]) - 3


def test_landmarks_land_on_the_template():
    image, lm = _toon(3, ToonPose(rotate=9.0, translate=(0.03, -0.02)), 160)
    aligned = align_face(image, lm, 64, FFHQ)
    out = aligned.to_output(lm) / 64  # in output image units
    eyes, mouth = (out[0] + out[1]) / 2, (out[3] + out[4]) / 2
    assert out[0][1] == pytest.approx(out[1][1], abs=1e-6)  # the eyes are level
    assert out[0][0] < out[1][0]
    eye_dist = out[1][0] - out[0][0]
    # FFHQ: the output is 2 * max(2 eye distances, 1.8 eye-to-mouth) wide, centred 0.1
    # eye-to-mouth below the eyes (horizontal axis bends with the mouth, so allow a little).
    half = max(2.0 * eye_dist, 1.8 * np.linalg.norm(mouth - eyes))
    assert half == pytest.approx(0.5, abs=0.03)
    assert eyes[0] == pytest.approx(0.5, abs=0.03)


def test_toon_render_aligned_to_its_own_framing_is_nearly_unchanged():
    """An upright average toon face aligned with the toon template keeps its framing."""
    image, lm = _toon(5, ToonPose(), 64)
    aligned = align_face(image, lm, 64, TOON).image
    assert psnr(aligned[8:56, 8:56], image[8:56, 8:56]) > 20


def test_crop_box_inside_the_photo_is_a_plain_resize():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    out = crop_box(image, 10, 5, 32, 32).image
    assert out.shape == (32, 32, 3)
    assert psnr(out, image[5:37, 10:42]) > 30  # same pixels up to the 4x resampling


def test_crop_box_outside_the_photo_is_padded_smoothly():
    image = np.zeros((40, 40, 3), np.uint8)
    image[:, :, 1] = 200
    out = crop_box(image, -20, -20, 80, 32).image
    # No black frame: the padding mirrors the photo and fades to its median colour.
    assert out[:, :, 1].min() > 150 and out[:, :, 0].max() < 30


def test_crop_box_entirely_outside_is_an_error():
    with pytest.raises(UserError, match="outside"):
        crop_box(np.zeros((20, 20, 3), np.uint8), 100, 100, 10, 16)


def test_centre_box_is_the_largest_centred_square():
    assert centre_box(np.zeros((30, 50, 3))) == (10.0, 0.0, 30.0)
    assert np.allclose(box_quad(1, 2, 3)[2], [4, 5])


def test_bad_landmarks_and_templates_are_errors():
    with pytest.raises(UserError, match="5 finite"):
        face_quad(np.zeros((4, 2)))
    with pytest.raises(UserError, match="degenerate"):
        face_quad(np.zeros((5, 2)))
    with pytest.raises(UserError, match="unknown alignment template"):
        template_named("cats")


def test_template_for_model():
    toon = {"training": {"config": {"data": "/work/data/toon64.zip"}}}
    assert template_for_model(toon) is TOON
    assert template_for_model({"training": {"config": {"data": "ffhq256.zip"}}}) is FFHQ
    assert template_for_model({}) is FFHQ
    assert template_for_model({"align_template": "toon"}) is TOON
