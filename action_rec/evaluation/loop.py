"""The one clip-scoring loop: validation during training and ``eval.py`` both count through it.

Scores are accumulated as counts (`AccuracyMeter`), summed over processes when there are several, so
the metrics are exactly those of one process seeing every clip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from action_rec.evaluation.metrics import AccuracyMeter

__all__ = ["Prepare", "model_input", "score_clips"]

Prepare = Callable[[torch.Tensor], torch.Tensor]


def model_input(clips: torch.Tensor, device: torch.device, prepare: Prepare | None = None) -> torch.Tensor:
    """A loader batch as the model's input: `prepare(clips)` (e.g. the trainer's uint8 -> normalised
    float on the device), or the clips as they are, moved to `device`."""
    return clips.to(device, non_blocking=True) if prepare is None else prepare(clips)


@torch.no_grad()
def score_clips(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    device: torch.device,
    prepare: Prepare | None = None,
    progress: bool = False,
    keep_probabilities: bool = False,
) -> dict[str, Any]:
    """Run `model` (in eval mode) over `loader`; top-1, top-5, mean class accuracy (%), per-class
    accuracies, the confusion matrix and the clip count, over all processes of the default group.
    With `keep_probabilities` (one process) also ``probabilities``: every clip's class probabilities
    (``model.probabilities``), in the loader's order."""
    model.eval()
    meter = AccuracyMeter(num_classes, device, keep_probabilities=keep_probabilities)
    for clips, labels in tqdm(
        loader, desc="evaluating", disable=not progress, dynamic_ncols=True, leave=False
    ):
        scores = model(model_input(clips, device, prepare))
        meter.update(scores, labels.to(device), model.probabilities(scores) if keep_probabilities else None)
    meter.all_reduce()
    return meter.compute()
