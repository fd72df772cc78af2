"""PNG files that carry their own recipe: everything needed to render the same pixels again.

The recipe is JSON in an iTXt chunk named `stylegan-explorer.recipe`. Arrays (z, w, edit
directions, the final ws, a projection's noise buffers) are stored as base64 of their
little-endian float32 bytes, so a recipe restores bit-identical inputs (the renderer works in
float32 throughout).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from gan.errors import UserError
from gan.io.files import create_temp_file
from gan.render import Edit, RenderArgs

RECIPE_KEY = "stylegan-explorer.recipe"
RECIPE_VERSION = 1


@dataclass
class ModelRef:
    sha256: str  # hex digest of the model file
    path: str  # where it was loaded from when the image was made
    arch: str  # 'stylegan2' | 'stylegan3-t' | 'stylegan3-r'


@dataclass(eq=False)
class Recipe:
    args: RenderArgs
    model: ModelRef
    w: np.ndarray | None = None  # the final ws that were rendered, [num_ws, w_dim], for reference


def _encode_array(a) -> dict:
    a = np.ascontiguousarray(np.asarray(a, dtype="<f4"))
    return {
        "dtype": "float32",
        "shape": list(a.shape),
        "base64": base64.b64encode(a.tobytes()).decode("ascii"),
    }


def _decode_array(d: dict) -> np.ndarray:
    if d.get("dtype") != "float32":
        raise ValueError(f"unsupported array dtype {d.get('dtype')!r}")
    raw = base64.b64decode(d["base64"], validate=True)
    return np.frombuffer(raw, dtype="<f4").reshape(d["shape"]).astype(np.float32)


def recipe_to_dict(args: RenderArgs, model: ModelRef, w: np.ndarray | None = None) -> dict:
    """JSON-able form of a recipe. Only the latent source that the renderer uses is stored."""
    latent: dict = {}
    if args.w is not None:
        latent["w"] = _encode_array(args.w)
    elif args.z is not None:
        latent["z"] = _encode_array(np.asarray(args.z, dtype=np.float32).reshape(-1))
    else:
        latent["seed"] = int(args.seed)
    return {
        "version": RECIPE_VERSION,
        "model": {"sha256": model.sha256, "path": model.path, "arch": model.arch},
        **latent,
        "class_idx": None if args.class_idx is None else int(args.class_idx),
        "psi": float(args.psi),
        "truncation_cutoff": None if args.truncation_cutoff is None else int(args.truncation_cutoff),
        "noise_mode": args.noise_mode,
        "translate": [float(v) for v in args.translate],
        "rotate": float(args.rotate),
        "style_mix": None
        if args.mix_seed is None
        else {"seed": int(args.mix_seed), "start": int(args.mix_start), "end": args.mix_end},
        "edits": [
            {
                "name": e.name,
                "strength": float(e.strength),
                "layer_start": int(e.layer_start),
                "layer_end": None if e.layer_end is None else int(e.layer_end),
                "direction": _encode_array(e.direction),
            }
            for e in args.edits
        ],
        "final_w": None if w is None else _encode_array(w),
        # A projection's StyleGAN2 noise buffers (absent for seeds and for StyleGAN3).
        **({"noise": {k: _encode_array(v) for k, v in sorted(args.noise.items())}} if args.noise else {}),
    }


def recipe_from_dict(d: dict) -> Recipe:
    version = d.get("version")
    if version != RECIPE_VERSION:
        raise ValueError(f"recipe version {version!r} is not supported (expected {RECIPE_VERSION})")
    mix = d.get("style_mix")
    args = RenderArgs(
        seed=int(d.get("seed", 0)),
        z=_decode_array(d["z"]) if "z" in d else None,
        w=_decode_array(d["w"]) if "w" in d else None,
        class_idx=d.get("class_idx"),
        psi=float(d["psi"]),
        truncation_cutoff=d.get("truncation_cutoff"),
        noise_mode=d["noise_mode"],
        translate=(float(d["translate"][0]), float(d["translate"][1])),
        rotate=float(d["rotate"]),
        mix_seed=None if mix is None else int(mix["seed"]),
        mix_start=0 if mix is None else int(mix["start"]),
        mix_end=None if mix is None else mix["end"],
        edits=[
            Edit(
                direction=_decode_array(e["direction"]),
                strength=float(e["strength"]),
                layer_start=int(e["layer_start"]),
                layer_end=e["layer_end"],
                name=e.get("name", ""),
            )
            for e in d.get("edits", [])
        ],
        noise={str(k): _decode_array(v) for k, v in d["noise"].items()} if d.get("noise") else None,
    )
    m = d["model"]
    model = ModelRef(sha256=m["sha256"], path=m["path"], arch=m["arch"])
    final_w = d.get("final_w")
    return Recipe(args=args, model=model, w=None if final_w is None else _decode_array(final_w))


def model_ref(model) -> ModelRef:
    """The reference to a gan.model_io.LoadedModel stored in recipes."""
    return ModelRef(sha256=model.sha256, path=os.path.abspath(str(model.source)), arch=model.arch)


def write_png(path: str | os.PathLike, image: np.ndarray, recipe: dict) -> None:
    """Write image (uint8 HxWx3) with the recipe (from recipe_to_dict), atomically."""
    info = PngImagePlugin.PngInfo()
    info.add_itxt(RECIPE_KEY, json.dumps(recipe, separators=(",", ":")))
    path = Path(path)
    fd, tmp = create_temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(image).save(f, format="PNG", pnginfo=info)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_recipe(path: str | os.PathLike) -> Recipe:
    """The recipe of a PNG written by write_png; UserError if there is none or it is damaged."""
    try:
        with Image.open(path) as im:
            text = getattr(im, "text", {}).get(RECIPE_KEY)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    if text is None:
        raise UserError(f"{path} has no stylegan-explorer recipe (was it saved by this program?)")
    try:
        return recipe_from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise UserError(f"the recipe in {path} is damaged or from an unknown version: {exc}") from None
