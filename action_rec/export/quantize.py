"""INT8 post-training quantization with NNCF on a few hundred of the user's own clips.

The FP32 OpenVINO model (normalized-RGB input, before any input-format preprocessing is added) is
calibrated on normalized clips; the preprocessing goes in front afterwards, so every input format
gets the same quantized network.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import openvino as ov
import torch

__all__ = ["quantize_int8"]


def quantize_int8(
    model: ov.Model, clips: Iterable[torch.Tensor], subset_size: int = 300, preset: str = "mixed"
) -> ov.Model:
    """Quantize `model` with NNCF. `clips` yields normalized `3 x T x H x W` (or `1 x 3 x T x H x W`)
    tensors; at most `subset_size` are used.

    Presets: "mixed" (default: symmetric weights, asymmetric activations, which suits h-swish outputs
    that dip below zero; NNCF leaves some depthwise convolutions in f32) or "performance" (symmetric
    everywhere: every depthwise convolution runs in INT8, about 10 % faster for X3D on CPU, at some
    risk to accuracy: compare the accuracy table export prints)."""
    import nncf

    def to_input(clip: torch.Tensor) -> np.ndarray:
        clip = clip if clip.dim() == 5 else clip[None]
        return np.ascontiguousarray(clip.numpy(), dtype=np.float32)

    dataset = nncf.Dataset(clips, to_input)
    return nncf.quantize(
        model,
        dataset,
        preset={"mixed": nncf.QuantizationPreset.MIXED, "performance": nncf.QuantizationPreset.PERFORMANCE}[
            preset
        ],
        target_device=nncf.TargetDevice.CPU,
        subset_size=subset_size,
    )
