"""Exported models as users run them: OpenVINO's default settings, eval.py on IR and ONNX files, the
INT8 quantizer's CPU fixes, the graph-rewrite check and the "no action" threshold."""

from __future__ import annotations

import csv

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
import yaml
from export_checkpoints import NAMES, TEMPLATES, make_checkpoint, tiny_template

from action_rec.evaluation.cli import main as eval_main
from action_rec.export.cli import main as export_main
from action_rec.export.no_action import calibrate_threshold
from action_rec.export.onnx_export import export_onnx
from action_rec.export.openvino_ir import RewriteMismatch, convert_onnx
from action_rec.export.quantize import broadcast_eltwise_nodes, symmetric_depthwise_inputs
from action_rec.models import build_model
from action_rec.runtime.compile import available_hints
from action_rec.runtime.labels import no_action_classes
from action_rec.runtime.openvino_core import shared_core

ARCHS = ("s3d-rgb-mobilenet-v3", "x3d-rgb-mobilenet-v3-lgd-gc")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, synthetic_dataset):
    """Both architectures exported with INT8 (tiny input), calibrated on the synthetic val clips."""
    work = tmp_path_factory.mktemp("deployed")
    out = {}
    for arch in ARCHS:
        ckpt = make_checkpoint(work / f"{arch}.pth", arch)
        dest = work / arch
        args = ["--load-weights", str(ckpt), "--save-model-to", str(dest), "--int8", "--calib-ann-files",
                "val.txt", "--calib-data-roots", str(synthetic_dataset), "--workers", "0", "--no-progress",
                "--class-names", str(synthetic_dataset / "label_map.txt")]  # fmt: skip
        assert export_main(args, template_path=TEMPLATES / arch / "template.yaml") == 0
        out[arch] = {"checkpoint": ckpt, "dir": dest}
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_every_ir_compiles_with_no_configuration(exported, arch):
    """What benchmark_app, Open Model Zoo demos and users' own code do: compile_model with no config.
    On a CPU with bf16 units this runs in bf16; NNCF's plain mixed preset gave INT8 IRs that did not
    compile there at all."""
    core = shared_core()
    for name in ("model.xml", "model_int8.xml"):
        compiled = core.compile_model(str(exported[arch]["dir"] / name), "CPU")
        shape = list(compiled.inputs[0].shape)
        scores = compiled(np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32))[0]
        assert scores.shape == (1, len(NAMES)) and np.isfinite(scores).all()
        for hint in available_hints(core=core):
            config = {} if hint == "default" else {"INFERENCE_PRECISION_HINT": hint}
            core.compile_model(str(exported[arch]["dir"] / name), "CPU", config)


def _metrics(path):
    return {m["key"]: m["value"] for m in yaml.safe_load(path.read_text())["metrics"]}


def test_eval_of_exported_models_matches_the_checkpoint(exported, synthetic_dataset, tmp_path, capsys):
    """eval.py on model.xml (f32) gives the checkpoint's top-1 exactly (same clips, same protocol); the
    ONNX file too; the INT8 IR under the defaults stays close; metrics.yaml records what ran."""
    arch = ARCHS[0]
    template = TEMPLATES / arch / "template.yaml"
    common = ["--test-ann-files", "val.txt", "--test-data-roots", str(synthetic_dataset), "--workers", "0",
              "--no-progress"]  # fmt: skip
    runs = {
        "checkpoint": [str(exported[arch]["checkpoint"])],
        "fp32_f32": [str(exported[arch]["dir"] / "model.xml"), "--precision-hint", "f32"],
        "onnx": [str(exported[arch]["dir"] / "model.onnx"), "--precision-hint", "f32"],
        "int8_default": [str(exported[arch]["dir"] / "model_int8.xml")],
    }
    metrics = {}
    for name, weights in runs.items():
        path = tmp_path / name / "metrics.yaml"
        argv = ["--load-weights", weights[0], *weights[1:], *common, "--save-metrics-to", str(path)]
        assert eval_main(argv, template_path=template) == 0, capsys.readouterr().err
        metrics[name] = _metrics(path)
        assert (path.parent / "confusion_matrix.png").is_file() and (
            path.parent / "per_class_accuracy.csv"
        ).is_file()
    assert metrics["fp32_f32"]["accuracy"] == metrics["checkpoint"]["accuracy"]
    # Clip by clip the IR predicts what the checkpoint predicts, with the same probabilities (the class
    # names differ: the export renamed the checkpoint's classes with --class-names).
    clips = {name: list(csv.DictReader((tmp_path / name / "predictions.csv").open())) for name in runs}
    assert len(clips["checkpoint"]) == len(clips["fp32_f32"]) > 0
    renamed = dict(zip(NAMES, (synthetic_dataset / "label_map.txt").read_text().split(), strict=True))
    for ours, deployed in zip(clips["checkpoint"], clips["fp32_f32"], strict=True):
        assert ours["annotation"] == deployed["annotation"] and ours["correct"] == deployed["correct"]
        assert renamed[ours["predicted_class"]] == deployed["predicted_class"]
        for column in ("probability", "true_probability"):
            assert float(ours[column]) == pytest.approx(float(deployed[column]), abs=2e-3)
    assert metrics["onnx"]["accuracy"] == metrics["checkpoint"]["accuracy"]
    assert metrics["fp32_f32"]["execution_precision"] == "f32"
    assert (
        metrics["fp32_f32"]["weights_precision"] == "FP32" and metrics["onnx"]["input_format"] == "normalized"
    )
    int8 = metrics["int8_default"]
    assert int8["weights_precision"] == "INT8" and int8["precision_hint"] == "default"
    assert int8["execution_precision"] == ("bf16" if "bf16" in available_hints() else "f32")


def test_eval_of_an_ir_without_its_metadata_names_the_file(exported, synthetic_dataset, tmp_path, capsys):
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    for suffix in (".xml", ".bin"):
        (lonely / f"model{suffix}").write_bytes((exported[ARCHS[0]]["dir"] / f"model{suffix}").read_bytes())
    argv = ["--load-weights", str(lonely / "model.xml"), "--test-ann-files", "val.txt", "--test-data-roots",
            str(synthetic_dataset), "--save-metrics-to", str(tmp_path / "m.yaml"), "--no-progress"]  # fmt: skip
    assert eval_main(argv, template_path=TEMPLATES / ARCHS[0] / "template.yaml") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.json" in err and "not found" in err


def test_a_hint_the_cpu_lacks_is_one_line_and_exit_2(
    exported, synthetic_dataset, tmp_path, capsys, monkeypatch
):
    import action_rec.runtime.compile as compiling

    monkeypatch.setattr(compiling, "available_hints", lambda *a, **k: ["default", "f32"])
    argv = ["--load-weights", str(exported[ARCHS[0]]["dir"] / "model.xml"), "--precision-hint", "bf16",
            "--test-ann-files", "val.txt", "--test-data-roots", str(synthetic_dataset),
            "--save-metrics-to", str(tmp_path / "m.yaml"), "--no-progress"]  # fmt: skip
    assert eval_main(argv, template_path=TEMPLATES / ARCHS[0] / "template.yaml") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no bf16 execution" in err


def test_export_stores_a_calibrated_no_action_threshold(exported):
    import json

    meta = json.loads((exported[ARCHS[1]]["dir"] / "model_int8.json").read_text())
    block = meta["no_action"]
    assert block["keep_correct"] == 0.95 and block["calibration_clips"] == 12 and block["classes"] == []
    assert block["threshold"] is None or 0.0 < block["threshold"] <= 1.0


def test_calibrated_threshold_keeps_the_asked_share_of_correct_predictions():
    # 20 correct clips with top probabilities 0.05, 0.10, ..., 1.00 and 5 wrong ones at 0.99: keeping 95 %
    # of the correct ones drops the lowest one (0.05), so the threshold is the second lowest, 0.10.
    correct_scores = np.arange(1, 21) * 0.05
    scores = np.concatenate([correct_scores, np.full(5, 0.99)])
    hits = np.array([True] * 20 + [False] * 5)
    assert calibrate_threshold(scores, hits, keep=0.95) == pytest.approx(0.10)
    assert (correct_scores >= calibrate_threshold(scores, hits, keep=0.95)).sum() == 19
    assert calibrate_threshold(scores, hits, keep=1.0) == pytest.approx(0.05)  # keeps every correct clip
    assert calibrate_threshold(scores, np.zeros(25, bool)) is None
    assert no_action_classes(["wave", "Background", "no_action", "clap"]) == [1, 2]


def _fq(x, low, high):
    c = lambda v: ops.constant(np.asarray(v, np.float32))  # noqa: E731
    return ops.fake_quantize(x, c(low), c(high), c(low), c(high), 256)


def test_depthwise_inputs_become_symmetric_and_nothing_else_changes():
    x = ops.parameter([1, 2, 4, 8, 8], ov.Type.f32)
    dw_weights = ops.constant(np.ones((2, 1, 1, 1, 3, 3), np.float32))
    pw_weights = ops.constant(np.ones((2, 2, 1, 1, 1), np.float32))
    to_depthwise = _fq(
        x, np.array([-1.0, 0.5]).reshape(1, 2, 1, 1, 1), np.array([3.0, 2.0]).reshape(1, 2, 1, 1, 1)
    )
    unsigned = _fq(x, 0.0, 4.0)
    to_pointwise = _fq(x, -1.0, 3.0)
    pads = ([0, 1, 1], [0, 1, 1])
    a = ops.group_convolution(to_depthwise, dw_weights, [1, 1, 1], *pads, [1, 1, 1])
    b = ops.group_convolution(unsigned, dw_weights, [1, 1, 1], *pads, [1, 1, 1])
    c = ops.convolution(to_pointwise, pw_weights, [1, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1])
    model = ov.Model([a, b, c], [x])
    assert symmetric_depthwise_inputs(model) == 1
    low, high = (to_depthwise.input_value(i).get_node().get_data().ravel() for i in (1, 2))
    np.testing.assert_allclose(low, [-3.0, -2.0])
    np.testing.assert_allclose(high, [3.0 * 127 / 128, 2.0 * 127 / 128])
    assert unsigned.input_value(1).get_node().get_data() == 0.0  # unsigned: left alone
    assert to_pointwise.input_value(1).get_node().get_data() == -1.0  # not a depthwise input


def test_only_broadcast_eltwise_of_two_computed_inputs_are_kept_in_float():
    x = ops.parameter([1, 4, 2, 8, 8], ov.Type.f32)
    pooled = ops.reduce_mean(x, ops.constant(np.array([2, 3, 4], np.int64)), True)
    diffused = ops.add(x, pooled)  # N C T H W + N C 1 1 1: kept in float
    diffused.set_friendly_name("diffused")
    residual = ops.add(x, ops.relu(x))  # same shapes
    biased = ops.add(x, ops.constant(np.ones((1, 4, 1, 1, 1), np.float32)))  # a constant
    assert broadcast_eltwise_nodes(ov.Model([diffused, residual, biased], [x])) == ["diffused"]


def test_a_rewrite_that_matches_less_than_the_network_has_fails_loudly(tmp_path):
    model = build_model(tiny_template(ARCHS[1]), num_classes=3).eval()
    onnx_path = export_onnx(model, tmp_path / "x3d.onnx", (1, 3, 4, 32, 32))
    ir = convert_onnx(onnx_path, attention_poolings=14)  # X3D has 14 attention poolings
    assert ir.get_rt_info(["action_rec_rewrites", "attention_pooling"]).astype(int) == 14
    with pytest.raises(RewriteMismatch, match="matched 14 of the network's 15"):
        convert_onnx(onnx_path, attention_poolings=15)


def test_export_deploy_writes_the_package_and_a_later_export_removes_it(tmp_path, capsys):
    arch = ARCHS[0]
    ckpt = make_checkpoint(tmp_path / "s3d.pth", arch)
    out = tmp_path / "export"
    args = ["--load-weights", str(ckpt), "--save-model-to", str(out), "--no-progress"]
    assert export_main([*args, "--deploy"], template_path=TEMPLATES / arch / "template.yaml") == 0
    package = out / "deploy"
    assert {"model.xml", "model.bin", "model.json", "recognize.py", "requirements.txt", "README.md"} <= {
        p.name for p in package.iterdir()
    }
    assert (out / "deploy.zip").is_file() and "deploy.zip" in capsys.readouterr().out
    # The package describes this export: exported again without --deploy, the stale package goes.
    assert export_main(args, template_path=TEMPLATES / arch / "template.yaml") == 0
    assert not package.exists() and not (out / "deploy.zip").exists()
