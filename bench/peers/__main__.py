"""`python -m bench.peers`: run the peers bench and write its report (see `bench.peers`)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from action_rec.errors import run_cli
from action_rec.fileio import atomic_write
from bench.harness import (
    ROOT,
    bench_command,
    environment,
    environment_text,
    find_block,
    finish_environment,
    rewrite_block,
)
from bench.peers import __doc__ as DOC
from bench.peers.report import comparison_table, plot, readme_block, render_markdown, results_table
from bench.peers.run import HINT, run

PACKAGES = ("torch", "openvino", "pytorchvideo", "torchvision", "nncf", "fvcore")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=DOC.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20, help="at least this many timed runs per figure")
    parser.add_argument("--min-seconds", type=float, default=3.0, help="time fast models for about this long")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--calib-clips", type=int, default=16, help="random clips to calibrate INT8 on")
    parser.add_argument(
        "--profile-runs", type=int, default=5, help="inferences averaged by the layer profile"
    )
    parser.add_argument("--no-peer-int8", action="store_true", help="quantize only our models")
    parser.add_argument("--only", nargs="*", help="run only the models whose name contains one of these")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "peers_plot.png")
    parser.add_argument(
        "--readme", type=Path, default=ROOT / "README.md", help="rewrite its <!-- bench:peers --> block"
    )
    parser.add_argument("--no-readme", action="store_true", help="leave the README alone")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: _run(args, argv))


def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    command = bench_command("bench.peers", argv)
    if not args.no_readme:
        find_block(args.readme, "peers")  # a README without the block fails now, not after the run
    env = environment(
        args.threads,
        f"OpenVINO in {HINT} (INFERENCE_PRECISION_HINT={HINT}, every model), PyTorch in float32",
        PACKAGES,
        runs=f"at least {args.runs} timed runs per figure",
    )
    print(environment_text(env))
    started = time.perf_counter()
    results, profiles = run(args)
    finish_environment(env, args.threads)
    cpu = env["machine"].rsplit(", ", 2)[0]  # the CPU and its ISA, without the CPU count and the OS
    plot(results, args.plot, f"batch 1, {args.threads} threads, {cpu}, {env['date']}")
    plot_name = os.path.relpath(args.plot.resolve(), args.out.resolve().parent)
    atomic_write(args.out, render_markdown(results, profiles, env, command, plot_name))
    written = [args.out, args.plot]
    if not args.no_readme:
        written.append(rewrite_block(args.readme, "peers", readme_block(results, env, command)))
    print(f"\n{results_table(results)}\n\n{comparison_table(results)}\n")
    print(f"wrote {', '.join(map(str, written))} in {time.perf_counter() - started:.0f} s")
    print("command:", command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
