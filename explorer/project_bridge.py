"""The explorer's boundary to gan.photo: open a photo, find faces, align, project into the open
model, keep projections as .npz files. Plain data both ways (numpy uint8 images, dicts, floats,
strings); torch runs only in this module's worker thread.

    bridge = ProjectBridge(projections_dir)
    bridge.open_photo(path)              -> photo_opened({path, image, size, faces: [...], error})
    bridge.aligned(face=0) / aligned(box=(x, y, size))   -> uint8 target at the model's size
    bridge.project(model_path, target, {"preset": "default", "steps": 150, "w_plus": False})
        -> progress({step, steps, phase, loss, image}) ..., finished({path, image, psnr, ssim, error})
    bridge.cancel()

A finished projection is written to `projections_dir` (an .npz, see gan.photo.project); the
explorer state keeps only its path (`ExplorerState.projection`), and the render bridge reads its
latent through `LatentCache`. A PNG recipe with an explicit w becomes such a file too
(`latent_file_from_png`), so reopening an exported image restores the projected face.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QObject, Signal

from explorer.tasks import BackgroundTask, stop_tasks

log = logging.getLogger(__name__)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
PRESETS = ("fast", "default", "best")


def png_has_recipe(path: str) -> bool:
    """True when the PNG carries a stylegan-explorer recipe (it opens as a view, not a photo)."""
    from PIL import Image

    from gan.recipe import RECIPE_KEY

    try:
        with Image.open(path) as im:
            return RECIPE_KEY in getattr(im, "text", {})
    except OSError:
        return False


def preset_steps() -> dict[str, dict]:
    """{preset: {"steps", "w_plus"}} as gan.photo.project defines them."""
    from gan.photo.project import PRESETS as P

    return {k: {"steps": int(v["steps"]), "w_plus": bool(v.get("w_plus", False))} for k, v in P.items()}


class LatentCache:
    """ws and noise of projection files for rendering, loaded once per (path, modification time)."""

    def __init__(self, max_items: int = 8):
        self.max_items = max_items
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str) -> tuple[np.ndarray, dict | None]:
        """(ws [num_ws, w_dim], noise or None); gan.render.RenderError when the file is unusable."""
        from gan.errors import UserError
        from gan.photo.project import load_projection
        from gan.render import RenderError

        try:
            key = (path, os.stat(path).st_mtime_ns)
        except OSError:
            raise RenderError(f"the projected latent {path} is missing; open the photo again") from None
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        try:
            p = load_projection(path)
        except UserError as exc:
            raise RenderError(str(exc)) from None
        value = (p.ws, dict(p.noise) or None)
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return value


class ProjectBridge(QObject):
    photo_opened = Signal(dict)  # path, image (uint8, shrunk for alignment), size, faces, error
    progress = Signal(dict)  # step, steps, phase, loss, image (uint8 or None)
    finished = Signal(dict)  # path (.npz) or None, image, target, psnr, ssim, seconds, error, cancelled

    def __init__(self, projections_dir: str, parent=None, *, threads: int | None = None):
        super().__init__(parent)
        self.projections_dir = projections_dir
        self.threads = threads  # torch threads for projecting (None: gan.photo.project.threads_for_load)
        self._photo = None  # gan.photo.image.Photo of the open photo
        self._faces: list = []
        self._stop = threading.Event()
        self._done = threading.Event()  # the job's work is over (its thread may still be ending)
        self._done.set()
        self._job: BackgroundTask | None = None  # its function emits the bridge's own signals
        self._models: dict = {}  # path -> LoadedModel with D (the last one only)
        self._auto_template = "ffhq"  # the open model's alignment template (see template_for_model)

    # -- lifetime --------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return not self._done.is_set()

    def shutdown(self) -> None:
        self._stop.set()
        stop_tasks([self._job])
        self._job = None

    def _start(self, fn) -> bool:
        if self.busy:
            return False
        if self._job is not None:
            self._job.wait()  # its result is out; the thread ends in a moment
        self._stop.clear()
        self._done.clear()

        def guarded() -> None:
            try:
                fn()
            finally:
                self._done.set()

        self._job = BackgroundTask(lambda report, should_stop: guarded(), "photo work", self)
        self._job.start()
        return True

    # -- photo -----------------------------------------------------------------------------

    def open_photo(self, path: str, model_path: str | None = None) -> bool:
        """Read the photo and look for faces in the worker (and load the model to project into,
        for its alignment template and discriminator); photo_opened follows."""
        return self._start(lambda: self._do_open(path, model_path))

    def _do_open(self, path: str, model_path: str | None) -> None:
        from gan.errors import UserError
        from gan.photo.align import template_for_model
        from gan.photo.image import open_photo
        from gan.photo.pipeline import find_faces

        out = {
            "path": path,
            "image": None,
            "size": None,
            "faces": [],
            "error": None,
            "face_error": None,
            "template": self._auto_template,
        }
        if model_path is not None:
            try:
                self._auto_template = template_for_model(self._model(model_path).metadata).name
                out["template"] = self._auto_template
            except Exception as exc:  # projecting will say what is wrong with the model
                log.warning("cannot read %s for its alignment template: %s", model_path, exc)
        try:
            photo = open_photo(path)
        except UserError as exc:
            out["error"] = str(exc)
            self._emit(self.photo_opened, out)
            return
        except Exception as exc:
            log.exception("opening %s failed", path)
            out["error"] = f"Cannot open {path}: {type(exc).__name__}: {exc}"
            self._emit(self.photo_opened, out)
            return
        self._photo, self._faces = photo, []
        out["image"], out["size"] = photo.image, photo.original_size
        try:
            self._faces = find_faces(photo)
        except UserError as exc:  # no detector weights: the crop box still works
            out["face_error"] = str(exc)
        except Exception as exc:
            log.exception("face detection failed")
            out["face_error"] = f"Face detection failed: {type(exc).__name__}: {exc}"
        out["faces"] = [
            {"box": [float(v) for v in f.box], "landmarks": f.landmarks.tolist(), "score": float(f.score)}
            for f in self._faces
        ]
        self._emit(self.photo_opened, out)

    def aligned(
        self,
        resolution: int,
        face: int | None = None,
        box: tuple[float, float, float] | None = None,
        template: str = "auto",
    ) -> dict:
        """{"image": uint8 target, "source": description} for face `face` (aligned by template;
        'auto': the model's, see open_photo) or the square `box` (x, y, size) in the photo's pixels.
        Runs in the calling thread (no torch; tens of milliseconds)."""
        from gan.errors import UserError
        from gan.photo.align import template_named
        from gan.photo.pipeline import prepare_target

        if self._photo is None:
            raise ValueError("no photo is open")
        try:
            tpl = template_named(self._auto_template if template == "auto" else template)
            if face is not None:
                target = prepare_target(self._photo, resolution, tpl, face=self._faces[face])
            else:
                target = prepare_target(self._photo, resolution, tpl, box=box)
        except (UserError, IndexError) as exc:
            raise ValueError(str(exc)) from None
        return {"image": target.image, "source": target.describe()}

    # -- projection ------------------------------------------------------------------------

    def project(
        self, model_path: str, target: np.ndarray, settings: dict, source: dict | None = None
    ) -> bool:
        """Project target (uint8 at the model's resolution) into the model file in the worker.
        settings: preset, steps (optional), w_plus (optional). False when a job is running."""
        return self._start(
            lambda: self._do_project(model_path, np.array(target), dict(settings), source or {})
        )

    def cancel(self) -> None:
        self._stop.set()

    def _model(self, path: str):
        from gan.model_io import load_model

        cached = self._models.get(path)
        if cached is not None:
            return cached
        model = load_model(path, training_nets=True)
        self._models = {path: model}  # one model at a time: they can be large
        return model

    def _do_project(self, model_path: str, target: np.ndarray, settings: dict, source: dict) -> None:
        from gan.capabilities import torch_threads
        from gan.errors import Cancelled, UserError
        from gan.photo.project import threads_for_load

        out = {
            "path": None,
            "image": None,
            "target": target,
            "psnr": None,
            "ssim": None,
            "seconds": None,
            "error": None,
            "cancelled": False,
            "d": None,
        }
        try:
            with torch_threads(self.threads or threads_for_load()):
                self._project(model_path, target, settings, source, out)
        except Cancelled:
            out["cancelled"] = True
        except UserError as exc:
            out["error"] = str(exc)
        except Exception as exc:
            log.exception("projection failed")
            out["error"] = f"Projection failed: {type(exc).__name__}: {exc}"
        self._emit(self.finished, out)

    def _project(self, model_path: str, target: np.ndarray, settings: dict, source: dict, out: dict) -> None:
        from gan.photo.losses import psnr, ssim_uint8
        from gan.photo.pipeline import discriminator_for, model_description
        from gan.photo.project import ProjectConfig, project, save_projection

        overrides = {k: settings[k] for k in ("steps", "w_plus") if settings.get(k) is not None}
        config = ProjectConfig.preset(settings.get("preset", "default"), **overrides)
        model = self._model(model_path)
        D, where = discriminator_for(model)
        out["d"] = where if D is not None else None

        def on_step(p) -> None:
            self.progress.emit(
                {"step": p.step, "steps": p.steps, "phase": p.phase, "loss": p.loss, "image": p.image}
            )

        [result] = project(model.G, target, config, D=D, on_step=on_step, should_stop=self._stop.is_set)
        result.model = model_description(model)
        result.source = source
        os.makedirs(self.projections_dir, exist_ok=True)
        digest = hashlib.sha256(result.ws.tobytes() + target.tobytes()).hexdigest()[:16]
        stem = os.path.splitext(os.path.basename(str(source.get("photo", "photo"))))[0] or "photo"
        path = os.path.join(self.projections_dir, f"{stem}-{digest}.npz")
        save_projection(path, result)
        out.update(
            path=path,
            image=result.image,
            psnr=psnr(result.image, target),
            ssim=ssim_uint8(result.image, target),
            seconds=result.seconds,
        )

    def _emit(self, signal, out: dict) -> None:
        """The job's last word: marks the bridge free first, so a slot may start the next job."""
        self._done.set()
        signal.emit(out)


def latent_file_from_png(path: str, projections_dir: str) -> str | None:
    """For a PNG whose recipe holds an explicit w: that w (and noise) as a projection file in
    projections_dir, its path; None when the recipe uses a seed or z."""
    from gan.errors import UserError
    from gan.photo.project import Projection, save_projection
    from gan.recipe import read_recipe

    try:
        r = read_recipe(path)
    except UserError:
        return None
    a = r.args
    if a.w is None or np.ndim(a.w) != 2:
        return None
    ws = np.asarray(a.w, dtype=np.float32)
    noise = {k: np.asarray(v, np.float32) for k, v in (a.noise or {}).items()}
    raw = ws.tobytes() + b"".join(noise[k].tobytes() for k in sorted(noise))
    out = os.path.join(projections_dir, f"recipe-{hashlib.sha256(raw).hexdigest()[:16]}.npz")
    if not os.path.exists(out):
        blank = np.zeros((1, 1, 3), np.uint8)
        p = Projection(
            ws=ws,
            w_plus=not np.allclose(ws, ws[:1]),
            noise=noise,
            image=blank,
            target=blank,
            losses={},
            history=np.zeros(0, np.float32),
            config={},
            seconds=0.0,
            model={"sha256": r.model.sha256, "path": r.model.path, "arch": r.model.arch},
            source={"png": os.path.abspath(path)},
        )
        os.makedirs(projections_dir, exist_ok=True)
        save_projection(out, p)
    return out
