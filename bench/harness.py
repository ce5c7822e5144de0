"""What every bench shares: timing in rounds, compiling an IR under a precision hint, the environment
header, the command line, Markdown tables, the generated block of the README, and the random-weight
models and INT8 calibration that speed benches time.

Timing is in rounds (every row of a run in turn, fast ones several times in a row) rather than one
row after the other, so that load from other processes, and its drift, hits all rows alike. The
figures of `tools/benchmark.py` and of these benches are summarised by the same function
(`action_rec.inference.benchmark.latency_summary`), and the machine is described by the same facts
(`machine_facts`).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import torch

from action_rec.errors import UserError
from action_rec.fileio import atomic_write
from action_rec.inference.benchmark import command_line, latency_summary, machine_facts
from action_rec.runtime.compile import compile_with_hint, latency_config
from action_rec.runtime.openvino_core import shared_core
from action_rec.templates import Template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "model_templates" / "custom-action-recognition"
MODELS = {"s3d": "s3d-rgb-mobilenet-v3", "x3d": "x3d-rgb-mobilenet-v3-lgd-gc"}
SHAPE = (1, 3, 16, 224, 224)  # the published models' input: batch 1, 16 frames of 224 x 224


# --------------------------------------------------------------------------------------------- timing
@dataclass
class Timer:
    """One row to time: a model in one runtime at one input, or any other call."""

    label: str
    call: Callable[[], Any]
    times_ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return latency_summary(self.times_ms)["median"]

    def summary(self) -> dict[str, float]:
        """Median, 90th percentile, fastest and slowest run, in ms."""
        return {**latency_summary(self.times_ms), "max": max(self.times_ms)}


def timed_runs(estimate_s: float, runs: int, min_seconds: float, max_runs: int = 300) -> int:
    """At least `runs`, and more for fast calls, so that each row's timing covers about `min_seconds`."""
    if estimate_s <= 0:
        return max(runs, max_runs)
    return max(runs, min(max_runs, math.ceil(min_seconds / estimate_s)))


def time_call(call: Callable[[], Any], runs: int, warmup: int = 3, label: str = "") -> Timer:
    """`call` timed on its own: `warmup` calls, then `runs` timed ones (a one-row `time_round_robin`)."""
    timer = Timer(label, call)
    time_round_robin([timer], warmup, runs, progress=False)
    return timer


def time_round_robin(
    timers: Sequence[Timer], warmup: int, runs: int, min_seconds: float = 0.0, progress: bool = True
) -> None:
    """Fill every timer's `times_ms`: `warmup` calls each, then `runs` rounds that call every timer in
    turn, fast ones several times in a row so that each gets about `min_seconds` of samples."""
    from tqdm import tqdm

    estimates = []
    for timer in tqdm(timers, desc="warm-up", disable=not progress):
        estimate = 0.0
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


def in_rounds(
    measures: Mapping[str, Callable[[], float]], rounds: int, progress: bool = True
) -> dict[str, list[float]]:
    """Call every measure once per round, in turn, for `rounds` rounds; each call returns its own
    figure (clips/s, seconds of a whole job). For work whose figure is not the time of one call."""
    from tqdm import tqdm

    figures: dict[str, list[float]] = {name: [] for name in measures}
    for _ in tqdm(range(rounds), desc="rounds", disable=not progress):
        for name, measure in measures.items():
            figures[name].append(float(measure()))
    return figures


# ------------------------------------------------------------------------------------------- OpenVINO
def compile_under_hint(
    model: ov.Model | str | Path,
    hint: str = "f32",
    threads: int = 0,
    core: ov.Core | None = None,
    latency: bool = True,
    profile: bool = False,
) -> ov.CompiledModel:
    """`model` compiled for the CPU under `hint` (`action_rec.runtime.compile`: "default", "f32" or
    "bf16") with `threads` inference threads; `latency` adds one stream in latency mode, as the live
    recognizer compiles; `profile` turns on per-layer counters. A model that does not compile raises
    `CompileError` naming it and the hint."""
    if latency:
        extra = latency_config(threads)
    else:
        extra = {"INFERENCE_NUM_THREADS": int(threads)} if threads else {}
    if profile:
        extra["PERF_COUNT"] = True
    return compile_with_hint(model, hint, extra_config=extra, core=core)


def infer_request(
    model: ov.Model | str | Path,
    x: np.ndarray,
    hint: str = "f32",
    threads: int = 0,
    core: ov.Core | None = None,
    latency: bool = True,
) -> ov.InferRequest:
    """An infer request of `model` compiled by `compile_under_hint`, its input set to `x` and run once
    (so its output is there to check and its first-call cost is paid)."""
    request = compile_under_hint(model, hint, threads, core, latency).create_infer_request()
    request.set_input_tensor(ov.Tensor(np.ascontiguousarray(x)))
    request.infer()
    return request


# ---------------------------------------------------------------------------------------- environment
def package_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment(
    threads: int, precision: str, packages: Sequence[str] = ("torch", "openvino"), **extra: str
) -> dict[str, str]:
    """The header of a run, read at its start: date, machine, threads, the precision the run executes
    in (`precision`, e.g. "OpenVINO in f32"; OpenVINO's default is added), versions, the load average;
    `extra` lines after.
    Call `finish_environment` at the end of the run to add the load average then."""
    facts = machine_facts(shared_core())
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{facts['cpu_model']} ({facts['isa']}), {facts['cpu_count']} logical CPUs visible, "
        f"{platform.system()} {platform.release()}",
        "threads": str(threads),
        "precision": f"{precision}; OpenVINO's CPU default here: {facts['default_precision']}",
        "versions": ", ".join(f"{p} {package_version(p)}" for p in packages)
        + f", Python {platform.python_version()}",
        "load": f"1-minute load average {facts['load_average']:.2f} at the start",
        **extra,
    }


def finish_environment(env: dict[str, str], threads: int) -> dict[str, str]:
    """Add the load average at the end of the run (the run itself keeps about `threads` CPUs busy)."""
    env["load"] += f", {os.getloadavg()[0]:.2f} at the end (this run itself accounts for about {threads})"
    return env


def environment_text(env: Mapping[str, str], markdown: bool = False) -> str:
    """The header as lines `key: value` (a Markdown list with `markdown`)."""
    return "\n".join(f"{'- ' if markdown else ''}{key}: {value}" for key, value in env.items())


def bench_command(module: str, argv: Sequence[str] | None = None) -> str:
    """The command that reproduces this run of `python -m <module>` (`sys.argv[1:]` when argv is None)."""
    return command_line(["-m", module], argv)


# ------------------------------------------------------------------------------------------- Markdown
def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> str:
    """A Markdown table; `align` has one letter per column, "l" or "r" (right: figures), left if unset."""
    if align and len(align) != len(header):
        raise ValueError(f"align {align!r} has {len(align)} letters for {len(header)} columns")

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("--:" if a == "r" else "---" for a in (align or "l" * len(header))) + "|")
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {row!r} has {len(row)} cells for {len(header)} columns")
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


class MarkerError(UserError):
    """A file whose generated block is not marked exactly once."""


def block_markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def find_block(path: Path, name: str) -> tuple[list[str], int, int]:
    """The lines of `path` and the indices of its block's start and end markers; MarkerError, naming
    the file (and line), unless each marker is there exactly once and in order."""
    start, end = block_markers(name)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        raise MarkerError(f"{path}: no such file (its `{start}` block was to be rewritten)") from None
    found = {m: [i for i, line in enumerate(lines) if line.strip() == m] for m in (start, end)}
    for marker, at in found.items():
        if len(at) != 1:
            where = f"lines {', '.join(str(i + 1) for i in at)}" if at else "no line"
            raise MarkerError(f"{path}: {where} with `{marker}`; expected exactly one")
    first, last = found[start][0], found[end][0]
    if last < first:
        raise MarkerError(f"{path}:{last + 1}: `{end}` comes before `{start}` (line {first + 1})")
    return lines, first, last


def rewrite_block(path: Path, name: str, content: str) -> Path:
    """Replace what lies between the lines `<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->`
    of `path` by `content`, leaving the rest of the file as it was; written atomically."""
    lines, first, last = find_block(path, name)
    body = content.strip("\n") + "\n"
    return atomic_write(path, "".join(lines[: first + 1]) + body + "".join(lines[last:]))


# ------------------------------------------------------------------------- random weights, INT8 clips
def synthetic_clips(root: Path, per_class: int = 2, workers: int = 1) -> Path:
    """A synthetic dataset of 6 classes x `per_class` validation videos at 256 x 256 (and one training
    video each): real-looking clips for BatchNorm statistics and INT8 calibration."""
    from action_rec.data import make_synthetic_dataset

    return make_synthetic_dataset(
        root, num_classes=6, train_per_class=1, val_per_class=per_class, frames=32, size=256, seed=0,
        workers=workers,
    )  # fmt: skip


def calibrated_model(template: Template, loader: Iterable, num_classes: int = 27) -> torch.nn.Module:
    """Random weights with BatchNorm running statistics from real-looking clips (so that every
    convolution gets the bias a trained one has); latency does not depend on what was learnt."""
    from action_rec.models import build_model

    torch.manual_seed(0)
    model = build_model(template, num_classes=num_classes)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.momentum = None
    model.train()
    with torch.no_grad():
        for i, (clip, _) in enumerate(loader):
            model(clip)
            if i == 3:
                break
    return model.eval()


def random_weight_model(template: Template, data_root: Path) -> tuple[torch.nn.Module, Any]:
    """`calibrated_model` on the validation clips of `data_root` (from `synthetic_clips`), and the
    dataset of those clips (`calibration_clips` yields them to calibrate INT8 on)."""
    from action_rec.data import RawFrameDataset

    clips = RawFrameDataset(["val.txt"], [data_root], template, "val")
    return calibrated_model(template, torch.utils.data.DataLoader(clips, batch_size=4)), clips


def calibration_clips(dataset: Any) -> Iterator[torch.Tensor]:
    """The normalized `3 x T x H x W` clips of a clip dataset, one at a time."""
    for index in range(len(dataset)):
        yield dataset[index][0]


def random_clips(shape: tuple[int, ...], count: int, seed: int = 0) -> Iterator[torch.Tensor]:
    """Normalized-looking random clips (`shape`, e.g. `3 x T x H x W`) for INT8 calibration: right for
    speed, meaningless for accuracy."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(count):
        yield torch.randn(shape, generator=generator)


def quantize(model: ov.Model, clips: Iterable[torch.Tensor], count: int) -> ov.Model:
    """`model` quantized as export quantizes (`quantize_int8`), calibrated on `count` of `clips`."""
    from action_rec.export.quantize import quantize_int8

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_int8(model, clips, subset_size=count)[0]
