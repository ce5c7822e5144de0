"""The training run's DataLoaders: training clips (class-balanced or shuffled, sample-filtered or
not, augmentation seeded per (seed, epoch, clip)), the precise-BN subset and the validation shard."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from action_rec.data.loading import DataError, make_loader
from action_rec.templates import Template
from action_rec.training import distributed as distrib
from action_rec.training.balance import BalancedSampler
from action_rec.training.logs import RunLog
from action_rec.training.sample_filter import FilteredClips, FilteredEpochSampler, SampleFilter

__all__ = ["TrainLoaders", "build_train_loaders"]


@dataclass
class TrainLoaders:
    """What `build_train_loaders` made; ``sampler`` is the training loader's (``set_epoch`` it).

    ``cached_start``: 0 when the training loader yields clips; else it yields the cached outputs of the
    backbone's stages before it (:mod:`.feature_cache`).
    """

    batch_size: int
    iters_per_epoch: int
    workers: int
    sampler: distrib.EpochSampler
    train: DataLoader
    sample_filter: SampleFilter | None
    bn: DataLoader | None
    val: DataLoader | None
    cached_start: int = 0


def build_train_loaders(
    template: Template,
    options: Any,
    info: distrib.ProcessInfo,
    train_set: Any,
    val_set: Any,
    log: RunLog,
) -> TrainLoaders:
    """Loaders for this process of the run (`options`: the trainer's TrainOptions)."""
    t = template.training
    # Drop the last incomplete batch (a batch of 1 breaks BatchNorm); shrink the batch for tiny sets.
    batch_size = t.batch_size
    per_rank = math.ceil(len(train_set) / info.world_size)
    if per_rank < batch_size:
        if per_rank < 2:
            raise DataError(
                f"--train-ann-files: {len(train_set)} training clip(s) for {info.world_size} "
                "process(es): need at least 2 per process"
            )
        log.info(f"Batch size {batch_size} > {per_rank} clips per process: using batches of {per_rank}")
        batch_size = per_rank
    iters_per_epoch = per_rank // batch_size
    workers = int(t.workers if options.workers is None else options.workers)
    # Data order: DistributedSampler shuffles with (seed, epoch); augmentation: seeded per (seed, epoch, clip).
    if t.class_balance == "sampler":
        order = BalancedSampler(
            train_set.labels, len(train_set.class_names), options.seed, info.rank, info.world_size
        )
    else:
        order = DistributedSampler(
            train_set, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=options.seed
        )
    sample_filter: SampleFilter | None = None
    if t.sample_filtering:
        inp = template.input
        sample_filter = SampleFilter(
            train_set.records,
            inp.clip_len,
            inp.frame_interval,
            inp.target_fps,
            options.seed,
        )
        sampler = FilteredEpochSampler(order, sample_filter)
        train_data = FilteredClips(train_set, options.seed)
    else:
        sampler = distrib.EpochSampler(order)
        train_data = distrib.EpochSeededDataset(train_set, options.seed)
    train_loader = make_loader(
        train_data,
        batch_size,
        sampler,
        workers,
        drop_last=True,
    )
    bn_loader = None
    if options.precise_bn > 0:
        # A fixed random subset of the training clips, centre-cropped like validation clips. Shuffled:
        # batches of one class each (annotation files are often sorted) would understate the variance.
        from action_rec.data import RawFrameDataset

        bn_set = RawFrameDataset(
            train_set.ann_files,
            train_set.data_roots,
            template,
            "val",
            train_set.class_names,
            normalize=False,
        )
        order = torch.randperm(len(bn_set), generator=torch.Generator().manual_seed(options.seed)).tolist()
        shard = order[: options.precise_bn][info.rank :: info.world_size]
        # Whole batches only: a last batch of one clip has no variance for the head's BatchNorm.
        bn_loader = make_loader(bn_set, min(batch_size, max(len(shard), 2)), shard, workers, drop_last=True)
    val_loader = None
    if val_set is not None:
        shard = distrib.ShardSampler(len(val_set), info.rank, info.world_size)
        val_loader = make_loader(val_set, batch_size, shard, workers)
    return TrainLoaders(
        batch_size, iters_per_epoch, workers, sampler, train_loader, sample_filter, bn_loader, val_loader
    )
