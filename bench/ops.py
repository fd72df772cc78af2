"""Op speed: reference (pure torch) vs compiled CPU kernels at the real StyleGAN3 layer shapes.

The layer shapes come from running a randomly initialised generator with the official settings
(SG3-T 256 px: cbase 16384, cmax 512; SG3-T 1024 px: cbase 32768, cmax 512) and recording every
filtered_lrelu call. For each distinct call we time, at batch 1:
  - filtered_lrelu (the fused kernel vs bias + upfirdn2d + lrelu + upfirdn2d in torch),
  - upfirdn2d: the two resampling steps of that layer (up-filter, then filter-down),
  - bias_act: bias + lrelu + clamp on the layer's input.
Totals are per generated image (each call counted as often as the generator makes it).

    python -m bench.ops --configs sg3t-256 sg3t-1024 --write

With --flrelu-backward CONFIG:BATCH ..., it times instead filtered_lrelu forward + first-order
backward of every distinct layer call at that batch, with the old unfused backward (upfirdn2d kernel
calls + torch elementwise passes over the full-size upsampled tensor) and the fused backward kernel,
alternately in the same process (best of --repeat each):

    python -m bench.ops --flrelu-backward sg3t-64:16 sg3t-256:1 --write

With --other-build SO CONFIG:BATCH ..., it times the filtered_lrelu forward and fused backward kernels
of another compiled build of the extension (e.g. one built from an older commit: its
ops_cuda_cpu_<hash>.so) against the current build, loaded side by side in this process and run
alternately, as process CPU time per output pixel (best of --repeat):

    python -m bench.ops --other-build OLD.so --builds-at sg3r-256:1 sg3t-256:1 sg3t-64:8 --threads 1
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable

import torch

import ops_cuda
from bench.common import publish, report_header
from bench.generator import make_generator
from ops_cuda import bias_act, filtered_lrelu, upfirdn2d

CONFIGS = {
    "sg3t-64": ("stylegan3-t", 64, 8192, 128),
    "sg3t-256": ("stylegan3-t", 256, 16384, 512),
    "sg3t-1024": ("stylegan3-t", 1024, 32768, 512),
    "sg3r-64": ("stylegan3-r", 64, 4096, 64),  # doubled by make_generator: the toon run's 8192 / 128
    "sg3r-256": ("stylegan3-r", 256, 16384, 512),
}


def record_layer_calls(arch: str, res: int, cbase: int, cmax: int) -> list[tuple[tuple, dict]]:
    """(input shape, keyword arguments) of every filtered_lrelu call of one forward at batch 1."""
    import gan.networks.stylegan3 as sg3

    G = make_generator(arch, res, cbase, cmax)
    calls: list[tuple[tuple, dict]] = []
    real = sg3.filtered_lrelu

    def spy(x, **kwargs):
        calls.append((tuple(x.shape), kwargs))
        return real(x, **kwargs)

    sg3.filtered_lrelu = spy
    try:
        with torch.no_grad():
            G(torch.randn([1, G.z_dim]), torch.zeros([1, G.c_dim]), noise_mode="const")
    finally:
        sg3.filtered_lrelu = real
    return calls


def _key(shape: tuple, kw: dict) -> tuple:
    def fshape(f):
        return None if f is None else tuple(f.shape)

    return (shape, kw["up"], kw["down"], tuple(kw["padding"]), fshape(kw["fu"]), fshape(kw["fd"]), kw["gain"])


def best_ms(fn: Callable[[], torch.Tensor], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000.0


def bench_config(name: str, repeat: int) -> tuple[list[str], dict[str, list[float]]]:
    arch, res, cbase, cmax = CONFIGS[name]
    calls = record_layer_calls(arch, res, cbase, cmax)
    groups: dict[tuple, list] = {}
    for shape, kw in calls:
        groups.setdefault(_key(shape, kw), [shape, kw, 0])[2] += 1
    rows = []
    totals = {op: [0.0, 0.0] for op in ("filtered_lrelu", "upfirdn2d", "bias_act")}
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for shape, kw, count in groups.values():
            x = torch.randn(shape, generator=gen)
            b = torch.randn(shape[1], generator=gen)
            fu, fd, up, down, pad = kw["fu"], kw["fd"], kw["up"], kw["down"], kw["padding"]
            h = upfirdn2d.upfirdn2d(x, fu, up=up, padding=pad, gain=up**2)  # input of the down step

            def run(op: str, impl: str, x=x, b=b, kw=kw, fu=fu, fd=fd, up=up, down=down, pad=pad, h=h):
                if op == "filtered_lrelu":
                    kw = {**kw, "b": b}
                    return filtered_lrelu.filtered_lrelu(x, **kw, impl=impl)
                if op == "upfirdn2d":
                    a = upfirdn2d.upfirdn2d(x, fu, up=up, padding=pad, gain=up**2, impl=impl)
                    return a, upfirdn2d.upfirdn2d(h, fd, down=down, impl=impl)
                return bias_act.bias_act(x, b, act="lrelu", clamp=256, impl=impl)

            cells = []
            for op in totals:
                diff = _max_diff(run(op, "cpu"), run(op, "ref"))
                ms_ref = best_ms(lambda op=op: run(op, "ref"), repeat)
                ms_cpu = best_ms(lambda op=op: run(op, "cpu"), repeat)
                totals[op][0] += ms_ref * count
                totals[op][1] += ms_cpu * count
                cells.append(f"{ms_ref:.1f} / {ms_cpu:.1f} ({ms_ref / ms_cpu:.1f}x, diff {diff:.0e})")
            desc = f"{list(shape)} up {up} down {down} pad {list(pad)} fu {_taps(fu)} fd {_taps(fd)} x{count}"
            rows.append(f"| {name} | {desc} | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    return rows, totals


def bench_flrelu_backward(name: str, batch: int, repeat: int) -> tuple[list[str], list[float]]:
    """Per distinct layer call: ms of forward + backward with the old and the fused backward."""
    from ops_cuda import _native, _native_ops
    from ops_cuda.upfirdn2d import parse_padding

    ext = _native.load_extension("cpu")
    arch, res, cbase, cmax = CONFIGS[name]
    groups: dict[tuple, list] = {}
    for shape, kw in record_layer_calls(arch, res, cbase, cmax):
        groups.setdefault(_key(shape, kw), [shape, kw, 0])[2] += 1
    rows, totals = [], [0.0, 0.0, 0.0]  # old, fused, forward alone
    gen = torch.Generator().manual_seed(0)
    for shape, kw, count in groups.values():
        x = torch.randn((batch, *shape[1:]), generator=gen)
        b = torch.randn(shape[1], generator=gen)
        fu, fd, up, down = kw["fu"], kw["fd"], kw["up"], kw["down"]
        pad = parse_padding(kw["padding"])
        gain, slope, clamp = float(kw["gain"]), float(kw["slope"]), kw["clamp"]
        wu = _native_ops._prepare_filter(fu, float(up**2), False, x)
        wd = _native_ops._prepare_filter(fd, 1.0, False, x)
        c = -1.0 if clamp is None else float(clamp)

        def forward(x=x, b=b, wu=wu, wd=wd, up=up, down=down, pad=pad, gain=gain, slope=slope, c=c):
            return ext.filtered_lrelu_fwd(x, wu, wd, b, up, down, *pad, gain, slope, c)

        y = forward()
        dy = torch.randn(y.shape, generator=gen)
        args = (ext, x, b, wu, wd, dy, up, down, pad, gain, slope, clamp)
        grads = {"old": _native_ops._filtered_lrelu_grad, "fused": _native_ops._filtered_lrelu_grad_fused}
        results = {k: g(*args) for k, g in grads.items()}
        diff = max(_max_diff(a, b) for a, b in zip(results["old"], results["fused"]))
        best = {k: math.inf for k in grads}
        for _ in range(repeat):  # alternate, so both see the same background load
            for k, g in grads.items():
                t0 = time.perf_counter()
                forward()
                g(*args)
                best[k] = min(best[k], (time.perf_counter() - t0) * 1000.0)
        ms_fwd = best_ms(forward, repeat)
        totals[0] += best["old"] * count
        totals[1] += best["fused"] * count
        totals[2] += ms_fwd * count
        fuh, fuw = (1, 1) if fu is None else (fu.shape[0], fu.shape[-1])
        hm, wm = shape[2] * up + pad[2] + pad[3] - fuh + 1, shape[3] * up + pad[0] + pad[1] - fuw + 1
        u_mb = batch * shape[1] * hm * wm
        desc = f"{list(x.shape)} up {up} down {down} fu {_taps(fu)} fd {_taps(fd)} x{count}"
        rows.append(
            f"| {name} | {desc} | {ms_fwd:.1f} | {best['old']:.1f} | {best['fused']:.1f} | "
            f"{best['old'] / best['fused']:.1f}x | {u_mb * 4 / 2**20:.0f} | {diff:.0e} |"
        )
        print(rows[-1], flush=True)
    return rows, totals


def flrelu_backward_main(args, argv) -> int:
    rows, summary = [], []
    for name, batch in args.flrelu_backward:
        config_rows, (old, fused, fwd) = bench_flrelu_backward(name, batch, args.repeat)
        rows += config_rows
        summary.append(
            f"| {name} | {batch} | {fwd:.0f} | {old:.0f} | {fused:.0f} | {old / fused:.2f}x | "
            f"{(old - fwd) / max(fused - fwd, 1e-9):.1f}x |"
        )
    body = (
        report_header("bench.ops", argv, args.note)
        + "fp32, CPU kernels. Forward = the fused forward kernel; fwd + bwd = forward then the first-order "
        "backward (dx and db) with the old unfused backward (upfirdn2d kernel calls plus torch elementwise "
        "passes over the full-size upsampled tensor) or the fused backward kernel. Old and fused were "
        f"timed alternately in the same process, best of {args.repeat}. Totals: sum over all layer calls "
        "of one generator forward (each counted as often as the generator makes it). Backward alone: "
        "(fwd + bwd - forward) old over the same for fused.\n\n"
        "| config | batch | forward ms | fwd + bwd old ms | fwd + bwd fused ms | speed-up "
        "| backward alone |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(summary)
        + "\n\nPer distinct layer call (u MB: size of "
        "one full-size upsampled fp32 tensor, which the old backward materialises several times; diff: max "
        "abs difference of dx/db old vs fused).\n\n"
        "| config | layer call | forward ms | fwd + bwd old ms | fwd + bwd fused ms | speed-up | u MB "
        "| diff |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    return publish("Ops: filtered_lrelu backward", body, args.write)


def load_build(path: str):
    """Import a compiled ops_cuda extension file (another build) without compiling anything."""
    import importlib.machinery
    import importlib.util

    name = os.path.basename(path).split(".")[0]  # must match the file's PyInit_<name>
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def bench_builds(other_path: str, name: str, batch: int, repeat: int) -> tuple[list[str], list[float]]:
    """Per distinct layer call: CPU ns per output pixel of forward and fused backward, other build vs
    the current one (alternating), and the totals over one generator forward's calls."""
    from ops_cuda import _native, _native_ops
    from ops_cuda.upfirdn2d import parse_padding

    builds = {"other": load_build(other_path), "current": _native.load_extension("cpu")}
    arch, res, cbase, cmax = CONFIGS[name]
    groups: dict[tuple, list] = {}
    for shape, kw in record_layer_calls(arch, res, cbase, cmax):
        groups.setdefault(_key(shape, kw), [shape, kw, 0])[2] += 1
    rows, totals = [], [0.0, 0.0, 0.0, 0.0]  # fwd other, fwd current, bwd other, bwd current (s)
    gen = torch.Generator().manual_seed(0)
    for shape, kw, count in groups.values():
        x = torch.randn((batch, *shape[1:]), generator=gen)
        b = torch.randn(shape[1], generator=gen)
        fu, fd, up, down = kw["fu"], kw["fd"], kw["up"], kw["down"]
        pad = parse_padding(kw["padding"])
        c = -1.0 if kw["clamp"] is None else float(kw["clamp"])
        wu = _native_ops._prepare_filter(fu, float(up**2), False, x)
        wd = _native_ops._prepare_filter(fd, 1.0, False, x)
        args = (wu, wd, b, up, down, *pad, float(kw["gain"]), float(kw["slope"]), c)
        y = builds["current"].filtered_lrelu_fwd(x, *args)
        dy = torch.randn(y.shape, generator=gen)
        diff = (builds["other"].filtered_lrelu_fwd(x, *args) - y).abs().max().item()
        best = {(k, d): math.inf for k in builds for d in ("fwd", "bwd")}
        for _ in range(repeat):
            for k, ext in builds.items():
                c0 = time.process_time()
                ext.filtered_lrelu_fwd(x, *args)
                c1 = time.process_time()
                ext.filtered_lrelu_grad(dy, x, *args)
                c2 = time.process_time()
                best[k, "fwd"] = min(best[k, "fwd"], c1 - c0)
                best[k, "bwd"] = min(best[k, "bwd"], c2 - c1)
        ns = 1e9 / y.numel()
        for i, key in enumerate([("other", "fwd"), ("current", "fwd"), ("other", "bwd"), ("current", "bwd")]):
            totals[i] += best[key] * count
        desc = f"{list(x.shape)} up {up} down {down} fu {_taps(fu)} fd {_taps(fd)} x{count}"
        rows.append(
            f"| {name} | {desc} | {best['other', 'fwd'] * ns:.1f} | {best['current', 'fwd'] * ns:.1f} | "
            f"{best['other', 'fwd'] / best['current', 'fwd']:.2f}x | {best['other', 'bwd'] * ns:.1f} | "
            f"{best['current', 'bwd'] * ns:.1f} | {best['other', 'bwd'] / best['current', 'bwd']:.2f}x | "
            f"{diff:.0e} |"
        )
        print(rows[-1], flush=True)
    return rows, totals


def builds_main(args, argv) -> int:
    rows, summary = [], []
    for name, batch in args.builds_at:
        config_rows, t = bench_builds(args.other_build, name, batch, args.repeat)
        rows += config_rows
        summary.append(
            f"| {name} | {batch} | {t[0]:.2f} | {t[1]:.2f} | {t[0] / t[1]:.2f}x | {t[2]:.2f} | {t[3]:.2f} "
            f"| {t[2] / t[3]:.2f}x |"
        )
    body = (
        report_header("bench.ops", argv, args.note)
        + "filtered_lrelu CPU kernels of two builds loaded in one process: 'other' = "
        f"`{os.path.basename(args.other_build)}`, "
        "'current' = this checkout's. Process CPU time (best of the repeats, the builds alternating), "
        "fp32. Totals: CPU seconds summed over one generator forward's calls (each counted as often as "
        "the generator makes it) at the batch given.\n\n"
        "| config | batch | fwd other s | fwd current s | speed-up | bwd other s | bwd current s "
        "| speed-up |\n"
        "|---|---|---|---|---|---|---|---|\n"
        + "\n".join(summary)
        + "\n\nPer distinct layer call: CPU nanoseconds per output pixel (and max abs difference of the "
        "two builds' forward outputs).\n\n"
        "| config | layer call | fwd other | fwd current | speed-up | bwd other | bwd current | speed-up "
        "| diff |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    return publish("Ops: filtered_lrelu kernels, two builds", body, args.write)


def config_batch(spec: str) -> tuple[str, int]:
    """argparse type of CONFIG:BATCH options: the config name and the batch size."""
    name, _, batch = spec.partition(":")
    if name not in CONFIGS or not batch.isdigit():
        raise argparse.ArgumentTypeError(
            f"expected CONFIG:BATCH with CONFIG in {list(CONFIGS)}, got {spec!r}"
        )
    return name, int(batch)


def _taps(f: torch.Tensor | None) -> str:
    return "-" if f is None else "x".join(str(s) for s in f.shape)


def _max_diff(a, b) -> float:
    if isinstance(a, tuple):
        return max(_max_diff(x, y) for x, y in zip(a, b))
    return (a - b).abs().max().item()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["sg3t-256", "sg3t-1024"], choices=list(CONFIGS))
    p.add_argument("--repeat", type=int, default=3, help="timed runs per op and impl (best is kept)")
    p.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    p.add_argument("--note", default="", help="extra remark for the doc (e.g. that the machine was shared)")
    p.add_argument(
        "--flrelu-backward",
        nargs="+",
        type=config_batch,
        metavar="CONFIG:BATCH",
        help="time filtered_lrelu forward + backward, old unfused vs fused backward (e.g. sg3t-64:16)",
    )
    p.add_argument(
        "--other-build", metavar="SO", help="another build's compiled extension file to compare with"
    )
    p.add_argument(
        "--builds-at",
        nargs="+",
        type=config_batch,
        metavar="CONFIG:BATCH",
        default=[("sg3r-256", 1), ("sg3t-256", 1)],
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.other_build:
        return builds_main(args, argv)
    if args.flrelu_backward:
        return flrelu_backward_main(args, argv)

    caps = ops_cuda.capabilities("cpu", build=True)
    if any(caps[op]["impl"] != "cpu" for op in ("filtered_lrelu", "upfirdn2d", "bias_act")):
        print(f"the CPU kernels are not available: {caps}", file=sys.stderr)
        return 1
    rows, summary = [], []
    for name in args.configs:
        config_rows, totals = bench_config(name, args.repeat)
        rows += config_rows
        for op, (ms_ref, ms_cpu) in totals.items():
            summary.append(f"| {name} | {op} | {ms_ref:.0f} | {ms_cpu:.0f} | {ms_ref / ms_cpu:.1f}x |")
    body = (
        report_header("bench.ops", argv, args.note)
        + "Batch 1, fp32, best of the repeats. Per image: the sum over all layer calls of one "
        "generator forward.\n\n"
        "| config | op | ref ms / image | cpu ms / image | speed-up |\n|---|---|---|---|---|\n"
        + "\n".join(summary)
        + "\n\nPer distinct layer call: ref ms / cpu ms (speed-up, max abs difference of the outputs).\n\n"
        "| config | layer call | filtered_lrelu | upfirdn2d (up + down step) | bias_act |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows)
    )
    return publish("Ops: reference vs CPU kernels", body, args.write)


if __name__ == "__main__":
    sys.exit(main())
