"""Evaluation reports: metrics.yaml (as the original toolkit wrote it), a confusion-matrix PNG, the
per-class accuracies and every clip's prediction (which clips are wrong, and how sure the model was),
all written atomically beside each other."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from action_rec.data.annotations import VideoRecord
from action_rec.fileio import atomic_write

__all__ = [
    "metric_entries",
    "write_metrics_yaml",
    "write_per_class_csv",
    "write_predictions_csv",
    "plot_confusion_matrix",
]


def metric_entries(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``key / value / unit / display_name`` entries of metrics.yaml, rounded for reading.

    ``accuracy`` is the mean per-class top-1, as the original's eval.py wrote it (the published "Mean
    Top-1" figures); ``mean_class_accuracy`` is the same figure under an explicit name, and the overall
    top-1 (correct clips / all clips) is ``top1_accuracy``.
    """
    entries = [
        ("accuracy", result["mean_class"], "%", "Mean Top-1 (mean per-class top-1, as the original)"),
        ("top1_accuracy", result["top1"], "%", "Top-1 accuracy (over all clips)"),
        ("top5_accuracy", result["top5"], "%", "Top-5 accuracy"),
        ("mean_class_accuracy", result["mean_class"], "%", "Mean class accuracy (top-1)"),
        ("complexity", result["gflops"], "GFLOPs", "Complexity"),
        ("size", result["params_m"], "Mp", "Size (parameters, millions)"),
        ("checkpoint_size", result["checkpoint_mb"], "MB", "Checkpoint file size"),
    ]
    rows = [
        {"key": key, "value": round(float(value), 4), "unit": unit, "display_name": name}
        for key, value, unit, name in entries
        if value is not None
    ]
    for key, value in (result.get("deployment") or {}).items():  # what ran, for exported models
        rows.append(
            {"key": key, "value": value, "unit": "", "display_name": key.replace("_", " ").capitalize()}
        )
    return rows


def write_metrics_yaml(path: str | Path, entries: list[dict[str, Any]]) -> Path:
    """``metrics: [{key, value, unit, display_name}, ...]`` in YAML."""
    path = Path(path)
    atomic_write(path, yaml.safe_dump({"metrics": entries}, sort_keys=False))
    return path


def write_per_class_csv(
    path: str | Path, confusion: torch.Tensor, class_names: list[str], per_class: list[float]
) -> Path:
    """One row per class: id, name, clips, correct, accuracy (%; empty for a class without clips)."""
    path = Path(path)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["class_id", "class_name", "clips", "correct", "accuracy"])
    totals = confusion.sum(dim=1).tolist()
    correct = confusion.diagonal().tolist()
    for i, name in enumerate(class_names):
        acc = per_class[i]
        writer.writerow([i, name, totals[i], correct[i], "" if math.isnan(acc) else f"{acc:.2f}"])
    atomic_write(path, buffer.getvalue())
    return path


def write_predictions_csv(
    path: str | Path, records: Sequence[VideoRecord], probabilities: torch.Tensor, class_names: list[str]
) -> Path:
    """One row per clip, in annotation order: its annotation (``FILE:LINE``), video and annotated frames,
    the true and the predicted class, whether they agree, the predicted class's probability and the
    true class's. Sorting by ``correct`` then ``probability`` lists the confident mistakes first."""
    if len(records) != len(probabilities):
        raise ValueError(f"{len(records)} annotations but {len(probabilities)} predictions")
    path = Path(path)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["annotation", "video", "start_frame", "end_frame", "true_class", "predicted_class",
                     "correct", "probability", "true_probability"])  # fmt: skip
    predictions = probabilities.argmax(dim=1).tolist()
    for record, row, predicted in zip(records, probabilities.tolist(), predictions, strict=True):
        writer.writerow([
            record.where, record.rel_dir, record.clip_start, record.clip_end, class_names[record.label],
            class_names[predicted], int(predicted == record.label), f"{row[predicted]:.4f}",
            f"{row[record.label]:.4f}",
        ])  # fmt: skip
    atomic_write(path, buffer.getvalue())
    return path


def plot_confusion_matrix(path: str | Path, confusion: torch.Tensor, class_names: list[str]) -> Path:
    """Row-normalised confusion matrix (rows: true class) as a PNG; names on the axes up to 40 classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    counts = confusion.to(torch.float64)
    rows = counts.sum(dim=1, keepdim=True).clamp(min=1)
    normalised = (counts / rows).numpy()
    n = len(class_names)
    side = min(max(4.0, 0.35 * n + 2.5), 30.0)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if n <= 40:
        ax.set_xticks(range(n), class_names, rotation=90, fontsize=8)
        ax.set_yticks(range(n), class_names, fontsize=8)
    if n <= 15:
        for i in range(n):
            for j in range(n):
                if counts[i, j] > 0:
                    colour = "white" if normalised[i, j] > 0.5 else "black"
                    ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix ({int(counts.sum())} clips)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
    return path
