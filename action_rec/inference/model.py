"""An exported IR with its metadata: read, checked against each other, compiled for CPU."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from action_rec.errors import UserError
from action_rec.export.metadata import MetadataError, read_metadata, scores_to_probabilities
from action_rec.export.openvino_ir import compile_ir
from action_rec.export.runtime import hint_config

__all__ = ["ModelError", "ExportedModel"]

LATENCIES_KEPT = 10_000
_ELEMENT_TYPES = {"f32": ov.Type.f32, "u8": ov.Type.u8}


class ModelError(UserError):
    """An IR that cannot be read or does not match its metadata; the message names the file."""


class ExportedModel:
    """`model.xml` + `model.json`, compiled: `probabilities(clip) -> C` for one clip in the IR's format.

    `device` is an OpenVINO device ("CPU" by default); `threads` 0 uses every core; `precision` is
    the precision hint: "default" (OpenVINO's own choice, what users' programs get: bf16 on CPUs that
    have it), "f32" (what export verified to 1e-4) or "bf16". A hint the CPU lacks is a HintError.
    `config`, when given, goes to OpenVINO as it is instead of those settings (`{}`: OpenVINO's
    defaults, as a plain client compiles; the benchmark measures both).
    """

    def __init__(
        self,
        model_xml: str | Path,
        device: str = "CPU",
        threads: int = 0,
        precision: str = "default",
        config: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(model_xml)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such model file")
        try:
            self.meta: dict[str, Any] = read_metadata(self.path)
        except MetadataError as exc:
            raise ModelError(str(exc)) from None
        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
        except RuntimeError as exc:
            raise ModelError(f"{self.path}: not a readable OpenVINO IR: {str(exc).splitlines()[0]}") from None
        self._check(model)
        if config is not None:
            self.compiled = core.compile_model(model, device, config)
        else:
            hint = hint_config(precision, device, core).get("INFERENCE_PRECISION_HINT", "")
            self.compiled = compile_ir(model, device, threads=threads, precision=hint, core=core)
        self._request = self.compiled.create_infer_request()
        # The most recent latencies only: a recognizer may run for days, and nothing may grow.
        self.latencies_ms: deque[float] = deque(maxlen=LATENCIES_KEPT)
        self.inferences = 0

    def _check(self, model: ov.Model) -> None:
        meta_json = self.path.with_suffix(".json").name
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ModelError(
                f"{self.path}: expected one input and one output, the IR has "
                f"{len(model.inputs)} and {len(model.outputs)}"
            )
        inp, out = model.inputs[0], model.outputs[0]
        want_in, want_out = list(self.meta["input"]["shape"]), [1, len(self.class_names)]
        got_in = list(inp.get_partial_shape().to_shape()) if inp.get_partial_shape().is_static else None
        if got_in != want_in:
            raise ModelError(
                f"{self.path}: IR input shape {got_in} does not match {meta_json} "
                f"(input.shape {want_in}); the metadata belongs to another export"
            )
        want_type = _ELEMENT_TYPES.get(self.meta["input"].get("element_type", "f32"))
        if want_type is not None and inp.get_element_type() != want_type:
            raise ModelError(
                f"{self.path}: IR input type {inp.get_element_type().get_type_name()} does not "
                f"match {meta_json} (input.element_type {self.meta['input']['element_type']})"
            )
        got_out = list(out.get_partial_shape().to_shape()) if out.get_partial_shape().is_static else None
        if got_out != want_out:
            raise ModelError(
                f"{self.path}: IR output shape {got_out} does not match the "
                f"{len(self.class_names)} class names in {meta_json}"
            )

    @property
    def class_names(self) -> list[str]:
        return list(self.meta["class_names"])

    @property
    def input(self) -> dict[str, Any]:
        return self.meta["input"]

    def frame_step(self, source_fps: float | None) -> float:
        """Source frames between two sampled frames: `fps / target_fps`, or the frame interval."""
        target = self.input.get("target_fps")
        if target and source_fps and source_fps > 0:
            return max(source_fps / float(target), 1.0)
        return float(self.input["frame_interval"])

    def probabilities(self, clip: np.ndarray) -> np.ndarray:
        """One clip in the IR's input format -> class probabilities `C`; records the latency."""
        start = time.perf_counter()
        scores = self._request.infer({0: clip}, share_inputs=True)[0]
        self.latencies_ms.append((time.perf_counter() - start) * 1000.0)
        self.inferences += 1
        return scores_to_probabilities(scores, self.meta["output"]["softmax_scale"])[0]
