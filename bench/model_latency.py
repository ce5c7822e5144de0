"""Forward latency of the two backbones + head in PyTorch eager on CPU, with params and GFLOPs.

Batch 1, eval mode, no autograd (``torch.inference_mode``), 1 x 3 x 16 x 224 x 224, median of
``--runs`` timed runs after ``--warmup`` runs. Two memory layouts are timed: the default contiguous
one (comparable with the original models) and ``channels_last_3d`` (same weights and state dict,
faster oneDNN kernels; the largest output difference to the contiguous run is printed).

    venv/bin/python -m bench.model_latency --threads 2 --runs 20
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from action_rec.evaluation.complexity import count_complexity
from action_rec.models import build_model
from action_rec.templates import load_template
from bench.harness import (
    MODELS,
    SHAPE,
    TEMPLATES,
    bench_command,
    environment,
    environment_text,
    finish_environment,
    markdown_table,
    time_call,
)


def time_ms(
    model: torch.nn.Module, x: torch.Tensor, warmup: int, runs: int
) -> tuple[float, float, torch.Tensor]:
    """(median, min) of ``runs`` timed forward passes in ms, and the output."""
    with torch.inference_mode():
        timer = time_call(lambda: model(x), runs, warmup)
        out = model(x)
    summary = timer.summary()
    return summary["median"], summary["min"], out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.model_latency", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--classes", type=int, default=27)
    args = parser.parse_args(argv)

    command = bench_command("bench.model_latency", argv)
    env = environment(args.threads, "PyTorch in float32", ("torch",))
    print(environment_text(env))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = SHAPE
    x = torch.randn(shape)
    rows = []
    for name in MODELS.values():
        template = load_template(TEMPLATES / name / "template.yaml")
        model = build_model(template, num_classes=args.classes).eval()
        complexity = count_complexity(model, shape)
        eager, eager_min, ref = time_ms(model, x, args.warmup, args.runs)
        model = model.to(memory_format=torch.channels_last_3d)
        fast, fast_min, out = time_ms(
            model, x.to(memory_format=torch.channels_last_3d), args.warmup, args.runs
        )
        diff = (out - ref).abs().max().item()
        rows.append([name, f"{complexity['params_m']:.3f}", f"{complexity['gflops']:.2f}",
                     f"{eager:.1f} ({eager_min:.1f})", f"{fast:.1f} ({fast_min:.1f})", f"{diff:.2e}"])  # fmt: skip
    finish_environment(env, args.threads)
    print(f"\n{environment_text(env)}")
    print(
        f"input {'x'.join(map(str, shape))}, {args.classes} classes, median (min) of {args.runs} runs after "
        f"{args.warmup} warm-up runs:\n"
    )
    header = ["model", "params M", "GFLOPs", "eager ms", "channels_last_3d ms", "max abs diff"]
    print(markdown_table(header, rows, "lrrrrr"))
    print("command:", command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
