"""One model of the comparison view (its name and architecture, the picture, the equivariance error
image and PSNR), the shared seed / transform controls, and the metrics table.

Plain data only: images are numpy uint8 arrays, results are the dicts of the render bridge. Shift-
drag and Ctrl-drag on a pane's picture emit signals; the window moves every pane with them.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.widgets.image_view import ImageView
from explorer.widgets.images import to_pixmap

ERROR_VIEW = 112  # px of the error image
ARCH_NAMES = {"stylegan2": "StyleGAN2", "stylegan3-t": "StyleGAN3-T", "stylegan3-r": "StyleGAN3-R"}


def arch_name(arch: str) -> str:
    return ARCH_NAMES.get(arch, arch)


class ComparePane(QFrame):
    """A model's column. `psnr` and `image` hold what is shown (None until there is something)."""

    translate_dragged = Signal(float, float)  # image sizes
    rotate_dragged = Signal(float)  # degrees
    drag_finished = Signal()
    remove_requested = Signal()

    def __init__(self, path: str, parent=None):
        super().__init__(parent)
        self.setObjectName("comparePane")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.path = path
        self.info: dict | None = None
        self.psnr: float | None = None
        self.equivariance: dict | None = None  # the last equivariance result shown
        self.error: str | None = None  # the render error shown instead of a picture

        self.title = QLabel(_file_name(path))
        self.title.setObjectName("directionName")
        self.title.setToolTip(path)
        self.subtitle = QLabel("loading…")
        self.subtitle.setObjectName("hint")
        self.remove_button = QToolButton()
        self.remove_button.setText("✕")
        self.remove_button.setToolTip("Remove this model from the comparison")
        self.remove_button.clicked.connect(self.remove_requested)
        head = QHBoxLayout()
        names = QVBoxLayout()
        names.setSpacing(0)
        names.addWidget(self.title)
        names.addWidget(self.subtitle)
        head.addLayout(names, 1)
        head.addWidget(self.remove_button, 0, Qt.AlignmentFlag.AlignTop)

        self.view = ImageView()
        self.view.setMinimumSize(220, 220)
        self.view.set_message(f"<p>Loading {_file_name(path)}…</p>")
        self.view.translate_dragged.connect(self.translate_dragged)
        self.view.rotate_dragged.connect(self.rotate_dragged)
        self.view.drag_finished.connect(self.drag_finished)

        self.error_view = QLabel()
        self.error_view.setObjectName("inspectorPicture")
        self.error_view.setFixedSize(ERROR_VIEW, ERROR_VIEW)
        self.error_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.error_view.setToolTip(
            "Equivariance error: the render of the moved input against the plain render moved by the "
            "same transform; |difference| × 4, blue outside the compared region"
        )
        self.psnr_label = QLabel("—")
        self.psnr_label.setObjectName("psnr")
        self.psnr_label.setWordWrap(True)
        self.note = QLabel("")
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        eq_text = QVBoxLayout()
        caption = QLabel("equivariance error (×4)")
        caption.setObjectName("hint")
        eq_text.addWidget(caption)
        eq_text.addWidget(self.psnr_label)
        eq_text.addWidget(self.note, 1)
        eq_row = QHBoxLayout()
        eq_row.addWidget(self.error_view)
        eq_row.addLayout(eq_text, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(head)
        layout.addWidget(self.view, 1)
        layout.addLayout(eq_row)

    @property
    def image(self):
        return self.view.image

    def set_smooth(self, smooth: bool) -> None:
        self.view.set_smooth(smooth)

    def set_info(self, info: dict) -> None:
        self.info = info
        self.title.setText(info.get("name") or _file_name(self.path))
        self.subtitle.setText(f"{arch_name(info['arch'])} · {info['resolution']} px")
        self.note.setText(info.get("equivariance_note", ""))

    def set_failed(self, message: str) -> None:
        self.error = message
        self.subtitle.setText("could not be opened")
        self.view.set_message(f"<p><b>Cannot open this model</b></p><p>{_escape(message)}</p>")

    def set_result(self, result: dict) -> None:
        """A render of the bridge: {'image' or None, 'error'}."""
        if result.get("error"):
            self.error = result["error"]
            self.view.set_message(f"<p>{_escape(result['error'])}</p>")
            return
        self.error = None
        self.view.set_image(result["image"])

    def set_equivariance(self, result: dict) -> None:
        """{'image' (uint8 error map or None), 'psnr', 'error'} from the bridge."""
        self.equivariance = result
        image = result.get("image")
        if image is None:
            self.error_view.clear()
        else:
            self.error_view.setPixmap(
                to_pixmap(image).scaled(
                    ERROR_VIEW,
                    ERROR_VIEW,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.FastTransformation,
                )
            )
        if result.get("error"):
            self.psnr = None
            self._psnr_text(result["error"], hint=True)
            return
        self.psnr = float(result["psnr"])
        self._psnr_text("PSNR ∞" if math.isinf(self.psnr) else f"PSNR {self.psnr:.1f} dB", hint=False)

    def _psnr_text(self, text: str, hint: bool) -> None:
        self.psnr_label.setObjectName("hint" if hint else "psnr")
        self.psnr_label.style().unpolish(self.psnr_label)  # object names select style-sheet rules
        self.psnr_label.style().polish(self.psnr_label)
        self.psnr_label.setText(text)


class CompareControls(QWidget):
    """Seed, psi and the input transform shared by every pane.
    changed(fields, continuous): continuous while a slider is dragged; drag_finished at release."""

    changed = Signal(dict, bool)
    drag_finished = Signal()

    T_STEPS = 1000  # slider ticks per image size
    R_STEPS = 10  # slider ticks per degree

    def __init__(self, parent=None):
        super().__init__(parent)
        self._updating = False
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setKeyboardTracking(False)
        self.seed.setToolTip("The same seed in every model (seed -> z by the official rule)")
        self.psi = QDoubleSpinBox()
        self.psi.setRange(-1.0, 2.0)
        self.psi.setSingleStep(0.05)
        self.psi.setValue(1.0)
        self.psi.setKeyboardTracking(False)
        self.psi.setToolTip("Truncation psi of every model (1 = none)")
        self.tx_slider, self.tx_spin = _pair(-0.5, 0.5, 0.005, 3, self.T_STEPS)
        self.ty_slider, self.ty_spin = _pair(-0.5, 0.5, 0.005, 3, self.T_STEPS)
        self.rot_slider, self.rot_spin = _pair(-180.0, 180.0, 1.0, 1, self.R_STEPS)
        self.reset_button = QPushButton("Reset transform")
        hint = QLabel("On any picture: Shift-drag translates, Ctrl-drag rotates every model.")
        hint.setObjectName("hint")

        left = QFormLayout()
        left.addRow("Seed", self.seed)
        left.addRow("Psi", self.psi)
        left.addRow(self.reset_button)
        right = QFormLayout()
        right.addRow("Translate x", _row(self.tx_slider, self.tx_spin))
        right.addRow("Translate y", _row(self.ty_slider, self.ty_spin))
        right.addRow("Rotate °", _row(self.rot_slider, self.rot_spin))
        right.addRow(hint)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(left)
        layout.addLayout(right, 1)

        for slider, spin in (
            (self.tx_slider, self.tx_spin),
            (self.ty_slider, self.ty_spin),
            (self.rot_slider, self.rot_spin),
        ):
            slider.valueChanged.connect(lambda v, s=slider, sp=spin: self._slider_moved(s, sp))
            slider.sliderReleased.connect(self.drag_finished)
            spin.valueChanged.connect(lambda v: self._emit(False))
        self.seed.valueChanged.connect(lambda v: self._emit(False))
        self.psi.valueChanged.connect(lambda v: self._emit(False))
        self.reset_button.clicked.connect(
            lambda: self.set_values({"translate": (0.0, 0.0), "rotate": 0.0}, True)
        )

    def values(self) -> dict:
        return {
            "seed": int(self.seed.value()),
            "psi": round(float(self.psi.value()), 4),
            "translate": (round(self.tx_spin.value(), 4), round(self.ty_spin.value(), 4)),
            "rotate": round(self.rot_spin.value(), 3),
        }

    def set_values(self, fields: dict, emit: bool = False) -> None:
        """Show fields (any of seed, psi, translate, rotate); emit=True reports them as a change."""
        self._updating = True
        try:
            if "seed" in fields:
                self.seed.setValue(int(fields["seed"]))
            if "psi" in fields:
                self.psi.setValue(float(fields["psi"]))
            pairs = []
            if "translate" in fields:
                tx, ty = fields["translate"]
                pairs += [(self.tx_slider, self.tx_spin, tx), (self.ty_slider, self.ty_spin, ty)]
            if "rotate" in fields:
                pairs.append((self.rot_slider, self.rot_spin, fields["rotate"]))
            for slider, spin, value in pairs:
                spin.setValue(float(value))
                if not slider.isSliderDown():
                    slider.setValue(round(float(value) * slider.property("steps")))
        finally:
            self._updating = False
        if emit:
            self._emit(False)

    def _slider_moved(self, slider: QSlider, spin: QDoubleSpinBox) -> None:
        if self._updating:
            return
        self._updating = True
        try:
            spin.setValue(slider.value() / slider.property("steps"))
        finally:
            self._updating = False
        self._emit(slider.isSliderDown())

    def _emit(self, continuous: bool) -> None:
        if not self._updating:
            self.changed.emit(self.values(), continuous)


class MetricsTable(QTableWidget):
    """One row per model, one column per metric; 'not measured' where nothing was recorded."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.setWordWrap(False)

    def set_rows(self, columns: list[tuple[str, str]], rows: list[dict]) -> None:
        """columns: (key, header); rows: {'label', 'arch', 'cells': {key: text}, 'note'}."""
        self.clear()
        headers = ["model", "arch", *(h for _, h in columns), "source"]
        self.setColumnCount(len(headers))
        self.setHorizontalHeaderLabels(headers)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            values = [row["label"], arch_name(row.get("arch", ""))]
            values += [row.get("cells", {}).get(key, "not measured") for key, _ in columns]
            values.append(row.get("note") or row.get("source") or "")
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if text == "not measured":
                    item.setForeground(Qt.GlobalColor.gray)
                self.setItem(r, c, item)
        height = self.horizontalHeader().height() + sum(self.rowHeight(r) for r in range(len(rows))) + 6
        self.setFixedHeight(max(height, 60))

    def cell_text(self, row: int, column: int) -> str:
        item = self.item(row, column)
        return "" if item is None else item.text()


def _pair(lo: float, hi: float, step: float, decimals: int, steps: int):
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(round(lo * steps), round(hi * steps))
    slider.setProperty("steps", steps)
    spin = QDoubleSpinBox()
    spin.setKeyboardTracking(False)
    spin.setRange(lo, hi)
    spin.setSingleStep(step)
    spin.setDecimals(decimals)
    spin.setFixedWidth(76)
    return slider, spin


def _row(*widgets) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(widgets[0], 1)
    for w in widgets[1:]:
        row.addWidget(w)
    return row


def _file_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _escape(text: str) -> str:
    import html

    return html.escape(text)
