"""ONNX -> OpenVINO IR: conversion, input format (PrePostProcessor), FP16 compression, compilation.

OpenVINO's PrePostProcessor handles 5D inputs: the `bgr8` format declares the tensor as u8 `NDHWC`
(OpenVINO's name for the time axis is D, "depth") with BGR colour, and the model side as `NCDHW`;
PPP inserts convert-to-float, BGR->RGB, mean/scale and the transpose into the IR. Resizing and
cropping stay with the client: in a sliding window each frame is part of T / stride clips, so
resizing it once when it arrives is cheaper than resizing the whole clip inside every inference.

One graph rewrite makes the X3D model about twice as fast on CPU: its global-context attention
pooling is written for PyTorch as a matrix product over flattened positions, `reshape(x, N x C x THW)
@ softmax(keys)^T`. In OpenVINO the reshape of the full-resolution feature map forces a reorder out of
the CPU plugin's blocked channel layout (about half the X3D inference time). The same sum written as
`reduce_sum(x * reshape(softmax(keys), N x 1 x T x H x W), over T, H, W)` keeps the layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.preprocess import ColorFormat, PrePostProcessor

from action_rec.export.metadata import INPUT_FORMATS

__all__ = [
    "convert_onnx",
    "rewrite_attention_pooling",
    "add_input_format",
    "save_ir",
    "compile_ir",
    "cpu_config",
]


def convert_onnx(onnx_path: str | Path) -> ov.Model:
    """Read an ONNX file into an OpenVINO model (FP32, input expects normalized RGB), with the
    attention-pooling rewrite applied."""
    model = ov.convert_model(str(onnx_path))
    rewrite_attention_pooling(model)
    return model


def _static_shape(output: ov.Output) -> list[int] | None:
    shape = output.get_partial_shape()
    return [d.get_length() for d in shape] if shape.is_static else None


def rewrite_attention_pooling(model: ov.Model) -> int:
    """Rewrite `MatMul(Reshape(x: N C T H W -> N C P), Softmax(keys: N 1 P), transpose_b)` into
    `Reshape(ReduceSum(x * Reshape(Softmax, N 1 T H W), axes T H W), N C 1)` in place; returns how many
    were rewritten. Anything not exactly of that form is left alone (export verifies the result)."""
    count = 0
    for node in model.get_ordered_ops():
        if node.get_type_name() != "MatMul":
            continue
        attrs = node.get_attributes()
        if attrs.get("transpose_a") or not attrs.get("transpose_b"):
            continue
        flat, weights = node.input_value(0), node.input_value(1)
        if flat.get_node().get_type_name() != "Reshape" or weights.get_node().get_type_name() != "Softmax":
            continue
        x = flat.get_node().input_value(0)
        x_shape, flat_shape, w_shape = _static_shape(x), _static_shape(flat), _static_shape(weights)
        if x_shape is None or flat_shape is None or w_shape is None or len(x_shape) != 5:
            continue
        n, c, positions = x_shape[0], x_shape[1], int(np.prod(x_shape[2:]))
        if (
            flat_shape != [n, c, positions]
            or w_shape != [n, 1, positions]
            or _static_shape(node.output(0)) != [n, c, 1]
        ):
            continue
        if weights.get_node().get_attributes().get("axis") not in (-1, 2):
            continue
        w5 = ops.reshape(weights, ops.constant(np.array([n, 1, *x_shape[2:]], np.int64)), special_zero=False)
        pooled = ops.reduce_sum(
            ops.multiply(x, w5), ops.constant(np.array([2, 3, 4], np.int64)), keep_dims=False
        )
        out = ops.reshape(pooled, ops.constant(np.array([n, c, 1], np.int64)), special_zero=False)
        out.set_friendly_name(node.get_friendly_name())
        node.output(0).replace(out.output(0))
        count += 1
    if count:
        model.validate_nodes_and_infer_types()
    return count


def add_input_format(model: ov.Model, input_format: str, mean: list[float], std: list[float]) -> ov.Model:
    """Make `model` (normalized RGB N C T H W in) take `input_format` instead; returns a new model."""
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"unknown input format '{input_format}', expected one of {', '.join(INPUT_FORMATS)}")
    model = model.clone()
    if input_format == "normalized":
        return model
    ppp = PrePostProcessor(model)
    tensor, steps = ppp.input().tensor(), ppp.input().preprocess()
    ppp.input().model().set_layout(ov.Layout("NCDHW"))
    if input_format == "bgr8":
        tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NDHWC")).set_color_format(ColorFormat.BGR)
        steps.convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB)
    else:
        tensor.set_layout(ov.Layout("NCDHW"))
    steps.mean([float(m) for m in mean]).scale([float(s) for s in std])
    return ppp.build()


def save_ir(model: ov.Model, xml_path: str | Path, fp16: bool = False) -> Path:
    """Write `model.xml` + `model.bin`; `fp16` stores the weights in half precision."""
    ov.save_model(model, str(xml_path), compress_to_fp16=fp16)
    return Path(xml_path)


def cpu_config(threads: int = 0, precision: str = "f32", streams: int = 1) -> dict[str, Any]:
    """CPU plugin settings for one live stream: latency mode, one stream, `threads` (0: all cores).

    `precision` is the execution precision: "f32" by default because the CPU plugin otherwise runs in
    bf16 on CPUs that have it (and always executes FP16 IRs in f32 or bf16, never f16); the accuracy
    that export verified is the f32 one.
    """
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": str(streams)}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    return config


def compile_ir(
    model: ov.Model | str | Path,
    device: str = "CPU",
    *,
    threads: int = 0,
    precision: str = "f32",
    core: ov.Core | None = None,
) -> ov.CompiledModel:
    """Compile an IR (path or in-memory model) for low-latency single-clip inference."""
    core = core or ov.Core()
    config = cpu_config(threads, precision) if device.upper().startswith("CPU") else {}
    if not isinstance(model, ov.Model):
        model = core.read_model(str(model))
    return core.compile_model(model, device, config)
