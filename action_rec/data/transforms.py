"""Clip transforms of the training recipe, on uint8 frames, one set of random parameters per clip.

Training (``TrainTransform``), frames ``H x W x 3`` uint8 RGB in, ``3 x T x size x size`` float32 out
(or uint8 with ``normalize=False``, see below):

1. resize the short side to ``input.resize_short`` (`action_rec.runtime.frames.resize_frame`: the one
   resize rule, shared with evaluation, the live demo and the deployed script);
2. random rotation of +-``data.rotation_deg`` degrees with probability 0.5, black border;
3. crop: ``multi_scale`` (S3D: scales 1, .875, .75, .66, 5 fixed offsets) or ``random_resized`` (X3D:
   area 0.4-1.0, aspect 0.5-1.5); 4. resize the crop to ``size x size``;
5. horizontal flip with probability 0.5 (``data.horizontal_flip: false`` switches it off);
6. colour stage: one of none / photometric distortion / CrossNorm (``data.colour``, :mod:`.photometric`);
7. normalise with ``input.mean`` / ``input.std``.

With ``normalize=False`` step 7 is left out: a ``3 x T x size x size`` uint8 clip, colour stage applied
(through a lookup table, saturating at 0..255 as the float path clamps), 4x less to move from loader
workers to the device, where :func:`normalize_batch` normalises the batch; it equals the float path's
to within rounding (half a grey level, about 0.01 after normalisation).

All of it works on uint8 frames with OpenCV, fast enough for a few CPU cores: frames already at the
short side skip step 1; without rotation, one ``cv2.resize`` per frame crops, resizes and flips; with
it, all of that is one affine ``cv2.warpAffine`` per frame (on RGBA, twice as fast as RGB); the colour
stage is one 3 x 4 colour matrix, or folded into the normalisation (a lookup table without it).

Validation and test (``EvalTransform``, :func:`preprocess_clip`): resize the short side, centre crop,
normalise, as the original evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from action_rec.runtime.frames import center_crop_clip, resize_frame, resize_interpolation, short_side_size
from action_rec.templates import Template

from .crossnorm import crossnorm_affine
from .photometric import (
    PhotometricParams,
    apply_photometric,
    choose_colour_stage,
    photometric_matrix,
    sample_photometric,
)

__all__ = [
    "MULTI_SCALES",
    "ClipParams",
    "PhotometricParams",
    "TrainTransform",
    "EvalTransform",
    "preprocess_clip",
    "normalize_clip",
    "normalize_batch",
    "affine_planes",
    "split_planes",
    "multi_scale_crop_box",
    "random_resized_crop_box",
    "geometry_matrix",
    "warp_frames",
    "crop_resize_frames",
    "resize_frames",
    "photometric_matrix",
    "sample_photometric",
    "apply_photometric",
    "choose_colour_stage",
]

MULTI_SCALES = (1.0, 0.875, 0.75, 0.66)
RANDOM_RESIZED_AREA = (0.4, 1.0)
RANDOM_RESIZED_ASPECT = (0.5, 1.5)


# ----------------------------------------------------------------------------------------- crops
def multi_scale_crop_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    scales: Sequence[float] = MULTI_SCALES,
    max_gap: int = 1,
) -> tuple[int, int, int, int]:
    """S3D's multi-scale crop ``(x, y, w, h)``: sides from ``scales`` x the short side (the two sides at
    most ``max_gap`` scale steps apart), at one of 5 fixed offsets (4 corners and the centre)."""
    base = min(height, width)
    sizes = [int(base * s) for s in scales]
    pairs = [(w, h) for i, h in enumerate(sizes) for j, w in enumerate(sizes) if abs(i - j) <= max_gap]
    crop_w, crop_h = pairs[rng.integers(len(pairs))]
    w_step, h_step = (width - crop_w) // 4, (height - crop_h) // 4
    offsets = [(0, 0), (4 * w_step, 0), (0, 4 * h_step), (4 * w_step, 4 * h_step), (2 * w_step, 2 * h_step)]
    x, y = offsets[rng.integers(len(offsets))]
    return x, y, crop_w, crop_h


def random_resized_crop_box(
    height: int,
    width: int,
    rng: np.random.Generator,
    area_range: tuple[float, float] = RANDOM_RESIZED_AREA,
    aspect_range: tuple[float, float] = RANDOM_RESIZED_ASPECT,
    attempts: int = 10,
) -> tuple[int, int, int, int]:
    """Random resized crop ``(x, y, w, h)``: area a uniform fraction of the frame, aspect (w / h)
    log-uniform; falls back to the centred square after ``attempts`` misses."""
    aspects = np.exp(rng.uniform(math.log(aspect_range[0]), math.log(aspect_range[1]), size=attempts))
    areas = rng.uniform(area_range[0], area_range[1], size=attempts) * height * width
    crop_ws = np.round(np.sqrt(areas * aspects)).astype(int)
    crop_hs = np.round(np.sqrt(areas / aspects)).astype(int)
    for crop_w, crop_h in zip(crop_ws, crop_hs, strict=True):
        if 0 < crop_w <= width and 0 < crop_h <= height:
            x = int(rng.integers(0, width - crop_w + 1))
            y = int(rng.integers(0, height - crop_h + 1))
            return x, y, int(crop_w), int(crop_h)
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side, side


# -------------------------------------------------------------------------------------- geometry
def geometry_matrix(
    src_hw: tuple[int, int],
    resized_hw: tuple[int, int],
    angle: float,
    crop: tuple[int, int, int, int],
    out_size: int,
    flip: bool,
) -> np.ndarray:
    """The 2 x 3 pixel-coordinate matrix of resize -> rotate -> crop -> resize -> flip.

    ``angle`` is in degrees, counter-clockwise on screen, about the resized frame's centre; ``crop``
    is ``(x, y, w, h)`` in the resized frame. Built in continuous coordinates (pixel ``i`` covers
    ``[i, i + 1)``), which is what makes the composition agree with cv2.resize's pixel-centre convention.
    """
    (h, w), (rh, rw) = src_hw, resized_hw
    resize = np.diag([rw / w, rh / h, 1.0])
    a, b = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    cx, cy = rw / 2.0, rh / 2.0
    rotate = np.array([[a, b, (1 - a) * cx - b * cy], [-b, a, b * cx + (1 - a) * cy], [0, 0, 1]])
    x, y, cw, ch = crop
    crop_resize = np.array(
        [[out_size / cw, 0, -x * out_size / cw], [0, out_size / ch, -y * out_size / ch], [0, 0, 1]]
    )
    mirror = np.array([[-1.0, 0, out_size], [0, 1, 0], [0, 0, 1]]) if flip else np.eye(3)
    to_cont = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    to_pix = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    return (to_pix @ mirror @ crop_resize @ rotate @ resize @ to_cont)[:2]


def warp_frames(frames: Sequence[np.ndarray], matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply one 2 x 3 affine to every ``H x W x 3`` frame: ``T x size x size x 3`` uint8, black outside.

    Only the part of each frame the output can see is converted to RGBA and warped.
    """
    h, w = frames[0].shape[:2]
    inv = cv2.invertAffineTransform(matrix)
    corners = np.array(
        [[-1, -1, 1], [size + 1, -1, 1], [-1, size + 1, 1], [size + 1, size + 1, 1]], np.float64
    )
    src = corners @ inv.T
    x0, y0 = (max(int(math.floor(v)) - 1, 0) for v in src.min(axis=0))
    x1, y1 = min(int(math.ceil(src[:, 0].max())) + 2, w), min(int(math.ceil(src[:, 1].max())) + 2, h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((len(frames), size, size, 3), dtype=np.uint8)
    out = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
    rgba = np.empty((len(frames), size, size, 4), dtype=np.uint8)
    roi = np.empty((y1 - y0, x1 - x0, 4), dtype=np.uint8)
    for i, frame in enumerate(frames):
        cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_RGB2RGBA, dst=roi)
        cv2.warpAffine(
            roi, shifted, (size, size), dst=rgba[i], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
    cv2.cvtColor(rgba.reshape(-1, size, 4), cv2.COLOR_RGBA2RGB, dst=out.reshape(-1, size, 3))
    return out


def crop_resize_frames(
    frames: Sequence[np.ndarray], crop: tuple[int, int, int, int], size: int, flip: bool = False
) -> np.ndarray:
    """Crop ``(x, y, w, h)``, resize to ``size x size`` (`resize_interpolation`'s rule), optionally
    mirror: ``T x size x size x 3``."""
    x, y, cw, ch = crop
    out = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    interpolation = resize_interpolation((ch, cw), (size, size))
    for i, frame in enumerate(frames):
        cv2.resize(frame[y : y + ch, x : x + cw], (size, size), dst=out[i], interpolation=interpolation)
        if flip:
            cv2.flip(out[i], 1, dst=out[i])
    return out


def resize_frames(frames: Sequence[np.ndarray], hw: tuple[int, int]) -> list[np.ndarray]:
    """Frames at ``(height, width)``, each by `resize_frame`."""
    return [resize_frame(f, hw) for f in frames]


# --------------------------------------------------------------------------------- normalisation
def split_planes(clip: np.ndarray) -> np.ndarray:
    """The channels of a ``T x H x W x C`` uint8 clip as a ``C x (T * H) x W`` array of planes."""
    t, h, w, c = clip.shape
    planes = np.empty((c, t * h, w), dtype=clip.dtype)
    # Into an array allocated here: cv2.split's own outputs cost a page fault per 4 KiB, every call.
    cv2.split(np.ascontiguousarray(clip).reshape(t * h, w, c), list(planes))
    return planes


def normalize_clip(
    clip: np.ndarray,
    mean: Sequence[float],
    std: Sequence[float],
    affine: tuple[np.ndarray, np.ndarray] | None = None,
    shape: tuple[int, int, int] | None = None,
) -> torch.Tensor:
    """``T x H x W x 3`` uint8 -> ``3 x T x H x W`` float32, ``(x - mean) / std`` per channel.

    With ``affine = (scale, shift)`` (CrossNorm) the clip is first mapped to
    ``clip(x * scale + shift, 0, 255)``; both maps are fused into one multiply-add and one clamp.
    ``clip`` may also be the ``C x (T * H) x W`` planes of :func:`split_planes`, with ``shape = (T, H, W)``.
    """
    if shape is None:
        if clip.ndim != 4:
            raise ValueError("normalize_clip needs a T x H x W x C clip, or planes with shape=(T, H, W)")
        shape = clip.shape[:3]
        planes = split_planes(clip)
    else:
        planes = clip
    # numpy's allocation, not torch.empty: a fresh 10 MB torch tensor page-faults on every clip.
    out = torch.from_numpy(np.empty((len(planes), *shape), dtype=np.float32))
    for ch, plane in enumerate(planes):
        m, s = float(mean[ch]), float(std[ch])
        scale, shift = (1.0, 0.0) if affine is None else (float(affine[0][ch]), float(affine[1][ch]))
        dst = out[ch].view(plane.shape)
        # One pass: uint8 in, x * scale + shift as float32 out.
        torch.add(torch.tensor((shift - m) / s), torch.from_numpy(plane), alpha=scale / s, out=dst)
        if affine is not None:
            dst.clamp_(-m / s, (255.0 - m) / s)
    return out


def affine_planes(planes: np.ndarray, affine: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Map each uint8 channel plane to ``clip(round(x * scale + shift), 0, 255)`` in place, ``affine =
    (scale, shift)`` per channel; returns ``planes``.

    The uint8 form of the colour map :func:`normalize_clip` fuses into the normalisation: a 256-entry
    table per channel (one ``cv2.LUT``) computes each possible value once.
    """
    values = np.arange(256, dtype=np.float64)
    for plane, scale, shift in zip(planes, *affine, strict=True):
        table = np.clip(np.rint(values * float(scale) + float(shift)), 0, 255).astype(np.uint8)
        cv2.LUT(plane, table, dst=plane)
    return planes


def normalize_batch(
    clips: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """``N x C x T x H x W`` uint8 -> float32 ``(x - mean) / std`` per channel, on ``clips``' device and in
    ``memory_format`` (e.g. ``torch.channels_last_3d``).

    The batch form of :func:`normalize_clip` for clips loaded with ``normalize=False``: one pass per
    channel with scalar factors (on CPU about twice as fast as one op broadcasting per-channel tensors),
    written straight into the output layout (no float copy to convert afterwards).
    """
    if clips.dtype != torch.uint8 or clips.dim() != 5:
        raise ValueError(
            f"normalize_batch needs an N x C x T x H x W uint8 batch, got {clips.dtype} {tuple(clips.shape)}"
        )
    out = torch.empty(clips.shape, dtype=torch.float32, device=clips.device, memory_format=memory_format)
    for ch in range(clips.shape[1]):
        m, s = float(mean[ch]), float(std[ch])
        # x / s - m / s: uint8 in, float32 out, one kernel; the 0-dim CPU tensor works with any device.
        torch.add(torch.tensor(-m / s), clips[:, ch], alpha=1.0 / s, out=out[:, ch])
    return out


def _clip_from_planes(planes: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor:
    """``C x (T * H) x W`` planes as a ``C x T x H x W`` tensor (no copy)."""
    return torch.from_numpy(planes).view(len(planes), *shape)


# ------------------------------------------------------------------------------------ pipelines
@dataclass
class ClipParams:
    """The random choices for one training clip (shared by all its frames)."""

    resized_hw: tuple[int, int]  # the frame after the short-side resize
    crop: tuple[int, int, int, int]  # x, y, w, h in the resized frame
    angle: float = 0.0  # degrees, counter-clockwise
    flip: bool = False
    colour: str = "none"
    photometric: PhotometricParams = field(default_factory=PhotometricParams)
    crossnorm_pair: np.ndarray | None = None  # 2 x 3: RGB means, RGB stds


class TrainTransform:
    """The training pipeline of a template (see the module docstring).

    ``mean_std_pairs`` (``N x 2 x 3``, from ``mean_std_list.txt``) enables CrossNorm; without it the
    CrossNorm branch of the colour stage leaves the clip unchanged (the dataset logs that).
    ``normalize=False`` gives uint8 clips, every augmentation applied, for :func:`normalize_batch`.
    """

    def __init__(
        self,
        template: Template,
        mean_std_pairs: np.ndarray | None = None,
        normalize: bool = True,
    ):
        inp, data = template.input, template.data
        self.size = inp.size
        self.resize_short = inp.resize_short
        self.mean, self.std = list(inp.mean), list(inp.std)
        self.rotation_deg = float(data.rotation_deg)
        self.crop = data.crop
        self.horizontal_flip = data.horizontal_flip
        self.colour = data.colour.to_dict()
        self.mean_std_pairs = mean_std_pairs
        self.normalize = normalize

    def sample(self, height: int, width: int, rng: np.random.Generator) -> ClipParams:
        """Draw the clip's parameters for frames of ``height x width``."""
        rh, rw = short_side_size(height, width, self.resize_short)
        angle = 0.0
        if self.rotation_deg > 0 and rng.random() < 0.5:
            angle = float(rng.uniform(-self.rotation_deg, self.rotation_deg))
        if self.crop == "multi_scale":
            crop = multi_scale_crop_box(rh, rw, rng)
        else:
            crop = random_resized_crop_box(rh, rw, rng)
        flip = self.horizontal_flip and bool(rng.random() < 0.5)
        params = ClipParams((rh, rw), crop, angle, flip, choose_colour_stage(self.colour, rng))
        if params.colour == "photometric":
            params.photometric = sample_photometric(rng)
        elif params.colour == "crossnorm" and self.mean_std_pairs is not None:
            params.crossnorm_pair = self.mean_std_pairs[rng.integers(len(self.mean_std_pairs))]
        return params

    def apply(self, frames: Sequence[np.ndarray], params: ClipParams) -> torch.Tensor:
        """Frames ``H x W x 3`` uint8 RGB -> ``3 x T x size x size`` float32 (uint8 without normalize)."""
        frames = resize_frames(frames, params.resized_hw)
        if params.angle == 0.0:
            clip = crop_resize_frames(frames, params.crop, self.size, params.flip)
        else:
            matrix = geometry_matrix(
                params.resized_hw, params.resized_hw, params.angle, params.crop, self.size, params.flip
            )
            clip = warp_frames(frames, matrix, self.size)
        affine = None
        photo = params.photometric
        if params.colour == "photometric" and photo != PhotometricParams():
            if photo.saturation == 1.0 and photo.hue == 0.0:  # per-channel: fold into the normalisation
                affine = (np.full(3, photo.contrast), np.full(3, photo.contrast * photo.brightness))
            else:
                clip = apply_photometric(clip, photo)
        planes = split_planes(clip)
        if params.colour == "crossnorm" and params.crossnorm_pair is not None:
            affine = crossnorm_affine(planes, params.crossnorm_pair)
        if self.normalize:
            return normalize_clip(planes, self.mean, self.std, affine, shape=clip.shape[:3])
        if affine is not None:
            affine_planes(planes, affine)
        return _clip_from_planes(planes, clip.shape[:3])

    def __call__(self, frames: Sequence[np.ndarray], rng: np.random.Generator) -> torch.Tensor:
        h, w = frames[0].shape[:2]
        return self.apply(frames, self.sample(h, w, rng))


class EvalTransform:
    """Validation / test pipeline: short-side resize, centre crop, normalise (``normalize=False``: a
    ``3 x T x size x size`` uint8 clip, for :func:`normalize_batch`)."""

    def __init__(self, template: Template, normalize: bool = True):
        self.normalize = normalize
        inp = template.input
        self.size = inp.size
        self.resize_short = inp.resize_short
        self.mean, self.std = list(inp.mean), list(inp.std)

    def crop(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """The un-normalised clip, ``T x size x size x 3`` uint8."""
        return center_crop_clip(frames, self.resize_short, self.size)

    def __call__(self, frames: Sequence[np.ndarray], rng: np.random.Generator | None = None) -> torch.Tensor:
        clip = self.crop(frames)
        if self.normalize:
            return normalize_clip(clip, self.mean, self.std)
        return _clip_from_planes(split_planes(clip), clip.shape[:3])


def preprocess_clip(frames: Sequence[np.ndarray], template: Template) -> torch.Tensor:
    """The evaluation pipeline for inference and verification: ``H x W x 3`` uint8 RGB frames ->
    ``3 x T x size x size`` float32 (short-side resize, centre crop, normalise)."""
    return EvalTransform(template)(frames)
