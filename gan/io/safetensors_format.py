"""Our model format: one `.safetensors` file.

Tensors: every state_dict entry of each network under `<role>.<official name>`, roles `G_ema`
(the generator to render with), optionally `G` (non-EMA, for resuming) and `D`.
String metadata (safetensors `__metadata__`):
    format          "stylegan-explorer"
    format_version  "1"
    config          JSON {"arch": ..., "networks": {role: {"class_name": ..., "kwargs": {...}}}}
    metadata        JSON of the user metadata (training provenance, directions, ...)
    content_sha256  sha256 of the header (tensor table and the other metadata, as canonical JSON)
                    followed by the tensor data; files written before it existed have none
Class names are looked up in the fixed table of gan.networks; nothing in the file is executed.

Loading checks, in this order, before any weight reaches a network: the safetensors structure,
the header (JSON nested at most MAX_JSON_DEPTH deep), each network's settings (built under a
memory budget set by the size of the file's tensors), tensor names, shapes and dtypes, then the
digest (one pass over the file, also giving the file's sha256; `verify=False` skips the
comparison), and last that every weight is finite.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch

from gan.errors import ModelLoadError
from gan.io.alloc_budget import build_bounded
from gan.io.files import atomic_write_bytes
from gan.io.loaded_model import LoadedModel
from gan.io.weights import check_file_dtypes, check_finite, check_layout, load_weights
from gan.networks import ARCHS, NetworkKind, generator_arch, kind_of, network_kind

FORMAT_NAME = "stylegan-explorer"
FORMAT_VERSION = 1
ROLES = ("G_ema", "G", "D")
DIGEST_KEY = "content_sha256"
MAX_JSON_DEPTH = 64  # our headers nest about 6 deep; far deeper JSON is damage or an attack
_CHUNK = 1 << 22
# Header entries this version writes; others are accepted only in files with a digest (which
# covers them), so that damage to the digest's own name cannot disable the check.
_HEADER_KEYS = frozenset({"format", "format_version", "config", "metadata", DIGEST_KEY})


def _network_entry(net: torch.nn.Module, role: str) -> tuple[NetworkKind, dict]:
    kind = kind_of(net)
    if kind is None:
        raise TypeError(f"{role} is a {type(net).__qualname__}, not one of our networks (gan.networks)")
    expected = "discriminator" if role == "D" else "generator"
    if kind.role != expected:
        raise TypeError(f"{role} must be a {expected}, got {kind.qualname}")
    kwargs = getattr(net, "init_kwargs", None)
    if not isinstance(kwargs, dict):
        raise TypeError(f"{role} ({kind.qualname}) has no init_kwargs dict")
    return kind, kwargs


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from exc


# --- digest -----------------------------------------------------------------------------------


def _split_header(raw: bytes | memoryview) -> tuple[dict, int]:
    """The parsed header of safetensors bytes and where the tensor data starts."""
    (n,) = struct.unpack("<Q", bytes(raw[:8]))
    return json.loads(bytes(raw[8 : 8 + n])), 8 + n


def _digest_prefix(header: dict) -> bytes:
    """Canonical bytes of everything in a header but the digest itself: the digest covers the
    tensor table and metadata as well as the data, so no byte of the file changes unnoticed."""
    meta = {k: v for k, v in (header.get("__metadata__") or {}).items() if k != DIGEST_KEY}
    table = {k: v for k, v in header.items() if k != "__metadata__"}
    return json.dumps({"metadata": meta, "tensors": table}, sort_keys=True, separators=(",", ":")).encode()


def _with_digest(raw: bytes) -> bytes:
    """safetensors bytes with DIGEST_KEY added to the metadata (the data is not re-serialised)."""
    header, start = _split_header(raw)
    data = memoryview(raw)[start:]
    digest = hashlib.sha256(_digest_prefix(header))
    digest.update(data)
    header.setdefault("__metadata__", {})[DIGEST_KEY] = digest.hexdigest()
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors aligns the data to 8 bytes
    return struct.pack("<Q", len(text)) + text + data


def _file_digests(path: str, check_content: bool) -> tuple[str, str | None]:
    """(sha256 of the file, content digest or None) in one pass over the file."""
    whole = hashlib.sha256()
    content = None
    with open(path, "rb") as f:
        head = f.read(8)
        whole.update(head)
        (n,) = struct.unpack("<Q", head)
        header_bytes = f.read(n)
        whole.update(header_bytes)
        if check_content:
            content = hashlib.sha256(_digest_prefix(json.loads(header_bytes)))
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while got := f.readinto(buf):
            whole.update(view[:got])
            if content is not None:
                content.update(view[:got])
    return whole.hexdigest(), None if content is None else content.hexdigest()


# --- save -------------------------------------------------------------------------------------


def serialize(
    G: torch.nn.Module,
    *,
    D: torch.nn.Module | None = None,
    G_train: torch.nn.Module | None = None,
    arch: str | None = None,
    metadata: dict | None = None,
) -> bytes:
    """The bytes of a model file (see module docstring)."""
    nets = {"G_ema": G, "G": G_train, "D": D}
    config: dict[str, Any] = {"networks": {}}
    tensors: dict[str, torch.Tensor] = {}
    for role, net in nets.items():
        if net is None:
            continue
        kind, kwargs = _network_entry(net, role)
        config["networks"][role] = {"class_name": kind.qualname, "kwargs": kwargs}
        for name, value in net.state_dict().items():
            # Own, contiguous CPU copies: safetensors refuses tensors that share memory.
            tensors[f"{role}.{name}"] = value.detach().to("cpu", copy=True).contiguous()
    inferred = generator_arch(kind_of(G), G.init_kwargs)
    if arch is not None and arch != inferred:
        raise ValueError(f"arch {arch!r} does not match the generator, which is {inferred!r}")
    config["arch"] = inferred
    header = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "config": _json(config, "network constructor kwargs"),
        "metadata": _json(metadata or {}, "metadata"),
    }
    return _with_digest(safetensors.torch.save(tensors, metadata=header))


def save(path: str | os.PathLike, G: torch.nn.Module, **kwargs) -> None:
    """Write a model file atomically (see serialize for the arguments)."""
    atomic_write_bytes(path, serialize(G, **kwargs))


# --- load -------------------------------------------------------------------------------------

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text (strings ignored), without recursion."""
    skeleton = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8", "replace"), dtype=np.uint8)
    steps = np.isin(skeleton, (ord("["), ord("{"))).astype(np.int64)
    steps -= np.isin(skeleton, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


def _loads(text: str, what: str) -> Any:
    """json.loads of header text, refusing JSON nested deeper than MAX_JSON_DEPTH (which would
    otherwise end in a RecursionError here or in whatever walks the result later)."""
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{what} is nested {depth} levels deep (at most {MAX_JSON_DEPTH} allowed)")
    return json.loads(text)


def _read_header(f, source: str) -> tuple[dict, dict]:
    header = f.metadata() or {}
    if header.get("format") != FORMAT_NAME:
        raise ModelLoadError(
            f"{source} is a safetensors file but not a stylegan-explorer model (no '{FORMAT_NAME}' header); "
            "it may be a plain weights file from another tool. Official StyleGAN .pkl files can be "
            "converted with `gan convert`."
        )
    unknown_entries = sorted(set(header) - _HEADER_KEYS)
    if unknown_entries and DIGEST_KEY not in header:
        # Files without a digest have exactly the other entries; an unknown one is most likely the
        # digest's own name damaged, which must not turn the check off.
        raise ModelLoadError(
            f"{source} has a damaged model header (unknown entries {_short(unknown_entries, 120)} and no "
            "content digest); re-create or re-copy the file."
        )
    version = header.get("format_version", "")
    if version != str(FORMAT_VERSION):
        raise ModelLoadError(
            f"{source} uses model format version {version!r}, but this program reads version "
            f"{FORMAT_VERSION}. It was probably written by a newer stylegan-explorer; update this program."
        )
    try:
        config = _loads(header["config"], "the network config")
        metadata = _loads(header.get("metadata", "{}"), "the metadata")
        if not isinstance(config, dict) or not isinstance(metadata, dict):
            raise ValueError("unexpected structure")
        networks = config["networks"]
        if not isinstance(networks, dict) or config.get("arch") not in ARCHS:
            raise ValueError("unexpected structure")
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{source} has a damaged model header ({exc}); re-create the file.") from exc
    if "G_ema" not in networks:
        raise ModelLoadError(f"{source} has no generator (G_ema); re-create the file.")
    unknown = sorted(set(networks) - set(ROLES))
    if unknown:
        raise ModelLoadError(
            f"{source} lists unknown networks {unknown}; it may need a newer program version."
        )
    return config, metadata


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _build(
    role: str, entry: Any, source: str, shapes: dict[str, tuple[int, ...]]
) -> tuple[torch.nn.Module, NetworkKind, dict]:
    """Build a network from its header entry, allocating at most about what its weights in the
    file (`shapes`) need: settings describing a far bigger network are refused while building."""
    if not isinstance(entry, dict) or not isinstance(entry.get("kwargs"), dict):
        raise ModelLoadError(f"{source}: the header entry of {role} is damaged; re-create the file.")
    kind = network_kind(str(entry.get("class_name")))
    if kind is None:
        raise ModelLoadError(
            f"{source}: network {role} has class {_short(entry.get('class_name'))}, which this program "
            "does not know; it may need a newer program version."
        )
    kwargs = entry["kwargs"]
    float32_bytes = 4 * sum(math.prod(s) for s in shapes.values())
    return build_bounded(kind, kwargs, float32_bytes, len(shapes), f"{role} of {source}"), kind, kwargs


def load(
    path: str | os.PathLike,
    sha256: str | None = None,
    device: str = "cpu",
    training_nets: bool = True,
    verify: bool = True,
) -> LoadedModel:
    """Load one of our model files (see the module docstring for the checks). sha256: the
    file's digest when the caller has it (else computed in the same pass as the content digest).
    verify=False skips comparing the stored content digest (for salvaging a damaged file)."""
    source = str(path)
    try:
        with safetensors.safe_open(source, framework="pt", device="cpu") as f:
            config, metadata = _read_header(f, source)
            names = list(f.keys())
            roles = [r for r in ROLES if r in config["networks"] and (training_nets or r == "G_ema")]
            stray = sorted(n for n in names if n.split(".", 1)[0] not in config["networks"])
            if stray:
                raise ModelLoadError(
                    f"{source} has tensors of no listed network: {', '.join(stray[:5])}; the file is damaged."
                )
            slices = {n: f.get_slice(n) for n in names}
            built = {}
            for role in roles:
                prefix = f"{role}."
                mine = {n[len(prefix) :]: s for n, s in slices.items() if n.startswith(prefix)}
                shapes = {n: tuple(s.get_shape()) for n, s in mine.items()}
                net, kind, kwargs = _build(role, config["networks"][role], source, shapes)
                check_layout(net, shapes, f"{role} in {source}")
                check_file_dtypes(net, {n: s.get_dtype() for n, s in mine.items()}, f"{role} in {source}")
                built[role] = (net, kind, kwargs)
            stored = (f.metadata() or {}).get(DIGEST_KEY)
            file_sha, content = _file_digests(source, check_content=verify and stored is not None)
            if content is not None and content != stored:
                raise ModelLoadError(
                    f"{source} is damaged: its contents do not match the digest stored in it (bytes changed "
                    "on disk or during a copy). Re-copy or re-create the file; to load it anyway, pass "
                    "verify=False to load_model."
                )
            nets = {}
            for role, (net, kind, kwargs) in built.items():
                prefix = f"{role}."
                state = {n[len(prefix) :]: f.get_tensor(n) for n in names if n.startswith(prefix)}
                check_finite(state, f"{role} in {source}")
                load_weights(net, state, f"{role} in {source}")
                nets[role] = (net.to(device=device, dtype=torch.float32), kind, kwargs)
    except ModelLoadError:
        raise
    except (safetensors.SafetensorError, OSError, struct.error, ValueError) as exc:
        raise ModelLoadError(
            f"{source} is not a valid safetensors file or is truncated ({exc}). Re-create or re-copy it."
        ) from exc
    G, g_kind, g_kwargs = nets["G_ema"]
    arch = generator_arch(g_kind, g_kwargs)
    if arch != config["arch"]:
        raise ModelLoadError(
            f"{source} says arch {config['arch']!r} but its generator is {arch!r}; re-create it."
        )
    D, G_train = nets.get("D"), nets.get("G")
    return LoadedModel(
        G=G.eval().requires_grad_(False),
        arch=arch,
        g_kwargs=g_kwargs,
        metadata=metadata,
        source=source,
        sha256=sha256 or file_sha,
        D=None if D is None else D[0],
        G_train=None if G_train is None else G_train[0],
        d_kwargs=None if D is None else D[2],
    )
