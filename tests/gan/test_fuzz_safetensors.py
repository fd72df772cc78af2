"""Seeded fuzzing of our model format (a tiny G_ema + D file with metadata): byte flips,
truncation, header mutations (tensor table, metadata, kwargs, length field), with and without a
recomputed digest. Every case must end in a ModelLoadError or a correct load (the file's own
tensors, bit for bit), write nothing, and not hang; a few hostile files are loaded in a child
process whose peak RSS must stay under a ceiling.

    GAN_FUZZ_CASES=5000 GAN_FUZZ_SEED=7 pytest tests/gan/test_fuzz_safetensors.py   # more cases

A failure names its kind and seed; rerun one case with GAN_FUZZ_ONLY=<kind>:<seed>.
"""

from __future__ import annotations

import copy
import json
import os
import random
import resource
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan.errors import ModelLoadError
from gan.io import safetensors_format as fmt
from gan.model_io import load_model, save_model
from gan.networks.stylegan2 import Discriminator
from tests.support.tiny import make_plain_generator

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("flip", "truncate", "header", "header_redigest", "kwargs_redigest")
CASES = int(os.environ.get("GAN_FUZZ_CASES", "300"))
SEED = int(os.environ.get("GAN_FUZZ_SEED", "0"))
ONLY = os.environ.get("GAN_FUZZ_ONLY")  # "<kind>:<seed>"
RSS_CEILING = 1 << 30  # peak RSS of a child loading a hostile file (importing torch takes ~0.3 GiB)


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> tuple[bytes, dict]:
    """Bytes of a small valid model file and its tensors by file name."""
    torch.manual_seed(1)
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)
    path = tmp_path_factory.mktemp("fuzz") / "model.safetensors"
    meta = {"training": {"kimg": 1.5, "config": {"glr": 0.002}}, "directions": {"a": [[0.5] * 16]}}
    save_model(path, make_plain_generator("stylegan2").requires_grad_(False), D=D.eval(), metadata=meta)
    raw = path.read_bytes()
    model = load_model(path)
    tensors = {f"G_ema.{k}": v for k, v in model.G.state_dict().items()}
    tensors.update({f"D.{k}": v for k, v in model.D.state_dict().items()})
    return raw, tensors


# --- mutations ---------------------------------------------------------------------------------


def split(raw: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def join(header: dict, data: bytes, redigest: bool) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    raw = struct.pack("<Q", len(text)) + text + data
    if redigest:  # a consistent file: the digest cannot be what refuses it
        header = dict(
            header,
            __metadata__={k: v for k, v in header.get("__metadata__", {}).items() if k != fmt.DIGEST_KEY},
        )
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        raw = fmt._with_digest(struct.pack("<Q", len(text)) + text + data)
    return raw


HOSTILE = [
    0,
    -1,
    1,
    3,
    2**31,
    2**63,
    10**30,
    1e308,
    -1e308,
    0.5,
    float("nan"),
    "x",
    "",
    None,
    True,
    [],
    {},
    [1, 2],
    {"a": 1},
    "[" * 50,
    10**5,
    200_000,
]


def hostile(rng: random.Random):
    pick = rng.choice(HOSTILE + ["deep", "long"])
    if pick == "deep":
        depth = rng.choice([10, 63, 65, 500, 5000])
        return json.loads("[" * depth + "]" * depth) if depth < 900 else "[" * depth
    if pick == "long":
        return "y" * rng.choice([1000, 1 << 20])
    return pick


def mutate_json_value(obj, rng: random.Random):
    """obj with one random leaf (or container) replaced by a hostile value."""
    obj = copy.deepcopy(obj)
    parent, key = None, None
    node = obj
    for _ in range(rng.randint(1, 6)):
        if isinstance(node, dict) and node:
            parent, key = node, rng.choice(sorted(node))
        elif isinstance(node, list) and node:
            parent, key = node, rng.randrange(len(node))
        else:
            break
        node = parent[key]
    if parent is None:
        return hostile(rng)
    if rng.random() < 0.15 and isinstance(parent, dict):
        del parent[key]
    else:
        parent[key] = hostile(rng)
    return obj


def dumps(value) -> str:
    try:
        return json.dumps(value)
    except (ValueError, RecursionError):
        return str(value)


def mutate_header(
    raw: bytes, rng: random.Random, redigest: bool, kwargs_only: bool = False
) -> tuple[bytes, str]:
    header, data = split(raw)
    meta = header["__metadata__"]
    names = sorted(k for k in header if k != "__metadata__")
    choices = ["dtype", "shape", "offsets", "drop", "rename", "add", "config", "metadata", "format", "length"]
    choice = "config" if kwargs_only else rng.choice(choices + ["junk"])
    name = rng.choice(names)
    if choice == "dtype":
        header[name]["dtype"] = rng.choice(["F16", "BF16", "F64", "I32", "I64", "U8", "BOOL", "F8_E4M3", "Q"])
    elif choice == "shape":
        shape = header[name]["shape"]
        if shape:
            shape[rng.randrange(len(shape))] = hostile(rng)
        else:
            header[name]["shape"] = [hostile(rng)]
    elif choice == "offsets":
        header[name]["data_offsets"][rng.randrange(2)] = hostile(rng)
    elif choice == "drop":
        del header[name]
    elif choice == "rename":
        header[rng.choice(["G.", "X.", "G_ema.extra.", ""]) + name] = header.pop(name)
    elif choice == "add":
        header[f"G_ema.extra{rng.randrange(9)}"] = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
    elif choice == "config":
        config = json.loads(meta["config"])
        meta["config"] = dumps(mutate_json_value(config, rng))
    elif choice == "metadata":
        meta["metadata"] = dumps(mutate_json_value(json.loads(meta["metadata"]), rng))
    elif choice == "format":
        meta[rng.choice(["format", "format_version"])] = rng.choice(["2", "", "stylegan-explorer", "1"])
    elif choice == "length":
        out = join(header, data, redigest)
        return struct.pack("<Q", rng.choice([0, 1, 7, 2**31, 2**63, len(out)])) + out[8:], choice
    elif choice == "junk":
        meta[rng.choice(["config", "metadata", fmt.DIGEST_KEY])] = rng.choice(
            ["", "{", "null", "[]", "0" * 64]
        )
    return join(header, data, redigest), f"{choice} {name}"


def mutate(raw: bytes, kind: str, seed: int) -> tuple[bytes, str]:
    rng = random.Random(f"{kind}:{seed}")
    if kind == "flip":
        data = bytearray(raw)
        (n,) = struct.unpack("<Q", raw[:8])
        positions = []
        for _ in range(rng.choice([1, 1, 2, 4])):  # half in the header, half in the tensor data
            pos = rng.randrange(8 + n) if rng.random() < 0.5 else rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
            positions.append(pos)
        return bytes(data), f"flip at {positions}"
    if kind == "truncate":
        cut = rng.randrange(len(raw))
        return raw[:cut], f"truncate to {cut}"
    return mutate_header(raw, rng, redigest=kind != "header", kwargs_only=kind == "kwargs_redigest")


# --- checks ------------------------------------------------------------------------------------


class Hung(Exception):
    pass


def check_case(path: Path, raw: bytes, original_tensors: dict) -> str | None:
    """None when the case ended well (ModelLoadError or a correct load), else what went wrong."""
    path.write_bytes(raw)
    before = sorted(os.listdir(path.parent))

    def hung(signum, frame):
        raise Hung

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        model = load_model(path)
    except ModelLoadError:
        model = None
    except Hung:
        return "took over 60 s"
    except BaseException as exc:  # noqa: BLE001 - anything else is the bug this suite looks for
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if sorted(os.listdir(path.parent)) != before:
        return "loading wrote files"
    if model is not None:
        got = {f"G_ema.{k}": v for k, v in model.G.state_dict().items()}
        if model.D is not None:
            got.update({f"D.{k}": v for k, v in model.D.state_dict().items()})
        # A correct load holds exactly the file's tensors (flips the digest would catch never load).
        if got.keys() != original_tensors.keys() or any(
            not torch.equal(got[k], original_tensors[k]) for k in got
        ):
            return "loaded, but with tensors other than the file's"
    return None


def cases(kind: str) -> list[int]:
    if ONLY:
        only_kind, only_seed = ONLY.split(":")
        return [int(only_seed)] if only_kind == kind else []
    return [SEED * 1_000_003 + i for i in range(max(CASES // len(KINDS), 1))]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # hostile kwargs divide by zero while building
@pytest.mark.parametrize("kind", KINDS)
def test_fuzzed_files_load_correctly_or_fail_with_our_error(original, tmp_path, kind):
    raw, tensors = original
    failures, loaded = [], 0
    for seed in cases(kind):
        data, what = mutate(raw, kind, seed)
        problem = check_case(tmp_path / "case.safetensors", data, tensors)
        if problem is not None:
            failures.append(f"GAN_FUZZ_ONLY={kind}:{seed} ({what}): {problem}")
        loaded += problem is None and load_ok(tmp_path / "case.safetensors")
    print(f"{kind}: {len(cases(kind))} cases, {loaded} loaded, {len(failures)} failures")
    assert not failures, "\n".join(failures[:10])


def load_ok(path: Path) -> bool:
    try:
        load_model(path)
        return True
    except ModelLoadError:
        return False


def test_the_mutations_are_seeded_and_reach_every_check(original):
    raw, _ = original
    assert mutate(raw, "header", 3) == mutate(raw, "header", 3)
    assert mutate(raw, "flip", 3) != mutate(raw, "flip", 4)
    # A recomputed digest makes a kwargs-mutated file consistent: other checks must refuse it.
    header, data = split(raw)
    assert fmt.DIGEST_KEY in split(join(header, data, redigest=True))[0]["__metadata__"]


# --- hostile files in a child process: bounded memory and time ---------------------------------


def _kwargs(raw: bytes, role: str, edit) -> bytes:
    header, data = split(raw)
    config = json.loads(header["__metadata__"]["config"])
    edit(config["networks"][role]["kwargs"])
    header["__metadata__"]["config"] = json.dumps(config)
    return join(header, data, redigest=True)


def _set(key, value):
    def edit(kwargs):
        target = kwargs
        *path, last = key.split(".")
        for part in path:
            target = target[part]
        target[last] = value

    return edit


def _deep_metadata(raw: bytes) -> bytes:
    header, data = split(raw)
    header["__metadata__"]["metadata"] = '{"x": ' + "[" * 200_000 + "]" * 200_000 + "}"
    return join(header, data, redigest=True)


HOSTILE_FILES = {
    "w_dim 200000 (160 GB of mapping weights)": lambda raw: _kwargs(raw, "G_ema", _set("w_dim", 200_000)),
    "a million mapping layers": lambda raw: _kwargs(raw, "G_ema", _set("mapping_kwargs.num_layers", 10**6)),
    "channel_max 2**20 in D": lambda raw: _kwargs(raw, "D", _set("channel_max", 2**20)),
    "img_resolution 2**30": lambda raw: _kwargs(raw, "G_ema", _set("img_resolution", 2**30)),
    "metadata nested 200000 deep": _deep_metadata,
}

_CHILD = """
import resource, sys
from gan.errors import ModelLoadError
from gan.model_io import load_model
try:
    load_model(sys.argv[1])
    outcome = "loaded"
except ModelLoadError as exc:
    outcome = "ModelLoadError: " + str(exc)[:200]
print(outcome)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _limit_memory():
    # A guard for the machine if the ceiling is broken: allocations beyond 8 GiB fail instead.
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_files_stay_under_a_memory_ceiling(original, tmp_path, name):
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(HOSTILE_FILES[name](original[0]))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_memory,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    outcome, peak = proc.stdout.strip().splitlines()[-2:]
    print(f"{name}: {outcome[:120]} (peak RSS {int(peak) / (1 << 20):.0f} MiB)")
    assert outcome.startswith("ModelLoadError"), outcome
    assert int(peak) < RSS_CEILING, f"peak RSS {int(peak) / (1 << 20):.0f} MiB"
