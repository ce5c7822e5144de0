"""A test video with a known label timeline: synthetic clips of several classes, one after another.

The quick start and the tests recognize it with an exported model and compare the predicted timeline
with the truth. Each segment is a fresh clip of the synthetic dataset's renderer (new object, new
background), so a model sees the same kind of frames it was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from action_rec.data.synthetic import CLASSES, render_clip
from action_rec.fileio import atomic_path

__all__ = ["make_synthetic_video", "windows_inside_segments", "timeline_agreement", "format_truth"]


def make_synthetic_video(
    path: str | Path,
    labels: list[int],
    frames_per_segment: int = 64,
    size: int = 128,
    fps: float = 30.0,
    seed: int = 0,
    reversed_pairs: bool = False,
) -> list[dict[str, Any]]:
    """Write `path` (.mp4 or .avi) with one segment per entry of `labels` (synthetic class ids);
    returns the ground truth `[{"label": id, "name": class, "start": first frame, "end": last + 1}]`.

    `reversed_pairs`: a segment whose class is the time-reversal pair of the previous segment's
    (moving left -> right, clockwise -> counter-clockwise, growing -> shrinking) is that segment's
    frames played backwards: the same frames, so only the order of time tells the two apart.
    """
    path = Path(path)
    fourcc = "MJPG" if path.suffix.lower() == ".avi" else "mp4v"
    truth: list[dict[str, Any]] = []
    previous: np.ndarray | None = None
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, (size, size))
        if not writer.isOpened():
            raise RuntimeError(f"{path}: OpenCV cannot write this video type")
        try:
            for k, label in enumerate(labels):
                if reversed_pairs and previous is not None and truth[-1]["label"] == label ^ 1:
                    clip = previous[::-1]
                else:
                    rng = np.random.default_rng(
                        [seed, 2, label, k]
                    )  # stream 2: neither train (0) nor val (1)
                    clip = render_clip(CLASSES[label], frames_per_segment, size, rng)
                for frame in clip:
                    writer.write(np.ascontiguousarray(frame))
                previous = clip
                start = k * frames_per_segment
                truth.append(
                    {
                        "label": label,
                        "name": CLASSES[label].name,
                        "start": start,
                        "end": start + frames_per_segment,
                    }
                )
        finally:
            writer.release()
    return truth


def windows_inside_segments(
    entries: list[dict[str, Any]], truth: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Pairs (timeline entry, segment) for the windows that lie entirely inside one segment: the
    windows where the model sees only one class, so its label can be judged against the truth."""
    pairs = []
    for entry in entries:
        for seg in truth:
            if seg["start"] <= entry["start_frame"] and entry["frame"] < seg["end"]:
                pairs.append((entry, seg))
    return pairs


def timeline_agreement(
    entries: list[dict[str, Any]], truth: list[dict[str, Any]], key: str = "window_label"
) -> tuple[int, int]:
    """(correct, judged): windows inside one segment whose label (`key`) names that segment's class."""
    pairs = windows_inside_segments(entries, truth)
    return sum(entry[key] == seg["name"] for entry, seg in pairs), len(pairs)


def format_truth(truth: list[dict[str, Any]], fps: float = 30.0) -> str:
    """The ground-truth timeline as text, in the style of `format_timeline`."""
    return "\n".join(
        f"{seg['start'] / fps:7.2f} s - {(seg['end'] - 1) / fps:7.2f} s  {seg['name']}" for seg in truth
    )
