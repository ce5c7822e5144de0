"""Classification heads on the backbone's ``N x 960 x T' x H' x W'`` output.

Both heads share one interface: ``forward(features) -> scores``, ``embed(features)``,
``classify(embedding)`` (so ``classify(embed(f)) == forward(f)``), ``probabilities(scores)``,
``reset_parameters()``, and what the centre-push loss needs, ``class_centres()`` and ``centre_pairs()``
(None for the linear head), so that training asks the head instead of reading its attributes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class AngularLinear(nn.Module):
    """Cosine classifier: weight ``D x C`` (transposed compared with ``nn.Linear``), one column per class.

    ``N x D`` -> ``N x C`` cosines in ``[-1, 1]``. The buffer ``reg_mask`` (``C x C``, strictly upper
    triangle of ones) selects the class pairs of the centre-push loss.
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, num_classes))
        self.register_buffer("reg_mask", torch.triu(torch.ones(num_classes, num_classes), diagonal=1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight)
        with torch.no_grad():
            self.weight.copy_(F.normalize(self.weight, dim=0))

    def class_centres(self) -> torch.Tensor:
        """L2-normalised class columns, ``D x C``."""
        return F.normalize(self.weight, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ self.class_centres()


class AngularHead(nn.Module):
    """Global average -> 1x1x1 conv 960 -> D (no bias) -> BN -> L2-normalise -> cosine per class.

    ``N x 960 x T' x H' x W'`` -> ``N x C`` raw cosines (the model's output at eval and export time).
    ``probabilities`` applies ``softmax(scale * cos)``; ``scale`` is the AM-Softmax scale at the end of
    training (template ``loss.scale_end``); it changes no ranking.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        embedding_dim: int = 256,
        dropout: float = 0.0,
        scale: float = 5.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.scale = float(scale)
        self.dropout = nn.Dropout(dropout)
        self.fc_pre_angular = nn.Sequential(
            nn.Conv3d(in_channels, embedding_dim, 1, bias=False), nn.BatchNorm3d(embedding_dim)
        )
        self.fc_angular = AngularLinear(embedding_dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        conv, bn = self.fc_pre_angular
        nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (math.prod(conv.kernel_size) * conv.out_channels)))
        bn.reset_running_stats()
        nn.init.ones_(bn.weight)
        nn.init.zeros_(bn.bias)
        self.fc_angular.reset_parameters()

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """``N x 960 x T' x H' x W'`` -> L2-normalised embedding ``N x D``."""
        x = self.dropout(features.mean(dim=(2, 3, 4), keepdim=True))
        return F.normalize(self.fc_pre_angular(x).flatten(1), dim=1)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        """Embedding ``N x D`` -> cosines ``N x C``."""
        return self.fc_angular(embedding)

    def class_centres(self) -> torch.Tensor:
        """L2-normalised class centres ``D x C`` (the cosine classifier's columns)."""
        return self.fc_angular.class_centres()

    def centre_pairs(self) -> torch.Tensor:
        """``C x C`` mask of the class pairs the centre-push loss pushes apart (strict upper triangle)."""
        return self.fc_angular.reg_mask

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(features))

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.scale * scores, dim=1)


class LinearHead(nn.Module):
    """Global average -> dropout -> ``nn.Linear(960, C)``: logits for plain cross-entropy.

    ``embed`` returns the pooled ``N x 960`` features (not normalised; the linear layer expects them
    as they are).
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """``N x 960 x T' x H' x W'`` -> pooled ``N x 960``."""
        return features.mean(dim=(2, 3, 4))

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        """Pooled ``N x 960`` -> logits ``N x C``."""
        return self.fc(self.dropout(embedding))

    def class_centres(self) -> None:
        """No class centres: the linear head's losses do not use them."""
        return None

    def centre_pairs(self) -> None:
        return None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(features))

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.softmax(scores, dim=1)
