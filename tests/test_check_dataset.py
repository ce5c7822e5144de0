"""check_dataset: every problem of a raw-frame dataset as FILE:LINE, exit 1 when there is one."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from action_rec.data.check import check_dataset, quick_problems
from action_rec.data.dataset import RawFrameDataset
from action_rec.data.synthetic import CLASSES

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import check_dataset as check_tool  # noqa: E402

sys.path.remove(str(REPO / "tools"))


@pytest.fixture
def data(synthetic_dataset, tmp_path) -> Path:
    return Path(shutil.copytree(synthetic_dataset, tmp_path / "data"))


def run(data: Path, capsys, *extra: str) -> tuple[int, list[str]]:
    args = ["--ann-files", "train.txt", "val.txt", "--data-roots", str(data), "--no-progress", *extra]
    code = check_tool.main(args)
    return code, capsys.readouterr().out.splitlines()


def test_a_clean_dataset_passes(data, capsys):
    code, out = run(data, capsys, "--workers", "2")
    assert code == 0, out
    assert out[-1].startswith("check_dataset: 36 rows, 36 videos, 1152 frames checked in ")
    assert out[-1].endswith(": 0 problem(s)")


def test_every_problem_is_reported_by_file_and_line(data, capsys):
    train, val = data / "train.txt", data / "val.txt"
    rows = train.read_text().splitlines()
    frames = data / "rawframes"

    # line 2: a frame cut short (a partial copy); line 4: a frame missing
    truncated = frames / rows[1].split()[0] / "00010.jpg"
    truncated.write_bytes(truncated.read_bytes()[:300])
    missing = frames / rows[3].split()[0] / "00020.jpg"
    missing.unlink()
    # line 6: a label beyond label_map.txt (6 classes); line 7: implausible fps; line 8: one column short
    rows[5] = rows[5].split()[0] + " 6 0 32 0 32 30"
    rows[6] = " ".join(rows[6].split()[:6]) + " 3000"
    rows[7] = " ".join(rows[7].split()[:6])
    train.write_text("\n".join(rows) + "\n")
    # val line 13: a training video copied under another name
    shutil.copytree(frames / rows[0].split()[0], frames / "val" / "copy_of_train_0")
    val.write_text(val.read_text() + "val/copy_of_train_0 0 0 32 0 32 30\n")

    code, out = run(data, capsys, "--workers", "2")
    assert code == 1
    problems = [line for line in out if not line.startswith(("note:", "check_dataset:"))]
    assert problems == [
        f"{train}:2: frame file {truncated} is truncated (no JPEG end-of-image marker: a partial copy?)",
        f"{train}:4: 1 of the video's frames 1..32 are missing from {missing.parent} (first: 00020.jpg)",
        f"{train}:6: label_id 6 is out of range: {data / 'label_map.txt'} has 6 classes (ids 0..5)",
        f"{train}:7: fps 3000 is implausible (expected 1..240)",
        f"{train}:8: expected 7 columns (<rel_dir> <label_id> <start_video_frame> <end_video_frame> "
        "<start_clip_frame> <end_clip_frame> <fps>), got 6",
        f"{val}:13: same frames as {train}:1 ({rows[0].split()[0]}): the video is in two annotation files "
        "(train and val?)",
    ]
    assert out[-1].endswith(": 6 problem(s)")


def test_frame_count_and_missing_folder(data, x3d_template):
    (data / "train.txt").write_text("train/moving_left_0000 0 0 30 0 30 30\nnowhere 0 0 8 0 8 30\n")
    report = check_dataset(["train.txt"], [data], workers=1, progress=False)
    assert [str(p) for p in report.problems] == [
        f"{data / 'train.txt'}:1: frame count: {data / 'rawframes/train/moving_left_0000'} holds frames up to "
        "00032.jpg but the row's video ends at frame 30; dump it again or correct the row",
        f"{data / 'train.txt'}:2: frame directory {data / 'rawframes/nowhere'} not found",
    ]
    assert quick_problems(RawFrameDataset(["val.txt"], [data], x3d_template, "val").records) == []


def test_unused_classes_and_no_label_map_are_notes(data):
    (data / "train.txt").write_text(
        "train/moving_left_0000 0 0 32 0 32 30\ntrain/moving_left_0001 5 0 32 0 32 30\n"
    )
    report = check_dataset(["train.txt"], [data], workers=1, progress=False)
    assert report.problems == []
    named = ", ".join(f"{i} ({CLASSES[i].name})" for i in range(1, 5))
    assert report.notes == [f"{data / 'label_map.txt'}: 4 class(es) without any row: {named}"]
    (data / "label_map.txt").unlink()
    assert "no label_map.txt" in check_dataset(["train.txt"], [data], workers=1, progress=False).notes[0]


def test_bad_input_is_exit_2(data, capsys):
    code = check_tool.main(["--ann-files", "nope.txt", "--data-roots", str(data), "--no-progress"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --ann-files: nope.txt: no such annotation file (nor {data / 'nope.txt'})"
    )
