"""Training options: official defaults by resolution, validation, `gan train --dry-run`, bad
options, and Ctrl-C on a real `gan train` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from gan.cli import main as gan_main
from gan.data.dataset_tool import DatasetWriter
from gan.errors import UserError
from gan.train.config import DataInfo, TrainConfig, resolve_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_FLAGS = ["--cbase", "256", "--cmax", "16", "--z-dim", "16", "--w-dim", "16", "--batch", "4"]


def make_images(dest, n: int = 8, res: int = 16, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    with DatasetWriter(dest) as writer:
        for i in range(n):
            writer.add(rng.integers(0, 256, (res, res, 3), dtype=np.uint8), i % 2)
    return str(dest)


@pytest.fixture(scope="module")
def data16(tmp_path_factory) -> str:
    return make_images(tmp_path_factory.mktemp("data") / "d16.zip")


def info(res: int) -> DataInfo:
    return DataInfo(path="x", name="x", resolution=res, channels=3, label_dim=0, size=100)


def test_defaults_follow_the_official_configs(tmp_path, data16):
    sg2 = resolve_config(TrainConfig(cfg="stylegan2", data=data16, device="cpu"), info(64))
    sg3t = resolve_config(TrainConfig(cfg="stylegan3-t", data=data16, device="cpu"), info(64))
    sg3r = resolve_config(TrainConfig(cfg="stylegan3-r", data=data16, device="cpu", batch=32), info(256))
    assert sg2.batch == 32 and sg2.batch_gpu == 32 and sg2.accum_rounds == 1  # min(4096 // 64, 32)
    assert sg2.gamma == pytest.approx(0.0002 * 64**2 / 32)
    assert sg2.ema_kimg == pytest.approx(10) and sg2.ema_rampup == 0.05
    assert (
        sg2.g_kwargs["mapping_kwargs"]["num_layers"] == 8
        and sg3t.g_kwargs["mapping_kwargs"]["num_layers"] == 2
    )
    assert (sg2.glr, sg3t.glr, sg2.dlr) == (0.002, 0.0025, 0.002)
    assert (sg2.pl_weight, sg2.style_mixing, sg2.g_reg_interval) == (2, 0.9, 4)
    assert (sg3t.pl_weight, sg3t.style_mixing, sg3t.g_reg_interval) == (0, 0, 0)
    assert sg2.g_kwargs["num_fp16_res"] == 0 and sg2.d_kwargs["num_fp16_res"] == 0  # CPU runs float32
    assert sg3t.blur_init_sigma == 0 and sg3r.blur_init_sigma == 10
    assert sg3r.blur_fade_kimg == pytest.approx(200) and sg3r.gamma == pytest.approx(0.0002 * 256**2 / 32)
    assert sg3r.g_kwargs["channel_base"] == 65536 and sg3r.g_kwargs["channel_max"] == 1024
    assert sg3r.g_kwargs["conv_kernel"] == 1 and sg3r.g_kwargs["use_radial_filters"]
    assert sg3r.d_kwargs["channel_base"] == 32768  # D keeps the base channels
    assert sg3t.g_kwargs["magnitude_ema_beta"] == pytest.approx(0.5 ** (32 / 20000))
    assert resolve_config(TrainConfig(data=data16, device="cpu"), info(1024)).batch == 4
    small = resolve_config(TrainConfig(data=data16, device="cpu", batch=8, batch_gpu=2), info(64))
    assert small.accum_rounds == 4 and small.d_kwargs["epilogue_kwargs"]["mbstd_group_size"] == 2


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(cfg="stylegan4"), "--cfg must be one of"),
        (dict(aug="always"), "--aug must be one of"),
        (dict(kimg=0), "--kimg must be a positive number"),
        (dict(batch=-2), "--batch must be a positive integer"),
        (dict(p=1.5), "--p must be between 0 and 1"),
        (dict(aug="noaug", p=0.3), "--aug noaug turns augmentation off"),
        (dict(metrics=["fid"]), "unknown metric"),
        (dict(finetune=True), "--finetune needs --resume"),
        (dict(batch=6, batch_gpu=4), "multiple of --batch-gpu"),
        (dict(data=""), "no training data set given"),
        (dict(resume="/nonexistent/model.pkl"), "does not exist"),
        (dict(gamma=-1.0), "--gamma must be a non-negative number"),
        (dict(metrics_num=1), "--metrics-num must be at least 2"),
    ],
)
def test_bad_options_say_what_is_wrong(data16, changes, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        TrainConfig(**{"data": data16, **changes}).validate()


def test_resolve_checks_combinations(data16):
    with pytest.raises(UserError, match="minibatch-stddev group"):
        resolve_config(TrainConfig(data=data16, device="cpu", batch=6), info(64))
    with pytest.raises(UserError, match="StyleGAN2 only"):
        resolve_config(TrainConfig(data=data16, device="cpu", cfg="stylegan3-t", pl_weight=1.0), info(64))
    with pytest.raises(UserError, match="--gpus 2 but 1 process"):
        resolve_config(TrainConfig(data=data16, device="cpu", gpus=2), info(64))
    with pytest.raises(UserError, match="no labels"):
        resolve_config(TrainConfig(data=data16, device="cpu", cond=True), info(64))


def test_cli_dry_run_prints_resolved_options_and_writes_nothing(data16, tmp_path, capsys):
    outdir = tmp_path / "runs"
    code = gan_main(
        ["train", "--data", data16, "--outdir", str(outdir), "--cfg", "stylegan2", "--dry-run", "--cond"]
        + ["--no-estimate"]
    )
    assert code == 0
    resolved = json.loads(capsys.readouterr().out)
    assert (
        resolved["batch"] == 32
        and resolved["data"]["resolution"] == 16
        and resolved["data"]["label_dim"] == 2
    )
    assert resolved["g_kwargs"]["c_dim"] == 2 and resolved["config"]["cond"] is True
    assert not outdir.exists() or not any(outdir.iterdir())  # no run folder for a dry run


def test_cli_dry_run_estimates_time_and_offers_cpu_sized_settings(data16, tmp_path, capsys, monkeypatch):
    import torch

    from gan.train import estimate as est

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    # The CPU-sized settings must be smaller than the ones asked for to be offered; tiny test
    # networks are smaller than any real preset, so shrink the preset further for this test.
    monkeypatch.setattr(est, "cpu_sized", lambda res=None: dict(cbase=128, cmax=8, z_dim=8, w_dim=8, batch=2))
    argv = ["train", "--data", data16, "--outdir", str(tmp_path / "runs"), "--cfg", "stylegan2", "--dry-run"]
    assert gan_main(argv + [*TINY_FLAGS, "--kimg", "2"]) == 0
    out = capsys.readouterr().out
    resolved, report = out.split("\nestimate (", 1)
    assert json.loads(resolved)["batch"] == 4
    assert "stylegan2, 16 px, batch 4, cpu" in report and " s/kimg (" in report
    assert "to reach 2 kimg" in report and "each snapshot:" in report and " KB" in report
    assert "no GPU here: CPU-sized settings (--cbase 128 --cmax 8 --z-dim 8 --w-dim 8 --batch 2)" in report
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_estimate_numbers_add_up(data16, tmp_path):
    from gan.train.estimate import estimate_training, snapshot_bytes

    config = TrainConfig(
        data=data16,
        outdir=str(tmp_path),
        cfg="stylegan2",
        device="cpu",
        cbase=256,
        cmax=16,
        z_dim=16,
        w_dim=16,
        batch=8,
        kimg=3,
    )
    e = estimate_training(config, passes=2, images=2)
    assert (
        e.images_per_pass == 2 and e.measured_passes in (1, 2) and set(e.phase_seconds) >= {"Gmain", "Dmain"}
    )
    assert e.sec_per_kimg == pytest.approx(e.sec_per_step * 1000 / 8)
    assert e.seconds_to_end == pytest.approx(e.sec_per_kimg * 3)
    from gan.train.prepare import build_networks, prepare

    G, D = build_networks(prepare(config, build=False).resolved, __import__("torch").device("cpu"))
    assert e.snapshot_bytes == snapshot_bytes(G, D) and e.g_params == sum(p.numel() for p in G.parameters())


def test_help_names_each_default_once():
    import argparse

    from gan.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub.choices["train"]._actions if a.help}
    assert all(h.count("(default") <= 1 for h in helps.values()), [
        h for h in helps.values() if h.count("(default") > 1
    ]
    assert helps["map_depth"].endswith("(default 8 stylegan2, 2 stylegan3)")
    assert helps["batch"].endswith("(default: auto)") and helps["kimg"].endswith("(default: 25000)")


def test_cli_dry_run_checks_data_and_resume(tmp_path, data16, tiny_sg2_model_path, capsys):
    def error(*argv) -> str:
        assert gan_main(["train", "--outdir", str(tmp_path / "runs"), "--dry-run", *argv]) == 2
        return capsys.readouterr().err

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"not a png")
    assert "cannot read image" in error("--data", str(bad))
    odd = make_images(tmp_path / "d24.zip", res=24)
    assert "power of two" in error("--data", odd)
    assert "use --cfg stylegan2" in error("--data", data16, "--resume", tiny_sg2_model_path, "--finetune")
    d32 = make_images(tmp_path / "d32.zip", res=32)
    msg = error("--data", d32, "--resume", tiny_sg2_model_path, "--finetune", "--cfg", "stylegan2")
    assert "resolution 16" in msg and "needs 32" in msg
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x00" * 64)
    assert "cannot resume from" in error("--data", data16, "--resume", str(junk), "--finetune")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "cannot write into the output folder" in gan_main_err(capsys, data16, str(blocker / "runs"))
    ok = ["--data", data16, "--resume", tiny_sg2_model_path, "--finetune", "--cfg", "stylegan2"]
    assert gan_main(["train", "--outdir", str(tmp_path / "runs"), "--dry-run", *ok]) == 0


def gan_main_err(capsys, data, outdir) -> str:
    assert gan_main(["train", "--data", data, "--outdir", outdir, "--dry-run"]) == 2
    return capsys.readouterr().err


def test_ctrl_c_stops_gan_train_with_a_snapshot(tmp_path, data16):
    outdir = tmp_path / "runs"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable,
        "-m",
        "gan.cli",
        "train",
        "--data",
        data16,
        "--outdir",
        str(outdir),
        "--cfg",
        "stylegan2",
        "--kimg",
        "1000",
        "--tick-kimg",
        "0.008",
        "--snap",
        "1000",
        "--device",
        "cpu",
        *TINY_FLAGS,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while len(lines) < 3 and time.monotonic() < deadline:  # tick 0 (with its snapshot), then 2 more
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("tick"):
                lines.append(line)
        assert len(lines) == 3, proc.stderr.read()
        assert "kimg" in lines[1] and "sec/kimg" in lines[1] and "eta" in lines[1] and " G " in lines[1]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopping after this step" in err and "stopped at" in out
    run_dir = next(outdir.iterdir())
    latest = json.loads((run_dir / "latest.json").read_text())
    assert latest["cur_nimg"] >= 20 and (run_dir / latest["snapshot"]).exists()

    # A later session continues the run in place with the options it was started with.
    target = latest["cur_nimg"] + 8
    assert gan_main(["train", "--resume", str(run_dir), "--kimg", str(target / 1000), "--quiet"]) == 0
    assert [p.name for p in outdir.iterdir()] == [run_dir.name]
    resumed = json.loads((run_dir / "latest.json").read_text())
    assert resumed["cur_nimg"] == target and resumed["tick"] > latest["tick"]
    options = json.loads((run_dir / "training_options.json").read_text())
    assert options["g_kwargs"]["channel_max"] == 16 and options["batch"] == 4
