"""Model complexity as published: parameters (head included) and GFLOPs with a multiply-add as two FLOPs."""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn


def count_complexity(
    model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 16, 224, 224)
) -> dict[str, float]:
    """Return ``{"params_m": millions of parameters, "gflops": fvcore count x 2 / 1e9}``.

    fvcore counts one FLOP per multiply-add (convs, matmuls, batch norm); the published figures count
    two, hence the factor. Runs in eval mode on a zero input; the model's mode is restored after.
    Ops fvcore does not count (activations, pooling, element-wise) are left out, as in the original.
    """
    params = sum(p.numel() for p in model.parameters())
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    fvcore_logger = logging.getLogger("fvcore")
    level = fvcore_logger.level
    fvcore_logger.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fvcore's tracer and torch.jit deprecation chatter
            from fvcore.nn import FlopCountAnalysis

            analysis = FlopCountAnalysis(model, torch.zeros(input_shape, device=device))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            flops = analysis.total()
    finally:
        fvcore_logger.setLevel(level)
        model.train(was_training)
    return {"params_m": params / 1e6, "gflops": 2 * flops / 1e9}
