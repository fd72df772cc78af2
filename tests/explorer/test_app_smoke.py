"""The entry point in a subprocess: `stylegan-explorer --screenshot` with and without a model."""

import ctypes
import os
import signal
import subprocess
import sys

import numpy as np
from PIL import Image

from explorer.app import XCB_LIBRARIES, default_model_path, parse_args
from tests.support.tiny import run_app


def test_screenshot_of_a_model_writes_a_real_png(tmp_path, explorer_models):
    out = tmp_path / "shot.png"
    r = run_app("--model", explorer_models["sg3"], "--screenshot", str(out), "--size", "1000x700")
    assert r.returncode == 0, r.stderr
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape[0] >= 700 and img.shape[1] >= 1000
    assert img.std() > 10  # not a blank frame


def test_screenshot_of_the_default_start_and_of_a_bad_model(tmp_path):
    # Without --model the default model opens (or, before one ships, the "no model" page).
    out = tmp_path / "start.png"
    r = run_app("--screenshot", str(out), "--size", "900x600")
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 1000
    assert ("first image shown" in r.stderr) == (default_model_path() is not None)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nonsense")
    r = run_app("--model", str(bad), "--screenshot", str(tmp_path / "x.png"))
    assert r.returncode == 1 and "bad.safetensors" in r.stderr
    r = run_app("--model", str(tmp_path / "missing.pkl"), "--screenshot", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_default_model_lookup(tmp_path):
    assert default_model_path(tmp_path) is None
    (tmp_path / "models").mkdir()
    assert default_model_path(tmp_path) is None
    (tmp_path / "models" / "a.pkl").write_bytes(b"x")
    (tmp_path / "models" / "default_toon64.safetensors").write_bytes(b"x")
    (tmp_path / "models" / "notes.txt").write_text("x")
    assert default_model_path(tmp_path).endswith("default_toon64.safetensors")
    assert parse_args(["--screenshot", "a.png"]).model is None


def test_a_display_without_a_server_is_named_before_qt_starts():
    """DISPLAY=:987 with no X server there: our message (the missing X11 libraries where they are
    missing, else the display), not Qt's abort about xcb-cursor0."""
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = ":987"
    r = subprocess.run(
        [sys.executable, "-c", "import sys; from explorer.app import main; sys.exit(main())"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 2, r.stderr
    assert "Aborted" not in r.stderr
    missing = [package for name, package in XCB_LIBRARIES.items() if not _loads(name)]
    if missing:  # a machine without Qt's X11 libraries: that is checked (and named) first
        assert "needs libraries that are not installed" in r.stderr
        assert all(package in r.stderr for package in missing)
    else:
        assert "cannot connect to display :987" in r.stderr and "xvfb" in r.stderr
        assert "xcb-cursor0" not in r.stderr


def _loads(library: str) -> bool:
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def test_help_is_a_description_not_a_docstring(capsys):
    import pytest

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = capsys.readouterr().out
    assert (
        "StyleGAN Explorer: browse seeds" in text
        and "Entry point" not in text
        and "`stylegan-explorer [" not in text
    )


def test_ctrl_c_in_the_terminal_quits(tmp_path, explorer_models):
    """Qt's event loop would swallow SIGINT: the app must close its window and exit 0."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from explorer.app import main; sys.exit(main())"]
        + ["--model", explorer_models["sg3"]],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    try:
        lines = []
        for line in proc.stderr:  # the app says when its event loop runs
            lines.append(line)
            if "running (Ctrl-C" in line:
                break
        assert "running (Ctrl-C" in "".join(lines), "".join(lines)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # Known, not yet understood: under heavy load about one Ctrl-C in ten right after the
            # start is not seen by the app (a second one is). Fails if Ctrl-C never works.
            proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
