"""Generator speed: ms per image for StyleGAN2, StyleGAN3-T and StyleGAN3-R.

Randomly initialised networks with the official 256 px settings (cbase 16384, cmax 512,
z/w 512; mapping depth 8 for SG2 and 2 for SG3), fp32, noise_mode='const'.

    python -m bench.generator --res 256 --batch 1 8 --impl auto ref --write
    python -m bench.generator --memory --write      # peak RSS of an SG3-T 1024 px forward, ref vs auto
    python -m bench.generator --flops --write       # modulated-conv FLOPs vs measured matmul speed
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

import ops_cuda
from bench.common import publish, report_header
from gan.networks import build_generator

CONFIGS = {
    "stylegan2": dict(mapping_kwargs=dict(num_layers=8)),
    "stylegan3-t": dict(mapping_kwargs=dict(num_layers=2)),
    "stylegan3-r": dict(mapping_kwargs=dict(num_layers=2), conv_kernel=1, use_radial_filters=True),
}


def make_generator(arch: str, res: int, cbase: int, cmax: int) -> torch.nn.Module:
    kwargs = dict(
        z_dim=512,
        w_dim=512,
        c_dim=0,
        img_resolution=res,
        img_channels=3,
        channel_base=cbase,
        channel_max=cmax,
        **CONFIGS[arch],
    )
    if arch != "stylegan2":
        kwargs["channel_base"] = cbase * 2 if arch == "stylegan3-r" else cbase
        kwargs["channel_max"] = cmax * 2 if arch == "stylegan3-r" else cmax
    return build_generator(arch, kwargs).eval().requires_grad_(False)


def time_generator(G: torch.nn.Module, batch: int, impl: str, repeat: int) -> float:
    """Best-of-`repeat` wall time in ms per image (mapping + synthesis)."""
    return time_generator_full(G, batch, impl, repeat)[0]


def time_generator_full(
    G: torch.nn.Module, batch: int, impl: str, repeat: int
) -> tuple[float, float, torch.Tensor]:
    """(best wall ms per image, process CPU ms per image of that run, images of the last run).

    CPU time counts the work of all threads and is less disturbed than wall time when other jobs
    share the machine."""
    z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(0))
    c = torch.zeros([batch, G.c_dim])
    best, best_cpu = float("inf"), float("inf")
    with torch.no_grad(), ops_cuda.prefer_impl(impl):
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            ws = G.mapping(z, c, truncation_psi=1.0)
            img = G.synthesis(ws, noise_mode="const", force_fp32=True)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if wall < best:
                best, best_cpu = wall, cpu
    return best * 1000.0 / batch, best_cpu * 1000.0 / batch, img


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def memory_child(arch: str, res: int, cbase: int, cmax: int, impl: str) -> dict:
    """Run in a fresh process: peak RSS once G is built (and the kernels loaded), then after one
    forward at batch 1."""
    G = make_generator(arch, res, cbase, cmax)
    ops_cuda.capabilities("cpu", build=True)  # load the compiled kernels before the baseline
    z = torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(0))
    before = _rss_mb()
    t0 = time.perf_counter()
    with torch.no_grad(), ops_cuda.prefer_impl(impl):
        G(z, torch.zeros([1, G.c_dim]), noise_mode="const")
    return {"impl": impl, "rss_before_mb": before, "peak_mb": _rss_mb(), "seconds": time.perf_counter() - t0}


def measure_memory(arch: str, res: int, cbase: int, cmax: int, impl: str) -> dict:
    """Peak memory of one forward, measured in a fresh subprocess (ru_maxrss) so runs do not mix."""
    code = (
        "import json, sys; from bench.generator import memory_child; "
        f"print(json.dumps(memory_child({arch!r}, {res}, {cbase}, {cmax}, {impl!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def count_conv_flops(G: torch.nn.Module) -> float:
    """FLOPs of all conv2d calls of one forward at batch 1 (multiply-add = 2 FLOPs). In SG2/SG3
    these are the modulated convolutions; the fully connected layers add well under 0.1 %."""
    F = torch.nn.functional
    total = 0.0
    real_conv = F.conv2d

    def conv2d(x, w, *args, **kwargs):
        nonlocal total
        y = real_conv(x, w, *args, **kwargs)
        total += 2.0 * y.numel() * w.shape[1] * w.shape[2] * w.shape[3]
        return y

    F.conv2d = conv2d
    try:
        with torch.no_grad():
            G(torch.randn([1, G.z_dim]), torch.zeros([1, G.c_dim]), noise_mode="const")
    finally:
        F.conv2d = real_conv
    return total


def matmul_gflops(n: int = 2048, repeat: int = 5) -> float:
    """Measured fp32 torch.mm throughput of this CPU (all threads), best of `repeat`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--res", type=int, default=256)
    p.add_argument("--cbase", type=int, default=16384)
    p.add_argument("--cmax", type=int, default=512)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--impl", nargs="+", default=["auto", "ref"])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    p.add_argument("--memory", action="store_true", help="only measure peak memory (SG3-T 1024, batch 1)")
    p.add_argument("--flops", action="store_true", help="only count conv FLOPs vs matmul throughput")
    p.add_argument("--note", default="", help="extra remark for the doc (e.g. that the machine was shared)")
    args = p.parse_args(argv)
    header = report_header("bench.generator", argv, args.note)
    if args.memory:
        return _main_memory(args, header)
    if args.flops:
        return _main_flops(args, header)

    rows = []
    for arch in args.archs:
        G = make_generator(arch, args.res, args.cbase, args.cmax)
        params = sum(t.numel() for t in G.parameters()) / 1e6
        for batch in args.batch:
            images = {}
            for impl in sorted(args.impl, key=lambda i: i != "ref"):  # ref first, to compare with
                ms, cpu_ms, images[impl] = time_generator_full(G, batch, impl, args.repeat)
                diff = "-"
                if impl != "ref" and "ref" in images:
                    diff = f"{(images[impl] - images['ref']).abs().max().item():.1e}"
                cells = [arch, args.res, f"{params:.1f} M", impl, batch, f"{ms:.0f}", f"{cpu_ms:.0f}", diff]
                rows.append("| " + " | ".join(str(c) for c in cells) + " |")
                print(rows[-1], flush=True)
    body = (
        header + "Best of the repeats, ms per image (mapping + synthesis, fp32, batch as given); CPU ms = "
        "process CPU time of that run over all threads; max diff = largest absolute difference of "
        "the images from those of impl 'ref' (which runs first).\n\n"
        "| config | px | G params | ops impl | batch | ms / image | CPU ms / image | max diff vs ref |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    return publish(f"Generator forward, {args.res} px", body, args.write)


def _main_memory(args: argparse.Namespace, header: str) -> int:
    res = 1024 if args.res == 256 else args.res  # the memory question is about the 1024 px model
    cbase = 32768 if args.cbase == 16384 else args.cbase
    rows = []
    for impl in args.impl:
        m = measure_memory("stylegan3-t", res, cbase, args.cmax, impl)
        growth = m["peak_mb"] - m["rss_before_mb"]
        rows.append(
            f"| stylegan3-t | {res} | {impl} | {m['rss_before_mb']:.0f} | {m['peak_mb']:.0f} | "
            f"{growth:.0f} | {m['seconds']:.1f} |"
        )
        print(rows[-1], flush=True)
    body = (
        header
        + f"Peak resident memory (ru_maxrss) of a fresh process that builds the generator (cbase {cbase}, "
        f"cmax {args.cmax}, fp32, random weights), loads the kernels, then runs one forward at batch 1. "
        "'before' = peak before the forward (libraries + weights), 'peak' = after it, 'forward' = the "
        "difference, i.e. the memory the forward itself needed.\n\n"
        "| config | px | ops impl | before MB | peak MB | forward MB | forward s |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    return publish(f"Generator peak memory, {res} px", body, args.write)


def _main_flops(args: argparse.Namespace, header: str) -> int:
    gflops = matmul_gflops()
    rows = []
    for arch in args.archs:
        G = make_generator(arch, args.res, args.cbase, args.cmax)
        conv = count_conv_flops(G)
        for impl in args.impl:
            ms = time_generator(G, 1, impl, args.repeat)
            rate = conv / 1e9 / (ms / 1000.0)
            rows.append(
                f"| {arch} | {args.res} | {conv / 1e9:.1f} | {impl} | {ms:.0f} | {rate:.1f} | "
                f"{100 * rate / gflops:.0f}% |"
            )
            print(rows[-1], flush=True)
    body = (
        header + f"Measured fp32 torch.mm throughput (2048 x 2048, best of 5): {gflops:.0f} GFLOP/s. "
        "FLOPs per image at batch 1 (multiply-add = 2) of all conv2d calls, i.e. the modulated "
        "convolutions (the fully connected layers add well under 0.1 %). GFLOP/s = those FLOPs over "
        "the whole forward's time; the last column is that rate as a fraction of the matmul "
        "throughput (the filters, activations and resampling count as overhead).\n\n"
        "| config | px | conv GFLOP / image | ops impl | ms / image | GFLOP/s | of mm throughput |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    return publish(f"Generator FLOPs, {args.res} px", body, args.write)


if __name__ == "__main__":
    sys.exit(main())
