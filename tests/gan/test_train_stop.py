"""Stop acts between the phases of a training step (G, G regularisation, D, D regularisation),
not after the whole step: a stop asked for during a slow phase runs no further phase. The part-done
step is snapshotted, and a resumed run finishes it to exactly the weights of an uninterrupted run."""

from __future__ import annotations

import os

import pytest
import torch

from gan.model_io import load_model
from gan.train import loss as loss_mod
from gan.train import snapshot as snap
from gan.train.loop import run
from tests.support.tiny import make_blobs
from tests.support.tiny import tiny_train_config as config

pytestmark = pytest.mark.usefixtures("one_thread")
PHASES = {"g_main": "Gmain", "g_reg": "Greg", "d_main": "Dmain", "d_reg": "Dreg"}


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> str:
    return make_blobs(tmp_path_factory.mktemp("data") / "blobs.zip")


class SlowPhase:
    """Records the phases the loss runs; the `at`-th run of phase `slow` stands for a long phase
    during which the user presses Stop (the request is raised while it runs)."""

    def __init__(self, monkeypatch, slow: str, at: int):
        self.calls: list[str] = []
        self.stop_requested_after = None  # len(calls) when Stop was pressed
        self.slow, self.at = slow, at
        for method, name in PHASES.items():
            monkeypatch.setattr(
                loss_mod.StyleGANLoss, method, self._wrap(getattr(loss_mod.StyleGANLoss, method), name)
            )

    def _wrap(self, original, name):
        def phase(loss, *args, **kwargs):
            self.calls.append(name)
            out = original(loss, *args, **kwargs)
            if name == self.slow and self.calls.count(name) == self.at and self.stop_requested_after is None:
                self.stop_requested_after = len(self.calls)  # Stop pressed while this phase ran
            return out

        return phase

    def should_stop(self) -> bool:
        return self.stop_requested_after is not None


@pytest.mark.parametrize("slow,at,done", [("Gmain", 3, 1), ("Greg", 2, 2), ("Dmain", 1, 3)])
def test_stop_during_a_slow_phase_runs_no_further_phase(blobs, tmp_path, monkeypatch, slow, at, done):
    phases = SlowPhase(monkeypatch, slow, at)
    summary = run(config(blobs, tmp_path, kimg=1, tick_kimg=0.5), should_stop=phases.should_stop)
    assert summary.stopped and summary.reason == "stopped"
    assert len(phases.calls) == phases.stop_requested_after, phases.calls  # nothing ran after Stop
    name = os.path.basename(summary.snapshot_path)
    latest = snap.read_latest(summary.run_dir)
    state = snap.load_state(os.path.join(summary.run_dir, latest.state))
    assert state["phases_done"] == done and name.endswith(f"-phase{done}.safetensors"), name
    assert load_model(summary.snapshot_path).metadata["training"]["phases_done"] == done


def _weights(path) -> dict[str, torch.Tensor]:
    m = load_model(path)
    nets = {"G_ema": m.G, "G": m.G_train, "D": m.D}
    return {f"{k}.{n}": t for k, net in nets.items() for n, t in net.state_dict().items()}


@pytest.mark.parametrize("slow,at", [("Greg", 2), ("Dmain", 1), ("Gmain", 3)])
def test_resume_finishes_a_part_done_step_exactly(blobs, tmp_path, monkeypatch, slow, at):
    kw = dict(seed=2, kimg=0.048, tick_kimg=0.016, snap=1, aug="fixed", p=0.3)
    ref = run(config(blobs, tmp_path / "ref", **kw))
    phases = SlowPhase(monkeypatch, slow, at)
    cut = run(config(blobs, tmp_path / "cut", **kw), should_stop=phases.should_stop)
    assert cut.stopped and "-phase" in cut.snapshot_path
    monkeypatch.undo()
    ticks = []
    resumed = run(config(blobs, tmp_path / "cut", **dict(kw, resume=cut.run_dir)), on_tick=ticks.append)
    assert resumed.reason == "done" and resumed.kimg == pytest.approx(0.048)
    a, b = _weights(ref.snapshot_path), _weights(resumed.snapshot_path)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]


def test_a_finished_run_is_not_one_with_a_part_done_step(blobs, tmp_path, monkeypatch):
    # Stopped during the last step: the run is not finished, resuming completes that step.
    phases = SlowPhase(monkeypatch, "Gmain", 2)  # the second (last) step
    cut = run(config(blobs, tmp_path, kimg=0.016, tick_kimg=0.016), should_stop=phases.should_stop)
    assert cut.stopped and cut.kimg == pytest.approx(0.008)
    monkeypatch.undo()
    resumed = run(config(blobs, tmp_path, kimg=0.016, tick_kimg=0.016, resume=cut.run_dir))
    assert not resumed.already_done and resumed.kimg == pytest.approx(0.016)
