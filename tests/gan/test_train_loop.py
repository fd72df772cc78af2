"""The training loop on a tiny generated data set (16 px coloured discs, tiny StyleGAN2 networks).

Losses fall, stop + resume continues bit-for-bit, NaN stops the run, snapshots load, fine-tuning
and the StyleGAN3-R discriminator blur work. One thread keeps the timings stable on shared cores.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from gan.model_io import load_model
from gan.train import loss as loss_mod
from gan.train import snapshot as snap
from gan.train.loop import run
from gan.train.stats import read_stats
from tests.support.tiny import make_blobs
from tests.support.tiny import tiny_train_config as config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> str:
    return make_blobs(tmp_path_factory.mktemp("data") / "blobs.zip")


def test_tiny_run_lowers_generator_and_discriminator_losses(blobs, tmp_path):
    # Seed 4 gives a discriminator whose initial scores are negative for everything, so both
    # players start badly (G loss ~2, D loss ~1.7); training moves both towards the balanced
    # regime (G ~0.9, D ~1.1). gamma 1 and a G learning rate of 0.01 let G keep up with D.
    ticks = []
    summary = run(
        config(blobs, tmp_path, seed=4, kimg=0.64, tick_kimg=0.08, snap=4, gamma=1.0, glr=0.01),
        on_tick=ticks.append,
    )
    assert summary.reason == "done" and not summary.stopped
    g = [t.stats["Loss/G/loss"] for t in ticks]
    d = [t.stats["Loss/D/loss"] for t in ticks]
    print("G loss per tick", np.round(g, 3).tolist())
    print("D loss per tick", np.round(d, 3).tolist())
    assert np.mean(g[-3:]) < np.mean(g[:2]) - 0.2
    assert np.mean(d[-3:]) < np.mean(d[:2]) - 0.2

    # Run folder contents.
    run_dir = summary.run_dir
    assert os.path.basename(run_dir) == "00000-stylegan2-blobs"
    options = json.load(open(os.path.join(run_dir, "training_options.json")))
    assert options["config"]["seed"] == 4 and options["g_kwargs"]["mapping_kwargs"]["num_layers"] == 2
    records = read_stats(os.path.join(run_dir, "stats.jsonl"))
    assert [r["tick"] for r in records] == [t.tick for t in ticks] == list(range(len(ticks)))
    assert all("Loss/G/loss" in r and "Timing/sec_per_kimg" in r for r in records)
    assert "Loss/r1_penalty" in ticks[0].stats and "Loss/pl_penalty" in ticks[0].stats
    assert os.path.exists(os.path.join(run_dir, "reals.png"))
    grids = [t.sample_grid_path for t in ticks if t.sample_grid_path]
    assert grids and all(os.path.exists(p) for p in grids)
    assert ticks[-1].done and ticks[-1].snapshot_path == summary.snapshot_path
    model = load_model(summary.snapshot_path)
    assert model.G_train is not None and model.D is not None
    training = model.metadata["training"]
    assert training["cur_nimg"] == 640 and os.path.exists(os.path.join(run_dir, training["state_file"]))


def _weights(path: str) -> dict[str, torch.Tensor]:
    m = load_model(path)
    nets = {"G_ema": m.G, "G": m.G_train, "D": m.D}
    return {f"{k}.{n}": t for k, net in nets.items() for n, t in net.state_dict().items()}


def test_stop_and_resume_continue_bit_for_bit(blobs, tmp_path):
    kw = dict(seed=1, kimg=0.16, tick_kimg=0.064, snap=100, aug="fixed", p=0.3)
    # Reference: 20 steps without interruption.
    ref = run(config(blobs, tmp_path / "ref", **kw))
    assert ref.kimg == pytest.approx(0.16)

    # Stop after 9 steps (mid-tick, odd, so the lazy-regularisation phases are mid-cycle) ...
    from gan.train.distributed import DistInfo
    from gan.train.loop import _Trainer
    from gan.train.prepare import prepare

    cutter = _Trainer(prepare(config(blobs, tmp_path / "cut", **kw)), DistInfo())
    stopped = cutter.train(lambda: cutter.cur_nimg >= 72, None)  # polled between phases too
    assert stopped.stopped and stopped.reason == "stopped" and stopped.kimg == pytest.approx(0.072)
    latest = snap.read_latest(stopped.run_dir)
    state = snap.load_state(os.path.join(stopped.run_dir, latest.state))
    assert state["cur_nimg"] == 72 and latest.snapshot == os.path.basename(stopped.snapshot_path)

    # A snapshot of ours whose state file is gone cannot continue (only weights-only fine-tuning).
    from gan.errors import UserError

    older = os.path.join(stopped.run_dir, "network-snapshot-000000-copy.safetensors")
    import shutil

    shutil.copy(stopped.snapshot_path, older)
    meta_state = load_model(older).metadata["training"]["state_file"]
    assert meta_state == latest.state
    os.rename(os.path.join(stopped.run_dir, latest.state), os.path.join(stopped.run_dir, "moved.pt"))
    with pytest.raises(UserError, match="--finetune"):
        run(config(blobs, tmp_path / "x", **dict(kw, resume=older)))
    os.rename(os.path.join(stopped.run_dir, "moved.pt"), os.path.join(stopped.run_dir, latest.state))
    os.remove(older)

    # ... the resumed trainer holds exactly the saved optimizer state, counters and p ...
    resume_cfg = config(blobs, tmp_path / "cut", **dict(kw, resume=stopped.run_dir))
    trainer = _Trainer(prepare(resume_cfg), DistInfo())
    assert (trainer.cur_nimg, trainer.tick, trainer.batch_idx) == (72, state["tick"], 9)
    assert float(trainer.augment_pipe.p) == float(state["augment_p"])
    for phase in trainer.phases:
        if phase.name.endswith("main"):
            _assert_same(phase.opt.state_dict(), state["optimizers"][phase.name])
    del trainer

    # Learning rates given to the resumed run win over the saved ones; the Adam moments are kept.
    slower = _Trainer(
        prepare(config(blobs, tmp_path / "cut", **dict(kw, resume=stopped.run_dir, glr=1e-4, dlr=2e-4))),
        DistInfo(),
    )
    for phase in slower.phases:
        if phase.name.endswith("main"):
            saved = state["optimizers"][phase.name]
            lazy_ratio = {"Gmain": 4 / 5, "Dmain": 16 / 17}[phase.name]  # g_reg_interval 4, r1_interval 16
            wanted = {"Gmain": 1e-4, "Dmain": 2e-4}[phase.name] * lazy_ratio
            assert phase.opt.param_groups[0]["lr"] == pytest.approx(wanted)
            assert saved["param_groups"][0]["lr"] != phase.opt.param_groups[0]["lr"]
            _assert_same(phase.opt.state_dict()["state"], saved["state"])
    del slower

    # ... and continuing it in place ends with the very same weights as the uninterrupted run.
    ticks = []
    resumed = run(resume_cfg, on_tick=ticks.append)
    assert resumed.run_dir == stopped.run_dir and resumed.reason == "done"
    assert ticks[0].kimg > 0.072 and ticks[0].tick == state["tick"]
    kimgs = [r["kimg"] for r in read_stats(os.path.join(resumed.run_dir, "stats.jsonl"))]
    assert kimgs == sorted(kimgs) and len(set(kimgs)) == len(kimgs)
    a, b = _weights(ref.snapshot_path), _weights(resumed.snapshot_path)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]


def _assert_same(x, y) -> None:
    if isinstance(x, torch.Tensor):
        assert isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)
    elif isinstance(x, dict):
        assert x.keys() == y.keys()
        for k in x:
            _assert_same(x[k], y[k])
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y)
        for u, v in zip(x, y):
            _assert_same(u, v)
    else:
        assert x == y


def test_nan_loss_stops_and_keeps_last_good_snapshot(blobs, tmp_path, monkeypatch):
    original = loss_mod.StyleGANLoss.d_main
    calls = {"n": 0}

    def d_main(self, *args, **kwargs):
        calls["n"] += 1
        value = original(self, *args, **kwargs)
        return value * math.nan if calls["n"] > 6 else value

    monkeypatch.setattr(loss_mod.StyleGANLoss, "d_main", d_main)
    ticks = []
    summary = run(config(blobs, tmp_path, kimg=1, tick_kimg=0.024, snap=1), on_tick=ticks.append)
    assert summary.reason == "nonfinite" and summary.stopped
    assert "NaN" in summary.message and "Dmain" in summary.message
    assert ticks[-1].done and ticks[-1].snapshot_path is None and "NaN" in ticks[-1].message
    # The last snapshot is the one before the NaN, and it is finite and loadable.
    latest = snap.read_latest(summary.run_dir)
    assert os.path.join(summary.run_dir, latest.snapshot) == summary.snapshot_path
    assert latest.cur_nimg <= 48
    model = load_model(summary.snapshot_path)
    assert snap.all_finite(model.G, model.G_train, model.D)


def test_finetune_from_a_generator_only_model(blobs, tmp_path, tiny_sg2_model_path):
    # A foreign model (generator only, no training state) is a starting point: counters start at 0.
    kw = dict(map_depth=None, resume=tiny_sg2_model_path, kimg=0.016, tick_kimg=0.016)
    ticks = []
    summary = run(config(blobs, tmp_path, **kw), on_tick=ticks.append)
    assert summary.reason == "done" and ticks[0].tick == 0
    options = json.load(open(os.path.join(summary.run_dir, "training_options.json")))
    assert options["ada_kimg"] == 100 and options["ema_rampup"] == 0
    start = load_model(tiny_sg2_model_path).G.state_dict()
    trained = load_model(summary.snapshot_path).G_train.state_dict()
    assert start.keys() == trained.keys()
    assert any(not torch.equal(start[k], trained[k]) for k in start)


def test_finetune_from_our_snapshot_starts_g_from_g_ema(blobs, tmp_path):
    # After training, a snapshot's G and G_ema differ; fine-tuning must start from G_ema (the
    # generator that is published and blended with), while continuing the run keeps G.
    from gan.train.distributed import DistInfo
    from gan.train.loop import _Trainer
    from gan.train.prepare import prepare

    first = run(config(blobs, tmp_path / "a", seed=2, kimg=0.032, tick_kimg=0.032))
    m = load_model(first.snapshot_path)
    g_ema, g_train = m.G.state_dict(), m.G_train.state_dict()
    assert any(not torch.equal(g_ema[k], g_train[k]) for k in g_ema)
    for finetune, expected in ((True, g_ema), (False, g_train)):
        cfg = config(blobs, tmp_path / "b", seed=2, resume=first.snapshot_path, finetune=finetune)
        trainer = _Trainer(prepare(cfg), DistInfo())
        started = trainer.G.state_dict()
        assert all(torch.equal(started[k], expected[k]) for k in expected)
        del trainer


def test_blur_schedule_and_kernel():
    s = loss_mod.LossSettings(r1_gamma=1, blur_init_sigma=10, blur_fade_kimg=2)
    assert loss_mod.blur_sigma(s, 0) == 10 and loss_mod.blur_sigma(s, 1000) == 5
    assert loss_mod.blur_sigma(s, 2000) == 0 and loss_mod.blur_sigma(s, 5000) == 0
    img = torch.zeros(1, 3, 16, 16)
    img[:, :, 8, 8] = 1
    out = loss_mod.gaussian_blur(img, 1.0)
    assert out.shape == img.shape and out.sum().item() == pytest.approx(3.0, rel=1e-5)
    assert out[0, 0, 8, 8] < 0.5 and out[0, 0, 8, 9] > 0
    assert torch.equal(loss_mod.gaussian_blur(img, 0.2), img)  # radius 0: untouched


def test_stylegan3r_with_ada_runs_and_moves_p(blobs, tmp_path):
    # Four steps of the R config with the D blur and ADA: p (started at 0.5) moves at the 4th step.
    ticks = []
    cfg = config(
        blobs,
        tmp_path,
        cfg="stylegan3-r",
        cbase=128,
        cmax=8,
        batch=4,
        kimg=0.016,
        tick_kimg=0.008,
        aug="ada",
        p=0.5,
        ada_kimg=0.1,
        blur_fade_kimg=1,
    )
    summary = run(cfg, on_tick=ticks.append)
    assert summary.reason == "done"
    options = json.load(open(os.path.join(summary.run_dir, "training_options.json")))
    assert options["blur_init_sigma"] == 10 and options["g_kwargs"]["conv_kernel"] == 1
    assert options["pl_weight"] == 0 and options["style_mixing"] == 0
    assert ticks[0].stats["Progress/augment"] == 0.5
    assert ticks[-1].stats["Progress/augment"] == pytest.approx(0.5 + 0.16) or ticks[-1].stats[
        "Progress/augment"
    ] == pytest.approx(0.5 - 0.16)  # 16 real images / (0.1 kimg * 1000)
    assert load_model(summary.snapshot_path).arch == "stylegan3-r"


def test_metrics_per_snapshot_with_skipped_ones_reported(blobs, tmp_path, monkeypatch):
    # SWD and EQ-T (StyleGAN2: resampled constant) need no downloads; FID without its Inception
    # weights cannot run: it is reported and training goes on.
    monkeypatch.setenv("GAN_INCEPTION_WEIGHTS", str(tmp_path / "missing-inception.pth"))
    ticks = []
    cfg = config(
        blobs,
        tmp_path,
        kimg=0.024,
        tick_kimg=0.008,
        snap=2,
        metrics=["swd", "eqt50k_int", "fid50k_full"],
        metrics_num=16,
    )
    summary = run(cfg, on_tick=ticks.append)
    assert summary.reason == "done"
    with_metrics = [t for t in ticks if "Metrics/swd" in t.stats]
    assert [t.tick for t in with_metrics] == [0, 2]  # snap=2, and the last tick
    assert all(t.stats["Metrics/swd"] > 0 and t.stats["Metrics/eqt50k_int"] > 0 for t in with_metrics)
    assert all("fid50k_full skipped" in t.message and "missing-inception" in t.message for t in with_metrics)
    records = read_stats(os.path.join(summary.run_dir, "stats.jsonl"))
    assert [("Metrics/swd" in r) for r in records] == [True, False, True]


def test_divergence_stops_the_run_and_keeps_the_last_good_snapshot(blobs, tmp_path):
    # --glr 1e8 used to "finish successfully" with weights around 1e8.
    first = run(config(blobs, tmp_path, kimg=0.016, tick_kimg=0.008, snap=1))
    latest_before = open(os.path.join(first.run_dir, snap.LATEST_FILE)).read()
    ticks = []
    wild = run(
        config(blobs, tmp_path, kimg=0.032, tick_kimg=0.008, snap=1, glr=1e8, resume=first.run_dir),
        on_tick=ticks.append,
    )
    assert wild.reason == "nonfinite" and wild.stopped
    assert "training diverged" in wild.message and "largest G weight" in wild.message
    assert "--glr" in wild.message
    assert wild.snapshot_path == first.snapshot_path and ticks[-1].done and ticks[-1].snapshot_path is None
    assert open(os.path.join(first.run_dir, snap.LATEST_FILE)).read() == latest_before
    model = load_model(first.snapshot_path)
    assert max(p.abs().max().item() for p in model.G_train.parameters()) < 1e3


def test_cli_train_with_a_huge_learning_rate_fails_with_a_clear_message(blobs, tmp_path, capsys):
    from gan.cli import main

    argv = [
        "train",
        "--data",
        blobs,
        "--outdir",
        str(tmp_path),
        "--cfg",
        "stylegan2",
        "--kimg",
        "0.032",
        "--tick-kimg",
        "0.008",
        "--batch",
        "8",
        "--aug",
        "noaug",
        "--glr",
        "1e8",
        "--quiet",
        "--cbase",
        "256",
        "--cmax",
        "16",
        "--z-dim",
        "16",
        "--w-dim",
        "16",
        "--map-depth",
        "2",
        "--device",
        "cpu",
        "--grid-rows",
        "1",
        "--workers",
        "0",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "error: training diverged" in err and "no snapshot was written yet" in err


def test_a_loss_beyond_the_bound_stops_like_nan(blobs, tmp_path, monkeypatch):
    original = loss_mod.StyleGANLoss.d_main
    calls = {"n": 0}

    def d_main(self, *args, **kwargs):
        calls["n"] += 1
        value = original(self, *args, **kwargs)
        return value * 1e7 if calls["n"] > 2 else value

    monkeypatch.setattr(loss_mod.StyleGANLoss, "d_main", d_main)
    summary = run(config(blobs, tmp_path, kimg=1, tick_kimg=0.008, snap=1))
    assert summary.reason == "nonfinite" and "Dmain loss reached" in summary.message
    assert "training diverged" in summary.message and summary.snapshot_path.endswith("000000.016.safetensors")
