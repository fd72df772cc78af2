"""Generator forward, our fast path against our reference path, alternately in one process.

The reference path (`impl='ref'`: pure-torch ops and the fused per-sample-weight modulated
convolution) re-implements NVIDIA's reference code, so ref / auto is our speed-up over it. The two
run in turns (ref, auto, ref, auto, ...) on the same network and latents, so a busy machine slows
both alike and the ratio survives where absolute times do not. Every round records the load
average; the table says how busy the machine was.

Randomly initialised generators with the official 256 px settings (see bench.generator), fp32,
noise_mode='const'.

    python -m bench.side_by_side --archs stylegan3-t stylegan3-r stylegan2 --batch 1 8 --rounds 3
    python -m bench.side_by_side --archs stylegan3-t --threads 1 2 --rounds 2 --write
    python -m bench.side_by_side --impls ref auto+cache   # with the explorer's weight cache
    python -m bench.side_by_side --malloc default   # glibc's own malloc settings, not the app's
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import torch

import ops_cuda
from bench.common import machine_summary, write_section
from bench.generator import CONFIGS, make_generator


def uptime() -> str:
    """The `uptime` line (load averages over 1, 5 and 15 minutes)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)  # seconds per image
    cpu: list[float] = field(default_factory=list)  # process CPU seconds per image (all threads)


def forward(
    G: torch.nn.Module, z: torch.Tensor, impl: str, cache: ops_cuda.WeightCache | None = None
) -> tuple[float, float, torch.Tensor]:
    """(wall s, CPU s, images) of one mapping + synthesis pass with ops impl `impl` (and the weight
    cache `cache` active, if given)."""
    c = torch.zeros([z.shape[0], G.c_dim])
    cached = contextlib.nullcontext() if cache is None else ops_cuda.cached_weights(cache)
    with torch.no_grad(), ops_cuda.prefer_impl(impl), cached:
        t0, c0 = time.perf_counter(), time.process_time()
        ws = G.mapping(z, c, truncation_psi=1.0)
        img = G.synthesis(ws, noise_mode="const", force_fp32=True)
        return time.perf_counter() - t0, time.process_time() - c0, img


def side_by_side(
    G: torch.nn.Module, batch: int, impls: tuple[str, str], rounds: int
) -> tuple[dict[str, Timing], list[float], float]:
    """Alternate the two impls `rounds` times after one untimed warm-up each. Returns the timings,
    the 1-minute load average of each round and the largest absolute image difference."""
    z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(0))
    # 'auto+cache': impl auto with one weight cache over the row, as the explorer's renderer keeps
    # (filled by the warm-up).
    caches = {impl: ops_cuda.WeightCache() if impl.endswith("+cache") else None for impl in impls}
    ops = {impl: impl.removesuffix("+cache") for impl in impls}

    def run(impl: str) -> tuple[float, float, torch.Tensor]:
        return forward(G, z, ops[impl], caches[impl])

    images = {impl: run(impl)[2] for impl in impls}  # warm-up (kernel loading, caches)
    diff = (images[impls[0]] - images[impls[1]]).abs().max().item()
    timings = {impl: Timing() for impl in impls}
    loads = []
    for _ in range(rounds):
        loads.append(os.getloadavg()[0])
        for impl in impls:
            wall, cpu, _img = run(impl)
            timings[impl].wall.append(wall / batch)
            timings[impl].cpu.append(cpu / batch)
    return timings, loads, diff


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--res", type=int, default=256)
    p.add_argument("--cbase", type=int, default=16384, help="doubled for stylegan3-r, as the official config")
    p.add_argument("--cmax", type=int, default=512, help="doubled for stylegan3-r, as the official config")
    p.add_argument("--batch", type=int, nargs="+", default=[1])
    p.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    p.add_argument("--rounds", type=int, default=3, help="timed (ref, auto) pairs per row")
    p.add_argument(
        "--impls",
        nargs=2,
        default=["ref", "auto"],
        help="the two impls compared (slow, fast); a '+cache' suffix keeps the explorer's weight cache",
    )
    p.add_argument(
        "--malloc",
        choices=["keep", "default"],
        default="keep",
        help="keep: freed memory stays in the heap, as in the app (ops_cuda.allocator); default: glibc's",
    )
    p.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    p.add_argument("--note", default="", help="extra remark for the doc")
    args = p.parse_args(argv)
    cmd = "python -m bench.side_by_side " + shlex.join(a for a in (argv or sys.argv[1:]) if a != "--write")
    slow, fast = args.impls
    if args.malloc == "keep":
        ops_cuda.allocator.keep_freed_memory()
    start = uptime()
    print(f"start: {start}", flush=True)
    rows = []
    for arch in args.archs:
        G = make_generator(arch, args.res, args.cbase, args.cmax)
        for threads in args.threads:
            torch.set_num_threads(threads)
            for batch in args.batch:
                t, loads, diff = side_by_side(G, batch, (slow, fast), args.rounds)
                med = {k: (statistics.median(v.wall), statistics.median(v.cpu)) for k, v in t.items()}
                pair = [s / f for s, f in zip(t[slow].wall, t[fast].wall)]
                cells = [
                    arch,
                    batch,
                    threads,
                    f"{med[slow][0]:.2f}",
                    f"{med[fast][0]:.2f}",
                    f"{med[slow][0] / med[fast][0]:.2f}x",
                    f"{min(pair):.2f}-{max(pair):.2f}x",
                    f"{med[slow][1]:.2f}",
                    f"{med[fast][1]:.2f}",
                    f"{med[slow][1] / med[fast][1]:.2f}x",
                    f"{diff:.1e}",
                    f"{min(loads):.1f}-{max(loads):.1f}",
                ]
                rows.append("| " + " | ".join(str(c) for c in cells) + " |")
                print(rows[-1], flush=True)
    end = uptime()
    print(f"end: {end}", flush=True)
    body = (
        f"Command: `{cmd}`\n\nMachine: {machine_summary()}\n\n"
        f"`uptime` at the start: `{start}`; at the end: `{end}`.\n\n"
        + (f"{args.note}\n\n" if args.note else "")
        + f"{args.res} px, random weights with the official channel settings, fp32, noise_mode const, "
        f"malloc settings: {args.malloc}. "
        f"Each row: one untimed warm-up per impl, then {args.rounds} rounds of '{slow}' then '{fast}' on the "
        "same latents. s / image: median wall seconds per image; CPU s: median process CPU seconds "
        "per image over all threads (less disturbed by other jobs than wall time); per-round: the "
        f"range of {slow} / {fast} of the wall times of each round; max diff: largest absolute "
        "difference of the images of the two impls; load: the 1-minute load average at each round "
        "(the machine has 2 cores, so a load above 2 means other jobs took CPU time).\n\n"
        f"| config | batch | threads | {slow} s / image | {fast} s / image | wall ratio | per-round "
        f"| {slow} CPU s | {fast} CPU s | CPU ratio | max diff | load |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    if args.write:
        batches = ", ".join(str(b) for b in args.batch)
        write_section(f"Side by side: {fast} vs {slow}, {args.res} px generators, batch {batches}", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
