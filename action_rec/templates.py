"""Model templates: one readable YAML file per model, validated on load.

A template says everything a work dir needs: which network to build, the clip it eats, how to augment
and train it, and what the original published. Validation is strict so that a typo in a key fails
at once, naming the file and the key, instead of silently falling back to a default hours later.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from action_rec.errors import UserError

__all__ = ["TemplateError", "load_template", "apply_overrides", "SCHEMA", "ADDED_KEYS"]


class TemplateError(UserError):
    """A template that cannot be used; the message is one line naming the file and the key."""


_NUM = (int, float)
_OPT_NUM = (int, float, type(None))

# The template's shape: a nested dict of key -> type (or a nested schema). Every key is required,
# no other key is allowed. Types are tuples for isinstance(); `list` entries say the element type.
SCHEMA: dict[str, Any] = {
    "name": str,
    "description": str,
    "published": {
        "gflops": _NUM,
        "params_m": _NUM,
        "ucf101_top1": _NUM,
        "activitynet_v1_3_top1": _NUM,
        "jester27_top1": _NUM,
        "msasl1000_top1": _NUM,
    },
    "snapshot": {"url": str, "sha256": str},
    "model": {
        "architecture": ("s3d-mobilenet-v3-large", "x3d-mobilenet-v3-large-lgd-gc"),
        "head": ("angular", "linear"),
        "embedding_dim": int,
        "num_classes": int,
        "dropout": _NUM,
    },
    "input": {
        "clip_len": int,
        "frame_interval": int,
        "target_fps": _OPT_NUM,
        "size": int,
        "resize_short": int,
        "mean": [_NUM, 3],
        "std": [_NUM, 3],
    },
    "data": {
        "frame_pattern": str,
        "horizontal_flip": bool,
        "rotation_deg": _NUM,
        "crop": ("multi_scale", "random_resized"),
        "colour": {"none": _NUM, "photometric": _NUM, "crossnorm": _NUM},
    },
    "training": {
        "batch_size": int,
        "base_learning_rate": _NUM,
        "epochs": int,
        "optimizer": ("sgd", "adamw"),
        "momentum": _NUM,
        "weight_decay": _NUM,
        "head_only_epochs": int,
        "head_lr_multiplier": _NUM,
        "warmup_epochs": int,
        "lr_schedule": ("step", "cosine"),
        "lr_steps": [int, None],
        "grad_clip": {"type": ("norm", "agc", "none"), "value": _NUM},
        "sample_filtering": bool,
        "trainable": str,
        "bn_statistics": ("auto", "update", "keep"),
        "class_balance": ("none", "sampler", "loss"),
        "cache_features": bool,
        "cache_views": int,
        "workers": int,
    },
    "loss": {
        "type": ("am_softmax", "cross_entropy"),
        "margin": _NUM,
        "scale_start": _NUM,
        "scale_end": _NUM,
        "scale_epochs": int,
        "scale_power": _NUM,
        "entropy_weight": _NUM,
        "center_push_weight": _NUM,
        "center_push_margin": _NUM,
        "local_push_weight": _NUM,
    },
}

# Keys added after templates, work dirs and checkpoints were first written, with the value they take
# when a file has none: older files keep loading. Every other key is required.
ADDED_KEYS: dict[str, Any] = {"training.bn_statistics": "auto"}

# Values that must be positive: a zero clip length or batch size is always a mistake.
_POSITIVE = {
    "model.embedding_dim",
    "model.num_classes",
    "input.clip_len",
    "input.frame_interval",
    "input.size",
    "input.resize_short",
    "training.batch_size",
    "training.epochs",
    "training.cache_views",
    "loss.scale_end",
}


def _type_name(expected: Any) -> str:
    if isinstance(expected, tuple) and all(isinstance(e, str) for e in expected):
        return "one of " + ", ".join(expected)
    if isinstance(expected, list):
        kind = _type_name(expected[0])
        return f"a list of {expected[1]} {kind}s" if expected[1] else f"a list of {kind}s"
    if isinstance(expected, dict):
        return "a mapping"
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {int: "integer", float: "number", str: "string", bool: "true/false", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types if not (t is int and float in types))


def _check_value(value: Any, expected: Any) -> bool:
    if isinstance(expected, tuple) and all(isinstance(e, str) for e in expected):
        return value in expected
    if isinstance(expected, list):
        elem, length = expected
        return (
            isinstance(value, list)
            and (length is None or len(value) == length)
            and all(_check_value(v, elem) for v in value)
        )
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in types:
        return False  # YAML `yes` is not a number
    return isinstance(value, types)


def _validate(node: Any, schema: dict[str, Any], where: str, prefix: str = "") -> None:
    if not isinstance(node, Mapping):
        raise TemplateError(f"{where}: '{prefix.rstrip('.') or '<top level>'}' must be a mapping")
    for key in node:
        if key not in schema:
            raise TemplateError(f"{where}: unknown key '{prefix}{key}'")
    for key, expected in schema.items():
        path = prefix + key
        if key not in node:
            raise TemplateError(f"{where}: missing key '{path}'")
        value = node[key]
        if isinstance(expected, dict):
            _validate(value, expected, where, path + ".")
        elif not _check_value(value, expected):
            raise TemplateError(f"{where}: key '{path}' must be {_type_name(expected)}, got {value!r}")
        elif path in _POSITIVE and value <= 0:
            raise TemplateError(f"{where}: key '{path}' must be positive, got {value!r}")


def _check_consistency(template: dict[str, Any], where: str) -> None:
    colour = template["data"]["colour"]
    if any(p < 0 for p in colour.values()) or abs(sum(colour.values()) - 1.0) > 1e-6:
        raise TemplateError(f"{where}: key 'data.colour' must hold probabilities that sum to 1, got {colour}")
    if template["input"]["size"] > template["input"]["resize_short"]:
        raise TemplateError(f"{where}: key 'input.size' must not exceed 'input.resize_short'")
    trainable = template["training"]["trainable"]
    if not re.fullmatch(r"all|head|blocks:([1-9]|1[0-5])", trainable):
        raise TemplateError(
            f"{where}: key 'training.trainable' must be all, head or blocks:N with N in 1..15, got {trainable!r}"
        )
    try:
        template["data"]["frame_pattern"].format(1)
    except (IndexError, KeyError, ValueError) as exc:
        raise TemplateError(
            f"{where}: key 'data.frame_pattern' is not a format string for a frame number: {exc}"
        ) from None


def _add_missing_keys(template: Any) -> None:
    for path, value in ADDED_KEYS.items():
        *sections, key = path.split(".")
        node = template
        for section in sections:
            node = node.get(section) if isinstance(node, Mapping) else None
        if isinstance(node, dict):
            node.setdefault(key, value)


def validate_template(template: Any, where: str = "<template>") -> dict[str, Any]:
    """Check a loaded template against SCHEMA, after giving it the ADDED_KEYS it lacks; returns it or
    raises TemplateError."""
    _add_missing_keys(template)
    _validate(template, SCHEMA, where)
    _check_consistency(template, where)
    return template


def load_template(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Load and validate a template from a YAML path (or validate an already loaded mapping).

    Returns a fresh nested dict shaped exactly like template.yaml; the caller may modify it.
    """
    if isinstance(source, Mapping):
        template = copy.deepcopy(dict(source))
        return validate_template(template, str(template.get("name", "<template>")))
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read template: {exc.strerror or exc}") from None
    try:
        template = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TemplateError(f"{path}{line}: not valid YAML: {problem}") from None
    return validate_template(template, str(path))


def _parse_scalar(text: str) -> Any:
    return yaml.safe_load(text) if text.strip() else ""


def apply_overrides(template: dict[str, Any], overrides: list[str], where: str = "--set") -> dict[str, Any]:
    """Apply `section.key=value` overrides (values parsed as YAML) and re-validate.

    This is how any template value is changed from the command line without editing the file, e.g.
    `--set input.clip_len=8 training.lr_schedule=cosine data.colour={none: 1, photometric: 0, crossnorm: 0}`.
    """
    result = copy.deepcopy(template)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise TemplateError(f"{where}: '{item}' is not of the form section.key=value")
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise TemplateError(f"{where}: unknown key '{key}'")
            node = node[part]
        if parts[-1] not in node:
            raise TemplateError(f"{where}: unknown key '{key}'")
        try:
            node[parts[-1]] = _parse_scalar(value)
        except yaml.YAMLError:
            raise TemplateError(f"{where}: value of '{key}' is not valid YAML: {value!r}") from None
    return validate_template(result, where)
