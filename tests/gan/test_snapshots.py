"""Run folders: snapshots committed as one unit (model, training state, latest.json), resume
verifying the pair, old-layout run folders, finished runs, full disks and Ctrl-C."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from gan.errors import UserError
from gan.model_io import load_model, save_model
from gan.train import snapshot as snap
from gan.train.loop import run
from tests.support.tiny import make_blobs
from tests.support.tiny import tiny_train_config as config

ROOT = Path(__file__).resolve().parents[2]

GOOD = {
    "snapshot": "network-snapshot-000000.safetensors",
    "state": "training-state-000000.pt",
    "cur_nimg": 64,
    "tick": 1,
}


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
    latest = snap.read_latest(str(tmp_path), verify=False)  # the files are not there: parsing only
    assert (latest.snapshot, latest.state, latest.cur_nimg, latest.tick) == tuple(GOOD.values())


# --- snapshots as one unit, written by the training loop ----------------------------------------


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> str:
    return make_blobs(tmp_path_factory.mktemp("data") / "blobs.zip")


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def listing(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


@pytest.mark.usefixtures("one_thread")
def test_sub_kimg_snapshots_get_unique_names_and_latest_names_the_pair(blobs, tmp_path):
    ticks = []
    summary = run(config(blobs, tmp_path, kimg=0.032, tick_kimg=0.008, snap=1), on_tick=ticks.append)
    run_dir = Path(summary.run_dir)
    snapshots = [os.path.basename(t.snapshot_path) for t in ticks]
    assert snapshots == [f"network-snapshot-000000.0{n:02d}.safetensors" for n in (8, 16, 24, 32)]
    assert all((run_dir / name).exists() for name in snapshots)  # none overwrote another
    assert sorted(p.name for p in run_dir.glob("training-state-*")) == [
        "training-state-000000.024.pt",
        "training-state-000000.032.pt",
    ]
    latest = json.loads((run_dir / snap.LATEST_FILE).read_text())
    assert latest["snapshot"] == snapshots[-1] and latest["cur_nimg"] == 32
    assert latest["snapshot_sha256"] == sha(run_dir / latest["snapshot"])
    assert latest["state_sha256"] == sha(run_dir / latest["state"])
    training = load_model(run_dir / latest["snapshot"]).metadata["training"]
    assert training["state_file"] == latest["state"] and training["state_sha256"] == latest["state_sha256"]
    assert snap.snapshot_tag(145_000) == "000145" and snap.snapshot_tag(145_712) == "000145.712"


def _tiny_run(blobs, outdir, **kw):
    return run(config(blobs, outdir, **dict(dict(kimg=0.016, tick_kimg=0.008, snap=1), **kw)))


@pytest.mark.usefixtures("one_thread")
def test_resume_refuses_a_state_that_is_not_the_recorded_one(blobs, tmp_path):
    first = _tiny_run(blobs, tmp_path)
    run_dir = Path(first.run_dir)
    latest = snap.read_latest(str(run_dir))
    # The state of another moment (the 8-image snapshot's) put where the newest one belongs.
    older = run_dir / "training-state-000000.008.pt"
    shutil.copy(older, run_dir / latest.state)
    resume = config(blobs, tmp_path, resume=str(run_dir), kimg=0.032, tick_kimg=0.008, snap=1)
    with pytest.raises(UserError, match=r"state .* is not the file latest\.json recorded.*--finetune"):
        run(resume)
    # Without latest.json's digests (an old-layout latest.json) the model's own record catches it.
    (run_dir / snap.LATEST_FILE).write_text(
        json.dumps({k: getattr(latest, k) for k in ("snapshot", "state", "cur_nimg", "tick")})
    )
    with pytest.raises(UserError, match=r"not the one written with .*--resume .* --finetune"):
        run(resume)


def to_old_layout(run_dir: Path) -> None:
    """Rewrite a run folder as the code before atomic snapshot units left it: names by whole
    kimg, latest.json without digests, no state digest in the model's metadata."""
    latest = snap.read_latest(str(run_dir))
    for p in list(run_dir.glob("network-snapshot-*")) + list(run_dir.glob("training-state-*")):
        if p.name not in (latest.snapshot, latest.state):
            p.unlink()
    model = load_model(run_dir / latest.snapshot)
    meta = dict(model.metadata)
    meta["training"] = {k: v for k, v in meta["training"].items() if k != "state_sha256"}
    meta["training"]["state_file"] = "training-state-000000.pt"
    (run_dir / latest.snapshot).unlink()
    save_model(
        run_dir / "network-snapshot-000000.safetensors",
        model.G,
        D=model.D,
        G_train=model.G_train,
        metadata=meta,
    )
    (run_dir / latest.state).rename(run_dir / "training-state-000000.pt")
    (run_dir / snap.LATEST_FILE).write_text(
        json.dumps(
            {
                "snapshot": "network-snapshot-000000.safetensors",
                "state": "training-state-000000.pt",
                "cur_nimg": latest.cur_nimg,
                "tick": latest.tick,
            }
        )
    )


@pytest.mark.usefixtures("one_thread")
def test_old_layout_run_resumes_and_continues_in_the_new_layout(blobs, tmp_path):
    kw = dict(seed=3, tick_kimg=0.008, snap=1, aug="fixed", p=0.2)
    ref = run(config(blobs, tmp_path / "ref", kimg=0.032, **kw))
    half = run(config(blobs, tmp_path / "old", kimg=0.016, **kw))
    run_dir = Path(half.run_dir)
    to_old_layout(run_dir)
    old_model = (run_dir / "network-snapshot-000000.safetensors").read_bytes()

    resumed = run(config(blobs, tmp_path / "old", kimg=0.032, resume=str(run_dir), **kw))
    assert resumed.reason == "done" and resumed.run_dir == str(run_dir)
    latest = json.loads((run_dir / snap.LATEST_FILE).read_text())
    assert latest["snapshot"] == "network-snapshot-000000.032.safetensors"
    assert latest["state_sha256"] == sha(run_dir / latest["state"])
    assert (run_dir / "network-snapshot-000000.safetensors").read_bytes() == old_model  # kept as it was
    a = load_model(ref.snapshot_path).G_train.state_dict()
    b = load_model(resumed.snapshot_path).G_train.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # continued exactly


@pytest.mark.usefixtures("one_thread")
def test_old_layout_state_overwritten_by_a_later_unfinished_snapshot_is_refused(blobs, tmp_path):
    # The case: the old code wrote training-state-000000.pt of a later moment, then died
    # before the model and latest.json of that moment were written.
    first = _tiny_run(blobs, tmp_path, kimg=0.024)
    run_dir = Path(first.run_dir)
    later_state = (run_dir / "training-state-000000.024.pt").read_bytes()
    for p in run_dir.glob("network-snapshot-000000.024*"):
        p.unlink()
    (run_dir / snap.LATEST_FILE).write_text(
        json.dumps(
            {
                "snapshot": "network-snapshot-000000.016.safetensors",
                "state": "training-state-000000.016.pt",
                "cur_nimg": 16,
                "tick": 2,
            }
        )
    )
    to_old_layout(run_dir)
    (run_dir / "training-state-000000.pt").write_bytes(later_state)
    wanted = r"state .* is from 0\.024 kimg but the snapshot .* is from 0\.016 kimg.*--finetune"
    with pytest.raises(UserError, match=wanted):
        run(config(blobs, tmp_path, kimg=0.032, tick_kimg=0.008, snap=1, resume=str(run_dir)))


@pytest.mark.usefixtures("one_thread")
def test_resuming_a_finished_run_changes_nothing_unless_kimg_is_raised(blobs, tmp_path):
    first = _tiny_run(blobs, tmp_path)
    run_dir = first.run_dir
    before = listing(run_dir)
    again = run(config(blobs, tmp_path, kimg=0.016, tick_kimg=0.008, snap=1, resume=run_dir))
    assert again.already_done and again.reason == "done" and again.kimg == pytest.approx(0.016)
    assert "already finished" in again.message and "raise --kimg" in again.message
    assert listing(run_dir) == before
    more = run(config(blobs, tmp_path, kimg=0.024, tick_kimg=0.008, snap=1, resume=run_dir))
    assert not more.already_done and more.kimg == pytest.approx(0.024)


def test_cli_resume_of_a_finished_run_says_so(blobs, tmp_path, capsys):
    from gan.cli import main

    first = _tiny_run(blobs, tmp_path)
    before = listing(first.run_dir)
    assert main(["train", "--resume", first.run_dir, "--quiet"]) == 0
    assert "already finished" in capsys.readouterr().out
    assert listing(first.run_dir) == before


@pytest.mark.usefixtures("one_thread")
def test_a_stopped_fine_tune_resumed_from_its_folder_ends_as_if_never_stopped(blobs, tmp_path):
    # A fine-tune run records finetune=True. Resuming its folder must continue it in place, with
    # the fine-tuning defaults (no EMA ramp-up, ADA speed), not start a second fine-tune from its
    # newest snapshot, nor continue it as an ordinary run (other EMA): the weights equal a run
    # that was never stopped.
    from gan.cli import main

    base = _tiny_run(blobs, tmp_path / "base")
    tune = dict(resume=base.snapshot_path, finetune=True, aug="ada", ada_kimg=0.01)
    whole = _tiny_run(blobs, tmp_path / "whole", **tune, kimg=0.032)
    part = _tiny_run(blobs, tmp_path / "part", **tune, kimg=0.016)
    assert main(["train", "--resume", part.run_dir, "--kimg", "0.032", "--quiet"]) == 0
    assert os.listdir(tmp_path / "part") == [os.path.basename(part.run_dir)]  # no new run folder
    latest = snap.read_latest(part.run_dir)
    assert latest.cur_nimg == 32
    resumed = load_model(os.path.join(part.run_dir, latest.snapshot))
    assert resumed.metadata["training"]["config"]["finetune"]  # still recorded as a fine-tune
    uninterrupted = load_model(whole.snapshot_path)
    for a, b in (
        (resumed.G, uninterrupted.G),
        (resumed.G_train, uninterrupted.G_train),
        (resumed.D, uninterrupted.D),
    ):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x, y), name


@pytest.mark.usefixtures("one_thread")
def test_disk_full_during_a_snapshot_keeps_the_previous_one(blobs, tmp_path, monkeypatch):
    first = _tiny_run(blobs, tmp_path)
    run_dir = first.run_dir
    before = listing(run_dir)

    def full(fd, view):
        os.write(fd, bytes(view[: len(view) // 3]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(snap, "_write_all", full)
    with pytest.raises(UserError, match=r"disk full.*previous snapshot stays the newest"):
        run(config(blobs, tmp_path, kimg=0.024, tick_kimg=0.008, snap=1, resume=run_dir))
    after = listing(run_dir)
    assert after[snap.LATEST_FILE] == before[snap.LATEST_FILE]
    assert not [n for n in after if n.startswith(".")]  # no temporary file left
    snap.read_latest(run_dir)  # still a complete, verified pair


def test_second_ctrl_c_waits_for_the_snapshot_and_the_third_aborts(capsys):
    from gan.commands.train import _CtrlC

    stopper = _CtrlC()
    assert not stopper.requested()
    stopper._handle(2, None)
    assert stopper.requested() and "writing a snapshot" in capsys.readouterr().err
    stopper._handle(2, None)  # must not raise: the snapshot is being written
    assert "waiting for the snapshot" in capsys.readouterr().err
    with pytest.raises(KeyboardInterrupt):
        stopper._handle(2, None)


def test_stale_temporary_files_are_removed_on_resume(tmp_path):
    names = [
        ".network-snapshot-000000.016.safetensors.0123abcd.tmp",
        ".training-state-000001.pt.deadbeef.tmp",
        ".latest.json.00ff00ff.tmp",
    ]
    keep = ["network-snapshot-000000.safetensors", ".hidden-user-file", "notes.tmp"]
    for n in names + keep:
        (tmp_path / n).write_bytes(b"x")
    assert sorted(snap.remove_stale_temps(str(tmp_path))) == sorted(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


SHIPPED_RUN = ROOT / "resources" / "models" / "training" / "toon64-sg3t-small"


@pytest.mark.usefixtures("one_thread")
def test_the_shipped_run_folder_resumes(tmp_path):
    # resources/models/training/toon64-sg3t-small: the default model's run as committed (options of
    # its last resume included); one more step must continue it and leave its files as they were.
    # (Until 145.7 kimg it was in the old layout; the old layout is covered by the tests above.)
    from gan.data.toon import ToonConfig, make_toon_dataset

    run_dir = tmp_path / "toon64-sg3t-small"
    shutil.copytree(SHIPPED_RUN, run_dir)
    old = json.loads((run_dir / snap.LATEST_FILE).read_text())
    data = tmp_path / "toon64.zip"
    make_toon_dataset(ToonConfig(out=str(data), count=16, resolution=64))
    before = {name: (run_dir / name).read_bytes() for name in (old["snapshot"], old["state"])}

    from gan.train.config import TrainConfig, load_run_config

    options = load_run_config(run_dir).to_dict()
    classifier = ROOT / "resources" / "classifier" / "toon_classifier_refine.safetensors"
    options.update(
        data=str(data),
        resume=str(run_dir),
        balance_classifier=str(classifier),
        device="cpu",
        kimg=(old["cur_nimg"] + 8) / 1000,
        grid_rows=1,
    )  # one step of 8 images
    summary = run(TrainConfig.from_dict(options))
    assert summary.reason == "done" and summary.kimg == pytest.approx((old["cur_nimg"] + 8) / 1000)
    latest = json.loads((run_dir / snap.LATEST_FILE).read_text())
    n = old["cur_nimg"] + 8
    assert latest["snapshot"] == f"network-snapshot-{n // 1000:06d}.{n % 1000:03d}.safetensors"
    assert latest["cur_nimg"] == n
    assert latest["snapshot_sha256"] == sha(run_dir / latest["snapshot"])
    assert all((run_dir / name).read_bytes() == data for name, data in before.items())  # old pair kept
