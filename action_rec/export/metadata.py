"""The exported model's contract: what goes into the IR, what comes out, and the file that says so.

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

import numpy as np

import action_rec
from action_rec.errors import UserError
from action_rec.fileio import atomic_write

__all__ = [
    "INPUT_FORMATS",
    "DEFAULT_INPUT_FORMAT",
    "MetadataError",
    "build_metadata",
    "write_metadata",
    "read_metadata",
    "metadata_path",
    "input_shape",
    "frames_to_input",
    "dataset_clip_to_input",
    "scores_to_probabilities",
]

FORMAT_VERSION = 1
INPUT_FORMATS = ("rgb255", "normalized", "bgr8")
DEFAULT_INPUT_FORMAT = "rgb255"

_INPUT_DOC = {
    "rgb255": "float32 planar RGB, raw pixel values 0-255; the IR normalizes with mean/std itself",
    "normalized": "float32 planar RGB, already normalized: (pixel - mean) / std on the 0-255 scale",
    "bgr8": "uint8 interleaved BGR frames as OpenCV decodes them; the IR converts and normalizes",
}


class MetadataError(UserError):
    """A metadata file that is missing, unreadable, or does not describe the IR beside it."""


def metadata_path(model_xml: str | Path) -> Path:
    """`model.xml` -> `model.json` (every IR has its own metadata file beside it)."""
    return Path(model_xml).with_suffix(".json")


def input_shape(clip_len: int, size: int, input_format: str) -> list[int]:
    """The IR's input shape: N C T H W for the planar float formats, N T H W C for bgr8."""
    if input_format == "bgr8":
        return [1, clip_len, size, size, 3]
    return [1, 3, clip_len, size, size]


def build_metadata(
    template: dict[str, Any],
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
    inp = template["input"]
    bgr = input_format == "bgr8"
    meta = {
        "format_version": FORMAT_VERSION,
        "exported_by": f"action_rec {action_rec.__version__}",
        "model_name": template["name"],
        "architecture": template["model"]["architecture"],
        "precision": precision,
        "class_names": list(class_names),
        "num_classes": len(class_names),
        "input": {
            "name": "input",
            "format": input_format,
            "description": _INPUT_DOC[input_format],
            "shape": input_shape(inp["clip_len"], inp["size"], input_format),
            "layout": "NTHWC" if bgr else "NCTHW",
            "element_type": "u8" if bgr else "f32",
            "channel_order": "BGR" if bgr else "RGB",
            "normalized_in_model": input_format != "normalized",
            "clip_len": inp["clip_len"],
            "frame_interval": inp["frame_interval"],
            "target_fps": inp["target_fps"],
            "size": inp["size"],
            "resize_short": inp["resize_short"],
            "crop": "center",
            "mean": list(inp["mean"]),
            "std": list(inp["std"]),
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


def read_metadata(model_xml: str | Path) -> dict[str, Any]:
    """Read and check the metadata of `model_xml`; raises MetadataError naming the file."""
    path = metadata_path(model_xml)
    if not path.is_file():
        raise MetadataError(
            f"{path}: metadata file not found beside {Path(model_xml).name}; re-export the model"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MetadataError(f"{path}: cannot read metadata: {exc}") from None
    required = {"class_names": list, "input": dict, "output": dict}
    for key, kind in required.items():
        if not isinstance(meta.get(key), kind):
            raise MetadataError(f"{path}: missing or malformed key '{key}'")
    for key in ("format", "shape", "clip_len", "frame_interval", "size", "resize_short", "mean", "std"):
        if key not in meta["input"]:
            raise MetadataError(f"{path}: missing key 'input.{key}'")
    if meta["input"]["format"] not in INPUT_FORMATS:
        raise MetadataError(f"{path}: unknown input format '{meta['input']['format']}'")
    if "softmax_scale" not in meta["output"]:
        raise MetadataError(f"{path}: missing key 'output.softmax_scale'")
    return meta


def frames_to_input(frames_rgb: np.ndarray, meta_input: dict[str, Any]) -> np.ndarray:
    """Cropped uint8 RGB frames `T x H x W x 3` -> the IR's input tensor for the metadata's format.

    The reference conversion (tests and verification use it); the live recognizer does the same work
    frame by frame as frames arrive.
    """
    fmt = meta_input["format"]
    if fmt == "bgr8":
        return np.ascontiguousarray(frames_rgb[None, ..., ::-1])
    clip = frames_rgb.astype(np.float32).transpose(3, 0, 1, 2)[None]  # 1 x 3 x T x H x W
    if fmt == "normalized":
        mean = np.asarray(meta_input["mean"], np.float32).reshape(1, 3, 1, 1, 1)
        std = np.asarray(meta_input["std"], np.float32).reshape(1, 3, 1, 1, 1)
        clip = (clip - mean) / std
    return np.ascontiguousarray(clip, dtype=np.float32)


def dataset_clip_to_input(clip: Any, meta_input: dict[str, Any]) -> np.ndarray:
    """A normalized `3 x T x H x W` clip of the data pipeline -> the IR's input tensor (batch 1).

    rgb255 undoes the normalization (the IR does it); bgr8 rounds to whole uint8 pixels first."""
    clip = np.asarray(clip, dtype=np.float32)  # a torch tensor or an array
    clip = clip[0] if clip.ndim == 5 else clip
    fmt = meta_input["format"]
    mean = np.asarray(meta_input["mean"], np.float32).reshape(1, 3, 1, 1, 1)
    std = np.asarray(meta_input["std"], np.float32).reshape(1, 3, 1, 1, 1)
    x = clip[None]
    if fmt == "normalized":
        return np.ascontiguousarray(x, dtype=np.float32)
    pixels = x * std + mean
    if fmt == "bgr8":
        frames = np.clip(np.rint(pixels[0]), 0, 255).astype(np.uint8).transpose(1, 2, 3, 0)
        return frames_to_input(frames, meta_input)
    return np.ascontiguousarray(pixels, dtype=np.float32)


def scores_to_probabilities(scores: np.ndarray, softmax_scale: float) -> np.ndarray:
    """The IR's raw scores `N x C` (cosines or logits) -> class probabilities, as the metadata says."""
    z = np.asarray(scores, np.float64) * softmax_scale
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
