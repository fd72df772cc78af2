"""`gan project`: a photo into a model's latent space (face alignment, then optimisation).

gan project --model M --image photo.jpg --out me.npz --png me.png
gan project --model M --image photo.jpg --crop 120,40,600 --preset best --out me.npz
gan generate --model M --latents me.npz --direction anime=4 --out me-anime.png
"""

from __future__ import annotations

import argparse
import math
import sys

from gan.config_help import add_config_arguments
from gan.errors import UserError

NAME = "project"
HELP = "Project a photo into a model (find its face, align it, optimise w / W+); writes .npz latents."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from gan.photo.align import TEMPLATES
    from gan.photo.project import PRESETS, ProjectConfig

    p.add_argument("--model", required=True, help="model file to project into (the base model, not a blend)")
    p.add_argument("--image", required=True, help="the photo: JPEG, PNG or WebP")
    p.add_argument("--out", required=True, help="write the latents (.npz: ws, noise, target, settings)")
    p.add_argument("--png", default=None, help="also write the reconstruction as a PNG with its recipe")
    presets = ", ".join(
        f"{k} ({v['steps']} steps{', W+' if v.get('w_plus') else ''})" for k, v in PRESETS.items()
    )
    p.add_argument("--preset", choices=list(PRESETS), default="default", help=f"quality preset: {presets}")
    add_config_arguments(
        p,
        ProjectConfig,
        _CONFIG_OPTIONS,
        flags={"class_idx": "--class"},
        metavars={"class_idx": "N"},
        shown={"steps": "the preset's", "w_plus": "the preset's"},
        unset_is_none=True,  # what is not given comes from the preset
    )
    p.add_argument(
        "--crop",
        default=None,
        metavar="X,Y,SIZE",
        help="square crop box in photo pixels instead of face detection (no face, or not a face model)",
    )
    p.add_argument(
        "--face",
        type=int,
        default=None,
        metavar="K",
        help="which detected face to use, 0 = the largest (the list is printed when there are several)",
    )
    p.add_argument(
        "--template",
        choices=["auto", *TEMPLATES],
        default="auto",
        help="face alignment: ffhq (NVIDIA's face models), toon (our toon models); auto picks by model",
    )
    p.add_argument(
        "--discriminator",
        default=None,
        metavar="FILE",
        help="take D for the feature loss from this model file (default: the model's own, if any)",
    )
    p.add_argument("--no-discriminator", action="store_true", help="do not use a discriminator feature loss")
    p.add_argument(
        "--vgg",
        default=None,
        metavar="FILE",
        help="torchvision VGG16 weights (.pth): adds the LPIPS distance (nothing is downloaded)",
    )
    p.add_argument(
        "--lpips-lin", default=None, metavar="FILE", help="LPIPS linear weights for VGG (lpips' vgg.pth)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice, 1 when other jobs keep every core busy)",
    )
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, ...")


# ProjectConfig fields the command line sets; the others come from --preset.
_CONFIG_OPTIONS = ("steps", "w_plus", "seed", "class_idx")


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from gan.commands.generate import _check_device
    from gan.model_io import load_model
    from gan.photo.align import template_for_model, template_named
    from gan.photo.image import open_photo
    from gan.photo.losses import VGGPerceptual, psnr, ssim_uint8
    from gan.photo.pipeline import (
        discriminator_for,
        find_faces,
        load_discriminator,
        model_description,
        parse_crop,
        prepare_target,
        projection_render_args,
    )
    from gan.photo.project import ProjectConfig, project, save_projection, threads_for_load
    from gan.recipe import model_ref, recipe_to_dict, write_png
    from gan.render import Renderer

    overrides = {name: getattr(args, name) for name in _CONFIG_OPTIONS if getattr(args, name) is not None}
    config = ProjectConfig.preset(args.preset, **overrides)
    config.validate()
    threads = args.threads if args.threads is not None else threads_for_load()
    if threads is not None:
        if threads < 1:
            raise UserError("--threads must be at least 1")
        if args.threads is None:
            print("the machine is busy: projecting on 1 torch thread (--threads to choose)", file=sys.stderr)
        torch.set_num_threads(threads)
    if not args.out.endswith(".npz"):
        raise UserError(f"--out must end in .npz, got {args.out!r}")
    if args.lpips_lin and not args.vgg:
        raise UserError("--lpips-lin needs --vgg (the VGG16 weights it weighs)")
    device = _check_device(args.device)
    photo = open_photo(args.image)
    model = load_model(args.model, device=device, training_nets=True)
    res = int(model.G.img_resolution)

    if args.crop is not None:
        if args.face is not None:
            raise UserError("give either --crop or --face, not both")
        target = prepare_target(
            photo, res, template_for_model(model.metadata), box=parse_crop(args.crop, photo)
        )
        print(f"crop box {args.crop} -> {res}x{res}", file=sys.stderr)
    else:
        template = (
            template_for_model(model.metadata) if args.template == "auto" else template_named(args.template)
        )
        faces = find_faces(photo)
        if not faces:
            raise UserError(
                f"no face found in {args.image}; give a square crop box with --crop X,Y,SIZE (photo pixels, "
                f"the photo is {photo.original_size[0]}x{photo.original_size[1]})"
            )
        if len(faces) > 1:
            print(f"{len(faces)} faces found (largest first):", file=sys.stderr)
            for k, f in enumerate(faces):
                x0, y0, x1, y1 = (f.box / photo.scale).round().astype(int).tolist()
                print(f"  --face {k}: box {x0},{y0} - {x1},{y1} (p={f.score:.2f})", file=sys.stderr)
        k = args.face if args.face is not None else 0
        if not 0 <= k < len(faces):
            raise UserError(f"--face {k}: only {len(faces)} face(s) found (0 to {len(faces) - 1})")
        target = prepare_target(photo, res, template, face=faces[k])
        print(f"face {k} aligned with the {template.name} template -> {res}x{res}", file=sys.stderr)

    D = None
    if not args.no_discriminator and config.d_weight > 0:
        if args.discriminator:
            D, where = load_discriminator(args.discriminator, model), args.discriminator
        else:
            D, where = discriminator_for(model)
        print(f"discriminator features: {where if D is not None else 'no (' + where + ')'}", file=sys.stderr)
    vgg = VGGPerceptual(args.vgg, args.lpips_lin).to(device) if args.vgg else None

    bar = tqdm(total=config.steps, desc="project", unit="step", file=sys.stderr)

    def on_step(progress) -> None:
        bar.update(progress.step - bar.n)
        bar.set_postfix(loss=f"{progress.loss:.4f}", phase=progress.phase, refresh=False)

    try:
        [result] = project(model.G, target.image, config, D=D, vgg=vgg, on_step=on_step)
    finally:
        bar.close()
    result.model = model_description(model)
    result.source = target.describe()
    save_projection(args.out, result)
    quality = (
        f"PSNR {psnr(result.image, result.target):.2f} dB, SSIM {ssim_uint8(result.image, result.target):.3f}"
    )
    terms = ", ".join(f"{k} {v:.4f}" for k, v in result.losses.items())
    print(
        f"{args.out}: {'W+' if result.w_plus else 'w'} latents, {quality} ({terms}); {result.seconds:.1f} s"
    )
    if args.png:
        renderer = Renderer(model, device=device, activation_cache_bytes=0)
        render_args = projection_render_args(result)
        rendered = renderer.render(render_args)
        if rendered.error is not None:
            raise UserError(f"rendering the projection failed: {rendered.error}")
        try:
            write_png(args.png, rendered.image, recipe_to_dict(render_args, model_ref(model), rendered.w))
        except OSError as exc:
            raise UserError(f"cannot write {args.png}: {exc.strerror or exc}") from None
        print(f"{args.png}: the reconstruction, with its recipe (open it in the explorer)")
    if not math.isfinite(result.losses.get("total", 0.0)):
        raise UserError("the projection diverged (the loss is not finite); try fewer steps or another seed")
    return 0
