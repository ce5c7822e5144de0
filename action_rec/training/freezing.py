"""Which part of the network trains: ``training.trainable: all | head | blocks:N``.

Fine-tuning the whole network at 16 x 224 x 224 runs at under one clip per second on a 2-core CPU;
training only the end of it is several times faster, because the frozen start runs once, without
autograd (and with ``training.cache_features`` not at all after the first pass). The split:

    all        everything trains
    head       the classification head alone; the whole backbone is frozen
    blocks:N   the last N of the 15 blocks, the output conv and the head; with X3D's global path, its
               pieces attached to those blocks too

The frozen part is a prefix of the backbone: modules ``features[:start]`` (stem and the first blocks)
and their LGD pieces. It is kept in eval mode (BatchNorm statistics frozen, as the original's head-only
epochs do) and its parameters get no gradient. `BackboneSplit` runs the prefix and the rest apart;
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
    """A backbone cut before module ``start`` of ``features``: `prefix` (frozen) then `suffix`.

    ``start = 0``: nothing frozen; ``start = len(features) + 1``: the whole backbone frozen, output conv
    included (head-only). The state passed between the two is ``(x, glob)``: the local tensor and, for
    the LGD backbone, the global one (None otherwise, and None before module 0 has run).
    """

    def __init__(self, backbone: nn.Module, start: int) -> None:
        self.backbone = backbone
        self.num_modules = len(backbone.features)
        if not 0 <= start <= self.num_modules + 1:
            raise ValueError(f"start must be in 0..{self.num_modules + 1}, got {start}")
        self.start = start

    @classmethod
    def from_trainable(cls, backbone: nn.Module, trainable_blocks: int | None) -> BackboneSplit:
        """The split of `parse_trainable`'s result (None: all, 0: head, N: the last N blocks)."""
        n = len(backbone.features)
        if trainable_blocks is None:
            return cls(backbone, 0)
        return cls(backbone, n + 1 if trainable_blocks == 0 else n - trainable_blocks)

    @property
    def trains_everything(self) -> bool:
        return self.start == 0

    @property
    def head_only(self) -> bool:
        return self.start > self.num_modules

    def frozen_modules(self) -> list[nn.Module]:
        """The modules of the prefix (empty when everything trains)."""
        b = self.backbone
        if self.head_only:
            return [b]
        frozen = list(b.features[: self.start])
        if getattr(b, "lgd", False):
            for group, prefix in (
                (b.lgd_upsample, "upsample_"),
                (b.lgd_pool, "pooling_"),
                (b.lgd_glob, "glob_"),
            ):
                frozen += [module for name, module in group.items() if int(name[len(prefix) :]) < self.start]
        return frozen

    def freeze(self) -> None:
        """Prefix: no gradients, eval mode (call after ``model.train()``); the rest trains."""
        for p in self.backbone.parameters():
            p.requires_grad_(True)
        for module in self.frozen_modules():
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)

    def _run(
        self, x: torch.Tensor, glob: torch.Tensor | None, first: int, last: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Modules ``first .. last - 1`` of ``features`` with the LGD steps after each (the backbone's
        forward, cut)."""
        b = self.backbone
        lgd = getattr(b, "lgd", False)
        for m in range(first, last):
            x = b.features[m](x)
            if not lgd:
                continue
            if f"upsample_{m}" in b.lgd_upsample:
                x = b.lgd_upsample[f"upsample_{m}"](glob) + x
            if f"pooling_{m}" in b.lgd_pool:
                pooled = b.lgd_pool[f"pooling_{m}"](x)
                glob = pooled if m == 0 else b.lgd_glob[f"glob_{m}"](glob) + pooled
        return x, glob

    def prefix(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The frozen part's output for `clips` (run it under ``torch.no_grad()``)."""
        return self.prefix_from(clips, None, 0)

    def prefix_from(
        self, x: torch.Tensor, glob: torch.Tensor | None, first: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The rest of the frozen part from the output of modules ``0 .. first - 1`` (cached features
        of an earlier cut, ``first <= start``)."""
        if first > self.num_modules:  # already the backbone's output
            return x, glob
        x, glob = self._run(x, glob, first, min(self.start, self.num_modules))
        if self.head_only:
            x = self.backbone.conv(x)
        return x, glob

    def suffix(self, x: torch.Tensor, glob: torch.Tensor | None) -> torch.Tensor:
        """The backbone's output from the prefix's (the trainable part of the backbone)."""
        if self.head_only:
            return x
        x, _ = self._run(x, glob, self.start, self.num_modules)
        return self.backbone.conv(x)
