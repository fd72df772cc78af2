"""Keep freed CPU memory in the process for the next tensor of the same size (glibc only).

glibc's malloc serves every allocation above its mmap threshold (128 KB to start, raised on the fly
up to 32 MB) with fresh pages from the kernel and returns them on free. A generator forward frees
and reallocates the same large activations, cols and transform buffers every time, so each forward
page-faults its working set in again: ~19,500 minor faults (~80 MB) per StyleGAN2 256 px forward at
batch 1, 0.26 s instead of 0.22 s at one thread. With the mmap threshold at glibc's maximum and the
trim threshold well above a forward's working set the heap keeps those pages: 2 faults per forward
(docs/benchmarks.md, issue #19 part 6; `python -m bench.side_by_side --malloc default` runs
without). Allocations above 32 MB still come from mmap.

This is process state, like torch.set_num_threads: `gan.render.Renderer`, the training loop, the
CLI and bench.side_by_side call `keep_freed_memory()`.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass, field

# mallopt parameter numbers from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@dataclass(frozen=True)
class MallocSettings:
    """glibc malloc settings for tensor-heavy processes."""

    mmap_threshold: int = field(
        default=32 << 20,
        metadata={"help": "allocations at least this large get their own mapping (glibc's maximum: 32 MB)"},
    )
    trim_threshold: int = field(
        default=128 << 20,
        metadata={
            "help": "free memory at the top of the heap beyond this goes back to the system (128 MB: "
            "no faults in a StyleGAN2 256 px forward; SG3-T 1024 peak +21 MB, 256 MB: +42 MB)"
        },
    )


def keep_freed_memory(settings: MallocSettings = MallocSettings()) -> bool:
    """Apply `settings` to this process's malloc. True if applied; False where malloc is not glibc's
    (macOS, Windows, musl), which changes nothing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        # The process's own symbols, libc's among them: find_library would run ldconfig (~6 ms) at
        # every Renderer and training run.
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - raises AttributeError on musl
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, settings.mmap_threshold) == 1
    return mallopt(_M_TRIM_THRESHOLD, settings.trim_threshold) == 1 and ok
