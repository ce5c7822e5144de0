"""prepare_dataset: real clips arranged as class folders (or listed in a CSV) to a checked dataset that
trains and evaluates; splits stratified and grouped; Kinetics rows cut to their time range."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from action_rec.data.annotations import parse_annotation_file, read_label_map
from action_rec.data.dump import DONE_MARKER
from action_rec.data.prepare import SourceVideo, assign_splits, prepare_dataset

REPO = Path(__file__).resolve().parents[1]
S3D = REPO / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
TINY = ["input.clip_len=4", "input.size=32", "input.resize_short=40"]
sys.path.insert(0, str(REPO / "tools"))
import check_dataset  # noqa: E402
import prepare_dataset as prepare_tool  # noqa: E402

sys.path.remove(str(REPO / "tools"))

# class folder -> real clips (short ones: the whole module dumps about 1600 frames)
CLASSES = {
    "asl gestures": [f"sample-videos/asl_gestures/{w}.mkv" for w in ("again", "bird", "book", "eat", "help", "hungry")],
    "kinetics": ["Ask-Anything/yoga.mp4", "Ask-Anything/making_cake.mp4", "UniFormer/Tw2yXa6CzWE.mp4"],
    "ucf": ["mmaction2/test.avi", "kinetics-i3d/v_CricketShot_g04_c01_rgb.gif"],
}  # fmt: skip


def opencv_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.grab():
        count += 1
    cap.release()
    return count


def class_folders(real: Path, root: Path) -> Path:
    for name, videos in CLASSES.items():
        (root / name).mkdir(parents=True)
        for video in videos:
            (root / name / Path(video).name).symlink_to(real / video)
    (root / "ucf" / "README.txt").write_text("not a video\n")
    return root


@pytest.fixture(scope="module")
def prepared(real_data_dir, tmp_path_factory) -> tuple[Path, Path, str]:
    """The class folders prepared once (short side 48) by the command-line tool; (source, data, stdout)."""
    base = tmp_path_factory.mktemp("prepared")
    source = class_folders(real_data_dir, base / "videos")
    out = base / "data"
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = prepare_tool.main(
            [str(source), str(out), "--short-side", "48", "--workers", "2", "--no-progress"]
        )
    assert code == 0, stdout.getvalue()
    return source, out, stdout.getvalue()


def test_class_folders_become_annotations_with_real_counts(prepared, real_data_dir):
    _, data, stdout = prepared
    names = read_label_map(data / "label_map.txt")
    assert names == ["asl gestures", "kinetics", "ucf"]
    train = parse_annotation_file(data / "train.txt", data)
    val = parse_annotation_file(data / "val.txt", data)
    by_dir = {r.rel_dir: r for r in train + val}
    assert len(by_dir) == 11  # README.txt is not a video
    for label, (name, videos) in enumerate(CLASSES.items()):
        rows = [r for r in train + val if r.label == label]
        assert len(rows) == len(videos)
        assert len([r for r in val if r.label == label]) == 1  # 20% of 6, 3 and 2: at least one each
        for video in videos:
            r = by_dir[f"{name.replace(' ', '_')}/{Path(video).stem}"]
            frames = opencv_frames(real_data_dir / video)
            assert (r.video_start, r.video_end, r.clip_start, r.clip_end) == (0, frames, 0, frames)
            assert r.fps == pytest.approx(cv2.VideoCapture(str(real_data_dir / video)).get(cv2.CAP_PROP_FPS))
            assert len(list(r.frame_dir.glob("*.jpg"))) == frames
    assert min(cv2.imread(str(by_dir["ucf/test"].frame_path(1))).shape[:2]) == 48
    table = stdout.splitlines()
    assert table[0].split() == ["class", "videos", "frames", "seconds", "train", "val"]
    assert table[1].split()[:3] == ["asl", "gestures", "6"] and table[1].split()[-2:] == ["5", "1"]
    assert table[4].split()[:2] == ["total", "11"]
    assert "warning: fewer than 5 videos in: kinetics (3), ucf (2)" in stdout
    assert (data / "dataset_summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_skips_and_writes_the_same_files(prepared):
    source, data, _ = prepared
    before = {name: (data / name).read_text() for name in ("train.txt", "val.txt", "label_map.txt")}
    summary = prepare_dataset(source, data, short_side=48, progress=False, plot=False)
    assert (summary.done, summary.skipped, summary.failed) == (0, 11, [])
    assert {name: (data / name).read_text() for name in before} == before


def test_prepare_check_train_one_epoch_and_evaluate(prepared, tmp_path, capsys):
    """The whole path a new user takes, through the real command-line tools."""
    from action_rec.evaluation import cli as evaluate
    from action_rec.training import cli as train

    _, data, _ = prepared
    assert (
        check_dataset.main(
            ["--ann-files", "train.txt", "val.txt", "--data-roots", str(data), "--no-progress"]
        )
        == 0
    )
    out = tmp_path / "out"
    code = train.main(
        ["--template", str(S3D), "--train-ann-files", "train.txt", "--train-data-roots", str(data),
         "--val-ann-files", "val.txt", "--val-data-roots", str(data), "--save-checkpoints-to", str(out),
         "--epochs", "1", "--batch-size", "2", "--device", "cpu", "--workers", "0", "--no-progress", "--set", *TINY]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    metrics = tmp_path / "metrics.yaml"
    code = evaluate.main(
        ["--template", str(S3D), "--load-weights", str(out / "latest.pth"), "--test-ann-files", "val.txt",
         "--test-data-roots", str(data), "--save-metrics-to", str(metrics), "--device", "cpu", "--workers", "0",
         "--no-progress", "--set", *TINY]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    import yaml

    keys = {m["key"] for m in yaml.safe_load(metrics.read_text())["metrics"]}
    assert {"accuracy", "mean_class_accuracy"} <= keys
    per_class = (tmp_path / "per_class_accuracy.csv").read_text().splitlines()
    assert [row.split(",")[:3] for row in per_class[1:]] == [["0", "asl gestures", "1"], ["1", "kinetics", "1"],
                                                             ["2", "ucf", "1"]]  # fmt: skip


def test_a_truncated_frame_stops_training_with_file_line_and_path(prepared, tmp_path, capsys):
    from action_rec.training import cli as train

    _, prepared_data, _ = prepared
    data = Path(shutil.copytree(prepared_data, tmp_path / "data"))
    rows = (data / "train.txt").read_text().splitlines()
    line = next(n for n, row in enumerate(rows, start=1) if row.startswith("ucf/"))
    frames = sorted((data / "rawframes" / rows[line - 1].split()[0]).glob("*.jpg"))
    for frame in frames:  # every frame cut short, so that any clip of the video reads one
        frame.write_bytes(frame.read_bytes()[:200])
    code = train.main(
        ["--template", str(S3D), "--train-ann-files", "train.txt", "--train-data-roots", str(data),
         "--save-checkpoints-to", str(tmp_path / "out"), "--epochs", "1", "--batch-size", "2", "--device", "cpu",
         "--workers", "0", "--no-progress", "--set", *TINY]
    )  # fmt: skip
    assert code == 2
    (error,) = [e for e in capsys.readouterr().err.splitlines() if e.startswith("error:")]
    assert error.startswith(f"error: {data / 'train.txt'}:{line}: frame file {frames[0].parent}/")
    assert error.endswith("is truncated (no JPEG end-of-image marker: a partial copy?)")


def test_split_is_stratified_seeded_and_keeps_groups_whole():
    items = [
        SourceVideo(Path(f"v_{c}_g{g:02d}_c{k}.avi"), c, f"{c}/{g}_{k}")
        for c in ("a", "b")
        for g in range(1, 11)
        for k in range(1, 4)
    ]
    splits = assign_splits(items, 0.2, seed=1, group_regex=r"_g(\d+)_")
    assert splits == assign_splits(items, 0.2, seed=1, group_regex=r"_g(\d+)_")
    assert splits != assign_splits(items, 0.2, seed=2, group_regex=r"_g(\d+)_")
    groups = {}
    for item, split in zip(items, splits, strict=True):
        groups.setdefault(item.video.name.split("_")[2], set()).add(split)
    assert all(len(s) == 1 for s in groups.values())  # one split per group, across classes too
    for c in ("a", "b"):
        assert [s for i, s in zip(items, splits, strict=True) if i.label == c].count("val") == 6  # 20% of 30
    ungrouped = assign_splits(items, 0.2, seed=1)
    assert any(len({s for i, s in zip(items, ungrouped, strict=True) if f"_g{g:02d}_" in i.video.name}) == 2
               for g in range(1, 11))  # fmt: skip
    single = [SourceVideo(Path("x.mp4"), "lonely", "lonely/x")]
    assert assign_splits(single, 0.2) == ["train"]


def test_csv_with_splits_and_unreadable_videos(real_data_dir, tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(real_data_dir / "sample-videos/asl_gestures/eat.mkv", videos / "eat.mkv")
    shutil.copy(real_data_dir / "sample-videos/asl_gestures/no.mkv", videos / "no.mkv")
    (videos / "broken.mp4").write_bytes(b"\x00not a video" * 100)
    csv = tmp_path / "list.csv"
    csv.write_bytes(
        "\ufeffpath,label,split,comment\r\neat.mkv,eat,train,x\r\nno.mkv,no,validation,\r\nbroken.mp4,no,train,\r\n"
        "gone.mp4,eat,val,\r\n".encode()
    )
    out = tmp_path / "out"
    code = prepare_tool.main(
        [str(csv), str(out), "--videos-dir", str(videos), "--short-side", "32", "--no-progress"]
    )
    text = capsys.readouterr().out
    assert code == 1
    assert f"failed: {videos / 'broken.mp4'}: cannot open the video" in text
    assert f"failed: {videos / 'gone.mp4'}: video file" in text
    assert (out / "label_map.txt").read_text() == "eat\nno\n"
    assert [r.split()[:2] for r in (out / "train.txt").read_text().splitlines()] == [["eat/eat", "0"]]
    assert [r.split()[:2] for r in (out / "val.txt").read_text().splitlines()] == [["no/no", "1"]]
    assert "warning: no training video in: no" in text

    csv.write_text("path,label,split\neat.mkv,eat,holdout\n")
    assert prepare_tool.main([str(csv), str(out), "--videos-dir", str(videos), "--no-progress"]) == 2
    assert (
        capsys.readouterr().err.strip() == f"error: {csv}:2: split must be train, val or test, got 'holdout'"
    )


def test_kinetics_csv_cuts_full_videos_and_keeps_cut_clips(real_data_dir, tmp_path, capsys):
    videos = tmp_path / "kinetics" / "train"
    videos.mkdir(parents=True)
    full = real_data_dir / "UniFormer/Tw2yXa6CzWE.mp4"  # 300 frames at 30 fps
    (videos / "Tw2yXa6CzWE.mp4").symlink_to(full)
    (videos / "abcdefghijk_000010_000020.mp4").symlink_to(real_data_dir / "Ask-Anything/yoga.mp4")
    csv = tmp_path / "kinetics.csv"
    csv.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "yoga,Tw2yXa6CzWE,2,4,train\nyoga,abcdefghijk,10,20,val\nyoga,missing0000,0,10,train\n"
    )
    out = tmp_path / "out"
    code = prepare_tool.main([str(csv), str(out), "--videos-dir", str(tmp_path / "kinetics"), "--short-side", "0",
                              "--no-progress"])  # fmt: skip
    text = capsys.readouterr().out
    assert (
        code == 1 and "failed: yoga/missing0000_000000_000010: no video missing0000_000000_000010.*" in text
    )
    assert (out / "train.txt").read_text() == "yoga/Tw2yXa6CzWE_000002_000004 0 0 60 0 60 30\n"
    assert (out / "val.txt").read_text() == "yoga/abcdefghijk_000010_000020 0 0 300 0 300 30\n"
    # the cut starts at 2 s: its first frame is the video's frame 60 (0-based), at full size
    cap = cv2.VideoCapture(str(full))
    originals = [cap.read()[1] for _ in range(62)]
    cap.release()
    first = cv2.imread(str(out / "rawframes/yoga/Tw2yXa6CzWE_000002_000004/00001.jpg")).astype(float)
    errors = [np.abs(first - f).mean() for f in originals]
    assert int(np.argmin(errors)) == 60 and errors[60] < 3
    marker = json.loads((out / "rawframes/yoga/Tw2yXa6CzWE_000002_000004" / DONE_MARKER).read_text())
    assert marker["time_range"] == [2.0, 4.0]


def test_bad_sources_are_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert prepare_tool.main([str(tmp_path / "empty"), str(tmp_path / "out"), "--no-progress"]) == 2
    assert "no videos in class folders" in capsys.readouterr().err
    assert prepare_tool.main([str(tmp_path / "nope"), str(tmp_path / "out"), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope'}: no such folder or CSV file"
    (tmp_path / "empty" / "a").mkdir()
    (tmp_path / "empty" / "a" / "x.mp4").write_bytes(b"")
    assert prepare_tool.main([str(tmp_path / "empty"), str(tmp_path / "empty" / "out"), "--no-progress"]) == 2
    assert "must not be inside the source folder" in capsys.readouterr().err


def test_imbalance_few_videos_and_a_class_without_usable_video_warn(real_data_dir, tmp_path):
    source = tmp_path / "videos"
    for name, count in (("many", 11), ("one", 1)):
        (source / name).mkdir(parents=True)
        for k in range(count):
            (source / name / f"clip{k:02d}.mkv").symlink_to(
                real_data_dir / "sample-videos/asl_gestures/eat.mkv"
            )
    (source / "broken").mkdir()
    (source / "broken" / "x.mp4").write_bytes(b"\x00not a video" * 100)
    summary = prepare_dataset(source, tmp_path / "out", short_side=16, workers=2, progress=False, plot=False)
    assert [str(video) for video, _ in summary.failed] == [str(source / "broken" / "x.mp4")]
    assert (tmp_path / "out" / "label_map.txt").read_text() == "many\none\n"
    assert summary.warnings == [
        "class 'broken': no video could be dumped; left out of label_map.txt",
        "fewer than 5 videos in: one (1)",
        "imbalance: many has 11 videos, one 1 (11x); add videos or sample the classes in balance",
    ]
    assert [(c.name, c.splits["train"], c.splits["val"]) for c in summary.classes] == [
        ("many", 9, 2),
        ("one", 1, 0),
    ]
