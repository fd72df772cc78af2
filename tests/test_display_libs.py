"""`make run`'s display check never runs apt-get unasked: it prints the command and installs only
with INSTALL_DISPLAY_LIBS=1 or a yes on a terminal. apt-get and dpkg are fakes here."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ensure_display_libs.sh"


@pytest.fixture
def fake_tools(tmp_path):
    """dpkg says nothing is installed; apt-get and sudo record their calls in calls.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    (bin_dir / "dpkg").write_text("#!/bin/sh\nexit 1\n")
    for tool in ("apt-get", "sudo"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", DISPLAY=":0")
    return env, log


def run(env, **extra):
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env=dict(env, **extra),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_a_terminal_it_only_prints_the_command(fake_tools):
    env, log = fake_tools
    r = run(env)
    assert r.returncode == 1 and not log.exists()
    assert "apt-get install -y libxcb-icccm4" in r.stderr and "INSTALL_DISPLAY_LIBS=1" in r.stderr


def test_opt_in_installs(fake_tools):
    env, log = fake_tools
    r = run(env, INSTALL_DISPLAY_LIBS="1")
    assert r.returncode == 0, r.stderr
    calls = log.read_text()
    assert "apt-get update" in calls and "libxcb-keysyms1" in calls


def test_no_display_and_headless_need_nothing(fake_tools):
    env, log = fake_tools
    env = {k: v for k, v in env.items() if k != "DISPLAY"}
    assert run(env).returncode == 0
    assert run(dict(env, DISPLAY=":0"), QT_QPA_PLATFORM="offscreen").returncode == 0
    assert not log.exists()


@pytest.mark.parametrize("answer, installed", [("n", False), ("y", True)])
def test_on_a_terminal_it_asks_first(fake_tools, answer, installed):
    env, log = fake_tools
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        ["bash", str(SCRIPT)], env=env, stdin=follower, stdout=follower, stderr=follower, close_fds=True
    )
    os.close(follower)
    seen = b""
    while b"[y/N]" not in seen:
        chunk = os.read(leader, 1024)
        assert chunk, seen
        seen += chunk
    os.write(leader, answer.encode() + b"\n")
    assert proc.wait(timeout=60) == (0 if installed else 1)
    os.close(leader)
    assert log.exists() == installed
