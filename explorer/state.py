"""The explorer state: a plain, serialisable, undoable model of what the user has set.

No Qt and no torch here. Widgets change a copy of the state and commit it to `History`; the
render bridge turns the state into `gan.render.RenderArgs` (`RenderBridge.render_args`).

    history = History(ExplorerState(seed=3))
    history.commit(replace(history.current(), psi=0.5), merge_key="psi")   # slider drag: one undo step
    history.undo()
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields
from typing import TypedDict

NOISE_MODES = ("const", "random", "none")
LATENT_SPACES = ("w", "z")
MAX_SEED = 2**32 - 1
SESSION_VERSION = 1


class DirectionView(TypedDict):
    """A latent direction as the widgets see it; its vector and scale stay in the render bridge."""

    name: str
    kind: str  # 'pca' | 'attribute'
    help: str
    range: tuple[float, float]  # slider extent in slider units
    layer_start: int
    layer_end: int | None


@dataclass
class EditState:
    strength: float = 0.0  # Slider value in units of the direction's std.
    layer_start: int = 0  # First w index the edit applies to.
    layer_end: int | None = None  # One past the last w index; None = all.
    locked: bool = False  # Locked edits ignore resets and drags.


@dataclass
class PlaneState:
    """Where the latent sits in the plane through three seeds (the latent canvas' seed mode)."""

    seed_b: int = 1  # Seed reached at x = 1.
    seed_c: int = 2  # Seed reached at y = 1.
    x: float = 0.0  # Weight of (seed_b - seed) added to the latent.
    y: float = 0.0  # Weight of (seed_c - seed) added to the latent.


@dataclass
class ExplorerState:
    seed: int = 0  # Latent seed, 0 .. 2**32-1.
    space: str = "w"  # Space the seed plane is spanned in: 'w' or 'z'.
    psi: float = 1.0  # Truncation psi (1: none, 0: the average face).
    truncation_cutoff: int | None = None  # Truncate the first N ws only.
    noise_mode: str = "const"  # 'const', 'random' or 'none'.
    class_idx: int | None = None  # Class of a conditional model.
    mix_seed: int | None = None  # Style-mix seed; None = no mixing.
    mix_start: int = 0  # First w index taken from the mix seed.
    mix_end: int | None = None  # One past the last mixed w index.
    edits: dict[str, EditState] = field(default_factory=dict)  # Direction name -> edit.
    plane: PlaneState | None = None  # Seed-plane offset; None = off.
    translate: tuple[float, float] = (0.0, 0.0)  # Input translation in image sizes.
    rotate: float = 0.0  # Input rotation in degrees.
    blend: float = 0.0  # Weight of the second (blend) model, 0..1.
    blend_resolution: int | None = None  # Layers from this resolution up are blended; None = model default.
    # A projected photo's latent (.npz of File > Open photo or `gan project`) shown instead of the
    # seed; None = the seed.
    projection: str | None = None

    # -- validation ------------------------------------------------------------------------

    def validate(self) -> None:
        """ValueError with a readable message if a value is out of range."""
        if not 0 <= int(self.seed) <= MAX_SEED:
            raise ValueError(f"seed {self.seed} is outside 0 .. {MAX_SEED}")
        if self.space not in LATENT_SPACES:
            raise ValueError(f"latent space {self.space!r} is not one of {LATENT_SPACES}")
        if self.noise_mode not in NOISE_MODES:
            raise ValueError(f"noise mode {self.noise_mode!r} is not one of {NOISE_MODES}")
        if not 0.0 <= float(self.blend) <= 1.0:
            raise ValueError(f"blend weight {self.blend} is outside 0 .. 1")

    # -- edits -----------------------------------------------------------------------------

    def with_edit(self, name: str, **changes) -> ExplorerState:
        """A copy with edit `name` changed (created if missing)."""
        new = self.copy()
        edit = new.edits.get(name, EditState())
        for key, value in changes.items():
            setattr(edit, key, value)
        new.edits[name] = edit
        return new

    def reset_edits(self) -> ExplorerState:
        """A copy with every unlocked edit at strength 0."""
        new = self.copy()
        for edit in new.edits.values():
            if not edit.locked:
                edit.strength = 0.0
        return new

    def copy(self) -> ExplorerState:
        return copy.deepcopy(self)

    # -- conversions -----------------------------------------------------------------------

    def to_dict(self) -> dict:
        d = asdict(self)
        d["translate"] = [float(v) for v in self.translate]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ExplorerState:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown explorer state fields: {', '.join(sorted(unknown))}")
        d = dict(d)
        d["edits"] = {str(k): EditState(**v) for k, v in (d.get("edits") or {}).items()}
        if d.get("plane") is not None:
            d["plane"] = PlaneState(**d["plane"])
        if "translate" in d:
            tx, ty = d["translate"]
            d["translate"] = (float(tx), float(ty))
        state = cls(**d)
        state.validate()
        return state


def session_to_json(state: ExplorerState, model_path: str | None, model_sha256: str | None) -> str:
    return json.dumps(
        {
            "format": "stylegan-explorer-session",
            "version": SESSION_VERSION,
            "model": {"path": model_path, "sha256": model_sha256},
            "state": state.to_dict(),
        },
        indent=2,
    )


def session_from_json(text: str) -> tuple[ExplorerState, str | None, str | None]:
    """(state, model path, model sha256); ValueError saying what is wrong with the file."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON file: {exc}") from None
    if not isinstance(d, dict) or d.get("format") != "stylegan-explorer-session":
        raise ValueError("not a stylegan-explorer session file")
    if d.get("version") != SESSION_VERSION:
        raise ValueError(
            f"session version {d.get('version')!r} is not supported (expected {SESSION_VERSION})"
        )
    try:
        state = ExplorerState.from_dict(d["state"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"the session's state is damaged: {exc}") from None
    model = d.get("model") or {}
    return state, model.get("path"), model.get("sha256")


class History:
    """Undo/redo stack of states. Commits with the same `merge_key` in a row (one slider drag)
    replace the top entry instead of adding one; `end_merge()` closes the group."""

    def __init__(self, state: ExplorerState, limit: int = 200):
        self._undo: list[ExplorerState] = []
        self._redo: list[ExplorerState] = []
        self._state = state.copy()
        self._merge_key: str | None = None
        self.limit = limit

    def current(self) -> ExplorerState:
        """A copy of the current state (a deep copy each call): change it and commit it back."""
        return self._state.copy()

    def commit(self, state: ExplorerState, merge_key: str | None = None) -> bool:
        """Make `state` current; False (and nothing recorded) if it equals the current one."""
        state.validate()
        if state == self._state:
            return False
        if merge_key is None or merge_key != self._merge_key or not self._undo:
            self._undo.append(self._state)
            del self._undo[: -self.limit]
        self._merge_key = merge_key
        self._state = state.copy()
        self._redo.clear()
        return True

    def end_merge(self) -> None:
        self._merge_key = None

    def replace(self, state: ExplorerState) -> None:
        """Set the state without an undo step (e.g. after opening a session) and clear history."""
        state.validate()
        self._state = state.copy()
        self._undo.clear()
        self._redo.clear()
        self._merge_key = None

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        if not self._undo:
            return False
        self._redo.append(self._state)
        self._state = self._undo.pop()
        self._merge_key = None
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        self._undo.append(self._state)
        self._state = self._redo.pop()
        self._merge_key = None
        return True
