"""training.cache_features: cached views equal the frozen part's outputs, invalidation, exact resume."""

from pathlib import Path

import pytest
import torch

from action_rec.data import RawFrameDataset, make_synthetic_dataset, normalize_batch
from action_rec.models import build_model
from action_rec.templates import apply_overrides, load_template
from action_rec.training.distributed import EpochSeededDataset
from action_rec.training.feature_cache import CACHE_DIR, build_feature_cache, cache_key
from action_rec.training.freezing import BackboneSplit

ROOT = Path(__file__).resolve().parents[1]
X3D = ROOT / "model_templates/custom-action-recognition/x3d-rgb-mobilenet-v3-lgd-gc/template.yaml"
S3D = ROOT / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
TINY = ["input.clip_len=4", "input.size=32", "input.resize_short=36"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache") / "data"
    return make_synthetic_dataset(root, num_classes=2, train_per_class=3, val_per_class=1, frames=8, size=40)


def test_cached_views_are_the_frozen_outputs_of_each_views_clip(data, tmp_path):
    template = apply_overrides(load_template(X3D), TINY)
    train_set = RawFrameDataset(["train.txt"], [data], template, "train", normalize=False)
    torch.manual_seed(0)
    model = build_model(template, num_classes=2).eval()
    split = BackboneSplit.from_trainable(model.backbone, 13)  # early cut: a fresh model still varies there

    def prepare(clips):
        return normalize_batch(clips, template.input.mean, template.input.std)

    views = build_feature_cache(
        tmp_path, template, train_set, model, split, 2, 7, 4, 0, prepare, False, log=print
    )
    assert len(views) == 2 and views[0][0].shape[0] == len(train_set)
    clips = EpochSeededDataset(train_set, 7)
    for view in (0, 1):
        for i in (0, 5):
            clip, _ = clips[(view, i)]
            with torch.no_grad():
                x, glob = split.prefix(prepare(clip[None]))
            torch.testing.assert_close(views[view][0][i], x[0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(views[view][1][i], glob[0])
    assert not torch.equal(views[0][0][0], views[1][0][0])  # two different augmentations

    # The key follows the data, template and frozen weights; a new key replaces the stale cache.
    key = cache_key(template, train_set, split, 2, 7)
    assert (tmp_path / CACHE_DIR / key / "view_1.pt").is_file()
    assert cache_key(apply_overrides(template, ["input.size=28"]), train_set, split, 2, 7) != key
    assert cache_key(template, train_set, BackboneSplit.from_trainable(model.backbone, 12), 2, 7) != key
    with torch.no_grad():
        model.backbone.features[0][0].weight.mul_(2)
    changed = cache_key(template, train_set, split, 2, 7)
    assert changed != key
    with torch.no_grad():
        model.backbone.features[-1].conv[0].weight.mul_(2)  # a trainable module: the cache stays valid
    assert cache_key(template, train_set, split, 2, 7) == changed
    head = BackboneSplit.from_trainable(model.backbone, 0)
    build_feature_cache(
        tmp_path, template, train_set, model, head, 1, 7, 4, 0, prepare, False, log=lambda m: None
    )
    assert [p.name for p in (tmp_path / CACHE_DIR).iterdir()] == [cache_key(template, train_set, head, 1, 7)]


def test_head_only_training_on_cached_features_resumes_exactly(data, tmp_path):
    from action_rec.models.checkpoint import read_checkpoint
    from action_rec.training import cli

    def argv(out, *extra):
        return [
            "--template", str(S3D), "--train-ann-files", "train.txt", "--train-data-roots", str(data),
            "--save-checkpoints-to", str(out), "--epochs", "3", "--batch-size", "3", "--device", "cpu",
            "--workers", "0", "--no-progress", "--base-learning-rate", "0.05", *extra, "--set", *TINY,
            "training.trainable=head", "training.cache_features=true", "training.cache_views=2",
        ]  # fmt: skip

    assert cli.main(argv(tmp_path / "whole")) == 0
    assert len(list((tmp_path / "whole" / CACHE_DIR).glob("*/view_*.pt"))) == 2
    assert cli.main(argv(tmp_path / "split", "--stop-after", "1")) == 0
    assert cli.main(argv(tmp_path / "split", "--resume")) == 0
    a, b = (read_checkpoint(tmp_path / d / "latest.pth").raw["state_dict"] for d in ("whole", "split"))
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


def test_cached_loaders_are_new_loaders_not_a_patched_trainer(data, tmp_path):
    """`cached_feature_loaders` returns the loaders to train on (cached features, no sample filter, the
    cut in ``cached_start``) and leaves the ones it was given as they were."""
    from action_rec.training.distributed import ProcessInfo
    from action_rec.training.feature_cache import cached_feature_loaders
    from action_rec.training.loaders import build_train_loaders
    from action_rec.training.logs import RunLog
    from action_rec.training.options import TrainOptions

    template = apply_overrides(load_template(X3D), [*TINY, "training.sample_filtering=true"])
    train_set = RawFrameDataset(["train.txt"], [data], template, "train", normalize=False)
    options = TrainOptions(
        out_dir=tmp_path, train_ann_files=["train.txt"], train_data_roots=[data], workers=0
    )
    info = ProcessInfo()
    loaders = build_train_loaders(template, options, info, train_set, None, RunLog(tmp_path, enabled=False))
    model = build_model(template, num_classes=2)
    everything = BackboneSplit.from_trainable(model.backbone, None)
    args = (tmp_path, template, train_set, model, lambda clips: clips.float(), 7, info, False, lambda m: None)
    assert cached_feature_loaders(loaders, everything, *args) is loaders  # nothing frozen: unchanged
    split = BackboneSplit.from_trainable(model.backbone, 2)
    cached = cached_feature_loaders(loaders, split, *args)
    assert cached.cached_start == split.start == 14 and cached.sample_filter is None
    assert loaders.cached_start == 0 and loaders.sample_filter is not None  # the given ones untouched
    assert cached.train is not loaders.train and cached.val is loaders.val
    cached.sampler.set_epoch(0)
    (x, glob), labels = next(iter(cached.train))
    assert x.shape[0] == glob.shape[0] == labels.shape[0] == cached.batch_size
