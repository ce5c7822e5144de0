"""A checkpoint file -> the model it holds, ready to run: one place for export, the demo and benches.

A training checkpoint of ours carries the template it was trained with (its model, input and loss
settings win over the work dir's, which may have been edited since) and its class names; a bare
published snapshot is read with the given template and has no class names.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from action_rec.models.weights import CheckpointMismatchError

__all__ = ["load_trained_model"]


def _class_count_in(state_dict: dict[str, torch.Tensor]) -> int | None:
    """The class count of the single head in a (remapped) state dict, if there is exactly one."""
    counts = {
        int(v.shape[-1] if k.endswith("fc_angular.weight") else v.shape[0])
        for k, v in state_dict.items()
        if k.endswith(("fc_angular.weight", "cls_head.fc.weight"))
    }
    return counts.pop() if len(counts) == 1 else None


def load_trained_model(
    template: dict[str, Any], checkpoint: str | Path, class_names: list[str] | None, log: Callable[[str], Any]
) -> tuple[torch.nn.Module, dict[str, Any], list[str], bool]:
    """Build and load the model a checkpoint holds: ours (with its template and class names) or a bare
    published snapshot. Returns (model, template used, class names, head_loaded)."""
    from action_rec.models import build_model, load_weights, read_state_dict, remap_state_dict
    from action_rec.templates import load_template

    state, _ = read_state_dict(checkpoint)
    obj = (
        torch.load(checkpoint, map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, dict)
        else checkpoint
    )
    stored_template = obj.get("template") if isinstance(obj, dict) else None
    if isinstance(stored_template, dict):
        stored = load_template(stored_template)
        if stored["model"] != template["model"] or stored["input"] != template["input"]:
            log(f"{checkpoint}: using the model and input settings the checkpoint was trained with")
        template = copy.deepcopy(template)
        template["model"], template["input"], template["loss"] = (
            stored["model"],
            stored["input"],
            stored["loss"],
        )
    stored_names = obj.get("class_names") if isinstance(obj, dict) else None
    head_classes = _class_count_in(remap_state_dict(state))
    names = list(class_names) if class_names else (list(stored_names) if stored_names else None)
    if class_names and head_classes is not None and len(class_names) != head_classes:
        raise CheckpointMismatchError(
            f"{len(class_names)} class names given, but the checkpoint's head has {head_classes} classes"
        )
    num_classes = len(names) if names else head_classes or template["model"]["num_classes"]
    if names is None:
        names = [f"class_{i}" for i in range(num_classes)]
        log(
            f"no class names in the checkpoint: naming them class_0 .. class_{num_classes - 1} (give --class-names)"
        )
    model = build_model(template, num_classes=num_classes)
    report = load_weights(model, checkpoint, log=log)
    if not report.head_loaded:
        log(
            "WARNING: the classifier head was not in the checkpoint and is untrained: the exported model's "
            "class scores mean nothing until it is fine-tuned (fine for a speed test)"
        )
    return model.eval(), template, names, report.head_loaded
