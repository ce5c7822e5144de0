"""The peers bench (bench/peers/) without the timing: op classification, the per-node FLOPs of the
layer profile, the peer comparison and the report/plot writers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench import harness
from bench.peers import candidates, compare, layer_profile, report, run

torch.set_num_threads(1)


def result(model, source, gflops, runtime, median, shape=(16, 224, 224), published=True):
    return run.Result(model, source, shape, published, runtime, [median - 1, median, median + 5], gflops, 4.0)


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
def test_conv_category(weight, group, expected):
    assert layer_profile.conv_category(weight, group) == expected


def test_profile_counts_the_same_flops_as_fvcore(tmp_path):
    """The per-node GFLOPs read from the compiled graph add up to the model's fvcore count."""
    from action_rec.evaluation.complexity import count_complexity
    from action_rec.export.onnx_export import export_onnx
    from action_rec.export.openvino_ir import convert_onnx

    model = nn.Sequential(
        nn.Conv3d(3, 8, (1, 3, 3), padding=(0, 1, 1)),
        nn.ReLU(),
        nn.Conv3d(8, 8, (3, 3, 3), padding=1, groups=8),
        nn.Conv3d(8, 16, 1),
        nn.Conv3d(16, 4, (3, 1, 1), padding=(1, 0, 0)),
    ).eval()
    shape = (1, 3, 4, 16, 16)
    model_ir = convert_onnx(export_onnx(model, tmp_path / "m.onnx", shape))
    compiled = harness.compile_under_hint(model_ir, "f32", threads=1, profile=True)
    layers = layer_profile.profile_layers(compiled, np.zeros(shape, np.float32), runs=2)
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


def test_comparison_picks_fastest_peer_of_similar_gflops():
    fp32 = candidates.OV_FP32
    results = [
        result("ours A", "ours", 6.0, fp32, 50),
        result("ours B", "ours", 4.5, fp32, 70),
        result("near slow", "PyTorchVideo", 9.0, fp32, 90),
        result("near fast", "PyTorchVideo", 4.0, fp32, 40),
        result("far fastest", "torchvision", 36.0, fp32, 10),  # > 2x the GFLOPs: not similar
        result("other runtime", "torchvision", 6.0, candidates.EAGER, 1),
    ]
    [(ours, peer)] = compare.comparisons(results)
    assert (ours.model, peer.model) == ("ours A", "near fast")
    row = report.comparison_rows(results)[0]
    assert row[1].endswith("at any input") and row[5].startswith("near fast")
    assert row[-1] == f"**{50 / 40:.2f}x**"  # > 1: ours slower
    beaten = compare.faster_per_gflop(results)
    assert [r.model for r in beaten["ours A"]] == ["far fastest"]  # 10/36 < 50/6, 40/4 > 50/6
    assert {r.model for r in beaten["ours B"]} == {"near slow", "near fast", "far fastest"}  # all < 70/4.5
    near_fast = next(r for r in results if r.model == "near fast")
    near_fast.shape = (13, 160, 160)  # at 16x224x224 only, the fastest similar peer is then "near slow"
    [(_, peer)] = compare.comparisons(results, shape=(16, 224, 224))
    assert peer.model == "near slow"


def test_headline_uses_our_published_input_and_equal_input_is_listed_apart():
    """Ours at a peer's smaller input is not "our faster model" of the headline ratio; it is compared
    with the peers at that same input."""
    fp32, small = candidates.OV_FP32, (13, 160, 160)
    results = [
        result("ours", "ours", 6.6, fp32, 30),
        result("ours", "ours", 2.7, fp32, 12, shape=small, published=False),
        result("X3D-S", "PyTorchVideo", 4.1, fp32, 24, shape=small),
        result("X3D-M", "PyTorchVideo", 9.8, fp32, 60),
    ]
    [(ours, peer)] = compare.comparisons(results)
    assert (ours.median_ms, peer.model) == (30, "X3D-S")
    pairs = {o.shape: (o.median_ms, p.model) for o, p in compare.equal_input_comparisons(results)}
    assert pairs == {small: (12, "X3D-S"), (16, 224, 224): (30, "X3D-M")}
    rows = report.comparison_rows(results)
    assert ["fastest at the same input (not our published input)", "ours 13x160x160", "**0.50x**"] in [
        [row[1], row[2], row[-1]] for row in rows
    ]


def test_timed_runs_takes_more_runs_for_fast_models():
    assert harness.timed_runs(0.5, runs=20, min_seconds=3) == 20
    assert harness.timed_runs(0.01, runs=20, min_seconds=3) == 300
    assert harness.timed_runs(0.05, runs=20, min_seconds=3) == 60


def test_lgd_layers_are_told_apart():
    lgd = layer_profile.LGD_LAYERS
    assert lgd.search("/backbone/pooling_3/conv/conv.0/encoder/encoder.0/Conv/WithoutBiases")
    assert lgd.search("/backbone/features.1/Add,/backbone/Add")  # block residual fused with the global add
    assert lgd.search("/backbone/glob_2/conv/conv.3/Conv/WithoutBiases,/backbone/Add_3")
    assert not lgd.search("/backbone/features.5/conv/conv.7/Conv/WithoutBiases,/backbone/features.5/Add")
    assert not lgd.search("/backbone/features.12/conv/conv.5/fc/fc.3/HardSigmoid")


def test_replace_swish():
    class Swish(nn.Module):  # the name is what PyTorchVideo's is recognised by
        def forward(self, x):
            return x * torch.sigmoid(x)

    model = nn.Sequential(nn.Conv3d(3, 3, 1), Swish(), nn.Sequential(Swish()))
    x = torch.randn(1, 3, 2, 4, 4)
    before = model(x)
    assert candidates.replace_swish(model) == 2
    assert not any(type(m).__name__ == "Swish" for m in model.modules())
    torch.testing.assert_close(model(x), before)


def test_report_and_plot(tmp_path):
    fp32, int8 = candidates.OV_FP32, candidates.OV_INT8
    results = [
        result(candidates.CANDIDATES[0].name, "ours", 6.6, fp32, 46),
        result(candidates.CANDIDATES[0].name, "ours", 6.6, int8, 20),
        result("X3D-M", "PyTorchVideo", 9.8, fp32, 100),
        result("S3D", "torchvision", 36.0, fp32, 180),
    ]
    layers = [
        layer_profile.LayerTime("conv_a", "Convolution", "brgconv", "conv pointwise 1x1x1", 3.0, 0.3, 112),
        layer_profile.LayerTime("conv_b", "Convolution", "brgconv", "conv dense kx1x1", 5.0, 0.6, 56),
        layer_profile.LayerTime("reorder", "Reorder", "reorder_f32", "reorder (layout change)", 2.0, 0.0, 56),
    ]
    profiles = [layer_profile.Profile(f"{results[0].model} 16x224x224", True, 6.6, layers)]
    assert profiles[0].share("conv") == pytest.approx((8.0, 0.9))
    env = {"date": "today", "machine": "test cpu", "threads": "2", "precision": "f32", "load": "0.1",
           "runs": "at least 3 timed runs per figure"}  # fmt: skip
    command = "venv/bin/python -m bench.peers"
    text = report.render_markdown(results, profiles, env, command, "plot.png")
    table_rows = [line for line in text.splitlines() if line.startswith("| ") and " ms / GFLOP " not in line]
    for r in results:
        assert any(r.model in row and r.runtime in row and f"{r.median_ms:.1f}" in row for row in table_rows)
    assert "test cpu" in text and command in text and "![" in text
    assert any("at any input" in row and f"**{46 / 100:.2f}x**" in row for row in table_rows)  # not S3D's
    # Only what was measured: headings, the run's header list, tables, the plot, the generated-by line,
    # and one-line captions of the tables; no paragraph of explanation.
    for line in filter(None, text.splitlines()):
        assert line.startswith(("#", "- ", "| ", "|-", "![", "Generated by `")) or (
            line.endswith(":") and len(line) < 60
        ), line
    block = report.readme_block(results, env, command)
    assert "today" in block and "test cpu" in block and command in block
    assert "| **S3D MobileNetV3 (ours)** | 16x224x224 | 46.0 ms | 20.0 ms | - | 6.60 |" in block
    png = report.plot(results, tmp_path / "plot.png", "title")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
