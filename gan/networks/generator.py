"""The generator wrapper both architectures share: z (+ class c) -> mapping -> ws -> synthesis."""

from __future__ import annotations

import copy

import torch

from gan.networks.mapping import MappingNetwork


class GeneratorBase(torch.nn.Module):
    """Subclasses name their synthesis network class and their mapping defaults."""

    synthesis_class: type[torch.nn.Module]
    mapping_defaults: dict = {}  # e.g. StyleGAN3's 2-layer mapping network

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict | None = None,  # MappingNetwork options (num_layers, lr_multiplier, ...)
        **synthesis_kwargs,  # synthesis network and layer options (channel_base, conv_kernel, ...)
    ):
        super().__init__()
        mapping_kwargs = dict(mapping_kwargs or {})
        # The constructor arguments as given, for saving and rebuilding (official pickles keep the same dict).
        self.init_kwargs = copy.deepcopy(
            dict(
                z_dim=z_dim,
                c_dim=c_dim,
                w_dim=w_dim,
                img_resolution=img_resolution,
                img_channels=img_channels,
                mapping_kwargs=mapping_kwargs,
                **synthesis_kwargs,
            )
        )
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = self.synthesis_class(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs
        )
        self.num_ws = self.synthesis.num_ws
        options = {**self.mapping_defaults, **mapping_kwargs}
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **options)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
        **synthesis_kwargs,
    ) -> torch.Tensor:
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)
