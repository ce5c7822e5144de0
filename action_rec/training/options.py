"""What a training takes besides the template (`TrainOptions`, the CLI's flags) and what it returns
(`TrainResult`, also written to ``result.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TrainOptions", "TrainResult"]


@dataclass
class TrainOptions:
    """Everything `train` needs besides the template (the CLI's flags, resolved)."""

    out_dir: Path
    train_ann_files: list[str]
    train_data_roots: list[str]
    val_ann_files: list[str] = field(default_factory=list)
    val_data_roots: list[str] = field(default_factory=list)
    load_weights: str | None = None
    resume: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    world_size: int = 1  # processes (one per GPU on CUDA)
    workers: int | None = None  # DataLoader workers per process; None = template training.workers
    seed: int = 0
    amp: bool = False
    progress: bool = True
    stop_after: int | None = None  # stop after this many epochs *of this invocation* (resume later)
    precise_bn: int = 0  # training clips to recompute BatchNorm statistics on before each validation


@dataclass
class TrainResult:
    """What a finished training produced (also written to ``result.json`` in the output dir)."""

    out_dir: str
    epochs: int
    iterations: int
    best_top1: float | None
    best_epoch: int | None
    last_metrics: dict[str, float]
    latest: str
    best: str | None
    curves: str | None
    seconds: float
    num_classes: int
    class_names: list[str]
