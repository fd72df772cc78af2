"""The seed a fresh explorer start opens on, stored in our model files."""

from __future__ import annotations

import pytest

from gan.errors import UserError
from gan.model_defaults import default_seed, store_default_seed
from gan.model_io import load_model


def test_default_seed_is_stored_with_the_weights_unchanged(tmp_path, tiny_model_file):
    path = tiny_model_file(tmp_path / "m.safetensors", "stylegan2")
    before = load_model(path)
    assert default_seed(before.metadata) is None
    store_default_seed(path, 11)
    after = load_model(path)
    assert default_seed(after.metadata) == 11
    for (name, a), b in zip(before.G.state_dict().items(), after.G.state_dict().values()):
        assert a.equal(b), name
    with pytest.raises(UserError, match="non-negative integer"):
        store_default_seed(path, -1)
    (tmp_path / "m.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(UserError, match="not in our format"):
        store_default_seed(tmp_path / "m.pkl", 3)


def test_bad_stored_values_are_ignored():
    assert default_seed({"explorer": {"seed": 7}}) == 7
    for bad in ({}, {"explorer": 3}, {"explorer": {"seed": "7"}}, {"explorer": {"seed": True}}, None):
        assert default_seed(bad) is None
