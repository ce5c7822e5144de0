#!/usr/bin/env python3
"""What each of `convert_onnx`'s CPU rewrites is worth: the same ONNX file converted with and without
them, timed side by side in one process (OpenVINO CPU, f32, batch 1, 1 x 3 x 16 x 224 x 224).

    venv/bin/python bench/export_rewrites.py            # FP32 variants, about 1 min on 2 cores
    venv/bin/python bench/export_rewrites.py --int8     # also the INT8 forms (NNCF), about 4 min

- X3D attention pooling: as PyTorch wrote it (a MatMul over positions flattened from N C T H W), as a
  multiply + reduce-sum, and as a MatMul over the channels-last view (what `convert_onnx` does).
- S3D per-frame chains split along time at several size thresholds (16 MiB is `convert_onnx`'s).
- With --int8: each model quantized from the f32 form and from `convert_onnx(..., for_int8=True)`.

Weights are random, with BatchNorm statistics gathered on synthetic clips as in export_latency.py (so
every convolution gets the bias a trained one has, and INT8 is calibrated on those clips). Every FP32
variant's output is checked against PyTorch's before timing. Timing is peers.py's: rounds over all variants, so that load
from other processes hits all alike.
"""

from __future__ import annotations

import argparse
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
from action_rec.export.openvino_ir import (  # noqa: E402
    compile_ir,
    convert_onnx,
    rewrite_attention_pooling,
    split_per_frame_chains,
)
from action_rec.templates import load_template  # noqa: E402

TEMPLATES = ROOT / "model_templates" / "custom-action-recognition"
SHAPE = (1, 3, 16, 224, 224)


def converted(onnx_path: Path, pooling: str | None, split_mib: float | None) -> ov.Model:
    """The ONNX file read by OpenVINO, then the given rewrites (None: that rewrite left out)."""
    model = ov.convert_model(str(onnx_path))
    if pooling is not None:
        rewrite_attention_pooling(model, pooling)
    if split_mib is not None:
        split_per_frame_chains(model, int(split_mib * 2**20))
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--int8", action="store_true", help="also time the INT8 forms (slow: calibration)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    core = ov.Core()
    timers = []

    def add(label: str, model: ov.Model, reference: np.ndarray | None) -> None:
        request = compile_ir(model, threads=args.threads, core=core).create_infer_request()
        request.set_input_tensor(ov.Tensor(x.numpy()))
        request.infer()
        if reference is not None:
            diff = float(np.abs(request.get_output_tensor().data - reference).max())
            if diff > 1e-4:
                raise RuntimeError(f"{label}: output differs from PyTorch's by {diff:.2e}")
        timers.append(Timer(label, request.infer))

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
        for key, name, variants in (
            ("x3d", "x3d-rgb-mobilenet-v3-lgd-gc", [
                ("pooling as written (MatMul over N C THW)", None, None),
                ("pooling as multiply + reduce-sum", "sum", None),
                ("pooling as MatMul over channels-last (convert_onnx)", "matmul", 16),
            ]),
            ("s3d", "s3d-rgb-mobilenet-v3", [
                ("no frame split", "matmul", None),
                ("frame split >= 16 MiB (convert_onnx)", "matmul", 16),
                ("frame split >= 4 MiB", "matmul", 4),
                ("frame split >= 1 MiB", "matmul", 1),
            ]),
        ):  # fmt: skip
            template = load_template(TEMPLATES / name / "template.yaml")
            clips = RawFrameDataset(["val.txt"], [data], template, "val")
            model = calibrated_model(template, torch.utils.data.DataLoader(clips, batch_size=4))
            with torch.inference_mode():
                reference = model(x).numpy()
            onnx_path = export_onnx(model, Path(tmp) / f"{key}.onnx", SHAPE)
            for label, pooling, split_mib in variants:
                ir = converted(onnx_path, pooling, split_mib)
                add(f"{key} FP32, {label}", ir, reference)
            if args.int8:
                from action_rec.export.quantize import quantize_int8

                for label, ir in (
                    ("INT8 quantized from the f32 form", convert_onnx(onnx_path)),
                    (
                        "INT8 quantized from the for_int8 form (export)",
                        convert_onnx(onnx_path, for_int8=True),
                    ),
                ):
                    calib = (clips[i][0] for i in range(len(clips)))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        add(f"{key} {label}", quantize_int8(ir, calib, len(clips)), None)

    time_round_robin(timers, warmup=3, runs=args.rounds, min_seconds=0)
    print(
        f"\nOpenVINO {ov.__version__}, {args.threads} threads, f32, median (min) over {args.rounds} rounds:"
    )
    for timer in timers:
        print(f"  {timer.label:62s} {np.median(timer.times_ms):7.2f} ms ({min(timer.times_ms):.2f})")
    command = ["venv/bin/python", "bench/export_rewrites.py", *(sys.argv[1:] if argv is None else argv)]
    print("command:", shlex.join(command))


if __name__ == "__main__":
    main()
