"""Opening photos for projection: formats, EXIF orientation, shrinking, transparency, errors."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest

from gan.errors import UserError
from gan.photo.image import open_photo, photo_from_array


def _marked(w: int = 60, h: int = 40) -> np.ndarray:
    """A picture whose top-left corner is red and the rest blue, to see where it ends up."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, :, 2] = 200
    a[: h // 4, : w // 4] = (230, 20, 20)
    return a


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp")])
def test_formats_open_as_rgb(tmp_path, fmt, suffix):
    path = tmp_path / f"p{suffix}"
    PIL.Image.fromarray(_marked()).save(path, format=fmt, quality=95)
    photo = open_photo(path)
    assert photo.image.dtype == np.uint8 and photo.image.shape == (40, 60, 3)
    assert photo.original_size == (60, 40) and photo.scale == 1.0
    assert photo.image[2, 2, 0] > 180 and photo.image[-2, -2, 2] > 150  # red corner kept top-left


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display rotated 90 degrees clockwise
    PIL.Image.fromarray(_marked()).save(path, exif=exif, quality=95)
    photo = open_photo(path)
    assert photo.image.shape == (60, 40, 3)  # upright: width and height swapped
    assert photo.original_size == (40, 60)
    # Turned clockwise, the stored top-left corner is now top-right.
    assert photo.image[2, -3, 0] > 180 and photo.image[2, 2, 0] < 100


def test_large_photo_is_shrunk(tmp_path):
    path = tmp_path / "big.png"
    PIL.Image.fromarray(np.full((300, 500, 3), 90, np.uint8)).save(path)
    photo = open_photo(path, max_side=100)
    assert photo.image.shape == (60, 100, 3)
    assert photo.original_size == (500, 300)
    assert photo.scale == pytest.approx(0.2)


def test_large_jpeg_is_decoded_smaller_and_keeps_its_original_size(tmp_path):
    path = tmp_path / "big.jpg"
    PIL.Image.fromarray(np.full((800, 1200, 3), 90, np.uint8)).save(path, quality=90)
    photo = open_photo(path, max_side=200)
    assert max(photo.image.shape[:2]) == 200
    assert photo.original_size == (1200, 800)
    assert photo.scale == pytest.approx(200 / 1200)


def test_transparency_goes_on_white(tmp_path):
    path = tmp_path / "alpha.png"
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:, :10] = (255, 0, 0, 255)  # opaque red left half, transparent right half
    PIL.Image.fromarray(rgba, "RGBA").save(path)
    image = open_photo(path).image
    assert tuple(image[5, 2]) == (255, 0, 0)
    assert tuple(image[5, 15]) == (255, 255, 255)


def test_grey_and_palette_images_become_rgb(tmp_path):
    PIL.Image.fromarray(np.full((20, 30), 77, np.uint8), "L").save(tmp_path / "grey.png")
    assert tuple(open_photo(tmp_path / "grey.png").image[3, 3]) == (77, 77, 77)
    PIL.Image.fromarray(_marked()).convert("P").save(tmp_path / "pal.png")
    assert open_photo(tmp_path / "pal.png").image.shape == (40, 60, 3)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "folder"),
        (lambda p: p.write_text("not a picture"), "not an image"),
        (lambda p: PIL.Image.new("RGB", (40, 40)).save(p, format="GIF"), "GIF"),
        (lambda p: PIL.Image.new("RGB", (8, 40)).save(p, format="PNG"), "at least 16"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, make, message):
    path = tmp_path / "photo.img"
    make(path)
    with pytest.raises(UserError, match=message):
        open_photo(path)


def test_truncated_jpeg_is_an_error(tmp_path):
    path = tmp_path / "cut.jpg"
    rng = np.random.default_rng(0)
    PIL.Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(UserError, match="damaged or truncated"):
        open_photo(path)


def test_photo_from_array_checks_its_input():
    assert photo_from_array(np.zeros((20, 20), np.uint8)).image.shape == (20, 20, 3)
    with pytest.raises(UserError, match="uint8"):
        photo_from_array(np.zeros((20, 20, 3), np.float32))
