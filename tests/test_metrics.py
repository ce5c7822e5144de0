"""Metrics against a hand-made set of predictions."""

import math

import pytest
import torch

from action_rec.evaluation.metrics import AccuracyMeter, confusion_matrix, metrics_from_counts, topk_correct


def _scores(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_hand_made_predictions():
    # 6 clips, 3 classes (+ a 4th class without clips). Rows: scores per class 0..3.
    scores = _scores(
        [
            [0.9, 0.05, 0.03, 0.02],  # true 0, predicted 0
            [0.1, 0.6, 0.2, 0.1],  # true 0, predicted 1, 0 in top-5 (all 4 classes)
            [0.1, 0.7, 0.1, 0.1],  # true 1, predicted 1
            [0.2, 0.3, 0.5, 0.0],  # true 1, predicted 2
            [0.1, 0.2, 0.6, 0.1],  # true 2, predicted 2
            [0.1, 0.2, 0.7, 0.0],  # true 2, predicted 2
        ]
    )
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    meter = AccuracyMeter(4)
    meter.update(scores[:3], labels[:3])
    meter.update(scores[3:], labels[3:])
    m = meter.compute()
    assert m["top1"] == pytest.approx(4 / 6 * 100)
    assert m["top5"] == pytest.approx(100.0)
    assert m["per_class"][:3] == pytest.approx([50.0, 50.0, 100.0])
    assert math.isnan(m["per_class"][3])
    assert m["mean_class"] == pytest.approx(200 / 3)
    expected = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 2, 0], [0, 0, 0, 0]])
    assert torch.equal(m["confusion"], expected)
    assert m["num_clips"] == 6


def test_top_k_counts():
    # Row 0 ranks classes 5, 4, 3, 2, 1, 0, 6; row 1 ranks 0, 1, 2, 3, 4, 5, 6.
    scores = _scores([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.0], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]])
    assert topk_correct(scores, torch.tensor([5, 1]), 1) == 1
    assert topk_correct(scores, torch.tensor([0, 5]), 5) == 0  # both 6th
    assert topk_correct(scores, torch.tensor([1, 4]), 5) == 2  # both 5th
    assert topk_correct(scores[:, :3], torch.tensor([0, 2]), 5) == 2  # fewer classes than k


def test_mean_class_accuracy_differs_from_top1_on_imbalanced_data():
    confusion = torch.tensor([[9, 1], [1, 0]])
    m = metrics_from_counts(confusion, top5_correct=11)
    assert m["top1"] == pytest.approx(9 / 11 * 100)
    assert m["mean_class"] == pytest.approx((90.0 + 0.0) / 2)


def test_confusion_matrix_rows_are_true_classes():
    c = confusion_matrix(torch.tensor([2, 2, 0]), torch.tensor([1, 2, 0]), 3)
    assert c.tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]


def test_metrics_yaml_accuracy_is_the_mean_per_class_top1_as_the_original():
    from action_rec.evaluation.report import metric_entries

    # 10 clips of class 0 (9 right), 1 of class 1 (wrong): top-1 9/11, mean per-class (90 + 0) / 2.
    m = metrics_from_counts(torch.tensor([[9, 1], [1, 0]]), top5_correct=11)
    m.update(gflops=1.0, params_m=2.0, checkpoint_mb=3.0)
    values = {e["key"]: e["value"] for e in metric_entries(m)}
    assert values["accuracy"] == pytest.approx(45.0)
    assert values["top1_accuracy"] == pytest.approx(100 * 9 / 11, abs=1e-4)
    assert values["mean_class_accuracy"] == values["accuracy"]
