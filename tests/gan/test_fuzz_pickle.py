"""Seeded fuzzing of a small valid official-layout network pickle: every damaged variant either
loads correctly or is refused with a ModelLoadError; nothing else escapes, nothing hangs.

Two kinds of damage: bytes (flips, truncation, insertions, deletions, repeated spans) and structure
(values inside the networks' state replaced by junk of other types, sizes and shapes, keys
removed or added, sub-modules swapped), written with plain pickle as a real file would be.

`make test` runs FUZZ_CASES cases of each kind; set GAN_FUZZ_CASES=5000 for a longer run (the fault
table in docs/faults.md comes from such a run).
"""

from __future__ import annotations

import copy
import os
import pickle
import random
import time
from collections import OrderedDict

import pytest
import torch

from gan.errors import ModelLoadError
from gan.model_io import load_model
from gan.networks.stylegan2 import Generator
from tests.support.official_layout import (
    Persistent,
    augment_pipe,
    install_official_modules,
    official_layout,
    tiny_sg2_init_kwargs,
)

FUZZ_CASES = int(os.environ.get("GAN_FUZZ_CASES", "150"))
HANG_GUARD_S = 60.0  # a case taking this long is a hang, not slowness
TINY = tiny_sg2_init_kwargs(dim=4, res=8, channel_base=32, mapping_layers=1)


@pytest.fixture(autouse=True)
def official_modules(monkeypatch):
    return install_official_modules(monkeypatch)


def base_snapshot() -> dict:
    torch.manual_seed(0)
    G = Generator(**TINY).eval()
    return {
        "G_ema": official_layout(G, "networks_stylegan2", dict(TINY)),
        "augment_pipe": augment_pipe(0.25),
        "training_set_kwargs": {"path": "data.zip", "resolution": 8, "xflip": False},
    }


def junk(rng: random.Random):
    """A value of a type, size or shape no network state holds there."""
    choices = [
        lambda: None,
        lambda: -1,
        lambda: 0,
        lambda: 2**62,
        lambda: 2**70,
        lambda: -(10**30),
        lambda: 1e308,
        lambda: float("nan"),
        lambda: float("-inf"),
        lambda: "x" * rng.randint(0, 300),
        lambda: b"\x00\xff",
        lambda: [],
        lambda: {},
        lambda: (),
        lambda: {1, 2},
        lambda: [[[]]],
        lambda: {"a": {"b": {"c": {}}}},
        lambda: OrderedDict(z=1),
        lambda: torch.zeros(rng.randint(0, 3), 2),
        lambda: torch.ones(3, dtype=torch.int32),
        lambda: torch.tensor(float("nan")),
        lambda: torch.zeros(2, 2, dtype=torch.complex64),
        lambda: torch.zeros(2, dtype=torch.bool),
        lambda: torch.randn(1, 1, 1, 1, 1, 1),
        lambda: Persistent("Generator", {}, "networks_stylegan2"),
        lambda: Persistent("SynthesisLayer", {"_parameters": 5}, "networks_stylegan2"),
        lambda: Persistent("AugmentPipe", {"_buffers": {"p": torch.zeros(0)}}, "augment"),
    ]
    return rng.choice(choices)()


def containers(node, out: list) -> list:
    """Every dict and list inside the snapshot (records' states included)."""
    if isinstance(node, Persistent):
        node = node.state
    if isinstance(node, dict):
        out.append(node)
        for v in list(node.values()):
            containers(v, out)
    elif isinstance(node, list):
        out.append(node)
        for v in node:
            containers(v, out)
    return out


def mutate(snapshot: dict, rng: random.Random) -> dict:
    snapshot = copy.deepcopy(snapshot)
    for _ in range(rng.randint(1, 3)):
        target = rng.choice(containers(snapshot, []))
        if isinstance(target, dict) and target:
            key = rng.choice(list(target))
            action = rng.random()
            if action < 0.6:
                target[key] = junk(rng)
            elif action < 0.8:
                del target[key]
            else:
                target[rng.choice([f"k{rng.randint(0, 9)}", 7, (1, 2), ""])] = junk(rng)
        elif isinstance(target, list) and target:
            target[rng.randrange(len(target))] = junk(rng)
    return snapshot


def byte_damage(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["flip", "truncate", "insert", "delete", "repeat"])
        i = rng.randrange(len(data))
        if kind == "flip":
            data[i] = rng.randrange(256)
        elif kind == "truncate":
            del data[i:]
        elif kind == "insert":
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == "delete":
            del data[i : i + rng.randint(1, 16)]
        else:
            data[i:i] = data[i : i + rng.randint(1, 64)] * rng.randint(2, 50)
        if not data:
            break
    return bytes(data)


def try_load(tmp_path, data: bytes, case: str) -> str:
    path = tmp_path / "fuzz.pkl"
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        model = load_model(path)
        outcome = "loaded"
        with torch.no_grad():  # a file that loads must render
            ws = model.G.mapping(torch.zeros([1, model.G.z_dim]), torch.zeros([1, model.G.c_dim]))
            model.G.synthesis(ws, noise_mode="const")
    except ModelLoadError:
        outcome = "refused"
    except Exception as exc:  # anything else is a bug in the importer
        raise AssertionError(f"{case}: {type(exc).__name__}: {exc}") from exc
    elapsed = time.perf_counter() - start
    assert elapsed < HANG_GUARD_S, f"{case} took {elapsed:.0f} s"
    return outcome


def test_structure_fuzzed_snapshots(tmp_path):
    rng = random.Random(1234)
    base = base_snapshot()
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(FUZZ_CASES):
        data = pickle.dumps(mutate(base, rng), protocol=rng.choice([2, 4, 5]))
        outcomes[try_load(tmp_path, data, f"structure case {i}")] += 1
    print(f"structure-fuzzed pickles: {FUZZ_CASES} cases, {outcomes}")  # shown with pytest -s
    assert outcomes["refused"] > 0  # the mutations do reach the importer's checks


def test_byte_fuzzed_snapshots(tmp_path):
    rng = random.Random(5678)
    data = pickle.dumps(base_snapshot(), protocol=4)
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(FUZZ_CASES):
        outcomes[try_load(tmp_path, byte_damage(data, rng), f"byte case {i}")] += 1
    print(f"byte-fuzzed pickles: {FUZZ_CASES} cases, {outcomes}")
    assert outcomes["refused"] > FUZZ_CASES // 2
