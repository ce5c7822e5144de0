"""Losses of the original recipe: AM-Softmax with its regularisers, or plain cross-entropy.

The angular head outputs raw cosines ``N x C``; the losses scale them. The AM-Softmax scale follows a
schedule (`am_softmax_scale`, the original's PolyScalarScheduler): large at the start so that the softmax
is sharp while the cosines are small, then down to ``scale_end`` (the scale the model's
``probabilities`` use at inference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from action_rec.errors import UserError
from action_rec.templates import LossConfig, Template

__all__ = [
    "am_softmax_scale",
    "am_softmax_loss",
    "center_push_loss",
    "local_push_loss",
    "Criterion",
    "build_criterion",
]


def am_softmax_scale(epoch: float, loss_cfg: LossConfig) -> float:
    """Scale at (fractional) `epoch`: the original's PolyScalarScheduler, then ``scale_end``.

    Per iteration i over N = ``scale_epochs`` x iterations per epoch, with start, end, power p and
    F = (end - start) / (1 - p): ``s(i) = F / N^p * i^p - p * F / N * i + start`` for i < N, then end.
    It leaves ``start`` falling fastest and reaches ``end`` with zero slope. Written with the fraction
    q = i / N = epoch / scale_epochs it is ``start + F (q^p - p q)``: the iterations per epoch cancel.
    (p = 1 would divide by zero; the original has no such case, and a linear ramp is its limit.)
    """
    start, end = float(loss_cfg.scale_start), float(loss_cfg.scale_end)
    span, power = loss_cfg.scale_epochs, float(loss_cfg.scale_power)
    if span <= 0 or epoch >= span:
        return end
    q = max(epoch, 0.0) / span
    if power == 1.0:
        return start + (end - start) * q
    factor = (end - start) / (1.0 - power)
    return start + factor * (q**power - power * q)


def am_softmax_loss(
    cos: torch.Tensor,
    labels: torch.Tensor,
    scale: float,
    margin: float = 0.35,
    entropy_weight: float = 0.085,
    positive_only: bool = True,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """AM-Softmax: cross-entropy of ``scale * (cos - margin * onehot(y))`` minus ``entropy_weight`` x the
    entropy of ``softmax(scale * cos)`` (a confidence penalty on the margin-free logits).

    With `positive_only` only the per-sample losses above zero are averaged (the original's rule: a
    sample whose entropy bonus outweighs its error does not pull the mean down). ``N x C``, ``N`` -> scalar.
    `weights` (``N``, e.g. class weights for ``class_balance: loss``) make the mean a weighted one.
    """
    onehot = F.one_hot(labels, cos.shape[1]).to(cos.dtype)
    losses = F.cross_entropy(scale * (cos - margin * onehot), labels, reduction="none")
    if entropy_weight:
        log_p = F.log_softmax(scale * cos, dim=1)
        entropy = -(log_p.exp() * log_p).sum(dim=1)
        losses = losses - entropy_weight * entropy
    if weights is None:
        if not positive_only:
            return losses.mean()
        positive = losses > 0
        return (losses * positive).sum() / positive.sum().clamp(min=1)
    w = weights.to(losses.dtype) * (losses > 0) if positive_only else weights.to(losses.dtype)
    return (losses * w).sum() / w.sum().clamp(min=1e-12)


def center_push_loss(
    centres: torch.Tensor, margin: float = 0.1, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Push class centres apart: mean of ``cos - margin`` over class pairs whose cosine exceeds `margin`.

    `centres` is ``D x C`` (one L2-normalised column per class); `mask` (``C x C``, default the strict upper
    triangle) selects each pair once. Zero (with a gradient path) when no pair is too close.
    """
    num_classes = centres.shape[1]
    if mask is None:
        mask = torch.triu(torch.ones(num_classes, num_classes, device=centres.device), diagonal=1)
    cos = centres.t() @ centres
    pairs = cos[mask.to(torch.bool)]
    over = pairs[pairs > margin] - margin
    return over.mean() if over.numel() else centres.sum() * 0.0


def local_push_loss(
    embeddings: torch.Tensor, cos: torch.Tensor, labels: torch.Tensor, margin: float = 0.1
) -> torch.Tensor:
    """X3D's local push: keep each sample further from other classes' samples than from its own centre.

    For sample i: ``max_j relu(e_i . e_j - t_i)`` over samples j of another class, with
    ``t_i = max(cos(e_i, w_yi), margin) - margin``, a constant (no gradient flows through it, as in the
    original: the loss moves samples apart, not towards their centre); averaged over samples that have
    such a j.
    `embeddings` ``N x D`` L2-normalised, `cos` ``N x C``, `labels` ``N``.
    """
    target = cos.detach().gather(1, labels[:, None]).squeeze(1).clamp(min=margin) - margin
    similarity = embeddings @ embeddings.t()
    other = labels[:, None] != labels[None, :]
    pushed = F.relu(similarity - target[:, None]).masked_fill(~other, 0.0)
    has_other = other.any(dim=1)
    if not bool(has_other.any()):
        return embeddings.sum() * 0.0
    return pushed.max(dim=1).values[has_other].mean()


class Criterion(nn.Module):
    """The training loss of a template, as one callable.

    ``forward(scores, labels, embeddings, centres, epoch) -> (loss, parts)`` where `parts` maps each term's
    name to its (detached) value for logging. `scores` are cosines (angular head) or logits (linear head).

    - ``loss.type: am_softmax`` (angular head only): `am_softmax_loss` + ``center_push_weight`` x
      `center_push_loss` + ``local_push_weight`` x `local_push_loss`.
    - ``loss.type: cross_entropy``: plain cross-entropy, of the logits (linear head) or of the scheduled
      scale x the cosines (angular head: a normalised softmax without margin or regularisers).
    """

    def __init__(self, template: Template, class_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.cfg = template.loss
        # Per-class loss weights (``training.class_balance: loss``), None for the plain mean.
        self.class_weights = class_weights
        self.angular = template.model.head == "angular"
        if self.cfg.type == "am_softmax" and not self.angular:
            raise UserError(
                "template: loss.type 'am_softmax' needs model.head 'angular' "
                "(use --set loss.type=cross_entropy for the linear head)"
            )

    def scale(self, epoch: float) -> float:
        return am_softmax_scale(epoch, self.cfg) if self.angular else 1.0

    def forward(
        self,
        scores: torch.Tensor,
        labels: torch.Tensor,
        embeddings: torch.Tensor | None = None,
        centres: torch.Tensor | None = None,
        epoch: float = 0.0,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        scores = scores.float()
        scale = self.scale(epoch)
        cfg = self.cfg
        weights = None if self.class_weights is None else self.class_weights.to(scores.device)
        if cfg.type == "cross_entropy":
            loss = F.cross_entropy(scale * scores, labels, weight=weights)
            return loss, {"ce": loss.detach().item(), "scale": scale}
        sample_weights = None if weights is None else weights[labels]
        loss = am_softmax_loss(scores, labels, scale, cfg.margin, cfg.entropy_weight, weights=sample_weights)
        parts = {"am_softmax": loss.detach().item(), "scale": scale}
        if cfg.center_push_weight and centres is not None:
            push = center_push_loss(centres.float(), cfg.center_push_margin, mask)
            loss = loss + cfg.center_push_weight * push
            parts["center_push"] = push.detach().item()
        if cfg.local_push_weight and embeddings is not None:
            push = local_push_loss(embeddings.float(), scores, labels, cfg.center_push_margin)
            loss = loss + cfg.local_push_weight * push
            parts["local_push"] = push.detach().item()
        return loss, parts


def build_criterion(template: Template, class_weights: torch.Tensor | None = None) -> Criterion:
    """The loss the template asks for (see `Criterion`), optionally with per-class weights."""
    return Criterion(template, class_weights)
