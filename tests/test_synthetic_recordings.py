"""The sample recordings: long videos with actions of varied length and a segment CSV that
prepare_dataset.py reads as it reads a user's own."""

import csv

import cv2
import numpy as np
import pytest

from action_rec.data.synthetic import CLASSES
from action_rec.data.synthetic_recordings import make_synthetic_recordings, make_synthetic_video
from action_rec.errors import UserError


def _frames(video) -> int:
    cap = cv2.VideoCapture(str(video))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


def test_segments_of_varied_length_and_their_motion_inside(tmp_path):
    """Each action lasts 10..30 frames (drawn per segment); the object moves inside its segment and stands
    (nearly) still in the gaps, so the truth marks where the motion is."""
    labels = [1] * 8  # moving right: the object's x grows during the action only
    truth = make_synthetic_video(
        tmp_path / "v.avi", labels, frames_per_segment=(10, 30), size=48, seed=3, gap_frames=(12, 16)
    )
    lengths = [s["end"] - s["start"] for s in truth]
    assert all(10 <= n <= 30 for n in lengths) and len(set(lengths)) > 2  # varied, within the range
    cap = cv2.VideoCapture(str(tmp_path / "v.avi"))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame.astype(np.float32))
    cap.release()
    diff = [np.abs(b - a).mean() for a, b in zip(frames, frames[1:], strict=False)]
    for seg in truth:
        # Medians: a gap holds one cut to the next scene, a single large difference.
        inside = np.median(diff[seg["start"] : seg["end"] - 1])
        before = np.median(diff[seg["start"] - 10 : seg["start"] - 1]) if seg["start"] >= 10 else None
        assert before is None or inside > before  # the action moves more than the time before it


def test_recordings_and_their_segment_csv(tmp_path):
    csv_path = make_synthetic_recordings(
        tmp_path,
        num_classes=3,
        recordings=3,
        segments_per_class=2,
        action_frames=(8, 20),
        gap_frames=(6, 10),
        size=32,
    )
    rows = list(csv.DictReader(csv_path.open()))
    assert list(rows[0]) == ["video", "start_frame", "end_frame", "label"]
    by_video: dict[str, list[dict]] = {}
    for row in rows:
        by_video.setdefault(row["video"], []).append(row)
    assert sorted(by_video) == [f"videos/recording_{r:03d}.mp4" for r in range(3)]
    names = {m.name for m in CLASSES[:3]}
    for video, segments in by_video.items():
        assert sorted(r["label"] for r in segments) == sorted(list(names) * 2)  # each class twice
        spans = [(int(r["start_frame"]), int(r["end_frame"])) for r in segments]
        assert all(8 <= e - s <= 20 for s, e in spans)
        assert all(b[0] - a[1] >= 6 for a, b in zip(spans, spans[1:], strict=False))  # gaps between
        assert spans[-1][1] < _frames(tmp_path / video)  # the video goes on after the last action
    # The recordings differ from each other, and the same arguments write the same data.
    again = make_synthetic_recordings(
        tmp_path / "again", num_classes=3, recordings=3, segments_per_class=2, action_frames=(8, 20),
        gap_frames=(6, 10), size=32, workers=2,
    )  # fmt: skip
    assert again.read_text() == csv_path.read_text()
    assert len({tuple(r["label"] for r in segs) for segs in by_video.values()}) > 1


def test_prepare_dataset_reads_the_recordings(tmp_path):
    """The CSV is the input prepare_dataset.py takes: every action class and mined no_action clips."""
    from action_rec.data.untrimmed import prepare_untrimmed

    csv_path = make_synthetic_recordings(
        tmp_path / "rec", num_classes=2, recordings=4, segments_per_class=2, action_frames=(16, 24),
        gap_frames=(30, 40), size=32,
    )  # fmt: skip
    prepare_untrimmed(
        csv_path, tmp_path / "prepared", clip_s=0.5, margin_s=0.1, test_videos=1, progress=False, plot=False
    )
    labels = (tmp_path / "prepared" / "label_map.txt").read_text().split()
    assert labels == ["moving_left", "moving_right", "no_action"]
    used = {int(line.split()[1]) for line in (tmp_path / "prepared" / "train.txt").read_text().splitlines()}
    assert used == {0, 1, 2}


@pytest.mark.parametrize(
    "kwargs", [{"num_classes": 1}, {"recordings": 0}, {"action_frames": (20, 10)}, {"gap_frames": (-1, 4)}]
)
def test_bad_settings_are_refused(tmp_path, kwargs):
    with pytest.raises(UserError):
        make_synthetic_recordings(tmp_path, **kwargs)


def test_the_tool_writes_recordings_and_refuses_bad_ranges(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "make_synthetic_dataset.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_dataset", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    argv = [str(tmp_path / "rec"), "--recordings", "2", "--num-classes", "2", "--segments-per-class", "1"]
    assert tool.main([*argv, "--size", "32", "--action-frames", "8-12", "--gap-frames", "4-6"]) == 0
    assert "wrote 2 recordings" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "rec" / "segments.csv").open()))
    assert len(rows) == 4 and all(8 <= int(r["end_frame"]) - int(r["start_frame"]) <= 12 for r in rows)
    assert tool.main([*argv, "--action-frames", "12-8"]) == 2
    assert "bad frame ranges" in capsys.readouterr().err


def test_paced_motions_cover_more_ground_in_longer_actions_at_varied_speeds():
    """Paced tracks (the recordings'): a longer action travels further, up to the limit, and actions of
    one length move at different speeds; unpaced tracks cover the same ground whatever their length."""
    from action_rec.data.synthetic import PACE_LIMITS, pose_track

    def travels(frames, paced):
        rng = np.random.default_rng(0)
        tracks = [pose_track(CLASSES[1], frames, 100, rng, paced=paced) for _ in range(200)]
        return np.array([t[-1, 0] - t[0, 0] for t in tracks]) / 100  # moving right: x grows

    short, long = travels(16, True), travels(64, True)
    assert np.median(long) > 1.5 * np.median(short)
    assert long.max() <= PACE_LIMITS["travel"] + 1e-9 and (long > 0).all()
    assert short.max() / short.min() > 2  # speeds vary within one length
    assert abs(np.median(travels(64, False)) - np.median(travels(16, False))) < 0.05
