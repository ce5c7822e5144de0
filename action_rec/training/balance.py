"""``training.class_balance: none | sampler | loss``: for training sets whose classes are unevenly sized.

- ``sampler``: each epoch draws as many clips as the set holds, with replacement, each clip with
  probability proportional to 1 / (its class's clip count) (torch's WeightedRandomSampler), so every
  class is seen about equally often; under DDP the draw is made once from (seed, epoch) and split
  between the processes, like DistributedSampler does.
- ``loss``: every clip is seen once per epoch, and each sample's loss is weighted by
  ``n / (C x n_c)`` (n clips, C classes, n_c clips of its class; the weights average to 1 over the set).

Neither changes anything on a balanced set.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler, WeightedRandomSampler

__all__ = ["class_weights", "BalancedSampler"]


def class_weights(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """``n / (C x n_c)`` per class (float32, ``C``); 0 for a class without clips."""
    counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.int64), minlength=num_classes).double()
    weights = torch.where(
        counts > 0, len(labels) / (num_classes * counts.clamp(min=1)), torch.zeros_like(counts)
    )
    return weights.float()


class BalancedSampler(Sampler[int]):
    """Class-balanced indices for this process: ``len(labels)`` draws (rounded up to a multiple of the
    world size) by `class_weights`, seeded by (seed, epoch), every ``world_size``-th from ``rank``."""

    def __init__(
        self, labels: Sequence[int], num_classes: int, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        self.labels = torch.as_tensor(list(labels), dtype=torch.int64)
        self.sample_weights = class_weights(labels, num_classes)[self.labels].double()
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.total = -(-len(self.labels) // world_size) * world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        draws = list(
            WeightedRandomSampler(self.sample_weights, self.total, replacement=True, generator=generator)
        )
        return iter(draws[self.rank :: self.world_size])

    def __len__(self) -> int:
        return self.total // self.world_size
