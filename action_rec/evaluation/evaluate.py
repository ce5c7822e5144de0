"""`evaluate`: accuracy of a checkpoint on a test set (one centred clip, one centre crop per video) and
its complexity, written as metrics.yaml + confusion_matrix.png + per_class_accuracy.csv.

The checkpoint decides the model: a training checkpoint of ours carries its template's model, input
and loss settings (clip length, input size, head) and its class names, which are used as they are
(``action_rec.models.checkpoint``); a bare snapshot is read with the given template, and its head must
fit the test set's classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import SequentialSampler

from action_rec.errors import UserError
from action_rec.evaluation.loop import score_clips
from action_rec.evaluation.report import (
    metric_entries,
    plot_confusion_matrix,
    write_metrics_yaml,
    write_per_class_csv,
    write_predictions_csv,
)
from action_rec.templates import Template

__all__ = ["EvaluationError", "evaluate", "write_report"]


class EvaluationError(UserError):
    """The checkpoint and the test set do not go together (head of another class count, ...)."""


def evaluate(
    template: Template,
    weights: str | Path,
    test_ann_files: list[str],
    test_data_roots: list[str],
    *,
    overrides: list[str] | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    log=print,
) -> dict[str, Any]:
    """Evaluate `weights` on the test set; returns top1/top5/mean_class (%), per_class, confusion,
    class_names, params_m, gflops, checkpoint_mb, input_shape, the template used, and per clip its
    annotation (``records``) and class ``probabilities``."""
    from action_rec.data.loading import build_test_set, check_labels, make_loader
    from action_rec.evaluation.complexity import count_complexity
    from action_rec.models.checkpoint import build_loaded_model, model_template, read_checkpoint

    weights = Path(weights)
    checkpoint = read_checkpoint(weights)
    template = model_template(template, checkpoint, log, overrides or ())
    class_names = checkpoint.class_names

    dataset = build_test_set(template, test_ann_files, test_data_roots, class_names)
    class_names = list(dataset.class_names) if class_names is None else class_names
    num_classes = len(class_names)
    if num_classes < dataset.num_classes and checkpoint.class_names is None:
        num_classes = dataset.num_classes
    check_labels(dataset, num_classes, "--test-ann-files")

    head_classes = checkpoint.head_classes
    if checkpoint.class_names is None and head_classes is not None and head_classes != num_classes:
        raise EvaluationError(
            f"{weights}: its head has {head_classes} classes but the test set has {num_classes}: "
            "evaluate a checkpoint fine-tuned on these classes (train.py --load-weights ...)"
        )
    model, report = build_loaded_model(template, checkpoint, num_classes, log=None)
    if not report.head_loaded:
        raise EvaluationError(
            f"{weights}: {report.message.split('; ', 1)[-1]}; a re-initialised head cannot be evaluated: "
            "fine-tune it on these classes first"
        )

    name = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    torch_device = torch.device(name)
    model.to(torch_device)
    loader = make_loader(
        dataset,
        batch_size or template.training.batch_size,
        SequentialSampler(dataset),
        template.training.workers if workers is None else workers,
        persistent=False,
    )
    result = score_clips(model, loader, num_classes, torch_device, progress=progress, keep_probabilities=True)

    inp = template.input
    shape = (1, 3, inp.clip_len, inp.size, inp.size)
    complexity = count_complexity(model, shape)
    result.update(
        class_names=class_names,
        params_m=complexity["params_m"],
        gflops=complexity["gflops"],
        checkpoint_mb=weights.stat().st_size / 1e6,
        input_shape=list(shape),
        template=template,
        weights=str(weights),
        records=list(dataset.records),
    )
    return result


def write_report(result: dict[str, Any], metrics_path: str | Path) -> dict[str, Path]:
    """metrics.yaml at `metrics_path` (a directory gets metrics.yaml inside), and beside it
    confusion_matrix.png, per_class_accuracy.csv and, when the result has per-clip probabilities,
    predictions.csv. Returns the paths written."""
    metrics_path = Path(metrics_path)
    if metrics_path.is_dir() or metrics_path.suffix.lower() not in (".yaml", ".yml"):
        metrics_path = metrics_path / "metrics.yaml"
    out_dir = metrics_path.parent
    paths = {
        "metrics": write_metrics_yaml(metrics_path, metric_entries(result)),
        "confusion": plot_confusion_matrix(
            out_dir / "confusion_matrix.png", result["confusion"], result["class_names"]
        ),
        "per_class": write_per_class_csv(
            out_dir / "per_class_accuracy.csv",
            result["confusion"],
            result["class_names"],
            result["per_class"],
        ),
    }
    if "probabilities" in result and "records" in result:
        paths["predictions"] = write_predictions_csv(
            out_dir / "predictions.csv", result["records"], result["probabilities"], result["class_names"]
        )
    return paths
