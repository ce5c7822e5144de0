"""Textures of the synthetic sample data: backgrounds, the object sprite and sensor noise
(:mod:`.synthetic` draws them per clip; only the random generator decides them)."""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = []  # private helpers of .synthetic


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, channels: int = 3) -> np.ndarray:
    """Smooth random field in [0, 1], ``h x w x channels``."""
    low = rng.random((cells, cells, channels)).astype(np.float32)
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1).reshape(h, w, channels)


def _pattern(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A two-colour pattern (stripes, checks or blobs) as ``h x w x 3`` float32 in [0, 255]."""
    c1, c2 = rng.uniform(20, 235, size=(2, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.integers(3)
    period = rng.uniform(0.15, 0.35) * max(h, w)
    if kind == 0:  # stripes at a random angle
        a = rng.uniform(0, math.pi)
        m = (np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period) > 0).astype(np.float32)
    elif kind == 1:  # checks
        m = ((np.floor(xx / period * 2) + np.floor(yy / period * 2)) % 2).astype(np.float32)
    else:  # blobs
        m = (_smooth_noise(rng, h, w, 4, 1)[..., 0] > 0.5).astype(np.float32)
    m = cv2.GaussianBlur(m, (0, 0), 0.8)[..., None]
    return c1 * m + c2 * (1 - m)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:  # smooth colour noise
        bg = _smooth_noise(rng, size, size, int(rng.integers(3, 9))) * rng.uniform(120, 255) + rng.uniform(
            0, 60
        )
        bg = bg.mean(axis=2, keepdims=True) + (bg - bg.mean(axis=2, keepdims=True)) * rng.uniform(0.2, 0.8)
    elif kind == 1:  # linear gradient between two colours
        c1, c2 = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
        a = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        g = ((xx - 0.5) * math.cos(a) + (yy - 0.5) * math.sin(a) + 0.71) / 1.42
        bg = c1 * g[..., None] + c2 * (1 - g[..., None])
    else:  # soft, low-contrast pattern
        bg = _pattern(rng, size, size)
        bg = cv2.GaussianBlur(bg, (0, 0), rng.uniform(1, 3))
        bg = bg.mean() + (bg - bg.mean()) * rng.uniform(0.2, 0.5)
    grain = (_smooth_noise(rng, size, size, size // 4) - 0.5) * rng.uniform(5, 25)
    return np.clip(bg + grain, 0, 255).astype(np.float32)


def _sprite(rng: np.random.Generator, side: int) -> tuple[np.ndarray, np.ndarray]:
    """An irregular textured polygon: premultiplied colour ``side x side x 3`` and alpha ``side x side``."""
    n = int(rng.integers(5, 8))
    angles = (np.arange(n) + rng.uniform(-0.35, 0.35, n)) * 2 * math.pi / n  # spread out: no slivers
    radii = rng.uniform(0.3, 0.48, n) * side
    c = (side - 1) / 2
    shift = 4  # sub-pixel vertices
    pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], axis=1) * (1 << shift)
    pts = np.round(pts).astype(np.int32)
    alpha = np.zeros((side, side), np.uint8)
    cv2.fillPoly(alpha, [pts], 255, lineType=cv2.LINE_AA, shift=shift)
    texture = _pattern(rng, side, side)
    shade = 0.75 + 0.5 * _smooth_noise(rng, side, side, 3, 1)  # uneven lighting on the object
    colour = np.clip(texture * shade, 0, 255)
    outline = np.zeros((side, side), np.uint8)
    cv2.polylines(outline, [pts], True, 255, thickness=max(1, side // 40), lineType=cv2.LINE_AA, shift=shift)
    colour = colour * (1 - 0.6 * outline[..., None] / 255.0)
    a = alpha.astype(np.float32) / 255.0
    return (colour * a[..., None]).astype(np.float32), a


_NOISE_BANK: dict[int, np.ndarray] = {}


def _noise_bank(size: int) -> np.ndarray:
    """Shared unit Gaussian noise frames (drawing fresh noise for every pixel dominates the run time)."""
    if size not in _NOISE_BANK:
        _NOISE_BANK[size] = np.random.default_rng(12345).standard_normal(
            (64, size, size, 3), dtype=np.float32
        )
    return _NOISE_BANK[size]
