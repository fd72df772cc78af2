"""StyleGAN2's upsampling convolutions (stride-2 3x3 transposed, 256 px official channels): torch's
conv_transpose2d (oneDNN) vs ours, one matmul + the C++ col2im (`ops_cuda/transposed_conv.py`).

Times each layer shape both ways, alternating, as process CPU time (best of --repeat), with the
weight already in the transposed layout (as the explorer's weight cache keeps it):

    python -m bench.conv_transpose --threads 1 --write
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch
import torch.nn.functional as F

from bench.common import publish, report_header
from ops_cuda import _native, transposed_conv

# (input channels, output channels, input size) of the upsampling layers of a 256 px StyleGAN2
# (cbase 16384, cmax 512); the 64 -> 128 and 128 -> 256 px ones also run by Winograd phases.
LAYERS = [(512, 512, 4), (512, 512, 8), (512, 512, 16), (512, 256, 32), (256, 128, 64), (128, 64, 128)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.conv_transpose", description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5, help="timed calls per impl and layer (best kept)")
    p.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ext = _native.load_extension("cpu")
    rows = []
    for in_ch, out_ch, size in LAYERS:
        x = torch.randn(1, in_ch, size, size)
        w = torch.randn(in_ch, out_ch, 3, 3)
        fns = {
            "torch": lambda x=x, w=w: F.conv_transpose2d(x, w, stride=2),
            "ours": lambda x=x, w=w: transposed_conv.conv_transpose_gemm(ext, x, w, (0, 0)),
        }
        best = dict.fromkeys(fns, math.inf)
        with torch.no_grad():
            diff = float((fns["torch"]() - fns["ours"]()).abs().max())
            for _ in range(args.repeat):
                for name, fn in fns.items():
                    t0 = time.process_time()
                    fn()
                    best[name] = min(best[name], time.process_time() - t0)
        rows.append(
            f"| {in_ch} -> {out_ch}, {size} -> {2 * size + 1} px | {best['torch'] * 1e3:.2f} | "
            f"{best['ours'] * 1e3:.2f} | {best['torch'] / best['ours']:.2f}x | {diff:.1e} |"
        )
    body = (
        report_header("bench.conv_transpose", argv)
        + "Best process CPU ms of each layer (batch 1, fp32, no bias or filter):\n\n"
        "| layer | torch conv_transpose2d | matmul + col2im | speed-up | max diff |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
    )
    return publish("StyleGAN2 transposed convolutions: oneDNN vs matmul + col2im", body, args.write)


if __name__ == "__main__":
    sys.exit(main())
