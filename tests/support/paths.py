"""Where the tests' data lives, relative to the repository (never an absolute path).

- `OFFICIAL`: numbers from NVIDIA's official StyleGAN3 code (weights, inputs, outputs) for the
  parity tests; part of the repository, so those tests always run (a missing file fails them).
- `OFFICIAL_PICKLES`: model files written by NVIDIA's own code, in `../shared` beside the
  repository (they embed NVIDIA's source text, so they are never copied into the project).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OFFICIAL = REPO / "tests" / "fixtures" / "official"
OFFICIAL_PICKLES = REPO.parent / "shared" / "fixtures" / "official-pickles"


def official_pickle(name: str) -> Path:
    """Path of one of NVIDIA's pickles. Skipped with the reason where `../shared` is absent, except
    under CI (CI=true), which has it: there a missing file fails."""
    path = OFFICIAL_PICKLES / name
    if not path.exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{path} is missing; CI has ../shared/fixtures/official-pickles beside the repo")
        pytest.skip(f"NVIDIA-written pickle {path} not present (../shared beside the repository)")
    return path
