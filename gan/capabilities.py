"""What this computer can run, decided in one place: the torch device, the custom ops' state and
torch's thread count. The explorer asks here instead of importing torch or ops_cuda itself."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

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


def _cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds every process has used since boot, this process's own), None off Linux."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user, nice, system, (idle, iowait), irq, softirq, steal
    busy = sum(ticks[:3]) + sum(ticks[5:8])
    own = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system


class CpuUseElsewhere:
    """How many cores other processes kept busy between two calls of `cores()` (all processes'
    CPU time from /proc/stat minus this process's own, per second of wall time). None off Linux
    and on the first call; an interval shorter than MIN_SECONDS keeps the previous value."""

    MIN_SECONDS = 0.25

    def __init__(self, read: Callable[[], tuple[float, float] | None] = _cpu_seconds, clock=time.monotonic):
        self._read, self._clock = read, clock
        self._last = (clock(), read())
        self._value: float | None = None

    def cores(self) -> float | None:
        now, sample = self._clock(), self._read()
        then, before = self._last
        if sample is None or before is None:
            return None
        if now - then >= self.MIN_SECONDS:
            others = (sample[0] - before[0]) - (sample[1] - before[1])
            self._value = max(0.0, others / (now - then))
            self._last = (now, sample)
        return self._value


def threads_beside(busy_elsewhere: float | None, cores: int | None = None) -> int | None:
    """torch threads for interactive work next to other processes: None (torch's default, every
    core) while other work keeps less than half a core busy, else the cores left (at least 1).
    Why: on 2 cores a 2-thread render next to a training (even one at nice 10) waits at every
    OpenMP barrier for the thread that lost its core: p95 up to 5x its p50; with 1 thread the
    render stays steady (docs/benchmarks.md, "Render latency while training")."""
    if busy_elsewhere is None or busy_elsewhere < 0.5:
        return None
    cores = cores or os.cpu_count() or 1
    return max(1, int(cores - busy_elsewhere + 0.5))
