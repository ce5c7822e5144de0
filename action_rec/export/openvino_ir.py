"""ONNX -> OpenVINO IR: conversion, input format (PrePostProcessor), FP16 compression (compiling is
`action_rec.runtime.compile`'s).

OpenVINO's PrePostProcessor handles 5D inputs: the `bgr8` format declares the tensor as u8 `NDHWC`
(OpenVINO's name for the time axis is D, "depth") with BGR colour, and the model side as `NCDHW`;
PPP inserts convert-to-float, BGR->RGB, mean/scale and the transpose into the IR. Resizing and
cropping stay with the client: in a sliding window each frame is part of T / stride clips, so
resizing it once when it arrives is cheaper than resizing the whole clip inside every inference.

One graph rewrite makes the X3D model faster on CPU: its global-context attention pooling is written
for PyTorch as a matrix product over flattened positions, `reshape(x, N x C x THW) @ softmax(keys)^T`.
The CPU plugin keeps feature maps channels-last (`N T H W C` in memory); flattening the `N C T H W`
view forces a full-tensor reorder before every pooling (over a quarter of the X3D inference). The same
product written over the channels-last view, `softmax(keys) @ reshape(transpose(x, N T H W C),
N x THW x C)`, reads the tensor where it lies: the transpose costs nothing. (A multiply + reduce-sum
over T, H, W also avoids the reorder but is 8 % slower end to end in f32. It is the form to quantize,
though: beside a MatMul, NNCF leaves the convolutions that share its input in f32, which makes the
INT8 X3D over a third slower: `convert_onnx(..., for_int8=True)`.)

A second rewrite helps the S3D model: where a chain of per-frame operations (convolutions with a
temporal kernel of 1, activations, constant biases) writes a large feature map, such as the
112 x 112 x 64 expansion of S3D's second block (51 MB for 16 frames), every node streams it through
memory. Split along time, one frame at a time, the same chain works on 3 MB that stays in the cache
from one node to the next: about 10 % off the whole S3D inference in f32. The INT8 network runs
those nodes on a quarter of the bytes and gets slower from the split (5 %), so the model to quantize
is converted without it. `python -m bench.export_rewrites --int8` measures every one of these choices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.preprocess import ColorFormat, PrePostProcessor

from action_rec.runtime.metadata import INPUT_FORMATS

__all__ = [
    "RewriteMismatch",
    "convert_onnx",
    "rewrite_attention_pooling",
    "split_per_frame_chains",
    "add_input_format",
    "save_ir",
]


class RewriteMismatch(RuntimeError):
    """A graph rewrite matched fewer places than the network has: the exporter's graph changed and the
    speed-up would be lost without a word."""


def convert_onnx(
    onnx_path: str | Path, for_int8: bool = False, attention_poolings: int | None = None
) -> ov.Model:
    """Read an ONNX file into an OpenVINO model (FP32, input expects normalized RGB), rewritten for
    CPU speed: the form that runs fastest in f32, or with `for_int8` the form to quantize (see the
    module docstring). `attention_poolings`: how many attention poolings the network has (X3D: 14);
    the rewrite must match exactly that many, else RewriteMismatch. What each rewrite matched is kept
    in the model's rt_info under `action_rec_rewrites`."""
    model = ov.convert_model(str(onnx_path))
    pooled = rewrite_attention_pooling(model, "sum" if for_int8 else "matmul")
    if attention_poolings is not None and pooled != attention_poolings:
        raise RewriteMismatch(
            f"{onnx_path}: the attention-pooling rewrite matched {pooled} of the network's "
            f"{attention_poolings} poolings; the ONNX graph no longer has the expected form"
        )
    split = 0 if for_int8 else split_per_frame_chains(model)
    model.set_rt_info(str(pooled), ["action_rec_rewrites", "attention_pooling"])
    model.set_rt_info(str(split), ["action_rec_rewrites", "frame_split_chains"])
    return model


def _static_shape(output: ov.Output) -> list[int] | None:
    shape = output.get_partial_shape()
    return [d.get_length() for d in shape] if shape.is_static else None


def rewrite_attention_pooling(model: ov.Model, form: str = "matmul") -> int:
    """Rewrite `MatMul(Reshape(x: N C T H W -> N C P), Softmax(keys: N 1 P), transpose_b)` in place
    into `Reshape(MatMul(Softmax, Reshape(Transpose(x, N T H W C), N P C)), N C 1)` ("matmul") or
    `Reshape(ReduceSum(x * Reshape(Softmax, N 1 T H W), axes T H W), N C 1)` ("sum"); returns how many
    were rewritten. Anything not exactly of that form is left alone (export verifies the result)."""
    if form not in ("matmul", "sum"):
        raise ValueError(f"unknown attention pooling form {form!r}, expected 'matmul' or 'sum'")
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
        if form == "matmul":
            channels_last = ops.transpose(x, ops.constant(np.array([0, 2, 3, 4, 1], np.int64)))
            rows = ops.reshape(channels_last, ops.constant(np.array([n, positions, c], np.int64)), False)
            pooled = ops.matmul(weights, rows, transpose_a=False, transpose_b=False)  # N x 1 x C
        else:
            w5 = ops.reshape(weights, ops.constant(np.array([n, 1, *x_shape[2:]], np.int64)), False)
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


_UNARY = {
    "Relu": lambda x, a: ops.relu(x),
    "HSwish": lambda x, a: ops.hswish(x),
    "HSigmoid": lambda x, a: ops.hsigmoid(x),
    "Sigmoid": lambda x, a: ops.sigmoid(x),
    "Clamp": lambda x, a: ops.clamp(x, a["min"], a["max"]),
}
_BINARY = {"Add": ops.add, "Multiply": ops.multiply}


def _is_constant(output: ov.Output) -> bool:
    return output.get_node().get_type_name() == "Constant"


def _per_frame_input(node: ov.Node) -> int | None:
    """Index of the input `node` maps frame by frame (each output frame from the same input frame
    alone), or None where it mixes frames or is not an operation this rewrite can rebuild."""
    kind, attrs = node.get_type_name(), node.get_attributes()
    if node.get_output_size() != 1 or len(node.get_output_partial_shape(0)) != 5:
        return None
    if kind in ("Convolution", "GroupConvolution"):
        weights = _static_shape(node.input_value(1))
        if (
            weights is None
            or not _is_constant(node.input_value(1))
            or weights[-3] != 1
            or attrs["strides"][0] != 1
            or attrs["pads_begin"][0] != 0
            or attrs["pads_end"][0] != 0
            or attrs["auto_pad"] != "explicit"
        ):
            return None
        return 0
    if kind in _UNARY:
        return 0
    if kind in _BINARY and attrs.get("auto_broadcast", "numpy") == "numpy":
        for data, other in ((0, 1), (1, 0)):
            shape = _static_shape(node.input_value(other))
            if _is_constant(node.input_value(other)) and shape is not None:
                if len(shape) < 3 or shape[len(shape) - 3] == 1:  # constant along time
                    return data
    return None


def _own_constant(output: ov.Output) -> ov.Output:
    """A new Constant with the same value: the CPU plugin fuses a bias into its convolution only where
    the bias constant is not shared with other nodes."""
    return ops.constant(output.get_node().get_data().copy()).output(0)


def _rebuild(node: ov.Node, data: ov.Output, frame: int) -> ov.Output:
    """A copy of per-frame `node` that reads `data` instead of its own input (constants copied),
    named after it with a `/frame<i>` suffix so that profiles still say which layer it is."""
    kind, attrs = node.get_type_name(), node.get_attributes()
    if kind in ("Convolution", "GroupConvolution"):
        build = ops.convolution if kind == "Convolution" else ops.group_convolution
        conv_args = (attrs["strides"], attrs["pads_begin"], attrs["pads_end"], attrs["dilations"])
        copy = build(data, _own_constant(node.input_value(1)), *conv_args)
    elif kind in _UNARY:
        copy = _UNARY[kind](data, attrs)
    else:
        index = _per_frame_input(node)
        other = _own_constant(node.input_value(1 - index))
        copy = _BINARY[kind](*((data, other) if index == 0 else (other, data)))
    copy.set_friendly_name(f"{node.get_friendly_name()}/frame{frame}")
    return copy.output(0)


def split_per_frame_chains(model: ov.Model, min_bytes: int = 16 * 2**20) -> int:
    """Run each chain of per-frame nodes (two convolutions or more, only the last one's output used
    elsewhere) whose largest f32 output has at least `min_bytes` one frame at a time:
    `Concat(chain(frame) for frame in Split(input, time))`. Returns how many chains were split."""
    in_chain: set[str] = set()
    chains = []
    for node in model.get_ordered_ops():
        if node.get_name() in in_chain or node.get_type_name() not in (
            "Convolution",
            "GroupConvolution",
        ):
            continue
        if _per_frame_input(node) is None:
            continue
        chain = [node]
        while True:
            consumers = list(chain[-1].output(0).get_target_inputs())
            if len(consumers) != 1:
                break
            nxt = consumers[0].get_node()
            if _per_frame_input(nxt) != consumers[0].get_index():
                break
            chain.append(nxt)
        in_chain.update(n.get_name() for n in chain)
        convs = sum(n.get_type_name() in ("Convolution", "GroupConvolution") for n in chain)
        sizes = [_static_shape(n.output(0)) for n in chain]
        frames = sizes[0][2] if sizes[0] else 1
        if (
            convs >= 2
            and frames > 1
            and None not in sizes
            and max(4 * int(np.prod(s)) for s in sizes) >= min_bytes
        ):
            chains.append((chain, frames))
    for chain, frames in chains:
        source = chain[0].input_value(0)
        outputs = []
        split = ops.split(source, ops.constant(np.int64(2)), frames)
        for i in range(frames):
            x = split.output(i)
            for node in chain:
                x = _rebuild(node, x, i)
            outputs.append(x)
        joined = ops.concat(outputs, 2)
        joined.set_friendly_name(chain[-1].get_friendly_name())
        chain[-1].output(0).replace(joined.output(0))
    if chains:
        model.validate_nodes_and_infer_types()
    return len(chains)


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
