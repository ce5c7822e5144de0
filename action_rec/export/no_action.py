""" "No action": which classes never count as an action, and the score below which nothing is reported.

A recognizer run on hours of video or on an idle camera must be able to say "nothing happens". Two
rules work together, and both travel with the exported model in `model.json`:

- a class named `no_action` or `background` in label_map.txt is never reported as an action (train one
  on clips without the target actions and the model learns to say so);
- a top probability (after the recognizer's score averaging) below `threshold` means "no action". The
  threshold is calibrated at export on the validation clips: the highest one that still keeps a given
  share (95 % by default) of the correct predictions, so it removes the unsure guesses while costing at
  most 5 % of the right ones.

Readers (the recognizer, the demo, deploy scripts) apply it with `action_rec.runtime.labels.ActionRule`;
`--threshold` overrides the stored value (0 disables it). This module is the export side: calibration
and the block written to model.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from action_rec.runtime.labels import no_action_classes

__all__ = ["calibrate_threshold", "no_action_metadata"]


def calibrate_threshold(
    top_probabilities: np.ndarray, correct: np.ndarray, keep: float = 0.95
) -> float | None:
    """The highest probability threshold that keeps at least `keep` of the correct predictions.

    `top_probabilities[i]` is the top class probability of validation clip i and `correct[i]` whether
    that class was right. With the correct clips' top probabilities sorted, p_0 <= ... <= p_{n-1}, the
    threshold is p_k with k = floor((1 - keep) * n): at least n - k >= keep * n correct clips score
    p_k or more, so they stay actions. Returns None when no prediction is correct (nothing to keep).
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    probs = np.asarray(top_probabilities, np.float64).reshape(-1)
    right = np.asarray(correct, bool).reshape(-1)
    if probs.shape != right.shape:
        raise ValueError(f"{probs.shape[0]} probabilities but {right.shape[0]} correctness flags")
    kept = np.sort(probs[right])
    if kept.size == 0:
        return None
    k = int(np.floor((1.0 - keep) * kept.size + 1e-9))
    return float(kept[min(k, kept.size - 1)])


def no_action_metadata(
    class_names: Sequence[str], threshold: float | None, keep: float, clips: int
) -> dict[str, Any]:
    """The `model.json` block `meta["no_action"]`: the calibrated threshold (None: not calibrated, no
    threshold), the class names that always mean "no action", and how the threshold was found."""
    return {
        "threshold": None if threshold is None else float(threshold),
        "classes": [class_names[i] for i in no_action_classes(class_names)],
        "keep_correct": float(keep),
        "calibration_clips": int(clips),
    }
