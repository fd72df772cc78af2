"""The explorer's one way to run work off the GUI thread: `BackgroundTask`, a QThread around
`fn(report, should_stop)`, and `stop_tasks` to end tasks when their owner closes.

Every bridge (render, PCA, export, training, data sets) uses it. The rule that keeps closing a
window safe: a QThread must never be deleted while it runs ("QThread: Destroyed while thread is
still running" aborts the process). `stop_tasks` asks the tasks to stop, waits, and hands any
task still running to the application (`adopt_running`), which outlives every window.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Iterable

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QObject, QThread, Signal

log = logging.getLogger(__name__)


class BackgroundTask(QThread):
    """Runs fn(report, should_stop) in its own thread.

    report(payload) emits `progress(payload)`; the return value is emitted as `succeeded`.
    gan.errors.Cancelled -> `cancelled(message)`, UserError -> `failed(message)`, anything else ->
    `failed("<what> failed: Type: message")` with the traceback logged. Exactly one of
    succeeded / failed / cancelled is emitted, then QThread.finished. The outcome is also kept
    (`result`, `error`, `cancel_message`) for a slot of `finished`.
    `on_stop` runs in the caller's thread when a stop is requested (e.g. to wake a waiting loop).
    """

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)

    def __init__(
        self,
        fn: Callable,
        what: str,
        parent: QObject | None = None,
        on_stop: Callable[[], None] | None = None,
    ):
        super().__init__(parent)
        self._fn, self.what, self._on_stop = fn, what, on_stop
        self._stop = threading.Event()
        self.result = None
        self.error: str | None = None
        self.cancel_message: str | None = None

    def request_stop(self) -> None:
        self._stop.set()
        if self._on_stop is not None:
            self._on_stop()

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        from gan.errors import Cancelled, UserError

        try:
            self.result = self._fn(self.progress.emit, self._stop.is_set)
        except Cancelled as exc:
            self.cancel_message = str(exc) or f"{self.what} cancelled"
            self.cancelled.emit(self.cancel_message)
        except UserError as exc:
            self.error = str(exc)
            self.failed.emit(self.error)
        except Exception as exc:  # shown to the user; the GUI must survive any failure here
            log.exception("%s failed", self.what)
            self.error = f"{self.what} failed: {type(exc).__name__}: {exc}"
            self.failed.emit(self.error)
        else:
            self.succeeded.emit(self.result)


def start_task(fn: Callable, what: str, parent: QObject, on_ok=None, on_error=None) -> BackgroundTask:
    """A started BackgroundTask with on_ok(result) and on_error(message) (failed or cancelled)."""
    task = BackgroundTask(fn, what, parent)
    if on_ok is not None:
        task.succeeded.connect(on_ok)
    if on_error is not None:
        task.failed.connect(on_error)
        task.cancelled.connect(on_error)
    task.start()
    return task


def stop_tasks(tasks: Iterable[BackgroundTask | None], timeout_ms: int | None = None) -> bool:
    """Ask the tasks to stop and wait for them (timeout_ms None: as long as it takes); True if
    they all ended. One still running then is handed to the application (`adopt_running`), so
    its owner may be deleted right after this call without aborting the program."""
    tasks = [t for t in tasks if t is not None]
    for task in tasks:
        task.request_stop()
    timer = QElapsedTimer()
    timer.start()
    ok = True
    for task in tasks:
        if timeout_ms is None:
            ok = task.wait() and ok
        else:
            ok = task.wait(max(0, timeout_ms - timer.elapsed())) and ok
    for task in tasks:
        if task.isRunning():
            adopt_running(task)
    return ok


def adopt_running(task: BackgroundTask) -> None:
    """Let a running task outlive its owner: it stops reporting, becomes a child of the
    application and deletes itself when it ends (its stop was requested already)."""
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
