"""The mapping network z (+ class c) -> w, shared by StyleGAN2 and StyleGAN3.

Layer names (`embed`, `fc0`, `fc1`, ..., buffer `w_avg`) equal the official ones.
"""

from __future__ import annotations

import torch

from gan.networks.layers import FullyConnectedLayer, attrs_repr, normalize_2nd_moment


class MappingNetwork(torch.nn.Module):
    def __init__(
        self,
        z_dim: int,  # Input latent (Z) dimensionality, 0 = no latent.
        c_dim: int,  # Conditioning label (C) dimensionality, 0 = no label.
        w_dim: int,  # Intermediate latent (W) dimensionality.
        num_ws: int | None,  # Number of ws to broadcast to, None = return [N, w_dim].
        num_layers: int = 8,  # Number of fully connected layers (official SG2 default 8, SG3 uses 2).
        embed_features: int | None = None,  # Label embedding size, None = w_dim.
        layer_features: int | None = None,  # Hidden layer width, None = w_dim.
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,  # Learning rate multiplier of the mapping layers.
        w_avg_beta: float | None = 0.998,  # Decay of the tracked average w, None = do not track.
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.num_ws, self.num_layers, self.w_avg_beta = num_ws, num_layers, w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas and self.w_avg_beta is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            # Pull towards the average w; cutoff limits truncation to the first (coarse) ws.
            if truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x

    def extra_repr(self) -> str:
        return attrs_repr(self, "z_dim", "c_dim", "w_dim", "num_ws")
