"""The StyleGAN3 paper's comparison on our own models: EQ-T, EQ-T frac, EQ-R, SWD, and a Fréchet
distance / KID in the toon classifier's feature space (plus FID / KID when the Inception weights
are present), for N models with the same sample counts, as one markdown table.

Every number comes from `gan.metrics.run_metrics`, the code behind `gan metrics`:

- EQ-T / EQ-T frac / EQ-R: `eqt50k_int,eqt50k_frac,eqr50k` with `--num N`, once per `--eq-seeds`
  seed; the table gives the pooled value (PSNR of the mean squared error over all 2N samples)
  and each seed's value;
- SWD: `swd`, `--swd-num` generated vs as many real images;
- `fd_toon10k_full,kid_toon10k_full`, and `fid50k_full,kid50k_full` when the Inception weights are
  found (`--inception`, $GAN_INCEPTION_WEIGHTS or the cache; nothing is downloaded): `--num N`
  generated images vs the whole data set.

    python -m bench.compare_archs --models SG2.safetensors SG3T.safetensors SG3R.safetensors \\
        --data /work/data/toon64.zip --num 10000 --out docs/arch_comparison.md --sidecar

`--sidecar` also records each model's numbers next to it (`<model>.metrics.json`), where the
explorer's comparison view (View > Compare models) shows them. `--cache DIR` keeps each model's
row (by the model's SHA-256 and the settings), so models measured in an earlier run (a model that
finished training sooner) are not measured again when the table is made with all of them.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.common import load_note, machine_summary
from gan.commands.stage_bars import StageBars
from gan.compare import count_name, write_metrics_sidecar
from gan.errors import UserError
from gan.io.files import file_sha256
from gan.metrics import run_metrics
from gan.metrics.inception import WeightsSource
from gan.video import ARCH_LABELS

EQ_METRICS = ("eqt50k_int", "eqt50k_frac", "eqr50k")
FEATURE_METRICS = ("fd_toon10k_full", "kid_toon10k_full", "fid50k_full", "kid50k_full")
# The paper's Table 1 (FFHQ 1024), as quoted in issue 20; "-" where none is given there.
PAPER = {
    "stylegan2": {"fid": "5.14", "eqt_int": "-", "eqr": "-"},
    "stylegan3-t": {"fid": "4.62", "eqt_int": "63.01", "eqr": "13.12"},
    "stylegan3-r": {"fid": "4.50", "eqt_int": "66.65", "eqr": "40.48"},
}
CHECKS = (  # (what, arch a, arch b, metric key, dB asked for) from issue 20's "done when"
    ("EQ-T", "stylegan3-t", "stylegan2", "eqt_int", 15.0),
    ("EQ-T", "stylegan3-r", "stylegan2", "eqt_int", 15.0),
    ("EQ-R", "stylegan3-r", "stylegan3-t", "eqr", 10.0),
)


@dataclass
class ModelRow:
    path: str
    label: str
    arch: str
    resolution: int
    sha256: str
    eq: dict[str, dict[int, float]] = field(default_factory=dict)  # eqt_int/eqt_frac/eqr -> seed -> dB
    values: dict[str, float] = field(default_factory=dict)  # swd, fd_toon, kid_toon, fid, kid
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def pooled(self, key: str) -> float:
        """PSNR of the mean squared error over every seed's samples (equal counts per seed)."""
        per_seed = list(self.eq[key].values())
        if any(math.isnan(v) for v in per_seed):
            return float("nan")
        mse = [4.0 * 10 ** (-v / 10) for v in per_seed]  # PSNR = 10 log10(2^2 / mse)
        mean = sum(mse) / len(mse)
        return float("inf") if mean == 0 else 10 * math.log10(4.0 / mean)


def measure(path: str, args: argparse.Namespace, progress) -> ModelRow:
    from gan.model_io import load_model

    t0 = time.perf_counter()
    model = load_model(path, device=args.device, training_nets=False)
    G = model.G
    row = ModelRow(path, Path(path).stem, model.arch, int(G.img_resolution), model.sha256)
    common = dict(batch_size=args.batch, progress=progress)
    for seed in args.eq_seeds:
        report = run_metrics(list(EQ_METRICS), G, None, args.num, seed=seed, **common)
        row.skipped.update(report.skipped)
        for name, key in zip(EQ_METRICS, ("eqt_int", "eqt_frac", "eqr")):
            if name in report.values:
                row.eq.setdefault(key, {})[seed] = report.values[name]
    if args.swd_num:
        report = run_metrics(["swd"], G, args.data, args.swd_num, seed=args.seed, **common)
        row.values["swd"] = report.values["swd"]
    source = WeightsSource(allow_download=False)  # FID only where the weights already are
    report = run_metrics(
        list(FEATURE_METRICS),
        G,
        args.data,
        args.num,
        seed=args.seed,
        inception_path=args.inception,
        inception_source=source,
        classifier_path=args.classifier,
        **common,
    )
    for name, key in zip(FEATURE_METRICS, ("fd_toon", "kid_toon", "fid", "kid")):
        if name in report.values:
            row.values[key] = report.values[name]
    row.skipped.update(report.skipped)
    row.seconds = time.perf_counter() - t0
    return row


def cache_file(cache: str, sha256: str, args: argparse.Namespace) -> Path:
    """Where a model's row measured with these settings is kept (everything the numbers depend on)."""
    settings = dict(
        num=args.num,
        eq_seeds=args.eq_seeds,
        swd_num=args.swd_num,
        seed=args.seed,
        batch=args.batch,
        data=os.path.basename(args.data),
        classifier=args.classifier,
        inception=args.inception,
    )
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache) / f"{sha256}-{key}.json"


def save_row(path: Path, row: ModelRow) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(row), indent=1) + "\n", encoding="utf-8")


def load_row(path: Path, model_path: str) -> ModelRow:
    data = json.loads(path.read_text(encoding="utf-8"))
    data["eq"] = {k: {int(seed): v for seed, v in d.items()} for k, d in data["eq"].items()}
    return ModelRow(**{**data, "path": model_path, "label": Path(model_path).stem})


def recorded_values(row: ModelRow, args: argparse.Namespace) -> dict[str, float]:
    """The row's numbers under metric names that carry their sample counts (for the sidecar)."""
    out = {}
    for name, key in zip(EQ_METRICS, ("eqt_int", "eqt_frac", "eqr")):
        if key in row.eq:
            out[count_name(name, args.num * len(args.eq_seeds))] = row.pooled(key)
    if "swd" in row.values:
        out[count_name("swd", args.swd_num)] = row.values["swd"]
    for name, key in zip(FEATURE_METRICS, ("fd_toon", "kid_toon", "fid", "kid")):
        if key in row.values:
            out[count_name(name, args.num)] = row.values[key]
    return out


def _db(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:.2f}"


def format_table(rows: list[ModelRow], args: argparse.Namespace) -> str:
    has_fid = any("fid" in r.values for r in rows)
    head = ["model", "arch", "px", "EQ-T (dB)", "EQ-T frac (dB)", "EQ-R (dB)", "SWD ×1e3"]
    head += ["FD toon (not FID)", "KID toon ×1e3"] + (["FID", "KID ×1e3"] if has_fid else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"`{r.label}`", ARCH_LABELS.get(r.arch, r.arch), str(r.resolution)]
        for key in ("eqt_int", "eqt_frac", "eqr"):
            if key not in r.eq:
                cells.append("n/a")
                continue
            seeds = " / ".join(_db(r.eq[key][s]) for s in args.eq_seeds)
            cells.append(f"**{_db(r.pooled(key))}** ({seeds})")
        cells.append(f"{r.values['swd']:.2f}" if "swd" in r.values else "n/a")
        cells.append(f"{r.values['fd_toon']:.3f}" if "fd_toon" in r.values else "n/a")
        cells.append(f"{r.values['kid_toon'] * 1000:.3f}" if "kid_toon" in r.values else "n/a")
        if has_fid:
            cells.append(f"{r.values['fid']:.2f}" if "fid" in r.values else "n/a")
            cells.append(f"{r.values['kid'] * 1000:.3f}" if "kid" in r.values else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_checks(rows: list[ModelRow]) -> list[str]:
    """Issue 20's criteria, as measured differences (only for architectures present)."""
    by_arch: dict[str, ModelRow] = {}
    for r in rows:
        by_arch.setdefault(r.arch, r)
    out = []
    for what, a, b, key, wanted in CHECKS:
        if a in by_arch and b in by_arch and key in by_arch[a].eq and key in by_arch[b].eq:
            diff = by_arch[a].pooled(key) - by_arch[b].pooled(key)
            verdict = "met" if diff >= wanted else "not met"
            out.append(
                f"- {what} of {ARCH_LABELS[a]} minus {ARCH_LABELS[b]}: {diff:+.2f} dB "
                f"(at least +{wanted:g} dB asked: {verdict})"
            )
    return out


def format_doc(rows: list[ModelRow], args: argparse.Namespace, command: str, load: str) -> str:
    seeds = ", ".join(str(s) for s in args.eq_seeds)
    skipped: dict[str, list[str]] = {}  # reason -> metric names
    for r in rows:
        for name, reason in r.skipped.items():
            if name not in skipped.setdefault(reason, []):
                skipped[reason].append(name)
    lines = [
        "# StyleGAN2 vs StyleGAN3-T vs StyleGAN3-R on our data",
        "",
        f"Command: `{command}`",
        "",
        *([f"**Note:** {args.note}", ""] if args.note else []),
        f"Written {datetime.date.today().isoformat()}. Machine: {machine_summary()}. {load}",
        "",
        format_table(rows, args),
        "",
        f"- EQ-T, EQ-T frac, EQ-R: {args.num} samples per seed, seeds {seeds}; bold: the PSNR of the mean "
        "squared error over all of them, then each seed's value. Translations up to 1/8 of the image, "
        "rotations over the full circle (the paper's settings, `gan.metrics.equivariance`).",
        f"- SWD: {args.swd_num} generated vs {args.swd_num} real images (seed {args.seed}), x1e3, mean "
        "over the pyramid levels.",
        f"- FD toon / KID toon: {args.num} generated images vs the whole data set `{Path(args.data).name}`, "
        "in the 96-d feature space of the shipped toon classifier (`resources/classifier/"
        "toon_classifier.safetensors`). Not FID: another network and feature space, comparable only "
        "with each other.",
    ]
    lines += [f"- Not computed: {', '.join(names)}: {reason}" for reason, names in skipped.items()]
    checks = format_checks(rows)
    if checks:
        lines += ["", "Issue 20's criteria, measured:", "", *checks]
    lines += [
        "",
        "The paper's numbers (StyleGAN3 paper, Table 1, FFHQ 1024, as quoted in issue 20):",
        "",
        "| config | FID | EQ-T (dB) | EQ-R (dB) |",
        "|---|---|---|---|",
        *(f"| {ARCH_LABELS[a]} | {v['fid']} | {v['eqt_int']} | {v['eqr']} |" for a, v in PAPER.items()),
        "",
        "Per-model wall time: " + ", ".join(f"`{r.label}` {r.seconds:.0f} s" for r in rows) + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.compare_archs", description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", required=True, help="model files (.safetensors or official .pkl)")
    p.add_argument("--data", required=True, help="the real data set (zip or folder) for SWD and FD / KID")
    p.add_argument("--num", type=int, default=10000, help="EQ samples per seed and FD / KID generated images")
    p.add_argument(
        "--eq-seeds", type=int, nargs="+", default=[0, 1], help="seeds of the EQ runs (default 0 1)"
    )
    p.add_argument("--swd-num", type=int, default=2048, help="images per set for SWD (0: no SWD)")
    p.add_argument("--seed", type=int, default=0, help="seed of SWD and FD / KID")
    p.add_argument(
        "--inception", help="Inception weights for FID / KID (default: env var or cache; no download)"
    )
    p.add_argument("--classifier", help="toon classifier of FD / KID toon (default: the shipped one)")
    p.add_argument("--batch", type=int, default=16, help="images per forward pass")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--out", default="docs/arch_comparison.md", help="markdown file to write")
    p.add_argument(
        "--sidecar", action="store_true", help="also write <model>.metrics.json next to each model"
    )
    p.add_argument("--note", default="", help="a sentence to add under the command")
    p.add_argument("--cache", help="folder keeping each model's row; a model measured before is reused")
    args = p.parse_args(argv)
    command = "python -m bench.compare_archs " + shlex.join(argv if argv is not None else sys.argv[1:])
    if args.num < 2 or (args.swd_num and args.swd_num < 2):
        print("error: --num and --swd-num must be at least 2", file=sys.stderr)
        return 2
    bars = StageBars()
    rows = []
    load_start = os.getloadavg()
    try:
        for path in args.models:
            cached = cache_file(args.cache, file_sha256(path), args) if args.cache else None
            if cached is not None and cached.is_file():
                print(f"{path}: measured before, from {cached}", file=sys.stderr)
                rows.append(load_row(cached, path))
                continue
            print(f"measuring {path}", file=sys.stderr)
            rows.append(measure(path, args, bars))
            if cached is not None:
                save_row(cached, rows[-1])
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        bars.close()
    doc = format_doc(rows, args, command, load_note(load_start, os.getloadavg()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    raw = {
        r.label: {
            "path": r.path,
            "arch": r.arch,
            "sha256": r.sha256,
            "values": {k: (v if math.isfinite(v) else str(v)) for k, v in recorded_values(r, args).items()},
            "eq_per_seed": r.eq,
            "skipped": r.skipped,
            "seconds": round(r.seconds, 1),
        }
        for r in rows
    }
    out.with_suffix(".json").write_text(json.dumps(raw, indent=2, default=str) + "\n", encoding="utf-8")
    if args.sidecar:
        settings = {
            "command": command,
            "num": args.num,
            "eq_seeds": args.eq_seeds,
            "swd_num": args.swd_num,
            "data": os.path.basename(args.data),
        }
        for r in rows:
            write_metrics_sidecar(r.path, recorded_values(r, args), r.sha256, settings)
    print(doc)
    print(f"written to {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
