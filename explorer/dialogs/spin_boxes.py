"""Spin boxes of the dialogs' forms, built in one line each: (low, high, value, tip, step=...)."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox


def int_spin(lo: int, hi: int, value: int, tip: str, step: int = 1) -> QSpinBox:
    w = QSpinBox()
    w.setRange(lo, hi)
    w.setSingleStep(step)
    w.setValue(value)
    w.setToolTip(tip)
    return w


def float_spin(lo: float, hi: float, value: float, tip: str, step: float = 1.0) -> QDoubleSpinBox:
    """Two decimals (Qt's default), so set the range and value before any finer step matters."""
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setDecimals(2)
    w.setSingleStep(step)
    w.setValue(value)
    w.setToolTip(tip)
    return w
