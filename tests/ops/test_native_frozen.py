"""How ops_cuda._native finds its kernels. In a standalone bundle a frozen app loads the prebuilt
C++ kernels that `make dist` staged and never compiles; without them (or built for another torch)
the ops fall back to the reference with one warning that says why. From source, every build uses
the same (pip) ninja whatever the caller's PATH.

A frozen app is simulated: sys.frozen = True and sys._MEIPASS = a temporary folder holding what
explorer.spec bundles (ops_cuda_prebuilt/ with the .so and manifest.json).
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import pytest
import torch
from torch.utils import cpp_extension

import ops_cuda
from ops_cuda import _native
from ops_cuda._dispatch import Registry, get_registry
from ops_cuda.bias_act import bias_act_ref

NATIVE_OPS = ("bias_act", "upfirdn2d", "filtered_lrelu")


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """A bundle folder with the prebuilt CPU kernels, staged as `make dist` does."""
    reason = _native.missing_tools("cpu")
    if reason and not _native.is_built("cpu"):
        pytest.skip(f"the C++ kernels cannot be built here: {reason}")
    bundle = tmp_path_factory.mktemp("bundle")
    _native.stage_prebuilt("cpu", bundle / _native.PREBUILT_DIR)
    return bundle


@pytest.fixture
def frozen(monkeypatch):
    """Pretend to run inside a bundle; compiling is an error. Returns a function setting _MEIPASS."""

    def no_compile(*args, **kwargs):
        raise AssertionError("a frozen app must never compile the kernels")

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(cpp_extension, "load", no_compile)
    monkeypatch.setattr(_native, "missing_tools", no_compile)
    # Re-import the 'cpu' implementation module so it loads the extension the frozen way.
    monkeypatch.delitem(sys.modules, "ops_cuda._cpu_ops", raising=False)
    monkeypatch.delattr(ops_cuda, "_cpu_ops", raising=False)  # `from ops_cuda import _cpu_ops` reads this
    _native.load_extension.cache_clear()
    get_registry.cache_clear()
    yield lambda path: monkeypatch.setattr(sys, "_MEIPASS", str(path), raising=False)
    # The next user loads the normal (cached) build again, through a registry that never saw the
    # frozen-loaded module (it holds resolved functions).
    _native.load_extension.cache_clear()
    get_registry.cache_clear()


def test_staging_writes_the_built_library_and_a_manifest(staged):
    manifest = json.loads((staged / _native.PREBUILT_DIR / _native.PREBUILT_MANIFEST).read_text())
    assert manifest["torch"] == torch.__version__
    name = manifest["kinds"]["cpu"]["file"]
    assert name == f"{_native.extension_name('cpu')}.so"
    assert (staged / _native.PREBUILT_DIR / name).stat().st_size > 10_000


def test_frozen_app_runs_the_prebuilt_kernels_without_compiling(staged, frozen):
    frozen(staged)
    assert _native.status("cpu") == ""
    module = _native.load_extension("cpu")
    # (__file__ may name the first copy this test process loaded; the spec names the file asked for)
    assert module.__spec__.origin.startswith(str(staged))
    caps = Registry().capabilities("cpu")
    for op in NATIVE_OPS:
        assert caps[op]["impl"] == "cpu" and caps[op]["state"] == "ready", caps[op]
    registry = Registry()
    x = torch.randn(2, 5, 4, 4, generator=torch.Generator().manual_seed(0))
    b = torch.randn(5, generator=torch.Generator().manual_seed(1))
    fn = registry.resolve("bias_act", "auto", "cpu")
    assert fn.__module__ != bias_act_ref.__module__  # the compiled kernel, not the reference
    args = (x, b, 1, "lrelu", 0.2, 2**0.5, None)
    torch.testing.assert_close(fn(*args), bias_act_ref(*args), rtol=1e-5, atol=1e-5)


def test_frozen_app_without_prebuilt_kernels_warns_once_and_uses_ref(tmp_path, frozen):
    frozen(tmp_path)  # a bundle made without them: no ops_cuda_prebuilt/ at all
    reason = _native.status("cpu")
    assert "no prebuilt kernels" in reason and "reference" in reason
    registry = Registry()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = registry.resolve("bias_act", "auto", "cpu")
        again = registry.resolve("bias_act", "cpu", "cpu")
    assert first is bias_act_ref and again is bias_act_ref
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "standalone build" in messages[0], messages
    caps = registry.capabilities("cpu")
    assert caps["bias_act"]["impl"] == "ref" and "standalone build" in caps["bias_act"]["reason"]


def test_prebuilt_kernels_for_another_torch_are_not_loaded(staged, tmp_path, frozen):
    folder = tmp_path / _native.PREBUILT_DIR
    folder.mkdir()
    manifest = json.loads((staged / _native.PREBUILT_DIR / _native.PREBUILT_MANIFEST).read_text())
    name = manifest["kinds"]["cpu"]["file"]
    (folder / name).write_bytes((staged / _native.PREBUILT_DIR / name).read_bytes())
    manifest["torch"] = "0.0.1"
    (folder / _native.PREBUILT_MANIFEST).write_text(json.dumps(manifest))
    frozen(tmp_path)
    with pytest.raises(_native.NativeBuildError, match="built for torch 0.0.1"):
        _native.load_extension("cpu")


def test_a_failed_build_is_recorded_and_explained_by_the_frozen_app(tmp_path, monkeypatch):
    def failing_build(kind):
        raise _native.NativeBuildError("no C++ compiler found ('c++' is not on PATH)")

    monkeypatch.setattr(_native, "load_extension", failing_build)
    dest = tmp_path / _native.PREBUILT_DIR
    with pytest.raises(_native.NativeBuildError):
        _native.stage_prebuilt("cpu", dest)
    path, reason = _native.prebuilt_library("cpu", dest)
    assert path is None
    assert "no C++ compiler found" in reason and "cannot compile" in reason
    assert not list(dest.glob("*.so"))


def test_builds_use_the_pip_ninja_whatever_the_callers_path(monkeypatch, tmp_path):
    # Debian's ninja 1.11 and pip's 1.12+ hash command lines differently: alternating between them
    # rebuilt the extension from scratch at every switch.
    folder = _native._pip_ninja_dir()
    if folder is None:
        pytest.skip("the pip ninja package is not installed")
    seen = []

    def fake_load(**kwargs):
        seen.append(os.environ["PATH"])
        return "module"

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setattr(cpp_extension, "load", fake_load)
    monkeypatch.setattr(_native, "missing_tools", lambda kind: "")
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    _native.load_extension.cache_clear()
    try:
        assert _native.load_extension("cpu") == "module"
    finally:
        _native.load_extension.cache_clear()
    assert seen[0].split(os.pathsep)[0] == folder
    assert os.environ["PATH"] == "/usr/bin:/bin"  # restored after the build
