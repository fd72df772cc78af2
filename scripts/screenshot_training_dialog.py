"""Screenshot of the training dialog during a real tiny run: docs/screenshots/training_dialog.png.

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \\
        .venv/bin/python scripts/screenshot_training_dialog.py docs/screenshots/training_dialog.png

Draws 256 toon faces at 32 px into a temporary folder, measures the time estimate of a small
StyleGAN3-T (the dialog's "Estimate time"), trains it on the CPU until the given tick (EQ-T and
EQ-R on 64 samples at every second tick) and grabs the dialog while it runs; then stops the run
and deletes the folder. About 5-15 minutes on a 2-core machine, depending on its load.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wait(app, condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    return condition()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("--ticks", type=int, default=6, help="grab once this tick is reached (default 6)")
    parser.add_argument("--size", default="1280x860", help="dialog size WxH")
    args = parser.parse_args(argv)

    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from explorer.app import load_style
    from explorer.dialogs.training_dialog import TrainingDialog
    from explorer.training_bridge import TrainingBridge

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "toon32.zip"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "gan.cli",
                "dataset",
                "toon",
                "--out",
                str(data),
                "--count",
                "256",
                "--resolution",
                "32",
            ],
            check=True,
        )
        app = QApplication.instance() or QApplication(sys.argv[:1])
        load_style(app)
        bridge = TrainingBridge(nice=0)  # normal priority: the screenshot should not wait all day
        dialog = TrainingDialog(None, bridge=bridge, outdir=str(Path(tmp) / "runs"))
        bridge.setParent(dialog)
        w, h = (int(v) for v in args.size.lower().split("x"))
        dialog.resize(w, h)
        dialog.show()
        dialog.set_data_path(str(data))
        if not wait(app, lambda: dialog.dataset_info is not None, 120):
            print("the data set was not checked in time", file=sys.stderr)
            return 1
        dialog.set_options(
            cfg="stylegan3-t",
            cbase=1024,
            cmax=32,
            z_dim=32,
            map_depth=2,
            batch=8,
            gamma=0.5,
            kimg=1.0,
            tick_kimg=0.016,
            snap=2,
            metrics=["eqt50k_int", "eqr50k"],
            metrics_num=64,
            mirror=True,
            device="cpu",
        )
        estimates: list[dict] = []
        bridge.estimated.connect(estimates.append)
        dialog.estimate_time()
        wait(app, lambda: bool(estimates), 300)
        ticks: list[dict] = []
        bridge.tick.connect(ticks.append)
        if not dialog.start_training():
            print(f"training did not start: {dialog.last_error}", file=sys.stderr)
            return 1
        reached = wait(app, lambda: bool(ticks) and ticks[-1]["tick"] >= args.ticks, 3600)
        wait(app, lambda: False, 0.5)  # the last paints
        ok = dialog.grab().save(args.out)
        dialog.stop_training()
        wait(app, lambda: not bridge.is_running(), 600)
        dialog.close()
        # Delete the dialog (and its bridge) now, while the application exists: left to the
        # interpreter's exit, the order of destruction is arbitrary.
        dialog.deleteLater()
        app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        if not (reached and ok):
            print("no screenshot: the run did not reach the tick in time", file=sys.stderr)
            return 1
        print(f"wrote {args.out} at tick {ticks[-1]['tick']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
