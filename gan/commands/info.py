"""`gan info`: describe a model file (architecture, sizes, networks, metadata)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gan.errors import UserError
from gan.io.origin import origin_lines

NAME = "info"
HELP = "Show a model's architecture, resolution, latent sizes, parameter counts and metadata."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="model file (.safetensors or official .pkl)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _count(net) -> int | None:
    return None if net is None else sum(p.numel() for p in net.parameters())


def describe(model) -> dict[str, Any]:
    """The facts `gan info` shows, as plain JSON-able data."""
    G = model.G
    return {
        "file": model.source,
        "sha256": model.sha256,
        "arch": model.arch,
        "resolution": int(G.img_resolution),
        "img_channels": int(G.img_channels),
        "z_dim": int(G.z_dim),
        "w_dim": int(G.w_dim),
        "c_dim": int(G.c_dim),
        "num_ws": int(G.num_ws),
        "networks": model.networks,
        "parameters": {"G": _count(G), "D": _count(model.D)},
        "g_kwargs": model.g_kwargs,
        "d_kwargs": model.d_kwargs,
        "metadata": model.metadata,
    }


def _summary(value: Any, limit: int = 100) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_text(info: dict[str, Any]) -> str:
    params = info["parameters"]
    source = origin_lines(info["metadata"] or {})
    lines = [
        f"file:        {info['file']}",
        f"sha256:      {info['sha256']}",
        *[f"{'origin:' if i == 0 else '':<13}{line}" for i, line in enumerate(source)],
        f"arch:        {info['arch']}",
        f"resolution:  {info['resolution']}x{info['resolution']}, {info['img_channels']} channels",
        f"latents:     z_dim {info['z_dim']}, w_dim {info['w_dim']}, c_dim {info['c_dim']}, "
        f"num_ws {info['num_ws']}",
        f"networks:    {', '.join(info['networks'])}",
        f"parameters:  G {params['G']:,}" + (f", D {params['D']:,}" if params["D"] is not None else ""),
        f"G settings:  {_summary(info['g_kwargs'])}",
    ]
    if info["d_kwargs"] is not None:
        lines.append(f"D settings:  {_summary(info['d_kwargs'])}")
    metadata = info["metadata"]
    if metadata:
        lines.append("metadata:")
        lines += [f"  {key}: {_summary(metadata[key], 90)}" for key in sorted(metadata)]
    else:
        lines.append("metadata:    (none)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from gan.model_io import load_model  # heavy import; keep `gan --help` fast

    model = load_model(args.model)
    info = describe(model)
    if args.json:
        try:
            print(json.dumps(info, indent=1, sort_keys=True))
        except (TypeError, ValueError) as exc:
            raise UserError(f"the model's metadata cannot be shown as JSON: {exc}") from None
    else:
        print(format_text(info))
    return 0
