"""The CPU kernels run on torch's threads: built with OpenMP (at::parallel_for is serial without
it), sharing torch's one OpenMP runtime, and giving the same numbers on one thread as on several
(every thread works on its own planes)."""

from __future__ import annotations

import sys

import pytest
import torch

from ops_cuda import _native, bias_act, filtered_lrelu, upfirdn2d, winograd
from ops_cuda.upfirdn2d import setup_filter

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="OpenMP flags are Linux-only")


@linux_only
def test_cpu_kernels_are_built_with_openmp():
    assert "-fopenmp" in _native.KINDS["cpu"][2]


@linux_only
def test_the_kernels_share_torchs_openmp_runtime():
    """The extension asks for libgomp.so.1: it must get the copy torch loaded, not a second runtime
    with its own thread pool, deaf to torch.set_num_threads. (Other packages may bring their own,
    under other names: scikit-learn's vendored libgomp-<hash>.so.)"""
    _native.load_extension("cpu")
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if line.rstrip().endswith("/libgomp.so.1")}
    assert len(paths) == 1, paths


def _run_all(threads: int) -> list[torch.Tensor]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, 40, 33, 29, generator=gen)
        b = torch.randn(40, generator=gen)
        w = torch.randn(48, 40, 3, 3, generator=gen)
        f = setup_filter([1, 3, 3, 1])
        fu = setup_filter(torch.rand(12, generator=gen), separable=True)
        ext = _native.load_extension("cpu")
        return [
            bias_act.bias_act(x, b, act="lrelu", gain=1.4, clamp=3.0, impl="cpu"),
            upfirdn2d.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], impl="cpu"),
            filtered_lrelu.filtered_lrelu(x, fu, fu, b, up=2, down=2, padding=[5, 5, 5, 5], impl="cpu"),
            winograd.conv3x3(ext, x, w, (1, 1), 4),
            winograd.conv3x3(ext, x, w, (1, 1), 2, in_scale=torch.rand(2, 40, generator=gen)),
        ]
    finally:
        torch.set_num_threads(before)


def test_results_do_not_depend_on_the_thread_count():
    one, two = _run_all(1), _run_all(2)
    for a, b in zip(one, two):
        assert torch.equal(a, b)
