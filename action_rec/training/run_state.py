"""Training checkpoints: writing everything needed to continue a run exactly where it stopped.

A checkpoint is a plain dict (loadable with ``torch.load(..., weights_only=True)``)::

    state_dict   the model's weights (no DDP "module." prefix)
    optimizer    optimizer.state_dict()
    scheduler    the learning-rate schedule's settings (the rate is a function of the epoch)
    epoch        number of finished epochs: training resumes at this epoch
    iteration    number of finished optimizer steps
    rng          python / numpy / torch / cuda generator states
    template     the template the model was trained with (after --set overrides)
    class_names  list of class names, index = class id
    meta         best validation top-1 and its epoch, the validation metrics of this epoch, versions

Files are written atomically (temporary file in the same directory, then os.replace): a run killed while
saving leaves the previous checkpoint intact. They are read, like every checkpoint, by
:func:`action_rec.models.checkpoint.read_checkpoint` (``raw`` holds the entries above).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from action_rec.fileio import atomic_path
from action_rec.models.weights import CheckpointError  # one error class for unusable checkpoint files

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
    "LATEST",
    "BEST",
]

LATEST = "latest.pth"
BEST = "best.pth"


def save_checkpoint(path: str | Path, obj: dict[str, Any]) -> Path:
    """Write `obj` with torch.save to a temporary file beside `path`, then rename it over `path`."""
    path = Path(path)
    with atomic_path(path, suffix=".tmp", fsync=True) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
    return path


def capture_rng_state() -> dict[str, Any]:
    """States of python's, numpy's, torch's and (when present) CUDA's generators, weights_only-safe."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state` (CUDA states only when CUDA is available and the counts match)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
