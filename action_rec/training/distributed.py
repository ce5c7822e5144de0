"""Processes for training on several GPUs (or several CPU processes) with DistributedDataParallel.

Two ways in:
- one command on one machine: ``train.py --nproc N`` (one per GPU, or CPU processes) starts N processes with
  ``torch.multiprocessing`` spawn and a free local port;
- several machines: launch ``train.py`` with ``torchrun`` (``--nnodes``, ``--nproc-per-node``, ...);
  torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) is detected and the
  processes join its group instead of spawning their own.
The backend is NCCL on CUDA and gloo on CPU, so the same code path runs (and is tested) on a CPU.
"""

from __future__ import annotations

import datetime
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler

__all__ = [
    "ProcessInfo",
    "torchrun_world_size",
    "free_port",
    "init_process_group",
    "cleanup",
    "epoch_seed",
    "seed_everything",
    "sample_seed",
    "seeded_sample",
    "EpochSampler",
    "EpochSeededDataset",
    "ShardSampler",
    "all_reduce_sum",
]

TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class ProcessInfo:
    """Where this process stands: its rank, how many there are, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def torchrun_world_size() -> int | None:
    """The world size set by torchrun (or another env:// launcher), None when not launched that way."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ:
        return int(os.environ["WORLD_SIZE"])
    return None


def free_port() -> int:
    """A TCP port that was free a moment ago on localhost (for the spawn launcher's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_process_group(rank: int, world_size: int, device_type: str, port: int | None = None) -> None:
    """Join the default process group: spawn launcher (`port` given) or env:// (torchrun)."""
    backend = "nccl" if device_type == "cuda" else "gloo"
    if port is not None:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world_size, timeout=TIMEOUT)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 32-bit seed for (run seed, epoch, rank): every epoch's data order and augmentation depend on it
    alone, so a run resumed at an epoch boundary replays exactly what an uninterrupted one would."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's (CPU and CUDA) global generators."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """Seed of the augmentation of sample `index` in `epoch`: independent of workers, ranks and batches."""
    return int(np.random.SeedSequence([seed, epoch, index, 1]).generate_state(1)[0])


@contextmanager
def seeded_sample(seed: int, epoch: int, index: int) -> Iterator[None]:
    """Torch's CPU generator seeded for sample `index` in `epoch` inside the block, the caller's stream
    restored after it (workers=0 loads in the training process). The CPU generator alone:
    ``torch.manual_seed`` also queues a lazy CUDA seed with a stack trace, a quarter of a small clip's
    loading time."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(sample_seed(seed, epoch, index))
        yield


class EpochSampler(Sampler[tuple[int, int]]):
    """Wraps a sampler of indices into one of ``(epoch, index)`` keys for `EpochSeededDataset`.

    The loader iterates it in the main process at the start of each epoch, so ``set_epoch`` before
    iterating is enough, even with persistent workers.
    """

    def __init__(self, sampler: Sampler[int]) -> None:
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, index) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


class EpochSeededDataset(Dataset):
    """``dataset[(epoch, i)]`` = ``dataset[i]`` drawn with torch's generator seeded by (seed, epoch, i).

    Each clip's random augmentation then depends on nothing but the run seed, the epoch and the clip:
    not on the number of loader workers, which worker got it, or where a resumed run started.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        with seeded_sample(self.seed, epoch, index):
            return self.dataset[index]


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: each clip is seen by exactly one process, none twice.

    For evaluation, where DistributedSampler's padding would count some clips twice. The shards may
    differ in length by one; evaluation runs no collective inside its loop, so that is fine.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a few floats over all processes (returned unchanged without a process group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()
