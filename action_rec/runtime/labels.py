"""Raw scores to a label: class probabilities, and the one rule that names a window's action.

The IR outputs raw scores (cosines of an angular head, or logits); `model.json` says the scale of the
softmax that makes them probabilities. `ActionRule.label` decides every window once (the recognizer
calls it on the averaged probabilities), and the per-window log, the overlay and the segment timeline
all show that decision:

- a window names an action only when its top class is not a no-action class and its probability
  reaches the threshold; otherwise it says "no action". Both travel with the exported model
  (`action_rec.export.no_action` calibrates the threshold): a class named `no_action` or `background`,
  or listed in `no_action.classes`, never counts as an action; `--threshold` overrides the stored
  threshold (0: none);
- hysteresis: the previous window's action stays while its probability is within `hysteresis` of the
  top class and at least `threshold - hysteresis`, so a close second does not make the label flicker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["NO_ACTION", "NO_ACTION_NAMES", "scores_to_probabilities", "no_action_classes", "ActionRule"]

NO_ACTION = "no action"
NO_ACTION_NAMES = ("no_action", "background")


def scores_to_probabilities(scores: np.ndarray, softmax_scale: float) -> np.ndarray:
    """The IR's raw scores `N x C` (cosines or logits) -> class probabilities, as the metadata says."""
    z = np.asarray(scores, np.float64) * softmax_scale
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def no_action_classes(class_names: Sequence[str]) -> list[int]:
    """Indices of the classes that mean "no action" (named `no_action` or `background`, any case)."""
    return [i for i, name in enumerate(class_names) if name.strip().lower() in NO_ACTION_NAMES]


class ActionRule:
    """Averaged class probabilities (and the previous window's action) -> the action's class index, or
    None for "no action"."""

    def __init__(
        self,
        class_names: Sequence[str],
        threshold: float | None = None,
        no_action_names: Sequence[str] = (),
        hysteresis: float = 0.0,
    ) -> None:
        if not 0 <= hysteresis < 1:
            raise ValueError(f"hysteresis must be in [0, 1), got {hysteresis}")
        self.hysteresis = float(hysteresis)
        self.class_names = list(class_names)
        extra = set(no_action_names)
        self.no_action_ids = set(no_action_classes(self.class_names)) | {
            i for i, name in enumerate(self.class_names) if name in extra
        }
        self.threshold = float(threshold) if threshold else None  # 0 or None: no threshold

    @classmethod
    def from_metadata(
        cls, meta: dict[str, Any], threshold: float | None = None, hysteresis: float = 0.0
    ) -> ActionRule:
        """The rule stored in model.json (`meta["no_action"]`); `threshold` overrides it (0 disables)."""
        block = meta.get("no_action") or {}
        chosen = block.get("threshold") if threshold is None else threshold
        return cls(meta["class_names"], chosen, block.get("classes") or (), hysteresis)

    def label(self, probabilities: np.ndarray, current: int | None = None) -> int | None:
        """The window's action given `current`, the previous window's (None: no action, or the first)."""
        best = int(np.argmax(probabilities))
        fresh = best
        if best in self.no_action_ids or (
            self.threshold is not None and probabilities[best] < self.threshold
        ):
            fresh = None
        if current is None or fresh == current:
            return fresh
        p = float(probabilities[current])
        if (
            p >= float(probabilities[best]) - self.hysteresis
            and p >= (self.threshold or 0.0) - self.hysteresis
        ):
            return current
        return fresh

    def name(self, label: int | None) -> str:
        return NO_ACTION if label is None else self.class_names[label]
