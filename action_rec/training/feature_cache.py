"""``training.cache_features``: the frozen part's outputs computed once per clip and view, so that
fine-tuning epochs run only the part that trains.

With ``training.trainable: head`` or ``blocks:N`` the start of the network never changes; running it
again every epoch is most of the cost on a CPU. Instead, ``training.cache_views`` augmented views of
every training clip are passed through the frozen part once (view v is exactly the clip epoch v would
have drawn: augmentation seeded by (seed, v, clip)), with a progress bar, and stored in
``<out_dir>/feature_cache/<key>/``. Each epoch then gives every clip one of its views, drawn from
(seed, epoch, clip). The head-only network keeps only the pooled 960 values per view.

The key hashes everything the features depend on: the template (after --set), the cut, the number
of views, the seed, the annotation files' text, each video's frame directory (modification time), and
the frozen part's weights and BatchNorm statistics. A different key rebuilds the cache (and removes
the stale one); a resumed run finds its own. Sample filtering needs fresh clip offsets every epoch, so
it is off while the cache is used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from action_rec.data.loading import make_loader
from action_rec.fileio import atomic_path, atomic_write
from action_rec.templates import Template
from action_rec.training.distributed import EpochSampler, EpochSeededDataset, ProcessInfo
from action_rec.training.freezing import BackboneSplit
from action_rec.training.loaders import TrainLoaders

__all__ = ["CACHE_DIR", "cache_key", "build_feature_cache", "CachedViews", "cached_feature_loaders"]

CACHE_DIR = "feature_cache"


def cache_key(template: Template, train_set: Any, split: BackboneSplit, views: int, seed: int) -> str:
    """A hex digest of everything the cached features depend on (see the module docstring)."""
    h = hashlib.sha256()
    h.update(json.dumps([template.to_dict(), split.start, views, seed], sort_keys=True, default=str).encode())
    for ann in train_set.ann_files:
        h.update(Path(ann).read_bytes())
    for record in train_set.records:
        stat = record.frame_dir.stat()
        h.update(f"{record.frame_dir}:{stat.st_mtime_ns}".encode())
    for module in split.frozen_modules():
        for name, tensor in module.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:20]


@torch.no_grad()
def _compute_view(
    view: int,
    train_set: Any,
    model: nn.Module,
    split: BackboneSplit,
    batch_size: int,
    workers: int,
    prepare,
    seed: int,
    progress: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, glob) of every training clip for `view` (glob ``N x 0`` without a global path)."""
    keys = [(view, i) for i in range(len(train_set))]
    loader = make_loader(EpochSeededDataset(train_set, seed), batch_size, keys, workers, persistent=False)
    xs, globs = [], []
    for clips, _ in tqdm(
        loader, desc=f"caching features, view {view + 1}", disable=not progress, leave=False
    ):
        x, glob = split.prefix(prepare(clips))
        if split.head_only:
            x = x.mean(dim=(2, 3, 4), keepdim=True)  # all the head uses of it
        xs.append(x.float().cpu().contiguous())
        globs.append(glob.float().cpu() if glob is not None else torch.zeros(len(x), 0))
    return torch.cat(xs), torch.cat(globs)


def build_feature_cache(
    out_dir: Path,
    template: Template,
    train_set: Any,
    model: nn.Module,
    split: BackboneSplit,
    views: int,
    seed: int,
    batch_size: int,
    workers: int,
    prepare,
    progress: bool = True,
    log=print,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The cached (x, glob) of every view, computed where missing; the frozen part must be in eval mode."""
    key = cache_key(template, train_set, split, views, seed)
    root = Path(out_dir) / CACHE_DIR
    folder = root / key
    if root.is_dir():
        for stale in root.iterdir():  # caches of other data, templates or weights
            if stale.is_dir() and stale.name != key:
                shutil.rmtree(stale)
    folder.mkdir(parents=True, exist_ok=True)
    missing = [v for v in range(views) if not (folder / f"view_{v}.pt").is_file()]
    if missing:
        log(
            f"Caching the frozen part's outputs (cut before module {split.start}) for {len(train_set)} clips "
            f"x {views} views in {folder} ({len(missing)} view(s) to compute)"
        )
    for v in missing:
        x, glob = _compute_view(v, train_set, model, split, batch_size, workers, prepare, seed, progress)
        with atomic_path(folder / f"view_{v}.pt") as tmp:
            torch.save({"x": x, "glob": glob}, tmp)
    atomic_write(folder / "key.json", json.dumps({"key": key, "views": views, "start": split.start}) + "\n")
    cached = []
    for v in range(views):
        state = torch.load(folder / f"view_{v}.pt", map_location="cpu", weights_only=True, mmap=True)
        cached.append((state["x"], state["glob"]))
    return cached


class CachedViews(Dataset):
    """``dataset[(epoch, i)]`` = ``((x, glob), label)`` of one of clip i's cached views, the view drawn
    from (seed, epoch, i)."""

    def __init__(self, views: list[tuple[torch.Tensor, torch.Tensor]], labels: list[int], seed: int) -> None:
        self.views, self.labels, self.seed = views, labels, seed

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: tuple[int, int]) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
        epoch, index = key
        view = int(np.random.default_rng([self.seed, epoch, index, 3]).integers(len(self.views)))
        x, glob = self.views[view]
        return (x[index], glob[index]), self.labels[index]


def cached_feature_loaders(
    loaders: TrainLoaders,
    split: BackboneSplit,
    out_dir: Path,
    template: Template,
    train_set: Any,
    model: nn.Module,
    prepare,
    seed: int,
    info: ProcessInfo,
    progress: bool = True,
    log=print,
) -> TrainLoaders:
    """`loaders` with the training loader on cached features of `split`'s frozen part (its sampler
    unfiltered, ``sample_filter`` None, ``cached_start`` the cut); `loaders` unchanged, with a log line,
    when nothing is frozen. Under DDP rank 0 computes, the others load."""
    if split.trains_everything:
        log("training.cache_features: nothing is frozen with training.trainable: all, so nothing is cached")
        return loaders
    if loaders.sample_filter is not None:
        log("training.cache_features: sample filtering is off (cached clips have fixed offsets)")
    model.eval()
    if info.distributed and not info.is_main:
        dist.barrier()
    views = build_feature_cache(
        out_dir, template, train_set, model, split, template.training.cache_views, seed,
        loaders.batch_size, loaders.workers, prepare, progress=progress and info.is_main, log=log,
    )  # fmt: skip
    if info.distributed and info.is_main:
        dist.barrier()
    sampler = EpochSampler(loaders.sampler.sampler)
    dataset = CachedViews(views, train_set.labels, seed)
    train = make_loader(dataset, loaders.batch_size, sampler, 0, drop_last=True)
    return dataclasses.replace(
        loaders, sampler=sampler, train=train, sample_filter=None, cached_start=split.start
    )
