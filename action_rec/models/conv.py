"""The backbones' 3D convolution, computed the way a CPU runs it fastest, with the same result.

Exact rewrites, applied per call from the input's shape:

- **Taps that only ever see padding are dropped.** With "same" padding, a ``k``-tap axis over an input
  of ``n < (k + 1) / 2`` positions (stride 1), or of one position (any stride), only touches the input
  with its central ``2n - 1`` taps; the rest multiply zeros. Small clips make such maps: at 64 x 64 x 4
  frames, S3D's last blocks run 5 x 5 depthwise kernels over 2 x 2 maps and 3-tap temporal kernels
  over one frame. The gradient of a dropped tap is zero, as it is without the rewrite.
- **A ``1 x k x k`` or ``k x 1 x 1`` kernel runs as a 2D convolution** (time folded into the batch, or
  height and width folded into one axis) on channels-last CPU tensors, where it is a free view:
  oneDNN's 2D kernels are 2-6x faster than its 3D ones for these shapes (forward and backward,
  measured on 2 cores).
- **A depthwise ``t x k x k`` kernel over small maps (at most 8 x 8) runs as ``t`` 2D convolutions**, one
  per temporal tap, summed over the frames each tap reads. There oneDNN's 3D depthwise kernel is
  slowest: alone, X3D's 5 x 5 x 5 one over 2 x 4 x 4 maps (batch 8) took 38 ms forward and backward,
  2.9 ms this way (in the whole X3D training step the gain is smaller: 223 -> 213 ms); on larger maps
  the 3D kernel is as fast or faster, and is kept.
- **The input gradient of a depthwise 3D kernel is computed by forward convolutions** (one per phase of
  the stride, with that phase's taps flipped), the weight gradient by oneDNN as before: oneDNN's
  backward-data kernel for 3D depthwise convolutions is the slow one. X3D's training in batches of 64
  clips of 4 x 56 x 56 (``tools/quickstart.py --recordings 40 --model x3d``, its first 3 epochs, two
  runs each way on a 2-core AMD EPYC) went from 100-110 to 111-119 clips/s.

``python -m bench.train_throughput --size 64 --clip-len 4 --baseline`` times a training step both ways.

Tracing and ONNX export take the plain ``nn.Conv3d`` path, so exported graphs are unchanged.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = ["SameConv3d", "TemporalAvgPool3d", "use_plain_layers"]


# Maps of at most this many pixels (8 x 8) take the per-tap path of depthwise t x k x k kernels.
SMALL_MAP = 64


def _exporting() -> bool:
    return torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()


def _reach(kernel: int, stride: int, padding: int, size: int) -> int | None:
    """How many taps either side of the centre can touch an input of ``size`` positions, or ``None``
    when every tap can (or the padding is not "same")."""
    if kernel == 1 or kernel % 2 == 0 or padding != kernel // 2:
        return None
    if size == 1:
        return 0
    if stride == 1 and 2 * size - 1 < kernel:
        return size - 1
    return None


class SameConv3d(nn.Conv3d):
    """``nn.Conv3d`` ("same" padding, odd kernels) whose forward drops the taps that only see padding and
    runs ``1 x k x k`` / ``k x 1 x 1`` kernels, and depthwise ones over small maps tap by tap, as 2D
    convolutions on channels-last CPU tensors. The
    parameters, the state-dict and the result are those of ``nn.Conv3d`` (up to float rounding)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _exporting() or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super().forward(x)
        weight, padding = self.weight, list(self.padding)
        taps: list[slice] = [slice(None), slice(None)]
        for axis in range(3):
            reach = _reach(self.kernel_size[axis], self.stride[axis], self.padding[axis], x.shape[2 + axis])
            if reach is None:
                taps.append(slice(None))
            else:
                centre = self.kernel_size[axis] // 2
                taps.append(slice(centre - reach, centre + reach + 1))
                padding[axis] = reach
        if any(t != slice(None) for t in taps[2:]):
            weight = weight[tuple(taps)]
        if x.device.type == "cpu" and x.is_contiguous(memory_format=torch.channels_last_3d):
            folded = self._as_2d(x, weight, padding)
            if folded is not None:
                return folded
            if self._depthwise(x) and torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
                y = _DepthwiseConv3d.apply(x, weight, self.stride, tuple(padding))
                return y if self.bias is None else y + self.bias.view(1, -1, 1, 1, 1)
        return F.conv3d(x, weight, self.bias, self.stride, tuple(padding), self.dilation, self.groups)

    def _depthwise(self, x: torch.Tensor) -> bool:
        return self.groups == x.shape[1] == self.out_channels and self.dilation == (1, 1, 1)

    def _as_2d(self, x: torch.Tensor, weight: torch.Tensor, padding: list[int]) -> torch.Tensor | None:
        """The convolution as a 2D one over a free view of the channels-last input, or ``None``."""
        kt, kh, kw = weight.shape[2:]
        (st, sh, sw), (n, c, t, h, w) = self.stride, x.shape
        if self.dilation != (1, 1, 1):
            return None
        if kt == 1 and (st == 1 or t == 1):  # 1 x k x k: the frames are a batch of images
            images = x.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w)
            y = F.conv2d(images, weight[:, :, 0], self.bias, (sh, sw), padding[1:], 1, self.groups)
            return y.reshape(n, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)
        if kh == 1 and kw == 1 and sh == 1 and sw == 1:  # k x 1 x 1: a 2D conv over time x pixels
            y = F.conv2d(
                x.reshape(n, c, t, h * w), weight[..., 0], self.bias, (st, 1), (padding[0], 0), 1, self.groups
            )
            return y.reshape(*y.shape[:3], h, w)
        if self._depthwise(x) and h * w <= SMALL_MAP:
            return self._per_temporal_tap(x, weight, padding)
        return None

    def _per_temporal_tap(self, x: torch.Tensor, weight: torch.Tensor, padding: list[int]) -> torch.Tensor:
        """The convolution as one 2D convolution of all frames per temporal tap, each added into the
        output frames that read it (``out[o] = sum over taps of conv2d(in[o * stride + tap - pad], w[tap])``)."""
        n, c, t, h, w = x.shape
        kt, st, pt = weight.shape[2], self.stride[0], padding[0]
        t_out = (t + 2 * pt - kt) // st + 1
        frames = x.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w)
        y = None
        for tap in range(kt):
            first = max(0, -(-(pt - tap) // st))  # the first and last output frames whose input exists
            last = min(t_out - 1, (t - 1 + pt - tap) // st)
            if first > last:
                continue
            z = F.conv2d(frames, weight[:, :, tap], None, self.stride[1:], padding[1:], 1, self.groups)
            start = first * st + tap - pt
            z = z.reshape(n, t, *z.shape[1:])[:, start : start + st * (last - first) + 1 : st]
            if y is None:  # N x T' x C x H' x W' over channels-last memory (a clone: a plain view would
                # make the in-place sums below an in-place change of a leaf)
                y = z.new_zeros(n, t_out, z.shape[3], z.shape[4], z.shape[2]).permute(0, 1, 4, 2, 3).clone()
            y[:, first : last + 1] += z
        assert y is not None  # "same" padding: the centre tap reads every output frame's input
        y = y.permute(0, 2, 1, 3, 4)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1, 1)


class _DepthwiseConv3d(torch.autograd.Function):
    """A depthwise 3D convolution (no bias) whose input gradient is :func:`depthwise_input_grad`."""

    @staticmethod
    def forward(ctx, x, weight, stride, padding):  # noqa: ANN001, ANN205 (autograd's signature)
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv3d(x, weight, None, stride, padding, 1, x.shape[1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, weight = ctx.saved_tensors
        grad = grad.contiguous(memory_format=torch.channels_last_3d)
        grad_input = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_input = depthwise_input_grad(grad, weight, x.shape, ctx.stride, ctx.padding)
        if ctx.needs_input_grad[1]:
            grad_weight = torch.ops.aten.convolution_backward(
                grad, x, weight, None, ctx.stride, ctx.padding, (1, 1, 1), False, (0, 0, 0), x.shape[1],
                (False, True, False),
            )[1]  # fmt: skip
        return grad_input, grad_weight, None, None


def depthwise_input_grad(
    grad: torch.Tensor, weight: torch.Tensor, input_shape: torch.Size, stride: tuple, padding: tuple
) -> torch.Tensor:
    """The input gradient of ``conv3d(x, weight, stride=stride, padding=padding, groups=channels)`` for
    the output gradient `grad`, as forward convolutions: the input positions of one phase of the stride
    (``h = s * i + a``) receive ``sum over q of grad[i + e - q] * weight[r + s * q]`` per axis, with
    ``r = (a + p) mod s`` and ``e = (a + p - r) / s``, a stride-1 convolution with the phase's taps
    flipped. Returned channels-last, as the input was."""
    channels, kernel = weight.shape[0], weight.shape[2:]
    phases, everywhere = [], True
    for phase in itertools.product(*(range(s) for s in stride)):
        taps, pads, crops, positions, reached = [], [], [], [], True
        for axis, a in enumerate(phase):
            s, p, k = stride[axis], padding[axis], kernel[axis]
            r = (a + p) % s
            count, length = len(range(r, k, s)), len(range(a, input_shape[2 + axis], s))
            left = count - 1 - (a + p - r) // s  # the grad positions before the first one read
            right = length - grad.shape[2 + axis] - left + count - 1
            pad = max(left, right, 0)  # symmetric padding, then the phase's outputs cropped from it
            reached = reached and count > 0
            taps.append(slice(r, None, s))
            pads.append(pad)
            crops.append(slice(pad - left, pad - left + length))
            positions.append(slice(a, None, s))
        if any(c.stop <= c.start for c in crops):
            continue  # no input positions in this phase
        if not reached:
            everywhere = False  # no tap reaches them: their gradient is zero
            continue
        flipped = weight[(slice(None), slice(None), *taps)].flip(2, 3, 4)
        y = F.conv3d(grad, flipped, None, 1, tuple(pads), 1, channels)
        phases.append((positions, y[(slice(None), slice(None), *crops)]))
    if everywhere and len(phases) == 1 and phases[0][1].shape == input_shape:  # stride 1
        return phases[0][1].contiguous(memory_format=torch.channels_last_3d)
    # made channels-last (converting a new tensor would copy it whole)
    out = torch.empty(input_shape, dtype=grad.dtype, device=grad.device, memory_format=torch.channels_last_3d)
    if not everywhere:
        out.zero_()
    for positions, y in phases:
        out[(slice(None), slice(None), *positions)] = y
    return out


class TemporalAvgPool3d(nn.AvgPool3d):
    """``AvgPool3d((stride, 1, 1))`` that keeps a channels-last input channels-last: PyTorch's CPU kernel
    returns it contiguous, which would take every later layer off the fast path above."""

    def __init__(self, stride: int) -> None:
        super().__init__((stride, 1, 1), stride=(stride, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if not _exporting() and x.is_contiguous(memory_format=torch.channels_last_3d):
            y = y.contiguous(memory_format=torch.channels_last_3d)
        return y


def use_plain_layers(model: nn.Module) -> nn.Module:
    """Turn this module's layers in `model` back into PyTorch's plain ``nn.Conv3d`` / ``nn.AvgPool3d``
    (same parameters), in place: the baseline that benchmarks and tests compare against."""
    for module in model.modules():
        if isinstance(module, SameConv3d):
            module.__class__ = nn.Conv3d
        elif isinstance(module, TemporalAvgPool3d):
            module.__class__ = nn.AvgPool3d
    return model
