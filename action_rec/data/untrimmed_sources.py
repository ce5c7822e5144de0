"""Untrimmed recordings with marked segments: three annotation formats read into one form.

A labelling tool exports where each action happens in a long video; these readers turn its file into
:class:`Recording` objects (a video and its segments, each segment remembering ``FILE:LINE``), so the
checks and the clip planning in :mod:`action_rec.data.untrimmed` are written once:

- a CSV with a header ``video,start,end,label`` (seconds) or ``video,start_frame,end_frame,label``
  (frame numbers, 0-based, end exclusive) and an optional ``split`` column (train / val / test); the
  ``video`` column is a path relative to ``videos_dir`` (default: the CSV's folder), its extension may
  be left out;
- ActivityNet-style JSON: ``{"database": {"<id>": {"subset": "training", "annotations":
  [{"segment": [start_s, end_s], "label": "..."}]}}}``; the video of ``<id>`` is ``<id>.<ext>`` or
  ``v_<id>.<ext>`` in ``videos_dir`` (searched recursively); ``subset`` training / validation /
  testing sets the split;
- the segment JSON that ``tools/demo.py --timeline`` writes and ``tools/eval_timeline.py`` reads, a list
  ``[{"start_s", "end_s", "label", "score"}]``: one file per video, named ``<video stem>.json`` and lying
  beside the video. The source is a folder; every ``*.json`` in it (recursively) is one recording, so a
  prediction corrected by hand becomes training data by putting it beside its video.
"""

from __future__ import annotations

import bisect
import csv
import json
import json.decoder
import json.scanner
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from action_rec.errors import UserError

__all__ = [
    "UntrimmedError",
    "Segment",
    "Recording",
    "read_segment_csv",
    "read_activitynet",
    "read_segment_folder",
    "detect_format",
    "read_recordings",
    "FORMATS",
]

VIDEO_EXTENSIONS = frozenset(".mp4 .avi .mkv .mov .webm .m4v .mpg .mpeg .wmv .flv .3gp .ogv .ts".split())
SUBSETS = {"training": "train", "train": "train", "validation": "val", "val": "val", "testing": "test"}
SUBSETS["test"] = "test"
FORMATS = ("segments-csv", "activitynet", "segment-json")


class UntrimmedError(UserError):
    """A bad untrimmed annotation (``FILE:LINE: what is wrong``)."""


@dataclass(frozen=True)
class Segment:
    """One marked action: ``start``..``end`` in seconds, or in frames (``in_frames``: 0-based, end
    exclusive) until the video's frame rate is known."""

    start: float
    end: float
    label: str
    where: str  # FILE:LINE of the annotation
    in_frames: bool = False


@dataclass
class Recording:
    """A long video and its marked segments (time outside them is "no action")."""

    video: Path
    where: str  # FILE:LINE that names it first
    segments: list[Segment] = field(default_factory=list)
    split: str | None = None  # the annotation's (train / val / test); None: assigned later


def _video_lookup(videos_dir: Path) -> dict[str, Path]:
    """Videos under ``videos_dir`` by relative path without extension and by stem."""
    index: dict[str, Path] = {}
    for p in sorted(videos_dir.rglob("*")):
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file():
            index.setdefault(p.relative_to(videos_dir).with_suffix("").as_posix(), p)
            index.setdefault(p.stem, p)
    return index


def _find_video(name: str, videos_dir: Path, index: dict[str, Path], where: str) -> Path:
    direct = videos_dir / name
    if direct.is_file():
        return direct
    key = Path(name).with_suffix("").as_posix() if Path(name).suffix.lower() in VIDEO_EXTENSIONS else name
    for candidate in (key, f"v_{key}"):
        if candidate in index:
            return index[candidate]
    raise UntrimmedError(f"{where}: unknown video {name!r}: no such video file in {videos_dir}")


def _number(value: Any, name: str, where: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise UntrimmedError(f"{where}: {name} must be a number, got {value!r}") from None


def _split(value: str, where: str) -> str:
    split = SUBSETS.get(value.strip().lower())
    if split is None:
        raise UntrimmedError(f"{where}: split must be train, val or test, got {value!r}")
    return split


def read_segment_csv(path: Path, videos_dir: Path | None = None) -> list[Recording]:
    """Recordings of a ``video,start,end,label`` (or ``start_frame,end_frame``) CSV, in file order."""
    videos_dir = videos_dir or path.parent
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(f), start=1)]
    rows = [(n, row) for n, row in rows if any(row) and not row[0].startswith("#")]
    if not rows:
        raise UntrimmedError(f"{path}: the CSV has no rows")
    header_line, header = rows[0][0], [c.lower() for c in rows[0][1]]
    in_frames = "start_frame" in header
    times = ("start_frame", "end_frame") if in_frames else ("start", "end")
    absent = [c for c in ("video", *times, "label") if c not in header]
    if absent:
        raise UntrimmedError(
            f"{path}:{header_line}: the header needs video,start,end,label (seconds) or "
            f"video,start_frame,end_frame,label; {', '.join(absent)} missing"
        )
    col = {c: header.index(c) for c in ("video", *times, "label", "split") if c in header}
    index = _video_lookup(videos_dir)
    recordings: dict[Path, Recording] = {}
    for line, row in rows[1:]:
        where = f"{path}:{line}"
        if len(row) <= max(col.values()):
            raise UntrimmedError(f"{where}: expected {len(header)} columns, got {len(row)}")
        name, label = row[col["video"]], row[col["label"]]
        if not name or not label:
            raise UntrimmedError(f"{where}: empty video or label")
        start, end = (_number(row[col[t]], t, where) for t in times)
        video = _find_video(name, videos_dir, index, where)
        rec = recordings.setdefault(video, Recording(video, where))
        if "split" in col and row[col["split"]]:
            split = _split(row[col["split"]], where)
            if rec.split not in (None, split):
                raise UntrimmedError(f"{where}: {name} is in split {rec.split} on {rec.where}, here {split}")
            rec.split = split
        rec.segments.append(Segment(start, end, label, where, in_frames))
    if not recordings:
        raise UntrimmedError(f"{path}: the CSV has a header but no rows")
    return list(recordings.values())


class _Located(dict):
    """A JSON object that knows the line it starts on."""

    line = 0


def _load_located(path: Path) -> Any:
    """Parse JSON like ``json.loads``, every object a :class:`_Located` that knows its line."""
    text = path.read_text(encoding="utf-8-sig")
    newlines = [i for i, c in enumerate(text) if c == "\n"]
    decoder = json.JSONDecoder()

    def parse_object(s_and_end, *args):
        obj, end = json.decoder.JSONObject(s_and_end, *args)
        located = _Located(obj)
        located.line = bisect.bisect_left(newlines, s_and_end[1]) + 1
        return located, end

    decoder.parse_object = parse_object
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # the C scanner ignores parse_object
    try:
        return decoder.decode(text)
    except ValueError as exc:
        raise UntrimmedError(f"{path}: not valid JSON: {exc}") from None


def _line(obj: Any, fallback: int = 1) -> int:
    return getattr(obj, "line", fallback)


def read_activitynet(path: Path, videos_dir: Path | None = None) -> list[Recording]:
    """Recordings of an ActivityNet-style JSON (see the module docstring); ``where`` names the line
    and the entry (``database/<id>/annotations[i]``), as the file may be one long line."""
    videos_dir = videos_dir or path.parent
    data = _load_located(path)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise UntrimmedError(f"{path}:1: expected an object with a 'database' object (ActivityNet format)")
    index = _video_lookup(videos_dir)
    recordings = []
    for vid, entry in data["database"].items():
        where = f"{path}:{_line(entry)}: database/{vid}"
        if not isinstance(entry, dict) or not isinstance(entry.get("annotations", []), list):
            raise UntrimmedError(f"{where}: expected {{subset, annotations: [...]}}")
        rec = Recording(_find_video(vid, videos_dir, index, where), where)
        if entry.get("subset"):
            rec.split = _split(str(entry["subset"]), where)
        for i, ann in enumerate(entry.get("annotations", [])):
            at = f"{path}:{_line(ann, _line(entry))}: database/{vid}/annotations[{i}]"
            seg = ann.get("segment") if isinstance(ann, dict) else None
            if not isinstance(seg, list) or len(seg) != 2 or not ann.get("label"):
                raise UntrimmedError(f"{at}: expected {{segment: [start, end], label: ...}}")
            start, end = (_number(v, "segment", at) for v in seg)
            rec.segments.append(Segment(start, end, str(ann["label"]), at))
        recordings.append(rec)
    if not recordings:
        raise UntrimmedError(f"{path}: the database is empty")
    return recordings


def read_segment_file(path: Path) -> list[Segment]:
    """The segments of one ``demo.py --timeline`` file, each naming its line."""
    data = _load_located(path)
    if isinstance(data, dict) and isinstance(data.get("segments"), list):
        data = data["segments"]
    if not isinstance(data, list):
        raise UntrimmedError(f"{path}:1: expected a list of segments [{{start_s, end_s, label}}, ...]")
    segments = []
    for seg in data:
        where = f"{path}:{_line(seg)}"
        if not isinstance(seg, dict) or not {"start_s", "end_s", "label"} <= seg.keys():
            raise UntrimmedError(f"{where}: a segment needs start_s, end_s and label")
        start, end = _number(seg["start_s"], "start_s", where), _number(seg["end_s"], "end_s", where)
        segments.append(Segment(start, end, str(seg["label"]), where))
    return segments


def read_segment_folder(folder: Path, videos_dir: Path | None = None) -> list[Recording]:
    """One recording per ``<stem>.json`` under ``folder``: the video ``<stem>.<ext>`` beside it (or at
    the same relative place in ``videos_dir``)."""
    recordings = []
    for path in sorted(folder.rglob("*.json")):
        base = (videos_dir / path.relative_to(folder)) if videos_dir else path
        videos = sorted(p for p in base.parent.glob(f"{base.stem}.*") if p.suffix.lower() in VIDEO_EXTENSIONS)
        if not videos:
            raise UntrimmedError(
                f"{path}:1: unknown video: no {base.stem}.<video ext> beside it in {base.parent}"
            )
        recordings.append(Recording(videos[0], f"{path}:1", read_segment_file(path)))
    if not recordings:
        raise UntrimmedError(f"{folder}: no <video stem>.json segment files in the folder")
    return recordings


def detect_format(source: Path) -> str | None:
    """The untrimmed format of ``source`` by its content, None for a trimmed source (class folders or
    a ``path,label`` / Kinetics CSV)."""
    if source.is_dir():  # a <stem>.json beside a video <stem>.<ext>
        for path in source.rglob("*.json"):
            if any(p.suffix.lower() in VIDEO_EXTENSIONS for p in path.parent.glob(f"{path.stem}.*")):
                return "segment-json"
        return None
    suffix = source.suffix.lower()
    if suffix == ".json":
        try:  # ActivityNet's own file has a long "taxonomy" before its "database": parse it
            data = json.loads(source.read_text(encoding="utf-8-sig"))
        except ValueError as exc:
            raise UntrimmedError(f"{source}: not valid JSON: {exc}") from None
        return "activitynet" if isinstance(data, dict) and "database" in data else "segment-json"
    if suffix in (".csv", ".txt", ".tsv", ""):
        with open(source, encoding="utf-8-sig", newline="") as f:
            first = next((r for r in csv.reader(f) if any(r) and not r[0].startswith("#")), [])
        header = {c.strip().lower() for c in first}
        if "video" in header and ({"start", "end"} <= header or {"start_frame", "end_frame"} <= header):
            return "segments-csv"
    return None


def read_recordings(source: Path, fmt: str, videos_dir: Path | None = None) -> list[Recording]:
    """Read ``source`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "segments-csv":
        return read_segment_csv(source, videos_dir)
    if fmt == "activitynet":
        return read_activitynet(source, videos_dir)
    if fmt == "segment-json":
        if source.is_file():  # a single timeline file: its video lies beside it
            return _single(source, videos_dir)
        return read_segment_folder(source, videos_dir)
    raise ValueError(f"unknown untrimmed format {fmt!r}")


def _single(path: Path, videos_dir: Path | None) -> list[Recording]:
    base = (videos_dir or path.parent) / path.stem
    videos = sorted(p for p in base.parent.glob(f"{base.stem}.*") if p.suffix.lower() in VIDEO_EXTENSIONS)
    if not videos:
        raise UntrimmedError(f"{path}:1: unknown video: no {base.stem}.<video ext> in {base.parent}")
    return [Recording(videos[0], f"{path}:1", read_segment_file(path))]
