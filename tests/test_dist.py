"""The standalone bundle built by `make dist` (slow: run with `make test-dist`).

Launches dist/stylegan-explorer/stylegan-explorer like a user would: a screenshot of the window
with a rendered image (offscreen, and under Xvfb with the xcb plugin when xvfb-run exists), and
the bundle's self-check (`--bundle-check`): the prebuilt C++ kernels run ('cpu', not 'ref') and a
tiny training run starts in a child process of the frozen app. Skips when the bundle is missing.

Model: the bundle's default model (resources/models/default*) when it ships one, else a tiny
random StyleGAN2 made here (its 16 px image, scaled up in the viewer, still has strong contrast).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "dist" / "stylegan-explorer"
APP = BUNDLE / ("stylegan-explorer.exe" if sys.platform == "win32" else "stylegan-explorer")
DATA = BUNDLE / "_internal"  # PyInstaller 6 onedir: everything but the executable
SIZE = (1360, 860)
RUN_TIMEOUT = 600  # seconds; the first start of a bundle unpacks nothing but is slow on busy machines


@pytest.fixture(scope="module")
def app() -> Path:
    if not APP.is_file():
        pytest.skip(f"no standalone bundle at {APP}; build it with `make dist` (or run `make test-dist`)")
    return APP


@pytest.fixture(scope="module")
def model_args(app, tmp_path_factory) -> list[str]:
    shipped = sorted((DATA / "resources" / "models").glob("default*.safetensors"))
    if shipped:
        return []  # the first-run path: the app opens its default model by itself
    from tests.support.tiny import save_tiny

    return ["--model", save_tiny(tmp_path_factory.mktemp("model") / "tiny_sg2.safetensors", "stylegan2")]


def run_app(args: list[str], env_extra: dict[str, str], prefix: tuple = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra)
    env.pop("PYTHONPATH", None)  # the bundle must not need the project's sources
    return subprocess.run(
        [*prefix, str(APP), *args], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd="/"
    )


def check_screenshot(path: Path) -> None:
    assert path.is_file(), f"no screenshot written at {path}"
    image = np.asarray(Image.open(path).convert("RGB")).astype(np.float64)
    assert (image.shape[1], image.shape[0]) == SIZE
    colours = np.unique(image.reshape(-1, 3), axis=0)
    assert len(colours) > 50, f"the window is almost one colour ({len(colours)} colours)"
    # The viewer sits in the middle of the window; its centre shows the rendered image.
    h, w = image.shape[:2]
    cy, cx, dy, dx = int(h * 0.39), w // 2, h // 10, w // 10
    viewer = image[cy - dy : cy + dy, cx - dx : cx + dx]
    viewer_colours = len(np.unique(viewer.reshape(-1, 3), axis=0))
    assert viewer.std() > 15 and viewer_colours >= 16, (
        f"the viewer shows no rendered image (std {viewer.std():.1f}, {viewer_colours} colours)"
    )


def test_bundle_contents():
    if not APP.is_file():
        pytest.skip(f"no standalone bundle at {APP}; build it with `make dist`")
    assert (DATA / "resources" / "style.qss").is_file()
    assert (DATA / "resources" / "icons" / "app.svg").is_file()
    assert list((DATA / "resources" / "classifier").glob("*.safetensors"))
    assert not (DATA / "resources" / "models" / "training").exists(), "a training run's state was bundled"
    manifest = json.loads((DATA / "ops_cuda_prebuilt" / "manifest.json").read_text())
    assert (DATA / "ops_cuda_prebuilt" / manifest["kinds"]["cpu"]["file"]).is_file(), manifest
    assert not (DATA / "torch" / "include").exists(), "C++ headers are useless in a frozen app"
    for module in ("QtNetwork", "QtQml", "QtQuick", "QtWebEngineCore"):
        assert not list((DATA / "PySide6").glob(f"{module}.*")), f"unused Qt module {module} bundled"


def test_screenshot_offscreen(app, model_args, tmp_path):
    out = tmp_path / "shot.png"
    size = f"{SIZE[0]}x{SIZE[1]}"
    result = run_app(
        ["--screenshot", str(out), "--size", size, "--timeout", "300", *model_args],
        {"QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    check_screenshot(out)


def test_screenshot_under_xvfb_with_the_xcb_plugin(app, model_args, tmp_path):
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        pytest.skip("xvfb-run is not installed (apt-get install xvfb)")
    out = tmp_path / "shot.png"
    result = run_app(
        ["--screenshot", str(out), "--size", f"{SIZE[0]}x{SIZE[1]}", "--timeout", "300", *model_args],
        {"QT_QPA_PLATFORM": "xcb"},
        prefix=(xvfb, "-a", "-s", "-screen 0 1600x1000x24"),
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    check_screenshot(out)


def test_prebuilt_kernels_and_training_in_a_child_process(app, tmp_path):
    from tests.support.tiny import make_blobs

    data = make_blobs(tmp_path / "blobs.zip")
    options = dict(
        cfg="stylegan2",
        data=data,
        outdir=str(tmp_path / "runs"),
        batch=8,
        aug="noaug",
        kimg=0.016,
        tick_kimg=0.008,
        snap=100,
        cbase=256,
        cmax=16,
        z_dim=16,
        w_dim=16,
        map_depth=2,
        device="cpu",
        grid_rows=1,
        workers=0,
    )
    (tmp_path / "options.json").write_text(json.dumps(options))
    report_path = tmp_path / "report.json"
    result = run_app(
        ["--bundle-check", str(report_path), "--train-options", str(tmp_path / "options.json")],
        {"QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    report = json.loads(report_path.read_text())
    assert report["frozen"] is True
    for op in ("bias_act", "upfirdn2d", "filtered_lrelu"):
        assert report["capabilities"][op]["impl"] == "cpu", report["capabilities"][op]
    assert report["warnings"] == []
    training = report["training"]
    assert "error" not in training, training
    summary = training["summary"]
    assert summary["reason"] == "done" and summary["kimg"] >= 0.016, summary
    assert training["ticks"] >= 1
    assert summary["snapshot_path"] and Path(summary["snapshot_path"]).is_file(), summary
