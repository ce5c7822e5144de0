"""What an exported model costs end to end on this CPU, for each IR beside it and each precision hint.

    python tools/benchmark.py --model export/model.xml [--video clip.mp4] [--precision-hint default f32 bf16]
        [--requests N] [--threads N] [--runs 20] [--frames 300] [--seconds 5] [--json out.json] [--plot out.png]

For each IR (model.xml = FP32, model_int8.xml = INT8 when it is there) and each hint ("default":
compiled with no settings at all, as a plain OpenVINO client does, bf16 on CPUs that have it; "f32";
"bf16" where the CPU lists BF16), three figures, each measured by really doing the work:

- per window: one inference of a `1 x 3 x T x H x W` clip (median, 90th percentile and fastest, ms);
- per source frame, on a real video: decoding + the recognizer's preprocessing of sampled frames and
  window stacking + the inferences (one every `--stride` frames, so their share) + drawing the overlay,
  each timed in the loop that the live demo runs, divided by the frames; 1000 / total = FPS one core
  set can sustain;
- throughput: clips per second with `--requests` inferences in flight (AsyncInferQueue), compiled
  with the THROUGHPUT performance hint (several streams): what several cameras on one machine get.

A cell that does not compile (an IR the CPU plugin cannot run under that hint) says so in one line
instead of stopping the benchmark. A hint the CPU lacks, asked for by name, is a one-line error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from tqdm import tqdm

from action_rec.errors import UserError, run_cli
from action_rec.fileio import atomic_path, atomic_write
from action_rec.runtime.compile import HINTS, CompileError, compile_with_hint, cpu_capabilities, hints_for
from action_rec.runtime.model import ExportedModel
from action_rec.runtime.openvino_core import shared_core
from action_rec.runtime.overlay import draw_overlay
from action_rec.runtime.recognizer import Recognizer
from action_rec.runtime.sources import open_source

__all__ = [
    "BenchmarkError",
    "Cell",
    "check_hints",
    "benchmark_ir",
    "command_line",
    "latency_summary",
    "machine_facts",
    "main",
]

VARIANTS = {"FP32": "model.xml", "INT8": "model_int8.xml"}
_REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
DEFAULT_VIDEOS = (_REAL / "debian-opencv-doc" / "vtest.avi", _REAL / "mmaction2" / "demo.mp4")


class BenchmarkError(UserError):
    """A benchmark setting that cannot work here (a hint the CPU lacks, too few frames)."""


@dataclass
class Cell:
    """One IR under one hint: the figures in ms (None where not measured) or why it did not run."""

    variant: str
    hint: str
    window_ms: dict[str, float] = field(default_factory=dict)  # median, p90, min
    frame_ms: dict[str, float] = field(default_factory=dict)  # decode, preprocess, inference, draw, total
    throughput: dict[str, float] = field(default_factory=dict)  # clips_per_s, requests
    error: str | None = None


def check_hints(hints: list[str], capabilities: list[str], cpu_name: str) -> None:
    """Refuse, in one line, a hint this CPU cannot execute."""
    for hint in hints:
        if hint not in HINTS:
            raise BenchmarkError(f"unknown hint '{hint}', expected one of {', '.join(HINTS)}")
        if hint not in hints_for(capabilities):
            raise BenchmarkError(
                f"--precision-hint {hint}: {cpu_name} cannot execute it (its capabilities: {', '.join(capabilities)})"
            )


def threads_config(threads: int = 0) -> dict[str, Any]:
    """The thread count, if given: the only setting the benchmark adds to a hint's (OpenVINO's
    defaults otherwise, as a plain client compiles)."""
    return {"INFERENCE_NUM_THREADS": int(threads)} if threads else {}


def latency_summary(times_ms: Sequence[float]) -> dict[str, float]:
    """Median, 90th percentile and fastest of timed runs, in ms (on a busy machine the fastest run is
    the steadiest figure). The benches in bench/ summarise their timings with this too."""
    times = np.asarray(times_ms, dtype=float)
    return {
        "median": float(np.median(times)),
        "p90": float(np.percentile(times, 90)),
        "min": float(times.min()),
    }


def _cpuinfo() -> tuple[str, str]:
    """The CPU's model (name, family, model number) and the vector instruction sets that decide
    OpenVINO's CPU kernels, from /proc/cpuinfo (Linux; "?" elsewhere)."""
    try:
        info = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return platform.processor() or platform.machine(), "?"
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in info.splitlines())}
    isa = [
        f
        for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8")
        if f in fields.get("flags", "").split()
    ]
    model = f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"
    return model, " ".join(isa) or "no AVX2"


def machine_facts(core: ov.Core) -> dict[str, Any]:
    """What a timing depends on, read now: the CPU, its vector ISA, CPUs visible, OpenVINO's version,
    the precision its CPU plugin executes in by default, and the 1-minute load average now."""
    cpu_model, isa = _cpuinfo()
    return {
        "cpu": core.get_property("CPU", "FULL_DEVICE_NAME"),
        "cpu_model": cpu_model,
        "isa": isa,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "openvino": ov.get_version(),
        "default_precision": core.get_property("CPU", "INFERENCE_PRECISION_HINT").to_string(),
        "load_average": os.getloadavg()[0],
    }


def command_line(program: Sequence[str], argv: Sequence[str] | None) -> str:
    """The command that reproduces a run, printed under its figures: this interpreter (relative to the
    working directory where it lies under it), `program` and the arguments (`sys.argv[1:]` when `argv`
    is None)."""
    args = sys.argv[1:] if argv is None else argv
    python = os.path.relpath(sys.executable)
    python = sys.executable if python.startswith("..") else python  # outside the working directory
    return shlex.join([python, *program, *map(str, args)])


def window_latency(model: ExportedModel, runs: int, warmup: int = 3) -> dict[str, float]:
    """Median, p90 and fastest of one inference on a clip of the model's input, after `warmup` runs
    (on a busy machine the fastest run is the steadiest figure)."""
    port = model.compiled.inputs[0]
    dtype = np.uint8 if port.get_element_type() == ov.Type.u8 else np.float32
    clip = np.random.default_rng(0).integers(0, 256, list(port.shape)).astype(dtype)
    for _ in range(warmup):
        model.probabilities(clip)
    model.latencies_ms.clear()
    for _ in range(runs):
        model.probabilities(clip)
    return latency_summary(model.latencies_ms)


def frame_cost(model: ExportedModel, video: Path, frames: int, stride: int) -> dict[str, float]:
    """ms per source frame of the live loop on `video` (up to `frames` frames): decode, preprocess
    (sampled frames and window stacking), inference (every `stride` frames), draw the overlay."""
    source = open_source(str(video))
    recognizer = Recognizer(model, source.fps, stride=stride)
    spent = dict.fromkeys(("decode", "preprocess", "inference", "draw"), 0.0)
    entry, index, windows = None, 0, 0
    try:
        while index < frames:
            t0 = time.perf_counter()
            frame = source.read()
            if frame is None:
                break
            t1 = time.perf_counter()
            due = recognizer.add_frame(index, frame)
            t2 = time.perf_counter()
            if due is not None:
                entry = recognizer.infer(due).to_json(model.class_names)
                windows += 1
            t3 = time.perf_counter()
            draw_overlay(frame, entry, 0.0, entry["latency_ms"] if entry else 0.0)
            t4 = time.perf_counter()
            for key, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                spent[key] += seconds
            index += 1
    finally:
        source.release()
    if windows < 2:
        raise BenchmarkError(f"{video}: {index} frames give {windows} window(s); give a longer --video")
    out = {key: 1000.0 * seconds / index for key, seconds in spent.items()}
    out["total"] = sum(out.values())
    out["frames"], out["windows"] = index, windows
    return out


def throughput(
    xml: Path, hint: str, threads: int, requests: int, seconds: float, device: str
) -> dict[str, float]:
    """Clips per second with `requests` inferences in flight (0: OpenVINO's optimal number)."""
    config = {"PERFORMANCE_HINT": "THROUGHPUT", **threads_config(threads)}
    compiled = compile_with_hint(xml, hint, device, extra_config=config)
    count = requests or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    port = compiled.inputs[0]
    dtype = np.uint8 if port.get_element_type() == ov.Type.u8 else np.float32
    clip = np.random.default_rng(0).integers(0, 256, list(port.shape)).astype(dtype)
    queue = ov.AsyncInferQueue(compiled, count)
    for _ in range(count):  # warm-up: every request once
        queue.start_async({0: clip})
    queue.wait_all()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        queue.start_async({0: clip})  # blocks while all requests are busy
        done += 1
    queue.wait_all()
    return {"clips_per_s": done / (time.perf_counter() - start), "requests": count}


def benchmark_ir(
    xml: Path,
    variant: str,
    hint: str,
    video: Path,
    *,
    runs: int = 20,
    frames: int = 300,
    stride: int = 8,
    requests: int = 0,
    seconds: float = 5.0,
    threads: int = 0,
    device: str = "CPU",
) -> Cell:
    """Every figure of one IR under one hint (see the module docstring)."""
    cell = Cell(variant, hint)
    try:
        model = ExportedModel(xml, device=device, precision=hint, config=threads_config(threads))
    except CompileError as exc:  # a figure of the table, not an error of the benchmark: report it there
        cell.error = f"does not compile: {exc.reason[:200]}"
        return cell
    cell.window_ms = window_latency(model, runs)
    cell.frame_ms = frame_cost(model, video, frames, stride)
    del model
    cell.throughput = throughput(xml, hint, threads, requests, seconds, device)
    return cell


def format_table(cells: list[Cell], stride: int) -> str:
    """The figures as a text table, one row per IR and hint."""
    head = (
        f"{'':14} | {'per window ms':^23} | {f'per source frame ms, a window every {stride}':^41} | "
        f"{'throughput':^18}\n{'IR':5} {'hint':8} | {'median':>7} {'p90':>7} {'min':>7} | {'decode':>6} {'prep':>6} "
        f"{'infer':>6} {'draw':>6} {'total':>6} {'FPS':>6} | {'clips/s':>7} {'requests':>10}"
    )
    rows = [head, "-" * len(head.splitlines()[1])]
    for c in cells:
        if c.error:
            rows.append(f"{c.variant:5} {c.hint:8} | {c.error}")
            continue
        w, f, t = c.window_ms, c.frame_ms, c.throughput
        rows.append(
            f"{c.variant:5} {c.hint:8} | {w['median']:7.1f} {w['p90']:7.1f} {w['min']:7.1f} | {f['decode']:6.2f} "
            f"{f['preprocess']:6.2f} {f['inference']:6.2f} {f['draw']:6.2f} {f['total']:6.2f} "
            f"{1000 / f['total']:6.1f} | {t['clips_per_s']:7.2f} {int(t['requests']):>10}"
        )
    return "\n".join(rows)


def plot_frame_costs(cells: list[Cell], path: Path, title: str) -> Path:
    """Stacked bars of the per-source-frame cost (decode, preprocess, inference share, draw) per cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = ("decode", "preprocess", "inference", "draw")
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(cells) + 1.5))
    labels = [f"{c.variant} {c.hint}" for c in cells]
    for row, cell in enumerate(cells):
        left = 0.0
        for k, part in enumerate(parts):
            width = cell.frame_ms.get(part, 0.0)
            ax.barh(row, width, left=left, color=f"C{k}", label=part if row == 0 else None)
            left += width
        if cell.error:
            ax.text(0, row, "  does not compile", va="center", fontsize=8)
    ax.set_yticks(range(len(cells)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("ms per source frame")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def _default_video(work: Path, meta_input: dict[str, Any]) -> Path:
    for video in DEFAULT_VIDEOS:
        if video.is_file():
            return video
    from action_rec.inference.synthetic_video import make_synthetic_video

    video = work / "synthetic.mp4"
    make_synthetic_video(video, [0, 1, 2, 3, 4, 5], frames_per_segment=64, size=max(256, meta_input["size"]))
    return video


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark.py",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument(
        "--model", required=True, type=Path, help="model.xml (model_int8.xml beside it is measured too)"
    )
    p.add_argument("--video", type=Path, help="real video for the per-frame cost (default: a bundled clip)")
    p.add_argument(
        "--precision-hint",
        nargs="+",
        choices=list(HINTS),
        help="OpenVINO precision hints to measure under, one or more (default: all this CPU executes)",
    )
    p.add_argument(
        "--requests", type=int, default=0, help="requests in flight (default 0: OpenVINO's optimum)"
    )
    p.add_argument("--threads", type=int, default=0, help="inference threads (default 0: OpenVINO's default)")
    p.add_argument("--runs", type=int, default=20, help="timed inferences per window figure")
    p.add_argument("--frames", type=int, default=300, help="source frames for the per-frame figure")
    p.add_argument("--stride", type=int, default=8, help="source frames between windows, as in the demo")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    p.add_argument("--device", default="CPU", help="OpenVINO device to run the model on (default CPU)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--plot", type=Path, help="also draw the per-frame costs here (.png)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: _run(args, argv))


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    for name in ("runs", "frames", "stride"):
        if getattr(args, name) < 1:
            raise BenchmarkError(f"--{name} must be at least 1")
    core = shared_core()
    cpu = core.get_property("CPU", "FULL_DEVICE_NAME")
    capabilities = cpu_capabilities(core)
    hints = args.precision_hint or hints_for(capabilities)
    check_hints(hints, capabilities, cpu)
    if not args.model.is_file():
        raise BenchmarkError(f"{args.model}: no such model file")
    irs = {
        v: args.model.with_name(name) for v, name in VARIANTS.items() if args.model.with_name(name).is_file()
    }
    if args.model.name not in VARIANTS.values():  # an IR of another name: that one alone
        irs = {"IR": args.model}
    meta_input = ExportedModel(args.model, device=args.device, precision="f32", config={}).input  # checks it
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or _default_video(Path(tmp), meta_input)
        if not video.is_file():
            raise BenchmarkError(f"{video}: no such video file")
        cells = []
        jobs = [(variant, xml, hint) for variant, xml in irs.items() for hint in hints]
        for variant, xml, hint in tqdm(jobs, desc="benchmark", unit="cell"):
            cells.append(
                benchmark_ir(
                    xml,
                    variant,
                    hint,
                    video,
                    runs=args.runs,
                    frames=args.frames,
                    stride=args.stride,
                    requests=args.requests,
                    seconds=args.seconds,
                    threads=args.threads,
                    device=args.device,
                )
            )
    command = command_line(["tools/benchmark.py"], argv)
    frames = next((c.frame_ms for c in cells if c.frame_ms), {})
    facts = machine_facts(core)
    print(
        f"\n{args.model.parent}: input {meta_input['shape']}, {cpu} ({facts['isa']}), {facts['cpu_count']} CPUs, "
        f"OpenVINO {facts['openvino']}, threads {args.threads or 'default'}, load average {facts['load_average']:.2f}\n"
        f"per source frame: {video} ({frames.get('frames', 0):.0f} frames, {frames.get('windows', 0):.0f} windows)\n"
    )
    print(format_table(cells, args.stride))
    print(f"\ncommand: {command}")
    if args.json:
        report = {
            "command": command,
            **facts,
            "video": str(video),
            "stride": args.stride,
            "cells": [asdict(c) for c in cells],
        }
        atomic_write(args.json, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        plot_frame_costs(cells, args.plot, f"{args.model.parent.name}: {meta_input['shape']}, {cpu}")
        print(f"wrote {args.plot}")
    return 0
