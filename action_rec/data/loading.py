"""From annotation files and data roots to checked datasets and DataLoaders (training, eval, export)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from action_rec.errors import UserError

__all__ = ["DataError", "resolve_ann_files", "check_labels", "build_datasets", "make_loader"]


class DataError(UserError):
    """Training data that cannot be used (empty set, label beyond the class count, ...)."""


def resolve_ann_files(ann_files: list[str], data_roots: list[str], flag: str) -> tuple[list[str], list[str]]:
    """Pair annotation files with data roots (one root for all files, or one per file); a file not found
    as given is looked for inside its data root (``--train-ann-files train.txt --train-data-roots DIR``)."""
    if not ann_files:
        return [], []
    if len(data_roots) == 1 and len(ann_files) > 1:
        data_roots = data_roots * len(ann_files)
    if len(data_roots) != len(ann_files):
        raise DataError(
            f"{flag}: {len(ann_files)} annotation file(s) but {len(data_roots)} data root(s); "
            "give one root, or one per file"
        )
    resolved = []
    for ann, root in zip(ann_files, data_roots, strict=True):
        path = Path(ann)
        if not path.is_file() and (Path(root) / ann).is_file():
            path = Path(root) / ann
        if not path.is_file():
            raise DataError(f"{flag}: {ann}: no such annotation file (nor {Path(root) / ann})")
        if not Path(root).is_dir():
            raise DataError(f"{flag}: data root {root}: no such directory")
        resolved.append(str(path))
    return resolved, [str(r) for r in data_roots]


def check_labels(dataset: Any, num_classes: int, flag: str) -> None:
    """Every label of `dataset` must be a class of the training set; names FILE:LINE otherwise."""
    for record in dataset.records:
        if not 0 <= int(record.label) < num_classes:
            raise DataError(
                f"{record.where}: label {record.label} is beyond the {num_classes} classes of the training set "
                f"(ids 0..{num_classes - 1}) [{flag}]"
            )


def build_datasets(
    template: dict[str, Any],
    train_ann_files: list[str],
    train_data_roots: list[str],
    val_ann_files: list[str],
    val_data_roots: list[str],
    normalize: bool = True,
) -> tuple[Any, Any | None]:
    """Training set (it decides the classes) and validation set (same classes, or None), checked.

    ``normalize=False``: both give uint8 clips (see ``RawFrameDataset``), normalised per batch.
    """
    from action_rec.data.dataset import RawFrameDataset

    train_files, train_roots = resolve_ann_files(train_ann_files, train_data_roots, "--train-ann-files")
    if not train_files:
        raise DataError("--train-ann-files: no training annotation file given")
    train_set = RawFrameDataset(train_files, train_roots, template, split="train", normalize=normalize)
    if len(train_set) == 0:
        raise DataError(f"{', '.join(train_files)}: the training set is empty (no clips)")
    val_set = None
    val_files, val_roots = resolve_ann_files(val_ann_files, val_data_roots, "--val-ann-files")
    if val_files:
        val_set = RawFrameDataset(
            val_files,
            val_roots,
            template,
            split="val",
            class_names=train_set.class_names,
            normalize=normalize,
        )
        if len(val_set) == 0:
            raise DataError(f"{', '.join(val_files)}: the validation set is empty (no clips)")
        check_labels(val_set, train_set.num_classes, "--val-ann-files")
    return train_set, val_set


def make_loader(
    dataset, batch_size: int, sampler, workers: int, drop_last: bool = False, persistent: bool = True
) -> DataLoader:
    """A DataLoader whose workers are *spawned* (not forked) and kept for the whole run.

    Forked workers inherit the parent's OpenCV thread pool and hang in it when the parent decoded or
    wrote images before (a notebook, a test, the synthetic data generator); spawned ones start clean,
    and persistent ones pay their start-up once per run rather than once per epoch. As with any
    spawned process, a script calling this must guard its entry point with ``if __name__ == "__main__"``.
    """
    from action_rec.data.dataset import worker_init_fn

    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        worker_init_fn=worker_init_fn if workers else None,
        multiprocessing_context="spawn" if workers else None,
        persistent_workers=bool(workers and persistent),
    )
