"""Render latency while a training process runs: does the explorer stay responsive?

A background child runs training steps of the default model's configuration without end (the loop's
networks, loss, augment pipe and Adam on a fixed batch in memory, see bench.train_step; nothing is
written) with a chosen niceness, thread count and OpenMP wait policy. Meanwhile a foreground child
renders with `gan.render.Renderer` (the explorer's render path) on the shipped default model:
`--repeat` full renders and cached edits (see bench.render). Both are fresh processes, so each one's
libgomp reads its own OMP_WAIT_POLICY at start; the background is killed after each scenario.

Scenarios (background): none; 'explorer' = what the explorer's training child does today (nice 10,
torch's default threads, default OpenMP waiting); then variations of it.

`--threads 0` renders with the explorer's rule (fewer threads while other processes hold cores,
gan.capabilities.threads_beside), decided from 1 s of measuring before the renders.

    python -m bench.contention --repeat 20 --threads 2 1 0 --write
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Background:
    label: str
    nice: int
    threads: int
    passive: bool  # OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning


SCENARIOS = {
    "none": None,
    "explorer": Background("nice 10, 2 threads (the explorer's training child today)", 10, 2, False),
    "nice19": Background("nice 19, 2 threads", 19, 2, False),
    "passive": Background("nice 10, 2 threads, OMP_WAIT_POLICY=PASSIVE", 10, 2, True),
    "one-thread": Background("nice 10, 1 thread", 10, 1, False),
    "one-thread-passive": Background("nice 10, 1 thread, OMP_WAIT_POLICY=PASSIVE", 10, 1, True),
}


def _env(passive: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("OMP_WAIT_POLICY", None)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def background_main(threads: int, nice: int) -> None:
    """Training steps forever (killed by the parent); prints one line once the first step is done."""
    import torch

    from bench.train_step import StepSpec, build, phases_of, run_phase

    os.nice(nice)
    torch.set_num_threads(threads)
    s = build(StepSpec())
    step = 0
    while True:
        for phase in phases_of(s):
            if step % s.intervals[phase] == 0:
                run_phase(s, phase, seed=step)
        if step == 0:
            print("ready", flush=True)
        step += 1


def foreground_main(threads: int, repeat: int) -> None:
    from bench.render import measure_latency
    from explorer.app import default_model_path
    from gan.model_io import load_model

    model = load_model(default_model_path(), device="cpu", training_nets=False)
    if threads == 0:  # the explorer's rule (render_bridge): other processes' CPU use over 1 s
        import torch

        from gan.capabilities import CpuUseElsewhere, threads_beside

        use = CpuUseElsewhere()
        time.sleep(1.0)
        threads = threads_beside(use.cores()) or torch.get_num_threads()
    res = measure_latency(model, repeat=repeat, threads=threads)
    print(json.dumps({"full": res.full.ms, "edit": res.edit.ms, "threads": threads}))


def run_scenario(name: str, threads: int, repeat: int, fg_passive: bool) -> dict:
    bg = SCENARIOS[name]
    proc = None
    steps_before = None
    try:
        if bg is not None:
            code = f"from bench.contention import background_main; background_main({bg.threads}, {bg.nice})"
            cmd = [sys.executable, "-c", code]
            proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(bg.passive), stdout=subprocess.PIPE, text=True)
            line = proc.stdout.readline()  # blocks until the first training step is done
            if line.strip() != "ready":
                raise RuntimeError(f"the background training child did not start: {line!r}")
            steps_before = _cpu_seconds(proc.pid)
        code = f"from bench.contention import foreground_main; foreground_main({threads}, {repeat})"
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=_env(fg_passive), capture_output=True, text=True
        )
        seconds = time.perf_counter() - t0
        if out.returncode != 0:
            raise RuntimeError(f"the render child failed:\n{out.stderr[-3000:]}")
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["bg_cpu_share"] = (
            (_cpu_seconds(proc.pid) - steps_before) / seconds if proc is not None else 0.0
        )  # CPU seconds the background used per second of the foreground's run
        res["load"] = os.getloadavg()[0]
        return res
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from bench.common import machine_summary, write_section
    from bench.side_by_side import uptime

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[2],
        help="render threads (0: the explorer's rule, see gan.capabilities.threads_beside)",
    )
    p.add_argument("--fg-passive", action="store_true", help="also the render process with PASSIVE waiting")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--write", action="store_true")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    cmd = "python -m bench.contention " + shlex.join(a for a in (argv or sys.argv[1:]) if a != "--write")
    start = uptime()
    print(f"start: {start}", flush=True)
    rows = []
    for threads in args.threads:
        for name in args.scenarios:
            r = run_scenario(name, threads, args.repeat, args.fg_passive)
            bg = SCENARIOS[name]
            cells = [
                bg.label if bg else "none",
                f"auto: {r['threads']}" if threads == 0 else threads,
                "PASSIVE" if args.fg_passive else "default",
                f"{np.percentile(r['full'], 50):.0f}",
                f"{np.percentile(r['full'], 95):.0f}",
                f"{np.percentile(r['edit'], 50):.0f}",
                f"{np.percentile(r['edit'], 95):.0f}",
                f"{r['bg_cpu_share']:.2f}",
                f"{r['load']:.1f}",
            ]
            rows.append("| " + " | ".join(str(c) for c in cells) + " |")
            print(rows[-1], flush=True)
    end = uptime()
    body = (
        f"Command: `{cmd}`\n\nMachine: {machine_summary()}\n\n"
        f"`uptime` at the start: `{start}`; at the end: `{end}`.\n\n"
        + (f"{args.note}\n\n" if args.note else "")
        + "Render latency (ms, `Renderer.render` total) of the shipped default model (64 px) in a fresh "
        f"process, {args.repeat} full renders (new seed each) and {args.repeat} cached edits, while a "
        "background process trains the default model's configuration (SG3-T 64 px, cbase 4096, cmax "
        "64, z/w 128, batch 8, bench.train_step's phases in a loop). bg CPU: CPU seconds the training "
        "process used per second of the render measurement (2 = both cores); load: 1-minute load "
        "average at the end of the scenario.\n\n"
        "| training in the background | render threads | render OpenMP waiting | full p50 | full p95 "
        "| edit p50 | edit p95 | bg CPU | load |\n|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    if args.write:
        write_section("Render latency while training", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
