"""Does the IR compute what the PyTorch model computes? Same clips in, class probabilities compared.

Both sides get the same pixels: a clip is held as cropped uint8 RGB frames (or, for dataset clips, the
normalized tensor the data pipeline made), converted once to the PyTorch input and once to the IR's
input format. The comparison is on probabilities (what a user sees), using the model's own
`probabilities()` on the PyTorch side and the metadata's scale on the IR side, so a wrong scale in the
metadata fails verification too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import openvino as ov
import torch
from torch import nn

from action_rec.errors import UserError
from action_rec.runtime.frames import clip_to_frames, dataset_clip_to_input, frames_to_input
from action_rec.runtime.model import clip_probabilities

__all__ = [
    "VerificationError",
    "random_clip",
    "moving_pattern_clip",
    "torch_probabilities",
    "ir_probabilities",
    "compare_on_clips",
    "AccuracyReport",
    "evaluate_accuracy",
]


class VerificationError(UserError):
    """The exported IR's outputs differ from PyTorch's by more than the tolerance."""


def random_clip(clip_len: int, size: int, seed: int = 0) -> np.ndarray:
    """Uniform noise frames, `T x H x W x 3` uint8 RGB: exercises every input value."""
    return np.random.default_rng(seed).integers(0, 256, (clip_len, size, size, 3), dtype=np.uint8)


def moving_pattern_clip(clip_len: int, size: int, seed: int = 0) -> np.ndarray:
    """A natural-looking stand-in for a real clip when no data is given: smooth colour gradients
    with a bright disc moving across, `T x H x W x 3` uint8 RGB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    base = np.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.5 + 0.3 * (1 - xx)], axis=-1)
    start, velocity = rng.uniform(0.2, 0.8, 2), rng.uniform(-0.4, 0.4, 2) / max(clip_len, 1)
    frames = np.empty((clip_len, size, size, 3), np.uint8)
    for t in range(clip_len):
        cy, cx = start + velocity * t
        disc = (((yy - cy) ** 2 + (xx - cx) ** 2) < 0.02)[..., None]
        frames[t] = np.clip(np.where(disc, 0.95, base) * 255 + rng.normal(0, 3, base.shape), 0, 255)
    return frames


def _normalized(frames: np.ndarray, meta_input: dict[str, Any]) -> torch.Tensor:
    return torch.from_numpy(frames_to_input(frames, {**meta_input, "format": "normalized"}))


@torch.no_grad()
def torch_probabilities(model: nn.Module, frames: np.ndarray, meta_input: dict[str, Any]) -> np.ndarray:
    """PyTorch class probabilities `1 x C` for uint8 RGB frames `T x H x W x 3`."""
    return model.probabilities(model(_normalized(frames, meta_input))).numpy()


def ir_probabilities(compiled: ov.CompiledModel, frames: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """IR class probabilities `1 x C` for uint8 RGB frames, fed in the IR's input format."""
    return clip_probabilities(compiled, frames_to_input(frames, meta["input"]), meta)


def compare_on_clips(
    model: nn.Module, compiled: ov.CompiledModel, clips: dict[str, np.ndarray], meta: dict[str, Any]
) -> dict[str, float]:
    """Largest absolute difference of the class probabilities, PyTorch vs IR, per named clip."""
    return {
        name: float(
            np.abs(
                torch_probabilities(model, frames, meta["input"]) - ir_probabilities(compiled, frames, meta)
            ).max()
        )
        for name, frames in clips.items()
    }


@dataclass
class AccuracyReport:
    """Top-1 accuracy (%) per variant on the same clips, and each IR's largest probability
    difference from PyTorch."""

    clips: int = 0
    correct: dict[str, int] = field(default_factory=dict)
    max_prob_diff: dict[str, float] = field(default_factory=dict)
    # Per clip and variant: the top class probability and whether the top class was right (to calibrate
    # the "no action" threshold on what the deployed model scores).
    top_probability: dict[str, list[float]] = field(default_factory=dict)
    hits: dict[str, list[bool]] = field(default_factory=dict)

    def top1(self, name: str) -> float:
        return 100.0 * self.correct.get(name, 0) / max(self.clips, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "clips": self.clips,
            "top1": {name: round(self.top1(name), 4) for name in self.correct},
            "max_prob_diff_vs_pytorch": {k: float(f"{v:.3g}") for k, v in self.max_prob_diff.items()},
        }


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module,
    variants: dict[str, tuple[ov.CompiledModel, dict[str, Any]]],
    samples: Iterable[tuple[torch.Tensor, int]],
    progress: Callable[[Iterable], Iterable] = iter,
) -> AccuracyReport:
    """Top-1 of PyTorch and each IR variant (name -> (compiled, metadata)) on normalized dataset clips.

    Each clip is read once and run through every variant (`clip_probabilities`, as eval.py runs an IR).
    For the uint8 `bgr8` format the clip is rounded to whole pixel values first and PyTorch and every
    variant see the same rounded clip.
    """
    report = AccuracyReport(correct={"pytorch": 0, **{name: 0 for name in variants}})
    report.max_prob_diff = {name: 0.0 for name in variants}
    any_uint8 = any(meta["input"]["format"] == "bgr8" for _, meta in variants.values())
    for clip, label in progress(samples):
        clip = clip[0] if clip.dim() == 5 else clip
        label = int(label)
        ref_input = clip[None].float()
        if any_uint8:
            meta_in = next(iter(variants.values()))[1]["input"]
            ref_input = _normalized(clip_to_frames(clip, meta_in["mean"], meta_in["std"]), meta_in)
        ref = model.probabilities(model(ref_input)).numpy()
        report.clips += 1
        report.correct["pytorch"] += int(ref.argmax() == label)
        for name, (compiled, meta) in variants.items():
            probs = clip_probabilities(compiled, dataset_clip_to_input(ref_input, meta["input"]), meta)
            report.correct[name] += int(probs.argmax() == label)
            report.top_probability.setdefault(name, []).append(float(probs.max()))
            report.hits.setdefault(name, []).append(bool(probs.argmax() == label))
            report.max_prob_diff[name] = max(report.max_prob_diff[name], float(np.abs(probs - ref).max()))
    return report
