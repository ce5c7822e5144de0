"""Which epoch's weights become best.pth: the best on validation, read with the validation set's noise.

Fine-tuning on a CPU validates on a few dozen clips, where one clip moves top-1 by a few points and
the set saturates within epochs. Taking the first epoch to reach the highest top-1 then picks an early,
barely trained epoch over later ones that are as good within one clip (measured: held-out top-1 91.5 %
for the chosen epoch against 100 % for the last, and 88.0 against 96.5; see the README's "Fine-tuning
on a CPU"). So an epoch is best when its top-1 is within one validation clip of the highest so far: a
tie or a one-clip dip goes to the later, more trained epoch; a real drop does not. On thousands of
validation clips one clip is a hundredth of a point, and this is the usual "highest top-1" rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BestEpoch"]


@dataclass
class BestEpoch:
    """The chosen epoch (1-based) and its top-1, and the highest top-1 seen (`peak`)."""

    clips: int  # validation clips: one of them is 100 / clips points of top-1
    top1: float | None = None
    epoch: int | None = None
    peak: float | None = None

    def update(self, top1: float, epoch: int) -> bool:
        """Record an epoch's validation top-1; True when it becomes the best (save best.pth)."""
        one_clip = 100.0 / self.clips if self.clips > 0 else 0.0
        if self.peak is not None and top1 < self.peak - one_clip - 1e-9:
            return False
        self.peak = top1 if self.peak is None else max(self.peak, top1)
        self.top1, self.epoch = top1, epoch
        return True

    def state(self) -> dict[str, Any]:
        """What a checkpoint's meta keeps, so that a resumed run chooses as an uninterrupted one."""
        return {"best_top1": self.top1, "best_epoch": self.epoch, "best_peak": self.peak}

    @classmethod
    def from_meta(cls, clips: int, meta: dict[str, Any]) -> BestEpoch:
        top1 = meta.get("best_top1")
        return cls(clips, top1, meta.get("best_epoch"), meta.get("best_peak", top1))  # older: no peak
