"""Exported IRs as users run them: OpenVINO's default CPU settings beside the f32 and bf16 hints.

    venv/bin/python -m bench.int8_defaults           # both models, 16 x 224 x 224, about 6 min on 2 cores

For S3D and X3D (random weights with BatchNorm statistics from synthetic clips, INT8 calibrated on
them; latency does not depend on what was learnt) it times, side by side in one process (rounds over
all rows, so load from other processes hits all alike), batch 1, 2 threads:
- the original-form IR: the ONNX file converted without our rewrites, as the original export made it;
- our FP32 IR (`convert_onnx`);
- INT8 as export made it before (NNCF's mixed preset as it comes), which compiles only with the f32 hint
  on CPUs with bf16 units (the row says so where it fails);
- INT8 as export makes it now (`quantize_int8`: symmetric depthwise inputs, broadcast eltwise in float).
Each under "default" (no configuration but the threads), "f32" and, where the CPU has it, "bf16".
Every cell that does not compile says so instead of a time. Ratios are against the original-form IR
under the same setting.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import openvino as ov
import torch

from action_rec.export.onnx_export import export_onnx
from action_rec.export.openvino_ir import add_input_format, convert_onnx
from action_rec.runtime.compile import CompileError, available_hints
from action_rec.runtime.openvino_core import shared_core
from action_rec.runtime.signal_stack import use_own_signal_stack
from action_rec.templates import load_template
from bench.harness import (
    MODELS,
    SHAPE,
    TEMPLATES,
    Timer,
    bench_command,
    calibration_clips,
    environment,
    environment_text,
    finish_environment,
    infer_request,
    markdown_table,
    quantize,
    random_weight_model,
    synthetic_clips,
    time_round_robin,
)

ROWS = ("original-form IR (FP32)", "ours FP32", "INT8 as before (mixed preset)", "INT8 now (quantize_int8)")


def nncf_as_before(model: ov.Model, clips: list[np.ndarray]) -> ov.Model:
    """What export did before: NNCF's mixed preset, nothing kept in float, ranges as NNCF chose them."""
    import nncf

    shared_core()  # NNCF's own Cores nest inside ours (see action_rec.runtime.openvino_core)
    quantized = nncf.quantize(
        model,
        nncf.Dataset(clips),
        preset=nncf.QuantizationPreset.MIXED,
        target_device=nncf.TargetDevice.CPU,
        subset_size=len(clips),
    )
    use_own_signal_stack()  # see action_rec.runtime.signal_stack
    return quantized


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.int8_defaults", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--models", nargs="+", default=["s3d", "x3d"], choices=["s3d", "x3d"])
    args = parser.parse_args(argv)
    import nncf

    nncf.set_log_level(logging.ERROR)
    command = bench_command("bench.int8_defaults", argv)
    core = shared_core()
    hints = available_hints(core=core)
    env = environment(
        args.threads, f"OpenVINO under each of {', '.join(hints)}", ("torch", "openvino", "nncf")
    )
    print(environment_text(env))
    torch.set_num_threads(args.threads)
    x = (torch.rand(SHAPE, generator=torch.Generator().manual_seed(1)) * 255).numpy()
    timers: list[Timer] = []
    cells: dict[tuple[str, str, str], float | str] = {}

    with tempfile.TemporaryDirectory() as tmp:
        data = synthetic_clips(Path(tmp) / "calib")
        for key in args.models:
            template = load_template(TEMPLATES / MODELS[key] / "template.yaml")
            inp = template.input
            model, clips = random_weight_model(template, data)
            onnx_path = export_onnx(model, Path(tmp) / f"{key}.onnx", SHAPE)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                before = nncf_as_before(
                    convert_onnx(onnx_path, for_int8=True),
                    [c[None].numpy() for c in calibration_clips(clips)],
                )
            irs = dict(zip(ROWS, (
                ov.convert_model(str(onnx_path)),
                convert_onnx(onnx_path),
                before,
                quantize(convert_onnx(onnx_path, for_int8=True), calibration_clips(clips), len(clips)),
            ), strict=True))  # fmt: skip
            for row, ir in irs.items():
                ir = add_input_format(ir, "rgb255", inp.mean, inp.std)
                for hint in hints:
                    try:  # as users compile: no settings but the hint (and the threads)
                        request = infer_request(ir, x, hint, args.threads, core, latency=False)
                    except CompileError as exc:  # a cell of the table, not an error of the bench
                        cells[(key, row, hint)] = "does not compile: " + str(exc).rsplit(": ", 1)[-1][:60]
                        continue
                    timers.append(Timer(f"{key}|{row}|{hint}", request.infer))

    time_round_robin(timers, warmup=3, runs=args.rounds, min_seconds=0)
    finish_environment(env, args.threads)
    for timer in timers:
        key, row, hint = timer.label.split("|")
        cells[(key, row, hint)] = timer.median_ms
    table = []
    for key in args.models:
        for row in ROWS:
            out = []
            for hint in hints:
                value, base = cells.get((key, row, hint)), cells.get((key, ROWS[0], hint))
                if isinstance(value, float):
                    ratio = f" ({value / base:.2f}x)" if isinstance(base, float) else ""
                    out.append(f"{value:.1f} ms{ratio}")
                else:
                    out.append(str(value))
            table.append([key.upper(), row, *out])
    print(f"\n{environment_text(env)}\nbatch 1, {'x'.join(map(str, SHAPE))}, median of {args.rounds} rounds; "
          "(x) = ratio to the original-form IR under the same setting:\n")  # fmt: skip
    print(markdown_table(["model", "IR", *hints], table, "ll" + "r" * len(hints)))
    print("command:", command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
