"""Network blending (layer swapping) between two generators of one lineage.

Typical use: a base model (toon faces) and a copy fine-tuned from it (anime only). The blend
keeps the base's mapping network (so seeds and ws mean the same) and its synthesis layers
below `resolution`, and mixes the layers at and above `resolution`:

    p = p_base + weight * (p_tuned - p_base)

weight 0 is the base, weight 1 swaps those layers in completely, values in between fade
smoothly. Coarse layers decide pose and face shape, fine layers colours and texture, so e.g.
resolution 32 on a 64 px model keeps the base's geometry with the tuned model's rendering.

A layer's resolution: StyleGAN2 block `b<res>`; StyleGAN3 the output sampling rate of the layer
(the Fourier input: its sampling rate). Blendable means: same architecture, same constructor
settings, same parameter names and shapes, and weights that are visibly related (a fine-tuned
copy is close to its parent; two independently trained models are not, and mixing their layers
gives noise).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json

import torch

from gan.errors import UserError

MIN_SIMILARITY = 0.2  # cosine similarity of the synthesis weights below which models are unrelated


def _generator(model) -> torch.nn.Module:
    return model.G if hasattr(model, "G") else model


def _arch_and_kwargs(model) -> tuple[str | None, dict]:
    if hasattr(model, "G"):
        return model.arch, dict(model.g_kwargs)
    return None, dict(getattr(model, "init_kwargs", {}) or {})


def layer_resolution(G: torch.nn.Module, name: str) -> int | None:
    """Resolution of the synthesis layer a parameter/buffer name belongs to (None: not synthesis)."""
    parts = name.split(".")
    if parts[0] != "synthesis" or len(parts) < 3:
        return None
    child = getattr(G.synthesis, parts[1], None)
    if parts[1].startswith("b") and parts[1][1:].isdigit():
        return int(parts[1][1:])
    for attr in ("out_sampling_rate", "sampling_rate"):
        if child is not None and hasattr(child, attr):
            return int(round(float(getattr(child, attr))))
    return None


def blend_resolutions(model) -> list[int]:
    """The resolutions at which the layers of a model can be split, lowest first."""
    G = _generator(model)
    names = [n for n, _ in G.named_parameters()] + [n for n, _ in G.named_buffers()]
    return sorted({r for n in names if (r := layer_resolution(G, n)) is not None})


def default_blend_resolution(model) -> int:
    """The middle split resolution: coarse geometry from the base, the rendering blended."""
    resolutions = blend_resolutions(model)
    return resolutions[len(resolutions) // 2] if resolutions else 4


def _similarity(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """Mean cosine similarity of the synthesis weight tensors of a and b."""
    pb = dict(b.named_parameters())
    sims = []
    for name, p in a.named_parameters():
        if name.startswith("synthesis.") and name.endswith("weight") and p.numel() > 1:
            x, y = p.detach().flatten().double(), pb[name].detach().flatten().double()
            denom = float(x.norm() * y.norm())
            if denom > 0:
                sims.append(float(x @ y) / denom)
    return sum(sims) / len(sims) if sims else 1.0


def blendable_partners(model, paths: list[str]) -> list[str]:
    """The model files among paths that blend with `model` (e.g. of the shipped models, its anime
    fine-tune but not a model of another architecture or lineage); unreadable files are left out."""
    from gan.errors import ModelLoadError
    from gan.model_io import load_model

    partners = []
    for path in paths:
        try:
            other = load_model(path, device="cpu", training_nets=False)
        except (ModelLoadError, UserError, OSError):
            continue
        if check_blendable(model, other) is None:
            partners.append(path)
    return partners


def check_blendable(a, b) -> str | None:
    """Why LoadedModels (or generators) a and b cannot be blended, or None when they can."""
    Ga, Gb = _generator(a), _generator(b)
    arch_a, kw_a = _arch_and_kwargs(a)
    arch_b, kw_b = _arch_and_kwargs(b)
    if arch_a is not None and arch_b is not None and arch_a != arch_b:
        return f"the architectures differ ({arch_a} vs {arch_b}); blend a model with one fine-tuned from it"
    if kw_a != kw_b:
        keys = sorted(k for k in set(kw_a) | set(kw_b) if kw_a.get(k) != kw_b.get(k))
        shown = ", ".join(f"{k}: {kw_a.get(k)!r} vs {kw_b.get(k)!r}" for k in keys[:4])
        return f"the network settings differ ({shown}); only models of one lineage (same config) blend"
    sa = {n: tuple(t.shape) for n, t in Ga.state_dict().items()}
    sb = {n: tuple(t.shape) for n, t in Gb.state_dict().items()}
    if sa != sb:
        diff = sorted(n for n in set(sa) | set(sb) if sa.get(n) != sb.get(n))
        more = ", ..." if len(diff) > 3 else ""
        return f"the parameters differ in name or shape ({', '.join(diff[:3])}{more})"
    sim = _similarity(Ga, Gb)
    if sim < MIN_SIMILARITY:
        return (
            f"the weights are unrelated (similarity {sim:.2f} < {MIN_SIMILARITY}): the models were trained "
            "separately, not one fine-tuned from the other, so their layers do not fit together"
        )
    return None


@torch.no_grad()
def blend_generators(base, tuned, resolution: int, weight: float) -> torch.nn.Module:
    """A new generator: base's mapping and layers below `resolution`, layers at and above it
    mixed `weight` of the way from base to tuned (see the module docstring)."""
    reason = check_blendable(base, tuned)
    if reason is not None:
        raise UserError(f"cannot blend these models: {reason}")
    if not 0.0 <= float(weight) <= 1.0:
        raise UserError(f"the blend weight must be from 0 to 1, not {weight}")
    Gb, Gt = _generator(base), _generator(tuned)
    valid = blend_resolutions(Gb)
    if int(resolution) not in valid:
        raise UserError(
            f"blend resolution {resolution} is not one of this model's: {', '.join(map(str, valid))}"
        )
    out = copy.deepcopy(Gb).eval().requires_grad_(False)
    tuned_state = Gt.state_dict()
    for name, value in out.state_dict().items():
        r = layer_resolution(out, name)
        if r is None or r < resolution or not value.is_floating_point():
            continue
        value.lerp_(tuned_state[name].to(value.device, value.dtype), float(weight))
    return out


def blend_models(base, tuned, resolution: int, weight: float):
    """blend_generators as a LoadedModel. Its sha256 identifies the blend (hash of both model
    hashes, resolution and weight), not a file; metadata["blend"] says what was mixed."""
    G = blend_generators(base, tuned, resolution, weight)
    metadata = dict(base.metadata)
    metadata["blend"] = {
        "base": base.source,
        "base_sha256": base.sha256,
        "tuned": tuned.source,
        "tuned_sha256": tuned.sha256,
        "resolution": int(resolution),
        "weight": float(weight),
    }
    key = json.dumps(metadata["blend"], sort_keys=True).encode()
    sha = hashlib.sha256(key).hexdigest()
    return dataclasses.replace(base, G=G, metadata=metadata, sha256=sha, D=None, G_train=None, d_kwargs=None)
