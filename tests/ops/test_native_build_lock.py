"""A build killed half-way must never make a later build wait on its lock file: builders hold an
flock (released by the kernel when a process dies), so a lock left by a dead process is removed at
once, while a live builder is recognised, named and waited for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from ops_cuda import _native

pytestmark = pytest.mark.skipif(_native.fcntl is None, reason="flock is POSIX only")

ROOT = Path(__file__).resolve().parents[2]


def _ended() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def plant_stale_locks(folder: Path) -> int:
    """What quitting the app during its first-start build left behind: torch's lock file (fresh)
    and our builder lock naming the dead builder. Returns that pid."""
    pid = _ended()
    (folder / _native.TORCH_LOCK).write_text("")
    (folder / _native.BUILDER_LOCK).write_text(f"{pid}\n")
    return pid


HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"{os.getpid()}\\n".encode())
    print("holding", flush=True)
    sys.stdin.read()  # until the test closes stdin: then exit without cleaning up, like a crash
    """
)


def test_lock_of_a_dead_builder_is_removed_at_once(tmp_path):
    pid = plant_stale_locks(tmp_path)
    with pytest.warns(RuntimeWarning, match=f"interrupted build \\(pid {pid}, no longer running\\)"):
        with _native.build_lock(tmp_path, on_wait=lambda p: pytest.fail("waited on a dead process")):
            assert not (tmp_path / _native.TORCH_LOCK).exists()
            assert (tmp_path / _native.BUILDER_LOCK).read_text().split()[0] == str(os.getpid())
    # No lock left over: the next build does not warn.
    with _native.build_lock(tmp_path):
        pass


def test_live_builder_is_named_and_waited_for_until_it_dies(tmp_path, monkeypatch, recwarn):
    monkeypatch.setattr(_native, "build_dir", lambda kind: tmp_path)
    monkeypatch.setattr(_native, "is_built", lambda kind: False)
    monkeypatch.setattr(_native, "missing_tools", lambda kind: "")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / _native.BUILDER_LOCK)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        (tmp_path / _native.TORCH_LOCK).write_text("")  # the live build's own torch lock
        assert _native.builder_pid("cpu") == holder.pid
        assert f"process {holder.pid} is building them now" in _native.status("cpu")
        assert (tmp_path / _native.TORCH_LOCK).exists()  # a live build's lock is never touched

        waited: list = []
        waiting, entered = threading.Event(), threading.Event()

        def on_wait(pid) -> None:
            waited.append(pid)
            waiting.set()

        def build() -> None:
            with _native.build_lock(tmp_path, on_wait=on_wait):
                entered.set()

        thread = threading.Thread(target=build)
        thread.start()
        # Only once the build waits (a busy machine may start the thread late) does the holder die
        # half-way (its torch lock stays): the waiting build takes over.
        assert waiting.wait(timeout=120)
        holder.stdin.close()
        holder.wait()
        thread.join(timeout=120)
        assert entered.is_set() and waited == [holder.pid]
    finally:
        if holder.poll() is None:
            holder.kill()
    assert not (tmp_path / _native.TORCH_LOCK).exists()
    assert _native.builder_pid("cpu") is None
    assert any("interrupted build" in str(w.message) for w in recwarn)


@pytest.mark.skipif(bool(_native.missing_tools("cpu")), reason="no C++ toolchain to build the kernels")
def test_start_with_a_planted_stale_lock_loads_the_kernels(tmp_path):
    """The reported hang: a lock from a dead pid in the build folder of an already built
    extension. torch alone waits on such a lock forever; a new process must load the kernels."""
    _native.load_extension("cpu")  # built (or loaded from the cache) for the copy below
    root = tmp_path / "torch_extensions"
    folder = root / _native.extension_name("cpu")
    shutil.copytree(_native.build_dir("cpu"), folder)  # keeps mtimes: ninja finds it up to date
    for name in (_native.TORCH_LOCK, _native.BUILDER_LOCK):
        (folder / name).unlink(missing_ok=True)
    pid = plant_stale_locks(folder)
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(root))
    code = "from ops_cuda import _native; _native.load_extension('cpu'); print('loaded')"
    # The timeout only turns a hang into a failure; a load from the cache takes seconds.
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "loaded"
    assert f"interrupted build (pid {pid}, no longer running)" in proc.stderr
    assert not (folder / _native.TORCH_LOCK).exists()
