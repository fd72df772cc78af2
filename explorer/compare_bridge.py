"""The comparison view's link to the models: one `RenderBridge` per pane, so every model renders
in its own worker thread with the render bridge's rules (latest request wins, stale results
dropped, drags rate-limited) and its equivariance view (`RenderBridge.request_equivariance`).

The recorded metrics of a model (`gan.compare.read_recorded_metrics`: a `<model>.metrics.json`
sidecar or the model file's metadata) are read when it has loaded; they travel as plain strings.
"""

from __future__ import annotations

import os
from dataclasses import replace

from PySide6.QtCore import QObject, Signal

from explorer.render_bridge import RenderBridge
from explorer.state import ExplorerState

MAX_PANES = 3


class CompareBridge(QObject):
    """Signals carry the pane id given by `add_model` (ids are not reused)."""

    pane_loaded = Signal(int, dict)  # pane id, model info (RenderBridge.info) + "metrics"
    pane_failed = Signal(int, str, str)  # pane id, path, message
    pane_rendered = Signal(int, dict)  # pane id, render result (see RenderBridge.rendered)
    pane_equivariance = Signal(int, dict)  # pane id, equivariance result (RenderBridge.equivariance_ready)

    def __init__(
        self,
        parent=None,
        *,
        force_sync: bool = False,
        device: str | None = None,
        ops_impl: str = "auto",
        min_interval_ms: int = 30,
    ):
        super().__init__(parent)
        self.force_sync = force_sync
        self.device = device
        self.ops_impl = ops_impl
        self.min_interval_ms = min_interval_ms
        self._bridges: dict[int, RenderBridge] = {}
        self._info: dict[int, dict] = {}
        self._next_id = 0

    # -- panes -----------------------------------------------------------------------------

    def add_model(self, path: str) -> int:
        """Load a model into a new pane; pane_loaded or pane_failed follow."""
        pane = self.new_pane()
        self.load(pane, path)
        return pane

    def new_pane(self) -> int:
        """A pane with its own render thread, not loaded yet (load() it once its widget exists:
        with force_sync the signals come before load() returns)."""
        if len(self._bridges) >= MAX_PANES:
            raise ValueError(f"the comparison shows at most {MAX_PANES} models")
        pane = self._next_id
        self._next_id += 1
        bridge = RenderBridge(
            self,
            force_sync=self.force_sync,
            device=self.device,
            min_interval_ms=self.min_interval_ms,
            ops_impl=self.ops_impl,
        )
        self._bridges[pane] = bridge
        bridge.model_loaded.connect(lambda info, p=pane: self._on_loaded(p, info))
        bridge.model_failed.connect(lambda path, msg, p=pane: self.pane_failed.emit(p, path, msg))
        bridge.rendered.connect(lambda result, p=pane: self.pane_rendered.emit(p, result))
        bridge.equivariance_ready.connect(lambda result, p=pane: self.pane_equivariance.emit(p, result))
        return pane

    def load(self, pane: int, path: str) -> None:
        self._bridges[pane].load_model(str(path))

    def remove_pane(self, pane: int) -> None:
        bridge = self._bridges.pop(pane, None)
        self._info.pop(pane, None)
        if bridge is not None:
            bridge.shutdown()
            bridge.deleteLater()

    def panes(self) -> list[int]:
        return list(self._bridges)

    def info(self, pane: int) -> dict | None:
        return self._info.get(pane)

    def _on_loaded(self, pane: int, info: dict) -> None:
        if pane not in self._bridges:
            return  # removed while loading
        from gan.compare import read_recorded_metrics, table_cells

        recorded = read_recorded_metrics(info["path"], info.get("sha256"))
        info = dict(info)
        info["metrics"] = {"cells": table_cells(recorded), "source": recorded.source, "note": recorded.note}
        self._info[pane] = info
        self.pane_loaded.emit(pane, info)

    # -- rendering -------------------------------------------------------------------------

    def request(
        self,
        state: ExplorerState,
        continuous: bool = False,
        equivariance: bool = True,
        panes: list[int] | None = None,
    ) -> None:
        """Render `state` in every loaded pane (or those listed); the equivariance error too,
        unless equivariance=False."""
        for pane, bridge in self._bridges.items():
            if panes is not None and pane not in panes:
                continue
            info = self._info.get(pane)
            if info is None:
                continue  # still loading: rendered once it is there
            own = state
            if info["c_dim"] and own.class_idx is None:
                own = replace(state, class_idx=0)  # conditional models show their first class
            bridge.request_render(own, continuous=continuous)
            if equivariance and info["has_input_transform"]:
                bridge.request_equivariance(own)

    def recipe(self, pane: int, state: ExplorerState):
        """gan.recipe.Recipe of `state` with one pane's model (the base view of a video)."""
        return self._bridges[pane].recipe(state)

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        return all(b.wait_idle(timeout_s) for b in list(self._bridges.values()))

    def shutdown(self) -> None:
        for pane in list(self._bridges):
            self.remove_pane(pane)

    # -- plain helpers ---------------------------------------------------------------------

    @staticmethod
    def metric_columns() -> list[tuple[str, str]]:
        from gan.compare import COLUMNS

        return [(key, header) for key, header, _, _ in COLUMNS]

    @staticmethod
    def shipped_like(resolution: int | None, exclude: str | None = None) -> list[str]:
        """Models shipped in resources/models of this resolution (None: the default model's)."""
        from gan.compare import models_like, peek_model
        from gan.resources import RESOURCES, model_files

        folder = RESOURCES / "models"
        if resolution is None:
            files = model_files(folder)
            default = next((p for p in files if p.stem.startswith("default")), files[0] if files else None)
            info = peek_model(default) if default is not None else None
            if info is None:
                return []
            resolution = info["resolution"]
        skip = os.path.realpath(exclude) if exclude else None
        return [p for p in models_like(folder, resolution) if os.path.realpath(p) != skip]
