"""Learning-rate schedule of the recipe: head-only epochs, cosine warm-up, then step or cosine decay.

The rate is a function of the (fractional) epoch, ``lr = base_learning_rate x factor(t)`` for each
parameter group, ``t = iteration / iters_per_epoch``; `build_lr_scheduler` turns it into torch's
LambdaLR, stepped once per iteration (its state, the iteration count, travels in the checkpoint).

    epochs [0, head_only)           backbone 0 (frozen), head x head_lr_multiplier
    next warmup_epochs              both groups, cosine warm-up from 1 % to 100 %
    then  step:   x0.1 at each epoch of lr_steps (counted from epoch 0, like the original's configs)
          cosine: 0.5 (1 + cos(pi q^1.5)) from 100 % down to 1 %, q the progress over the remaining epochs
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from action_rec.templates import Template

__all__ = ["LRSchedule", "build_lr_scheduler"]

MIN_FACTOR = 0.01  # warm-up start and cosine end, as a fraction of the base rate


@dataclass
class LRSchedule:
    """Learning rate as a function of the fractional epoch (see the module docstring)."""

    base_lr: float
    epochs: int
    head_only_epochs: int = 0
    head_lr_multiplier: float = 10.0
    warmup_epochs: int = 0
    kind: str = "step"  # step | cosine
    lr_steps: list[int] = field(default_factory=list)

    @classmethod
    def from_template(cls, template: Template, fine_tune: bool, base_lr: float | None = None) -> LRSchedule:
        """The template's schedule; the head-only phase only applies when fine-tuning (`fine_tune`)."""
        t = template.training
        return cls(
            base_lr=float(t.base_learning_rate if base_lr is None else base_lr),
            epochs=t.epochs,
            head_only_epochs=t.head_only_epochs if fine_tune else 0,
            head_lr_multiplier=float(t.head_lr_multiplier),
            warmup_epochs=t.warmup_epochs,
            kind=t.lr_schedule,
            lr_steps=list(t.lr_steps),
        )

    def head_only(self, epoch: int) -> bool:
        """Whether whole epoch `epoch` trains the head alone (backbone frozen, in eval mode)."""
        return epoch < self.head_only_epochs

    def factors(self, t: float) -> dict[str, float]:
        """Multipliers of `base_lr` for the ``backbone`` and ``head`` parameter groups at epoch `t`."""
        if t < self.head_only_epochs:
            return {"backbone": 0.0, "head": self.head_lr_multiplier}
        start = self.head_only_epochs
        factor = 1.0
        if t < start + self.warmup_epochs:
            progress = (t - start) / self.warmup_epochs
            factor = MIN_FACTOR + (1.0 - MIN_FACTOR) * 0.5 * (1.0 - math.cos(math.pi * progress))
        if self.kind == "step":
            factor *= 0.1 ** sum(1 for step in self.lr_steps if math.floor(t) >= step)
        elif t >= start + self.warmup_epochs:
            decay_start = start + self.warmup_epochs
            q = min(max((t - decay_start) / max(self.epochs - decay_start, 1e-9), 0.0), 1.0)
            factor = MIN_FACTOR + (1.0 - MIN_FACTOR) * 0.5 * (1.0 + math.cos(math.pi * q**1.5))
        return {"backbone": factor, "head": factor}

    def learning_rates(self, t: float) -> dict[str, float]:
        return {name: self.base_lr * f for name, f in self.factors(t).items()}


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, schedule: LRSchedule, iters_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR over the optimizer's named groups (``backbone``, ``head``): step i sets each group's lr
    to ``base_lr x schedule.factors(i / iters_per_epoch)[name]``. Step it after every optimizer step."""
    names = [group.get("name", "backbone") for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = schedule.base_lr

    def factor(name: str):
        return lambda step: schedule.factors(step / iters_per_epoch)[name]

    return torch.optim.lr_scheduler.LambdaLR(optimizer, [factor(name) for name in names])
