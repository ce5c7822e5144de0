"""Export variants (FP32, FP16, INT8 IRs): the same steps for each, written once.

    build (in memory, in the export's input format) -> save (.xml + .bin) -> compile the saved file under
    every precision hint this CPU has (OpenVINO's defaults, f32, bf16) -> compare with PyTorch on clips

A variant that does not compile under one of the hints fails the export: users' programs compile with
OpenVINO's defaults, which on a CPU with bfloat16 units are not the f32 that verification asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from torch import nn

from action_rec.errors import UserError
from action_rec.export.openvino_ir import save_ir
from action_rec.export.verify import compare_on_clips
from action_rec.runtime.compile import CompileError, compile_with_hint
from action_rec.runtime.openvino_core import shared_core

__all__ = ["Variant", "VariantCompileError", "realize_variant", "hint_label"]


class VariantCompileError(UserError):
    """An exported IR that OpenVINO cannot compile under one of the settings users run it with."""


@dataclass
class Variant:
    """One IR of the export. `file` is its name in the output directory (None: measured, not kept)."""

    name: str  # FP32 | FP16 | INT8
    model: ov.Model
    meta: dict[str, Any]
    file: str | None
    fp16_weights: bool = False
    compiled: dict[str, ov.CompiledModel] = field(default_factory=dict)  # hint -> compiled model
    diffs: dict[str, dict[str, float]] = field(default_factory=dict)  # hint -> clip -> max prob diff
    execution: dict[str, str] = field(default_factory=dict)  # hint -> precision it executes in


def hint_label(hint: str, execution: str) -> str:
    """`default (bf16)`, `f32`: what a table column ran."""
    return f"default ({execution})" if hint == "default" else hint


def realize_variant(
    variant: Variant,
    out_dir: Path,
    hints: list[str],
    model: nn.Module,
    clips: dict[str, np.ndarray],
    log: Callable[[str], Any],
    core: ov.Core | None = None,
) -> Variant:
    """Save `variant` (a measured-only one into a subdirectory), compile the saved file under each of
    `hints` and compare each compiled model with PyTorch on `clips`; fills compiled/diffs/execution."""
    core = core or shared_core()
    folder = out_dir if variant.file else out_dir / variant.name.lower()
    folder.mkdir(parents=True, exist_ok=True)
    xml = save_ir(variant.model, folder / (variant.file or "model.xml"), fp16=variant.fp16_weights)
    for hint in hints:
        try:
            compiled = compile_with_hint(xml, hint, core=core)
        except CompileError as exc:
            raise VariantCompileError(
                f"the {variant.name} IR does not compile under OpenVINO's {hint} settings, so users' programs "
                f"could not load it; nothing was written ({exc})"
            ) from None
        variant.compiled[hint] = compiled
        variant.execution[hint] = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        variant.diffs[hint] = compare_on_clips(model, compiled, clips, variant.meta)
    log(
        f"{variant.name} IR compiles with "
        + ", ".join(hint_label(h, variant.execution[h]) for h in hints)
        + "; largest class-probability difference from PyTorch: "
        + "; ".join(
            f"{hint_label(h, variant.execution[h])} "
            + ", ".join(f"{clip} {d:.2e}" for clip, d in variant.diffs[h].items())
            for h in hints
        )
    )
    return variant
