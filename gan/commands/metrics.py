"""`gan metrics`: compute FID / KID / SWD / EQ-T / EQ-R of a model."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass

from gan.config_help import add_config_arguments, config_from_args, opt

NAME = "metrics"
HELP = "Compute quality metrics (FID, KID, SWD, EQ-T, EQ-R, toon-classifier FD/KID) of a model."


@dataclass
class MetricsConfig:
    """Options of `gan metrics`: which metrics of which model, against which data."""

    model: str = opt(help="model file (.safetensors or official .pkl)")
    data: str | None = opt(None, help="data set (folder or zip of images) for FID, KID and SWD")
    metrics: str = opt("fid50k_full", help="comma-separated metric names")
    num: int | None = opt(None, help="number of generated samples (overrides the name's 50k)")
    inception: str | None = opt(
        None,
        help="Inception weights pt_inception-2015-12-05-6726825d.pth "
        "(default: $GAN_INCEPTION_WEIGHTS, the cache, or a one-time download)",
    )
    classifier: str | None = opt(
        None,
        help="toon classifier whose features fd_toon* / kid_toon* use "
        "(default: resources/classifier/toon_classifier.safetensors)",
    )
    batch: int = opt(16, help="images per forward pass")
    seed: int = opt(0, help="random seed of latents and transforms")
    device: str = opt("cpu", help="torch device, e.g. cpu or cuda")
    no_cache: bool = opt(False, help="do not use cached data set statistics")
    json: bool = opt(False, help="print one JSON object instead of a table")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gan.metrics.runner import METRICS

    listing = "; ".join(f"{name}: {spec.help}" for name, spec in METRICS.items())
    # --num: None means the number in the metric name, which the help already says.
    add_config_arguments(parser, MetricsConfig, notes={"metrics": f". {listing}"}, shown={"num": ""})


def run(args: argparse.Namespace) -> int:
    from gan.errors import UserError
    from gan.metrics.runner import run_metrics
    from gan.model_io import load_model

    config = config_from_args(MetricsConfig, args)
    if config.batch < 1:
        raise UserError("--batch must be at least 1")
    model = load_model(config.model, device=config.device)
    last_report = [0.0]

    def progress(done: int, total: int, what: str = "") -> None:
        now = time.monotonic()
        if config.json or (now - last_report[0] < 1.0 and done < total):
            return
        last_report[0] = now
        print(f"\r  {what}: {done}/{total}", end="\n" if done >= total else "", file=sys.stderr, flush=True)

    report = run_metrics(
        config.metrics,
        model.G,
        dataset=config.data,
        num=config.num,
        inception_path=config.inception,
        classifier_path=config.classifier,
        batch_size=config.batch,
        seed=config.seed,
        cache=not config.no_cache,
        progress=progress,
    )
    if config.json:
        out = {
            "model": config.model,
            "data": config.data,
            "num": config.num,
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
