"""Export dialog (pytest-qt, offscreen): writes a playable MP4 with the right frame count, reports
progress to 100 %, cancel leaves no file, errors are shown."""

from __future__ import annotations

import os

import imageio_ffmpeg
import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from explorer.dialogs.export_dialog import ExportDialog  # noqa: E402
from gan.model_io import load_model, save_model  # noqa: E402
from gan.recipe import Recipe, model_ref  # noqa: E402
from gan.render import RenderArgs  # noqa: E402
from tests.support.tiny import entry, make_plain_generator, select  # noqa: E402


def _tiny_model(path, arch: str) -> str:
    save_model(path, make_plain_generator(arch).requires_grad_(False), arch=arch)
    return str(path)


@pytest.fixture(scope="module")
def sg2_path(tmp_path_factory) -> str:
    return _tiny_model(tmp_path_factory.mktemp("m") / "sg2.safetensors", "stylegan2")


@pytest.fixture(scope="module")
def sg3_path(tmp_path_factory) -> str:
    return _tiny_model(tmp_path_factory.mktemp("m") / "sg3.safetensors", "stylegan3-t")


def recipe_for(path: str, seed: int = 3) -> Recipe:
    return Recipe(RenderArgs(seed=seed, psi=0.8), model_ref(load_model(path, training_nets=False)))


def frame_count(path) -> int:
    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


@pytest.fixture
def make_dialog(qtbot):
    made = []

    def make(model_path: str) -> ExportDialog:
        dialog = ExportDialog(model_path, recipe_for(model_path))
        qtbot.addWidget(dialog)
        made.append(dialog)
        return dialog

    yield make
    for dialog in made:
        dialog.bridge.shutdown()


def wait_done(qtbot, dialog, timeout=120_000):
    qtbot.waitUntil(lambda: not dialog.bridge.is_running(), timeout=timeout)
    qtbot.wait(20)  # deliver the queued result signal


def test_export_writes_playable_mp4(qtbot, make_dialog, sg2_path, tmp_path):
    dialog = make_dialog(sg2_path)
    assert entry(dialog.kind, "rotate").isEnabled()  # StyleGAN2 rotates too (its 4x4 constant)
    select(dialog.kind, "interp")  # seed interpolation
    dialog.seeds.setText("1,2,5")
    dialog.fps.setValue(6)
    dialog.duration.setValue(1.0)
    dialog.size.setValue(32)
    out = tmp_path / "interp.mp4"
    dialog.out_path.setText(str(out))
    progress = []
    dialog.bridge.progress.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(dialog.export_finished, timeout=120_000) as blocker:
        dialog.export_button.click()
        assert not dialog.export_button.isEnabled() and dialog.cancel_button.isEnabled()
    result = blocker.args[0]
    assert result["frames"] == 6 and frame_count(out) == 6
    assert (result["width"], result["height"]) == (32, 32)
    assert progress[-1] == (6, 6) and dialog.progress.value() == 100
    assert "Saved" in dialog.status.text() and dialog.export_button.isEnabled()
    assert sorted(os.listdir(tmp_path)) == ["interp.mp4"]


def test_rotation_loop_on_stylegan3(qtbot, make_dialog, sg3_path, tmp_path):
    dialog = make_dialog(sg3_path)
    assert dialog.kind.currentData() == "rotate" and entry(dialog.kind, "rotate").isEnabled()
    dialog.fps.setValue(3)
    dialog.duration.setValue(1.0)
    out = tmp_path / "spin.mp4"
    dialog.out_path.setText(str(out))
    with qtbot.waitSignal(dialog.export_finished, timeout=120_000):
        dialog.export_button.click()
    assert frame_count(out) == 3 and dialog.progress.value() == 100


def test_cancel_leaves_no_file(qtbot, make_dialog, sg2_path, tmp_path):
    dialog = make_dialog(sg2_path)
    dialog.fps.setValue(30)
    dialog.duration.setValue(20.0)  # 600 frames: far more than rendered before the cancel
    out = tmp_path / "long.mp4"
    dialog.out_path.setText(str(out))
    with qtbot.waitSignal(dialog.bridge.progress, timeout=120_000, check_params_cb=lambda d, t: d >= 2):
        dialog.export_button.click()
    with qtbot.waitSignal(dialog.bridge.cancelled, timeout=120_000):
        dialog.cancel_button.click()
    wait_done(qtbot, dialog)
    assert dialog.result is None and "no file was written" in dialog.status.text()
    assert os.listdir(tmp_path) == []
    assert dialog.export_button.isEnabled()


def test_errors_are_shown(qtbot, make_dialog, sg2_path, tmp_path):
    dialog = make_dialog(sg2_path)
    select(dialog.kind, "interp")  # a seed interpolation with one seed
    dialog.seeds.setText("7")
    dialog.out_path.setText(str(tmp_path / "x.mp4"))
    assert dialog.start_export() is False
    assert "at least 2 seeds" in dialog.status.text() and not dialog.bridge.is_running()
    dialog.seeds.setText("1,2")
    dialog.fps.setValue(2)
    dialog.duration.setValue(1.0)
    dialog.out_path.setText(str(tmp_path / "missing" / "x.mp4"))
    with qtbot.waitSignal(dialog.bridge.failed, timeout=120_000):
        assert dialog.start_export() is True
    wait_done(qtbot, dialog)
    assert "does not exist" in dialog.last_error and dialog.export_button.isEnabled()
    assert dialog.progress.format() == "failed" and dialog.progress.value() == 0  # no "0% (48 / 48 frames)"
    assert os.listdir(tmp_path) == []


def test_direction_sweep_from_model_directions(qtbot, sg2_path, tmp_path):
    import shutil

    from gan.edit.directions import Direction, save_directions

    model_path = str(shutil.copy(sg2_path, tmp_path / "m.safetensors"))
    vec = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    save_directions(
        model_path,
        [
            Direction(
                name="smile",
                kind="pca",
                vector=vec / np.linalg.norm(vec),
                layer_start=1,
                layer_end=3,
                scale=2.0,
            )
        ],
    )
    dialog = ExportDialog(model_path, recipe_for(model_path))
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.direction.count() == 1, timeout=120_000)
    select(dialog.kind, "sweep")
    assert dialog.direction.currentText() == "smile"
    assert (dialog.layer_start.value(), dialog.layer_end.value()) == (1, 3)
    dialog.fps.setValue(4)
    dialog.duration.setValue(1.0)
    out = tmp_path / "out" / "sweep.mp4"
    out.parent.mkdir()
    dialog.out_path.setText(str(out))
    with qtbot.waitSignal(dialog.export_finished, timeout=120_000):
        dialog.export_button.click()
    assert frame_count(out) == 4
    dialog.bridge.shutdown()


def test_sweep_disabled_without_directions(qtbot, make_dialog, sg2_path):
    dialog = make_dialog(sg2_path)
    qtbot.waitUntil(lambda: dialog.direction_note.text() != "", timeout=120_000)
    assert dialog.direction.count() == 0 and not entry(dialog.kind, "sweep").isEnabled()
    assert "no directions" in dialog.direction_note.text()


def test_encoder_choices_are_restored(qtbot, sg2_path, tmp_path):
    from PySide6.QtCore import QSettings

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    first = ExportDialog(sg2_path, recipe_for(sg2_path), qsettings=settings)
    qtbot.addWidget(first)
    first.fps.setValue(2)
    first.duration.setValue(1.0)
    first.crf.setValue(23)
    first.size.setValue(32)
    (tmp_path / "videos").mkdir()
    first.out_path.setText(str(tmp_path / "videos" / "a.mp4"))
    with qtbot.waitSignal(first.export_finished, timeout=120_000):
        first.export_button.click()
    first.bridge.shutdown()
    second = ExportDialog(sg2_path, recipe_for(sg2_path), qsettings=settings)
    qtbot.addWidget(second)
    assert (second.fps.value(), second.duration.value(), second.crf.value(), second.size.value()) == (
        2,
        1.0,
        23,
        32,
    )
    assert os.path.dirname(second.out_path.text()) == str(tmp_path / "videos")
    second.bridge.shutdown()


@pytest.fixture(scope="module")
def sg3r_path(tmp_path_factory) -> str:
    return _tiny_model(tmp_path_factory.mktemp("m") / "sg3r.safetensors", "stylegan3-r")


def test_rotation_warning_names_the_arch_and_offers_translation(
    qtbot, make_dialog, sg3_path, sg2_path, sg3r_path
):
    dialog = make_dialog(sg3_path)
    assert dialog.kind.currentData() == "rotate"
    assert dialog.warning_row.isVisibleTo(dialog)
    text = dialog.kind_warning.text()
    assert "StyleGAN3-T" in text and "translation" in text and "StyleGAN3-R" in text
    dialog.use_translation.click()
    assert dialog.kind.currentData() == "translate" and not dialog.warning_row.isVisibleTo(dialog)
    select(dialog.kind, "rotate")
    assert dialog.warning_row.isVisibleTo(dialog)
    assert "StyleGAN2" in make_dialog(sg2_path).kind_warning.text()
    sg3r = make_dialog(sg3r_path)
    assert not sg3r.warning_row.isVisibleTo(sg3r)  # built for rotation: no warning


def test_small_models_are_upscaled(qtbot, sg3_path, tmp_path):
    dialog = ExportDialog(sg3_path, recipe_for(sg3_path), resolution=16)
    qtbot.addWidget(dialog)
    # 16 px: the largest factor offered (8x -> 128 px); 64 px would get 4x (256 px).
    assert dialog.upscale.currentData() == 8 and "16 px → video 128 × 128 px" in dialog.upscale_note.text()
    dialog.upscale_filter.setCurrentIndex(dialog.upscale_filter.findData("nearest"))
    select(dialog.kind, "translate")  # translation
    dialog.fps.setValue(2)
    dialog.duration.setValue(1.0)
    out = tmp_path / "big.mp4"
    dialog.out_path.setText(str(out))
    assert dialog.settings()["upscale"] == 8 and dialog.settings()["upscale_filter"] == "nearest"
    with qtbot.waitSignal(dialog.export_finished, timeout=120_000) as blocker:
        dialog.export_button.click()
    assert (blocker.args[0]["width"], blocker.args[0]["height"]) == (128, 128) and frame_count(out) == 2
    # An explicit resolution wins: the upscale choice is off.
    dialog.size.setValue(48)
    assert not dialog.upscale.isEnabled() and dialog.settings()["upscale"] is None
    dialog.bridge.shutdown()
    from explorer.dialogs.export_dialog import default_upscale

    assert (default_upscale(64), default_upscale(256), default_upscale(1024), default_upscale(None)) == (
        4,
        1,
        1,
        1,
    )


def test_comparison_export(qtbot, sg2_path, sg3_path, tmp_path):
    import imageio_ffmpeg

    models = [
        {"path": sg2_path, "name": "sg2", "arch": "stylegan2"},
        {"path": sg3_path, "name": "sg3", "arch": "stylegan3-t"},
    ]
    dialog = ExportDialog(sg2_path, recipe_for(sg2_path), resolution=16, compare=models)
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "Export comparison video"
    assert not entry(dialog.kind, "interp").isEnabled() and not entry(dialog.kind, "sweep").isEnabled()
    assert "StyleGAN2 and StyleGAN3-T" in dialog.kind_warning.text()  # rotation: only SG3-R holds
    dialog.upscale.setCurrentIndex(dialog.upscale.findData(2))
    dialog.fps.setValue(3)
    dialog.duration.setValue(1.0)
    out = tmp_path / "cmp.mp4"
    dialog.out_path.setText(str(out))
    with qtbot.waitSignal(dialog.export_finished, timeout=120_000) as blocker:
        dialog.export_button.click()
    result = blocker.args[0]
    gen = imageio_ffmpeg.read_frames(str(out))
    meta = next(gen)
    assert sum(1 for _ in gen) == 3 == result["frames"]
    assert meta["size"] == (result["width"], result["height"]) == (2 * 32 + 2, 32 + 18)  # two panels, labels
    assert "Note: Only StyleGAN3-R" in dialog.status.text()
    dialog.bridge.shutdown()


def test_directions_are_listed_by_their_slider_names_and_the_path_fits(qtbot, sg2_path, tmp_path):
    import shutil

    from gan.edit.directions import Direction, save_directions

    model_path = str(shutil.copy(sg2_path, tmp_path / "m.safetensors"))
    vec = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    save_directions(model_path, [Direction(name="anime", kind="attribute", vector=vec / np.linalg.norm(vec))])
    dialog = ExportDialog(model_path, recipe_for(model_path))
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.direction.count() == 1, timeout=120_000)
    select(dialog.kind, "sweep")
    assert dialog.direction.currentText() == "Anime-ify" and dialog.settings()["direction_name"] == "anime"
    path = str(tmp_path / "videos" / "stylegan-video.mp4")
    dialog.out_path.setText(path)
    assert dialog.out_path.minimumWidth() >= min(dialog.out_path.fontMetrics().horizontalAdvance(path), 536)
    assert dialog.out_path.toolTip() == path
    dialog.bridge.shutdown()
