"""INT8 post-training quantization with NNCF on a few hundred of the user's own clips.

The FP32 OpenVINO model (normalized-RGB input, before any input-format preprocessing is added) is
calibrated on normalized clips; the preprocessing goes in front afterwards, so every input format
gets the same quantized network.

Two things NNCF does by default give an IR that OpenVINO's CPU plugin cannot compile on CPUs with
bfloat16 units under its default settings (where everything left in float runs in bf16): "No suitable
implementations" at compile time, although the same IR compiles with the f32 hint.
- Depthwise (group) convolutions whose input is quantized asymmetrically: NNCF's mixed preset quantizes
  the h-swish / ReLU outputs feeding S3D's and X3D's depthwise convolutions per channel with a zero
  point, and no bf16-mode kernel takes a zero-pointed u8 input for them. `symmetric_depthwise_inputs`
  makes exactly those quantizers symmetric (signed, no zero point); every other activation keeps the
  mixed preset's asymmetric range.
- Element-wise Add / Multiply of two feature maps of different shapes (X3D's global path diffused into
  every position, the squeeze-excitation scaling): with both inputs quantized the bf16-mode eltwise
  has no implementation either. They are kept in float (an NNCF ignored scope); they are a small share
  of the time.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import torch

from action_rec.runtime.openvino_core import shared_core
from action_rec.runtime.signal_stack import use_own_signal_stack

__all__ = ["quantize_int8", "symmetric_depthwise_inputs", "broadcast_eltwise_nodes"]


def broadcast_eltwise_nodes(model: ov.Model) -> list[str]:
    """Names of the Add / Multiply nodes whose two inputs are computed (not constants) and of
    different shapes (one is broadcast over the other)."""
    names = []
    for node in model.get_ordered_ops():
        if node.get_type_name() not in ("Add", "Multiply"):
            continue
        inputs = [node.input_value(i) for i in range(node.get_input_size())]
        if any(i.get_node().get_type_name() == "Constant" for i in inputs):
            continue
        if len({str(i.get_partial_shape()) for i in inputs}) > 1:
            names.append(node.get_friendly_name())
    return names


def symmetric_depthwise_inputs(model: ov.Model) -> int:
    """Make every activation quantizer that feeds a GroupConvolution symmetric, in place: the range
    `[lo, hi]` (per channel or per tensor) becomes `[-a, a * 127/128]` with `a = max(|lo|, |hi|)`, the
    signed 8-bit grid without zero point. Quantizers whose range is already non-negative are left
    alone (unsigned, zero point 0). Returns how many were changed."""
    changed = 0
    for node in model.get_ordered_ops():
        if (
            node.get_type_name() != "FakeQuantize"
            or node.input_value(0).get_node().get_type_name() == "Constant"
        ):
            continue
        if not any(
            t.get_node().get_type_name() == "GroupConvolution" for t in node.output(0).get_target_inputs()
        ):
            continue
        low, high, out_low, out_high = (node.input_value(i).get_node().get_data() for i in range(1, 5))
        if (low >= 0).all() or not (np.array_equal(low, out_low) and np.array_equal(high, out_high)):
            continue
        half = node.get_attributes()["levels"] // 2
        amplitude = np.maximum(np.abs(low), np.abs(high)).astype(np.float32)
        new_low = ops.constant(-amplitude).output(0)
        new_high = ops.constant(amplitude * (half - 1) / half).output(0)
        for index, value in ((1, new_low), (2, new_high), (3, new_low), (4, new_high)):
            node.input(index).replace_source_output(value)
        changed += 1
    return changed


def quantize_int8(
    model: ov.Model, clips: Iterable[torch.Tensor], subset_size: int = 300, preset: str = "mixed"
) -> tuple[ov.Model, list[str]]:
    """Quantize `model` with NNCF so that it compiles under every CPU precision setting (see the module
    docstring). `clips` yields normalized `3 x T x H x W` (or `1 x 3 x T x H x W`) tensors; at most
    `subset_size` are used. Returns the quantized model and the names of the nodes kept in float.

    Presets: "mixed" (default: symmetric weights, asymmetric activations, which suits h-swish outputs
    that dip below zero) or "performance" (symmetric everywhere, at some risk to accuracy: compare the
    accuracy table export prints)."""
    import nncf

    def to_input(clip: torch.Tensor) -> np.ndarray:
        clip = clip if clip.dim() == 5 else clip[None]
        return np.ascontiguousarray(clip.numpy(), dtype=np.float32)

    kept_float = broadcast_eltwise_nodes(model)
    shared_core()  # NNCF makes and drops Cores of its own: ours first, so theirs nest inside it
    quantized = nncf.quantize(
        model,
        nncf.Dataset(clips, to_input),
        preset={"mixed": nncf.QuantizationPreset.MIXED, "performance": nncf.QuantizationPreset.PERFORMANCE}[
            preset
        ],
        target_device=nncf.TargetDevice.CPU,
        subset_size=subset_size,
        ignored_scope=nncf.IgnoredScope(names=kept_float, validate=False) if kept_float else None,
    )
    use_own_signal_stack()  # NNCF's Cores may have left an unmapped one (action_rec.runtime.signal_stack)
    symmetric_depthwise_inputs(quantized)
    return quantized, kept_float
