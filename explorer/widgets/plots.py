"""Live training plots (pyqtgraph): losses, FID, EQ-T, EQ-R, augment p and sec/kimg against kimg.

Fed with plain numbers: `add_tick(kimg, stats)` where stats are the named scalars of one tick
(`Loss/G/loss`, `Metrics/fid50k_full`, ...). Non-finite values are skipped (a metric that was not
computed simply has no point). Only panels with points are shown (the losses, augment p and
sec/kimg from the start, with a note until the first tick), laid out to use the whole area.
Axes label plain decimals (never 3e-05) and give a single point a readable range around it.
No torch, no gan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QVBoxLayout, QWidget


@dataclass(frozen=True)
class Series:
    key: str  # stats name
    label: str  # legend text
    color: str


@dataclass(frozen=True)
class Panel:
    title: str
    series: tuple[Series, ...]
    empty: str  # shown while the panel has no points
    always: bool = False  # shown before it has points (filled every tick); else hidden until then


PANELS = (
    Panel(
        "Loss",
        (Series("Loss/G/loss", "G", "#e5534b"), Series("Loss/D/loss", "D", "#4c9be8")),
        "waiting for the first tick",
        always=True,
    ),
    Panel(
        "FID (lower is better)",
        (Series("Metrics/fid50k_full", "FID", "#b084f5"),),
        "not computed\n(enable fid50k_full;\nneeds the Inception weights)",
    ),
    Panel(
        "EQ-T dB",
        (
            Series("Metrics/eqt50k_int", "integer", "#57c26a"),
            Series("Metrics/eqt50k_frac", "fractional", "#c08a5a"),
        ),
        "not computed\n(enable eqt50k_int)",
    ),
    Panel(
        "EQ-R dB",
        (Series("Metrics/eqr50k", "EQ-R", "#3cc7d6"),),
        "not computed\n(enable eqr50k)",
    ),
    Panel("Augment p", (Series("Progress/augment", "p", "#f0a23b"),), "waiting for the first tick", True),
    Panel(
        "sec / kimg",
        (Series("Timing/sec_per_kimg", "s/kimg", "#9aa4b0"),),
        "waiting for the first tick",
        True,
    ),
)


class PlainAxis(pg.AxisItem):
    """Tick labels as plain decimals with as many places as the tick spacing needs (pyqtgraph
    switches to 3e-05 style for small values, unreadable for augment p)."""

    def tickStrings(self, values, scale, spacing):
        if spacing <= 0 or not math.isfinite(spacing):
            return super().tickStrings(values, scale, spacing)
        places = max(0, min(8, -math.floor(math.log10(spacing * scale))))
        return [f"{v * scale:,.{places}f}" for v in values]


def padded_range(values: list[float]) -> tuple[float, float] | None:
    """A range for values that are all (nearly) equal, e.g. a single point: +-10% around them
    (at least 0.001), so the axis reads 5,800 … 7,100 instead of 6473.6 … 6474.4. None otherwise."""
    if not values:
        return None
    lo, hi = min(values), max(values)
    pad = max(abs(hi) * 0.1, abs(lo) * 0.1, 1e-3)
    if hi - lo > pad * 1e-3:
        return None
    return lo - pad, hi + pad


class TrainingPlots(QWidget):
    """A 2 x 3 grid of plots with kimg on the x axis."""

    def __init__(self, parent: QWidget | None = None, columns: int = 3):
        super().__init__(parent)
        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Base)
        foreground = palette.color(QPalette.ColorRole.Text)
        faint, fainter = QColor(foreground), QColor(foreground)
        faint.setAlpha(150)
        fainter.setAlpha(110)
        self._view = pg.GraphicsLayoutWidget(self)
        self._view.setBackground(background)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._view)
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._plots: list[pg.PlotItem] = []
        self._notes: list[pg.TextItem] = []
        self._columns = columns
        self._shown: list[int] = []  # indices of PANELS in the layout, in order
        self._rows: list[tuple] = []  # (row sub-layout, indices of PANELS in it)
        for panel in PANELS:
            plot = pg.PlotItem(axisItems={"left": PlainAxis("left"), "bottom": PlainAxis("bottom")})
            plot.setTitle(_title(panel), color=foreground.name(), size="10pt")
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setLabel("bottom", "kimg", color=foreground.name())
            for axis in ("left", "bottom"):
                plot.getAxis(axis).enableAutoSIPrefix(False)  # "kimg (x0.001)" reads badly
                plot.getAxis(axis).setTextPen(foreground)
                plot.getAxis(axis).setPen(fainter)
            plot.setMenuEnabled(False)
            plot.setPreferredWidth(120)  # equal shares of a row, whatever the title's length
            for s in panel.series:
                pen = pg.mkPen(s.color, width=2)
                curve = plot.plot(
                    [],
                    [],
                    pen=pen,
                    name=s.label,
                    symbol="o",
                    symbolSize=5,
                    symbolBrush=s.color,
                    symbolPen=None,
                )
                self._curves[s.key] = curve
                self._data[s.key] = ([], [])
            note = pg.TextItem(panel.empty, color=faint, anchor=(0.5, 0.5))
            font = QFont()
            font.setPointSize(8)
            note.setFont(font)
            plot.addItem(note, ignoreBounds=True)
            plot.getViewBox().sigResized.connect(lambda vb, n=note: _center(vb, n))
            plot.getViewBox().sigRangeChanged.connect(lambda vb, *_, n=note: _center(vb, n))
            self._plots.append(plot)
            self._notes.append(note)
        self._relayout()
        self.setMinimumSize(480, 300)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    # --- data ----------------------------------------------------------------------------

    def add_tick(self, kimg: float, stats: dict[str, float]) -> int:
        """Append the known, finite values of one tick; returns how many points were added."""
        added = 0
        for key, curve in self._curves.items():
            value = stats.get(key)
            if value is None:
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(value):
                continue
            xs, ys = self._data[key]
            xs.append(float(kimg))
            ys.append(value)
            curve.setData(xs, ys)
            added += 1
        if added:
            self._update_notes()
            self._fit_ranges()
            self._relayout()
        return added

    def clear(self) -> None:
        for key, curve in self._curves.items():
            self._data[key] = ([], [])
            curve.setData([], [])
        self._update_notes()
        self._fit_ranges()
        self._relayout()

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(kimg values, values) plotted for a stats name (copies)."""
        xs, ys = self._data.get(key, ([], []))
        return list(xs), list(ys)

    def point_count(self) -> int:
        return sum(len(xs) for xs, _ in self._data.values())

    def visible_panels(self) -> list[str]:
        """Titles of the panels shown, in layout order."""
        return [PANELS[i].title for i in self._shown]

    def _has_points(self, panel: Panel) -> bool:
        return any(self._data[s.key][0] for s in panel.series)

    def _update_notes(self) -> None:
        for panel, note in zip(PANELS, self._notes):
            note.setVisible(not self._has_points(panel))

    def _fit_ranges(self) -> None:
        """Auto range, except around a lone value (one point, or a constant series)."""
        for panel, plot in zip(PANELS, self._plots):
            xs = [x for s in panel.series for x in self._data[s.key][0]]
            ys = [y for s in panel.series for y in self._data[s.key][1]]
            view = plot.getViewBox()
            view.enableAutoRange()
            x_range, y_range = padded_range(xs), padded_range(ys)
            if x_range is not None:
                view.setXRange(*x_range, padding=0)
            if y_range is not None:
                view.setYRange(*y_range, padding=0)

    def _relayout(self) -> None:
        """Only panels with points (and the always-shown ones), filling the area: up to three in
        one row, four as 2 x 2, more in rows of `columns` (a shorter last row as wide as the others)."""
        shown = [i for i, panel in enumerate(PANELS) if panel.always or self._has_points(panel)]
        if shown == self._shown:
            return
        # One sub-layout per row: each row shares its width equally, whatever the panel count
        # (column spans in one grid did not: panels overlapped).
        for row_layout, row in self._rows:
            for i in row:
                row_layout.removeItem(self._plots[i])
            self._view.ci.removeItem(row_layout)
        per_row = len(shown) if len(shown) <= 3 else (2 if len(shown) == 4 else self._columns)
        self._rows = []
        for r, k in enumerate(range(0, len(shown), per_row)):
            row = shown[k : k + per_row]
            row_layout = self._view.ci.addLayout(row=r, col=0)
            for c, i in enumerate(row):
                row_layout.addItem(self._plots[i], row=0, col=c)
                row_layout.layout.setColumnStretchFactor(c, 1)  # equal widths, not by content
            self._rows.append((row_layout, row))
        self._shown = shown


def _title(panel: Panel) -> str:
    """The panel title; with several series their names in their colours (a legend inside the
    plot would cover the curves)."""
    if len(panel.series) == 1:
        return panel.title
    names = " / ".join(f"<span style='color:{s.color}'>&#9632; {s.label}</span>" for s in panel.series)
    return f"{panel.title}: {names}"


def _center(view_box, note: pg.TextItem) -> None:
    (x0, x1), (y0, y1) = view_box.viewRange()
    note.setPos((x0 + x1) / 2, (y0 + y1) / 2)
