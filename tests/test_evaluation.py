"""eval.py: metrics.yaml, confusion matrix, per-class accuracies; our checkpoints and bare snapshots."""

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml

from action_rec.data import RawFrameDataset, make_synthetic_dataset
from action_rec.evaluation import cli
from action_rec.models import build_model
from action_rec.templates import apply_overrides, load_template
from action_rec.training.run_state import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
S3D = ROOT / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
TINY = ["input.clip_len=4", "input.size=32", "input.resize_short=40"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("eval") / "data",
        num_classes=3,
        train_per_class=1,
        val_per_class=3,
        frames=12,
        size=48,
    )


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """A checkpoint of ours (random weights are enough: the metrics are checked against the model)."""
    torch.manual_seed(0)
    template = apply_overrides(load_template(S3D), TINY)
    model = build_model(template, num_classes=3)
    model.eval()
    path = tmp_path_factory.mktemp("ckpt") / "latest.pth"
    names = ["moving_left", "moving_right", "rotating_clockwise"]
    save_checkpoint(
        path,
        {"state_dict": model.state_dict(), "template": template.to_dict(), "class_names": names, "epoch": 1},
    )
    return path, model, template


def _eval(data, weights, out, *extra):
    return cli.main(
        [
            "--template",
            str(S3D),
            "--load-weights",
            str(weights),
            "--test-ann-files",
            "val.txt",
            "--test-data-roots",
            str(data),
            "--save-metrics-to",
            str(out),
            "--device",
            "cpu",
            "--workers",
            "0",
            "--no-progress",
            *extra,
        ]  # fmt: skip
    )


def test_metrics_match_the_models_own_predictions(data, trained, tmp_path, capsys):
    weights, model, template = trained
    metrics_path = tmp_path / "report" / "metrics.yaml"
    assert _eval(data, weights, metrics_path) == 0
    entries = yaml.safe_load(metrics_path.read_text())["metrics"]
    assert all(set(e) == {"key", "value", "unit", "display_name"} for e in entries)
    values = {e["key"]: e["value"] for e in entries}
    units = {e["key"]: e["unit"] for e in entries}
    assert units["accuracy"] == "%" and units["complexity"] == "GFLOPs" and units["size"] == "Mp"

    # Independent reference: run the model over the test clips by hand.
    dataset = RawFrameDataset(["val.txt"], [data], template, split="test")
    with torch.no_grad():
        scores = torch.cat([model(dataset[i][0][None]) for i in range(len(dataset))])
    labels = torch.tensor(dataset.labels)
    predicted = scores.argmax(1)
    assert values["top1_accuracy"] == pytest.approx(
        100 * (predicted == labels).float().mean().item(), abs=1e-3
    )
    per_class = [100 * (predicted[labels == c] == c).float().mean().item() for c in range(3)]
    # `accuracy` is the original eval.py's: the mean per-class top-1.
    assert values["accuracy"] == pytest.approx(sum(per_class) / 3, abs=1e-3)
    assert values["mean_class_accuracy"] == values["accuracy"]
    assert values["top5_accuracy"] == 100.0  # 3 classes
    assert values["size"] == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6, abs=1e-4)
    assert values["checkpoint_size"] == pytest.approx(weights.stat().st_size / 1e6, abs=1e-3)
    assert 0 < values["complexity"] < 0.2  # at the checkpoint's 4 x 32 x 32, far below the 16 x 224 figure

    rows = list(csv.DictReader((tmp_path / "report" / "per_class_accuracy.csv").open()))
    assert [r["class_name"] for r in rows] == ["moving_left", "moving_right", "rotating_clockwise"]
    assert [float(r["accuracy"]) for r in rows] == pytest.approx(per_class, abs=0.01)
    assert sum(int(r["clips"]) for r in rows) == 9
    assert (tmp_path / "report" / "confusion_matrix.png").stat().st_size > 1000
    assert "4x32x32" in capsys.readouterr().out

    # predictions.csv: every clip, in annotation order, with the model's own prediction and probabilities.
    probabilities = model.probabilities(scores)
    clips = list(csv.DictReader((tmp_path / "report" / "predictions.csv").open()))
    assert [c["annotation"] for c in clips] == [f"{data / 'val.txt'}:{i}" for i in range(1, 10)]
    names = ["moving_left", "moving_right", "rotating_clockwise"]
    for clip, record, row, label in zip(clips, dataset.records, probabilities, labels, strict=True):
        assert clip["video"] == record.rel_dir and int(clip["end_frame"]) == record.clip_end
        assert clip["true_class"] == names[label] and clip["predicted_class"] == names[row.argmax()]
        assert clip["correct"] == str(int(row.argmax() == label))
        assert float(clip["probability"]) == pytest.approx(row.max().item(), abs=1e-4)
        assert float(clip["true_probability"]) == pytest.approx(row[label].item(), abs=1e-4)


def test_bare_snapshot_with_matching_head(data, trained, tmp_path):
    weights, model, _ = trained
    bare = tmp_path / "snapshot.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, bare)
    assert _eval(data, bare, tmp_path / "m.yaml", "--set", *TINY) == 0
    values = {e["key"]: e["value"] for e in yaml.safe_load((tmp_path / "m.yaml").read_text())["metrics"]}
    assert not math.isnan(values["accuracy"])


def test_head_of_another_class_count_is_a_clear_error(data, tmp_path, capsys):
    template = apply_overrides(load_template(S3D), TINY)
    other = build_model(template, num_classes=5)
    snapshot = tmp_path / "five.pth"
    torch.save({"state_dict": other.state_dict()}, snapshot)
    assert _eval(data, snapshot, tmp_path / "m.yaml", "--set", *TINY) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "5 classes" in err and "3" in err

    two_heads = tmp_path / "two_heads.pth"
    state = {k: v for k, v in other.state_dict().items() if not k.startswith("cls_head.")}
    for i in range(2):
        state.update({f"cls_head.{i}.{k}": v for k, v in other.cls_head.state_dict().items()})
    torch.save({"state_dict": state}, two_heads)
    assert _eval(data, two_heads, tmp_path / "m.yaml", "--set", *TINY) == 2
    assert "2 heads" in capsys.readouterr().err


def test_unreadable_weights(data, tmp_path, capsys):
    junk = tmp_path / "junk.pth"
    junk.write_text("junk")
    assert _eval(data, junk, tmp_path / "m.yaml") == 2
    assert "junk.pth" in capsys.readouterr().err


def _template_file(path, **replace):
    text = S3D.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new, 1)
    path.write_text(text)
    return path


def test_template_flag_wins_over_the_work_dirs_template(data, trained, tmp_path, capsys):
    broken = _template_file(tmp_path / "broken.yaml", **{"clip_len: 16": "clip_len: 0"})
    argv = ["--template", str(broken), "--load-weights", str(trained[0]), "--test-ann-files", "val.txt",
            "--test-data-roots", str(data), "--save-metrics-to", str(tmp_path / "m.yaml")]  # fmt: skip
    assert cli.main(argv, template_path=S3D) == 2  # as run by a work dir's eval.py
    err = capsys.readouterr().err
    assert "broken.yaml" in err and "input.clip_len" in err and len(err.strip().splitlines()) == 1


def test_checkpoint_settings_beat_the_template_flag_and_the_file_is_read_once(
    data, trained, tmp_path, capsys, monkeypatch
):
    weights, _, _ = trained
    other = _template_file(
        tmp_path / "other.yaml", **{"clip_len: 16": "clip_len: 8", "size: 224": "size: 64"}
    )
    real_load, calls = torch.load, []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a[0]) or real_load(*a, **k))
    argv = ["--template", str(other), "--load-weights", str(weights), "--test-ann-files", "val.txt",
            "--test-data-roots", str(data), "--save-metrics-to", str(tmp_path / "m.yaml"), "--device", "cpu",
            "--workers", "0", "--no-progress"]  # fmt: skip
    assert cli.main(argv, template_path=tmp_path / "not_used.yaml") == 0
    out = capsys.readouterr().out
    assert "4x32x32" in out and "8x64x64" not in out
    assert "input.clip_len 4, not 8" in out and "using the model/input/loss settings" in out
    assert [str(c) for c in calls] == [str(weights)]


def test_without_load_weights_the_best_epoch_is_evaluated(data, trained, tmp_path, capsys):
    """eval.py of a work dir takes outputs/best.pth, else outputs/latest.pth, else says what is missing."""
    import shutil

    work = tmp_path / "work"
    (work / "outputs").mkdir(parents=True)
    shutil.copy(S3D, work / "template.yaml")
    argv = ["--test-ann-files", "val.txt", "--test-data-roots", str(data), "--device", "cpu", "--workers", "0",
            "--no-progress", "--save-metrics-to", str(tmp_path / "m.yaml")]  # fmt: skip
    assert cli.main(argv, template_path=work / "template.yaml") == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1
        and "neither best.pth nor latest.pth" in err
        and str(work / "outputs") in err
    )

    shutil.copy(trained[0], work / "outputs" / "latest.pth")
    assert cli.main(argv, template_path=work / "template.yaml") == 0
    assert f"Evaluating {work / 'outputs' / 'latest.pth'}" in capsys.readouterr().out

    shutil.copy(trained[0], work / "outputs" / "best.pth")
    assert cli.main(argv, template_path=work / "template.yaml") == 0
    assert f"Evaluating {work / 'outputs' / 'best.pth'}" in capsys.readouterr().out
