"""Screenshots of File > Open photo for the README: the photo dialog after a projection, and the
main window showing the projected face anime-ified.

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python \
        scripts/screenshot_photo.py --photo photo.jpg \
        --out-dialog docs/screenshots/photo_dialog.png --out-main docs/screenshots/photo_anime.png

Without --photo it draws a photo-style toon face (gan.data.toon, seed 31337) at 320 px.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=str(ROOT / "resources/models/default-toon64-sg3t.safetensors"))
    p.add_argument("--photo", default=None)
    p.add_argument("--anime", type=float, default=4.0, help="Anime-ify slider value of the main-window shot")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: faster on a busy machine)")
    p.add_argument("--out-dialog", required=True)
    p.add_argument("--out-main", required=True)
    args = p.parse_args()

    import torch
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from explorer.main_window import MainWindow
    from explorer.render_bridge import RenderBridge
    from explorer.screenshot import _wait

    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp(prefix="photo-shot-")
    photo = args.photo
    if photo is None:
        from gan.data.toon import render_toon, sample_image

        identity, pose, style = sample_image(31337, 2, ("photo",))
        photo = os.path.join(tmp, "photo.jpg")
        render_toon(identity, style, pose, 320).save(photo, quality=92)

    app = QApplication(sys.argv[:1])
    settings = QSettings(os.path.join(tmp, "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("projections_dir", os.path.join(tmp, "projections"))
    window = MainWindow(bridge=RenderBridge(), settings=settings)
    window.resize(1360, 860)
    window.show()
    window.load_model(args.model)
    if not _wait(app, lambda: window.last_result is not None, 300):
        print("no image from the model", file=sys.stderr)
        return 1
    dialog = window.open_photo(photo)
    if not _wait(app, lambda: dialog.target is not None or "⚠" in dialog.status.text(), 300):
        print("the photo did not open", file=sys.stderr)
        return 1
    dialog.start()
    if not _wait(app, lambda: dialog.result is not None, 3600):
        print("the projection did not finish", file=sys.stderr)
        return 1
    _wait(app, lambda: False, 0.5)
    dialog.grab().save(args.out_dialog)
    print(f"{args.out_dialog}: {dialog.status.text()}", file=sys.stderr)
    dialog.close()
    window.direction_panel.rows["anime"].value_spin.setValue(args.anime)
    window.current_image(120_000)
    grid = window.seed_grid
    _wait(app, lambda: len(grid.thumbnails) >= len(grid.visible_seeds()), 30)
    window.bridge.wait_idle(10.0)
    window.statusBar().clearMessage()
    _wait(app, lambda: False, 0.5)
    window.grab().save(args.out_main)
    print(f"{args.out_main}: anime-ify {args.anime:+g}", file=sys.stderr)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
