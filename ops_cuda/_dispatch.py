"""Chooses which implementation ('ref', 'cpu' or 'cuda') runs an op.

Every public op normalises its arguments and then calls
`get_registry().resolve(op, impl, device)(...)`. An implementation is named in IMPL_TABLE as
"module:function" and is imported only when first asked for, so a C++/CUDA build that fails costs
nothing until used and then falls back to the pure-torch reference with one warning.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType

import torch

IMPL_NAMES = ("auto", "ref", "cpu", "cuda")

# What impl='auto' means in the current context; `prefer_impl` sets it for a block of code, so a
# whole network (which calls its ops with the default impl) can be run on 'ref' for comparison.
_AUTO_MEANS: contextvars.ContextVar[str] = contextvars.ContextVar("ops_cuda_auto_means", default="auto")


@contextlib.contextmanager
def prefer_impl(impl: str) -> Iterator[None]:
    """Within the block, ops called with impl='auto' use `impl` instead (thread/context local)."""
    if impl not in IMPL_NAMES:
        raise ValueError(f"unknown impl {impl!r}; expected one of {IMPL_NAMES}")
    token = _AUTO_MEANS.set(impl)
    try:
        yield
    finally:
        _AUTO_MEANS.reset(token)


def _frozen(table: dict[str, dict[str, str]]) -> Mapping[str, Mapping[str, str]]:
    return MappingProxyType({op: MappingProxyType(impls) for op, impls in table.items()})


# op -> impl name -> "module:function". Implementations receive the already normalised arguments
# documented next to each reference function. To add a fused kernel, add its entry here; callers of
# the public ops do not change.
IMPL_TABLE: Mapping[str, Mapping[str, str]] = _frozen(
    {
        "bias_act": {
            "ref": "ops_cuda.bias_act:bias_act_ref",
            "cpu": "ops_cuda._cpu_ops:bias_act_cpu",
            "cuda": "ops_cuda._cuda_ops:bias_act_cuda",
        },
        "upfirdn2d": {
            "ref": "ops_cuda.upfirdn2d:upfirdn2d_ref",
            "cpu": "ops_cuda._cpu_ops:upfirdn2d_cpu",
            "cuda": "ops_cuda._cuda_ops:upfirdn2d_cuda",
        },
        "filtered_lrelu": {
            "ref": "ops_cuda.filtered_lrelu:filtered_lrelu_ref",
            "cpu": "ops_cuda._cpu_ops:filtered_lrelu_cpu",
            "cuda": "ops_cuda._cuda_ops:filtered_lrelu_cuda",
        },
        "fma": {"ref": "ops_cuda.fma:fma_ref"},
        # Stride-1 3x3 convolutions: Winograd on the CPU where it is faster (ops_cuda/winograd.py);
        # on CUDA torch's own (cuDNN picks its algorithms, Winograd among them).
        "conv3x3": {
            "ref": "ops_cuda.conv2d_resample:conv3x3_ref",
            "cpu": "ops_cuda._cpu_ops:conv3x3_cpu",
            "cuda": "ops_cuda.conv2d_resample:conv3x3_ref",
        },
        # A modulated 3x3 convolution (optionally upsampling, as conv2d_resample) with one shared
        # weight and per-sample channel scales: on the CPU by Winograd, the scales inside its
        # transforms, where `winograd.tile_for` says so.
        "scaled_conv3x3": {
            "ref": "ops_cuda.conv2d_resample:scaled_conv3x3_ref",
            "cpu": "ops_cuda._cpu_ops:scaled_conv3x3_cpu",
            "cuda": "ops_cuda.conv2d_resample:scaled_conv3x3_ref",
        },
        # Transposed convolutions (conv_transpose2d's arguments): on the CPU a stride-2 3x3 one
        # without gradients is a matmul and a col2im pass (ops_cuda/transposed_conv.py).
        "conv_transpose2d": {
            "ref": "ops_cuda.transposed_conv:conv_transpose_ref",
            "cpu": "ops_cuda._cpu_ops:conv_transpose_cpu",
            "cuda": "ops_cuda.transposed_conv:conv_transpose_ref",
        },
        # Plain torch on both devices (no build): the cheaper formulation of the same maths.
        "modulated_conv2d": {
            "ref": "ops_cuda.modconv:modulated_conv2d_ref",
            "cpu": "ops_cuda.modconv:modulated_conv2d_fast",
            "cuda": "ops_cuda.modconv:modulated_conv2d_fast",
        },
    }
)

# Modules whose import compiles an extension: module -> (kernel kind, "module:function" that says
# '' if importing is quick, else why not, e.g. "not built yet"). Used by capabilities(build=False).
_BUILD_STATUS = {
    "ops_cuda._cpu_ops": ("cpu", "ops_cuda._native:status"),
    "ops_cuda._cuda_ops": ("cuda", "ops_cuda._native:status"),
}

# How to get a missing implementation, shown in the fallback warning.
_FIX_HINT = {
    "cpu": "build the C++ extension (needs a C++ compiler and ninja on PATH), or pass impl='ref'",
    "cuda": "use a CUDA build of PyTorch on a machine with an NVIDIA GPU, or pass impl='ref'",
}


class Registry:
    """Loads implementations lazily and remembers the outcome, so each fallback warns once."""

    def __init__(self, table: Mapping[str, Mapping[str, str]] = IMPL_TABLE):
        self._table = table
        self._loaded: dict[tuple[str, str], Callable | str] = {}  # function, or why it failed
        self._resolved: dict[tuple[str, str, str], Callable] = {}  # (op, impl, device type) -> function
        self._warned: set[tuple[str, str, str]] = set()  # fallbacks already reported

    def ops(self) -> list[str]:
        return list(self._table)

    def _load(self, op: str, impl: str) -> tuple[Callable | None, str]:
        key = (op, impl)
        if key not in self._loaded:
            target = self._table[op].get(impl)
            if target is None:
                result: Callable | str = f"no '{impl}' implementation of {op} exists yet"
            elif impl == "cuda" and not torch.cuda.is_available():
                result = "torch.cuda.is_available() is False"
            else:
                module_name, func_name = target.split(":")
                try:
                    result = getattr(importlib.import_module(module_name), func_name)
                except Exception as exc:  # a failed build must not break the reference path
                    result = f"loading {target} failed: {type(exc).__name__}: {exc}"
            self._loaded[key] = result
        found = self._loaded[key]
        return (found, "") if callable(found) else (None, found)

    def _native(self, op: str, impl: str, device_type: str) -> tuple[Callable | None, str]:
        """The 'cpu' or 'cuda' implementation if it can run on tensors of device_type."""
        if impl != device_type:
            return None, f"impl '{impl}' cannot run on a tensor on device '{device_type}'"
        return self._load(op, impl)

    def resolve(self, op: str, impl: str, device: torch.device | str) -> Callable:
        if impl == "auto":
            impl = _AUTO_MEANS.get()
        device_type = torch.device(device).type
        key = (op, impl, device_type)
        fn = self._resolved.get(key)
        if fn is None:
            fn = self._resolve_uncached(op, impl, device_type)
            self._resolved[key] = fn
        return fn

    def _resolve_uncached(self, op: str, impl: str, device_type: str) -> Callable:
        if impl not in IMPL_NAMES:
            raise ValueError(f"{op}: unknown impl {impl!r}; expected one of {IMPL_NAMES}")
        if op not in self._table:
            raise ValueError(f"unknown op {op!r}; known ops: {self.ops()}")
        ref, _ = self._load(op, "ref")
        assert ref is not None, f"reference implementation of {op} failed to load"
        if impl == "ref":
            return ref
        native = impl if impl != "auto" else ("cuda" if device_type == "cuda" else "cpu")
        fn, reason = self._native(op, native, device_type)
        if fn is not None:
            return fn
        # 'auto' falls back silently unless a registered kernel failed to load.
        warn_key = (op, native, device_type)
        if (impl != "auto" or reason.startswith("loading ")) and warn_key not in self._warned:
            self._warned.add(warn_key)
            warnings.warn(
                f"ops_cuda.{op}: impl='{native}' is unavailable ({reason}); using impl='ref' instead. "
                f"To fix: {_FIX_HINT.get(native, 'pass impl=ref')}.",
                RuntimeWarning,
                stacklevel=4,
            )
        return ref

    def _pending_build(self, op: str, impl: str) -> str:
        """Why loading op/impl would start a slow build now ('' if it would not)."""
        target = self._table[op].get(impl)
        if target is None or (op, impl) in self._loaded:
            return ""
        entry = _BUILD_STATUS.get(target.split(":")[0])
        if entry is None:
            return ""
        kind, status = entry
        module_name, func_name = status.split(":")
        return getattr(importlib.import_module(module_name), func_name)(kind)

    def capabilities(
        self, device: torch.device | str | None = None, build: bool = False
    ) -> dict[str, dict[str, str]]:
        """Plain data: op -> {'impl': what impl='auto' runs, 'reason': why not faster, 'device': ...,
        'state': 'ready' | 'not built' | 'unavailable' | 'ref only' (no native kernel exists for it)}.

        With build=False (the default, safe in a GUI thread) a kernel that is neither loaded nor
        cached on disk is not compiled: it is reported with state 'not built', impl = the kernel
        that the first call will build and use, and the reason. build=True builds it (20-60 s once).
        """
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        device_type = torch.device(device).type
        native = "cuda" if device_type == "cuda" else "cpu"
        out = {}
        for op in self._table:
            pending = "" if build or native != device_type else self._pending_build(op, native)
            if pending and "not built yet" in pending:
                out[op] = {"impl": native, "reason": pending, "device": device_type, "state": "not built"}
                continue
            fn, reason = self._native(op, native, device_type)
            active = native if fn is not None else "ref"
            if fn is not None:
                state = "ready"
            else:
                state = "unavailable" if self._table[op].get(native) else "ref only"
            out[op] = {"impl": active, "reason": reason, "device": device_type, "state": state}
        return out


@functools.cache
def get_registry() -> Registry:
    """The one registry of the process (created on first use)."""
    return Registry()
