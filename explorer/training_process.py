"""The training loop in a child process, relayed as plain data: what the training dialog runs
(through TrainingBridge and explorer.tasks.BackgroundTask) and what the standalone bundle's
self-check runs without Qt (`run_training_in_child`).

No Qt here. `gan` is imported lazily, so importing this module does not load torch.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

TRAINING_NICE = 10  # nice value of the training process (Linux and macOS; 0 = normal priority)


def plain(obj: Any) -> dict:
    """A dataclass (TickInfo, RunSummary, ...) as a dict of plain values; NaN stays float."""
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return dict(obj)
    return dict(vars(obj))


def default_run(config, should_stop=None, on_tick=None):
    from gan.train.loop import run

    return run(config, should_stop=should_stop, on_tick=on_tick)


def thread_work(run_fn: Callable, options: dict) -> Callable:
    """Run the loop in the BackgroundTask's own thread (fakes in tests, debugging)."""

    def work(report, should_stop):
        from gan.train.config import TrainConfig

        config = TrainConfig.from_dict(options)
        return plain(run_fn(config, should_stop=should_stop, on_tick=lambda info: report(plain(info))))

    return work


def process_work(run_fn: Callable, options: dict, nice: int = TRAINING_NICE) -> Callable:
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
    work = process_work(run_fn or default_run, dict(options))
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
