"""Bad input and run-time failures: one clear line, exit 2 (user's input) or 1 (run time), no traceback."""

from pathlib import Path

import pytest
import torch

from action_rec.data import make_synthetic_dataset
from action_rec.models.checkpoint import read_checkpoint
from action_rec.training import cli, engine, trainer

ROOT = Path(__file__).resolve().parents[1]
S3D = ROOT / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
TINY = ["input.clip_len=4", "input.size=32", "input.resize_short=40"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("errors") / "data",
        num_classes=2,
        train_per_class=2,
        val_per_class=1,
        frames=8,
        size=40,
    )


def argv(data, out, *extra, train="train.txt", val="val.txt", epochs=1):
    return [
        "--template", str(S3D), "--train-ann-files", train, "--train-data-roots", str(data),
        "--val-ann-files", val, "--val-data-roots", str(data), "--save-checkpoints-to", str(out),
        "--epochs", str(epochs), "--batch-size", "2", "--device", "cpu", "--workers", "0", "--no-progress",
        "--set", *TINY, *extra,
    ]  # fmt: skip


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_empty_training_set(data, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert cli.main(argv(data, tmp_path / "out", train=str(empty))) == 2
    assert "empty.txt" in _one_line_error(capsys)


def test_missing_annotation_file(data, tmp_path, capsys):
    assert cli.main(argv(data, tmp_path / "out", train="nowhere.txt")) == 2
    assert "nowhere.txt" in _one_line_error(capsys)


def test_label_beyond_class_count_names_file_and_line(data, tmp_path, capsys):
    lines = (data / "val.txt").read_text().splitlines()
    bad = tmp_path / "val_bad.txt"
    rel, _label, *rest = lines[1].split()
    bad.write_text("\n".join([lines[0], " ".join([rel, "7", *rest])]) + "\n")
    assert cli.main(argv(data, tmp_path / "out", val=str(bad))) == 2
    line = _one_line_error(capsys)
    assert "val_bad.txt:2" in line and "7" in line


def test_bad_override_and_resume_without_checkpoint(data, tmp_path, capsys):
    assert cli.main(argv(data, tmp_path / "out", "training.no_such_key=1")) == 2
    assert "no_such_key" in _one_line_error(capsys)
    assert cli.main(argv(data, tmp_path / "out", "--resume")) == 2
    assert "--resume" in _one_line_error(capsys)


def test_nan_loss_stops_naming_epoch_and_iteration_and_keeps_last_checkpoint(
    data, tmp_path, capsys, monkeypatch
):
    real = trainer.build_criterion
    calls = {"n": 0}

    def poisoned(template, class_weights=None):
        criterion = real(template, class_weights)

        def forward(*args, **kwargs):
            loss, parts = criterion(*args, **kwargs)
            calls["n"] += 1
            return (loss * float("nan") if calls["n"] == 3 else loss), parts  # epoch 2, iteration 1

        return forward

    monkeypatch.setattr(trainer, "build_criterion", poisoned)
    out = tmp_path / "out"
    assert cli.main(argv(data, out, epochs=3)) == 1
    line = _one_line_error(capsys)
    assert "nan" in line and "epoch 2, iteration 1" in line and "latest.pth" in line
    ckpt = read_checkpoint(out / "latest.pth").raw
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_out_of_memory_is_one_line(data, tmp_path, capsys, monkeypatch):
    def exhausted(self, clips):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(engine.TrainStep, "forward", exhausted)
    assert cli.main(argv(data, tmp_path / "out")) == 1
    line = _one_line_error(capsys)
    assert "out of memory at epoch 1, iteration 1" in line and "--batch-size" in line


def test_template_flag_wins_over_the_work_dirs_template(data, tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text(S3D.read_text().replace("clip_len: 16", "clip_len: 0", 1))
    args = argv(data, tmp_path / "out")
    args[args.index("--template") + 1] = str(broken)
    assert cli.main(args, template_path=S3D) == 2  # as run by a work dir's train.py
    line = _one_line_error(capsys)
    assert "broken.yaml" in line and "input.clip_len" in line


def test_resume_with_other_model_settings_is_refused(data, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(argv(data, out, "--stop-after", "1", epochs=2)) == 0
    assert cli.main(argv(data, out, "input.clip_len=5", "--resume", epochs=2)) == 2
    line = _one_line_error(capsys)
    assert "--resume" in line and "latest.pth" in line and "input.clip_len 4, not 5" in line
    assert read_checkpoint(out / "latest.pth").raw["epoch"] == 1  # nothing trained on
