"""What this computer can run, decided in one place: the torch device, the custom ops' state and
torch's thread count. The explorer asks here instead of importing torch or ops_cuda itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

import ops_cuda

OPS = ("bias_act", "upfirdn2d", "filtered_lrelu", "fma")  # the custom ops shown in the status bar


def default_device() -> str:
    """'cuda' when a CUDA device exists, else 'cpu'."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def cuda_name() -> str | None:
    """The first CUDA device's name, None without one."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def op_capabilities(device: str, ops_impl: str = "auto", build: bool = False) -> dict:
    """op -> {impl, reason, device, state} (ops_cuda.capabilities). A forced impl is reported as
    such without looking at (or waiting for) compiled kernels; build=True compiles what is missing."""
    if ops_impl != "auto":
        reason = "forced with --ops"
        return {op: {"impl": ops_impl, "reason": reason, "device": device, "state": "forced"} for op in OPS}
    return ops_cuda.capabilities(device, build=build)


def prefer_ops(ops_impl: str):
    """Context in which this thread's torch work runs the custom ops with `ops_impl` ('auto' =
    whatever is fastest; ops_cuda.prefer_impl is per thread)."""
    return contextlib.nullcontext() if ops_impl == "auto" else ops_cuda.prefer_impl(ops_impl)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `threads` (None: unchanged) inside the block."""
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        yield
    finally:
        torch.set_num_threads(before)
