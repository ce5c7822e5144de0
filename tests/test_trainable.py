"""training.trainable (all | head | blocks:N) and training.class_balance (none | sampler | loss)."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from action_rec.models import build_model
from action_rec.templates import TemplateError, apply_overrides, load_template
from action_rec.training.balance import BalancedSampler, class_weights
from action_rec.training.freezing import BackboneSplit, parse_trainable
from action_rec.training.losses import Criterion, am_softmax_loss

ROOT = Path(__file__).resolve().parents[1]
S3D = ROOT / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
X3D = ROOT / "model_templates/custom-action-recognition/x3d-rgb-mobilenet-v3-lgd-gc/template.yaml"


def test_parse_trainable_and_template_check():
    assert (
        parse_trainable("all") is None and parse_trainable("head") == 0 and parse_trainable("blocks:3") == 3
    )
    for bad in ("blocks:0", "blocks:16", "some", "blocks:"):
        with pytest.raises(ValueError):
            parse_trainable(bad)
    with pytest.raises(TemplateError, match="'training.trainable' must be all, head or blocks:N"):
        apply_overrides(load_template(S3D), ["training.trainable=blocks:16"])
    with pytest.raises(TemplateError, match="'training.class_balance' must be one of none, sampler, loss"):
        apply_overrides(load_template(S3D), ["training.class_balance=weights"])


@pytest.mark.parametrize("path", [S3D, X3D], ids=["s3d", "x3d"])
def test_prefix_then_suffix_is_the_backbone(path):
    torch.manual_seed(0)
    model = build_model(load_template(path), num_classes=3).eval()
    clips = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        whole = model.backbone(clips)
        for blocks in (None, 0, 1, 4, 15):
            split = BackboneSplit.from_trainable(model.backbone, blocks)
            x, glob = split.prefix(clips)
            assert torch.equal(split.suffix(x, glob), whole), blocks


def test_blocks_n_freezes_exactly_the_prefix_and_its_global_path():
    model = build_model(load_template(X3D), num_classes=3)
    model.train()
    split = BackboneSplit.from_trainable(model.backbone, 2)  # 16 modules: train features 14, 15
    assert split.start == 14
    split.freeze()
    for name, p in model.named_parameters():
        parts = name.split(".")
        if name.startswith("cls_head") or name.startswith("backbone.conv"):
            frozen = False
        elif parts[1] == "features":
            frozen = int(parts[2]) < 14
        else:  # lgd_upsample.upsample_m, lgd_pool.pooling_m, lgd_glob.glob_m
            frozen = int(parts[2].rsplit("_", 1)[1]) < 14
        assert p.requires_grad is not frozen, name
    assert not model.backbone.features[13].training and model.backbone.features[14].training
    assert not model.backbone.lgd_upsample["upsample_13"].training
    head = BackboneSplit.from_trainable(model.backbone, 0)
    head.freeze()
    assert head.head_only and not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.cls_head.parameters())


@pytest.mark.parametrize(
    ("trainable", "balance", "first_trained"), [("blocks:1", "loss", 15), ("head", "sampler", 99)]
)
def test_training_part_of_the_network_leaves_the_rest_untouched(tmp_path, trainable, balance, first_trained):
    from action_rec.data import make_synthetic_dataset
    from action_rec.models.checkpoint import read_checkpoint
    from action_rec.training import cli
    from action_rec.training.distributed import seed_everything

    data = make_synthetic_dataset(
        tmp_path / "d", num_classes=2, train_per_class=3, val_per_class=1, frames=8, size=40
    )
    tiny = ["input.clip_len=4", "input.size=32", "input.resize_short=36", f"training.trainable={trainable}",
            f"training.class_balance={balance}"]  # fmt: skip
    argv = [
        "--template", str(S3D), "--train-ann-files", "train.txt", "--train-data-roots", str(data),
        "--save-checkpoints-to", str(tmp_path / "out"), "--epochs", "1", "--batch-size", "3",
        "--base-learning-rate", "0.05", "--device", "cpu", "--workers", "0", "--no-progress", "--precise-bn", "4",
        "--set", *tiny,
    ]  # fmt: skip
    assert cli.main(argv) == 0
    # Precise BN ran before validation: only the trained layers' statistics may have moved.
    seed_everything(0)  # the trainer's initial weights: seed 0, then the model
    initial = build_model(apply_overrides(load_template(S3D), tiny), num_classes=2).state_dict()
    trained = read_checkpoint(tmp_path / "out" / "latest.pth").raw["state_dict"]
    for key, value in initial.items():
        if key.startswith("backbone.features.") and int(key.split(".")[2]) < first_trained:
            assert torch.equal(value, trained[key]), key  # weights and BN statistics
        if key.startswith("backbone.conv.") and first_trained > 15:
            assert torch.equal(value, trained[key]), key
    last, conv = "backbone.features.15.conv.0.weight", "backbone.conv.0.0.weight"
    assert torch.equal(initial[last], trained[last]) is (first_trained > 15)
    assert torch.equal(initial[conv], trained[conv]) is (first_trained > 15)
    head = "cls_head.fc_pre_angular.0.weight"
    assert not torch.equal(initial[head], trained[head])


def test_class_weights_are_n_over_c_times_class_count():
    labels = [0] * 6 + [1] * 2 + [2] * 4
    expected = torch.tensor([12 / (4 * 6), 12 / (4 * 2), 12 / (4 * 4), 0.0])
    assert torch.allclose(class_weights(labels, 4), expected)


def test_balanced_sampler_draws_classes_equally_and_splits_between_processes():
    labels = [0] * 90 + [1] * 10
    single = BalancedSampler(labels, 2, seed=1)
    drawn = []
    for epoch in range(40):
        single.set_epoch(epoch)
        drawn += [labels[i] for i in single]
    drawn = torch.tensor(drawn)
    assert len(single) == 100 and abs(drawn.float().mean().item() - 0.5) < 0.03
    ranks = [BalancedSampler(labels, 2, seed=1, rank=r, world_size=3) for r in range(3)]
    for r in ranks:
        r.set_epoch(5)
    shards = [list(r) for r in ranks]
    assert [len(s) for s in shards] == [34, 34, 34] == [len(r) for r in ranks]
    again = BalancedSampler(labels, 2, seed=1, rank=0, world_size=3)
    again.set_epoch(5)
    assert list(again) == shards[0]  # a function of (seed, epoch): every process draws the same
    again.set_epoch(6)
    assert list(again) != shards[0]


def test_class_weighted_losses():
    torch.manual_seed(0)
    cos = torch.rand(5, 3) * 2 - 1
    labels = torch.tensor([0, 0, 0, 1, 2])
    weights = class_weights(labels.tolist(), 3)
    per_sample = torch.stack(
        [
            am_softmax_loss(cos[i : i + 1], labels[i : i + 1], 10.0, 0.35, 0.0, positive_only=False)
            for i in range(5)
        ]
    )
    w = weights[labels]
    expected = (w * per_sample).sum() / w.sum()
    got = am_softmax_loss(cos, labels, 10.0, 0.35, 0.0, positive_only=False, weights=w)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    template = apply_overrides(load_template(S3D), ["loss.type=cross_entropy"])
    loss, _ = Criterion(template, weights)(cos, labels, epoch=45.0)  # scale 5 after 40 epochs
    assert loss.item() == pytest.approx(F.cross_entropy(5.0 * cos, labels, weight=weights).item(), rel=1e-6)


@pytest.mark.parametrize(("setting", "trained_layers_update"), [("auto", False), ("update", True)])
def test_fine_tuning_in_small_batches_keeps_the_loaded_bn_statistics(
    tmp_path, setting, trained_layers_update
):
    """Fine-tuning the last block in batches of 2: with training.bn_statistics auto no BatchNorm's
    running statistics move (precise BN included), while the block's weights train; `update` moves
    those of the trained layers and never those of the frozen prefix."""
    from action_rec.data import make_synthetic_dataset
    from action_rec.models.checkpoint import read_checkpoint
    from action_rec.training import cli

    data = make_synthetic_dataset(
        tmp_path / "d", num_classes=2, train_per_class=3, val_per_class=1, frames=8, size=40
    )
    tiny = ["input.clip_len=4", "input.size=32", "input.resize_short=36", "training.trainable=blocks:1",
            "training.head_only_epochs=0", f"training.bn_statistics={setting}"]  # fmt: skip
    torch.manual_seed(1)
    pretrained = build_model(apply_overrides(load_template(S3D), tiny), num_classes=2)
    with torch.no_grad():  # statistics of some earlier data set, unlike a fresh model's 0 and 1
        for layer in pretrained.modules():
            if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
                layer.running_mean.uniform_(-0.5, 0.5)
                layer.running_var.uniform_(0.5, 2.0)
    torch.save({"state_dict": pretrained.state_dict()}, tmp_path / "pretrained.pth")
    argv = [
        "--template", str(S3D), "--train-ann-files", "train.txt", "--train-data-roots", str(data),
        "--load-weights", str(tmp_path / "pretrained.pth"), "--save-checkpoints-to", str(tmp_path / "out"),
        "--epochs", "1", "--batch-size", "2", "--base-learning-rate", "0.05", "--device", "cpu",
        "--workers", "0", "--no-progress", "--precise-bn", "4", "--set", *tiny,
    ]  # fmt: skip
    assert cli.main(argv) == 0
    loaded = pretrained.state_dict()
    tuned = read_checkpoint(tmp_path / "out" / "latest.pth").raw["state_dict"]
    statistics = [key for key in loaded if key.endswith(("running_mean", "running_var"))]
    frozen = [
        key for key in statistics if key.startswith("backbone.features.") and int(key.split(".")[2]) < 15
    ]
    trained = [key for key in statistics if key not in frozen]
    assert frozen and trained
    assert all(torch.equal(loaded[key], tuned[key]) for key in frozen)
    moved = [key for key in trained if not torch.equal(loaded[key], tuned[key])]
    assert (moved == trained) if trained_layers_update else not moved
    weight = "backbone.features.15.conv.0.weight"
    assert not torch.equal(loaded[weight], tuned[weight])  # the block did train
