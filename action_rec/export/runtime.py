"""How an exported model is compiled: OpenVINO's defaults, or an explicit execution precision.

Users' programs (benchmark_app, Open Model Zoo demos, their own code) call `compile_model` with no
configuration. On a CPU with bfloat16 units that runs an FP32 IR in bf16, and some IRs that compile in
f32 do not compile there at all. So every tool of ours names the setting it measured with one of
`HINTS`: "default" (no configuration: what users get), "f32" or "bf16" (the INFERENCE_PRECISION_HINT),
and export checks each IR it writes under every hint this CPU has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openvino as ov

from action_rec.errors import UserError

__all__ = ["HINTS", "HintError", "CompileError", "available_hints", "hint_config", "compile_with_hint"]

HINTS = ("default", "f32", "bf16")


class HintError(UserError):
    """A precision hint that this CPU cannot run."""


class CompileError(UserError):
    """An IR that OpenVINO cannot compile under a setting; the message names the file and setting."""


def available_hints(device: str = "CPU", core: ov.Core | None = None) -> list[str]:
    """The hints `device` can run: always default and f32, bf16 where the CPU has bfloat16 units."""
    core = core or ov.Core()
    hints = ["default", "f32"]
    if device.upper().startswith("CPU") and "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        hints.append("bf16")
    return hints


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
            f"{', '.join((core or ov.Core()).get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))}); "
            "use --precision-hint default or f32"
        )
    return {"INFERENCE_PRECISION_HINT": hint}


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
    core = core or ov.Core()
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
        ) from None
