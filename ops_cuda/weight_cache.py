"""Results derived from a network's weights, kept between forwards of the same frozen network.

A modulated convolution recomputes things per forward that depend on its weight only: the squared
norms the demodulation needs, the Winograd-transformed weight, the transposed copy a transposed
convolution wants. For a renderer that runs the same network again and again (the explorer) these
passes over the weights are a large part of a StyleGAN2 forward at batch 1. A `WeightCache` keeps
them; it is active only inside `with cached_weights(cache):`, so training and everything else
computes them fresh as before.

Only `torch.nn.Parameter`s are cached (per-sample weights formed during a forward are not), and
only when no gradient is wanted for them. An entry is valid while its parameter is alive and its
version counter unchanged: in-place updates (optimizer steps, `load_state_dict`, `copy_`) bump
it. Writes through `.data`, which bypass the counter, are not seen: do not modify the weights of a
network while a forward under its cache runs.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field

import torch


@dataclass
class WeightCache:
    """Derived tensors per (parameter, key), up to max_bytes in all (further ones are computed
    each time, not stored)."""

    max_bytes: int = field(default=256 << 20, metadata={"help": "total size of the stored tensors"})
    _entries: dict = field(default_factory=dict, repr=False)  # (id, key) -> (ref, version, tensor)
    _bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def nbytes(self) -> int:
        """Bytes of the stored tensors."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def get(self, weight: torch.Tensor, key: Hashable, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The stored result of make() for this weight and key, or make()'s result (then stored if
        it fits)."""
        slot = (id(weight), key)
        with self._lock:
            entry = self._entries.get(slot)
            if entry is not None and entry[0]() is weight and entry[1] == weight._version:
                return entry[2]
        value = make()
        with self._lock:
            old = self._entries.pop(slot, None)
            if old is not None:
                self._bytes -= old[2].nbytes
            if self._bytes + value.nbytes <= self.max_bytes:
                ref = weakref.ref(weight, lambda _ref, slot=slot: self._forget(slot))
                self._entries[slot] = (ref, weight._version, value)
                self._bytes += value.nbytes
        return value

    def _forget(self, slot) -> None:
        with self._lock:
            old = self._entries.pop(slot, None)
            if old is not None:
                self._bytes -= old[2].nbytes


# The cache of the current context (thread / task), set by `cached_weights`.
_ACTIVE: contextvars.ContextVar[WeightCache | None] = contextvars.ContextVar(
    "ops_cuda_weight_cache", default=None
)


@contextlib.contextmanager
def cached_weights(cache: WeightCache) -> Iterator[WeightCache]:
    """Within the block, weight-derived results are taken from / kept in `cache`."""
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)


def derived(weight: torch.Tensor, key: Hashable, make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """make(), a function of `weight` alone, from the active cache where one is active and
    `weight` is a parameter that needs no gradient here; else computed now."""
    cache = _ACTIVE.get()
    if cache is None or not isinstance(weight, torch.nn.Parameter):
        return make()
    if torch.is_grad_enabled() and weight.requires_grad:
        return make()
    return cache.get(weight, key, make)
