"""The backbones' convolution fast path (action_rec.models.conv): the same outputs and gradients as
PyTorch's plain Conv3d / AvgPool3d on every shape it rewrites, and untouched exported graphs."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from action_rec.models import build_model
from action_rec.models.conv import SameConv3d, TemporalAvgPool3d, depthwise_input_grad, use_plain_layers
from action_rec.templates import load_template

torch.set_num_threads(1)

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "model_templates" / "custom-action-recognition"

# (input N x C x T x H x W, kernel, stride, groups): maps smaller than the kernel (taps dropped), one
# frame under a temporal kernel, 1 x k x k and k x 1 x 1 kernels (run as 2D), depthwise t x k x k ones
# over small maps (one 2D conv per temporal tap) and larger ones (3D, the input gradient by forward
# convolutions per phase of the stride), strided and dense ones.
CASES = [
    ((2, 12, 1, 2, 2), (1, 5, 5), (1, 1, 1), 12),
    ((2, 12, 1, 1, 1), (1, 3, 3), (1, 1, 1), 12),
    ((2, 12, 3, 4, 4), (1, 5, 5), (1, 2, 2), 12),
    ((2, 12, 4, 3, 5), (1, 3, 3), (1, 1, 1), 12),
    ((2, 12, 1, 2, 2), (3, 1, 1), (1, 1, 1), 1),
    ((2, 12, 2, 3, 3), (5, 1, 1), (1, 1, 1), 1),
    ((2, 12, 4, 3, 3), (3, 1, 1), (2, 1, 1), 1),
    ((2, 12, 1, 2, 2), (5, 5, 5), (2, 1, 1), 12),
    ((2, 12, 2, 4, 4), (3, 5, 5), (2, 2, 2), 12),
    ((2, 12, 4, 6, 6), (3, 3, 3), (1, 1, 1), 4),
    ((2, 12, 4, 8, 8), (3, 3, 3), (1, 1, 1), 12),
    ((2, 12, 3, 5, 5), (5, 3, 3), (2, 1, 1), 12),
    ((2, 12, 5, 4, 4), (3, 5, 5), (2, 2, 2), 12),
    ((2, 12, 4, 12, 12), (3, 3, 3), (1, 1, 1), 12),
    ((2, 12, 4, 12, 12), (3, 3, 3), (1, 2, 2), 12),
    ((2, 12, 3, 11, 9), (3, 5, 5), (1, 2, 2), 12),
    ((2, 12, 5, 9, 10), (3, 3, 3), (2, 2, 2), 12),
    ((2, 12, 4, 6, 6), (1, 1, 1), (1, 1, 1), 1),
]


def plain_and_fast(kernel, stride, groups, bias):
    padding = tuple(k // 2 for k in kernel)
    plain = nn.Conv3d(12, 12, kernel, stride, padding, groups=groups, bias=bias)
    fast = SameConv3d(12, 12, kernel, stride, padding, groups=groups, bias=bias)
    fast.load_state_dict(plain.state_dict())
    return plain, fast


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("shape,kernel,stride,groups", CASES)
def test_same_output_and_gradients_as_conv3d(shape, kernel, stride, groups, channels_last):
    torch.manual_seed(0)
    plain, fast = plain_and_fast(kernel, stride, groups, bias=True)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    plain.to(memory_format=fmt)
    fast.to(memory_format=fmt)
    x = torch.randn(shape).contiguous(memory_format=fmt)
    x_plain, x_fast = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_plain, y_fast = plain(x_plain), fast(x_fast)
    assert y_fast.shape == y_plain.shape
    torch.testing.assert_close(y_fast, y_plain, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y_plain)
    y_plain.backward(g)
    y_fast.backward(g)
    torch.testing.assert_close(x_fast.grad, x_plain.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-5)
    if channels_last:  # the next layer stays on the fast path
        assert y_fast.is_contiguous(memory_format=torch.channels_last_3d)


# (input T x H x W, kernel, stride, padding): "same" and other paddings, strides 1-3, kernels with
# fewer taps than the stride (phases that no tap reaches), maps smaller than a stride.
INPUT_GRAD_CASES = [
    ((4, 14, 14), (3, 3, 3), (1, 1, 1), (1, 1, 1)),
    ((4, 28, 28), (3, 3, 3), (1, 2, 2), (1, 1, 1)),
    ((4, 14, 13), (3, 5, 5), (1, 2, 2), (1, 2, 2)),
    ((5, 7, 8), (5, 3, 3), (2, 3, 2), (2, 1, 0)),
    ((3, 9, 9), (1, 1, 3), (1, 2, 3), (0, 0, 1)),
    ((2, 1, 6), (3, 1, 5), (2, 2, 2), (1, 0, 1)),
]


@pytest.mark.parametrize("size,kernel,stride,padding", INPUT_GRAD_CASES)
def test_depthwise_input_gradient_matches_pytorch(size, kernel, stride, padding):
    torch.manual_seed(0)
    x = torch.randn(2, 5, *size).contiguous(memory_format=torch.channels_last_3d)
    weight = torch.randn(5, 1, *kernel)
    y = torch.nn.functional.conv3d(x, weight, None, stride, padding, 1, 5)
    grad = torch.randn_like(y).contiguous(memory_format=torch.channels_last_3d)
    expected = torch.ops.aten.convolution_backward(
        grad, x, weight, None, stride, padding, (1, 1, 1), False, (0, 0, 0), 5, (True, False, False)
    )[0]
    got = depthwise_input_grad(grad, weight, x.shape, stride, padding)
    assert got.shape == x.shape
    assert got.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_depthwise_gradients_when_only_one_side_needs_them():
    """A frozen kernel still passes the input gradient back, and a frozen input still trains the kernel."""
    plain, fast = plain_and_fast((3, 3, 3), (1, 2, 2), 12, bias=False)
    x = torch.randn(2, 12, 4, 12, 12).contiguous(memory_format=torch.channels_last_3d)
    fast.weight.requires_grad_(False)
    x_fast, x_plain = x.clone().requires_grad_(), x.clone().requires_grad_()
    fast(x_fast).square().sum().backward()
    plain(x_plain).square().sum().backward()
    torch.testing.assert_close(x_fast.grad, x_plain.grad, rtol=1e-5, atol=1e-5)
    fast.weight.requires_grad_(True)
    plain.weight.grad = None
    fast(x).square().sum().backward()
    plain(x).square().sum().backward()
    torch.testing.assert_close(fast.weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-4)


def test_taps_that_only_see_padding_get_no_gradient():
    """A 5 x 5 kernel over a 2 x 2 map: only its central 3 x 3 taps ever touch the input."""
    _, fast = plain_and_fast((1, 5, 5), (1, 1, 1), 12, bias=False)
    fast(torch.randn(2, 12, 1, 2, 2)).square().sum().backward()
    grad = fast.weight.grad[:, 0, 0]
    assert grad[:, 1:4, 1:4].abs().sum() > 0
    outer = grad.clone()
    outer[:, 1:4, 1:4] = 0
    assert outer.abs().sum() == 0


def test_temporal_pool_keeps_channels_last_and_averages_frame_pairs():
    x = torch.randn(2, 8, 4, 3, 3).contiguous(memory_format=torch.channels_last_3d)
    y = TemporalAvgPool3d(2)(x)
    assert y.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(y, (x[:, :, 0::2] + x[:, :, 1::2]) / 2)


@pytest.mark.parametrize("name", ["s3d-rgb-mobilenet-v3", "x3d-rgb-mobilenet-v3-lgd-gc"])
def test_backbone_on_small_clips_matches_plain_layers(name):
    """The whole network on the quick start's clip (4 frames of 64 x 64: 1-frame, 2 x 2 maps at the end)."""
    torch.manual_seed(0)
    model = build_model(load_template(TEMPLATE_DIR / name / "template.yaml"), num_classes=5).eval()
    plain = build_model(load_template(TEMPLATE_DIR / name / "template.yaml"), num_classes=5).eval()
    plain.load_state_dict(model.state_dict())
    use_plain_layers(plain)
    x = torch.randn(2, 3, 4, 64, 64).contiguous(memory_format=torch.channels_last_3d)
    model.to(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dynamo", [False, True])
def test_onnx_export_keeps_the_whole_kernel(dynamo, tmp_path):
    """Traced on a 2 x 2 map, the exported Conv still has its 5 x 5 kernel (the graph is not specialised)."""
    _, fast = plain_and_fast((1, 5, 5), (1, 1, 1), 12, bias=False)
    path = tmp_path / "conv.onnx"
    torch.onnx.export(fast.eval(), (torch.randn(1, 12, 1, 2, 2),), str(path), dynamo=dynamo)
    convs = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    assert len(convs) == 1
    kernel = next(a for a in convs[0].attribute if a.name == "kernel_shape")
    assert list(kernel.ints) == [1, 5, 5]
