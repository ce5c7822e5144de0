"""Building blocks of the 3D MobileNetV3 backbones: conv + BN (+ activation), squeeze-excite, inverted
residual.

All tensors are ``N x C x T x H x W``. The ``nn.Sequential`` index layout of every block is part of
the state-dict contract with the original models (``features.<i>.conv.<j>.*``), so the order in which
layers are appended below must not change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from action_rec.models.conv import SameConv3d, TemporalAvgPool3d

Activation = Literal["relu", "hswish"]
BlockVariant = Literal["separable", "channelwise"]


@dataclass(frozen=True)
class BlockConfig:
    """One row of a backbone table.

    ``kernel``/``stride`` are spatial, ``t_kernel``/``t_stride`` temporal; ``expand`` is the hidden
    (expansion) width; ``se`` adds squeeze-excite after the depthwise conv.
    """

    kernel: int
    expand: int
    out: int
    se: bool
    activation: Activation
    stride: int
    t_kernel: int
    t_stride: int


def make_activation(name: Activation) -> nn.Module:
    """``relu`` -> ReLU, ``hswish`` -> Hardswish (x * ReLU6(x + 3) / 6, the paper's h-swish)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {name!r} (expected 'relu' or 'hswish')")


def conv3d(
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, int, int] = (1, 1, 1),
    stride: tuple[int, int, int] = (1, 1, 1),
    groups: int = 1,
    bias: bool = False,
) -> nn.Conv3d:
    """Conv3d with "same" padding ``(k - 1) // 2`` per axis (a :class:`SameConv3d`: the CPU's fast path)."""
    padding = tuple((k - 1) // 2 for k in kernel)
    return SameConv3d(
        in_channels, out_channels, kernel, stride=stride, padding=padding, groups=groups, bias=bias
    )


def conv_bn(
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, int, int] = (1, 1, 1),
    stride: tuple[int, int, int] = (1, 1, 1),
    groups: int = 1,
) -> list[nn.Module]:
    """``[Conv3d (no bias), BatchNorm3d]``, returned as a list so callers can splice it into a flat
    ``nn.Sequential`` and keep the original index layout."""
    return [conv3d(in_channels, out_channels, kernel, stride, groups), nn.BatchNorm3d(out_channels)]


class ConvBNActivation3d(nn.Sequential):
    """Conv3d (no bias) -> BatchNorm3d -> activation as one named piece, like torchvision's
    ``Conv2dNormActivation``; its children keep the original's indices (``0`` conv, ``1`` BN, ``2``
    activation), so ``features.0`` (the stem) and ``conv.0`` load the original's weights."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        activation: Activation = "hswish",
    ) -> None:
        super().__init__(*conv_bn(in_channels, out_channels, kernel, stride), make_activation(activation))


class SqueezeExcitation3d(nn.Module):
    """Squeeze-excite that keeps time: ``N x C x T x H x W`` -> gate ``N x C x T x 1 x 1`` -> multiply.

    The squeeze averages over H and W only, so each frame gets its own channel gate.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeeze = channels // 4
        self.fc = nn.Sequential(
            nn.Conv3d(channels, squeeze, 1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv3d(squeeze, channels, 1, bias=True),
            nn.Hardsigmoid(inplace=True),  # ReLU6(x + 3) / 6, the paper's h-sigmoid
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(3, 4), keepdim=True))


class InvertedResidual3d(nn.Module):
    """MobileNetV3 inverted residual block inflated to 3D.

    ``variant`` decides where time is modelled:

    - ``"separable"`` (S3D): depthwise conv is spatial only (``1 x k x k``); the projection is a
      temporal conv (``t_kernel x 1 x 1``); a temporal stride becomes ``AvgPool3d((2, 1, 1))``
      after the projection.
    - ``"channelwise"`` (X3D): depthwise conv is ``t_kernel x k x k`` with the temporal stride; the
      projection is ``1 x 1 x 1``. A block without expansion has no temporal conv at all.

    Layout of ``self.conv`` (the state-dict contract): with expansion
    ``0 conv1x1, 1 BN, 2 act, 3 depthwise, 4 BN, 5 SE|Identity, 6 act, 7 projection, 8 BN[, 9 pool]``;
    without (``in == expand``) ``0 depthwise, 1 BN, 2 act, 3 SE|Identity, 4 projection, 5 BN[, 6 pool]``.

    Shapes: ``N x in x T x H x W`` -> ``N x out x T/t_stride x H/stride x W/stride``.
    """

    def __init__(self, cfg: BlockConfig, in_channels: int, variant: BlockVariant) -> None:
        super().__init__()
        if variant not in ("separable", "channelwise"):
            raise ValueError(f"unknown block variant {variant!r}")
        hidden, out = cfg.expand, cfg.out
        self.use_residual = cfg.stride == 1 and cfg.t_stride == 1 and in_channels == out

        separable = variant == "separable"
        expanded = in_channels != hidden
        t_conv_in_depthwise = not separable and expanded
        dw_kernel = (cfg.t_kernel if t_conv_in_depthwise else 1, cfg.kernel, cfg.kernel)
        dw_stride = (1 if separable else cfg.t_stride, cfg.stride, cfg.stride)
        proj_kernel = (cfg.t_kernel, 1, 1) if separable else (1, 1, 1)

        layers: list[nn.Module] = []
        if expanded:
            layers += conv_bn(in_channels, hidden)
            layers.append(make_activation(cfg.activation))
        layers += conv_bn(hidden, hidden, dw_kernel, dw_stride, groups=hidden)
        if expanded:
            layers.append(SqueezeExcitation3d(hidden) if cfg.se else nn.Identity())
            layers.append(make_activation(cfg.activation))
        else:
            layers.append(make_activation(cfg.activation))
            layers.append(SqueezeExcitation3d(hidden) if cfg.se else nn.Identity())
        layers += conv_bn(hidden, out, proj_kernel)
        if separable and cfg.t_stride > 1:
            layers.append(TemporalAvgPool3d(cfg.t_stride))
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.use_residual else y

    def zero_init_last_bn(self) -> None:
        """Start a residual block as the identity: its last BN's weight 0 (call after `init_weights`).

        Training from scratch then starts from a shallow network that each block deepens as it learns
        (Goyal et al. 2017, timm's ``zero_init_last``). On the quick start's recordings S3D reached
        77 % validation top-1 in a 10-epoch schedule instead of 46 %. Loaded weights replace it; blocks
        without the residual keep their BN at 1.
        """
        if self.use_residual:
            bn = [m for m in self.conv if isinstance(m, nn.BatchNorm3d)][-1]
            nn.init.zeros_(bn.weight)


def init_weights(module: nn.Module) -> None:
    """From-scratch init of the original: conv ``N(0, sqrt(2 / n))`` with
    ``n = k_t * k_h * k_w * out_channels``, conv bias 0, BN weight 1 / bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            n = math.prod(m.kernel_size) * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
