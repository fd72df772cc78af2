"""Load and save models: our `.safetensors` format and NVIDIA's official `.pkl` (import only).

    model = load_model("network-snapshot-000100.pkl")      # or "model.safetensors"
    save_model("model.safetensors", model.G, D=model.D, metadata=model.metadata)

Loading never executes code from the file; every problem is a ModelLoadError saying what was
wrong and what to do. Saving is atomic.
"""

from __future__ import annotations

import os

import torch

from gan.errors import ModelLoadError
from gan.io import official_pickle, safetensors_format
from gan.io.files import file_sha256, sniff_format
from gan.io.loaded_model import LoadedModel

__all__ = ["LoadedModel", "ModelLoadError", "load_model", "save_model"]


def load_model(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    training_nets: bool = True,
    verify: bool = True,
) -> LoadedModel:
    """Load a model file. The format is recognised from the contents, not the extension.
    With training_nets=False only the generator to render with (G_ema) is built.
    verify=False skips comparing our format's stored content digest (to salvage a file whose
    bytes changed); the other checks stay."""
    kind = sniff_format(path)
    if kind == "torch-zip":
        raise ModelLoadError(
            f"{path} is a torch.save checkpoint (zip), not a StyleGAN network pickle or a stylegan-explorer "
            "model; such files can run code when loaded and are not supported."
        )
    device = str(device)
    if kind == "safetensors":
        # The file's sha256 comes from the same pass over the file as the content digest.
        return safetensors_format.load(path, None, device=device, training_nets=training_nets, verify=verify)
    sha256 = file_sha256(path)
    return official_pickle.load_official_pickle(path, sha256, device=device, training_nets=training_nets)


def save_model(
    path: str | os.PathLike,
    G: torch.nn.Module,
    *,
    D: torch.nn.Module | None = None,
    G_train: torch.nn.Module | None = None,
    arch: str | None = None,
    metadata: dict | None = None,
) -> None:
    """Write G (the generator to render with), optional D and non-EMA G_train, and JSON-able
    metadata to `path` in our safetensors format, atomically."""
    safetensors_format.save(path, G, D=D, G_train=G_train, arch=arch, metadata=metadata)
