"""Classification metrics from a confusion matrix and a top-k count.

Everything is accumulated as integer counts (`AccuracyMeter`), so that counts from several processes
can be summed (all-reduced) and the metrics then computed exactly, as if one process had seen all clips.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["AccuracyMeter", "confusion_matrix", "topk_correct", "metrics_from_counts"]


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``C x C`` int64 counts, rows = true class, columns = predicted class."""
    index = labels.to(torch.int64) * num_classes + predictions.to(torch.int64)
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, k: int) -> int:
    """How many rows of `scores` (``N x C``) have their label among the `k` highest scores."""
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices
    return int((top == labels[:, None]).any(dim=1).sum())


def metrics_from_counts(confusion: torch.Tensor, top5_correct: int) -> dict[str, Any]:
    """Top-1, top-5 and mean class accuracy in percent, plus per-class accuracies (NaN for a class
    without clips; the mean is over the classes that have clips, as the original computed it)."""
    confusion = confusion.to(torch.float64).cpu()
    total = float(confusion.sum())
    per_class_total = confusion.sum(dim=1)
    correct = confusion.diagonal()
    per_class = [
        float(c / n * 100) if n > 0 else math.nan for c, n in zip(correct, per_class_total, strict=True)
    ]
    present = [a for a in per_class if not math.isnan(a)]
    return {
        "top1": float(correct.sum() / total * 100) if total else 0.0,
        "top5": float(top5_correct / total * 100) if total else 0.0,
        "mean_class": sum(present) / len(present) if present else 0.0,
        "per_class": per_class,
        "num_clips": int(total),
    }


class AccuracyMeter:
    """Accumulates the confusion matrix and the top-5 count over batches of scores; with
    ``keep_probabilities`` also every clip's class probabilities, in order (one process only: they
    are what ``predictions.csv`` lists)."""

    def __init__(
        self, num_classes: int, device: torch.device | str = "cpu", keep_probabilities: bool = False
    ) -> None:
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
        self.top5 = torch.zeros((), dtype=torch.int64, device=device)
        self.probabilities: list[torch.Tensor] | None = [] if keep_probabilities else None

    @torch.no_grad()
    def update(
        self, scores: torch.Tensor, labels: torch.Tensor, probabilities: torch.Tensor | None = None
    ) -> None:
        """Count a batch of `scores` (``N x C``; any monotonic form: cosines, logits, probabilities);
        `probabilities` are kept when the meter keeps them (`scores` themselves when not given)."""
        labels = labels.to(self.confusion.device)
        scores = scores.to(self.confusion.device)
        self.confusion += confusion_matrix(labels, scores.argmax(dim=1), self.num_classes)
        self.top5 += topk_correct(scores, labels, 5)
        if self.probabilities is not None:
            self.probabilities.append((scores if probabilities is None else probabilities).float().cpu())

    def all_reduce(self) -> None:
        """Sum the counts over all processes of the default group (no-op without one)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            if self.probabilities is not None:
                raise RuntimeError("per-clip probabilities are kept by one process only")
            dist.all_reduce(self.confusion)
            dist.all_reduce(self.top5)

    def compute(self) -> dict[str, Any]:
        result = metrics_from_counts(self.confusion, int(self.top5))
        result["confusion"] = self.confusion.cpu()
        if self.probabilities is not None:
            result["probabilities"] = torch.cat(self.probabilities)
        return result
