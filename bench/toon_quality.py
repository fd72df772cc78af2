"""Quality of a toon model against the real toon images: the shipped classifier's view, and SWD.

Classifies the images of `--seeds` and `--num-real` real images (official seeded-subset rule) with
`resources/classifier/toon_classifier.safetensors` and reports per head the class distribution,
the mean confidence and the fraction of confident calls (max probability >= `--threshold`),
generated next to real, plus the classifier's accuracy on the real images (the reference point).
Then SWD (gan.metrics.swd, x1e3) of `--swd-num` generated images to as many real images, for the
model and for a model at initialisation (`--init FILE`, or a freshly built generator of the same
architecture with torch seed 0). The measuring is gan.edit.quality.measure_quality.

    python -m bench.toon_quality --model M.safetensors --data toon64.zip --write
    python -m bench.toon_quality --model M.safetensors --data toon64.zip --swd-num 200   # quicker
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

from bench.common import machine_summary, write_section
from gan.commands.stage_bars import StageBars
from gan.edit.quality import QualityReport, fresh_generator, measure_quality
from gan.errors import UserError
from gan.resources import SHIPPED_CLASSIFIER

SECTION = "Default model quality"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def format_report(report: QualityReport, model_label: str, init_label: str) -> str:
    """Markdown tables of a QualityReport (the style head first: it is what the issue asks about)."""
    heads = sorted(report.heads.items(), key=lambda item: item[0] != "style")
    lines = [
        f"Classifier: {report.num_generated} generated images (psi {report.psi:g}) vs {report.num_real} "
        f"real images. *confident*: max softmax probability >= {report.threshold:g}.",
        "",
        "| head | class | generated | real |",
        "|---|---|---|---|",
    ]
    for head, s in heads:
        for cls, g, r in zip(s.classes, s.generated_rates, s.real_rates):
            lines.append(f"| {head} | {cls} | {_pct(g)} | {_pct(r)} |")
    lines += [
        "",
        "*class distance*: total variation distance between the generated and the real class "
        "distribution (0 = same rates, 1 = no class in common).",
        "",
        "| head | class distance | mean confidence gen / real | confident gen / real "
        "| classifier accuracy on real |",
        "|---|---|---|---|---|",
    ]
    for head, s in heads:
        acc = "n/a (no toon attributes)" if s.real_accuracy is None else f"{s.real_accuracy:.3f}"
        lines.append(
            f"| {head} | {s.rate_distance:.3f} | {s.generated_confidence:.3f} / {s.real_confidence:.3f} "
            f"| {_pct(s.generated_confident)} / {_pct(s.real_confident)} | {acc} |"
        )
    if report.swd_num:
        levels = [k for k in report.swd if k != "swd"]
        lines += [
            "",
            f"SWD x1e3 to {report.swd_num} real images ({report.swd_num} generated images, seeds 0-"
            f"{report.swd_num - 1}, psi 1, constant noise; lower is better; per pyramid level and mean):",
            "",
            "| model | " + " | ".join(levels) + " | mean |",
            "|---|" + "---|" * (len(levels) + 1),
        ]
        rows = [(model_label, report.swd)]
        if report.swd_init is not None:
            rows.append((init_label, report.swd_init))
        for label, values in rows:
            lines.append(
                f"| {label} | " + " | ".join(f"{values[k]:.1f}" for k in levels) + f" | {values['swd']:.1f} |"
            )
    lines += ["", "Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in report.seconds.items()) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model file (.safetensors or official .pkl)")
    p.add_argument("--data", required=True, help="the real toon data set (zip or folder, `gan dataset toon`)")
    p.add_argument(
        "--init",
        default=None,
        help="model at initialisation for the SWD baseline (e.g. network-snapshot-000000.safetensors); "
        "default: a fresh generator of the model's architecture, torch seed 0",
    )
    p.add_argument("--seeds", default="1000-1199", help="seeds to classify (default 1000-1199)")
    p.add_argument("--num-real", type=int, default=200, help="real images to classify (default 200)")
    p.add_argument(
        "--psi", type=float, default=1.0, help="truncation psi of the classified seeds (default 1)"
    )
    p.add_argument(
        "--threshold", type=float, default=0.9, help="confidence of a confident call (default 0.9)"
    )
    p.add_argument(
        "--swd-num",
        type=int,
        default=1000,
        help="images per set for SWD (default 1000: a few minutes per model at 64 px on 2 busy cores; "
        "0 = no SWD)",
    )
    p.add_argument("--classifier", default=str(SHIPPED_CLASSIFIER), help="classifier file (default: shipped)")
    p.add_argument(
        "--write", action="store_true", help=f"write the section '{SECTION}' of docs/benchmarks.md"
    )
    p.add_argument("--note", default=None, help="a sentence to add to the written section")
    args = p.parse_args(argv)
    cmd = "python -m bench.toon_quality " + shlex.join(argv if argv is not None else sys.argv[1:])

    from gan.edit.classifier import load_classifier
    from gan.model_io import load_model
    from gan.seeds import parse_seeds

    bars = StageBars()
    try:
        seeds = parse_seeds(args.seeds)
        clf = load_classifier(args.classifier)
        model = load_model(args.model, device="cpu", training_nets=False)
        if args.init is not None:
            G_init = load_model(args.init, device="cpu", training_nets=False).G
            init_label = f"init `{os.path.basename(args.init)}`"
        else:
            G_init = fresh_generator(model.arch, model.g_kwargs, seed=0)
            init_label = f"fresh {model.arch} (same g_kwargs, seed 0)"
        load_avg = os.getloadavg()
        start = time.perf_counter()
        report = measure_quality(
            model.G,
            clf,
            args.data,
            seeds,
            num_real=args.num_real,
            psi=args.psi,
            threshold=args.threshold,
            swd_num=args.swd_num,
            G_init=G_init if args.swd_num else None,
            progress=bars,
        )
        total = time.perf_counter() - start
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        bars.close()
    model_label = f"`{os.path.basename(args.model)}`"
    table = format_report(report, model_label, init_label)
    print(table)
    body = "\n".join(
        [
            f"Command: `{cmd}`",
            "",
            f"Machine: {machine_summary()}. 1-minute load average {load_avg[0]:.1f} at the start; "
            f"{total:.0f} s in all.",
            "",
            f"Model {model_label} ({model.arch}, {model.G.img_resolution} px), data set "
            f"`{os.path.basename(args.data)}`, classifier `{os.path.basename(args.classifier)}`. Seeds map "
            "to z like `gan generate` and the explorer (constant noise). Real images: the official "
            "seeded-subset rule (seed 0) over the data set.",
            *(["", args.note] if args.note else []),
            "",
            table,
        ]
    )
    if args.write:
        write_section(SECTION, body)
        print(f"written to docs/benchmarks.md, section '{SECTION}'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
