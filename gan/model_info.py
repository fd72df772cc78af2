"""A loaded model described for a viewer: plain data for the About box, the status bar, the
transform inspector and the welcome card."""

from __future__ import annotations

import logging
import os

from gan.capabilities import op_capabilities
from gan.io.origin import origin_lines
from gan.metrics.equivariance import has_input_transform
from gan.model_defaults import default_seed

log = logging.getLogger(__name__)


def equivariance_note(arch: str) -> str:
    """What moving the input does for this architecture (shown in the transform inspector)."""
    if arch == "stylegan3-r":
        return "StyleGAN3-R: translation- and rotation-equivariant by design."
    if arch.startswith("stylegan3"):
        return "StyleGAN3-T: translation-equivariant by design (not built for rotation)."
    if arch == "stylegan2":
        return (
            "StyleGAN2: not translation-equivariant; expect texture sticking "
            "(the 4x4 constant moves, noise and borders stay)."
        )
    return f"{arch}: equivariance unknown."


def model_info(loaded, device: str, ops_impl: str = "auto") -> dict:
    """Plain description of a gan.model_io.LoadedModel (sizes, architecture, ops on `device`)."""
    G = loaded.G
    try:
        caps = op_capabilities(device, ops_impl)
    except Exception as exc:  # capabilities are informative only; never block opening a model
        log.exception("reading the ops' capabilities failed")
        caps = {"error": {"impl": "?", "reason": str(exc), "device": device}}
    metadata = loaded.metadata if isinstance(loaded.metadata, dict) else {}
    return {
        "path": os.path.abspath(str(loaded.source)),
        "name": os.path.basename(str(loaded.source)),
        "sha256": loaded.sha256,
        "arch": loaded.arch,
        # Translate / rotate work for StyleGAN2 and 3; only StyleGAN3 is built to follow them.
        "has_input_transform": has_input_transform(G),
        "equivariant_by_design": loaded.arch.startswith("stylegan3"),
        "equivariance_note": equivariance_note(loaded.arch),
        "resolution": int(G.img_resolution),
        "z_dim": int(G.z_dim),
        "w_dim": int(G.w_dim),
        "c_dim": int(G.c_dim),
        "num_ws": int(G.num_ws),
        "params": int(sum(p.numel() for p in G.parameters())),
        "device": device,
        "networks": list(loaded.networks),
        "ops": caps,
        "metadata_keys": sorted(metadata),
        "default_seed": default_seed(metadata),  # the seed a fresh start shows (or None)
        "origin": origin_lines(metadata),
    }
