"""One training epoch, `train_one_epoch`, as torchvision's reference scripts read; the step module it
calls (`TrainStep`), and precise BatchNorm statistics before validation.

Per batch: lr from the LambdaLR schedule -> inputs to the device (normalised there) -> forward ->
loss (AM-Softmax scale at ``iteration / iters_per_epoch``) -> finite? -> backward -> clip -> optimizer
step -> scheduler step -> callback (sample filtering) -> log.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from fvcore.nn.precise_bn import update_bn_stats
from torch import nn
from tqdm import tqdm

from action_rec.errors import UserError
from action_rec.evaluation.loop import Prepare, model_input
from action_rec.templates import GradClip
from action_rec.training import distributed as distrib
from action_rec.training.freezing import BackboneSplit
from action_rec.training.logs import RunLog
from action_rec.training.optim import clip_gradients

__all__ = [
    "TrainingError",
    "TrainStep",
    "EpochSetup",
    "EpochStats",
    "train_one_epoch",
    "recompute_bn_statistics",
]


class TrainingError(UserError):
    """Training failed at run time (loss not finite, out of memory); the message says where."""


def is_oom(exc: BaseException) -> bool:
    """Whether `exc` is the device (or host) running out of memory."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


class TrainStep(nn.Module):
    """One forward pass giving what the losses need: scores ``N x C``, embedding ``N x D`` and the class
    centres ``D x C`` (angular head; None for the linear one). DDP wraps this module, so every parameter
    the loss uses is used inside its forward.

    `split` says which part of the backbone trains (see :mod:`.freezing`; the trainer sets it per epoch):
    the frozen prefix runs without autograd. Inputs are clips, or cached outputs ``(x, glob)`` of the
    backbone's stages before `cached_start` (`glob` an empty tensor for a backbone without a global path).
    """

    def __init__(self, model: nn.Module, cached_start: int = 0) -> None:
        super().__init__()
        self.model = model
        self.split = BackboneSplit(model.backbone, 0)
        self.cached_start = cached_start

    def forward(
        self, inputs: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        split = self.split
        if isinstance(inputs, tuple | list):
            x, glob = inputs
            with torch.no_grad():  # a later cut than the cache's (head-only epochs): the rest is frozen too
                x, glob = split.prefix_from(x, glob if glob.numel() else None, self.cached_start)
            features = split.suffix(x, glob)
        elif split.trains_everything:
            features = self.model.backbone(inputs)
        else:
            with torch.no_grad():
                x, glob = split.prefix(inputs)
            features = split.suffix(x, glob)
        head = self.model.cls_head
        embedding = head.embed(features)
        return head.classify(embedding), embedding, head.class_centres()


@dataclass
class EpochSetup:
    """What one epoch needs besides the model, loss, optimizer and loader."""

    epoch: int
    iteration: int  # optimizer steps done before this epoch
    iters_per_epoch: int
    device: torch.device
    prepare: Prepare | None
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    grad_clip: GradClip
    log: RunLog
    amp: bool = False
    world_size: int = 1
    progress: bool = True
    desc: str = ""
    latest_hint: str = "not written yet"  # where the last good checkpoint is, for the error message
    after_step: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None  # (i, scores, labels)
    centre_pairs: torch.Tensor | None = None  # the head's `centre_pairs()`, for the centre-push loss


@dataclass
class EpochStats:
    """Mean loss and accuracy over all processes, the last lr and AM-Softmax scale, the speed."""

    loss: float
    top1: float
    lr: float
    scale: float
    clips_per_s: float
    iterations: int


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Iterable[tuple[Any, torch.Tensor]],
    setup: EpochSetup,
) -> EpochStats:
    """One pass over `loader` with `model` (a `TrainStep`, possibly DDP-wrapped); see the module docstring."""
    s = setup
    params = [p for group in optimizer.param_groups for p in group["params"]]
    loss_sum = correct_sum = count = 0.0
    lr = scale = 0.0
    i = 0
    start = time.monotonic()
    bar = tqdm(total=s.iters_per_epoch, desc=s.desc, disable=not s.progress, dynamic_ncols=True, leave=False)
    try:
        for i, (inputs, labels) in enumerate(loader):
            iteration = s.iteration + i
            lr = optimizer.param_groups[-1]["lr"]  # the head's group
            if isinstance(inputs, tuple | list):
                inputs = tuple(t.to(s.device, non_blocking=True) for t in inputs)
            else:
                inputs = model_input(inputs, s.device, s.prepare)
            labels = labels.to(s.device, non_blocking=True)
            with torch.autocast(device_type=s.device.type, dtype=torch.float16, enabled=s.amp):
                scores, embedding, centres = model(inputs)
            progress = iteration / s.iters_per_epoch
            loss, parts = criterion(scores, labels, embedding, centres, epoch=progress, mask=s.centre_pairs)
            scale = parts["scale"]
            # Summed over ranks: all of them see a non-finite loss and stop together (a rank that
            # stopped alone would leave the others waiting in the next all-reduce).
            loss_total, correct = distrib.all_reduce_sum(
                [loss.item(), float((scores.argmax(1) == labels).sum())], s.device
            )
            if not math.isfinite(loss_total):
                raise TrainingError(
                    f"loss is {loss_total} at epoch {s.epoch + 1}, iteration {i + 1} (step {iteration + 1}): "
                    f"training stopped; the last good checkpoint is {s.latest_hint} (try a lower --base-learning-rate)"
                )
            optimizer.zero_grad(set_to_none=True)
            s.scaler.scale(loss).backward()
            s.scaler.unscale_(optimizer)
            clip_gradients(params, s.grad_clip.type, float(s.grad_clip.value))
            s.scaler.step(optimizer)
            s.scaler.update()
            s.scheduler.step()
            if s.after_step is not None:
                s.after_step(i, scores, labels)

            n = labels.numel() * s.world_size
            loss_sum += loss_total / s.world_size * n
            correct_sum += correct
            count += n
            bar.set_postfix(
                loss=f"{loss_total / s.world_size:.3f}",
                acc=f"{100 * correct_sum / count:.1f}",
                lr=f"{lr:.2e}",
                clips_s=f"{count / max(time.monotonic() - start, 1e-9):.1f}",
                refresh=False,
            )
            bar.update(1)
            s.log.scalars(
                "train",
                iteration + 1,
                {
                    "epoch": s.epoch + 1,
                    "iteration": iteration + 1,
                    "iters_per_epoch": s.iters_per_epoch,
                    "loss": loss_total / s.world_size,
                    "lr": lr,
                    **parts,
                },
            )
    except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
        if isinstance(exc, TrainingError) or not is_oom(exc):
            raise
        raise TrainingError(
            f"out of memory at epoch {s.epoch + 1}, iteration {i + 1} on {s.device}: lower --batch-size "
            "(or input.size / input.clip_len with --set)"
        ) from None
    finally:
        bar.close()
    seconds = time.monotonic() - start
    steps = int(count > 0) and i + 1
    count = max(count, 1.0)
    return EpochStats(
        loss_sum / count, 100.0 * correct_sum / count, lr, scale, count / max(seconds, 1e-9), steps
    )


@torch.no_grad()
def recompute_bn_statistics(
    module: nn.Module,
    loader: Iterable[tuple[torch.Tensor, Any]],
    model: nn.Module,
    device: torch.device,
    prepare: Prepare | None = None,
) -> int:
    """ "Precise BN" (fvcore's `update_bn_stats`): replace the running statistics of `module`'s
    BatchNorm layers by their population values over `loader`'s batches, with the current weights
    (`model` runs the clips).

    The running averages kept during training lag behind weights that change fast (from scratch, at a
    high learning rate), and an eval-mode model can then be far worse than the same weights in train
    mode. Averaged over processes. Returns the number of batches used. `prepare` turns a batch of clips
    into the model's input on `device` (default: the clips as they are, moved there).
    """
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    batches = list(loader) if not hasattr(loader, "__len__") else loader
    if not layers or len(batches) == 0:
        return 0
    modes = {m: m.training for m in model.modules()}
    model.eval()  # dropout off; only the chosen BN layers collect statistics (fvcore picks training ones)
    for layer in layers:
        layer.train()
    update_bn_stats(
        model, (model_input(clips, device, prepare) for clips, _ in batches), num_iters=len(batches)
    )
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        for layer in layers:
            for stat in (layer.running_mean, layer.running_var):
                dist.all_reduce(stat)
                stat /= dist.get_world_size()
    for m, mode in modes.items():
        m.training = mode
    return len(batches)
