"""Generator speed: ms per image for StyleGAN2, StyleGAN3-T and StyleGAN3-R.

Randomly initialised networks with the official 256 px settings (cbase 16384, cmax 512,
z/w 512; mapping depth 8 for SG2 and 2 for SG3), fp32, noise_mode='const'.

    python -m bench.generator --res 256 --batch 1 8 --impl auto ref --write
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import ops_cuda
from bench.common import machine_summary, write_section
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
    z = torch.randn([batch, G.z_dim], generator=torch.Generator().manual_seed(0))
    c = torch.zeros([batch, G.c_dim])
    best = float("inf")
    with torch.no_grad(), ops_cuda.prefer_impl(impl):
        for _ in range(repeat):
            t0 = time.perf_counter()
            ws = G.mapping(z, c, truncation_psi=1.0)
            G.synthesis(ws, noise_mode="const", force_fp32=True)
            best = min(best, time.perf_counter() - t0)
    return best * 1000.0 / batch


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
    args = p.parse_args(argv)

    rows = []
    for arch in args.archs:
        G = make_generator(arch, args.res, args.cbase, args.cmax)
        params = sum(t.numel() for t in G.parameters()) / 1e6
        for impl in args.impl:
            for batch in args.batch:
                ms = time_generator(G, batch, impl, args.repeat)
                rows.append(f"| {arch} | {args.res} | {params:.1f} M | {impl} | {batch} | {ms:.0f} |")
                print(rows[-1], flush=True)
    cmd = "python -m bench.generator " + " ".join(argv if argv is not None else sys.argv[1:])
    body = (
        f"Command: `{cmd.replace(' --write', '')}`\n\nMachine: {machine_summary()}\n\n"
        "Best of the repeats, ms per image (mapping + synthesis, fp32, batch as given).\n\n"
        "| config | px | G params | ops impl | batch | ms / image |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    if args.write:
        write_section(f"Generator forward, {args.res} px", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
