"""The explorer's main window: image in the centre, latent controls left, directions right,
seeds / latent canvas / transform inspector as docks. All state changes go through `History`;
all rendering through `RenderBridge`."""

from __future__ import annotations

import html
import os
import random
import sys

from PySide6.QtCore import QEventLoop, QIODevice, QSaveFile, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
)

from explorer.render_bridge import RenderBridge
from explorer.state import MAX_SEED, ExplorerState, History, PlaneState, session_from_json, session_to_json
from explorer.system_check import system_checks
from explorer.widgets.direction_panel import DirectionPanel, slider_range
from explorer.widgets.image_view import ImageView
from explorer.widgets.latent_canvas import LatentCanvas
from explorer.widgets.latent_panel import LatentPanel
from explorer.widgets.seed_grid import SeedGrid
from explorer.widgets.transform_inspector import TransformInspector
from explorer.widgets.welcome_overlay import WelcomeOverlay

MODEL_FILTER = "Models (*.safetensors *.pkl);;All files (*)"
OPEN_FILTER = (
    "Models, sessions, PNGs and photos (*.safetensors *.pkl *.json *.png *.jpg *.jpeg *.webp);;All files (*)"
)
PHOTO_FILTER = "Photos (*.jpg *.jpeg *.png *.webp);;All files (*)"
MAX_RECENT = 8

NO_MODEL_HTML = """
<h2>No model loaded</h2>
<p>Open a StyleGAN2 / StyleGAN3 model to start exploring:</p>
<ul>
<li><b>File &gt; Open…</b> (Ctrl+O) a <code>.safetensors</code> model
    or an official NVIDIA <code>.pkl</code>,</li>
<li>or drag and drop a model file (or a PNG saved by this program) onto this window.</li>
</ul>
<p>Train your own with <b>Train &gt; Train / fine-tune…</b>.</p>
"""


class MainWindow(QMainWindow):
    state_changed = Signal()  # after every change of the current state (tests, docks)

    def __init__(self, bridge: RenderBridge | None = None, settings: QSettings | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("StyleGAN Explorer")
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else QSettings("stylegan-explorer", "explorer")
        self.bridge = bridge if bridge is not None else RenderBridge(self)
        self.history = History(ExplorerState())
        self.model_info: dict | None = None
        self.model_path: str | None = None
        self.last_result: dict | None = None  # latest shown render (image, timings, error)
        self._pending_session_state: ExplorerState | None = None  # applied once its model loads
        self._rng = random.Random()
        self.quiet_errors = False  # True for --screenshot: no modal dialogs without a user
        # Compute PCA directions in the background for models that have none (setting "auto_pca").
        self.auto_pca = self.settings.value("auto_pca", True, type=bool)
        self.messages: list[tuple[str, str, str]] = []  # (level, title, text) shown to the user
        self._thumb_key: tuple | None = None  # settings the seed-grid thumbnails were rendered with
        self._requested_stamp = 0  # stamp of the newest render request of the current state
        self._busy_timer = QTimer(self)  # says "rendering…" when a render takes a while
        self._busy_timer.setSingleShot(True)
        self._busy_timer.setInterval(250)
        self._busy_timer.timeout.connect(self._show_busy)

        self.image_view = ImageView()
        self.setCentralWidget(self.image_view)
        self.image_view.set_message(NO_MODEL_HTML)

        self.latent_panel = LatentPanel()
        self.direction_panel = DirectionPanel()
        self.seed_grid = SeedGrid()
        self.latent_canvas = LatentCanvas()
        self.inspector = TransformInspector()
        self.dock_latent = self._dock("Latent", self.latent_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.dock_canvas = self._dock(
            "Latent canvas", self.latent_canvas, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.dock_directions = self._dock(
            "Directions", self.direction_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.dock_inspector = self._dock(
            "Transform inspector", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.dock_seeds = self._dock("Seeds", self.seed_grid, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.setTabPosition(Qt.DockWidgetArea.RightDockWidgetArea, QTabWidget.TabPosition.North)
        self.tabifyDockWidget(self.dock_directions, self.dock_inspector)
        self.dock_directions.raise_()
        self.resizeDocks([self.dock_latent, self.dock_directions], [330, 400], Qt.Orientation.Horizontal)
        self.resizeDocks([self.dock_seeds], [185], Qt.Orientation.Vertical)

        self.status_render = QLabel("")
        self.status_ops = QLabel("")
        self.statusBar().addWidget(self.status_render, 1)
        self.statusBar().addPermanentWidget(self.status_ops)
        self.welcome = WelcomeOverlay(self.image_view)
        self.welcome.dismissed.connect(self._on_welcome_dismissed)
        self._loading_model = False  # a model is being opened (the view says so)
        self._welcome_pending = False  # show the card once that model is open (or failed)

        self._build_menus()
        self._connect()
        self._refresh_widgets()
        self._restore_settings()

    # -- construction ----------------------------------------------------------------------

    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_").lower())
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._action(file_menu, "Open second model to &blend…", self.open_blend_dialog)
        self._action(
            file_menu, "Open &photo (project it into the model)…", self.open_photo_dialog, "Ctrl+Shift+O"
        )
        file_menu.addSeparator()
        self._action(file_menu, "&Save session…", self.save_session_dialog, QKeySequence.StandardKey.Save)
        self._action(file_menu, "&Export PNG…", self.export_png_dialog, "Ctrl+E")
        self._action(file_menu, "Export &video…", self.open_export_dialog, "Ctrl+Shift+E")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        edit_menu = bar.addMenu("&Edit")
        self.undo_action = self._action(edit_menu, "&Undo", self.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = self._action(edit_menu, "&Redo", self.redo, "Ctrl+Shift+Z")
        edit_menu.addSeparator()
        # Arrow keys are handled in keyPressEvent, after the focused widget: a focused slider or
        # spin box keeps its own arrow keys; the text after the tab shows the key in the menu.
        self._action(edit_menu, "Previous seed\tLeft", lambda: self._step_seed(-1))
        self._action(edit_menu, "Next seed\tRight", lambda: self._step_seed(1))
        self._action(edit_menu, "Random seed", self.random_seed, Qt.Key.Key_R)
        self._action(edit_menu, "Reset edits", self.reset_edits, "Ctrl+R")
        self._action(edit_menu, "Reset transform", self.reset_transform, "Ctrl+T")

        view_menu = bar.addMenu("&View")
        self._action(view_menu, "&Fit image", self.image_view.fit, Qt.Key.Key_F)
        self.smooth_action = self._action(view_menu, "&Smooth scaling", self._set_smooth)
        self.smooth_action.setCheckable(True)
        self.smooth_action.setChecked(self.settings.value("smooth_scaling", True, type=bool))
        self.image_view.set_smooth(self.smooth_action.isChecked())
        self._action(view_menu, "&Compare models…", self.open_compare_window)
        view_menu.addSeparator()
        for dock in (
            self.dock_latent,
            self.dock_canvas,
            self.dock_directions,
            self.dock_inspector,
            self.dock_seeds,
        ):
            view_menu.addAction(dock.toggleViewAction())

        train_menu = bar.addMenu("&Train")
        self._action(train_menu, "&Train / fine-tune…", self.open_training_dialog)
        self._action(train_menu, "Compute &PCA directions", self.direction_panel.request_pca)
        self._action(train_menu, "&Save directions with the model", self.save_directions)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Welcome and system check…", self.show_welcome, "F1")
        self._action(help_menu, "&Model info…", self.show_model_info, "Ctrl+I")
        self._action(help_menu, "&About", self.show_about)
        self._update_recent_menu()

    def _connect(self) -> None:
        b = self.bridge
        b.model_loaded.connect(self._on_model_loaded)
        b.model_failed.connect(self._on_model_failed)
        b.blend_loaded.connect(self._on_blend_loaded)
        b.blend_failed.connect(self._on_blend_failed)
        b.rendered.connect(self._on_rendered)
        b.thumbnail_ready.connect(self.seed_grid.set_thumbnail)
        b.equivariance_ready.connect(self.inspector.set_equivariance)
        b.directions_changed.connect(self._on_directions_changed)
        b.pca_progress.connect(self.direction_panel.set_pca_progress)
        b.pca_finished.connect(self._on_pca_finished)
        b.directions_saved.connect(self._on_directions_saved)
        b.kernels_changed.connect(self._on_kernels_changed)

        self.latent_panel.changed.connect(self.apply_fields)
        self.latent_panel.drag_finished.connect(self.end_drag)
        self.latent_panel.random_seed_requested.connect(self.random_seed)

        dp = self.direction_panel
        dp.edit_changed.connect(self.apply_edit)
        dp.drag_finished.connect(self.end_drag)
        dp.reset_all.connect(self.reset_edits)
        dp.pca_requested.connect(lambda n: self.bridge.compute_pca(num_samples=n))
        dp.pca_cancel_requested.connect(self.bridge.cancel_pca)
        dp.blend_changed.connect(lambda v, key: self.apply_fields({"blend": v}, key))
        dp.blend_open_requested.connect(self.open_blend_dialog)
        dp.blend_partner_requested.connect(lambda path: self.bridge.load_model(path, role="blend"))
        dp.blend_resolution_changed.connect(lambda r: self.apply_fields({"blend_resolution": r}))

        self.seed_grid.seed_picked.connect(lambda s: self.apply_fields({"seed": int(s)}))
        self.seed_grid.page_changed.connect(self._request_thumbnails)

        lc = self.latent_canvas
        lc.plane_changed.connect(self._on_canvas_plane)
        lc.directions_moved.connect(self._on_canvas_directions)
        lc.drag_finished.connect(self.end_drag)

        ins = self.inspector
        ins.changed.connect(self.apply_fields)
        ins.drag_finished.connect(self.end_drag)
        ins.visibility_changed.connect(lambda _: self._request_equivariance())
        self.image_view.translate_dragged.connect(self._on_image_translate)
        self.image_view.rotate_dragged.connect(self._on_image_rotate)
        self.image_view.drag_finished.connect(self.end_drag)

    # -- state changes ---------------------------------------------------------------------

    def commit(self, state: ExplorerState, merge_key: str = "") -> None:
        try:
            changed = self.history.commit(state, merge_key or None)
        except ValueError as exc:
            self.statusBar().showMessage(str(exc), 5000)
            self._refresh_widgets()
            return
        if changed:
            self._after_change(continuous=bool(merge_key))

    def apply_fields(self, fields: dict, merge_key: str = "") -> None:
        state = self.history.current()
        if "seed" in fields:
            state.projection = None  # picking a seed leaves a projected photo
        for key, value in fields.items():
            setattr(state, key, value)
        self.commit(state, merge_key)

    def apply_edit(self, name: str, changes: dict, merge_key: str = "") -> None:
        self.commit(self.history.current().with_edit(name, **changes), merge_key)

    def end_drag(self) -> None:
        self.history.end_merge()
        self._request_render(continuous=False)  # the final position, never rate-limited away
        self._request_equivariance()

    def undo(self) -> None:
        if self.history.undo():
            self._after_change()

    def redo(self) -> None:
        if self.history.redo():
            self._after_change()

    def _step_seed(self, delta: int) -> None:
        self.apply_fields({"seed": max(0, min(MAX_SEED, self.history.current().seed + delta))})

    def random_seed(self) -> None:
        self.apply_fields({"seed": self._rng.randrange(0, 100_000)})

    def reset_edits(self) -> None:
        state = self.history.current().reset_edits()
        state.plane = None
        self.commit(state)

    def reset_transform(self) -> None:
        self.apply_fields({"translate": (0.0, 0.0), "rotate": 0.0})

    def _on_image_translate(self, dx: float, dy: float) -> None:
        if not (self.model_info and self.model_info["has_input_transform"]):
            return
        tx, ty = self.history.current().translate
        self.apply_fields({"translate": (round(tx + dx, 4), round(ty + dy, 4))}, "image-translate")

    def _on_image_rotate(self, delta: float) -> None:
        if not (self.model_info and self.model_info["has_input_transform"]):
            return
        angle = (self.history.current().rotate + delta + 180.0) % 360.0 - 180.0
        self.apply_fields({"rotate": round(angle, 3)}, "image-rotate")

    def _on_canvas_plane(self, seed_b: int, seed_c: int, x: float, y: float, merge_key: str) -> None:
        self.apply_fields({"plane": PlaneState(seed_b=seed_b, seed_c=seed_c, x=x, y=y)}, merge_key)

    def _on_canvas_directions(self, name_a: str, a: float, name_b: str, b: float, merge_key: str) -> None:
        state = self.history.current()
        ranges = {d["name"]: slider_range(d) for d in (self.model_info or {}).get("directions", [])}
        for name, value in ((name_a, a), (name_b, b)):
            edit = state.edits.get(name)
            if name in ranges:  # the canvas reaches +-3; a direction may stop earlier
                value = min(max(value, ranges[name][0]), ranges[name][1])
            if name and not (edit is not None and edit.locked):
                state = state.with_edit(name, strength=round(value, 3))
        self.commit(state, merge_key)

    def _after_change(self, continuous: bool = False) -> None:
        self._refresh_widgets()
        self._request_render(continuous=continuous)
        if not continuous:
            self._request_equivariance()
            self._refresh_thumbnails_if_needed()
        self.state_changed.emit()

    def _thumbnail_key(self) -> tuple:
        s = self.history.current()
        return (s.psi, s.truncation_cutoff, s.noise_mode, s.class_idx, s.blend, s.blend_resolution)

    def _refresh_thumbnails_if_needed(self) -> None:
        """Thumbnails show seeds with the current psi, class, noise and blend: re-render on change."""
        key = self._thumbnail_key()
        if key != self._thumb_key:
            self._thumb_key = key
            self.seed_grid.reset_thumbnails()
            self.seed_grid.request_missing()

    def _refresh_widgets(self) -> None:
        state = self.history.current()
        self.latent_panel.set_state(state)
        self.direction_panel.set_state(state)
        self.latent_canvas.set_state(state)
        self.inspector.set_state(state)
        self.seed_grid.set_current(state.seed)
        self.undo_action.setEnabled(self.history.can_undo())
        self.redo_action.setEnabled(self.history.can_redo())

    # -- rendering -------------------------------------------------------------------------

    def _request_render(self, continuous: bool = False) -> None:
        if self.model_info is None:
            return
        self._requested_stamp = self.bridge.request_render(self.history.current(), continuous=continuous)
        if not self._busy_timer.isActive():
            self._busy_timer.start()

    def current_image(self, timeout_ms: int = 60_000):
        """The image of the current state: waits (event loop running) for a pending render.
        None if there is no model, the render failed or it took longer than timeout_ms."""
        if self.model_info is None:
            return None
        if self.last_result is None or self.last_result["stamp"] != self._requested_stamp:
            self._request_render()  # not rate-limited: the exact current state
            loop = QEventLoop()
            done = lambda r: loop.quit() if r["stamp"] == self._requested_stamp else None  # noqa: E731
            self.bridge.rendered.connect(done)
            QTimer.singleShot(timeout_ms, loop.quit)
            if self.last_result is None or self.last_result["stamp"] != self._requested_stamp:
                loop.exec()
            self.bridge.rendered.disconnect(done)
        r = self.last_result
        if r is None or r["stamp"] != self._requested_stamp or r["error"]:
            return None
        return r["image"]

    def _request_equivariance(self) -> None:
        if self.model_info is None or not self.inspector.wants_equivariance():
            return
        self.bridge.request_equivariance(self.history.current())

    def _request_thumbnails(self, seeds: list) -> None:
        if self.model_info is None:
            return
        self.bridge.request_thumbnails([int(s) for s in seeds], self.history.current())

    def _show_busy(self) -> None:
        if self.last_result is None or self.last_result["stamp"] != self._requested_stamp:
            slow = " (reference ops while the C++ kernels build)" if self.bridge.kernels_building else ""
            self.status_render.setText(f"Rendering…{slow}")

    def _on_rendered(self, result: dict) -> None:
        self.last_result = result
        if result["error"]:
            self.status_render.setText(f"⚠ {result['error']}")
            return
        self.image_view.set_image(result["image"])
        t = result["timings"]
        cache = result.get("cache", {})
        reuse = ""
        if cache.get("stages_total"):
            reuse = f" · {cache['stages_reused']}/{cache['stages_total']} stages cached"
        state = self.history.current()
        what = "Projected photo" if state.projection else f"Seed {state.seed}"
        self.status_render.setText(
            f"{what} · render {t.get('total', 0):.0f} ms "
            f"(mapping {t.get('mapping', 0):.0f}, synthesis {t.get('synthesis', 0):.0f}){reuse}"
        )

    # -- models ----------------------------------------------------------------------------

    def open_path(self, path: str) -> None:
        """Open a model, a session (.json) or a PNG with a recipe, by file contents/extension."""
        from explorer.project_bridge import PHOTO_SUFFIXES, png_has_recipe

        ext = os.path.splitext(path)[1].lower()
        if ext == ".json":
            self.load_session(path)
        elif ext == ".png" and png_has_recipe(path):
            self.open_png(path)
        elif ext in PHOTO_SUFFIXES:
            self.open_photo(path)  # any other picture: a photo to project
        else:
            self.load_model(path)

    def load_model(self, path: str) -> None:
        self.statusBar().showMessage(f"Opening {path}…")
        self._loading_model = True
        if self.model_info is None:  # not "No model loaded" while one is on its way
            self.image_view.set_message(f"<h2>Opening {html.escape(os.path.basename(path))}…</h2>")
        self.bridge.load_model(path)

    def _on_model_loaded(self, info: dict) -> None:
        self._loading_model = False
        first = self.model_info is None
        same_lineage = self.model_info is not None and self.model_info.get("num_ws") == info.get("num_ws")
        self.model_info = info
        self.model_path = info["path"]
        self.setWindowTitle(f"StyleGAN Explorer — {info['name']}")
        if info.get("kernels_building"):
            self.statusBar().showMessage(
                f"Opened {info['path']} · building the C++ kernels in the background (once, 1-2 min); "
                "rendering with the slower reference ops until then",
                15_000,
            )
        else:
            self.statusBar().showMessage(f"Opened {info['path']}", 4000)
        self._add_recent(info["path"])
        self.latent_panel.set_model(info)
        self.direction_panel.set_model(info, info.get("directions", []))
        self.latent_canvas.set_directions(info.get("directions", []))
        self.inspector.set_model(info)
        if self.welcome.isVisible() or self._welcome_pending:
            self.show_welcome()  # tips for this model (e.g. its anime slider)
        self._show_ops(building=bool(info.get("kernels_building") or self.bridge.kernels_building))
        state = self.history.current()
        if self._pending_session_state is not None:
            state, self._pending_session_state = self._pending_session_state, None
            self.history.replace(state)
        elif not (first or same_lineage):
            # Layer ranges and classes of another model do not carry over.
            state.mix_seed, state.mix_start, state.mix_end = None, 0, None
            state.edits = {}
            self.history.replace(state)
        elif first and info.get("default_seed") is not None and state == ExplorerState():
            # A fresh start opens on the seed the model names (one that shows a clear face).
            state.seed = int(info["default_seed"])
            self.history.replace(state)
        if info["c_dim"] > 0 and state.class_idx is None:
            state.class_idx = 0
            self.history.replace(state)
        if not info["has_input_transform"] and (state.translate != (0.0, 0.0) or state.rotate != 0.0):
            state.translate, state.rotate = (0.0, 0.0), 0.0
            self.history.replace(state)
        if state.blend or state.blend_resolution is not None:
            state.blend, state.blend_resolution = 0.0, None
            self.history.replace(state)
        self._refresh_widgets()
        self._request_render()
        self._request_equivariance()
        if self.auto_pca and not any(d.get("kind") == "pca" for d in info.get("directions", [])):
            # A newly opened model without PCA directions gets them in the background.
            self.direction_panel.request_pca()
        self._thumb_key = self._thumbnail_key()
        self.seed_grid.reset_thumbnails()
        self.seed_grid.request_missing()
        self.state_changed.emit()

    def _show_ops(self, building: bool = False) -> None:
        info = self.model_info
        if info is None:
            return
        if building:
            ops = "reference (C++ kernels building in the background)"
        else:
            ops = ", ".join(f"{k}={v.get('impl', '?')}" for k, v in info.get("ops", {}).items())
        self.status_ops.setText(f"{info['arch']} {info['resolution']}px · {info['device']} · ops: {ops}")

    def _on_kernels_changed(self, event: dict) -> None:
        """The background build of the C++ kernels started or ended (see RenderBridge)."""
        building = event["state"] == "building"
        if not building and self.model_info is not None and event.get("ops"):
            self.model_info["ops"] = event["ops"]
        self._show_ops(building=building)
        if not building:
            self.statusBar().showMessage(event["message"], 10_000)

    def _on_model_failed(self, path: str, message: str) -> None:
        self._loading_model = False
        if self.model_info is None:
            self.image_view.set_message(NO_MODEL_HTML)
        if self._welcome_pending:
            self.show_welcome()
        self._pending_session_state = None
        self.statusBar().showMessage(f"Could not open {path}", 5000)
        keep = "The current model stays open." if self.model_info else ""
        self.notify("warning", "Cannot open model", f"{message}\n\n{keep}".strip())

    def open_blend_dialog(self) -> None:
        if self.model_info is None:
            self.notify("information", "Blend models", "Open a main model first.")
            return
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a model of the same lineage", self._last_dir(), MODEL_FILTER
        )
        if path:
            self.bridge.load_model(path, role="blend")

    def _on_blend_loaded(self, info: dict) -> None:
        self.direction_panel.set_blend_model(
            info["name"], info.get("blend_resolutions", []), info.get("blend_default", 4)
        )
        self.statusBar().showMessage(f"Blending with {info['name']}: move the blend slider", 5000)

    def _on_blend_failed(self, path: str, message: str) -> None:
        self.notify("warning", "Cannot blend", message)

    def _on_directions_changed(self, directions: list) -> None:
        if self.model_info is not None:
            self.model_info["directions"] = directions
        self.direction_panel.set_directions(directions)
        self.latent_canvas.set_directions(directions)
        self._refresh_widgets()

    def _on_pca_finished(self, message: str) -> None:
        self.direction_panel.pca_done(message)
        if message and message != "cancelled":
            self.notify("warning", "PCA directions", message)

    def save_directions(self) -> None:
        if self.model_info is None:
            self.notify("information", "Save directions", "Open a model first.")
            return
        self.statusBar().showMessage("Saving directions…")
        self.bridge.save_directions()

    def _on_directions_saved(self, path: str, error: str) -> None:
        if error:
            self.notify("warning", "Save directions", error)
            return
        self.statusBar().showMessage(f"Directions saved to {path}", 6000)
        # The model file (or its sidecar) changed: reopen it so recipes carry the new hash.
        self._pending_session_state = self.history.current()
        self.load_model(self.model_info["path"])

    # -- files -----------------------------------------------------------------------------

    def _last_dir(self) -> str:
        return str(self.settings.value("last_dir", os.getcwd()))

    def _remember_dir(self, path: str) -> None:
        self.settings.setValue("last_dir", os.path.dirname(os.path.abspath(path)))

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open", self._last_dir(), OPEN_FILTER)
        if path:
            self._remember_dir(path)
            self.open_path(path)

    def _recent(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _add_recent(self, path: str) -> None:
        recent = [p for p in self._recent() if p != path]
        self.settings.setValue("recent_files", [path] + recent[: MAX_RECENT - 1])
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self._recent()
        if not recent:
            self.recent_menu.addAction("(none)").setEnabled(False)
        for path in recent:
            action = self.recent_menu.addAction(os.path.basename(path))
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))

    def save_session_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", self._last_dir(), "Sessions (*.json)")
        if path:
            if not path.lower().endswith(".json"):
                path += ".json"
            self.save_session(path)

    def save_session(self, path: str) -> None:
        info = self.model_info or {}
        text = session_to_json(self.history.current(), info.get("path"), info.get("sha256"))
        file = QSaveFile(path)  # the old file stays until the new one is complete; a failed
        if file.open(QIODevice.OpenModeFlag.WriteOnly):  # write makes commit() fail
            file.write(text.encode("utf-8"))
        if not file.commit():
            self.notify("warning", "Cannot save session", f"Writing {path} failed: {file.errorString()}")
            return
        self.statusBar().showMessage(f"Saved session {path}", 4000)

    def load_session(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as f:
                state, model_path, sha = session_from_json(f.read())
        except (OSError, ValueError) as exc:
            self.notify("warning", "Cannot open session", f"{path}: {exc}")
            return
        self._apply_loaded_state(state, model_path, sha, path)

    def _apply_loaded_state(
        self, state: ExplorerState, model_path: str | None, sha: str | None, source: str
    ) -> None:
        current = self.model_info or {}
        if model_path and sha and sha != current.get("sha256"):
            if os.path.exists(model_path):
                self._pending_session_state = state
                self.load_model(model_path)
                return
            self.notify(
                "information",
                "Model not found",
                f"{source} was made with {model_path}, which does not exist here. "
                "The settings are applied to the current model.",
            )
        if self.model_info is None:
            self._pending_session_state = state
            return
        self.history.commit(state)
        self._after_change()

    def export_png_dialog(self) -> None:
        if self.model_info is None:
            self.notify("information", "Export PNG", "Open a model first.")
            return
        default = os.path.join(self._last_dir(), f"seed{self.history.current().seed:04d}.png")
        path, _ = QFileDialog.getSaveFileName(self, "Export PNG", default, "PNG images (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self.export_png(path)

    def export_png(self, path: str) -> None:
        image = self.current_image()
        if image is None:
            error = (self.last_result or {}).get("error") or "no image was rendered"
            self.notify("warning", "Cannot export PNG", f"The current image is not available: {error}")
            return
        try:
            self.bridge.write_png(path, image, self.history.current())
        except (OSError, ValueError, RuntimeError) as exc:
            self.notify("warning", "Cannot export PNG", f"Writing {path} failed: {exc}")
            return
        self.statusBar().showMessage(f"Exported {path} (with its recipe)", 4000)

    def open_png(self, path: str) -> None:
        try:
            view = self.bridge.read_png(path, self.history.current(), self.projections_dir())
        except ValueError as exc:
            self.notify("warning", "Cannot open PNG", str(exc))
            return
        if view.explicit_latent and view.state.projection is None:
            self.statusBar().showMessage("The PNG used an explicit latent; restored its seed settings", 6000)
        self._apply_loaded_state(view.state, view.model_path, view.model_sha256, path)

    # -- photos ----------------------------------------------------------------------------

    def projections_dir(self) -> str:
        """Where projected photos' latents are kept (setting "projections_dir")."""
        from PySide6.QtCore import QStandardPaths

        default = os.path.join(
            QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation),
            "projections",
        )
        return str(self.settings.value("projections_dir", default))

    def open_photo_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open photo", self._last_dir(), PHOTO_FILTER)
        if path:
            self._remember_dir(path)
            self.open_photo(path)

    def open_photo(self, path: str):
        """The photo dialog (faces, crop box, projection) for path; returns it (None without a model)."""
        if self.model_info is None:
            self.notify("information", "Open photo", "Open a model first: the photo is projected into it.")
            return None
        from explorer.dialogs.project_dialog import ProjectDialog

        dialog = ProjectDialog(self.model_path, self.model_info["resolution"], self.projections_dir(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.projected.connect(lambda npz: self.apply_fields({"projection": npz}))
        dialog.show()
        dialog.open_photo(path)
        return dialog

    # -- other dialogs ---------------------------------------------------------------------

    def open_export_dialog(self) -> None:
        if self.model_info is None:
            self.notify("information", "Export video", "Open a model first.")
            return
        from explorer.dialogs.export_dialog import ExportDialog

        recipe = self.bridge.recipe(self.history.current())
        dialog = ExportDialog(self.model_path, recipe, self, resolution=self.model_info["resolution"])
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def open_compare_window(self) -> None:
        """View > Compare models: the current model beside the shipped models of its resolution."""
        from explorer.compare_bridge import CompareBridge
        from explorer.compare_window import CompareWindow, default_models

        paths = default_models(self.model_path, (self.model_info or {}).get("resolution"))
        b = self.bridge
        bridge = CompareBridge(force_sync=b.force_sync, device=b.device, ops_impl=b.ops_impl)
        window = CompareWindow(paths, self, bridge=bridge, smooth=self.smooth_action.isChecked())
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.show()

    def open_training_dialog(self) -> None:
        from explorer.dialogs.training_dialog import TrainingDialog

        dialog = TrainingDialog(self.model_path, self)
        dialog.open_snapshot_requested.connect(self.load_model)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def model_info_text(self) -> str:
        info = self.model_info
        if info is None:
            return "No model loaded."
        rows = [
            ("File", info["path"]),
            ("SHA-256", info["sha256"][:16] + "…"),
            ("Architecture", info["arch"]),
            ("Resolution", f"{info['resolution']} × {info['resolution']}"),
            ("Parameters", f"{info['params']:,}"),
            ("z / w dims", f"{info['z_dim']} / {info['w_dim']} ({info['num_ws']} ws)"),
            ("Classes", str(info["c_dim"]) if info["c_dim"] else "unconditional"),
            ("Networks", ", ".join(info.get("networks", []))),
            *[("Origin" if i == 0 else "", line) for i, line in enumerate(info.get("origin", []))],
            ("Device", info["device"]),
            ("Directions", str(len(info.get("directions", [])))),
        ]
        for op, cap in info.get("ops", {}).items():
            reason = f" — {cap.get('reason')}" if cap.get("reason") else ""
            rows.append((f"op {op}", f"{cap.get('impl', '?')} ({cap.get('state', '')}){reason}"))
        body = "".join(
            f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(str(v))}</td></tr>" for k, v in rows
        )
        return f"<table cellspacing=4>{body}</table>"

    def _set_smooth(self, smooth: bool) -> None:
        self.image_view.set_smooth(smooth)
        self.settings.setValue("smooth_scaling", smooth)

    @property
    def welcome_at_start(self) -> bool:
        return self.settings.value("show_welcome", True, type=bool)

    def show_welcome(self) -> None:
        """The welcome card: what to try with this model, and what this computer lacks (with fixes)."""
        self._welcome_pending = False
        ops = (self.model_info or {}).get("ops")
        self.welcome.show_at_start.setChecked(self.welcome_at_start)
        self.welcome.set_content(self.model_info, system_checks(ops))
        if self.model_info is None:
            self.image_view.set_message("")  # the card says how to open a model; no text under it
        self.welcome.popup()

    def show_welcome_when_ready(self) -> None:
        """At start: the card once the model being opened is shown, so it does not appear over
        "Opening…" and then grow over the face when the model's tips arrive."""
        if self._loading_model:
            self._welcome_pending = True
        else:
            self.show_welcome()

    def _on_welcome_dismissed(self, show_again: bool) -> None:
        self.settings.setValue("show_welcome", show_again)
        if self.model_info is None and not self._loading_model:
            self.image_view.set_message(NO_MODEL_HTML)

    def show_model_info(self) -> None:
        self.notify("information", "Model info", self.model_info_text())

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About StyleGAN Explorer",
            "<h3>StyleGAN Explorer</h3><p>Browse, edit, inspect and train StyleGAN2 / StyleGAN3 models "
            "on CPU or GPU.</p>" + self.model_info_text(),
        )

    def notify(self, level: str, title: str, text: str) -> None:
        """A message box, or (headless: `quiet_errors`) stderr + status bar, never blocking."""
        self.messages.append((level, title, text))
        if self.quiet_errors:
            print(f"{title}: {text}", file=sys.stderr)
            self.statusBar().showMessage(f"{title}: {text}", 8000)
            return
        box = QMessageBox.warning if level == "warning" else QMessageBox.information
        box(self, title, text)

    # -- drag and drop, settings, close -----------------------------------------------------

    def keyPressEvent(self, event) -> None:
        if event.modifiers() == Qt.KeyboardModifier.NoModifier and event.key() in (
            Qt.Key.Key_Left,
            Qt.Key.Key_Right,
        ):
            self._step_seed(-1 if event.key() == Qt.Key.Key_Left else 1)
            event.accept()
            return
        super().keyPressEvent(event)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths[0])

    def _restore_settings(self) -> None:
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1360, 860)
        dock_state = self.settings.value("window_state")
        if dock_state is not None:
            self.restoreState(dock_state)
        self.inspector.setVisible(True)

    def save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        sha = (self.model_info or {}).get("sha256")
        self.settings.setValue("last_session", session_to_json(self.history.current(), self.model_path, sha))

    def restore_last_session(self) -> bool:
        """Reopen the model and state of the previous run (saved on close); False if there is none
        or its model file is gone."""
        text = self.settings.value("last_session")
        if not text:
            return False
        try:
            state, model_path, sha = session_from_json(str(text))
        except ValueError:
            return False  # an older or damaged entry: start fresh
        if not model_path or not os.path.exists(model_path):
            return False
        self._pending_session_state = state
        self.load_model(model_path)
        return True

    def closeEvent(self, event) -> None:
        self.save_settings()
        for dialog in self.findChildren(QDialog):  # export / training dialogs stop their work first
            dialog.close()
        self.bridge.shutdown()
        super().closeEvent(event)
