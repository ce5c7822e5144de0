"""The state-dict layout: the one place that knows the original's key names and fits a state dict
to an ``ActionRecognizer`` (files are read by :mod:`.checkpoint`).

Our models keep the original's index-named layout (``backbone.features.<i>.conv.<j>.*``,
``cls_head.fc_angular.weight``), so our checkpoints and the published mmcv snapshots differ only by
what ``remap_state_dict`` undoes: DDP's ``module.`` prefix and the original's indexed heads
(``cls_head.<i>.*``; one per dataset in a multi-dataset snapshot).

Rules: the backbone must match exactly (names and shapes), or ``CheckpointMismatchError`` lists what
differs. The head is loaded only when the checkpoint holds exactly one head of the same layout and
class count; otherwise the model's head is re-initialised and the report says so in one line
(fine-tuning from a Kinetics-700 snapshot is the usual case). ``reg_mask`` is never read; it is
rebuilt from the model's class count.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from action_rec.errors import UserError

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "LoadReport",
    "head_class_count",
    "load_state_into",
    "remap_state_dict",
]

_MAX_LISTED = 8
_INDEXED_HEAD = re.compile(r"^cls_head\.(\d+)\.(.+)$")


class CheckpointError(UserError):
    """A file or object that is not a usable checkpoint; the message names the source."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's backbone does not fit the model; the message lists missing, unexpected and
    mis-shaped keys."""


@dataclass
class LoadReport:
    """What ``load_state_into`` (and so ``load_weights``) did.

    ``head_loaded`` is False when the head was (re-)initialised instead of loaded: callers that
    evaluate rather than fine-tune should treat that as an error. ``message`` is the one-line summary
    that was logged.
    """

    source: str
    loaded: int
    head_loaded: bool
    message: str


def remap_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The one renaming function: original / DDP names -> this package's names.

    Strips ``module.`` prefixes; a single indexed head ``cls_head.0.*`` becomes ``cls_head.*``.
    Several indexed heads (``cls_head.0.*``, ``cls_head.1.*``: a multi-dataset snapshot) keep their
    indices, so the loader can see there is no single head to take.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        while key.startswith("module."):
            key = key[len("module.") :]
        out[key] = value
    head_ids = {m.group(1) for k in out if (m := _INDEXED_HEAD.match(k))}
    plain_head = any(k.startswith("cls_head.") and not _INDEXED_HEAD.match(k) for k in out)
    if len(head_ids) == 1 and not plain_head:
        out = {(f"cls_head.{m.group(2)}" if (m := _INDEXED_HEAD.match(k)) else k): v for k, v in out.items()}
    return out


def head_class_count(state: Mapping[str, torch.Tensor]) -> int | None:
    """The class count of the single head of a state dict in our layout; None when it has no head,
    several (a multi-dataset snapshot) or one of an unknown layout."""
    heads = _group_heads(state)
    if len(heads) != 1:
        return None
    (head,) = heads.values()
    count = _head_classes(head)
    return int(count) if isinstance(count, int) else None


def load_state_into(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    *,
    log: Callable[[str], Any] | None = print,
) -> LoadReport:
    """Load a state dict in this package's layout (``remap_state_dict``'s output) into ``model`` (an
    ``ActionRecognizer``, possibly DDP-wrapped); ``source`` names it in messages.

    Backbone strict; head loaded only if it matches, else re-initialised with a one-line message;
    ``reg_mask`` rebuilt. Raises ``CheckpointMismatchError`` when the backbone keys differ. Files are
    read by :mod:`.checkpoint` (``load_weights``), not here.
    """
    model = getattr(model, "module", model)

    backbone_state = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    heads = _group_heads(state)
    other = [k for k in state if not k.startswith(("backbone.", "cls_head."))]
    _check_backbone(model.backbone, backbone_state, other, source)
    model.backbone.load_state_dict(backbone_state, strict=True)

    head = model.cls_head
    num_classes = head.num_classes
    own = {k: v for k, v in head.state_dict().items() if not k.endswith("reg_mask")}
    head_loaded = False
    if len(heads) == 1:
        (theirs,) = heads.values()
        theirs = {k: v for k, v in theirs.items() if not k.endswith("reg_mask")}
        fits = theirs.keys() == own.keys() and all(theirs[k].shape == own[k].shape for k in own)
        if fits:
            head.load_state_dict(theirs, strict=False)  # strict apart from reg_mask, rebuilt below
            head_loaded = True
            note = f"head loaded ({num_classes} classes)"
        elif theirs.keys() == own.keys() and _head_classes(theirs) != num_classes:
            note = (
                f"fine-tuning: head re-initialised for {num_classes} classes "
                f"(checkpoint head has {_head_classes(theirs)})"
            )
        elif theirs.keys() == own.keys():
            differ = sorted(
                f"{k} {tuple(theirs[k].shape)} vs {tuple(own[k].shape)}"
                for k in own
                if theirs[k].shape != own[k].shape
            )
            note = (
                f"head re-initialised for {num_classes} classes "
                f"(checkpoint head shapes differ: {_listing(differ)})"
            )
        else:
            note = (
                f"head re-initialised for {num_classes} classes "
                f"(checkpoint head has a different layout: {_listing(sorted(theirs))})"
            )
    elif heads:
        counts = ", ".join(str(_head_classes(h)) for h in heads.values())
        note = (
            f"fine-tuning: head re-initialised for {num_classes} classes "
            f"(checkpoint has {len(heads)} heads, with {counts} classes)"
        )
    else:
        note = f"head initialised for {num_classes} classes (checkpoint has no head)"
    if not head_loaded:
        head.reset_parameters()
    _rebuild_reg_mask(head)

    loaded = len(backbone_state) + (len(own) if head_loaded else 0)
    message = f"{source}: loaded backbone ({len(backbone_state)} tensors); {note}"
    if log is not None:
        log(message)
    return LoadReport(source=source, loaded=loaded, head_loaded=head_loaded, message=message)


def _group_heads(state: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """``{head_id: {key relative to the head: tensor}}``; ``""`` is the un-indexed head."""
    heads: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if not key.startswith("cls_head."):
            continue
        m = _INDEXED_HEAD.match(key)
        head_id, rest = (m.group(1), m.group(2)) if m else ("", key[len("cls_head.") :])
        heads.setdefault(head_id, {})[rest] = value
    return heads


def _head_classes(head_state: Mapping[str, torch.Tensor]) -> int | str:
    """Class count of one head's state (keys relative to the head): the angular weight is ``D x C``,
    the linear one ``C x D``; ``"?"`` for a layout we do not know."""
    if "fc_angular.weight" in head_state:
        return head_state["fc_angular.weight"].shape[-1]
    if "fc.weight" in head_state:
        return head_state["fc.weight"].shape[0]
    if "fc_angular.reg_mask" in head_state:
        return head_state["fc_angular.reg_mask"].shape[0]
    return "?"


def _rebuild_reg_mask(head: nn.Module) -> None:
    fc = getattr(head, "fc_angular", None)
    if fc is not None and hasattr(fc, "reg_mask"):
        c = fc.reg_mask.shape[0]
        with torch.no_grad():
            fc.reg_mask.copy_(torch.triu(torch.ones(c, c), diagonal=1))


def _check_backbone(
    backbone: nn.Module, theirs: Mapping[str, torch.Tensor], other: list[str], source: str
) -> None:
    own = backbone.state_dict()
    # Listed in model order (missing, mis-shaped) and checkpoint order (unexpected), as a reader expects.
    missing = [f"backbone.{k}" for k in own if k not in theirs]
    unexpected = [f"backbone.{k}" for k in theirs if k not in own] + other
    misshaped = [
        f"backbone.{k} (checkpoint {tuple(theirs[k].shape)} vs model {tuple(own[k].shape)})"
        for k in own
        if k in theirs and theirs[k].shape != own[k].shape
    ]
    if not (missing or unexpected or misshaped):
        return
    counts = ", ".join(
        f"{len(items)} {label}"
        for items, label in ((missing, "missing"), (unexpected, "unexpected"), (misshaped, "mis-shaped"))
        if items
    )
    hint = ""
    if any(k.startswith("lgd_") for k in own) != any(k.startswith("lgd_") for k in theirs):
        hint = "; one has the X3D global path (lgd_*) and the other not: wrong template?"
    lines = [f"{source}: checkpoint does not fit the model's backbone ({counts} keys){hint}"]
    for items, label in ((missing, "missing"), (unexpected, "unexpected"), (misshaped, "mis-shaped")):
        if items:
            lines.append(f"  {label}: {_listing(items)}")
    raise CheckpointMismatchError("\n".join(lines))


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")
