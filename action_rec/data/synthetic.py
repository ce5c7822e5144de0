"""A small synthetic dataset whose classes differ only in motion: the bundled sample data.

Each clip shows one textured object on a random background (smooth noise, a gradient or a soft
pattern), with a drop shadow and sensor noise. The twelve classes come in pairs that are each other's
reversal in time: moving left / right, up / down, growing / shrinking, rotating clockwise /
counter-clockwise, and along the two diagonals: up-left / down-right, down-left / up-right. The quick
start trains on the first six; the diagonals are the held-out classes of the fine-tuning transfer task
(:func:`make_held_out_dataset`): new classes made of the directions the first four teach.

Why a model that ignores the order of frames cannot tell the two classes of a pair apart: a track of
moving left / up, shrinking or rotating clockwise is drawn as a track of its pair class (right, down,
growing, counter-clockwise) played backwards, with everything else (object, texture, background,
noise) independent of the class. So the *set* of frames of a clip has the same distribution in both
classes of a pair, and only the direction of time separates them. (An order-blind bag of frames can
still see *which kind* of motion happens, i.e. the pair; and the first frame alone hints at the class,
e.g. a growing object starts small, while the middle frame does not.)

With ``background=True`` (``make_synthetic_dataset.py --background``) a ninth kind of clip joins as the
last label: the same scenes with the object standing still but for a small directionless jitter, and
in half of them a cut to another still scene, the "no action" class that teaches a model to say
nothing happens. The action clips then also stand still for up to a quarter of their frames before
and after the motion, so that the model learns where an action starts and ends.

The motion spans the whole clip whatever its length, so the number of frames sets the speed: the
quick start writes 16-frame clips and samples 8 of them, every 2nd.

Layout written (the raw-frame layout of the seed README)::

    out_dir/rawframes/{train,val}/<class>_<nnnn>/00001.jpg ...
    out_dir/train.txt, out_dir/val.txt     <rel_dir> <label> 0 N 0 N <fps>
    out_dir/label_map.txt
    out_dir/videos/{train,val}/<class>_<nnnn>.mp4 and out_dir/videos_{train,val}.txt  (videos=True)
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from action_rec.errors import UserError
from action_rec.fileio import atomic_write

from .synthetic_textures import _background, _noise_bank, _sprite

__all__ = [
    "BACKGROUND",
    "CLASSES",
    "Motion",
    "make_synthetic_dataset",
    "pose_track",
    "render_action_with_holds",
    "render_background",
    "render_clip",
]


@dataclass(frozen=True)
class Motion:
    name: str
    kind: str  # horizontal | vertical | rotate | scale | diagonal_down | diagonal_up
    direction: int  # +1 / -1; the pair class has the opposite sign


# Order matters: label ids, and a dataset of N classes uses the first N. Image y grows downwards; angles
# are counter-clockwise on screen, so clockwise turns have direction -1. Rotation comes last: its
# direction is the hardest to learn for a network that averages over space at the end (the pooled
# local motions of a clockwise and a counter-clockwise turn are the same set of directions), so the
# quick start's six classes leave it out; make_synthetic_dataset.py --num-classes 8 includes it. The
# diagonals were appended after it (appending keeps every earlier class's label and clips): moving along
# the diagonal through the top-left and bottom-right corners (x and y grow together: diagonal_down) or
# the other one (x grows as y shrinks: diagonal_up).
CLASSES = (
    Motion("moving_left", "horizontal", -1),
    Motion("moving_right", "horizontal", +1),
    Motion("moving_up", "vertical", -1),
    Motion("moving_down", "vertical", +1),
    Motion("growing", "scale", +1),
    Motion("shrinking", "scale", -1),
    Motion("rotating_clockwise", "rotate", -1),
    Motion("rotating_counterclockwise", "rotate", +1),
    Motion("moving_up_left", "diagonal_down", -1),
    Motion("moving_down_right", "diagonal_down", +1),
    Motion("moving_down_left", "diagonal_up", -1),
    Motion("moving_up_right", "diagonal_up", +1),
)

# The "no action" class (`--background`): the same scenes and objects, standing still but for a small
# random jitter (a shaky camera, sensor wobble) that has no direction; half of its clips cut to another
# still scene (render_background). It is not one of CLASSES: a dataset made with it gets it as its
# last label, whatever its number of action classes.
BACKGROUND = Motion("background", "still", 0)
JITTER = 0.01  # the largest jitter, as a fraction of the frame size (and 1 degree, 1 % of the scale)

SCALE_RANGE = (0.4, 1.0)  # object size relative to its sprite (0.6 x frame size)
MARGIN = 0.2  # the object's centre stays this far (frame fraction) from the edges it moves towards
TRAVEL = (0.35, 0.6)  # frame widths covered in one clip (along a diagonal too: 1/sqrt(2) of it per axis)
TURN = (60.0, 120.0)  # degrees turned in one clip (more would alias with the polygon's symmetry)
GROWTH = (0.6, 1.0)  # fraction of the log-size range covered in one clip
# Paced motions (``pose_track(paced=True)``, the long recordings): the amounts above are per
# PACE_FRAMES frames (the quick start's trimmed clips), times a pace drawn from PACE; a longer action
# moves further, up to PACE_LIMITS (travel in frame widths: the object may leave the frame by half its
# width; turn in degrees; growth as above), beyond which it is slower instead.
PACE_FRAMES = 16
PACE = (1.0, 2.0)
PACE_LIMITS = {"travel": 1.2, "turn": TURN[1], "growth": 1.0}


def _amount(
    value_range: tuple[float, float], frames: int, paced: bool, limit: float, rng: np.random.Generator
) -> float:
    """How much of a motion one clip covers: a draw from `value_range` per clip, or (paced) per
    PACE_FRAMES frames at a random pace, capped at `limit`."""
    amount = rng.uniform(*value_range)
    if paced:
        amount = min(amount * rng.uniform(*PACE) * frames / PACE_FRAMES, limit)
    return amount


def _start(lo: float, hi: float, travel: float, rng: np.random.Generator) -> float:
    """Where a travel of `travel` starts so that it stays within ``lo..hi``, or, when it is longer,
    is centred on that range."""
    if travel <= hi - lo:
        return rng.uniform(lo, hi - travel)
    return (lo + hi - travel) / 2


def pose_track(
    motion: Motion, frames: int, size: int, rng: np.random.Generator, paced: bool = False
) -> np.ndarray:
    """``frames x 4`` poses ``(x, y, angle_deg, log_scale_phase)`` for one clip of ``motion``.

    The motion spans the whole clip. By default it covers the same amount whatever the clip's length
    (so the length sets the speed); ``paced=True`` draws a speed instead and covers more in a longer
    clip (up to PACE_LIMITS), as a person who walks further walks longer. A track of a ``direction -1``
    class is a track of its ``+1`` pair drawn the same way and played backwards, so the two classes of
    a pair are each other's time reversal in distribution. Poses never wrap around.
    """
    t = np.linspace(0.0, 1.0, frames)
    lo, hi = MARGIN * size, (1 - MARGIN) * size
    x = np.full(frames, rng.uniform(lo, hi))
    y = np.full(frames, rng.uniform(0.35 * size, 0.65 * size))
    angle = np.full(frames, rng.uniform(0, 360))
    phase = np.full(frames, rng.uniform(0, 1))
    if motion.kind in ("horizontal", "vertical"):
        travel = _amount(TRAVEL, frames, paced, PACE_LIMITS["travel"], rng) * size
        path = _start(lo, hi, travel, rng) + travel * t
        x, y = (path, y) if motion.kind == "horizontal" else (x, path)
    elif motion.kind in ("diagonal_down", "diagonal_up"):
        travel = _amount(TRAVEL, frames, paced, PACE_LIMITS["travel"], rng) * size / math.sqrt(2)
        x = _start(lo, hi, travel, rng) + travel * t
        y = _start(lo, hi, travel, rng) + travel * (t if motion.kind == "diagonal_down" else 1 - t)
    elif motion.kind == "rotate":
        angle = angle + _amount(TURN, frames, paced, PACE_LIMITS["turn"], rng) * t
    elif motion.kind == "scale":
        growth = _amount(GROWTH, frames, paced, PACE_LIMITS["growth"], rng)
        phase = rng.uniform(0, 1 - growth) + growth * t
    elif motion.kind == "still":
        x, y, angle, phase = _jitter(np.stack([x, y, angle, phase], axis=1), size, rng).T
    else:
        raise ValueError(f"unknown motion kind {motion.kind!r}")
    track = np.stack([x, y, np.mod(angle, 360.0), phase], axis=1)
    return track[::-1].copy() if motion.direction < 0 else track


def _jitter(poses: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Still poses shaken independently per frame (never drifting): up to JITTER of the frame size in
    x and y, 1 degree and JITTER of the scale phase, times a random amount for the clip."""
    amount = rng.uniform(0, 1)
    n = len(poses)
    shake = np.stack(
        [
            rng.uniform(-1, 1, n) * amount * JITTER * size,
            rng.uniform(-1, 1, n) * amount * JITTER * size,
            rng.uniform(-1, 1, n) * amount,
            rng.uniform(-1, 1, n) * amount * JITTER,
        ],
        axis=1,
    )
    out = poses + shake
    out[:, 3] = np.clip(out[:, 3], 0, 1)
    return out


def render_clip(
    motion: Motion,
    frames: int,
    size: int,
    rng: np.random.Generator,
    hold: tuple[int, int] = (0, 0),
    paced: bool = False,
) -> np.ndarray:
    """One clip of ``motion``: ``frames x size x size x 3`` uint8 BGR (ready for cv2.imwrite).

    ``hold=(before, after)``: the object also stands still (jittering) that many frames before and
    after its motion, in the same scene, as a person stands before and after an action (test videos).
    ``paced``: see :func:`pose_track`.
    """
    poses = pose_track(motion, frames, size, rng, paced=paced)
    if hold != (0, 0):
        poses = np.concatenate(
            [_jitter(poses[[0] * hold[0]], size, rng), poses, _jitter(poses[[-1] * hold[1]], size, rng)]
        )
    frames = len(poses)
    bg = _background(rng, size)
    side = int(round(0.6 * size))
    colour, alpha = _sprite(rng, side)
    pad = side // 4  # room for the blurred shadow
    shadow = cv2.GaussianBlur(
        cv2.copyMakeBorder(alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT), (0, 0), side / 16
    )
    layer = np.dstack([colour, alpha])  # premultiplied RGB + alpha, warped together
    shadow_offset = np.array([0.03, 0.045]) * size
    shadow_strength = rng.uniform(0.3, 0.55)
    noise_sigma = rng.uniform(1.0, 4.0)
    bank = _noise_bank(size)
    noise_ids = rng.integers(len(bank), size=frames)
    lo, hi = math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1])

    shadow_centre = (side + 2 * pad - 1) / 2
    sprite_centre = (side - 1) / 2
    clip = np.empty((frames, size, size, 3), np.float32)
    for i, (x, y, angle, phase) in enumerate(poses):
        scale = math.exp(lo + phase * (hi - lo))
        m = cv2.getRotationMatrix2D((shadow_centre, shadow_centre), angle, scale)
        m[:, 2] += (x + shadow_offset[0] - shadow_centre, y + shadow_offset[1] - shadow_centre)
        shade = cv2.warpAffine(shadow, m, (size, size), flags=cv2.INTER_LINEAR)
        frame = clip[i]
        np.multiply(bg, (1 - shadow_strength * np.minimum(shade, 1))[..., None], out=frame)
        m = cv2.getRotationMatrix2D((sprite_centre, sprite_centre), angle, scale)
        m[:, 2] += (x - sprite_centre, y - sprite_centre)
        warped = cv2.warpAffine(layer, m, (size, size), flags=cv2.INTER_LINEAR)
        frame *= 1 - warped[..., 3:]
        frame += warped[..., :3]
    clip += bank[noise_ids] * np.float32(noise_sigma)
    return np.clip(clip, 0, 255).astype(np.uint8)[..., ::-1]


def render_background(frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of the background class: a still scene, or (half of them) two still scenes with a cut
    between them at a random frame. Cuts happen in long videos while nothing happens; without them a
    model takes the jump of a cut for a motion."""
    cut = int(rng.integers(1, frames)) if frames > 1 and rng.random() < 0.5 else frames
    first = render_clip(BACKGROUND, cut, size, rng)
    if cut == frames:
        return first
    return np.concatenate([first, render_clip(BACKGROUND, frames - cut, size, rng)])


# ------------------------------------------------------------------------------------- writing
_BACKGROUND_STREAM = 99  # the background clips' random stream: the same whatever the number of classes


def render_action_with_holds(motion: Motion, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of ``motion`` whose object stands still for up to a quarter of the frames before and
    after its motion (the motion itself spans the rest, so it is a little faster). With a background
    class, these teach a model that a window reaching past an action's start or end still shows that
    action, rather than a different one."""
    still = int(rng.integers(0, frames // 4 + 1))
    before = int(rng.integers(0, still + 1))
    return render_clip(motion, frames - still, size, rng, hold=(before, still - before))


def _write_sample(args: tuple) -> None:
    out_dir, split, label, index, frames, size, seed, fps, videos, holds = args
    motion = CLASSES[label] if label >= 0 else BACKGROUND
    stream = label if label >= 0 else _BACKGROUND_STREAM
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, stream, index])
    if label < 0:
        clip = render_background(frames, size, rng)
    elif holds:
        clip = render_action_with_holds(motion, frames, size, rng)
    else:
        clip = render_clip(motion, frames, size, rng)
    name = f"{motion.name}_{index:04d}"
    frame_dir = Path(out_dir) / "rawframes" / split / name
    frame_dir.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(clip, start=1):
        cv2.imwrite(str(frame_dir / f"{i:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if videos:
        video = Path(out_dir) / "videos" / split / f"{name}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
        if not writer.isOpened():
            raise RuntimeError(f"cannot write {video}: OpenCV has no mp4v encoder")
        for frame in clip:
            writer.write(frame)
        writer.release()


def _write_lines(path: Path, lines: list[str]) -> None:
    atomic_write(path, "".join(lines))


def make_synthetic_dataset(
    out_dir: str | Path,
    num_classes: int = 6,
    train_per_class: int = 60,
    val_per_class: int = 15,
    frames: int = 32,
    size: int = 128,
    seed: int = 0,
    videos: bool = False,
    fps: float = 30.0,
    workers: int = 1,
    background: bool = False,
) -> Path:
    """Write the synthetic dataset to ``out_dir`` (see the module docstring) and return its path.

    Classes are the first ``num_classes`` of :data:`CLASSES` (2 to 12), then with ``background`` the
    :data:`BACKGROUND` class (label ``num_classes``), and the action clips stand still for a few
    frames around their motion (:func:`render_action_with_holds`; without ``background`` they are
    the motion alone, as always). The output depends only on the arguments, not on ``workers``.
    """
    if not 2 <= num_classes <= len(CLASSES):
        raise UserError(f"num_classes must be 2..{len(CLASSES)}, got {num_classes}")
    if frames < 2 or size < 16 or train_per_class < 1 or val_per_class < 0:
        raise UserError("need frames >= 2, size >= 16, train_per_class >= 1 and val_per_class >= 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = {"train": train_per_class, "val": val_per_class}
    motions = list(CLASSES[:num_classes]) + ([BACKGROUND] if background else [])
    job_labels = list(range(num_classes)) + ([-1] if background else [])  # -1: the background
    jobs = [
        (str(out), split, label, index, frames, size, seed, fps, videos, background)
        for split, per_class in splits.items()
        for label in job_labels
        for index in range(per_class)
    ]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_write_sample, jobs, chunksize=8))
    else:
        for job in jobs:
            _write_sample(job)

    for split, per_class in splits.items():
        ann, vids = [], []
        for label, motion in enumerate(motions):
            for index in range(per_class):
                name = f"{split}/{motion.name}_{index:04d}"
                ann.append(f"{name} {label} 0 {frames} 0 {frames} {fps:g}\n")
                vids.append(f"{name}.mp4 {label}\n")
        _write_lines(out / f"{split}.txt", ann)
        if videos:
            _write_lines(out / f"videos_{split}.txt", vids)
    _write_lines(out / "label_map.txt", [f"{m.name}\n" for m in motions])
    return out


# ------------------------------------------------------------------- held-out classes (transfer)
# Classes the quick start's six never show: a model trained on those is fine-tuned to these. The four
# diagonal motions are new classes made of what the six teach (each moves two of left / right / up / down
# at once), so a backbone that learned those has the features to tell them apart from a few clips: the
# case fine-tuning is for. (The rotations, the other classes it never shows, need a feature the six do
# not teach: fine-tuned to them from 10 or 30 clips, even the full quick start's backbone stayed at
# chance in every mode; see the README's "Fine-tuning on a CPU".)
HELD_OUT = ("moving_up_left", "moving_down_right", "moving_down_left", "moving_up_right")
ROTATIONS = ("rotating_clockwise", "rotating_counterclockwise")


def make_held_out_dataset(
    out_dir: str | Path,
    class_names: tuple[str, ...] = HELD_OUT,
    train_per_class: int = 10,
    val_per_class: int = 50,
    frames: int = 16,
    size: int = 80,
    seed: int = 0,
    fps: float = 30.0,
    select_per_class: int = 0,
) -> Path:
    """A small dataset of the named classes of :data:`CLASSES`, relabelled ``0 .. k-1``, in the same layout
    as `make_synthetic_dataset` (its clips are drawn apart from that dataset's): the transfer task of the
    fine-tuning benchmark and ``quickstart.py --finetune``.

    `select_per_class` > 0 also writes ``select.txt``: other clips, for choosing the best epoch while
    training, so that ``val.txt`` stays a held-out test set that chose nothing."""
    by_name = {m.name: (i, m) for i, m in enumerate(CLASSES)}
    unknown = [n for n in class_names if n not in by_name]
    if unknown or len(class_names) < 2:
        raise UserError(
            f"held-out classes must be 2 or more of {[m.name for m in CLASSES]}, got {class_names}"
        )
    out = Path(out_dir)
    splits = [("train", train_per_class, 2), ("val", val_per_class, 3)]
    if select_per_class > 0:
        splits.append(("select", select_per_class, 4))
    for split, per_class, stream in splits:
        lines = []
        for label, name in enumerate(class_names):
            table_id, motion = by_name[name]
            for index in range(per_class):
                rng = np.random.default_rng([seed, stream, table_id, index])
                rel = f"{split}/{name}_{index:04d}"
                frame_dir = out / "rawframes" / rel
                frame_dir.mkdir(parents=True, exist_ok=True)
                for i, frame in enumerate(render_clip(motion, frames, size, rng), start=1):
                    cv2.imwrite(str(frame_dir / f"{i:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
                lines.append(f"{rel} {label} 0 {frames} 0 {frames} {fps:g}\n")
        _write_lines(out / f"{split}.txt", lines)
    _write_lines(out / "label_map.txt", [f"{name}\n" for name in class_names])
    return out
