"""A grid of seed thumbnails to browse and pick seeds. Thumbnails arrive asynchronously from the
render bridge (`set_thumbnail`); the grid asks for a page with `page_changed(seeds)`."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.widgets.images import to_pixmap

THUMB = 88


def _thumb_icon(image) -> QIcon:
    """Icons never scale up, so small models' images are enlarged here (smoothly when shrinking)."""
    pix = to_pixmap(image)
    mode = (
        Qt.TransformationMode.SmoothTransformation
        if pix.width() > THUMB
        else Qt.TransformationMode.FastTransformation
    )
    return QIcon(pix.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, mode))


class SeedGrid(QWidget):
    seed_picked = Signal(int)
    page_changed = Signal(list)  # seeds of the page that have no thumbnail yet (only while visible)

    def __init__(self, page_size: int = 16, parent=None):
        super().__init__(parent)
        self.page_size = page_size
        self._items: dict[int, QListWidgetItem] = {}
        self.thumbnails: dict[int, np.ndarray] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        bar = QHBoxLayout()
        self.prev_button = QPushButton("◀ Page")
        self.next_button = QPushButton("Page ▶")
        self.start_spin = QSpinBox()
        self.start_spin.setRange(0, 2**31 - 1 - page_size)
        self.start_spin.setSingleStep(page_size)
        self.start_spin.setKeyboardTracking(False)
        self.start_spin.setPrefix("from seed ")
        bar.addWidget(QLabel("Click a seed to open it."))
        bar.addStretch(1)
        bar.addWidget(self.prev_button)
        bar.addWidget(self.start_spin)
        bar.addWidget(self.next_button)
        layout.addLayout(bar)
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(True)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setGridSize(QSize(THUMB + 12, THUMB + 30))
        self.list.setUniformItemSizes(True)
        layout.addWidget(self.list, 1)
        self.prev_button.clicked.connect(
            lambda: self.start_spin.setValue(max(0, self.start_spin.value() - page_size))
        )
        self.next_button.clicked.connect(
            lambda: self.start_spin.setValue(self.start_spin.value() + page_size)
        )
        self.start_spin.valueChanged.connect(lambda _: self._fill())
        self.list.itemClicked.connect(
            lambda item: self.seed_picked.emit(int(item.data(Qt.ItemDataRole.UserRole)))
        )
        self._placeholder = self._make_placeholder()
        self._fill(emit=False)

    @staticmethod
    def _make_placeholder() -> QIcon:
        pix = QPixmap(THUMB, THUMB)
        pix.fill(QColor(44, 47, 54))
        return QIcon(pix)

    def visible_seeds(self) -> list[int]:
        start = self.start_spin.value()
        return list(range(start, start + self.page_size))

    def _fill(self, emit: bool = True) -> None:
        self.list.clear()
        self._items = {}
        for seed in self.visible_seeds():
            item = QListWidgetItem(self._placeholder, str(seed))
            item.setData(Qt.ItemDataRole.UserRole, seed)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.list.addItem(item)
            self._items[seed] = item
            if seed in self.thumbnails:
                item.setIcon(_thumb_icon(self.thumbnails[seed]))
        if emit:
            self.request_missing()

    def missing_seeds(self) -> list[int]:
        return [s for s in self.visible_seeds() if s not in self.thumbnails]

    def request_missing(self) -> None:
        """Ask for the thumbnails of the page, if the grid is on screen (hidden grids render nothing)."""
        if self.isVisible() and self.missing_seeds():
            self.page_changed.emit(self.missing_seeds())

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.request_missing()

    def reset_thumbnails(self) -> None:
        """Forget thumbnails (a new model or new rendering settings)."""
        self.thumbnails = {}
        for item in self._items.values():
            item.setIcon(self._placeholder)

    def set_thumbnail(self, generation: int, seed: int, image) -> None:
        self.thumbnails[int(seed)] = image
        item = self._items.get(int(seed))
        if item is not None:
            item.setIcon(_thumb_icon(image))

    def set_current(self, seed: int) -> None:
        item = self._items.get(int(seed))
        self.list.blockSignals(True)
        try:
            if item is None:
                self.list.clearSelection()
            else:
                self.list.setCurrentItem(item)
        finally:
            self.list.blockSignals(False)
