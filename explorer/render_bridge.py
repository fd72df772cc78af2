"""The one module of the explorer that talks to `gan.render`, `gan.model_io` and `gan.edit`.

A slider move: the widget commits an `ExplorerState` to the main window's `History`, which hands
it to `request_render`; the worker turns it into `gan.render.RenderArgs` (`render_args`: direction
names become vectors, slider units become strengths), `gan.render.Renderer.render` returns a
`RenderResult`, and `rendered` carries its uint8 image to the image view. Everything crossing
towards the widgets is plain data: dicts, numpy uint8 images, floats and strings.

Work runs in one background task (explorer.tasks):

- render requests are stamped; only the newest pending one is rendered (latest wins), and a
  result older than one already shown is dropped (`dropped_stale` counts them);
- continuous input (slider drags) is rate-limited to `min_interval_ms` between submissions;
- thumbnails for the seed grid and the equivariance view run when no main render is pending.

`force_sync=True` (tests) does all of it in the calling thread, signals emitted before the call
returns. PCA directions are computed in a second task with progress and cancel.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace

from PySide6.QtCore import QObject, QTimer, Signal

from explorer.project_bridge import LatentCache, latent_file_from_png
from explorer.state import DirectionView, ExplorerState
from explorer.tasks import BackgroundTask, stop_tasks

log = logging.getLogger(__name__)


def direction_view(d) -> DirectionView:
    """What the widgets know of a gan.edit.directions.Direction (its vector and scale stay here)."""
    return {
        "name": d.name,
        "kind": d.kind,
        "help": d.help,
        "range": (float(d.range[0]), float(d.range[1])),
        "layer_start": int(d.layer_start),
        "layer_end": d.layer_end,
    }


def _sort_directions(dirs: list) -> list:
    """Anime-ify first, then attribute directions, then PCA components in order."""

    def key(d):
        anime = "anime" in d.name.lower()
        return (0 if anime else 1, 0 if d.kind == "attribute" else 1)

    return sorted(dirs, key=key)


@dataclass
class _Model:
    loaded: object  # gan.model_io.LoadedModel
    renderer: object  # gan.render.Renderer
    info: dict  # gan.model_info.model_info + what the bridge adds
    directions: dict = field(default_factory=dict)  # name -> gan.edit.directions.Direction


@dataclass
class PngView:
    """The view a PNG's recipe describes, as explorer state (see RenderBridge.read_png)."""

    state: ExplorerState
    model_path: str
    model_sha256: str
    explicit_latent: bool  # the recipe held a z or w (restored as a projection where it is a w)


class _Jobs:
    """What the worker has to do, guarded by one condition variable."""

    def __init__(self):
        self.cond = threading.Condition()
        self.stop = False
        self.load: tuple[str, str, int] | None = None  # (path, role, load stamp)
        self.render: tuple[int, int, ExplorerState] | None = None  # (stamp, model generation, state)
        self.eq: tuple[int, int, ExplorerState] | None = None
        self.thumbs: deque = deque()  # (grid generation, model generation, seed, state)
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

    def take(self) -> tuple[str, tuple]:
        """The next job in priority order: load, save, render, equivariance, thumbnails."""
        for kind in ("load", "save", "render", "eq"):
            payload = getattr(self, kind)
            if payload is not None:
                setattr(self, kind, None)
                return kind, payload
        return "thumb", self.thumbs.popleft()


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


class RenderBridge(QObject):
    model_loaded = Signal(dict)  # gan.model_info.model_info + "directions": [DirectionView], ...
    model_failed = Signal(str, str)  # path, message (the previous model stays loaded)
    blend_loaded = Signal(dict)  # info of the second model
    blend_failed = Signal(str, str)
    rendered = Signal(dict)  # stamp, image (uint8 HxWx3 or None), timings, error, cache
    thumbnail_ready = Signal(int, int, object)  # grid generation, seed, uint8 image
    # stamp, image (uint8 error map), reference, transformed (uint8) or None, psnr, error
    equivariance_ready = Signal(dict)
    directions_changed = Signal(list)  # [DirectionView]
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
        self._pending_continuous: tuple[int, ExplorerState] | None = None  # (stamp, state)
        self._last_submit = 0.0
        self._rate_timer = QTimer(self)
        self._rate_timer.setSingleShot(True)
        self._rate_timer.timeout.connect(self._flush_continuous)
        self._pca: BackgroundTask | None = None
        self._pca_model: _Model | None = None  # the model the running PCA is for
        self._pca_next: tuple[int, int] | None = None  # PCA to start once the running one ends
        self._worker: BackgroundTask | None = None
        self._kernels = _KernelBuild()
        self._cpu_elsewhere = None  # gan.capabilities.CpuUseElsewhere, made by the worker on its first task
        self._kernel_timer = QTimer(self)  # polls the background build (GUI thread)
        self._kernel_timer.setInterval(500)
        self._kernel_timer.timeout.connect(self._poll_kernels)
        self._kernels_started.connect(self._on_kernels_started)
        self._rendered_internal.connect(self._on_rendered)
        self._eq_internal.connect(self._on_eq)
        self._thumb_internal.connect(self._on_thumb)
        if not force_sync:
            self._worker = BackgroundTask(self._work, "rendering", self, on_stop=self._stop_worker)
            self._worker.start()

    # -- lifetime --------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the tasks and wait for them (the current render or PCA batch finishes first)."""
        self._rate_timer.stop()
        self._kernel_timer.stop()
        self._pca_next = None
        stop_tasks([self._pca, self._worker])
        self._pca = self._pca_model = self._worker = None

    def _stop_worker(self) -> None:
        with self._jobs.cond:
            self._jobs.stop = True
            self._jobs.cond.notify_all()

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
    def info(self) -> dict | None:
        """The current model's info (as model_loaded carried it), None before one is loaded."""
        return None if self._model is None else dict(self._model.info)

    def load_model(self, path: str, role: str = "main") -> None:
        """Load in the background; model_loaded / model_failed follow (blend_* for role 'blend')."""
        if role not in ("main", "blend"):
            raise ValueError(role)
        self._load_stamp += 1
        self._submit("load", (str(path), role, self._load_stamp))

    def _direction_views(self) -> list[DirectionView]:
        return [] if self._model is None else [direction_view(d) for d in self._model.directions.values()]

    # -- rendering -------------------------------------------------------------------------

    def request_render(self, state: ExplorerState, continuous: bool = False) -> int:
        """Queue a render of `state`; returns its stamp. Continuous requests (drags) are
        rate-limited; the newest request always gets rendered."""
        self._stamp += 1
        if continuous and not self.force_sync:
            elapsed = (time.monotonic() - self._last_submit) * 1000.0
            if elapsed < self.min_interval_ms:
                self._pending_continuous = (self._stamp, state)
                if not self._rate_timer.isActive():
                    self._rate_timer.start(max(1, int(self.min_interval_ms - elapsed)))
                return self._stamp
        self._pending_continuous = None
        self._rate_timer.stop()
        self._submit_render(self._stamp, state)
        return self._stamp

    def _flush_continuous(self) -> None:
        if self._pending_continuous is not None:
            (stamp, state), self._pending_continuous = self._pending_continuous, None
            self._submit_render(stamp, state)

    def _submit_render(self, stamp: int, state: ExplorerState) -> None:
        self._last_submit = time.monotonic()
        self._submit("render", (stamp, self._model_generation, state))

    def request_equivariance(self, state: ExplorerState) -> int:
        self._stamp += 1
        self._submit("eq", (self._stamp, self._model_generation, state))
        return self._stamp

    def request_thumbnails(self, seeds: list[int], state: ExplorerState) -> int:
        """Render thumbnails of `seeds` with the settings of `state` (no edits, transform, seed
        plane or projection); returns the grid generation that thumbnail_ready carries (older
        generations are dropped)."""
        self._grid_generation += 1
        gen = self._grid_generation
        plain = replace(state, edits={}, translate=(0.0, 0.0), rotate=0.0, plane=None, projection=None)
        with self._jobs.cond:
            self._jobs.thumbs.clear()
        for seed in seeds:
            self._submit("thumb", (gen, self._model_generation, int(seed), replace(plain, seed=int(seed))))
        return gen

    def _submit(self, kind: str, payload) -> None:
        if self.force_sync:
            self._run_task((kind, payload))
            return
        jobs = self._jobs
        with jobs.cond:
            if kind == "thumb":
                jobs.thumbs.append(payload)
            else:
                setattr(jobs, kind, payload)  # replaces an older pending one: latest wins
            jobs.cond.notify_all()

    # -- worker side (runs in the worker task, or inline with force_sync) -------------------

    def _work(self, report, should_stop) -> None:
        """The worker task: runs the jobs one at a time until shutdown."""
        jobs = self._jobs
        while True:
            with jobs.cond:
                while not jobs.has_work():
                    jobs.cond.wait()
                if jobs.stop:
                    return
                task = jobs.take()
                jobs.busy = True
            try:
                self._run_task(task)
            finally:
                with jobs.cond:
                    jobs.busy = False
                    jobs.cond.notify_all()

    def ops_context(self):
        """Context in which worker threads run torch work (the ops' choice is per thread)."""
        from gan.capabilities import prefer_ops

        if self.ops_impl == "auto" and self._kernels.running:
            return prefer_ops("ref")  # the compiled kernels are still being built
        return prefer_ops(self.ops_impl)

    def _threads_context(self):
        """Worker side: torch threads for this task, fewer than the cores where other processes
        (a training run) keep some busy (gan.capabilities.threads_beside)."""
        from gan.capabilities import CpuUseElsewhere, threads_beside, torch_threads

        if self._cpu_elsewhere is None:
            self._cpu_elsewhere = CpuUseElsewhere()
        busy = self._cpu_elsewhere.cores() if self.device == "cpu" else None
        return torch_threads(threads_beside(busy))

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
        kind, payload = task
        run = {
            "load": self._do_load,
            "render": self._do_render,
            "eq": self._do_eq,
            "save": self._do_save_directions,
            "thumb": self._do_thumb,
        }[kind]
        try:
            with self.ops_context(), self._threads_context():
                run(*payload)
        except Exception as exc:  # a bug must not kill the worker; show it instead
            log.exception("explorer worker task %s failed", kind)
            if kind == "render":
                error = {"stamp": payload[0], "image": None, "timings": {}, "cache": {}}
                self._deliver_render(dict(error, error=f"{type(exc).__name__}: {exc}"), payload[1])

    def _do_load(self, path: str, role: str, stamp: int) -> None:
        from gan.edit.blend import blendable_partners
        from gan.edit.directions import load_directions
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
        try:
            directions = _sort_directions(load_directions(loaded))
        except Exception:  # a damaged sidecar must not keep the model from opening
            log.exception("loading directions failed")
            directions = []
        model.directions = {d.name: d for d in directions}
        info["directions"] = [direction_view(d) for d in directions]
        info["blend_partners"] = [
            {"name": os.path.splitext(os.path.basename(p))[0], "path": p}
            for p in blendable_partners(loaded, shipped_blend_partners(path))
        ]
        self._set_model(model)
        self.model_loaded.emit(dict(info))

    def _set_model(self, model: _Model) -> None:
        self._model = model
        self._blend = None
        self._blend_cache = None
        self._model_generation += 1

    def _load_blend(self, loaded, info: dict, path: str) -> None:
        if self._model is None:
            self.blend_failed.emit(path, "Open a main model before loading a second model to blend with.")
            return
        from gan.edit.blend import blend_resolutions, check_blendable, default_blend_resolution

        problem = check_blendable(self._model.loaded, loaded)
        if problem:
            self.blend_failed.emit(path, problem)
            return
        info["blend_resolutions"] = blend_resolutions(self._model.loaded)
        info["blend_default"] = default_blend_resolution(self._model.loaded)
        self._blend = _Model(loaded=loaded, renderer=None, info=info)
        self._blend_cache = None
        self.blend_loaded.emit(dict(info))

    def _renderer_for(self, state: ExplorerState):
        """The main renderer, or one of the blended generator for the state's blend weight."""
        weight = float(state.blend or 0.0)
        blend = self._blend
        if blend is None or weight <= 0.0:
            return self._model.renderer
        weight = round(weight, 2)
        resolution = state.blend_resolution or blend.info["blend_default"]
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

    def render_args(self, state: ExplorerState):
        """gan.render.RenderArgs of `state` for the current model: its directions' slider values
        become edits (gan.edit.directions.Direction.edit), a seed plane or projection the latent."""
        from gan.render import RenderArgs, seed_to_z

        model = self._model
        edits = []
        for name, e in state.edits.items():
            d = model.directions.get(name)
            if d is None or e.strength == 0.0:
                continue  # a direction of another model (old session) is ignored; the panel shows it
            edit = d.edit(e.strength)  # slider units -> strength along the vector
            edits.append(replace(edit, layer_start=int(e.layer_start or 0), layer_end=e.layer_end))
        args = RenderArgs(
            seed=int(state.seed),
            class_idx=state.class_idx,
            psi=float(state.psi),
            truncation_cutoff=state.truncation_cutoff,
            noise_mode=state.noise_mode,
            translate=(float(state.translate[0]), float(state.translate[1])),
            rotate=float(state.rotate),
            mix_seed=state.mix_seed,
            mix_start=int(state.mix_start),
            mix_end=state.mix_end,
            edits=edits,
        )
        plane = state.plane
        if plane is not None and (plane.x != 0 or plane.y != 0):
            zs = [seed_to_z(s, model.loaded.G.z_dim) for s in (args.seed, plane.seed_b, plane.seed_c)]
            x, y = float(plane.x), float(plane.y)
            if state.space == "z":
                args.z = zs[0] + x * (zs[1] - zs[0]) + y * (zs[2] - zs[0])
            else:
                ws = [model.renderer.map_z(z, args) for z in zs]
                args.w = ws[0] + x * (ws[1] - ws[0]) + y * (ws[2] - ws[0])
        if state.projection:  # a projected photo replaces the seed (and a seed plane)
            args.w, args.noise = self._latents.get(state.projection)
        return args

    def _do_render(self, stamp: int, generation: int, state: ExplorerState) -> None:
        if self._model is None:
            return
        from gan.render import RenderError, RenderResult

        try:
            result = self._renderer_for(state).render(self.render_args(state))
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

    def _do_thumb(self, grid_gen: int, generation: int, seed: int, state: ExplorerState) -> None:
        if self._model is None or grid_gen != self._grid_generation or generation != self._model_generation:
            return
        result = self._renderer_for(state).render(self.render_args(state))
        if result.image is not None:
            if self.force_sync:
                self._on_thumb(grid_gen, generation, seed, result.image)
            else:
                self._thumb_internal.emit(grid_gen, generation, seed, result.image)

    def _on_thumb(self, grid_gen: int, generation: int, seed: int, image) -> None:
        # Thumbnails asked for with older settings or another model are not shown.
        if grid_gen == self._grid_generation and generation == self._model_generation:
            self.thumbnail_ready.emit(grid_gen, seed, image)

    def _do_eq(self, stamp: int, generation: int, state: ExplorerState) -> None:
        from gan.render import EquivarianceView, RenderError

        if self._model is None:
            return
        try:
            view = self._renderer_for(state).equivariance_view(self.render_args(state))
        except RenderError as exc:  # e.g. models that cannot be blended
            view = EquivarianceView(error=str(exc))
        out = dict(vars(view), stamp=stamp, generation=generation)
        if self.force_sync:
            self._on_eq(out)
        else:
            self._eq_internal.emit(out)

    # -- recipes ---------------------------------------------------------------------------

    def recipe(self, state: ExplorerState):
        """gan.recipe.Recipe of `state` with the current model: a video's base view, a PNG's text."""
        from gan.recipe import Recipe, model_ref

        if self._model is None:
            raise RuntimeError("no model is loaded")
        return Recipe(args=self.render_args(state), model=model_ref(self._renderer_for(state).model))

    def write_png(self, path: str, image, state: ExplorerState) -> None:
        from gan.recipe import recipe_to_dict, write_png

        recipe = self.recipe(state)
        write_png(path, image, recipe_to_dict(recipe.args, recipe.model))

    def read_png(self, path: str, state: ExplorerState, projections_dir: str) -> PngView:
        """`state` changed to the view of a PNG's recipe (edit strengths in slider units of the
        current model's directions; an explicit w becomes a projection file in projections_dir).
        ValueError (message for the user) when the file has no readable recipe."""
        from gan.errors import UserError
        from gan.recipe import read_recipe

        try:
            recipe = read_recipe(path)
        except UserError as exc:
            raise ValueError(str(exc)) from None
        a = recipe.args
        state = replace(
            state,
            seed=int(a.seed),
            psi=float(a.psi),
            truncation_cutoff=a.truncation_cutoff,
            noise_mode=a.noise_mode,
            class_idx=a.class_idx,
            mix_seed=a.mix_seed,
            mix_start=int(a.mix_start),
            mix_end=a.mix_end,
            translate=(float(a.translate[0]), float(a.translate[1])),
            rotate=float(a.rotate),
            plane=None,
            blend=0.0,
            edits={},
        )
        directions = {} if self._model is None else self._model.directions
        for e in a.edits:
            d = directions.get(e.name)
            value = e.strength if d is None else d.slider_value(e.strength)
            state = state.with_edit(
                e.name, strength=round(value, 6), layer_start=int(e.layer_start), layer_end=e.layer_end
            )
        explicit = a.z is not None or a.w is not None
        state.projection = latent_file_from_png(path, projections_dir) if explicit else None
        return PngView(state, recipe.model.path, recipe.model.sha256, explicit)

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
        from gan.edit.directions import save_directions
        from gan.errors import UserError

        try:
            path = save_directions(model.loaded.source, list(model.directions.values()))
        except (UserError, OSError, ValueError) as exc:
            self.directions_saved.emit("", f"Saving the directions failed: {exc}")
            return
        self.directions_saved.emit(str(path), "")

    # -- PCA -------------------------------------------------------------------------------

    def compute_pca(self, num_samples: int = 10_000, num_components: int = 10) -> None:
        """PCA directions of the current model in a background task (pca_progress, then
        pca_finished). A run for an older model is cancelled and this one starts after it."""
        model = self._model
        if model is None:
            return
        num_components = min(num_components, int(model.info["w_dim"]))
        if self._pca is not None:
            if self._pca_model is model:
                return  # already computing for this model
            self._pca.request_stop()
            self._pca_next = (num_samples, num_components)
            return

        def work(report, should_stop):
            from gan.edit.pca import compute_pca_directions

            with self.ops_context():
                return compute_pca_directions(
                    model.loaded.G,
                    num_samples=num_samples,
                    num_components=num_components,
                    progress=lambda done, total, what="": report((int(done), int(total))),
                    should_stop=should_stop,
                )

        task = BackgroundTask(work, "Computing PCA directions", self)
        task.progress.connect(self._on_pca_progress)
        task.finished.connect(self._on_pca_finished)
        self._pca, self._pca_model = task, model
        task.start()

    def cancel_pca(self) -> None:
        self._pca_next = None
        if self._pca is not None:
            self._pca.request_stop()

    @property
    def pca_running(self) -> bool:
        return self._pca is not None

    def _on_pca_progress(self, payload) -> None:
        self.pca_progress.emit(*payload)

    def _on_pca_finished(self) -> None:
        task, model = self._pca, self._pca_model
        if task is None or task.isRunning():
            return  # shut down meanwhile (or a stale signal)
        self._pca = self._pca_model = None
        task.deleteLater()
        if self._pca_next is not None:
            (num_samples, num_components), self._pca_next = self._pca_next, None
            self.compute_pca(num_samples, num_components)
            return
        if task.error:
            self.pca_finished.emit(task.error)
            return
        if task.stop_requested() or task.result is None or model is not self._model:
            self.pca_finished.emit("cancelled")
            return
        new = {d.name: d for d in task.result}
        kept = {k: v for k, v in model.directions.items() if v.kind != "pca"}
        model.directions = {d.name: d for d in _sort_directions(list({**kept, **new}.values()))}
        self.directions_changed.emit(self._direction_views())
        self.pca_finished.emit("")


def _default_device() -> str:
    from gan.capabilities import default_device

    return default_device()
