"""The training dialog's link to `gan.train` and `gan.data`: background work as Qt signals.

The training loop is a plain function (`gan.train.loop.run(config, should_stop, on_tick)`); this
adapter only runs it in a QThread, turns each TickInfo into a plain dict emitted as a signal, and
sets the stop flag from the GUI thread. The run function is a constructor argument so tests can
drive the GUI with a fake loop.

Everything crossing to the widgets is plain data (dicts, strings, numbers). `gan` is imported
lazily, so importing this module (and the dialog) does not load torch.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QObject, QThread, Signal

log = logging.getLogger(__name__)

CONFIGS = ("stylegan2", "stylegan3-t", "stylegan3-r")
TRAINING_NICE = 10  # nice value of the training process (Linux and macOS; 0 = normal priority)


class BackgroundTask(QThread):
    """Runs fn(report, should_stop) in its own thread.

    report(payload) emits `progress(payload)`; the return value is emitted as `succeeded`.
    gan.errors.Cancelled -> `cancelled(message)`, UserError -> `failed(message)`, anything else ->
    `failed("<what> failed: Type: message")` with the traceback logged. Exactly one of
    succeeded / failed / cancelled is emitted, then QThread.finished.
    """

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)

    def __init__(self, fn: Callable, what: str, parent: QObject | None = None):
        super().__init__(parent)
        self._fn, self.what = fn, what
        self._stop = threading.Event()

    def request_stop(self) -> None:
        self._stop.set()

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        from gan.errors import Cancelled, UserError

        try:
            result = self._fn(self.progress.emit, self._stop.is_set)
        except Cancelled as exc:
            self.cancelled.emit(str(exc) or f"{self.what} cancelled")
        except UserError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # shown to the user; the GUI must survive any failure here
            log.exception("%s failed", self.what)
            self.failed.emit(f"{self.what} failed: {type(exc).__name__}: {exc}")
        else:
            self.succeeded.emit(result)


def adopt_running(task: BackgroundTask) -> None:
    """Let a running task outlive its owner: it stops reporting, becomes a child of the
    application and deletes itself when it ends. (Stop was requested; a training child process
    is joined or terminated within about a minute, see _process_work.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PySide warns about a signal with nothing connected
        for signal in (task.progress, task.succeeded, task.failed, task.cancelled):
            signal.disconnect()
    task.setParent(QCoreApplication.instance())
    task.finished.connect(task.deleteLater)


def wait_for_adopted_tasks(timeout_ms: int = 120_000) -> bool:
    """At exit: wait for tasks handed to the application by `adopt_running`; the application
    object deletes its children when it goes, and a thread still running then aborts."""
    app = QCoreApplication.instance()
    if app is None:
        return True
    timer = QElapsedTimer()
    timer.start()
    ok = True
    for task in app.findChildren(BackgroundTask):
        ok = task.wait(max(0, timeout_ms - timer.elapsed())) and ok
    return ok


def plain(obj: Any) -> dict:
    """A dataclass (TickInfo, RunSummary, ...) as a dict of plain values; NaN stays float."""
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return dict(obj)
    return dict(vars(obj))


def _default_run(config, should_stop=None, on_tick=None):
    from gan.train.loop import run

    return run(config, should_stop=should_stop, on_tick=on_tick)


def _thread_work(run_fn: Callable, options: dict) -> Callable:
    """Run the loop in the BackgroundTask's own thread (fakes in tests, debugging)."""

    def work(report, should_stop):
        from gan.train.config import TrainConfig

        config = TrainConfig.from_dict(options)
        return plain(run_fn(config, should_stop=should_stop, on_tick=lambda info: report(plain(info))))

    return work


def _process_work(run_fn: Callable, options: dict, nice: int = TRAINING_NICE) -> Callable:
    """Run the loop in a child process and relay its ticks from the BackgroundTask's thread.

    A training step is Python-heavy; in a thread of the GUI process it would compete with the
    GUI thread for the GIL (and a crash in native code would take the explorer down). The child
    runs at a lower CPU priority, so the interface stays smooth on machines with few cores.

    The child is started with multiprocessing's 'spawn' method, never `sys.executable -m gan`: in
    a standalone bundle sys.executable is the app itself, which runs the child's work when its
    entry point calls multiprocessing.freeze_support() first (explorer/__main__.py, the bundle's entry point).
    """

    def work(report, should_stop):
        import multiprocessing as mp
        import queue as queue_mod

        from gan.errors import UserError

        ctx = mp.get_context("spawn")  # no fork of a Qt process with running threads
        messages = ctx.Queue()
        stop = ctx.Event()
        child = ctx.Process(target=_child_main, args=(run_fn, options, messages, stop, nice), daemon=True)
        child.start()
        try:
            while True:
                if should_stop() and not stop.is_set():
                    stop.set()
                try:
                    kind, payload = messages.get(timeout=0.1)
                except queue_mod.Empty:
                    if not child.is_alive():
                        raise UserError(
                            f"the training process ended unexpectedly (exit code {child.exitcode}); "
                            "see the terminal output for details"
                        ) from None
                    continue
                if kind == "tick":
                    report(payload)
                elif kind == "done":
                    return payload
                else:
                    raise UserError(payload)
        finally:
            stop.set()
            child.join(timeout=60)
            if child.is_alive():
                child.terminate()
                child.join(timeout=5)

    return work


def run_training_in_child(
    options: dict,
    on_tick: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    run_fn: Callable | None = None,
) -> dict:
    """Train with TrainConfig(**options) in a child process exactly as the training dialog does,
    without Qt; returns the RunSummary as a dict (the standalone bundle's self-check uses it)."""
    work = _process_work(run_fn or _default_run, dict(options))
    return work(on_tick or (lambda info: None), should_stop or (lambda: False))


def _child_main(run_fn: Callable, options: dict, messages, stop, nice: int = TRAINING_NICE) -> None:
    """Entry point of the training process: run, send ticks and the result as plain data."""
    if nice:
        try:
            os.nice(nice)
        except (AttributeError, OSError):
            pass  # no nice on this system: normal priority
    from gan.errors import UserError
    from gan.train.config import TrainConfig

    try:
        config = TrainConfig.from_dict(options)
        summary = run_fn(
            config, should_stop=stop.is_set, on_tick=lambda info: messages.put(("tick", plain(info)))
        )
        messages.put(("done", plain(summary)))
    except UserError as exc:
        messages.put(("error", str(exc)))
    except BaseException as exc:  # reported to the GUI; the traceback goes to the terminal
        log.exception("training failed")
        messages.put(("error", f"training failed: {type(exc).__name__}: {exc}"))


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

    def __init__(self, run_fn: Callable | None = None, parent: QObject | None = None,
                 in_process: bool | None = None, nice: int = TRAINING_NICE):  # fmt: skip
        """run_fn(config, should_stop, on_tick) -> RunSummary, default gan.train.loop.run.
        in_process: run it in a thread of this process (default only for an injected run_fn) or in
        a child process (default for the real loop; run_fn must then be a module-level function).
        nice: the child process's CPU priority (0 = as this process)."""
        super().__init__(parent)
        self._run_fn = run_fn or _default_run
        self._nice = nice
        self._in_process = run_fn is not None if in_process is None else in_process
        self._train: BackgroundTask | None = None
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
    def defaults() -> dict:
        """TrainConfig's defaults as a plain dict."""
        from gan.train.config import TrainConfig

        return TrainConfig().to_dict()

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
        return self._train is not None and self._train.isRunning()

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
        if self._in_process:
            work = _thread_work(self._run_fn, options)
        else:
            work = _process_work(self._run_fn, options, self._nice)
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
        self.run_failed.emit(message)

    def _on_run_done(self, summary: dict) -> None:
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

        self._estimate = self._task(
            work, "estimating the training time", lambda r: self.estimated.emit(dict(r, ok=True)), failed
        )
        return True

    # --- data sets -----------------------------------------------------------------------

    def inspect_dataset(self, path: str) -> None:
        """In the background: is `path` a usable data set? Emits inspected({ok, path, count,
        resolution, channels, labels, message, images_found})."""

        def work(report, should_stop):
            return inspect_dataset(path)

        self._inspect_path = path
        self._inspect = self._task(work, "checking the data set", self._on_inspected, self._on_inspect_failed)

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
                config, progress=False, on_progress=lambda d, t: report((d, t)), should_stop=should_stop
            )
            return {"dest": result.dest, "written": result.written, "summary": result.summary()}

        task = self._task(work, "making the data set", self._on_converted, self._on_convert_failed)
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

    def _task(self, fn, what: str, on_ok, on_error) -> BackgroundTask:
        task = BackgroundTask(fn, what, self)
        task.succeeded.connect(on_ok)
        task.failed.connect(on_error)
        task.cancelled.connect(on_error)
        task.start()
        return task

    # --- lifetime ------------------------------------------------------------------------

    def busy(self) -> bool:
        return any(t is not None and t.isRunning() for t in (self._train, self._convert, self._inspect))

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Stop everything and wait for the threads; True if they all ended in time.

        A thread still running after timeout_ms (a training step or snapshot that takes longer,
        e.g. on a loaded machine) is handed to the application (`adopt_running`): this bridge and
        its dialog may be deleted right after this call, and deleting a running QThread aborts
        the whole program ("QThread: Destroyed while thread is still running")."""
        tasks = self.findChildren(BackgroundTask)  # older inspections too, not only the newest
        for task in tasks:
            task.request_stop()
        timer = QElapsedTimer()
        timer.start()
        ok = True
        for task in tasks:
            ok = task.wait(max(0, timeout_ms - timer.elapsed())) and ok
        for task in tasks:
            if task.isRunning():
                adopt_running(task)
        return ok


def inspect_dataset(path: str) -> dict:
    """What the training dialog shows about a chosen data set (plain dict, never raises UserError)."""
    from gan.errors import UserError
    from gan.train.dataset import IMAGE_EXTENSIONS, ImageDataset

    out: dict[str, Any] = {"path": path, "ok": False, "images_found": 0}
    if not os.path.exists(path):
        out["message"] = f"{path} does not exist"
        return out
    label_note = ""
    try:
        try:
            dataset = ImageDataset(path, use_labels=True)
        except UserError as exc:  # the images may still be usable without their labels
            dataset = ImageDataset(path)
            label_note = f"; labels not usable: {exc}"
    except UserError as exc:
        out["message"] = str(exc)
        if os.path.isdir(path):
            out["images_found"] = sum(
                1
                for _root, _dirs, files in os.walk(path)
                for f in files
                if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
            )
        return out
    try:
        out.update(
            ok=True,
            count=len(dataset),
            resolution=int(dataset.resolution),
            channels=int(dataset.num_channels),
            labels=int(dataset.label_dim),
            images_found=len(dataset),
        )
        labels = f", {dataset.label_dim} classes" if dataset.label_dim else ", no labels"
        labels += label_note
        out["message"] = (
            f"{len(dataset):,} images, {dataset.resolution}×{dataset.resolution}, "
            f"{dataset.num_channels} channel(s){labels}"
        )
    finally:
        dataset.close()
    return out


def finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
