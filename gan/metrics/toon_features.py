"""Features of the shipped toon classifier, for a Fréchet distance and KID on toon faces.

FID needs the Inception-v3 weights, which cannot be downloaded everywhere, and Inception was
trained on photos, not on 64 px drawings. The toon classifier (`gan.edit.classifier`, trained on
the procedural toon faces) is shipped with the program, so its features give a distance that
always works on toon models. Its numbers are *not* FID: another network, another feature space
(96 dimensions, the global average pool before the heads), so they are only comparable with
each other. The metrics are named `fd_toon...` / `kid_toon...` to say so.
"""

from __future__ import annotations

import os

import torch

from gan.edit.classifier import Classifier, load_classifier, to_input
from gan.errors import UserError
from gan.io.files import file_sha256

# Part of the cache key of real-image statistics; change it when the features change.
FEATURES_VERSION = "toon-pool-v1"


class ToonFeatures(torch.nn.Module):
    """uint8 images [N, C, H, W] (any size, 1 or 3 channels) -> pooled classifier features [N, D]."""

    def __init__(self, classifier: Classifier, sha256: str = ""):
        super().__init__()
        self.net = classifier.net
        self.resolution = classifier.config.resolution
        self.sha256 = f"{FEATURES_VERSION}:{sha256}"  # read by the statistics cache

    @property
    def feature_dim(self) -> int:
        return int(next(iter(self.net.heads.values())).in_features)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 images [N, C, H, W], got {images.dtype} {list(images.shape)}")
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        x = images[:, :3].to(torch.float32) / 127.5 - 1
        x = to_input(x, self.resolution).to(next(self.net.parameters()).device)
        return self.net.features(x).mean(dim=(2, 3))


def load_toon_features(
    path: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> ToonFeatures:
    """The feature network of a toon classifier file (default: the shipped one)."""
    if path is None:
        from gan.resources import SHIPPED_CLASSIFIER

        path = SHIPPED_CLASSIFIER
    if not os.path.isfile(path):
        raise UserError(
            f"the toon classifier {path} does not exist; fd_toon / kid_toon need it "
            "(give another one with --classifier)"
        )
    clf = load_classifier(path, device=str(device))
    return ToonFeatures(clf, file_sha256(path)).eval()
