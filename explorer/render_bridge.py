"""The one module of the explorer that talks to `gan.render`, `gan.model_io` and `gan.edit`.

Everything crossing this boundary towards the widgets is plain data: dicts, numpy uint8 images,
floats and strings. Work runs in one worker thread (`_Worker`):

- render requests are stamped; only the newest pending one is rendered (latest wins), and a
  result older than one already shown is dropped (`dropped_stale` counts them);
- continuous input (slider drags) is rate-limited to `min_interval_ms` between submissions;
- thumbnails for the seed grid and the equivariance view run when no main render is pending.

`force_sync=True` (tests) does all of it in the calling thread, signals emitted before the call
returns. PCA directions are computed in a second thread with progress and cancel.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal

from explorer.project_bridge import LatentCache

log = logging.getLogger(__name__)

@dataclass
class DirectionInfo:
    """A direction as the worker keeps it (vector included); widgets get `as_plain()`."""

    name: str
    kind: str  # 'pca' | 'attribute'
    vector: np.ndarray  # [w_dim] or [num_ws, w_dim]
    layer_start: int = 0
    layer_end: int | None = None
    scale: float = 1.0  # one slider unit, in the direction's units
    help: str = ""
    range: tuple[float, float] = (-4.0, 4.0)  # slider extent in slider units

    def as_plain(self) -> dict:
        return {
            "help": self.help,
            "range": (float(self.range[0]), float(self.range[1])),
            "name": self.name,
            "kind": self.kind,
            "layer_start": self.layer_start,
            "layer_end": self.layer_end,
            "scale": self.scale,
        }


def _direction_info(d) -> DirectionInfo:
    return DirectionInfo(
        name=str(d.name),
        kind=str(d.kind),
        vector=np.asarray(d.vector, dtype=np.float32),
        layer_start=int(getattr(d, "layer_start", 0) or 0),
        layer_end=getattr(d, "layer_end", None),
        scale=float(getattr(d, "scale", 1.0) or 1.0),
        help=str(getattr(d, "help", "") or ""),
        range=tuple(getattr(d, "range", None) or (-4.0, 4.0)),
    )


def _sort_directions(dirs: list[DirectionInfo]) -> list[DirectionInfo]:
    """Anime-ify first, then attribute directions, then PCA components in order."""

    def key(d: DirectionInfo):
        anime = "anime" in d.name.lower()
        return (0 if anime else 1, 0 if d.kind == "attribute" else 1)

    return sorted(dirs, key=key)


@dataclass
class _Model:
    loaded: object  # gan.model_io.LoadedModel
    renderer: object  # gan.render.Renderer
    info: dict
    directions: dict[str, DirectionInfo] = field(default_factory=dict)


class _Jobs:
    """What the worker has to do, guarded by one condition variable."""

    def __init__(self):
        self.cond = threading.Condition()
        self.stop = False
        self.load: tuple[str, str, int] | None = None  # (path, role, load stamp)
        self.render: tuple[int, int, dict] | None = None  # (stamp, model generation, request)
        self.eq: tuple[int, int, dict] | None = None
        self.thumbs: deque = deque()  # (grid generation, model generation, seed, request)
        self.save: tuple | None = None  # (model generation,): store the directions with the model
        self.busy = False

    def has_work(self) -> bool:
        return (
            self.stop
            or self.load is not None
            or self.save is not None
            or self.render is not None
            or self.eq is not None
            or bool(self.thumbs)
        )


class _KernelBuild:
    """The one-time compile of the C++ kernels, in a plain daemon thread: it cannot be cancelled
    (a compiler is running) and must not delay quitting. Until it is done the worker renders with
    the reference ops; the GUI thread polls `done` (no signal from this thread, so nothing here
    touches a Qt object that may already be deleted)."""

    def __init__(self):
        self.thread: threading.Thread | None = None
        self.done = threading.Event()
        self.ops: dict = {}  # capabilities after the build
        self.message = ""

    @property
    def running(self) -> bool:
        return self.thread is not None and not self.done.is_set()

    def start(self, device: str) -> None:
        self.thread = threading.Thread(target=self._run, args=(device,), name="kernel-build", daemon=True)
        self.thread.start()

    def _run(self, device: str) -> None:
        from gan.capabilities import op_capabilities

        try:
            self.ops = op_capabilities(device, build=True)
            slow = sorted({c["reason"] for c in self.ops.values() if c.get("state") == "unavailable"})
            self.message = (
                "C++ kernels unavailable, rendering stays on the reference ops: " + "; ".join(slow)
                if slow
                else "C++ kernels built: rendering at full speed now"
            )
        except Exception as exc:  # informative only; the reference ops keep working
            log.exception("building the kernels failed")
            self.message = (
                f"Building the C++ kernels failed ({type(exc).__name__}: {exc}); using the reference ops"
            )
        finally:
            self.done.set()


class _Worker(QThread):
    """Runs the jobs one at a time in priority order: load, render, equivariance, thumbnails."""

    def __init__(self, bridge: RenderBridge):
        super().__init__()
        self.bridge = bridge
        self.jobs = bridge._jobs

    def run(self) -> None:
        jobs = self.jobs
        while True:
            with jobs.cond:
                while not jobs.has_work():
                    jobs.cond.wait()
                if jobs.stop:
                    return
                task = self._take()
                jobs.busy = True
            try:
                self.bridge._run_task(task)
            finally:
                with jobs.cond:
                    jobs.busy = False
                    jobs.cond.notify_all()

    def _take(self):
        jobs = self.jobs
        if jobs.load is not None:
            task, jobs.load = ("load", jobs.load), None
        elif jobs.save is not None:
            task, jobs.save = ("save", jobs.save), None
        elif jobs.render is not None:
            task, jobs.render = ("render", jobs.render), None
        elif jobs.eq is not None:
            task, jobs.eq = ("eq", jobs.eq), None
        else:
            task = ("thumb", jobs.thumbs.popleft())
        return task


class _PcaThread(QThread):
    def __init__(self, bridge: RenderBridge, model: _Model, num_samples: int, num_components: int):
        super().__init__()
        self.bridge, self.model, self.G = bridge, model, model.loaded.G
        self.num_samples, self.num_components = num_samples, num_components
        self.cancel = threading.Event()
        self.result: list | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            from gan.edit.pca import compute_pca_directions
        except ImportError as exc:
            self.error = f"PCA directions are not available in this build ({exc})."
            return
        from gan.errors import Cancelled, UserError

        try:
            with self.bridge.ops_context():
                self.result = compute_pca_directions(
                    self.G,
                    num_samples=self.num_samples,
                    num_components=self.num_components,
                    progress=lambda done, total: self.bridge.pca_progress.emit(int(done), int(total)),
                    should_stop=self.cancel.is_set,
                )
        except Cancelled:
            self.cancel.set()
        except UserError as exc:
            self.error = str(exc)
        except Exception as exc:
            log.exception("PCA failed")
            self.error = f"Computing PCA directions failed: {type(exc).__name__}: {exc}"


class RenderBridge(QObject):
    model_loaded = Signal(dict)  # model info (see model_info) + "directions": [plain dicts]
    model_failed = Signal(str, str)  # path, message (the previous model stays loaded)
    blend_loaded = Signal(dict)  # info of the second model
    blend_failed = Signal(str, str)
    rendered = Signal(dict)  # stamp, image (uint8 HxWx3 or None), timings, error, cache
    thumbnail_ready = Signal(int, int, object)  # grid generation, seed, uint8 image
    equivariance_ready = Signal(dict)  # stamp, image (uint8 error map) or None, psnr, error
    directions_changed = Signal(list)  # [plain direction dicts]
    pca_progress = Signal(int, int)  # done, total
    pca_finished = Signal(str)  # "" on success, else the reason (cancelled / error)
    directions_saved = Signal(str, str)  # file written (or ""), error message (or "")
    # The C++ kernels' background build: {"state": "building" | "done", "message", "ops": caps}.
    kernels_changed = Signal(dict)
    # Worker -> GUI thread hand-over; the slots filter stale results before the public signals.
    _rendered_internal = Signal(dict)
    _eq_internal = Signal(dict)
    _thumb_internal = Signal(int, int, int, object)  # grid generation, model generation, seed, image
    _kernels_started = Signal(str)  # worker -> GUI: the build started (message)

    def __init__(
        self,
        parent=None,
        *,
        force_sync: bool = False,
        device: str | None = None,
        min_interval_ms: int = 30,
        ops_impl: str = "auto",
    ):
        super().__init__(parent)
        self.force_sync = force_sync
        self.ops_impl = ops_impl  # 'auto', or force 'ref' / 'cpu' / 'cuda' for every op (per thread)
        self.device = device or _default_device()
        self.min_interval_ms = min_interval_ms
        self._jobs = _Jobs()
        self._model: _Model | None = None
        self._blend: _Model | None = None
        self._blend_cache: tuple[tuple, object] | None = None  # (key, Renderer of the blended G)
        self._blend_lock = threading.Lock()
        self._latents = LatentCache()  # projected photos' ws and noise, by .npz path
        self._stamp = 0
        self._load_stamp = 0
        self._model_generation = 0
        self._grid_generation = 0
        self._last_shown = 0
        self._last_eq_shown = 0
        self.dropped_stale = 0  # results dropped because a newer one was shown already
        self.renders_done = 0
        self._pending_continuous: dict | None = None
        self._last_submit = 0.0
        self._rate_timer = QTimer(self)
        self._rate_timer.setSingleShot(True)
        self._rate_timer.timeout.connect(self._flush_continuous)
        self._pca: _PcaThread | None = None
        self._pca_next: tuple[int, int] | None = None  # PCA to start once the running one ends
        self._worker: _Worker | None = None
        self._kernels = _KernelBuild()
        self._kernel_timer = QTimer(self)  # polls the background build (GUI thread)
        self._kernel_timer.setInterval(500)
        self._kernel_timer.timeout.connect(self._poll_kernels)
        self._kernels_started.connect(self._on_kernels_started)
        self._rendered_internal.connect(self._on_rendered)
        self._eq_internal.connect(self._on_eq)
        self._thumb_internal.connect(self._on_thumb)
        if not force_sync:
            self._worker = _Worker(self)
            self._worker.start()

    # -- lifetime --------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the threads and wait for them (the current render finishes first)."""
        self._rate_timer.stop()
        self._kernel_timer.stop()
        self._pca_next = None
        if self._pca is not None:
            self._pca.cancel.set()
            self._pca.wait()
            self._pca = None
        if self._worker is not None:
            with self._jobs.cond:
                self._jobs.stop = True
                self._jobs.cond.notify_all()
            self._worker.wait()
            self._worker = None

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Block until the worker has nothing to do (tests; signals still need the event loop)."""
        deadline = time.monotonic() + timeout_s
        with self._jobs.cond:
            while self._jobs.has_work() and not self._jobs.stop or self._jobs.busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._jobs.cond.wait(left)
        return True

    # -- model -----------------------------------------------------------------------------

    @property
    def has_model(self) -> bool:
        return self._model is not None

    @property
    def info(self) -> dict | None:
        return None if self._model is None else dict(self._model.info)

    def load_model(self, path: str, role: str = "main") -> None:
        """Load in the background; model_loaded / model_failed follow (blend_* for role 'blend')."""
        if role not in ("main", "blend"):
            raise ValueError(role)
        self._load_stamp += 1
        self._submit("load", (str(path), role, self._load_stamp))

    def unload_blend(self) -> None:
        self._blend = None
        self._blend_cache = None

    def directions(self) -> list[dict]:
        if self._model is None:
            return []
        return [d.as_plain() for d in self._model.directions.values()]

    # -- rendering -------------------------------------------------------------------------

    def request_render(self, request: dict, continuous: bool = False) -> int:
        """Queue a render of a plain request (ExplorerState.to_render_request()); returns its stamp.
        Continuous requests (drags) are rate-limited; the newest request always gets rendered."""
        self._stamp += 1
        request = dict(request, _stamp=self._stamp)
        if continuous and not self.force_sync:
            elapsed = (time.monotonic() - self._last_submit) * 1000.0
            if elapsed < self.min_interval_ms:
                self._pending_continuous = request
                if not self._rate_timer.isActive():
                    self._rate_timer.start(max(1, int(self.min_interval_ms - elapsed)))
                return self._stamp
        self._pending_continuous = None
        self._rate_timer.stop()
        self._submit_render(request)
        return self._stamp

    def _flush_continuous(self) -> None:
        if self._pending_continuous is not None:
            request, self._pending_continuous = self._pending_continuous, None
            self._submit_render(request)

    def _submit_render(self, request: dict) -> None:
        self._last_submit = time.monotonic()
        self._submit("render", (request["_stamp"], self._model_generation, request))

    def request_equivariance(self, request: dict) -> int:
        self._stamp += 1
        self._submit("eq", (self._stamp, self._model_generation, dict(request)))
        return self._stamp

    def request_thumbnails(self, seeds: list[int], request: dict) -> int:
        """Render thumbnails of `seeds` with the other settings of `request`; returns the grid
        generation that thumbnail_ready carries (older generations are dropped)."""
        self._grid_generation += 1
        gen = self._grid_generation
        with self._jobs.cond:
            self._jobs.thumbs.clear()
        for seed in seeds:
            self._submit("thumb", (gen, self._model_generation, int(seed), dict(request, seed=int(seed))))
        return gen

    def _submit(self, kind: str, payload) -> None:
        if self.force_sync:
            self._run_task((kind, payload))
            return
        jobs = self._jobs
        with jobs.cond:
            if kind == "load":
                jobs.load = payload
            elif kind == "render":
                jobs.render = payload  # replaces an older pending request: latest wins
            elif kind == "eq":
                jobs.eq = payload
            elif kind == "save":
                jobs.save = payload
            else:
                jobs.thumbs.append(payload)
            jobs.cond.notify_all()

    # -- worker side (runs in the worker thread, or inline with force_sync) -----------------

    def ops_context(self):
        """Context in which worker threads run torch work (the ops' choice is per thread)."""
        from gan.capabilities import prefer_ops

        if self.ops_impl == "auto" and self._kernels.running:
            return prefer_ops("ref")  # the compiled kernels are still being built
        return prefer_ops(self.ops_impl)

    @property
    def kernels_building(self) -> bool:
        return self._kernels.running

    def _maybe_build_kernels(self, info: dict) -> None:
        """Worker side: kernels not built yet start their build in the background instead of
        inside the first render (which would hide a 1-2 min compile behind "Rendering…")."""
        ops = info.get("ops", {})
        pending = [op for op, cap in ops.items() if cap.get("state") == "not built"]
        if self.force_sync or self.ops_impl != "auto" or not pending or self._kernels.thread is not None:
            return
        reason = ops[pending[0]].get("reason", "")
        self._kernels.start(self.device)
        info["kernels_building"] = True
        who = reason.split("; ", 1)[1] if "is building them now" in reason else "first start: 1-2 min, once"
        self._kernels_started.emit(
            f"Building the C++ kernels in the background ({who}); rendering with the slower "
            "reference ops until then"
        )

    def _on_kernels_started(self, message: str) -> None:
        self.kernels_changed.emit({"state": "building", "message": message, "ops": {}})
        self._kernel_timer.start()

    def _poll_kernels(self) -> None:
        if not self._kernels.done.is_set():
            return
        self._kernel_timer.stop()
        ops = dict(self._kernels.ops)
        if self._model is not None and ops:
            self._model.info["ops"] = ops
        self.kernels_changed.emit({"state": "done", "message": self._kernels.message, "ops": ops})

    def _run_task(self, task) -> None:
        with self.ops_context():
            self._run_task_inner(task)

    def _run_task_inner(self, task) -> None:
        kind, payload = task
        try:
            if kind == "load":
                self._do_load(*payload)
            elif kind == "render":
                self._do_render(*payload)
            elif kind == "eq":
                self._do_eq(*payload)
            elif kind == "save":
                self._do_save_directions(*payload)
            else:
                self._do_thumb(*payload)
        except Exception as exc:  # a bug must not kill the worker; show it instead
            log.exception("explorer worker task %s failed", kind)
            if kind == "render":
                self._deliver_render(
                    {
                        "stamp": payload[0],
                        "image": None,
                        "timings": {},
                        "cache": {},
                        "error": f"{type(exc).__name__}: {exc}",
                    },
                    payload[1],
                )

    def _do_load(self, path: str, role: str, stamp: int) -> None:
        from gan.errors import ModelLoadError, UserError
        from gan.model_info import model_info
        from gan.model_io import load_model
        from gan.render import Renderer
        from gan.resources import shipped_blend_partners

        failed = self.model_failed if role == "main" else self.blend_failed
        try:
            loaded = load_model(path, device=self.device, training_nets=False)
        except (ModelLoadError, UserError, OSError) as exc:
            failed.emit(path, str(exc))
            return
        except Exception as exc:  # unknown file contents: say so, keep the previous model
            log.exception("loading %s failed", path)
            failed.emit(path, f"Cannot open {path}: {type(exc).__name__}: {exc}")
            return
        info = model_info(loaded, self.device, self.ops_impl)
        self._maybe_build_kernels(info)
        if role == "blend":
            self._load_blend(loaded, info, path)
            return
        model = _Model(loaded=loaded, renderer=Renderer(loaded, device=self.device), info=info)
        model.directions = {d.name: d for d in self._load_directions(loaded)}
        info["directions"] = [d.as_plain() for d in model.directions.values()]
        info["blend_partners"] = [
            {"name": os.path.splitext(os.path.basename(p))[0], "path": p}
            for p in shipped_blend_partners(path)
        ]
        self._set_model(model)
        self.model_loaded.emit(dict(info))

    def _set_model(self, model: _Model) -> None:
        self._model = model
        self._blend = None
        self._blend_cache = None
        self._model_generation += 1

    def _load_directions(self, loaded) -> list[DirectionInfo]:
        try:
            from gan.edit.directions import load_directions
        except ImportError:
            return []  # the editing package is optional; the panel then says "no directions"
        try:
            return _sort_directions([_direction_info(d) for d in load_directions(loaded)])
        except Exception:
            log.exception("loading directions failed")
            return []

    def _load_blend(self, loaded, info: dict, path: str) -> None:
        if self._model is None:
            self.blend_failed.emit(path, "Open a main model before loading a second model to blend with.")
            return
        try:
            from gan.edit.blend import blend_resolutions, check_blendable, default_blend_resolution
        except ImportError as exc:
            self.blend_failed.emit(path, f"Model blending is not available in this build ({exc}).")
            return
        problem = check_blendable(self._model.loaded, loaded)
        if problem:
            self.blend_failed.emit(path, problem)
            return
        info["blend_resolutions"] = blend_resolutions(self._model.loaded)
        info["blend_default"] = default_blend_resolution(self._model.loaded)
        self._blend = _Model(loaded=loaded, renderer=None, info=info)
        self._blend_cache = None
        self.blend_loaded.emit(dict(info))

    def _renderer_for(self, request: dict):
        """The main renderer, or one of the blended generator for the request's blend weight."""
        weight = float(request.get("blend", 0.0) or 0.0)
        blend = self._blend
        if blend is None or weight <= 0.0:
            return self._model.renderer
        weight = round(weight, 2)
        resolution = request.get("blend_resolution") or blend.info["blend_default"]
        key = (id(blend), weight, int(resolution))
        with self._blend_lock:
            if self._blend_cache is None or self._blend_cache[0] != key:
                from gan.edit.blend import blend_models
                from gan.errors import UserError
                from gan.render import Renderer, RenderError

                try:
                    blended = blend_models(self._model.loaded, blend.loaded, int(resolution), weight)
                except UserError as exc:
                    raise RenderError(str(exc)) from None
                self._blend_cache = (key, Renderer(blended, device=self.device))
            return self._blend_cache[1]

    def render_args(self, request: dict):
        """gan.render.RenderArgs for a plain request (direction names resolved to vectors)."""
        from gan.render import Edit, RenderArgs, seed_to_z

        model = self._model
        edits = []
        for e in request.get("edits", []):
            d = model.directions.get(e["name"])
            if d is None:
                continue  # a direction of another model (old session): ignored, the panel shows it
            edits.append(
                Edit(
                    direction=d.vector,
                    strength=float(e["strength"]) * d.scale,
                    layer_start=int(e.get("layer_start", d.layer_start) or 0),
                    layer_end=e.get("layer_end", d.layer_end),
                    name=d.name,
                )
            )
        args = RenderArgs(
            seed=int(request["seed"]),
            class_idx=request.get("class_idx"),
            psi=float(request["psi"]),
            truncation_cutoff=request.get("truncation_cutoff"),
            noise_mode=request["noise_mode"],
            translate=tuple(request.get("translate", (0.0, 0.0))),
            rotate=float(request.get("rotate", 0.0)),
            mix_seed=request.get("mix_seed"),
            mix_start=int(request.get("mix_start", 0)),
            mix_end=request.get("mix_end"),
            edits=edits,
        )
        plane = request.get("plane")
        if plane:
            G = model.loaded.G
            zs = [seed_to_z(s, G.z_dim) for s in (args.seed, plane["seed_b"], plane["seed_c"])]
            x, y = float(plane["x"]), float(plane["y"])
            if request.get("space", "w") == "z":
                args.z = zs[0] + x * (zs[1] - zs[0]) + y * (zs[2] - zs[0])
            else:
                ws = [model.renderer.map_z(z, args) for z in zs]
                args.w = ws[0] + x * (ws[1] - ws[0]) + y * (ws[2] - ws[0])
        if request.get("projection"):  # a projected photo replaces the seed (and a seed plane)
            args.w, args.noise = self._latents.get(request["projection"])
        return args

    def _do_render(self, stamp: int, generation: int, request: dict) -> None:
        if self._model is None:
            return
        from gan.render import RenderError, RenderResult

        args = self.render_args(request)
        try:
            result = self._renderer_for(request).render(args)
        except RenderError as exc:
            result = RenderResult(error=str(exc))
        self.renders_done += 1
        c = result.cache_hits
        self._deliver_render(
            {
                "stamp": stamp,
                "image": result.image,
                "timings": dict(result.timings),
                "error": result.error,
                "cache": {"stages_reused": c.stages_reused, "stages_total": c.stages_total},
            },
            generation,
        )

    def _deliver_render(self, out: dict, generation: int) -> None:
        # Emitted from the worker thread: queued to the GUI thread, where _on_rendered filters.
        out["generation"] = generation
        if self.force_sync:
            self._on_rendered(out)
        else:
            self._rendered_internal.emit(out)

    def _on_rendered(self, out: dict) -> None:
        if out["generation"] != self._model_generation or out["stamp"] <= self._last_shown:
            self.dropped_stale += 1
            return
        self._last_shown = out["stamp"]
        self.rendered.emit(out)

    def _on_eq(self, out: dict) -> None:
        if out["generation"] != self._model_generation or out["stamp"] <= self._last_eq_shown:
            return
        self._last_eq_shown = out["stamp"]
        self.equivariance_ready.emit(out)

    def _do_thumb(self, grid_gen: int, generation: int, seed: int, request: dict) -> None:
        if self._model is None or grid_gen != self._grid_generation or generation != self._model_generation:
            return
        request = dict(request, translate=(0.0, 0.0), rotate=0.0, plane=None, projection=None)
        result = self._renderer_for(request).render(self.render_args(request))
        if result.image is not None:
            if self.force_sync:
                self._on_thumb(grid_gen, generation, seed, result.image)
            else:
                self._thumb_internal.emit(grid_gen, generation, seed, result.image)

    def _on_thumb(self, grid_gen: int, generation: int, seed: int, image) -> None:
        # Thumbnails asked for with older settings or another model are not shown.
        if grid_gen == self._grid_generation and generation == self._model_generation:
            self.thumbnail_ready.emit(grid_gen, seed, image)

    def _do_eq(self, stamp: int, generation: int, request: dict) -> None:
        from gan.render import EquivarianceView, RenderError

        if self._model is None:
            return
        try:
            view = self._renderer_for(request).equivariance_view(self.render_args(request))
        except RenderError as exc:  # e.g. models that cannot be blended
            view = EquivarianceView(error=str(exc))
        out = dict(vars(view), stamp=stamp, generation=generation)
        if self.force_sync:
            self._on_eq(out)
        else:
            self._eq_internal.emit(out)

    # -- recipes ---------------------------------------------------------------------------

    def recipe(self, request: dict, final_w: np.ndarray | None = None) -> dict:
        """gan.recipe.recipe_to_dict for a plain request and the current model."""
        from gan.recipe import model_ref, recipe_to_dict

        if self._model is None:
            raise RuntimeError("no model is loaded")
        model = self._renderer_for(request).model
        return recipe_to_dict(self.render_args(request), model_ref(model), final_w)

    def write_png(self, path: str, image: np.ndarray, request: dict) -> None:
        from gan.recipe import write_png

        write_png(path, image, self.recipe(request))

    def read_png_recipe(self, path: str) -> dict:
        """{'request': partial plain request, 'model_path', 'model_sha256', 'edits': [...]} of a PNG;
        raises ValueError (message for the user) when the file has no readable recipe."""
        from gan.errors import UserError
        from gan.recipe import read_recipe

        try:
            r = read_recipe(path)
        except UserError as exc:
            raise ValueError(str(exc)) from None
        a = r.args
        return {
            "seed": int(a.seed),
            "psi": float(a.psi),
            "truncation_cutoff": a.truncation_cutoff,
            "noise_mode": a.noise_mode,
            "class_idx": a.class_idx,
            "mix_seed": a.mix_seed,
            "mix_start": int(a.mix_start),
            "mix_end": a.mix_end,
            "translate": (float(a.translate[0]), float(a.translate[1])),
            "rotate": float(a.rotate),
            "edits": [
                {
                    "name": e.name,
                    "strength": float(e.strength),
                    "layer_start": int(e.layer_start),
                    "layer_end": e.layer_end,
                }
                for e in a.edits
            ],
            "has_explicit_latent": a.z is not None or a.w is not None,
            "model_path": r.model.path,
            "model_sha256": r.model.sha256,
        }

    def direction_scale(self, name: str) -> float:
        d = None if self._model is None else self._model.directions.get(name)
        return 1.0 if d is None else d.scale

    # -- storing directions ----------------------------------------------------------------

    def save_directions(self) -> None:
        """Store the current model's directions with it (gan.edit.directions.save_directions: inside
        our .safetensors file, which changes its hash; a sidecar JSON next to an official .pkl).
        directions_saved(path, error) follows; reopen the model afterwards for the new hash."""
        self._submit("save", (self._model_generation,))

    def _do_save_directions(self, generation: int) -> None:
        model = self._model
        if model is None or generation != self._model_generation:
            self.directions_saved.emit("", "The model changed before its directions could be saved.")
            return
        if not model.directions:
            self.directions_saved.emit(
                "", "This model has no directions to save yet (compute PCA directions first)."
            )
            return
        from gan.edit.directions import Direction, save_directions
        from gan.errors import UserError

        directions = [
            Direction(
                name=d.name,
                kind=d.kind,
                vector=d.vector,
                layer_start=d.layer_start,
                layer_end=d.layer_end,
                scale=d.scale,
                help=d.help,
                range=d.range,
            )
            for d in model.directions.values()
        ]
        try:
            path = save_directions(model.loaded.source, directions)
        except (UserError, OSError, ValueError) as exc:
            self.directions_saved.emit("", f"Saving the directions failed: {exc}")
            return
        self.directions_saved.emit(str(path), "")

    # -- PCA -------------------------------------------------------------------------------

    def compute_pca(self, num_samples: int = 10_000, num_components: int = 10) -> None:
        """PCA directions of the current model in a background thread (pca_progress, then
        pca_finished). A run for an older model is cancelled and this one starts after it."""
        if self._model is None:
            return
        num_components = min(num_components, int(self._model.info["w_dim"]))
        if self._pca is not None:
            if self._pca.model is self._model:
                return  # already computing for this model
            self._pca.cancel.set()
            self._pca_next = (num_samples, num_components)
            return
        self._pca = _PcaThread(self, self._model, num_samples, num_components)
        self._pca.finished.connect(self._on_pca_finished)
        self._pca.start()

    def cancel_pca(self) -> None:
        self._pca_next = None
        if self._pca is not None:
            self._pca.cancel.set()

    @property
    def pca_running(self) -> bool:
        return self._pca is not None

    def _on_pca_finished(self) -> None:
        thread, self._pca = self._pca, None
        if thread is None:
            return
        thread.wait()
        if self._pca_next is not None:
            (num_samples, num_components), self._pca_next = self._pca_next, None
            self.compute_pca(num_samples, num_components)
            return
        if thread.error:
            self.pca_finished.emit(thread.error)
            return
        if thread.cancel.is_set() or thread.result is None or thread.model is not self._model:
            self.pca_finished.emit("cancelled")
            return
        new = {d.name: d for d in (_direction_info(x) for x in thread.result)}
        kept = {k: v for k, v in self._model.directions.items() if v.kind != "pca"}
        self._model.directions = {d.name: d for d in _sort_directions(list({**kept, **new}.values()))}
        self.directions_changed.emit(self.directions())
        self.pca_finished.emit("")


def _default_device() -> str:
    from gan.capabilities import default_device

    return default_device()
