"""A tiny action model trained here in seconds on a synthetic video and exported to IR: the shared
fixture of the recognizer, deployment and benchmark tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from action_rec.data.synthetic import CLASSES, make_synthetic_dataset
from action_rec.data.transforms import preprocess_clip
from action_rec.export.pipeline import ExportOptions, export_module
from action_rec.inference.synthetic_video import make_synthetic_video
from action_rec.templates import Template, apply_overrides, load_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "model_templates" / "custom-action-recognition" / "s3d-rgb-mobilenet-v3" / "template.yaml"


def tiny_template(**input_overrides) -> Template:
    settings = {"clip_len": 8, "size": 32, "resize_short": 40, **input_overrides}
    return apply_overrides(
        load_template(TEMPLATE), [f"input.{k}={v}" for k, v in settings.items()] + ["model.head=linear"]
    )


class TinyMotionNet(nn.Module):
    """Small enough to learn the windows of a short video in seconds; flattening keeps position and
    time, so the order of the frames matters to it."""

    def __init__(self, num_classes: int, clip_len: int = 8, size: int = 32) -> None:
        super().__init__()
        flat = 16 * ((clip_len + 1) // 2) * ((size + 3) // 4) ** 2
        self.net = nn.Sequential(
            nn.Conv3d(3, 8, 3, (1, 2, 2), 1), nn.BatchNorm3d(8), nn.ReLU(),
            nn.Conv3d(8, 16, 3, 2, 1), nn.BatchNorm3d(16), nn.ReLU(),
            nn.Flatten(), nn.Linear(flat, num_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.softmax(scores, dim=1)


def decode(path: Path) -> list[np.ndarray]:
    cap, frames = cv2.VideoCapture(str(path)), []
    while (frame := cap.read()[1]) is not None:
        frames.append(frame)
    cap.release()
    return frames


def train_tiny_model(work: Path, int8: bool = False) -> dict:
    """A synthetic video (left, then the same frames backwards, i.e. right; clockwise; left again), a
    model trained on every window of it that lies inside one segment, exported to IR. The first two
    segments hold the same frames, so only a window in the right time order gets them right.

    `int8` also exports model_int8.xml, calibrated on a few synthetic clips of the same classes.
    Returns {"video", "truth", "xml", "work", "model", "template", "class_names"}."""
    torch.manual_seed(0)
    labels = [0, 1, 2, 0]
    video = work / "synthetic.mp4"
    truth = make_synthetic_video(video, labels, frames_per_segment=40, size=48, seed=3, reversed_pairs=True)
    template = tiny_template()
    span = template.input.clip_len * template.input.frame_interval
    frames = [f[..., ::-1] for f in decode(video)]
    clips, targets = [], []
    for seg in truth:
        for start in range(seg["start"], seg["end"] - span + 1):
            clips.append(
                preprocess_clip(frames[start : start + span : template.input.frame_interval], template)
            )
            targets.append(seg["label"])
    x, y = torch.stack(clips), torch.tensor(targets)
    model = TinyMotionNet(3)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    for step in range(400):
        model.train()
        batch = torch.randint(0, len(x), (32,))
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 20 == 19:
            with torch.no_grad():
                if (model.eval()(x).argmax(1) == y).all():
                    break
    model.eval()
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() == 1.0, "the tiny model did not learn its windows"
    names = [c.name for c in CLASSES[:3]]
    options = ExportOptions(progress=False)
    if int8:
        calibration = make_synthetic_dataset(
            work / "calibration", num_classes=3, train_per_class=1, val_per_class=2, frames=32, size=48
        )
        options = ExportOptions(
            int8=True,
            calib_ann_files=["val.txt"],
            calib_data_roots=[str(calibration)],
            calib_clips=6,
            workers=0,
            progress=False,
        )
    export_module(model, template, names, work / "export", options, log=lambda *_: None)
    return {
        "video": video,
        "truth": truth,
        "xml": work / "export" / "model.xml",
        "work": work,
        "model": model,
        "template": template,
        "class_names": names,
    }
