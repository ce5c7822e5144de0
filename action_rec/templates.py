"""Model templates: one readable YAML file per model, validated on load into a frozen :class:`Template`.

A template says everything a work dir needs: which network to build, the clip it eats, how to augment
and train it, and what the original published. Validation is strict so that a typo in a key fails
at once, naming the file and the key, instead of silently falling back to a default hours later.

The dataclasses below are the one description of a template: their fields are its keys (in file
order), their type hints its types, and a field default is the value an older file that lacks the key
(added later) takes. ``SCHEMA`` and ``ADDED_KEYS`` are derived from them. A template is built once by
:func:`load_template` and never changed: :func:`apply_overrides` returns a new one.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from action_rec.errors import UserError

__all__ = [
    "TemplateError",
    "Template",
    "Published",
    "Snapshot",
    "ModelConfig",
    "InputConfig",
    "Colour",
    "DataConfig",
    "GradClip",
    "TrainingConfig",
    "LossConfig",
    "load_template",
    "apply_overrides",
    "SCHEMA",
    "ADDED_KEYS",
]


class TemplateError(UserError):
    """A template that cannot be used; the message is one line naming the file and the key."""


class _Section:
    """What every template section can do: give itself back as the plain dict of its YAML."""

    def to_dict(self) -> dict[str, Any]:
        """The section as template.yaml holds it (lists, not tuples): YAML and ``torch.load(...,
        weights_only=True)`` read it back."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, _Section):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


# Numbers (`float` fields) keep the type the file wrote them with (`rotation_deg: 10` stays 10), so
# that a template goes to YAML and back unchanged.


@dataclass(frozen=True, kw_only=True)
class Published(_Section):
    """What the original model published: complexity and top-1 accuracy (%) per data set."""

    gflops: float
    params_m: float
    ucf101_top1: float
    activitynet_v1_3_top1: float
    jester27_top1: float
    msasl1000_top1: float


@dataclass(frozen=True, kw_only=True)
class Snapshot(_Section):
    """The pre-trained weights a work dir downloads."""

    url: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class ModelConfig(_Section):
    """The network: backbone, head and its size."""

    architecture: Literal["s3d-mobilenet-v3-large", "x3d-mobilenet-v3-large-lgd-gc"]
    head: Literal["angular", "linear"]
    embedding_dim: int
    num_classes: int
    dropout: float


@dataclass(frozen=True, kw_only=True)
class InputConfig(_Section):
    """The clip the network eats: frames, spacing, size and normalisation (RGB, 0-255 scale)."""

    clip_len: int
    frame_interval: int
    target_fps: float | None
    size: int
    resize_short: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True, kw_only=True)
class Colour(_Section):
    """Probabilities of the colour augmentations (one per clip); they sum to 1."""

    none: float
    photometric: float
    crossnorm: float


@dataclass(frozen=True, kw_only=True)
class DataConfig(_Section):
    """Frame files and training augmentation."""

    frame_pattern: str
    horizontal_flip: bool
    rotation_deg: float
    crop: Literal["multi_scale", "random_resized"]
    colour: Colour


@dataclass(frozen=True, kw_only=True)
class GradClip(_Section):
    """Gradient clipping: global L2 norm, adaptive unit-wise (AGC) or none."""

    type: Literal["norm", "agc", "none"]
    value: float


@dataclass(frozen=True, kw_only=True)
class TrainingConfig(_Section):
    """Optimisation, schedule and what is trained."""

    batch_size: int
    base_learning_rate: float
    epochs: int
    optimizer: Literal["sgd", "adamw"]
    momentum: float
    weight_decay: float
    head_only_epochs: int
    head_lr_multiplier: float
    warmup_epochs: int
    lr_schedule: Literal["step", "cosine"]
    lr_steps: tuple[int, ...]
    grad_clip: GradClip
    sample_filtering: bool
    trainable: str
    bn_statistics: Literal["auto", "update", "keep"] = "auto"  # added later: older files lack it
    class_balance: Literal["none", "sampler", "loss"]
    cache_features: bool
    cache_views: int
    workers: int


@dataclass(frozen=True, kw_only=True)
class LossConfig(_Section):
    """The classification loss and its regularisers."""

    type: Literal["am_softmax", "cross_entropy"]
    margin: float
    scale_start: float
    scale_end: float
    scale_epochs: int
    scale_power: float
    entropy_weight: float
    center_push_weight: float
    center_push_margin: float
    local_push_weight: float


@dataclass(frozen=True, kw_only=True)
class Template(_Section):
    """One validated template.yaml. Build it with :func:`load_template` (or :meth:`from_dict`); change
    it with :func:`apply_overrides` or ``dataclasses.replace``."""

    name: str
    description: str
    published: Published
    snapshot: Snapshot
    model: ModelConfig
    input: InputConfig
    data: DataConfig
    training: TrainingConfig
    loss: LossConfig

    @classmethod
    def from_dict(cls, data: Any, where: str = "<template>") -> Template:
        """Validate a template as YAML holds it (after giving it the ADDED_KEYS it lacks) and build it;
        raises TemplateError naming ``where`` and the key. ``data`` itself is not modified."""
        data = copy.deepcopy(data)
        _add_missing_keys(data)
        _validate(data, SCHEMA, where)
        _check_consistency(data, where)
        return _build(cls, data)


def _build(cls: type, node: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        value, hint = node[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint):
            value = _build(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values)


# The validation schema, derived from the dataclasses: a nested dict of key -> type (or a nested
# schema). Types are tuples for isinstance(); a tuple of strings is a choice; `[element, length]` is a
# list (length None: any). Every key is required except ADDED_KEYS; no other key is allowed.
_NUM = (int, float)
_OPT_NUM = (int, float, type(None))


def _schema_of(hint: Any) -> Any:
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return {f.name: _schema_of(hints[f.name]) for f in dataclasses.fields(hint)}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return args
    if origin is tuple:
        element = _schema_of(args[0])
        return [element, None] if args[-1] is Ellipsis else [element, len(args)]
    if origin is types.UnionType and set(args) == {float, type(None)}:
        return _OPT_NUM
    if hint is float:
        return _NUM
    if hint in (int, str, bool):
        return hint
    raise TypeError(f"no schema for template field type {hint!r}")


def _defaults_of(cls: type, prefix: str = "") -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out.update(_defaults_of(hints[f.name], f"{prefix}{f.name}."))
        elif f.default is not dataclasses.MISSING:
            out[prefix + f.name] = f.default
    return out


SCHEMA: dict[str, Any] = _schema_of(Template)

# Keys added after templates, work dirs and checkpoints were first written, with the value they take
# when a file has none (their field defaults): older files keep loading.
ADDED_KEYS: dict[str, Any] = _defaults_of(Template)

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


def load_template(source: str | Path | Mapping[str, Any] | Template) -> Template:
    """Load and validate a template from a YAML path (or validate a mapping shaped like template.yaml,
    e.g. one a checkpoint stores); a Template is returned as it is (it cannot change)."""
    if isinstance(source, Template):
        return source
    if isinstance(source, Mapping):
        return Template.from_dict(source, str(source.get("name", "<template>")))
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read template: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TemplateError(f"{path}{line}: not valid YAML: {problem}") from None
    return Template.from_dict(data, str(path))


def _parse_scalar(text: str) -> Any:
    return yaml.safe_load(text) if text.strip() else ""


def apply_overrides(template: Template, overrides: list[str], where: str = "--set") -> Template:
    """A new template with `section.key=value` overrides applied (values parsed as YAML), validated
    like a file; ``template`` is unchanged.

    This is how any template value is changed from the command line without editing the file, e.g.
    `--set input.clip_len=8 training.lr_schedule=cosine data.colour={none: 1, photometric: 0, crossnorm: 0}`.
    """
    data = template.to_dict()
    sections = set()
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise TemplateError(f"{where}: '{item}' is not of the form section.key=value")
        node = data
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
        sections.add(parts[0])
    checked = Template.from_dict(data, where)
    # Only the changed sections are new; the rest is shared with ``template`` (it cannot change).
    return dataclasses.replace(template, **{s: getattr(checked, s) for s in sections})
