"""Import NVIDIA's official network pickles: StyleGAN3, StyleGAN2-ADA-pytorch and TensorFlow-era.

A PyTorch-era `network-snapshot-*.pkl` is a dict with `G`, `D`, `G_ema`, `augment_pipe` and
`training_set_kwargs` (some files only have `G_ema`). We read it with the restricted unpickler,
recognise each network's family from its state and module source text
(gan.io.official_families), rebuild it as our own class from its constructor arguments, and copy
in the weights collected from the records' `_parameters` / `_buffers` / `_modules`.
A TensorFlow-era file is a tuple (G, D, Gs) converted by gan.io.tf_pickle.
Nothing from the file is executed.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import torch

from gan.errors import ModelLoadError
from gan.io import tf_pickle
from gan.io.alloc_budget import build_bounded, weight_bytes
from gan.io.loaded_model import LoadedModel
from gan.io.official_families import Identified, identify
from gan.io.safe_unpickle import ModuleRecord, PersistentRecord, load_restricted
from gan.io.weights import check_finite, load_weights
from gan.networks import NetworkKind, bind_kwargs, generator_arch, network_kind

NETWORK_KEYS = ("G_ema", "G", "D")
MAX_LISTED_ELEMENTS = 4096  # numpy values up to this size become lists in settings and metadata
TF_NETWORK_KEYS = ("G", "D", "G_ema")  # the order of the TF-era tuple (G, D, Gs)


def read_snapshot(path: str | os.PathLike) -> dict | tuple:
    """The pickle's top level: a dict with networks as PersistentRecords, or a TF-era tuple."""
    with open(path, "rb") as f:
        data = load_restricted(f, str(path))
    if tf_pickle.is_tf_snapshot(data):
        return data
    if not isinstance(data, dict):
        raise ModelLoadError(
            f"{path} holds a {type(data).__name__}, not a network snapshot dict or a TensorFlow (G, D, Gs) "
            "tuple; it is not an official StyleGAN network pickle."
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
    if isinstance(value, np.ndarray) and value.size <= MAX_LISTED_ELEMENTS:
        return value.tolist()  # larger arrays stay arrays: never a setting, shown by their type
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
    state = record.state if isinstance(record.state, dict) else {}
    out: dict[str, torch.Tensor] = {}
    non_persistent = state.get("_non_persistent_buffers_set") or set()
    if not isinstance(non_persistent, (set, frozenset, list, tuple)):
        raise ModelLoadError(f"{prefix}_non_persistent_buffers_set is malformed.")
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


def _official_to_ours(family: str, kwargs: dict) -> dict:
    """StyleGAN2-ADA-pytorch's Generator took `synthesis_kwargs={...}`; the StyleGAN3 repo's (and
    ours) takes those as **kwargs."""
    if family == "stylegan2-ada" and isinstance(kwargs.get("synthesis_kwargs"), dict):
        kwargs = dict(kwargs)
        kwargs.update(kwargs.pop("synthesis_kwargs"))
    return kwargs


def _construct(
    kind: NetworkKind, args: tuple, kwargs: dict, file_tensors: list[torch.Tensor], what: str
) -> tuple[torch.nn.Module, dict]:
    """Our network from the file's constructor arguments, within a memory budget set by the
    weights the file holds for it (`file_tensors`)."""
    try:
        kwargs = bind_kwargs(kind, args, kwargs)
    except TypeError as exc:
        raise ModelLoadError(f"{what}: its settings do not fit the network: {exc}") from None
    return build_bounded(kind, kwargs, weight_bytes(file_tensors), len(file_tensors), what), kwargs


def _fill(net: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> torch.nn.Module:
    check_finite(state, what)
    load_weights(net, state, what)
    return net.to(torch.float32)


def build_from_record(
    record: Any, key: str, source: str
) -> tuple[torch.nn.Module, NetworkKind, dict, Identified]:
    """Our network equivalent to the official one in `record` (network `key` of file `source`)."""
    found = identify(record, key, source)
    if found.kind is None:
        raise ModelLoadError(f"'{key}' in {source} is an augmentation pipeline, not a network.")
    args, kwargs = _init_arguments(record)
    what = f"'{key}' in {source} (`{record.class_name}` of {found.family.module})"
    state = collect_state_dict(record)
    kwargs = _official_to_ours(found.family.name, kwargs)
    net, kwargs = _construct(found.kind, args, kwargs, list(state.values()), what)
    return _fill(net, state, what), found.kind, kwargs, found


def _augment_summary(record: Any, source: str) -> dict | None:
    """The augment pipe's class, module and p: information only (fine-tuning may start from p), so
    a pipe we do not recognise is described as such rather than refusing the file."""
    if not isinstance(record, PersistentRecord):
        return None
    try:
        module = identify(record, "augment_pipe", source).family.module
    except ModelLoadError:
        module = None
    p = (record.state.get("_buffers") or {}).get("p")
    _, kwargs = _init_arguments(record)
    return {
        "class_name": record.class_name,
        "module": module,
        "p": float(p.reshape(-1)[0]) if isinstance(p, torch.Tensor) and p.numel() else None,
        "kwargs": jsonable(kwargs),
    }


def _provenance(record: PersistentRecord, found: Identified) -> dict:
    return {
        "class_name": record.class_name,
        "family": found.family.name,
        "module": found.family.module,
        "repository": found.family.repository,
        "evidence": found.evidence,
    }


def _load_pytorch_era(data: dict, source: str, training_nets: bool) -> tuple[dict, dict]:
    nets: dict[str, tuple[torch.nn.Module, NetworkKind, dict]] = {}
    provenance = {}
    for key in NETWORK_KEYS if training_nets else ("G_ema",):
        if key == "G_ema" or data.get(key) is not None:
            net, kind, kwargs, found = build_from_record(data[key], key, source)
            nets[key] = (net, kind, kwargs)
            provenance[key] = _provenance(data[key], found)
    metadata = {
        "source_format": "official-pickle",
        "era": "pytorch",
        "official_networks": provenance,
        "pickle_keys": sorted(map(str, data)),
        "training_set_kwargs": jsonable(data.get("training_set_kwargs")),
        "augment_pipe": _augment_summary(data.get("augment_pipe"), source),
    }
    return nets, metadata


def _load_tf_era(data: tuple, source: str, training_nets: bool) -> tuple[dict, dict]:
    """Networks of a TensorFlow-era (G, D, Gs) tuple as our StyleGAN2 G / D."""
    records = dict(zip(TF_NETWORK_KEYS, data))
    nets: dict[str, tuple[torch.nn.Module, NetworkKind, dict]] = {}
    provenance = {}
    for key in NETWORK_KEYS if training_nets else ("G_ema",):
        record, what = records[key], f"'{key}' ({'Gs' if key == 'G_ema' else key}) in {source}"
        if key == "D":
            kind = network_kind("training.networks_stylegan2.Discriminator")
            convert = tf_pickle.convert_discriminator
        else:
            kind = network_kind("training.networks_stylegan2.Generator")
            convert = tf_pickle.convert_generator
        conversion = convert(record, what)
        variables = [torch.from_numpy(np.asarray(v)) for v in conversion.variables.values()]
        net, kwargs = _construct(kind, (), plain(conversion.kwargs), variables, what)
        state, unused = conversion.state_dict_for(net)
        nets[key] = (_fill(net, state, what), kind, kwargs)
        provenance[key] = {
            "class_name": record.class_name,
            "family": "stylegan2-tf",
            "name": str(record.state.get("name")),
            "build_func_name": str(record.state.get("build_func_name")),
            "static_kwargs": jsonable(record.state.get("static_kwargs")),
            "unused_variables": unused[:20] + ([f"... {len(unused) - 20} more"] if len(unused) > 20 else []),
        }
    metadata = {
        "source_format": "official-pickle",
        "era": "tensorflow",
        "official_networks": provenance,
        "pickle_keys": ["G", "D", "Gs"],
        "training_set_kwargs": None,
        "augment_pipe": None,
    }
    return nets, metadata


def load_official_pickle(
    path: str | os.PathLike, sha256: str, device: str = "cpu", training_nets: bool = True
) -> LoadedModel:
    """LoadedModel from an official network pickle (training nets G and D only if training_nets)."""
    source = str(path)
    data = read_snapshot(path)
    load = _load_tf_era if isinstance(data, tuple) else _load_pytorch_era
    try:
        nets, metadata = load(data, source, training_nets)
        json.dumps(metadata)  # jsonable() guarantees this; fail here rather than when saving
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, RuntimeError, OverflowError) as exc:
        # Everything read from the file is bounded (gan.io.safe_unpickle), so what is left are
        # values of a shape no network pickle has.
        raise ModelLoadError(
            f"{source} is damaged: a value in it has an unexpected form ({type(exc).__name__}: "
            f"{str(exc)[:200]}). Re-download or re-copy the file."
        ) from None
    G, g_kind, g_kwargs = nets["G_ema"]
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
