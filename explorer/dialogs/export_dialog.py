"""Export an MP4 of the current view: rotation loop, translation loop, seed interpolation or a
direction sweep, with resolution, fps, duration and quality; progress bar and cancel.

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

SETTINGS_KEY = "export/video"  # JSON of the last encoder choices and output folder
# (settings kind, label)
KINDS = (
    ("rotate", "Rotation loop (0–360°)"),
    ("translate", "Translation loop"),
    ("interp", "Seed interpolation"),
    ("sweep", "Direction sweep"),
)


class ExportDialog(QDialog):
    """`ExportDialog(model_path, recipe)`: recipe is gan.recipe.recipe_to_dict(...) of the view."""

    export_finished = Signal(dict)  # the result: path, frames, width, height, fps, seconds, bytes

    def __init__(self, model_path: str, recipe: dict, parent: QWidget | None = None, bridge=None,
                 qsettings: QSettings | None = None):  # fmt: skip
        """qsettings: where the last encoder choices are kept (default: the parent window's
        `settings`, if it is a QSettings; none otherwise, e.g. in tests)."""
        super().__init__(parent)
        if qsettings is None and isinstance(getattr(parent, "settings", None), QSettings):
            qsettings = parent.settings
        self.qsettings = qsettings
        self.setWindowTitle("Export video")
        self.model_path = model_path
        self.recipe = recipe
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
        bridge.request_directions(model_path)
        self._set_running(False)
        self._restore_choices()

    # --- layout --------------------------------------------------------------------------

    def _build(self) -> None:
        seed = int((self.recipe or {}).get("seed", 0))

        self.kind = QComboBox()
        for key, label in KINDS:
            self.kind.addItem(label, key)

        # Per-kind options.
        self.turns = int_spin(-10, 10, 1, "Full turns per loop; negative turns clockwise.")
        self.path = QComboBox()
        self.path.addItem("Circle", "circle")
        self.path.addItem("Back and forth (x)", "line")
        self.amount = float_spin(
            0.01, 2.0, 0.25, 0.05, "Radius (circle) or half-width (line), in image sizes."
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
        self.strength = float_spin(0.1, 100.0, 3.0, 0.5, "The strength goes −s → +s → −s over the loop.")
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
        self._show_page(self.kind.currentIndex())

        source = QGroupBox("Animation")
        source_layout = QVBoxLayout(source)
        source_layout.addWidget(_form(("Kind", self.kind)))
        source_layout.addWidget(self.pages)

        # Encoder.
        self.size = int_spin(
            0, 4096, 0, "Output width = height in pixels (even); frames are resized (Lanczos)."
        )
        self.size.setSingleStep(2)
        self.size.setSpecialValueText("model resolution")
        self.fps = int_spin(1, 120, 30, "Frames per second.")
        self.duration = float_spin(0.1, 600.0, 4.0, 0.5, "Length of one loop in seconds.")
        self.duration.setSuffix(" s")
        self.crf = int_spin(0, 51, 18, "x264 CRF: 0 = lossless … 51 = worst; 18 looks clean, 23 is smaller.")
        self.frames_label = QLabel()
        for w in (self.fps, self.duration):
            w.valueChanged.connect(self._update_frames)
        self._update_frames()
        self.out_path = QLineEdit(os.path.join(os.path.expanduser("~"), "stylegan-video.mp4"))
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

    # --- settings ------------------------------------------------------------------------

    def settings(self) -> dict:
        """The VideoJob fields this dialog sets, as plain data."""
        kind = self.kind.currentData()
        settings = {
            "kind": kind,
            "size": self.size.value() or None,
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
                direction_name=self.direction.currentText(),
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
        self.pages.adjustSize()
        self.adjustSize()

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
        return {"fps": self.fps, "duration": self.duration, "crf": self.crf, "size": self.size,
                "turns": self.turns, "amount": self.amount, "strength": self.strength}  # fmt: skip

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
        self._set_status(f"Rendering {os.path.basename(out)}…")
        self._set_running(True)
        if not self.bridge.start(self.model_path, self.recipe, settings, out):
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
        )
        self.export_finished.emit(result)

    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self._show_error(message)

    def _on_cancelled(self, message: str) -> None:
        self._set_running(False)
        self.progress.setValue(0)
        self._set_status(f"Cancelled; no file was written. ({message})")

    def _on_directions(self, directions: list, message: str) -> None:
        self._directions = list(directions)
        self.direction.clear()
        for d in self._directions:
            self.direction.addItem(d["name"])
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


def _form(*rows: tuple[str, QWidget]) -> QWidget:
    w = QWidget()
    form = QFormLayout(w)
    form.setContentsMargins(0, 0, 0, 0)
    for label, widget in rows:
        form.addRow(label, widget)
    return w
