"""Closing a window or dialog while its background task runs: the task is cancelled and waited
for, and a QThread is never deleted while it runs (that aborts the whole process:
"QThread: Destroyed while thread is still running", issue #24)."""

from __future__ import annotations

import os

from explorer.dialogs.export_dialog import ExportDialog
from explorer.tasks import wait_for_adopted_tasks
from gan.model_io import load_model
from gan.recipe import Recipe, model_ref
from gan.render import RenderArgs


def _long_export(qtbot, model_path: str, out: str) -> ExportDialog:
    """An export dialog with a long rotation loop running, past its first frame."""
    dialog = ExportDialog(model_path, Recipe(RenderArgs(seed=3), model_ref(load_model(model_path))))
    dialog.kind.setCurrentIndex(dialog.kind.findData("rotate"))
    dialog.fps.setValue(30)
    dialog.duration.setValue(60.0)  # 1800 frames: far from done when the dialog closes
    dialog.out_path.setText(out)
    frames = []
    dialog.bridge.progress.connect(lambda done, total: frames.append(done))
    dialog.export_button.click()
    qtbot.waitUntil(lambda: bool(frames) and frames[-1] >= 1, timeout=60_000)
    assert dialog.bridge.is_running()
    return dialog


def test_closing_the_export_dialog_mid_export_cancels_it(qtbot, explorer_models, tmp_path):
    out = str(tmp_path / "spin.mp4")
    dialog = _long_export(qtbot, explorer_models["sg3"], out)
    qtbot.addWidget(dialog)
    dialog.close()
    assert not dialog.bridge.is_running()
    assert not os.path.exists(out) and os.listdir(tmp_path) == []  # no video, no temporary file


def test_a_dialog_deleted_while_its_export_still_runs_does_not_abort(qtbot, explorer_models, tmp_path):
    out = str(tmp_path / "spin.mp4")
    dialog = _long_export(qtbot, explorer_models["sg3"], out)
    task = dialog.bridge._task
    dialog.bridge.shutdown(timeout_ms=0)  # no time to end: the task goes to the application
    assert task.stop_requested()
    assert not task.isRunning() or task.parent() is not dialog.bridge
    dialog.deleteLater()
    qtbot.wait(50)  # the dialog (and its bridge) are gone; a running child thread would abort here
    assert wait_for_adopted_tasks(60_000)
    qtbot.wait(50)  # the adopted task deletes itself
    assert not os.path.exists(out)


def test_closing_the_main_window_mid_pca_cancels_and_waits(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg2_plain"], force_sync=False)
    steps = []
    window.bridge.pca_progress.connect(lambda done, total: steps.append(done))
    window.bridge.compute_pca(num_samples=500_000)
    qtbot.waitUntil(lambda: bool(steps), timeout=60_000)
    task = window.bridge._pca
    assert task is not None and task.isRunning()
    window.close()
    assert not task.isRunning() and not window.bridge.pca_running
