"""Forward latency of the two backbones + head in PyTorch eager on CPU, with params and GFLOPs.

Batch 1, eval mode, no autograd (``torch.inference_mode``), 1 x 3 x 16 x 224 x 224, median of
``--runs`` timed runs after ``--warmup`` runs. Two memory layouts are timed: the default contiguous
one (comparable with the original models) and ``channels_last_3d`` (same weights and state dict,
faster oneDNN kernels; the largest output difference to the contiguous run is printed).

    venv/bin/python bench/model_latency.py --threads 2 --runs 20
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from action_rec.evaluation.complexity import count_complexity  # noqa: E402
from action_rec.models import build_model  # noqa: E402
from action_rec.templates import load_template  # noqa: E402

TEMPLATES = ROOT / "model_templates" / "custom-action-recognition"
MODELS = ["s3d-rgb-mobilenet-v3", "x3d-rgb-mobilenet-v3-lgd-gc"]


def time_ms(
    model: torch.nn.Module, x: torch.Tensor, warmup: int, runs: int
) -> tuple[float, float, torch.Tensor]:
    """(median, min) of ``runs`` timed forward passes in ms, and the last output."""
    with torch.inference_mode():
        for _ in range(warmup):
            out = model(x)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            out = model(x)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times), 1000 * min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--classes", type=int, default=27)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = (1, 3, 16, 224, 224)
    x = torch.randn(shape)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(
        f"input {'x'.join(map(str, shape))}, {args.classes} classes, {args.threads} threads, "
        f"median (min) of {args.runs} runs after {args.warmup} warm-up runs"
    )
    print(
        f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} (other work skews the figures)"
    )
    header = f"{'model':30s} {'params M':>8s} {'GFLOPs':>6s} {'eager ms':>16s} {'channels_last_3d ms':>20s} {'max |diff|':>10s}"
    print(header)
    for name in MODELS:
        template = load_template(TEMPLATES / name / "template.yaml")
        model = build_model(template, num_classes=args.classes).eval()
        complexity = count_complexity(model, shape)
        eager, eager_min, ref = time_ms(model, x, args.warmup, args.runs)
        model = model.to(memory_format=torch.channels_last_3d)
        fast, fast_min, out = time_ms(
            model, x.to(memory_format=torch.channels_last_3d), args.warmup, args.runs
        )
        diff = (out - ref).abs().max().item()
        eager_text, fast_text = f"{eager:.1f} ({eager_min:.1f})", f"{fast:.1f} ({fast_min:.1f})"
        print(
            f"{name:30s} {complexity['params_m']:8.3f} {complexity['gflops']:6.2f} "
            f"{eager_text:>16s} {fast_text:>20s} {diff:10.2e}"
        )
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("command:", shlex.join([os.path.relpath(sys.executable), *sys.argv]))


if __name__ == "__main__":
    main()
