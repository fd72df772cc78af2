"""The result of loading a model file (re-exported by gan.model_io)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LoadedModel:
    G: torch.nn.Module  # generator to render with (G_ema of a training pickle), eval(), float32
    arch: str  # 'stylegan2' | 'stylegan3-t' | 'stylegan3-r'
    g_kwargs: dict  # G's constructor kwargs (official names)
    metadata: dict  # provenance, training options, directions, augment p, ... (JSON-able)
    source: str  # file path it came from
    sha256: str  # hex digest of the file (for PNG recipes)
    D: torch.nn.Module | None = None
    G_train: torch.nn.Module | None = None  # non-EMA G, when the file has one (for resuming/fine-tuning)
    d_kwargs: dict | None = None

    @property
    def networks(self) -> list[str]:
        """Which networks the model has, by their file names."""
        names = ["G_ema"]
        if self.G_train is not None:
            names.append("G")
        if self.D is not None:
            names.append("D")
        return names
