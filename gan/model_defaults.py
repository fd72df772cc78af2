"""What the explorer shows first for a model, stored in the model's JSON metadata.

    metadata["explorer"] = {"seed": 11}   # the seed a fresh start opens on

A shipped model names a seed that shows a clear face across its sliders' ranges (chosen by
looking at renders, see resources/models/README.md), so a first start does not open on whatever
seed 0 happens to be. Only our .safetensors files carry it; official pickles open on seed 0.
"""

from __future__ import annotations

import os

from gan.errors import UserError

METADATA_KEY = "explorer"


def default_seed(metadata) -> int | None:
    """The stored seed, or None (absent or not a non-negative integer)."""
    entry = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    seed = entry.get("seed") if isinstance(entry, dict) else None
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        return None
    return seed


def store_default_seed(model_path: str | os.PathLike, seed: int) -> None:
    """Rewrite our model file with `seed` as the explorer's default (weights unchanged)."""
    from gan.io.files import sniff_format
    from gan.model_io import load_model, save_model

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"the default seed must be a non-negative integer, not {seed!r}")
    path = os.fspath(model_path)
    if sniff_format(path) != "safetensors":
        raise UserError(f"{path} is not in our format; only .safetensors models store a default seed")
    model = load_model(path, training_nets=True)
    metadata = dict(model.metadata)
    metadata[METADATA_KEY] = dict(metadata.get(METADATA_KEY) or {}, seed=int(seed))
    save_model(path, model.G, D=model.D, G_train=model.G_train, arch=model.arch, metadata=metadata)
