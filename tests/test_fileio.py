"""Renames into place go through action_rec.fileio: `move_into_place`, and no other module renames."""

import re
from pathlib import Path

import pytest

from action_rec.fileio import move_into_place
from action_rec.workdir import DownloadError, download_file

REPO = Path(__file__).resolve().parents[1]


def test_move_into_place_replaces_files_and_directories_whole(tmp_path):
    staging, out = tmp_path / "staging", tmp_path / "out"
    staging.mkdir()
    out.mkdir()
    (staging / "model.xml").write_text("new")
    (out / "model.xml").write_text("old")
    (staging / "deploy").mkdir()
    (staging / "deploy" / "recognize.py").write_text("new")
    (out / "deploy").mkdir()
    (out / "deploy" / "stale.txt").write_text("old")
    (staging / "was_a_dir").write_text("file now")
    (out / "was_a_dir").mkdir()
    (staging / "was_a_file").mkdir()
    (out / "was_a_file").write_text("old")
    for name in ("model.xml", "deploy", "was_a_dir", "was_a_file"):
        assert move_into_place(staging / name, out / name) == out / name
    assert (out / "model.xml").read_text() == "new"
    assert [p.name for p in (out / "deploy").iterdir()] == ["recognize.py"]  # the old one whole gone
    assert (out / "was_a_dir").read_text() == "file now" and (out / "was_a_file").is_dir()
    assert not list(staging.iterdir()) and sorted(p.name for p in out.iterdir()) == [
        "deploy", "model.xml", "was_a_dir", "was_a_file",
    ]  # fmt: skip


def test_a_download_that_fails_its_checksum_leaves_nothing(tmp_path):
    source = tmp_path / "snapshot.pth"
    source.write_bytes(b"weights")
    dest = tmp_path / "wd" / "snapshot.pth"
    with pytest.raises(DownloadError, match="does not match sha256"):
        download_file(source.as_uri(), dest, sha256="0" * 64)
    assert not list(dest.parent.iterdir())  # no file, no temporary
    assert download_file(source.as_uri(), dest).read_bytes() == b"weights"
    assert [p.name for p in dest.parent.iterdir()] == ["snapshot.pth"]


RENAMES = re.compile(r"\b(os\.replace|os\.rename|shutil\.move)\(|\.rename\(")
PATH_REPLACE = re.compile(r"\b(?!dataclasses\b)\w+\.replace\((?![\"'])")  # not str.replace("a", ...)


def test_only_fileio_renames_into_place():
    found = []
    for folder in ("action_rec", "tools"):
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel == "action_rec/fileio.py" or rel.startswith("action_rec/runtime/"):
                continue  # fileio itself; the runtime ships without the toolkit (and without fileio)
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#")[0]
                if RENAMES.search(code) or PATH_REPLACE.search(code):
                    found.append(f"{rel}:{number}: {line.strip()}")
    assert not found
