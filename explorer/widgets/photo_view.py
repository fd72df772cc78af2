"""A photo with the detected faces drawn on it (click one to pick it) and a square crop box
(drag it to move it, drag its corner handle or turn the wheel to resize it). Coordinates in the
signals are photo pixels."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from explorer.widgets.images import to_pixmap

HANDLE = 10  # px on screen: the corner handle of the crop box
MIN_BOX = 16  # photo pixels


class PhotoView(QWidget):
    face_clicked = Signal(int)
    box_changed = Signal(float, float, float)  # x, y, size (photo pixels); after a drag or wheel step

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(320, 320)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self._pixmap = None
        self._size = (1, 1)  # photo width, height
        self._faces: list[dict] = []
        self._selected: int | None = None
        self._box: list[float] | None = None  # x, y, size
        self._drag: tuple[str, QPointF, list[float]] | None = None

    # -- content ---------------------------------------------------------------------------

    def set_photo(self, image: np.ndarray) -> None:
        self._pixmap = to_pixmap(image)
        self._size = (image.shape[1], image.shape[0])
        self._faces, self._selected, self._box = [], None, None
        self.update()

    def set_faces(self, faces: list[dict], selected: int | None) -> None:
        self._faces, self._selected = list(faces), selected
        self.update()

    def set_box(self, box: tuple[float, float, float] | None) -> None:
        """Show the crop box (None hides it: a face is picked)."""
        self._box = None if box is None else [float(v) for v in box]
        self.update()

    @property
    def box(self) -> tuple[float, float, float] | None:
        return None if self._box is None else tuple(self._box)

    # -- geometry --------------------------------------------------------------------------

    def _scale_offset(self) -> tuple[float, float, float]:
        w, h = self._size
        s = min(self.width() / w, self.height() / h)
        return s, (self.width() - w * s) / 2, (self.height() - h * s) / 2

    def to_photo(self, p: QPointF) -> QPointF:
        s, ox, oy = self._scale_offset()
        return QPointF((p.x() - ox) / s, (p.y() - oy) / s)

    def to_screen_rect(self, x: float, y: float, w: float, h: float) -> QRectF:
        s, ox, oy = self._scale_offset()
        return QRectF(ox + x * s, oy + y * s, w * s, h * s)

    def _box_rect(self) -> QRectF | None:
        return (
            None
            if self._box is None
            else self.to_screen_rect(self._box[0], self._box[1], self._box[2], self._box[2])
        )

    # -- painting --------------------------------------------------------------------------

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 26, 30))
        if self._pixmap is None:
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        w, h = self._size
        painter.drawPixmap(self.to_screen_rect(0, 0, w, h).toRect(), self._pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for i, face in enumerate(self._faces):
            x0, y0, x1, y1 = face["box"]
            chosen = i == self._selected and self._box is None
            painter.setPen(QPen(QColor(90, 220, 120) if chosen else QColor(240, 200, 60), 3 if chosen else 2))
            rect = self.to_screen_rect(x0, y0, x1 - x0, y1 - y0)
            painter.drawRect(rect)
            painter.drawText(rect.topLeft() + QPointF(4, -4), str(i + 1))
            painter.setPen(QPen(QColor(90, 200, 255), 2))
            s, ox, oy = self._scale_offset()
            for lx, ly in face.get("landmarks", []):
                painter.drawEllipse(QPointF(ox + lx * s, oy + ly * s), 2.5, 2.5)
        rect = self._box_rect()
        if rect is not None:
            painter.setPen(QPen(QColor(255, 255, 255), 2, Qt.PenStyle.DashLine))
            painter.drawRect(rect)
            painter.fillRect(
                QRectF(rect.bottomRight() - QPointF(HANDLE, HANDLE), rect.bottomRight()),
                QColor(255, 255, 255),
            )

    # -- interaction -----------------------------------------------------------------------

    def mousePressEvent(self, event) -> None:
        pos = event.position()
        rect = self._box_rect()
        if rect is not None and event.button() == Qt.MouseButton.LeftButton:
            handle = QRectF(
                rect.bottomRight() - QPointF(2 * HANDLE, 2 * HANDLE), rect.bottomRight() + QPointF(4, 4)
            )
            if handle.contains(pos):
                self._drag = ("resize", pos, list(self._box))
                return
            if rect.contains(pos):
                self._drag = ("move", pos, list(self._box))
                return
        p = self.to_photo(pos)
        for i, face in enumerate(self._faces):
            x0, y0, x1, y1 = face["box"]
            if x0 <= p.x() <= x1 and y0 <= p.y() <= y1:
                self.face_clicked.emit(i)
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._drag is None:
            return
        kind, start, box = self._drag
        s, _, _ = self._scale_offset()
        dx, dy = (event.position().x() - start.x()) / s, (event.position().y() - start.y()) / s
        if kind == "move":
            self._box = [box[0] + dx, box[1] + dy, box[2]]
        else:
            self._box = [box[0], box[1], max(MIN_BOX, box[2] + max(dx, dy))]
        self.update()

    def mouseReleaseEvent(self, event) -> None:
        if self._drag is not None:
            self._drag = None
            self.box_changed.emit(*self._box)

    def wheelEvent(self, event) -> None:
        if self._box is None:
            return
        factor = 1.1 if event.angleDelta().y() < 0 else 1 / 1.1
        x, y, size = self._box
        new = max(MIN_BOX, size * factor)
        self._box = [x + (size - new) / 2, y + (size - new) / 2, new]  # about the centre
        self.update()
        self.box_changed.emit(*self._box)
