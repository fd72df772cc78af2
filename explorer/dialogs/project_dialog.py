"""File > Open photo: pick the face (or drag a crop box), then project it into the open model
with a quality preset, a progress bar, a live preview of the reconstruction and cancel.

The dialog talks only to `explorer.project_bridge.ProjectBridge` (plain data); when a
projection finishes, `projected(path)` hands its .npz to the main window, which shows it with
every tool of the explorer (direction sliders, blend, transform inspector, exports).
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from explorer.dialogs.spin_boxes import int_spin
from explorer.widgets.images import to_pixmap
from explorer.widgets.photo_view import PhotoView

PREVIEW = 176  # px on screen of the target and reconstruction previews
CROP = -1  # face combo data of the crop box entry
TEMPLATES = (
    ("auto", "As the model was trained"),
    ("ffhq", "FFHQ (NVIDIA's face models)"),
    ("toon", "Toon faces"),
)


class ProjectDialog(QDialog):
    projected = Signal(str)  # the .npz of a finished projection

    def __init__(
        self,
        model_path: str,
        resolution: int,
        projections_dir: str,
        parent: QWidget | None = None,
        *,
        bridge=None,
        threads: int | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle("Open photo — project into the model")
        self.model_path, self.resolution = model_path, int(resolution)
        if bridge is None:
            from explorer.project_bridge import ProjectBridge

            bridge = ProjectBridge(projections_dir, self, threads=threads)
        self.bridge = bridge
        self.faces: list[dict] = []
        self.target = None  # uint8 [res, res, 3] to project
        self.source: dict = {}
        self.result: dict | None = None  # the finished() dict of the last projection
        self._presets = self._preset_table()
        self._build()
        self.bridge.photo_opened.connect(self._on_photo_opened)
        self.bridge.progress.connect(self._on_progress)
        self.bridge.finished.connect(self._on_finished)

    @staticmethod
    def _preset_table() -> dict:
        from explorer.project_bridge import preset_steps

        return preset_steps()

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        self.photo_view = PhotoView()
        self.photo_view.face_clicked.connect(self._pick_face)
        self.photo_view.box_changed.connect(lambda *_: self._update_target())
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.face_combo = QComboBox()
        self.face_combo.currentIndexChanged.connect(lambda _: self._on_face_combo())
        self.template_combo = QComboBox()
        for key, label in TEMPLATES:
            self.template_combo.addItem(label, key)
        self.template_combo.currentIndexChanged.connect(lambda _: self._update_target())
        self.preset_combo = QComboBox()
        for name, p in self._presets.items():
            self.preset_combo.addItem(
                f"{name.capitalize()} ({p['steps']} steps{', W+' if p['w_plus'] else ''})", name
            )
        self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData("default")))
        self.preset_combo.currentIndexChanged.connect(lambda _: self._on_preset())
        default_steps = self._presets.get("default", {"steps": 150})["steps"]
        self.steps_spin = int_spin(
            1, 5000, default_steps, "Optimisation steps (the quality preset sets them)"
        )
        self.w_plus_check = QCheckBox("Refine per layer (W+): closer to the photo, edits less reliable")

        self.target_label = self._preview_label("aligned photo")
        self.result_label = self._preview_label("reconstruction")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.project_button = QPushButton("Project")
        self.project_button.setDefault(True)
        self.project_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.bridge.cancel)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)

        form = QFormLayout()
        form.addRow("Face", self.face_combo)
        form.addRow("Alignment", self.template_combo)
        form.addRow("Quality", self.preset_combo)
        form.addRow("Steps", self.steps_spin)
        form.addRow("", self.w_plus_check)
        previews = QGridLayout()
        previews.addWidget(QLabel("Target"), 0, 0)
        previews.addWidget(QLabel("Reconstruction (live)"), 0, 1)
        previews.addWidget(self.target_label, 1, 0)
        previews.addWidget(self.result_label, 1, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.project_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        right = QVBoxLayout()
        right.addWidget(self.status)
        right.addLayout(form)
        right.addLayout(previews)
        right.addWidget(self.progress)
        right.addStretch(1)
        right.addLayout(buttons)
        layout = QHBoxLayout(self)
        layout.addWidget(self.photo_view, 1)
        layout.addLayout(right)
        self.resize(1000, 560)
        self._set_controls(False)

    @staticmethod
    def _preview_label(text: str) -> QLabel:
        label = QLabel(text)
        label.setFixedSize(PREVIEW, PREVIEW)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setStyleSheet("background: #181a1e; color: #889;")
        return label

    def _set_controls(self, ready: bool) -> None:
        for w in (
            self.face_combo,
            self.template_combo,
            self.preset_combo,
            self.steps_spin,
            self.w_plus_check,
        ):
            w.setEnabled(ready)
        self.project_button.setEnabled(ready and self.target is not None)

    @staticmethod
    def _show(label: QLabel, image) -> None:
        label.setPixmap(
            to_pixmap(image).scaled(
                PREVIEW,
                PREVIEW,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    # -- photo and target ------------------------------------------------------------------

    def open_photo(self, path: str) -> None:
        self.status.setText(f"Opening {os.path.basename(path)} and looking for faces…")
        self._set_controls(False)
        if not self.bridge.open_photo(path, self.model_path):
            self.status.setText("Busy: wait for the running projection or cancel it.")

    def _on_photo_opened(self, out: dict) -> None:
        if out["error"]:
            self.status.setText(f"⚠ {out['error']}")
            return
        self.photo_view.set_photo(out["image"])
        self.faces = out["faces"]
        auto = out.get("template") or "ffhq"
        self.template_combo.setItemText(0, f"As the model was trained ({auto})")
        self.face_combo.blockSignals(True)
        self.face_combo.clear()
        for i, f in enumerate(self.faces):
            x0, y0, x1, y1 = f["box"]
            self.face_combo.addItem(f"Face {i + 1} ({x1 - x0:.0f} px, p={f['score']:.2f})", i)
        self.face_combo.addItem("Crop box (drag it on the photo)", CROP)
        self.face_combo.blockSignals(False)
        h, w = out["image"].shape[:2]
        side = min(w, h) * 0.8
        self.photo_view.set_box(None)
        self._default_box = ((w - side) / 2, (h - side) / 2, side)
        if self.faces:
            text = (
                f"{len(self.faces)} faces found: click one or pick it above."
                if len(self.faces) > 1
                else "Face found."
            )
        else:
            reason = out.get("face_error") or "No face found"
            text = f"{reason}. Drag the square over the face (corner or mouse wheel: size)."
        self.status.setText(text)
        self._set_controls(True)
        self.face_combo.setCurrentIndex(0)
        self._on_face_combo()

    def _pick_face(self, index: int) -> None:
        self.face_combo.setCurrentIndex(index)

    def _on_face_combo(self) -> None:
        data = self.face_combo.currentData()
        if data == CROP:
            if self.photo_view.box is None:
                self.photo_view.set_box(self._default_box)
        else:
            self.photo_view.set_box(None)
        self.photo_view.set_faces(self.faces, None if data == CROP else data)
        self._update_target()

    def _update_target(self) -> None:
        data = self.face_combo.currentData()
        if data is None:
            return
        try:
            if data == CROP:
                out = self.bridge.aligned(self.resolution, box=self.photo_view.box)
            else:
                out = self.bridge.aligned(
                    self.resolution, face=int(data), template=self.template_combo.currentData()
                )
        except ValueError as exc:
            self.target = None
            self.status.setText(f"⚠ {exc}")
            self._set_controls(True)
            return
        self.target, self.source = out["image"], out["source"]
        self._show(self.target_label, self.target)
        self.project_button.setEnabled(True)

    def _on_preset(self) -> None:
        p = self._presets.get(self.preset_combo.currentData(), {})
        self.steps_spin.setValue(int(p.get("steps", self.steps_spin.value())))
        self.w_plus_check.setChecked(bool(p.get("w_plus", False)))

    # -- projecting ------------------------------------------------------------------------

    def settings(self) -> dict:
        return {
            "preset": self.preset_combo.currentData(),
            "steps": int(self.steps_spin.value()),
            "w_plus": bool(self.w_plus_check.isChecked()),
        }

    def start(self) -> None:
        if self.target is None:
            return
        settings = self.settings()
        if not self.bridge.project(self.model_path, self.target, settings, self.source):
            self.status.setText("Busy: wait for the running job or cancel it.")
            return
        self.result = None
        self.progress.setRange(0, settings["steps"])
        self.progress.setValue(0)
        self.status.setText("Projecting…")
        self._set_controls(False)
        self.cancel_button.setEnabled(True)

    def _on_progress(self, p: dict) -> None:
        self.progress.setValue(int(p["step"]))
        self.progress.setFormat(f"%v / %m steps ({p['phase']}) · loss {p['loss']:.4f}")
        if p.get("image") is not None:
            self._show(self.result_label, p["image"])

    def _on_finished(self, out: dict) -> None:
        self.result = out
        self.cancel_button.setEnabled(False)
        self._set_controls(True)
        if out["cancelled"]:
            self.status.setText("Projection cancelled.")
            return
        if out["error"]:
            self.status.setText(f"⚠ {out['error']}")
            return
        self._show(self.result_label, out["image"])
        d = (
            "with the model's discriminator features"
            if out.get("d")
            else "without a discriminator (none in the file)"
        )
        self.status.setText(
            f"Done in {out['seconds']:.0f} s ({d}): PSNR {out['psnr']:.1f} dB, SSIM {out['ssim']:.2f}. "
            "The explorer now shows it: try the sliders and the blend."
        )
        self.projected.emit(out["path"])

    # -- closing ---------------------------------------------------------------------------

    def closeEvent(self, event) -> None:
        self.bridge.cancel()
        self.bridge.shutdown()
        super().closeEvent(event)
