"""`gan metrics`: compute FID / KID / SWD / EQ-T / EQ-R of a model."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

NAME = "metrics"
HELP = "Compute quality metrics (FID, KID, SWD, EQ-T, EQ-R, toon-classifier FD/KID) of a model."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gan.metrics.runner import METRICS

    listing = "; ".join(f"{name}: {spec.help}" for name, spec in METRICS.items())
    parser.add_argument("--model", required=True, help="model file (.safetensors or official .pkl)")
    parser.add_argument("--data", help="data set (folder or zip of images) for FID, KID and SWD")
    parser.add_argument("--metrics", default="fid50k_full", help=f"comma-separated metric names. {listing}")
    parser.add_argument("--num", type=int, help="number of generated samples (overrides the name's 50k)")
    parser.add_argument(
        "--inception",
        help="Inception weights pt_inception-2015-12-05-6726825d.pth "
        "(default: $GAN_INCEPTION_WEIGHTS, the cache, or a one-time download)",
    )
    parser.add_argument(
        "--classifier",
        help="toon classifier whose features fd_toon* / kid_toon* use "
        "(default: resources/classifier/toon_classifier.safetensors)",
    )
    parser.add_argument("--batch", type=int, default=16, help="images per forward pass")
    parser.add_argument("--seed", type=int, default=0, help="random seed of latents and transforms")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--no-cache", action="store_true", help="do not use cached data set statistics")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    from gan.errors import UserError
    from gan.metrics.runner import run_metrics
    from gan.model_io import load_model

    if args.batch < 1:
        raise UserError("--batch must be at least 1")
    model = load_model(args.model, device=args.device)
    last_report = [0.0]

    def progress(done: int, total: int, what: str = "") -> None:
        now = time.monotonic()
        if args.json or (now - last_report[0] < 1.0 and done < total):
            return
        last_report[0] = now
        print(f"\r  {what}: {done}/{total}", end="\n" if done >= total else "", file=sys.stderr, flush=True)

    report = run_metrics(
        args.metrics,
        model.G,
        dataset=args.data,
        num=args.num,
        inception_path=args.inception,
        classifier_path=args.classifier,
        batch_size=args.batch,
        seed=args.seed,
        cache=not args.no_cache,
        progress=progress,
    )
    if args.json:
        out = {
            "model": args.model,
            "data": args.data,
            "num": args.num,
            "results": {k: _json_number(v) for k, v in report.values.items()},
            "skipped": report.skipped,
            "seconds": {k: round(v, 3) for k, v in report.seconds.items()},
        }
        print(json.dumps(out, indent=2))
    else:
        for name, value in report.values.items():
            print(f"{name:<16} {value:.4f}   ({report.seconds.get(name, 0.0):.1f} s)")
        for name, reason in report.skipped.items():
            print(f"{name:<16} skipped: {reason}")
    return 0


def _json_number(value: float):
    # JSON has no inf / nan: a perfect equivariance score is written as the string "inf".
    return value if math.isfinite(value) else str(value)
