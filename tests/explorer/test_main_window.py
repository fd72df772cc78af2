"""The main window driven headless: sliders change the image, undo restores it, the seed grid
picks seeds, the transform inspector moves an SG3 image and shows a PSNR, sessions and PNG
recipes round-trip, failed loads keep the state, shortcuts work."""

import json
import math

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from explorer.main_window import MainWindow
from tests.support.tiny import select


def image_of(window):
    assert window.last_result is not None and window.last_result["error"] is None, window.last_result
    return window.last_result["image"].copy()


def drag_slider(qtbot, slider, values):
    """Move a slider like a user drag: pressed, several values, released."""
    slider.setSliderDown(True)
    for v in values:
        slider.setValue(v)
    slider.setSliderDown(False)
    slider.sliderReleased.emit()


def test_without_a_model_the_window_says_how_to_open_one(make_window):
    window = make_window()
    text = window.image_view._message.toPlainText()
    assert "No model loaded" in text and "File > Open" in text and "drag and drop" in text
    assert not window.latent_panel.isEnabled()


def test_direction_slider_changes_image_and_undo_restores_it(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg2"])
    rows = window.direction_panel.rows
    assert list(rows)[0] == "anime" and rows["anime"].label.text() == "Anime-ify"
    before = image_of(window)
    drag_slider(qtbot, rows["anime"].slider, [50, 120, 200])
    after = image_of(window)
    assert window.history.current().edits["anime"].strength == pytest.approx(2.0)
    assert not np.array_equal(before, after)
    window.undo()  # the whole drag is one undo step
    assert window.history.current().edits.get("anime") is None
    np.testing.assert_array_equal(image_of(window), before)
    window.redo()
    np.testing.assert_array_equal(image_of(window), after)


def test_layer_range_lock_and_reset(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg2"])
    row = window.direction_panel.rows["pc0"]
    row.value_spin.setValue(3.0)
    full = image_of(window)
    row.start_spin.setValue(4)  # only the fine layers
    assert window.history.current().edits["pc0"].layer_start == 4
    assert not np.array_equal(image_of(window), full)
    row.lock_check.setChecked(True)
    assert not row.slider.isEnabled()
    window.direction_panel.rows["pc1"].value_spin.setValue(1.0)
    window.reset_edits()
    edits = window.history.current().edits
    assert edits["pc0"].strength == 3.0 and edits["pc1"].strength == 0.0


def test_psi_and_noise_and_style_mix_change_the_image(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg2"])
    panel = window.latent_panel
    base = image_of(window)
    drag_slider(qtbot, panel.psi_slider, [80, 50])
    assert window.history.current().psi == pytest.approx(0.5)
    truncated = image_of(window)
    assert not np.array_equal(base, truncated)
    panel.mix_check.setChecked(True)
    panel.mix_seed_spin.setValue(77)
    assert window.history.current().mix_seed == 77
    assert not np.array_equal(image_of(window), truncated)


def test_seed_grid_picks_a_seed(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg2"])
    grid = window.seed_grid
    assert not grid.thumbnails  # nothing is rendered for a hidden grid
    window.show()
    qtbot.waitExposed(window)
    assert len(grid.thumbnails) == grid.page_size  # rendered through the bridge
    item = grid._items[5]
    grid.list.itemClicked.emit(item)
    assert window.history.current().seed == 5
    np.testing.assert_array_equal(image_of(window), grid.thumbnails[5])
    grid.next_button.click()
    assert grid.visible_seeds()[0] == grid.page_size and len(grid.thumbnails) == 2 * grid.page_size


def test_seed_shortcuts_and_random(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg2"])
    window.show()
    qtbot.waitExposed(window)
    window.windowHandle().requestActivate()  # offscreen windows are not activated by show()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5000)
    window.image_view.setFocus()
    qtbot.keyClick(window.image_view, Qt.Key.Key_Right)
    qtbot.keyClick(window.image_view, Qt.Key.Key_Right)
    assert window.history.current().seed == 2
    qtbot.keyClick(window.image_view, Qt.Key.Key_Left)
    assert window.history.current().seed == 1
    qtbot.keyClick(window.image_view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.history.current().seed == 2
    window.random_seed()
    assert window.latent_panel.seed_spin.value() == window.history.current().seed
    # A focused slider keeps its arrow keys.
    slider = window.latent_panel.psi_slider
    slider.setFocus()
    seed = window.history.current().seed
    qtbot.keyClick(slider, Qt.Key.Key_Left)
    assert window.history.current().seed == seed and window.history.current().psi < 1.0


def test_transform_inspector_moves_sg3_image_and_shows_psnr(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg3"])
    window.dock_seeds.hide()  # no thumbnails needed here
    window.show()
    qtbot.waitExposed(window)
    ins = window.inspector
    assert ins.isEnabled()
    before = image_of(window)
    drag_slider(qtbot, ins.tx_slider, [50, 125])
    assert window.history.current().translate == (0.125, 0.0)
    assert not np.array_equal(image_of(window), before)
    assert ins.psnr is not None and math.isfinite(ins.psnr) and "dB" in ins.psnr_label.text()
    assert ins.error_view.pixmap() is not None and not ins.error_view.pixmap().isNull()
    ins.rot_spin.setValue(20.0)
    assert window.history.current().rotate == 20.0 and math.isfinite(ins.psnr)
    ins.reset_button.click()
    np.testing.assert_array_equal(image_of(window), before)


def test_shift_and_ctrl_drag_on_the_image_translate_and_rotate(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg3"])
    window.dock_seeds.hide()  # no thumbnails needed here
    window.show()
    qtbot.waitExposed(window)
    view = window.image_view.viewport()
    center = view.rect().center()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, center)
    qtbot.mouseMove(view, center + QPoint(60, 0))
    qtbot.mouseRelease(
        view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, center + QPoint(60, 0)
    )
    tx, ty = window.history.current().translate
    assert tx > 0 and ty == 0
    window.undo()
    assert window.history.current().translate == (0.0, 0.0)
    # Ctrl-drag around the centre rotates (a clockwise drag on screen turns the image clockwise).
    ctrl = Qt.KeyboardModifier.ControlModifier
    start, end = center + QPoint(80, 0), center + QPoint(0, 80)
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, ctrl, start)
    qtbot.mouseMove(view, end)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, ctrl, end)
    assert window.history.current().rotate == pytest.approx(-90.0, abs=5.0)


def test_sg2_translates_in_the_transform_inspector_with_a_hint(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg2"])
    window.dock_seeds.hide()  # no thumbnails needed here
    window.show()
    qtbot.waitExposed(window)
    ins = window.inspector
    assert ins.isEnabled()
    assert (
        "not translation-equivariant" in ins.note_label.text() and "texture sticking" in ins.note_label.text()
    )
    before = image_of(window)
    ins.tx_spin.setValue(0.25)
    assert window.history.current().translate == (0.25, 0.0)
    assert not np.array_equal(image_of(window), before)
    assert ins.psnr is not None and math.isfinite(ins.psnr)
    window.load_model(explorer_models["sg3"])  # a transform carries over between movable models
    assert window.history.current().translate == (0.25, 0.0)
    assert "StyleGAN3" in ins.note_label.text()


def test_latent_canvas_moves_between_seeds_and_along_directions(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg2"])
    canvas = window.latent_canvas
    window.show()
    qtbot.waitExposed(window)
    base = image_of(window)
    select(canvas.mode_combo, "seeds")
    pad = canvas.pad
    target = pad.to_widget(*pad.pos_xy) + QPointF(40, -30)
    qtbot.mousePress(pad, Qt.MouseButton.LeftButton, pos=target.toPoint())
    qtbot.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=target.toPoint())
    plane = window.history.current().plane
    assert plane is not None and plane.x > 0 and plane.y > 0
    assert not np.array_equal(image_of(window), base)
    select(canvas.mode_combo, "directions")
    canvas.pad.moved.emit(0.5, -0.5, False)
    edits = window.history.current().edits
    a, b = canvas.dir_a.currentData(), canvas.dir_b.currentData()
    assert edits[a].strength == pytest.approx(1.5) and edits[b].strength == pytest.approx(-1.5)


def test_session_save_and_load_round_trip(qtbot, make_window, explorer_models, tmp_path):
    window = make_window(explorer_models["sg3"])
    window.apply_fields({"seed": 12, "psi": 0.6, "translate": (0.05, -0.02), "rotate": 15.0})
    expected_state, expected = window.history.current(), image_of(window)
    path = str(tmp_path / "s.json")
    window.save_session(path)
    assert json.loads(open(path).read())["model"]["sha256"] == window.model_info["sha256"]

    other = make_window(explorer_models["sg2"])
    other.load_session(path)  # opens the session's own model, then applies the state
    assert other.model_info["path"] == explorer_models["sg3"]
    assert other.history.current() == expected_state
    np.testing.assert_array_equal(image_of(other), expected)


def test_png_export_and_reopen_restores_state(qtbot, make_window, explorer_models, tmp_path):
    window = make_window(explorer_models["sg2"])
    window.apply_fields({"seed": 31, "psi": 0.7, "mix_seed": 4, "mix_start": 3})
    window.apply_edit("anime", {"strength": 1.5, "layer_start": 2})
    expected = image_of(window)
    png = str(tmp_path / "out.png")
    window.export_png(png)

    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(png).convert("RGB")), expected)
    other = make_window()
    other.open_path(png)  # no model open: the recipe's model path is opened
    s = other.history.current()
    assert (s.seed, s.psi, s.mix_seed, s.mix_start) == (31, 0.7, 4, 3)
    assert s.edits["anime"].strength == pytest.approx(1.5) and s.edits["anime"].layer_start == 2
    np.testing.assert_array_equal(image_of(other), expected)


def test_failed_model_load_keeps_state_and_shows_a_dialog(
    qtbot, make_window, explorer_models, tmp_path, monkeypatch
):
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))  # no modal box
    window = make_window(explorer_models["sg2"])
    window.apply_fields({"seed": 9})
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x04garbage")
    window.open_path(str(bad))
    assert shown and "current model stays open" in shown[0]
    assert window.model_info["path"] == explorer_models["sg2"] and window.history.current().seed == 9
    window.open_path(str(tmp_path / "missing.json"))
    assert len(shown) == 2 and "missing.json" in shown[1]


def test_drop_a_model_file_opens_it(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg2"])
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(explorer_models["sg3"])])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    assert window.model_info["path"] == explorer_models["sg3"]
    assert window.inspector.isEnabled()


def test_recent_files_and_settings_persist(qtbot, make_window, explorer_models, settings):
    window = make_window(explorer_models["sg2"])
    window.load_model(explorer_models["sg3"])
    assert window._recent()[:2] == [explorer_models["sg3"], explorer_models["sg2"]]
    titles = [a.text() for a in window.recent_menu.actions()]
    assert titles[:2] == ["tiny_sg3t.safetensors", "tiny_sg2.safetensors"]
    window.close()
    again = MainWindow(bridge=None, settings=settings)
    qtbot.addWidget(again)
    assert again._recent()[0] == explorer_models["sg3"]
    again.bridge.shutdown()


def test_model_info_lists_architecture_and_op_impls(make_window, explorer_models):
    window = make_window(explorer_models["sg3"])
    text = window.model_info_text()
    for part in ("stylegan3-t", "16 × 16", "Parameters", "op bias_act", "ref", "cpu"):
        assert part in text
    assert "ops:" in window.status_ops.text() and "ms" in window.status_render.text()


def test_pca_directions_compute_in_background_with_progress(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg2_plain"])
    panel = window.direction_panel
    assert (
        not panel.rows
        and panel.empty_label.isVisible() is False
        or "No directions" in panel.empty_label.text()
    )
    progress = []
    window.bridge.pca_progress.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(window.bridge.pca_finished, timeout=60_000) as done:
        window.bridge.compute_pca(num_samples=2000)
    assert done.args == [""] and progress and progress[-1][0] == progress[-1][1] == 2000
    assert "pc0" in panel.rows
    before = image_of(window)
    panel.rows["pc0"].value_spin.setValue(2.0)
    assert not np.array_equal(image_of(window), before)


def test_pca_can_be_cancelled(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg2_plain"])
    window.bridge.pca_progress.connect(lambda d, t: window.bridge.cancel_pca())
    with qtbot.waitSignal(window.bridge.pca_finished, timeout=60_000) as done:
        window.bridge.compute_pca(num_samples=200_000)
    assert done.args == ["cancelled"] and not window.direction_panel.rows


def test_blend_slider_appears_with_a_related_model(qtbot, make_window, explorer_models, monkeypatch):
    window = make_window(explorer_models["sg2"])
    panel = window.direction_panel
    assert not panel.blend_slider.isEnabled()
    window.bridge.load_model(explorer_models["sg2_tuned"], role="blend")
    assert panel.blend_slider.isEnabled() and panel.blend_res_combo.count() > 1
    before = image_of(window)
    drag_slider(qtbot, panel.blend_slider, [40, 100])
    assert window.history.current().blend == 1.0
    assert not np.array_equal(image_of(window), before)
    window.undo()
    np.testing.assert_array_equal(image_of(window), before)


def test_shipped_models_are_offered_for_blending(qtbot, make_window, explorer_models, tmp_path, monkeypatch):
    import shutil

    import gan.resources

    models = tmp_path / "resources" / "models"
    models.mkdir(parents=True)
    base = shutil.copy(explorer_models["sg2"], models / "default-base.safetensors")
    shutil.copy(explorer_models["sg2_tuned"], models / "tuned-anime.safetensors")
    monkeypatch.setattr(gan.resources, "RESOURCES", tmp_path / "resources")
    window = make_window(str(base))
    panel = window.direction_panel
    assert panel.blend_partner.isVisibleTo(panel) and panel.blend_partner.text() == "Blend with tuned-anime"
    qtbot.mouseClick(panel.blend_partner, Qt.MouseButton.LeftButton)
    assert panel.blend_slider.isEnabled() and "tuned-anime" in panel.blend_label.text()
    # A model from anywhere else gets no such offer.
    window.load_model(explorer_models["sg2_tuned"])
    assert not panel.blend_partner.isVisibleTo(panel)


def test_smooth_scaling_toggle_is_remembered(make_window, explorer_models):
    window = make_window(explorer_models["sg2"])
    assert window.smooth_action.isChecked() and window.image_view.is_smooth()  # the default
    window.smooth_action.trigger()
    assert not window.image_view.is_smooth()
    again = make_window(explorer_models["sg2"])  # same settings store
    assert not again.smooth_action.isChecked() and not again.image_view.is_smooth()


def test_async_window_renders_in_the_background(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg2"], force_sync=False)
    with qtbot.waitSignal(window.bridge.rendered, timeout=30_000):
        window.apply_fields({"seed": 3})
    assert window.history.current().seed == 3 and window.last_result["error"] is None


def test_new_model_without_directions_gets_pca_in_background(qtbot, make_window, explorer_models):
    window = make_window()
    window.auto_pca = True
    with qtbot.waitSignal(window.bridge.pca_finished, timeout=60_000) as done:
        window.load_model(explorer_models["sg2_plain"])
        assert window.direction_panel.pca_box.isVisible() or not window.isVisible()
    assert done.args == [""] and "pc0" in window.direction_panel.rows
    assert not window.direction_panel.pca_box.isVisibleTo(window.direction_panel)


def test_menu_opens_the_export_and_training_dialogs(qtbot, make_window, explorer_models):
    from PySide6.QtWidgets import QDialog

    window = make_window(explorer_models["sg2"])
    window.apply_fields({"seed": 5})
    window.open_export_dialog()
    window.open_training_dialog()
    dialogs = {type(d).__name__: d for d in window.findChildren(QDialog) if d.isVisible()}
    assert set(dialogs) >= {"ExportDialog", "TrainingDialog"}
    dialogs["TrainingDialog"].open_snapshot_requested.emit(explorer_models["sg3"])
    assert window.model_info["path"] == explorer_models["sg3"]
    for d in dialogs.values():
        d.close()


def test_truncation_cutoff_applies_to_coarse_layers_only(make_window, explorer_models):
    window = make_window(explorer_models["sg2"])
    window.latent_panel.psi_spin.setValue(0.0)
    all_truncated = image_of(window)
    window.latent_panel.cutoff_spin.setValue(2)
    assert window.history.current().truncation_cutoff == 2
    assert not np.array_equal(image_of(window), all_truncated)
    window.latent_panel.cutoff_spin.setValue(0)
    assert window.history.current().truncation_cutoff is None
    np.testing.assert_array_equal(image_of(window), all_truncated)


def test_png_export_waits_for_the_current_render(qtbot, make_window, explorer_models, tmp_path):
    from PIL import Image

    reference = make_window(explorer_models["sg2"])
    reference.apply_fields({"seed": 4})
    window = make_window(explorer_models["sg2"], force_sync=False)
    window.apply_fields({"seed": 4})  # the render of seed 4 is still pending here
    window.export_png(str(tmp_path / "a.png"))
    assert not window.messages
    exported = np.asarray(Image.open(tmp_path / "a.png").convert("RGB"))
    np.testing.assert_array_equal(exported, image_of(reference))


def test_last_session_comes_back_on_the_next_start(qtbot, make_window, explorer_models, settings):
    window = make_window(explorer_models["sg3"])
    window.apply_fields({"seed": 21, "rotate": 10.0})
    window.close()  # saves the session into the settings
    again = make_window()
    assert again.restore_last_session()
    assert again.model_info["path"] == explorer_models["sg3"]
    assert again.history.current().seed == 21 and again.history.current().rotate == 10.0
    settings.setValue("last_session", "{broken")
    assert not make_window().restore_last_session()


def test_computed_pca_directions_are_saved_with_the_model(qtbot, make_window, tmp_path):
    from tests.support.tiny import save_tiny

    path = save_tiny(tmp_path / "m.safetensors", "stylegan2")
    window = make_window(path)
    with qtbot.waitSignal(window.bridge.pca_finished, timeout=60_000):
        window.bridge.compute_pca(num_samples=500, num_components=3)
    old_sha = window.model_info["sha256"]
    window.direction_panel.rows["pc1"].value_spin.setValue(1.0)
    window.save_directions()  # rewrites the file and reopens it, keeping the state
    assert window.model_info["sha256"] != old_sha
    assert [d["name"] for d in window.model_info["directions"]] == ["pc0", "pc1", "pc2"]
    assert window.history.current().edits["pc1"].strength == 1.0
    other = make_window(path)
    assert "pc2" in other.direction_panel.rows


def test_class_picker_for_a_conditional_model(make_window, tmp_path):
    from tests.support.tiny import save_tiny

    window = make_window(save_tiny(tmp_path / "cond.safetensors", "stylegan2", c_dim=3))
    combo = window.latent_panel.class_combo
    assert combo.isEnabled() and combo.count() == 3 and window.history.current().class_idx == 0
    first = image_of(window)
    select(combo, 2)
    assert window.history.current().class_idx == 2
    assert not np.array_equal(image_of(window), first)


def test_direction_sliders_stop_at_their_measured_range(qtbot, make_window, explorer_models, tmp_path):
    import dataclasses
    import shutil

    from gan.edit.directions import load_directions, save_directions
    from gan.model_io import load_model

    path = tmp_path / "ranged.safetensors"
    shutil.copy(explorer_models["sg2"], path)
    anime = {d.name: d for d in load_directions(load_model(path))}["anime"]
    save_directions(path, [dataclasses.replace(anime, range=(-2.5, 4.0))])
    window = make_window(str(path))
    row, pc0 = window.direction_panel.rows["anime"], window.direction_panel.rows["pc0"]
    assert (row.slider.minimum(), row.slider.maximum()) == (-250, 400)
    assert (row.value_spin.minimum(), row.value_spin.maximum()) == (-2.5, 4.0)
    assert (pc0.slider.minimum(), pc0.slider.maximum()) == (-400, 400)  # the default +-4
    window.direction_panel.set_state(window.history.current())
    # The latent canvas reaches +-3 units; the direction stops at -2.5.
    window._on_canvas_directions("anime", -3.0, "pc0", -3.0, "")
    assert window.history.current().edits["anime"].strength == -2.5
    assert window.history.current().edits["pc0"].strength == -3.0


def test_a_fresh_start_opens_on_the_models_default_seed(make_window, explorer_models, tmp_path):
    import shutil

    from gan.model_defaults import store_default_seed

    path = tmp_path / "seeded.safetensors"
    shutil.copy(explorer_models["sg2"], path)
    store_default_seed(path, 11)
    window = make_window(str(path))
    assert window.model_info["default_seed"] == 11 and window.history.current().seed == 11
    window.apply_fields({"seed": 3})
    window.load_model(str(path))  # reopening keeps what the user chose
    assert window.history.current().seed == 3
    plain = make_window(explorer_models["sg2_plain"])
    assert plain.model_info["default_seed"] is None and plain.history.current().seed == 0


def test_a_session_that_cannot_be_written_is_reported_and_leaves_nothing(
    make_window, explorer_models, tmp_path
):
    window = make_window(explorer_models["sg2"])
    window.quiet_errors = True
    window.save_session(str(tmp_path / "missing" / "s.json"))
    assert window.messages[-1][1] == "Cannot save session" and not (tmp_path / "missing").exists()
