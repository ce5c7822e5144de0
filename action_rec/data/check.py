"""Is a raw-frame dataset fit to train on? Every problem as ``FILE:LINE: what is wrong``.

Two depths, one set of rules:

- :func:`quick_problems`, one directory listing per video: the row's frames exist and the folder holds
  as many frames as the row says. Cheap enough to run at every training start (``build_datasets``).
- :func:`check_dataset` (``tools/check_dataset.py``) adds what needs every frame's bytes: each frame
  decodes completely (a JPEG without its end-of-image marker is a partial copy that OpenCV would turn
  into a half-grey frame with only a warning), a plausible fps, label ids that fit ``label_map.txt``,
  and no video whose frames (by content hash) are in two annotation files, i.e. in train and in val.
  Videos are checked in parallel processes.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from tqdm import tqdm

from .annotations import (
    AnnotationError,
    VideoRecord,
    check_labels,
    content_lines,
    parse_annotation_line,
    read_label_map,
    resolve_ann_files,
    unused_labels,
)
from .dataset import LABEL_MAP, decode_frame_data

__all__ = ["Problem", "CheckReport", "quick_problems", "check_dataset", "MIN_FPS", "MAX_FPS"]

# Frame rates outside this range are typos or broken metadata (cameras and codecs stay inside it).
MIN_FPS, MAX_FPS = 1.0, 240.0
# Frames reported by name per video; the rest are counted.
MAX_FRAMES_NAMED = 3
# The full check parses every byte of each JPEG but decodes it at 1/8 scale in grey: several times
# faster than a full decode, and a corrupt or truncated stream fails the same way.
CHECK_DECODE_FLAGS = cv2.IMREAD_REDUCED_GRAYSCALE_8


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one annotation row (or file: ``line`` 0)."""

    ann_file: str
    line: int
    message: str

    def __str__(self) -> str:
        return (
            f"{self.ann_file}:{self.line}: {self.message}"
            if self.line
            else f"{self.ann_file}: {self.message}"
        )


@dataclass
class CheckReport:
    problems: list[Problem]
    notes: list[str]  # worth knowing, not wrong (unused classes, no label map)
    rows: int = 0
    videos: int = 0
    frames: int = 0
    seconds: float = 0.0
    order: list[str] = field(default_factory=list)  # annotation files, in the order given

    def lines(self) -> list[str]:
        rank = {name: i for i, name in enumerate(self.order)}
        problems = sorted(self.problems, key=lambda p: (rank.get(p.ann_file, len(rank)), p.line, p.message))
        out = [str(p) for p in problems] + [f"note: {n}" for n in self.notes]
        per_1000 = 1000 * self.seconds / self.frames if self.frames else 0.0
        out.append(
            f"check_dataset: {self.rows} rows, {self.videos} videos, {self.frames} frames checked in "
            f"{self.seconds:.1f} s ({per_1000:.2f} s per 1000 frames): {len(self.problems)} problem(s)"
        )
        return out


def _listing_problems(frame_dir: Path, first: int, last: int, pattern: str, names: set[str]) -> list[str]:
    """Frames ``first..last`` must all be in the folder listing ``names``, and no frame after ``last``."""
    missing = [i for i in range(first, last + 1) if pattern.format(i) not in names]
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} of the video's frames {first}..{last} are missing from {frame_dir} "
            f"(first: {pattern.format(missing[0])})"
        )
    end = last
    while pattern.format(end + 1) in names:
        end += 1
    if end > last:
        problems.append(
            f"frame count: {frame_dir} holds frames up to {pattern.format(end)} but the row's video ends at "
            f"frame {last}; dump it again or correct the row"
        )
    return problems


def quick_problems(records: Iterable[VideoRecord]) -> list[Problem]:
    """The listing-only part of the check (one ``os.listdir`` per video folder): frames there, counts."""
    listings: dict[Path, set[str] | None] = {}
    problems = []
    for r in records:
        if r.frame_dir not in listings:
            listings[r.frame_dir] = set(os.listdir(r.frame_dir)) if r.frame_dir.is_dir() else None
        names = listings[r.frame_dir]
        if names is None:
            problems.append(Problem(r.ann_file, r.line, f"frame directory {r.frame_dir} not found"))
            continue
        for message in _listing_problems(r.frame_dir, r.video_start + 1, r.video_end, r.frame_pattern, names):
            problems.append(Problem(r.ann_file, r.line, message))
    return problems


def _check_video(frame_dir: Path, first: int, last: int, pattern: str) -> tuple[list[str], str, int]:
    """Every frame of one video: (problems, content hash of the frames' bytes, frames read)."""
    if not frame_dir.is_dir():
        return [f"frame directory {frame_dir} not found"], "", 0
    problems = _listing_problems(frame_dir, first, last, pattern, set(os.listdir(frame_dir)))
    digest = hashlib.blake2b(digest_size=16)
    bad: list[str] = []
    read = 0
    for index in range(first, last + 1):
        path = frame_dir / pattern.format(index)
        if not path.is_file():
            continue  # counted among the missing frames above
        data = path.read_bytes()
        digest.update(data)
        read += 1
        result = decode_frame_data(data, CHECK_DECODE_FLAGS)
        if isinstance(result, str):
            bad.append(f"frame file {path} {result}")
    problems += bad[:MAX_FRAMES_NAMED]
    if len(bad) > MAX_FRAMES_NAMED:
        problems.append(f"... and {len(bad) - MAX_FRAMES_NAMED} more bad frames in {frame_dir}")
    return problems, (digest.hexdigest() if read else ""), read


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _read_rows(
    files: Sequence[str], roots: Sequence[str], frame_pattern: str
) -> tuple[list[VideoRecord], list[Problem], int]:
    records, problems, rows = [], [], 0
    for source, (ann, root) in enumerate(zip(files, roots, strict=True)):
        for line_no, text in content_lines(Path(ann)):
            rows += 1
            try:
                records.append(
                    parse_annotation_line(
                        text, ann, line_no, root, frame_pattern, check_frames=False, source=source
                    )
                )
            except AnnotationError as exc:  # ours: one bad row among others to report
                problems.append(Problem(ann, line_no, str(exc).removeprefix(f"{ann}:{line_no}: ")))
    return records, problems, rows


def _label_problems(records: list[VideoRecord], roots: Sequence[str]) -> tuple[list[Problem], list[str]]:
    """Label ids beyond each data root's label map; unused classes and absent label maps as notes."""
    problems, notes = [], []
    by_root: dict[str, list[VideoRecord]] = defaultdict(list)
    for r in records:
        by_root[roots[r.source]].append(r)
    for root in dict.fromkeys(roots):
        rows = by_root[root]
        label_map = Path(root) / LABEL_MAP
        if not label_map.is_file():
            if rows:
                notes.append(f"{root}: no {LABEL_MAP}: the class count will be the largest label id + 1")
            continue
        names = read_label_map(label_map)
        for r in rows:
            try:
                check_labels([r], len(names), str(label_map))  # the same check as training's
            except AnnotationError as exc:  # ours: one bad row among others to report
                problems.append(Problem(r.ann_file, r.line, str(exc).removeprefix(f"{r.where}: ")))
        unused = unused_labels(rows, len(names))
        if unused:
            named = ", ".join(f"{i} ({names[i]})" for i in unused[:20]) + (" ..." if len(unused) > 20 else "")
            notes.append(f"{label_map}: {len(unused)} class(es) without any row: {named}")
    return problems, notes


def check_dataset(
    ann_files: Sequence[str | Path],
    data_roots: Sequence[str | Path],
    frame_pattern: str = "{:05d}.jpg",
    workers: int | None = None,
    progress: bool = True,
) -> CheckReport:
    """Check every row of the annotation files (see the module docstring); raises only for bad
    arguments (an annotation file or data root that does not exist, a malformed label map)."""
    start = time.perf_counter()
    files, roots = resolve_ann_files(ann_files, data_roots, "--ann-files")
    if not files:
        raise AnnotationError("--ann-files: no annotation file given")
    records, problems, row_count = _read_rows(files, roots, frame_pattern)
    label_problems, notes = _label_problems(records, roots)
    problems += label_problems
    for r in records:
        if not MIN_FPS <= r.fps <= MAX_FPS:
            problems.append(
                Problem(
                    r.ann_file, r.line, f"fps {r.fps:g} is implausible (expected {MIN_FPS:g}..{MAX_FPS:g})"
                )
            )

    videos: dict[tuple[Path, int, int], list[VideoRecord]] = defaultdict(list)
    for r in records:
        videos[(r.frame_dir, r.video_start + 1, r.video_end)].append(r)
    results: dict[tuple[Path, int, int], tuple[list[str], str, int]] = {}
    bar = tqdm(total=len(videos), desc="check_dataset", unit="video", disable=not progress)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    try:
        if workers <= 1:
            for key in videos:
                results[key] = _check_video(*key, frame_pattern)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
                futures = {pool.submit(_check_video, *key, frame_pattern): key for key in videos}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
    finally:
        bar.close()

    first_seen: dict[str, VideoRecord] = {}
    for key, rows in videos.items():
        messages, digest, _ = results[key]
        for r in rows:
            problems += [Problem(r.ann_file, r.line, m) for m in messages]
        if not digest:
            continue
        for r in rows:
            other = first_seen.setdefault(digest, r)
            if other.source != r.source:
                message = (
                    f"same frames as {other.where} ({other.rel_dir}): the video is in two annotation files "
                    "(train and val?)"
                )
                problems.append(Problem(r.ann_file, r.line, message))
    return CheckReport(
        problems=problems,
        notes=notes,
        rows=row_count,
        videos=len(videos),
        frames=sum(read for _, _, read in results.values()),
        seconds=time.perf_counter() - start,
        order=files,
    )
