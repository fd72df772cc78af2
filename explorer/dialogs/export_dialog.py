"""Export an MP4 of the current view: rotation loop, translation loop, seed interpolation or a
direction sweep, with resolution (or an upscale factor for small models), fps, duration and
quality; progress bar and cancel. With `compare=[models]` (the comparison view) it exports the
models side by side, a rotation or translation loop.

A rotation loop of a model not built for rotation (anything but StyleGAN3-R) melts; the dialog
says so next to the choice and offers the translation loop instead.

Plain data only: the dialog builds a settings dict and hands it to `explorer.export_bridge`,
which renders in a worker thread. The MP4 appears complete or not at all.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.dialogs.saved_choices import load_choices, save_choices
from explorer.dialogs.spin_boxes import float_spin, int_spin
from explorer.widgets.direction_panel import display_name

SETTINGS_KEY = "export/video"  # JSON of the last encoder choices and output folder
UPSCALE_FACTORS = (1, 2, 3, 4, 6, 8)
UPSCALE_TARGET = 256  # small models are upscaled to at least this many pixels by default
# (settings kind, label)
KINDS = (
    ("rotate", "Rotation loop (0–360°)"),
    ("translate", "Translation loop"),
    ("interp", "Seed interpolation"),
    ("sweep", "Direction sweep"),
)


class ExportDialog(QDialog):
    """`ExportDialog(model_path, recipe)`: recipe is the view's gan.recipe.Recipe (RenderBridge.recipe).
    resolution: the model's (for the upscale choice; None = unknown). compare: the models of a
    side-by-side video, [{'path', 'name', 'arch'}]; model_path is then the first one's."""

    export_finished = Signal(dict)  # the result: path, frames, width, height, fps, seconds, bytes

    def __init__(
        self,
        model_path: str,
        recipe,
        parent: QWidget | None = None,
        bridge=None,
        qsettings: QSettings | None = None,
        resolution: int | None = None,
        compare: list[dict] | None = None,
    ):
        """qsettings: where the last encoder choices are kept (default: the parent window's
        `settings`, if it is a QSettings; none otherwise, e.g. in tests)."""
        super().__init__(parent)
        if qsettings is None and isinstance(getattr(parent, "settings", None), QSettings):
            qsettings = parent.settings
        self.qsettings = qsettings
        self.model_path = model_path
        self.recipe = recipe
        self.resolution = resolution
        self.compare = list(compare) if compare else None
        self.setWindowTitle("Export comparison video" if self.compare else "Export video")
        if bridge is None:
            from explorer.export_bridge import ExportBridge

            bridge = ExportBridge(self)
        self.bridge = bridge
        self.result: dict | None = None
        self.last_error: str | None = None
        self._directions: list[dict] = []
        self._build()
        bridge.progress.connect(self._on_progress)
        bridge.finished.connect(self._on_finished)
        bridge.failed.connect(self._on_failed)
        bridge.cancelled.connect(self._on_cancelled)
        bridge.directions_ready.connect(self._on_directions)
        if self.compare:
            for key in ("interp", "sweep"):  # the models share no latent directions
                self.kind.model().item([k for k, _ in KINDS].index(key)).setEnabled(False)
        else:
            bridge.request_directions(model_path)
        self._set_running(False)
        self._restore_choices()

    # --- layout --------------------------------------------------------------------------

    def _build(self) -> None:
        seed = 0 if self.recipe is None else int(self.recipe.args.seed)

        self.kind = QComboBox()
        for key, label in KINDS:
            self.kind.addItem(label, key)

        # Per-kind options.
        self.turns = int_spin(-10, 10, 1, "Full turns per loop; negative turns clockwise.")
        self.path = QComboBox()
        self.path.addItem("Circle", "circle")
        self.path.addItem("Back and forth (x)", "line")
        self.amount = float_spin(
            0.01, 2.0, 0.25, "Radius (circle) or half-width (line), in image sizes.", step=0.05
        )
        self.seeds = QLineEdit(f"{seed},{seed + 1},{seed + 2}")
        self.seeds.setToolTip("Seeds to pass through, e.g. 0,5,9 or 10-14; the loop returns to the first.")
        self.space = QComboBox()
        self.space.addItem("Z (spherical)", "z")
        self.space.addItem("W (linear)", "w")
        self.direction = QComboBox()
        self.direction.setPlaceholderText("loading directions…")
        self.direction.currentIndexChanged.connect(self._on_direction_chosen)
        self.direction_note = QLabel("")
        self.direction_note.setWordWrap(True)
        self.strength = float_spin(0.1, 100.0, 3.0, "The strength goes −s → +s → −s over the loop.", step=0.5)
        self.layer_start = int_spin(0, 63, 0, "First w index the direction applies to.")
        self.layer_end = int_spin(0, 64, 0, "One past the last w index (0 = all).")
        self.layer_end.setSpecialValueText("all")

        self.pages = QStackedWidget()
        self.pages.addWidget(_form(("Turns", self.turns)))
        self.pages.addWidget(_form(("Path", self.path), ("Amount", self.amount)))
        self.pages.addWidget(_form(("Seeds", self.seeds), ("Interpolate in", self.space)))
        self.pages.addWidget(
            _form(
                ("Direction", self.direction),
                ("", self.direction_note),
                ("Strength ±", self.strength),
                ("Layers from", self.layer_start),
                ("Layers to", self.layer_end),
            )
        )
        self.kind.currentIndexChanged.connect(self._show_page)
        # Why a rotation loop of this model looks broken, with the way out.
        self.kind_warning = QLabel("")
        self.kind_warning.setObjectName("kindWarning")
        self.kind_warning.setStyleSheet("color: #ffb35c;")
        self.kind_warning.setWordWrap(True)
        self.use_translation = QPushButton("Use a translation loop")
        self.use_translation.clicked.connect(
            lambda: self.kind.setCurrentIndex([k for k, _ in KINDS].index("translate"))
        )
        warning_row = QWidget()
        warning_layout = QHBoxLayout(warning_row)
        warning_layout.setContentsMargins(0, 0, 0, 0)
        warning_layout.addWidget(self.kind_warning, 1)
        warning_layout.addWidget(self.use_translation, 0, Qt.AlignmentFlag.AlignTop)
        self.warning_row = warning_row
        self._show_page(self.kind.currentIndex())

        source = QGroupBox("Animation")
        source_layout = QVBoxLayout(source)
        if self.compare:
            names = ", ".join(f"{m['name']} ({m['arch']})" for m in self.compare)
            models = QLabel(f"Side by side: {names}")
            models.setWordWrap(True)
            source_layout.addWidget(models)
        source_layout.addWidget(_form(("Kind", self.kind)))
        source_layout.addWidget(warning_row)
        source_layout.addWidget(self.pages)

        # Encoder.
        self.size = int_spin(
            0, 4096, 0, "Output width = height in pixels (even); frames are resized (Lanczos)."
        )
        self.size.setSingleStep(2)
        self.size.setSpecialValueText("model resolution × upscale")
        if self.compare:
            self.size.setToolTip(
                "Width = height of each panel in pixels (even); frames are resized (Lanczos)."
            )
        self.upscale = QComboBox()
        for factor in UPSCALE_FACTORS:
            self.upscale.addItem(f"{factor}×", factor)
        self.upscale.setToolTip("Scale small models up by a whole factor (only without a resolution set).")
        self.upscale.setCurrentIndex(UPSCALE_FACTORS.index(default_upscale(self.resolution)))
        self.upscale_filter = QComboBox()
        self.upscale_filter.addItem("Smooth (Lanczos)", "smooth")
        self.upscale_filter.addItem("Nearest (hard pixels)", "nearest")
        self.upscale_filter.setToolTip("Smooth looks like the explorer's view; nearest shows every pixel.")
        self.upscale_note = QLabel()
        self.upscale_note.setObjectName("hint")
        upscale_row = QWidget()
        upscale_layout = QHBoxLayout(upscale_row)
        upscale_layout.setContentsMargins(0, 0, 0, 0)
        upscale_layout.addWidget(self.upscale)
        upscale_layout.addWidget(self.upscale_filter)
        upscale_layout.addWidget(self.upscale_note, 1)
        for signal in (self.size.valueChanged, self.upscale.currentIndexChanged):
            signal.connect(self._update_upscale)
        self.fps = int_spin(1, 120, 30, "Frames per second.")
        self.duration = float_spin(0.1, 600.0, 4.0, "Length of one loop in seconds.", step=0.5)
        self.duration.setSuffix(" s")
        self.crf = int_spin(0, 51, 18, "x264 CRF: 0 = lossless … 51 = worst; 18 looks clean, 23 is smaller.")
        self.frames_label = QLabel()
        for w in (self.fps, self.duration):
            w.valueChanged.connect(self._update_frames)
        self._update_frames()
        name = "stylegan-compare.mp4" if self.compare else "stylegan-video.mp4"
        self.out_path = QLineEdit(os.path.join(os.path.expanduser("~"), name))
        self.out_path.textChanged.connect(self._fit_out_path)
        self._fit_out_path(self.out_path.text())
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        out_row = QWidget()
        out_layout = QHBoxLayout(out_row)
        out_layout.setContentsMargins(0, 0, 0, 0)
        out_layout.addWidget(self.out_path, 1)
        out_layout.addWidget(browse)
        encoder = QGroupBox("Video")
        enc_form = QFormLayout(encoder)
        enc_form.addRow("Resolution", self.size)
        enc_form.addRow("Upscale", upscale_row)
        enc_form.addRow("Frames per second", self.fps)
        enc_form.addRow("Duration", self.duration)
        enc_form.addRow("", self.frames_label)
        enc_form.addRow("Quality (CRF, lower = better)", self.crf)
        enc_form.addRow("Output file", out_row)

        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_export)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.export_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)

        layout = QVBoxLayout(self)
        layout.addWidget(source)
        layout.addWidget(encoder)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.setMinimumWidth(460)
        self._update_upscale()
        self._update_kind_warning()

    # --- settings ------------------------------------------------------------------------

    def settings(self) -> dict:
        """The VideoJob fields this dialog sets, as plain data."""
        kind = self.kind.currentData()
        size = self.size.value() or None
        settings = {
            "kind": kind,
            "size": size,
            "upscale": None if size else int(self.upscale.currentData()),
            "upscale_filter": self.upscale_filter.currentData(),
            "fps": float(self.fps.value()),
            "duration": float(self.duration.value()),
            "crf": int(self.crf.value()),
        }
        if kind == "rotate":
            settings["turns"] = int(self.turns.value())
        elif kind == "translate":
            settings["translate_path"] = self.path.currentData()
            settings["translate_amount"] = float(self.amount.value())
        elif kind == "interp":
            settings.update(seeds=self.seeds.text().strip(), interp_space=self.space.currentData())
        else:
            settings.update(
                direction_name=self.direction.currentData() or self.direction.currentText(),
                strength=float(self.strength.value()),
                layer_start=int(self.layer_start.value()),
                layer_end=int(self.layer_end.value()) or None,
            )
        return settings

    def _show_page(self, index: int) -> None:
        # Only the visible page counts for the size, so short pages leave no empty space.
        for i in range(self.pages.count()):
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            self.pages.widget(i).setSizePolicy(policy, policy)
        self.pages.setCurrentIndex(index)
        self._update_kind_warning()
        self.pages.adjustSize()
        self.adjustSize()

    def archs(self) -> list[str]:
        """The architectures in the video (from the models, or the recipe's model reference)."""
        if self.compare:
            return [str(m.get("arch", "")) for m in self.compare]
        return [self.recipe.model.arch if self.recipe is not None else ""]

    def _update_kind_warning(self) -> None:
        messages = self.bridge.warnings(self.kind.currentData(), self.archs())
        self.kind_warning.setText(" ".join(messages))
        self.warning_row.setVisible(bool(messages))

    def _update_upscale(self) -> None:
        sized = self.size.value() > 0
        self.upscale.setEnabled(not sized)
        self.upscale_filter.setEnabled(not sized)
        if sized:
            self.upscale_note.setText("(the resolution above is used)")
        elif self.resolution:
            out = self.resolution * int(self.upscale.currentData())
            what = "each panel" if self.compare else "video"
            self.upscale_note.setText(f"{self.resolution} px → {what} {out} × {out} px")
        else:
            self.upscale_note.setText("")

    def _update_frames(self) -> None:
        n = round(self.fps.value() * self.duration.value())
        self.frames_label.setText(f"{n} frames")

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save video as", self.out_path.text(), "MP4 (*.mp4)")
        if path:
            if not path.lower().endswith(".mp4"):
                path += ".mp4"
            self.out_path.setText(path)

    def _choice_widgets(self) -> dict:
        return {
            "fps": self.fps,
            "duration": self.duration,
            "crf": self.crf,
            "size": self.size,
            "turns": self.turns,
            "amount": self.amount,
            "strength": self.strength,
        }

    def _save_choices(self) -> None:
        values = {k: w.value() for k, w in self._choice_widgets().items()}
        values["folder"] = os.path.dirname(self.out_path.text().strip())
        save_choices(self.qsettings, SETTINGS_KEY, values)

    def _restore_choices(self) -> None:
        values = load_choices(self.qsettings, SETTINGS_KEY)
        for key, widget in self._choice_widgets().items():
            if isinstance(values.get(key), (int, float)):
                widget.setValue(type(widget.value())(values[key]))
        folder = values.get("folder")
        if isinstance(folder, str) and os.path.isdir(folder):
            self.out_path.setText(os.path.join(folder, os.path.basename(self.out_path.text())))

    # --- running -------------------------------------------------------------------------

    def start_export(self) -> bool:
        if self.bridge.is_running():
            return False
        out = self.out_path.text().strip()
        if not out:
            self._show_error("Choose an output file first.")
            return False
        settings = self.settings()
        message = self.bridge.validate(self.recipe, settings)
        if message is not None:
            self._show_error(message)
            return False
        self.result, self.last_error = None, None
        self._save_choices()
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self._set_status(f"Rendering {os.path.basename(out)}…")
        self._set_running(True)
        if self.compare:
            paths = [m["path"] for m in self.compare]
            started = self.bridge.start_compare(paths, None, self.recipe, settings, out)
        else:
            started = self.bridge.start(self.model_path, self.recipe, settings, out)
        if not started:
            self._set_running(False)
            return False
        return True

    def cancel_export(self) -> None:
        if self.bridge.is_running():
            self.bridge.cancel()
            self.cancel_button.setEnabled(False)
            self._set_status("Cancelling…")

    def _set_running(self, running: bool) -> None:
        self.export_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for w in (self.kind, self.pages, self.size, self.fps, self.duration, self.crf, self.out_path):
            w.setEnabled(not running)
        self.use_translation.setEnabled(not running)
        for w in (self.upscale, self.upscale_filter):
            w.setEnabled(not running and self.size.value() == 0)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setValue(round(100 * done / max(total, 1)))
        self.progress.setFormat(f"%p%  ({done} / {total} frames)")

    def _on_finished(self, result: dict) -> None:
        self.result = result
        self._set_running(False)
        self.progress.setValue(100)
        self._set_status(
            f"Saved {result['path']}: {result['frames']} frames, {result['width']}×{result['height']}, "
            f"{result['fps']:g} fps, {result['bytes'] / 1024:.0f} KiB in {result['seconds']:.1f} s."
            + "".join(f" Note: {w}" for w in result.get("warnings", []))
        )
        self.export_finished.emit(result)

    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self.progress.setValue(0)
        self.progress.setFormat("failed")  # not "0% (48 / 48 frames)" from the last progress report
        self._show_error(message)

    def _on_cancelled(self, message: str) -> None:
        self._set_running(False)
        self.progress.setValue(0)
        self.progress.setFormat("cancelled")
        self._set_status(f"Cancelled; no file was written. ({message})")

    def _on_directions(self, directions: list, message: str) -> None:
        self._directions = list(directions)
        self.direction.clear()
        for d in self._directions:
            self.direction.addItem(display_name(d), d["name"])  # "Anime-ify", as on the slider
        self.direction.setPlaceholderText("no directions" if not directions else "")
        self.direction_note.setText(message)
        self.direction_note.setVisible(bool(message))
        sweep_index = [k for k, _ in KINDS].index("sweep")
        self.kind.model().item(sweep_index).setEnabled(bool(directions))

    def _on_direction_chosen(self, index: int) -> None:
        if 0 <= index < len(self._directions):
            d = self._directions[index]
            self.layer_start.setValue(int(d.get("layer_start") or 0))
            self.layer_end.setValue(int(d.get("layer_end") or 0))

    def _fit_out_path(self, text: str) -> None:
        """Wide enough for the whole path (up to a limit), the full path as tooltip: the field
        used to cut the file name off."""
        width = self.out_path.fontMetrics().horizontalAdvance(text) + 24
        self.out_path.setMinimumWidth(min(max(width, 200), 560))
        self.out_path.setToolTip(text)

    def _show_error(self, message: str) -> None:
        self.last_error = message
        self.status.setStyleSheet("color: #c0392b;")
        self.status.setText(message)

    def _set_status(self, text: str) -> None:
        self.status.setStyleSheet("")
        self.status.setText(text)

    # --- closing -------------------------------------------------------------------------

    def reject(self) -> None:
        self._shutdown()
        super().reject()

    def closeEvent(self, event) -> None:
        self._shutdown()
        super().closeEvent(event)

    def _shutdown(self) -> None:
        if self.bridge.is_running():
            self.bridge.cancel()
        self.bridge.shutdown()


def default_upscale(resolution: int | None) -> int:
    """The smallest offered factor that makes a small model's video at least UPSCALE_TARGET px."""
    if not resolution:
        return 1
    return next((f for f in UPSCALE_FACTORS if resolution * f >= UPSCALE_TARGET), UPSCALE_FACTORS[-1])


def _form(*rows: tuple[str, QWidget]) -> QWidget:
    w = QWidget()
    form = QFormLayout(w)
    form.setContentsMargins(0, 0, 0, 0)
    for label, widget in rows:
        form.addRow(label, widget)
    return w
