"""A 2-D pad: dragging the point moves the latent in the plane of two chosen directions, or in
the plane through the current seed and two other seeds (x towards seed B, y towards seed C)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.state import ExplorerState

DIRECTION_RANGE = 3.0  # pad edge in direction units (std)
SEED_RANGE = (-0.5, 1.5)  # pad extent in seed-plane weights


class Pad(QWidget):
    """The square drawing area; position in [-1, 1]^2 (y up)."""

    moved = Signal(float, float, bool)  # x, y, dragging
    released = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(180, 180)
        self.pos_xy = (0.0, 0.0)
        self.marks: list[tuple[float, float, str]] = []  # reference points (seeds)
        self._dragging = False
        self.setCursor(Qt.CursorShape.CrossCursor)

    def _square(self) -> QRectF:
        side = min(self.width(), self.height()) - 12
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def to_widget(self, x: float, y: float) -> QPointF:
        r = self._square()
        return QPointF(r.center().x() + x * r.width() / 2, r.center().y() - y * r.height() / 2)

    def from_widget(self, p: QPointF) -> tuple[float, float]:
        r = self._square()
        x = (p.x() - r.center().x()) / (r.width() / 2)
        y = -(p.y() - r.center().y()) / (r.height() / 2)
        return max(-1.0, min(1.0, x)), max(-1.0, min(1.0, y))

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self._square()
        p.fillRect(r, QColor(30, 33, 39))
        p.setPen(QPen(QColor(60, 65, 75), 1))
        for i in range(1, 8):
            t = i / 8
            p.drawLine(
                QPointF(r.left() + t * r.width(), r.top()), QPointF(r.left() + t * r.width(), r.bottom())
            )
            p.drawLine(
                QPointF(r.left(), r.top() + t * r.height()), QPointF(r.right(), r.top() + t * r.height())
            )
        p.setPen(QPen(QColor(95, 102, 118), 1))
        p.drawRect(r)
        p.setPen(QColor(150, 160, 175))
        for x, y, label in self.marks:
            c = self.to_widget(x, y)
            p.drawEllipse(c, 3, 3)
            p.drawText(c + QPointF(5, -5), label)
        c = self.to_widget(*self.pos_xy)
        p.setPen(QPen(QColor(255, 170, 60), 2))
        p.setBrush(QColor(255, 170, 60, 90))
        p.drawEllipse(c, 7, 7)
        p.end()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._dragging = True
            self._move(event.position())

    def mouseMoveEvent(self, event) -> None:
        if self._dragging:
            self._move(event.position())

    def mouseReleaseEvent(self, event) -> None:
        if self._dragging:
            self._dragging = False
            self.released.emit()

    def _move(self, pos: QPointF) -> None:
        self.pos_xy = self.from_widget(pos)
        self.update()
        self.moved.emit(self.pos_xy[0], self.pos_xy[1], True)


class LatentCanvas(QWidget):
    plane_changed = Signal(int, int, float, float, str)  # seed_b, seed_c, x, y, merge key
    directions_moved = Signal(str, float, str, float, str)  # name_a, value, name_b, value, merge key
    drag_finished = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._state = ExplorerState()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        form = QFormLayout()
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("Two directions", "directions")
        self.mode_combo.addItem("Between seeds", "seeds")
        form.addRow("Plane", self.mode_combo)
        self.dir_a = QComboBox()
        self.dir_b = QComboBox()
        dirs = QHBoxLayout()
        dirs.addWidget(self.dir_a)
        dirs.addWidget(self.dir_b)
        dirs.insertWidget(0, QLabel("x / y"))
        self.dirs_row = QWidget()
        self.dirs_row.setLayout(dirs)
        self.seed_b = QSpinBox()
        self.seed_c = QSpinBox()
        for spin, value in ((self.seed_b, 1), (self.seed_c, 2)):
            spin.setRange(0, 2**31 - 1)
            spin.setValue(value)
            spin.setKeyboardTracking(False)
        seeds = QHBoxLayout()
        seeds.addWidget(QLabel("seeds x / y"))
        seeds.addWidget(self.seed_b)
        seeds.addWidget(self.seed_c)
        self.seeds_row = QWidget()
        self.seeds_row.setLayout(seeds)
        for row in (dirs, seeds):
            row.setContentsMargins(0, 0, 0, 0)
        self.rows = QStackedWidget()
        self.rows.addWidget(self.dirs_row)
        self.rows.addWidget(self.seeds_row)
        form.addRow(self.rows)
        layout.addLayout(form)
        self.pad = Pad()
        layout.addWidget(self.pad, 1)

        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.dir_a.currentIndexChanged.connect(lambda _: self.set_state(self._state))
        self.dir_b.currentIndexChanged.connect(lambda _: self.set_state(self._state))
        self.seed_b.valueChanged.connect(lambda _: self._emit_seeds(""))
        self.seed_c.valueChanged.connect(lambda _: self._emit_seeds(""))
        self.pad.moved.connect(self._pad_moved)
        self.pad.released.connect(self.drag_finished)
        self.set_directions([])
        self._mode_changed()

    @property
    def mode(self) -> str:
        return self.mode_combo.currentData()

    def set_directions(self, directions: list[dict]) -> None:
        names = [d["name"] for d in directions]
        for i, combo in enumerate((self.dir_a, self.dir_b)):
            combo.blockSignals(True)
            current = combo.currentData()
            combo.clear()
            for name in names:
                combo.addItem(name, name)
            if current in names:
                combo.setCurrentIndex(names.index(current))
            elif len(names) > i:
                combo.setCurrentIndex(i)
            combo.blockSignals(False)
        has = bool(names)
        if not has and self.mode == "directions":
            self.mode_combo.setCurrentIndex(1)
        self.mode_combo.model().item(0).setEnabled(has)
        self.set_state(self._state)

    def _mode_changed(self, *_):
        self.rows.setCurrentWidget(self.dirs_row if self.mode == "directions" else self.seeds_row)
        self.set_state(self._state)

    def set_state(self, state: ExplorerState) -> None:
        self._state = state
        if self.mode == "directions":
            a, b = self.dir_a.currentData(), self.dir_b.currentData()
            xa = state.edits[a].strength if a in state.edits else 0.0
            yb = state.edits[b].strength if b in state.edits else 0.0
            self.pad.pos_xy = (_clip(xa / DIRECTION_RANGE), _clip(yb / DIRECTION_RANGE))
            self.pad.marks = [(0.0, 0.0, "0")]
        else:
            lo, hi = SEED_RANGE
            x, y = (0.0, 0.0) if state.plane is None else (state.plane.x, state.plane.y)
            if state.plane is not None:
                for spin, value in ((self.seed_b, state.plane.seed_b), (self.seed_c, state.plane.seed_c)):
                    spin.blockSignals(True)
                    spin.setValue(min(int(value), spin.maximum()))
                    spin.blockSignals(False)
            self.pad.pos_xy = (_to_pad(x, lo, hi), _to_pad(y, lo, hi))
            self.pad.marks = [
                (_to_pad(0, lo, hi), _to_pad(0, lo, hi), f"seed {state.seed}"),
                (_to_pad(1, lo, hi), _to_pad(0, lo, hi), f"B {self.seed_b.value()}"),
                (_to_pad(0, lo, hi), _to_pad(1, lo, hi), f"C {self.seed_c.value()}"),
            ]
        self.pad.update()

    def _pad_moved(self, x: float, y: float, dragging: bool) -> None:
        key = f"canvas:{self.mode}" if dragging else ""
        if self.mode == "directions":
            a, b = self.dir_a.currentData() or "", self.dir_b.currentData() or ""
            self.directions_moved.emit(a, x * DIRECTION_RANGE, b if b != a else "", y * DIRECTION_RANGE, key)
        else:
            self._emit_seeds(key)

    def _emit_seeds(self, key: str) -> None:
        lo, hi = SEED_RANGE
        x, y = self.pad.pos_xy
        self.plane_changed.emit(
            int(self.seed_b.value()),
            int(self.seed_c.value()),
            round(_from_pad(x, lo, hi), 4),
            round(_from_pad(y, lo, hi), 4),
            key,
        )


def _clip(v: float) -> float:
    return max(-1.0, min(1.0, v))


def _to_pad(v: float, lo: float, hi: float) -> float:
    return _clip((v - lo) / (hi - lo) * 2 - 1)


def _from_pad(p: float, lo: float, hi: float) -> float:
    return lo + (p + 1) / 2 * (hi - lo)
