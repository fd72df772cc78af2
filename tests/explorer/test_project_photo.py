"""File > Open photo driven headless: open a photo (no face: crop box), project it, the sliders,
the blend and the transform change the projected image, PNG export and reopen restore it."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from explorer.dialogs.project_dialog import CROP, ProjectDialog
from tests.support.tiny import make_tiny_generator, select

pytestmark = pytest.mark.usefixtures("one_thread")


def image_of(window):
    assert window.last_result is not None and window.last_result["error"] is None, window.last_result
    return window.last_result["image"].copy()


@pytest.fixture
def photo(tmp_path) -> str:
    """A 48 px picture of a tiny model's image (no recipe, no face)."""
    G = make_tiny_generator("stylegan2", seed=5)
    z = torch.from_numpy(np.random.RandomState(3).randn(1, G.z_dim).astype(np.float32))
    with torch.no_grad():
        img = G(z, None, noise_mode="const")
    small = ((img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8))[0].numpy()
    path = tmp_path / "me.jpg"
    PIL.Image.fromarray(small).resize((48, 48), PIL.Image.BICUBIC).save(path, quality=95)
    return str(path)


@pytest.fixture
def window_with_model(make_window, explorer_models, settings, tmp_path):
    settings.setValue("projections_dir", str(tmp_path / "projections"))
    return make_window(explorer_models["sg2"])


def open_dialog(qtbot, window, path) -> ProjectDialog:
    window.open_path(path)
    dialog = window.findChild(ProjectDialog)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.target is not None, timeout=60_000)
    return dialog


def project(qtbot, dialog, steps: int = 12) -> dict:
    dialog.steps_spin.setValue(steps)
    dialog.start()
    try:
        qtbot.waitUntil(lambda: dialog.result is not None, timeout=120_000)
    except Exception:
        progress, busy = dialog.progress.value(), dialog.bridge.busy
        raise AssertionError(f"status {dialog.status.text()!r} progress {progress} busy {busy}") from None
    return dialog.result


def test_open_photo_project_edit_export_reopen(qtbot, window_with_model, make_window, photo, tmp_path):
    window = window_with_model
    seed_image = image_of(window)
    dialog = open_dialog(qtbot, window, photo)
    # No face in this picture: the crop box is offered, over the middle of the photo.
    assert dialog.face_combo.currentData() == CROP and dialog.face_combo.count() == 1
    assert dialog.photo_view.box is not None
    assert dialog.target.shape == (16, 16, 3)
    assert "Drag the square" in dialog.status.text()

    result = project(qtbot, dialog)
    assert result["error"] is None and not result["cancelled"], result
    assert dialog.progress.value() == 12
    assert not dialog.result_label.pixmap().isNull()
    assert "PSNR" in dialog.status.text()
    state = window.history.current()
    assert state.projection == result["path"]
    projected = image_of(window)
    np.testing.assert_array_equal(projected, result["image"])  # the explorer renders the same latent
    assert window.status_render.text().startswith("Projected photo")
    assert not np.array_equal(projected, seed_image)

    # The direction slider moves the projected face.
    window.direction_panel.rows["anime"].value_spin.setValue(2.0)
    edited = image_of(window)
    assert not np.array_equal(edited, projected)
    assert window.history.current().projection == result["path"]

    # Export with its recipe, reopen in a fresh window: the same picture and settings come back.
    png = str(tmp_path / "anime-me.png")
    window.export_png(png)
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(png).convert("RGB")), edited)
    other = make_window()
    other.open_path(png)
    s = other.history.current()
    assert s.projection is not None and s.edits["anime"].strength == pytest.approx(2.0)
    np.testing.assert_array_equal(image_of(other), edited)

    # Picking a seed leaves the photo; undo brings it back.
    window.apply_fields({"seed": 3})
    assert window.history.current().projection is None
    window.undo()
    assert window.history.current().projection == result["path"]
    np.testing.assert_array_equal(image_of(window), edited)


def test_blend_and_transform_apply_to_a_projection(qtbot, window_with_model, explorer_models, photo):
    window = window_with_model
    dialog = open_dialog(qtbot, window, photo)
    project(qtbot, dialog, steps=6)
    projected = image_of(window)
    window.bridge.load_model(explorer_models["sg2_tuned"], role="blend")
    window.apply_fields({"blend": 1.0})
    blended = image_of(window)
    assert not np.array_equal(blended, projected)
    window.apply_fields({"blend": 0.0, "translate": (0.2, 0.0)})
    assert not np.array_equal(image_of(window), projected)


def test_cancel_keeps_the_seed(qtbot, window_with_model, photo):
    window = window_with_model
    dialog = open_dialog(qtbot, window, photo)
    dialog.steps_spin.setValue(5000)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.progress.value() >= 2, timeout=60_000)
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=60_000)
    assert dialog.result["cancelled"] and "cancelled" in dialog.status.text()
    assert window.history.current().projection is None


def test_dropping_a_picture_opens_the_photo_dialog(qtbot, window_with_model, photo):
    window = window_with_model
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(photo)])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    dialog = window.findChild(ProjectDialog)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.target is not None, timeout=60_000)


def test_a_photo_needs_a_model_first(make_window, photo, no_blocking_message_boxes):
    window = make_window()
    assert window.open_photo(photo) is None
    assert any("Open a model first" in text for _, text in no_blocking_message_boxes) or any(
        "Open a model first" in m[2] for m in window.messages
    )


def test_unreadable_photo_says_why(qtbot, window_with_model, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    window_with_model.open_path(str(bad))
    dialog = window_with_model.findChild(ProjectDialog)
    qtbot.waitUntil(lambda: "⚠" in dialog.status.text(), timeout=30_000)
    assert "not an image" in dialog.status.text()


def test_detected_faces_are_offered(qtbot, window_with_model, tmp_path):
    from gan.data.toon import render_toon, sample_image
    from gan.photo.mtcnn import weights_dir

    try:
        weights_dir()
    except Exception as exc:
        pytest.skip(f"MTCNN weights not installed: {exc}")
    identity, pose, style = sample_image(999, 8, ("photo",))  # a face the detector finds
    path = tmp_path / "toon.png"
    render_toon(identity, style, pose, 224).save(path)
    dialog = open_dialog(qtbot, window_with_model, str(path))
    assert dialog.face_combo.count() == 2 and dialog.face_combo.currentData() == 0
    assert dialog.photo_view.box is None and "Face found" in dialog.status.text()
    select(dialog.face_combo, CROP)  # the crop box instead
    assert dialog.photo_view.box is not None and dialog.target.shape == (16, 16, 3)
