"""Reading `model.json`, the exported model's contract, and checking it against the IR beside it.

An IR alone is a tensor-in, tensor-out function; a client also needs the class names, how the frames
were sampled and cropped, and which input format the IR was built for (`action_rec.export.model_json`
writes it and documents the formats). Everything that runs an exported model reads it here, so a
malformed file is refused with the same one-line message by eval.py, the demo and the deployed script.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from action_rec.runtime.errors import UserError

if TYPE_CHECKING:  # reading model.json needs no OpenVINO (export's command line imports this module)
    import openvino as ov

__all__ = [
    "INPUT_FORMATS",
    "DEFAULT_INPUT_FORMAT",
    "MetadataError",
    "metadata_path",
    "input_shape",
    "read_metadata",
    "check_model",
    "TimelineSettings",
    "timeline_settings",
]

INPUT_FORMATS = ("rgb255", "normalized", "bgr8")
DEFAULT_INPUT_FORMAT = "rgb255"


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
    if not isinstance(meta, dict):
        raise MetadataError(f"{path}: not a JSON object")
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
    timeline_settings(meta, path)  # a malformed calibration is refused here, naming the file
    return meta


@dataclass(frozen=True)
class TimelineSettings:
    """How window scores become a timeline: what `demo.py`, the deployed script and eval_timeline.py
    use unless told otherwise. model.json's `timeline` block holds them when they were calibrated on
    untrimmed recordings (its other keys say on what and for which objective); else these defaults.

    `threshold`: top probability below which a window is "no action" (None: model.json's
    `no_action.threshold`; 0: none); `min_segment_s`: shorter runs do not change the timeline;
    `hysteresis`: the current action stays while within this of the top class; `average`: windows whose
    probabilities are averaged.
    """

    threshold: float | None = None
    min_segment_s: float = 0.5
    hysteresis: float = 0.1
    average: int = 3

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.min_segment_s < 0 or not 0 <= self.hysteresis < 1 or self.average < 1:
            raise ValueError(
                f"bad timeline settings: min_segment_s={self.min_segment_s} (>= 0), "
                f"hysteresis={self.hysteresis} ([0, 1)), average={self.average} (>= 1)"
            )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def timeline_settings(meta: dict[str, Any], where: str | Path = "model.json") -> TimelineSettings:
    """The timeline settings stored in `meta` (its `timeline` block), defaults for those it lacks;
    raises MetadataError naming `where` for a malformed block."""
    block = meta.get("timeline") or {}
    if not isinstance(block, dict):
        raise MetadataError(f"{where}: 'timeline' must be an object")
    known = {k: block[k] for k in ("threshold", "min_segment_s", "hysteresis", "average") if k in block}
    try:
        if "average" in known:
            known["average"] = int(known["average"])
        for key in ("threshold", "min_segment_s", "hysteresis"):
            if known.get(key) is not None:
                known[key] = float(known[key])
        return TimelineSettings(**known)
    except (TypeError, ValueError) as exc:
        raise MetadataError(f"{where}: bad 'timeline' settings: {exc}") from None


def _static(port: ov.Output) -> list[int] | None:
    shape = port.get_partial_shape()
    return list(shape.to_shape()) if shape.is_static else None


def check_model(model: ov.Model, meta: dict[str, Any], model_xml: str | Path) -> None:
    """Refuse (MetadataError) an IR whose input or output does not match `meta`: a model.json copied
    from another export would otherwise feed the model the wrong clips or name the wrong classes."""
    meta_json = metadata_path(model_xml)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise MetadataError(
            f"{model_xml}: expected one input and one output, the IR has "
            f"{len(model.inputs)} and {len(model.outputs)}"
        )
    inp, out = model.inputs[0], model.outputs[0]
    want_in, got_in = list(meta["input"]["shape"]), _static(inp)
    if got_in != want_in:
        raise MetadataError(
            f"{meta_json}: input.shape {want_in} does not match the IR's input shape {got_in}; "
            "the metadata belongs to another export"
        )
    want_type, got_type = meta["input"].get("element_type", "f32"), inp.get_element_type().get_type_name()
    if want_type in ("f32", "u8") and got_type != want_type:
        raise MetadataError(
            f"{meta_json}: input.element_type {want_type} does not match the IR's input type {got_type}"
        )
    classes, got_out = len(meta["class_names"]), _static(out)
    if got_out != [1, classes]:
        raise MetadataError(f"{meta_json}: {classes} class names, but the IR's output shape is {got_out}")
