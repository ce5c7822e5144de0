"""Long synthetic recordings with marked action segments: sample data in the form users record.

People do not record trimmed clips: they film long sessions in which an action happens now and then,
and mark where each one is. :func:`make_synthetic_recordings` writes such recordings of the synthetic
motions (:mod:`.synthetic`) and the segment CSV a labelling tool would export
(``video,start_frame,end_frame,label``), which ``tools/prepare_dataset.py`` turns into training clips,
mined ``no_action`` clips and held-out recordings, as it does a user's own.

In a recording, each action is one motion of a new object in a new scene, preceded and followed by that
object standing still or jittering (a person before and after an action, a shaky camera); the scene
cuts to the next one in the middle of the gap, so gaps also hold cuts, which a model must not take for
motion. Actions last ``action_frames`` frames, drawn per segment, and move at a pace drawn per segment
(``pose_track(paced=True)``): a longer action covers more ground, up to a limit beyond which it is
slower, so a model trained on these sees actions of every length and of a range of speeds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from action_rec.errors import UserError
from action_rec.fileio import atomic_path, atomic_write

from .synthetic import CLASSES, render_clip

__all__ = ["make_synthetic_video", "make_synthetic_recordings", "SEGMENTS_CSV"]

SEGMENTS_CSV = "segments.csv"


def _seed(seed: int | Sequence[int]) -> list[int]:
    return [int(seed)] if isinstance(seed, int | np.integer) else [int(s) for s in seed]


def make_synthetic_video(
    path: str | Path,
    labels: list[int],
    frames_per_segment: int | tuple[int, int] = 64,
    size: int = 128,
    fps: float = 30.0,
    seed: int | Sequence[int] = 0,
    reversed_pairs: bool = False,
    gap_frames: tuple[int, int] | None = None,
    paced: bool = False,
) -> list[dict[str, Any]]:
    """Write `path` (.mp4 or .avi) with one segment per entry of `labels` (synthetic class ids);
    returns the ground truth `[{"label": id, "name": class, "start": first frame, "end": last + 1}]`.

    `frames_per_segment`: every segment's length, or ``(lo, hi)`` to draw each one's from ``lo..hi``
    (the motion spans its segment, so the length sets its speed).

    `gap_frames=(lo, hi)`: lo..hi frames (random) of no action before every segment and after the
    last one, so they are in no truth segment: the object of each segment stands still (jittering)
    before and after its motion, in its scene, and the cut to the next scene falls in the middle of
    the gap, as in a long video of someone who sometimes acts.

    `paced`: each motion's speed is drawn and its extent follows from its length (see
    :func:`~action_rec.data.synthetic.pose_track`); by default every motion covers the same extent.

    `reversed_pairs`: a segment whose class is the time-reversal pair of the previous segment's
    (moving left -> right, clockwise -> counter-clockwise, growing -> shrinking) is that segment's
    frames played backwards: the same frames, so only the order of time tells the two apart (for
    videos without gaps).
    """
    path, seed = Path(path), _seed(seed)
    fourcc = "MJPG" if path.suffix.lower() == ".avi" else "mp4v"
    truth: list[dict[str, Any]] = []
    previous: np.ndarray | None = None
    if isinstance(frames_per_segment, int):
        lengths = [frames_per_segment] * len(labels)
    else:
        length_rng = np.random.default_rng([*seed, 4])  # stream 4: the segments' lengths
        lengths = [
            int(n) for n in length_rng.integers(frames_per_segment[0], frames_per_segment[1] + 1, len(labels))
        ]
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, (size, size))
        if not writer.isOpened():
            raise RuntimeError(f"{path}: OpenCV cannot write this video type")
        # Gap k (before segment k; gap n after the last) is split at a random frame: its first part
        # ends segment k - 1's scene, its second part starts segment k's.
        gap_rng = np.random.default_rng([*seed, 3])  # stream 3: the gaps
        gaps = [
            int(gap_rng.integers(gap_frames[0], gap_frames[1] + 1)) if gap_frames else 0
            for _ in range(len(labels) + 1)
        ]
        splits = [int(gap_rng.integers(0, g + 1)) for g in gaps]
        splits[0], splits[-1] = 0, gaps[-1]  # the video starts and ends in a segment's scene
        written = 0
        try:
            for k, (label, length) in enumerate(zip(labels, lengths, strict=True)):
                hold = (gaps[k] - splits[k], splits[k + 1])
                if reversed_pairs and previous is not None and truth[-1]["label"] == label ^ 1:
                    clip = previous[::-1]
                else:
                    rng = np.random.default_rng(
                        [*seed, 2, label, k]
                    )  # stream 2: neither train (0) nor val (1)
                    clip = render_clip(CLASSES[label], length, size, rng, hold=hold, paced=paced)
                for frame in clip:
                    writer.write(np.ascontiguousarray(frame))
                start = written + hold[0]
                written += len(clip)
                previous = clip
                truth.append(
                    {"label": label, "name": CLASSES[label].name, "start": start, "end": start + length}
                )
        finally:
            writer.release()
    return truth


def _write_recording(job: tuple) -> list[dict[str, Any]]:
    path, labels, action_frames, gap_frames, size, fps, seed = job
    return make_synthetic_video(
        path, labels, frames_per_segment=action_frames, size=size, fps=fps, seed=seed, gap_frames=gap_frames,
        paced=True,
    )  # fmt: skip


def make_synthetic_recordings(
    out_dir: str | Path,
    num_classes: int = 6,
    recordings: int = 12,
    segments_per_class: int = 4,
    action_frames: tuple[int, int] = (16, 64),
    gap_frames: tuple[int, int] = (16, 48),
    size: int = 80,
    fps: float = 30.0,
    seed: int = 0,
    workers: int = 1,
) -> Path:
    """Write ``recordings`` long videos to ``out_dir/videos/`` and their segments to ``out_dir/segments.csv``
    (``video,start_frame,end_frame,label``: frames ``start .. end - 1``, the video relative to the CSV);
    returns the CSV's path.

    Each recording holds ``segments_per_class`` actions of each of the first ``num_classes`` motions in
    a random order, ``action_frames`` frames each, with ``gap_frames`` of no action around them (see the
    module docstring). The output depends only on the arguments, not on ``workers``.
    """
    if not 2 <= num_classes <= len(CLASSES):
        raise UserError(f"num_classes must be 2..{len(CLASSES)}, got {num_classes}")
    if recordings < 1 or segments_per_class < 1 or size < 16:
        raise UserError("need recordings >= 1, segments_per_class >= 1 and size >= 16")
    if not 2 <= action_frames[0] <= action_frames[1] or not 0 <= gap_frames[0] <= gap_frames[1]:
        raise UserError(
            f"bad frame ranges: actions {action_frames}, gaps {gap_frames} (lo <= hi, actions >= 2)"
        )
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    names = [f"videos/recording_{r:03d}.mp4" for r in range(recordings)]
    jobs = []
    for r, name in enumerate(names):
        order = np.random.default_rng([seed, 5, r]).permutation(
            np.repeat(np.arange(num_classes), segments_per_class)
        )
        jobs.append(
            (out / name, order.tolist(), tuple(action_frames), tuple(gap_frames), size, fps, (seed, 6, r))
        )
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            truths = list(pool.map(_write_recording, jobs))
    else:
        truths = [_write_recording(job) for job in jobs]
    text = io.StringIO()
    rows = csv.writer(text, lineterminator="\n")
    rows.writerow(["video", "start_frame", "end_frame", "label"])
    for name, truth in zip(names, truths, strict=True):
        rows.writerows([name, seg["start"], seg["end"], seg["name"]] for seg in truth)
    return atomic_write(out / SEGMENTS_CSV, text.getvalue())
