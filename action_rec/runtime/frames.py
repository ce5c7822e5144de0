"""Frames to the model's input: the one resize rule, the centre crop, and the IR's input formats.

Training, evaluation, export checks, the live demo and the deployed script all resize with
`resize_frame`, so a camera frame reaches the model as the same pixels whichever of them reads it:
short side to `resize_short` (mmcv's rounding), bilinear, or area averaging when both sides shrink
more than 2x (bilinear then skips pixels and aliases, and a 1080p camera frame brought to 256 would
look unlike the same video's dumped frames); then a centre crop of `size`, black where the frame is
smaller. A live frame is prepared once when it arrives (`FramePreprocessor`, one frame of the IR's
input), since it is part of T / stride windows.

The input formats (`action_rec.export.model_json` describes them): `rgb255` float32 planar RGB 0-255,
`normalized` the same after (pixel - mean) / std, `bgr8` uint8 interleaved BGR as OpenCV decodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

__all__ = [
    "short_side_size",
    "resize_interpolation",
    "resize_frame",
    "center_crop_clip",
    "FramePreprocessor",
    "frames_to_input",
    "clip_to_frames",
    "dataset_clip_to_input",
]


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """``(height, width)`` with the short side scaled to ``short`` (mmcv's rounding)."""
    scale = short / min(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_interpolation(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> int:
    """The one resize rule: bilinear (the original's), area averaging when both sides shrink more
    than 2x."""
    shrink = min(src_hw[0] / dst_hw[0], src_hw[1] / dst_hw[1])
    return cv2.INTER_AREA if shrink > 2 else cv2.INTER_LINEAR


def resize_frame(frame: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``frame`` at ``(height, width)`` by `resize_interpolation`'s rule (unchanged when already there)."""
    h, w = hw
    if frame.shape[:2] == (h, w):
        return frame
    return cv2.resize(frame, (w, h), interpolation=resize_interpolation(frame.shape[:2], (h, w)))


def center_crop_clip(frames: Sequence[np.ndarray], resize_short: int, size: int) -> np.ndarray:
    """Short-side resize (`resize_frame`) and centre crop: ``T x size x size x 3`` uint8, black where
    the resized frame is smaller than the crop (channel order does not matter)."""
    h, w = frames[0].shape[:2]
    rh, rw = short_side_size(h, w, resize_short)
    top, left = (rh - size) // 2, (rw - size) // 2
    # The part of the crop that lies inside the resized frame.
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, rh), min(left + size, rw)
    fits = y0 == top and x0 == left and y1 == top + size and x1 == left + size
    shape = (len(frames), size, size, 3)
    out = np.empty(shape, np.uint8) if fits else np.zeros(shape, np.uint8)
    for i, frame in enumerate(frames):
        frame = resize_frame(frame, (rh, rw))
        out[i, y0 - top : y1 - top, x0 - left : x1 - left] = frame[y0:y1, x0:x1]
    return out


class FramePreprocessor:
    """BGR uint8 `H x W x 3` (as OpenCV decodes; grey `H x W` too) -> one frame in the IR's format.

    `rgb255` / `normalized`: float32 planar `3 x size x size` RGB (normalized for the latter);
    `bgr8`: uint8 `size x size x 3` BGR, left as it is for the IR's own preprocessing.
    """

    def __init__(self, meta_input: dict[str, Any]) -> None:
        self.format = meta_input["format"]
        self.size = int(meta_input["size"])
        self.resize_short = int(meta_input["resize_short"])
        self.mean = np.asarray(meta_input["mean"], np.float32).reshape(3, 1, 1)
        self.inv_std = 1.0 / np.asarray(meta_input["std"], np.float32).reshape(3, 1, 1)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        return (self.size, self.size, 3) if self.format == "bgr8" else (3, self.size, self.size)

    @property
    def dtype(self) -> type:
        return np.uint8 if self.format == "bgr8" else np.float32

    def __call__(self, frame_bgr: np.ndarray) -> np.ndarray:
        if frame_bgr.ndim == 2:
            frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
        crop = center_crop_clip([frame_bgr], self.resize_short, self.size)[0]
        if self.format == "bgr8":
            return crop
        planar = crop[..., ::-1].transpose(2, 0, 1).astype(np.float32)  # RGB, 3 x H x W
        if self.format == "normalized":
            planar = (planar - self.mean) * self.inv_std
        return planar


def frames_to_input(frames_rgb: np.ndarray, meta_input: dict[str, Any]) -> np.ndarray:
    """Cropped uint8 RGB frames `T x H x W x 3` -> the IR's input tensor `1 x ...` for the format.

    The reference conversion of a whole clip (tests and verification use it); the live recognizer does
    the same work frame by frame as frames arrive (`FramePreprocessor`).
    """
    fmt = meta_input["format"]
    if fmt == "bgr8":
        return np.ascontiguousarray(frames_rgb[None, ..., ::-1])
    clip = frames_rgb.astype(np.float32).transpose(3, 0, 1, 2)[None]  # 1 x 3 x T x H x W
    if fmt == "normalized":
        mean = np.asarray(meta_input["mean"], np.float32).reshape(1, 3, 1, 1, 1)
        std = np.asarray(meta_input["std"], np.float32).reshape(1, 3, 1, 1, 1)
        clip = (clip - mean) / std
    return np.ascontiguousarray(clip, dtype=np.float32)


def _pixels(clip: Any, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalized `3 x T x H x W` clip (an array or a torch tensor; `1 x ...` too) -> float pixels."""
    clip = np.asarray(clip, dtype=np.float32)
    clip = clip[0] if clip.ndim == 5 else clip
    return clip * np.asarray(std, np.float32).reshape(3, 1, 1, 1) + np.asarray(mean, np.float32).reshape(
        3, 1, 1, 1
    )


def clip_to_frames(clip: Any, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalized `3 x T x H x W` clip (the data pipeline's output) -> uint8 RGB `T x H x W x 3`,
    rounded to whole pixel values."""
    pixels = np.clip(np.rint(_pixels(clip, mean, std)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(pixels.transpose(1, 2, 3, 0))


def dataset_clip_to_input(clip: Any, meta_input: dict[str, Any]) -> np.ndarray:
    """A normalized `3 x T x H x W` clip of the data pipeline -> the IR's input tensor (batch 1).

    rgb255 undoes the normalization (the IR does it); bgr8 rounds to whole uint8 pixels first."""
    fmt = meta_input["format"]
    if fmt == "normalized":
        clip = np.asarray(clip, dtype=np.float32)
        return np.ascontiguousarray(clip if clip.ndim == 5 else clip[None], dtype=np.float32)
    if fmt == "bgr8":
        return frames_to_input(clip_to_frames(clip, meta_input["mean"], meta_input["std"]), meta_input)
    return np.ascontiguousarray(_pixels(clip, meta_input["mean"], meta_input["std"])[None])
