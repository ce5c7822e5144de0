"""The training run: `Trainer` builds everything from the template and the options and trains the
remaining epochs in this process; :mod:`.launch` starts one or several of them.

One epoch, in each process (rank) of ``world_size``::

    seed the global generators with (seed, epoch, rank)   dropout etc.; each clip's augmentation is
                                                          seeded by (seed, epoch, clip) in the dataset
    which part trains  training.trainable (all | head | blocks:N), the head alone in the head-only
                       epochs of a fine-tuning; the frozen part in eval mode, without gradients
    train_one_epoch    (:mod:`.engine`) forward, loss, backward, clip, optimizer and LambdaLR steps
    validate           the evaluation's clip-scoring loop, counts summed over ranks
    rank 0             latest.pth (+ best.pth: :mod:`.best_epoch`), train.log, metrics.jsonl

Each epoch depends only on the checkpoint it starts from and on (seed, epoch), so a run resumed from
latest.pth ends with exactly the weights of an uninterrupted run (on CPU, bit for bit), whatever the
number of data-loading workers.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from action_rec.data.loading import DataError, build_datasets
from action_rec.evaluation.loop import score_clips
from action_rec.fileio import atomic_write
from action_rec.templates import Template
from action_rec.training import distributed as distrib
from action_rec.training.balance import class_weights
from action_rec.training.best_epoch import BestEpoch
from action_rec.training.engine import (
    EpochSetup,
    TrainingError,
    TrainStep,
    is_oom,
    recompute_bn_statistics,
    train_one_epoch,
)
from action_rec.training.feature_cache import cached_feature_loaders
from action_rec.training.freezing import (
    BackboneSplit,
    keep_bn_statistics,
    keeps_bn_statistics,
    parse_trainable,
)
from action_rec.training.loaders import build_train_loaders
from action_rec.training.logs import CURVES, METRICS, RunLog, plot_training_curves
from action_rec.training.losses import build_criterion
from action_rec.training.optim import build_optimizer
from action_rec.training.options import TrainOptions, TrainResult
from action_rec.training.run_state import (
    BEST,
    LATEST,
    capture_rng_state,
    restore_rng_state,
    save_checkpoint,
)
from action_rec.training.schedules import LRSchedule, build_lr_scheduler

__all__ = ["TrainOptions", "TrainResult", "TrainingError", "Trainer"]


class Trainer:
    """One process's share of a training run; `run()` trains the remaining epochs.

    Built from the template and the options: datasets (the training set decides the classes), model
    (fresh, fine-tuned from --load-weights, or resumed from latest.pth), SGD, schedule, loss, loaders.
    """

    def __init__(self, template: Template, options: TrainOptions, info: distrib.ProcessInfo) -> None:
        from action_rec.models import build_model, load_weights

        self.template, self.options, self.info = template, options, info
        self.out_dir = Path(options.out_dir)
        self.latest_path, self.best_path = self.out_dir / LATEST, self.out_dir / BEST
        t = template.training
        self.epochs = t.epochs
        self.trainable_blocks = parse_trainable(t.trainable)
        # uint8 clips out of the loader workers (4x less to move), normalised per batch: prepare_batch.
        self.train_set, self.val_set = build_datasets(
            template,
            options.train_ann_files,
            options.train_data_roots,
            options.val_ann_files,
            options.val_data_roots,
            normalize=False,
        )
        self.mean, self.std = list(template.input.mean), list(template.input.std)
        self.class_names = list(self.train_set.class_names)

        checkpoint = self._resume_checkpoint() if options.resume else None
        self.fine_tune = (
            bool(checkpoint["meta"]["fine_tune"]) if checkpoint else options.load_weights is not None
        )
        self.epoch = int(checkpoint["epoch"]) if checkpoint else 0  # epochs done
        self.keep_bn_statistics = keeps_bn_statistics(
            t.bn_statistics, self.fine_tune, self.trainable_blocks, t.batch_size
        )
        self.log = RunLog(self.out_dir, enabled=info.is_main, resume_epoch=self.epoch if checkpoint else None)

        distrib.seed_everything(options.seed)  # the initial weights depend on the seed alone
        self.model = build_model(template, num_classes=len(self.class_names))
        if checkpoint is not None:
            self.model.load_state_dict(checkpoint["state_dict"])  # strict: the same template built it
        elif options.load_weights:
            load_weights(self.model, options.load_weights, log=self.log.info)
        self.model.to(info.device)
        # On CPU, channels-last 3D convolutions train about a third faster (same weights and results).
        self.memory_format = torch.channels_last_3d if info.device.type == "cpu" else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.ddp: nn.Module | None = None
        self.ddp_start: int | None = None  # the split the DDP wrapper was built for

        loaders = build_train_loaders(template, options, info, self.train_set, self.val_set, self.log)
        if t.cache_features:
            loaders = cached_feature_loaders(
                loaders, BackboneSplit.from_trainable(self.model.backbone, self.trainable_blocks),
                self.out_dir, template, self.train_set, self.model, self.prepare_batch, options.seed, info,
                options.progress, self.log.info,
            )  # fmt: skip
        self.batch_size, self.iters_per_epoch, self.workers = (
            loaders.batch_size, loaders.iters_per_epoch, loaders.workers
        )  # fmt: skip
        self.sampler, self.sample_filter = loaders.sampler, loaders.sample_filter
        self.train_loader, self.bn_loader, self.val_loader = loaders.train, loaders.bn, loaders.val
        self.step_module = TrainStep(self.model, loaders.cached_start)
        weights = None
        if t.class_balance == "loss":
            weights = class_weights(self.train_set.labels, len(self.class_names)).to(info.device)
        self.criterion = build_criterion(template, weights)
        self.schedule = LRSchedule.from_template(template, fine_tune=self.fine_tune)
        self.optimizer = build_optimizer(self.model, template, self.schedule.base_lr)
        self.scheduler = build_lr_scheduler(self.optimizer, self.schedule, self.iters_per_epoch)
        self.amp = bool(options.amp and info.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.iteration = 0
        self.best = BestEpoch(len(self.val_set) if self.val_set is not None else 0)
        if checkpoint is not None:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self.scheduler.load_state_dict(checkpoint["scheduler"])
            if self.sample_filter is not None and "sample_filter" in checkpoint:
                self.sample_filter.load_state_dict(checkpoint["sample_filter"])
            if self.amp and checkpoint.get("scaler"):
                self.scaler.load_state_dict(checkpoint["scaler"])
            self.iteration = int(checkpoint["iteration"])
            self.best = BestEpoch.from_meta(self.best.clips, checkpoint["meta"])
            restore_rng_state(checkpoint["rng"])
            self.log.info(
                f"Resuming from {self.latest_path}: {self.epoch} of {self.epochs} epochs done "
                f"({self.iteration} iterations)"
            )

    def _resume_checkpoint(self) -> dict[str, Any]:
        """latest.pth as stored, after checking it was trained on these classes with these settings."""
        from action_rec.models.checkpoint import differing_settings, read_checkpoint

        if not self.latest_path.is_file():
            raise DataError(
                f"--resume: {self.latest_path}: no checkpoint to resume from (train without --resume)"
            )
        checkpoint = read_checkpoint(self.latest_path)
        names = checkpoint.class_names or []
        if names != self.class_names:
            raise DataError(
                f"--resume: {self.latest_path} was trained on {len(names)} classes that differ from the "
                f"{len(self.class_names)} classes of --train-ann-files"
            )
        changed = differing_settings(self.template, checkpoint.template or {})
        if changed:
            raise DataError(
                f"--resume: {self.latest_path} was trained with other settings ({'; '.join(changed[:4])}"
                f"{'; ...' if len(changed) > 4 else ''}): resume with its template and --set, or train "
                "into another --save-checkpoints-to"
            )
        return dict(checkpoint.raw)

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
            improved = "val_top1" in val and self.best.update(val["val_top1"], self.epoch)
            if self.info.is_main:
                self._save(last_metrics, improved)
                self._report_epoch(last_metrics, train_stats, improved, time.monotonic() - epoch_start)
            if self.info.distributed:
                dist.barrier()
        return self._finish(last_metrics, time.monotonic() - start) if self.info.is_main else None

    def _announce(self) -> None:
        t = self.template.training
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
            f"Training {self.template.name} ({self.template.model.head} head, "
            f"{self.template.loss.type}) {how} on {len(self.train_set)} clips of "
            f"{len(self.class_names)} classes{val}"
        )
        self.log.info(
            f"  {self.epochs} epochs x {self.iters_per_epoch} iterations, batch {self.batch_size} x "
            f"{self.info.world_size} process(es) on {self.info.device}{' with AMP' if self.amp else ''}, "
            f"base lr {self.schedule.base_lr:g} ({self.schedule.kind}), clip {t.grad_clip.type} "
            f"{t.grad_clip.value:g}, seed {self.options.seed}, workers {self.workers}"
        )
        self.log.info(
            f"  trains: {t.trainable}{' on cached features' if self.step_module.cached_start else ''}, "
            f"class balance: {t.class_balance}, sample filtering: {'on' if self.sample_filter else 'off'}, "
            f"BatchNorm statistics: {'kept as loaded' if self.keep_bn_statistics else 'updated'} "
            f"(training.bn_statistics: {t.bn_statistics})"
        )
        if self.options.amp and not self.amp:
            self.log.info("--amp: mixed precision needs CUDA; training in float32")

    def split_for(self, epoch: int) -> BackboneSplit:
        """Which part trains in `epoch`: the head alone in head-only epochs, else ``training.trainable``."""
        blocks = 0 if self.schedule.head_only(epoch) else self.trainable_blocks
        return BackboneSplit.from_trainable(self.model.backbone, blocks)

    def _step_module(self, split: BackboneSplit) -> nn.Module:
        """The module to call for a training step: plain, or DDP-wrapped for this split."""
        self.step_module.split = split
        split.freeze()
        if self.keep_bn_statistics:
            keep_bn_statistics(self.model)
        if not self.info.distributed:
            return self.step_module
        if self.ddp is None or self.ddp_start != split.start:
            # DDP registers the parameters that require grad when built: rebuild it when the split changes.
            device = self.info.device
            self.ddp = nn.parallel.DistributedDataParallel(
                self.step_module, device_ids=[device.index] if device.type == "cuda" else None
            )
            self.ddp_start = split.start
        return self.ddp

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over the training set; returns its mean loss and accuracy (over all ranks)."""
        info = self.info
        distrib.seed_everything(distrib.epoch_seed(self.options.seed, epoch, info.rank))
        split = self.split_for(epoch)
        self.model.train()
        step_module = self._step_module(split)  # after train(): the frozen part goes back to eval mode
        self.sampler.set_epoch(epoch)
        after_step = None
        if self.sample_filter is not None:
            angular = self.template.model.head == "angular"

            def after_step(i: int, scores: torch.Tensor, labels: torch.Tensor) -> None:
                keys = self.sampler.keys[i * self.batch_size : (i + 1) * self.batch_size]
                self.sample_filter.update(epoch, keys, scores, labels, angular)

        phase = (
            ""
            if split.trains_everything
            else (" head-only" if split.head_only else f" from module {split.start}")
        )
        setup = EpochSetup(
            epoch=epoch,
            iteration=self.iteration,
            iters_per_epoch=self.iters_per_epoch,
            device=info.device,
            prepare=self.prepare_batch,
            scheduler=self.scheduler,
            scaler=self.scaler,
            grad_clip=self.template.training.grad_clip,
            log=self.log,
            amp=self.amp,
            world_size=info.world_size,
            progress=self.options.progress and info.is_main,
            desc=f"epoch {epoch + 1}/{self.epochs}{phase}",
            latest_hint=str(self.latest_path) if self.latest_path.exists() else "not written yet",
            after_step=after_step,
            centre_pairs=self.model.cls_head.centre_pairs(),
        )
        stats = train_one_epoch(step_module, self.criterion, self.optimizer, self.train_loader, setup)
        self.iteration += stats.iterations
        if info.distributed:
            # DDP keeps the parameters in step, but BN statistics are per process (DDP broadcasts rank 0's
            # only at the start of each forward): take rank 0's, so that all ranks validate, and rank 0
            # saves, one model.
            for buffer in self.model.buffers():
                dist.broadcast(buffer, src=0)
        return {
            "metrics": {"train_loss": stats.loss, "train_top1": stats.top1},
            "lr": stats.lr,
            "scale": stats.scale,
            "clips_per_s": stats.clips_per_s,
        }

    def validate_epoch(self, epoch: int) -> dict[str, float]:
        try:
            if self.bn_loader is not None and not self.keep_bn_statistics:
                # Only the layers that trained this epoch: the frozen part keeps its statistics.
                frozen = {id(m) for f in self.split_for(epoch).frozen_modules() for m in f.modules()}
                trained = nn.ModuleList(
                    m for m in self.model.modules() if isinstance(m, _BatchNorm) and id(m) not in frozen
                )
                recompute_bn_statistics(
                    trained, self.bn_loader, self.model, self.info.device, self.prepare_batch
                )
            if self.val_loader is None:
                return {}
            val = score_clips(
                self.model, self.val_loader, len(self.class_names), self.info.device, self.prepare_batch
            )
        except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
            if not is_oom(exc):
                raise
            raise TrainingError(
                f"out of memory while validating epoch {epoch + 1} on {self.info.device}: lower --batch-size"
            ) from None
        return {"val_top1": val["top1"], "val_top5": val["top5"], "val_mean_class": val["mean_class"]}

    # ------------------------------------------------------------------------------------ outputs

    def checkpoint(self, metrics: dict[str, float]) -> dict[str, Any]:
        """The checkpoint dict of the current state (see action_rec.training.run_state)."""
        state = {
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "iteration": self.iteration,
            "rng": capture_rng_state(),
            "template": self.template.to_dict(),  # a plain dict: weights_only loads it
            "class_names": self.class_names,
            "meta": {
                "fine_tune": self.fine_tune,
                "seed": self.options.seed,
                "world_size": self.info.world_size,
                **self.best.state(),
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
            best_top1=self.best.top1,
            best_epoch=self.best.epoch,
            last_metrics=last_metrics,
            latest=str(self.latest_path),
            best=str(self.best_path) if self.best_path.exists() else None,
            curves=str(curves) if curves else None,
            seconds=seconds,
            num_classes=len(self.class_names),
            class_names=self.class_names,
        )
        best = (
            f"best val top-1 {self.best.top1:.2f} % (epoch {self.best.epoch})"
            if self.best.top1 is not None
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


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
