"""Translate / rotate the network's input (StyleGAN3 Fourier features or the StyleGAN2 4x4
constant), and the side view of the equivariance error: the
output of the transformed input against the transformed output of the plain render, with its
PSNR (the bridge computes it; this widget only shows plain data)."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from explorer.state import ExplorerState
from explorer.widgets.images import to_pixmap

T_STEPS = 1000  # slider ticks per image size
VIEW = 128


class _Picture(QLabel):
    def __init__(self, title: str):
        super().__init__()
        self.setFixedSize(VIEW, VIEW)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setObjectName("inspectorPicture")
        self.setToolTip(title)

    def show_image(self, image) -> None:
        if image is None:
            self.clear()
            return
        self.setPixmap(
            to_pixmap(image).scaled(
                VIEW, VIEW, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
            )
        )


class TransformInspector(QWidget):
    changed = Signal(dict, str)
    drag_finished = Signal()
    visibility_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._updating = False
        self.psnr: float | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        box = QGroupBox("Input transform")
        form = QFormLayout(box)
        self.tx_slider, self.tx_spin = self._pair(-0.5, 0.5, 0.005, 3)
        self.ty_slider, self.ty_spin = self._pair(-0.5, 0.5, 0.005, 3)
        self.rot_slider, self.rot_spin = self._pair(-180.0, 180.0, 1.0, 1, steps=10)
        form.addRow("Translate x", self._row(self.tx_slider, self.tx_spin))
        form.addRow("Translate y", self._row(self.ty_slider, self.ty_spin))
        form.addRow("Rotate °", self._row(self.rot_slider, self.rot_spin))
        self.reset_button = QPushButton("Reset transform")
        hint = QLabel("On the image: Shift-drag translates, Ctrl-drag rotates.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        form.addRow(self.reset_button)
        form.addRow(hint)
        self.note_label = QLabel()  # whether the model is built to follow the transform
        self.note_label.setObjectName("hint")
        self.note_label.setWordWrap(True)
        form.addRow(self.note_label)
        layout.addWidget(box)

        eq = QGroupBox("Equivariance")
        grid = QGridLayout(eq)
        self.reference_view = _Picture("Plain render, moved by the transform (band-limited resampling)")
        self.transformed_view = _Picture("Render with the transformed input")
        self.error_view = _Picture("|difference| × 4; blue: outside the compared region")
        for col, (title, view) in enumerate(
            (
                ("transformed output", self.reference_view),
                ("output of transformed input", self.transformed_view),
            )
        ):
            label = QLabel(title)
            label.setObjectName("hint")
            grid.addWidget(label, 0, col)
            grid.addWidget(view, 1, col)
        label = QLabel("error (×4)")
        label.setObjectName("hint")
        grid.addWidget(label, 2, 0)
        grid.addWidget(self.error_view, 3, 0)
        self.psnr_label = QLabel("—")
        self.psnr_label.setObjectName("psnr")
        self.psnr_label.setWordWrap(True)
        self.psnr_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        grid.addWidget(self.psnr_label, 3, 1)
        layout.addWidget(eq)
        layout.addStretch(1)

        for slider, spin, key in (
            (self.tx_slider, self.tx_spin, "tx"),
            (self.ty_slider, self.ty_spin, "ty"),
            (self.rot_slider, self.rot_spin, "rot"),
        ):
            slider.valueChanged.connect(lambda v, k=key, s=slider: self._slider_moved(k, s))
            slider.sliderReleased.connect(self.drag_finished)
            spin.valueChanged.connect(lambda v, k=key: self._spin_changed())
        self.reset_button.clicked.connect(
            lambda: self.changed.emit({"translate": (0.0, 0.0), "rotate": 0.0}, "")
        )
        self.set_model(None)

    @staticmethod
    def _pair(lo: float, hi: float, step: float, decimals: int, steps: int = T_STEPS):
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(round(lo * steps), round(hi * steps))
        slider.setProperty("steps", steps)
        spin = QDoubleSpinBox()
        spin.setKeyboardTracking(False)  # one change (and undo step) per entered value
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setDecimals(decimals)
        spin.setFixedWidth(76)
        return slider, spin

    @staticmethod
    def _row(*widgets):
        row = QHBoxLayout()
        row.addWidget(widgets[0], 1)
        for w in widgets[1:]:
            row.addWidget(w)
        return row

    def set_model(self, info: dict | None) -> None:
        movable = bool(info and info.get("has_input_transform"))
        self.setEnabled(movable)
        self.note_label.setText(info.get("equivariance_note", "") if info else "")
        if info is None:
            self._message("No model loaded.")
        elif not movable:
            self._message(f"{info['arch']} has no input transform to translate or rotate.")
        else:
            self._message("Translate or rotate the input to measure the equivariance error.")
        for view in (self.reference_view, self.transformed_view, self.error_view):
            view.show_image(None)

    def wants_equivariance(self) -> bool:
        return self.isEnabled() and self.isVisible()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.visibility_changed.emit(True)

    def set_state(self, state: ExplorerState) -> None:
        self._updating = True
        try:
            tx, ty = state.translate
            for slider, spin, value in (
                (self.tx_slider, self.tx_spin, tx),
                (self.ty_slider, self.ty_spin, ty),
                (self.rot_slider, self.rot_spin, state.rotate),
            ):
                if not slider.isSliderDown():
                    slider.setValue(round(value * slider.property("steps")))
                spin.setValue(value)
        finally:
            self._updating = False

    def _values(self) -> dict:
        return {
            "translate": (round(self.tx_spin.value(), 4), round(self.ty_spin.value(), 4)),
            "rotate": round(self.rot_spin.value(), 3),
        }

    def _slider_moved(self, key: str, slider: QSlider) -> None:
        if self._updating:
            return
        v = slider.value() / slider.property("steps")
        fields = self._values()
        if key == "tx":
            fields["translate"] = (v, fields["translate"][1])
        elif key == "ty":
            fields["translate"] = (fields["translate"][0], v)
        else:
            fields["rotate"] = v
        self.changed.emit(fields, f"transform:{key}" if slider.isSliderDown() else "")

    def _spin_changed(self) -> None:
        if not self._updating:
            self.changed.emit(self._values(), "")

    def set_equivariance(self, result: dict) -> None:
        """result: {'image', 'reference', 'transformed' (uint8 or None), 'psnr', 'error'}."""
        self.reference_view.show_image(result.get("reference"))
        self.transformed_view.show_image(result.get("transformed"))
        self.error_view.show_image(result.get("image"))
        if result.get("error"):
            self.psnr = None
            self._message(result["error"])
            return
        self.psnr = float(result["psnr"])
        text = "∞" if math.isinf(self.psnr) else f"{self.psnr:.1f} dB"
        self.psnr_label.setObjectName("psnr")
        self._restyle()
        self.psnr_label.setText(f"PSNR\n{text}")

    def _message(self, text: str) -> None:
        self.psnr_label.setObjectName("hint")
        self._restyle()
        self.psnr_label.setText(text)

    def _restyle(self) -> None:
        # Object names select style-sheet rules; re-polish after changing one.
        self.psnr_label.style().unpolish(self.psnr_label)
        self.psnr_label.style().polish(self.psnr_label)
