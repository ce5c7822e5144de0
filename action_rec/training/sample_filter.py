"""X3D's sample filtering: clip offsets drawn towards the frames the model gets right.

The original's rule (on in its X3D template): from epoch ``start_epoch`` (1) on, after every iteration,
each frame inside a training clip's span accumulates ``+conf`` when the clip was classified right and
``-conf`` when wrong, ``conf`` being the clip's highest score (the max cosine of the angular head; the
max softmax probability of the linear one). Once more than ``coverage`` (80 %) of a video's segment
frames have been scored, its training clip offset is drawn with probability proportional to the sum
over the clip's window of ``w_f``, ``w_f = 0`` where the accumulated weight is negative, else
``1 + weight``; uniformly when every window sums to 0. Videos so far mostly wrong are thereby sampled
where they are least wrong, and frames the model keeps missing (mislabelled or empty stretches of a
long segment) drop out.

Under DDP every process applies every process's updates, gathered after each iteration, in rank
order: the weights stay identical everywhere. One deliberate difference: the offsets of an epoch are
all drawn in the main process when the epoch starts, from the weights as they stand then (the
original's loader workers read weights that lag by however many batches they had prefetched). That
keeps each clip a function of (seed, epoch, clip, weights at the epoch start), independent of the
number of loader workers, and the weights travel in the checkpoint, so ``--resume`` stays exact.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from action_rec.data.sampling import clip_span, weighted_offset
from action_rec.training.distributed import EpochSampler, seeded_sample
from action_rec.training.run_state import CheckpointError

__all__ = ["SampleFilter", "FilteredEpochSampler", "FilteredClips"]


class SampleFilter:
    """Per-frame weights of every training video's segment, and the offsets drawn from them."""

    def __init__(
        self,
        records: Sequence[Any],
        clip_len: int,
        frame_interval: float,
        target_fps: float | None,
        seed: int,
        start_epoch: int = 1,
        coverage: float = 0.8,
    ) -> None:
        self.lengths = np.array([r.clip_end - r.clip_start for r in records], dtype=np.int64)
        self.spans = np.array([clip_span(r, clip_len, frame_interval, target_fps) for r in records], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.seed, self.start_epoch, self.coverage = seed, start_epoch, coverage
        total = int(self.lengths.sum())
        self.weight = torch.zeros(total, dtype=torch.float64)
        self.scored = torch.zeros(total, dtype=torch.bool)

    def frames(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(accumulated weights, scored mask) of video `index`'s segment frames."""
        a, n = int(self.starts[index]), int(self.lengths[index])
        return self.weight[a : a + n], self.scored[a : a + n]

    def offset(self, epoch: int, index: int) -> int:
        """Video `index`'s clip offset for `epoch`: by weight once it is covered enough, else uniform."""
        rng = np.random.default_rng([self.seed, epoch, index, 2])
        weight, scored = self.frames(index)
        span, room = int(self.spans[index]), int(self.lengths[index] - self.spans[index])
        if float(scored.double().mean()) > self.coverage:
            w = torch.where(weight < 0, torch.zeros_like(weight), 1.0 + weight)
            return weighted_offset(w.numpy(), span, rng)
        return int(rng.integers(0, room + 1)) if room > 0 else 0

    def update(
        self,
        epoch: int,
        keys: Sequence[tuple[int, int, int]],
        scores: torch.Tensor,
        labels: torch.Tensor,
        angular: bool,
    ) -> None:
        """Score the frames of the clips `keys` (``(epoch, index, offset)``, one per row of `scores`)."""
        if epoch < self.start_epoch:
            return
        scores = scores.detach().float()
        conf = scores.max(dim=1).values if angular else F.softmax(scores, dim=1).max(dim=1).values
        signed = torch.where(scores.argmax(dim=1) == labels, conf, -conf)
        rows = torch.tensor([[float(index), float(offset)] for _, index, offset in keys], dtype=torch.float64)
        rows = torch.cat([rows, signed.cpu().double()[:, None]], dim=1).to(labels.device)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered = [torch.empty_like(rows) for _ in range(dist.get_world_size())]
            dist.all_gather(gathered, rows)
            rows = torch.cat(gathered)
        for index, offset, value in rows.cpu().tolist():
            self._add(int(index), int(offset), value)

    def _add(self, index: int, offset: int, value: float) -> None:
        n = int(self.lengths[index])
        covered = (offset + torch.arange(min(int(self.spans[index]), n))) % n + int(self.starts[index])
        self.weight[covered] += value
        self.scored[covered] = True

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight.clone(), "scored": self.scored.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state["weight"].shape != self.weight.shape:
            raise CheckpointError(
                f"--resume: the checkpoint's sample-filtering weights cover {state['weight'].numel()} frames, "
                f"the training set has {self.weight.numel()}: resume with the data the run started with"
            )
        self.weight.copy_(state["weight"])
        self.scored.copy_(state["scored"])


class FilteredEpochSampler(EpochSampler):
    """`EpochSampler` whose keys also carry the clip offset, ``(epoch, index, offset)``, all drawn when
    the epoch starts; ``keys`` keeps them in order, so batch i is ``keys[i * B : (i + 1) * B]``."""

    def __init__(self, sampler: Sampler[int], sample_filter: SampleFilter) -> None:
        super().__init__(sampler)
        self.sample_filter = sample_filter
        self.keys: list[tuple[int, int, int]] = []

    def __iter__(self) -> Iterator[tuple[int, int, int]]:  # type: ignore[override]
        epoch = self.epoch
        self.keys = [(epoch, index, self.sample_filter.offset(epoch, index)) for index in self.sampler]
        return iter(self.keys)


class FilteredClips(Dataset):
    """``dataset[(epoch, i, offset)]``: training clip i at that offset, augmented as `EpochSeededDataset`
    would (torch's generator seeded by (seed, epoch, i)): the dataset's own training path
    (``RawFrameDataset.training_item``), offset given."""

    def __init__(self, dataset: Any, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[torch.Tensor, int]:
        epoch, index, offset = key
        with seeded_sample(self.seed, epoch, index):
            return self.dataset.training_item(index, offset)
