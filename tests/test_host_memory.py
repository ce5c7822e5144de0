"""training/host_memory.py: after keep_freed_memory() a large block comes from the heap and stays there
when freed, where glibc's defaults map it and hand it back to the kernel."""

import subprocess
import sys

import pytest

# In a fresh interpreter (malloc's thresholds still at their defaults): allocate a 16 MB block with
# libc's malloc, free it, and print whether it was mapped on its own (mallinfo2's hblkhd grew by it) and
# whether the heap kept it as free memory (fordblks grew by it).
PROBE = """
import ctypes, sys
from action_rec.training.host_memory import keep_freed_memory
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
before = libc.mallinfo2()
block = libc.malloc(16 << 20)
ctypes.memset(block, 1, 16 << 20)
during = libc.mallinfo2()
libc.free(block)
after = libc.mallinfo2()
print(applied, during.hblkhd - before.hblkhd >= 16 << 20, after.fordblks - during.fordblks >= 16 << 20)
"""


def _probe(mode: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_freed_blocks_stay_in_the_heap():
    try:
        kept = _probe("keep")
    except subprocess.CalledProcessError as exc:
        if "libc.so.6" in exc.stderr or "mallinfo2" in exc.stderr:
            pytest.skip("not glibc 2.33 or later (no libc.so.6 or no mallinfo2)")
        raise
    if kept[0] == "False":
        pytest.skip("not glibc: keep_freed_memory() changes nothing here")
    assert kept == ["True", "False", "True"]  # kept: from the heap, which keeps it
    default = _probe("default")
    assert default == ["False", "True", "False"]  # glibc's defaults: mapped apart, unmapped when freed
