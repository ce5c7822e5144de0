"""PyTorch -> ONNX with a fixed `1 x 3 x T x H x W` input named `input` and an output named `output`.

The legacy TorchScript exporter is used first: in eval mode it folds every BatchNorm into the
convolution before it and constant-folds the rest (the classifier's column normalization, say), which
gives the cleanest graph for OpenVINO. Where that exporter is gone, the torch.export-based one is used.
"""

from __future__ import annotations

import collections
import warnings
from pathlib import Path

import torch
from torch import nn

__all__ = ["export_onnx", "DEFAULT_OPSET", "onnx_op_counts"]

DEFAULT_OPSET = 17


def export_onnx(
    model: nn.Module, path: str | Path, input_shape: tuple[int, ...], opset: int = DEFAULT_OPSET
) -> Path:
    """Export `model` (eval mode, CPU) to `path`; the input is float `input_shape` (N C T H W)."""
    path = Path(path)
    model = model.eval().cpu()
    example = torch.randn(*input_shape)
    kwargs = dict(input_names=["input"], output_names=["output"], opset_version=opset)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        try:
            torch.onnx.export(model, (example,), str(path), dynamo=False, do_constant_folding=True, **kwargs)
        except (TypeError, RuntimeError, NotImplementedError) as legacy_error:
            try:
                program = torch.onnx.export(model, (example,), dynamo=True, external_data=False, **kwargs)
                program.optimize()
                program.save(str(path))
            except Exception as exc:
                raise RuntimeError(f"ONNX export failed: legacy: {legacy_error}; dynamo: {exc}") from exc
    return path


def onnx_op_counts(path: str | Path) -> dict[str, int]:
    """Operator histogram of an ONNX file, to show the graph is clean (no BatchNormalization left)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return dict(collections.Counter(node.op_type for node in graph.node))
