"""dump_frames on real clips: frame counts as OpenCV decodes them, fps kept, bad videos reported and
skipped, interrupted runs resumed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

import action_rec.data.dump as dump
from action_rec.data.annotations import parse_annotation_file
from action_rec.data.dump import DONE_MARKER, TMP_PREFIX, dump_videos, frame_dir_name

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import dump_frames  # noqa: E402

sys.path.remove(str(REPO / "tools"))

# Short real clips of each container: avi/mpeg4, mkv/h264, GIF, mp4/h264 at 6 fps.
REAL = [
    "mmaction2/test.avi",
    "sample-videos/asl_gestures/again.mkv",
    "sample-videos/asl_gestures/eat.mkv",
    "kinetics-i3d/v_CricketShot_g04_c01_rgb.gif",
    "mmaction2/demo_spatiotemporal_det.mp4",
]


def opencv_truth(path: Path) -> tuple[int, float]:
    """Frames OpenCV decodes from the file, counted independently of dump_frames, and its fps."""
    cap = cv2.VideoCapture(str(path))
    fps, count = cap.get(cv2.CAP_PROP_FPS), 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count, fps


def jpgs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".jpg")


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob(f"{TMP_PREFIX}*")]


def test_real_clips_frame_counts_and_fps(real_data_dir, tmp_path, capsys):
    (tmp_path / "train.txt").write_text("".join(f"{v} {i}\n" for i, v in enumerate(REAL[:3])))
    (tmp_path / "val.txt").write_text("".join(f"{v} {i}\n" for i, v in enumerate(REAL[3:], start=3)))
    out = tmp_path / "out"
    args = [
        "--videos-dir",
        str(real_data_dir),
        "--annotation",
        str(tmp_path / "train.txt"),
        str(tmp_path / "val.txt"),
    ]
    code = dump_frames.main([*args, "--output-dir", str(out), "--workers", "2", "--short-side", "96"])
    assert code == 0
    assert "5 videos: 5 done, 0 skipped (already dumped), 0 failed" in capsys.readouterr().out

    lines = (out / "train.txt").read_text().splitlines() + (out / "val.txt").read_text().splitlines()
    assert len(lines) == len(REAL)
    for label, (video, line) in enumerate(zip(REAL, lines, strict=True)):
        frames, fps = opencv_truth(real_data_dir / video)
        rel, lab, v0, v1, c0, c1, fps_text = line.split()
        assert rel == frame_dir_name(video) == video.rsplit(".", 1)[0]
        assert (int(lab), int(v0), int(v1), int(c0), int(c1)) == (label, 0, frames, 0, frames)
        assert float(fps_text) == pytest.approx(fps)
        names = jpgs(out / "rawframes" / rel)
        assert names == [f"{i:05d}.jpg" for i in range(1, frames + 1)]
        assert min(cv2.imread(str(out / "rawframes" / rel / names[0])).shape[:2]) == 96
    assert float(lines[4].split()[-1]) == 6.0  # the odd-fps clip keeps its 6 fps
    # the written annotations are valid input for the dataset
    assert len(parse_annotation_file(out / "val.txt", out)) == 2
    assert not leftovers(out)

    # a rerun skips everything and writes the same annotations
    before = (out / "train.txt").read_text()
    assert dump_frames.main([*args, "--output-dir", str(out), "--workers", "1", "--short-side", "96"]) == 0
    assert "5 videos: 0 done, 5 skipped (already dumped), 0 failed" in capsys.readouterr().out
    assert (out / "train.txt").read_text() == before


def test_truncated_and_corrupt_videos_are_reported_and_skipped(real_data_dir, tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(real_data_dir / "mmaction2/test.avi", videos / "good.avi")
    data = (real_data_dir / "sample-videos/asl_gestures/book.mkv").read_bytes()
    (videos / "cut_mkv.mkv").write_bytes(data[: len(data) // 2])  # decodes, but half the frames are gone
    mp4 = (real_data_dir / "mmaction2/demo.mp4").read_bytes()
    (videos / "cut_mp4.mp4").write_bytes(mp4[: len(mp4) // 2])  # index at the end: cannot be opened
    (videos / "garbage.mp4").write_bytes(b"\x00not a video" * 100)
    names = ["good.avi", "cut_mkv.mkv", "cut_mp4.mp4", "garbage.mp4", "missing.mp4"]
    (tmp_path / "list.txt").write_text("".join(f"{n} 0\n" for n in names))
    out = tmp_path / "out"
    code = dump_frames.main(
        ["--videos-dir", str(videos), "--annotation", str(tmp_path / "list.txt"), "--output-dir", str(out)]
        + ["--workers", "2", "--short-side", "64"]
    )
    text = capsys.readouterr().out
    assert code == 1
    assert "5 videos: 1 done, 0 skipped (already dumped), 4 failed" in text
    assert "failed: cut_mkv.mkv: truncated or corrupt: decoded" in text
    assert "failed: cut_mp4.mp4: cannot open the video" in text
    assert "failed: garbage.mp4: cannot open the video" in text
    assert "failed: missing.mp4: video file" in text and "not found" in text
    assert (out / "list.txt").read_text().split()[:2] == ["good", "0"]
    assert len((out / "list.txt").read_text().splitlines()) == 1
    assert sorted(p.name for p in (out / "rawframes").iterdir()) == ["good"]  # nothing half-written left


def test_interrupted_video_is_redone_on_rerun(real_data_dir, tmp_path, monkeypatch):
    (tmp_path / "list.txt").write_text("mmaction2/test.avi 0\nsample-videos/asl_gestures/eat.mkv 1\n")
    out = tmp_path / "out"
    real_write = dump._write_frame
    calls = {"n": 0}

    def interrupting_write(path, frame, quality):
        calls["n"] += 1
        if calls["n"] == 164 + 20:  # 20 frames into the second video
            raise KeyboardInterrupt
        real_write(path, frame, quality)

    monkeypatch.setattr(dump, "_write_frame", interrupting_write)
    with pytest.raises(KeyboardInterrupt):
        dump_videos(real_data_dir, [tmp_path / "list.txt"], out, workers=1, short_side=64, progress=False)
    first, second = out / "rawframes/mmaction2/test", out / "rawframes/sample-videos/asl_gestures/eat"
    assert (first / DONE_MARKER).is_file() and len(jpgs(first)) == 164
    assert not second.exists()  # the interrupted video exists only as a temporary folder
    (partial,) = leftovers(out)
    assert len(jpgs(partial)) == 19 and not (partial / DONE_MARKER).exists()

    monkeypatch.setattr(dump, "_write_frame", real_write)
    summary = dump_videos(
        real_data_dir, [tmp_path / "list.txt"], out, workers=1, short_side=64, progress=False
    )
    assert (summary.done, summary.skipped, summary.failed) == (1, 1, [])
    assert len(jpgs(second)) == opencv_truth(real_data_dir / "sample-videos/asl_gestures/eat.mkv")[0]
    assert not leftovers(out)


def test_killed_process_resumes(real_data_dir, tmp_path):
    """A real kill -9 in the middle of a video; the rerun completes every video correctly."""
    videos = ["debian-opencv-doc/vtest.avi", "mmaction2/test.avi"]
    (tmp_path / "list.txt").write_text("".join(f"{v} {i}\n" for i, v in enumerate(videos)))
    out = tmp_path / "out"
    cmd = [sys.executable, str(REPO / "tools/dump_frames.py"), "--videos-dir", str(real_data_dir)]
    cmd += [
        "--annotation",
        str(tmp_path / "list.txt"),
        "--output-dir",
        str(out),
        "--workers",
        "1",
        "--short-side",
        "64",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    caught = False
    while time.monotonic() < deadline and proc.poll() is None:
        tmp = leftovers(out / "rawframes") if (out / "rawframes").exists() else []
        if tmp and len(list(tmp[0].iterdir())) > 50:
            os.kill(proc.pid, signal.SIGKILL)
            caught = True
            break
        time.sleep(0.005)
    proc.wait()
    assert caught, "the dump finished before it could be interrupted"
    assert not (out / "list.txt").exists() and not (out / "rawframes/debian-opencv-doc/vtest").exists()

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "2 videos: 2 done" in rerun.stdout
    for line, video in zip((out / "list.txt").read_text().splitlines(), videos, strict=True):
        frames = opencv_truth(real_data_dir / video)[0]
        assert line.split()[2:6] == ["0", str(frames), "0", str(frames)]
        assert len(jpgs(out / "rawframes" / line.split()[0])) == frames
    assert not leftovers(out)


def test_changed_video_is_dumped_again(real_data_dir, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(real_data_dir / "sample-videos/asl_gestures/eat.mkv", videos / "a.mkv")
    (tmp_path / "list.txt").write_text("a.mkv 0\n")
    out = tmp_path / "out"
    assert dump_videos(videos, [tmp_path / "list.txt"], out, progress=False, short_side=32).done == 1
    shutil.copy(real_data_dir / "sample-videos/asl_gestures/want.mkv", videos / "a.mkv")
    summary = dump_videos(videos, [tmp_path / "list.txt"], out, progress=False, short_side=32)
    assert summary.done == 1 and summary.skipped == 0
    want = opencv_truth(real_data_dir / "sample-videos/asl_gestures/want.mkv")[0]
    assert len(jpgs(out / "rawframes/a")) == want and f" 0 {want} 0 {want} " in (out / "list.txt").read_text()


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4\n")
    code = dump_frames.main(
        [
            "--videos-dir",
            str(videos),
            "--annotation",
            str(tmp_path / "list.txt"),
            "--output-dir",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.strip()
        == f"error: {tmp_path / 'list.txt'}:2: expected 2 columns (<rel_path_to_video> <label_id>), got 1"
    )

    (tmp_path / "list.txt").write_text("a.mp4 0\n")
    code = dump_frames.main(
        [
            "--videos-dir",
            str(videos),
            "--annotation",
            str(tmp_path / "list.txt"),
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 2 and "would overwrite this video list" in capsys.readouterr().err

    (tmp_path / "list.txt").write_text("x/a.mp4 0\nx/a.avi 1\n")
    code = dump_frames.main(
        [
            "--videos-dir",
            str(videos),
            "--annotation",
            str(tmp_path / "list.txt"),
            "--output-dir",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "list.txt:2: x/a.avi and x/a.mp4" in capsys.readouterr().err


def test_frame_dir_name():
    assert frame_dir_name("a/b/clip.mp4") == "a/b/clip"
    assert frame_dir_name("clip.v2.mkv") == "clip.v2"
    assert frame_dir_name("noext") == "noext"


def test_other_short_side_is_dumped_again(real_data_dir, tmp_path):
    (tmp_path / "list.txt").write_text("sample-videos/asl_gestures/eat.mkv 0\n")
    out = tmp_path / "out"
    assert dump_videos(real_data_dir, [tmp_path / "list.txt"], out, progress=False, short_side=32).done == 1
    assert (
        dump_videos(real_data_dir, [tmp_path / "list.txt"], out, progress=False, short_side=32).skipped == 1
    )
    summary = dump_videos(real_data_dir, [tmp_path / "list.txt"], out, progress=False, short_side=48)
    assert summary.done == 1 and summary.skipped == 0
    frame = cv2.imread(str(out / "rawframes/sample-videos/asl_gestures/eat/00001.jpg"))
    assert min(frame.shape[:2]) == 48
