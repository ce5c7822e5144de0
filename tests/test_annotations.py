"""Annotation files, label maps and video lists: good lines parse, each bad line is one FILE:LINE error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from action_rec.data.annotations import (
    AnnotationError,
    check_labels,
    parse_annotation_file,
    read_label_map,
    read_video_list,
    resolve_ann_files,
    unused_labels,
)
from action_rec.errors import UserError


def make_root(tmp_path: Path, videos: dict[str, int], pattern: str = "{:05d}.jpg") -> Path:
    """A data root with rawframes/<name>/ holding `count` empty frame files each."""
    for name, count in videos.items():
        d = tmp_path / "rawframes" / name
        d.mkdir(parents=True)
        for i in range(1, count + 1):
            (d / pattern.format(i)).touch()
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file_parses_every_column(tmp_path):
    root = make_root(tmp_path, {"a": 50, "sub/b": 30})
    ann = write(root / "train.txt", "# comment\n\na 3 0 50 10 40 29.97\nsub/b 0 0 30 0 30 25\n")
    records = parse_annotation_file(ann, root, source=2)
    assert [r.rel_dir for r in records] == ["a", "sub/b"]
    a = records[0]
    assert (a.label, a.video_start, a.video_end, a.clip_start, a.clip_end) == (3, 0, 50, 10, 40)
    assert a.fps == pytest.approx(29.97)
    assert a.frame_dir == root / "rawframes" / "a"
    assert a.num_clip_frames == 30
    assert (a.ann_file, a.line, a.source) == (str(ann), 3, 2)  # line numbers count comments and blanks
    assert a.frame_path(7) == root / "rawframes" / "a" / "00007.jpg"


def test_data_root_defaults_to_the_annotation_folder(tmp_path):
    root = make_root(tmp_path, {"a": 5})
    records = parse_annotation_file(write(root / "val.txt", "a 0 0 5 0 5 30\n"))
    assert records[0].frame_dir == root / "rawframes" / "a"


def test_custom_frame_pattern(tmp_path):
    root = make_root(tmp_path, {"v": 10}, pattern="img_{:05d}.jpg")
    ann = write(root / "t.txt", "v 1 0 10 0 10 30\n")
    assert (
        parse_annotation_file(ann, root, frame_pattern="img_{:05d}.jpg")[0].frame_path(1).name
        == "img_00001.jpg"
    )
    with pytest.raises(AnnotationError, match=r"t\.txt:1: frame file .*00001\.jpg not found"):
        parse_annotation_file(ann, root)  # default pattern: the frames are not there


BAD_LINES = [
    ("a 0 0 50 0 50", r"expected 7 columns .*, got 6"),
    ("a 0 0 50 0 50 30 extra", r"expected 7 columns .*, got 8"),
    ("a x 0 50 0 50 30", r"label_id must be an integer, got 'x'"),
    ("a 0 0 5.5 0 5 30", r"end_video_frame must be an integer, got '5.5'"),
    ("a 0 0 50 zero 50 30", r"start_clip_frame must be an integer, got 'zero'"),
    ("a 0 0 50 0 50 fast", r"fps must be a number, got 'fast'"),
    ("a 0 0 50 0 50 0", r"fps must be a positive number, got '0'"),
    ("a 0 0 50 0 50 nan", r"fps must be a positive number"),
    ("a -1 0 50 0 50 30", r"label_id must be >= 0, got -1"),
    ("a 0 -2 50 0 50 30", r"start_video_frame must be >= 0, got -2"),
    ("a 0 40 10 0 10 30", r"video start 40 is after video end 10"),
    ("a 0 0 50 30 20 30", r"clip start 30 is after clip end 20"),
    ("a 0 0 50 20 20 30", r"clip 20\.\.20 is empty"),
    ("a 0 10 50 5 40 30", r"clip 5\.\.40 lies outside the video 10\.\.50"),
    ("a 0 0 40 0 50 30", r"clip 0\.\.50 lies outside the video 0\.\.40"),
    ("missing 0 0 50 0 50 30", r"frame directory .*rawframes/missing not found"),
    ("a 0 0 60 0 60 30", r"frame file .*00060\.jpg not found \(clip frames 1\.\.60"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_bad_line_is_one_error_naming_file_and_line(tmp_path, line, message):
    root = make_root(tmp_path, {"a": 50})
    ann = write(root / "train.txt", "a 0 0 50 0 50 30\n\n" + line + "\n")
    with pytest.raises(AnnotationError) as info:
        parse_annotation_file(ann, root)
    text = str(info.value)
    assert text.startswith(f"{ann}:3: "), text
    assert "\n" not in text
    assert re.search(message, text), text
    assert isinstance(info.value, UserError)


def test_swapped_video_and_clip_columns_fail(tmp_path):
    """The original code read clip before video; a file written that way must not parse silently."""
    root = make_root(tmp_path, {"a": 300})
    ann = write(root / "train.txt", "a 0 100 200 0 300 30\n")  # clip columns first, video last
    with pytest.raises(
        AnnotationError, match=r"train\.txt:1: clip 0\.\.300 lies outside the video 100\.\.200"
    ):
        parse_annotation_file(ann, root)


def test_check_frames_off_skips_the_file_system(tmp_path):
    ann = write(tmp_path / "train.txt", "nowhere 0 0 50 0 50 30\n")
    assert parse_annotation_file(ann, tmp_path, check_frames=False)[0].rel_dir == "nowhere"


def test_missing_annotation_file(tmp_path):
    with pytest.raises(AnnotationError, match=r"nope\.txt: annotation file not found"):
        parse_annotation_file(tmp_path / "nope.txt")


def test_resolve_ann_files_as_given_first_then_in_the_data_root(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    write(root / "train.txt", "")
    monkeypatch.chdir(tmp_path)
    assert resolve_ann_files(["train.txt"], [root]) == ([str(root / "train.txt")], [str(root)])
    assert resolve_ann_files([root / "train.txt"], [tmp_path]) == ([str(root / "train.txt")], [str(tmp_path)])
    write(tmp_path / "train.txt", "")  # now also relative to the current directory: that one wins
    assert resolve_ann_files(["train.txt"], [root])[0] == ["train.txt"]
    files, roots = resolve_ann_files(["train.txt", "root/train.txt"], [root])  # one root for both
    assert files == ["train.txt", "root/train.txt"] and roots == [str(root)] * 2
    with pytest.raises(
        AnnotationError, match=r"^--x: nope\.txt: no such annotation file \(nor .*root/nope\.txt\)$"
    ):
        resolve_ann_files(["nope.txt"], [root], "--x")
    with pytest.raises(AnnotationError, match=r"--x: data root .*nowhere: no such directory"):
        resolve_ann_files(["train.txt"], [tmp_path / "nowhere"], "--x")
    with pytest.raises(AnnotationError, match=r"--x: 2 annotation files but 3 data roots"):
        resolve_ann_files(["train.txt", "train.txt"], [root] * 3, "--x")
    assert resolve_ann_files([], [root]) == ([], [])


def test_byte_order_mark_and_crlf_are_accepted(tmp_path):
    root = make_root(tmp_path, {"a": 5, "b": 5})
    ann = root / "train.txt"
    ann.write_bytes("a 0 0 5 0 5 30\r\n\r\nb 1 0 5 0 5 25\r\n".encode("utf-8-sig"))
    records = parse_annotation_file(ann, root)
    assert [(r.rel_dir, r.label, r.line) for r in records] == [("a", 0, 1), ("b", 1, 3)]
    (root / "label_map.txt").write_bytes("walk\r\nrun\r\n".encode("utf-8-sig"))
    assert read_label_map(root / "label_map.txt") == ["walk", "run"]
    (root / "list.txt").write_bytes("x.mp4 0\r\n".encode("utf-8-sig"))
    assert read_video_list(root / "list.txt") == [("x.mp4", 0, 1)]


def test_one_label_check_and_unused_classes(tmp_path):
    root = make_root(tmp_path, {"a": 5, "b": 5})
    records = parse_annotation_file(write(root / "t.txt", "a 0 0 5 0 5 30\nb 5 0 5 0 5 30\n"), root)
    check_labels(records, 6, "label_map.txt")
    with pytest.raises(
        AnnotationError, match=r"t\.txt:2: label_id 5 is out of range: label_map\.txt has 5 classes"
    ):
        check_labels(records, 5, "label_map.txt")
    assert unused_labels(records, 6) == [1, 2, 3, 4]


def test_label_map(tmp_path):
    assert read_label_map(write(tmp_path / "m.txt", "walk\n run \njump\n\n")) == ["walk", "run", "jump"]
    with pytest.raises(AnnotationError, match=r"m2\.txt:2: empty class name"):
        read_label_map(write(tmp_path / "m2.txt", "walk\n\nrun\n"))
    with pytest.raises(AnnotationError, match=r"m3\.txt:3: class 'walk' already named on line 1"):
        read_label_map(write(tmp_path / "m3.txt", "walk\nrun\nwalk\n"))
    with pytest.raises(AnnotationError, match=r"m4\.txt: label map is empty"):
        read_label_map(write(tmp_path / "m4.txt", "\n"))


def test_video_list(tmp_path):
    items = read_video_list(write(tmp_path / "v.txt", "a/x.mp4 3\n\n# skip\nb.avi 0\n"))
    assert items == [("a/x.mp4", 3, 1), ("b.avi", 0, 4)]
    for text, message in [
        ("a.mp4\n", r"v2\.txt:1: expected 2 columns .*got 1"),
        ("a.mp4 1 0 10 0 10 30\n", r"v2\.txt:1: expected 2 columns .*got 7"),
        ("a.mp4 one\n", r"v2\.txt:1: label_id must be an integer, got 'one'"),
        ("a.mp4 -3\n", r"v2\.txt:1: label_id must be >= 0, got -3"),
    ]:
        with pytest.raises(AnnotationError, match=message):
            read_video_list(write(tmp_path / "v2.txt", text))
