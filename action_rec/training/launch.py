"""Starting a training: in this process, in N spawned processes (DDP on one machine), or as one of the
processes torchrun started (several machines); each runs a `Trainer`.

    train(template, options)   world_size 1: here; > 1: spawn; under torchrun: join its group
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from action_rec.data.loading import DataError
from action_rec.errors import UserError
from action_rec.templates import Template
from action_rec.training import distributed as distrib
from action_rec.training.engine import TrainingError
from action_rec.training.host_memory import keep_freed_memory
from action_rec.training.trainer import Trainer, TrainOptions, TrainResult

__all__ = ["select_device", "run_process", "train"]


def select_device(options: TrainOptions, local_rank: int) -> torch.device:
    """The device `options` ask for (auto: CUDA when available), the local rank's GPU under DDP."""
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


def run_process(
    template: Template, options: TrainOptions, rank: int = 0, world_size: int = 1, local_rank: int = 0
) -> tuple[TrainResult | None, nn.Module, int]:
    """Train in this process as `rank` of `world_size` (the process group, if any, is already set up).

    Returns (the result on rank 0, else None; the trained model; the number of optimizer steps).
    """
    info = distrib.ProcessInfo(rank, world_size, local_rank, select_device(options, local_rank))
    if info.device.type == "cpu":
        keep_freed_memory()  # the next step reuses what this one freed (see host_memory)
    trainer = Trainer(template, options, info)
    try:
        result = trainer.run()
    finally:
        trainer.log.close()
    return result, trainer.model, trainer.iteration


def _spawned(rank: int, template: Template, options: TrainOptions, port: int, errors) -> None:
    """Entry of each spawned process: join the group, train, report a clean error line on failure."""
    import sys

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // options.world_size))
    device_type = select_device(options, rank).type
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


def train(template: Template, options: TrainOptions) -> TrainResult:
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


def _train_under_torchrun(template: Template, options: TrainOptions) -> TrainResult:
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0))
    device_type = select_device(options, local_rank).type
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
            f"--nproc {options.world_size}: only {torch.cuda.device_count()} CUDA device(s) visible "
            "(for CPU processes use --device cpu)"
        )
