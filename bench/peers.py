"""Our two models against the ones people would pick instead, timed side by side in one process.

PyTorchVideo's X3D-S and X3D-M and torchvision's S3D are timed beside our S3D and X3D MobileNetV3-Large
models, on the same CPU threads, batch 1, each at its own published input shape and at 16 x 224 x 224,
in PyTorch eager and in OpenVINO after our own export path (``export_onnx`` -> ``convert_onnx`` ->
``compile_ir``; FP32 and NNCF INT8). Then every OpenVINO FP32 model at 16 x 224 x 224 is profiled per
layer (``PERF_COUNT``) to say where the time goes. Writes ``BENCHMARKS.md`` and ``bench/peers_plot.png``.

    venv/bin/python bench/peers.py                       # the full run, ~10 min on 2 cores
    venv/bin/python bench/peers.py --runs 5 --min-seconds 0 --calib-clips 4   # a quick check

Weights are random (latency does not depend on them); INT8 is calibrated on random clips, which is
fine for speed and meaningless for accuracy. Needs the ``bench`` extra (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import math
import os
import platform
import re
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEMPLATES = ROOT / "model_templates" / "custom-action-recognition"
COMMON_SHAPE = (16, 224, 224)  # T, H, W: the input every model is also timed at
NUM_CLASSES = 400  # a Kinetics-400-sized classifier for every model
EAGER, OV_FP32, OV_INT8 = "PyTorch eager", "OpenVINO FP32", "OpenVINO INT8"
SIMILAR_GFLOPS = 2.0  # "similar GFLOPs": within a factor of 2 either way


# --------------------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class Candidate:
    """One model: `build(T, H, W)` returns it in eval mode, sized for that input (X3D's head pools
    over the whole last feature map, so its pooling kernel depends on the input)."""

    name: str
    source: str  # "ours", "PyTorchVideo", "torchvision"
    published_shape: tuple[int, int, int]
    build: Callable[[int, int, int], nn.Module]
    note: str = ""
    also_common: bool = True  # also time at COMMON_SHAPE (False where that is another candidate)
    extra_shapes: tuple[tuple[int, int, int], ...] = ()  # also time at these (ours: the peers' inputs)

    @property
    def ours(self) -> bool:
        return self.source == "ours"

    @property
    def shapes(self) -> list[tuple[int, int, int]]:
        shapes = [self.published_shape, COMMON_SHAPE] if self.also_common else [self.published_shape]
        return list(dict.fromkeys([*shapes, *self.extra_shapes]))


def replace_swish(model: nn.Module) -> int:
    """Swap PyTorchVideo's ``Swish`` (a custom autograd Function the ONNX exporter cannot trace) for
    ``nn.SiLU``, the same x * sigmoid(x); returns how many were swapped."""
    count = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if type(child).__name__ == "Swish":
                setattr(module, child_name, nn.SiLU())
                count += 1
    return count


def _ours(template_name: str) -> Callable[[int, int, int], nn.Module]:
    def build(t: int, h: int, w: int) -> nn.Module:
        from action_rec.models import build_model

        return build_model(TEMPLATES / template_name / "template.yaml", num_classes=NUM_CLASSES).eval()

    return build


def _x3d(depth_factor: float) -> Callable[[int, int, int], nn.Module]:
    """PyTorchVideo's X3D with its hub settings (X3D-S and X3D-M differ only by their input); only
    ``create_x3d`` is imported, which avoids the parts of pytorchvideo 0.1.5 that newer torchvision breaks."""

    def build(t: int, h: int, w: int) -> nn.Module:
        from pytorchvideo.models.x3d import create_x3d

        assert h == w, "X3D takes square crops"
        model = create_x3d(
            input_clip_length=t, input_crop_size=h, depth_factor=depth_factor, model_num_class=NUM_CLASSES
        )
        replace_swish(model)
        return model.eval()

    return build


def _s3d(t: int, h: int, w: int) -> nn.Module:
    from torchvision.models.video import s3d

    return s3d(weights=None, num_classes=NUM_CLASSES).eval()


X3D_S_SHAPE = (13, 160, 160)
CANDIDATES = [
    Candidate(
        "S3D MobileNetV3 (ours)",
        "ours",
        COMMON_SHAPE,
        _ours("s3d-rgb-mobilenet-v3"),
        extra_shapes=(X3D_S_SHAPE,),
    ),
    Candidate(
        "X3D MobileNetV3 LGD-GC (ours)",
        "ours",
        COMMON_SHAPE,
        _ours("x3d-rgb-mobilenet-v3-lgd-gc"),
        extra_shapes=(X3D_S_SHAPE,),
    ),
    Candidate(
        "X3D-S",
        "PyTorchVideo",
        X3D_S_SHAPE,
        _x3d(2.2),
        "hub `x3d_s`: 13 frames, 160 crop. At 16x224x224 X3D-S *is* X3D-M (the hub builds both with the "
        "same `create_x3d` settings; only the input differs), so that row is X3D-M's",
        also_common=False,
    ),
    Candidate("X3D-M", "PyTorchVideo", (16, 224, 224), _x3d(2.2), "hub `x3d_m`: 16 frames, 224 crop"),
    Candidate(
        "S3D",
        "torchvision",
        (16, 224, 224),
        _s3d,
        "`S3D_Weights.KINETICS400_V1`: 224 crop, at least 14 frames; timed at 16 frames. Its published "
        "accuracy (68.4 % Kinetics-400) was measured on 128-frame clips, 8x the work of a 16-frame one",
    ),
]


# --------------------------------------------------------------------------------------------- timing
@dataclass
class Result:
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
        return statistics.median(self.times_ms)

    @property
    def ms_per_gflop(self) -> float:
        return self.median_ms / self.gflops

    @property
    def ours(self) -> bool:
        return self.source == "ours"

    @property
    def label(self) -> str:
        return f"{self.model} {'x'.join(map(str, self.shape))}"


def timed_runs(estimate_s: float, runs: int, min_seconds: float, max_runs: int = 300) -> int:
    """At least `runs`, and more for fast models, so each timing covers about `min_seconds`."""
    if estimate_s <= 0:
        return max(runs, max_runs)
    return max(runs, min(max_runs, math.ceil(min_seconds / estimate_s)))


@dataclass
class Timer:
    """One thing to time: a model in one runtime at one input."""

    label: str
    call: Callable[[], Any]
    times_ms: list[float] = field(default_factory=list)


def time_round_robin(
    timers: Sequence[Timer], warmup: int, runs: int, min_seconds: float, progress: bool = True
) -> None:
    """Fill every timer's `times_ms`: `warmup` calls each, then `runs` rounds that call every timer in
    turn, fast ones several times in a row so that each gets about `min_seconds` of samples. Rounds
    rather than one model after the other: load from other processes, and its drift, hits all alike."""
    from tqdm import tqdm

    estimates = []
    for timer in tqdm(timers, desc="warm-up", disable=not progress):
        for _ in range(max(1, warmup)):
            start = time.perf_counter()
            timer.call()
            estimate = time.perf_counter() - start
        estimates.append(estimate)
    repeats = [math.ceil(timed_runs(e, runs, min_seconds) / runs) for e in estimates]
    for _ in tqdm(range(runs), desc="timing rounds", disable=not progress):
        for timer, count in zip(timers, repeats, strict=True):
            for _ in range(count):
                start = time.perf_counter()
                timer.call()
                timer.times_ms.append(1000 * (time.perf_counter() - start))


def random_clips(shape: tuple[int, ...], count: int, seed: int = 0) -> Iterator[torch.Tensor]:
    """Normalized-looking random clips `3 x T x H x W` for INT8 calibration (speed only)."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(count):
        yield torch.randn(shape, generator=generator)


# -------------------------------------------------------------------------------------------- profile
@dataclass
class LayerTime:
    """One executed node of a compiled OpenVINO model: its time per inference, FLOPs and output size."""

    name: str
    node_type: str
    exec_type: str
    category: str
    ms: float
    gflops: float
    out_hw: int  # output height (spatial resolution of the stage); 0 where not a 5D tensor
    original: str = ""  # the model's layers fused into this node, comma-separated


def conv_category(weight_shape: Sequence[int], group: bool) -> str:
    """Name a convolution by what limits it: pointwise, dense k>1, or depthwise (spatial/temporal/3D).

    OpenVINO's weights: ``O x I x kT x kH x kW`` (dense), ``G x O/G x I/G x kT x kH x kW`` (grouped).
    """
    kt, kh, kw = (int(k) for k in weight_shape[-3:])
    in_per_group = weight_shape[2] if group else weight_shape[1]
    if group and in_per_group == 1:
        if kt > 1 and kh * kw > 1:
            return "conv depthwise kxkxk"
        return "conv depthwise kx1x1" if kt > 1 else "conv depthwise 1xkxk"
    if group:
        return "conv grouped"
    if kt * kh * kw == 1:
        return "conv pointwise 1x1x1"
    if kt > 1 and kh * kw > 1:
        return "conv dense kxkxk"
    return "conv dense kx1x1" if kt > 1 else "conv dense 1xkxk"


OTHER_CATEGORIES = {
    "Subgraph": "element-wise",
    "Eltwise": "element-wise",
    "Multiply": "element-wise",
    "Add": "element-wise",
    "HardSigmoid": "element-wise",
    "Reorder": "reorder (layout change)",
    "Transpose": "reorder (layout change)",
    "Pooling": "pooling / reduce",
    "AvgPool": "pooling / reduce",
    "MaxPool": "pooling / reduce",
    "Reduce": "pooling / reduce",
    "ReduceMean": "pooling / reduce",
    "ReduceSum": "pooling / reduce",
    "FullyConnected": "matmul / fully connected",
    "MatMul": "matmul / fully connected",
}


def categorize(node_type: str, op: Any | None) -> tuple[str, float, int]:
    """(category, GFLOPs, output height) of one runtime node. GFLOPs only for convolutions (2 per
    multiply-add): the ops the fvcore count is made of (the classifier's matmul is negligible)."""
    out_hw = 0
    if op is not None and op.get_output_size() and op.output(0).get_partial_shape().is_static:
        out = [d.get_length() for d in op.output(0).get_partial_shape()]
        out_hw = out[3] if len(out) == 5 else 0
        if node_type in ("Convolution", "GroupConvolution") and op.get_input_size() > 1:
            weight = [d.get_length() for d in op.input(1).get_partial_shape()]
            group = node_type == "GroupConvolution" or len(weight) == 6
            gflops = 2 * math.prod(out) * math.prod(weight) / out[1] / 1e9
            return conv_category(weight, group), gflops, out_hw
    return OTHER_CATEGORIES.get(node_type, node_type), 0.0, out_hw


class LayerProfiler:
    """Real time per executed node of a model compiled with PERF_COUNT, summed over `step()` calls."""

    def __init__(self, compiled: Any, x: np.ndarray) -> None:
        import openvino as ov

        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.request.set_input_tensor(ov.Tensor(x))
        self.request.infer()  # warm-up
        self.totals: dict[str, float] = defaultdict(float)
        self.kinds: dict[str, tuple[str, str]] = {}
        self.runs = 0

    def step(self) -> None:
        self.request.infer()
        self.runs += 1
        for info in self.request.get_profiling_info():
            if info.status.name == "EXECUTED":
                self.totals[info.node_name] += info.real_time.total_seconds() * 1000
                self.kinds[info.node_name] = (info.node_type, info.exec_type)

    def layers(self) -> list[LayerTime]:
        """Mean time per inference of every executed node, with its category, GFLOPs and output size."""
        ops = {op.get_friendly_name(): op for op in self.compiled.get_runtime_model().get_ordered_ops()}
        layers = []
        for name, total in self.totals.items():
            node_type, exec_type = self.kinds[name]
            op = ops.get(name)
            category, gflops, out_hw = categorize(node_type, op)
            info = op.get_rt_info() if op is not None else {}
            original = info["originalLayersNames"].astype(str) if "originalLayersNames" in info else name
            layers.append(
                LayerTime(name, node_type, exec_type, category, total / self.runs, gflops, out_hw, original)
            )
        return layers


def profile_layers(compiled: Any, x: np.ndarray, runs: int) -> list[LayerTime]:
    """Mean real time per executed node over `runs` inferences of a model compiled with PERF_COUNT."""
    profiler = LayerProfiler(compiled, x)
    for _ in range(runs):
        profiler.step()
    return profiler.layers()


@dataclass
class Profile:
    label: str
    ours: bool
    gflops: float  # fvcore, whole model
    layers: list[LayerTime] = field(default_factory=list)

    @property
    def total_ms(self) -> float:
        return sum(layer.ms for layer in self.layers)

    @property
    def conv_gflops(self) -> float:
        return sum(layer.gflops for layer in self.layers)

    def group(self, key: Callable[[LayerTime], Any]) -> dict[Any, tuple[float, float]]:
        """key -> (ms, GFLOPs) summed over the layers, slowest first."""
        out: dict[Any, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for layer in self.layers:
            out[key(layer)][0] += layer.ms
            out[key(layer)][1] += layer.gflops
        return {k: (v[0], v[1]) for k, v in sorted(out.items(), key=lambda kv: -kv[1][0])}

    def by_category(self) -> dict[str, tuple[float, float]]:
        return self.group(lambda layer: layer.category)

    def share(self, prefix: str) -> tuple[float, float]:
        """(ms, GFLOPs) of the categories starting with `prefix`."""
        items = [v for k, v in self.by_category().items() if k.startswith(prefix)]
        return sum(v[0] for v in items), sum(v[1] for v in items)


# ------------------------------------------------------------------------------------------- run all
class Bench:
    """Prepares every model in every runtime (export, check, profile, quantize), then times them all
    together with the same settings."""

    def __init__(self, args: argparse.Namespace, workdir: Path, log: Callable[[str], Any] = print) -> None:
        import openvino as ov

        self.args, self.workdir, self.log = args, workdir, log
        self.profile_core = ov.Core()
        self.profile_core.set_property("CPU", {"PERF_COUNT": True})
        self.timers: list[Timer] = []
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

    def request(self, ov_model: Any, x: np.ndarray) -> Any:
        """An infer request of `ov_model` compiled for latency, its input already set to `x`."""
        import openvino as ov

        from action_rec.export.openvino_ir import compile_ir

        request = compile_ir(ov_model, threads=self.args.threads).create_infer_request()
        request.set_input_tensor(ov.Tensor(x))
        return request

    def profile(self, label: str, ours: bool, gflops: float, ov_model: Any, x: np.ndarray) -> Profile:
        """A profile to be filled in `time()`, by inferences taken in rounds like the timings."""
        from action_rec.export.openvino_ir import compile_ir

        compiled = compile_ir(ov_model, threads=self.args.threads, core=self.profile_core)
        profile = Profile(label, ours, gflops)
        self.profiling.append((profile, LayerProfiler(compiled, x)))
        return profile

    def add(self, label: str, call: Callable[[], Any], result: tuple) -> None:
        """Register `call` for timing; `result` = (candidate, shape, complexity, runtime) of its row."""
        timer = Timer(label, call)
        self.timers.append(timer)
        self.pending.append((timer, *result))

    def prepare(self, cand: Candidate, shape: tuple[int, int, int], name: str) -> None:
        """Eager, OpenVINO FP32 (checked against eager; profiled at the common shape) and INT8."""
        from action_rec.evaluation.complexity import count_complexity
        from action_rec.export.quantize import quantize_int8

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
        request = self.request(ov_model, x.numpy())
        request.infer()
        diff = float(np.abs(request.get_output_tensor().data - reference).max())
        if diff > 1e-3 * max(1.0, float(np.abs(reference).max())):
            raise RuntimeError(f"{label}: OpenVINO output differs from PyTorch's by {diff:.2e}")
        self.add(f"{label} {OV_FP32}", request.infer, (cand, shape, complexity, OV_FP32))
        if shape == COMMON_SHAPE:
            self.profiles.append(self.profile(label, cand.ours, complexity["gflops"], ov_model, x.numpy()))

        if cand.ours or not self.args.no_peer_int8:
            clips = random_clips((3, *shape), self.args.calib_clips)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                int8 = quantize_int8(to_quantize, clips, subset_size=self.args.calib_clips)
            self.add(
                f"{label} {OV_INT8}", self.request(int8, x.numpy()).infer, (cand, shape, complexity, OV_INT8)
            )

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


# -------------------------------------------------------------------------------------------- compare
def similar_peers(
    results: Sequence[Result], reference: Result, factor: float = SIMILAR_GFLOPS
) -> list[Result]:
    """Peer results in `reference`'s runtime whose GFLOPs are within `factor` of its GFLOPs."""
    return [
        r
        for r in results
        if not r.ours
        and r.runtime == reference.runtime
        and 1 / factor <= r.gflops / reference.gflops <= factor
    ]


def comparisons(
    results: Sequence[Result], shape: tuple[int, int, int] | None = None
) -> list[tuple[Result, Result | None]]:
    """For each OpenVINO runtime: (our faster model, the fastest peer of similar GFLOPs or None); peers
    at any of their shapes, or only at `shape`."""
    pairs = []
    for runtime in (OV_FP32, OV_INT8):
        ours = [r for r in results if r.ours and r.published and r.runtime == runtime]
        if ours:
            best = min(ours, key=lambda r: r.median_ms)
            peers = [r for r in similar_peers(results, best) if shape is None or r.shape == shape]
            pairs.append((best, min(peers, key=lambda r: r.median_ms, default=None)))
    return pairs


def equal_input_comparisons(results: Sequence[Result]) -> list[tuple[Result, Result]]:
    """(our faster model, the fastest peer), per OpenVINO runtime and per input at which both ran."""
    pairs = []
    for runtime in (OV_FP32, OV_INT8):
        shapes = dict.fromkeys(r.shape for r in results if not r.ours and r.runtime == runtime)
        for shape in shapes:
            at = [r for r in results if r.runtime == runtime and r.shape == shape]
            ours, peers = [r for r in at if r.ours], [r for r in at if not r.ours]
            if ours and peers:
                pairs.append((min(ours, key=lambda r: r.median_ms), min(peers, key=lambda r: r.median_ms)))
    return pairs


def faster_per_gflop(results: Sequence[Result], runtime: str = OV_FP32) -> dict[str, list[Result]]:
    """Our model -> the peers (at 16x224x224, in `runtime`) that take less time per GFLOP than it."""
    common = [r for r in results if r.runtime == runtime and r.shape == COMMON_SHAPE]
    return {
        ours.model: [r for r in common if not r.ours and r.ms_per_gflop < ours.ms_per_gflop]
        for ours in common
        if ours.ours
    }


# ------------------------------------------------------------------------------------------- report
def fmt_shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


def rate(gflops: float, ms: float) -> str:
    return f"{gflops / ms * 1000:.0f}" if gflops > 0 and ms > 0 else "-"


def results_table(results: Sequence[Result]) -> str:
    rows = [
        "| Model | From | Input T x H x W | Runtime | Median ms | Min ms | Max ms | Runs | GFLOPs | Params M | ms / GFLOP |",
        "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        shape = fmt_shape(r.shape) + (" (published)" if r.published else "")
        name = f"**{r.model}**" if r.ours else r.model
        rows.append(
            f"| {name} | {r.source} | {shape} | {r.runtime} | {r.median_ms:.1f} | {min(r.times_ms):.1f} | "
            f"{max(r.times_ms):.1f} | {len(r.times_ms)} | {r.gflops:.2f} | {r.params_m:.2f} | {r.ms_per_gflop:.2f} |"
        )
    return "\n".join(rows)


def comparison_lines(results: Sequence[Result]) -> list[str]:
    """The ratio of our faster model's latency to the fastest peer's of similar GFLOPs, per OpenVINO
    runtime: against peers at any input (their published ones included), then at 16x224x224 only."""
    lines = []
    for shape, where in ((None, "at any input"), (COMMON_SHAPE, f"at {fmt_shape(COMMON_SHAPE)}")):
        for ours, peer in comparisons(results, shape):
            if peer is None:
                lines.append(f"- {ours.runtime}, peers {where}: none within {SIMILAR_GFLOPS:g}x of {ours.label}'s "
                             f"{ours.gflops:.2f} GFLOPs.")  # fmt: skip
                continue
            ratio = ours.median_ms / peer.median_ms
            voxels = math.prod(peer.shape) / math.prod(ours.shape)
            smaller = f"; its input is {voxels:.2f}x ours in T x H x W" if voxels != 1 else ""
            lines.append(
                f"- **{ours.runtime}, peers {where}: {ratio:.2f}x** (ours {'faster' if ratio < 1 else 'slower'}): our "
                f"faster model, {ours.label} ({ours.gflops:.2f} GFLOPs, {ours.median_ms:.1f} ms), over the fastest "
                f"peer within {SIMILAR_GFLOPS:g}x of its GFLOPs, {peer.model} ({peer.source}) {fmt_shape(peer.shape)} "
                f"({peer.gflops:.2f} GFLOPs, {peer.median_ms:.1f} ms{smaller})."
            )
    for ours, peer in equal_input_comparisons(results):
        ratio = ours.median_ms / peer.median_ms
        published = " (its published input, not ours)" if not ours.published else ""
        lines.append(
            f"- {ours.runtime}, same input {fmt_shape(ours.shape)}{published}: **{ratio:.2f}x** (ours "
            f"{'faster' if ratio < 1 else 'slower'}): {ours.model} {ours.median_ms:.1f} ms ({ours.gflops:.2f} GFLOPs) "
            f"against the fastest peer there, {peer.model} {peer.median_ms:.1f} ms ({peer.gflops:.2f} GFLOPs)."
        )
    return lines


def short(label: str) -> str:
    return label.replace(f" {fmt_shape(COMMON_SHAPE)}", "")


def profile_table(profiles: Sequence[Profile]) -> str:
    """Per op category: ms (share of the model's time), GFLOPs and the GFLOP/s achieved, one column per model."""
    weight: dict[str, float] = defaultdict(float)
    for p in profiles:
        for cat, (ms, _) in p.by_category().items():
            weight[cat] += ms / p.total_ms
    rows = [
        "| Op category | " + " | ".join(short(p.label) for p in profiles) + " |",
        "|---|" + "--:|" * len(profiles),
    ]
    for cat in sorted(weight, key=lambda c: -weight[c]):
        cells = []
        for p in profiles:
            ms, gflops = p.by_category().get(cat, (0.0, 0.0))
            cell = f"{ms:.1f} ms ({100 * ms / p.total_ms:.0f} %)" if ms > 0 else "-"
            cells.append(cell + (f", {gflops:.2f} GF at {rate(gflops, ms)} GF/s" if gflops > 0 else ""))
        rows.append(f"| {cat} | " + " | ".join(cells) + " |")
    totals = [
        f"**{p.total_ms:.1f} ms**, {p.conv_gflops:.2f} GF at {rate(p.conv_gflops, p.total_ms)} GF/s"
        for p in profiles
    ]
    rows.append("| **all nodes** | " + " | ".join(totals) + " |")
    return "\n".join(rows)


def resolution_table(profiles: Sequence[Profile]) -> str:
    """Per output resolution (the stage): share of the time against share of the FLOPs."""
    sizes = sorted({layer.out_hw for p in profiles for layer in p.layers if layer.out_hw}, reverse=True)
    rows = [
        "| Output H x W | " + " | ".join(short(p.label) for p in profiles) + " |",
        "|---|" + "--:|" * len(profiles),
    ]
    for size in sizes:
        cells = []
        for p in profiles:
            ms, gflops = p.group(lambda layer: layer.out_hw).get(size, (0.0, 0.0))
            cells.append(
                f"{100 * ms / p.total_ms:.0f} % time, {100 * gflops / p.conv_gflops:.0f} % FLOPs, {rate(gflops, ms)} GF/s"
                if ms > 0 else "-"
            )  # fmt: skip
        rows.append(f"| {size}x{size} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def top_layers(profile: Profile, count: int = 10) -> str:
    rows = ["| Node | Category | Kernel | ms | GFLOPs | GF/s |", "|---|---|---|--:|--:|--:|"]
    for layer in sorted(profile.layers, key=lambda layer: -layer.ms)[:count]:
        rows.append(
            f"| `{layer.name}` | {layer.category} | {layer.exec_type} | {layer.ms:.2f} | {layer.gflops:.3f} | "
            f"{rate(layer.gflops, layer.ms)} |"
        )
    return "\n".join(rows)


def analysis_lines(results: Sequence[Result], profiles: Sequence[Profile]) -> list[str]:
    """What this run measured, in sentences."""
    lines = []
    by_model = {r.model: r for r in results if r.runtime == OV_FP32 and r.shape == COMMON_SHAPE}
    for model, peers in faster_per_gflop(results).items():
        ours = by_model[model]
        if peers:
            names = ", ".join(f"{p.model} ({p.source}) {p.ms_per_gflop:.2f}" for p in peers)
            lines.append(
                f"- Faster per GFLOP than {model} ({ours.ms_per_gflop:.2f} ms/GFLOP): {names} ms/GFLOP."
            )
        else:
            lines.append(f"- No peer is faster per GFLOP than {model} ({ours.ms_per_gflop:.2f} ms/GFLOP).")
    for p in profiles:
        parts = []
        for prefix, name in (("conv pointwise", "1x1x1 convs"), ("conv dense", "dense k>1 convs"),
                             ("conv depthwise", "depthwise convs"), ("element-wise", "element-wise ops"),
                             ("reorder", "reorders"), ("pooling", "pooling / reduce")):  # fmt: skip
            ms, gflops = p.share(prefix)
            if ms > 0.02 * p.total_ms:
                flops = (
                    f", {100 * gflops / p.conv_gflops:.0f} % of the FLOPs at {rate(gflops, ms)} GF/s"
                    if gflops
                    else ""
                )
                parts.append(f"{name} {100 * ms / p.total_ms:.0f} % of the time{flops}")
        lines.append(f"- {short(p.label)}: " + "; ".join(parts) + ".")
    return lines


def _profile(profiles: Sequence[Profile], name: str) -> Profile | None:
    return next((p for p in profiles if p.label.startswith(name)), None)


# Our X3D's local-global diffusion path: its modules, and the adds of its global tensor (the only
# adds in the backbone's own forward). A node is counted when any layer fused into it is one of these.
LGD_LAYERS = re.compile(r"/(pooling|upsample|glob)_\d+/|/backbone/Add(_\d+)?(,|$)")


def _early_share(profile: Profile, sizes: tuple[int, ...] = (112, 56)) -> tuple[float, float]:
    """Shares of the time and of the FLOPs of the nodes whose output is at one of `sizes` (H)."""
    by_size = profile.group(lambda layer: layer.out_hw)
    ms = sum(v[0] for k, v in by_size.items() if k in sizes)
    gf = sum(v[1] for k, v in by_size.items() if k in sizes)
    return ms / profile.total_ms, gf / profile.conv_gflops


def _lead(results: Sequence[Result], ours: Profile) -> str:
    """How much faster than torchvision's S3D `ours` ran, per OpenVINO runtime, as a clause."""
    parts = []
    for runtime in (OV_FP32, OV_INT8):
        pair = [r for r in results if r.runtime == runtime and r.shape == COMMON_SHAPE
                and (r.label == ours.label or (r.model == "S3D" and r.source == "torchvision"))]  # fmt: skip
        if len(pair) == 2:
            mine, theirs = sorted(pair, key=lambda r: not r.ours)
            parts.append(f"{theirs.median_ms / mine.median_ms:.1f}x faster in {runtime}")
    return ": " + " and ".join(parts) + " than torchvision's S3D" if parts else ""


def explanation(results: Sequence[Result], profiles: Sequence[Profile]) -> str:
    """Why the peers that are faster per GFLOP are, and what would close the gap: the mechanisms, with
    this run's numbers (a paragraph is left out where its case did not occur)."""
    paragraphs = [
        "GFLOPs count convolutions (and the classifier) only, so latency per GFLOP says how fast the "
        "convolutions run and how much time goes to ops that carry no FLOPs; the tables above give both."
    ]
    beaten_by = {model: {r.model for r in peers} for model, peers in faster_per_gflop(results).items()}
    tv_s3d = _profile(profiles, f"S3D {fmt_shape(COMMON_SHAPE)}")
    ours = [
        p for c in CANDIDATES[:2] if "S3D" in beaten_by.get(c.name, ()) and (p := _profile(profiles, c.name))
    ]
    if tv_s3d and ours:
        p = ours[0]
        time_share, flop_share = _early_share(p)
        paragraphs.append(
            f"**torchvision's S3D is cheaper per GFLOP than {' and '.join(short(o.label) for o in ours)} "
            "because its FLOPs are easy ones.** Its Inception blocks are dense convolutions with wide "
            "channels (64 to 832) and 3-tap / 3x3 kernels: each value read from memory feeds many "
            "multiply-adds, and oneDNN's brgemm kernels ran its convolutions at "
            f"{rate(tv_s3d.conv_gflops, tv_s3d.total_ms)} GF/s overall against "
            f"{rate(p.conv_gflops, p.total_ms)} for {short(p.label)}, while needing "
            f"{tv_s3d.gflops / p.gflops:.1f}x the FLOPs. Our MobileNetV3 blocks are the opposite by "
            "design: 1x1x1 convolutions between 16 and 72 channels at 112x112 and 56x56, depthwise "
            "convolutions (a few multiply-adds per value read) and, in the S3D variant, temporal 3- and "
            "5-tap projections from the expanded channels down to those few. They are memory-bound: the "
            f"112x112 and 56x56 stages take {100 * time_share:.0f} % of the time for "
            f"{100 * flop_share:.0f} % of the FLOPs. That gap is the price of having few FLOPs, and INT8 "
            "widens it: VNNI quadruples the multiply-add rate, which helps compute-bound dense "
            "convolutions more than memory-bound ones (compare the INT8 ms / GFLOP). In latency, what "
            f"users get, ours stays ahead{_lead(results, p)}. Closing the per-GFLOP gap means moving fewer "
            "bytes at high resolution: a temporal stride in the stem (fewer frames through the widest "
            "tensors) or fewer, wider channels in the first stages. Both change the network and need "
            "retraining and a new accuracy figure."
        )
    ours_x3d = _profile(profiles, CANDIDATES[1].name)
    peers = sorted(beaten_by.get(CANDIDATES[1].name, set()) - {"S3D"})
    if ours_x3d and peers:
        lgd = [layer for layer in ours_x3d.layers if LGD_LAYERS.search(layer.original)]
        lgd_ms, lgd_gf = sum(layer.ms for layer in lgd), sum(layer.gflops for layer in lgd)
        x3d_m = _profile(profiles, "X3D-M")
        early = [_early_share(p) for p in (ours_x3d, x3d_m) if p]
        paragraphs.append(
            f"**{' and '.join(peers)} (PyTorchVideo) is cheaper per GFLOP than our X3D.** Two things cost "
            "our X3D time. Its local-global diffusion (LGD) path (the nodes that hold `lgd_pool`, "
            "`lgd_upsample`, `lgd_glob` layers or the adds of the global tensor) took "
            f"{100 * lgd_ms / ours_x3d.total_ms:.0f} % of the time for {100 * lgd_gf / ours_x3d.conv_gflops:.1f} % "
            "of the FLOPs: its attention keys are 1-output-channel 1x1x1 convolutions over the "
            "full-resolution maps, and its global tensor is broadcast-added back after every block, a "
            "separate pass over the tensor that also keeps the block's residual add out of the "
            "convolution it is otherwise fused into. (`convert_onnx` already rewrites the attention "
            "pooling's matmul over positions flattened from N C T H W into one over the channels-last "
            "view the CPU plugin keeps; without it, full-tensor reorders add about 40 % to the time.) And more of its work is at high "
            "resolution, where every kernel is memory-bound: MobileNetV3 runs a whole block and the next "
            "block's expansion at 112x112, X3D only its stem and one expansion"
            + (
                f"; the 112x112 and 56x56 stages took {100 * early[0][0]:.0f} % of our X3D's time for "
                f"{100 * early[0][1]:.0f} % of its FLOPs, against {100 * early[1][0]:.0f} % for "
                f"{100 * early[1][1]:.0f} % in X3D-M"
                if len(early) == 2
                else ""
            )
            + ". Computing the attention keys on a pooled map would remove most of the first (a model "
            "change that needs retraining); the second is the MobileNetV3 layout itself."
        )
    x3d_m = _profile(profiles, "X3D-M")
    ours_s3d = _profile(profiles, CANDIDATES[0].name)
    if x3d_m and ours_s3d:
        dw_ms, dw_gf = x3d_m.share("conv depthwise")
        paragraphs.append(
            f"**PyTorchVideo's X3D spends {100 * x3d_m.share('element-wise')[0] / x3d_m.total_ms:.0f} % of its "
            "time in element-wise passes**: the squeeze-excite multiply and SiLU after the channel-wise "
            "convolution of every other block, at 56x56 too, become one `Subgraph` pass over the tensor "
            "each (not a convolution post-op), against "
            f"{100 * ours_s3d.share('element-wise')[0] / ours_s3d.total_ms:.0f} % for our S3D, whose "
            "squeeze-excite blocks sit only at 28x28 and below and whose other activations OpenVINO fuses "
            f"into the convolutions. X3D's channel-wise 3x3x3 convolutions ran at {rate(dw_gf, dw_ms)} GF/s."
        )
    return "### Why, and what would close the gap\n\n" + "\n\n".join(paragraphs) + "\n"


def render_markdown(
    results: Sequence[Result],
    profiles: Sequence[Profile],
    env: dict[str, str],
    command: str,
    plot_name: str,
) -> str:
    """The whole BENCHMARKS.md."""
    env_lines = "\n".join(f"- {k}: {v}" for k, v in env.items() if k != "date")
    notes = "\n".join(f"  - {c.name} ({c.source}): {c.note}" for c in CANDIDATES if c.note)
    top = "\n\n".join(
        f"Slowest nodes of {p.label} (OpenVINO FP32):\n\n{top_layers(p)}" for p in profiles if p.ours
    )
    profiled = (
        f"{profile_table(profiles)}\n\nBy stage (output resolution):\n\n{resolution_table(profiles)}\n\n"
        + "\n".join(analysis_lines(results, profiles))
        + f"\n\n{top}"
        if profiles
        else "(not profiled)"
    )
    return f"""\
# Speed against the models people would pick instead

Regenerate with `{command}` (writes this file and `bench/peers_plot.png`; last run {env["date"]}). Do
not edit by hand. All models were timed in one process, with the same settings, in the same rounds.

## Setup

{env_lines}
- Batch 1, random weights (latency does not depend on them), {NUM_CLASSES}-class classifiers.
  PyTorch eager: `torch.set_num_threads(threads)`, `torch.inference_mode()`, default memory format.
  OpenVINO: CPU, `PERFORMANCE_HINT=LATENCY`, one stream, `INFERENCE_NUM_THREADS=threads`,
  `INFERENCE_PRECISION_HINT=f32` (`action_rec.export.openvino_ir.compile_ir`), the same for every model.
- Every OpenVINO model comes through our own export path: `export_onnx` (opset 17, BatchNorm folded)
  -> `convert_onnx` (its rewrites: our X3D's attention pooling as a MatMul over the channels-last view,
  the only pooling of that form; large per-frame chains run frame by frame, which matches our S3D's
  112x112 expansion and one chain of torchvision's S3D) -> `compile_ir`; INT8 is
  `action_rec.export.quantize.quantize_int8` (NNCF, mixed preset) on `convert_onnx(..., for_int8=True)`,
  **calibrated on random clips: right for speed, meaningless for accuracy**. Each OpenVINO
  FP32 output is checked against PyTorch's on the timed input.
- Latency: every model is prepared first; then the PyTorch ones, and after them the OpenVINO ones,
  are warmed up and timed together in rounds (each round runs every one in turn, fast ones several
  times in a row), so that load from other processes and its drift hit all alike. Median, min and max
  of all timed runs. Only a machine otherwise idle gives figures to quote (see the load above).
- GFLOPs: `action_rec.evaluation.complexity.count_complexity` for every model (fvcore, one multiply-add
  = 2 FLOPs; convolutions and matmuls, not activations or pooling). Params include the classifier.
- PyTorchVideo's X3D uses `Swish`, a custom autograd function the ONNX exporter cannot trace; it is
  replaced by `nn.SiLU` (the same x * sigmoid(x)) before timing, in both runtimes. X3D's head pools
  over the whole last feature map, so each X3D is built for the input it runs at (same parameters).
- Input shapes ("(published)" marks a model's own; bold rows are ours, published at 16x224x224 and
  also timed at X3D-S's {fmt_shape(X3D_S_SHAPE)} to compare at equal input; the headline ratios use
  ours at 16x224x224 only):
{notes}
- "Similar GFLOPs": within {SIMILAR_GFLOPS:g}x either way.

## Results

{results_table(results)}

![latency against GFLOPs]({plot_name})

## Where we stand

{chr(10).join(comparison_lines(results)) or "(no comparison: one side was not run)"}

Accuracy is not on a common benchmark: the peers publish Kinetics-400 top-1 (X3D-S 73.3, X3D-M 75.9,
torchvision S3D 68.4 on 128-frame clips); ours were pre-trained on Kinetics-700 and are published
fine-tuned (UCF-101 93.8 / 93.6, see README). GFLOPs are the class this file can compare.

## Per-layer profile (OpenVINO FP32, 16x224x224)

Each model compiled with `PERF_COUNT=True`; `request.get_profiling_info()` gives the real time of
every executed node, averaged over the profiled inferences and grouped by what the node is.
Convolutions are split by their weights' shape in the runtime graph; "GF" = GFLOPs of those nodes,
"GF/s" = the rate they ran at. The profiled inferences are separate from the timed ones (and
`PERF_COUNT` adds overhead): read the shares here, the latency in the results table.

{profiled}

{explanation(results, profiles)}"""


MARKERS = {EAGER: "o", OV_FP32: "s", OV_INT8: "^"}
NUDGE = {EAGER: 0.985, OV_FP32: 1.0, OV_INT8: 1.015}  # keeps the min-max bars of one model apart


def plot(results: Sequence[Result], path: Path, title: str) -> Path:
    """Latency against GFLOPs (log-log), one marker per model, input and runtime; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    labels = list(dict.fromkeys(r.label for r in results))
    colours = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
    fig, ax = plt.subplots(figsize=(11, 6))
    for r in results:
        x = r.gflops * NUDGE[r.runtime]
        ax.scatter(x, r.median_ms, marker=MARKERS[r.runtime], s=90 if r.ours else 60,
                   color=colours[r.label], edgecolors="black" if r.ours else "none", zorder=3)  # fmt: skip
        ax.vlines(x, min(r.times_ms), max(r.times_ms), color=colours[r.label], alpha=0.5, zorder=2)
    handles = [ax.scatter([], [], marker="o", color=colours[label], label=label) for label in labels]
    handles += [ax.scatter([], [], marker=m, color="grey", label=runtime) for runtime, m in MARKERS.items()]
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
    ax.tick_params(which="minor", labelsize=7)
    ax.set_xlabel("GFLOPs (fvcore, multiply-add = 2 FLOPs)")
    ax.set_ylabel("latency ms, median (bar: min to max)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(
        handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="black edge: ours"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def cpu_model() -> str:
    """`model name` from /proc/cpuinfo, with family/model and the vector ISA that matter here."""
    try:
        info = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8") if f in flags]
    return (f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')}, model "
            f"{fields.get('model', '?')}; {' '.join(isa) or 'no AVX2'})")  # fmt: skip


def load_average() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def environment(threads: int, runs: int) -> dict[str, str]:
    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    packages = ("torch", "openvino", "pytorchvideo", "torchvision", "nncf", "fvcore")
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": f"{cpu_model()}, {os.cpu_count()} logical CPUs visible, {platform.system()} {platform.release()}",
        "threads": f"{threads} (PyTorch and OpenVINO)",
        "runs": f"at least {runs} timed runs per figure",
        "load": f"1-minute load average {load_average()} at the start",
        "versions": ", ".join(f"{p} {version(p)}" for p in packages)
        + f", Python {platform.python_version()}",
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    args = parser.parse_args(argv)

    command = shlex.join(["venv/bin/python", "bench/peers.py", *(sys.argv[1:] if argv is None else argv)])
    env = environment(args.threads, args.runs)
    for key, value in env.items():
        print(f"{key}: {value}")
    started = time.perf_counter()
    results, profiles = run(args)
    env["load"] += f", {load_average()} at the end (this run itself accounts for about {args.threads})"
    plot(results, args.plot, f"batch 1, {args.threads} threads, {cpu_model()}")
    plot_name = os.path.relpath(args.plot.resolve(), args.out.resolve().parent)
    write_atomic(args.out, render_markdown(results, profiles, env, command, plot_name))
    print(f"\n{results_table(results)}\n")
    print("\n".join(comparison_lines(results)))
    if profiles:
        print(f"\n{profile_table(profiles)}\n\n{resolution_table(profiles)}\n")
        print("\n".join(analysis_lines(results, profiles)))
    print(f"\nwrote {args.out} and {args.plot} in {time.perf_counter() - started:.0f} s")
    print("command:", command)


if __name__ == "__main__":
    main()
