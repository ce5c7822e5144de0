"""What each of `convert_onnx`'s CPU rewrites is worth: the same ONNX file converted with and without
them, timed side by side in one process (OpenVINO CPU, f32, batch 1, 1 x 3 x 16 x 224 x 224).

    venv/bin/python -m bench.export_rewrites            # FP32 variants, about 1 min on 2 idle cores
    venv/bin/python -m bench.export_rewrites --int8     # also the INT8 forms (NNCF), about 4 min

- X3D attention pooling: as PyTorch wrote it (a MatMul over positions flattened from N C T H W), as a
  multiply + reduce-sum, and as a MatMul over the channels-last view (what `convert_onnx` does).
- S3D per-frame chains split along time at several size thresholds (16 MiB is `convert_onnx`'s).
- With --int8: each model quantized from the f32 form and from `convert_onnx(..., for_int8=True)`.

Weights are random, with BatchNorm statistics gathered on synthetic clips (`bench.harness`: every
convolution gets the bias a trained one has, and INT8 is calibrated on those clips). Every FP32
variant's output is checked against PyTorch's before timing. Timing is the harness's: rounds over all
variants, so that load from other processes hits all alike.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import openvino as ov
import torch

from action_rec.export.onnx_export import export_onnx
from action_rec.export.openvino_ir import convert_onnx, rewrite_attention_pooling, split_per_frame_chains
from action_rec.runtime.openvino_core import shared_core
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

VARIANTS = {  # label: (attention pooling rewrite, frame split threshold in MiB); None: left out
    "x3d": [
        ("pooling as written (MatMul over N C THW)", None, None),
        ("pooling as multiply + reduce-sum", "sum", None),
        ("pooling as MatMul over channels-last (convert_onnx)", "matmul", 16),
    ],
    "s3d": [
        ("no frame split", "matmul", None),
        ("frame split >= 16 MiB (convert_onnx)", "matmul", 16),
        ("frame split >= 4 MiB", "matmul", 4),
        ("frame split >= 1 MiB", "matmul", 1),
    ],
}


def converted(onnx_path: Path, pooling: str | None, split_mib: float | None) -> ov.Model:
    """The ONNX file read by OpenVINO, then the given rewrites (None: that rewrite left out)."""
    model = ov.convert_model(str(onnx_path))
    if pooling is not None:
        rewrite_attention_pooling(model, pooling)
    if split_mib is not None:
        split_per_frame_chains(model, int(split_mib * 2**20))
    return model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.export_rewrites", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--int8", action="store_true", help="also time the INT8 forms (slow: calibration)")
    args = parser.parse_args(argv)
    command = bench_command("bench.export_rewrites", argv)
    env = environment(
        args.threads, "OpenVINO in f32 (INFERENCE_PRECISION_HINT=f32)", ("torch", "openvino", "nncf")
    )
    print(environment_text(env))
    torch.set_num_threads(args.threads)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    core = shared_core()
    timers = []

    def add(label: str, model: ov.Model, reference: np.ndarray | None) -> None:
        request = infer_request(model, x.numpy(), "f32", args.threads, core)
        if reference is not None:
            diff = float(np.abs(request.get_output_tensor().data - reference).max())
            if diff > 1e-4:
                raise RuntimeError(f"{label}: output differs from PyTorch's by {diff:.2e}")
        timers.append(Timer(label, request.infer))

    with tempfile.TemporaryDirectory() as tmp:
        data = synthetic_clips(Path(tmp) / "calib")
        for key, variants in VARIANTS.items():
            template = load_template(TEMPLATES / MODELS[key] / "template.yaml")
            model, clips = random_weight_model(template, data)
            with torch.inference_mode():
                reference = model(x).numpy()
            onnx_path = export_onnx(model, Path(tmp) / f"{key}.onnx", SHAPE)
            for label, pooling, split_mib in variants:
                add(f"{key} FP32, {label}", converted(onnx_path, pooling, split_mib), reference)
            if args.int8:
                for label, ir in (
                    ("INT8 quantized from the f32 form", convert_onnx(onnx_path)),
                    (
                        "INT8 quantized from the for_int8 form (export)",
                        convert_onnx(onnx_path, for_int8=True),
                    ),
                ):
                    add(f"{key} {label}", quantize(ir, calibration_clips(clips), len(clips)), None)

    time_round_robin(timers, warmup=3, runs=args.rounds, min_seconds=0)
    finish_environment(env, args.threads)
    rows = [[t.label, f"{t.summary()['median']:.2f}", f"{t.summary()['min']:.2f}"] for t in timers]
    print(f"\n{environment_text(env)}\nbatch 1, {'x'.join(map(str, SHAPE))}, {args.rounds} rounds:\n")
    print(markdown_table(["Variant", "Median ms", "Min ms"], rows, "lrr"))
    print("command:", command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
