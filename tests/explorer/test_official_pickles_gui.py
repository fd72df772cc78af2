"""NVIDIA-written model files (../shared) open in the explorer through File > Open and
drag-and-drop and render; that the networks give NVIDIA's numbers is checked in
tests/gan/test_official_pickles_nvidia.py."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.support.paths import official_pickle

NAMES = ["sg3t16", "sg2s32fp16", "ada32", "tf32"]


@pytest.mark.parametrize("name", NAMES)
def test_file_open_shows_the_model(make_window, name):
    path = str(official_pickle(f"{name}.pkl"))
    window = make_window()
    window.open_path(path)  # what File > Open and the recent-files menu call
    assert window.model_info is not None and window.model_info["path"] == path
    result = window.last_result
    assert result is not None and result["error"] is None
    assert result["image"].shape[:2] == (window.model_info["resolution"],) * 2
    assert result["image"].std() > 1  # a picture, not a flat fill
    about = window.model_info_text()
    assert "Origin" in about and ("TensorFlow era" if name == "tf32" else "PyTorch era") in about


@pytest.mark.parametrize("name", ["sg3t16", "tf32"])
def test_drag_and_drop_opens_it(make_window, explorer_models, name):
    window = make_window(explorer_models["sg2"])
    path = str(official_pickle(f"{name}.pkl"))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(path)])
    no_button, no_modifier = Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, no_button, no_modifier)
    window.dropEvent(event)
    assert window.model_info["path"] == path
    assert window.last_result["error"] is None
