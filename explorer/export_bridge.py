"""The export dialog's link to `gan.video`: runs a VideoJob in a background task (explorer.tasks)
with progress and cancel, for one model or for several side by side
(`gan.compare.render_compare_video`).

Plain data in (model path, recipe dict, settings dict of VideoJob fields, output path) and out
(progress counts, a result dict, message strings). `gan` is imported lazily so importing the
dialog does not load torch.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject, Signal

from explorer.render_bridge import direction_view
from explorer.tasks import BackgroundTask, stop_tasks

# Settings the dialog may send; everything else in a VideoJob is fixed by the bridge.
SETTING_KEYS = (
    "kind",
    "seeds",
    "turns",
    "translate_path",
    "translate_amount",
    "interp_space",
    "direction_name",
    "strength",
    "layer_start",
    "layer_end",
    "size",
    "upscale",
    "upscale_filter",
    "fps",
    "duration",
    "crf",
    "preset",
)


def make_job(recipe, settings: dict):
    """A validated gan.video.VideoJob of a gan.recipe.Recipe (the view; None = seeds only) and
    the dialog's plain settings (UserError if bad)."""
    from gan.errors import UserError
    from gan.seeds import parse_seeds
    from gan.video import VideoJob

    unknown = sorted(set(settings) - set(SETTING_KEYS))
    if unknown:
        raise UserError(f"unknown video setting(s): {', '.join(unknown)}")
    values = dict(settings)
    seeds = values.get("seeds")
    if isinstance(seeds, str):
        values["seeds"] = parse_seeds(seeds)
    elif seeds is None and recipe is not None:
        values["seeds"] = [int(recipe.args.seed)]
    view = None if recipe is None else recipe.args
    job = VideoJob(view=view, **values)  # an interpolation replaces the view's latent per frame
    job.validate()
    return job


class ExportBridge(QObject):
    """Signals (queued to the GUI thread):
    progress(done, total); finished(dict: path, frames, width, height, fps, seconds, bytes,
    render_ms_per_frame); failed(str); cancelled(str); directions_ready(list of dicts, str message).
    """

    progress = Signal(int, int)
    finished = Signal(dict)
    failed = Signal(str)
    cancelled = Signal(str)
    directions_ready = Signal(list, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._task: BackgroundTask | None = None
        self._dir_task: BackgroundTask | None = None

    @staticmethod
    def validate(recipe, settings: dict) -> str | None:
        """None if the settings make a valid job, else the message to show (no model needed)."""
        from gan.errors import UserError

        try:
            make_job(recipe, settings)
        except UserError as exc:
            return str(exc)
        except TypeError as exc:
            return f"invalid video settings: {exc}"
        return None

    @staticmethod
    def warnings(kind: str, archs: list[str]) -> list[str]:
        """What to tell the user before a video of this kind of models of these architectures
        (gan.video.job_warnings: e.g. a rotation loop of a model not built for rotation)."""
        from gan.video import VideoJob, job_warnings

        return job_warnings(VideoJob(kind=kind), archs)

    @staticmethod
    def help(name: str) -> str:
        from gan.video import field_help

        return field_help(name)

    def is_running(self) -> bool:
        return self._task is not None and self._task.isRunning()

    def start(self, model_path: str, recipe, settings: dict, out_path: str) -> bool:
        def work(report, should_stop):
            from gan.model_io import load_model
            from gan.video import render_video

            job = make_job(recipe, settings)
            model = load_model(model_path, training_nets=False)
            result = render_video(
                job,
                model,
                out_path,
                progress=lambda done, total, what="": report((done, total)),
                should_stop=should_stop,
            )
            return dataclasses.asdict(result)

        return self._start(work, recipe, settings)

    def start_compare(
        self,
        model_paths: list[str],
        labels: list[str] | None,
        recipe,
        settings: dict,
        out_path: str,
    ) -> bool:
        """The models side by side (gan.compare.render_compare_video), same view and transform."""

        def work(report, should_stop):
            from gan.compare import render_compare_video
            from gan.model_io import load_model

            job = make_job(recipe, settings)
            models = [load_model(p, training_nets=False) for p in model_paths]
            result = render_compare_video(
                job,
                models,
                out_path,
                labels,
                progress=lambda done, total, what="": report((done, total)),
                should_stop=should_stop,
            )
            return dataclasses.asdict(result)

        return self._start(work, recipe, settings)

    def _start(self, work, recipe, settings: dict) -> bool:
        if self.is_running():
            self.failed.emit("an export is already running")
            return False
        message = self.validate(recipe, settings)
        if message is not None:
            self.failed.emit(message)
            return False
        task = BackgroundTask(work, "video export", self)
        task.progress.connect(self._on_progress)
        task.succeeded.connect(self._on_done)
        task.failed.connect(self.failed)
        task.cancelled.connect(self.cancelled)
        self._task = task
        task.start()
        return True

    def _on_done(self, result) -> None:
        self.finished.emit(dict(result))

    def _on_progress(self, payload) -> None:
        self.progress.emit(int(payload[0]), int(payload[1]))

    def cancel(self) -> None:
        if self._task is not None:
            self._task.request_stop()

    def request_directions(self, model_path: str) -> None:
        """Emit directions_ready([DirectionView], message) from the background."""

        def work(report, should_stop):
            from gan.edit.directions import load_directions
            from gan.model_io import load_model

            model = load_model(model_path, training_nets=False)
            out = [direction_view(d) for d in load_directions(model)]
            return out, "" if out else "this model has no directions yet (compute them in the explorer)"

        task = BackgroundTask(work, "listing directions", self)
        task.succeeded.connect(self._on_directions)
        task.failed.connect(self._on_directions_failed)
        self._dir_task = task
        task.start()

    def _on_directions(self, result) -> None:
        self.directions_ready.emit(list(result[0]), str(result[1]))

    def _on_directions_failed(self, message: str) -> None:
        self.directions_ready.emit([], message)

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel the export and wait for the tasks; True if they ended in time. A task still
        running then is handed to the application (explorer.tasks.stop_tasks), so the dialog
        may be deleted right after this call."""
        return stop_tasks([self._task, self._dir_task], timeout_ms)
