"""An exported IR with its metadata: read, checked against each other, compiled, run on one clip."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from action_rec.runtime.compile import compile_with_hint, latency_config
from action_rec.runtime.errors import UserError
from action_rec.runtime.labels import scores_to_probabilities
from action_rec.runtime.metadata import MetadataError, check_model, read_metadata
from action_rec.runtime.openvino_core import shared_core
from action_rec.runtime.window import frame_step

__all__ = ["ModelError", "ExportedModel", "clip_probabilities"]

LATENCIES_KEPT = 10_000


class ModelError(UserError):
    """An IR that cannot be read or does not match its metadata; the message names the file."""


class ExportedModel:
    """`model.xml` + `model.json`, compiled: `probabilities(clip) -> C` for one clip in the IR's format.

    `device` is an OpenVINO device ("CPU" by default); `precision` is the precision hint: "default"
    (OpenVINO's own choice, what users' programs get: bf16 on CPUs that have it), "f32" (what export
    verified to 1e-4) or "bf16"; a hint the CPU lacks is a HintError. On a CPU the model is compiled
    for one live stream with `threads` threads (0: all cores); `config`, when given, replaces those
    settings (`{}`: only the hint, as a plain client compiles; the benchmark measures both).
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
        core = shared_core()
        try:
            self.meta: dict[str, Any] = read_metadata(self.path)
            model = core.read_model(str(self.path))
            check_model(model, self.meta, self.path)
        except MetadataError as exc:
            raise ModelError(str(exc)) from None
        except RuntimeError as exc:
            raise ModelError(f"{self.path}: not a readable OpenVINO IR: {str(exc).splitlines()[0]}") from None
        if config is None:
            config = latency_config(threads) if device.upper().startswith("CPU") else {}
        self.compiled = compile_with_hint(model, precision, device, extra_config=config, core=core)
        self._request = self.compiled.create_infer_request()
        self._pending: tuple[ov.InferRequest, float] | None = None  # a clip `start` began, its start time
        # The most recent latencies only: a recognizer may run for days, and nothing may grow.
        self.latencies_ms: deque[float] = deque(maxlen=LATENCIES_KEPT)
        self.inferences = 0

    @property
    def class_names(self) -> list[str]:
        return list(self.meta["class_names"])

    @property
    def input(self) -> dict[str, Any]:
        return self.meta["input"]

    def frame_step(self, source_fps: float | None) -> float:
        """Source frames between two sampled frames: `fps / target_fps`, or the frame interval."""
        return frame_step(self.input, source_fps)

    def probabilities(self, clip: np.ndarray) -> np.ndarray:
        """One clip in the IR's input format -> class probabilities `C`; records the latency."""
        start = time.perf_counter()
        scores = self._request.infer({0: clip}, share_inputs=True)[0]
        return self._finished(start, scores)

    def start(self, clip: np.ndarray) -> None:
        """Start one clip without waiting for it (a live source must not wait for the model): `done()`
        says when `collect()` has its probabilities. One clip at a time."""
        request = self._pending[0] if self._pending else self.compiled.create_infer_request()
        request.start_async({0: clip})
        self._pending = (request, time.perf_counter())

    def done(self) -> bool:
        """Whether the clip `start` began has its result (False when none was started)."""
        return self._pending is not None and self._pending[0].wait_for(0)

    def collect(self) -> np.ndarray:
        """The class probabilities `C` of the clip `start` began (waits for it); records the latency."""
        if self._pending is None:
            raise RuntimeError("collect() without start()")
        request, started = self._pending
        request.wait()
        return self._finished(started, request.get_output_tensor(0).data)

    def _finished(self, started: float, scores: np.ndarray) -> np.ndarray:
        self.latencies_ms.append((time.perf_counter() - started) * 1000.0)
        self.inferences += 1
        return scores_to_probabilities(scores, self.meta["output"]["softmax_scale"])[0]


def clip_probabilities(
    infer: ov.CompiledModel | ov.InferRequest, clip_input: np.ndarray, meta: dict[str, Any]
) -> np.ndarray:
    """Class probabilities `1 x C` of one clip already in the IR's input format (`frames`' converters
    make it), by the metadata's scale: the step every accuracy loop over an IR repeats."""
    scores = infer.infer({0: clip_input})[0] if isinstance(infer, ov.InferRequest) else infer(clip_input)[0]
    return scores_to_probabilities(np.asarray(scores), meta["output"]["softmax_scale"])
