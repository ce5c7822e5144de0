"""`recognize_video`: the sliding-window recognizer (`action_rec.runtime.recognizer`) over a whole
video file, frame by frame, and its timeline as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm import tqdm

from action_rec.runtime.model import ExportedModel
from action_rec.runtime.recognizer import Recognizer
from action_rec.runtime.segments import label_runs
from action_rec.runtime.sources import SourceError, open_source

__all__ = ["recognize_video", "format_timeline"]


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
    hysteresis: float = 0.1,
    timeline: dict[str, float] | None = None,
) -> list[dict[str, Any]] | tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the recognizer over every frame of a video file; returns the per-window entries, and with
    `timeline` (the timeline's smoothing: `{}`, or `{"min_segment_s": ...}`) also the segments, as
    `(entries, segments)`. `threshold` and `hysteresis` are the labels' rule (runtime/labels.py): the
    entries and the segments show the same decisions.

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
