"""Render latency through `gan.render.Renderer`, the path the explorer uses.

Two cases per model, p50 and p95 of the wall time `RenderResult.timings['total']`:

- full render: a new seed each time, so neither the mapping nor any synthesis stage is cached;
- cached edit: one seed, an `Edit` with a fixed random direction on the last third of the ws and a
  strength that changes each time, so the mapping and the stages before the edited ws come from
  the cache and only the later stages run.

Models: SG3-T and SG2 256 px with the official channel settings (random weights, saved and loaded
through `gan.model_io` like the app does), the project's default model from resources/models/ if there is
one, and a small SG3-T 64 px stand-in for the default model's size.

    python -m bench.render --write
    python -m bench.render --repeat 2    # quicker, not written
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bench.common import load_note, machine_summary, write_section
from explorer.app import default_model_path
from gan.model_io import LoadedModel, load_model, save_model
from gan.networks import build_generator
from gan.render import CacheInfo, Edit, RenderArgs, Renderer

SG3T_256 = dict(
    z_dim=512,
    w_dim=512,
    c_dim=0,
    img_resolution=256,
    img_channels=3,
    channel_base=16384,
    channel_max=512,
    mapping_kwargs=dict(num_layers=2),
)
SG3T_64_SMALL = dict(SG3T_256, z_dim=128, w_dim=128, img_resolution=64, channel_base=4096, channel_max=64)
SG2_256 = dict(SG3T_256, mapping_kwargs=dict(num_layers=8))


@dataclass
class CaseStats:
    ms: list[float] = field(default_factory=list)  # wall ms per render (timings['total'])
    mapping_ms: list[float] = field(default_factory=list)  # timings['mapping'] (incl. edits)
    synthesis_ms: list[float] = field(default_factory=list)  # timings['synthesis'] (incl. to uint8)
    cache: list[CacheInfo] = field(default_factory=list)  # cache_hits of each timed render

    def add(self, result) -> None:
        self.ms.append(result.timings["total"])
        self.mapping_ms.append(result.timings["mapping"])
        self.synthesis_ms.append(result.timings["synthesis"])
        self.cache.append(result.cache_hits)

    def pct(self, q: float, values: list[float] | None = None) -> float:
        return float(np.percentile(self.ms if values is None else values, q))


@dataclass
class LatencyResult:
    full: CaseStats
    edit: CaseStats
    edit_layer_start: int  # first w index the edit touches
    num_ws: int
    threads: int  # torch intra-op threads during the measurement


def _render(renderer: Renderer, args: RenderArgs):
    result = renderer.render(args)
    if result.error is not None:
        raise RuntimeError(f"render failed: {result.error}")
    return result


def measure_latency(
    model: LoadedModel, repeat: int, seed: int = 0, threads: int | None = None
) -> LatencyResult:
    """Time `repeat` full renders (new seeds) and `repeat` cached edits (same seed, new strength).

    threads: torch intra-op threads for the measurement (restored afterwards); None = as set."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _measure(model, repeat, seed)
    finally:
        torch.set_num_threads(before)


def _measure(model: LoadedModel, repeat: int, seed: int) -> LatencyResult:
    renderer = Renderer(model, device="cpu")
    G = renderer.G
    num_ws = int(G.num_ws)
    layer_start = num_ws - max(1, num_ws // 3)
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(G.w_dim).astype(np.float32)
    direction /= np.linalg.norm(direction)

    # Warm-up (first-call costs, kernel loading) with a seed the timed runs do not use.
    _render(renderer, RenderArgs(seed=seed + 1_000_000))

    full = CaseStats()
    for i in range(repeat):
        full.add(_render(renderer, RenderArgs(seed=seed + 1 + i)))

    # The un-edited render of the edit seed fills the mapping and stage caches, as in the app
    # where the user first sees the seed and then drags a slider.
    edit_seed = seed + 500_000
    _render(renderer, RenderArgs(seed=edit_seed))
    edit = CaseStats()
    for i in range(repeat):
        strength = 0.5 + 0.25 * (i + 1)  # a new value each time, so the edited stages never hit
        e = Edit(direction=direction, strength=strength, layer_start=layer_start, name="random")
        edit.add(_render(renderer, RenderArgs(seed=edit_seed, edits=[e])))
    return LatencyResult(
        full=full, edit=edit, edit_layer_start=layer_start, num_ws=num_ws, threads=torch.get_num_threads()
    )


def _through_model_io(arch: str, kwargs: dict, seed: int = 0) -> LoadedModel:
    """Random-weight generator saved to a temp file and loaded back, like a model the app opens."""
    torch.manual_seed(seed)
    G = build_generator(arch, kwargs).eval().requires_grad_(False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{arch}.safetensors"
        save_model(path, G, arch=arch, metadata={"note": "random weights for bench.render"})
        return load_model(path, device="cpu", training_nets=False)


def _cache_summary(cache: list[CacheInfo]) -> str:
    """Stage and mapping counts; a single value if all timed renders agree, else min-max."""

    def span(values: list[int]) -> str:
        lo, hi = min(values), max(values)
        return str(lo) if lo == hi else f"{lo}-{hi}"

    reused = span([c.stages_reused for c in cache])
    run = span([c.stages_run for c in cache])
    total = span([c.stages_total for c in cache])
    hits = span([c.mapping_hits for c in cache])
    misses = span([c.mapping_misses for c in cache])
    return f"{reused} reused / {run} run of {total}; mapping {hits} hit / {misses} miss"


def _params(model: LoadedModel) -> str:
    n = sum(p.numel() for p in model.G.parameters())
    return f"{n / 1e6:.2f} M"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--repeat", type=int, default=None, help="timed renders per case (default: 10, and 5 for 256 px)"
    )
    p.add_argument("--write", action="store_true", help="write the section into docs/benchmarks.md")
    p.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[torch.get_num_threads()],
        help="torch thread counts to measure each model with (default: torch's default)",
    )
    args = p.parse_args(argv)
    if any(t < 1 for t in args.threads):
        p.error("--threads values must be at least 1")
    if args.repeat is not None and args.repeat < 1:
        p.error("--repeat must be at least 1")
    repeat_small = args.repeat or 10
    repeat_256 = args.repeat or 5
    cmd = "python -m bench.render " + shlex.join(argv if argv is not None else sys.argv[1:])
    load_start = os.getloadavg()
    print(f"load average at start: {load_start}", flush=True)

    rows: list[tuple[str, Path | tuple[str, dict], int]] = []  # (label, file or (arch, kwargs), N)
    notes: list[str] = []
    rows.append(
        ("SG3-T 256 px, cbase 16384, cmax 512, z/w 512 (random)", ("stylegan3-t", SG3T_256), repeat_256)
    )
    rows.append(("SG2 256 px, cbase 16384, cmax 512, z/w 512 (random)", ("stylegan2", SG2_256), repeat_small))
    default = default_model_path()  # the model the explorer opens first
    if default is None:
        notes.append("No default model in resources/models/ yet: skipped.")
    else:
        rows.append((f"default model `{Path(default).name}`", Path(default), repeat_small))
    rows.append(
        ("SG3-T 64 px, cbase 4096, cmax 64, z/w 128 (random)", ("stylegan3-t", SG3T_64_SMALL), repeat_small)
    )

    results = []
    for label, source, repeat in rows:
        print(f"{label}: loading", flush=True)
        if isinstance(source, tuple):
            model = _through_model_io(*source)
        else:
            model = load_model(source, device="cpu", training_nets=False)
        for threads in args.threads:
            res = measure_latency(model, repeat, threads=threads)
            results.append((label, model, repeat, res))
            print(
                f"{label}, {threads} threads: full p50 {res.full.pct(50):.1f} ms "
                f"p95 {res.full.pct(95):.1f} ms; edit p50 {res.edit.pct(50):.1f} ms "
                f"p95 {res.edit.pct(95):.1f} ms",
                flush=True,
            )
    load_end = os.getloadavg()
    print(f"load average at end: {load_end}", flush=True)

    lines = [
        f"Command: `{cmd}`",
        "",
        f"Machine: {machine_summary()}. Device cpu, fp32, noise_mode const, `impl='auto'`.",
        "",
        "Wall time of `Renderer.render` (`timings['total']`, ms). *Full*: a new seed each render (no "
        "cache hits). *Cached edit*: one seed, rendered once without the edit first, then an `Edit` "
        "with a fixed random unit direction on the last third of the ws and a new strength each "
        "time, so the mapping and the stages before the edited ws come from the cache. One "
        "warm-up render per model is not counted. With few repeats p95 is close to the slowest run. "
        "`threads` is torch's intra-op thread count (`torch.set_num_threads`) during the measurement.",
        "",
        "| model | params | res | ws (edit from) | threads | N | full p50 | full p95 | edit p50 | edit p95 "
        "| full / edit (p50) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, model, repeat, res in results:
        f50, f95, e50, e95 = res.full.pct(50), res.full.pct(95), res.edit.pct(50), res.edit.pct(95)
        lines.append(
            f"| {label} | {_params(model)} | {model.G.img_resolution} "
            f"| {res.num_ws} ({res.edit_layer_start}) | {res.threads} | {repeat} "
            f"| {f50:.1f} | {f95:.1f} | {e50:.1f} | {e95:.1f} | {f50 / e50:.1f}x |"
        )
    lines += [
        "",
        "Cache counts (`RenderResult.cache_hits`) and the median split of the time (`timings`, ms; "
        "mapping includes the edit, synthesis includes the conversion to uint8):",
        "",
        "| model | threads | case | stages and mapping cache | mapping p50 | synthesis p50 |",
        "|---|---|---|---|---|---|",
    ]
    for label, _model, _repeat, res in results:
        for case, stats in (("full", res.full), ("cached edit", res.edit)):
            lines.append(
                f"| {label} | {res.threads} | {case} | {_cache_summary(stats.cache)} "
                f"| {stats.pct(50, stats.mapping_ms):.2f} | {stats.pct(50, stats.synthesis_ms):.1f} |"
            )
    lines += [""] + notes + ["", load_note(load_start, load_end)]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("Render latency", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
