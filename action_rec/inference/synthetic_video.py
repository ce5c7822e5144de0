"""Judging a recognizer on a synthetic video with a known label timeline.

:func:`make_synthetic_video` (from :mod:`action_rec.data.synthetic_recordings`) writes the video and
its truth; `truth_segments` gives the truth in the timeline's segment JSON, and the helpers below
compare the recognizer's windows with it.
"""

from __future__ import annotations

from typing import Any

from action_rec.data.synthetic_recordings import make_synthetic_video

__all__ = [
    "make_synthetic_video",
    "truth_segments",
    "windows_inside_segments",
    "timeline_agreement",
    "format_truth",
]


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
