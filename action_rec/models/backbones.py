"""MobileNetV3-Large inflated to 3D: the S3D and X3D-LGD-GC backbones.

Both variants are the same builder walking a table; they differ by the table's temporal columns, the
block variant (``separable`` vs ``channelwise``) and whether the LGD global path is on.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Stage:
    """One step of the backbone's forward: `module` (the stem, a block or the output conv), then the LGD
    pieces attached to it, if any. Holds references to the backbone's own modules (no copies, no new
    state-dict keys).

    The state passed between stages is ``(x, glob)``: the local tensor ``N x C_m x T x H x W`` and the
    global one ``N x C_m x 1 x 1 x 1`` (None without a global path, and before stage 0 has run).
    """

    index: int
    module: nn.Module
    upsample: nn.Module | None = None  # global -> local, added to the module's output
    pool: nn.Module | None = None  # local -> global (the new global tensor, with `glob` beside it)
    glob_transform: nn.Module | None = None  # the previous global tensor, carried on (residual)

    def modules(self) -> list[nn.Module]:
        """The modules this stage runs (what freezing it freezes)."""
        return [m for m in (self.module, self.upsample, self.pool, self.glob_transform) if m is not None]

    def __call__(
        self, x: torch.Tensor, glob: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.module(x)
        if self.upsample is not None:
            x = self.upsample(glob) + x
        if self.pool is not None:
            pooled = self.pool(x)
            glob = pooled if self.glob_transform is None else self.glob_transform(glob) + pooled
        return x, glob


class MobileNetV3Backbone3d(nn.Module):
    """Stem, the table's blocks, a 1x1x1 conv to 960 channels; optionally the LGD global path.

    ``N x 3 x T x H x W`` -> ``N x 960 x T/4 x H/32 x W/32`` (``4 x 7 x 7`` for ``16 x 224 x 224``
    with the two tables above).

    Modules (names are the original's state-dict names): ``features[0]`` the stem
    (conv 1x3x3 stride 2, BN, h-swish), ``features[1..]`` the blocks, ``conv`` the output conv; with
    ``lgd``: ``lgd_upsample.upsample_m``, ``lgd_pool.pooling_m``, ``lgd_glob.glob_m``.

    From scratch: the original's init (`init_weights`), except that every residual block starts as
    the identity (`InvertedResidual3d.zero_init_last_bn`), which trains faster.

    The forward is a walk over `stages()` (``features[m]`` with its LGD pieces, then the output conv);
    `forward_stages` runs any contiguous range of them, so that training can run a frozen prefix apart
    from the rest (:mod:`action_rec.training.freezing`) or start from cached features.
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
        for block in self.features[1:]:
            block.zero_init_last_bn()
        if lgd:
            for module in self.lgd_upsample.values():
                module.reset_last_bn()

    def stages(self) -> list[Stage]:
        """The ordered stages: ``features[0..n-1]`` (each with its LGD pieces), then the output conv."""
        upsample, pool, glob = (
            (dict(self.lgd_upsample.items()), dict(self.lgd_pool.items()), dict(self.lgd_glob.items()))
            if self.lgd
            else ({}, {}, {})
        )  # the original's names: upsample_m, pooling_m, glob_m (absent at some m)
        stages = [
            Stage(
                m,
                module,
                upsample.get(f"upsample_{m}"),
                pool.get(f"pooling_{m}"),
                glob.get(f"glob_{m}"),
            )
            for m, module in enumerate(self.features)
        ]
        stages.append(Stage(len(self.features), self.conv))
        return stages

    @property
    def num_stages(self) -> int:
        """``len(features) + 1`` (the output conv is the last stage)."""
        return len(self.features) + 1

    def forward_stages(
        self,
        x: torch.Tensor,
        glob: torch.Tensor | None = None,
        start: int = 0,
        stop: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Stages ``start .. stop - 1`` (default: to the end) on the state ``(x, glob)`` that stage
        ``start - 1`` left (the clip ``N x 3 x T x H x W`` and None for ``start = 0``); returns the
        state after them. ``start == stop`` returns it unchanged."""
        for stage in self.stages()[start:stop]:
            x, glob = stage(x, glob)
        return x, glob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 3 x T x H x W`` -> ``N x 960 x T/4 x H/32 x W/32``: every stage in turn."""
        return self.forward_stages(x)[0]


def s3d_mobilenet_v3_large() -> MobileNetV3Backbone3d:
    """S3D: separable blocks (spatial depthwise, temporal projection), no global path."""
    return MobileNetV3Backbone3d(S3D_MOBILENET_V3_LARGE, "separable")


def x3d_mobilenet_v3_large_lgd_gc() -> MobileNetV3Backbone3d:
    """X3D: channel-wise 3D depthwise blocks with LGD + GC pooling."""
    return MobileNetV3Backbone3d(X3D_MOBILENET_V3_LARGE, "channelwise", lgd=True)
