"""The held-out synthetic classes of the fine-tuning transfer task."""

import pytest

from action_rec.data import RawFrameDataset
from action_rec.data.synthetic import CLASSES, HELD_OUT, ROTATIONS, make_held_out_dataset
from action_rec.errors import UserError


def test_held_out_dataset_relabels_classes_the_quick_start_never_shows(tmp_path):
    assert not set(HELD_OUT + ROTATIONS) & {m.name for m in CLASSES[:6]}  # the quick start's six
    out = make_held_out_dataset(tmp_path / "d", train_per_class=2, val_per_class=1, frames=4, size=24)
    assert (out / "label_map.txt").read_text().split() == list(HELD_OUT)
    train = (out / "train.txt").read_text().splitlines()
    assert [line.split()[1] for line in train] == ["0", "0", "1", "1", "2", "2", "3", "3"]
    assert train[0].startswith("train/moving_up_left_0000 0 0 4 0 4")
    dataset = RawFrameDataset(["val.txt"], [out], _template(), "val")
    assert dataset.class_names == list(HELD_OUT) and len(dataset) == 4
    # Any two or more classes of CLASSES, e.g. the rotations, also the quick start never shows.
    rotations = make_held_out_dataset(
        tmp_path / "r", ROTATIONS, train_per_class=1, val_per_class=1, frames=4, size=24
    )
    assert (rotations / "label_map.txt").read_text().split() == list(ROTATIONS)
    with pytest.raises(UserError, match="held-out classes"):
        make_held_out_dataset(tmp_path / "e", ("rotating_clockwise", "jumping"))


def test_selection_clips_are_apart_from_the_held_out_test_clips(tmp_path):
    """select.txt (for choosing the best epoch) holds other clips than val.txt, and asking for it leaves
    the train and val clips as they were."""
    plain = make_held_out_dataset(tmp_path / "p", train_per_class=1, val_per_class=2, frames=4, size=24)
    out = make_held_out_dataset(
        tmp_path / "s", train_per_class=1, val_per_class=2, frames=4, size=24, select_per_class=2
    )
    assert not (plain / "select.txt").exists()
    assert len((out / "select.txt").read_text().splitlines()) == 2 * len(HELD_OUT)
    for split in ("train", "val"):
        assert (out / f"{split}.txt").read_text() == (plain / f"{split}.txt").read_text()
        for frame in (plain / "rawframes" / split).rglob("*.jpg"):
            assert frame.read_bytes() == (out / frame.relative_to(plain)).read_bytes()
    select = {frame.read_bytes() for frame in (out / "rawframes" / "select").rglob("00002.jpg")}
    val = {frame.read_bytes() for frame in (out / "rawframes" / "val").rglob("00002.jpg")}
    assert len(select) == 2 * len(HELD_OUT) and not select & val


def _template():
    from pathlib import Path

    from action_rec.templates import apply_overrides, load_template

    root = Path(__file__).resolve().parents[1]
    path = root / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
    return apply_overrides(
        load_template(path), ["input.clip_len=4", "input.size=16", "input.resize_short=20"]
    )
