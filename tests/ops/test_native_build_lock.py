"""A build killed half-way must not make every later build wait forever on its lock file."""

from __future__ import annotations

import os
import time

import pytest

from ops_cuda import _native


def test_old_lock_is_removed_with_a_warning_and_a_fresh_one_is_kept(tmp_path):
    lock = tmp_path / "lock"
    lock.write_text("")
    _native._remove_stale_lock(tmp_path)  # fresh: another process may be building right now
    assert lock.exists()

    old = time.time() - _native.STALE_LOCK_SECONDS - 60
    os.utime(lock, (old, old))
    with pytest.warns(RuntimeWarning, match="interrupted build"):
        _native._remove_stale_lock(tmp_path)
    assert not lock.exists()
    _native._remove_stale_lock(tmp_path)  # no lock: nothing to do
