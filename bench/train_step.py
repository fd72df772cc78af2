"""Training step speed on a fixed batch: every phase of `gan.train.loop` (G main, G path length,
D main, D R1) with the loop's own networks, loss, augment pipe and Adam, timed phase by phase.

A step runs G main and D main; G reg (StyleGAN2 path length) every `g_reg_interval` steps and D
reg (R1) every `r1_interval` steps, so the amortised step time is
    Gmain + Dmain + Greg / g_reg_interval + Dreg / r1_interval,
and sec/kimg = that * 1000 / batch (wall and process CPU time, all threads). No data loading, no
EMA or snapshots (the loop adds those).

Comparisons, each alternated round by round so a busy machine slows all alike:
- `--impls ref auto`: our reference ops against our fast ops in one process;
- `--trees OLD .`: this harness run in fresh processes against another checkout (e.g. a git
  worktree of an older commit), to compare code versions.

    python -m bench.train_step --cfg stylegan3-t --res 64 --cbase 4096 --cmax 64 --z-dim 128 \\
        --w-dim 128 --batch 8 --gamma 0.25 --impls ref auto --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

PHASES = ("Gmain", "Greg", "Dmain", "Dreg")


@dataclass
class StepSpec:
    """The training configuration measured (TrainConfig fields of the same names)."""

    cfg: str = "stylegan3-t"
    res: int = 64
    cbase: int = 4096
    cmax: int = 64
    z_dim: int = 128
    w_dim: int = 128
    batch: int = 8
    gamma: float = 0.25
    augment_p: float = 0.2  # fixed ADA probability, so the augment pipe runs as in a real run
    seed: int = 0


@dataclass
class Setup:
    G: torch.nn.Module
    D: torch.nn.Module
    loss: object
    opts: dict[str, torch.optim.Optimizer]
    intervals: dict[str, int]  # phase -> every how many steps it runs (0 = never)
    real: torch.Tensor
    real_c: torch.Tensor


def build(spec: StepSpec) -> Setup:
    """The loop's objects for this spec (same builders, same defaults)."""
    from gan.train.augment import AdaController, AugmentPipe, augment_preset
    from gan.train.config import DataInfo, TrainConfig, resolve_config
    from gan.train.loss import LossSettings, StyleGANLoss
    from gan.train.prepare import build_networks
    from gan.train.stats import StatsCollector

    config = TrainConfig(
        cfg=spec.cfg,
        data=os.curdir,
        outdir=os.curdir,
        cbase=spec.cbase,
        cmax=spec.cmax,
        z_dim=spec.z_dim,
        w_dim=spec.w_dim,
        batch=spec.batch,
        gamma=spec.gamma,
        device="cpu",
        seed=spec.seed,
    )
    data = DataInfo(path="none", name="none", resolution=spec.res, channels=3, label_dim=0, size=1000)
    r = resolve_config(config, data)
    torch.manual_seed(spec.seed)
    G, D = build_networks(r, torch.device("cpu"))
    pipe = AugmentPipe(**augment_preset("bgc"), p=spec.augment_p).train().requires_grad_(False)
    ada = AdaController(pipe, target=0.6, kimg=500)
    settings = LossSettings(
        r1_gamma=r.gamma,
        pl_weight=r.pl_weight,
        pl_batch_shrink=config.pl_batch_shrink,
        pl_decay=config.pl_decay,
        style_mixing=r.style_mixing,
        blur_init_sigma=r.blur_init_sigma,
        blur_fade_kimg=r.blur_fade_kimg,
    )
    loss = StyleGANLoss(G, D, settings, StatsCollector(torch.device("cpu")), pipe, ada)
    opts = {}
    for name, net, lr, interval in (("G", G, r.glr, r.g_reg_interval), ("D", D, r.dlr, r.r1_interval)):
        ratio = interval / (interval + 1) if interval > 0 else 1.0
        opts[name] = torch.optim.Adam(
            net.parameters(), lr=lr * ratio, betas=(0.0, 0.99**ratio), eps=1e-8, foreach=True
        )
    intervals = {"Gmain": 1, "Dmain": 1, "Greg": r.g_reg_interval, "Dreg": r.r1_interval}
    gen = torch.Generator().manual_seed(spec.seed + 1)
    real = torch.rand([spec.batch, 3, spec.res, spec.res], generator=gen) * 2 - 1
    return Setup(G, D, loss, opts, intervals, real, torch.zeros([spec.batch, 0]))


def run_phase(s: Setup, phase: str, seed: int) -> float:
    """One phase as the loop runs it (grads on, zeroed, accumulated, Adam step); returns its loss."""
    net, opt = (s.G, s.opts["G"]) if phase[0] == "G" else (s.D, s.opts["D"])
    torch.manual_seed(seed)  # the same latents, augmentations and noise for every impl
    z = torch.randn([s.real.shape[0], s.G.z_dim])
    c = s.real_c
    gain = s.intervals[phase]
    net.requires_grad_(True)
    opt.zero_grad(set_to_none=True)
    if phase == "Gmain":
        loss = s.loss.g_main(z, c, gain, 0)
    elif phase == "Greg":
        loss = s.loss.g_reg(z, c, gain)
    elif phase == "Dmain":
        loss = s.loss.d_main(s.real, c, z, c, gain, 0)
    else:
        loss = s.loss.d_reg(s.real, c, gain, 0)
    net.requires_grad_(False)
    opt.step()
    return float(loss)


def phases_of(s: Setup) -> list[str]:
    return [p for p in PHASES if s.intervals[p] > 0]


def time_phases(s: Setup, impl: str, seed: int) -> dict[str, tuple[float, float, float]]:
    """phase -> (wall s, CPU s, loss) for one pass over the phases with ops impl `impl`."""
    import ops_cuda

    out = {}
    with ops_cuda.prefer_impl(impl):
        for i, phase in enumerate(phases_of(s)):
            t0, c0 = time.perf_counter(), time.process_time()
            loss = run_phase(s, phase, seed + i)
            out[phase] = (time.perf_counter() - t0, time.process_time() - c0, loss)
    return out


def amortised(s: Setup, times: dict[str, float]) -> float:
    """Seconds per step: main phases every step, regularisation every `interval` steps."""
    return sum(t / s.intervals[p] for p, t in times.items())


def snapshot_state(s: Setup) -> dict:
    return {
        "G": {k: v.clone() for k, v in s.G.state_dict().items()},
        "D": {k: v.clone() for k, v in s.D.state_dict().items()},
        "opts": {k: o.state_dict() for k, o in s.opts.items()},
        "pl_mean": s.loss.pl_mean.clone(),
        "p": s.loss.augment_pipe.p.clone(),
    }


def restore_state(s: Setup, state: dict) -> None:
    import copy

    s.G.load_state_dict(state["G"])
    s.D.load_state_dict(state["D"])
    for k, o in s.opts.items():
        o.load_state_dict(copy.deepcopy(state["opts"][k]))
    s.loss.pl_mean.copy_(state["pl_mean"])
    s.loss.augment_pipe.p.copy_(state["p"])


def child(spec: StepSpec, impls: list[str], rounds: int, threads: int) -> dict:
    """In one process: a warm-up pass per impl, then `rounds` passes alternating the impls, each
    from the same weights and optimizer state (restored), on the same fixed batch and seeds."""
    torch.set_num_threads(threads)
    s = build(spec)
    start = snapshot_state(s)
    results: dict[str, list[dict]] = {impl: [] for impl in impls}
    for r in range(rounds + 1):
        for impl in impls:
            restore_state(s, start)
            t = time_phases(s, impl, seed=1000)
            if r > 0:
                results[impl].append(t)
    out = {"phases": phases_of(s), "intervals": s.intervals, "impls": {}}
    for impl, runs in results.items():
        wall = [amortised(s, {p: run[p][0] for p in run}) for run in runs]
        cpu = [amortised(s, {p: run[p][1] for p in run}) for run in runs]
        out["impls"][impl] = {
            "step_wall": wall,
            "step_cpu": cpu,
            "phase_cpu": {p: statistics.median(run[p][1] for run in runs) for p in runs[0]},
            "losses": {p: runs[0][p][2] for p in runs[0]},
        }
    return out


def profile(spec: StepSpec, impl: str, threads: int, top: int) -> str:
    """torch.profiler tables per phase (after one warm-up pass): the ops by self CPU time, so the
    forward ops and their autograd backward nodes (`...Backward`) show where a step's time goes."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    import ops_cuda

    torch.set_num_threads(threads)
    s = build(spec)
    start = snapshot_state(s)
    time_phases(s, impl, seed=1000)  # warm-up: kernels built, caches filled
    restore_state(s, start)
    lines = []
    with ops_cuda.prefer_impl(impl):
        for i, phase in enumerate(phases_of(s)):
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                c0 = time.process_time()
                run_phase(s, phase, 1000 + i)
                cpu = time.process_time() - c0
            lines.append(f"== {phase} (impl {impl}, every {s.intervals[phase]} steps): {cpu:.3f} CPU s ==")
            averages = prof.key_averages()
            lines.append(averages.table(sort_by="self_cpu_time_total", row_limit=top))
            shares = op_shares({e.key: e.self_cpu_time_total for e in averages})
            lines.append("share of self time: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    return "\n".join(lines)


# Profiler op names -> the part of the step they belong to (first matching prefix wins).
OP_GROUPS = (
    (
        "matmul/conv (oneDNN, MKL)",
        (
            "aten::mkldnn_convolution",
            "aten::convolution_backward",
            "aten::_slow_conv",
            "aten::slow_conv",
            "aten::bmm",
            "aten::mm",
            "aten::addmm",
        ),
    ),
    ("filtered_lrelu", ("FilteredLrelu",)),
    ("upfirdn2d", ("UpFirDn2d",)),
    ("bias_act", ("BiasAct",)),
    ("augment resampling", ("aten::grid_sampler",)),
    ("copies", ("aten::copy_", "aten::cat", "aten::clone", "aten::_to_copy")),
)


def op_shares(self_times: dict[str, float]) -> dict[str, float]:
    """Fractions of the profiled self time per OP_GROUPS entry, the rest as 'other'."""
    total = sum(self_times.values()) or 1.0
    out = {name: 0.0 for name, _ in OP_GROUPS} | {"other": 0.0}
    for key, t in self_times.items():
        group = next((name for name, prefixes in OP_GROUPS if key.startswith(prefixes)), "other")
        out[group] += t / total
    return out


def _spec_args(spec: StepSpec) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in vars(spec).items()]


def run_tree(tree: str, spec: StepSpec, impl: str, threads: int) -> dict:
    """This harness in a fresh process whose `gan` / `ops_cuda` come from checkout `tree`."""
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
    env.setdefault(
        "TORCH_EXTENSIONS_DIR", str(Path(__file__).resolve().parent.parent / ".cache" / "torch_extensions")
    )
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--impls",
        impl,
        "--rounds",
        "1",
        "--threads",
        str(threads),
        *_spec_args(spec),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tree, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"the harness failed in {tree}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, value in vars(StepSpec()).items():
        p.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    p.add_argument("--impls", nargs="+", default=["ref", "auto"])
    p.add_argument("--trees", nargs="+", help="compare checkouts (fresh process each) instead of impls")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    p.add_argument("--note", default="")
    p.add_argument(
        "--profile",
        type=int,
        metavar="TOP",
        default=0,
        help="print torch.profiler tables (TOP ops by self CPU time per phase) for the first impl",
    )
    args = p.parse_args(argv)
    spec = StepSpec(**{k: getattr(args, k) for k in vars(StepSpec())})
    if args.profile:
        print(profile(spec, args.impls[0], args.threads, args.profile))
        return 0
    if args.child:
        print(json.dumps(child(spec, args.impls, args.rounds, args.threads)))
        return 0

    from bench.common import machine_summary, write_section
    from bench.side_by_side import uptime

    start = uptime()
    print(f"start: {start}", flush=True)
    labels: list[str] = []
    runs: dict[str, list[dict]] = {}
    loads: list[float] = []
    if args.trees:
        labels = list(args.trees)
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for tree in args.trees:
                res = run_tree(tree, spec, "auto", args.threads)
                runs.setdefault(tree, []).append(res)
                print(tree, json.dumps(res["impls"]["auto"]["step_cpu"]), flush=True)
        per = {t: [r["impls"]["auto"] for r in rs] for t, rs in runs.items()}
        meta = runs[labels[0]][0]
    else:
        labels = list(args.impls)
        loads.append(os.getloadavg()[0])
        res = child(spec, args.impls, args.rounds, args.threads)
        loads.append(os.getloadavg()[0])
        per = {impl: [res["impls"][impl]] for impl in labels}
        meta = res
    end = uptime()
    rows = []
    for label in labels:
        wall = [w for r in per[label] for w in r["step_wall"]]
        cpu = [c for r in per[label] for c in r["step_cpu"]]
        phase_cpu = {ph: statistics.median(r["phase_cpu"][ph] for r in per[label]) for ph in meta["phases"]}
        losses = per[label][0]["losses"]
        kimg = 1000 / spec.batch
        cells = [
            label,
            f"{statistics.median(wall) * kimg:.0f}",
            f"{statistics.median(cpu) * kimg:.0f}",
            " / ".join(f"{phase_cpu[ph]:.2f}" for ph in meta["phases"]),
            " / ".join(f"{losses[ph]:.6f}" for ph in meta["phases"]),
        ]
        rows.append("| " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    base = statistics.median(c for r in per[labels[0]] for c in r["step_cpu"])
    last = statistics.median(c for r in per[labels[-1]] for c in r["step_cpu"])
    cmd = "python -m bench.train_step " + shlex.join(a for a in (argv or sys.argv[1:]) if a != "--write")
    phases = " / ".join(meta["phases"])
    intervals = ", ".join(f"{ph} every {meta['intervals'][ph]}" for ph in meta["phases"])
    body = (
        f"Command: `{cmd}`\n\nMachine: {machine_summary()} ({args.threads} threads)\n\n"
        f"`uptime` at the start: `{start}`; at the end: `{end}`.\n\n"
        + (f"{args.note}\n\n" if args.note else "")
        + f"{spec.cfg}, {spec.res} px, cbase {spec.cbase}, cmax {spec.cmax}, z/w {spec.z_dim}/{spec.w_dim}, "
        f"batch {spec.batch}, gamma {spec.gamma}, augment p fixed at {spec.augment_p} (bgc), fp32, one fixed "
        "batch. "
        f"Phases: {intervals}; sec/kimg = amortised step time * 1000 / batch (median of {args.rounds} "
        "rounds, the compared variants alternating); CPU = process CPU time of all threads. Losses: the "
        "phase losses of the first timed round, from identical weights, batch and random draws.\n\n"
        f"| variant | sec / kimg | CPU sec / kimg | CPU s per phase ({phases}) | loss ({phases}) |\n"
        "|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\nCPU time {labels[0]} / {labels[-1]}: {base / last:.2f}x.\n"
    )
    if args.write:
        write_section(f"Training step, {spec.cfg} {spec.res} px batch {spec.batch}", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
