"""The main image view: zoom (wheel), pan (drag), fit (F); Shift-drag translates and Ctrl-drag
rotates the StyleGAN3 input (signals only; the window turns them into state changes)."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsTextItem, QGraphicsView

from explorer.widgets.images import to_pixmap


class ImageView(QGraphicsView):
    # Drag deltas: translate in image sizes (dx, dy); rotate in degrees. finished: drag ended.
    translate_dragged = Signal(float, float)
    rotate_dragged = Signal(float)
    drag_finished = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setBackgroundBrush(QColor(24, 26, 30))
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setAcceptDrops(False)  # the main window handles drops
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.FastTransformation)
        self.scene().addItem(self._item)
        self._message = QGraphicsTextItem()
        self._message.setDefaultTextColor(QColor(220, 224, 230))
        font = QFont()
        font.setPointSize(13)
        self._message.setFont(font)
        self.scene().addItem(self._message)
        self._fit = True
        self._drag: tuple[str, QPointF] | None = None
        self._image: np.ndarray | None = None

    # -- content ---------------------------------------------------------------------------

    @property
    def image(self) -> np.ndarray | None:
        return self._image

    def set_image(self, image: np.ndarray) -> None:
        first = self._item.pixmap().isNull()
        self._image = image
        self._message.setVisible(False)
        self._item.setVisible(True)
        pix = to_pixmap(image)
        same_size = not first and pix.size() == self._item.pixmap().size()
        self._item.setPixmap(pix)
        self.scene().setSceneRect(QRectF(pix.rect()))
        if self._fit or not same_size:
            self.fit()

    def set_smooth(self, smooth: bool) -> None:
        """Bilinear magnification (pleasant at 64 px) or hard pixel edges (to inspect pixels)."""
        mode = (
            Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation
        )
        self._item.setTransformationMode(mode)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)

    def is_smooth(self) -> bool:
        return self._item.transformationMode() == Qt.TransformationMode.SmoothTransformation

    def set_message(self, html: str) -> None:
        """Show a message instead of an image (no model loaded, errors)."""
        self._image = None
        self._item.setPixmap(QPixmap())
        self._item.setVisible(False)
        self._message.setHtml(html)
        self._message.setTextWidth(420)
        self._message.setVisible(True)
        rect = self._message.boundingRect()
        self.scene().setSceneRect(rect)
        self.resetTransform()
        self.centerOn(rect.center())

    def fit(self) -> None:
        self._fit = True
        if self._item.isVisible() and not self._item.pixmap().isNull():
            self.fitInView(self._item, Qt.AspectRatioMode.KeepAspectRatio)

    def zoom_factor(self) -> float:
        return self.transform().m11()

    # -- interaction -----------------------------------------------------------------------

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    def wheelEvent(self, event) -> None:
        if self._item.pixmap().isNull():
            return
        steps = event.angleDelta().y() / 120.0
        factor = 1.25**steps
        new = self.zoom_factor() * factor
        if 0.05 <= new <= 64:
            self._fit = False
            self.scale(factor, factor)

    def mousePressEvent(self, event) -> None:
        mods = event.modifiers()
        if event.button() == Qt.MouseButton.LeftButton and mods & (
            Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier
        ):
            kind = "translate" if mods & Qt.KeyboardModifier.ShiftModifier else "rotate"
            self._drag = (kind, self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._drag is None:
            super().mouseMoveEvent(event)
            return
        kind, last = self._drag
        pos = self.mapToScene(event.position().toPoint())
        size = max(1.0, float(self._item.pixmap().width()))
        if kind == "translate":
            self.translate_dragged.emit((pos.x() - last.x()) / size, (pos.y() - last.y()) / size)
        else:
            c = QPointF(size / 2, self._item.pixmap().height() / 2)
            a0 = math.atan2(last.y() - c.y(), last.x() - c.x())
            a1 = math.atan2(pos.y() - c.y(), pos.x() - c.x())
            delta = math.degrees(a1 - a0)
            delta = (delta + 180.0) % 360.0 - 180.0
            # Screen y points down, so a clockwise drag is a positive screen angle.
            self.rotate_dragged.emit(-delta)
        self._drag = (kind, pos)
        event.accept()

    def mouseReleaseEvent(self, event) -> None:
        if self._drag is not None:
            self._drag = None
            self.drag_finished.emit()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:
        # Arrow keys belong to the window (previous / next seed), not to scrolling.
        if event.key() in (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down):
            event.ignore()
            return
        super().keyPressEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        self.fit()
