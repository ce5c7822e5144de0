"""The process's one OpenVINO Core.

Every `ov.Core` that loads the CPU plugin makes a plugin object of its own, and that constructor gives
the calling thread a new alternate signal stack, which its destructor unmaps again. Cores that die in
the order they were made leave the thread with an unmapped signal stack, and the next signal handled
on it kills the process (`action_rec.runtime.signal_stack` tells the whole story). So our code makes
one Core per process and never releases it: our plugin's stack stays mapped for as long as anything
can use it, and the CPU plugin, its thread pools and its kernel cache are set up once.

Torch-free: the deployment package uses this module as it is.
"""

from __future__ import annotations

import functools

import openvino as ov

from action_rec.runtime.signal_stack import use_own_signal_stack

__all__ = ["shared_core"]


@functools.cache
def shared_core() -> ov.Core:
    """The Core every compile and query of ours goes through, made on first use and never released."""
    core = ov.Core()
    core.get_versions("CPU")  # loads the CPU plugin now, which sets the thread's signal stack
    use_own_signal_stack()  # rather than the stack of our Core's plugin, or one left unmapped before us
    return core
