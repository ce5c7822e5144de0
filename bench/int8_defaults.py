#!/usr/bin/env python3
"""Exported IRs as users run them: OpenVINO's default CPU settings beside the f32 and bf16 hints.

    venv/bin/python bench/int8_defaults.py               # both models, 16 x 224 x 224, about 6 min on 2 cores

For S3D and X3D (random weights with BatchNorm statistics from synthetic clips, INT8 calibrated on
them; latency does not depend on what was learnt) it times, side by side in one process (rounds over
all rows, so load from other processes hits all alike), batch 1, 2 threads:
- the original-form IR: the ONNX file converted without our rewrites, as the original export made it;
- our FP32 IR (`convert_onnx`);
- INT8 as export made it before (NNCF's mixed preset as it comes), which compiles only with the f32 hint
  on CPUs with bf16 units (the row says so where it fails);
- INT8 as export makes it now (`quantize_int8`: symmetric depthwise inputs, broadcast eltwise in float).
Each under "default" (no configuration), "f32" and, where the CPU has it, "bf16". Every cell that does
not compile says so instead of a time. Ratios are against the original-form IR under the same setting.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import openvino as ov  # noqa: E402
import torch  # noqa: E402
from export_latency import calibrated_model  # noqa: E402
from peers import Timer, time_round_robin  # noqa: E402

from action_rec.data import RawFrameDataset, make_synthetic_dataset  # noqa: E402
from action_rec.export.onnx_export import export_onnx  # noqa: E402
from action_rec.export.openvino_ir import add_input_format, convert_onnx  # noqa: E402
from action_rec.export.runtime import CompileError, available_hints, compile_with_hint  # noqa: E402
from action_rec.templates import load_template  # noqa: E402

TEMPLATES = ROOT / "model_templates" / "custom-action-recognition"
SHAPE = (1, 3, 16, 224, 224)


def nncf_as_before(model: ov.Model, clips: list[np.ndarray]) -> ov.Model:
    """What export did before: NNCF's mixed preset, nothing kept in float, ranges as NNCF chose them."""
    import nncf

    return nncf.quantize(
        model,
        nncf.Dataset(clips),
        preset=nncf.QuantizationPreset.MIXED,
        target_device=nncf.TargetDevice.CPU,
        subset_size=len(clips),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--models", nargs="+", default=["s3d", "x3d"], choices=["s3d", "x3d"])
    args = parser.parse_args(argv)
    import nncf

    nncf.set_log_level(logging.ERROR)
    from action_rec.export.quantize import quantize_int8

    torch.set_num_threads(args.threads)
    core = ov.Core()
    hints = available_hints(core=core)
    x = (torch.rand(SHAPE, generator=torch.Generator().manual_seed(1)) * 255).numpy()
    timers: list[Timer] = []
    cells: dict[tuple[str, str, str], str] = {}
    names = {"s3d": "s3d-rgb-mobilenet-v3", "x3d": "x3d-rgb-mobilenet-v3-lgd-gc"}

    with tempfile.TemporaryDirectory() as tmp:
        data = make_synthetic_dataset(
            Path(tmp) / "calib",
            num_classes=6,
            train_per_class=1,
            val_per_class=2,
            frames=32,
            size=256,
            seed=0,
        )
        for key in args.models:
            template = load_template(TEMPLATES / names[key] / "template.yaml")
            inp = template["input"]
            clips = RawFrameDataset(["val.txt"], [data], template, "val")
            model = calibrated_model(template, torch.utils.data.DataLoader(clips, batch_size=4))
            onnx_path = export_onnx(model, Path(tmp) / f"{key}.onnx", SHAPE)
            calib = [clips[i][0][None].numpy() for i in range(len(clips))]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rows = {
                    "original-form IR (FP32)": ov.convert_model(str(onnx_path)),
                    "ours FP32": convert_onnx(onnx_path),
                    "INT8 as before (mixed preset)": nncf_as_before(
                        convert_onnx(onnx_path, for_int8=True), calib
                    ),
                    "INT8 now (quantize_int8)": quantize_int8(
                        convert_onnx(onnx_path, for_int8=True),
                        iter(torch.from_numpy(c) for c in calib),
                        len(calib),
                    )[0],
                }
            for row, ir in rows.items():
                ir = add_input_format(ir, "rgb255", inp["mean"], inp["std"])
                for hint in hints:
                    try:
                        compiled = compile_with_hint(
                            ir, hint, extra_config={"INFERENCE_NUM_THREADS": args.threads}, core=core
                        )
                    except CompileError as exc:
                        cells[(key, row, hint)] = "does not compile: " + str(exc).rsplit(": ", 1)[-1][:60]
                        continue
                    request = compiled.create_infer_request()
                    request.set_input_tensor(ov.Tensor(x))
                    request.infer()
                    timers.append(Timer(f"{key}|{row}|{hint}", request.infer))

    time_round_robin(timers, warmup=3, runs=args.rounds, min_seconds=0)
    for timer in timers:
        key, row, hint = timer.label.split("|")
        cells[(key, row, hint)] = float(np.median(timer.times_ms))
    print(f"\nOpenVINO {ov.__version__}, {args.threads} threads, batch 1, 1 x 3 x 16 x 224 x 224, median of "
          f"{args.rounds} rounds; (x) = ratio to the original-form IR under the same setting:")  # fmt: skip
    print("| model | IR | " + " | ".join(hints) + " |")
    print("|---|---|" + "--:|" * len(hints))
    for key in args.models:
        for row in (
            "original-form IR (FP32)",
            "ours FP32",
            "INT8 as before (mixed preset)",
            "INT8 now (quantize_int8)",
        ):
            out = []
            for hint in hints:
                value, base = cells.get((key, row, hint)), cells.get((key, "original-form IR (FP32)", hint))
                if isinstance(value, float):
                    ratio = f" ({value / base:.2f}x)" if isinstance(base, float) else ""
                    out.append(f"{value:.1f} ms{ratio}")
                else:
                    out.append(str(value))
            print(f"| {key.upper()} | {row} | " + " | ".join(out) + " |")
    command = ["venv/bin/python", "bench/int8_defaults.py", *(sys.argv[1:] if argv is None else argv)]
    print("command:", shlex.join(command))


if __name__ == "__main__":
    main()
