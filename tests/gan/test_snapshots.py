"""Run folders: latest.json and the snapshot pair it names."""

from __future__ import annotations

import json

import pytest

from gan.errors import UserError
from gan.train import snapshot as snap

GOOD = {"snapshot": "network-snapshot-000000.safetensors", "state": "training-state-000000.pt",
        "cur_nimg": 64, "tick": 1}  # fmt: skip


@pytest.mark.parametrize(
    "change,message",
    [
        ({"cur_nimg": "64"}, r"'cur_nimg' must be a whole number of at least 0, not '64'"),
        ({"tick": -1}, r"'tick' must be a whole number"),
        ({"tick": True}, r"'tick' must be a whole number"),
        ({"snapshot": None}, r"'snapshot' must be a file name in the run folder, not None"),
        ({"state": "../../elsewhere.pt"}, r"'state' must be a file name in the run folder"),
        ({"snapshot": ["x"] * 1000}, r"not \['x', .*\.\.\.\)"),
    ],
)
def test_latest_json_with_wrong_types_is_a_clear_error(tmp_path, change, message):
    (tmp_path / snap.LATEST_FILE).write_text(json.dumps({**GOOD, **change}))
    with pytest.raises(UserError, match=message + r".*--resume FILE"):
        snap.read_latest(str(tmp_path))


@pytest.mark.parametrize("text", ["[1, 2]", "null", "[" * 5000 + "]" * 5000, "{"])
def test_latest_json_that_is_no_object_is_a_clear_error(tmp_path, text):
    (tmp_path / snap.LATEST_FILE).write_text(text)
    with pytest.raises(UserError, match="is damaged"):
        snap.read_latest(str(tmp_path))


def test_latest_json_of_the_old_layout_reads(tmp_path):
    (tmp_path / snap.LATEST_FILE).write_text(json.dumps(GOOD))
    latest = snap.read_latest(str(tmp_path))
    assert (latest.snapshot, latest.state, latest.cur_nimg, latest.tick) == tuple(GOOD.values())
