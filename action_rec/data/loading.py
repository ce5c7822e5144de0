"""From annotation files and data roots to checked datasets and DataLoaders (training, eval, export).

Annotation paths are found by :func:`action_rec.data.annotations.resolve_ann_files` and labels checked
by :func:`action_rec.data.annotations.check_labels` (both re-exported here): one rule each for every tool.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch.utils.data import DataLoader

from action_rec.errors import UserError
from action_rec.templates import Template

from .annotations import check_labels as check_record_labels
from .annotations import resolve_ann_files, unused_labels

__all__ = [
    "DataError",
    "resolve_ann_files",
    "check_labels",
    "build_datasets",
    "build_test_set",
    "make_loader",
]

log = logging.getLogger(__name__)


class DataError(UserError):
    """Training data that cannot be used (empty set, label beyond the class count, ...)."""


def check_labels(dataset: Any, num_classes: int, flag: str) -> None:
    """Every label of `dataset` must be a class of the training set (the one label check, for a dataset)."""
    check_record_labels(dataset.records, num_classes, f"the training set [{flag}]")


def _check_quickly(dataset: Any, flag: str) -> None:
    """The cheap part of ``tools/check_dataset.py`` (one folder listing per video), before training."""
    from .check import quick_problems

    problems = quick_problems(dataset.records)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise DataError(f"{problems[0]}{more} [{flag}; tools/check_dataset.py lists them all]")


def _warn_unused_classes(dataset: Any) -> None:
    unused = unused_labels(dataset.records, dataset.num_classes)
    if unused:
        names = ", ".join(f"{i} ({dataset.class_names[i]})" for i in unused[:20])
        log.warning(
            "%d of the %d classes have no training clip: %s%s. The model gets an output for each and never "
            "learns it; remove them from label_map.txt and renumber the label ids, or add clips.",
            len(unused),
            dataset.num_classes,
            names,
            " ..." if len(unused) > 20 else "",
        )


def build_datasets(
    template: Template,
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
    _check_quickly(train_set, "--train-ann-files")
    _warn_unused_classes(train_set)
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
        _check_quickly(val_set, "--val-ann-files")
    return train_set, val_set


def build_test_set(
    template: Template,
    test_ann_files: list[str],
    test_data_roots: list[str],
    class_names: list[str] | None = None,
    normalize: bool = True,
) -> Any:
    """The test set (one centred clip per video), non-empty; labels are checked by the caller, who
    knows the model's class count."""
    from action_rec.data.dataset import RawFrameDataset

    files, roots = resolve_ann_files(test_ann_files, test_data_roots, "--test-ann-files")
    if not files:
        raise DataError("--test-ann-files: no test annotation file given")
    dataset = RawFrameDataset(
        files, roots, template, split="test", class_names=class_names, normalize=normalize
    )
    if len(dataset) == 0:
        raise DataError(f"{', '.join(files)}: the test set is empty (no clips)")
    _check_quickly(dataset, "--test-ann-files")
    return dataset


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
