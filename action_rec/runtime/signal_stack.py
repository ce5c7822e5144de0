"""Alternate signal stacks that OpenVINO's CPU plugin leaves unmapped, found and replaced.

Every `ov.Core` that loads the CPU plugin makes a plugin object of its own, and that constructor gives
the calling thread a new alternate signal stack (`sigaltstack`: SIGSTKSZ + AT_MINSIGSTKSZ bytes,
mmap'd); the destructor puts back the stack it found and unmaps its own. When two Cores die in the
order they were made (first in, first out), the second destructor puts back the first one's stack,
which is already unmapped. From then on every signal whose handler runs on the alternate stack is
delivered into unmapped memory and the kernel kills the process with SIGSEGV. Python installs all its
signal handlers with SA_ONSTACK, so the first such signal is usually the SIGCHLD of a DataLoader
worker that exits: the crash of the test suite on Intel Xeon (AMX) machines, seen at the end of a
DataLoader in a process where OpenVINO and NNCF had run. Other machines have the same unmapped stack;
whether it crashes depends on whether something else was mapped at that address since.

`runtime.openvino_core.shared_core` keeps our own Cores from doing it, and `use_own_signal_stack` gives
the thread a stack of ours that no Core owns, after our Core is made and after code we do not control
(NNCF makes and drops Cores of its own). A Core made later puts ours back when it dies. Linux only:
elsewhere there is nothing to do. No torch, no OpenVINO.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
import threading

__all__ = ["SIGNAL_STACK_BYTES", "signal_stack_state", "use_own_signal_stack"]

# An AMX signal frame alone is about 12 KiB (8 KiB of tile data); Python's handler and faulthandler's
# traceback writer need a few more. 64 KiB leaves room for both on every x86 CPU OpenVINO supports.
SIGNAL_STACK_BYTES = 64 * 1024
_SS_DISABLE = 2
_our_stacks: dict[int, mmap.mmap] = {}  # one per thread, kept for the life of the process


class _StackT(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True)


def _current_stack(libc: ctypes.CDLL) -> _StackT:
    stack = _StackT()
    if libc.sigaltstack(None, ctypes.byref(stack)) != 0:
        raise OSError(ctypes.get_errno(), "sigaltstack failed")
    return stack


def _is_mapped(address: int) -> bool:
    with open("/proc/self/maps", encoding="ascii") as maps:
        for line in maps:
            start, end = (int(bound, 16) for bound in line.split(maxsplit=1)[0].split("-"))
            if start <= address < end:
                return True
    return False


def signal_stack_state() -> str:
    """The calling thread's alternate signal stack: "none" (none set, or not Linux), "ours" (made by
    `use_own_signal_stack`), "mapped" (someone else's, in mapped memory) or "unmapped" (a signal
    handled on it would crash the process)."""
    libc = _libc()
    if libc is None:
        return "none"
    stack = _current_stack(libc)
    if stack.ss_flags & _SS_DISABLE or not stack.ss_sp:
        return "none"
    ours = _our_stacks.get(threading.get_ident())
    if ours is not None and stack.ss_sp == _address(ours):
        return "ours"
    return "mapped" if _is_mapped(stack.ss_sp) else "unmapped"


def use_own_signal_stack() -> None:
    """Make a stack of ours, which no OpenVINO Core owns, the calling thread's alternate signal stack
    (SIGNAL_STACK_BYTES, made once per thread and never freed)."""
    libc = _libc()
    if libc is None or signal_stack_state() == "ours":
        return
    buffer = _our_stacks.setdefault(threading.get_ident(), mmap.mmap(-1, SIGNAL_STACK_BYTES))
    stack = _StackT(_address(buffer), 0, SIGNAL_STACK_BYTES)
    if libc.sigaltstack(ctypes.byref(stack), None) != 0:
        raise OSError(ctypes.get_errno(), "sigaltstack could not install an alternate signal stack")


def _address(buffer: mmap.mmap) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))
