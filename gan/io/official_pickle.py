"""Import NVIDIA's official StyleGAN2-ADA-pytorch / StyleGAN3 network pickles.

A `network-snapshot-*.pkl` is a dict with `G`, `D`, `G_ema`, `augment_pipe` and
`training_set_kwargs` (some files only have `G_ema`). We read it with the restricted unpickler,
then rebuild each network as our own class from the record's class name and constructor
arguments, and copy in the weights collected from the records' `_parameters` / `_buffers` /
`_modules`. Nothing from the file is executed.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch

from gan.errors import ModelLoadError
from gan.io.loaded_model import LoadedModel
from gan.io.safe_unpickle import ModuleRecord, PersistentRecord, load_restricted
from gan.io.weights import load_weights
from gan.networks import (
    NetworkKind,
    bind_kwargs,
    build_network,
    generator_arch,
    known_class_names,
    network_kind,
)

NETWORK_KEYS = ("G_ema", "G", "D")


def read_snapshot(path: str | os.PathLike) -> dict:
    """The pickle's top-level dict, with networks as PersistentRecords."""
    with open(path, "rb") as f:
        data = load_restricted(f, str(path))
    if not isinstance(data, dict):
        raise ModelLoadError(
            f"{path} holds a {type(data).__name__}, not a network snapshot dict; it is not an official "
            "StyleGAN2-ADA / StyleGAN3 network pickle."
        )
    if "G_ema" not in data:
        found = ", ".join(sorted(map(str, data))) or "nothing"
        raise ModelLoadError(
            f"{path} has no 'G_ema' network (it holds: {found}); it is not a StyleGAN network pickle."
        )
    return data


def plain(value: Any) -> Any:
    """Constructor arguments / options as plain Python (numpy scalars and arrays unwrapped)."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


def jsonable(value: Any) -> Any:
    """plain(value), then anything JSON cannot hold as a short descriptive string."""
    value = plain(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return f"<tensor {list(value.shape)}>"
    return f"<{type(value).__name__}>"


def collect_state_dict(record: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """The state_dict the official module would return, read from the records."""
    if not isinstance(record, (PersistentRecord, ModuleRecord)):
        raise ModelLoadError(
            f"sub-module {prefix.rstrip('.') or '<root>'} is a {type(record).__name__}, not a module."
        )
    state = record.state
    out: dict[str, torch.Tensor] = {}
    non_persistent = state.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        tensors = state.get(group) or {}
        if not isinstance(tensors, dict):
            raise ModelLoadError(f"{prefix}{group} is malformed.")
        for name, tensor in tensors.items():
            if tensor is None or (group == "_buffers" and name in non_persistent):
                continue
            if not isinstance(tensor, torch.Tensor):
                raise ModelLoadError(f"{prefix}{name} should be a tensor but is a {type(tensor).__name__}.")
            out[f"{prefix}{name}"] = tensor
    modules = state.get("_modules") or {}
    if not isinstance(modules, dict):
        raise ModelLoadError(f"{prefix}_modules is malformed.")
    for name, child in modules.items():
        if child is not None:
            out.update(collect_state_dict(child, f"{prefix}{name}."))
    return out


def _init_arguments(record: PersistentRecord) -> tuple[tuple, dict]:
    args = record.state.get("_init_args", ())
    kwargs = record.state.get("_init_kwargs", {})
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
        raise ModelLoadError(f"the constructor arguments of {record.class_name} are malformed.")
    return tuple(plain(args)), plain(kwargs)


def _official_to_ours(class_name: str, kwargs: dict) -> dict:
    """StyleGAN2-ADA-pytorch's Generator took `synthesis_kwargs={...}`; the StyleGAN3 repo's (and
    ours) takes those as **kwargs."""
    if class_name == "training.networks.Generator" and isinstance(kwargs.get("synthesis_kwargs"), dict):
        kwargs = dict(kwargs)
        kwargs.update(kwargs.pop("synthesis_kwargs"))
    return kwargs


def build_from_record(record: Any, key: str, source: str) -> tuple[torch.nn.Module, NetworkKind, dict]:
    """Our network equivalent to the official one in `record` (network `key` of file `source`)."""
    if not isinstance(record, PersistentRecord):
        raise ModelLoadError(
            f"'{key}' in {source} is a {type(record).__name__}, not a StyleGAN network; "
            "the file is not an official network pickle."
        )
    kind = network_kind(record.class_name)
    if kind is None:
        raise ModelLoadError(
            f"'{key}' in {source} is a `{record.class_name}`, which this program does not know. "
            f"Supported networks: {', '.join(n for n in known_class_names() if n.startswith('training.'))}."
        )
    expected_role = "discriminator" if key == "D" else "generator"
    if kind.role != expected_role:
        raise ModelLoadError(f"'{key}' in {source} is a `{record.class_name}`, expected a {expected_role}.")
    args, kwargs = _init_arguments(record)
    try:
        kwargs = bind_kwargs(kind, args, _official_to_ours(record.class_name, kwargs))
        net = build_network(kind, kwargs)
    except (TypeError, ValueError, AssertionError, KeyError) as exc:
        raise ModelLoadError(
            f"cannot build '{key}' of {source} (`{record.class_name}`) with its settings {kwargs}: {exc}"
        ) from exc
    load_weights(net, collect_state_dict(record), f"'{key}' in {source}")
    return net.to(torch.float32), kind, kwargs


def _augment_summary(record: Any) -> dict | None:
    if not isinstance(record, PersistentRecord):
        return None
    p = (record.state.get("_buffers") or {}).get("p")
    _, kwargs = _init_arguments(record)
    return {
        "class_name": record.class_name,
        "p": float(p.reshape(-1)[0]) if isinstance(p, torch.Tensor) and p.numel() else None,
        "kwargs": jsonable(kwargs),
    }


def load_official_pickle(
    path: str | os.PathLike, sha256: str, device: str = "cpu", training_nets: bool = True
) -> LoadedModel:
    """LoadedModel from an official network pickle (training nets G and D only if training_nets)."""
    source = str(path)
    data = read_snapshot(path)
    nets: dict[str, tuple[torch.nn.Module, NetworkKind, dict]] = {}
    for key in NETWORK_KEYS if training_nets else ("G_ema",):
        if key == "G_ema" or data.get(key) is not None:
            nets[key] = build_from_record(data[key], key, source)
    G, g_kind, g_kwargs = nets["G_ema"]
    metadata = {
        "source_format": "official-pickle",
        "official_class_names": {
            k: data[k].class_name for k in NETWORK_KEYS if isinstance(data.get(k), PersistentRecord)
        },
        "pickle_keys": sorted(map(str, data)),
        "training_set_kwargs": jsonable(data.get("training_set_kwargs")),
        "augment_pipe": _augment_summary(data.get("augment_pipe")),
    }
    json.dumps(metadata)  # jsonable() guarantees this; fail here rather than when saving
    D = nets.get("D")
    G_train = nets.get("G")
    return LoadedModel(
        G=G.to(device).eval().requires_grad_(False),
        arch=generator_arch(g_kind, g_kwargs),
        g_kwargs=g_kwargs,
        metadata=metadata,
        source=source,
        sha256=sha256,
        D=None if D is None else D[0].to(device),
        G_train=None if G_train is None else G_train[0].to(device),
        d_kwargs=None if D is None else D[2],
    )
