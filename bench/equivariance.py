"""Equivariance (EQ-T, EQ-T_frac, EQ-R; PSNR dB) of randomly initialised StyleGAN2, StyleGAN3-T and
StyleGAN3-R generators, through `gan.metrics.equivariance.compute_equivariance`.

StyleGAN3 moves its Fourier-feature input; StyleGAN2 moves its learned 4x4 constant (band-limited
resampling, the same matrix convention), while its noise and convolution borders stay on the pixel
grid. The paper's settings: translations up to 1/8 image, rotations over the full circle.

Random weights give images of very different strength (StyleGAN3's are faint), and PSNR is
measured against the fixed range [-1, 1], so the table also gives each network's mean image power
and the EQ values relative to it (PSNR - 10 log10(4 / power)): the error relative to the picture.

    python -m bench.equivariance --write              # 64 px, small channels, 200 samples each
    python -m bench.equivariance --size official --res 256 --num 50   # the official channel counts
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass

import torch

from bench.common import load_note, machine_summary, write_section
from gan.metrics.equivariance import EquivarianceConfig, compute_equivariance
from gan.networks import build_generator

ARCHS = ("stylegan2", "stylegan3-t", "stylegan3-r")
LABELS = {"stylegan2": "SG2", "stylegan3-t": "SG3-T", "stylegan3-r": "SG3-R"}

# Channel settings: (channel_base, channel_max, z/w dim, mapping layers) per size and arch.
# 'official' are the defaults of NVIDIA's train.py (SG3-R doubles the channels).
SIZES = {
    "small": {
        "stylegan2": (4096, 64, 128, 2),
        "stylegan3-t": (4096, 64, 128, 2),
        "stylegan3-r": (8192, 128, 128, 2),
    },
    "official": {
        "stylegan2": (32768, 512, 512, 8),
        "stylegan3-t": (32768, 512, 512, 2),
        "stylegan3-r": (65536, 1024, 512, 2),
    },
}


def generator_kwargs(arch: str, res: int, size: str) -> dict:
    cbase, cmax, zw, layers = SIZES[size][arch]
    kwargs = dict(
        z_dim=zw,
        w_dim=zw,
        c_dim=0,
        img_resolution=res,
        img_channels=3,
        channel_base=cbase,
        channel_max=cmax,
        num_fp16_res=0,
        mapping_kwargs=dict(num_layers=layers),
    )
    if arch == "stylegan3-r":
        kwargs.update(conv_kernel=1, use_radial_filters=True)
    return kwargs


@dataclass
class Row:
    arch: str
    kwargs: dict
    params: int
    eq: dict[str, float]  # eqt_int, eqt_frac, eqr (PSNR dB)
    power: float  # mean squared pixel value of the generator's images (const noise, psi 1)
    seconds: float

    def relative(self, name: str) -> float:
        """EQ in dB relative to the image's own power instead of the range [-1, 1]."""
        return self.eq[name] - 10 * math.log10(4.0 / self.power)


@torch.no_grad()
def measure(arch: str, kwargs: dict, num: int, seed: int = 0, batch_size: int = 8, progress=None) -> Row:
    """EQ-T, EQ-T_frac and EQ-R of a generator built with torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    G = build_generator(arch, kwargs).eval().requires_grad_(False)
    params = sum(p.numel() for p in G.parameters())
    z = torch.randn(16, G.z_dim, generator=torch.Generator().manual_seed(seed + 1))
    power = float(G(z, torch.zeros(16, G.c_dim), noise_mode="const").square().mean())
    start = time.perf_counter()
    eq = compute_equivariance(
        G,
        num,
        eqt_int=True,
        eqt_frac=True,
        eqr=True,
        config=EquivarianceConfig(batch_size=batch_size),
        seed=seed,
        progress=progress,
    )
    return Row(arch, kwargs, params, eq, power, time.perf_counter() - start)


def describe(row: Row) -> str:
    k = row.kwargs
    return (
        f"{LABELS[row.arch]} {k['img_resolution']} px, cbase {k['channel_base']}, cmax {k['channel_max']}, "
        f"z/w {k['z_dim']}"
    )


def format_table(rows: list[Row]) -> str:
    lines = [
        "| generator (random init) | params | EQ-T | EQ-T_frac | EQ-R | image power | "
        "EQ-T rel. | EQ-T_frac rel. | EQ-R rel. | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {describe(r)} | {r.params / 1e6:.2f} M | {r.eq['eqt_int']:.2f} | {r.eq['eqt_frac']:.2f} | "
            f"{r.eq['eqr']:.2f} | {r.power:.4f} | {r.relative('eqt_int'):.2f} | "
            f"{r.relative('eqt_frac'):.2f} | {r.relative('eqr'):.2f} | {r.seconds:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num", type=int, default=200, help="samples per generator (the paper uses 50000)")
    p.add_argument("--res", type=int, default=64, help="image resolution (a power of two >= 16)")
    p.add_argument(
        "--size",
        choices=sorted(SIZES),
        default="small",
        help="channel settings: 'small' (fast on a CPU) or 'official' (NVIDIA's train.py defaults)",
    )
    p.add_argument("--archs", nargs="+", choices=ARCHS, default=list(ARCHS), help="generators to measure")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation and sampling seed")
    p.add_argument("--batch", type=int, default=8, help="samples per synthesis call")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--write", action="store_true", help="write the section into docs/benchmarks.md")
    args = p.parse_args(argv)
    if args.num < 1 or args.batch < 1 or args.threads < 1:
        p.error("--num, --batch and --threads must be at least 1")
    if args.res < 16 or args.res & (args.res - 1):
        p.error("--res must be a power of two >= 16")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run(args, argv)
    finally:
        torch.set_num_threads(threads_before)


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    cmd = "python -m bench.equivariance " + shlex.join(argv if argv is not None else sys.argv[1:])
    load_start = os.getloadavg()

    rows = []
    for arch in args.archs:
        kwargs = generator_kwargs(arch, args.res, args.size)
        print(f"{LABELS[arch]}: {args.num} samples ...", flush=True)

        def progress(done, total, what="", label=LABELS[arch]):
            if done % (args.batch * 5) == 0 or done == total:
                print(f"  {label} {done}/{total}", flush=True)

        rows.append(measure(arch, kwargs, args.num, seed=args.seed, batch_size=args.batch, progress=progress))
    load_end = os.getloadavg()
    table = format_table(rows)
    print(table)

    body = f"""Command: `{cmd.strip()}`

Machine: {machine_summary()}. Device cpu, fp32, noise_mode const, psi 1.

`gan.metrics.equivariance.compute_equivariance` on randomly initialised generators (weights from
`torch.manual_seed({args.seed})`), {args.num} samples each, the paper's settings: EQ-T with whole-pixel
translations, EQ-T_frac with fractional ones (up to 1/8 image), EQ-R with rotations over the full
circle; PSNR in dB for images in [-1, 1]. StyleGAN3 moves its Fourier-feature input; StyleGAN2
moves its learned 4x4 constant (band-limited resampling, the same matrix convention) while its
noise inputs and zero-padded borders stay fixed to the pixel grid. *Image power* is the mean
squared pixel value of 16 images; the *rel.* columns give the same errors relative to it
(PSNR - 10 log10(4 / power)), because random StyleGAN3 images are much fainter than StyleGAN2's and
PSNR against the fixed range rewards faint images. Trained networks are the paper's subject;
these numbers only show what the architectures do before any training.

{table}

{load_note(load_start, load_end)}
"""
    if args.write:
        name = f"Equivariance of random generators, {args.res} px, {args.size} channels"
        write_section(name, body)
        print(f"wrote section '{name}' into docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
