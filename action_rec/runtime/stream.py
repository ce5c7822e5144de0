"""One stream of the live recognizer: its recognizer, timeline, outputs, events and counters.

The runner (runner.py) feeds it: the capture thread counts frames and stage times, the collector hands
each finished window to `record`, which decides it (labels.ActionRule, through the recognizer), writes
the per-window log, extends the segment timeline and sends a "start" event when a segment has lasted
the minimum length and an "end" event when it closes.
"""

from __future__ import annotations

import json
import queue
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from action_rec.runtime.events import EventBus
from action_rec.runtime.labels import scores_to_probabilities
from action_rec.runtime.model import LATENCIES_KEPT, ExportedModel
from action_rec.runtime.recognizer import Recognizer, WindowJob
from action_rec.runtime.sources import FrameSource

__all__ = ["StreamSettings", "StreamOutputs", "Stream"]


@dataclass(frozen=True)
class StreamSettings:
    """How each stream is recognized; None takes model.json's timeline settings."""

    stride: int = 8
    average: int | None = None
    threshold: float | None = None
    hysteresis: float | None = None
    min_segment_s: float | None = None
    top_k: int = 3
    max_frames: int | None = None
    pace: bool = False  # read a file at its own frame rate and drop stale work, as for a camera


@dataclass(frozen=True)
class StreamOutputs:
    """What one stream writes (each written to a temporary name, renamed into place at the end)."""

    video: Path | None = None  # the annotated video
    log: Path | None = None  # the per-window log, one JSON object per line
    timeline: Path | None = None  # the action segments, JSON


class Stream:
    """One source's state: its recognizer and timeline, its outputs, its counters."""

    def __init__(
        self,
        name: str,
        source: FrameSource,
        model: ExportedModel,
        settings: StreamSettings = StreamSettings(),
        outputs: StreamOutputs = StreamOutputs(),
        show: bool = False,
    ) -> None:
        self.name, self.source, self.settings, self.outputs = name, source, settings, outputs
        self.class_names = model.class_names
        self.softmax_scale = model.meta["output"]["softmax_scale"]
        self.recognizer = Recognizer(
            model,
            source.fps,
            stride=settings.stride,
            average=settings.average,
            threshold=settings.threshold,
            hysteresis=settings.hysteresis,
        )
        self.timeline = self.recognizer.timeline(settings.min_segment_s)
        self.live = source.live or settings.pace
        self.pace = settings.pace and not source.live and bool(source.fps)
        self.draws = show or outputs.video is not None
        self.show = show
        # guarded by the runner's condition
        self.pending: WindowJob | None = None
        self.in_flight = False
        self.capture_done = False
        self.results: dict[int, dict[str, Any]] = {}  # a drawn file: the window results not drawn yet
        self.latest: dict[str, Any] | None = None
        self.canvas: np.ndarray | None = None
        self.error: BaseException | None = None
        self.draw_q: queue.Queue = queue.Queue(maxsize=4)
        self.stats: dict[str, Any] = {
            "frames_read": 0,
            "frames_decoded": 0,
            "frames_drawn": 0,
            "frames_dropped": 0,  # live: frames the draw thread had no time for
            "windows": 0,
            "windows_stale": 0,  # live: windows replaced by a newer one before inference
            "windows_untimed": 0,
            "segments": 0,
        }
        self.stage_s = {"decode": 0.0, "preprocess": 0.0}  # wall time of the capture thread's stages
        self.stage_cpu_s = {"decode": 0.0, "preprocess": 0.0}  # its CPU time
        self.latencies_ms: deque[float] = deque(maxlen=LATENCIES_KEPT)  # inference of one window
        self.delays_ms: deque[float] = deque(maxlen=LATENCIES_KEPT)  # window due -> its result
        self.log_file: TextIO | None = None
        self.events: EventBus | None = None
        self._announced: tuple[str, float] | None = None  # the open segment a "start" was sent for

    # --- collector side -------------------------------------------------------------------------------
    def record(self, job: WindowJob, scores: np.ndarray, latency_ms: float, delay_ms: float) -> None:
        """A finished window: decide, log, extend the timeline, send the events it caused."""
        probs = scores_to_probabilities(scores, self.softmax_scale)[0]
        prediction = self.recognizer.result(job, probs, latency_ms)
        entry = prediction.to_json(self.class_names, self.settings.top_k)
        self.latencies_ms.append(latency_ms)
        self.delays_ms.append(delay_ms)
        closed = prediction.add_to(self.timeline)
        if closed is None:
            self.stats["windows_untimed"] += 1
        else:
            self._send_events(closed, prediction.time_s)
        if self.log_file is not None:
            self.log_file.write(json.dumps(entry) + "\n")
        self.stats["windows"] += 1
        self.latest = entry
        if self.draws and not self.live:
            self.results[entry["frame"]] = entry

    def _send_events(self, closed: list[dict[str, Any]], now_s: float | None) -> None:
        for segment in closed:
            self._end(segment)
        opened = self.timeline.current()
        if opened is not None and (opened["label"], opened["start_s"]) != self._announced:
            self._emit("start", opened, opened["start_s"])
            self._announced = (opened["label"], opened["start_s"])

    def _end(self, segment: dict[str, Any]) -> None:
        if (segment["label"], segment["start_s"]) != self._announced:  # never announced: say both
            self._emit("start", segment, segment["start_s"])
        self._emit("end", segment, segment["end_s"])
        self._announced = None

    def _emit(self, kind: str, segment: dict[str, Any], at_s: float) -> None:
        if self.events is None:
            return
        event = {
            "stream": self.name,
            "event": kind,
            "label": segment["label"],
            "score": segment["score"],
            "start_s": segment["start_s"],
        }
        if kind == "end":
            event["end_s"] = segment["end_s"]
        self.events.emit({**event, "stream_time_s": at_s})

    def finish_timeline(self) -> None:
        """Close the open segment at the end of the stream (its "end" event goes out)."""
        for segment in self.timeline.finish():
            self._end(segment)
        self.stats["segments"] = len(self.timeline.segments)

    def stage_ms(self) -> tuple[float, float, float]:
        """Mean milliseconds: decode per frame read, preprocess per frame read, infer per window."""
        frames = max(1, self.stats["frames_read"])
        infer = float(np.mean(self.latencies_ms)) if self.latencies_ms else 0.0
        return self.stage_s["decode"] * 1e3 / frames, self.stage_s["preprocess"] * 1e3 / frames, infer

    def summary(self) -> dict[str, Any]:
        decode, preprocess, infer = self.stage_ms()
        lat, delays = np.asarray(self.latencies_ms), np.asarray(self.delays_ms)
        return {
            "name": self.name,
            **self.stats,
            "source_drops": getattr(self.source, "drops", 0),
            "decode_ms_per_frame": decode,
            "preprocess_ms_per_frame": preprocess,
            "infer_ms_per_window": infer,
            "decode_cpu_s": self.stage_cpu_s["decode"],
            "preprocess_cpu_s": self.stage_cpu_s["preprocess"],
            "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
            "delay_p50_ms": float(np.percentile(delays, 50)) if delays.size else float("nan"),
            "delay_p99_ms": float(np.percentile(delays, 99)) if delays.size else float("nan"),
            "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}",
        }
