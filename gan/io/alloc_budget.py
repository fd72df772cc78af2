"""A memory budget for building a network from settings read from a file.

A model file's constructor kwargs decide how big the network is (`w_dim`, channel counts, number
of layers), and a few bytes of kwargs can ask for gigabytes. Building inside
`AllocationBudget(max_bytes, max_calls)` charges every tensor a torch factory function creates
(randn, zeros, empty, as_tensor, ...) and raises `OverBudget` before an allocation that would
exceed the budget, or when far more tensors are created than the file holds. The caller sets the
budget from what the file can hold, so a file cannot make us allocate much more than its size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from gan.errors import ModelLoadError
from gan.networks import NetworkKind, build_network

# Factories whose size is given by a shape argument: charged before they allocate.
_SHAPED = {
    torch.empty,
    torch.zeros,
    torch.ones,
    torch.full,
    torch.rand,
    torch.randn,
    torch.randint,
    torch.empty_strided,
}
# Factories whose size follows from their data (already in memory) or range: charged after.
_OTHER = {torch.tensor, torch.as_tensor, torch.from_numpy, torch.arange, torch.linspace, torch.eye}


class OverBudget(Exception):
    """Building would allocate more than the budget allows."""


def _shape(args: tuple, kwargs: dict, func) -> list | None:
    """The requested shape of a shaped factory call, None when it cannot be read."""
    if "size" in kwargs:
        shape = kwargs["size"]
    elif func is torch.randint:
        # randint(high, size) or randint(low, high, size): the size is the first sequence.
        shape = next((a for a in args if isinstance(a, (tuple, list, torch.Size))), None)
    elif args and isinstance(args[0], (tuple, list, torch.Size)):
        shape = args[0]
    else:
        shape = [a for a in args if isinstance(a, int)] if func not in (torch.full,) else None
    if shape is None or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        return None
    return list(shape)


class AllocationBudget(TorchFunctionMode):
    """Context manager: torch factory calls within it may allocate at most `max_bytes` in total
    and be made at most `max_calls` times; OverBudget otherwise."""

    def __init__(self, max_bytes: int, max_calls: int):
        super().__init__()
        self.max_bytes = max_bytes
        self.max_calls = max_calls
        self.used_bytes = 0
        self.calls = 0

    def _charge(self, nbytes: int) -> None:
        self.calls += 1
        self.used_bytes += nbytes
        if self.used_bytes > self.max_bytes:
            raise OverBudget(
                f"the settings ask for more than {_size(self.max_bytes)} of tensors "
                f"({_size(self.used_bytes)} so far)"
            )
        if self.calls > self.max_calls:
            raise OverBudget(f"the settings create more than {self.max_calls} tensors")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _SHAPED:
            shape = _shape(args, kwargs, func)
            if shape is not None:
                default = torch.int64 if func is torch.randint else torch.get_default_dtype()
                dtype = kwargs.get("dtype") or default
                self._charge(math.prod(max(d, 0) for d in shape) * dtype.itemsize)
                return func(*args, **kwargs)
        out = func(*args, **kwargs)
        if (func in _SHAPED or func in _OTHER) and isinstance(out, torch.Tensor):
            self._charge(out.numel() * out.element_size())
        return out


def _size(nbytes: float) -> str:
    unit = "bytes"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024:
            break
        nbytes, unit = nbytes / 1024, bigger
    return f"{nbytes:.0f} bytes" if unit == "bytes" else f"{nbytes:.1f} {unit}"


# ---- building a network from a file's settings ------------------------------------------------------

BUILD_SLACK = 64 << 20  # bytes a network may allocate beyond 4x its weights (filters, temporaries)
_MAX_SETTING_INT = 2**31
_MAX_SETTING_STR = 200
_MAX_SETTING_ITEMS = 64
_MAX_SETTING_DEPTH = 4
_SIZE_SUFFIXES = ("_dim", "_channels", "_resolution", "_res", "_layers", "_features", "_size")
_SIZE_NAMES = ("channel_base", "channel_max", "num_fp16_res", "num_layers", "conv_kernel", "num_critical")


def check_settings(kwargs: Any, what: str, depth: int = 0) -> None:
    """Constructor settings read from a file: plain values of sane size and type, sizes non-negative
    (ModelLoadError naming the setting otherwise). Checked before anything is built."""
    if depth > _MAX_SETTING_DEPTH:
        raise ModelLoadError(f"{what}: the settings nest deeper than any network's do; the file is damaged.")
    items = kwargs.items() if isinstance(kwargs, dict) else enumerate(kwargs)
    if len(kwargs) > _MAX_SETTING_ITEMS:
        raise ModelLoadError(f"{what}: {len(kwargs)} settings in one group is more than any network has.")
    for key, value in items:
        name = f"{key}" if isinstance(key, (str, int)) else repr(key)[:40]
        if isinstance(kwargs, dict) and not isinstance(key, str):
            raise ModelLoadError(f"{what}: a setting is named by a {type(key).__name__}, not a string.")
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            if abs(value) > _MAX_SETTING_INT:
                raise ModelLoadError(f"{what}: setting {name} = {value:.3g} is far out of range.")
            if value < 0 and isinstance(key, str) and (key.endswith(_SIZE_SUFFIXES) or key in _SIZE_NAMES):
                raise ModelLoadError(f"{what}: setting {name} = {value} is negative; it is a size.")
        elif isinstance(value, float):
            if not math.isfinite(value) or abs(value) > _MAX_SETTING_INT:
                raise ModelLoadError(f"{what}: setting {name} = {value} is not a usable number.")
        elif isinstance(value, str):
            if len(value) > _MAX_SETTING_STR:
                raise ModelLoadError(f"{what}: setting {name} is a {len(value)}-character text.")
        elif isinstance(value, (dict, list, tuple)):
            check_settings(value, what, depth + 1)
        else:
            raise ModelLoadError(f"{what}: setting {name} is a {type(value).__name__}, not a plain value.")


def weight_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes the tensors occupy as float32, each storage counted once (views of one storage, as a
    file may hold many, cost its bytes only once)."""
    storages: dict[int, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        storages[storage.data_ptr() or id(storage)] = storage.nbytes() * 4 // max(t.element_size(), 1)
    return sum(storages.values())


def build_bounded(
    kind: NetworkKind, kwargs: dict, file_bytes: int, file_tensors: int, what: str
) -> torch.nn.Module:
    """Our network of `kind` from settings read from a file, allocating at most about what the
    file's weights (`file_bytes` as float32, `file_tensors` tensors) need; settings describing a
    far bigger network, and any error of the constructors, are a ModelLoadError."""
    check_settings(kwargs, what)
    budget = AllocationBudget(max_bytes=4 * file_bytes + BUILD_SLACK, max_calls=8 * file_tensors + 256)
    try:
        with budget:
            return build_network(kind, kwargs)
    except OverBudget as exc:
        raise ModelLoadError(
            f"{what}: the settings describe a network far bigger than the weights the file holds ({exc}); "
            "the file is damaged or was made to exhaust memory. Not loaded."
        ) from None
    except Exception as exc:  # anything the constructors raise for settings they cannot take
        detail = f"{type(exc).__name__}: {str(exc)[:200]}"
        raise ModelLoadError(f"cannot build {what} from its settings: {detail}") from None
