"""Run folders, snapshots, training state and image grids.

A run folder `<outdir>/<00000-name>/` holds:
    training_options.json                   resolved options (and the TrainConfig as given)
    stats.jsonl                             one JSON object of named scalars per tick
    reals.png, fakes000123.png              sample grids (fixed latents) per snapshot
    network-snapshot-000123.safetensors     our model format: G_ema, G (non-EMA), D, metadata
    training-state-000123.pt                optimizer states, augment p, counters, RNG states, pl_mean
    latest.json                             the newest snapshot pair (for resuming)

Names carry the image count: `000123` at exactly 123 kimg, `000123.456` at 123456 images, and
`-phase2` when a stop came between the phases of a step, so no snapshot overwrites another one.
A snapshot is committed as one unit (`commit_snapshot`): the state file and the model file are
written atomically (temporary file + rename) under their new names, then `latest.json` is
replaced, naming both files with their sha256 digests; only then are older state files pruned.
A crash at any moment leaves the previous `latest.json` and the pair it names untouched, and
resuming verifies the pair (`read_latest`) before using it.

Run folders written before the digests existed (latest.json = {snapshot, state, cur_nimg, tick},
names by whole kimg) still resume; their pair is checked by the image count both files record.

The state file is a torch.save of plain tensors and dicts only and is read back with
`torch.load(weights_only=True)`, so it cannot run code.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import PIL.Image
import torch

from gan.errors import UserError
from gan.io.files import atomic_write_bytes, create_temp_file, file_sha256

LATEST_FILE = "latest.json"
STATE_KEEP = 2  # training-state files kept (older snapshots stay loadable as models)
_RUN_RE = re.compile(r"^(\d+)-")
# Snapshot names: whole kimg, then the images beyond it (absent in old names and at whole kimg).
_TAG_RE = r"(\d{6})(?:\.(\d{3}))?(?:-phase(\d+))?"
_STATE_RE = re.compile(rf"^training-state-{_TAG_RE}\.pt$")
# Temporary files of an interrupted atomic write (gan.io.files names them .<target>.<hex>.tmp).
_TEMP_RE = re.compile(r"^\.(network-snapshot-|training-state-|latest\.json|fakes).*\.[0-9a-f]{8}\.tmp$")
# Where commit_snapshot calls its `fault` hook (tests simulate a crash at each of these).
FAULT_POINTS = tuple(
    f"{what}:{when}" for what in ("state", "model", "latest") for when in ("partial", "written", "renamed")
) + ("pruning",)


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


def snapshot_tag(cur_nimg: int, phases_done: int = 0) -> str:
    """`000123` at exactly 123 kimg, `000123.456` at 123456 images, `-phaseN` after N phases of
    a part-done step: unique per training position."""
    kimg, rest = divmod(cur_nimg, 1000)
    tag = f"{kimg:06d}" if rest == 0 else f"{kimg:06d}.{rest:03d}"
    return f"{tag}-phase{phases_done}" if phases_done else tag


def snapshot_names(cur_nimg: int, phases_done: int = 0) -> tuple[str, str]:
    tag = snapshot_tag(cur_nimg, phases_done)
    return f"network-snapshot-{tag}.safetensors", f"training-state-{tag}.pt"


def all_finite(*modules: torch.nn.Module) -> bool:
    return all(
        bool(torch.isfinite(t).all())
        for m in modules
        for t in m.state_dict().values()
        if t.is_floating_point()
    )


# --- training state ---------------------------------------------------------------------------


def state_bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


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
    snapshot_sha256: str | None = None  # None in run folders of the old layout
    state_sha256: str | None = None

    def paths(self, run_dir: str) -> tuple[str, str]:
        return os.path.join(run_dir, self.snapshot), os.path.join(run_dir, self.state)


def _latest_bytes(latest: Latest) -> bytes:
    return json.dumps(asdict(latest), indent=2).encode()


def read_latest(run_dir: str, verify: bool = True) -> Latest:
    """latest.json of a run; with verify, also check that the pair it names is complete (both
    files there and, in the current layout, with the sha256 digests it records). UserError
    (saying what to do) otherwise."""
    latest = _parse_latest(run_dir)
    if verify:
        verify_latest(run_dir, latest)
    return latest


def _parse_latest(run_dir: str) -> Latest:
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
    checks = {
        "snapshot": ("file", True),
        "state": ("file", True),
        "cur_nimg": ("count", True),
        "tick": ("count", True),
        "snapshot_sha256": ("digest", False),
        "state_sha256": ("digest", False),
    }
    for key, (kind, required) in checks.items():
        value = data.get(key)
        if value is None and not required:
            continue
        if kind == "file":
            ok = isinstance(value, str) and os.path.basename(value) == value and value not in ("", ".", "..")
            wanted = "a file name in the run folder"
        elif kind == "count":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            wanted = "a whole number of at least 0"
        else:
            ok = isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) is not None
            wanted = "a sha256 digest (64 hex digits)"
        if not ok:
            shown = repr(value) if len(repr(value)) < 80 else repr(value)[:77] + "..."
            raise UserError(damaged.format(f"{key!r} must be {wanted}, not {shown}"))
    return Latest(**{key: data.get(key) for key in checks})


def verify_latest(run_dir: str, latest: Latest) -> None:
    """UserError unless both files latest.json names are there and, where it records their
    sha256 (current layout), unchanged. The old layout has no digests: the training loop then
    compares the image counts the two files record."""
    fix = (
        f"resume from the weights only with `--resume {os.path.join(run_dir, latest.snapshot)} --finetune`, "
        "or from an older snapshot of the run that still has its training state"
    )
    for name, digest, what in (
        (latest.snapshot, latest.snapshot_sha256, "snapshot"),
        (latest.state, latest.state_sha256, "training state"),
    ):
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path):
            if what == "snapshot":
                raise UserError(
                    f"the newest snapshot {path} named in {LATEST_FILE} is missing; resume from an older "
                    "snapshot file of the run (--resume FILE) or start a new run"
                )
            raise UserError(f"the training state {path} named in {LATEST_FILE} is missing; {fix}")
        if digest is not None and file_sha256(path) != digest:
            raise UserError(
                f"the {what} {path} is not the file {LATEST_FILE} recorded (its sha256 differs): it was "
                f"changed or damaged after the snapshot was written, so it must not be paired; {fix}"
            )


def _state_order(name: str) -> tuple[int, int] | None:
    """Training position a training-state file name stands for (old names: whole kimg), None if
    it is not one."""
    m = _STATE_RE.match(name)
    return None if m is None else (int(m.group(1)) * 1000 + int(m.group(2) or 0), int(m.group(3) or 0))


def prune_states(run_dir: str, keep: int = STATE_KEEP, protect: str | None = None) -> None:
    """Delete all but the newest `keep` training-state files (they are as large as two models);
    `protect` (the one latest.json names) is never deleted."""
    states = [(order, n) for n in os.listdir(run_dir) if (order := _state_order(n)) is not None]
    older = [n for _, n in sorted(states)[:-keep] if n != protect]
    for name in older:
        os.remove(os.path.join(run_dir, name))


def remove_stale_temps(run_dir: str) -> list[str]:
    """Delete temporary files an interrupted snapshot left behind (never valid data); returns
    their names."""
    names = [n for n in os.listdir(run_dir) if _TEMP_RE.match(n)]
    for name in names:
        os.remove(os.path.join(run_dir, name))
    return names


# --- committing a snapshot --------------------------------------------------------------------


def commit_snapshot(
    run_dir: str,
    model_bytes: bytes,
    state: bytes,
    cur_nimg: int,
    tick: int,
    fault: Callable[[str], None] | None = None,
    phases_done: int = 0,
) -> Latest:
    """Write a model file and its training state under names unique to cur_nimg, then point
    latest.json at them (with their sha256), then prune old states. Readers see the previous
    pair until latest.json is replaced. `fault(point)` is called at each of FAULT_POINTS (tests
    crash there). An OSError (disk full, no permission) becomes a UserError; the previous
    snapshot stays the newest and resumable."""
    fault = fault or (lambda point: None)
    model_name, state_name = snapshot_names(cur_nimg, phases_done)
    latest = Latest(
        model_name,
        state_name,
        cur_nimg,
        tick,
        snapshot_sha256=hashlib.sha256(model_bytes).hexdigest(),
        state_sha256=hashlib.sha256(state).hexdigest(),
    )
    try:
        _write_file(os.path.join(run_dir, state_name), state, fault, "state")
        _write_file(os.path.join(run_dir, model_name), model_bytes, fault, "model")
        _sync_dir(run_dir)  # both renames reach the disk before latest.json names them
        _write_file(os.path.join(run_dir, LATEST_FILE), _latest_bytes(latest), fault, "latest")
        _sync_dir(run_dir)
    except OSError as exc:
        hint = " (disk full)" if exc.errno == errno.ENOSPC else ""
        raise UserError(
            f"cannot write the snapshot at {cur_nimg / 1000:.3f} kimg into {run_dir}: "
            f"{exc.strerror or exc}{hint}; the previous snapshot stays the newest (resumable with "
            f"--resume {run_dir}). Free space or fix the folder, then resume"
        ) from None
    fault("pruning")
    prune_states(run_dir, protect=state_name)
    return latest


def _write_file(path: str, data: bytes, fault: Callable[[str], None], what: str) -> None:
    """Like atomic_write_bytes, with the fault hook between its steps. Ordinary errors remove
    the temporary file; a crash (which the hook simulates) leaves it, as a kill would."""
    fd, tmp = create_temp_file(path)
    try:
        try:
            half = len(data) // 2
            _write_all(fd, memoryview(data)[:half])
            fault(f"{what}:partial")
            _write_all(fd, memoryview(data)[half:])
            os.fsync(fd)
        finally:
            os.close(fd)
        fault(f"{what}:written")
        os.replace(tmp, path)
    except (Exception, KeyboardInterrupt):
        tmp.unlink(missing_ok=True)
        raise
    fault(f"{what}:renamed")


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view[: 1 << 24]) :]


def _sync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # not supported here (e.g. Windows): the renames are still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
