"""The training loop: `train(template, options)` runs a whole training, on one or several processes.

One epoch, in each process (rank) of ``world_size``::

    seed the global generators with (seed, epoch, rank)   dropout etc.; each clip's augmentation is
                                                          seeded by (seed, epoch, clip) in the dataset
    head-only epoch?   backbone frozen and in eval mode (fine-tuning only)
    for each batch:    uint8 clips -> device -> normalise -> lr(epoch + i/iters) -> forward -> loss
                       -> finite? -> backward -> clip -> optimizer step (SGD or AdamW)
    validate:          confusion matrix + top-5 count, summed over ranks
    rank 0:            latest.pth (+ best.pth when val top-1 improves), train.log, metrics.jsonl

Each epoch depends only on the checkpoint it starts from and on (seed, epoch), so a run resumed from
latest.pth ends with exactly the weights of an uninterrupted run (on CPU, bit for bit), whatever the
number of data-loading workers.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from action_rec.data.loading import DataError, build_datasets, make_loader
from action_rec.errors import UserError
from action_rec.evaluation.metrics import AccuracyMeter
from action_rec.fileio import atomic_write
from action_rec.training import distributed as distrib
from action_rec.training.checkpoint import (
    BEST,
    LATEST,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from action_rec.training.logs import CURVES, METRICS, RunLog, plot_training_curves
from action_rec.training.losses import build_criterion
from action_rec.training.optim import build_optimizer, clip_gradients
from action_rec.training.sample_filter import FilteredClips, FilteredEpochSampler, SampleFilter
from action_rec.training.schedules import LRSchedule, apply_learning_rate

__all__ = [
    "TrainOptions",
    "TrainResult",
    "TrainingError",
    "Trainer",
    "train",
    "run_process",
    "validate",
    "recompute_bn_statistics",
]


class TrainingError(UserError):
    """Training failed at run time (loss not finite, out of memory); the message says where."""


@dataclass
class TrainOptions:
    """Everything `train` needs besides the template (the CLI's flags, resolved)."""

    out_dir: Path
    train_ann_files: list[str]
    train_data_roots: list[str]
    val_ann_files: list[str] = field(default_factory=list)
    val_data_roots: list[str] = field(default_factory=list)
    load_weights: str | None = None
    resume: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    world_size: int = 1  # processes (one per GPU on CUDA)
    workers: int | None = None  # DataLoader workers per process; None = template training.workers
    seed: int = 0
    amp: bool = False
    progress: bool = True
    stop_after: int | None = None  # stop after this many epochs *of this invocation* (resume later)
    precise_bn: int = 0  # training clips to recompute BatchNorm statistics on before each validation


@dataclass
class TrainResult:
    """What a finished training produced (also written to ``result.json`` in the output dir)."""

    out_dir: str
    epochs: int
    iterations: int
    best_top1: float | None
    best_epoch: int | None
    last_metrics: dict[str, float]
    latest: str
    best: str | None
    curves: str | None
    seconds: float
    num_classes: int
    class_names: list[str]


class _TrainForward(nn.Module):
    """One forward pass giving what the losses need: scores ``N x C``, embedding ``N x D`` and the class
    centres ``D x C`` (angular head; None for the linear one). DDP wraps this module, so every
    parameter the loss uses is used inside its forward.

    With `frozen_backbone` the backbone runs without autograd (head-only epochs): faster, same result.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.frozen_backbone = False

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_backbone):
            features = self.model.backbone(clips)
        embedding = self.model.cls_head.embed(features)
        scores = self.model.cls_head.classify(embedding)
        fc = getattr(self.model.cls_head, "fc_angular", None)
        return scores, embedding, (fc.class_centres() if fc is not None else None)


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _select_device(options: TrainOptions, local_rank: int) -> torch.device:
    name = "cuda" if options.device == "auto" and torch.cuda.is_available() else options.device
    name = "cpu" if name == "auto" else name
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DataError(
                f"--device {options.device}: CUDA is not available on this machine (use --device cpu)"
            )
        if options.world_size > 1 or device.index is None:
            device = torch.device("cuda", local_rank if options.world_size > 1 else 0)
    return device


Prepare = Callable[[torch.Tensor], torch.Tensor]


def _model_input(clips: torch.Tensor, device: torch.device, prepare: Prepare | None) -> torch.Tensor:
    return clips.to(device, non_blocking=True) if prepare is None else prepare(clips)


@torch.no_grad()
def recompute_bn_statistics(
    module: nn.Module,
    loader: DataLoader,
    model: nn.Module,
    device: torch.device,
    prepare: Prepare | None = None,
) -> int:
    """ "Precise BN": replace the running statistics of `module`'s BatchNorm layers by their plain average
    over `loader`'s batches, computed with the current weights (`model` runs the clips).

    The running averages kept during training lag behind weights that change fast (from scratch, at a
    high learning rate), and an eval-mode model can then be far worse than the same weights in train
    mode. Averaged over processes. Returns the number of batches used. `prepare` turns a batch of clips
    into the model's input on `device` (default: the clips as they are, moved there; the trainer's
    normalises its uint8 clips).
    """
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        return 0
    modes = {m: m.training for m in model.modules()}
    momenta = [layer.momentum for layer in layers]
    model.eval()  # dropout off; only the chosen BN layers collect statistics
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average
        layer.train()
    batches = 0
    for clips, _ in loader:
        model(_model_input(clips, device, prepare))
        batches += 1
    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
        if distributed:
            for stat in (layer.running_mean, layer.running_var):
                dist.all_reduce(stat)
                stat /= dist.get_world_size()
    for m, mode in modes.items():
        m.training = mode
    return batches


def validate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    device: torch.device,
    prepare: Prepare | None = None,
) -> dict[str, Any]:
    """Top-1, top-5, mean class accuracy over `loader` (counts summed over all processes); `prepare` as
    for `recompute_bn_statistics`."""
    model.eval()
    meter = AccuracyMeter(num_classes, device)
    with torch.no_grad():
        for clips, labels in loader:
            meter.update(model(_model_input(clips, device, prepare)), labels.to(device))
    meter.all_reduce()
    return meter.compute()


class Trainer:
    """One process's share of a training run; `run()` trains the remaining epochs.

    Built from the template and the options: datasets (the training set decides the classes), model
    (fresh, fine-tuned from --load-weights, or resumed from latest.pth), SGD, schedule, loss, loaders.
    """

    def __init__(self, template: dict[str, Any], options: TrainOptions, info: distrib.ProcessInfo) -> None:
        from action_rec.models import build_model, load_weights

        self.template, self.options, self.info = template, options, info
        self.out_dir = Path(options.out_dir)
        self.latest_path, self.best_path = self.out_dir / LATEST, self.out_dir / BEST
        t = template["training"]
        self.epochs = int(t["epochs"])
        self.criterion = build_criterion(template)
        # uint8 clips out of the loader workers (4x less to move), normalised per batch: prepare_batch.
        self.train_set, self.val_set = build_datasets(
            template,
            options.train_ann_files,
            options.train_data_roots,
            options.val_ann_files,
            options.val_data_roots,
            normalize=False,
        )
        self.mean, self.std = list(template["input"]["mean"]), list(template["input"]["std"])
        self.class_names = list(self.train_set.class_names)

        checkpoint = self._resume_checkpoint() if options.resume else None
        self.fine_tune = (
            bool(checkpoint["meta"]["fine_tune"]) if checkpoint else options.load_weights is not None
        )
        self.epoch = int(checkpoint["epoch"]) if checkpoint else 0  # epochs done
        self.log = RunLog(self.out_dir, enabled=info.is_main, resume_epoch=self.epoch if checkpoint else None)

        distrib.seed_everything(options.seed)  # the initial weights depend on the seed alone
        self.model = build_model(template, num_classes=len(self.class_names))
        if checkpoint is not None:
            self.model.load_state_dict(checkpoint["state_dict"])
        elif options.load_weights:
            load_weights(self.model, options.load_weights, log=self.log.info)
        self.model.to(info.device)
        # On CPU, channels-last 3D convolutions train about a third faster (same weights and results).
        self.memory_format = torch.channels_last_3d if info.device.type == "cpu" else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.forward = _TrainForward(self.model)
        self.ddp: nn.Module | None = None
        self.ddp_head_only: bool | None = None

        self.schedule = LRSchedule.from_template(template, fine_tune=self.fine_tune)
        self.optimizer = build_optimizer(self.model, template, self.schedule.base_lr)
        self.amp = bool(options.amp and info.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.iteration = 0
        self.best_top1: float | None = None
        self.best_epoch: int | None = None
        if checkpoint is not None:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.amp and checkpoint.get("scaler"):
                self.scaler.load_state_dict(checkpoint["scaler"])
            self.iteration = int(checkpoint["iteration"])
            self.best_top1 = checkpoint["meta"].get("best_top1")
            self.best_epoch = checkpoint["meta"].get("best_epoch")
            restore_rng_state(checkpoint["rng"])
            self.log.info(
                f"Resuming from {self.latest_path}: {self.epoch} of {self.epochs} epochs done "
                f"({self.iteration} iterations)"
            )
        self._build_loaders()
        if checkpoint is not None and self.sample_filter is not None and "sample_filter" in checkpoint:
            self.sample_filter.load_state_dict(checkpoint["sample_filter"])

    def _resume_checkpoint(self) -> dict[str, Any]:
        if not self.latest_path.is_file():
            raise DataError(
                f"--resume: {self.latest_path}: no checkpoint to resume from (train without --resume)"
            )
        checkpoint = load_checkpoint(self.latest_path)
        names = list(checkpoint.get("class_names", []))
        if names != self.class_names:
            raise DataError(
                f"--resume: {self.latest_path} was trained on {len(names)} classes that differ from the "
                f"{len(self.class_names)} classes of --train-ann-files"
            )
        return checkpoint

    def _build_loaders(self) -> None:
        t, info, options = self.template["training"], self.info, self.options
        # Drop the last incomplete batch (a batch of 1 breaks BatchNorm); shrink the batch for tiny sets.
        self.batch_size = int(t["batch_size"])
        per_rank = math.ceil(len(self.train_set) / info.world_size)
        if per_rank < self.batch_size:
            if per_rank < 2:
                raise DataError(
                    f"--train-ann-files: {len(self.train_set)} training clip(s) for {info.world_size} "
                    "process(es): need at least 2 per process"
                )
            self.log.info(
                f"Batch size {self.batch_size} > {per_rank} clips per process: using batches of {per_rank}"
            )
            self.batch_size = per_rank
        self.iters_per_epoch = per_rank // self.batch_size
        self.workers = int(t["workers"] if options.workers is None else options.workers)
        # Data order: DistributedSampler shuffles with (seed, epoch); augmentation: seeded per (seed, epoch, clip).
        order = DistributedSampler(
            self.train_set, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=options.seed
        )
        self.sample_filter: SampleFilter | None = None
        if t["sample_filtering"]:
            inp = self.template["input"]
            self.sample_filter = SampleFilter(
                self.train_set.records, inp["clip_len"], inp["frame_interval"], inp["target_fps"], options.seed
            )
            self.sampler = FilteredEpochSampler(order, self.sample_filter)
            train_data = FilteredClips(self.train_set, options.seed)
        else:
            self.sampler = distrib.EpochSampler(order)
            train_data = distrib.EpochSeededDataset(self.train_set, options.seed)
        self.train_loader = make_loader(
            train_data,
            self.batch_size,
            self.sampler,
            self.workers,
            drop_last=True,
        )
        self.bn_loader = None
        if options.precise_bn > 0:
            # A fixed random subset of the training clips, centre-cropped like validation clips. Shuffled:
            # batches of one class each (annotation files are often sorted) would understate the variance.
            from action_rec.data import RawFrameDataset

            bn_set = RawFrameDataset(
                self.train_set.ann_files,
                self.train_set.data_roots,
                self.template,
                "val",
                self.class_names,
                normalize=False,
            )
            order = torch.randperm(
                len(bn_set), generator=torch.Generator().manual_seed(options.seed)
            ).tolist()
            shard = order[: options.precise_bn][info.rank :: info.world_size]
            self.bn_loader = make_loader(bn_set, self.batch_size, shard, self.workers)
        self.val_loader = None
        if self.val_set is not None:
            shard = distrib.ShardSampler(len(self.val_set), info.rank, info.world_size)
            self.val_loader = make_loader(self.val_set, self.batch_size, shard, self.workers)

    def prepare_batch(self, clips: torch.Tensor) -> torch.Tensor:
        """A loader batch (uint8 ``N x 3 x T x H x W``) as the model's input: moved to the device (a
        quarter of the float32 bytes), normalised there, in the model's memory format."""
        from action_rec.data import normalize_batch

        clips = clips.to(self.info.device, non_blocking=True)
        return normalize_batch(clips, self.mean, self.std, self.memory_format)

    # ------------------------------------------------------------------------------------------ run

    def run(self) -> TrainResult | None:
        """Train the remaining epochs; returns the result on rank 0 (None on the others)."""
        start = time.monotonic()
        self._announce()
        last_metrics: dict[str, float] = {}
        epochs_run = 0
        while self.epoch < self.epochs:
            if self.options.stop_after is not None and epochs_run >= self.options.stop_after:
                self.log.info(
                    f"Stopping after {epochs_run} epoch(s) as asked (--stop-after); continue with --resume"
                )
                break
            epoch_start = time.monotonic()
            train_stats = self.train_epoch(self.epoch)
            val = self.validate_epoch(self.epoch)
            self.epoch += 1
            epochs_run += 1
            last_metrics = {**train_stats.pop("metrics"), **val}
            improved = "val_top1" in val and (self.best_top1 is None or val["val_top1"] > self.best_top1)
            if improved:
                self.best_top1, self.best_epoch = val["val_top1"], self.epoch
            if self.info.is_main:
                self._save(last_metrics, improved)
                self._report_epoch(last_metrics, train_stats, improved, time.monotonic() - epoch_start)
            if self.info.distributed:
                dist.barrier()
        return self._finish(last_metrics, time.monotonic() - start) if self.info.is_main else None

    def _announce(self) -> None:
        t = self.template["training"]
        how = "from scratch"
        if self.fine_tune:
            head_only = self.schedule.head_only_epochs
            how = f"fine-tuning ({head_only} head-only epochs first)" if head_only else "fine-tuning"
        val = (
            f", validating on {len(self.val_set)} clips"
            if self.val_set is not None
            else ", no validation set"
        )
        self.log.info(
            f"Training {self.template['name']} ({self.template['model']['head']} head, "
            f"{self.template['loss']['type']}) {how} on {len(self.train_set)} clips of "
            f"{len(self.class_names)} classes{val}"
        )
        self.log.info(
            f"  {self.epochs} epochs x {self.iters_per_epoch} iterations, batch {self.batch_size} x "
            f"{self.info.world_size} process(es) on {self.info.device}{' with AMP' if self.amp else ''}, "
            f"base lr {self.schedule.base_lr:g} ({self.schedule.kind}), clip {t['grad_clip']['type']} "
            f"{t['grad_clip']['value']:g}, seed {self.options.seed}, workers {self.workers}"
        )
        if self.options.amp and not self.amp:
            self.log.info("--amp: mixed precision needs CUDA; training in float32")

    def _step_module(self, head_only: bool) -> nn.Module:
        """The module to call for a training step: plain, or DDP-wrapped for this phase."""
        _set_trainable_backbone(self.model, not head_only)
        self.forward.frozen_backbone = head_only
        if not self.info.distributed:
            return self.forward
        if self.ddp is None or self.ddp_head_only != head_only:
            # DDP registers the parameters that require grad when built: rebuild it when the phase changes.
            device = self.info.device
            self.ddp = nn.parallel.DistributedDataParallel(
                self.forward, device_ids=[device.index] if device.type == "cuda" else None
            )
            self.ddp_head_only = head_only
        return self.ddp

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training set; returns its mean loss and accuracy (over all ranks)."""
        info, t = self.info, self.template["training"]
        device, world_size = info.device, info.world_size
        distrib.seed_everything(distrib.epoch_seed(self.options.seed, epoch, info.rank))
        head_only = self.schedule.head_only(epoch)
        step_module = self._step_module(head_only)
        self.model.train()
        if head_only:
            self.model.backbone.eval()  # BN statistics frozen too
        self.sampler.set_epoch(epoch)
        mask = getattr(getattr(self.model.cls_head, "fc_angular", None), "reg_mask", None)

        loss_sum = correct_sum = count = 0.0
        lr = scale = 0.0
        start = time.monotonic()
        bar = tqdm(
            total=self.iters_per_epoch,
            desc=f"epoch {epoch + 1}/{self.epochs}" + (" head-only" if head_only else ""),
            disable=not (self.options.progress and info.is_main),
            dynamic_ncols=True,
            leave=False,
        )
        i = 0
        try:
            for i, (clips, labels) in enumerate(self.train_loader):
                progress = epoch + i / self.iters_per_epoch
                lr = apply_learning_rate(self.optimizer, self.schedule, progress)
                clips = self.prepare_batch(clips)
                labels = labels.to(device, non_blocking=True)
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=self.amp):
                    scores, embedding, centres = step_module(clips)
                loss, parts = self.criterion(scores, labels, embedding, centres, epoch=progress, mask=mask)
                scale = parts["scale"]
                # Summed over ranks: all of them see a non-finite loss and stop together (a rank that
                # stopped alone would leave the others waiting in the next all-reduce).
                loss_total, correct = distrib.all_reduce_sum(
                    [loss.item(), float((scores.argmax(1) == labels).sum())], device
                )
                if not math.isfinite(loss_total):
                    where = self.latest_path if self.latest_path.exists() else "not written yet"
                    raise TrainingError(
                        f"loss is {loss_total} at epoch {epoch + 1}, iteration {i + 1} (step {self.iteration + 1}): "
                        f"training stopped; the last good checkpoint is {where} (try a lower --base-learning-rate)"
                    )
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
                clip_gradients(
                    self.model.parameters(), t["grad_clip"]["type"], float(t["grad_clip"]["value"])
                )
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.iteration += 1
                if self.sample_filter is not None:
                    keys = self.sampler.keys[i * self.batch_size : (i + 1) * self.batch_size]
                    angular = self.template["model"]["head"] == "angular"
                    self.sample_filter.update(epoch, keys, scores, labels, angular)

                n = labels.numel() * world_size
                loss_sum += loss_total / world_size * n
                correct_sum += correct
                count += n
                speed = count / max(time.monotonic() - start, 1e-9)
                bar.set_postfix(
                    loss=f"{loss_total / world_size:.3f}",
                    acc=f"{100 * correct_sum / count:.1f}",
                    lr=f"{lr:.2e}",
                    clips_s=f"{speed:.1f}",
                    refresh=False,
                )
                bar.update(1)
                self.log.scalars(
                    "train",
                    self.iteration,
                    {
                        "epoch": epoch + 1,
                        "iteration": self.iteration,
                        "iters_per_epoch": self.iters_per_epoch,
                        "loss": loss_total / world_size,
                        "lr": lr,
                        **parts,
                    },
                )
        except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
            if isinstance(exc, TrainingError) or not _is_oom(exc):
                raise
            raise TrainingError(
                f"out of memory at epoch {epoch + 1}, iteration {i + 1} on {device} with batch size "
                f"{self.batch_size} per process: lower --batch-size (or input.size / input.clip_len with --set)"
            ) from None
        finally:
            bar.close()
        seconds = time.monotonic() - start
        if info.distributed:
            # DDP keeps the parameters in step, but BN statistics are per process (DDP broadcasts rank 0's
            # only at the start of each forward): take rank 0's, so that all ranks validate, and rank 0
            # saves, one model.
            for buffer in self.model.buffers():
                dist.broadcast(buffer, src=0)
        count = max(count, 1.0)
        return {
            "metrics": {"train_loss": loss_sum / count, "train_top1": 100.0 * correct_sum / count},
            "lr": lr,
            "scale": scale,
            "clips_per_s": count / max(seconds, 1e-9),
        }

    def validate_epoch(self, epoch: int) -> dict[str, float]:
        try:
            if self.bn_loader is not None:
                # Only the layers that trained this epoch: the frozen backbone keeps its statistics.
                head_only = self.schedule.head_only(epoch)
                recompute_bn_statistics(
                    self.model.cls_head if head_only else self.model,
                    self.bn_loader,
                    self.model,
                    self.info.device,
                    self.prepare_batch,
                )
            if self.val_loader is None:
                return {}
            val = validate(
                self.model, self.val_loader, len(self.class_names), self.info.device, self.prepare_batch
            )
        except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
            if not _is_oom(exc):
                raise
            raise TrainingError(
                f"out of memory while validating epoch {epoch + 1} on {self.info.device}: lower --batch-size"
            ) from None
        return {"val_top1": val["top1"], "val_top5": val["top5"], "val_mean_class": val["mean_class"]}

    # ------------------------------------------------------------------------------------ outputs

    def checkpoint(self, metrics: dict[str, float]) -> dict[str, Any]:
        """The checkpoint dict of the current state (see action_rec.training.checkpoint)."""
        state = {
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "epoch": self.epoch,
            "iteration": self.iteration,
            "rng": capture_rng_state(),
            "template": self.template,
            "class_names": self.class_names,
            "meta": {
                "fine_tune": self.fine_tune,
                "seed": self.options.seed,
                "world_size": self.info.world_size,
                "best_top1": self.best_top1,
                "best_epoch": self.best_epoch,
                "metrics": metrics,
                "torch": str(torch.__version__),
            },
        }
        if self.amp:
            state["scaler"] = self.scaler.state_dict()
        if self.sample_filter is not None:
            state["sample_filter"] = self.sample_filter.state_dict()
        return state

    def _save(self, metrics: dict[str, float], improved: bool) -> None:
        state = self.checkpoint(metrics)
        save_checkpoint(self.latest_path, state)
        if improved:
            save_checkpoint(self.best_path, state)

    def _report_epoch(
        self, metrics: dict[str, float], stats: dict[str, Any], improved: bool, seconds: float
    ) -> None:
        record = {
            "epoch": self.epoch,
            "iteration": self.iteration,
            "lr": stats["lr"],
            "loss/scale": stats["scale"],  # the AM-Softmax scale at the epoch's last iteration
            "clips_per_s": stats["clips_per_s"],
            "epoch_seconds": seconds,
            **metrics,
        }
        self.log.scalars("epoch", self.epoch, record)
        val = ""
        if "val_top1" in metrics:
            val = (
                f", val top-1 {metrics['val_top1']:.2f} % top-5 {metrics['val_top5']:.2f} % "
                f"mean class {metrics['val_mean_class']:.2f} %" + (" (best)" if improved else "")
            )
        self.log.info(
            f"epoch {self.epoch}/{self.epochs}: loss {metrics['train_loss']:.4f}, train top-1 "
            f"{metrics['train_top1']:.2f} %{val}, lr {stats['lr']:.2e}, {stats['clips_per_s']:.1f} clips/s, "
            f"{seconds:.0f} s"
        )

    def _finish(self, last_metrics: dict[str, float], seconds: float) -> TrainResult:
        curves = plot_training_curves(self.out_dir / METRICS, self.out_dir / CURVES)
        result = TrainResult(
            out_dir=str(self.out_dir),
            epochs=self.epoch,
            iterations=self.iteration,
            best_top1=self.best_top1,
            best_epoch=self.best_epoch,
            last_metrics=last_metrics,
            latest=str(self.latest_path),
            best=str(self.best_path) if self.best_path.exists() else None,
            curves=str(curves) if curves else None,
            seconds=seconds,
            num_classes=len(self.class_names),
            class_names=self.class_names,
        )
        best = (
            f"best val top-1 {self.best_top1:.2f} % (epoch {self.best_epoch})"
            if self.best_top1 is not None
            else "no validation"
        )
        files = ", ".join(str(p) for p in (self.latest_path, self.best_path) if p.exists())
        self.log.info(
            f"Done: {self.epoch}/{self.epochs} epochs, {self.iteration} iterations in {_duration(seconds)}; "
            f"{best}; checkpoints {files}" + (f"; curves {curves}" if curves else "")
        )
        path = self.out_dir / "result.json"
        atomic_write(path, json.dumps(dataclasses.asdict(result), indent=2) + "\n")
        return result


def _set_trainable_backbone(model: nn.Module, trainable: bool) -> None:
    for p in model.backbone.parameters():
        p.requires_grad_(trainable)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


# ------------------------------------------------------------------------------------------ launching


def run_process(
    template: dict[str, Any], options: TrainOptions, rank: int = 0, world_size: int = 1, local_rank: int = 0
) -> tuple[TrainResult | None, nn.Module, int]:
    """Train in this process as `rank` of `world_size` (the process group, if any, is already set up).

    Returns (the result on rank 0, else None; the trained model; the number of optimizer steps).
    """
    info = distrib.ProcessInfo(rank, world_size, local_rank, _select_device(options, local_rank))
    trainer = Trainer(template, options, info)
    try:
        result = trainer.run()
    finally:
        trainer.log.close()
    return result, trainer.model, trainer.iteration


def _spawned(rank: int, template: dict[str, Any], options: TrainOptions, port: int, errors) -> None:
    """Entry of each spawned process: join the group, train, report a clean error line on failure."""
    import sys

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // options.world_size))
    device_type = _select_device(options, rank).type
    if device_type == "cuda":
        torch.cuda.set_device(rank)
    distrib.init_process_group(rank, options.world_size, device_type, port)
    try:
        run_process(template, options, rank, options.world_size, rank)
    except UserError as exc:
        errors.put((rank, "training" if isinstance(exc, TrainingError) else "user", str(exc)))
        sys.exit(2)
    finally:
        distrib.cleanup()


def train(template: dict[str, Any], options: TrainOptions) -> TrainResult:
    """Run a whole training as `options` say; returns rank 0's result.

    ``world_size > 1`` spawns that many processes (DDP), unless this process was started by torchrun,
    in which case it is one of them and joins torchrun's group. Raises UserError subclasses for bad
    input (template, data, checkpoints) and TrainingError for run-time failures (a non-finite loss,
    out of memory); a bug in any process propagates with its traceback. Loader workers are
    spawned processes: call this under ``if __name__ == "__main__":`` in a script.
    """
    options = dataclasses.replace(options, out_dir=Path(options.out_dir))
    external = distrib.torchrun_world_size()
    if external is not None and external > 1:
        return _train_under_torchrun(template, dataclasses.replace(options, world_size=external))
    if options.world_size <= 1:
        result, _, _ = run_process(template, options)
        return result

    _check_world(options)
    import torch.multiprocessing as mp

    errors = mp.get_context("spawn").SimpleQueue()
    try:
        mp.spawn(
            _spawned,
            args=(template, options, distrib.free_port(), errors),
            nprocs=options.world_size,
            join=True,
        )
    except mp.ProcessExitedException as exc:
        if errors.empty():
            raise TrainingError(
                f"training process {exc.error_index} exited with code {exc.exit_code}"
            ) from None
        _, kind, message = errors.get()
        raise (TrainingError(message) if kind == "training" else DataError(message)) from None
    return TrainResult(**json.loads((options.out_dir / "result.json").read_text(encoding="utf-8")))


def _train_under_torchrun(template: dict[str, Any], options: TrainOptions) -> TrainResult:
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0))
    device_type = _select_device(options, local_rank).type
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    started_here = not dist.is_initialized()
    if started_here:
        distrib.init_process_group(rank, options.world_size, device_type)
    try:
        result, _, _ = run_process(template, options, rank, options.world_size, local_rank)
    finally:
        if started_here:
            distrib.cleanup()
    if result is None:  # ranks other than 0 report nothing; rank 0 writes result.json
        result = TrainResult(str(options.out_dir), 0, 0, None, None, {}, "", None, None, 0.0, 0, [])
    return result


def _check_world(options: TrainOptions) -> None:
    wants_cuda = options.device.startswith("cuda") or (options.device == "auto" and torch.cuda.is_available())
    if wants_cuda and options.world_size > torch.cuda.device_count():
        raise DataError(
            f"--gpu-num {options.world_size}: only {torch.cuda.device_count()} CUDA device(s) visible "
            "(for CPU processes use --device cpu --nproc N)"
        )
