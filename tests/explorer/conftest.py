"""Shared fixtures of the explorer tests: headless Qt, fail on Qt warnings, no leaked QThreads,
isolated QSettings, tiny 16 px models (one with directions, one SG3-T, one blendable copy)."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QSettings, QThread, QtMsgType, qInstallMessageHandler  # noqa: E402

from tests.support.tiny import OPS, make_plain_generator, make_tiny_generator, save_tiny  # noqa: E402

# Messages the offscreen platform prints for any top-level window; not problems of ours.
BENIGN_QT_MESSAGES = ("This plugin does not support propagateSizeHints()",)


@pytest.fixture(autouse=True)
def fail_on_qt_warnings():
    """Qt warnings, criticals and fatals emitted during a test fail it."""
    messages: list[str] = []

    def handler(mode, context, message):
        if mode in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
            if not any(b in message for b in BENIGN_QT_MESSAGES):
                messages.append(message)

    previous = qInstallMessageHandler(handler)
    yield messages
    qInstallMessageHandler(previous)
    assert not messages, f"Qt warnings during the test: {messages}"


@pytest.fixture(autouse=True)
def no_blocking_message_boxes(monkeypatch):
    """A modal QMessageBox in a headless run would wait forever (e.g. 'training is running, stop?'
    while a failed test tears down): answer every static box with its default and record it.
    Tests that check a box patch it themselves, which takes precedence."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[tuple[str, str]] = []
    for kind in ("question", "warning", "critical", "information"):

        def answer(*args, _kind=kind, **kwargs):
            shown.append((_kind, str(args[2]) if len(args) > 2 else ""))
            return QMessageBox.StandardButton.Yes if _kind == "question" else QMessageBox.StandardButton.Ok

        monkeypatch.setattr(QMessageBox, kind, answer)
    return shown


def running_qthreads() -> list[QThread]:
    out = []
    for obj in gc.get_objects():
        if issubclass(type(obj), QThread):  # type(): no __class__ lookups on lazy proxy objects
            try:
                if obj.isRunning():
                    out.append(obj)
            except RuntimeError:  # the C++ object is gone already
                pass
    return out


@pytest.fixture(autouse=True)
def no_leaked_qthreads(qapp):
    """Every QThread a test starts must be finished when the test (and its fixtures) end."""
    before = set(map(id, running_qthreads()))
    yield
    leaked = [t for t in running_qthreads() if id(t) not in before]
    for t in leaked:  # do not let one leak poison the following tests
        t.wait(5000)
    assert not leaked, f"QThreads still running after the test: {leaked}"


@pytest.fixture(scope="session", autouse=True)
def adopted_tasks_end_before_qt(qapp):
    """A test that fails while training runs leaves its thread to the application (see
    TrainingBridge.shutdown); it must end before Qt is torn down at exit, or the process aborts."""
    yield
    from explorer.tasks import wait_for_adopted_tasks

    wait_for_adopted_tasks(180_000)


@pytest.fixture
def settings(tmp_path):
    """A QSettings in the test's own ini file (never the user's settings)."""
    s = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    yield s
    s.sync()


@pytest.fixture(scope="session")
def explorer_models(tmp_path_factory) -> dict[str, str]:
    """Tiny models: 'sg2' (with an 'anime' attribute and two PCA-like directions), 'sg3' (SG3-T),
    'sg2_tuned' (a slightly changed copy of 'sg2', blendable with it), 'sg2_plain' (no directions),
    'sg3_32' (a 32 px SG3-T, slow enough to show blocking)."""
    import torch

    from gan.edit.directions import Direction, save_directions
    from gan.model_io import save_model

    root = tmp_path_factory.mktemp("explorer_models")
    paths = {
        "sg2": save_tiny(root / "tiny_sg2.safetensors", "stylegan2"),
        "sg3": save_tiny(root / "tiny_sg3t.safetensors", "stylegan3-t"),
        "sg2_plain": save_tiny(root / "tiny_sg2_plain.safetensors", "stylegan2"),
    }
    rng = np.random.RandomState(0)
    directions = []
    for name, kind in (("pc0", "pca"), ("pc1", "pca"), ("anime", "attribute")):
        v = rng.randn(16).astype(np.float32)
        directions.append(Direction(name=name, kind=kind, vector=v / np.linalg.norm(v), scale=1.0))
    save_directions(paths["sg2"], directions)

    G = make_tiny_generator("stylegan2")
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for name, p in G.named_parameters():
            if name.startswith("synthesis.") and name.endswith("weight"):
                p.add_(torch.randn(p.shape, generator=gen) * 0.3 * p.std())
    tuned = root / "tiny_sg2_tuned.safetensors"
    save_model(tuned, G, arch="stylegan2", metadata={"note": "tiny fine-tuned copy"})
    paths["sg2_tuned"] = str(tuned)

    # A slower SG3-T (32 px, 64 channels: a few hundred ms per render on a laptop CPU).
    G = make_plain_generator(
        "stylegan3-t", z_dim=64, w_dim=64, img_resolution=32, channel_base=4096, channel_max=64
    )
    slow = root / "sg3_32.safetensors"
    save_model(slow, G, arch="stylegan3-t", metadata={"note": "slow-ish test model"})
    paths["sg3_32"] = str(slow)

    # Build/load the compiled ops once here, without a test timeout running (a changed C++
    # source is recompiled on first use, which can take a minute on a busy machine).
    from gan.model_io import load_model
    from gan.render import RenderArgs, Renderer

    for key in ("sg2", "sg3"):
        assert Renderer(load_model(paths[key], training_nets=False)).render(RenderArgs(seed=0)).error is None
    return paths


@pytest.fixture
def make_window(qtbot, settings):
    """make_window(model=None, force_sync=True, auto_pca=False) -> MainWindow with the model loaded."""
    from explorer.main_window import MainWindow
    from explorer.render_bridge import RenderBridge

    windows = []

    def make(model: str | None = None, force_sync: bool = True, auto_pca: bool = False):
        bridge = RenderBridge(force_sync=force_sync, device="cpu", ops_impl=OPS)
        window = MainWindow(bridge=bridge, settings=settings)
        window.auto_pca = auto_pca
        bridge.setParent(window)
        qtbot.addWidget(window)
        windows.append(window)
        window.resize(1200, 800)
        if model is not None:
            if force_sync:
                window.load_model(model)
            else:
                with qtbot.waitSignal(bridge.rendered, timeout=60_000):
                    window.load_model(model)
        return window

    yield make
    for window in windows:
        window.close()  # closeEvent stops the bridge threads
        window.bridge.shutdown()
