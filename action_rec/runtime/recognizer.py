"""Frames in, labels out: the sliding-window recognizer of the demo, eval tools and deployed script.

Per frame: sampled frames are preprocessed once into the ring buffer (window.py). Every `stride`
source frames the window is stacked and run through the IR; the class probabilities are averaged
over the last `average` windows. Each window gives one entry of the per-window log:

    {"frame": 47, "start_frame": 16, "time_s": 1.567, "label": "wave", "no_action": false,
     "score": 0.91, "top_k": [["wave", 0.91], ["clap", 0.05], ...], "window_label": "wave",
     "window_score": 0.88, "centre_s": 0.8, "latency_ms": 41.2}

`frame` is the 0-based index of the window's last frame (the moment the prediction is available),
`time_s` its time (frame / fps for a file, the stream's own timestamp for a live source). Two levels:

- the decision: `label` (and `no_action`), made once per window by `labels.ActionRule` on the
  probabilities averaged over the last windows, with the previous window's label for hysteresis; it is
  what the overlay shows and what both kinds of segment are made of. `score` is the averaged
  probability of `label` (of the top class for "no action"), `top_k` the averaged probabilities;
- this window alone, before averaging and the rule: `window_label`, `window_score` (its top class).

`centre_s` is the middle of the frames the averaged scores saw: the moment the label describes, which
the segment timeline uses.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from action_rec.runtime.frames import FramePreprocessor
from action_rec.runtime.labels import NO_ACTION, ActionRule
from action_rec.runtime.metadata import timeline_settings
from action_rec.runtime.model import ExportedModel
from action_rec.runtime.segments import TimelineBuilder
from action_rec.runtime.window import ClipWindow, ScoreAverager

__all__ = ["Prediction", "WindowJob", "Recognizer"]


@dataclass
class Prediction:
    """The result of one window."""

    frame: int
    start_frame: int
    time_s: float | None
    window: np.ndarray  # class probabilities of this window, C
    averaged: np.ndarray  # mean over the last windows, C
    latency_ms: float
    action: int | None = None  # the decision (labels.ActionRule), None for no action
    centre_s: float | None = None  # the middle of the frames the averaged scores saw
    stride_s: float | None = None  # the time between two windows: the share of the timeline of one
    reach: tuple[float, float] | None = None  # from the first frame of this window to its last's end
    after_gap: bool = False  # the first window after the source dropped

    def to_json(self, class_names: list[str], top_k: int = 3) -> dict[str, Any]:
        order = np.argsort(-self.averaged)[:top_k]
        best = int(np.argmax(self.window))
        return {
            "frame": self.frame,
            "start_frame": self.start_frame,
            "time_s": None if self.time_s is None else round(self.time_s, 3),
            "label": NO_ACTION if self.action is None else class_names[self.action],
            "no_action": self.action is None,
            "score": round(self.score, 4),
            "top_k": [[class_names[i], round(float(self.averaged[i]), 4)] for i in order],
            "window_label": class_names[best],
            "window_score": round(float(self.window[best]), 4),
            "centre_s": None if self.centre_s is None else round(self.centre_s, 3),
            "latency_ms": round(self.latency_ms, 2),
        }

    @property
    def score(self) -> float:
        """The averaged probability of the decided action (of the top class for no action)."""
        return float(self.averaged[self.action] if self.action is not None else self.averaged.max())

    def cell(self) -> tuple[float, float] | None:
        """The stretch of time this window's label stands for in the timeline: one stride around
        `centre_s` (None when the source has no time)."""
        if self.centre_s is None or not self.stride_s:
            return None
        return self.centre_s - self.stride_s / 2, self.centre_s + self.stride_s / 2

    def add_to(self, timeline: TimelineBuilder) -> list[dict[str, Any]] | None:
        """Add this window's decision to `timeline`; returns the segments that closed, None (nothing
        added) when the source has no time."""
        cell = self.cell()
        if cell is None:
            return None
        return timeline.add(*cell, self.action, self.score, self.reach, self.after_gap)


@dataclass
class WindowJob:
    """A due window, from the capture side to the inference side (which may be another thread)."""

    index: int  # the window's last source frame
    start_frame: int
    clip: np.ndarray
    end_s: float | None  # time of the window's last frame
    centre_s: float | None  # the middle of the time its frames span
    stride_s: float | None  # time between two windows
    reach: tuple[float, float] | None  # from its first frame to the end of its last
    fresh: bool = False  # the first window after a gap: the score average starts over
    due: float = 0.0  # perf_counter() when the window was complete: how stale its result is


class Recognizer:
    """The per-stream state. `add_frame` (cheap, capture side) and `infer` (the IR) can run on
    different threads; `process` does both in one call.

    `threshold` overrides the no-action threshold of model.json (0 disables it); `hysteresis` keeps the
    previous window's action while it is that close to the top class (labels.py); `average` windows'
    probabilities are averaged. Each left at None takes model.json's timeline settings (calibrated on
    recordings, or the defaults: metadata.TimelineSettings). Frame times are `index / fps` unless
    `add_frame` is given the source's own timestamp.
    """

    def __init__(
        self,
        model: ExportedModel,
        source_fps: float | None = None,
        stride: int = 8,
        average: int | None = None,
        threshold: float | None = None,
        hysteresis: float | None = None,
    ) -> None:
        self.model = model
        self.fps = source_fps
        self.stride = stride
        self.settings = stored = timeline_settings(model.meta, getattr(model, "path", "model.json"))
        average = stored.average if average is None else average
        hysteresis = stored.hysteresis if hysteresis is None else hysteresis
        if threshold is None:
            threshold = stored.threshold  # None still: model.json's no_action.threshold
        self.average = average
        self.preprocess = FramePreprocessor(model.input)
        self.rule = ActionRule.from_metadata(model.meta, threshold, hysteresis)
        self._action: int | None = None  # inference side: the previous window's decision
        self.averager = ScoreAverager(average)
        self._centres: deque[float] = deque(maxlen=average)  # inference side: centres of averaged windows
        self.restart(0)
        self._fresh = False

    def restart(self, next_index: int) -> None:
        """Capture side: start a new window at source frame `next_index` (after a gap in a stream, so
        that no window spans it); the score average starts over with the next window."""
        self.window = ClipWindow(
            self.model.input["clip_len"],
            self.model.frame_step(self.fps),
            self.stride,
            self.preprocess.frame_shape,
            self.preprocess.dtype,
            planar=self.model.input["format"] != "bgr8",
            start=next_index,
        )
        # (index, time) of the recent frames, enough to reach back one window and one stride: bounded.
        self._times: deque[tuple[int, float]] = deque(maxlen=self.window.span + self.stride + 2)
        self._fresh = True

    def add_frame(self, index: int, frame_bgr: np.ndarray, time_s: float | None = None) -> WindowJob | None:
        """Take source frame `index` (taken at `time_s`, default `index / fps`); returns the job of the
        window ending here when one is due."""
        if time_s is None and self.fps:
            time_s = index / self.fps
        if time_s is not None:
            self._times.append((index, float(time_s)))
        if not self.window.wants(index) or not self.window.push(index, self.preprocess(frame_bgr)):
            return None
        start = self.window.window_indices[0]
        end_s = self._time_at(index)
        stride_s = self.stride / self.fps if self.fps else None
        if stride_s is None and end_s is not None:
            before = self._time_at(index - self.stride)
            stride_s = end_s - before if before is not None and end_s > before else None
        centre_s = reach = None
        if end_s is not None and stride_s is not None:  # frames last stride_s / stride each
            reach = (self._time_at(start), end_s + stride_s / self.stride)
            centre_s = (reach[0] + reach[1]) / 2
        job = WindowJob(
            index,
            start,
            self.window.clip(),
            end_s,
            centre_s,
            stride_s,
            reach,
            self._fresh,
            time.perf_counter(),
        )
        self._fresh = False
        return job

    def _time_at(self, frame: int) -> float | None:
        if not self._times:
            return None
        indices, times = zip(*self._times, strict=True)
        if frame < indices[0] and len(indices) > 1:  # older than the frames kept: extrapolate
            return times[0] + (frame - indices[0]) * (times[-1] - times[0]) / (indices[-1] - indices[0])
        return float(np.interp(frame, indices, times))

    def infer(self, job: WindowJob) -> Prediction:
        """Run the IR on a due window and update the running average."""
        probs = self.model.probabilities(job.clip)
        return self.result(job, probs, self.model.latencies_ms[-1])

    def start(self, job: WindowJob) -> None:
        """Start the IR on a due window without waiting for it (`model.done()` says when it is done)."""
        self.model.start(job.clip)

    def finish(self, job: WindowJob) -> Prediction:
        """The prediction of the window that `start` began (waits for it if need be)."""
        return self.result(job, self.model.collect(), self.model.latencies_ms[-1])

    def result(self, job: WindowJob, probs: np.ndarray, latency_ms: float) -> Prediction:
        """A window's class probabilities -> its prediction; updates the running average."""
        if job.fresh:
            self.averager = ScoreAverager(self._centres.maxlen or 1)
            self._centres.clear()
            self._action = None
        averaged = self.averager(probs)
        centre = None
        if job.centre_s is not None:
            self._centres.append(job.centre_s)
            centre = sum(self._centres) / len(self._centres)
        return Prediction(
            job.index,
            job.start_frame,
            job.end_s,
            probs,
            averaged,
            latency_ms,
            action=self._decide(averaged),
            centre_s=centre,
            stride_s=job.stride_s,
            reach=job.reach,
            after_gap=job.fresh,
        )

    def _decide(self, averaged: np.ndarray) -> int | None:
        self._action = self.rule.label(averaged, self._action)
        return self._action

    def process(self, index: int, frame_bgr: np.ndarray, time_s: float | None = None) -> Prediction | None:
        job = self.add_frame(index, frame_bgr, time_s)
        return None if job is None else self.infer(job)

    def timeline(self, min_segment_s: float | None = None) -> TimelineBuilder:
        """A segment timeline of this recognizer's decisions (`Prediction.add_to` feeds it); the
        minimum segment defaults to model.json's timeline settings."""
        if min_segment_s is None:
            min_segment_s = self.settings.min_segment_s
        return TimelineBuilder(self.rule, min_segment_s=min_segment_s)
