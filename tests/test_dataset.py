"""RawFrameDataset: several annotation files and roots, label maps, clips out, clear errors."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from action_rec.data.annotations import AnnotationError
from action_rec.data.crossnorm import MEAN_STD_LIST, read_mean_std_list
from action_rec.data.dataset import FrameReadError, RawFrameDataset, load_frames, worker_init_fn
from action_rec.data.synthetic import CLASSES
from action_rec.data.transforms import normalize_batch
from action_rec.errors import UserError
from action_rec.templates import Template, apply_overrides

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "model_templates/custom-action-recognition/x3d-rgb-mobilenet-v3-lgd-gc/template.yaml"


def small(template: Template, clip_len: int = 8, size: int = 32) -> Template:
    return apply_overrides(
        template, [f"input.clip_len={clip_len}", f"input.size={size}", "input.resize_short=40"]
    )


@pytest.fixture
def data_copy(synthetic_dataset, tmp_path) -> Path:
    """A private copy of the synthetic dataset that a test may change."""
    return Path(shutil.copytree(synthetic_dataset, tmp_path / "data"))


def test_train_and_val_items(synthetic_dataset, x3d_template):
    template = small(x3d_template)
    train = RawFrameDataset(["train.txt"], [synthetic_dataset], template, "train")
    assert len(train) == 6 * 4
    assert train.class_names == [c.name for c in CLASSES[:6]] and train.num_classes == 6
    clip, label = train[5]
    assert clip.shape == (3, 8, 32, 32) and clip.dtype == torch.float32 and label == train.records[5].label
    val = RawFrameDataset(["val.txt"], [synthetic_dataset], template, "val", class_names=train.class_names)
    a, _ = val[3]
    b, _ = val[3]
    assert torch.equal(a, b)  # one centred clip, no randomness
    torch.manual_seed(0)
    c, _ = train[3]
    torch.manual_seed(0)
    d, _ = train[3]
    e, _ = train[3]
    assert torch.equal(c, d) and not torch.equal(d, e)  # random, and reproducible from torch's seed


def test_uint8_items_normalised_per_batch_equal_the_float_items(data_copy, x3d_template):
    """The trainer's datasets (normalize=False): uint8 clips that normalize_batch turns into the float
    items of the same seed, CrossNorm and photometric distortion included."""
    template = apply_overrides(
        small(x3d_template), ["data.colour={none: 0.2, photometric: 0.4, crossnorm: 0.4}"]
    )
    (data_copy / MEAN_STD_LIST).write_text("90,120,100 40,45,70\n110,100,90 50,55,60\n")
    mean, std = template.input.mean, template.input.std
    for split in ("train", "val"):
        as_float = RawFrameDataset(["train.txt"], [data_copy], template, split)
        as_uint8 = RawFrameDataset(["train.txt"], [data_copy], template, split, normalize=False)
        for index in range(0, len(as_float), 3):
            torch.manual_seed(index)
            ref, label = as_float[index]
            torch.manual_seed(index)
            clip, same_label = as_uint8[index]
            assert clip.dtype == torch.uint8 and clip.shape == ref.shape == (3, 8, 32, 32)
            assert label == same_label
            out = normalize_batch(clip[None], mean, std)[0]
            assert (out - ref).abs().max() <= 0.5 / min(std) + 1e-5, (split, index)


def test_several_files_and_roots_keep_their_source(synthetic_dataset, data_copy, x3d_template):
    ds = RawFrameDataset(["train.txt", "val.txt"], [synthetic_dataset, data_copy], small(x3d_template), "val")
    assert len(ds) == 24 + 12
    assert {r.source for r in ds.records[:24]} == {0} and {r.source for r in ds.records[24:]} == {1}
    assert ds.records[30].frame_dir.is_relative_to(data_copy)
    assert ds.records[30].ann_file == str(data_copy / "val.txt")
    one_root = RawFrameDataset(["train.txt", "val.txt"], [synthetic_dataset], small(x3d_template), "val")
    assert len(one_root) == 36  # one root for all files
    with pytest.raises(UserError, match="2 annotation files but 3 data roots"):
        RawFrameDataset(["train.txt", "val.txt"], [synthetic_dataset] * 3, x3d_template, "val")


def test_class_count_without_a_label_map(data_copy, x3d_template):
    (data_copy / "label_map.txt").unlink()
    (data_copy / "few.txt").write_text("train/moving_left_0000 1 0 32 0 32 30\n")
    (data_copy / "more.txt").write_text("train/moving_left_0001 4 0 32 0 32 30\n")
    ds = RawFrameDataset(["few.txt", "more.txt"], [data_copy], small(x3d_template), "val")
    assert ds.num_classes == 5 and ds.class_names == ["0", "1", "2", "3", "4"]  # max label + 1 over all files


def test_label_out_of_range_names_file_and_line(data_copy, x3d_template):
    (data_copy / "bad.txt").write_text(
        "train/moving_left_0000 0 0 32 0 32 30\ntrain/moving_left_0001 6 0 32 0 32 30\n"
    )
    with pytest.raises(
        AnnotationError, match=r"bad\.txt:2: label_id 6 is out of range: label_map\.txt has 6 classes"
    ):
        RawFrameDataset(["bad.txt"], [data_copy], x3d_template, "val")
    with pytest.raises(
        AnnotationError, match=r"bad\.txt:2: label_id 6 is out of range: the given class names has 2"
    ):
        RawFrameDataset(["bad.txt"], [data_copy], x3d_template, "val", class_names=["a", "b"])


def test_explicit_class_names_win(synthetic_dataset, x3d_template):
    names = [f"c{i}" for i in range(8)]
    ds = RawFrameDataset(["val.txt"], [synthetic_dataset], x3d_template, "val", class_names=names)
    assert ds.class_names == names and ds.num_classes == 8


def test_label_maps_of_two_roots_must_agree(synthetic_dataset, data_copy, x3d_template):
    (data_copy / "label_map.txt").write_text("a\nb\nc\nd\ne\nf\n")
    with pytest.raises(AnnotationError, match=r"label map differs from"):
        RawFrameDataset(["train.txt", "val.txt"], [synthetic_dataset, data_copy], x3d_template, "val")


def test_empty_annotation_file(data_copy, x3d_template):
    (data_copy / "empty.txt").write_text("# nothing yet\n")
    with pytest.raises(AnnotationError, match=r"empty\.txt: no samples"):
        RawFrameDataset(["empty.txt"], [data_copy], x3d_template, "train")


def test_missing_or_corrupt_frame_at_load_time(data_copy, x3d_template):
    ds = RawFrameDataset(["val.txt"], [data_copy], small(x3d_template, clip_len=16), "val")
    rec = ds.records[2]
    victim = rec.frame_path(int(ds.clip_indices(2)[5]))
    victim.unlink()
    with pytest.raises(FrameReadError) as info:
        ds[2]
    assert str(info.value) == f"{data_copy / 'val.txt'}:3: frame file {victim} not found"
    victim.write_bytes(b"not a jpeg")
    with pytest.raises(FrameReadError, match=r"val\.txt:3: frame file .* cannot be decoded"):
        ds[2]


def test_load_frames_is_rgb_and_sampler_independent(tmp_path):
    from action_rec.data.annotations import parse_annotation_file

    d = tmp_path / "rawframes" / "v"
    d.mkdir(parents=True)
    for i in range(1, 4):
        cv2.imwrite(str(d / f"{i:05d}.png"), np.full((4, 6, 3), (0, 0, 40 * i), np.uint8))  # BGR: red
    (tmp_path / "a.txt").write_text("v 0 0 3 0 3 30\n")
    rec = parse_annotation_file(tmp_path / "a.txt", frame_pattern="{:05d}.png")[0]
    frames = load_frames(rec, [3, 1, 3])
    assert [f[0, 0].tolist() for f in frames] == [[120, 0, 0], [40, 0, 0], [120, 0, 0]]
    assert frames[0] is frames[2]  # decoded once


def test_crossnorm_file_absent_is_logged(synthetic_dataset, x3d_template, caplog):
    with caplog.at_level(logging.WARNING, logger="action_rec.data.dataset"):
        ds = RawFrameDataset(["train.txt"], [synthetic_dataset], x3d_template, "train")
    assert ds.transform.mean_std_pairs is None
    assert any("CrossNorm disabled" in r.message and MEAN_STD_LIST in r.message for r in caplog.records)
    caplog.clear()
    x3d_template = apply_overrides(
        x3d_template, ["data.colour={none: 0.5, photometric: 0.5, crossnorm: 0.0}"]
    )
    with caplog.at_level(logging.WARNING, logger="action_rec.data.dataset"):
        RawFrameDataset(["train.txt"], [synthetic_dataset], x3d_template, "train")
    assert not caplog.records  # not asked for: nothing to say


def test_make_mean_std_list_tool_enables_crossnorm(data_copy, x3d_template, caplog):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import make_mean_std_list
    finally:
        sys.path.remove(str(REPO / "tools"))
    code = make_mean_std_list.main(
        [
            "--template",
            str(TEMPLATE),
            "--train-ann-files",
            "train.txt",
            "--train-data-roots",
            str(data_copy),
            "--workers",
            "0",
        ]
    )
    assert code == 0
    pairs = read_mean_std_list(data_copy / MEAN_STD_LIST)
    assert 1 <= len(pairs) <= 24 and (pairs > 1).all()
    with caplog.at_level(logging.INFO, logger="action_rec.data.dataset"):
        ds = RawFrameDataset(["train.txt"], [data_copy], x3d_template, "train")
    assert ds.transform.mean_std_pairs.shape == pairs.shape
    assert any("CrossNorm enabled" in r.message for r in caplog.records)


def test_template_path_and_dataloader_workers(synthetic_dataset):
    ds = RawFrameDataset(["val.txt"], [synthetic_dataset], TEMPLATE, "train")  # loaded by load_template
    loader = DataLoader(ds, batch_size=4, num_workers=2, worker_init_fn=worker_init_fn)
    clips, labels = next(iter(loader))
    assert clips.shape == (4, 3, 16, 224, 224) and labels.tolist() == [r.label for r in ds.records[:4]]


def test_real_rawframes_with_their_own_pattern(real_data_dir, tmp_path, x3d_template):
    """mmaction2's test frames (img_00001.jpg ..., 320 x 240) through the template's frame_pattern."""
    (tmp_path / "rawframes").mkdir()
    (tmp_path / "rawframes" / "imgs").symlink_to(real_data_dir / "mmaction2" / "imgs")
    (tmp_path / "test.txt").write_text("imgs 0 0 10 0 10 25\n")
    with pytest.raises(AnnotationError, match=r"test\.txt:1: frame file .*00001\.jpg not found"):
        RawFrameDataset(["test.txt"], [tmp_path], x3d_template, "test")
    x3d_template = apply_overrides(x3d_template, ["data.frame_pattern=img_{:05d}.jpg"])
    for split in ("test", "train"):
        ds = RawFrameDataset(["test.txt"], [tmp_path], x3d_template, split)
        clip, label = ds[0]
        assert clip.shape == (3, 16, 224, 224) and label == 0
        assert set(ds.clip_indices(0, np.random.default_rng(0)).tolist()) <= set(range(1, 11))  # looped


def truncate(path: Path) -> None:
    """A partial copy: the first 60% of the JPEG's bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])


def test_truncated_frame_stops_with_file_line_and_path(data_copy, x3d_template):
    """OpenCV decodes a half JPEG into a half-grey frame with only a warning; the dataset refuses it."""
    ds = RawFrameDataset(["val.txt"], [data_copy], small(x3d_template, clip_len=16), "val")
    victim = ds.records[1].frame_path(int(ds.clip_indices(1)[3]))
    assert cv2.imread(str(victim)) is not None
    truncate(victim)
    assert cv2.imread(str(victim)) is not None  # what OpenCV alone would train on
    with pytest.raises(FrameReadError) as info:
        ds[1]
    assert str(info.value) == (
        f"{data_copy / 'val.txt'}:2: frame file {victim} is truncated (no JPEG end-of-image marker: a partial copy?)"
    )


def test_padding_after_the_jpeg_end_marker_is_accepted(data_copy, x3d_template):
    ds = RawFrameDataset(["val.txt"], [data_copy], small(x3d_template), "val")
    for index in ds.clip_indices(0):
        path = ds.records[0].frame_path(int(index))
        path.write_bytes(path.read_bytes() + b"\x00" * 300)
    assert ds[0][0].shape == (3, 8, 32, 32)


def test_frame_error_in_a_dataloader_worker_stays_one_line(data_copy, x3d_template):
    ds = RawFrameDataset(["val.txt"], [data_copy], small(x3d_template), "val")
    victim = ds.records[0].frame_path(int(ds.clip_indices(0)[0]))
    truncate(victim)
    loader = DataLoader(ds, batch_size=2, num_workers=1, worker_init_fn=worker_init_fn)
    with pytest.raises(FrameReadError) as info:
        next(iter(loader))
    assert str(info.value) == (
        f"{data_copy / 'val.txt'}:1: frame file {victim} is truncated (no JPEG end-of-image marker: a partial copy?)"
    )


def test_training_start_checks_frames_and_counts(data_copy, x3d_template):
    from action_rec.data.loading import build_datasets

    def build():
        return build_datasets(x3d_template, ["train.txt"], [str(data_copy)], ["val.txt"], [str(data_copy)])

    train, val = build()
    assert len(train) == 24 and len(val) == 12
    middle = data_copy / "rawframes" / train.records[2].rel_dir / "00017.jpg"  # parsing checks only the ends
    middle.unlink()
    with pytest.raises(
        UserError, match=rf"^{data_copy / 'train.txt'}:3: 1 of the video's frames 1\.\.32 are missing"
    ):
        build()
    (data_copy / "train.txt").write_text(
        "".join(
            line.replace(" 32 0 32 ", " 30 0 30 ") + "\n"
            for line in (data_copy / "val.txt").read_text().splitlines()
        )
    )
    with pytest.raises(
        UserError,
        match=r"train\.txt:1: frame count: .* holds frames up to 00032\.jpg but the row's video ends at frame 30; .*\(and 11 more problems\)",
    ):
        build()


def test_label_gaps_warn_about_the_unused_classes(data_copy, x3d_template, caplog):
    from action_rec.data.loading import build_datasets

    rows = [line.split() for line in (data_copy / "train.txt").read_text().splitlines()]
    (data_copy / "train.txt").write_text(
        "".join(" ".join([r[0], "5" if r[1] != "0" else "0", *r[2:]]) + "\n" for r in rows)
    )
    with caplog.at_level(logging.WARNING, logger="action_rec.data.loading"):
        train, _ = build_datasets(x3d_template, ["train.txt"], [str(data_copy)], [], [])
    assert train.num_classes == 6  # from label_map.txt
    (message,) = [r.getMessage() for r in caplog.records if "no training clip" in r.getMessage()]
    assert message.startswith(f"4 of the 6 classes have no training clip: 1 ({CLASSES[1].name}), 2 (")
