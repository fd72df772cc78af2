"""View > Compare models: two or three models side by side on the same seed and the same input
transform, each with its live equivariance error image and PSNR, and a table of their recorded
metrics (the StyleGAN3 paper's comparison, on the user's own models or NVIDIA's pickles).

Rendering goes through `explorer.compare_bridge` (one render bridge per model, off the GUI
thread, latest request wins). Standalone, e.g. for a screenshot:

    python -m explorer.compare_window A.safetensors B.pkl --rotate 30 --screenshot compare.png
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from explorer.compare_bridge import MAX_PANES, CompareBridge
from explorer.state import ExplorerState
from explorer.widgets.compare_pane import CompareControls, ComparePane, MetricsTable

MODEL_FILTER = "Models (*.safetensors *.pkl);;All files (*)"


class CompareWindow(QDialog):
    """A non-modal window (a QDialog, so the main window closes it, and its threads, on quit)."""

    def __init__(
        self, paths: list[str], parent=None, bridge: CompareBridge | None = None, smooth: bool = True
    ):
        super().__init__(parent)
        self.setWindowTitle("Compare models")
        self.setWindowFlags(
            Qt.WindowType.Window | Qt.WindowType.WindowMinMaxButtonsHint | Qt.WindowType.WindowCloseButtonHint
        )
        self.bridge = bridge if bridge is not None else CompareBridge(self)
        self.bridge.setParent(self)
        self.panes: dict[int, ComparePane] = {}
        self.messages: list[str] = []  # problems shown to the user (also in the status line)
        self._export = None  # the open export dialog
        self._closed = False

        self.add_button = QPushButton("Add model…")
        self.add_button.clicked.connect(self.add_model_dialog)
        self.export_button = QPushButton("Export video…")
        self.export_button.setToolTip("An MP4 with these models side by side (rotation or translation loop)")
        self.export_button.clicked.connect(self.open_export_dialog)
        self.smooth = QCheckBox("Smooth scaling")
        self.smooth.setChecked(smooth)
        self.smooth.toggled.connect(lambda on: [p.set_smooth(on) for p in self.panes.values()])
        self.status = QLabel("")
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.add_button)
        top.addWidget(self.export_button)
        top.addWidget(self.smooth)
        top.addWidget(self.status, 1)

        self.pane_row = QHBoxLayout()
        self.pane_row.setSpacing(8)
        panes_widget = QWidget()
        panes_widget.setLayout(self.pane_row)
        self.controls = CompareControls()
        self.controls.changed.connect(self._on_controls)
        self.controls.drag_finished.connect(self._end_drag)
        self.table = MetricsTable()
        table_box = QWidget()
        table_layout = QVBoxLayout(table_box)
        table_layout.setContentsMargins(0, 0, 0, 0)
        caption = QLabel(
            "Recorded metrics (from a <model>.metrics.json next to each file, or its metadata; "
            "python -m bench.compare_archs --sidecar writes them)"
        )
        caption.setObjectName("hint")
        table_layout.addWidget(caption)
        table_layout.addWidget(self.table)
        table_layout.addStretch(1)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(panes_widget)
        splitter.addWidget(table_box)
        splitter.setStretchFactor(0, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.controls)

        b = self.bridge
        b.pane_loaded.connect(self._on_loaded)
        b.pane_failed.connect(self._on_failed)
        b.pane_rendered.connect(self._on_rendered)
        b.pane_equivariance.connect(self._on_equivariance)
        self.resize(1280, 860)
        for path in paths[:MAX_PANES]:
            self.add_model(path)
        if len(paths) > MAX_PANES:
            self._say(f"Showing the first {MAX_PANES} of {len(paths)} models.")
        self._refresh()

    # -- state -----------------------------------------------------------------------------

    def values(self) -> dict:
        """The shared view: seed, psi, translate, rotate."""
        return self.controls.values()

    def view_state(self) -> ExplorerState:
        """The shared view as explorer state (every other setting at its default)."""
        v = self.values()
        return ExplorerState(seed=v["seed"], psi=v["psi"], translate=v["translate"], rotate=v["rotate"])

    def apply(self, fields: dict, continuous: bool = False) -> None:
        """Change the shared view (any of seed, psi, translate, rotate) and re-render every pane."""
        self.controls.set_values(fields)
        self._render(continuous)

    def _render(self, continuous: bool) -> None:
        # Like the main window: the equivariance error follows each settled change, not every
        # step of a drag (it costs two more synthesis passes per model).
        self.bridge.request(self.view_state(), continuous=continuous, equivariance=not continuous)

    def _on_controls(self, fields: dict, continuous: bool) -> None:
        self._render(continuous)

    def _end_drag(self) -> None:
        self._render(False)

    def _on_pane_translate(self, dx: float, dy: float) -> None:
        tx, ty = self.values()["translate"]
        self.apply({"translate": (round(tx + dx, 4), round(ty + dy, 4))}, continuous=True)

    def _on_pane_rotate(self, delta: float) -> None:
        angle = (self.values()["rotate"] + delta + 180.0) % 360.0 - 180.0
        self.apply({"rotate": round(angle, 3)}, continuous=True)

    # -- panes -----------------------------------------------------------------------------

    def add_model(self, path: str) -> int | None:
        if len(self.panes) >= MAX_PANES:
            self._say(f"The comparison shows at most {MAX_PANES} models; remove one first.")
            return None
        pane_id = self.bridge.new_pane()
        pane = ComparePane(path)
        pane.set_smooth(self.smooth.isChecked())
        pane.translate_dragged.connect(self._on_pane_translate)
        pane.rotate_dragged.connect(self._on_pane_rotate)
        pane.drag_finished.connect(self._end_drag)
        pane.remove_requested.connect(lambda p=pane_id: self.remove_pane(p))
        self.panes[pane_id] = pane
        self.pane_row.addWidget(pane, 1)
        self.bridge.load(pane_id, path)
        self._refresh()
        return pane_id

    def remove_pane(self, pane_id: int) -> None:
        pane = self.panes.pop(pane_id, None)
        self.bridge.remove_pane(pane_id)
        if pane is not None:
            self.pane_row.removeWidget(pane)
            pane.deleteLater()
        self._refresh()

    def add_model_dialog(self) -> None:
        start = os.path.dirname(next(iter(self.panes.values())).path) if self.panes else os.getcwd()
        path, _ = QFileDialog.getOpenFileName(self, "Add a model to the comparison", start, MODEL_FILTER)
        if path:
            self.add_model(path)

    def _on_loaded(self, pane_id: int, info: dict) -> None:
        pane = self.panes.get(pane_id)
        if pane is None:
            return
        pane.set_info(info)
        self._refresh()
        self.bridge.request(self.view_state(), panes=[pane_id])

    def _on_failed(self, pane_id: int, path: str, message: str) -> None:
        pane = self.panes.get(pane_id)
        if pane is not None:
            pane.set_failed(message)
        self._say(f"Cannot open {os.path.basename(path)}: {message}")

    def _on_rendered(self, pane_id: int, result: dict) -> None:
        pane = self.panes.get(pane_id)
        if pane is not None:
            pane.set_result(result)

    def _on_equivariance(self, pane_id: int, result: dict) -> None:
        pane = self.panes.get(pane_id)
        if pane is not None:
            pane.set_equivariance(result)

    def _refresh(self) -> None:
        """The table, the buttons and the resolution note, from the loaded panes."""
        rows = []
        resolutions = set()
        for pane_id in self.panes:
            info = self.bridge.info(pane_id)
            if info is None:
                continue
            resolutions.add(info["resolution"])
            metrics = info.get("metrics", {})
            rows.append(
                {
                    "label": info["name"],
                    "arch": info["arch"],
                    "cells": metrics.get("cells", {}),
                    "source": os.path.basename(metrics.get("source", "")),
                    "note": metrics.get("note", ""),
                }
            )
        self.table.set_rows(self.bridge.metric_columns(), rows)
        self.add_button.setEnabled(len(self.panes) < MAX_PANES)
        self.export_button.setEnabled(len(rows) >= 2)
        if len(resolutions) > 1:
            res = ", ".join(f"{r} px" for r in sorted(resolutions))
            self.status.setText(f"Different resolutions ({res}): each picture is scaled to fit its pane.")

    def _say(self, text: str) -> None:
        self.messages.append(text)
        self.status.setText(text)

    # -- export ----------------------------------------------------------------------------

    def open_export_dialog(self) -> None:
        loaded = [p for p in self.panes if self.bridge.info(p) is not None]
        if len(loaded) < 2:
            self._say("Load at least two models to export a comparison video.")
            return
        from explorer.dialogs.export_dialog import ExportDialog

        infos = [self.bridge.info(p) for p in loaded]
        models = [{"path": i["path"], "name": i["name"], "arch": i["arch"]} for i in infos]
        recipe = self.bridge.recipe(loaded[0], self.view_state())
        resolution = max(i["resolution"] for i in infos)
        dialog = ExportDialog(models[0]["path"], recipe, self, resolution=resolution, compare=models)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._export = dialog
        dialog.show()

    # -- closing ---------------------------------------------------------------------------

    def reject(self) -> None:
        self._shutdown()
        super().reject()

    def closeEvent(self, event) -> None:
        self._shutdown()
        super().closeEvent(event)

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for dialog in self.findChildren(QDialog):  # a running export stops first
            dialog.close()
        self.bridge.shutdown()


def default_models(current: str | None, resolution: int | None) -> list[str]:
    """What the window opens with: the current model, then shipped models of its resolution."""
    shipped = CompareBridge.shipped_like(resolution, exclude=current)
    return ([current] if current else []) + shipped[: MAX_PANES - (1 if current else 0)]


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m explorer.compare_window", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", help="model files (default: the shipped models of one resolution)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--psi", type=float, default=1.0)
    p.add_argument("--rotate", type=float, default=0.0, help="input rotation in degrees")
    p.add_argument("--translate", type=float, nargs=2, default=(0.0, 0.0), metavar=("X", "Y"))
    p.add_argument("--screenshot", metavar="PATH", help="grab the window to PATH once everything rendered")
    p.add_argument("--size", default="1400x900", help="window size (WxH)")
    p.add_argument("--ops", default="auto", choices=["auto", "ref", "cpu", "cuda"])
    args = p.parse_args(argv)
    missing = [m for m in args.models if not os.path.exists(m)]
    if missing:
        print(f"compare_window: model file {missing[0]} does not exist", file=sys.stderr)
        return 2
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from explorer.app import load_style

    app = QApplication.instance() or QApplication(sys.argv[:1])
    load_style(app)
    paths = args.models or default_models(None, None)
    if not paths:
        print("compare_window: no models given and none shipped in resources/models", file=sys.stderr)
        return 2
    window = CompareWindow(paths, bridge=CompareBridge(ops_impl=args.ops))
    window.resize(*(int(v) for v in args.size.lower().split("x")))
    window.apply(
        {"seed": args.seed, "psi": args.psi, "translate": tuple(args.translate), "rotate": args.rotate}
    )
    window.show()
    try:
        if args.screenshot:
            return _screenshot(app, window, args.screenshot)
        return app.exec()
    finally:
        window.close()


def _screenshot(app, window: CompareWindow, path: str, timeout_s: float = 180.0) -> int:
    from explorer.screenshot import _wait

    def done() -> bool:
        panes = list(window.panes.values())
        loaded = all(p.info is not None or p.error for p in panes)
        return loaded and all(p.error or (p.image is not None and p.equivariance is not None) for p in panes)

    if not _wait(app, done, timeout_s):
        print(f"compare_window: the panes did not render within {timeout_s:.0f} s", file=sys.stderr)
        return 1
    window.bridge.wait_idle(10.0)
    _wait(app, lambda: False, 0.3)  # the last paints
    if not window.grab().save(path):
        print(f"compare_window: cannot write {path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
