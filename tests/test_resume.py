"""--resume after a kill ends with the same weights as an uninterrupted run (CPU, bit for bit)."""

from pathlib import Path

import pytest
import torch

from action_rec.data import make_synthetic_dataset
from action_rec.models.checkpoint import read_checkpoint
from action_rec.training import cli
from action_rec.training.logs import read_metrics

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
TINY = [
    "input.clip_len=4", "input.size=32", "input.resize_short=40", "training.warmup_epochs=1",
    "training.lr_schedule=cosine", "data.horizontal_flip=false",
]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("resume") / "data",
        num_classes=3,
        train_per_class=4,
        val_per_class=2,
        frames=12,
        size=48,
    )


def _argv(data, out, *extra, workers=0):
    return [
        "--template", str(TEMPLATE), "--train-ann-files", "train.txt", "--train-data-roots", str(data),
        "--val-ann-files", "val.txt", "--val-data-roots", str(data), "--save-checkpoints-to", str(out),
        "--epochs", "3", "--batch-size", "4", "--base-learning-rate", "0.05", "--device", "cpu",
        "--workers", str(workers), "--seed", "3", "--no-progress", "--set", *TINY, *extra,
    ]  # fmt: skip


def _assert_same_run(a: Path, b: Path) -> None:
    ca, cb = read_checkpoint(a / "latest.pth").raw, read_checkpoint(b / "latest.pth").raw
    assert ca["epoch"] == cb["epoch"] == 3 and ca["iteration"] == cb["iteration"]
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    for key, value in ca["state_dict"].items():
        assert torch.equal(value, cb["state_dict"][key]), key
    for pid, state in ca["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], cb["optimizer"]["state"][pid]["momentum_buffer"])
    assert ca["meta"]["best_top1"] == cb["meta"]["best_top1"]


def test_resume_after_stop_and_after_kill_mid_epoch_equals_uninterrupted(data, tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    assert cli.main(_argv(data, whole, workers=0)) == 0  # clips are seeded per (seed, epoch, clip):

    # 1. Stopped cleanly after epoch 1, then resumed.
    split = tmp_path / "split"  # the number of loader workers does not change them
    assert cli.main(_argv(data, split, "--stop-after", "1", workers=1)) == 0
    assert read_checkpoint(split / "latest.pth").raw["epoch"] == 1
    assert cli.main(_argv(data, split, "--resume", workers=1)) == 0
    _assert_same_run(whole, split)

    # 2. Killed in the middle of epoch 2 (after its second step), then resumed from epoch 1's checkpoint.
    killed = tmp_path / "killed"
    real_step = torch.optim.SGD.step
    calls = {"n": 0}

    def dying_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # 3 steps per epoch: the 2nd step of epoch 2
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", dying_step)
    assert cli.main(_argv(data, killed)) == 130
    monkeypatch.setattr(torch.optim.SGD, "step", real_step)
    assert read_checkpoint(killed / "latest.pth").raw["epoch"] == 1
    assert cli.main(_argv(data, killed, "--resume")) == 0
    _assert_same_run(whole, killed)
    epochs = [r["epoch"] for r in read_metrics(killed / "metrics.jsonl") if r["kind"] == "epoch"]
    assert epochs == [1, 2, 3]  # the interrupted epoch's records were replaced, not duplicated


def test_different_seed_gives_different_weights(data, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli.main(_argv(data, a, "--stop-after", "1")) == 0
    argv = _argv(data, b, "--stop-after", "1")
    argv[argv.index("--seed") + 1] = "4"
    assert cli.main(argv) == 0
    wa = read_checkpoint(a / "latest.pth").raw["state_dict"]["cls_head.fc_angular.weight"]
    wb = read_checkpoint(b / "latest.pth").raw["state_dict"]["cls_head.fc_angular.weight"]
    assert not torch.equal(wa, wb)
