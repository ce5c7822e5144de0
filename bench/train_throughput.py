#!/usr/bin/env python3
"""Training throughput (clips/s) of both models: forward + loss + backward + clipping + SGD step.

    python bench/train_throughput.py                       # batch 8, 16 x 224 x 224, CPU
    python bench/train_throughput.py --device cuda --amp   # on a GPU

Random clips, so it measures the network and the optimizer step, not data loading. Memory format as
the trainer uses it: channels-last 3D on CPU, contiguous on GPU (`--memory-format` overrides). Prints
one line per model and the command that produced them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from action_rec.models import build_model  # noqa: E402
from action_rec.templates import load_template  # noqa: E402
from action_rec.training.losses import build_criterion  # noqa: E402
from action_rec.training.optim import build_optimizer, clip_gradients  # noqa: E402

TEMPLATES = {
    "s3d": ROOT / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml",
    "x3d": ROOT / "model_templates/custom-action-recognition/x3d-rgb-mobilenet-v3-lgd-gc/template.yaml",
}


def measure(name: str, args: argparse.Namespace) -> float:
    template = load_template(TEMPLATES[name])
    device = torch.device(args.device)
    model = build_model(template, num_classes=args.num_classes).to(device).train()
    memory_format = {"channels_last": torch.channels_last_3d, "contiguous": torch.contiguous_format}[
        args.memory_format or ("channels_last" if device.type == "cpu" else "contiguous")
    ]
    model.to(memory_format=memory_format)
    criterion = build_criterion(template)
    optimizer = build_optimizer(model, template, 1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=args.amp)
    clip_cfg = template["training"]["grad_clip"]
    clips = torch.randn(args.batch_size, 3, args.clip_len, args.size, args.size, device=device)
    clips = clips.contiguous(memory_format=memory_format)
    labels = torch.randint(0, args.num_classes, (args.batch_size,), device=device)

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=args.amp):
            embedding = model.embed(clips)
            scores = model.classify(embedding)
        centres = model.cls_head.fc_angular.class_centres()
        loss, _ = criterion(scores, labels, embedding, centres, epoch=0.0)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        clip_gradients(model.parameters(), clip_cfg["type"], clip_cfg["value"])
        scaler.step(optimizer)
        scaler.update()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return args.batch_size * args.iters / seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["s3d", "x3d"], choices=sorted(TEMPLATES))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--clip-len", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=27)
    p.add_argument("--iters", type=int, default=3, help="timed iterations")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true", help="float16 autocast (CUDA)")
    p.add_argument(
        "--memory-format",
        choices=["channels_last", "contiguous"],
        help="default: the trainer's (channels_last on CPU, contiguous on GPU)",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python bench/train_throughput.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"# {command.strip()}")
    print(
        f"# torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} CPU threads, "
        f"batch {args.batch_size} x 3 x {args.clip_len} x {args.size} x {args.size}, "
        f"{args.warmup} warm-up + {args.iters} timed iterations (forward, AM-Softmax loss, backward, clip, SGD), "
        f"memory format {args.memory_format or 'as the trainer'}"
    )
    for name in args.models:
        rate = measure(name, args)
        print(f"{name}: {rate:.2f} clips/s ({args.batch_size / rate:.2f} s per iteration)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
