"""MobileNetV3-Large inflated to 3D: the S3D and X3D-LGD-GC backbones.

Both variants are the same builder walking a table; they differ by the table's temporal columns, the
block variant (``separable`` vs ``channelwise``) and whether the LGD global path is on.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import LGDPooling, LGDTransform
from .blocks import BlockConfig, BlockVariant, ConvBNActivation3d, InvertedResidual3d, init_weights

STEM_CHANNELS = 16
OUT_CHANNELS = 960

# fmt: off
S3D_MOBILENET_V3_LARGE: list[BlockConfig] = [
    #           kernel expand out  SE     act       stride t_kernel t_stride
    BlockConfig(3,     16,    16,  False, "relu",   1,     5,       1),
    BlockConfig(3,     64,    24,  False, "relu",   2,     3,       2),
    BlockConfig(3,     72,    24,  False, "relu",   1,     3,       1),
    BlockConfig(5,     72,    40,  True,  "relu",   2,     3,       1),
    BlockConfig(5,     120,   40,  True,  "relu",   1,     3,       1),
    BlockConfig(5,     120,   40,  True,  "relu",   1,     5,       1),
    BlockConfig(3,     240,   80,  False, "hswish", 2,     5,       1),
    BlockConfig(3,     200,   80,  False, "hswish", 1,     3,       1),
    BlockConfig(3,     184,   80,  False, "hswish", 1,     3,       1),
    BlockConfig(3,     184,   80,  False, "hswish", 1,     5,       1),
    BlockConfig(3,     480,   112, True,  "hswish", 1,     3,       2),
    BlockConfig(3,     672,   112, True,  "hswish", 1,     3,       1),
    BlockConfig(5,     672,   160, True,  "hswish", 1,     3,       1),
    BlockConfig(5,     672,   160, True,  "hswish", 2,     3,       1),
    BlockConfig(5,     960,   160, True,  "hswish", 1,     3,       1),
]

X3D_MOBILENET_V3_LARGE: list[BlockConfig] = [
    #           kernel expand out  SE     act       stride t_kernel t_stride
    BlockConfig(3,     16,    16,  False, "relu",   1,     5,       1),
    BlockConfig(3,     64,    24,  False, "relu",   2,     3,       1),
    BlockConfig(3,     72,    24,  False, "relu",   1,     3,       1),
    BlockConfig(5,     72,    40,  True,  "relu",   2,     3,       1),
    BlockConfig(5,     120,   40,  True,  "relu",   1,     3,       2),
    BlockConfig(5,     120,   40,  True,  "relu",   1,     5,       1),
    BlockConfig(3,     240,   80,  False, "hswish", 2,     5,       1),
    BlockConfig(3,     200,   80,  False, "hswish", 1,     3,       1),
    BlockConfig(3,     184,   80,  False, "hswish", 1,     3,       1),
    BlockConfig(3,     184,   80,  False, "hswish", 1,     5,       1),
    BlockConfig(3,     480,   112, True,  "hswish", 1,     3,       2),
    BlockConfig(3,     672,   112, True,  "hswish", 1,     3,       1),
    BlockConfig(5,     672,   160, True,  "hswish", 1,     3,       1),
    BlockConfig(5,     672,   160, True,  "hswish", 2,     3,       1),
    BlockConfig(5,     960,   160, True,  "hswish", 1,     3,       1),
]
# fmt: on


class MobileNetV3Backbone3d(nn.Module):
    """Stem, the table's blocks, a 1x1x1 conv to 960 channels; optionally the LGD global path.

    ``N x 3 x T x H x W`` -> ``N x 960 x T/4 x H/32 x W/32`` (``4 x 7 x 7`` for ``16 x 224 x 224``
    with the two tables above).

    Modules (names are the original's state-dict names): ``features[0]`` the stem
    (conv 1x3x3 stride 2, BN, h-swish), ``features[1..]`` the blocks, ``conv`` the output conv; with
    ``lgd``: ``lgd_upsample.upsample_m``, ``lgd_pool.pooling_m``, ``lgd_glob.glob_m``.
    """

    def __init__(self, table: list[BlockConfig], variant: BlockVariant, lgd: bool = False) -> None:
        super().__init__()
        channels = [STEM_CHANNELS]
        features: list[nn.Module] = [ConvBNActivation3d(3, STEM_CHANNELS, (1, 3, 3), (1, 2, 2))]
        for cfg in table:
            features.append(InvertedResidual3d(cfg, channels[-1], variant))
            channels.append(cfg.out)
        self.features = nn.ModuleList(features)
        self.conv = nn.Sequential(
            ConvBNActivation3d(channels[-1], OUT_CHANNELS)
        )  # "conv.0.*" as the original
        self.out_channels = OUT_CHANNELS

        self.lgd = lgd
        if lgd:
            # With n = len(features): upsample after modules 1..n-2, pool after 0..n-3, glob 1..n-3.
            n = len(features)
            self.lgd_upsample = nn.ModuleDict(
                {
                    f"upsample_{m}": LGDTransform(channels[m - 1], channels[m], zero_init=True)
                    for m in range(1, n - 1)
                }
            )
            self.lgd_pool = nn.ModuleDict({f"pooling_{m}": LGDPooling(channels[m]) for m in range(n - 2)})
            self.lgd_glob = nn.ModuleDict(
                {
                    f"glob_{m}": LGDTransform(channels[m - 1], channels[m], residual=True)
                    for m in range(1, n - 2)
                }
            )
        init_weights(self)
        if lgd:
            for module in self.lgd_upsample.values():
                module.reset_last_bn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.lgd:
            for module in self.features:
                x = module(x)
            return self.conv(x)

        # Local tensor x: N x C_m x T x H x W; global tensor glob: N x C_m x 1 x 1 x 1.
        glob = x  # placeholder, replaced after module 0
        for m, module in enumerate(self.features):
            x = module(x)
            if f"upsample_{m}" in self.lgd_upsample:
                x = self.lgd_upsample[f"upsample_{m}"](glob) + x
            if f"pooling_{m}" in self.lgd_pool:
                pooled = self.lgd_pool[f"pooling_{m}"](x)
                glob = pooled if m == 0 else self.lgd_glob[f"glob_{m}"](glob) + pooled
        return self.conv(x)


def s3d_mobilenet_v3_large() -> MobileNetV3Backbone3d:
    """S3D: separable blocks (spatial depthwise, temporal projection), no global path."""
    return MobileNetV3Backbone3d(S3D_MOBILENET_V3_LARGE, "separable")


def x3d_mobilenet_v3_large_lgd_gc() -> MobileNetV3Backbone3d:
    """X3D: channel-wise 3D depthwise blocks with LGD + GC pooling."""
    return MobileNetV3Backbone3d(X3D_MOBILENET_V3_LARGE, "channelwise", lgd=True)
