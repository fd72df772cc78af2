"""Training dialog (pytest-qt, offscreen): a fake loop drives the plots and buttons quickly; the real
loop trains a tiny 16 px model, the plots receive points, Stop leaves a loadable snapshot, and the
GUI thread stays responsive (event-loop latency measured with a QTimer)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer  # noqa: E402

from explorer.dialogs.training_dialog import TrainingDialog  # noqa: E402
from explorer.training_bridge import TrainingBridge  # noqa: E402
from gan.data.dataset_tool import DatasetWriter  # noqa: E402
from tests.support.tiny import FakeSummary, entry  # noqa: E402

TINY_NET = dict(cbase=256, cmax=16, z_dim=16, map_depth=2, batch=4, gamma=0.1, device="cpu")


@pytest.fixture(scope="module")
def dataset16(tmp_path_factory) -> str:
    """16 images of 16 x 16 px: smooth colour blobs."""
    path = tmp_path_factory.mktemp("data") / "blobs16.zip"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16] / 15.0
    with DatasetWriter(path) as writer:
        for _ in range(16):
            c = rng.uniform(0, 255, (3, 3))
            img = (
                c[0] * (1 - xx[..., None]) + c[1] * xx[..., None] * (1 - yy[..., None]) + c[2] * yy[..., None]
            )
            writer.add(np.clip(img, 0, 255).astype(np.uint8))
    return str(path)


class LatencyProbe:
    """Measures how late a 10 ms QTimer fires: the GUI thread's event-loop latency."""

    def __init__(self, interval_ms: int = 10):
        self.interval = interval_ms / 1000
        self.gaps: list[float] = []
        self._last = None
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._beat)

    def _beat(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append(now - self._last - self.interval)
        self._last = now

    def start(self) -> None:
        self._last = None
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    @property
    def max_ms(self) -> float:
        return 1000 * max(self.gaps)

    @property
    def p99_ms(self) -> float:
        return 1000 * float(np.percentile(self.gaps, 99))


# --- a fake loop: the dialog and bridge without torch work --------------------------------


@dataclass
class FakeTick:
    tick: int
    kimg: float
    total_kimg: float
    sec_per_kimg: float
    eta_sec: float
    stats: dict = field(default_factory=dict)
    snapshot_path: str | None = None
    sample_grid_path: str | None = None
    run_dir: str = ""
    done: bool = False
    message: str = ""


class _ExitingThread:
    """A finished run's thread that has reported its end but not yet exited (a busy machine)."""

    def __init__(self):
        self.waited = []

    def isRunning(self) -> bool:
        return True

    def wait(self, ms: int) -> bool:
        self.waited.append(ms)
        return True


def test_a_run_that_reported_its_end_can_be_resumed_at_once(qtbot, tmp_path, dataset16):
    """Resume right after run_finished: the old thread may still be exiting; that is no reason to
    refuse, and the new run waits for it first (a flaky failure of the test below, seen under load)."""
    configs = []
    bridge = TrainingBridge(run_fn=make_fake_run(str(tmp_path / "run"), configs))
    old = _ExitingThread()
    bridge._train = old
    assert bridge.is_running()  # no end reported yet: a run is going
    bridge._on_run_done({"run_dir": str(tmp_path / "run")})
    assert not bridge.is_running()
    with qtbot.waitSignal(bridge.run_finished, timeout=60_000):
        assert bridge.start(
            dict(data=dataset16, outdir=str(tmp_path), cfg="stylegan2", kimg=1000.0, **TINY_NET)
        )
        bridge.stop()
    assert old.waited  # the new run waited for the old thread
    assert bridge.shutdown()  # its own thread, too, may still be exiting


def make_fake_run(run_dir, seen_configs):
    os.makedirs(run_dir, exist_ok=True)
    grid = os.path.join(run_dir, "fakes000000.png")
    Image.fromarray(np.full((32, 64, 3), 200, np.uint8)).save(grid)
    snapshot = os.path.join(run_dir, "network-snapshot-000000.safetensors")

    def run(config, should_stop=None, on_tick=None):
        seen_configs.append(config)
        tick = 0
        while True:
            stop = should_stop()
            kimg = 0.5 * tick
            stats = {
                "Loss/G/loss": 1.0 + tick,
                "Loss/D/loss": 0.5,
                "Progress/augment": 0.01 * tick,
                "Timing/sec_per_kimg": float("nan") if tick == 0 else 2.0,
            }
            if tick % 2 == 0:
                stats.update({"Metrics/eqt50k_int": 20.0 + tick, "Metrics/eqr50k": 15.0})
            last = stop or kimg >= config.kimg
            info = FakeTick(tick, kimg, config.kimg, 2.0, 10.0, stats, run_dir=run_dir, done=last)
            if tick % 2 == 0 or last:
                info.snapshot_path = snapshot
            if tick % 2 == 0:
                info.sample_grid_path = grid
            info.message = "stopped on request" if stop else ""
            on_tick(info)
            if last:
                return FakeSummary(run_dir, kimg, snapshot, stop, "stopped" if stop else "done")
            tick += 1
            time.sleep(0.01)

    return run


def test_fake_loop_drives_plots_preview_stop_resume(qtbot, tmp_path, dataset16):
    configs = []
    bridge = TrainingBridge(run_fn=make_fake_run(str(tmp_path / "run"), configs))
    dialog = TrainingDialog(None, bridge=bridge, outdir=str(tmp_path / "runs"))
    qtbot.addWidget(dialog)
    assert not entry(dialog.start_from, "finetune").isEnabled()  # no open model to fine-tune
    assert not dialog.start_button.isEnabled()
    with qtbot.waitSignal(bridge.inspected, timeout=120_000):
        dialog.set_data_path(dataset16)
    assert dialog.dataset_info["resolution"] == 16 and "16 images" in dialog.data_info.text()
    dialog.set_options(cfg="stylegan2", kimg=1000.0, metrics=["eqt50k_int", "eqr50k"], **TINY_NET)
    with qtbot.waitSignal(bridge.tick, timeout=60_000, check_params_cb=lambda t: t["tick"] >= 4):
        assert dialog.start_training()
    config = configs[0]
    assert (config.cfg, config.batch, config.cbase, config.metrics) == (
        "stylegan2",
        4,
        256,
        ["eqt50k_int", "eqr50k"],
    )
    assert config.data == dataset16 and config.resume is None
    assert dialog.stop_button.isEnabled() and not dialog.start_button.isEnabled()
    assert len(dialog.plots.series("Loss/G/loss")[0]) >= 5
    assert dialog.plots.series("Metrics/eqt50k_int")[1][:2] == [20.0, 22.0]
    assert dialog.plots.series("Timing/sec_per_kimg")[1][0] == 2.0  # the NaN of tick 0 is skipped
    assert dialog.preview.pixmap() is not None and not dialog.preview.pixmap().isNull()
    with qtbot.waitSignal(bridge.run_finished, timeout=60_000) as finished:
        dialog.stop_button.click()
    assert finished.args[0]["stopped"] is True and dialog.headline.text().startswith("Stopped")
    assert dialog.resume_button.isEnabled() and dialog.start_button.isEnabled()
    with qtbot.waitSignal(dialog.open_snapshot_requested) as opened:
        dialog.open_button.click()
    assert opened.args[0].endswith("network-snapshot-000000.safetensors")
    # Resume continues the same run folder, keeping the plotted history.
    points = dialog.plots.point_count()
    with qtbot.waitSignal(bridge.tick, timeout=60_000):
        assert dialog.resume_training()
    assert configs[1].resume == str(tmp_path / "run") and configs[1].finetune is False
    with qtbot.waitSignal(bridge.run_finished, timeout=60_000):
        dialog.stop_training()
    assert dialog.plots.point_count() > points
    assert bridge.shutdown(5000)


def test_bad_options_and_failures_are_shown(qtbot, tmp_path, dataset16):
    def broken_run(config, should_stop=None, on_tick=None):
        raise RuntimeError("out of memory")

    bridge = TrainingBridge(run_fn=broken_run)
    dialog = TrainingDialog(str(tmp_path / "open.safetensors"), bridge=bridge, outdir=str(tmp_path / "runs"))
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(bridge.inspected, timeout=120_000):
        dialog.set_data_path(str(tmp_path / "nothing.zip"))
    assert not dialog.start_button.isEnabled() and "does not exist" in dialog.start_reason.text()
    assert dialog.start_training() is False and "does not exist" in dialog.last_error
    with qtbot.waitSignal(bridge.inspected, timeout=120_000):
        dialog.set_data_path(dataset16)
    dialog.set_options(start_from="finetune")  # the open model file does not exist
    assert dialog.start_training() is False and "resume" in dialog.last_error
    dialog.set_options(start_from="scratch")
    with qtbot.waitSignal(bridge.run_failed, timeout=60_000):
        assert dialog.start_training()
    qtbot.waitUntil(lambda: not bridge.is_running(), timeout=5000)
    assert "RuntimeError: out of memory" in dialog.last_error and dialog.start_button.isEnabled()


def test_folder_of_images_becomes_a_data_set(qtbot, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i, (w, h) in enumerate([(40, 30), (23, 50), (64, 64), (17, 33)]):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / f"p{i}.jpg")
    (folder / "notes.txt").write_text("not an image")
    bridge = TrainingBridge(run_fn=lambda *a, **k: None)
    dialog = TrainingDialog(None, bridge=bridge, outdir=str(tmp_path / "runs"))
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(bridge.inspected, timeout=120_000):
        dialog.set_data_path(str(folder))
    assert dialog.dataset_info is None and "4 image(s) found" in dialog.data_info.text()
    assert not dialog.make_box.isHidden()
    # Not a data set: Start stays disabled and says why, instead of failing once training starts.
    assert not dialog.start_button.isEnabled() and not dialog.start_reason.isHidden()
    assert "Start needs a training data set" in dialog.start_reason.text()
    assert dialog.start_training() is False and "Not a training data set" in dialog.last_error
    dialog.make_resolution.setCurrentIndex(dialog.make_resolution.findData(16))
    progress = []
    bridge.dataset_progress.connect(lambda d, t: progress.append((d, t)))
    with qtbot.waitSignal(bridge.inspected, timeout=120_000, check_params_cb=lambda i: i.get("ok")):
        dialog.make_button.click()
    assert progress[-1] == (4, 4)
    assert dialog.data_path.text() == str(folder) + "-16px.zip" and os.path.isfile(dialog.data_path.text())
    assert dialog.start_button.isEnabled() and dialog.start_reason.isHidden()
    assert dialog.dataset_info["count"] == 4 and dialog.dataset_info["resolution"] == 16
    assert dialog.make_box.isHidden()
    assert bridge.shutdown(5000)


# --- the real training loop ----------------------------------------------------------------


def test_real_tiny_run_plots_stop_snapshot_responsive(qtbot, tmp_path, dataset16):
    from gan.model_io import load_model

    # The training child runs at normal priority here: at its usual nice 10 it gets next to no
    # CPU while other jobs load the machine, and the run would not reach its ticks in time.
    bridge = TrainingBridge(nice=0)
    dialog = TrainingDialog(None, bridge=bridge, outdir=str(tmp_path / "runs"))
    bridge.setParent(dialog)
    qtbot.addWidget(dialog)
    dialog.show()
    with qtbot.waitSignal(bridge.inspected, timeout=120_000):
        dialog.set_data_path(dataset16)
    # Tick 0 always writes a snapshot and a sample grid; Stop writes the last snapshot.
    dialog.set_options(cfg="stylegan2", kimg=10.0, tick_kimg=0.008, snap=50, **TINY_NET)
    probe = LatencyProbe()
    probe.start()
    try:
        with qtbot.waitSignal(bridge.tick, timeout=600_000, check_params_cb=lambda t: t["tick"] >= 1):
            assert dialog.start_training()
        assert len(dialog.plots.series("Loss/G/loss")[0]) >= 2 and dialog.plots.series("Loss/D/loss")[0]
        assert len(dialog.plots.series("Progress/augment")[0]) >= 2
        assert dialog.latest_grid is not None and not dialog.preview.pixmap().isNull()
        with qtbot.waitSignal(bridge.run_finished, timeout=600_000) as finished:
            dialog.stop_button.click()
    finally:
        probe.stop()
    summary = finished.args[0]
    assert summary["stopped"] is True and summary["reason"] == "stopped"
    snapshot = summary["snapshot_path"]
    assert snapshot and os.path.isfile(snapshot) and dialog.latest_snapshot == snapshot
    model = load_model(snapshot, training_nets=False)
    assert model.arch == "stylegan2" and model.G.img_resolution == 16
    with qtbot.waitSignal(dialog.open_snapshot_requested) as opened:
        dialog.open_button.click()
    assert opened.args[0] == snapshot
    print(
        f"event-loop latency while training: max {probe.max_ms:.1f} ms, p99 {probe.p99_ms:.1f} ms, "
        f"{len(probe.gaps)} beats, load {os.getloadavg()[0]:.1f}"
    )
    assert len(probe.gaps) > 50
    load = os.getloadavg()[0]
    if load <= (os.cpu_count() or 1):
        assert probe.max_ms < 100, f"GUI thread blocked for {probe.max_ms:.0f} ms"
    else:
        # More runnable processes than cores (other jobs on a shared machine): the OS may hold
        # any thread back for a while, whatever this program does; judge the typical latency.
        assert probe.p99_ms < 100, f"GUI thread late by {probe.p99_ms:.0f} ms (p99) at load {load:.1f}"
    assert bridge.shutdown(10_000)


def test_last_options_are_restored(qtbot, tmp_path, dataset16):
    from PySide6.QtCore import QSettings

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    bridge = TrainingBridge(run_fn=make_fake_run(str(tmp_path / "run"), []))
    first = TrainingDialog(None, bridge=bridge, outdir=str(tmp_path / "runs"), settings=settings)
    qtbot.addWidget(first)
    with qtbot.waitSignal(bridge.inspected, timeout=120_000):
        first.set_data_path(dataset16)
    first.set_options(cfg="stylegan3-r", kimg=0.5, metrics=["eqr50k"], **TINY_NET)
    with qtbot.waitSignal(bridge.run_finished, timeout=60_000):
        assert first.start_training()
    second = TrainingDialog(None, bridge=TrainingBridge(run_fn=lambda *a, **k: None), settings=settings)
    qtbot.addWidget(second)
    qtbot.waitUntil(lambda: second.dataset_info is not None, timeout=120_000)
    restored = second.options()
    assert restored["cfg"] == "stylegan3-r" and restored["kimg"] == 0.5 and restored["metrics"] == ["eqr50k"]
    assert (
        restored["data"] == dataset16
        and restored["cbase"] == 256
        and restored["outdir"] == str(tmp_path / "runs")
    )
    assert bridge.shutdown(5000)


CLOSE_DURING_A_SLOW_STEP = """
import os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication, QMessageBox
from explorer.dialogs.training_dialog import TrainingDialog
from explorer.tasks import wait_for_adopted_tasks
from explorer.training_bridge import TrainingBridge
from tests.support.tiny import FakeSummary

def slow_step(config, should_stop=None, on_tick=None):
    time.sleep(3)  # one step that does not look at should_stop (a long step on a busy machine)
    return FakeSummary("", 0.0, None, True, "stopped")

app = QApplication([])
QMessageBox.question = lambda *a, **k: QMessageBox.StandardButton.Yes  # "stop and close?"
bridge = TrainingBridge(run_fn=slow_step)
dialog = TrainingDialog(None, bridge=bridge, outdir=sys.argv[2])
dialog.shutdown_timeout_ms = 100  # closing gives up waiting long before the step ends
dialog.set_data_path(sys.argv[1])
deadline = time.monotonic() + 120
while dialog.dataset_info is None and time.monotonic() < deadline:  # checked in the background
    app.processEvents()
    time.sleep(0.01)
assert dialog.start_training()
dialog.close()
task = bridge._train
dialog.deleteLater()
del dialog, bridge
app.processEvents()
app.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # the dialog (and its bridge) go now
import gc; gc.collect()
assert task.isRunning() and task.parent() is app, "the running task was not handed to the app"
assert wait_for_adopted_tasks(30_000)
print("survived")
"""


def test_closing_during_a_long_step_never_deletes_a_running_thread(tmp_path, dataset16):
    """The abort seen under load: closing the dialog waits at most a while for the stopping run,
    then the dialog and its bridge are deleted; a QThread destroyed while running takes the whole
    process down ("Fatal Python error: Aborted"). Run in a child so the old behaviour fails the
    test instead of killing pytest."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", CLOSE_DURING_A_SLOW_STEP, dataset16, str(tmp_path / "runs")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "survived" in proc.stdout, proc.stderr[-3000:]
    assert "Destroyed while thread" not in proc.stderr


def test_estimate_and_cpu_sized_settings(qtbot, tmp_path, dataset16, monkeypatch):
    """The dialog measures how long the chosen settings take here and, without a GPU, offers
    settings a CPU trains at a useful pace."""
    monkeypatch.setattr(TrainingBridge, "has_gpu", staticmethod(lambda: False))
    bridge = TrainingBridge(run_fn=lambda *a, **k: None)
    dialog = TrainingDialog(None, bridge=bridge, outdir=str(tmp_path / "runs"))
    qtbot.addWidget(dialog)
    assert not dialog.cpu_box.isHidden() and not dialog.estimate_button.isEnabled()  # no data yet
    with qtbot.waitSignal(bridge.inspected, timeout=120_000):
        dialog.set_data_path(dataset16)
    dialog.use_cpu_sized()
    options = dialog.options()
    assert (options["cbase"], options["cmax"], options["z_dim"], options["batch"]) == (4096, 64, 128, 8)
    assert options["tick_kimg"] == 1.0 and options["snap"] == 5
    dialog.set_options(cfg="stylegan2", kimg=2.0, **TINY_NET)
    with qtbot.waitSignal(bridge.estimated, timeout=300_000) as done:
        assert dialog.estimate_time()
    result = done.args[0]
    assert result["ok"] and result["batch"] == 4 and result["seconds_to_end"] > 0
    text = dialog.estimate_label.text()
    assert "s/kimg" in text and "to 2 kimg" in text and "per snapshot" in text
    dialog.kimg.setValue(5.0)  # changed settings: the old estimate no longer holds
    assert "again" in dialog.estimate_label.text() and dialog.last_estimate is None
    qtbot.waitUntil(lambda: not bridge.busy(), timeout=60_000)
    assert bridge.shutdown(5000)
