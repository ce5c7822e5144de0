"""The alternate signal stack OpenVINO's CPU plugin leaves behind (action_rec/runtime/signal_stack.py).

Each scenario runs in a fresh interpreter: a SIGSEGV there fails one test instead of killing the run,
and no earlier test's Cores or DataLoaders are around. The suite-wide check is conftest.py's
`_signal_stack_stays_mapped`.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sigaltstack checks are Linux's")


def run_python(code: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter with faulthandler on, as pytest runs it."""
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_survived(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}"


# Two Cores whose CPU plugins are made in one order and dropped in the same order: the second one's
# destructor puts back the first one's stack, already unmapped.
FIRST_IN_FIRST_OUT = """
    import gc
    import openvino as ov
    first, second = ov.Core(), ov.Core()
    first.get_versions("CPU"); second.get_versions("CPU")
    del first; gc.collect()
    del second; gc.collect()
"""

# A Python handler runs on the alternate stack (SA_ONSTACK): one child exiting delivers it.
SIGCHLD_ARRIVES = """
    import os, signal
    signal.signal(signal.SIGCHLD, lambda *_: None)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
"""


def test_own_stack_replaces_one_that_openvino_left_unmapped():
    result = run_python(
        FIRST_IN_FIRST_OUT
        + """
    from action_rec.runtime.signal_stack import signal_stack_state, use_own_signal_stack
    before = signal_stack_state()
    use_own_signal_stack()
    print(before, signal_stack_state())
    """
        + SIGCHLD_ARRIVES
    )
    assert_survived(result)
    before, after = result.stdout.split()
    assert before in ("mapped", "unmapped") and after == "ours"


def test_cores_made_later_put_our_stack_back():
    """Our stack, set after the shared Core is made, is what a later Core's destructor restores."""
    result = run_python(
        """
    import gc
    import openvino as ov
    from action_rec.runtime.openvino_core import shared_core
    from action_rec.runtime.signal_stack import signal_stack_state
    shared_core()
    states = [signal_stack_state()]
    other = ov.Core(); other.get_versions("CPU")
    states.append(signal_stack_state())
    del other; gc.collect()
    states.append(signal_stack_state())
    print(*states)
    """
        + SIGCHLD_ARRIVES
    )
    assert_survived(result)
    assert result.stdout.split() == ["ours", "mapped", "ours"]


def test_dataloader_workers_end_cleanly_after_export_and_quantization(tmp_path):
    """The crash's own setting: OpenVINO and NNCF ran, then a DataLoader's workers (forked and spawned)
    shut down in this process, as `train.py --workers N` after an export or an evaluation does."""
    result = run_python(
        f"""
    import gc
    import numpy as np
    import torch
    from torch.utils.data import DataLoader
    from action_rec.export.onnx_export import export_onnx
    from action_rec.export.openvino_ir import convert_onnx
    from action_rec.export.quantize import quantize_int8
    from action_rec.runtime.compile import available_hints, compile_with_hint
    from action_rec.runtime.signal_stack import signal_stack_state

    model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3, padding=1), torch.nn.ReLU()).eval()
    ir = convert_onnx(export_onnx(model, r"{tmp_path / "m.onnx"}", (1, 3, 4, 16, 16)))
    clips = [torch.rand(3, 4, 16, 16) for _ in range(4)]
    int8, _ = quantize_int8(ir, clips, subset_size=4)
    for hint in available_hints():
        for network in (ir, int8):
            compiled = compile_with_hint(network, hint)
            compiled(np.zeros((1, 3, 4, 16, 16), np.float32))
            del compiled
    gc.collect()
    print(signal_stack_state())
    for context in ("fork", "spawn"):
        loader = DataLoader(list(range(8)), batch_size=2, num_workers=2, multiprocessing_context=context)
        assert [batch.tolist() for batch in loader][-1] == [6, 7]
        del loader; gc.collect()
    """
    )
    assert_survived(result)
    assert result.stdout.split()[-1] == "ours"
