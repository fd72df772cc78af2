"""`--screenshot`: show the window offscreen, wait until it shows real content, grab it to a PNG."""

from __future__ import annotations

import sys
import time

from PySide6.QtCore import QEventLoop, QTimer


def _wait(app, condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: loop.quit() if condition() or time.monotonic() > deadline else None)
    timer.start()
    if not condition():
        loop.exec()
    timer.stop()
    return condition()


def take_screenshot(
    app,
    window,
    path: str,
    size: tuple[int, int],
    expect_model: bool,
    panel: str = "main",
    timeout_s: float = 120.0,
) -> int:
    window.resize(*size)
    window.show()
    failed: list[str] = []
    window.bridge.model_failed.connect(lambda p, msg: failed.append(msg))
    if expect_model:
        if not _wait(app, lambda: window.last_result is not None or failed, timeout_s):
            print(f"stylegan-explorer: no image within {timeout_s:.0f} s", file=sys.stderr)
            return 1
        if failed:
            return 1  # the window already printed the reason (quiet_errors)
        # bench/startup.py times the launch by this line.
        print("stylegan-explorer: first image shown", file=sys.stderr, flush=True)
        if panel == "inspector" and window.model_info and window.model_info["has_input_transform"]:
            window.dock_inspector.raise_()
            window.apply_fields({"translate": (0.0625, -0.03), "rotate": 12.0})
            _wait(app, lambda: window.inspector.psnr is not None, timeout_s)
            window.current_image(int(timeout_s * 1000))  # the main view shows the transformed picture
        # Let the seed grid fill (thumbnails run after the main render).
        grid = window.seed_grid
        _wait(app, lambda: len(grid.thumbnails) >= len(grid.visible_seeds()), min(timeout_s, 30.0))
        _wait(app, lambda: not window.bridge.pca_running, min(timeout_s, 60.0))  # the directions panel
        window.bridge.wait_idle(10.0)
    if panel == "welcome":
        window.show_welcome()
    window.statusBar().clearMessage()  # show the render time, not "Opened …"
    _wait(app, lambda: False, 0.2)  # process the last paints
    image = window.grab()
    if not image.save(path):
        print(f"stylegan-explorer: cannot write {path}", file=sys.stderr)
        return 1
    return 0
