"""Is a path a usable training data set? The answer as plain data, for the training dialog."""

from __future__ import annotations

import os
from typing import Any

from gan.data.dataset import IMAGE_EXTENSIONS, ImageDataset
from gan.errors import UserError


def inspect_dataset(path: str) -> dict:
    """{ok, path, count, resolution, channels, labels, message, images_found} of a data set at
    `path` (never raises UserError: a problem is the message)."""
    out: dict[str, Any] = {"path": path, "ok": False, "images_found": 0}
    if not os.path.exists(path):
        out["message"] = f"{path} does not exist"
        return out
    label_note = ""
    try:
        try:
            dataset = ImageDataset(path, use_labels=True)
        except UserError as exc:  # the images may still be usable without their labels
            dataset = ImageDataset(path)
            label_note = f"; labels not usable: {exc}"
    except UserError as exc:
        out["message"] = str(exc)
        if os.path.isdir(path):
            out["images_found"] = sum(
                1
                for _root, _dirs, files in os.walk(path)
                for f in files
                if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
            )
        return out
    try:
        out.update(
            ok=True,
            count=len(dataset),
            resolution=int(dataset.resolution),
            channels=int(dataset.num_channels),
            labels=int(dataset.label_dim),
            images_found=len(dataset),
        )
        labels = f", {dataset.label_dim} classes" if dataset.label_dim else ", no labels"
        labels += label_note
        out["message"] = (
            f"{len(dataset):,} images, {dataset.resolution}×{dataset.resolution}, "
            f"{dataset.num_channels} channel(s){labels}"
        )
    finally:
        dataset.close()
    return out
