"""Which part of the network trains: ``training.trainable: all | head | blocks:N``.

Fine-tuning the whole network at 16 x 224 x 224 runs at under one clip per second on a 2-core CPU;
training only the end of it is several times faster, because the frozen start runs once, without
autograd (and with ``training.cache_features`` not at all after the first pass). The split:

    all        everything trains
    head       the classification head alone; the whole backbone is frozen
    blocks:N   the last N of the 15 blocks, the output conv and the head; with X3D's global path, its
               pieces attached to those blocks too

The frozen part is a prefix of the backbone's stages (``backbone.stages()``: the stem, the blocks with
their LGD pieces, the output conv). It is kept in eval mode (BatchNorm statistics frozen, as the
original's head-only epochs do) and its parameters get no gradient. `BackboneSplit` runs the prefix and the rest apart;
together they compute exactly ``backbone(x)``.

``training.bn_statistics`` says whether the BatchNorm layers that do train also update their running
statistics. Fine-tuning on a few dozen clips in batches of 4 replaces statistics learnt on a large data
set by noisy ones from a handful of clips, after every step: on the quick start's transfer task that
alone took validation from 92 % to 50 % within one epoch on one CPU and not on another. So `auto`
keeps the loaded statistics (every BatchNorm in eval mode; its scale and shift still train) when
fine-tuning with part of the backbone frozen or with fewer than `SMALL_BATCH` clips a batch, as
detection and video codebases do when fine-tuning (frozen BN, ``norm_eval``), and updates them
otherwise. Training from scratch always updates them: its initial statistics mean nothing.
"""

from __future__ import annotations

import re

import torch
from torch import nn

__all__ = ["parse_trainable", "BackboneSplit", "keeps_bn_statistics", "keep_bn_statistics", "SMALL_BATCH"]

_BLOCKS = re.compile(r"blocks:(\d+)")
SMALL_BATCH = 8  # clips per batch (per process) under which batch statistics are too noisy to learn from


def parse_trainable(value: str, num_blocks: int = 15) -> int | None:
    """``all`` -> None, ``head`` -> 0, ``blocks:N`` -> N (1 <= N <= `num_blocks`); ValueError otherwise."""
    if value == "all":
        return None
    if value == "head":
        return 0
    match = _BLOCKS.fullmatch(value)
    if match is None or not 1 <= int(match.group(1)) <= num_blocks:
        raise ValueError(f"must be all, head or blocks:N with N in 1..{num_blocks}, got {value!r}")
    return int(match.group(1))


def keeps_bn_statistics(setting: str, fine_tune: bool, trainable_blocks: int | None, batch_size: int) -> bool:
    """Whether training keeps every BatchNorm's running statistics (``training.bn_statistics``:
    keep, update, or auto as the module docstring says); `trainable_blocks` as `parse_trainable`."""
    if setting == "auto":
        return fine_tune and (trainable_blocks is not None or batch_size < SMALL_BATCH)
    return setting == "keep"


def keep_bn_statistics(model: nn.Module) -> list[nn.Module]:
    """Every BatchNorm of `model` in eval mode (call after ``model.train()``): each batch is normalised
    with the running statistics, which stay as they are; returns the layers."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        layer.eval()
    return layers


class BackboneSplit:
    """A backbone cut before stage `start` (see ``MobileNetV3Backbone3d.stages``): the frozen `prefix`
    (stages ``0 .. start - 1``), then the trainable `suffix`.

    ``start = 0``: nothing frozen; ``start = num_stages``: the whole backbone frozen, output conv
    included (head-only). The state passed between the two is the backbone's ``(x, glob)``.
    """

    def __init__(self, backbone: nn.Module, start: int) -> None:
        self.backbone = backbone
        self.num_stages = backbone.num_stages
        if not 0 <= start <= self.num_stages:
            raise ValueError(f"start must be in 0..{self.num_stages}, got {start}")
        self.start = start

    @classmethod
    def from_trainable(cls, backbone: nn.Module, trainable_blocks: int | None) -> BackboneSplit:
        """The split of `parse_trainable`'s result (None: all, 0: head, N: the last N blocks and the
        output conv)."""
        if trainable_blocks is None:
            return cls(backbone, 0)
        if trainable_blocks == 0:
            return cls(backbone, backbone.num_stages)
        return cls(backbone, backbone.num_stages - 1 - trainable_blocks)

    @property
    def trains_everything(self) -> bool:
        return self.start == 0

    @property
    def head_only(self) -> bool:
        return self.start == self.num_stages

    def frozen_modules(self) -> list[nn.Module]:
        """The modules of the prefix (empty when everything trains)."""
        return [module for stage in self.backbone.stages()[: self.start] for module in stage.modules()]

    def freeze(self) -> None:
        """Prefix: no gradients, eval mode (call after ``model.train()``); the rest trains."""
        for p in self.backbone.parameters():
            p.requires_grad_(True)
        for module in self.frozen_modules():
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)

    def prefix(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The frozen part's output for `clips` (run it under ``torch.no_grad()``)."""
        return self.backbone.forward_stages(clips, None, 0, self.start)

    def prefix_from(
        self, x: torch.Tensor, glob: torch.Tensor | None, first: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The rest of the frozen part from the state after stages ``0 .. first - 1`` (cached features
        of an earlier cut, ``first <= start``)."""
        return self.backbone.forward_stages(x, glob, first, self.start)

    def suffix(self, x: torch.Tensor, glob: torch.Tensor | None) -> torch.Tensor:
        """The backbone's output from the prefix's (the trainable part of the backbone)."""
        return self.backbone.forward_stages(x, glob, self.start)[0]
