"""Tiny checkpoints of the real architectures for the export tests (4 x 32 x 32 clips: an export takes
seconds)."""

from __future__ import annotations

from pathlib import Path

import torch

from action_rec.models import build_model
from action_rec.templates import Template, apply_overrides, load_template

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "model_templates" / "custom-action-recognition"
TINY = ["input.clip_len=4", "input.size=32", "input.resize_short=40"]
NAMES = ["wave", "clap", "jump", "sit", "stand", "run"]


def tiny_template(name: str) -> Template:
    return apply_overrides(load_template(TEMPLATES / name / "template.yaml"), TINY)


def make_checkpoint(path: Path, name: str, seed: int = 0) -> Path:
    """A checkpoint like training writes, with BatchNorm statistics gathered on random clips (a model
    fresh from initialisation has vanishing activations, which would make any comparison trivial)."""
    torch.manual_seed(seed)
    template = tiny_template(name)
    model = build_model(template, num_classes=len(NAMES))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 4, 32, 32))
    torch.save({"state_dict": model.state_dict(), "template": template.to_dict(), "class_names": NAMES}, path)
    return path


def make_checkpoints(folder: Path) -> dict[str, Path]:
    """A tiny checkpoint of each architecture in `folder`."""
    return {
        n: make_checkpoint(folder / f"{n}.pth", n)
        for n in ("s3d-rgb-mobilenet-v3", "x3d-rgb-mobilenet-v3-lgd-gc")
    }
