"""The recipe's losses against hand computations on small tensors."""

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from action_rec.errors import UserError
from action_rec.templates import apply_overrides, load_template
from action_rec.training.losses import (
    Criterion,
    am_softmax_loss,
    am_softmax_scale,
    center_push_loss,
    local_push_loss,
)

TEMPLATES = "model_templates/custom-action-recognition"


def _template(name="x3d-rgb-mobilenet-v3-lgd-gc"):
    from pathlib import Path

    return load_template(Path(__file__).resolve().parents[1] / TEMPLATES / name / "template.yaml")


def test_am_softmax_matches_hand_computation_for_one_sample():
    cos = torch.tensor([[0.8, 0.1, -0.2]])
    labels = torch.tensor([0])
    s, m = 10.0, 0.35
    margin_logits = [s * (0.8 - m), s * 0.1, s * -0.2]
    ce = -margin_logits[0] + math.log(sum(math.exp(v) for v in margin_logits))
    plain = [s * 0.8, s * 0.1, s * -0.2]
    z = sum(math.exp(v) for v in plain)
    probs = [math.exp(v) / z for v in plain]
    entropy = -sum(p * math.log(p) for p in probs)
    expected = ce - 0.085 * entropy
    assert expected > 0
    got = am_softmax_loss(cos, labels, s, m, 0.085)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_am_softmax_averages_only_positive_losses():
    # Sample 0 is confidently right (loss below zero thanks to the entropy bonus? no: make it tiny),
    # sample 1 is wrong: only positive per-sample losses enter the mean.
    cos = torch.tensor([[0.99, -0.99, -0.99], [-0.5, 0.9, 0.0]])
    labels = torch.tensor([0, 0])
    per_sample = []
    for i in range(2):
        per_sample.append(
            am_softmax_loss(cos[i : i + 1], labels[i : i + 1], 30.0, 0.35, 5.0, positive_only=False)
        )
    per_sample = torch.stack(per_sample)
    assert per_sample[0] < 0 < per_sample[1]  # the big entropy weight drives the easy sample below zero
    got = am_softmax_loss(cos, labels, 30.0, 0.35, 5.0)
    assert got.item() == pytest.approx(per_sample[1].item(), rel=1e-6)
    assert am_softmax_loss(cos[:1], labels[:1], 30.0, 0.35, 5.0).item() == 0.0


def test_margin_makes_the_loss_larger():
    cos = torch.tensor([[0.5, 0.3], [0.2, 0.4]])
    labels = torch.tensor([0, 1])
    assert am_softmax_loss(cos, labels, 5.0, 0.35, 0.0) > am_softmax_loss(cos, labels, 5.0, 0.0, 0.0)
    plain = F.cross_entropy(5.0 * cos, labels)
    assert am_softmax_loss(cos, labels, 5.0, 0.0, 0.0, positive_only=False).item() == pytest.approx(
        plain.item()
    )


def _poly_scalar(i: float, n: float, start=30.0, end=5.0, power=1.2) -> float:
    """The original's PolyScalarScheduler, per iteration i of N, as the spec defines it."""
    if i >= n:
        return end
    f = (end - start) / (1 - power)
    return (f / n**power) * i**power - (power * f / n) * i + start


@pytest.mark.parametrize("iters_per_epoch", [1, 7, 250])
def test_scale_follows_the_original_poly_scalar_scheduler(iters_per_epoch):
    cfg = replace(_template().loss, scale_start=30.0, scale_end=5.0, scale_epochs=40, scale_power=1.2)
    n = 40 * iters_per_epoch
    for i in (0, n / 4, n / 2, n - 1, n, n + 1, 3 * n):
        expected = _poly_scalar(i, n)
        assert am_softmax_scale(i / iters_per_epoch, cfg) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert am_softmax_scale(0, cfg) == 30.0
    assert am_softmax_scale(10, cfg) == pytest.approx(16.2, abs=0.05)  # the figures
    assert am_softmax_scale(20, cfg) == pytest.approx(9.4, abs=0.05)
    assert am_softmax_scale(40, cfg) == 5.0 and am_softmax_scale(64.5, cfg) == 5.0
    # Smooth arrival: the slope at N is zero (the old (1 - q)^p form had a kink there).
    eps = 1e-4
    assert (am_softmax_scale(40 - eps, cfg) - 5.0) / eps == pytest.approx(0.0, abs=1e-3)
    values = [am_softmax_scale(e, cfg) for e in range(41)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_center_push_counts_only_pairs_closer_than_the_margin():
    # Columns: e0, e1 (orthogonal), and c = a unit vector with cos 0.6 to e0 and 0.0 to e1.
    centres = torch.tensor([[1.0, 0.0, 0.6], [0.0, 1.0, 0.0], [0.0, 0.0, 0.8]])
    loss = center_push_loss(centres, margin=0.1)
    assert loss.item() == pytest.approx(0.6 - 0.1)
    far = torch.eye(3)
    zero = center_push_loss(far.requires_grad_(), margin=0.1)
    assert zero.item() == 0.0
    zero.backward()  # a zero loss still has a graph


def test_local_push_hand_example():
    e = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 0])
    cos = torch.tensor([[0.5, 0.0], [0.0, 0.05], [0.3, 0.0]])
    # t = [0.4, 0.0, 0.2]; other-class similarities: 0<->1: 0.8, 2<->1: 0.6.
    # sample 0: relu(0.8 - 0.4) = 0.4; sample 1: max(relu(0.8 - 0), relu(0.6 - 0)) = 0.8;
    # sample 2: relu(0.6 - 0.2) = 0.4  -> mean 1.6 / 3
    assert local_push_loss(e, cos, labels, 0.1).item() == pytest.approx(1.6 / 3, rel=1e-6)
    same = torch.tensor([0, 0, 0])
    assert local_push_loss(e, cos, same, 0.1).item() == 0.0


def test_local_push_threshold_carries_no_gradient():
    # t_i = max(cos(e_i, w_yi), 0.1) - 0.1 is a constant in the original. The cosines enter the loss only
    # through t, so no gradient may reach them; the embeddings still get one.
    e = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], requires_grad=True)
    cos = torch.tensor([[0.5, 0.0], [0.0, 0.05], [0.3, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 1, 0])
    loss = local_push_loss(e, cos, labels, 0.1)
    loss.backward()
    assert cos.grad is None or torch.count_nonzero(cos.grad) == 0
    assert torch.count_nonzero(e.grad) > 0


def test_criterion_combines_terms_by_template_weights():
    template = _template()
    criterion = Criterion(template)
    torch.manual_seed(0)
    cos = torch.rand(4, 3) * 2 - 1
    emb = F.normalize(torch.randn(4, 8), dim=1)
    centres = F.normalize(torch.randn(8, 3), dim=0)
    labels = torch.tensor([0, 1, 2, 1])
    loss, parts = criterion(cos, labels, emb, centres, epoch=0.0)
    expected = parts["am_softmax"] + parts["center_push"] + parts["local_push"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert parts["scale"] == 30.0

    s3d = Criterion(_template("s3d-rgb-mobilenet-v3"))  # local push weight 0 in the S3D template
    _, parts = s3d(cos, labels, emb, centres, epoch=0.0)
    assert "local_push" not in parts


def test_cross_entropy_alternative_and_linear_head_check():
    template = apply_overrides(_template(), ["loss.type=cross_entropy"])
    criterion = Criterion(template)
    cos = torch.tensor([[0.5, -0.5], [0.1, 0.2]])
    labels = torch.tensor([0, 1])
    loss, _ = criterion(cos, labels, epoch=40.0)
    assert loss.item() == pytest.approx(F.cross_entropy(5.0 * cos, labels).item())

    template = apply_overrides(template, ["model.head=linear"])
    loss, _ = Criterion(template)(cos, labels, epoch=0.0)
    assert loss.item() == pytest.approx(F.cross_entropy(cos, labels).item())
    template = replace(template, loss=replace(template.loss, type="am_softmax"))
    with pytest.raises(UserError, match="angular"):
        Criterion(template)
