"""Stride-1 3x3 convolutions of real generator layers: oneDNN (torch) vs Winograd F(2x2) and F(4x4).

Records every 3x3 convolution of one generator forward at batch 1 (random weights, the official
channel settings), then times each distinct layer with torch's convolution and with
`ops_cuda.winograd.conv3x3` at both tile sizes, alternating, as process CPU time (best of
--repeat). The last columns say what `winograd.pick_tile` chooses and the time of that choice, so
the rule can be checked against the measurements. With --batch N the layers run on N samples, also
as a grouped convolution with per-sample weights (how a batch of modulated convolutions runs
without Winograd):

    python -m bench.conv3x3 --configs sg3t-256 sg2-256 sg3t-1024 --threads 1 --write
    python -m bench.conv3x3 --configs sg3t-64 sg3t-256 --batch 8 --threads 1 --write
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench.common import publish, report_header
from bench.generator import make_generator
from ops_cuda import _native, winograd

CONFIGS = {
    "sg3t-64": ("stylegan3-t", 64, 4096, 64),  # the default model's channels
    "sg2-64": ("stylegan2", 64, 4096, 64),  # the StyleGAN2 comparison model's
    "sg3t-256": ("stylegan3-t", 256, 16384, 512),
    "sg3t-1024": ("stylegan3-t", 1024, 32768, 512),
    "sg2-256": ("stylegan2", 256, 16384, 512),
    "sg2-1024": ("stylegan2", 1024, 32768, 512),
}


def record_conv3x3_calls(arch: str, res: int, cbase: int, cmax: int) -> list[tuple[tuple, tuple, tuple]]:
    """(input shape, weight shape, padding) of every stride-1 3x3 conv3x3 call of one forward."""
    G = make_generator(arch, res, cbase, cmax)
    calls = []
    real = winograd.conv3x3_auto

    def spy(ext, x, w, padding):
        calls.append((tuple(x.shape), tuple(w.shape), tuple(padding)))
        return real(ext, x, w, padding)

    winograd.conv3x3_auto = spy
    try:
        with torch.no_grad():
            G(torch.randn([1, G.z_dim]), torch.zeros([1, G.c_dim]), noise_mode="const")
    finally:
        winograd.conv3x3_auto = real
    return calls


def best_cpu_ms(fns: dict[str, Callable[[], torch.Tensor]], repeat: int) -> dict[str, float]:
    best = {k: math.inf for k in fns}
    for _ in range(repeat):  # alternate, so all see the same background load
        for k, fn in fns.items():
            t0 = time.process_time()
            fn()
            best[k] = min(best[k], (time.process_time() - t0) * 1000.0)
    return best


def bench_config(name: str, repeat: int, batch: int) -> tuple[list[str], dict[str, float]]:
    """Per distinct layer at `batch` samples: oneDNN with one shared weight, F(2x2), F(4x4) and (for
    a batch) oneDNN grouped with per-sample weights, the other way modulated convolutions run."""
    ext = _native.load_extension("cpu")
    calls = record_conv3x3_calls(*CONFIGS[name])
    groups: dict[tuple, int] = {}
    for key in calls:
        groups[key] = groups.get(key, 0) + 1
    rows, totals = [], {"onednn": 0.0, "grouped": 0.0, "F2": 0.0, "F4": 0.0, "picked": 0.0}
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for (xs, ws, pad), count in groups.items():
            xs = (batch, *xs[1:])
            x = torch.randn(xs, generator=gen)
            w = torch.randn(ws, generator=gen) / (3 * math.sqrt(ws[1]))
            wg = w.repeat(batch, 1, 1, 1)  # per-sample weights (all equal here; the cost is the same)
            fns = {
                "onednn": lambda x=x, w=w, pad=pad: F.conv2d(x, w, padding=list(pad)),
                "F2": lambda x=x, w=w, pad=pad: winograd.conv3x3(ext, x, w, pad, 2),
                "F4": lambda x=x, w=w, pad=pad: winograd.conv3x3(ext, x, w, pad, 4),
            }
            if batch > 1:
                fns["grouped"] = lambda x=x, wg=wg, pad=pad, xs=xs: F.conv2d(
                    x.reshape(1, -1, *xs[2:]), wg, padding=list(pad), groups=batch
                )
            ms = best_cpu_ms(fns, repeat)
            out_h, out_w = xs[2] + 2 * pad[0] - 2, xs[3] + 2 * pad[1] - 2
            m = winograd.pick_tile(xs[1], ws[0], out_h, out_w, batch)
            direct = ms.get("grouped", ms["onednn"])  # what runs without Winograd
            picked = direct if m is None else ms[f"F{m}"]
            for k in fns:
                totals[k] += ms[k] * count
            totals["picked"] += picked * count
            best = min(ms, key=ms.get)
            layer = f"{list(xs)} -> {ws[0]} ch, pad {pad[0]}"
            times = " | ".join(f"{ms[k]:.1f}" if k in ms else "-" for k in ("onednn", "grouped", "F2", "F4"))
            choice = "oneDNN" if m is None else f"F{m}"
            gain = direct / picked
            rows.append(f"| {name} | {layer} | x{count} | {times} | {best} | {choice} | {gain:.2f}x |")
            print(rows[-1], flush=True)
    return rows, totals


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.conv3x3", description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["sg3t-256", "sg2-256"], choices=sorted(CONFIGS))
    p.add_argument("--repeat", type=int, default=3, help="timed runs per layer and method (best is kept)")
    p.add_argument(
        "--batch", type=int, default=1, help="samples per call (the layers' shapes at batch 1 are kept)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--note", default="", help="a line for the report (e.g. how busy the machine was)")
    p.add_argument("--write", action="store_true", help="also write the section of docs/benchmarks.md")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, summary = [], []
    for name in args.configs:
        config_rows, t = bench_config(name, args.repeat, args.batch)
        rows += config_rows
        direct = t["grouped"] if args.batch > 1 else t["onednn"]
        cells = " | ".join(f"{t[k] / 1000:.3f}" for k in ("onednn", "grouped", "F2", "F4", "picked"))
        summary.append(f"| {name} | {args.batch} | {cells} | {direct / t['picked']:.2f}x |")
    body = (
        report_header("bench.conv3x3", argv, args.note)
        + f"fp32, batch {args.batch}, random weights with the official channel settings. Process CPU ms per "
        f"call, best of {args.repeat}, the methods alternating. *oneDNN*: torch's convolution with one "
        "shared weight; *grouped*: with per-sample weights (a batch's modulated convolutions run one of "
        "the two); F(2x2), F(4x4): Winograd (shared weight). Totals: CPU seconds over all 3x3 "
        "convolutions of one forward (each layer counted as often as the generator runs it); *picked*: what "
        "`winograd.pick_tile` chooses per layer (at the batch size), "
        "against oneDNN (grouped for a batch) without Winograd.\n\n"
        "| config | batch | oneDNN s | grouped s | all F(2x2) s | all F(4x4) s | picked s | speed-up |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(summary) + "\n\nPer distinct layer (ms):\n\n"
        "| config | layer | calls | oneDNN | grouped | F(2x2) | F(4x4) | fastest | picked | speed-up |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    title = "conv3x3: Winograd vs oneDNN" + (f", batch {args.batch}" if args.batch > 1 else "")
    return publish(title, body, args.write)


if __name__ == "__main__":
    sys.exit(main())
