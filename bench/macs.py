"""How close a generator forward comes to this CPU's limit: multiply-adds counted, and the forward's
rate against two measured peaks.

Counted per image at batch 1 (fp32, ops impl 'auto'):
- conv: every convolution the forward runs (F.conv2d / F.conv_transpose2d calls are intercepted;
  output elements x input channels per group x taps), i.e. the modulated convolutions, and the
  torch.bmm calls the 1x1 ones run as;
- fc: the fully connected layers (mapping network and the per-layer affines), from their shapes;
- fir: the resampling filters of filtered_lrelu / upfirdn2d as our kernels run them (polyphase, a
  separable filter as two 1-D passes, a mirrored 2-D one with its rows folded).
Times are process CPU seconds (all threads; best of the repeats), which other jobs on a shared
machine disturb far less than wall time; with one thread they equal the work done. Peaks, measured
with the same thread count:
- mm: fp32 torch.mm of 2048 x 2048 matrices (best of 5);
- conv alone: each distinct convolution of the forward run on its own (oneDNN, best of 3), summed
  over the calls, i.e. the time of the convolutions if nothing else ran. conv alone / forward is the
  fraction of the time spent at oneDNN's convolution speed.

    python -m bench.macs --archs stylegan3-t stylegan3-r stylegan2 --threads 1 2 --write
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter

import torch
import torch.nn.functional as F

import ops_cuda
from bench.common import publish, report_header
from bench.generator import CONFIGS, make_generator
from bench.side_by_side import uptime


def _taps(f: torch.Tensor | None) -> tuple[int, int, bool]:
    """(taps along x, taps along y, separable) of a filter as upfirdn2d reads it."""
    if f is None:
        return 1, 1, True
    return int(f.shape[-1]), int(f.shape[0]), f.ndim == 1


def _fir_macs_axis(n_out: int, taps: int, up: int) -> float:
    """Multiply-adds of one 1-D polyphase pass: each output uses about taps / up taps."""
    return n_out * max(1, math.ceil(taps / up))


def flrelu_fir_macs(shape: tuple[int, ...], fu, fd, up: int, down: int, padding) -> float:
    """Filter multiply-adds of one filtered_lrelu call as the CPU kernel computes them."""
    n, c, h, w = shape
    x0, x1, y0, y1 = ops_cuda.upfirdn2d.parse_padding(padding)
    fuw, fuh, usep = _taps(fu)
    fdw, fdh, dsep = _taps(fd)
    wm = w * up + x0 + x1 - fuw + 1
    hm = h * up + y0 + y1 - fuh + 1
    wo = (wm - fdw + down) // down
    ho = (hm - fdh + down) // down
    if usep:  # horizontal pass of the input rows, then vertical pass of the upsampled rows
        up_macs = h * _fir_macs_axis(wm, fuw, up) + wm * _fir_macs_axis(hm, fuh, up)
    else:
        up_macs = wm * hm * max(1, math.ceil(fuw / up)) * max(1, math.ceil(fuh / up))
    if dsep:  # vertical pass at the upsampled width, then horizontal at the output width
        down_macs = wm * ho * fdh + wo * ho * fdw
    else:
        mirrored = fd.ndim == 2 and torch.equal(fd, fd.flip(0))
        down_macs = wo * ho * fdw * (math.ceil(fdh / 2) if mirrored else fdh)
    return float(n * c * (up_macs + down_macs))


def count_macs(G: torch.nn.Module) -> tuple[dict[str, float], Counter]:
    """MACs per image by kind, and the distinct conv calls (a key to rerun them) with their counts."""
    import gan.networks.stylegan3 as sg3

    macs = {"conv": 0.0, "fc": 0.0, "fir": 0.0}
    convs: Counter = Counter()
    real_conv, real_convt, real_flrelu = F.conv2d, F.conv_transpose2d, sg3.filtered_lrelu
    real_bmm = torch.bmm

    def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
        y = real_conv(x, w, bias, stride, padding, dilation, groups)
        macs["conv"] += y.numel() * w.shape[1] * w.shape[2] * w.shape[3]
        convs[("conv", tuple(x.shape), tuple(w.shape), _pair(stride), _pair(padding), groups)] += 1
        return y

    def conv_transpose2d(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        y = real_convt(x, w, bias, stride, padding, output_padding, groups, dilation)
        macs["conv"] += x.numel() * w.shape[1] * w.shape[2] * w.shape[3]
        convs[("convt", tuple(x.shape), tuple(w.shape), _pair(stride), _pair(padding), groups)] += 1
        return y

    def bmm(a, b):  # the 1x1 modulated convolutions (ops_cuda.modconv)
        y = real_bmm(a, b)
        macs["conv"] += a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        convs[("bmm", tuple(a.shape), tuple(b.shape), (1, 1), (0, 0), 1)] += 1
        return y

    def flrelu(x, fu=None, fd=None, up=1, down=1, padding=0, **kwargs):
        macs["fir"] += flrelu_fir_macs(tuple(x.shape), fu, fd, up, down, padding)
        return real_flrelu(x, fu=fu, fd=fd, up=up, down=down, padding=padding, **kwargs)

    def upfirdn(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl="auto"):
        y = real_upfirdn(x, f, up, down, padding, flip_filter, gain, impl)
        fw, fh, sep = _taps(f)
        upx, upy = ops_cuda.upfirdn2d.parse_scaling(up)
        tx, ty = max(1, math.ceil(fw / upx)), max(1, math.ceil(fh / upy))
        n, c, ho, wo = y.shape
        # Separable: every input row passed horizontally, then each output row vertically.
        macs["fir"] += n * c * wo * (x.shape[2] * tx + ho * ty) if sep else y.numel() * tx * ty
        return y

    import ops_cuda.conv2d_resample as c2r

    real_upfirdn = ops_cuda.upfirdn2d.upfirdn2d
    patches = [
        (F, "conv2d", conv2d),
        (F, "conv_transpose2d", conv_transpose2d),
        (sg3, "filtered_lrelu", flrelu),
        (ops_cuda.upfirdn2d, "upfirdn2d", upfirdn),
        (c2r, "upfirdn2d", upfirdn),
        (torch, "bmm", bmm),
    ]
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in patches]
    for mod, name, fn in patches:
        setattr(mod, name, fn)
    try:
        with torch.no_grad():
            G(torch.randn([1, G.z_dim]), torch.zeros([1, G.c_dim]), noise_mode="const")
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)
    for m in G.modules():
        if type(m).__name__ == "FullyConnectedLayer":
            macs["fc"] += m.in_features * m.out_features
    return macs, convs


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def conv_alone_seconds(convs: Counter, repeat: int = 3) -> float:
    """Sum over the distinct convolutions (times their count) of the best time of each run alone."""
    total = 0.0
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for (kind, xs, ws, stride, padding, groups), count in convs.items():
            x, w = torch.randn(xs, generator=gen), torch.randn(ws, generator=gen)
            if kind == "bmm":
                fn = lambda x, w, **_: torch.bmm(x, w)  # noqa: E731
            else:
                fn = F.conv2d if kind == "conv" else F.conv_transpose2d
            fn(x, w, stride=stride, padding=padding, groups=groups)
            best = math.inf
            for _ in range(repeat):
                t0 = time.process_time()
                fn(x, w, stride=stride, padding=padding, groups=groups)
                best = min(best, time.process_time() - t0)
            total += best * count
    return total


def mm_gflops(n: int = 2048, repeat: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeat):
        t0 = time.process_time()
        torch.mm(a, b)
        best = min(best, time.process_time() - t0)
    return 2 * n**3 / best / 1e9


def forward_seconds(G: torch.nn.Module, repeat: int) -> float:
    z = torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(0))
    c = torch.zeros([1, G.c_dim])
    best = math.inf
    with torch.no_grad():
        G(z, c, noise_mode="const")
        for _ in range(repeat):
            t0 = time.process_time()
            G(z, c, noise_mode="const")
            best = min(best, time.process_time() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--res", type=int, default=256)
    p.add_argument("--cbase", type=int, default=16384)
    p.add_argument("--cmax", type=int, default=512)
    p.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--write", action="store_true")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    start = uptime()
    print(f"start: {start}", flush=True)
    rows, counts = [], []
    for arch in args.archs:
        G = make_generator(arch, args.res, args.cbase, args.cmax)
        macs, convs = count_macs(G)
        total = sum(macs.values())
        counts.append(
            f"| {arch} | {macs['conv'] / 1e9:.2f} | {macs['fc'] / 1e6:.1f} M | {macs['fir'] / 1e9:.2f} | "
            f"{total / 1e9:.2f} | {sum(convs.values())} |"
        )
        print(counts[-1], flush=True)
        for threads in args.threads:
            torch.set_num_threads(threads)
            peak = mm_gflops()
            fwd = forward_seconds(G, args.repeat)
            alone = conv_alone_seconds(convs)
            rate = 2 * total / fwd / 1e9
            rows.append(
                f"| {arch} | {threads} | {fwd:.2f} | {rate:.0f} | {peak:.0f} | {100 * rate / peak:.0f}% | "
                f"{alone:.2f} | {2 * macs['conv'] / alone / 1e9:.0f} | {100 * alone / fwd:.0f}% |"
            )
            print(rows[-1], flush=True)
    end = uptime()
    body = (
        report_header("bench.macs", argv, args.note)
        + f"`uptime` at the start: `{start}`; at the end: `{end}`.\n\n"
        f"{args.res} px generators, official channel settings, random weights, batch 1, fp32, impl 'auto'. "
        "Multiply-adds (MACs) per image; conv: the modulated convolutions; fc: mapping network and "
        "affines; fir: the resampling filter taps as our kernels run them (polyphase, separable "
        "filters as two passes, mirrored 2-D ones folded).\n\n"
        "| config | conv GMAC | fc MAC | fir GMAC | total GMAC | conv calls |\n|---|---|---|---|---|---|\n"
        + "\n".join(counts)
        + "\n\nforward s: best CPU seconds of a forward; GFLOP/s: 2 x total MACs / forward time; mm: "
        "measured fp32 torch.mm (2048 x 2048) with the same threads, the CPU's practical peak; conv "
        "alone: the forward's convolutions each run alone through oneDNN, summed (the time if nothing "
        "else ran); its GFLOP/s is the convolutions' own rate; last column: conv alone / forward, the "
        "share of the forward that runs at oneDNN convolution speed.\n\n"
        "| config | threads | forward CPU s | GFLOP/s | mm GFLOP/s | of mm | conv alone s | conv GFLOP/s "
        "| conv alone / forward |\n|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )
    return publish(f"Multiply-adds and the CPU's limit, {args.res} px generators", body, args.write)


if __name__ == "__main__":
    sys.exit(main())
