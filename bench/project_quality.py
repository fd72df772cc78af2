"""Photo projection on the shipped toon model, measured where ground truth exists.

Held-out "photos": photo-style toon faces drawn by gan.data.toon with a seed no model or
classifier was trained on (training data: seed 0; classifiers: 1000, 2000, 5000, 6000), at the
model's resolution, so the input itself is the target (the toon data set's own framing, no
alignment step). Each is projected at a preset, then:

- reconstruction: PSNR and SSIM of the projection against the input;
- identity: the shipped classifier's hair colour and glasses of the projection against the
  input's labels (and, for reference, of the input itself);
- Anime-ify: the projection moved to the "+" end of the model's anime slider (its stored range),
  classified anime? hair colour kept?
- blend: the projection rendered through the base model blended with the anime fine-tune;
- a grid (input | projection | anime-ified | blended) for the README;
- speed: one image at the preset (wall and CPU time, torch threads, machine load), and a few
  steps of 256 px official-size generators (random weights; the per-step time times the preset's
  steps is an estimate, said so);
- optionally (--detect) the face detector on the same faces drawn at 256 px: found, and the
  eye landmark error against the drawing's true landmarks.

    nice -n 10 python -m bench.project_quality --count 100 --write --grid docs/project_grid.png
    python -m bench.project_quality --count 8 --no-speed    # a quick look

Projections are cached in --cache (an .npz per batch of images), so an interrupted run continues.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from bench.common import load_note, machine_summary, write_section
from gan.resources import RESOURCES, SHIPPED_CLASSIFIER

SECTION = "Photo projection (Anime-ify your own photo)"
DEFAULT_MODEL = RESOURCES / "models" / "default-toon64-sg3t.safetensors"
DEFAULT_BLEND = RESOURCES / "models" / "toon64-sg3t-anime.safetensors"
HELD_OUT_SEED = 31337


def held_out(count: int, resolution: int, seed: int) -> tuple[np.ndarray, list[dict]]:
    from gan.data.toon import toon_image

    images, attrs = [], []
    for i in range(count):
        image, a = toon_image(seed, i, resolution, ("photo",))
        images.append(np.asarray(image))
        attrs.append(a)
    return np.stack(images), attrs


def project_all(
    model, D, targets: np.ndarray, config, batch: int, cache: Path | None, reverse: bool = False
) -> tuple[np.ndarray, float]:
    """ws [N, num_ws, w_dim] of every target (cached per batch) and the CPU seconds spent.
    reverse: project the last batch first (a second process filling the same cache)."""
    from gan.photo.project import project

    starts = list(range(0, len(targets), batch))
    done: dict[int, np.ndarray] = {}
    cpu = 0.0
    # Cached ws belong to one model and one projection config (a W+ run must not reuse w ones).
    recipe = json.dumps([model.sha256, asdict(config)], sort_keys=True, default=str)
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    for start in reversed(starts) if reverse else starts:
        chunk = targets[start : start + batch]
        path = cache / f"batch{start:05d}-{len(chunk)}-{key}.npz" if cache else None
        if path is not None and path.is_file():
            data = np.load(path)
            if np.array_equal(data["targets"], chunk):
                done[start] = data["ws"]
                cpu += float(data["cpu"])
                continue
        t0, c0 = time.perf_counter(), time.process_time()
        results = project(model.G, chunk, config, D=D)
        dc = time.process_time() - c0
        cpu += dc
        done[start] = np.stack([r.ws for r in results])
        if path is not None:
            np.savez(path, ws=done[start], targets=chunk, cpu=dc)
        print(
            f"projected {start}-{start + len(chunk) - 1} of {len(targets)} ({len(done)} batches done; "
            f"{time.perf_counter() - t0:.0f} s wall, {dc:.0f} s CPU); load {os.getloadavg()[0]:.1f}",
            file=sys.stderr,
            flush=True,
        )
    return np.concatenate([done[s] for s in starts]), cpu


def render_all(model, ws: np.ndarray, edits=()) -> np.ndarray:
    from gan.render import RenderArgs, Renderer

    renderer = Renderer(model, activation_cache_bytes=0)
    images = []
    for w in ws:
        result = renderer.render(RenderArgs(w=w, edits=list(edits)))
        if result.error is not None:
            raise RuntimeError(result.error)
        images.append(result.image)
    return np.stack(images)


def speed(model, D, config, target: np.ndarray, threads: int, steps: int | None = None) -> dict:
    """One projection of target at config (or its first `steps` steps, to be scaled up)."""
    from dataclasses import replace

    from gan.photo.project import project

    before_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        run = config if steps is None else replace(config, steps=steps)
        load0 = os.getloadavg()
        t0, c0 = time.perf_counter(), time.process_time()
        project(model.G, target, run, D=D)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return dict(threads=threads, steps=run.steps, wall=wall, cpu=cpu, load=(load0, os.getloadavg()))
    finally:
        torch.set_num_threads(before_threads)


def speed_only(model, D, config, target: np.ndarray) -> int:
    """Whole projections of one face with 1 and 2 threads, alternating, twice (after a short
    warm-up that loads the kernels); prints wall and CPU seconds of each."""
    speed(model, D, config, target, 2, steps=5)
    for threads in (1, 2, 1, 2):
        s = speed(model, D, config, target, threads)
        print(
            f"{threads} thread(s), {s['steps']} steps: {s['wall']:.1f} s wall, {s['cpu']:.1f} CPU s, "
            f"load {s['load']}"
        )
    return 0


def speed_official(arch: str, steps_measured: int, config) -> dict:
    """Seconds per projection step of a 256 px official-size generator (random weights) with a
    random 256 px discriminator, after one warm-up step."""
    from bench.generator import make_generator
    from gan.networks.stylegan2 import Discriminator
    from gan.photo.project import ProjectConfig, project

    torch.manual_seed(0)
    G = make_generator(arch, 256, 16384, 512)
    D = Discriminator(c_dim=0, img_resolution=256, img_channels=3, channel_base=16384, channel_max=512)
    target = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    fields = {k: v for k, v in vars(config).items() if k not in ("steps",)}
    project(G, target, ProjectConfig(**{**fields, "steps": 1, "w_avg_samples": 1000}), D=D)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    project(G, target, ProjectConfig(**{**fields, "steps": steps_measured, "w_avg_samples": 1000}), D=D)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    params = sum(p.numel() for p in G.parameters())
    return dict(
        arch=arch,
        params=params,
        steps=steps_measured,
        wall_per_step=wall / steps_measured,
        cpu_per_step=cpu / steps_measured,
    )


def detect(count: int, seed: int, resolution: int = 256) -> dict:
    from gan.data.toon import render_toon, sample_image
    from gan.photo.mtcnn import FaceDetector
    from gan.photo.toon_landmarks import toon_landmarks

    det = FaceDetector()
    found, single, errors = 0, 0, []
    t0 = time.perf_counter()
    for i in range(count):
        identity, pose, style = sample_image(seed, i, ("photo",))
        image = np.asarray(render_toon(identity, style, pose, resolution))
        faces = det.detect(image)
        found += bool(faces)
        single += len(faces) == 1
        if faces:
            truth = toon_landmarks(identity, style, pose) * resolution
            eye = np.linalg.norm(truth[1] - truth[0])
            errors.append(np.linalg.norm(faces[0].landmarks - truth, axis=1) / eye)
    e = np.array(errors)
    return dict(
        count=count,
        found=found,
        single=single,
        seconds=time.perf_counter() - t0,
        eye_err=float(np.median(e[:, :2])),
        all_err=float(np.median(e)),
    )


def grid(columns: list[np.ndarray], rows: int, scale: int) -> np.ndarray:
    from gan.edit.measure import columns_grid

    g = columns_grid([c[:rows] for c in columns])
    return np.asarray(
        PIL.Image.fromarray(g).resize((g.shape[1] * scale, g.shape[0] * scale), PIL.Image.NEAREST)
    )


def main(argv: list[str] | None = None) -> int:
    from gan.edit.blend import blend_models, default_blend_resolution
    from gan.edit.classifier import load_classifier
    from gan.edit.directions import load_directions
    from gan.model_io import load_model
    from gan.photo.losses import psnr, ssim_uint8
    from gan.photo.pipeline import discriminator_for
    from gan.photo.project import PRESETS, ProjectConfig

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--blend", default=str(DEFAULT_BLEND), help="fine-tuned model to blend with")
    p.add_argument("--blend-weight", type=float, default=1.0)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="toon seed of the held-out faces")
    p.add_argument("--preset", choices=list(PRESETS), default="default")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=10, help="targets projected together (independent problems)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the quality runs")
    p.add_argument("--cache", default=".cache/project_quality", help="folder for projected ws ('' = none)")
    p.add_argument("--grid", default=None, help="write the grid PNG here")
    p.add_argument("--grid-rows", type=int, default=8)
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--official-steps", type=int, default=3, help="steps timed on the 256 px generators")
    p.add_argument(
        "--two-thread-steps",
        type=int,
        default=20,
        help="steps timed with 2 torch threads (scaled to the preset)",
    )
    p.add_argument(
        "--speed-only",
        action="store_true",
        help="only time whole projections of the first held-out face, 1 and 2 threads, twice (no quality)",
    )
    p.add_argument("--reverse", action="store_true", help="project the last batch first (a second process)")
    p.add_argument("--detect", action="store_true", help="also run the face detector on 256 px renders")
    p.add_argument(
        "--write", action="store_true", help=f"write the section '{SECTION}' of docs/benchmarks.md"
    )
    args = p.parse_args(argv)

    load_start = os.getloadavg()
    torch.set_num_threads(args.threads)
    overrides = {} if args.steps is None else {"steps": args.steps}
    config = ProjectConfig.preset(args.preset, **overrides)
    model = load_model(args.model, training_nets=True)
    D, d_where = discriminator_for(model)
    if args.speed_only:
        return speed_only(model, D, config, held_out(1, int(model.G.img_resolution), args.seed)[0][0])
    clf = load_classifier(SHIPPED_CLASSIFIER)
    targets, attrs = held_out(args.count, int(model.G.img_resolution), args.seed)
    cache = Path(args.cache) if args.cache else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)

    ws, cpu_total = project_all(model, D, targets, config, args.batch, cache, args.reverse)
    projections = render_all(model, ws)
    anime = next(d for d in load_directions(model) if d.name == "anime")
    anime_value = anime.range[1]
    animeified = render_all(model, ws, [anime.edit(anime_value)])
    blended_model = blend_models(
        model, load_model(args.blend, training_nets=False), default_blend_resolution(model), args.blend_weight
    )
    blended = render_all(blended_model, ws)

    hair = np.array([a["hair_colour"] for a in attrs])
    glasses = np.array([a["glasses"] for a in attrs])
    p_in, p_proj = clf.predict(targets), clf.predict(projections)
    p_anime, p_blend = clf.predict(animeified), clf.predict(blended)
    psnrs = np.array([psnr(a, b) for a, b in zip(projections, targets)])
    ssims = np.array([ssim_uint8(a, b) for a, b in zip(projections, targets)])
    r = {
        "psnr_mean": float(psnrs.mean()),
        "psnr_median": float(np.median(psnrs)),
        "psnr_min": float(psnrs.min()),
        "ssim_mean": float(ssims.mean()),
        "ssim_median": float(np.median(ssims)),
        "ssim_min": float(ssims.min()),
        "in_hair": float((p_in["hair_colour"] == hair).mean()),
        "in_glasses": float((p_in["glasses"] == glasses).mean()),
        "proj_hair": float((p_proj["hair_colour"] == hair).mean()),
        "proj_glasses": float((p_proj["glasses"] == glasses).mean()),
        "proj_glasses_with": float((p_proj["glasses"][glasses == 1] == 1).mean()) if glasses.any() else None,
        "proj_photo": float((p_proj["style"] == 0).mean()),
        "anime_rate": float((p_anime["style"] == 1).mean()),
        "anime_hair_label": float((p_anime["hair_colour"] == hair).mean()),
        "anime_hair_kept": float((p_anime["hair_colour"] == p_proj["hair_colour"]).mean()),
        "blend_anime_rate": float((p_blend["style"] == 1).mean()),
        "blend_hair_label": float((p_blend["hair_colour"] == hair).mean()),
        "blend_hair_kept": float((p_blend["hair_colour"] == p_proj["hair_colour"]).mean()),
        "cpu_per_image": cpu_total / len(targets),
        "glasses_share": float(glasses.mean()),
    }
    print(json.dumps(r, indent=1))
    if args.grid:
        PIL.Image.fromarray(grid([targets, projections, animeified, blended], args.grid_rows, 2)).save(
            args.grid
        )
        print(f"grid written to {args.grid}", file=sys.stderr)

    speeds, official = [], []
    if not args.no_speed:
        for threads, steps in ((1, None), (2, args.two_thread_steps)):
            s = speed(model, D, config, targets[0], threads, steps)
            speeds.append(s)
            print(f"speed: {s}", file=sys.stderr, flush=True)
        for arch in ("stylegan3-t", "stylegan2"):
            o = speed_official(arch, args.official_steps, config)
            official.append(o)
            print(f"official-size: {o}", file=sys.stderr, flush=True)
    det = detect(args.count, args.seed) if args.detect else None
    if det:
        print(f"detector: {det}", file=sys.stderr)
    load_end = os.getloadavg()

    body = format_section(
        args, config, r, speeds, official, det, d_where, anime_value, anime.scale, load_start, load_end, model
    )
    print(body)
    if args.write:
        write_section(SECTION, body)
    return 0


def format_section(
    args, config, r, speeds, official, det, d_where, anime_value, anime_scale, load_start, load_end, model
) -> str:
    def pct(x):
        return "n/a" if x is None else f"{100 * x:.0f}%"

    niceness = os.nice(0)  # as it ran
    cmd = f"nice -n {niceness} " * bool(niceness) + "python -m bench.project_quality "
    cmd += " ".join(shlex.quote(a) for a in sys.argv[1:])
    d_name = Path(d_where).name if d_where.endswith(".safetensors") else d_where
    latent = "W+" if config.w_plus else "w"
    kept = "hair colour kept (= the projection's class / = the input's label)"
    lines = [
        f"Command: `{cmd.strip()}`",
        "",
        f"Machine: {machine_summary()}. {load_note(load_start, load_end)}",
        "",
        f"{args.count} held-out photo-style toon faces (toon seed {args.seed}; the model was trained on "
        f"seed 0, the classifiers on seeds 1000-6000), {int(model.G.img_resolution)} px, projected into "
        f"`{Path(args.model).name}` at the `{args.preset}` preset ({config.steps} steps, {latent}; D "
        f"features from {d_name}), {args.batch} at a time, {args.threads} torch thread(s). Classifier: "
        "the shipped `toon_classifier.safetensors`.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| PSNR projection vs input (mean / median / min) | {r['psnr_mean']:.2f} / "
        f"{r['psnr_median']:.2f} / {r['psnr_min']:.2f} dB | |",
        f"| SSIM projection vs input (mean / median / min) | {r['ssim_mean']:.3f} / "
        f"{r['ssim_median']:.3f} / {r['ssim_min']:.3f} | |",
        f"| hair colour of the projection = input's label | {pct(r['proj_hair'])} (the input itself: "
        f"{pct(r['in_hair'])}) | >= 85% |",
        f"| glasses of the projection = input's label | {pct(r['proj_glasses'])} (the input itself: "
        f"{pct(r['in_glasses'])}; {pct(r['glasses_share'])} of the inputs wear glasses, the projection "
        f"keeps them on {pct(r['proj_glasses_with'])} of those) | >= 85% |",
        f"| projection classified photo | {pct(r['proj_photo'])} | |",
        f"| Anime-ify at the slider's + end (+{anime_value:g} units = {anime_value * anime_scale:.2f} in W): "
        f"classified anime | {pct(r['anime_rate'])} | >= 90% |",
        f"| ... {kept} | {pct(r['anime_hair_kept'])} / {pct(r['anime_hair_label'])} | >= 80% |",
        f"| blended with `{Path(args.blend).name}` (weight {args.blend_weight:g}): classified anime | "
        f"{pct(r['blend_anime_rate'])} | |",
        f"| ... {kept} | {pct(r['blend_hair_kept'])} / {pct(r['blend_hair_label'])} | |",
        f"| CPU time per projected image (batched) | {r['cpu_per_image']:.1f} s | |",
    ]
    if args.grid:
        lines += [
            "",
            f"Grid (`{args.grid}`, first {args.grid_rows} faces): input, projection, anime-ified, blended.",
        ]
    if speeds:
        lines += [
            "",
            f"One image at the preset ({config.steps} steps), 64 px model, w statistics from 10000 samples "
            "included; a shorter run is scaled to the preset's steps with its set-up (an estimate, ~):",
            "",
            "| torch threads | steps run | wall | CPU | preset wall | preset CPU | load at start / end |",
            "|---|---|---|---|---|---|---|",
        ]
        for x in speeds:
            load = f"{x['load'][0][0]:.1f} / {x['load'][1][0]:.1f}"
            f = config.steps / x["steps"]
            mark = "" if x["steps"] == config.steps else "~"
            lines.append(
                f"| {x['threads']} | {x['steps']} | {x['wall']:.1f} s | {x['cpu']:.1f} s | "
                f"{mark}{x['wall'] * f:.0f} s | {mark}{x['cpu'] * f:.0f} s | {load} |"
            )
    if official:
        lines += [
            "",
            "256 px official-size generators (random weights, channel base 16384, max 512, with a 256 px "
            f"discriminator), {args.official_steps} steps timed after a warm-up step, at the thread count "
            f"above; the preset's {config.steps} steps are that per-step time times {config.steps} "
            "(an estimate):",
            "",
            "| generator | parameters | wall per step | CPU per step | preset, wall | preset, CPU |",
            "|---|---|---|---|---|---|",
        ]
        for o in official:
            lines.append(
                f"| {o['arch']} 256 px | {o['params'] / 1e6:.1f} M | {o['wall_per_step']:.2f} s | "
                f"{o['cpu_per_step']:.2f} s | {o['wall_per_step'] * config.steps / 60:.1f} min | "
                f"{o['cpu_per_step'] * config.steps / 60:.1f} min |"
            )
    if det:
        lines += [
            "",
            f"Face detector (our MTCNN, facenet-pytorch weights) on the same {det['count']} faces drawn "
            f"at 256 px: found in {det['found']} ({det['single']} with exactly one face); median landmark "
            f"error {det['eye_err']:.2f} (eyes) / {det['all_err']:.2f} (all five) eye distances; "
            f"{det['seconds']:.0f} s.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
