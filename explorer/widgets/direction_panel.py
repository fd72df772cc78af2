"""Direction sliders (PCA and attribute directions; "anime-ify" first when the model has it),
each with a layer range, reset and lock; a "compute PCA directions" action with progress and
cancel; and the model-blend slider once a second model of the same lineage is loaded.

Emits `edit_changed(name, changes, merge_key)`; the window commits them to the history."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.state import EditState, ExplorerState

SLIDER_STEPS = 100  # ticks per slider unit (one std of the direction)
DEFAULT_RANGE = (-4.0, 4.0)  # slider units, for directions that carry no range of their own


def slider_range(d: dict) -> tuple[float, float]:
    """The direction's slider extent (its stored `range`: where it keeps a good image)."""
    low, high = d.get("range") or DEFAULT_RANGE
    return float(low), float(high)


def display_name(d: dict) -> str:
    name = d["name"]
    if "anime" in name.lower():
        return "Anime-ify"
    return name.replace("_", " ")


class DirectionRow(QWidget):
    """One direction: label, slider, value, layer range, reset, lock."""

    changed = Signal(str, dict, str)  # name, changes, merge key
    drag_finished = Signal()

    def __init__(self, direction: dict, num_ws: int, parent=None):
        super().__init__(parent)
        self.name = direction["name"]
        self.default_start = int(direction.get("layer_start") or 0)
        end = direction.get("layer_end")
        self.default_end = num_ws if end is None else int(end)
        self.num_ws = num_ws
        self._updating = False
        grid = QGridLayout(self)
        grid.setContentsMargins(2, 4, 2, 4)
        grid.setVerticalSpacing(2)
        self.label = QLabel(display_name(direction))
        self.label.setToolTip(direction.get("help") or f"{self.name} ({direction.get('kind', '')})")
        self.label.setObjectName("directionName")
        kind = QLabel(direction.get("kind", ""))
        kind.setObjectName("directionKind")
        self.range = slider_range(direction)
        low, high = self.range
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(round(low * SLIDER_STEPS), round(high * SLIDER_STEPS))
        self.slider.setToolTip(
            f"{low:g} … {high:g}: the range in which this direction was measured to keep a good image"
        )
        self.value_spin = QDoubleSpinBox()
        self.value_spin.setKeyboardTracking(False)  # one change (and undo step) per entered value
        self.value_spin.setRange(low, high)
        self.value_spin.setDecimals(2)
        self.value_spin.setSingleStep(0.1)
        self.value_spin.setFixedWidth(68)
        self.start_spin = QSpinBox()
        self.end_spin = QSpinBox()
        for spin in (self.start_spin, self.end_spin):
            spin.setRange(0, num_ws)
            spin.setKeyboardTracking(False)
            spin.setToolTip("Layer range (w indices) the direction applies to")
        self.reset_button = QPushButton("0")
        self.reset_button.setToolTip("Reset this direction to 0")
        self.reset_button.setFixedWidth(28)
        self.lock_check = QCheckBox("lock")
        self.lock_check.setToolTip("Locked: keeps its value on reset and ignores drags")
        grid.addWidget(self.label, 0, 0)
        grid.addWidget(kind, 0, 1)
        layers = QHBoxLayout()
        layers.addWidget(QLabel("layers"))
        layers.addWidget(self.start_spin)
        layers.addWidget(self.end_spin)
        grid.addLayout(layers, 0, 2, 1, 3)
        grid.addWidget(self.slider, 1, 0, 1, 2)
        grid.addWidget(self.value_spin, 1, 2)
        grid.addWidget(self.reset_button, 1, 3)
        grid.addWidget(self.lock_check, 1, 4)
        grid.setColumnStretch(0, 1)

        self.slider.valueChanged.connect(self._slider_moved)
        self.slider.sliderReleased.connect(self.drag_finished)
        self.value_spin.valueChanged.connect(lambda v: self._emit({"strength": round(float(v), 4)}))
        self.start_spin.valueChanged.connect(self._layers_changed)
        self.end_spin.valueChanged.connect(self._layers_changed)
        self.reset_button.clicked.connect(lambda: self._emit({"strength": 0.0}))
        self.lock_check.toggled.connect(lambda on: self._emit({"locked": bool(on)}))
        self.set_edit(None)

    def set_edit(self, edit: EditState | None) -> None:
        self._updating = True
        try:
            edit = edit or EditState(layer_start=self.default_start, layer_end=None)
            if not self.slider.isSliderDown():
                self.slider.setValue(round(edit.strength * SLIDER_STEPS))
            self.value_spin.setValue(edit.strength)
            start = edit.layer_start if edit.layer_start is not None else self.default_start
            self.start_spin.setValue(start)
            self.end_spin.setValue(self.default_end if edit.layer_end is None else edit.layer_end)
            self.lock_check.setChecked(edit.locked)
            for w in (self.slider, self.value_spin, self.reset_button, self.start_spin, self.end_spin):
                w.setEnabled(not edit.locked)
        finally:
            self._updating = False

    def _emit(self, changes: dict, merge_key: str = "") -> None:
        if not self._updating:
            self.changed.emit(self.name, changes, merge_key)

    def _slider_moved(self, value: int) -> None:
        key = f"direction:{self.name}" if self.slider.isSliderDown() else ""
        self._emit({"strength": value / SLIDER_STEPS}, key)

    def _layers_changed(self, *_):
        end = self.end_spin.value()
        self._emit(
            {
                "layer_start": int(self.start_spin.value()),
                "layer_end": None if end == self.num_ws else int(end),
            }
        )


class DirectionPanel(QWidget):
    edit_changed = Signal(str, dict, str)
    drag_finished = Signal()
    reset_all = Signal()
    pca_requested = Signal(int)  # number of samples
    pca_cancel_requested = Signal()
    blend_changed = Signal(float, str)  # weight, merge key
    blend_resolution_changed = Signal(int)
    blend_open_requested = Signal()
    blend_partner_requested = Signal(str)  # path of a shipped model to blend with

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: dict[str, DirectionRow] = {}
        self._has_model = False
        self._num_ws = 1
        self._updating = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)

        top = QHBoxLayout()
        self.reset_button = QPushButton("Reset all")
        self.reset_button.setToolTip("Set every unlocked direction to 0 (Ctrl+R)")
        self.pca_button = QPushButton("Compute PCA directions")
        self.pca_button.setToolTip("GANSpace-style principal directions of W, computed in the background")
        top.addWidget(self.reset_button)
        top.addWidget(self.pca_button, 1)
        layout.addLayout(top)
        pca_row = QHBoxLayout()
        self.pca_progress = QProgressBar()
        self.pca_progress.setTextVisible(True)
        self.pca_cancel = QPushButton("Cancel")
        pca_row.addWidget(self.pca_progress, 1)
        pca_row.addWidget(self.pca_cancel)
        self.pca_box = QWidget()
        self.pca_box.setLayout(pca_row)
        self.pca_box.setVisible(False)
        layout.addWidget(self.pca_box)

        self.empty_label = QLabel()
        self.empty_label.setWordWrap(True)
        self.empty_label.setObjectName("hint")
        layout.addWidget(self.empty_label)

        self.rows_widget = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_widget)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.rows_widget)
        layout.addWidget(scroll, 1)

        self.blend_box = QGroupBox("Model blend")
        blend_layout = QVBoxLayout(self.blend_box)
        self.blend_label = QLabel("Load a second model of the same lineage to blend with.")
        self.blend_label.setWordWrap(True)
        self.blend_slider = QSlider(Qt.Orientation.Horizontal)
        self.blend_slider.setRange(0, 100)
        self.blend_slider.setEnabled(False)
        self.blend_res_combo = QComboBox()
        self.blend_res_combo.setToolTip("Layers at and above this resolution are blended; coarser ones stay")
        self.blend_res_combo.setEnabled(False)
        self.blend_open = QPushButton("Open model to blend…")
        # Offered when the open model ships with partners (the default model's anime fine-tune).
        self.blend_partner = QPushButton()
        self.blend_partner.setVisible(False)
        blend_layout.addWidget(self.blend_label)
        res_row = QHBoxLayout()
        res_row.addWidget(self.blend_slider, 1)
        res_row.addWidget(QLabel("from"))
        res_row.addWidget(self.blend_res_combo)
        blend_layout.addLayout(res_row)
        blend_layout.addWidget(self.blend_partner)
        blend_layout.addWidget(self.blend_open)
        layout.addWidget(self.blend_box)

        self.reset_button.clicked.connect(self.reset_all)
        self.pca_button.clicked.connect(self.request_pca)
        self.pca_cancel.clicked.connect(self.pca_cancel_requested)
        self.blend_slider.valueChanged.connect(self._blend_moved)
        self.blend_slider.sliderReleased.connect(self.drag_finished)
        self.blend_open.clicked.connect(self.blend_open_requested)
        self.blend_partner.clicked.connect(
            lambda: self.blend_partner_requested.emit(self.blend_partner.property("path"))
        )
        self.blend_res_combo.currentIndexChanged.connect(self._blend_res_changed)
        self.set_model(None, [])

    # -- model and directions --------------------------------------------------------------

    def set_model(self, info: dict | None, directions: list[dict]) -> None:
        self._num_ws = 1 if info is None else int(info["num_ws"])
        self._has_model = info is not None
        self.setEnabled(info is not None)
        self.blend_slider.setEnabled(False)
        self.blend_res_combo.setEnabled(False)
        self.blend_label.setText("Load a second model of the same lineage to blend with.")
        partners = [] if info is None else list(info.get("blend_partners", []))
        self.blend_partner.setVisible(bool(partners))
        if partners:
            self.blend_partner.setText(f"Blend with {partners[0]['name']}")
            self.blend_partner.setToolTip(f"The model shipped with this one: {partners[0]['path']}")
            self.blend_partner.setProperty("path", partners[0]["path"])
        self.set_directions(directions)

    def set_directions(self, directions: list[dict]) -> None:
        for row in self.rows.values():
            self.rows_layout.removeWidget(row)
            row.deleteLater()
        self.rows = {}
        for d in directions:
            row = DirectionRow(d, self._num_ws)
            row.changed.connect(self.edit_changed)
            row.drag_finished.connect(self.drag_finished)
            self.rows_layout.insertWidget(self.rows_layout.count() - 1, row)
            self.rows[d["name"]] = row
        self.empty_label.setVisible(not directions)
        if self._has_model:
            self.empty_label.setText(
                "No directions for this model yet. Click “Compute PCA directions” to find the main "
                "directions of variation (takes a little while; you can keep exploring)."
            )
        else:
            self.empty_label.setText(
                "No model is open. Open one (File ▸ Open…, or drop a model file on the window) to get "
                "its direction sliders."
            )
        self.reset_button.setEnabled(bool(directions))

    def set_state(self, state: ExplorerState) -> None:
        for name, row in self.rows.items():
            row.set_edit(state.edits.get(name))
        self._updating = True
        try:
            if not self.blend_slider.isSliderDown():
                self.blend_slider.setValue(round(state.blend * 100))
            if state.blend_resolution is not None:
                idx = self.blend_res_combo.findData(state.blend_resolution)
                if idx >= 0:
                    self.blend_res_combo.setCurrentIndex(idx)
        finally:
            self._updating = False

    def set_blend_model(self, name: str, resolutions: list[int], default: int) -> None:
        self.blend_label.setText(f"Blend with {name}: 0 = this model, 1 = the other one's layers.")
        self.blend_slider.setEnabled(True)
        self._updating = True
        try:
            self.blend_res_combo.clear()
            for r in resolutions:
                self.blend_res_combo.addItem(f"{r} px", int(r))
            self.blend_res_combo.setCurrentIndex(max(0, self.blend_res_combo.findData(int(default))))
            self.blend_res_combo.setEnabled(True)
        finally:
            self._updating = False

    def _blend_res_changed(self, *_):
        if not self._updating and self.blend_res_combo.currentData() is not None:
            self.blend_resolution_changed.emit(int(self.blend_res_combo.currentData()))

    def _blend_moved(self, value: int) -> None:
        if not self._updating:
            self.blend_changed.emit(value / 100.0, "blend" if self.blend_slider.isSliderDown() else "")

    # -- PCA -------------------------------------------------------------------------------

    def request_pca(self) -> None:
        self.pca_box.setVisible(True)
        self.pca_progress.setRange(0, 0)  # busy until the first progress report
        self.pca_progress.setFormat("Computing PCA directions…")
        self.pca_button.setEnabled(False)
        self.pca_requested.emit(10_000)

    def set_pca_progress(self, done: int, total: int) -> None:
        self.pca_progress.setRange(0, max(1, total))
        self.pca_progress.setValue(done)
        self.pca_progress.setFormat(f"PCA: {done} / {total} samples")

    def pca_done(self, message: str) -> None:
        self.pca_box.setVisible(False)
        self.pca_button.setEnabled(True)
        if message == "cancelled":
            self.empty_label.setText("PCA computation cancelled.")
