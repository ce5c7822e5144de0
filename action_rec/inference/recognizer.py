"""Frames in, labels out: the sliding-window recognizer and `recognize_video` for files.

Per frame: sampled frames are preprocessed once into the ring buffer (window.py). Every `stride`
source frames the window is stacked and run through the IR; the class probabilities are averaged
over the last `average` windows. Each window gives one timeline entry:

    {"frame": 47, "start_frame": 16, "time_s": 1.567, "label": "wave", "score": 0.91,
     "top_k": [["wave", 0.91], ["clap", 0.05], ...], "window_label": "wave", "window_score": 0.88,
     "latency_ms": 41.2}

`frame` is the 0-based index of the window's last frame (the moment the prediction is available),
`label`/`score`/`top_k` come from the averaged probabilities, `window_*` from this window alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from action_rec.inference.model import ExportedModel
from action_rec.inference.preprocess import FramePreprocessor
from action_rec.inference.stream import SourceError, open_source
from action_rec.inference.window import ClipWindow, ScoreAverager

__all__ = ["Prediction", "Recognizer", "recognize_video", "timeline_segments", "format_timeline"]


@dataclass
class Prediction:
    """The result of one window."""

    frame: int
    start_frame: int
    time_s: float | None
    window: np.ndarray  # class probabilities of this window, C
    averaged: np.ndarray  # mean over the last windows, C
    latency_ms: float

    def to_json(self, class_names: list[str], top_k: int = 3) -> dict[str, Any]:
        order = np.argsort(-self.averaged)[:top_k]
        best = int(np.argmax(self.window))
        return {
            "frame": self.frame,
            "start_frame": self.start_frame,
            "time_s": None if self.time_s is None else round(self.time_s, 3),
            "label": class_names[order[0]],
            "score": round(float(self.averaged[order[0]]), 4),
            "top_k": [[class_names[i], round(float(self.averaged[i]), 4)] for i in order],
            "window_label": class_names[best],
            "window_score": round(float(self.window[best]), 4),
            "latency_ms": round(self.latency_ms, 2),
        }


class Recognizer:
    """The per-stream state. `add_frame` (cheap, capture side) and `infer` (the IR) can run on
    different threads; `process` does both in one call."""

    def __init__(
        self, model: ExportedModel, source_fps: float | None = None, stride: int = 8, average: int = 3
    ) -> None:
        self.model = model
        self.fps = source_fps
        self.preprocess = FramePreprocessor(model.input)
        self.window = ClipWindow(
            model.input["clip_len"],
            model.frame_step(source_fps),
            stride,
            self.preprocess.frame_shape,
            self.preprocess.dtype,
            planar=model.input["format"] != "bgr8",
        )
        self.averager = ScoreAverager(average)

    def add_frame(self, index: int, frame_bgr: np.ndarray) -> tuple[int, np.ndarray] | None:
        """Take source frame `index`; returns `(start_frame, clip)` when a window ending here is due."""
        if not self.window.wants(index):
            return None
        if self.window.push(index, self.preprocess(frame_bgr)):
            return self.window.window_indices[0], self.window.clip()
        return None

    def infer(self, index: int, start_frame: int, clip: np.ndarray) -> Prediction:
        """Run the IR on a due window (ending at frame `index`) and update the running average."""
        probs = self.model.probabilities(clip)
        time_s = index / self.fps if self.fps else None
        return Prediction(
            index, start_frame, time_s, probs, self.averager(probs), self.model.latencies_ms[-1]
        )

    def process(self, index: int, frame_bgr: np.ndarray) -> Prediction | None:
        due = self.add_frame(index, frame_bgr)
        return None if due is None else self.infer(index, *due)


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
) -> list[dict[str, Any]]:
    """Run the recognizer over every frame of a video file; returns the timeline (one entry a window).

    Deterministic: no frame is dropped. Raises SourceError / ModelError with a one-line message.
    """
    if not isinstance(model, ExportedModel):
        model = ExportedModel(model, device=device, threads=threads)
    source = open_source(str(video_path))
    if source.live:
        source.release()
        raise SourceError(f"{video_path}: recognize_video reads files; use tools/demo.py for live input")
    recognizer = Recognizer(model, source.fps, stride=stride, average=average)
    entries: list[dict[str, Any]] = []
    bar = tqdm(total=source.frame_count, unit="frame", desc=Path(video_path).name, disable=not progress)
    try:
        index = 0
        while (frame := source.read()) is not None:
            prediction = recognizer.process(index, frame)
            if prediction is not None:
                entries.append(prediction.to_json(model.class_names, top_k))
            index += 1
            bar.update()
    finally:
        bar.close()
        source.release()
    if index == 0:
        raise SourceError(f"{video_path}: no frame could be decoded")
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
