"""`recognize_video`: the sliding-window recognizer (`action_rec.runtime.recognizer`) over a whole
video file, frame by frame, and its timeline as text.

`video_windows` and `replay_timeline` split that run in two for calibrating the timeline settings:
the IR runs once per video and its per-window probabilities are kept; the recognizer's averaging,
decisions and timeline are then replayed from them for each candidate setting, the same steps as
`recognize_video` takes, without decoding or inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from action_rec.runtime.metadata import TimelineSettings
from action_rec.runtime.model import ExportedModel
from action_rec.runtime.recognizer import Recognizer, WindowJob
from action_rec.runtime.segments import label_runs
from action_rec.runtime.sources import SourceError, open_source

__all__ = ["recognize_video", "format_timeline", "VideoWindows", "video_windows", "replay_timeline"]


def recognize_video(
    model: str | Path | ExportedModel,
    video_path: str | Path,
    *,
    stride: int = 8,
    average: int | None = None,
    top_k: int = 3,
    device: str = "CPU",
    threads: int = 0,
    progress: bool = True,
    threshold: float | None = None,
    hysteresis: float | None = None,
    timeline: dict[str, float] | None = None,
) -> list[dict[str, Any]] | tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the recognizer over every frame of a video file; returns the per-window entries, and with
    `timeline` (the timeline's smoothing: `{}`, or `{"min_segment_s": ...}`) also the segments, as
    `(entries, segments)`. `threshold` and `hysteresis` are the labels' rule (runtime/labels.py): the
    entries and the segments show the same decisions. `average`, `threshold`, `hysteresis` and the
    timeline's `min_segment_s` left at None take model.json's timeline settings, as the demo does.

    Deterministic: no frame is dropped; the same as `tools/demo.py` on the file. Raises SourceError /
    ModelError with a one-line message.
    """
    if not isinstance(model, ExportedModel):
        model = ExportedModel(model, device=device, threads=threads)
    source = open_source(str(video_path))
    if source.live:
        source.release()
        raise SourceError(f"{video_path}: recognize_video reads files; use tools/demo.py for live input")
    recognizer = Recognizer(
        model, source.fps, stride=stride, average=average, threshold=threshold, hysteresis=hysteresis
    )
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
                    prediction.add_to(builder)
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


@dataclass
class VideoWindows:
    """One video's windows (without their pixels) and their class probabilities, in order."""

    video: Path
    fps: float
    frames: int
    stride: int
    jobs: list[WindowJob] = field(default_factory=list)
    probabilities: list[np.ndarray] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.frames / self.fps


def video_windows(
    model: ExportedModel, video_path: str | Path, stride: int = 8, progress: bool = False
) -> VideoWindows:
    """Run the IR on every window of a video file once (as `recognize_video` does) and keep each
    window's probabilities; the frames are not kept."""
    source = open_source(str(video_path))
    if source.live or not source.fps:
        source.release()
        raise SourceError(f"{video_path}: needs a video file with a frame rate")
    recognizer = Recognizer(model, source.fps, stride=stride, average=1)
    out = VideoWindows(Path(video_path), source.fps, 0, stride)
    bar = tqdm(total=source.frame_count, unit="frame", desc=Path(video_path).name, disable=not progress)
    try:
        while (frame := source.read()) is not None:
            job = recognizer.add_frame(out.frames, frame)
            if job is not None:
                out.probabilities.append(model.probabilities(job.clip))
                out.jobs.append(replace(job, clip=None))
            out.frames += 1
            bar.update()
    finally:
        bar.close()
        source.release()
    if out.frames == 0:
        raise SourceError(f"{video_path}: no frame could be decoded")
    return out


def replay_timeline(
    model: ExportedModel, windows: VideoWindows, settings: TimelineSettings
) -> list[dict[str, Any]]:
    """The segments `recognize_video(..., timeline={})` would give with `settings` (threshold None:
    model.json's no-action threshold), from the kept probabilities."""
    recognizer = Recognizer(
        model,
        windows.fps,
        stride=windows.stride,
        average=settings.average,
        threshold=settings.threshold,
        hysteresis=settings.hysteresis,
    )
    builder = recognizer.timeline(settings.min_segment_s)
    for job, probs in zip(windows.jobs, windows.probabilities, strict=True):
        recognizer.result(job, probs, 0.0).add_to(builder)
    builder.finish()
    return builder.segments


def format_timeline(entries: list[dict[str, Any]], key: str = "label") -> str:
    """The label timeline as text, one line per run of equal labels."""
    lines = []
    for seg in label_runs(entries, key):
        if seg["start_s"] is not None:
            when = f"{seg['start_s']:7.2f} s - {seg['end_s']:7.2f} s"
        else:
            when = f"frame {seg['first_frame']:6d} - {seg['last_frame']:6d}"
        lines.append(f"{when}  {seg['label']:<24} (mean score {seg['score']:.2f}, {seg['windows']} windows)")
    return "\n".join(lines)
