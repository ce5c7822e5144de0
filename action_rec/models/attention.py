"""Local-global diffusion (LGD) with global-context (GC) pooling, used by the X3D backbone.

A global path of ``N x C x 1 x 1 x 1`` tensors runs beside the blocks: each block's output is
pooled into it (``LGDPooling``), and the global tensor is diffused back into the next block's output
(``LGDTransform`` as "upsample"). See ``MobileNetV3Backbone3d.forward`` for the exact order.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import conv_bn


class GlobalContextPooling(nn.Module):
    """Attention pooling: ``N x C x T x H x W`` -> ``N x C x 1 x 1 x 1``.

    A 1x1x1 conv + BN gives one key per position; the softmax over all ``T * H * W`` positions
    weights the sum of the input.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(*conv_bn(channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        weights = torch.softmax(self.encoder(x).flatten(2), dim=2)  # N x 1 x THW
        context = torch.matmul(x.flatten(2), weights.transpose(1, 2))  # N x C x 1
        return context.view(n, c, 1, 1, 1)


class LGDPooling(nn.Module):
    """``pool_m``: GC pooling then a bottleneck MLP, ``N x C x T x H x W`` -> ``N x C x 1 x 1 x 1``.

    ``self.conv`` layout: ``0 GC pooling, 1 conv C->3C, 2 BN, 3 h-swish, 4 conv 3C->C, 5 BN``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            GlobalContextPooling(channels),
            *conv_bn(channels, 3 * channels),
            nn.Hardswish(inplace=True),
            *conv_bn(3 * channels, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class LGDTransform(nn.Module):
    """``upsample_m`` / ``glob_m``: maps the global tensor ``N x C_in x 1 x 1 x 1`` -> ``N x C_out x 1 x 1 x 1``.

    ``self.conv`` layout: ``0 conv C_in->3C_in, 1 BN, 2 h-swish, 3 conv 3C_in->C_out, 4 BN``.
    ``residual`` adds the input when ``C_in == C_out`` (``glob_m``); ``zero_init`` starts the last BN at
    zero (``upsample_m``) so that training starts from the plain network.
    """

    def __init__(
        self, in_channels: int, out_channels: int, residual: bool = False, zero_init: bool = False
    ) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            *conv_bn(in_channels, 3 * in_channels),
            nn.Hardswish(inplace=True),
            *conv_bn(3 * in_channels, out_channels),
        )
        self.use_residual = residual and in_channels == out_channels
        self.zero_init = zero_init

    def reset_last_bn(self) -> None:
        """Zero the last BN's weight and bias when ``zero_init`` (call after the generic init)."""
        if self.zero_init:
            nn.init.zeros_(self.conv[4].weight)
            nn.init.zeros_(self.conv[4].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.use_residual else y
