"""Latent controls: seed, W/Z space, truncation psi, noise mode, class, style mixing.

The panel never changes state itself: it emits `changed(fields, merge_key)` with the top-level
ExplorerState fields to set; a non-empty merge_key marks a continuous drag (one undo step),
`drag_finished` closes it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.state import MAX_SEED, ExplorerState

PSI_STEPS = 100  # slider ticks per unit of psi


class LatentPanel(QWidget):
    changed = Signal(dict, str)
    drag_finished = Signal()
    random_seed_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._updating = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)

        latent = QGroupBox("Sampling")
        form = QFormLayout(latent)
        row = QHBoxLayout()
        self.prev_button = QPushButton("◀")
        self.prev_button.setToolTip("Previous seed (Left)")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, min(MAX_SEED, 2**31 - 1))
        self.seed_spin.setKeyboardTracking(False)
        self.next_button = QPushButton("▶")
        self.next_button.setToolTip("Next seed (Right)")
        self.random_button = QPushButton("Random")
        self.random_button.setToolTip("Random seed (R)")
        for w in (self.prev_button, self.next_button):
            w.setFixedWidth(30)
        row.addWidget(self.prev_button)
        row.addWidget(self.seed_spin, 1)
        row.addWidget(self.next_button)
        row.addWidget(self.random_button)
        form.addRow("Seed", row)

        self.space_combo = QComboBox()
        self.space_combo.addItem("W (intermediate)", "w")
        self.space_combo.addItem("Z (input)", "z")
        self.space_combo.setToolTip("Space the seed plane of the latent canvas is spanned in")
        form.addRow("Space", self.space_combo)

        psi_row = QHBoxLayout()
        self.psi_slider = QSlider(Qt.Orientation.Horizontal)
        self.psi_slider.setRange(-PSI_STEPS, 2 * PSI_STEPS)
        self.psi_spin = QDoubleSpinBox()
        self.psi_spin.setKeyboardTracking(False)  # one change (and undo step) per entered value
        self.psi_spin.setRange(-1.0, 2.0)
        self.psi_spin.setSingleStep(0.05)
        self.psi_spin.setDecimals(2)
        psi_row.addWidget(self.psi_slider, 1)
        psi_row.addWidget(self.psi_spin)
        form.addRow("Truncation ψ", psi_row)
        self.cutoff_spin = QSpinBox()
        self.cutoff_spin.setKeyboardTracking(False)
        self.cutoff_spin.setSpecialValueText("all layers")
        self.cutoff_spin.setToolTip("Truncate only the first N ws (coarse layers); 'all layers': every w")
        form.addRow("Truncate first", self.cutoff_spin)

        self.noise_combo = QComboBox()
        for mode in ("const", "random", "none"):
            self.noise_combo.addItem(mode, mode)
        form.addRow("Noise", self.noise_combo)

        self.class_combo = QComboBox()
        self.class_combo.setToolTip("Class of a conditional model")
        form.addRow("Class", self.class_combo)
        layout.addWidget(latent)

        mix = QGroupBox("Style mixing")
        mform = QFormLayout(mix)
        self.mix_check = QCheckBox("Mix styles from seed")
        self.mix_seed_spin = QSpinBox()
        self.mix_seed_spin.setRange(0, min(MAX_SEED, 2**31 - 1))
        self.mix_seed_spin.setKeyboardTracking(False)
        mrow = QHBoxLayout()
        mrow.addWidget(self.mix_check)
        mrow.addWidget(self.mix_seed_spin, 1)
        mform.addRow(mrow)
        lrow = QHBoxLayout()
        self.mix_start_spin = QSpinBox()
        self.mix_end_spin = QSpinBox()
        for spin in (self.mix_start_spin, self.mix_end_spin):
            spin.setKeyboardTracking(False)
        lrow.addWidget(self.mix_start_spin)
        lrow.addWidget(self.mix_end_spin)
        mform.addRow("Layers (from, to)", lrow)
        layout.addWidget(mix)
        layout.addStretch(1)

        self.prev_button.clicked.connect(lambda: self._step_seed(-1))
        self.next_button.clicked.connect(lambda: self._step_seed(1))
        self.random_button.clicked.connect(self.random_seed_requested)
        self.seed_spin.valueChanged.connect(lambda v: self._emit({"seed": int(v)}))
        self.space_combo.currentIndexChanged.connect(
            lambda _: self._emit({"space": self.space_combo.currentData()})
        )
        self.psi_slider.valueChanged.connect(self._psi_slider_moved)
        self.psi_slider.sliderReleased.connect(self.drag_finished)
        self.psi_spin.valueChanged.connect(lambda v: self._emit({"psi": round(float(v), 4)}))
        self.cutoff_spin.valueChanged.connect(
            lambda v: self._emit({"truncation_cutoff": None if v == 0 else int(v)})
        )
        self.noise_combo.currentIndexChanged.connect(
            lambda _: self._emit({"noise_mode": self.noise_combo.currentData()})
        )
        self.class_combo.currentIndexChanged.connect(
            lambda _: self._emit({"class_idx": self.class_combo.currentData()})
        )
        self.mix_check.toggled.connect(self._mix_changed)
        self.mix_seed_spin.valueChanged.connect(self._mix_changed)
        self.mix_start_spin.valueChanged.connect(self._mix_changed)
        self.mix_end_spin.valueChanged.connect(self._mix_changed)
        self.set_model(None)

    # -- from the window -------------------------------------------------------------------

    def set_model(self, info: dict | None) -> None:
        self._updating = True
        try:
            self.setEnabled(info is not None)
            num_ws = 1 if info is None else int(info["num_ws"])
            for spin in (self.mix_start_spin, self.mix_end_spin, self.cutoff_spin):
                spin.setRange(0, num_ws)
            self.class_combo.clear()
            c_dim = 0 if info is None else int(info["c_dim"])
            if c_dim == 0:
                self.class_combo.addItem("(unconditional model)", None)
                self.class_combo.setEnabled(False)
            else:
                for i in range(c_dim):
                    self.class_combo.addItem(f"class {i}", i)
                self.class_combo.setEnabled(True)
        finally:
            self._updating = False

    def set_state(self, state: ExplorerState) -> None:
        self._updating = True
        try:
            self.seed_spin.setValue(min(int(state.seed), self.seed_spin.maximum()))
            self.space_combo.setCurrentIndex(max(0, self.space_combo.findData(state.space)))
            if not self.psi_slider.isSliderDown():
                self.psi_slider.setValue(round(state.psi * PSI_STEPS))
            self.psi_spin.setValue(state.psi)
            self.cutoff_spin.setValue(0 if state.truncation_cutoff is None else int(state.truncation_cutoff))
            self.noise_combo.setCurrentIndex(max(0, self.noise_combo.findData(state.noise_mode)))
            idx = self.class_combo.findData(state.class_idx)
            if idx >= 0:
                self.class_combo.setCurrentIndex(idx)
            self.mix_check.setChecked(state.mix_seed is not None)
            if state.mix_seed is not None:
                self.mix_seed_spin.setValue(min(int(state.mix_seed), self.mix_seed_spin.maximum()))
            self.mix_start_spin.setValue(state.mix_start)
            self.mix_end_spin.setValue(
                self.mix_end_spin.maximum() if state.mix_end is None else state.mix_end
            )
            for w in (self.mix_seed_spin, self.mix_start_spin, self.mix_end_spin):
                w.setEnabled(state.mix_seed is not None)
        finally:
            self._updating = False

    # -- to the window ---------------------------------------------------------------------

    def _emit(self, fields: dict, merge_key: str = "") -> None:
        if not self._updating:
            self.changed.emit(fields, merge_key)

    def _step_seed(self, delta: int) -> None:
        self.seed_spin.setValue(max(0, min(self.seed_spin.maximum(), self.seed_spin.value() + delta)))

    def _psi_slider_moved(self, value: int) -> None:
        self._emit({"psi": value / PSI_STEPS}, "psi" if self.psi_slider.isSliderDown() else "")

    def _mix_changed(self, *_):
        end = self.mix_end_spin.value()
        self._emit(
            {
                "mix_seed": int(self.mix_seed_spin.value()) if self.mix_check.isChecked() else None,
                "mix_start": int(self.mix_start_spin.value()),
                "mix_end": None if end == self.mix_end_spin.maximum() else int(end),
            }
        )
