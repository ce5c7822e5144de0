"""Which frames of a video make a clip: the original recipe as a pure function.

The clip is ``clip_len`` frames taken every ``frame_interval`` frames from inside the action segment
(frame files ``clip_start + 1 .. clip_end``). With ``n = clip_end - clip_start`` and
``span = clip_len * frame_interval``:

- training: a random offset in ``[0, n - span]`` and a per-index temporal jitter in
  ``[0, frame_interval)``, so every index stays inside the segment;
- validation / test: one centred clip, ``offset = (n - span + 1) // 2`` (0 when ``n < span``);
- a segment shorter than ``span`` is padded by looping around it (the original's behaviour), so the
  clip repeats frames instead of reading past the action.

With a target fps the interval is ``record.fps / target_fps`` frames (fractional intervals are
floored index by index), so videos recorded at different rates give clips of the same duration.
"""

from __future__ import annotations

import math

import numpy as np

from action_rec.errors import UserError

from .annotations import VideoRecord

__all__ = ["sample_clip_indices", "frame_interval_for", "clip_span", "weighted_offset"]


def frame_interval_for(record: VideoRecord, frame_interval: float, target_fps: float | None = None) -> float:
    """The sampling step in frames: the template's interval, or ``fps / target_fps`` when a target is set."""
    if target_fps is None:
        return float(frame_interval)
    if target_fps <= 0:
        raise ValueError(f"target_fps must be positive, got {target_fps}")
    return record.fps / float(target_fps)


def clip_span(
    record: VideoRecord, clip_len: int, frame_interval: float, target_fps: float | None = None
) -> int:
    """How many consecutive segment frames one clip covers (``ceil(clip_len x step)``, at least 1)."""
    return max(math.ceil(clip_len * frame_interval_for(record, frame_interval, target_fps)), 1)


def weighted_offset(frame_weights: np.ndarray, span: int, rng: np.random.Generator) -> int:
    """A clip offset in ``[0, n - span]`` drawn with probability proportional to the sum of
    `frame_weights` (``n`` values, >= 0) over the window it covers; uniform when every window sums to 0,
    and 0 when the segment is no longer than the clip (X3D's sample filtering)."""
    n = len(frame_weights)
    room = n - span
    if room <= 0:
        return 0
    sums = np.convolve(np.asarray(frame_weights, dtype=np.float64), np.ones(span), mode="valid")
    total = float(sums.sum())
    if total <= 0:
        return int(rng.integers(0, room + 1))
    return int(rng.choice(room + 1, p=sums / total))


def sample_clip_indices(
    record: VideoRecord,
    clip_len: int,
    frame_interval: float,
    rng: np.random.Generator | None = None,
    target_fps: float | None = None,
    offset: int | None = None,
) -> np.ndarray:
    """1-based frame numbers of one clip (``clip_len`` int64 values).

    ``rng`` given: a training clip (random offset, temporal jitter); ``None``: the centred test clip.
    ``offset`` given: that offset in the segment instead of a drawn one (sample filtering draws it).
    Every index lies in ``clip_start + 1 .. clip_end``, which the annotation parser keeps inside the video.
    """
    if clip_len < 1:
        raise ValueError(f"clip_len must be >= 1, got {clip_len}")
    step = frame_interval_for(record, frame_interval, target_fps)
    if step <= 0:
        raise ValueError(f"frame interval must be positive, got {step}")
    n = record.clip_end - record.clip_start
    if n < 1:
        raise UserError(f"{record.where}: empty clip segment {record.clip_start}..{record.clip_end}")

    base = np.floor(np.arange(clip_len) * step).astype(np.int64)
    span = max(math.ceil(clip_len * step), 1)
    room = n - span  # how far the clip can move inside the segment
    if rng is not None:
        if offset is None:
            offset = int(rng.integers(0, room + 1)) if room > 0 else 0
        jitter_range = max(math.ceil(step), 1)
        if jitter_range > 1:
            base = base + rng.integers(0, jitter_range, size=clip_len)
    elif offset is None:
        offset = (room + 1) // 2 if room >= 0 else 0
    positions = np.mod(offset + base, n)  # loop around a segment shorter than the clip
    return record.clip_start + 1 + positions
