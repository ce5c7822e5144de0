"""The action model, backbone + head (`ActionRecognizer`), and ``build_model``, the one place that maps
a template's ``model.architecture`` / ``model.head`` to modules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from action_rec.errors import UserError
from action_rec.templates import Template, load_template

from .backbones import MobileNetV3Backbone3d, s3d_mobilenet_v3_large, x3d_mobilenet_v3_large_lgd_gc
from .heads import AngularHead, LinearHead

BACKBONES: dict[str, Callable[[], MobileNetV3Backbone3d]] = {
    "s3d-mobilenet-v3-large": s3d_mobilenet_v3_large,
    "x3d-mobilenet-v3-large-lgd-gc": x3d_mobilenet_v3_large_lgd_gc,
}


class ActionRecognizer(nn.Module):
    """Clip ``N x 3 x T x H x W`` (normalised RGB) -> scores ``N x num_classes``.

    Scores are raw cosines in ``[-1, 1]`` for the angular head and logits for the linear head;
    ``probabilities(scores)`` turns either into a softmax (see the head for the scale).
    """

    def __init__(self, backbone: MobileNetV3Backbone3d, cls_head: AngularHead | LinearHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.cls_head = cls_head

    @property
    def num_classes(self) -> int:
        return self.cls_head.num_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 3 x T x H x W`` -> backbone output ``N x 960 x T/4 x H/32 x W/32``."""
        return self.backbone(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 3 x T x H x W`` -> embedding ``N x D`` (L2-normalised ``N x 256`` for the angular head,
        pooled ``N x 960`` for the linear head); ``classify(embed(x)) == forward(x)``."""
        return self.cls_head.embed(self.backbone(x))

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        """Embedding from ``embed`` -> scores ``N x C``; lets a loss use both from one forward pass."""
        return self.cls_head.classify(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cls_head(self.backbone(x))

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """Scores ``N x C`` -> class probabilities ``N x C``.

        Angular head: ``softmax(scale * cos)`` with ``scale = loss.scale_end`` of the template, the
        scale the network was trained to at the end. Linear head: ``softmax``.
        """
        return self.cls_head.probabilities(scores)


def build_model(template: str | Path | Template, num_classes: int | None = None) -> ActionRecognizer:
    """Build a freshly initialised recognizer from a template (path or loaded Template).

    ``num_classes`` overrides ``model.num_classes`` (the training set decides it).
    """
    template = load_template(template)
    cfg = template.model
    if cfg.architecture not in BACKBONES:
        raise UserError(
            f"unknown model.architecture {cfg.architecture!r} (expected one of: {', '.join(BACKBONES)})"
        )
    classes = int(num_classes if num_classes is not None else cfg.num_classes)
    if classes < 1:
        raise UserError(f"num_classes must be at least 1, got {classes}")

    backbone = BACKBONES[cfg.architecture]()
    if cfg.head == "angular":
        scale = float(template.loss.scale_end)
        head: AngularHead | LinearHead = AngularHead(
            backbone.out_channels, classes, cfg.embedding_dim, cfg.dropout, scale
        )
    elif cfg.head == "linear":
        head = LinearHead(backbone.out_channels, classes, cfg.dropout)
    else:
        raise UserError(f"unknown model.head {cfg.head!r} (expected 'angular' or 'linear')")
    return ActionRecognizer(backbone, head)
