"""Latent directions in W and where they are stored.

A `Direction` is a unit vector in W plus the w indices it acts on. A slider value `v` moves
every w in `[layer_start, layer_end)` by `v * scale * vector`, i.e. the slider unit is `scale`,
the standard deviation of the sampled ws along the direction (PCA: the component's std), so
"+2" means two standard deviations whatever the model. A per-layer (W+) direction holds one
row per w, [num_ws, w_dim], with unit root-mean-square row norm; its `scale` is the root mean
square of the rows' standard deviations, so a per-layer direction whose rows are all one unit
vector moves exactly like that vector. With `gan.render.Edit` that is
`Edit(direction=d.vector, strength=v * d.scale, layer_start=d.layer_start, layer_end=d.layer_end)`
(see `Direction.edit`). `range` is the slider's extent in those units: +-4 unless measured (`gan
directions measure --set-range` stores the strengths at which the edit was measured to work);
beyond it faces may fall apart, so the explorer's slider stops there.

Storage (one rule, two places):
- our `.safetensors` models keep their directions inside the model file, in the JSON metadata
  under "directions" (a list of `Direction.to_json()` dicts; the vector as a list of floats);
  `save_directions` rewrites the model file atomically with the new metadata (the weights are
  unchanged, the file hash changes);
- official `.pkl` models are never rewritten: their directions go to a sidecar JSON file
  `<model file>.directions.json` next to the model ({"format": "stylegan-explorer-directions",
  "model_sha256": ..., "directions": [...]}); the hash ties the sidecar to its pickle, and a
  sidecar of another file is refused with an error saying so.
`load_directions(model)` returns the in-file directions followed by those of a sidecar (a
sidecar next to one of our files is read too; on equal names the sidecar wins).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from gan.errors import UserError
from gan.io.files import atomic_write_bytes

KINDS = ("pca", "attribute")
SIDECAR_SUFFIX = ".directions.json"
SIDECAR_FORMAT = "stylegan-explorer-directions"
METADATA_KEY = "directions"
DEFAULT_RANGE = (-4.0, 4.0)  # slider units; quality is usually measured at +-3 to +-4


@dataclass(eq=False)
class Direction:
    name: str = field(metadata={"help": "unique name shown on the slider, e.g. 'pc0' or 'anime'"})
    kind: str = field(metadata={"help": "'pca' (GANSpace component) or 'attribute' (InterFaceGAN boundary)"})
    vector: np.ndarray = field(
        metadata={
            "help": "unit vector in W, float32 [w_dim]; or per layer (W+) [num_ws, w_dim], unit RMS row norm"
        }
    )
    layer_start: int = field(default=0, metadata={"help": "first w index the direction acts on"})
    layer_end: int | None = field(default=None, metadata={"help": "one past the last w index; None = all"})
    scale: float = field(
        default=1.0, metadata={"help": "slider unit: std of the sampled ws along the vector"}
    )
    help: str = field(default="", metadata={"help": "what the direction does / how it was made"})
    range: tuple[float, float] = field(
        default=DEFAULT_RANGE,
        metadata={"help": "slider extent (low, high) in slider units: where the edit keeps a good image"},
    )

    def __post_init__(self) -> None:
        vector = np.asarray(self.vector, dtype=np.float32)
        self.vector = vector if vector.ndim == 2 else vector.reshape(-1)
        if self.kind not in KINDS:
            raise ValueError(f"direction {self.name!r}: kind must be one of {KINDS}, not {self.kind!r}")
        if not self.name:
            raise ValueError("a direction needs a name")
        if not np.all(np.isfinite(self.vector)) or not math.isfinite(self.scale) or self.scale <= 0:
            raise ValueError(f"direction {self.name!r}: vector and scale must be finite, scale positive")
        if self.layer_start < 0 or (self.layer_end is not None and self.layer_end < self.layer_start):
            raise ValueError(f"direction {self.name!r}: bad layer range {self.layer_start}..{self.layer_end}")
        low, high = (float(v) for v in self.range)
        if not (math.isfinite(low) and math.isfinite(high) and low < 0 < high):
            raise ValueError(f"direction {self.name!r}: slider range must hold 0, not {low:g}..{high:g}")
        self.range = (low, high)

    def edit(self, value: float):
        """A `gan.render.Edit` moving by `value` slider units."""
        from gan.render import Edit

        return Edit(
            direction=self.vector,
            strength=float(value) * self.scale,
            layer_start=self.layer_start,
            layer_end=self.layer_end,
            name=self.name,
        )

    def slider_value(self, strength: float) -> float:
        """The slider position of an edit's strength along the vector (the inverse of `edit`)."""
        return float(strength) / self.scale

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "vector": self.vector.tolist(),  # float32 -> float -> float32 is exact; nested if per layer
            "layer_start": int(self.layer_start),
            "layer_end": None if self.layer_end is None else int(self.layer_end),
            "scale": float(self.scale),
            "help": self.help,
            "range": [self.range[0], self.range[1]],
        }

    @classmethod
    def from_json(cls, data: dict) -> Direction:
        end = data.get("layer_end")
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            vector=np.asarray(data["vector"], dtype=np.float32),
            layer_start=int(data.get("layer_start", 0)),
            layer_end=None if end is None else int(end),
            scale=float(data.get("scale", 1.0)),
            help=str(data.get("help", "")),
            range=tuple(data.get("range") or DEFAULT_RANGE),
        )


def sidecar_path(model_path: str | os.PathLike) -> str:
    return os.fspath(model_path) + SIDECAR_SUFFIX


def _parse_list(entries, where: str) -> list[Direction]:
    if not isinstance(entries, list):
        raise UserError(f"{where}: 'directions' must be a list")
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(Direction.from_json(entry))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(
                f"{where}: direction #{i} is damaged ({exc}); recompute it with `gan directions`"
            ) from None
    return out


def _read_sidecar(path: str, sha256: str | None) -> list[Direction]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot read the directions file {path} ({exc}); delete it or recompute it"
        ) from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise UserError(f"{path} is not a directions file (no format '{SIDECAR_FORMAT}')")
    if sha256 is not None and data.get("model_sha256") not in (None, sha256):
        raise UserError(
            f"{path} holds directions of another model file (sha256 {str(data.get('model_sha256'))[:12]}..., "
            f"this model is {sha256[:12]}...); delete it or recompute with `gan directions`"
        )
    return _parse_list(data.get("directions", []), path)


def _check_fits(directions: list[Direction], w_dim: int, num_ws: int, where: str) -> None:
    for d in directions:
        if d.vector.shape not in ((w_dim,), (num_ws, w_dim)):
            raise UserError(
                f"{where}: direction {d.name!r} has shape {list(d.vector.shape)}; this model needs "
                f"[{w_dim}] or, per layer, [{num_ws}, {w_dim}]"
            )
        end = num_ws if d.layer_end is None else d.layer_end
        if end > num_ws or d.layer_start >= num_ws:
            raise UserError(
                f"{where}: direction {d.name!r} acts on ws {d.layer_start}..{end}, the model has {num_ws}"
            )


def _merge(old: list[Direction], new: list[Direction]) -> list[Direction]:
    """old with same-named entries replaced by new, then the remaining new ones."""
    by_name = {d.name: d for d in new}
    merged = [by_name.pop(d.name, d) for d in old]
    return merged + [d for d in new if d.name in by_name]


def load_directions(model) -> list[Direction]:
    """All directions of a LoadedModel: in-file metadata first, then its sidecar file if present."""
    directions = _parse_list(model.metadata.get(METADATA_KEY, []), model.source)
    side = sidecar_path(model.source)
    if os.path.isfile(side):
        directions = _merge(directions, _read_sidecar(side, model.sha256))
    _check_fits(directions, int(model.G.w_dim), int(model.G.num_ws), model.source)
    return directions


def save_directions(
    model_path: str | os.PathLike, directions: list[Direction], replace: bool = False, where: str = "auto"
) -> str:
    """Store directions with a model (see the module docstring); returns the file written.

    Same-named existing directions are replaced, others kept (all dropped with replace=True).
    where: 'auto' (in the file for our format, sidecar for pickles), 'file' or 'sidecar'."""
    from gan.io.files import file_sha256, sniff_format
    from gan.model_io import load_model, save_model

    if where not in ("auto", "file", "sidecar"):
        raise ValueError(f"where must be 'auto', 'file' or 'sidecar', not {where!r}")
    names = [d.name for d in directions]
    if len(set(names)) != len(names):
        raise UserError(
            f"direction names must be unique: {', '.join(sorted({n for n in names if names.count(n) > 1}))}"
        )
    path = os.fspath(model_path)
    kind = sniff_format(path)
    if where == "file" and kind != "safetensors":
        raise UserError(f"{path} is not in our format; directions of official pickles go to a sidecar file")
    if where == "sidecar" or (where == "auto" and kind != "safetensors"):
        side = sidecar_path(path)
        sha = file_sha256(path)
        old = [] if replace or not os.path.isfile(side) else _read_sidecar(side, sha)
        data = {
            "format": SIDECAR_FORMAT,
            "model_sha256": sha,
            "directions": [d.to_json() for d in _merge(old, directions)],
        }
        atomic_write_bytes(side, json.dumps(data, indent=1).encode())
        return side
    model = load_model(path, training_nets=True)
    _check_fits(directions, int(model.G.w_dim), int(model.G.num_ws), path)
    old = [] if replace else _parse_list(model.metadata.get(METADATA_KEY, []), path)
    metadata = dict(model.metadata)
    metadata[METADATA_KEY] = [d.to_json() for d in _merge(old, directions)]
    save_model(path, model.G, D=model.D, G_train=model.G_train, arch=model.arch, metadata=metadata)
    return path


def unit(vector: np.ndarray) -> np.ndarray:
    """float32 `vector` scaled to the norm a `Direction` keeps: a unit vector [w_dim], or per
    layer [num_ws, w_dim] rows of unit root-mean-square norm."""
    v = np.asarray(vector, dtype=np.float32)
    rows = v.size // v.shape[-1]
    return v / np.linalg.norm(v) * np.float32(np.sqrt(rows))


def orthogonalize(vector: np.ndarray, against: list[np.ndarray]) -> np.ndarray:
    """The unit vector of `vector` minus its projection onto the span of `against`."""
    v = np.asarray(vector, dtype=np.float64)
    if against:
        basis, _ = np.linalg.qr(np.stack([np.asarray(a, np.float64) for a in against], axis=1))
        v = v - basis @ (basis.T @ v)
    norm = np.linalg.norm(v)
    if norm < 1e-8:
        raise UserError("the direction lies in the span of the directions it is conditioned on")
    return (v / norm).astype(np.float32)
