"""How an exported model is compiled: OpenVINO's defaults, or an explicit execution precision.

Users' programs (benchmark_app, Open Model Zoo demos, their own code) call `compile_model` with no
configuration. On a CPU with bfloat16 units that runs an FP32 IR in bf16, and some IRs that compile in
f32 do not compile there at all. So every tool of ours names the setting it measured with one of
`HINTS`: "default" (no configuration: what users get), "f32" or "bf16" (the INFERENCE_PRECISION_HINT),
and export checks each IR it writes under every hint this CPU has. `compile_with_hint` is the one
place where our code compiles a model: export checks, eval.py, the demo, the benches and the deployed
script all go through it (and through the process's one Core).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import openvino as ov

from action_rec.runtime.errors import UserError
from action_rec.runtime.openvino_core import shared_core

__all__ = [
    "HINTS",
    "HintError",
    "CompileError",
    "cpu_capabilities",
    "hints_for",
    "available_hints",
    "hint_config",
    "latency_config",
    "throughput_config",
    "compile_with_hint",
]

HINTS = ("default", "f32", "bf16")


class HintError(UserError):
    """A precision hint that this CPU cannot run."""


class CompileError(UserError):
    """An IR that OpenVINO cannot compile under a setting; the message names the file and setting,
    `reason` is OpenVINO's own last line (a benchmark's table cell shows just that)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def cpu_capabilities(core: ov.Core | None = None) -> list[str]:
    """What the CPU plugin can execute here: "FP32", "BF16", "INT8", ..."""
    return list((core or shared_core()).get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def hints_for(capabilities: list[str]) -> list[str]:
    """The hints a CPU with these capabilities runs: always default and f32, bf16 where it lists BF16."""
    return [hint for hint in HINTS if hint != "bf16" or "BF16" in capabilities]


def available_hints(device: str = "CPU", core: ov.Core | None = None) -> list[str]:
    """The hints `device` can run: always default and f32, bf16 where the CPU has bfloat16 units."""
    if not device.upper().startswith("CPU"):
        return ["default", "f32"]
    return hints_for(cpu_capabilities(core))


def hint_config(hint: str, device: str = "CPU", core: ov.Core | None = None) -> dict[str, Any]:
    """The compile configuration for `hint`: nothing for "default", else the precision hint; raises
    HintError for an unknown hint or one this CPU lacks."""
    if hint not in HINTS:
        raise HintError(f"unknown precision hint '{hint}', expected one of {', '.join(HINTS)}")
    if hint == "default":
        return {}
    if hint not in available_hints(device, core):
        raise HintError(
            f"this {device} has no {hint} execution (its capabilities: "
            f"{', '.join(cpu_capabilities(core))}); use the default or f32 precision hint"
        )
    return {"INFERENCE_PRECISION_HINT": hint}


def latency_config(threads: int = 0, streams: int = 1) -> dict[str, Any]:
    """CPU settings for one live stream: latency mode, `streams` streams, `threads` (0: all cores)."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": str(streams)}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


def throughput_config(threads: int = 0, streams: int = 0) -> dict[str, Any]:
    """CPU settings for many live streams at once: throughput mode, `streams` parallel inferences
    (0: OpenVINO's choice for this CPU), `threads` in all (0: all cores)."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": "THROUGHPUT"}
    if streams:
        config["NUM_STREAMS"] = str(streams)
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


def compile_with_hint(
    model: ov.Model | str | Path,
    hint: str = "default",
    device: str = "CPU",
    *,
    extra_config: dict[str, Any] | None = None,
    core: ov.Core | None = None,
) -> ov.CompiledModel:
    """Compile `model` (in memory or a file: .xml or .onnx) under `hint`, plus `extra_config`
    (threads, streams, ...). A model that does not compile raises CompileError naming it and the hint."""
    core = core or shared_core()
    config = {**hint_config(hint, device, core), **(extra_config or {})}
    name = model.get_friendly_name() if isinstance(model, ov.Model) else str(model)
    try:
        if not isinstance(model, ov.Model):
            model = core.read_model(str(model))
        return core.compile_model(model, device, config)
    except RuntimeError as exc:
        lines = [
            line for line in str(exc).splitlines() if line.strip() and not line.startswith("Exception from")
        ]
        reason = lines[-1].strip() if lines else type(exc).__name__
        raise CompileError(
            f"{name}: OpenVINO cannot compile it for {device} with {hint} settings: {reason}"
            f"{_isa_cap_note(device)}",
            reason,
        ) from None


def _isa_cap_note(device: str) -> str:
    """Why a CPU compile may fail in this process alone: oneDNN's instruction-set cap in the environment
    (set to make PyTorch reproducible, say). OpenVINO's CPU plugin obeys it too, yet picks bf16 by the
    CPU's own flags: with ``ONEDNN_MAX_CPU_ISA=AVX2`` on a bf16 CPU an FP32 IR's pooling has no kernel
    under the default and bf16 settings (it compiles with f32). Empty when no cap is set."""
    if not device.upper().startswith(("CPU", "AUTO", "HETERO", "MULTI")):
        return ""
    caps = [
        f"{var}={os.environ[var]}"
        for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
        if os.environ.get(var)
    ]
    if not caps:
        return ""
    return (
        f" ({' and '.join(caps)} is set in this environment: OpenVINO's CPU plugin caps its kernels by it "
        "as well, while it still picks bf16 from the CPU's own flags; unset it where OpenVINO runs)"
    )
