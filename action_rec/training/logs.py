"""What a run leaves in its output dir besides checkpoints: train.log, metrics.jsonl, TensorBoard
events (when tensorboard is installed), and training_curves.png at the end.

Only the main process (rank 0) writes; the others get a RunLog that stays silent.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from action_rec.fileio import atomic_path, atomic_write

__all__ = ["RunLog", "read_metrics", "plot_training_curves", "TRAIN_LOG", "METRICS", "CURVES"]

TRAIN_LOG = "train.log"
METRICS = "metrics.jsonl"
CURVES = "training_curves.png"


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Records of a metrics.jsonl (skipping a torn last line left by a kill)."""
    records = []
    path = Path(path)
    if not path.is_file():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class RunLog:
    """Text log + JSON-lines scalars + optional TensorBoard, all in `out_dir`.

    With `resume_epoch`, records of epochs after it (left by the interrupted run) are dropped from
    metrics.jsonl so that the file describes the one run the checkpoints continue.
    """

    def __init__(self, out_dir: str | Path, enabled: bool = True, resume_epoch: int | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        metrics = self.out_dir / METRICS
        if resume_epoch is None:
            metrics.unlink(missing_ok=True)
        else:
            kept = [r for r in read_metrics(metrics) if r.get("epoch", 0) <= resume_epoch]
            atomic_write(metrics, "".join(json.dumps(r) + "\n" for r in kept))
        self._log = open(self.out_dir / TRAIN_LOG, "a" if resume_epoch is not None else "w", encoding="utf-8")
        self._metrics = open(metrics, "a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        except ImportError:  # tensorboard is optional
            self.writer = None

    def info(self, message: str) -> None:
        """Print a line (without breaking progress bars) and append it to train.log."""
        if not self.enabled:
            return
        tqdm.write(message)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        for line in message.splitlines() or [""]:
            self._log.write(f"{stamp} {line}\n")
        self._log.flush()

    def scalars(self, kind: str, step: int, values: dict[str, Any]) -> None:
        """Append one record ``{"kind", "step", **values}`` to metrics.jsonl (and TensorBoard)."""
        if not self.enabled:
            return
        record = {"kind": kind, "step": step, **{k: _clean(v) for k, v in values.items()}}
        self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, int | float) and key not in ("epoch", "iteration"):
                    self.writer.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        if not self.enabled:
            return
        self._log.close()
        self._metrics.close()
        if self.writer is not None:
            self.writer.close()


def plot_training_curves(metrics_path: str | Path, out_path: str | Path) -> Path | None:
    """Loss, accuracy and learning rate per epoch (and loss per iteration) as a PNG; None without data."""
    records = read_metrics(metrics_path)
    epochs = {r["epoch"]: r for r in records if r.get("kind") == "epoch"}  # last record of each epoch
    iters = [r for r in records if r.get("kind") == "train"]
    if not epochs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = sorted(epochs)
    rows = [epochs[e] for e in xs]

    def series(key: str) -> list[float]:
        return [r.get(key) if r.get(key) is not None else math.nan for r in rows]

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    if iters:
        axes[0].plot(
            [r["iteration"] / max(r.get("iters_per_epoch", 1), 1) for r in iters],
            [r.get("loss") if r.get("loss") is not None else math.nan for r in iters],
            color="0.75",
            linewidth=0.8,
            label="train loss (per iteration)",
        )
    axes[0].plot(xs, series("train_loss"), marker="o", label="train loss (epoch mean)")
    axes[0].set_title("Loss")
    axes[1].plot(xs, series("train_top1"), marker="o", label="train top-1")
    axes[1].plot(xs, series("val_top1"), marker="o", label="val top-1")
    axes[1].plot(xs, series("val_mean_class"), marker=".", linestyle="--", label="val mean class")
    axes[1].set_title("Accuracy (%)")
    axes[1].set_ylim(0, 100)
    axes[2].plot(xs, series("lr"), marker="o", label="learning rate (head)")
    axes[2].set_title("Learning rate at epoch end")
    axes[2].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return out_path
