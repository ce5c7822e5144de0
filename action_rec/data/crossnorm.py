"""CrossNorm: give a clip the colour statistics of another clip.

A clip (``T x H x W x 3`` uint8, after crop/resize/flip, before normalisation) is standardised with its
own per-channel mean and std over all its frames, re-scaled with a ``(mean, std)`` pair drawn from
``mean_std_list.txt`` and clipped to 0..255. Clips with a channel std below 1e-3 (a flat colour) are
left alone. The list has one pair a line, ``m_r,m_g,m_b s_r,s_g,s_b`` on the 0-255 scale, and lives in
the data root; ``tools/make_mean_std_list.py`` makes one from the user's own training clips.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from action_rec.fileio import atomic_write

from .annotations import AnnotationError, content_lines

__all__ = [
    "MEAN_STD_LIST",
    "MIN_STD",
    "read_mean_std_list",
    "write_mean_std_list",
    "clip_mean_std",
    "crossnorm_affine",
    "apply_crossnorm",
]

MEAN_STD_LIST = "mean_std_list.txt"
MIN_STD = 1e-3


def read_mean_std_list(path: str | Path) -> np.ndarray:
    """The list as an ``N x 2 x 3`` float32 array: ``[i, 0]`` the RGB means, ``[i, 1]`` the RGB stds."""
    path = Path(path)
    pairs = []
    for line_no, text in content_lines(path):
        cols = text.split()
        values = [c.split(",") for c in cols]
        if len(cols) != 2 or any(len(v) != 3 for v in values):
            raise AnnotationError(f"{path}:{line_no}: expected 'm_r,m_g,m_b s_r,s_g,s_b', got {text!r}")
        try:
            pair = np.array(values, dtype=np.float64)
        except ValueError:
            raise AnnotationError(f"{path}:{line_no}: non-numeric value in {text!r}") from None
        if not np.isfinite(pair).all() or (pair[1] <= 0).any():
            raise AnnotationError(f"{path}:{line_no}: stds must be positive and values finite, got {text!r}")
        pairs.append(pair)
    if not pairs:
        raise AnnotationError(f"{path}: no mean/std pairs")
    return np.stack(pairs).astype(np.float32)


def write_mean_std_list(path: str | Path, pairs: np.ndarray) -> None:
    """Write ``N x 2 x 3`` pairs in the list format, atomically."""
    path = Path(path)
    lines = [
        ",".join(f"{v:.4f}" for v in pair[0]) + " " + ",".join(f"{v:.4f}" for v in pair[1]) + "\n"
        for pair in np.asarray(pairs, dtype=np.float64)
    ]
    atomic_write(path, "".join(lines))


def clip_mean_std(clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) std over all frames of a ``T x H x W x C`` uint8 clip, or of
    ``C x (T * H) x W`` channel planes."""
    if clip.ndim == 4:
        t, h, w, c = clip.shape
        clip = np.moveaxis(np.ascontiguousarray(clip).reshape(t * h, w, c), -1, 0)
    stats = np.array([[v.item() for v in cv2.meanStdDev(np.ascontiguousarray(plane))] for plane in clip])
    return stats[:, 0], stats[:, 1]


def crossnorm_affine(clip: np.ndarray, pair: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel ``(scale, shift)`` with ``x * scale + shift`` giving the pair's mean and std.

    ``None`` when the clip has a channel std below ``MIN_STD`` (the clip is then left alone).
    """
    mean, std = clip_mean_std(clip)
    if (std < MIN_STD).any():
        return None
    scale = pair[1] / std
    return scale, pair[0] - mean * scale


def apply_crossnorm(clip: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """The CrossNorm'ed clip as float32 on the 0-255 scale (reference form; training fuses it with
    normalisation in :func:`action_rec.data.transforms.normalize_clip`)."""
    affine = crossnorm_affine(clip, pair)
    out = np.asarray(clip, dtype=np.float32)
    if affine is None:
        return out
    scale, shift = affine
    return np.clip(out * scale.astype(np.float32) + shift.astype(np.float32), 0, 255)
