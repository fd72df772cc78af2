"""Self-check of a standalone bundle: `stylegan-explorer --bundle-check OUT.json [--train-options F]`.

Writes a JSON report of what the built app can run: whether it is frozen, which implementation
each custom op uses on the CPU (and the warnings on the way), and optionally the summary of a
tiny training run started in a child process the way the training dialog starts it. A bridge
module (touches gan and ops_cuda); tests/test_dist.py reads the report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="stylegan-explorer --bundle-check", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out", help="JSON report to write")
    parser.add_argument(
        "--train-options",
        help="JSON file of training options (TrainConfig fields): also train in a child process",
    )
    args = parser.parse_args(argv)
    report: dict = {"frozen": bool(getattr(sys, "frozen", False)), "executable": sys.executable}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from gan.capabilities import op_capabilities

        report["capabilities"] = op_capabilities("cpu")
    report["warnings"] = [str(w.message) for w in caught]
    if args.train_options:
        from explorer.training_process import run_training_in_child

        options = json.loads(Path(args.train_options).read_text(encoding="utf-8"))
        ticks: list[dict] = []
        start = time.monotonic()
        try:
            summary = run_training_in_child(options, on_tick=ticks.append)
            report["training"] = {"summary": summary, "ticks": len(ticks)}
        except Exception as exc:  # reported, not raised: the caller reads the report
            report["training"] = {"error": f"{type(exc).__name__}: {exc}", "ticks": len(ticks)}
        report["training"]["seconds"] = round(time.monotonic() - start, 1)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    print(f"stylegan-explorer: bundle check written to {args.out}")
    return 0
