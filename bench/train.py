"""Training speed and memory on CPU: sec/kimg and peak RSS per config at 64 px.

Each config trains in a fresh subprocess through `gan.train.loop.run` on a generated data set
of coloured discs (no downloads). Tick 0 is the first step alone (warm-up, kernel loading, first
snapshot); the reported sec/kimg is tick 1: `--steps` further steps at `--batch`, including the
lazy path-length (every 4 G steps, StyleGAN2) and, when it falls inside, R1 steps. Peak memory is
the subprocess's ru_maxrss after training (whole process: torch, data, networks, optimizer,
activations of the biggest phase).

    python -m bench.train --res 64 --cbase 8192 --cmax 256 --batch 16 --steps 8 --write
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench.common import machine_summary, write_section

CONFIGS = ("stylegan2", "stylegan3-t", "stylegan3-r")


def make_dataset(path: str, res: int, n: int = 256) -> str:
    from gan.data.dataset_tool import DatasetWriter

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:res, 0:res] + 0.5
    with DatasetWriter(path) as writer:
        for _ in range(n):
            cx, cy = rng.uniform(res * 0.3, res * 0.7, 2)
            r = rng.uniform(res * 0.15, res * 0.3)
            inside = (((xx - cx) ** 2 + (yy - cy) ** 2) < r * r)[..., None]
            writer.add((np.where(inside, rng.uniform(0.2, 1, 3), 0.1) * 255).astype(np.uint8))
    return path


def child(cfg: str, data: str, outdir: str, cbase: int, cmax: int, batch: int, steps: int) -> dict:
    """Runs in a fresh process; returns the measured numbers."""
    from gan.train.config import TrainConfig
    from gan.train.loop import run

    ticks, cpu = [], []

    def on_tick(info) -> None:
        ticks.append(info)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append(usage.ru_utime + usage.ru_stime)

    t0 = time.perf_counter()
    config = TrainConfig(
        cfg=cfg,
        data=data,
        outdir=outdir,
        cbase=cbase,
        cmax=cmax,
        batch=batch,
        device="cpu",
        kimg=batch * (1 + steps) / 1000,
        tick_kimg=batch * steps / 1000,
        snap=1000,
        grid_rows=1,
    )
    summary = run(config, on_tick=on_tick)
    options = json.load(open(os.path.join(summary.run_dir, "training_options.json")))
    from gan.model_io import load_model

    model = load_model(summary.snapshot_path)
    return {
        "cfg": cfg,
        "sec_per_kimg": ticks[1].sec_per_kimg,
        # CPU seconds (all threads) per kimg over the same tick: less sensitive to a shared machine.
        "cpu_sec_per_kimg": (cpu[1] - cpu[0]) / (ticks[1].kimg - ticks[0].kimg),
        "first_step_s": ticks[0].sec_per_kimg * ticks[0].kimg,
        "total_s": time.perf_counter() - t0,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "g_params_m": sum(p.numel() for p in model.G_train.parameters()) / 1e6,
        "d_params_m": sum(p.numel() for p in model.D.parameters()) / 1e6,
        "g_loss": ticks[1].stats.get("Loss/G/loss"),
        "gamma": options["gamma"],
    }


def measure(cfg: str, data: str, cbase: int, cmax: int, batch: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as outdir:
        code = (
            "import json; from bench.train import child; "
            f"print(json.dumps(child({cfg!r}, {data!r}, {outdir!r}, {cbase}, {cmax}, {batch}, {steps})))"
        )
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
        if out.returncode != 0:
            raise RuntimeError(f"{cfg} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--cbase", type=int, default=8192)
    p.add_argument("--cmax", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=8, help="steps in the measured tick")
    p.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    p.add_argument("--note", default="", help="extra remark for the doc")
    args = p.parse_args(argv)
    cmd = "python -m bench.train " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write"
    )

    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_dataset(os.path.join(tmp, f"discs{args.res}.zip"), args.res)
        for cfg in args.configs:
            r = measure(cfg, data, args.cbase, args.cmax, args.batch, args.steps)
            print(json.dumps(r), flush=True)
            rows.append(r)

    table = [
        "| config | G params | D params | batch | sec / kimg | CPU sec / kimg | s / step | first step s "
        "| peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        table.append(
            f"| {r['cfg']} | {r['g_params_m']:.2f} M | {r['d_params_m']:.2f} M | {args.batch} | "
            f"{r['sec_per_kimg']:.0f} | {r.get('cpu_sec_per_kimg', float('nan')):.0f} | "
            f"{r['sec_per_kimg'] * args.batch / 1000:.2f} | "
            f"{r['first_step_s']:.1f} | {r['peak_mb']:.0f} |"
        )
    body = "\n".join(
        [
            f"Command: `{cmd}`",
            "",
            f"Machine: {machine_summary()}",
            "",
            f"{args.res} px, cbase {args.cbase}, cmax {args.cmax} (doubled for stylegan3-r, as the official "
            "config), z/w 512, official mapping depths, fp32, ADA on, default lazy regularisation. "
            f"sec/kimg is measured over {args.steps} steps after the first; s/step = sec/kimg * batch / 1000."
            " CPU sec/kimg: user + system time of the process (all threads) over that tick."
            " Peak RSS is ru_maxrss of the training subprocess. The machine is shared: 1-minute load "
            f"average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.",
            "",
            *table,
            *(["", args.note] if args.note else []),
        ]
    )
    print(body)
    if args.write:
        write_section(f"Training speed, {args.res} px, CPU, cbase {args.cbase}, cmax {args.cmax}", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
