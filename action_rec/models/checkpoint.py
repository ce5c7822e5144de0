"""Checkpoint files: the one place that reads them and says what model a file holds.

Training resume, fine-tuning (``--load-weights``), evaluation and export all come here. A file is read
once (``torch.load(..., weights_only=True)``) into a :class:`Checkpoint`: the state dict already in our
layout (:mod:`.weights`), the template and class names a training checkpoint of ours stores (a bare
published snapshot has neither), the head's class count, and the whole dict for what only training
reads (optimizer, scheduler, generator states).

Which template builds the model: the one the user gave (``--template``, else the work dir's
template.yaml), except its ``model``, ``input`` and ``loss`` sections, which a checkpoint of ours
decides: they are what its weights were trained with (the work dir's file may have been edited since).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from action_rec.templates import Template, apply_overrides

from .action_model import ActionRecognizer, build_model
from .weights import (
    CheckpointError,
    CheckpointMismatchError,
    LoadReport,
    _listing,
    head_class_count,
    load_state_into,
    remap_state_dict,
)

__all__ = [
    "MODEL_SECTIONS",
    "Checkpoint",
    "TrainedModel",
    "build_loaded_model",
    "differing_settings",
    "load_trained_model",
    "load_weights",
    "model_template",
    "read_checkpoint",
]

# The template sections a checkpoint's weights were trained with and that decide how to run them.
MODEL_SECTIONS = ("model", "input", "loss")
_MAX_LISTED = 4


@dataclass(frozen=True)
class Checkpoint:
    """What one checkpoint file holds, read once.

    ``state_dict`` is in our layout (``remap_state_dict``); ``template`` and ``class_names`` are None
    for a bare snapshot; ``head_classes`` is None when the file has no single head; ``raw`` is the
    dict as stored (training's resume reads its optimizer, scheduler and generator states).
    """

    source: str
    state_dict: dict[str, torch.Tensor]
    template: dict[str, Any] | None
    class_names: list[str] | None
    head_classes: int | None
    raw: Mapping[str, Any]


def read_checkpoint(checkpoint: str | Path | Mapping[str, Any] | Checkpoint) -> Checkpoint:
    """Read a checkpoint file (or take an already loaded dict or bare state dict) with
    ``torch.load(..., map_location="cpu", weights_only=True)``; a Checkpoint is returned as it is.

    Raises CheckpointError, naming the file, when it is missing, unreadable or holds no state dict.
    """
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if isinstance(checkpoint, Mapping):
        source, obj = "<state_dict>", checkpoint
    else:
        source = str(checkpoint)
        path = Path(checkpoint)
        if not path.is_file():
            raise CheckpointError(f"{source}: no such checkpoint file")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any failure to unpickle means: not a checkpoint we can use
            raise CheckpointError(f"{source}: not a readable PyTorch checkpoint ({_reason(exc)})") from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: checkpoint holds a {type(obj).__name__}, not a dict of tensors")
    state = obj.get("state_dict", obj)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: 'state_dict' is a {type(state).__name__}, not a dict of tensors")
    not_tensors = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not state or not_tensors:
        listed = _listing(not_tensors)
        raise CheckpointError(
            f"{source}: no state dict found (expected a 'state_dict' entry or a dict of tensors"
            + (f"; not tensors: {listed})" if not_tensors else ")")
        )
    state = remap_state_dict(state)
    template = obj.get("template") if state is not obj else None
    names = obj.get("class_names") if state is not obj else None
    return Checkpoint(
        source=source,
        state_dict=state,
        template=dict(template) if isinstance(template, Mapping) else None,
        class_names=[str(n) for n in names] if names else None,
        head_classes=head_class_count(state),
        raw=obj,
    )


def load_weights(
    model: nn.Module,
    checkpoint: str | Path | Mapping[str, Any] | Checkpoint,
    *,
    log: Callable[[str], Any] | None = print,
) -> LoadReport:
    """Load a checkpoint's weights into ``model`` (an ``ActionRecognizer``, possibly DDP-wrapped) by the
    rules of :func:`.weights.load_state_into`: backbone strict, head only when it fits."""
    ckpt = read_checkpoint(checkpoint)
    return load_state_into(model, ckpt.state_dict, ckpt.source, log=log)


def differing_settings(template: Template, stored: Template | Mapping[str, Any] | None) -> list[str]:
    """``section.key`` of every model, input or loss setting in which two templates differ, with both
    values (``input.clip_len 8, not 16``: stored first). ``stored`` may be a checkpoint's raw dict."""
    theirs_all = stored.to_dict() if isinstance(stored, Template) else dict(stored or {})
    out = []
    for section in MODEL_SECTIONS:
        ours, theirs = getattr(template, section).to_dict(), theirs_all.get(section, {})
        for key in sorted(set(ours) | set(theirs), key=str):
            if ours.get(key) != theirs.get(key):
                out.append(f"{section}.{key} {theirs.get(key)!r}, not {ours.get(key)!r}")
    return out


def model_template(
    template: Template,
    checkpoint: Checkpoint,
    log: Callable[[str], Any] | None = print,
    overrides: Sequence[str] = (),
) -> Template:
    """The template to run ``checkpoint`` with: ``template`` with the checkpoint's own model, input and
    loss sections when it stores a template (one log line says which settings that changed), then the
    user's ``--set`` ``overrides`` (asked for explicitly, so they win). A stored template that no
    longer validates raises TemplateError naming the checkpoint file."""
    if checkpoint.template is None:
        return apply_overrides(template, list(overrides)) if overrides else template
    stored = Template.from_dict(checkpoint.template, f"{checkpoint.source} (its stored template)")
    changed = differing_settings(template, stored)
    if changed and log is not None:
        shown = "; ".join(changed[:_MAX_LISTED]) + (
            f"; +{len(changed) - _MAX_LISTED} more" if len(changed) > _MAX_LISTED else ""
        )
        log(f"{checkpoint.source}: using the model/input/loss settings it was trained with ({shown})")
    template = dataclasses.replace(template, **{s: getattr(stored, s) for s in MODEL_SECTIONS})
    return apply_overrides(template, list(overrides)) if overrides else template


def build_loaded_model(
    template: Template,
    checkpoint: Checkpoint,
    num_classes: int,
    log: Callable[[str], Any] | None = print,
) -> tuple[ActionRecognizer, LoadReport]:
    """A model built from ``template`` for ``num_classes`` with ``checkpoint``'s weights, in eval mode."""
    model = build_model(template, num_classes=num_classes)
    report = load_state_into(model, checkpoint.state_dict, checkpoint.source, log=log)
    return model.eval(), report


class TrainedModel(NamedTuple):
    """``load_trained_model``'s answer."""

    model: ActionRecognizer
    template: Template
    class_names: list[str]
    head_loaded: bool


def load_trained_model(
    template: Template,
    checkpoint: str | Path | Checkpoint,
    class_names: list[str] | None,
    log: Callable[[str], Any] = print,
    overrides: Sequence[str] = (),
) -> TrainedModel:
    """The model a checkpoint holds, ready to run: ours (its template's model settings, its class
    names unless ``class_names`` are given) or a bare published snapshot (``template``'s settings,
    classes named ``class_0 ..`` after its head, or after ``model.num_classes`` when it has none)."""
    ckpt = read_checkpoint(checkpoint)
    template = model_template(template, ckpt, log, overrides)
    head_classes = ckpt.head_classes
    if class_names and head_classes is not None and len(class_names) != head_classes:
        raise CheckpointMismatchError(
            f"{len(class_names)} class names given, but the checkpoint's head has {head_classes} classes"
        )
    names = list(class_names) if class_names else ckpt.class_names
    num_classes = len(names) if names else head_classes or template.model.num_classes
    if names is None:
        names = [f"class_{i}" for i in range(num_classes)]
        log(
            f"no class names in the checkpoint: naming them class_0 .. class_{num_classes - 1} (give --class-names)"
        )
    model, report = build_loaded_model(template, ckpt, num_classes, log)
    if not report.head_loaded:
        log(
            "WARNING: the classifier head was not in the checkpoint and is untrained: the exported model's "
            "class scores mean nothing until it is fine-tuned (fine for a speed test)"
        )
    return TrainedModel(model, template, names, report.head_loaded)


def _reason(exc: Exception) -> str:
    """One line from a ``torch.load`` failure; the safe unpickler's own verdict when there is one."""
    text = str(exc).strip()
    marker = "WeightsUnpickler error:"
    if marker in text:
        return "refused by the weights-only loader: " + text.split(marker, 1)[1].strip().splitlines()[0]
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
