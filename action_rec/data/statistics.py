"""Per-clip colour statistics of a dataset: the source of CrossNorm's ``mean_std_list.txt``.

As the original made its list: run the test pipeline without normalisation (centred clip,
short-side resize, centre crop) over the training clips, keep each clip's per-channel mean and std
on the 0-255 scale, and drop entries with a mean or std <= 1 in any channel (black or flat clips).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from action_rec.runtime.frames import center_crop_clip
from action_rec.templates import Template

from .annotations import VideoRecord
from .crossnorm import clip_mean_std
from .dataset import load_frames, worker_init_fn
from .sampling import sample_clip_indices

__all__ = ["clip_statistics", "mean_std_pairs", "MIN_KEPT"]

MIN_KEPT = 1.0  # entries with a channel mean or std <= this are dropped


class _ClipStats(Dataset):
    def __init__(self, records: Sequence[VideoRecord], template: Template):
        inp = template.input
        self.records = records
        self.clip_len, self.interval, self.target_fps = (
            inp.clip_len,
            inp.frame_interval,
            inp.target_fps,
        )
        self.resize_short, self.size = inp.resize_short, inp.size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> torch.Tensor:
        record = self.records[index]
        indices = sample_clip_indices(record, self.clip_len, self.interval, None, self.target_fps)
        clip = center_crop_clip(load_frames(record, indices), self.resize_short, self.size)
        mean, std = clip_mean_std(clip)
        return torch.from_numpy(np.stack([mean, std]))


def clip_statistics(
    records: Sequence[VideoRecord], template: Template, workers: int = 2, progress: bool = True
) -> np.ndarray:
    """``N x 2 x 3`` (mean, std) of every record's centred test clip, un-normalised, RGB, 0-255."""
    loader = DataLoader(
        _ClipStats(records, template), batch_size=16, num_workers=workers, worker_init_fn=worker_init_fn
    )
    parts = [
        batch.numpy() for batch in tqdm(loader, desc="clip statistics", unit="batch", disable=not progress)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, 2, 3))


def mean_std_pairs(stats: np.ndarray) -> np.ndarray:
    """The entries CrossNorm may use: those with every channel's mean and std above ``MIN_KEPT``."""
    keep = (stats > MIN_KEPT).all(axis=(1, 2))
    return stats[keep]
