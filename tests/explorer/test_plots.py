"""Training plots: only panels with data take space, plain tick labels, a readable range around a
single point."""

from __future__ import annotations

import pytest

from explorer.widgets.plots import PlainAxis, TrainingPlots, padded_range


def test_panels_without_points_are_not_shown(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    assert plots.visible_panels() == ["Loss", "Augment p", "sec / kimg"]  # one row, whole area
    plots.add_tick(0.0, {"Loss/G/loss": 1.0, "Loss/D/loss": 0.5, "Progress/augment": 0.0})
    assert plots.visible_panels() == ["Loss", "Augment p", "sec / kimg"]
    plots.add_tick(0.5, {"Loss/G/loss": 0.9, "Metrics/eqt50k_int": 30.0, "Timing/sec_per_kimg": 240.0})
    shown = plots.visible_panels()
    assert shown[0] == "Loss" and shown[1].startswith("EQ-T dB") and shown[2:] == ["Augment p", "sec / kimg"]
    # FID and EQ-R have no points: no space for them; four panels are laid out 2 x 2.
    assert [len(row) for _, row in plots._rows] == [2, 2]
    plots.add_tick(1.0, {"Metrics/eqr50k": 20.0})
    assert len(plots.visible_panels()) == 5 and [len(row) for _, row in plots._rows] == [3, 2]
    plots.resize(840, 420)
    plots.show()
    qtbot.waitExposed(plots)
    # No two panels overlap, and each row fills the width.
    boxes = [
        plots._plots[i].mapRectToScene(plots._plots[i].boundingRect()) for _, row in plots._rows for i in row
    ]
    assert not any(a.intersects(b) for n, a in enumerate(boxes) for b in boxes[n + 1 :])
    for _, row in plots._rows:
        rects = [plots._plots[i].mapRectToScene(plots._plots[i].boundingRect()) for i in row]
        assert max(r.right() for r in rects) - min(r.left() for r in rects) > 0.9 * 840
    plots.clear()
    assert plots.visible_panels() == ["Loss", "Augment p", "sec / kimg"]


def test_tick_labels_are_plain_decimals():
    axis = PlainAxis("left")
    assert axis.tickStrings([0.0, 2e-5, 4e-5], 1.0, 2e-5) == ["0.00000", "0.00002", "0.00004"]
    assert axis.tickStrings([6000.0, 6500.0], 1.0, 500.0) == ["6,000", "6,500"]


def test_a_single_point_gets_a_readable_range(qtbot):
    assert padded_range([6474.0]) == pytest.approx((5826.6, 7121.4))
    assert padded_range([0.0]) == pytest.approx((-0.001, 0.001))
    assert padded_range([1.0, 2.0]) is None
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.add_tick(0.008, {"Timing/sec_per_kimg": 6474.0})
    view = plots._plots[5].getViewBox()
    (y0, y1) = view.viewRange()[1]
    assert y0 < 6000 and y1 > 7000
