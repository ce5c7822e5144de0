"""Untrimmed recordings with marked segments: the three annotation formats, bad rows named FILE:LINE
with nothing written, clips inside segments, no_action clips away from them, recordings split whole."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from action_rec.data.annotations import parse_annotation_file, read_label_map
from action_rec.data.untrimmed import (
    NO_ACTION_LABEL,
    FrameSegment,
    free_intervals,
    plan_no_action_clips,
    plan_segment_clips,
    prepare_untrimmed,
    read_video_truth_list,
)
from action_rec.data.untrimmed_sources import UntrimmedError, detect_format, read_recordings
from action_rec.evaluation.timeline import read_segments

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import check_dataset  # noqa: E402
import prepare_dataset as prepare_tool  # noqa: E402

sys.path.remove(str(REPO / "tools"))

FPS = 10.0
FRAMES = 80  # 8 s


def write_video(path: Path, frames: int = FRAMES, fps: float = FPS, seed: int = 0) -> Path:
    """A tiny MJPG video of noise (64 x 64): preparation only needs frames and a duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 64))
    rng = np.random.default_rng(seed)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    writer.release()
    return path


SEGMENTS = {  # recording -> [(start_s, end_s, label)]
    "rec_a": [(1.0, 3.0, "wave"), (5.0, 6.0, "clap")],
    "rec_b": [(0.5, 1.5, "clap"), (4.0, 7.5, "wave")],
    "rec_c": [(2.0, 4.0, "wave")],
}


def write_csv(folder: Path, rows: list[str], header: str = "video,start,end,label") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "segments.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def csv_source(tmp_path: Path) -> Path:
    videos = tmp_path / "videos"
    for k, name in enumerate(SEGMENTS):
        write_video(videos / f"{name}.avi", seed=k)
    rows = [f"{name}.avi,{a},{b},{label}" for name, segs in SEGMENTS.items() for a, b, label in segs]
    return write_csv(videos, rows)


def lines_by_split(data: Path) -> dict[str, list]:
    return {s: parse_annotation_file(data / f"{s}.txt", data) for s in ("train", "val")}


def test_segment_csv_gives_clips_inside_segments_and_no_action_away_from_them(csv_source, tmp_path):
    data = tmp_path / "data"
    prepare_untrimmed(csv_source, data, clip_s=0.8, margin_s=0.5, val_fraction=0, progress=False)
    names = read_label_map(data / "label_map.txt")
    assert sorted(names) == ["clap", NO_ACTION_LABEL, "wave"]
    records = lines_by_split(data)["train"]  # frames checked: every clip's first and last frame exist
    assert {r.rel_dir for r in records} == set(SEGMENTS)
    margin = round(0.5 * FPS)
    per_class: dict[str, int] = {}
    for r in records:
        label = names[r.label]
        per_class[label] = per_class.get(label, 0) + 1
        assert (r.video_start, r.video_end) == (0, FRAMES)  # one dump per recording, ranges of it
        segments = [(round(a * FPS), round(b * FPS), lab) for a, b, lab in SEGMENTS[r.rel_dir]]
        if label == NO_ACTION_LABEL:
            for a, b, _ in segments:  # outside every segment, and at least the margin away
                assert r.clip_end + margin <= a or r.clip_start >= b + margin, (r, a, b)
        else:
            assert any(a <= r.clip_start and r.clip_end <= b and lab == label for a, b, lab in segments), r
    assert 0 < per_class[NO_ACTION_LABEL] <= max(n for k, n in per_class.items() if k != NO_ACTION_LABEL)
    assert (data / "dataset_summary.png").stat().st_size > 0


def test_frame_columns_read_as_frames(csv_source, tmp_path):
    """start_frame,end_frame rows give the same segments as the seconds they stand for."""
    rows = [
        f"{name}.avi,{round(a * FPS)},{round(b * FPS)},{label}"
        for name, segs in SEGMENTS.items()
        for a, b, label in segs
    ]
    frames_csv = write_csv(tmp_path / "f", rows, "video,start_frame,end_frame,label")
    seconds = read_recordings(csv_source, "segments-csv")
    frames = read_recordings(frames_csv, "segments-csv", csv_source.parent)
    assert detect_format(frames_csv) == detect_format(csv_source) == "segments-csv"
    for s, f in zip(seconds, frames, strict=True):
        assert s.video == f.video
        assert [(seg.start * FPS, seg.end * FPS) for seg in s.segments] == [
            (seg.start, seg.end) for seg in f.segments
        ]
        assert all(seg.in_frames for seg in f.segments)
    out_s, out_f = tmp_path / "ds", tmp_path / "df"
    for src, out in ((csv_source, out_s), (frames_csv, out_f)):
        prepare_untrimmed(src, out, videos_dir=csv_source.parent, clip_s=0.8, val_fraction=0, progress=False)
    assert (out_s / "train.txt").read_text() == (out_f / "train.txt").read_text()


def test_activitynet_json_subsets_become_splits_and_test_truth(tmp_path):
    videos = tmp_path / "videos"
    for k, name in enumerate(("v_aaa", "bbb", "ccc")):
        write_video(videos / "sub" / f"{name}.avi", seed=k)
    database = {
        "aaa": {"subset": "training", "annotations": [{"segment": [1.0, 3.0], "label": "wave"}]},
        "bbb": {"subset": "validation", "annotations": [{"segment": [2.0, 4.0], "label": "wave"}]},
        "ccc": {
            "subset": "testing",
            "annotations": [{"segment": [0.5, 2.0], "label": "wave"}, {"segment": [5, 7], "label": "jump"}],
        },
    }
    source = tmp_path / "activity_net.json"
    source.write_text(
        json.dumps(
            {"version": "1.3", "taxonomy": [{"nodeName": f"n{i}"} for i in range(500)], "database": database},
            indent=2,
        )
    )
    assert detect_format(source) == "activitynet"
    data = tmp_path / "data"
    prepare_untrimmed(source, data, videos_dir=videos, clip_s=0.8, progress=False)
    by_split = lines_by_split(data)
    assert {r.rel_dir for r in by_split["train"]} == {"v_aaa"}
    assert {r.rel_dir for r in by_split["val"]} == {"bbb"}
    assert not (data / "rawframes" / "ccc").exists()  # a test recording is not dumped
    [(video, truth, _)] = read_video_truth_list(data / "test_videos.txt")
    assert video.resolve() == (videos / "sub" / "ccc.avi").resolve()
    assert [(s["start_s"], s["end_s"], s["label"]) for s in read_segments(truth)] == [
        (0.5, 2.0, "wave"),
        (5.0, 7.0, "jump"),
    ]
    [(video, truth, _)] = read_video_truth_list(data / "val_videos.txt")
    assert video.name == "bbb.avi" and read_segments(truth)[0]["start_s"] == 2.0


def test_segment_json_beside_the_video_is_training_data(tmp_path):
    """A demo.py --timeline file (with scores), corrected and put beside its video as <stem>.json."""
    folder = tmp_path / "recordings"
    for k, (name, segs) in enumerate(SEGMENTS.items()):
        write_video(folder / f"{name}.avi", seed=k)
        timeline = [{"start_s": a, "end_s": b, "label": lab, "score": 0.9} for a, b, lab in segs]
        (folder / f"{name}.json").write_text(json.dumps(timeline, indent=1))
    assert detect_format(folder) == "segment-json"
    recordings = read_recordings(folder, "segment-json")
    assert {r.video.stem: [(s.start, s.end, s.label) for s in r.segments] for r in recordings} == SEGMENTS
    data = tmp_path / "data"
    code = prepare_tool.main(
        [str(folder), str(data), "--clip-s", "0.8", "--no-progress", "--test-videos", "1"]
    )
    assert code == 0
    assert len(read_video_truth_list(data / "test_videos.txt")) == 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("rec_a.avi,3.0,3.0,wave", "is not after start"),
        ("rec_a.avi,4.0,2.5,wave", "is not after start"),
        ("rec_a.avi,7.0,9.5,wave", "beyond the end"),
        ("rec_a.avi,2.5,4.0,clap", "overlaps"),
        ("nowhere.avi,1.0,2.0,wave", "unknown video"),
        ("rec_a.avi,one,2.0,wave", "must be a number"),
    ],
)
def test_bad_row_is_named_file_line_and_nothing_is_written(csv_source, tmp_path, capsys, row, message):
    rows = csv_source.read_text().splitlines()
    rows.insert(3, row)  # line 4
    csv_source.write_text("\n".join(rows) + "\n")
    data = tmp_path / "data"
    code = prepare_tool.main([str(csv_source), str(data), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {csv_source}:4: ") and message in err and len(err.splitlines()) == 1
    assert not data.exists()


def test_bad_activitynet_and_segment_json_rows_name_their_line(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    write_video(src / "aaa.avi")
    source = src / "anet.json"
    entry = {
        "annotations": [{"segment": [1.0, 2.0], "label": "wave"}, {"segment": [3.0, 90.0], "label": "wave"}]
    }
    source.write_text(json.dumps({"database": {"aaa": entry}}, indent=2))
    with pytest.raises(UntrimmedError, match=r"anet\.json:12: database/aaa/annotations\[1\].*beyond the end"):
        prepare_untrimmed(source, out, progress=False)
    timeline = src / "aaa.json"
    timeline.write_text(
        '[\n {"start_s": 1, "end_s": 2, "label": "a"},\n {"start_s": 3, "end_s": 2, "label": "b"}\n]'
    )
    source.unlink()
    with pytest.raises(UntrimmedError, match=r"aaa\.json:3: end 2 is not after start 3"):
        prepare_untrimmed(src, out, progress=False)
    assert not out.exists()
    with pytest.raises(UntrimmedError, match="must not be inside the source folder"):
        prepare_untrimmed(src, src / "data", progress=False)


def test_no_action_mining_never_crosses_or_nears_a_segment():
    rng = np.random.default_rng(0)
    for _ in range(200):
        frames, margin, clip = int(rng.integers(50, 400)), int(rng.integers(0, 20)), int(rng.integers(1, 30))
        cuts = np.sort(rng.choice(frames, size=2 * int(rng.integers(0, 5)), replace=False))
        segments = [FrameSegment(int(a), int(b), 0, 0, "x", "") for a, b in cuts.reshape(-1, 2) if b > a]
        clips = plan_no_action_clips(segments, frames, clip, int(rng.integers(1, 20)), margin)
        for s, e in clips:
            assert 0 <= s and e <= frames and e - s == clip
            for seg in segments:
                assert e + margin <= seg.start or s >= seg.end + margin
        free = sum(b - a for a, b in free_intervals(segments, frames, margin))
        assert (
            bool(clips) == any(b - a >= clip for a, b in free_intervals(segments, frames, margin))
            or free == 0
        )


def test_clips_spread_over_a_long_segment_within_the_cap():
    assert plan_segment_clips(10, 15, 8, 8, 5) == [(10, 15)]  # shorter than a clip: the whole of it
    clips = plan_segment_clips(0, 100, 10, 10, 4)
    assert clips[0] == (0, 10) and clips[-1] == (90, 100) and len(clips) == 4
    assert len(plan_segment_clips(0, 100, 10, 10, 50)) == 10


def test_no_action_cap_can_be_set(csv_source, tmp_path):
    data = tmp_path / "data"
    prepare_untrimmed(
        csv_source, data, clip_s=0.5, margin_s=0.2, val_fraction=0, no_action_clips=3, progress=False
    )
    names = read_label_map(data / "label_map.txt")
    records = lines_by_split(data)["train"]
    assert sum(names[r.label] == NO_ACTION_LABEL for r in records) == 3
    prepare_untrimmed(csv_source, data, clip_s=0.5, val_fraction=0, no_action_clips=0, progress=False)
    assert NO_ACTION_LABEL not in read_label_map(data / "label_map.txt")


def test_no_action_ratio_scales_the_cap_per_split(csv_source, tmp_path, capsys):
    """--no-action-ratio R: R times the largest action class, never more than the free time holds."""
    data = tmp_path / "data"

    def counts(*flags: str) -> Counter:
        argv = [str(csv_source), str(data), "--clip-s", "0.5", "--margin-s", "0.2", "--val-fraction", "0"]
        assert prepare_tool.main([*argv, "--no-progress", *flags]) == 0
        names = read_label_map(data / "label_map.txt")
        return Counter(names[r.label] for r in lines_by_split(data)["train"])

    every = counts("--no-action-clips", "1000000")[NO_ACTION_LABEL]  # all the candidates
    largest = max(n for k, n in counts().items() if k != NO_ACTION_LABEL)
    assert counts()[NO_ACTION_LABEL] == min(largest, every)
    assert counts("--no-action-ratio", "0.4")[NO_ACTION_LABEL] == round(0.4 * largest)
    assert every > largest  # so that the ratio 2 is not already the whole free time
    assert counts("--no-action-ratio", "2")[NO_ACTION_LABEL] == min(2 * largest, every)
    capsys.readouterr()
    assert prepare_tool.main([str(csv_source), str(tmp_path / "bad"), "--no-action-ratio", "-1"]) == 2
    assert "no-action ratio" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_recordings_are_split_whole_seeded_and_check_clean(tmp_path):
    videos = tmp_path / "videos"
    rows = []
    for k in range(10):
        write_video(videos / f"r{k}.avi", frames=40, seed=k)
        rows += [f"r{k}.avi,0.5,1.5,{'wave' if k % 2 else 'clap'}", f"r{k}.avi,2.5,3.5,jump"]
    source = write_csv(videos, rows)
    splits = []
    for seed in (0, 0, 1):
        data = tmp_path / f"data{len(splits)}"
        prepare_untrimmed(
            source,
            data,
            clip_s=0.5,
            margin_s=0.2,
            val_fraction=0.25,
            test_videos=2,
            seed=seed,
            progress=False,
        )
        by_split = {s: {r.rel_dir for r in recs} for s, recs in lines_by_split(data).items()}
        test = {v.stem for v, _, _ in read_video_truth_list(data / "test_videos.txt")}
        val = {v.stem for v, _, _ in read_video_truth_list(data / "val_videos.txt")}
        assert len(test) == 2 and len(val) == 2 and by_split["val"] == val
        assert len(by_split["train"]) == 6 and not (by_split["train"] & (val | test)) and not (val & test)
        splits.append((by_split["train"], val, test))
        assert (
            check_dataset.main(
                ["--ann-files", "train.txt", "val.txt", "--data-roots", str(data), "--no-progress"]
            )
            == 0
        )
    assert splits[0] == splits[1] and splits[0] != splits[2]
