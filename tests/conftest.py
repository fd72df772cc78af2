"""Fixtures every test folder may use."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Torch on one thread for this test: many small ops on a busy 2-core machine mostly wait for
    each other's time slice with two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
