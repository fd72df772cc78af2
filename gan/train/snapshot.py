"""Run folders, snapshots, training state and image grids.

A run folder `<outdir>/<00000-name>/` holds:
    training_options.json                   resolved options (and the TrainConfig as given)
    stats.jsonl                             one JSON object of named scalars per tick
    reals.png, fakes000123.png              sample grids (fixed latents) per snapshot
    network-snapshot-000123.safetensors     our model format: G_ema, G (non-EMA), D, metadata
    training-state-000123.pt                optimizer states, augment p, counters, RNG states, pl_mean
    latest.json                             which snapshot and state are the newest (for resuming)

Everything is written atomically (temporary file + rename); the snapshot is written after its
state file and `latest.json` last, so a crash at any moment leaves a consistent newest pair.
The state file is a torch.save of plain tensors and dicts only and is read back with
`torch.load(weights_only=True)`, so it cannot run code.
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch

from gan.errors import UserError
from gan.io.files import atomic_write_bytes

LATEST_FILE = "latest.json"
STATE_KEEP = 2  # training-state files kept (older snapshots stay loadable as models)
_RUN_RE = re.compile(r"^(\d+)-")


def new_run_dir(outdir: str, desc: str) -> str:
    """outdir/<next 5-digit id>-<desc>, created."""
    os.makedirs(outdir, exist_ok=True)
    ids = [int(m.group(1)) for name in os.listdir(outdir) if (m := _RUN_RE.match(name))]
    run_id = max(ids, default=-1) + 1
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "_", desc).strip("_") or "run"
    path = os.path.join(outdir, f"{run_id:05d}-{safe}")
    os.makedirs(path, exist_ok=False)
    return path


def check_writable(folder: str) -> None:
    """Raise UserError unless files can be created in folder (made if missing)."""
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".write-test-{os.getpid()}")
        with open(probe, "wb") as f:
            f.write(b"ok")
        os.remove(probe)
    except OSError as exc:
        raise UserError(f"cannot write into the output folder {folder}: {exc}") from None


def snapshot_names(cur_nimg: int) -> tuple[str, str]:
    kimg = cur_nimg // 1000
    return f"network-snapshot-{kimg:06d}.safetensors", f"training-state-{kimg:06d}.pt"


def all_finite(*modules: torch.nn.Module) -> bool:
    return all(
        bool(torch.isfinite(t).all())
        for m in modules
        for t in m.state_dict().values()
        if t.is_floating_point()
    )


# --- training state ---------------------------------------------------------------------------


def save_state(path: str, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_state(path: str) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(
            f"the training state {path} is missing; resume with --finetune to use the weights only"
        ) from None
    except Exception as exc:  # a damaged or foreign file: say which and what to do
        raise UserError(
            f"cannot read the training state {path} ({exc}); resume from another snapshot"
        ) from None


@dataclass
class Latest:
    """The newest snapshot of a run (contents of latest.json)."""

    snapshot: str  # file name inside the run folder
    state: str
    cur_nimg: int
    tick: int

    def paths(self, run_dir: str) -> tuple[str, str]:
        return os.path.join(run_dir, self.snapshot), os.path.join(run_dir, self.state)


def write_latest(run_dir: str, latest: Latest) -> None:
    data = json.dumps(latest.__dict__, indent=2).encode()
    atomic_write_bytes(os.path.join(run_dir, LATEST_FILE), data)


def read_latest(run_dir: str) -> Latest:
    path = os.path.join(run_dir, LATEST_FILE)
    if not os.path.exists(path):
        raise UserError(f"{run_dir} has no snapshot yet ({LATEST_FILE} is missing); start a new run instead")
    damaged = f"{path} is damaged ({{}}); resume from a snapshot file of the run instead (--resume FILE)"
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError) as exc:
        raise UserError(damaged.format(exc)) from None
    if not isinstance(data, dict):
        raise UserError(damaged.format(f"expected a JSON object, found {type(data).__name__}"))
    for key, kind in (("snapshot", "file"), ("state", "file"), ("cur_nimg", "count"), ("tick", "count")):
        value = data.get(key)
        if kind == "file":
            ok = isinstance(value, str) and os.path.basename(value) == value and value not in ("", ".", "..")
            wanted = "a file name in the run folder"
        else:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            wanted = "a whole number of at least 0"
        if not ok:
            shown = repr(value) if len(repr(value)) < 80 else repr(value)[:77] + "..."
            raise UserError(damaged.format(f"{key!r} must be {wanted}, not {shown}"))
    return Latest(data["snapshot"], data["state"], data["cur_nimg"], data["tick"])


def prune_states(run_dir: str, keep: int = STATE_KEEP) -> None:
    """Delete all but the newest `keep` training-state files (they are as large as two models)."""
    states = sorted(n for n in os.listdir(run_dir) if n.startswith("training-state-") and n.endswith(".pt"))
    for name in states[:-keep]:
        os.remove(os.path.join(run_dir, name))


def is_run_dir(path: str) -> bool:
    return os.path.isdir(path) and os.path.exists(os.path.join(path, "training_options.json"))


# --- image grids ------------------------------------------------------------------------------


def save_image_grid(images: np.ndarray, path: str, cols: int) -> None:
    """images: uint8 [N, C, H, W] (C = 1 or 3) -> one PNG, `cols` images per row."""
    n, c, h, w = images.shape
    rows = -(-n // cols)
    grid = np.zeros([rows * h, cols * w, c], dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[r * h : (r + 1) * h, k * w : (k + 1) * w] = images[i].transpose(1, 2, 0)
    image = PIL.Image.fromarray(grid[:, :, 0] if c == 1 else grid[:, :, :3])
    buf = io.BytesIO()
    image.save(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """G output in [-1, 1] -> uint8 numpy."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()
