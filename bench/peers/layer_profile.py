"""Where the time goes inside a compiled OpenVINO model: the real time of every executed node
(`PERF_COUNT`), with its kind of op, its FLOPs (convolutions, from their weights' shapes) and the
resolution of its output (the network's stage)."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LayerTime:
    """One executed node of a compiled OpenVINO model: its time per inference, FLOPs and output size."""

    name: str
    node_type: str
    exec_type: str
    category: str
    ms: float
    gflops: float
    out_hw: int  # output height (spatial resolution of the stage); 0 where not a 5D tensor
    original: str = ""  # the model's layers fused into this node, comma-separated


def conv_category(weight_shape: Sequence[int], group: bool) -> str:
    """Name a convolution by what limits it: pointwise, dense k>1, or depthwise (spatial/temporal/3D).

    OpenVINO's weights: ``O x I x kT x kH x kW`` (dense), ``G x O/G x I/G x kT x kH x kW`` (grouped).
    """
    kt, kh, kw = (int(k) for k in weight_shape[-3:])
    in_per_group = weight_shape[2] if group else weight_shape[1]
    if group and in_per_group == 1:
        if kt > 1 and kh * kw > 1:
            return "conv depthwise kxkxk"
        return "conv depthwise kx1x1" if kt > 1 else "conv depthwise 1xkxk"
    if group:
        return "conv grouped"
    if kt * kh * kw == 1:
        return "conv pointwise 1x1x1"
    if kt > 1 and kh * kw > 1:
        return "conv dense kxkxk"
    return "conv dense kx1x1" if kt > 1 else "conv dense 1xkxk"


OTHER_CATEGORIES = {
    "Subgraph": "element-wise",
    "Eltwise": "element-wise",
    "Multiply": "element-wise",
    "Add": "element-wise",
    "HardSigmoid": "element-wise",
    "Reorder": "reorder (layout change)",
    "Transpose": "reorder (layout change)",
    "Pooling": "pooling / reduce",
    "AvgPool": "pooling / reduce",
    "MaxPool": "pooling / reduce",
    "Reduce": "pooling / reduce",
    "ReduceMean": "pooling / reduce",
    "ReduceSum": "pooling / reduce",
    "FullyConnected": "matmul / fully connected",
    "MatMul": "matmul / fully connected",
}


def categorize(node_type: str, op: Any | None) -> tuple[str, float, int]:
    """(category, GFLOPs, output height) of one runtime node. GFLOPs only for convolutions (2 per
    multiply-add): the ops the fvcore count is made of (the classifier's matmul is negligible)."""
    out_hw = 0
    if op is not None and op.get_output_size() and op.output(0).get_partial_shape().is_static:
        out = [d.get_length() for d in op.output(0).get_partial_shape()]
        out_hw = out[3] if len(out) == 5 else 0
        if node_type in ("Convolution", "GroupConvolution") and op.get_input_size() > 1:
            weight = [d.get_length() for d in op.input(1).get_partial_shape()]
            group = node_type == "GroupConvolution" or len(weight) == 6
            gflops = 2 * math.prod(out) * math.prod(weight) / out[1] / 1e9
            return conv_category(weight, group), gflops, out_hw
    return OTHER_CATEGORIES.get(node_type, node_type), 0.0, out_hw


class LayerProfiler:
    """Real time per executed node of a model compiled with PERF_COUNT, summed over `step()` calls."""

    def __init__(self, compiled: Any, x: np.ndarray) -> None:
        import openvino as ov

        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.request.set_input_tensor(ov.Tensor(x))
        self.request.infer()  # warm-up
        self.totals: dict[str, float] = defaultdict(float)
        self.kinds: dict[str, tuple[str, str]] = {}
        self.runs = 0

    def step(self) -> None:
        self.request.infer()
        self.runs += 1
        for info in self.request.get_profiling_info():
            if info.status.name == "EXECUTED":
                self.totals[info.node_name] += info.real_time.total_seconds() * 1000
                self.kinds[info.node_name] = (info.node_type, info.exec_type)

    def layers(self) -> list[LayerTime]:
        """Mean time per inference of every executed node, with its category, GFLOPs and output size."""
        ops = {op.get_friendly_name(): op for op in self.compiled.get_runtime_model().get_ordered_ops()}
        layers = []
        for name, total in self.totals.items():
            node_type, exec_type = self.kinds[name]
            op = ops.get(name)
            category, gflops, out_hw = categorize(node_type, op)
            info = op.get_rt_info() if op is not None else {}
            original = info["originalLayersNames"].astype(str) if "originalLayersNames" in info else name
            layers.append(
                LayerTime(name, node_type, exec_type, category, total / self.runs, gflops, out_hw, original)
            )
        return layers


def profile_layers(compiled: Any, x: np.ndarray, runs: int) -> list[LayerTime]:
    """Mean real time per executed node over `runs` inferences of a model compiled with PERF_COUNT."""
    profiler = LayerProfiler(compiled, x)
    for _ in range(runs):
        profiler.step()
    return profiler.layers()


@dataclass
class Profile:
    label: str
    ours: bool
    gflops: float  # fvcore, whole model
    layers: list[LayerTime] = field(default_factory=list)

    @property
    def total_ms(self) -> float:
        return sum(layer.ms for layer in self.layers)

    @property
    def conv_gflops(self) -> float:
        return sum(layer.gflops for layer in self.layers)

    def group(self, key: Callable[[LayerTime], Any]) -> dict[Any, tuple[float, float]]:
        """key -> (ms, GFLOPs) summed over the layers, slowest first."""
        out: dict[Any, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for layer in self.layers:
            out[key(layer)][0] += layer.ms
            out[key(layer)][1] += layer.gflops
        return {k: (v[0], v[1]) for k, v in sorted(out.items(), key=lambda kv: -kv[1][0])}

    def by_category(self) -> dict[str, tuple[float, float]]:
        return self.group(lambda layer: layer.category)

    def share(self, prefix: str) -> tuple[float, float]:
        """(ms, GFLOPs) of the categories starting with `prefix`."""
        items = [v for k, v in self.by_category().items() if k.startswith(prefix)]
        return sum(v[0] for v in items), sum(v[1] for v in items)


# Our X3D's local-global diffusion path: its modules, and the adds of its global tensor (the only
# adds in the backbone's own forward). A node is counted when any layer fused into it is one of these.
LGD_LAYERS = re.compile(r"/(pooling|upsample|glob)_\d+/|/backbone/Add(_\d+)?(,|$)")


def lgd_layers(profile: Profile) -> list[LayerTime]:
    """The nodes of our X3D's local-global diffusion path in `profile` (see LGD_LAYERS)."""
    return [layer for layer in profile.layers if LGD_LAYERS.search(layer.original)]
