"""tools/quickstart.py: the README's main command, end to end (reduced here; the full run is slow)."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from action_rec.data.synthetic import HELD_OUT

ROOT = Path(__file__).resolve().parents[1]


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools/quickstart.py"), "--out-dir", str(out), "--device", "cpu", *extra],
        capture_output=True,
        text=True,
        timeout=1800,
    )


def test_quickstart_wires_data_work_dir_training_and_evaluation(tmp_path):
    tiny = [
        "--epochs", "1", "--batch-size", "2", "--train-per-class", "1", "--val-per-class", "1", "--workers", "0",
        "--set", "input.clip_len=4", "input.size=32", "input.resize_short=40",
    ]  # fmt: skip
    done = _run(tmp_path, *tiny)
    assert done.returncode == 0, done.stderr[-2000:]
    work = tmp_path / "s3d-rgb-mobilenet-v3"
    for name in (
        "template.yaml",
        "train.py",
        "eval.py",
        "outputs/best.pth",
        "outputs/train.log",
        "metrics.yaml",
        "predictions.csv",
        "export/model.xml",
        "export/model.json",
        "export/model_int8.xml",
        "export/synthetic_test.mp4",
        "export/synthetic_test_truth.json",
        "export/synthetic_test_timeline.json",
        "export/synthetic_test_timeline_metrics.yaml",
        "export/synthetic_test_timeline.png",
    ):
        assert (work / name).is_file(), name
    keys = {e["key"] for e in yaml.safe_load((work / "metrics.yaml").read_text())["metrics"]}
    assert {"accuracy", "mean_class_accuracy", "complexity", "size"} <= keys
    assert "$ " in done.stdout and "--set" in done.stdout  # every command is printed, overrides included
    assert "validation top-1" in done.stdout and str(work) in done.stdout
    # The exported IR's accuracy table, and the timeline it predicts on a new synthetic video.
    # 6 action classes and the background (no action) class, one validation clip each.
    assert "Top-1 accuracy on 7 calibration clips" in done.stdout and "INT8" in done.stdout
    assert "Truth (12 segments" in done.stdout and "Windows inside one segment labelled right" in done.stdout
    assert "frame accuracy" in done.stdout and "F1@0.50" in done.stdout  # the timeline, measured
    assert (tmp_path / "data" / "label_map.txt").read_text().split()[-1] == "background"
    # A second run reuses the data and the work dir.
    again = _run(tmp_path, *tiny)
    assert again.returncode == 0 and "already in" in again.stdout and "reusing" in again.stdout


def test_quickstart_on_recordings_prepares_trains_calibrates_and_measures_held_out_timelines(tmp_path):
    tiny = [
        "--recordings", "6", "--segments-per-class", "1", "--epochs", "1", "--batch-size", "2", "--workers", "0",
        "--set", "input.size=32", "input.resize_short=40",
    ]  # fmt: skip
    done = _run(tmp_path, *tiny)
    assert done.returncode == 0, done.stderr[-2000:]
    # The user's path: recordings and a segment CSV, prepared by prepare_dataset.py.
    data = tmp_path / "data"
    assert (data / "recordings" / "segments.csv").read_text().startswith("video,start_frame,end_frame,label")
    assert len(list((data / "recordings" / "videos").glob("*.mp4"))) == 6
    prepared = data / "prepared"
    names = (prepared / "label_map.txt").read_text().split()
    per_class = Counter(
        names[int(line.split()[1])] for line in (prepared / "train.txt").read_text().splitlines()
    )
    # More no_action clips than any action class has (--no-action-ratio 2; the default caps them there).
    assert per_class.pop("no_action") > max(per_class.values())
    test_videos, val_videos = (
        [
            line.split("\t")[0]
            for line in (prepared / name).read_text().splitlines()
            if not line.startswith("#")
        ]
        for name in ("test_videos.txt", "val_videos.txt")
    )
    assert len(test_videos) == 1 and len(val_videos) == 1 and not set(test_videos) & set(val_videos)
    work = tmp_path / "s3d-rgb-mobilenet-v3"
    assert "input.clip_len=4 input.frame_interval=4" in done.stdout  # the recordings' window
    assert "tools/prepare_dataset.py" in done.stdout and "tools/eval_timeline.py" in done.stdout
    # The export calibrated the timeline settings on the validation recording and stored them.
    meta = json.loads((work / "export" / "model.json").read_text())
    assert [Path(v).name for v in meta["timeline"]["calibrated_on"]] == [Path(val_videos[0]).name]
    # The held-out recording's timeline, measured.
    report = yaml.safe_load((work / "export" / "timeline_eval" / "timeline_metrics.yaml").read_text())
    assert len(report["videos"]) == 1 and {"frame_accuracy", "f1@0.50"} <= report["overall"].keys()
    assert "held-out recordings" in done.stdout and "F1@0.10/0.25/0.50" in done.stdout
    assert not (work / "export" / "model_int8.xml").exists()  # INT8 only with --int8 here
    again = _run(tmp_path, *tiny)
    assert again.returncode == 0 and "already in" in again.stdout and "reusing" in again.stdout


@pytest.mark.slow  # about a minute of CPU (two trainings and an evaluation in subprocesses)
def test_finetune_quickstart_pretrains_fine_tunes_part_of_the_network_and_evaluates(tmp_path):
    tiny = [
        "--finetune", "--pretrain-per-class", "2", "--epochs", "1", "--finetune-clips", "2", "--workers", "0",
        "--set", "input.clip_len=4", "input.size=32", "input.resize_short=40", "training.epochs=2",
    ]  # fmt: skip
    done = _run(tmp_path, *tiny)
    assert done.returncode == 0, done.stderr[-2000:]
    work = tmp_path / "finetune" / "s3d-rgb-mobilenet-v3"
    assert (work / "pretrained" / "latest.pth").is_file() and (work / "outputs" / "latest.pth").is_file()
    assert len(list((work / "outputs" / "feature_cache").glob("*/view_*.pt"))) == 5  # blocks:3, cached
    assert "training.trainable=blocks:3" in done.stdout and "--load-weights" in done.stdout
    values = {e["key"]: e["value"] for e in yaml.safe_load((work / "metrics.yaml").read_text())["metrics"]}
    assert 0 <= values["top1_accuracy"] <= 100
    assert "held-out top-1" in done.stdout and "on 200 clips (chance 25 %)" in done.stdout  # 4 x 50
    # The best epoch is chosen on select.txt and evaluated on the held-out clips beside the last one.
    assert (tmp_path / "finetune" / "held_out" / "select.txt").is_file()
    assert "--val-ann-files select.txt" in done.stdout and "with the best epoch (" in done.stdout
    assert f"Evaluating {work / 'outputs' / 'best.pth'}" in done.stdout
    assert (work / "metrics_last_epoch.yaml").is_file()
    assert (tmp_path / "finetune" / "held_out" / "label_map.txt").read_text().split() == list(HELD_OUT)
    # --pretrained: fine-tune given weights (the quick start's best.pth) instead of pre-training.
    weights = work / "pretrained" / "latest.pth"
    again = _run(tmp_path / "again", *tiny, "--pretrained", str(weights))
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"Pre-trained weights: {weights}" in again.stdout and "held-out top-1" in again.stdout
    assert not (tmp_path / "again" / "finetune" / "motion").exists()  # no pre-training data made
    assert not (tmp_path / "again" / "finetune" / "s3d-rgb-mobilenet-v3" / "pretrained").exists()


def test_finetune_settings_are_valid_template_overrides():
    """Every mode's fine-tuning settings and the pre-training's apply to the S3D template as meant."""
    from action_rec.templates import apply_overrides, load_template

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import quickstart as quick
    finally:
        sys.path.remove(str(ROOT / "tools"))
    template = load_template(quick.TEMPLATES["s3d"])
    pre = apply_overrides(template, quick.pretrain_settings(3))
    assert pre.training.epochs == 3 and pre.training.optimizer == "adamw"
    assert pre.input.size == 64 and pre.training.trainable == "all"
    for mode, cached in (("head", True), ("blocks:3", True), ("all", False)):
        epochs = []
        for clips in (5, 10, 30, 100):
            t = apply_overrides(template, quick.finetune_settings(mode, clips))
            assert t.training.trainable == mode and t.training.cache_features is cached
            assert (t.input.size, t.input.clip_len) == (64, 8)  # the pre-training's clip
            epochs.append(t.training.epochs)
        assert epochs == sorted(epochs, reverse=True) and epochs[0] > epochs[-1]  # fewer clips, more epochs


@pytest.mark.slow
@pytest.mark.parametrize("model", ["s3d", "x3d"])
def test_quickstart_reaches_90_percent(tmp_path, model):
    """The full quick start on the synthetic data: at least 90 % validation top-1 (chance: 1/6)."""
    done = _run(tmp_path, "--model", model)
    assert done.returncode == 0, done.stderr[-2000:]
    work = next(p for p in tmp_path.iterdir() if p.name.startswith(model))
    values = {e["key"]: e["value"] for e in yaml.safe_load((work / "metrics.yaml").read_text())["metrics"]}
    assert values["accuracy"] >= 90.0
    # The test video with no-action gaps: its action timeline against the truth.
    timeline = yaml.safe_load((work / "export" / "synthetic_test_timeline_metrics.yaml").read_text())[
        "metrics"
    ]
    # Trimmed clips have no recordings to calibrate the timeline on, and 3-5 epochs leave some
    # over-segmentation (measured 2026-12-04: S3D 90.6 % / 0.89, X3D 87.8 % / 0.81); the recordings
    # quick start below is the one held to the timeline targets.
    assert timeline["frame_accuracy"] >= 85.0 and timeline["f1@0.50"] >= 0.75


@pytest.mark.slow
@pytest.mark.parametrize("model", ["s3d", "x3d"])
def test_recordings_quickstart_reaches_its_targets(tmp_path, model):
    """The full quick start on 40 recordings: at least 95 % validation top-1, and F1@0.50 of at least
    0.9 on the held-out recordings with the calibrated timeline settings (issue 23's targets)."""
    done = _run(tmp_path, "--recordings", "40", "--model", model)
    assert done.returncode == 0, done.stderr[-2000:]
    work = next(p for p in tmp_path.iterdir() if p.name.startswith(model))
    values = {e["key"]: e["value"] for e in yaml.safe_load((work / "metrics.yaml").read_text())["metrics"]}
    assert values["top1_accuracy"] >= 95.0  # the figure: over all clips, not the mean per class
    report = yaml.safe_load((work / "export" / "timeline_eval" / "timeline_metrics.yaml").read_text())
    assert len(report["videos"]) == 4 and report["overall"]["f1@0.50"] >= 0.9


def test_loader_workers_default_to_none_only_when_a_small_cpu_trains(monkeypatch):
    """On a CPU of two cores loader processes take turns with the training threads; with a GPU (also
    when --device auto finds one) they load while it computes."""
    import importlib.util
    import os

    import torch

    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "tools" / "quickstart.py")
    quick = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quick)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for cuda, expected in ((False, 0), (True, 2)):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        assert quick.default_workers("auto") == expected
        assert quick.default_workers("cpu") == 0 and quick.default_workers("cuda") == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert quick.default_workers("cpu") == 2
