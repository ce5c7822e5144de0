"""The sliding window over a stream: which frames to keep, a ring buffer of them, when to infer, and
the average of the last windows' scores.

Frames are sampled at the model's frame interval (every `step` source frames; a fractional step,
from a target fps, is followed on average). The ring buffer keeps the last `clip_len` sampled frames
already preprocessed; every `stride` source frames a window is due and `clip()` stacks the buffer in
time order, ready for the IR.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from action_rec.runtime.errors import UserError

__all__ = ["frame_step", "ClipWindow", "ScoreAverager"]


def frame_step(meta_input: dict[str, Any], source_fps: float | None) -> float:
    """Source frames between two sampled frames: `fps / target_fps` when the model was trained at a
    rate and the source says its own, else the model's frame interval."""
    target = meta_input.get("target_fps")
    if target and source_fps and source_fps > 0:
        return max(source_fps / float(target), 1.0)
    return float(meta_input["frame_interval"])


class ClipWindow:
    """Ring buffer of the last `clip_len` sampled, preprocessed frames.

    `planar` frames are `3 x H x W` and clips come out `1 x 3 x T x H x W`; interleaved frames
    (`H x W x 3`) give `1 x T x H x W x 3`.
    """

    def __init__(
        self,
        clip_len: int,
        step: float,
        stride: int,
        frame_shape: tuple[int, ...],
        dtype: type = np.float32,
        planar: bool = True,
        start: int = 0,
    ) -> None:
        if clip_len < 1 or step <= 0 or stride < 1:
            raise UserError(f"bad window: clip_len={clip_len}, step={step}, stride={stride}")
        self.clip_len, self.step, self.stride, self.planar = clip_len, float(step), int(stride), planar
        shape = (frame_shape[0], clip_len, *frame_shape[1:]) if planar else (clip_len, *frame_shape)
        self._buffer = np.zeros(shape, dtype)
        self._count = 0  # frames pushed so far
        self._next_sample = float(start)  # source frame index of the next sampled frame
        self._last_window: int | None = None
        self.first_index: int | None = None  # source index of the oldest frame in the buffer
        self._indices: deque[int] = deque(maxlen=clip_len)

    @property
    def span(self) -> int:
        """Source frames one clip covers."""
        return int(np.ceil(self.clip_len * self.step))

    def wants(self, index: int) -> bool:
        """Whether source frame `index` (0-based, consecutive) is sampled; only those need preprocessing."""
        return index >= self._next_sample

    def push(self, index: int, frame: np.ndarray) -> bool:
        """Add sampled frame `index`; returns True when a window ending at this frame is due."""
        while self._next_sample <= index:
            self._next_sample += self.step
        slot = self._count % self.clip_len
        if self.planar:
            self._buffer[:, slot] = frame
        else:
            self._buffer[slot] = frame
        self._count += 1
        self._indices.append(index)
        if self._count < self.clip_len:
            return False
        if self._last_window is None or index - self._last_window >= self.stride:
            self._last_window = index
            return True
        return False

    @property
    def window_indices(self) -> list[int]:
        """Source frame indices of the frames now in the window, oldest first."""
        return list(self._indices)

    def clip(self) -> np.ndarray:
        """The current window in time order, a fresh contiguous `1 x ...` array (one copy)."""
        order = (np.arange(self.clip_len) + self._count) % self.clip_len
        clip = self._buffer[:, order] if self.planar else self._buffer[order]
        return clip[None]


class ScoreAverager:
    """Mean of the class probabilities of the last `size` windows: steadier labels, small delay."""

    def __init__(self, size: int = 3) -> None:
        if size < 1:
            raise UserError(f"average must be at least 1 window, got {size}")
        self._recent: deque[np.ndarray] = deque(maxlen=size)

    def __call__(self, probabilities: np.ndarray) -> np.ndarray:
        self._recent.append(np.asarray(probabilities, np.float32).reshape(-1))
        # summed in order, as np.mean(axis=0) does, without its per-call cost (calibration replays this
        # for every window of every recording under hundreds of settings)
        total = self._recent[0].copy()
        for i in range(1, len(self._recent)):
            total += self._recent[i]
        return total / np.float32(len(self._recent))
