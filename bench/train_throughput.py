"""Training throughput (clips/s) of both models, through the trainer's own step: `train_one_epoch`
over `TrainStep` (forward, loss, backward, clipping, optimizer and LambdaLR steps), per
``training.trainable`` mode.

    python -m bench.train_throughput                                   # batch 8, 16 x 224 x 224, CPU
    python -m bench.train_throughput --trainable head blocks:3 all      # the fine-tuning modes
    python -m bench.train_throughput --device cuda --amp               # on a GPU
    python -m bench.train_throughput --size 64 --clip-len 4 --baseline  # the quick start's clips, against
                                                                       # PyTorch's plain paths

Random uint8 clips, normalised on the device as the trainer does, so it measures the network and the
optimizer step, not data loading (with ``training.cache_features`` the frozen part's forward below
is paid once per clip and view instead of every step: the ``cached`` column gives that speed). Memory
format as the trainer uses it: channels-last 3D on CPU, contiguous on GPU. Prints one line per model
and mode, and the command that produced them.

``--baseline`` times the same step with PyTorch's plain paths too (``nn.Conv3d`` and ``nn.AvgPool3d``
instead of :mod:`action_rec.models.conv`, the optimizer's per-tensor loop instead of its fused kernel),
alternating the two in rounds so that load on the machine hits both alike, and prints the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn

from action_rec.data import normalize_batch
from action_rec.models import build_model
from action_rec.models.conv import use_plain_layers
from action_rec.templates import apply_overrides, load_template
from action_rec.training.engine import EpochSetup, TrainStep, train_one_epoch
from action_rec.training.freezing import BackboneSplit, parse_trainable
from action_rec.training.host_memory import keep_freed_memory
from action_rec.training.logs import RunLog
from action_rec.training.losses import build_criterion
from action_rec.training.optim import build_optimizer
from action_rec.training.schedules import LRSchedule, build_lr_scheduler
from bench.harness import MODELS, TEMPLATES, bench_command, environment, environment_text, finish_environment


def use_plain_paths(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Put PyTorch's plain layers and the optimizer's per-tensor loop back (the baseline of --baseline)."""
    use_plain_layers(model)
    for group in optimizer.param_groups:
        group["fused"] = False


def measure(
    name: str, trainable: str, args: argparse.Namespace, plain: bool = False
) -> tuple[float, float | None]:
    """(clips/s of the trainer's step on clips, clips/s on cached features or None for ``all``);
    ``plain``: with PyTorch's plain paths."""
    template = apply_overrides(
        load_template(TEMPLATES / MODELS[name] / "template.yaml"), [f"training.trainable={trainable}"]
    )
    device = torch.device(args.device)
    model = build_model(template, num_classes=args.num_classes).to(device)
    memory_format = torch.channels_last_3d if device.type == "cpu" else torch.contiguous_format
    model.to(memory_format=memory_format)
    step = TrainStep(model)
    step.split = BackboneSplit.from_trainable(model.backbone, parse_trainable(trainable))
    model.train()
    step.split.freeze()
    criterion = build_criterion(template)
    schedule = LRSchedule.from_template(template, fine_tune=False)
    optimizer = build_optimizer(model, template, schedule.base_lr)
    if plain:
        use_plain_paths(model, optimizer)
    clips = torch.randint(
        0, 256, (args.batch_size, 3, args.clip_len, args.size, args.size), dtype=torch.uint8
    )
    labels = torch.randint(0, args.num_classes, (args.batch_size,))
    inp = template.input

    def prepare(batch: torch.Tensor) -> torch.Tensor:
        return normalize_batch(batch.to(device), inp.mean, inp.std, memory_format)

    def run(batches: list) -> float:
        setup = EpochSetup(
            epoch=0, iteration=0, iters_per_epoch=len(batches), device=device, prepare=prepare,
            scheduler=build_lr_scheduler(optimizer, schedule, len(batches)),
            scaler=torch.amp.GradScaler("cuda", enabled=args.amp), grad_clip=template.training.grad_clip,
            log=RunLog(".", enabled=False), amp=args.amp, progress=False,
        )  # fmt: skip
        train_one_epoch(step, criterion, optimizer, batches[: args.warmup], setup)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_one_epoch(step, criterion, optimizer, batches[args.warmup :], setup)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return args.batch_size * (len(batches) - args.warmup) / (time.perf_counter() - start)

    rate = run([(clips, labels)] * (args.warmup + args.iters))
    cached = None
    if not step.split.trains_everything:
        with torch.no_grad():
            model.eval()
            x, glob = step.split.prefix(prepare(clips))
            model.train()
            step.split.freeze()
        if step.split.head_only:
            x = x.mean(dim=(2, 3, 4), keepdim=True)
        features = (x, glob if glob is not None else torch.zeros(len(x), 0))
        split, step = step.split, TrainStep(model, cached_start=step.split.start)  # inputs: cached features
        step.split = split
        cached = run([(features, labels)] * (args.warmup + args.iters))
    return rate, cached


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["s3d", "x3d"], choices=sorted(MODELS))
    p.add_argument("--trainable", nargs="+", default=["all"], help="training.trainable modes to time")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--clip-len", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=27)
    p.add_argument("--iters", type=int, default=3, help="timed iterations")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="PyTorch device: cpu, cuda or cuda:N")
    p.add_argument("--amp", action="store_true", help="float16 autocast (CUDA)")
    p.add_argument("--baseline", action="store_true", help="also time PyTorch's plain paths, in rounds")
    p.add_argument("--rounds", type=int, default=3, help="with --baseline: rounds of both (median reported)")
    p.add_argument(
        "--malloc-default",
        action="store_true",
        help="leave glibc's malloc thresholds alone (the trainer fixes them on a CPU: training/host_memory.py)",
    )
    args = p.parse_args(argv)
    kept = not args.malloc_default and args.device == "cpu" and keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    command = bench_command("bench.train_throughput", argv)
    env = environment(
        torch.get_num_threads(), "PyTorch in float32" + (", float16 autocast" if args.amp else ""), ("torch",)
    )
    print(environment_text(env))
    print(
        f"device {args.device}, "
        f"batch {args.batch_size} x 3 x {args.clip_len} x {args.size} x {args.size}, {args.warmup} warm-up + "
        f"{args.iters} timed iterations of the trainer's train_one_epoch (AM-Softmax, clipping, optimizer step); "
        f"freed host memory {'kept for the next step, as the trainer does' if kept else 'as malloc decides'}"
    )
    for name in args.models:
        for trainable in args.trainable:
            if args.baseline:
                rates: dict[bool, list[float]] = {False: [], True: []}
                for _ in range(args.rounds):
                    for plain in rates:
                        rates[plain].append(measure(name, trainable, args, plain)[0])
                ours, base = statistics.median(rates[False]), statistics.median(rates[True])
                print(
                    f"{name} trainable={trainable}: {ours:.2f} clips/s, PyTorch's plain paths {base:.2f} "
                    f"clips/s: {ours / base:.2f}x (median of {args.rounds} alternating rounds)"
                )
                continue
            rate, cached = measure(name, trainable, args)
            extra = f", {cached:.2f} clips/s on cached features" if cached is not None else ""
            print(
                f"{name} trainable={trainable}: {rate:.2f} clips/s ({args.batch_size / rate:.2f} s per iteration){extra}"
            )
    print(f"{environment_text(finish_environment(env, torch.get_num_threads()))}\ncommand: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
