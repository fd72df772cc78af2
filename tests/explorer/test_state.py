"""ExplorerState, History (undo/redo with merged drags) and session JSON, without Qt."""

import pytest

from explorer.state import EditState, ExplorerState, History, PlaneState, session_from_json, session_to_json


def test_drag_merges_into_one_undo_step_and_undo_redo_restore():
    h = History(ExplorerState(seed=5))
    for v in (0.9, 0.8, 0.7):
        h.commit(ExplorerState(seed=5, psi=v), merge_key="psi")
    h.end_merge()
    h.commit(h.current().with_edit("pc0", strength=1.5))
    assert h.current().psi == 0.7 and h.current().edits["pc0"].strength == 1.5
    assert h.undo() and "pc0" not in h.current().edits
    assert h.undo() and h.current().psi == 1.0  # the whole drag is one step
    assert not h.undo()
    assert h.redo() and h.current().psi == 0.7
    assert h.redo() and h.current().edits["pc0"].strength == 1.5
    assert not h.redo()


def test_commit_of_equal_state_records_nothing_and_new_commit_clears_redo():
    h = History(ExplorerState())
    assert not h.commit(ExplorerState())
    assert not h.can_undo()
    h.commit(ExplorerState(seed=1))
    h.undo()
    assert h.can_redo()
    h.commit(ExplorerState(seed=2))
    assert not h.can_redo()


def test_invalid_state_is_refused_with_a_clear_message():
    h = History(ExplorerState())
    with pytest.raises(ValueError, match="noise mode"):
        h.commit(ExplorerState(noise_mode="loud"))
    with pytest.raises(ValueError, match="seed"):
        h.commit(ExplorerState(seed=-1))
    assert h.current() == ExplorerState()


def test_reset_keeps_locked_edits():
    s = ExplorerState().with_edit("a", strength=2.0).with_edit("b", strength=-1.0, locked=True)
    r = s.reset_edits()
    assert r.edits["a"].strength == 0.0 and r.edits["b"].strength == -1.0
    assert s.edits["a"].strength == 2.0  # the original is untouched


def test_session_json_round_trip():
    s = ExplorerState(
        seed=42,
        space="z",
        psi=0.7,
        noise_mode="none",
        mix_seed=9,
        mix_start=2,
        mix_end=5,
        edits={"anime": EditState(strength=1.25, layer_start=1, layer_end=4, locked=True)},
        plane=PlaneState(seed_b=3, seed_c=4, x=0.25, y=-0.5),
        translate=(0.1, -0.05),
        rotate=33.0,
        blend=0.5,
        blend_resolution=8,
    )
    text = session_to_json(s, "/models/m.safetensors", "ab" * 32)
    back, path, sha = session_from_json(text)
    assert back == s and path == "/models/m.safetensors" and sha == "ab" * 32


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "not a JSON file"),
        ('{"format": "other"}', "not a stylegan-explorer session"),
        ('{"format": "stylegan-explorer-session", "version": 99, "state": {}}', "version 99"),
        ('{"format": "stylegan-explorer-session", "version": 1, "state": {"colour": 1}}', "colour"),
    ],
)
def test_bad_session_files_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        session_from_json(text)
