"""The training dialog's link to `gan.train` and `gan.data`: background work as Qt signals.

The training loop is a plain function (`gan.train.loop.run(config, should_stop, on_tick)`); this
adapter runs it in a child process (explorer.training_process) watched by a background task
(explorer.tasks), turns each TickInfo into a plain dict emitted as a signal, and sets the stop
flag from the GUI thread. The run function is a constructor argument so tests can drive the GUI
with a fake loop (run in a thread of this process).

Everything crossing to the widgets is plain data (dicts, strings, numbers). `gan` is imported
lazily, so importing this module (and the dialog) does not load torch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from explorer.tasks import BackgroundTask, start_task, stop_tasks
from explorer.training_process import TRAINING_NICE, default_run, process_work, thread_work

log = logging.getLogger(__name__)


class TrainingBridge(QObject):
    """Start / stop training and make data sets in the background; all signals carry plain data.

    Signals (queued to the GUI thread):
      tick(dict)              one TickInfo as a dict (tick, kimg, total_kimg, sec_per_kimg, eta_sec,
                              stats {name: float}, snapshot_path, sample_grid_path, run_dir, done, message)
      run_finished(dict)      the RunSummary (run_dir, kimg, snapshot_path, stopped, reason, message)
      run_failed(str)         a clear message (bad option, unreadable data, crash)
      dataset_progress(int, int), dataset_finished(dict), dataset_failed(str)
      inspected(dict)         result of `inspect_dataset`
      estimated(dict)         result of `estimate`: {ok, message} plus gan.train.estimate.Estimate
                              fields and "lines" (the text gan train --dry-run prints)
    """

    tick = Signal(dict)
    run_finished = Signal(dict)
    run_failed = Signal(str)
    dataset_progress = Signal(int, int)
    dataset_finished = Signal(dict)
    dataset_failed = Signal(str)
    inspected = Signal(dict)
    estimated = Signal(dict)

    def __init__(
        self,
        run_fn: Callable | None = None,
        parent: QObject | None = None,
        in_process: bool | None = None,
        nice: int = TRAINING_NICE,
    ):
        """run_fn(config, should_stop, on_tick) -> RunSummary, default gan.train.loop.run.
        in_process: run it in a thread of this process (default only for an injected run_fn) or in
        a child process (default for the real loop; run_fn must then be a module-level function).
        nice: the child process's CPU priority (0 = as this process)."""
        super().__init__(parent)
        self._run_fn = run_fn or default_run
        self._nice = nice
        self._in_process = run_fn is not None if in_process is None else in_process
        self._train: BackgroundTask | None = None
        self._train_ended = False  # the run reported finished or failed (its thread may still exit)
        self._convert: BackgroundTask | None = None
        self._inspect: BackgroundTask | None = None
        self._estimate: BackgroundTask | None = None
        self._inspect_path = ""
        self.last_run_dir: str | None = None
        self.latest_snapshot: str | None = None

    # --- options -----------------------------------------------------------------------

    @staticmethod
    def field_help(name: str) -> str:
        from gan.train.config import field_help

        return field_help(name)

    @staticmethod
    def has_gpu() -> bool:
        from gan.capabilities import cuda_name

        return cuda_name() is not None

    @staticmethod
    def cpu_sized(resolution: int | None) -> dict:
        """TrainConfig values that train at a useful pace on a CPU (gan.train.estimate.cpu_sized)."""
        from gan.train.estimate import cpu_sized

        return cpu_sized(resolution)

    @staticmethod
    def metric_names() -> list[str]:
        from gan.metrics import METRICS

        return list(METRICS)

    @staticmethod
    def validate(options: dict) -> str | None:
        """None if the options make a valid TrainConfig, else the message to show."""
        from gan.errors import UserError
        from gan.train.config import TrainConfig

        try:
            TrainConfig.from_dict(options).validate()
        except UserError as exc:
            return str(exc)
        except TypeError as exc:
            return f"invalid training options: {exc}"
        return None

    # --- training ----------------------------------------------------------------------

    def is_running(self) -> bool:
        """A run has started and not yet reported its end. Its thread exits a moment after that
        report (longer on a busy machine), so a Resume clicked at once must not be refused."""
        return self._train is not None and self._train.isRunning() and not self._train_ended

    def start(self, options: dict) -> bool:
        """Start training with TrainConfig(**options); False (and run_failed) if it cannot start."""
        if self.is_running():
            self.run_failed.emit("training is already running; stop it first")
            return False
        message = self.validate(options)
        if message is not None:
            self.run_failed.emit(message)
            return False
        options = dict(options)
        if self._train is not None:
            self._train.wait(30_000)  # the last run's thread, which has reported its end, exits
        self._train_ended = False
        if self._in_process:
            work = thread_work(self._run_fn, options)
        else:
            work = process_work(self._run_fn, options, self._nice)
        task = BackgroundTask(work, "training", self)
        task.progress.connect(self._on_tick)
        task.succeeded.connect(self._on_run_done)
        task.failed.connect(self._on_run_failed)
        task.cancelled.connect(self._on_run_failed)
        self._train = task
        task.start()
        return True

    def stop(self) -> None:
        """Ask the loop to stop; it writes a snapshot and then emits run_finished."""
        if self._train is not None:
            self._train.request_stop()

    def stop_requested(self) -> bool:
        return self._train is not None and self._train.stop_requested()

    def _on_tick(self, info: dict) -> None:
        if info.get("run_dir"):
            self.last_run_dir = info["run_dir"]
        if info.get("snapshot_path"):
            self.latest_snapshot = info["snapshot_path"]
        info["stats"] = {k: float(v) for k, v in (info.get("stats") or {}).items()}
        self.tick.emit(info)

    def _on_run_failed(self, message: str) -> None:
        self._train_ended = True
        self.run_failed.emit(message)

    def _on_run_done(self, summary: dict) -> None:
        self._train_ended = True
        if summary.get("run_dir"):
            self.last_run_dir = summary["run_dir"]
        if summary.get("snapshot_path"):
            self.latest_snapshot = summary["snapshot_path"]
        self.run_finished.emit(summary)

    # --- estimate ------------------------------------------------------------------------

    def estimating(self) -> bool:
        return self._estimate is not None and self._estimate.isRunning()

    def estimate(self, options: dict, max_seconds: float = 60.0) -> bool:
        """Measure the speed of TrainConfig(**options) on a few passes, in the background; emits
        estimated(dict). False (and nothing emitted) when one is running already."""
        if self.estimating():
            return False

        def work(report, should_stop):
            from gan.train.config import TrainConfig
            from gan.train.estimate import estimate_training, format_estimate

            config = TrainConfig.from_dict(options)
            result = estimate_training(config, max_seconds=max_seconds, should_stop=should_stop)
            return dict(result.as_dict(), lines=format_estimate(result).splitlines())

        def failed(message: str) -> None:
            self.estimated.emit({"ok": False, "message": message})

        def done(result) -> None:
            self.estimated.emit(dict(result, ok=True))

        self._estimate = start_task(work, "estimating the training time", self, done, failed)
        return True

    # --- data sets -----------------------------------------------------------------------

    def inspect_dataset(self, path: str) -> None:
        """In the background: is `path` a usable data set? Emits inspected({ok, path, count,
        resolution, channels, labels, message, images_found})."""

        def work(report, should_stop):
            from gan.data.inspect import inspect_dataset

            return inspect_dataset(path)

        self._inspect_path = path
        self._inspect = start_task(
            work, "checking the data set", self, self._on_inspected, self._on_inspect_failed
        )

    def _on_inspected(self, result) -> None:
        self.inspected.emit(dict(result))

    def _on_inspect_failed(self, message: str) -> None:
        self.inspected.emit({"ok": False, "path": self._inspect_path, "message": message})

    def convert_dataset(
        self, source: str, dest: str, resolution: int, transform: str = "center-crop"
    ) -> None:
        """Make a training data set from a folder or zip of arbitrary images, in the background."""
        if self._convert is not None and self._convert.isRunning():
            self.dataset_failed.emit("a data set is already being made")
            return

        def work(report, should_stop):
            from gan.data.dataset_tool import ConvertConfig, convert_dataset

            config = ConvertConfig(source=source, dest=dest, resolution=int(resolution), transform=transform)
            result = convert_dataset(
                config,
                progress=lambda done, total, what="": report((done, total)),
                should_stop=should_stop,
            )
            return {"dest": result.dest, "written": result.written, "summary": result.summary()}

        task = start_task(work, "making the data set", self, self._on_converted, self._on_convert_failed)
        task.progress.connect(self._on_convert_progress)
        self._convert = task

    def _on_converted(self, result) -> None:
        self.dataset_finished.emit(dict(result))

    def _on_convert_failed(self, message: str) -> None:
        self.dataset_failed.emit(message)

    def _on_convert_progress(self, payload) -> None:
        self.dataset_progress.emit(int(payload[0]), int(payload[1]))

    def cancel_conversion(self) -> None:
        if self._convert is not None:
            self._convert.request_stop()

    # --- lifetime ------------------------------------------------------------------------

    def busy(self) -> bool:
        return any(t is not None and t.isRunning() for t in (self._train, self._convert, self._inspect))

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Stop everything and wait for the threads; True if they all ended in time.

        A thread still running after timeout_ms (a training step or snapshot that takes longer,
        e.g. on a loaded machine) is handed to the application (`adopt_running`): this bridge and
        its dialog may be deleted right after this call, and deleting a running QThread aborts
        the whole program ("QThread: Destroyed while thread is still running")."""
        # Older inspections too, not only the newest.
        return stop_tasks(self.findChildren(BackgroundTask), timeout_ms)
