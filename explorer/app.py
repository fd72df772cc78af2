"""Entry point: `stylegan-explorer [--model M] [--session S] [--screenshot out.png]`.

Without --model the default model from `resources/models/` opens (if one is there). With
--screenshot the window is rendered offscreen once the first image is shown, written to the
PNG and the program exits (exit code 0 on success)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from gan.resources import RESOURCES, model_files


def default_model_path(resources: Path = RESOURCES) -> str | None:
    """The default model shipped in resources/models/ (a file named default.* wins, else the first)."""
    files = model_files(resources / "models")
    for p in files:
        if p.stem.startswith("default"):
            return str(p)
    return str(files[0]) if files else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="stylegan-explorer",
        description="StyleGAN Explorer: browse seeds, drag latent directions, inspect equivariance, "
        "export PNGs and videos, and train or fine-tune StyleGAN2 / StyleGAN3 models.",
        epilog="Without --model the previous session comes back, or the default model in "
        "resources/models/ opens. Examples: `stylegan-explorer --model ffhq.pkl`; "
        "`stylegan-explorer --screenshot out.png` (no display needed).",
    )
    parser.add_argument(
        "--model", help="model to open (.safetensors or official .pkl); default: resources/models/"
    )
    parser.add_argument("--session", help="explorer session (.json) or PNG with a recipe to open")
    parser.add_argument("--screenshot", metavar="PATH", help="render the window offscreen to PATH and exit")
    parser.add_argument("--size", default="1360x860", help="window size for --screenshot (WxH)")
    parser.add_argument(
        "--panel",
        choices=["main", "inspector", "welcome"],
        default="main",
        help="what --screenshot shows: the main window, the transform inspector in use, or the welcome card",
    )
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument(
        "--ops",
        default="auto",
        choices=["auto", "ref", "cpu", "cuda"],
        help="force one implementation of the custom ops (ref: plain torch, never compiles anything)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds --screenshot waits for a render"
    )
    return parser.parse_args(argv)


def has_display() -> bool:
    """Whether Qt can open windows here (Linux needs an X11 or Wayland display)."""
    if os.environ.get("QT_QPA_PLATFORM") or not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


# The libraries Qt's X11 (xcb) platform loads, and their Debian packages. When one is missing Qt
# only says "xcb-cursor0 or libxcb-cursor0 is needed", whichever is missing.
XCB_LIBRARIES = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def x11_problem() -> str:
    """Why Qt's X11 platform cannot start here ('' if it can, or if it is not going to be used).
    Checked before QApplication exists: Qt aborts on both problems with misleading messages."""
    import ctypes

    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if not sys.platform.startswith("linux") or platform not in ("", "xcb") or not os.environ.get("DISPLAY"):
        return ""
    if not platform and os.environ.get("WAYLAND_DISPLAY"):
        return ""  # Qt prefers Wayland there
    missing = []
    for name, package in XCB_LIBRARIES.items():
        try:
            ctypes.CDLL(name)
        except OSError:
            missing.append(package)
    if missing:
        return (
            f"Qt's X11 platform needs libraries that are not installed ({', '.join(missing)}). "
            f"Install them (Debian/Ubuntu: `sudo apt-get install {' '.join(missing)}`, or "
            "`make run INSTALL_DISPLAY_LIBS=1`), or take a picture with `--screenshot out.png`."
        )
    display = os.environ["DISPLAY"]
    xcb = ctypes.CDLL("libxcb.so.1")
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)
    try:
        failed = xcb.xcb_connection_has_error(connection) != 0
    finally:
        xcb.xcb_disconnect(connection)  # also frees the object of a failed connection
    if failed:
        return (
            f"cannot connect to display {display}: no X server answers there. Start one (e.g. "
            "`Xvfb :99 &`), run under `xvfb-run -a stylegan-explorer` (Debian: `apt-get install xvfb`), "
            "unset DISPLAY to be told what else works, or take a picture with `--screenshot out.png`."
        )
    return ""


def load_style(app) -> None:
    """Fusion with a dark palette, plus resources/style.qss for accents (both optional)."""
    from PySide6.QtGui import QColor, QIcon, QPalette

    app.setStyle("Fusion")
    p = QPalette()
    colors = {
        QPalette.ColorRole.Window: "#1f2228",
        QPalette.ColorRole.WindowText: "#dde3ea",
        QPalette.ColorRole.Base: "#171a1f",
        QPalette.ColorRole.AlternateBase: "#23272e",
        QPalette.ColorRole.ToolTipBase: "#2b3039",
        QPalette.ColorRole.ToolTipText: "#e6ebf2",
        QPalette.ColorRole.Text: "#dde3ea",
        QPalette.ColorRole.Button: "#2b3039",
        QPalette.ColorRole.ButtonText: "#e6ebf2",
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: "#d98a2b",
        QPalette.ColorRole.HighlightedText: "#15171b",
        QPalette.ColorRole.Link: "#5a9cff",
        QPalette.ColorRole.PlaceholderText: "#7d8796",
    }
    for role, color in colors.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b7380"))
    app.setPalette(p)
    qss = RESOURCES / "style.qss"
    if qss.is_file():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))
    icon = RESOURCES / "icons" / "app.svg"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))


def close_on_ctrl_c(window) -> tuple:
    """Ctrl-C in the terminal closes the window as its close button does (settings saved, work
    stopped), then ends the event loop (a card that opened meanwhile must not keep the app
    alive). While Qt waits for events no Python runs, so Python's signal handler would wait too:
    the signal's wake-up byte goes to a socket that Qt's event loop watches."""
    import socket

    from PySide6.QtCore import QCoreApplication, QSocketNotifier

    def stop(*_) -> None:
        window.close()
        QCoreApplication.quit()

    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno())
    signal.signal(signal.SIGINT, stop)
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, window)

    def woken() -> None:  # running Python here lets the interpreter call `stop`
        try:
            reader.recv(64)
        except BlockingIOError:
            pass

    notifier.activated.connect(woken)
    return reader, writer  # the caller closes them after the event loop


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.model and not os.path.exists(args.model):
        print(f"stylegan-explorer: model file {args.model} does not exist", file=sys.stderr)
        return 2
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    elif not has_display():
        print(
            "stylegan-explorer: no display found (DISPLAY / WAYLAND_DISPLAY are not set). Run it on a "
            "desktop, under a virtual display (`xvfb-run -a stylegan-explorer`), or take a picture with "
            "`stylegan-explorer --screenshot out.png`.",
            file=sys.stderr,
        )
        return 2
    problem = "" if args.screenshot else x11_problem()
    if problem:
        print(f"stylegan-explorer: {problem}", file=sys.stderr)
        return 2
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from explorer.main_window import MainWindow
    from explorer.render_bridge import RenderBridge

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("StyleGAN Explorer")
    app.setOrganizationName("stylegan-explorer")
    load_style(app)
    if args.screenshot:
        # Screenshots must not depend on (or change) the user's saved window layout.
        settings = QSettings(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, "stylegan-explorer", "screenshot"
        )
        settings.clear()
    else:
        settings = QSettings("stylegan-explorer", "explorer")
    bridge = RenderBridge(device=args.device, ops_impl=args.ops)
    window = MainWindow(bridge=bridge, settings=settings)
    bridge.setParent(window)
    window.quiet_errors = bool(args.screenshot)
    # A session names its own model. Without --model / --session the previous run's model and
    # state come back; the first run (or a vanished model) opens the default model.
    model = args.model
    if not (model or args.session or args.screenshot) and window.restore_last_session():
        pass  # the previous run's model is loading
    elif not (model or args.session):
        model = default_model_path()
    if model:
        window.load_model(model)
    if args.session:
        window.open_path(args.session)
    ctrl_c_sockets: tuple = ()
    try:
        if args.screenshot:
            from explorer.screenshot import take_screenshot

            w, h = (int(v) for v in args.size.lower().split("x"))
            return take_screenshot(
                app,
                window,
                args.screenshot,
                (w, h),
                expect_model=bool(model),
                panel=args.panel,
                timeout_s=args.timeout,
            )
        window.show()
        if window.welcome_at_start:
            window.show_welcome_when_ready()
        ctrl_c_sockets = close_on_ctrl_c(window)
        print(
            "stylegan-explorer: running (Ctrl-C here or closing the window quits)",
            file=sys.stderr,
            flush=True,
        )
        return app.exec()
    finally:
        signal.set_wakeup_fd(-1)
        for sock in ctrl_c_sockets:
            sock.close()
        window.close()
        bridge.shutdown()  # the worker threads must end before Qt tears down
        from explorer.tasks import wait_for_adopted_tasks

        wait_for_adopted_tasks()  # e.g. a training run still writing its stop snapshot


if __name__ == "__main__":
    sys.exit(main())
