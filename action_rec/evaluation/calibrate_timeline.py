"""Calibrate the timeline settings on untrimmed validation recordings, and store them in model.json.

The settings that turn window scores into a timeline (no-action threshold, minimum segment,
hysteresis, averaging: `runtime.metadata.TimelineSettings`) decide whether the recognizer stays
silent between actions and how its segments line up with the truth. They are chosen by a grid search
on validation recordings (never the test ones):

- objective: F1@0.50 pooled over the recordings (true/false positives and false negatives summed, as
  `timeline_videos.pool` does), the segment measure that needs both the right label and boundaries
  that overlap the truth by half; ties go to the higher frame accuracy, then to the earlier grid point
  (the model's current settings come first, so calibration never trades them for an equal score).
  The current settings are one of the candidates, so the chosen ones are never worse on these
  recordings;
- cost: the IR runs once per recording (`inference.video_file.video_windows`); every grid point only
  replays the averaging, the decisions and the timeline from the kept probabilities
  (`replay_timeline`, the same steps as `recognize_video`), so a grid of hundreds of points costs
  seconds.

`store_settings` writes the choice into model.json's `timeline` block (atomically), with the objective,
the scores before and after, and the recordings it was calibrated on; `tools/demo.py`, the deployed
script and `tools/eval_timeline.py` use it from then on.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from action_rec.fileio import atomic_write
from action_rec.runtime.metadata import TimelineSettings, metadata_path, timeline_settings

from .timeline import read_segments
from .timeline_videos import measure, pool

__all__ = ["OBJECTIVE", "DEFAULT_GRID", "Calibration", "calibrate", "store_settings", "format_calibration"]

OBJECTIVE = "f1@0.50"
DEFAULT_GRID: dict[str, tuple] = {
    "threshold": (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    "min_segment_s": (0.0, 0.25, 0.5, 1.0, 2.0),
    "hysteresis": (0.0, 0.1, 0.2),
    "average": (1, 2, 3, 5),
}


@dataclass
class Calibration:
    before: TimelineSettings
    after: TimelineSettings
    score_before: dict[str, Any]  # pooled measures (timeline_videos.pool) with the current settings
    score_after: dict[str, Any]
    videos: list[str]
    candidates: int


def _key(score: dict[str, Any]) -> tuple[float, float]:
    return round(score[OBJECTIVE], 9), round(score["frame_accuracy"], 9)


def calibrate(
    model: Any,
    pairs: Sequence[tuple[Path, Path]],
    grid: dict[str, Sequence] | None = None,
    stride: int = 8,
    progress: bool = True,
) -> Calibration:
    """Grid-search the timeline settings of `model` (an ExportedModel or model.xml) on the (video,
    truth JSON) `pairs`; see the module docstring. Nothing is written."""
    from action_rec.inference.video_file import replay_timeline, video_windows
    from action_rec.runtime.model import ExportedModel

    if not isinstance(model, ExportedModel):
        model = ExportedModel(model)
    grid = {**DEFAULT_GRID, **(grid or {})}
    truths = [read_segments(truth) for _, truth in pairs]  # every truth checked before the IR runs
    cached = [
        video_windows(model, video, stride)
        for video, _ in tqdm(pairs, desc="calibrate: inference", unit="video", disable=not progress)
    ]

    def score(settings: TimelineSettings) -> dict[str, Any]:
        results = [
            measure(replay_timeline(model, windows, settings), truth, windows.duration)
            for windows, truth in zip(cached, truths, strict=True)
        ]
        return pool(results)

    current = timeline_settings(model.meta, model.path)
    candidates = [current] + [
        TimelineSettings(threshold=t, min_segment_s=m, hysteresis=h, average=a)
        for t, m, h, a in itertools.product(
            grid["threshold"], grid["min_segment_s"], grid["hysteresis"], grid["average"]
        )
    ]
    best, best_score, before = current, None, None
    for settings in tqdm(candidates, desc="calibrate: grid", unit="setting", disable=not progress):
        s = score(settings)
        if before is None:
            before = s
        if best_score is None or _key(s) > _key(best_score):
            best, best_score = settings, s
    assert before is not None and best_score is not None
    return Calibration(current, best, before, best_score, [str(v) for v, _ in pairs], len(candidates))


def _rounded(score: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (round(float(v), 4) if not isinstance(v, dict) else {c: round(float(x), 4) for c, x in v.items()})
        for k, v in score.items()
        if not k.startswith("_")
    }


def store_settings(model_xml: str | Path, calibration: Calibration, stride: int = 8) -> Path:
    """Write the chosen settings into model.json's `timeline` block (atomically), with how they were
    found; the rest of model.json is kept as it is."""
    path = metadata_path(model_xml)
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["timeline"] = {
        **calibration.after.to_json(),
        "objective": f"{OBJECTIVE} pooled over the recordings, tie-break frame accuracy",
        "score_before": _rounded(calibration.score_before),
        "score_after": _rounded(calibration.score_after),
        "settings_before": calibration.before.to_json(),
        "calibrated_on": calibration.videos,
        "stride": stride,
        "candidates": calibration.candidates,
    }
    timeline_settings(meta, path)  # what every reader will accept
    return atomic_write(path, json.dumps(meta, indent=2) + "\n")


def format_calibration(calibration: Calibration) -> str:
    """A before/after table of the settings and the pooled measures."""
    rows = [("", "before", "after")]
    for key in ("threshold", "min_segment_s", "hysteresis", "average"):
        b, a = getattr(calibration.before, key), getattr(calibration.after, key)
        rows.append(
            (
                key,
                "model.json no_action" if b is None else f"{b:g}",
                "model.json no_action" if a is None else f"{a:g}",
            )
        )
    for key, unit in (
        ("f1@0.10", ""),
        ("f1@0.25", ""),
        ("f1@0.50", ""),
        ("edit", ""),
        ("frame_accuracy", " %"),
    ):
        rows.append(
            (key, f"{calibration.score_before[key]:.3f}{unit}", f"{calibration.score_after[key]:.3f}{unit}")
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.append(
        f"{calibration.candidates} settings tried on {len(calibration.videos)} recordings; objective {OBJECTIVE}"
        " (pooled), tie-break frame accuracy"
    )
    return "\n".join(lines)
