"""From long recordings with marked segments to the raw-frame dataset, and recordings held out whole.

People record long videos and mark where each action happens; the model must report those actions and
say nothing the rest of the time. Preparation, after reading the annotations
(:mod:`action_rec.data.untrimmed_sources`):

1. every segment is checked against its video's duration (OpenCV's frame count and fps) before
   anything is written: ``end <= start``, a segment past the end, or two overlapping segments with
   different labels is a ``FILE:LINE`` error (overlapping segments of one label are merged);
2. recordings are split whole (so no clip of a validation or test recording is trained on): the
   annotation's split where it has one, else a seeded shuffle: ``test_videos`` recordings (a count, or a
   fraction below 1) held out for testing, ``val_fraction`` of the rest for validation;
3. training clips are planned inside each segment: ``clip_s`` seconds every ``stride_s``, at most
   ``max_clips_per_segment`` spread evenly over a long segment (a segment shorter than a clip is one
   clip; the sampler loops it);
4. ``no_action`` clips are mined from the unannotated time, at least ``margin_s`` away from any
   segment, and in each split no more of them than ``no_action_ratio`` times the clips of its largest
   action class (1 by default; ``no_action_clips`` sets the total instead; 0: none). Raise the ratio
   when the time between actions varies more than an action does (stillness, camera shake, cuts). The
   class is named ``no_action``, which the recognizer never reports as an action;
5. the train and val recordings are dumped once each to ``rawframes/<recording>/`` and every clip is an
   annotation line pointing at its frame range (``<rec> <label> 0 N <clip start> <clip end> <fps>``);
6. ``val_videos.txt`` and ``test_videos.txt`` list the held-out recordings for
   ``tools/eval_timeline.py --videos`` and calibration, one ``<video>\\t<truth JSON>`` a line (paths
   relative to the list's folder), the truth in ``truth/<recording>.json`` in the segment format.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from action_rec.fileio import atomic_write

from .annotations import content_lines
from .dump import VideoJob, dump_jobs
from .prepare import SUMMARY_PNG, ClassSummary, _class_order, _plot, _safe, _unique
from .untrimmed_sources import Recording, UntrimmedError, detect_format, read_recordings

__all__ = [
    "NO_ACTION_LABEL",
    "FrameSegment",
    "check_segments",
    "plan_segment_clips",
    "free_intervals",
    "plan_no_action_clips",
    "split_recordings",
    "read_video_truth_list",
    "UntrimmedSummary",
    "prepare_untrimmed",
]

NO_ACTION_LABEL = "no_action"


@dataclass(frozen=True)
class FrameSegment:
    """A checked segment: frames ``start .. end - 1`` (0-based) and its times in seconds."""

    start: int
    end: int
    start_s: float
    end_s: float
    label: str
    where: str


def probe_video(path: Path, where: str) -> tuple[int, float]:
    """(frame count, fps) as the container says (cheap: nothing is decoded)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise UntrimmedError(f"{where}: cannot open the video {path}")
        frames, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()
    if frames <= 0 or not fps > 0:
        raise UntrimmedError(f"{where}: {path} has no frame count or frame rate; re-encode it")
    return frames, fps


def check_segments(rec: Recording, frames: int, fps: float) -> list[FrameSegment]:
    """The recording's segments in frames, sorted, checked against a video of ``frames`` at ``fps``;
    overlapping segments of one label are merged, of different labels refused (naming both lines)."""
    duration = frames / fps
    out: list[FrameSegment] = []
    for seg in rec.segments:
        start_s, end_s = (seg.start / fps, seg.end / fps) if seg.in_frames else (seg.start, seg.end)
        unit = "frames" if seg.in_frames else "s"
        if not end_s > start_s:
            raise UntrimmedError(f"{seg.where}: end {seg.end:g} is not after start {seg.start:g} ({unit})")
        if start_s < 0:
            raise UntrimmedError(f"{seg.where}: start {seg.start:g} is negative")
        if start_s >= duration or end_s > duration + 1.0 / fps:  # a frame's rounding is tolerated
            raise UntrimmedError(
                f"{seg.where}: segment {seg.start:g}..{seg.end:g} {unit} lies beyond the end of "
                f"{rec.video.name} ({duration:.3f} s, {frames} frames at {fps:g} fps)"
            )
        end_s = min(end_s, duration)
        start, end = round(start_s * fps), max(round(end_s * fps), round(start_s * fps) + 1)
        out.append(FrameSegment(start, min(end, frames), start_s, end_s, seg.label, seg.where))
    out.sort(key=lambda s: (s.start, s.end))
    merged: list[FrameSegment] = []
    for seg in out:
        prev = merged[-1] if merged else None
        if prev is not None and seg.start_s < prev.end_s:
            if seg.label != prev.label:
                raise UntrimmedError(
                    f"{seg.where}: segment {seg.start_s:g}..{seg.end_s:g} s ({seg.label}) overlaps "
                    f"{prev.start_s:g}..{prev.end_s:g} s ({prev.label}) of {prev.where}"
                )
            merged[-1] = FrameSegment(
                prev.start,
                max(prev.end, seg.end),
                prev.start_s,
                max(prev.end_s, seg.end_s),
                prev.label,
                prev.where,
            )
        else:
            merged.append(seg)
    return merged


def plan_segment_clips(start: int, end: int, clip: int, stride: int, max_clips: int) -> list[tuple[int, int]]:
    """Clips ``[s, e)`` of ``clip`` frames inside ``[start, end)``, every ``stride`` frames, at most
    ``max_clips`` spread evenly from the first to the last; a range shorter than a clip is one clip."""
    n = end - start
    if n <= clip:
        return [(start, end)] if n > 0 else []
    count = min(max_clips, 1 + (n - clip) // max(stride, 1))
    if count <= 1:
        offset = (n - clip) // 2
        return [(start + offset, start + offset + clip)]
    starts = [start + round(k * (n - clip) / (count - 1)) for k in range(count)]
    return [(s, s + clip) for s in starts]


def free_intervals(segments: list[FrameSegment], frames: int, margin: int) -> list[tuple[int, int]]:
    """The frames at least ``margin`` frames away from every segment: ``[(start, end)]``."""
    out, cursor = [], 0
    for seg in sorted(segments, key=lambda s: s.start):
        if seg.start - margin > cursor:
            out.append((cursor, seg.start - margin))
        cursor = max(cursor, seg.end + margin)
    if cursor < frames:
        out.append((cursor, frames))
    return out


def plan_no_action_clips(
    segments: list[FrameSegment], frames: int, clip: int, stride: int, margin: int
) -> list[tuple[int, int]]:
    """Every candidate no-action clip of a recording: whole clips of ``clip`` frames, every ``stride``,
    inside the free time (so none crosses a segment or comes closer to one than ``margin``)."""
    out = []
    for a, b in free_intervals(segments, frames, margin):
        out += [(s, s + clip) for s in range(a, b - clip + 1, max(stride, 1))]
    return out


def split_recordings(
    recordings: list[Recording], val_fraction: float, test_videos: float, seed: int
) -> list[str]:
    """train / val / test per recording: the annotation's split if given, else a seeded shuffle holds
    out ``test_videos`` (a count, or a fraction when below 1) for test and ``val_fraction`` of the rest
    for val, keeping at least one training recording."""
    splits = [r.split or "" for r in recordings]
    free = [i for i, s in enumerate(splits) if not s]
    random.Random(seed).shuffle(free)
    n = len(free)
    n_test = round(test_videos * n) if 0 < test_videos < 1 else int(test_videos)
    n_test = min(n_test, max(n - 1, 0))
    n_val = min(max(round((n - n_test) * val_fraction), 1 if val_fraction > 0 else 0), n - n_test - 1)
    for k, i in enumerate(free):
        splits[i] = "test" if k < n_test else "val" if k < n_test + max(n_val, 0) else "train"
    return splits


def read_video_truth_list(path: str | Path) -> list[tuple[Path, Path, int]]:
    """``(video, truth JSON, line)`` of a ``val_videos.txt`` / ``test_videos.txt``: a line is
    ``<video>\\t<truth>`` or just ``<video>`` (its truth: ``<video stem>.json`` beside it); relative paths
    are relative to the list's folder."""
    path = Path(path)
    if not path.is_file():
        raise UntrimmedError(f"{path}: video list not found")
    out = []
    for line, text in content_lines(path):
        parts = text.split("\t")
        video = path.parent / parts[0].strip()
        truth = path.parent / parts[1].strip() if len(parts) > 1 else video.with_suffix(".json")
        if not video.is_file():
            raise UntrimmedError(f"{path}:{line}: video {video} not found")
        if not truth.is_file():
            raise UntrimmedError(f"{path}:{line}: truth {truth} not found (expected a segment JSON)")
        out.append((video, truth, line))
    if not out:
        raise UntrimmedError(f"{path}: the list names no video")
    return out


@dataclass
class UntrimmedSummary:
    classes: list[ClassSummary]
    recordings: dict[str, int]  # per split
    failed: list[tuple[str, str]]
    done: int
    skipped: int
    written: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        head = ["class", "clips", "seconds", "train", "val"]
        table = [head] + [
            [c.name, c.videos, f"{c.seconds:.1f}", c.splits["train"], c.splits["val"]] for c in self.classes
        ]
        widths = [max(len(str(r[i])) for r in table) for i in range(len(head))]
        out = [
            "  ".join(
                str(v).ljust(w) if i == 0 else str(v).rjust(w)
                for i, (v, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in table
        ]
        rec = ", ".join(f"{n} {s}" for s, n in self.recordings.items())
        out.append(
            f"prepare_dataset: recordings {rec}; {self.done} dumped, {self.skipped} already dumped, "
            f"{len(self.failed)} failed"
        )
        out += [f"  failed: {video}: {reason}" for video, reason in self.failed]
        out += [f"warning: {w}" for w in self.warnings]
        out += [f"  wrote {p}" for p in self.written]
        return out


def _write_video_list(
    out_dir: Path, split: str, items: list[tuple[str, Recording, list[FrameSegment]]]
) -> list[Path]:
    """``<split>_videos.txt`` and ``truth/<name>.json`` of each of its recordings."""
    lines, written = [f"# {split} recordings: <video>\\t<truth segments JSON>, relative to this folder\n"], []
    for name, rec, segments in items:
        truth = out_dir / "truth" / f"{name}.json"
        data = [
            {"start_s": round(s.start_s, 4), "end_s": round(s.end_s, 4), "label": s.label} for s in segments
        ]
        written.append(atomic_write(truth, json.dumps(data, indent=1) + "\n"))
        video = os.path.relpath(rec.video.resolve(), out_dir.resolve())
        lines.append(f"{video}\t{truth.relative_to(out_dir).as_posix()}\n")
    written.append(atomic_write(out_dir / f"{split}_videos.txt", "".join(lines)))
    return written


def prepare_untrimmed(
    source: str | Path,
    out_dir: str | Path,
    fmt: str | None = None,
    videos_dir: str | Path | None = None,
    clip_s: float = 2.0,
    stride_s: float | None = None,
    max_clips_per_segment: int = 8,
    margin_s: float = 1.0,
    no_action_clips: int | None = None,
    no_action_ratio: float = 1.0,
    val_fraction: float = 0.2,
    test_videos: float = 0,
    seed: int = 0,
    short_side: int | None = 256,
    workers: int = 1,
    quality: int = 90,
    frame_pattern: str = "{:05d}.jpg",
    progress: bool = True,
    plot: bool = True,
) -> UntrimmedSummary:
    """Prepare untrimmed recordings (see the module docstring); ``fmt`` None: detected from the source."""
    source, out_dir = Path(source), Path(out_dir)
    if not source.exists():
        raise UntrimmedError(f"{source}: no such file or folder")
    fmt = fmt or detect_format(source)
    if fmt is None:
        raise UntrimmedError(
            f"{source}: not an untrimmed annotation (segment CSV, ActivityNet JSON, segment JSONs)"
        )
    if (
        not 0 <= val_fraction < 1
        or test_videos < 0
        or clip_s <= 0
        or margin_s < 0
        or max_clips_per_segment < 1
        or not no_action_ratio >= 0
    ):
        raise UntrimmedError(
            "bad settings: need 0 <= val fraction < 1, test videos >= 0, clip length > 0, margin >= 0, "
            "max clips per segment >= 1, no-action ratio >= 0"
        )
    if source.is_dir() and out_dir.resolve().is_relative_to(source.resolve()):
        raise UntrimmedError(f"{out_dir}: the output must not be inside the source folder {source}")
    recordings = read_recordings(source, fmt, Path(videos_dir) if videos_dir else None)
    seen: dict[Path, str] = {}
    for rec in recordings:
        key = rec.video.resolve()
        if key in seen:
            raise UntrimmedError(f"{rec.where}: video {rec.video} is already annotated by {seen[key]}")
        seen[key] = rec.where
    checked = []  # everything is checked before anything is written
    for rec in recordings:
        frames, fps = probe_video(rec.video, rec.where)
        checked.append((rec, check_segments(rec, frames, fps), frames, fps))
    names = _unique([_safe(r.video.stem) for r in recordings])
    splits = split_recordings(recordings, val_fraction, test_videos, seed)

    def clip_frames(fps: float) -> tuple[int, int, int]:
        clip = max(1, round(clip_s * fps))
        return clip, max(1, round((stride_s or clip_s) * fps)), round(margin_s * fps)

    # (recording, first frame, end frame, label) of each clip, per split
    plans: dict[str, list[tuple[str, int, int, str]]] = {"train": [], "val": []}
    candidates: list[tuple[str, str, int, int]] = []
    for name, split, (_, segments, frames, fps) in zip(names, splits, checked, strict=True):
        if split == "test":
            continue
        clip, stride, margin = clip_frames(fps)
        for seg in segments:
            plans[split] += [
                (name, s, e, seg.label)
                for s, e in plan_segment_clips(seg.start, seg.end, clip, stride, max_clips_per_segment)
            ]
        candidates += [
            (split, name, s, e) for s, e in plan_no_action_clips(segments, frames, clip, stride, margin)
        ]
    random.Random(seed).shuffle(candidates)
    if no_action_clips is None:  # per split: no_action_ratio times its largest action class
        chosen = []
        for split, plan in plans.items():
            cap = round(no_action_ratio * max(Counter(label for *_, label in plan).values(), default=0))
            chosen += [c for c in candidates if c[0] == split][:cap]
    else:
        chosen = candidates[:no_action_clips]
    for split, name, s, e in sorted(chosen):
        plans[split].append((name, s, e, NO_ACTION_LABEL))

    by_name = {n: c for n, c in zip(names, checked, strict=True)}
    jobs = [
        VideoJob(by_name[n][0].video, out_dir / "rawframes" / n, n)
        for n, split in zip(names, splits, strict=True)
        if split != "test"
    ]
    results = dump_jobs(jobs, workers, short_side, quality, frame_pattern, progress, desc="prepare_dataset")
    failed = [(str(by_name[n][0].video), r.error) for n, r in results.items() if r.status == "failed"]

    labels = _class_order({label for plan in plans.values() for *_, label in plan})
    ids = {label: k for k, label in enumerate(labels)}
    classes = {label: ClassSummary(label) for label in labels}
    text: dict[str, list[str]] = {"train": [], "val": []}
    for split, plan in plans.items():
        for name, s, e, label in plan:
            r = results[name]
            if r.status == "failed" or s >= r.frames:  # the decoder found fewer frames than promised
                continue
            e = min(e, r.frames)
            text[split].append(f"{name} {ids[label]} 0 {r.frames} {s} {e} {r.fps:.10g}\n")
            c = classes[label]
            c.videos, c.frames, c.seconds = c.videos + 1, c.frames + e - s, c.seconds + (e - s) / r.fps
            c.splits[split] += 1
    written = [atomic_write(out_dir / f"{split}.txt", "".join(lines)) for split, lines in text.items()]
    if labels:
        written.append(atomic_write(out_dir / "label_map.txt", "".join(f"{n}\n" for n in labels)))
    for split in ("val", "test"):
        items = [(n, c[0], c[1]) for n, s, c in zip(names, splits, checked, strict=True) if s == split]
        if items or (out_dir / f"{split}_videos.txt").exists():
            written += _write_video_list(out_dir, split, items)
    summary = UntrimmedSummary(
        classes=list(classes.values()),
        recordings={s: splits.count(s) for s in ("train", "val", "test")},
        failed=sorted(failed),
        done=sum(r.status == "done" for r in results.values()),
        skipped=sum(r.status == "skipped" for r in results.values()),
        written=written,
    )
    summary.warnings += [
        f"class {c.name!r}: no training clip" for c in summary.classes if not c.splits["train"]
    ]
    test_only = sorted({seg.label for _, segs, _, _ in checked for seg in segs} - set(labels))
    if test_only:
        summary.warnings.append(f"only in test recordings, so never trained: {', '.join(test_only)}")
    if NO_ACTION_LABEL not in ids:
        summary.warnings.append(
            "no no_action clip: the model will not learn to stay silent (lower --margin-s?)"
        )
    if plot and labels:
        _plot(summary.classes, out_dir / SUMMARY_PNG, unit="clips")
        summary.written.append(out_dir / SUMMARY_PNG)
    return summary
