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

import torch
from torch.overrides import TorchFunctionMode

# Factories whose size is given by a shape argument: charged before they allocate.
_SHAPED = {
    torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint,
    torch.empty_strided,
}  # fmt: skip
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
