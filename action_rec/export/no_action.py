"""When a recognizer should say "no action": a background class, and a calibrated score threshold.

A classifier always names one of its classes. Two things make it stay silent when nothing happens:
a class called `no_action` or `background` in label_map.txt is never reported as an action, and a
window whose top class probability is below a threshold is "no action". The threshold is calibrated
at export on the validation clips as the lowest top probability that still keeps `keep` (95 %) of the
correct predictions, and stored in model.json as `no_action`; `--threshold` overrides it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NO_ACTION_NAMES", "no_action_classes", "calibrate_threshold", "no_action_metadata"]

NO_ACTION_NAMES = ("no_action", "background")


def no_action_classes(class_names: list[str]) -> list[int]:
    """Indices of the classes that mean "nothing happens" (by name, case-insensitive)."""
    return [i for i, name in enumerate(class_names) if name.strip().lower() in NO_ACTION_NAMES]


def calibrate_threshold(
    top_probabilities: np.ndarray, correct: np.ndarray, keep: float = 0.95
) -> float | None:
    """The top-probability threshold that keeps `keep` of the correct predictions: the (1 - keep)
    quantile of the correct clips' top probabilities (rounded down to 4 decimals, so that exactly
    those clips stay above it). None when no prediction was correct."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    scores = np.sort(np.asarray(top_probabilities, np.float64)[np.asarray(correct, bool)])
    if scores.size == 0:
        return None
    index = int(np.floor((1.0 - keep) * scores.size))
    return float(np.floor(scores[min(index, scores.size - 1)] * 1e4) / 1e4)


def no_action_metadata(
    class_names: list[str], threshold: float | None, keep: float, clips: int
) -> dict[str, Any]:
    """The `no_action` block of model.json, read by every recognizer."""
    return {
        "threshold": threshold,
        "classes": [class_names[i] for i in no_action_classes(class_names)],
        "keep_correct": keep,
        "calibration_clips": int(clips),
    }
