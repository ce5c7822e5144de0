"""The exported model's contract: what goes into the IR, what comes out, and the file that says so
(written here; `action_rec.runtime.metadata` reads and checks it wherever a model runs).

An IR alone is a tensor-in, tensor-out function; a client also needs the class names, how the frames
were sampled and cropped, and which of the three input formats the IR was built for. All of it goes
into `<model>.json` beside `<model>.xml`, so a client (our demo, or anyone's) needs nothing else.

Input formats (`--input-format`), all one clip of `clip_len` frames, centre-cropped to `size`:

- ``rgb255`` (default): float32 `1 x 3 x T x H x W`, planar RGB, raw 0-255 pixel values; the IR
  subtracts the mean and divides by the std itself. This is the original toolkit's contract (its Model
  Optimizer run had `--mean_values/--scale_values`) and the one Open Model Zoo demos feed, so our IRs
  are drop-in replacements; a client cannot get the normalization wrong, and OpenVINO folds it into
  the first convolution, so it costs nothing.
- ``normalized``: float32 `1 x 3 x T x H x W`, RGB already normalized with the template's mean/std:
  exactly the PyTorch model's input (what the seed README described).
- ``bgr8``: uint8 `1 x T x H x W x 3`, interleaved BGR as OpenCV decodes camera frames; OpenVINO's
  PrePostProcessor in the IR converts to float, swaps to RGB, normalizes and transposes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import action_rec
from action_rec.fileio import atomic_write
from action_rec.runtime.metadata import DEFAULT_INPUT_FORMAT, INPUT_FORMATS, MetadataError, input_shape
from action_rec.templates import Template

# DEFAULT_INPUT_FORMAT and INPUT_FORMATS stay importable from here for export's command line.

__all__ = ["DEFAULT_INPUT_FORMAT", "INPUT_FORMATS", "FORMAT_VERSION", "build_metadata", "write_metadata"]

FORMAT_VERSION = 1

_INPUT_DOC = {
    "rgb255": "float32 planar RGB, raw pixel values 0-255; the IR normalizes with mean/std itself",
    "normalized": "float32 planar RGB, already normalized: (pixel - mean) / std on the 0-255 scale",
    "bgr8": "uint8 interleaved BGR frames as OpenCV decodes them; the IR converts and normalizes",
}


def build_metadata(
    template: Template,
    class_names: list[str],
    *,
    input_format: str,
    precision: str,
    output_kind: str,
    softmax_scale: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe one exported IR. `output_kind` is "cosine" (angular head) or "logits" (linear head)."""
    if input_format not in INPUT_FORMATS:
        raise MetadataError(
            f"unknown input format '{input_format}', expected one of {', '.join(INPUT_FORMATS)}"
        )
    inp = template.input
    bgr = input_format == "bgr8"
    meta = {
        "format_version": FORMAT_VERSION,
        "exported_by": f"action_rec {action_rec.__version__}",
        "model_name": template.name,
        "architecture": template.model.architecture,
        "precision": precision,
        "class_names": list(class_names),
        "num_classes": len(class_names),
        "input": {
            "name": "input",
            "format": input_format,
            "description": _INPUT_DOC[input_format],
            "shape": input_shape(inp.clip_len, inp.size, input_format),
            "layout": "NTHWC" if bgr else "NCTHW",
            "element_type": "u8" if bgr else "f32",
            "channel_order": "BGR" if bgr else "RGB",
            "normalized_in_model": input_format != "normalized",
            "clip_len": inp.clip_len,
            "frame_interval": inp.frame_interval,
            "target_fps": inp.target_fps,
            "size": inp.size,
            "resize_short": inp.resize_short,
            "crop": "center",
            "mean": list(inp.mean),
            "std": list(inp.std),
        },
        "output": {
            "name": "output",
            "shape": [1, len(class_names)],
            "kind": output_kind,
            "softmax_scale": float(softmax_scale),
            "probabilities": "softmax(softmax_scale * output)",
        },
    }
    if extra:
        meta.update(extra)
    return meta


def write_metadata(path: str | Path, meta: dict[str, Any]) -> Path:
    """Write the metadata JSON atomically."""
    path = atomic_write(path, json.dumps(meta, indent=2) + "\n")
    return path
