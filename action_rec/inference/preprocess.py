"""One camera frame -> one frame of the model input, done once when the frame arrives.

The same steps as the validation pipeline (short side resized to `resize_short`, centre crop of
`size`), then the conversion the IR's input format asks for. A frame lives in T / stride windows of
the sliding window; preparing it once and keeping it ready (see window.py) means an inference only
stacks frames that are already done.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from action_rec.data.transforms import center_crop_clip

__all__ = ["resize_and_crop", "FramePreprocessor"]


def resize_and_crop(frame: np.ndarray, resize_short: int, size: int) -> np.ndarray:
    """`H x W x 3` uint8 -> `size x size x 3` uint8: short side to `resize_short`, centre crop.

    The evaluation pipeline's own function on a one-frame clip, so the live recognizer sees exactly the
    pixels the model was validated on (channel order does not matter to it).
    """
    return center_crop_clip([frame], resize_short, size)[0]


class FramePreprocessor:
    """BGR uint8 `H x W x 3` (as OpenCV decodes) -> one frame in the IR's input format.

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
        crop = resize_and_crop(frame_bgr, self.resize_short, self.size)
        if self.format == "bgr8":
            return crop
        planar = crop[..., ::-1].transpose(2, 0, 1).astype(np.float32)  # RGB, 3 x H x W
        if self.format == "normalized":
            planar = (planar - self.mean) * self.inv_std
        return planar
