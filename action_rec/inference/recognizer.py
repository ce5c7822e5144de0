"""Frames in, labels out: the sliding-window recognizer and `recognize_video` for files.

Per frame: sampled frames are preprocessed once into the ring buffer (window.py). Every `stride`
source frames the window is stacked and run through the IR; the class probabilities are averaged
over the last `average` windows. Each window gives one entry of the per-window log:

    {"frame": 47, "start_frame": 16, "time_s": 1.567, "label": "wave", "score": 0.91,
     "top_k": [["wave", 0.91], ["clap", 0.05], ...], "window_label": "wave", "window_score": 0.88,
     "centre_s": 0.8, "latency_ms": 41.2}

`frame` is the 0-based index of the window's last frame (the moment the prediction is available),
`time_s` its time (frame / fps for a file, the stream's own timestamp for a live source),
`label`/`score`/`top_k` come from the averaged probabilities, `window_*` from this window alone.
`label` is "no action" when the top class is a no-action class or scores below the threshold (see
timeline.py). `centre_s` is the middle of the frames the averaged scores saw: the moment the label
describes, which the segment timeline uses.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from action_rec.inference.model import ExportedModel
from action_rec.inference.preprocess import FramePreprocessor
from action_rec.inference.stream import SourceError, open_source
from action_rec.inference.timeline import NO_ACTION, ActionRule, TimelineBuilder
from action_rec.inference.window import ClipWindow, ScoreAverager

__all__ = ["Prediction", "WindowJob", "Recognizer", "recognize_video", "timeline_segments", "format_timeline"]


@dataclass
class Prediction:
    """The result of one window."""

    frame: int
    start_frame: int
    time_s: float | None
    window: np.ndarray  # class probabilities of this window, C
    averaged: np.ndarray  # mean over the last windows, C
    latency_ms: float
    action: int | None = None  # the averaged scores' class, None for no action
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
            "score": round(float(self.averaged[order[0]]), 4),
            "top_k": [[class_names[i], round(float(self.averaged[i]), 4)] for i in order],
            "window_label": class_names[best],
            "window_score": round(float(self.window[best]), 4),
            "centre_s": None if self.centre_s is None else round(self.centre_s, 3),
            "latency_ms": round(self.latency_ms, 2),
        }

    def cell(self) -> tuple[float, float] | None:
        """The stretch of time this window's label stands for in the timeline: one stride around
        `centre_s` (None when the source has no time)."""
        if self.centre_s is None or not self.stride_s:
            return None
        return self.centre_s - self.stride_s / 2, self.centre_s + self.stride_s / 2


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


class Recognizer:
    """The per-stream state. `add_frame` (cheap, capture side) and `infer` (the IR) can run on
    different threads; `process` does both in one call.

    `threshold` overrides the no-action threshold of model.json (0 disables it). Frame times are
    `index / fps` unless `add_frame` is given the source's own timestamp.
    """

    def __init__(
        self,
        model: ExportedModel,
        source_fps: float | None = None,
        stride: int = 8,
        average: int = 3,
        threshold: float | None = None,
    ) -> None:
        self.model = model
        self.fps = source_fps
        self.stride = stride
        self.preprocess = FramePreprocessor(model.input)
        self.rule = ActionRule.from_metadata(model.meta, threshold)
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
        job = WindowJob(index, start, self.window.clip(), end_s, centre_s, stride_s, reach, self._fresh)
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
        if job.fresh:
            self.averager = ScoreAverager(self._centres.maxlen or 1)
            self._centres.clear()
        averaged = self.averager(probs)
        centre = None
        if job.centre_s is not None:
            self._centres.append(job.centre_s)
            centre = float(np.mean(self._centres))
        return Prediction(
            job.index,
            job.start_frame,
            job.end_s,
            probs,
            averaged,
            self.model.latencies_ms[-1],
            action=self.rule.label(averaged),
            centre_s=centre,
            stride_s=job.stride_s,
            reach=job.reach,
            after_gap=job.fresh,
        )

    def process(self, index: int, frame_bgr: np.ndarray, time_s: float | None = None) -> Prediction | None:
        job = self.add_frame(index, frame_bgr, time_s)
        return None if job is None else self.infer(job)

    def timeline(self, min_segment_s: float = 0.5, hysteresis: float = 0.1) -> TimelineBuilder:
        """A segment timeline with this recognizer's no-action rule."""
        return TimelineBuilder(self.rule, min_segment_s=min_segment_s, hysteresis=hysteresis)


def recognize_video(
    model: str | Path | ExportedModel,
    video_path: str | Path,
    *,
    stride: int = 8,
    average: int = 3,
    top_k: int = 3,
    device: str = "CPU",
    threads: int = 0,
    progress: bool = True,
    threshold: float | None = None,
    timeline: dict[str, float] | None = None,
) -> list[dict[str, Any]] | tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the recognizer over every frame of a video file; returns the per-window entries, and with
    `timeline` (the smoothing settings: `{}`, or `min_segment_s` / `hysteresis`) also the segments,
    as `(entries, segments)`.

    Deterministic: no frame is dropped; the same as `tools/demo.py` on the file. Raises SourceError /
    ModelError with a one-line message.
    """
    if not isinstance(model, ExportedModel):
        model = ExportedModel(model, device=device, threads=threads)
    source = open_source(str(video_path))
    if source.live:
        source.release()
        raise SourceError(f"{video_path}: recognize_video reads files; use tools/demo.py for live input")
    recognizer = Recognizer(model, source.fps, stride=stride, average=average, threshold=threshold)
    builder = recognizer.timeline(**timeline) if timeline is not None else None
    if builder is not None and not source.fps:
        source.release()
        raise SourceError(f"{video_path}: the file has no frame rate, so its timeline has no times")
    entries: list[dict[str, Any]] = []
    bar = tqdm(total=source.frame_count, unit="frame", desc=Path(video_path).name, disable=not progress)
    try:
        index = 0
        while (frame := source.read()) is not None:
            prediction = recognizer.process(index, frame)
            if prediction is not None:
                entries.append(prediction.to_json(model.class_names, top_k))
                if builder is not None:
                    builder.add(*prediction.cell(), prediction.averaged, prediction.reach)
            index += 1
            bar.update()
    finally:
        bar.close()
        source.release()
    if index == 0:
        raise SourceError(f"{video_path}: no frame could be decoded")
    if builder is not None:
        builder.finish()
        return entries, builder.segments
    return entries


def timeline_segments(entries: list[dict[str, Any]], key: str = "label") -> list[dict[str, Any]]:
    """Merge consecutive windows with the same label: `[{"label", "first_frame", "last_frame",
    "start_s", "end_s", "windows", "score"}]` (frames of the windows' ends; score averaged)."""
    segments: list[dict[str, Any]] = []
    for e in entries:
        score = e["score"] if key == "label" else e["window_score"]
        if segments and segments[-1]["label"] == e[key]:
            seg = segments[-1]
            seg.update(last_frame=e["frame"], end_s=e["time_s"], windows=seg["windows"] + 1)
            seg["score"] += score
        else:
            segments.append(
                {
                    "label": e[key],
                    "first_frame": e["frame"],
                    "last_frame": e["frame"],
                    "start_s": e["time_s"],
                    "end_s": e["time_s"],
                    "windows": 1,
                    "score": score,
                }
            )
    for seg in segments:
        seg["score"] = round(seg["score"] / seg["windows"], 4)
    return segments


def format_timeline(entries: list[dict[str, Any]], key: str = "label") -> str:
    """The label timeline as text, one line per run of equal labels."""
    lines = []
    for seg in timeline_segments(entries, key):
        if seg["start_s"] is not None:
            when = f"{seg['start_s']:7.2f} s - {seg['end_s']:7.2f} s"
        else:
            when = f"frame {seg['first_frame']:6d} - {seg['last_frame']:6d}"
        lines.append(f"{when}  {seg['label']:<24} (mean score {seg['score']:.2f}, {seg['windows']} windows)")
    return "\n".join(lines)
