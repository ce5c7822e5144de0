"""A test video with a known label timeline: synthetic clips of several classes, one after another.

The quick start and the tests recognize it with an exported model and compare the predicted timeline
with the truth. Each segment is a fresh clip of the synthetic dataset's renderer (new object, new
background), so a model sees the same kind of frames it was trained on. With `gap_frames`, clips of
the background class (still scenes: no action) separate the action segments, as in a long video where
most of the time nothing happens; `truth_segments` gives the truth in the timeline's segment JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from action_rec.data.synthetic import CLASSES, render_clip
from action_rec.fileio import atomic_path

__all__ = [
    "make_synthetic_video",
    "truth_segments",
    "windows_inside_segments",
    "timeline_agreement",
    "format_truth",
]


def make_synthetic_video(
    path: str | Path,
    labels: list[int],
    frames_per_segment: int = 64,
    size: int = 128,
    fps: float = 30.0,
    seed: int = 0,
    reversed_pairs: bool = False,
    gap_frames: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """Write `path` (.mp4 or .avi) with one segment per entry of `labels` (synthetic class ids);
    returns the ground truth `[{"label": id, "name": class, "start": first frame, "end": last + 1}]`.

    `gap_frames=(lo, hi)`: lo..hi frames (random) of no action before every segment and after the
    last one, so they are in no truth segment: the object of each segment stands still (jittering)
    before and after its motion, in its scene, and the cut to the next scene falls in the middle of
    the gap, as in a long video of someone who sometimes acts.

    `reversed_pairs`: a segment whose class is the time-reversal pair of the previous segment's
    (moving left -> right, clockwise -> counter-clockwise, growing -> shrinking) is that segment's
    frames played backwards: the same frames, so only the order of time tells the two apart (for
    videos without gaps).
    """
    path = Path(path)
    fourcc = "MJPG" if path.suffix.lower() == ".avi" else "mp4v"
    truth: list[dict[str, Any]] = []
    previous: np.ndarray | None = None
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, (size, size))
        if not writer.isOpened():
            raise RuntimeError(f"{path}: OpenCV cannot write this video type")
        # Gap k (before segment k; gap n after the last) is split at a random frame: its first part
        # ends segment k - 1's scene, its second part starts segment k's.
        gap_rng = np.random.default_rng([seed, 3])  # stream 3: the gaps
        gaps = [
            int(gap_rng.integers(gap_frames[0], gap_frames[1] + 1)) if gap_frames else 0
            for _ in range(len(labels) + 1)
        ]
        splits = [int(gap_rng.integers(0, g + 1)) for g in gaps]
        splits[0], splits[-1] = 0, gaps[-1]  # the video starts and ends in a segment's scene
        written = 0
        try:
            for k, label in enumerate(labels):
                hold = (gaps[k] - splits[k], splits[k + 1])
                if reversed_pairs and previous is not None and truth[-1]["label"] == label ^ 1:
                    clip = previous[::-1]
                else:
                    rng = np.random.default_rng(
                        [seed, 2, label, k]
                    )  # stream 2: neither train (0) nor val (1)
                    clip = render_clip(CLASSES[label], frames_per_segment, size, rng, hold=hold)
                for frame in clip:
                    writer.write(np.ascontiguousarray(frame))
                start = written + hold[0]
                written += len(clip)
                previous = clip
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


def truth_segments(truth: list[dict[str, Any]], fps: float) -> list[dict[str, Any]]:
    """The truth as timeline segments `[{"start_s", "end_s", "label"}]` (what `--timeline` writes):
    frame k lasts from k / fps to (k + 1) / fps."""
    return [
        {"start_s": round(s["start"] / fps, 4), "end_s": round(s["end"] / fps, 4), "label": s["name"]}
        for s in truth
    ]


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
    """The ground-truth timeline as text, one line a segment (end: the end of its last frame)."""
    return "\n".join(
        f"{seg['start'] / fps:7.2f} s - {seg['end'] / fps:7.2f} s  {seg['name']}" for seg in truth
    )
