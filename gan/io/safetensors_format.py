"""Our model format: one `.safetensors` file.

Tensors: every state_dict entry of each network under `<role>.<official name>`, roles `G_ema`
(the generator to render with), optionally `G` (non-EMA, for resuming) and `D`.
String metadata (safetensors `__metadata__`):
    format          "stylegan-explorer"
    format_version  "1"
    config          JSON {"arch": ..., "networks": {role: {"class_name": ..., "kwargs": {...}}}}
    metadata        JSON of the user metadata (training provenance, directions, ...)
Class names are looked up in the fixed table of gan.networks; nothing in the file is executed.
"""

from __future__ import annotations

import json
import os
from typing import Any

import safetensors
import safetensors.torch
import torch

from gan.errors import ModelLoadError
from gan.io.files import atomic_write_bytes
from gan.io.loaded_model import LoadedModel
from gan.io.weights import load_weights
from gan.networks import ARCHS, NetworkKind, build_network, generator_arch, kind_of, network_kind

FORMAT_NAME = "stylegan-explorer"
FORMAT_VERSION = 1
ROLES = ("G_ema", "G", "D")


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
    return safetensors.torch.save(tensors, metadata=header)


def save(path: str | os.PathLike, G: torch.nn.Module, **kwargs) -> None:
    """Write a model file atomically (see serialize for the arguments)."""
    atomic_write_bytes(path, serialize(G, **kwargs))


def _read_header(f, source: str) -> tuple[dict, dict]:
    header = f.metadata() or {}
    if header.get("format") != FORMAT_NAME:
        raise ModelLoadError(
            f"{source} is a safetensors file but not a stylegan-explorer model (no '{FORMAT_NAME}' header); "
            "it may be a plain weights file from another tool. Official StyleGAN .pkl files can be "
            "converted with `gan convert`."
        )
    version = header.get("format_version", "")
    if version != str(FORMAT_VERSION):
        raise ModelLoadError(
            f"{source} uses model format version {version!r}, but this program reads version "
            f"{FORMAT_VERSION}. It was probably written by a newer stylegan-explorer; update this program."
        )
    try:
        config = json.loads(header["config"])
        metadata = json.loads(header.get("metadata", "{}"))
        networks = config["networks"]
        if (
            not isinstance(networks, dict)
            or not isinstance(metadata, dict)
            or config.get("arch") not in ARCHS
        ):
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


def _build(role: str, entry: Any, source: str) -> tuple[torch.nn.Module, NetworkKind, dict]:
    if not isinstance(entry, dict) or not isinstance(entry.get("kwargs"), dict):
        raise ModelLoadError(f"{source}: the header entry of {role} is damaged; re-create the file.")
    kind = network_kind(str(entry.get("class_name")))
    if kind is None:
        raise ModelLoadError(
            f"{source}: network {role} has class {entry.get('class_name')!r}, which this program does "
            "not know; it may need a newer program version."
        )
    kwargs = entry["kwargs"]
    try:
        return build_network(kind, kwargs), kind, kwargs
    except (TypeError, ValueError, AssertionError, KeyError) as exc:
        raise ModelLoadError(f"{source}: cannot build {role} from the settings {kwargs}: {exc}") from exc


def load(
    path: str | os.PathLike, sha256: str, device: str = "cpu", training_nets: bool = True
) -> LoadedModel:
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
            nets = {}
            for role in roles:
                net, kind, kwargs = _build(role, config["networks"][role], source)
                prefix = f"{role}."
                state = {n[len(prefix) :]: f.get_tensor(n) for n in names if n.startswith(prefix)}
                load_weights(net, state, f"{role} in {source}")
                nets[role] = (net.to(device=device, dtype=torch.float32), kind, kwargs)
    except ModelLoadError:
        raise
    except (safetensors.SafetensorError, OSError) as exc:
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
        sha256=sha256,
        D=None if D is None else D[0],
        G_train=None if G_train is None else G_train[0],
        d_kwargs=None if D is None else D[2],
    )
