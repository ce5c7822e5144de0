"""The IR rewrites of export (openvino_ir.py): attention pooling, per-frame chains, the forms INT8
keeps; each keeps the model's output."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
import torch
from export_checkpoints import NAMES, TEMPLATES, tiny_template

from action_rec.models import build_model
from action_rec.runtime.openvino_core import shared_core


def test_attention_pooling_rewrite_keeps_the_output(tmp_path, checkpoints):
    """X3D's global-context pooling (a MatMul over positions flattened from `N C T H W`) becomes a
    MatMul over the channels-last view in the IR, which the CPU plugin reads without a reorder; the
    output does not change."""
    from action_rec.export.onnx_export import export_onnx
    from action_rec.export.openvino_ir import convert_onnx

    arch = "x3d-rgb-mobilenet-v3-lgd-gc"
    model = build_model(tiny_template(arch), num_classes=len(NAMES)).eval()
    model.load_state_dict(torch.load(checkpoints[arch], weights_only=True)["state_dict"])
    onnx_path = export_onnx(model, tmp_path / "x3d.onnx", (1, 3, 4, 32, 32))
    plain, rewritten = ov.convert_model(str(onnx_path)), convert_onnx(onnx_path)

    def pooling_kinds(m: ov.Model) -> list[tuple[str, str]]:
        """(first input, second input's producer chain) of each MatMul."""
        kinds = []
        for op in m.get_ordered_ops():
            if op.get_type_name() == "MatMul":
                a, b = (op.input_value(i).get_node() for i in (0, 1))
                below = b.input_value(0).get_node().get_type_name() if b.get_input_size() else ""
                kinds.append((a.get_type_name(), f"{b.get_type_name()}<-{below}"))
        return kinds

    before, after = pooling_kinds(plain), pooling_kinds(rewritten)
    assert len(before) == len(after) == 15  # 14 pooling modules and the classifier
    assert sum(k == ("Softmax", "Reshape<-Transpose") for k in after) == 14
    assert not any(k[0] == "Softmax" for k in before)
    core, x = shared_core(), np.random.default_rng(0).standard_normal((1, 3, 4, 32, 32)).astype(np.float32)
    outputs = [
        core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0] for m in (plain, rewritten)
    ]
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-6)


def test_int8_model_keeps_the_quantizable_forms(tmp_path, checkpoints):
    """The model handed to NNCF keeps the multiply + sum pooling and the unsplit chains (the forms
    the INT8 network runs fastest in); the f32 one gets the MatMul pooling."""
    from action_rec.export.onnx_export import export_onnx
    from action_rec.export.openvino_ir import convert_onnx

    arch = "x3d-rgb-mobilenet-v3-lgd-gc"
    model = build_model(tiny_template(arch), num_classes=len(NAMES)).eval()
    onnx_path = export_onnx(model, tmp_path / "x3d.onnx", (1, 3, 4, 32, 32))
    counts = [
        {
            kind: sum(op.get_type_name() == kind for op in m.get_ordered_ops())
            for kind in ("MatMul", "ReduceSum")
        }
        for m in (convert_onnx(onnx_path), convert_onnx(onnx_path, for_int8=True))
    ]
    assert counts == [{"MatMul": 15, "ReduceSum": 0}, {"MatMul": 1, "ReduceSum": 14}]


def _conv_ops(model: ov.Model) -> list[str]:
    return [op.get_type_name() for op in model.get_ordered_ops() if "Convolution" in op.get_type_name()]


def test_per_frame_chains_split_along_time_keep_the_output(tmp_path, checkpoints):
    """S3D's expansion + spatial depthwise chains run frame by frame after the rewrite (more
    convolutions, a Concat per chain), with the same output; a temporal convolution is never split."""
    from action_rec.export.onnx_export import export_onnx
    from action_rec.export.openvino_ir import split_per_frame_chains

    arch = "s3d-rgb-mobilenet-v3"
    model = build_model(tiny_template(arch), num_classes=len(NAMES)).eval()
    model.load_state_dict(torch.load(checkpoints[arch], weights_only=True)["state_dict"])
    onnx_path = export_onnx(model, tmp_path / "s3d.onnx", (1, 3, 4, 32, 32))
    plain, split = ov.convert_model(str(onnx_path)), ov.convert_model(str(onnx_path))
    assert split_per_frame_chains(split, min_bytes=2**40) == 0  # nothing that large at 4 x 32 x 32
    chains = split_per_frame_chains(split, min_bytes=0)
    # Blocks with an expansion and no squeeze-excite branch: 1x1x1 conv, act, 1xkxk depthwise, act.
    assert chains >= 3
    temporal = [
        op
        for op in split.get_ordered_ops()
        if op.get_type_name() == "Convolution" and op.input_value(1).get_shape()[2] > 1
    ]
    assert len(temporal) == sum(
        1
        for op in plain.get_ordered_ops()
        if op.get_type_name() == "Convolution" and op.input_value(1).get_shape()[2] > 1
    )
    assert len(_conv_ops(split)) > len(_conv_ops(plain))
    core, x = shared_core(), np.random.default_rng(0).standard_normal((1, 3, 4, 32, 32)).astype(np.float32)
    outputs = [
        core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0] for m in (plain, split)
    ]
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-6)


@pytest.mark.parametrize("arch, chains", [("s3d-rgb-mobilenet-v3", 1), ("x3d-rgb-mobilenet-v3-lgd-gc", 0)])
def test_only_the_large_112px_expansion_is_split_at_full_size(tmp_path, arch, chains):
    """At 16 x 224 x 224 the default threshold picks S3D's second block (64 channels at 112 x 112, 51 MB)
    and nothing in X3D, whose depthwise convolutions mix frames."""
    from action_rec.export.onnx_export import export_onnx
    from action_rec.export.openvino_ir import split_per_frame_chains

    model = build_model(TEMPLATES / arch / "template.yaml", num_classes=len(NAMES)).eval()
    ir = ov.convert_model(str(export_onnx(model, tmp_path / "m.onnx", (1, 3, 16, 224, 224))))
    assert split_per_frame_chains(ir) == chains
    concats = [op for op in ir.get_ordered_ops() if op.get_type_name() == "Concat"]
    assert [op.get_friendly_name() for op in concats if op.get_input_size() == 16] == (
        ["/backbone/features.2/conv/conv.6/Relu"] if chains else []
    )
