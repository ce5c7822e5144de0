"""Annotation files: one video source a line, parsed strictly.

The format is the seed README's::

    <rel_dir> <label_id> <start_video_frame> <end_video_frame> <start_clip_frame> <end_clip_frame> <fps>

``rel_dir`` is relative to ``<data_root>/rawframes/``. Frame ids follow the convention that
``tools/dump_frames.py`` writes (``rel label 0 N 0 N fps`` for a video of N frames stored as
``00001.jpg`` ... ``0000N.jpg``): a range ``start end`` covers the frame files ``start + 1`` ... ``end``.

The original code read the four ids the other way round (clip first, video second) and users were
bitten by it; a line whose clip does not lie inside its video is rejected, so a file written in the
swapped order fails loudly here instead of training on the wrong frames.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from action_rec.errors import UserError

__all__ = [
    "AnnotationError",
    "VideoRecord",
    "check_labels",
    "parse_annotation_file",
    "parse_annotation_line",
    "read_label_map",
    "read_video_list",
    "resolve_ann_files",
    "unused_labels",
]

# Text lists are read as UTF-8 with an optional byte-order mark (Windows editors write one); CRLF line
# ends need nothing: every line is stripped.
ENCODING = "utf-8-sig"

_COLUMNS = (
    "<rel_dir> <label_id> <start_video_frame> <end_video_frame> <start_clip_frame> <end_clip_frame> <fps>"
)


class AnnotationError(UserError):
    """A bad annotation, label map or video list; the message is ``FILE:LINE: what is wrong``."""


@dataclass(frozen=True)
class VideoRecord:
    """One annotation line: where its frames are and which of them hold the action.

    Frame ids are the annotation's: the video covers frame files ``video_start + 1 .. video_end`` and
    the action ``clip_start + 1 .. clip_end`` (1-based file numbers, see the module docstring).
    """

    rel_dir: str
    label: int
    video_start: int
    video_end: int
    clip_start: int
    clip_end: int
    fps: float
    frame_dir: Path  # <data_root>/rawframes/<rel_dir>
    frame_pattern: str = "{:05d}.jpg"
    ann_file: str = "<memory>"
    line: int = 0
    source: int = 0  # index of the annotation file among those a dataset was given

    @property
    def num_clip_frames(self) -> int:
        return self.clip_end - self.clip_start

    @property
    def where(self) -> str:
        """``FILE:LINE`` of the annotation, for error messages."""
        return f"{self.ann_file}:{self.line}"

    def frame_path(self, index: int) -> Path:
        """The file of 1-based frame ``index``."""
        return self.frame_dir / self.frame_pattern.format(index)


def content_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line_no, stripped text)`` for each line of a text list that is neither blank nor a ``#`` comment.

    Every list the toolkit reads (annotations, video lists, CrossNorm pairs) skips the same lines and
    reports errors by the same 1-based line numbers. A UTF-8 byte-order mark and CRLF line ends are
    accepted (a mark would otherwise end up, invisible, in the first line's path).
    """
    with open(path, encoding=ENCODING) as f:
        for line_no, text in enumerate(f, start=1):
            text = text.strip()
            if text and not text.startswith("#"):
                yield line_no, text


def _fail(path: Path | str, line: int, message: str) -> AnnotationError:
    return AnnotationError(f"{path}:{line}: {message}")


def _parse_int(text: str, name: str, path: Path, line: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise _fail(path, line, f"{name} must be an integer, got {text!r}") from None


def parse_annotation_file(
    path: str | Path,
    data_root: str | Path | None = None,
    frame_pattern: str = "{:05d}.jpg",
    check_frames: bool = True,
    source: int = 0,
) -> list[VideoRecord]:
    """Read an annotation file into records, rejecting any bad line with ``FILE:LINE: message``.

    ``data_root`` defaults to the annotation file's folder; frames live under
    ``<data_root>/rawframes/<rel_dir>/``. Blank lines and lines starting with ``#`` are skipped.
    With ``check_frames`` the frame directory and the first and last frame file of the clip must
    exist, so a wrong path or frame pattern fails here and not in the middle of an epoch.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file not found")
    root = Path(data_root) if data_root is not None else path.parent
    return [
        parse_annotation_line(text, path, line_no, root, frame_pattern, check_frames, source)
        for line_no, text in content_lines(path)
    ]


def parse_annotation_line(
    text: str,
    path: str | Path,
    line_no: int,
    root: str | Path,
    frame_pattern: str = "{:05d}.jpg",
    check_frames: bool = True,
    source: int = 0,
) -> VideoRecord:
    """One line of an annotation file (see :func:`parse_annotation_file`); a checker that reports every
    bad line, not just the first, calls this per line."""
    path, root = Path(path), Path(root)
    cols = text.split()
    if len(cols) != 7:
        raise _fail(path, line_no, f"expected 7 columns ({_COLUMNS}), got {len(cols)}")
    rel_dir = cols[0]
    label = _parse_int(cols[1], "label_id", path, line_no)
    names = ("start_video_frame", "end_video_frame", "start_clip_frame", "end_clip_frame")
    v0, v1, c0, c1 = (_parse_int(c, n, path, line_no) for c, n in zip(cols[2:6], names, strict=True))
    try:
        fps = float(cols[6])
    except ValueError:
        raise _fail(path, line_no, f"fps must be a number, got {cols[6]!r}") from None

    if label < 0:
        raise _fail(path, line_no, f"label_id must be >= 0, got {label}")
    for value, name in zip((v0, v1, c0, c1), names, strict=True):
        if value < 0:
            raise _fail(path, line_no, f"{name} must be >= 0, got {value}")
    if v0 > v1:
        raise _fail(path, line_no, f"video start {v0} is after video end {v1}")
    if c0 > c1:
        raise _fail(path, line_no, f"clip start {c0} is after clip end {c1}")
    if c0 == c1:
        raise _fail(path, line_no, f"clip {c0}..{c1} is empty (it covers frames start + 1 .. end)")
    if c0 < v0 or c1 > v1:
        raise _fail(
            path,
            line_no,
            f"clip {c0}..{c1} lies outside the video {v0}..{v1} "
            "(the order is video start/end, then clip start/end)",
        )
    if not math.isfinite(fps) or fps <= 0:
        raise _fail(path, line_no, f"fps must be a positive number, got {cols[6]!r}")

    frame_dir = root / "rawframes" / rel_dir
    record = VideoRecord(
        rel_dir, label, v0, v1, c0, c1, fps, frame_dir, frame_pattern, str(path), line_no, source
    )
    if check_frames:
        if not frame_dir.is_dir():
            raise _fail(path, line_no, f"frame directory {frame_dir} not found")
        for index in (c0 + 1, c1):
            if not record.frame_path(index).is_file():
                raise _fail(
                    path,
                    line_no,
                    f"frame file {record.frame_path(index)} not found "
                    f"(clip frames {c0 + 1}..{c1}, pattern {frame_pattern!r})",
                )
    return record


def resolve_ann_files(
    ann_files: Sequence[str | Path], data_roots: Sequence[str | Path], flag: str = "annotation files"
) -> tuple[list[str], list[str]]:
    """Pair annotation files with data roots and find each file; the one resolver every tool uses.

    ``data_roots`` is one root for all files or one per file. A file is taken as given (absolute, or
    relative to the current directory) when it exists there, else inside its data root
    (``--train-ann-files train.txt --train-data-roots DIR`` finds ``DIR/train.txt``). ``flag`` names
    the option in error messages.
    """
    ann_files, data_roots = list(ann_files), list(data_roots)
    if not ann_files:
        return [], []
    if len(data_roots) == 1 and len(ann_files) > 1:
        data_roots = data_roots * len(ann_files)
    if len(data_roots) != len(ann_files):
        raise AnnotationError(
            f"{flag}: {len(ann_files)} annotation files but {len(data_roots)} data roots "
            "(give one data root per annotation file, or one for all)"
        )
    resolved = []
    for ann, root in zip(ann_files, data_roots, strict=True):
        if not Path(root).is_dir():
            raise AnnotationError(f"{flag}: data root {root}: no such directory")
        path = Path(ann)
        if not path.is_file() and not path.is_absolute():
            path = Path(root) / ann
        if not path.is_file():
            raise AnnotationError(f"{flag}: {ann}: no such annotation file (nor {Path(root) / ann})")
        resolved.append(str(path))
    return resolved, [str(r) for r in data_roots]


def check_labels(records: Iterable[VideoRecord], num_classes: int, origin: str) -> None:
    """The one label check: every label id must name one of ``num_classes`` classes, which come from
    ``origin`` (a label map, the given class names, the training set); names FILE:LINE otherwise."""
    for r in records:
        if not 0 <= r.label < num_classes:
            raise AnnotationError(
                f"{r.where}: label_id {r.label} is out of range: {origin} has {num_classes} classes "
                f"(ids 0..{num_classes - 1})"
            )


def unused_labels(records: Iterable[VideoRecord], num_classes: int) -> list[int]:
    """Class ids no record uses: with ids 0 and 5 only, 1..4 are classes the model never sees."""
    used = {r.label for r in records}
    return [i for i in range(num_classes) if i not in used]


def read_label_map(path: str | Path) -> list[str]:
    """Class names, one a line, in label-id order; trailing blank lines are allowed."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: label map not found")
    lines = path.read_text(encoding=ENCODING).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    names: list[str] = []
    seen: dict[str, int] = {}
    for line_no, text in enumerate(lines, start=1):
        name = text.strip()
        if not name:
            raise _fail(path, line_no, "empty class name (one name a line, in label-id order)")
        if name in seen:
            raise _fail(path, line_no, f"class {name!r} already named on line {seen[name]}")
        seen[name] = line_no
        names.append(name)
    if not names:
        raise AnnotationError(f"{path}: label map is empty")
    return names


def read_video_list(path: str | Path) -> list[tuple[str, int, int]]:
    """A ``<rel_path_to_video> <label_id>`` list as ``(rel_path, label, line_no)`` tuples."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{path}: video list not found")
    items = []
    for line_no, text in content_lines(path):
        cols = text.split()
        if len(cols) != 2:
            raise _fail(
                path, line_no, f"expected 2 columns (<rel_path_to_video> <label_id>), got {len(cols)}"
            )
        label = _parse_int(cols[1], "label_id", path, line_no)
        if label < 0:
            raise _fail(path, line_no, f"label_id must be >= 0, got {label}")
        items.append((cols[0], label, line_no))
    return items
