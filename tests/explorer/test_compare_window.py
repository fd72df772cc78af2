"""The comparison view (pytest-qt, offscreen) with tiny 16 px models: every pane renders, a
Shift/Ctrl-drag on any picture moves all of them, each pane gets its equivariance error and
PSNR, the metrics table is filled ('not measured' where nothing was recorded), the newest
request wins with real threads, and nothing is left running."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from explorer.compare_bridge import MAX_PANES, CompareBridge
from explorer.compare_window import CompareWindow, default_models
from tests.support.tiny import OPS, make_plain_generator


@pytest.fixture(scope="module")
def sg3r_path(tmp_path_factory) -> str:
    from gan.model_io import save_model

    G = make_plain_generator("stylegan3-r")
    path = tmp_path_factory.mktemp("r") / "tiny_sg3r.safetensors"
    save_model(path, G, arch="stylegan3-r")
    return str(path)


@pytest.fixture
def make_compare(qtbot):
    made = []

    def make(paths, force_sync=True) -> CompareWindow:
        bridge = CompareBridge(force_sync=force_sync, device="cpu", ops_impl=OPS)
        window = CompareWindow(paths, bridge=bridge)
        qtbot.addWidget(window)
        window.resize(1200, 800)
        made.append(window)
        return window

    yield make
    for window in made:
        window.close()  # stops every pane's render thread


def drag(qtbot, view, modifier, start: QPoint, end: QPoint) -> None:
    """A Shift- or Ctrl-drag on an image view, in three steps."""
    vp = view.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, modifier, start)
    mid = QPoint((start.x() + end.x()) // 2, (start.y() + end.y()) // 2)
    for pos in (mid, end):
        qtbot.mouseMove(vp, pos)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, modifier, end)


def images(window) -> list[np.ndarray]:
    return [p.image.copy() for p in window.panes.values()]


def test_shared_transform_moves_every_pane(qtbot, make_compare, explorer_models, sg3r_path):
    paths = [explorer_models["sg2"], explorer_models["sg3"], sg3r_path]
    window = make_compare(paths)
    panes = list(window.panes.values())
    assert len(panes) == 3 and all(p.image is not None and p.image.shape == (16, 16, 3) for p in panes)
    assert [p.subtitle.text() for p in panes] == [
        "StyleGAN2 · 16 px",
        "StyleGAN3-T · 16 px",
        "StyleGAN3-R · 16 px",
    ]
    # No transform yet: each pane says what to do instead of a PSNR.
    assert all(p.psnr is None and "Translate or rotate" in p.psnr_label.text() for p in panes)
    before = images(window)

    # Shift-drag on the second picture translates the input of all three models.
    view = panes[1].view
    centre = view.viewport().rect().center()
    drag(qtbot, view, Qt.KeyboardModifier.ShiftModifier, centre, centre + QPoint(40, 0))
    tx, ty = window.values()["translate"]
    assert tx > 0.02 and ty == pytest.approx(0.0, abs=1e-3)
    assert window.controls.tx_spin.value() == pytest.approx(tx)
    moved = images(window)
    for i, (a, b) in enumerate(zip(before, moved)):
        assert not np.array_equal(a, b), f"pane {i} did not move"
    # The drag ended: every pane has its equivariance error image and PSNR.
    for p in panes:
        assert p.equivariance["image"] is not None and math.isfinite(p.psnr), p.path
        assert "dB" in p.psnr_label.text()
    translated_psnr = [p.psnr for p in panes]

    # Ctrl-drag on the third picture rotates all of them.
    view = panes[2].view
    c = view.viewport().rect().center()
    drag(qtbot, view, Qt.KeyboardModifier.ControlModifier, c + QPoint(60, 0), c + QPoint(0, 60))
    assert abs(window.values()["rotate"]) > 10
    assert window.controls.rot_spin.value() == pytest.approx(window.values()["rotate"])
    rotated = images(window)
    for i, (a, b) in enumerate(zip(moved, rotated)):
        assert not np.array_equal(a, b), f"pane {i} did not rotate"
    assert all(math.isfinite(p.psnr) for p in panes)
    assert [p.psnr for p in panes] != translated_psnr

    # The sliders drive the same shared transform; Reset brings every pane back.
    window.controls.reset_button.click()
    assert window.values()["translate"] == (0.0, 0.0) and window.values()["rotate"] == 0.0
    for i, (a, b) in enumerate(zip(before, images(window))):
        assert np.array_equal(a, b), f"pane {i} did not return"


def test_metrics_table(make_compare, explorer_models, tmp_path):
    from gan.compare import write_metrics_sidecar

    measured = str(shutil.copy(explorer_models["sg3"], tmp_path / "measured_sg3t.safetensors"))
    write_metrics_sidecar(measured, {"eqt10k_int": 55.25, "eqr10k": 12.5, "fd_toon10k_full": 3.5}, "", {})
    window = make_compare([explorer_models["sg2"], measured])
    table = window.table
    assert table.rowCount() == 2
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    col = {h: i for i, h in enumerate(headers)}
    assert {"EQ-T (dB)", "EQ-R (dB)", "SWD ×1e3", "FD toon (not FID)", "FID"} <= set(col)
    assert table.cell_text(0, 0) == "tiny_sg2.safetensors" and table.cell_text(0, col["arch"]) == "StyleGAN2"
    assert table.cell_text(0, col["EQ-T (dB)"]) == "not measured"
    assert table.cell_text(1, col["EQ-T (dB)"]) == "55.25 (10k)"
    assert table.cell_text(1, col["FD toon (not FID)"]) == "3.500 (10k)"
    assert table.cell_text(1, col["FID"]) == "not measured"
    assert table.cell_text(1, col["source"]) == "measured_sg3t.metrics.json"
    # Removing a model removes its row; a third one can be added again.
    window.remove_pane(list(window.panes)[0])
    assert table.rowCount() == 1 and table.cell_text(0, col["EQ-R (dB)"]) == "12.50 (10k)"
    assert window.add_button.isEnabled() and not window.export_button.isEnabled()  # export needs two


def test_limits_and_bad_files(make_compare, explorer_models, tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a model")
    window = make_compare([explorer_models["sg2"], str(bad)])
    panes = list(window.panes.values())
    assert panes[0].image is not None and panes[1].error and panes[1].image is None
    assert any("broken.safetensors" in m for m in window.messages)
    window.add_model(explorer_models["sg3"])
    assert len(window.panes) == MAX_PANES and not window.add_button.isEnabled()
    assert window.add_model(explorer_models["sg2_plain"]) is None and "at most" in window.messages[-1]


def test_threads_latest_request_wins(qtbot, make_compare, explorer_models, sg3r_path):
    from gan.model_io import load_model
    from gan.render import RenderArgs, Renderer

    paths = [explorer_models["sg3"], sg3r_path]
    window = make_compare(paths, force_sync=False)
    panes = list(window.panes.values())
    qtbot.waitUntil(lambda: all(p.image is not None for p in panes), timeout=120_000)
    for angle in (5.0, 10.0, 15.0, 20.0, 25.0):  # a burst: only the last one has to be shown
        window.apply({"rotate": angle}, continuous=True)
    window.apply({"rotate": 30.0, "seed": 3})
    for p in panes:
        p.equivariance = None
    qtbot.waitUntil(lambda: all(p.equivariance is not None for p in panes), timeout=120_000)
    assert window.bridge.wait_idle(60)
    qtbot.wait(50)  # deliver the last queued results
    for path, pane in zip(paths, panes):
        expected = (
            Renderer(load_model(path, training_nets=False)).render(RenderArgs(seed=3, rotate=30.0)).image
        )
        assert np.array_equal(pane.image, expected), path
        assert math.isfinite(pane.psnr)
    window.close()  # the no_leaked_qthreads fixture checks that both render threads ended


def test_default_models_are_the_shipped_ones_of_one_resolution(explorer_models):
    from gan.compare import peek_model

    shipped = default_models(None, None)
    assert 1 <= len(shipped) <= MAX_PANES
    assert len({peek_model(p)["resolution"] for p in shipped}) == 1
    # The current model comes first; shipped models of another resolution are not added.
    assert default_models(explorer_models["sg3"], 16) == [explorer_models["sg3"]]


def test_the_shipped_comparison_models_open_side_by_side(make_compare):
    """A fresh clone opens the three trained 64 px models (issue 20) with their measured rows, and
    under a 20° input rotation StyleGAN3-R keeps its picture best, then StyleGAN3-T, then StyleGAN2."""
    window = make_compare(default_models(None, None))
    panes = list(window.panes.values())
    by_arch = {p.subtitle.text(): p for p in panes}
    assert set(by_arch) == {"StyleGAN2 · 64 px", "StyleGAN3-T · 64 px", "StyleGAN3-R · 64 px"}
    assert all(p.image is not None and p.image.shape == (64, 64, 3) for p in panes)
    window.apply({"rotate": 20.0})
    psnr = [by_arch[f"{arch} · 64 px"].psnr for arch in ("StyleGAN2", "StyleGAN3-T", "StyleGAN3-R")]
    assert psnr[0] < psnr[1] < psnr[2], psnr
    table = window.table
    col = {table.horizontalHeaderItem(c).text(): c for c in range(table.columnCount())}
    samples = {"EQ-T (dB)": "(10k)", "EQ-R (dB)": "(10k)", "FD toon (not FID)": "(5k)"}
    for row in range(table.rowCount()):
        for name, count in samples.items():
            assert table.cell_text(row, col[name]).endswith(count), (row, name)


def test_main_window_menu_opens_the_comparison(qtbot, make_window, explorer_models):
    window = make_window(explorer_models["sg3"])
    action = next(
        a for a in window.findChildren(type(window.smooth_action)) if a.text() == "&Compare models…"
    )
    action.trigger()
    compare = window.findChild(CompareWindow)
    assert compare is not None and [p.path for p in compare.panes.values()] == [window.model_path]
    qtbot.waitUntil(lambda: all(p.image is not None for p in compare.panes.values()), timeout=120_000)
    window.close()  # closes the comparison too, and its threads


def test_standalone_entry_point_takes_a_screenshot(tmp_path, explorer_models):
    import os
    import subprocess
    import sys

    from PIL import Image

    out = tmp_path / "compare.png"
    cmd = [
        sys.executable,
        "-m",
        "explorer.compare_window",
        explorer_models["sg2"],
        explorer_models["sg3"],
        "--rotate",
        "20",
        "--size",
        "1000x700",
        "--screenshot",
        str(out),
    ]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape[:2] == (700, 1000) and img.std() > 10
    r = subprocess.run([*cmd[:3], str(tmp_path / "missing.pkl")], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "does not exist" in r.stderr
