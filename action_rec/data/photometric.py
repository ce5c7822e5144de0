"""The colour stage's photometric distortion (brightness, contrast, saturation, hue) as one 3 x 4
colour matrix per clip, and the draw of the colour stage itself (none / photometric / CrossNorm).

Ranges (each distortion applied with probability 0.5, mmcv PhotoMetricDistortion's): brightness
+-32 on the 0-255 scale, contrast and saturation x0.5-1.5, hue +-18 degrees. The original toolkit's
photometric distortion returned its input unchanged (a bug); ``data.colour: {none: 1, photometric: 0,
crossnorm: 0}`` reproduces that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from action_rec.errors import UserError

__all__ = [
    "COLOUR_STAGES",
    "PhotometricParams",
    "sample_photometric",
    "photometric_matrix",
    "apply_photometric",
    "choose_colour_stage",
]

COLOUR_STAGES = ("none", "photometric", "crossnorm")


@dataclass(frozen=True)
class PhotometricParams:
    """Photometric distortion: brightness, contrast, saturation, hue. Identity values mean "not applied"."""

    brightness: float = 0.0  # added, 0-255 scale
    contrast: float = 1.0  # multiplied
    saturation: float = 1.0  # 0 = grey, 1 = unchanged
    hue: float = 0.0  # degrees of rotation about the grey axis


def sample_photometric(
    rng: np.random.Generator,
    brightness: float = 32.0,
    contrast: tuple[float, float] = (0.5, 1.5),
    saturation: tuple[float, float] = (0.5, 1.5),
    hue: float = 18.0,
) -> PhotometricParams:
    """Each of the four distortions applied with probability 0.5, with mmcv PhotoMetricDistortion's ranges."""
    b = float(rng.uniform(-brightness, brightness)) if rng.random() < 0.5 else 0.0
    c = float(rng.uniform(*contrast)) if rng.random() < 0.5 else 1.0
    s = float(rng.uniform(*saturation)) if rng.random() < 0.5 else 1.0
    h = float(rng.uniform(-hue, hue)) if rng.random() < 0.5 else 0.0
    return PhotometricParams(b, c, s, h)


_LUMA = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709 weights of the W3C saturate / hue-rotate filters


def photometric_matrix(params: PhotometricParams) -> np.ndarray:
    """The distortion as one 3 x 4 affine colour matrix on RGB: ``hue(saturation(contrast * (x + brightness)))``."""
    grey = np.tile(_LUMA, (3, 1))
    saturate = params.saturation * np.eye(3) + (1 - params.saturation) * grey
    a = math.radians(params.hue)
    # Rotation about the grey axis that keeps luma (W3C filter-effects hueRotate).
    hue = (
        grey
        + math.cos(a) * (np.eye(3) - grey)
        + math.sin(a)
        * np.array([[-0.2126, -0.7152, 0.9278], [0.143, 0.140, -0.283], [-0.7874, 0.7152, 0.0722]])
    )
    linear = hue @ saturate * params.contrast
    return np.hstack([linear, (linear @ np.full(3, params.brightness))[:, None]])


def apply_photometric(clip: np.ndarray, params: PhotometricParams) -> np.ndarray:
    """Distort a ``T x H x W x 3`` uint8 RGB clip, every frame alike (one pass of ``cv2.transform``,
    saturating to 0..255); returns a new uint8 clip.

    This is a real photometric distortion. The original toolkit's returned its input unchanged (a
    bug), so it trained with no colour augmentation besides CrossNorm; distorting colours here is a
    deliberate improvement over the original recipe, not a reproduction of it.
    """
    flat = np.ascontiguousarray(clip).reshape(-1, clip.shape[-2], 3)  # all frames as one image for cv2
    out = np.empty_like(flat)
    cv2.transform(flat, photometric_matrix(params).astype(np.float32), dst=out)
    return out.reshape(clip.shape)


def choose_colour_stage(probabilities: Mapping[str, float], rng: np.random.Generator) -> str:
    """One of ``none`` / ``photometric`` / ``crossnorm`` drawn with the template's probabilities."""
    p = np.array([float(probabilities.get(k, 0.0)) for k in COLOUR_STAGES])
    if (p < 0).any() or p.sum() <= 0:
        raise UserError(f"colour stage probabilities must be >= 0 and not all 0, got {dict(probabilities)}")
    return COLOUR_STAGES[int(rng.choice(len(COLOUR_STAGES), p=p / p.sum()))]
