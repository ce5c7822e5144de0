"""Training end to end at a tiny size: outputs, fine-tuning to a new class count, head-only phase."""

import json
from pathlib import Path

import pytest
import torch

from action_rec.data import make_synthetic_dataset
from action_rec.models.checkpoint import read_checkpoint
from action_rec.training import cli
from action_rec.training.logs import read_metrics

ROOT = Path(__file__).resolve().parents[1]
S3D = ROOT / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
X3D = ROOT / "model_templates/custom-action-recognition/x3d-rgb-mobilenet-v3-lgd-gc/template.yaml"
TINY = ["input.clip_len=4", "input.size=32", "input.resize_short=40", "training.warmup_epochs=1"]


@pytest.fixture(scope="module")
def data3(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    return make_synthetic_dataset(
        root / "three", num_classes=3, train_per_class=3, val_per_class=2, frames=12, size=48
    )


@pytest.fixture(scope="module")
def data2(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    return make_synthetic_dataset(
        root / "two", num_classes=2, train_per_class=3, val_per_class=2, frames=12, size=48, seed=1
    )


def argv(template, data, out, *extra, epochs=1):
    return [
        "--template", str(template), "--train-ann-files", "train.txt", "--train-data-roots", str(data),
        "--val-ann-files", "val.txt", "--val-data-roots", str(data), "--save-checkpoints-to", str(out),
        "--epochs", str(epochs), "--batch-size", "3", "--base-learning-rate", "0.05", "--device", "cpu",
        "--workers", "0", "--no-progress", "--set", *TINY, *extra,
    ]  # fmt: skip


def test_x3d_run_writes_every_output(data3, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(argv(X3D, data3, out, epochs=2)) == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "latest.pth",
        "best.pth",
        "train.log",
        "metrics.jsonl",
        "training_curves.png",
        "result.json",
    } <= names
    ckpt = read_checkpoint(out / "latest.pth").raw
    assert set(ckpt) >= {
        "state_dict",
        "optimizer",
        "scheduler",
        "epoch",
        "iteration",
        "rng",
        "template",
        "class_names",
        "meta",
    }
    assert ckpt["epoch"] == 2 and ckpt["iteration"] == 2 * 3  # 9 clips, batch 3
    assert ckpt["class_names"] == ["moving_left", "moving_right", "moving_up"]
    assert ckpt["template"]["input"]["clip_len"] == 4 and ckpt["template"]["model"]["num_classes"] == 27
    assert ckpt["state_dict"]["cls_head.fc_angular.weight"].shape == (256, 3)
    records = read_metrics(out / "metrics.jsonl")
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert {"train_loss", "train_top1", "val_top1", "val_top5", "val_mean_class", "lr", "clips_per_s"} <= set(
        epochs[0]
    )
    # The AM-Softmax scale of each epoch's last iteration (global i = 2, 5 of N = 40 x 3), by the
    # original's PolyScalarScheduler formula.
    n, f = 40 * 3, (5.0 - 30.0) / (1 - 1.2)
    for record, i in zip(epochs, (2, 5), strict=True):
        expected = f / n**1.2 * i**1.2 - 1.2 * f / n * i + 30.0
        assert record["loss/scale"] == pytest.approx(expected, rel=1e-9)
    steps = [r for r in records if r["kind"] == "train"]
    assert len(steps) == 6 and all(r["local_push"] is not None for r in steps)  # X3D's extra loss is on
    best = read_checkpoint(out / "best.pth").raw
    assert best["meta"]["best_top1"] == max(r["val_top1"] for r in epochs)
    result = json.loads((out / "result.json").read_text())
    assert result["iterations"] == 6 and result["best_top1"] == best["meta"]["best_top1"]
    log = (out / "train.log").read_text()
    assert "from scratch" in log and "Done: 2/2 epochs" in log


def test_fine_tuning_to_a_new_class_count_trains_the_head_alone_first(data3, data2, tmp_path, capsys):
    pretrained = tmp_path / "pretrained"
    assert cli.main(argv(S3D, data3, pretrained)) == 0
    source = read_checkpoint(pretrained / "latest.pth").raw["state_dict"]
    capsys.readouterr()

    tuned = tmp_path / "tuned"
    args = argv(S3D, data2, tuned, "training.head_only_epochs=1", epochs=1)
    assert cli.main(["--load-weights", str(pretrained / "latest.pth"), *args]) == 0
    output = capsys.readouterr().out
    lines = [line for line in output.splitlines() if "head re-initialised" in line]
    assert len(lines) == 1 and "2 classes" in lines[0] and "has 3" in lines[0]
    state = read_checkpoint(tuned / "latest.pth").raw["state_dict"]
    assert state["cls_head.fc_angular.weight"].shape == (256, 2)
    # The head-only epoch: backbone weights AND BatchNorm statistics untouched; the head trained.
    for key, value in source.items():
        if key.startswith("backbone."):
            assert torch.equal(value, state[key]), key
    assert not torch.equal(
        source["cls_head.fc_pre_angular.0.weight"], state["cls_head.fc_pre_angular.0.weight"]
    )

    # Past the head-only epochs the backbone trains too; from scratch there is no head-only phase.
    more = tmp_path / "more"
    args = argv(S3D, data2, more, "training.head_only_epochs=1", epochs=2)
    assert cli.main(["--load-weights", str(pretrained / "latest.pth"), *args]) == 0
    state = read_checkpoint(more / "latest.pth").raw["state_dict"]
    assert not torch.equal(
        source["backbone.features.1.conv.0.weight"], state["backbone.features.1.conv.0.weight"]
    )
    lrs = [r["lr"] for r in read_metrics(more / "metrics.jsonl") if r["kind"] == "train"]
    assert lrs[0] == pytest.approx(0.05 * 10)  # head at head_lr_multiplier x base lr in the head-only epoch


def test_precise_bn_replaces_stale_statistics_of_the_chosen_layers_only():
    from torch import nn

    from action_rec.training.engine import recompute_bn_statistics

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv3d(1, 2, 1), nn.BatchNorm3d(2), nn.Dropout(0.5), nn.Conv3d(2, 2, 1), nn.BatchNorm3d(2)
    )
    model.train()
    frozen_mean = model[4].running_mean.clone()
    batches = [(torch.randn(4, 1, 2, 3, 3) * 3 + 5, None) for _ in range(3)]
    with torch.no_grad():
        expected = torch.stack([model[0](x).mean(dim=(0, 2, 3, 4)) for x, _ in batches]).mean(0)
    used = recompute_bn_statistics(model[:2], batches, model, torch.device("cpu"))
    assert used == 3
    assert torch.allclose(model[1].running_mean, expected, atol=1e-5)  # plain average of the batch means
    assert torch.equal(model[4].running_mean, frozen_mean)  # not among the chosen layers
    assert model[1].momentum == 0.1 and model.training and model[2].training  # modes and momentum restored


def test_validate_and_precise_bn_feed_the_model_prepared_batches():
    """The trainer's uint8 batches reach the model only through `prepare` (there: normalize_batch)."""
    from torch import nn

    from action_rec.evaluation.loop import score_clips as validate
    from action_rec.training.engine import recompute_bn_statistics

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(1, 2, 1), nn.BatchNorm3d(2), nn.Flatten(), nn.LazyLinear(3))
    batches = [(torch.randint(0, 256, (4, 1, 2, 3, 3), dtype=torch.uint8), torch.tensor([0, 1, 2, 1]))]
    seen = []

    def prepare(clips: torch.Tensor) -> torch.Tensor:
        seen.append(clips.dtype)
        return (clips.float() - 128) / 64

    with torch.no_grad():
        model(prepare(batches[0][0]))  # materialise the lazy layer
        expected = model[0](prepare(batches[0][0])).mean(dim=(0, 2, 3, 4))
    seen.clear()
    assert recompute_bn_statistics(model, batches, model, torch.device("cpu"), prepare) == 1
    assert torch.allclose(model[1].running_mean, expected, atol=1e-5)
    metrics = validate(model, batches, 3, torch.device("cpu"), prepare)
    assert seen == [torch.uint8, torch.uint8] and 0 <= metrics["top1"] <= 100


def test_best_epoch_reads_validation_top1_with_one_clip_of_noise():
    """40 validation clips: one clip is 2.5 points. A tie or a one-clip dip goes to the later epoch; a
    larger drop does not; a new high always wins."""
    from action_rec.training.best_epoch import BestEpoch

    best = BestEpoch(clips=40)
    chosen = [best.update(top1, epoch) for epoch, top1 in enumerate([92.5, 97.5, 95.0, 92.5, 95.0, 97.5], 1)]
    assert chosen == [True, True, True, False, True, True] and (best.epoch, best.top1, best.peak) == (
        6,
        97.5,
        97.5,
    )
    resumed = BestEpoch.from_meta(40, best.state())
    assert resumed == best and not resumed.update(90.0, 7) and resumed.epoch == 6
    assert BestEpoch.from_meta(40, {"best_top1": 95.0, "best_epoch": 2}).peak == 95.0  # older checkpoints
    large = BestEpoch(clips=100_000)  # many clips: the highest top-1, as usual
    assert [large.update(t, e) for e, t in enumerate([90.0, 91.0, 90.99], 1)] == [True, True, False]


def test_a_tie_on_validation_makes_the_later_epoch_the_best(data2, tmp_path, monkeypatch):
    """A small validation set saturates (the same top-1 every epoch): best.pth is then the last of the
    tied epochs, the most trained one, not the first to reach the top; a real drop is not taken."""
    from action_rec.training.trainer import Trainer

    top1 = iter([50.0, 100.0, 100.0, 60.0])  # 4 validation clips: one is 25 points; 60 is a real drop
    monkeypatch.setattr(
        Trainer,
        "validate_epoch",
        lambda self, epoch: {"val_top1": next(top1), "val_top5": 100.0, "val_mean_class": 50.0},
    )
    out = tmp_path / "out"
    assert cli.main(argv(S3D, data2, out, epochs=4)) == 0
    best = read_checkpoint(out / "best.pth").raw
    assert best["epoch"] == 3 and best["meta"]["best_epoch"] == 3 and best["meta"]["best_peak"] == 100.0
    assert json.loads((out / "result.json").read_text())["best_epoch"] == 3
