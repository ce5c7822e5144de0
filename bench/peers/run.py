"""Prepare every candidate in every runtime (export, check, quantize, profile), then time them all
together with the same settings: the measuring half of the peers bench."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from action_rec.inference.benchmark import latency_summary
from action_rec.runtime.openvino_core import shared_core
from bench.harness import Timer, compile_under_hint, infer_request, quantize, random_clips, time_round_robin
from bench.peers.candidates import CANDIDATES, COMMON_SHAPE, EAGER, OV_FP32, OV_INT8, Candidate, fmt_shape
from bench.peers.layer_profile import LayerProfiler, Profile

HINT = "f32"  # the execution precision of every OpenVINO row (the one export verifies)


@dataclass
class Result:
    """The timed runs of one model at one input in one runtime, with its complexity."""

    model: str
    source: str
    shape: tuple[int, int, int]
    published: bool  # the model's own published input shape
    runtime: str
    times_ms: list[float]
    gflops: float
    params_m: float

    @property
    def median_ms(self) -> float:
        return latency_summary(self.times_ms)["median"]

    @property
    def ms_per_gflop(self) -> float:
        return self.median_ms / self.gflops

    @property
    def ours(self) -> bool:
        return self.source == "ours"

    @property
    def label(self) -> str:
        return f"{self.model} {fmt_shape(self.shape)}"


class Bench:
    """Prepares every model in every runtime (export, check, profile, quantize), then times them all
    together with the same settings."""

    def __init__(self, args: argparse.Namespace, workdir: Path, log: Callable[[str], Any] = print) -> None:
        self.args, self.workdir, self.log = args, workdir, log
        self.core = shared_core()
        self.pending: list[tuple[Timer, Candidate, tuple[int, int, int], dict[str, float], str]] = []
        self.profiles: list[Profile] = []
        self.profiling: list[tuple[Profile, LayerProfiler]] = []

    def to_openvino(self, model: nn.Module, name: str, input_shape: tuple[int, ...]) -> tuple[Any, Any]:
        """The FP32 model and the model to quantize (they differ only in our X3D's attention pooling,
        as in `action_rec.export`)."""
        from action_rec.export.onnx_export import export_onnx
        from action_rec.export.openvino_ir import convert_onnx

        onnx_path = export_onnx(model, self.workdir / f"{name}.onnx", input_shape)
        return convert_onnx(onnx_path), convert_onnx(onnx_path, for_int8=True)

    def add(self, label: str, call: Callable[[], Any], row: tuple) -> None:
        """Register `call` for timing; `row` = (candidate, shape, complexity, runtime) of its result."""
        self.pending.append((Timer(label, call), *row))

    def prepare(self, cand: Candidate, shape: tuple[int, int, int], name: str) -> None:
        """Eager, OpenVINO FP32 (checked against eager; profiled at the common shape) and INT8."""
        from action_rec.evaluation.complexity import count_complexity

        torch.manual_seed(0)
        model = cand.build(*shape)
        input_shape = (1, 3, *shape)
        x = torch.randn(input_shape, generator=torch.Generator().manual_seed(1))
        complexity = count_complexity(model, input_shape)
        label = f"{cand.name} {fmt_shape(shape)}"
        self.log(f"{label}: {complexity['gflops']:.2f} GFLOPs, {complexity['params_m']:.2f} M params")
        with torch.inference_mode():
            reference = model(x).numpy()
        ov_model, to_quantize = self.to_openvino(model, name, input_shape)

        def eager(model: nn.Module = model, x: torch.Tensor = x) -> None:
            with torch.inference_mode():
                model(x)

        self.add(f"{label} {EAGER}", eager, (cand, shape, complexity, EAGER))
        threads = self.args.threads
        request = infer_request(ov_model, x.numpy(), HINT, threads, self.core)
        diff = float(np.abs(request.get_output_tensor().data - reference).max())
        if diff > 1e-3 * max(1.0, float(np.abs(reference).max())):
            raise RuntimeError(f"{label}: OpenVINO output differs from PyTorch's by {diff:.2e}")
        self.add(f"{label} {OV_FP32}", request.infer, (cand, shape, complexity, OV_FP32))
        if shape == COMMON_SHAPE:
            compiled = compile_under_hint(ov_model, HINT, threads, self.core, profile=True)
            profile = Profile(label, cand.ours, complexity["gflops"])
            self.profiles.append(profile)
            self.profiling.append((profile, LayerProfiler(compiled, x.numpy())))

        if cand.ours or not self.args.no_peer_int8:
            clips = random_clips((3, *shape), self.args.calib_clips)
            int8 = quantize(to_quantize, clips, self.args.calib_clips)
            request = infer_request(int8, x.numpy(), HINT, threads, self.core)
            self.add(f"{label} {OV_INT8}", request.infer, (cand, shape, complexity, OV_INT8))

    def time(self) -> list[Result]:
        """Time everything prepared, together; the results in the order they were prepared."""
        args = self.args
        # PyTorch and OpenVINO in separate rounds: one runtime's idle worker threads must not spin
        # against the other's work on a machine with as few cores as threads.
        for group in (EAGER, "OpenVINO"):
            timers = [t for t, *_, runtime in self.pending if runtime.startswith(group)]
            self.log(f"timing {len(timers)} models in {group} in {args.runs} rounds")
            time_round_robin(timers, args.warmup, args.runs, args.min_seconds)
        self.log(f"profiling {len(self.profiling)} models in {args.profile_runs} rounds")
        for _ in range(args.profile_runs):
            for _, profiler in self.profiling:
                profiler.step()
        for profile, profiler in self.profiling:
            profile.layers = profiler.layers()
        results = []
        for timer, cand, shape, complexity, runtime in self.pending:
            results.append(
                Result(cand.name, cand.source, shape, shape == cand.published_shape, runtime, timer.times_ms,
                       complexity["gflops"], complexity["params_m"])
            )  # fmt: skip
        for r in results:
            self.log(f"  {r.label:40s} {r.runtime:14s} median {r.median_ms:7.1f} ms (min {min(r.times_ms):.1f}, "
                     f"max {max(r.times_ms):.1f}, {len(r.times_ms)} runs)")  # fmt: skip
        return results


def run(args: argparse.Namespace) -> tuple[list[Result], list[Profile]]:
    """Every candidate at each of its shapes, in one process: prepare all, then time all together."""
    torch.set_num_threads(args.threads)
    jobs = [
        (c, s) for c in CANDIDATES if not args.only or any(o in c.name for o in args.only) for s in c.shapes
    ]
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(args, Path(tmp))
        for index, (cand, shape) in enumerate(jobs):
            started = time.perf_counter()
            print(f"[{index + 1}/{len(jobs)}] ", end="")
            bench.prepare(cand, shape, f"model{index}")
            print(f"  prepared in {time.perf_counter() - started:.0f} s")
        results = bench.time()
    return results, bench.profiles
