"""A crash at every step of writing a snapshot (driven by commit_snapshot's fault hook, not by
timing): resuming afterwards continues from a consistent pair and ends with exactly the weights
of an uninterrupted run; nothing partial is ever taken as valid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan.model_io import load_model
from gan.train import snapshot as snap
from gan.train.distributed import DistInfo
from gan.train.loop import _Trainer, run
from gan.train.prepare import prepare
from tests.support.tiny import make_blobs
from tests.support.tiny import tiny_train_config as config

ROOT = Path(__file__).resolve().parents[2]
KW = dict(seed=5, tick_kimg=0.008, snap=1)
pytestmark = pytest.mark.usefixtures("one_thread")


class SimulatedCrash(BaseException):
    """Raised by the hook: like a kill, it skips every `except Exception` cleanup."""


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> str:
    return make_blobs(tmp_path_factory.mktemp("data") / "blobs.zip")


@pytest.fixture(scope="module")
def reference(blobs, tmp_path_factory) -> dict[str, torch.Tensor]:
    """Weights (G_ema, G, D) after 32 images without interruption (on one thread like the tests:
    the thread count changes the order of float sums)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = run(config(blobs, tmp_path_factory.mktemp("ref"), kimg=0.032, **KW))
    finally:
        torch.set_num_threads(before)
    return weights(summary.snapshot_path)


def weights(path) -> dict[str, torch.Tensor]:
    m = load_model(path)
    nets = {"G_ema": m.G, "G": m.G_train, "D": m.D}
    return {f"{k}.{n}": t for k, net in nets.items() for n, t in net.state_dict().items()}


def crash_at(point: str):
    def fault(where: str) -> None:
        if where == point:
            raise SimulatedCrash(where)

    return fault


@pytest.mark.parametrize("point", snap.FAULT_POINTS)
def test_crash_at_each_point_of_a_snapshot_then_resume(blobs, tmp_path, reference, point):
    first = run(config(blobs, tmp_path, kimg=0.016, **KW))  # snapshots at 8 and 16 images
    run_dir = Path(first.run_dir)

    # Continue to 24 images and crash while its snapshot is written.
    trainer = _Trainer(
        prepare(config(blobs, tmp_path, kimg=0.024, resume=str(run_dir), **KW)),
        DistInfo(),
        snapshot_fault=crash_at(point),
    )
    with pytest.raises(SimulatedCrash):
        trainer.train(None, None)
    del trainer

    latest = snap.read_latest(str(run_dir))  # complete and verified, whichever pair it names
    committed = point.startswith("latest:renamed") or point == "pruning"
    assert latest.cur_nimg == (24 if committed else 16), point
    leftovers = [p.name for p in run_dir.iterdir() if p.name.startswith(".")]
    assert bool(leftovers) == point.endswith((":partial", ":written")), leftovers

    # Resume (a new process would do the same) and finish: the very weights of the uninterrupted run.
    resumed = run(config(blobs, tmp_path, kimg=0.032, resume=str(run_dir), **KW))
    assert resumed.reason == "done" and resumed.kimg == pytest.approx(0.032)
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]  # stale pieces removed
    got = weights(resumed.snapshot_path)
    assert got.keys() == reference.keys()
    assert all(torch.equal(got[k], reference[k]) for k in got), point
    ticks = [r["tick"] for r in map(json.loads, (run_dir / "stats.jsonl").read_text().splitlines())]
    assert ticks == sorted(set(ticks))  # no tick twice


_KILLED_RUN = """
import json, os, signal, sys
sys.path.insert(0, {tests!r})
from gan.train.config import TrainConfig
from gan.train.distributed import DistInfo
from gan.train.loop import _Trainer
from gan.train.prepare import prepare

def fault(where):
    if where == {point!r}:
        os.kill(os.getpid(), signal.SIGKILL)  # a real kill -9: no cleanup of any kind

trainer = _Trainer(prepare(TrainConfig.from_dict(json.loads({options!r}))), DistInfo(), snapshot_fault=fault)
trainer.train(None, None)
"""


@pytest.mark.parametrize("point", ["model:partial", "latest:written"])
def test_kill_9_in_a_child_process_during_a_snapshot(blobs, tmp_path, reference, point):
    first = run(config(blobs, tmp_path, kimg=0.016, **KW))
    run_dir = Path(first.run_dir)
    options = config(blobs, tmp_path, kimg=0.024, resume=str(run_dir), **KW).to_dict()
    script = _KILLED_RUN.format(tests=str(ROOT / "tests" / "gan"), point=point, options=json.dumps(options))
    env = dict(os.environ, OMP_NUM_THREADS="1")  # one thread, as the reference
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]  # the kill left a piece
    assert snap.read_latest(str(run_dir)).cur_nimg == 16  # the previous pair, complete

    resumed = run(config(blobs, tmp_path, kimg=0.032, resume=str(run_dir), **KW))
    got = weights(resumed.snapshot_path)
    assert all(torch.equal(got[k], reference[k]) for k in reference)
