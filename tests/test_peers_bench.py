"""bench/peers.py without the timing: op classification, the per-node FLOPs of the layer profile,
the peer comparison and the report/plot writers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def peers():
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "bench" / "peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_peers"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def result(peers, model, source, gflops, runtime, median, shape=(16, 224, 224), published=True):
    return peers.Result(
        model, source, shape, published, runtime, [median - 1, median, median + 5], gflops, 4.0
    )


@pytest.mark.parametrize(
    "weight, group, expected",
    [
        ((64, 16, 1, 1, 1), False, "conv pointwise 1x1x1"),
        ((24, 64, 3, 1, 1), False, "conv dense kx1x1"),
        ((16, 3, 1, 3, 3), False, "conv dense 1xkxk"),
        ((64, 32, 3, 3, 3), False, "conv dense kxkxk"),
        ((64, 1, 1, 1, 3, 3), True, "conv depthwise 1xkxk"),
        ((24, 1, 1, 5, 1, 1), True, "conv depthwise kx1x1"),
        ((72, 1, 1, 3, 5, 5), True, "conv depthwise kxkxk"),
        ((4, 8, 8, 1, 3, 3), True, "conv grouped"),
    ],
)
def test_conv_category(peers, weight, group, expected):
    assert peers.conv_category(weight, group) == expected


def test_profile_counts_the_same_flops_as_fvcore(peers, tmp_path):
    """The per-node GFLOPs read from the compiled graph add up to the model's fvcore count."""
    import openvino as ov

    from action_rec.evaluation.complexity import count_complexity
    from action_rec.export.onnx_export import export_onnx
    from action_rec.export.openvino_ir import compile_ir, convert_onnx

    model = nn.Sequential(
        nn.Conv3d(3, 8, (1, 3, 3), padding=(0, 1, 1)),
        nn.ReLU(),
        nn.Conv3d(8, 8, (3, 3, 3), padding=1, groups=8),
        nn.Conv3d(8, 16, 1),
        nn.Conv3d(16, 4, (3, 1, 1), padding=(1, 0, 0)),
    ).eval()
    shape = (1, 3, 4, 16, 16)
    model_ir = convert_onnx(export_onnx(model, tmp_path / "m.onnx", shape))
    core = ov.Core()
    core.set_property("CPU", {"PERF_COUNT": True})
    compiled = compile_ir(model_ir, threads=1, core=core)
    layers = peers.profile_layers(compiled, np.zeros(shape, np.float32), runs=2)
    categories = {layer.category for layer in layers if layer.gflops}
    assert {
        "conv dense 1xkxk",
        "conv depthwise kxkxk",
        "conv pointwise 1x1x1",
        "conv dense kx1x1",
    } <= categories
    expected = count_complexity(model, shape)["gflops"]
    assert sum(layer.gflops for layer in layers) == pytest.approx(expected, rel=1e-6)
    assert all(layer.out_hw == 16 for layer in layers if layer.gflops)


def test_comparison_picks_fastest_peer_of_similar_gflops(peers):
    fp32 = peers.OV_FP32
    results = [
        result(peers, "ours A", "ours", 6.0, fp32, 50),
        result(peers, "ours B", "ours", 4.5, fp32, 70),
        result(peers, "near slow", "PyTorchVideo", 9.0, fp32, 90),
        result(peers, "near fast", "PyTorchVideo", 4.0, fp32, 40),
        result(peers, "far fastest", "torchvision", 36.0, fp32, 10),  # > 2x the GFLOPs: not similar
        result(peers, "other runtime", "torchvision", 6.0, peers.EAGER, 1),
    ]
    [(ours, peer)] = peers.comparisons(results)
    assert (ours.model, peer.model) == ("ours A", "near fast")
    line = peers.comparison_lines(results)[0]
    assert f"{50 / 40:.2f}x" in line and "slower" in line
    beaten = peers.faster_per_gflop(results)
    assert [r.model for r in beaten["ours A"]] == ["far fastest"]  # 10/36 < 50/6, 40/4 > 50/6
    assert {r.model for r in beaten["ours B"]} == {"near slow", "near fast", "far fastest"}  # all < 70/4.5
    near_fast = next(r for r in results if r.model == "near fast")
    near_fast.shape = (13, 160, 160)  # at 16x224x224 only, the fastest similar peer is then "near slow"
    [(_, peer)] = peers.comparisons(results, shape=(16, 224, 224))
    assert peer.model == "near slow"


def test_headline_uses_our_published_input_and_equal_input_is_listed_apart(peers):
    """Ours at a peer's smaller input is not "our faster model" of the headline ratio; it is compared
    with the peers at that same input."""
    fp32, small = peers.OV_FP32, (13, 160, 160)
    results = [
        result(peers, "ours", "ours", 6.6, fp32, 30),
        result(peers, "ours", "ours", 2.7, fp32, 12, shape=small, published=False),
        result(peers, "X3D-S", "PyTorchVideo", 4.1, fp32, 24, shape=small),
        result(peers, "X3D-M", "PyTorchVideo", 9.8, fp32, 60),
    ]
    [(ours, peer)] = peers.comparisons(results)
    assert (ours.median_ms, peer.model) == (30, "X3D-S")
    pairs = {o.shape: (o.median_ms, p.model) for o, p in peers.equal_input_comparisons(results)}
    assert pairs == {small: (12, "X3D-S"), (16, 224, 224): (30, "X3D-M")}
    lines = peers.comparison_lines(results)
    assert any(
        "same input 13x160x160 (its published input, not ours): **0.50x** (ours faster)" in line
        for line in lines
    )


def test_timed_runs_takes_more_runs_for_fast_models(peers):
    assert peers.timed_runs(0.5, runs=20, min_seconds=3) == 20
    assert peers.timed_runs(0.01, runs=20, min_seconds=3) == 300
    assert peers.timed_runs(0.05, runs=20, min_seconds=3) == 60


def test_lgd_layers_are_told_apart(peers):
    lgd = peers.LGD_LAYERS
    assert lgd.search("/backbone/pooling_3/conv/conv.0/encoder/encoder.0/Conv/WithoutBiases")
    assert lgd.search("/backbone/features.1/Add,/backbone/Add")  # block residual fused with the global add
    assert lgd.search("/backbone/glob_2/conv/conv.3/Conv/WithoutBiases,/backbone/Add_3")
    assert not lgd.search("/backbone/features.5/conv/conv.7/Conv/WithoutBiases,/backbone/features.5/Add")
    assert not lgd.search("/backbone/features.12/conv/conv.5/fc/fc.3/HardSigmoid")


def test_replace_swish(peers):
    class Swish(nn.Module):  # the name is what PyTorchVideo's is recognised by
        def forward(self, x):
            return x * torch.sigmoid(x)

    model = nn.Sequential(nn.Conv3d(3, 3, 1), Swish(), nn.Sequential(Swish()))
    x = torch.randn(1, 3, 2, 4, 4)
    before = model(x)
    assert peers.replace_swish(model) == 2
    assert not any(type(m).__name__ == "Swish" for m in model.modules())
    torch.testing.assert_close(model(x), before)


def test_report_and_plot(peers, tmp_path):
    fp32, int8 = peers.OV_FP32, peers.OV_INT8
    results = [
        result(peers, peers.CANDIDATES[0].name, "ours", 6.6, fp32, 46),
        result(peers, peers.CANDIDATES[0].name, "ours", 6.6, int8, 20),
        result(peers, "X3D-M", "PyTorchVideo", 9.8, fp32, 100),
        result(peers, "S3D", "torchvision", 36.0, fp32, 180),
    ]
    layers = [
        peers.LayerTime("conv_a", "Convolution", "brgconv", "conv pointwise 1x1x1", 3.0, 0.3, 112),
        peers.LayerTime("conv_b", "Convolution", "brgconv", "conv dense kx1x1", 5.0, 0.6, 56),
        peers.LayerTime("reorder", "Reorder", "reorder_f32", "reorder (layout change)", 2.0, 0.0, 56),
    ]
    profiles = [peers.Profile(f"{results[0].model} 16x224x224", True, 6.6, layers)]
    assert profiles[0].share("conv") == pytest.approx((8.0, 0.9))
    env = {"date": "today", "machine": "test cpu", "threads": "2"}
    text = peers.render_markdown(results, profiles, env, "venv/bin/python bench/peers.py", "plot.png")
    table_rows = [line for line in text.splitlines() if line.startswith("| ") and " ms / GFLOP " not in line]
    for r in results:
        assert any(r.model in row and r.runtime in row and f"{r.median_ms:.1f}" in row for row in table_rows)
    assert "test cpu" in text and "venv/bin/python bench/peers.py" in text and "![" in text
    assert f"**{fp32}, peers at any input: {46 / 100:.2f}x**" in text  # S3D (36 GFLOPs) is not within 2x
    png = peers.plot(results, tmp_path / "plot.png", "title")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
