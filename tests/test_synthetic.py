"""The synthetic dataset: the raw-frame layout, reproducible, and classes that only motion separates."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from action_rec.data.annotations import parse_annotation_file, read_label_map, read_video_list
from action_rec.data.dump import dump_videos
from action_rec.data.synthetic import (
    BACKGROUND,
    CLASSES,
    JITTER,
    make_synthetic_dataset,
    pose_track,
    render_background,
    render_clip,
)
from action_rec.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def test_layout(synthetic_dataset):
    names = read_label_map(synthetic_dataset / "label_map.txt")
    assert names == [c.name for c in CLASSES[:6]]
    for split, per_class in (("train", 4), ("val", 2)):
        records = parse_annotation_file(
            synthetic_dataset / f"{split}.txt", synthetic_dataset
        )  # frames checked
        assert len(records) == 6 * per_class
        assert sorted({r.label for r in records}) == list(range(6))
        for r in records:
            assert (r.video_start, r.video_end, r.clip_start, r.clip_end, r.fps) == (0, 32, 0, 32, 30.0)
            assert r.rel_dir.startswith(f"{split}/{names[r.label]}_")
            assert len(list(r.frame_dir.glob("*.jpg"))) == 32
    frame = cv2.imread(str(records[0].frame_path(1)))
    assert frame.shape == (64, 64, 3) and frame.std() > 5  # not blank


def test_reproducible_and_seeded(tmp_path):
    kwargs = dict(num_classes=2, train_per_class=2, val_per_class=1, frames=6, size=32)
    a = make_synthetic_dataset(tmp_path / "a", seed=3, **kwargs)
    b = make_synthetic_dataset(tmp_path / "b", seed=3, workers=2, **kwargs)
    c = make_synthetic_dataset(tmp_path / "c", seed=4, **kwargs)
    files = sorted(p.relative_to(a) for p in a.rglob("*.jpg"))
    assert len(files) == (2 * 2 + 2 * 1) * 6
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)  # workers do not matter
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)


def test_bad_arguments(tmp_path):
    with pytest.raises(UserError, match="num_classes must be 2..12"):
        make_synthetic_dataset(tmp_path, num_classes=13)
    with pytest.raises(UserError, match="frames >= 2"):
        make_synthetic_dataset(tmp_path, frames=1)


def ks_two_sample(a: np.ndarray, b: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between two samples' empirical distributions."""
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def test_each_class_is_its_pair_played_backwards():
    """Frame t of a class has the pose distribution of frame T-1-t of its pair class, for every pose
    column; the object never leaves the frame's central band, and the motion really happens."""
    n, frames, size = 3000, 16, 64
    limit = 1.95 * np.sqrt(2 / n)  # two-sample KS critical value, alpha = 0.001
    tracks = {}
    for label, motion in enumerate(CLASSES):
        rng = np.random.default_rng(label)
        tracks[label] = np.stack([pose_track(motion, frames, size, rng) for _ in range(n)])  # n x T x 4
    for label in range(0, len(CLASSES), 2):
        a, b = tracks[label], tracks[label + 1]
        assert CLASSES[label].kind == CLASSES[label + 1].kind
        assert CLASSES[label].direction == -CLASSES[label + 1].direction
        for t in (0, frames // 2, frames - 1):
            for column in range(4):
                distance = ks_two_sample(a[:, t, column], b[:, frames - 1 - t, column])
                assert distance < limit, (CLASSES[label].name, t, column, distance)
    for label, motion in enumerate(CLASSES):
        centres, change = tracks[label][..., :2], tracks[label][:, -1] - tracks[label][:, 0]
        assert centres.min() >= 0.2 * size - 1e-9 and centres.max() <= 0.8 * size + 1e-9
        if motion.kind.startswith("diagonal"):  # x and y both move, as far, y against x on diagonal_up
            y_sign = 1 if motion.kind == "diagonal_down" else -1
            assert (np.sign(change[:, 0]) == motion.direction).all(), motion.name
            assert (np.sign(change[:, 1]) == y_sign * motion.direction).all(), motion.name
            assert np.allclose(np.abs(change[:, 0]), np.abs(change[:, 1])), motion.name
            vertical, horizontal = (
                "down" if y_sign * motion.direction > 0 else "up",
                "right" if motion.direction > 0 else "left",
            )
            assert motion.name == f"moving_{vertical}_{horizontal}"  # image y grows downwards
            continue
        column = {"horizontal": 0, "vertical": 1, "rotate": 2, "scale": 3}[motion.kind]
        moved = np.mod(change[:, column], 360) if motion.kind == "rotate" else change[:, column]
        if motion.kind == "rotate":
            moved = np.where(moved > 180, moved - 360, moved)
        assert (np.sign(moved) == motion.direction).all(), motion.name


def drift(clip: np.ndarray) -> int:
    """The horizontal shift (pixels a frame) that best carries each frame difference onto the next.

    Differencing cancels the static background.
    """
    grey = clip.astype(np.float32).mean(axis=-1)
    grey = cv2.GaussianBlur(grey.transpose(1, 2, 0), (0, 0), 1.0).transpose(2, 0, 1)
    d = np.diff(grey, axis=0)
    errors = [np.abs(np.roll(d[:-1], s, axis=2) - d[1:]).sum() for s in range(-4, 5)]
    return int(np.argmin(errors)) - 4


def read_clip(record) -> np.ndarray:
    return np.stack(
        [cv2.imread(str(record.frame_path(i))) for i in range(record.clip_start + 1, record.clip_end + 1)]
    )


@pytest.fixture(scope="module")
def probe_dataset(tmp_path_factory) -> Path:
    return make_synthetic_dataset(
        tmp_path_factory.mktemp("probe"), train_per_class=12, val_per_class=8, frames=16, size=64, seed=1
    )


def test_a_single_frame_says_nothing_about_the_class(probe_dataset):
    """A nearest-centroid classifier on the middle frame (pixels and colour histograms) is at chance level.

    (The first and last frames do hint at the class, e.g. a growing object starts small.)"""

    def features(record, t):
        frame = cv2.imread(str(record.frame_path(t)))
        small = cv2.resize(frame, (8, 8), interpolation=cv2.INTER_AREA).ravel() / 255.0
        hist = (
            np.concatenate([np.histogram(frame[..., c], bins=8, range=(0, 256))[0] for c in range(3)])
            / frame[..., 0].size
        )
        return np.concatenate([small, hist])

    train = parse_annotation_file(probe_dataset / "train.txt")
    val = parse_annotation_file(probe_dataset / "val.txt")
    for t in (8, 9):
        x = np.stack([features(r, t) for r in train])
        y = np.array([r.label for r in train])
        mu, sd = x.mean(0), x.std(0) + 1e-6
        centroids = np.stack([((x[y == c] - mu) / sd).mean(0) for c in range(6)])
        xv = (np.stack([features(r, t) for r in val]) - mu) / sd
        pred = np.argmin(((xv[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
        accuracy = (pred == np.array([r.label for r in val])).mean()
        assert accuracy < 0.4, (t, accuracy)  # chance is 1/6; 48 clips


def test_only_the_order_of_frames_tells_left_from_right(probe_dataset):
    """The frames' order separates moving left / right; the same frames shuffled give chance."""
    records = [
        r
        for split in ("train", "val")
        for r in parse_annotation_file(probe_dataset / f"{split}.txt")
        if r.label in (0, 1)
    ]
    rng = np.random.default_rng(0)
    ordered, shuffled = [], []
    for r in records:
        clip, sign = read_clip(r), 1 if r.label == 1 else -1
        ordered.append(np.sign(drift(clip)) == sign)
        shuffled += [np.sign(drift(clip[rng.permutation(len(clip))])) == sign for _ in range(5)]
    assert np.mean(ordered) >= 0.95
    assert 0.35 <= np.mean(shuffled) <= 0.65  # 200 guesses


def test_videos_for_dump_frames(tmp_path):
    out = make_synthetic_dataset(
        tmp_path / "syn", num_classes=2, train_per_class=1, val_per_class=1, frames=12, size=64, videos=True
    )
    items = read_video_list(out / "videos_train.txt")
    assert [(p, label) for p, label, _ in items] == [
        ("train/moving_left_0000.mp4", 0),
        ("train/moving_right_0000.mp4", 1),
    ]
    summary = dump_videos(
        out / "videos",
        [out / "videos_train.txt", out / "videos_val.txt"],
        tmp_path / "dumped",
        progress=False,
    )
    assert (summary.done, summary.failed) == (4, [])
    records = parse_annotation_file(tmp_path / "dumped" / "videos_val.txt")
    assert [(r.rel_dir, r.label, r.clip_end, r.fps) for r in records] == [
        ("val/moving_left_0000", 0, 12, 30.0),
        ("val/moving_right_0000", 1, 12, 30.0),
    ]


def test_cli(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import make_synthetic_dataset as tool
    finally:
        sys.path.remove(str(REPO / "tools"))
    args = [
        "--num-classes",
        "2",
        "--train-per-class",
        "1",
        "--val-per-class",
        "1",
        "--frames",
        "4",
        "--size",
        "32",
    ]
    assert tool.main([str(tmp_path / "d"), *args]) == 0
    assert "wrote 4 videos of 4 frames (2 classes: moving_left, moving_right)" in capsys.readouterr().out
    assert (tmp_path / "d" / "train.txt").read_text().splitlines()[0] == "train/moving_left_0000 0 0 4 0 4 30"
    assert tool.main([str(tmp_path / "e"), "--num-classes", "13"]) == 2
    assert "error: num_classes must be 2..12" in capsys.readouterr().err
    assert tool.main([str(tmp_path / "f"), *args, "--background"]) == 0
    assert (
        "wrote 6 videos of 4 frames (3 classes: moving_left, moving_right, background)"
        in capsys.readouterr().out
    )
    assert (tmp_path / "f" / "train.txt").read_text().splitlines()[-1] == "train/background_0000 2 0 4 0 4 30"


def test_background_class_is_still_and_actions_stand_around_their_motion(tmp_path):
    """--background adds a last class of still scenes with a small directionless jitter (half of them
    cut to another still scene), and the action clips stand still for a few frames around their
    motion."""
    kwargs = dict(num_classes=2, train_per_class=6, val_per_class=1, frames=16, size=64, seed=5)
    with_bg = make_synthetic_dataset(tmp_path / "bg", background=True, **kwargs)
    assert read_label_map(with_bg / "label_map.txt") == ["moving_left", "moving_right", "background"]
    records = parse_annotation_file(with_bg / "train.txt", with_bg)
    assert [r.label for r in records] == [0] * 6 + [1] * 6 + [2] * 6

    def steps(clip: np.ndarray) -> np.ndarray:  # change between consecutive frames, noise blurred away
        blurred = np.stack([cv2.GaussianBlur(f.astype(np.float32), (0, 0), 2.0) for f in clip])
        return np.abs(np.diff(blurred, axis=0)).mean(axis=(1, 2, 3))

    still = [np.median(steps(read_clip(r))) for r in records if r.label == 2]
    moving = [np.median(steps(read_clip(r))) for r in records if r.label != 2]
    assert np.median(still) < np.median(moving), (still, moving)  # (jitter and JPEG noise move a little)
    # An action with holds: the object stands (jittering) before and after its motion, in one scene.
    clip = render_clip(CLASSES[1], 8, 48, np.random.default_rng(0), hold=(4, 3))
    s = steps(clip)
    assert len(clip) == 15 and max(s[:3].max(), s[-2:].max()) < s[4:10].min()

    # Half the background clips cut once to another still scene: one big step, the others tiny.
    cuts = []
    for seed in range(20):
        s = steps(render_background(12, 48, np.random.default_rng(seed)))
        jumps = int((s > 10 * np.median(s) + 1).sum())
        assert jumps <= 1, (seed, s)
        cuts.append(jumps)
    assert 4 <= sum(cuts) <= 16

    rng = np.random.default_rng(0)
    tracks = np.stack([pose_track(BACKGROUND, 16, 64, rng) for _ in range(200)])
    spread = tracks[:, :, :2].max(axis=1) - tracks[:, :, :2].min(axis=1)
    assert spread.max() <= 2 * JITTER * 64 + 1e-9 and spread.mean() > 0  # jitter, never a journey
    drift = tracks[:, -1, 0] - tracks[:, 0, 0]
    assert abs(drift.mean()) < 0.1  # no direction


def test_test_video_with_no_action_gaps(tmp_path):
    from action_rec.inference.synthetic_video import make_synthetic_video, truth_segments

    video = tmp_path / "gaps.avi"
    truth = make_synthetic_video(video, [0, 3], frames_per_segment=8, size=32, fps=20.0, gap_frames=(4, 6))
    assert [(s["name"], s["end"] - s["start"]) for s in truth] == [("moving_left", 8), ("moving_down", 8)]
    gaps = [truth[0]["start"], truth[1]["start"] - truth[0]["end"]]
    assert all(4 <= g <= 6 for g in gaps)
    cap = cv2.VideoCapture(str(video))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert 4 <= n - truth[1]["end"] <= 6  # a gap after the last segment too
    segments = truth_segments(truth, 20.0)
    assert segments[0] == {
        "start_s": truth[0]["start"] / 20,
        "end_s": truth[0]["end"] / 20,
        "label": "moving_left",
    }
