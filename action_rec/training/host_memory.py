"""Host memory of CPU training: keep the blocks a step freed for the next step.

A training step on the CPU allocates and frees the same large activation buffers every iteration.
glibc's malloc hands freed blocks above its mmap threshold (and the heap's free top) back to the kernel
and gets them again, page by page zeroed, on the next step: with batches of 32-64 small clips about a
seventh of the training process's CPU time went to the kernel. Fixed thresholds keep blocks of up
to 32 MB in the heap: X3D's step, 64 clips of 4 x 56 x 56 on 2 cores, 100.5-114.5 clips/s against
79.9-99.2 (three side-by-side pairs of ``python -m bench.train_throughput --size 56 --clip-len 4
--batch-size 64 --iters 6 --models x3d`` with and without ``--malloc-default``, 2026-12-04, AMD EPYC).
The heap then stays at its peak size until the process ends, which a training process reaches anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["keep_freed_memory"]

# mallopt(3) parameters
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit systems
TOP_PAD = 256 << 20
TRIM_THRESHOLD = 2**31 - 1  # never trim


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks of up to 32 MB in this process; returns whether it could
    (False on other C libraries and systems, where nothing changes)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    return all(mallopt(param, value) == 1 for param, value in settings)
