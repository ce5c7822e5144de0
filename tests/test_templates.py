"""Templates: the shipped ones are valid, and every kind of mistake gets one line naming file and key."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from action_rec.templates import (
    ADDED_KEYS,
    SCHEMA,
    GradClip,
    Template,
    TemplateError,
    apply_overrides,
    load_template,
)

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = sorted((REPO / "model_templates").glob("*/*/template.yaml"))
S3D = REPO / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"


def test_both_published_templates_are_shipped_and_valid():
    names = {load_template(p).name for p in TEMPLATES}
    assert names == {"s3d-rgb-mobilenet-v3", "x3d-rgb-mobilenet-v3-lgd-gc"}
    for path in TEMPLATES:
        template = load_template(path)
        assert template.name == path.parent.name
        assert template.snapshot.url.startswith("https://")
        assert len(template.snapshot.sha256) == 64


def test_each_template_describes_its_own_architecture():
    texts = {p.parent.name: p.read_text() for p in TEMPLATES}
    for name, text in texts.items():
        header = text.split("\nname:")[0]
        assert header.startswith(f"# {name}:")
    x3d = load_template(
        REPO / "model_templates/custom-action-recognition/x3d-rgb-mobilenet-v3-lgd-gc/template.yaml"
    )
    s3d = load_template(S3D)
    assert x3d.description != s3d.description
    assert "local-global diffusion" in x3d.description and "channel-wise 3D" in x3d.description
    assert "Separable" in s3d.description
    # The colour stage says what it does and how to switch it off (item 7 of issue 15).
    for text in texts.values():
        assert "no-op" in text and "photometric: 0" in text and "hue" in text


def _broken(tmp_path, mutate) -> Path:
    data = yaml.safe_load(S3D.read_text())
    mutate(data)
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["input"].pop("clip_len"), "missing key 'input.clip_len'"),
        (lambda d: d["training"].update(batch_sise=4), "unknown key 'training.batch_sise'"),
        (lambda d: d["input"].update(clip_len="16"), "key 'input.clip_len' must be integer"),
        (lambda d: d["input"].update(clip_len=0), "key 'input.clip_len' must be positive"),
        (lambda d: d["input"].update(mean=[1, 2]), "key 'input.mean' must be a list of 3"),
        (lambda d: d["model"].update(architecture="resnet"), "key 'model.architecture' must be one of"),
        (lambda d: d["data"].update(horizontal_flip="no"), "key 'data.horizontal_flip' must be true/false"),
        (
            lambda d: d["data"]["colour"].update(none=0.5),
            "'data.colour' must hold probabilities that sum to 1",
        ),
        (lambda d: d.update(model=[1, 2]), "'model' must be a mapping"),
    ],
)
def test_broken_template_names_file_and_key(tmp_path, mutate, expected):
    path = _broken(tmp_path, mutate)
    with pytest.raises(TemplateError) as info:
        load_template(path)
    message = str(info.value)
    assert message.startswith(str(path) + ":")
    assert expected in message
    assert "\n" not in message


def test_not_yaml_names_the_line(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text("name: x\nmodel: [unclosed\n  - a: b\n")
    with pytest.raises(TemplateError, match=rf"^{path}:\d+: not valid YAML"):
        load_template(path)


def test_missing_file_is_a_template_error(tmp_path):
    with pytest.raises(TemplateError, match="cannot read template"):
        load_template(tmp_path / "nope.yaml")


def test_overrides_change_values_and_are_validated():
    template = load_template(S3D)
    changed = apply_overrides(
        template, ["input.clip_len=8", "data.colour={none: 1, photometric: 0, crossnorm: 0}"]
    )
    assert changed.input.clip_len == 8
    assert changed.data.colour.none == 1
    assert template.input.clip_len == 16  # the original is untouched
    with pytest.raises(TemplateError, match="unknown key 'input.clip_length'"):
        apply_overrides(template, ["input.clip_length=8"])
    with pytest.raises(TemplateError, match="must be integer"):
        apply_overrides(template, ["input.clip_len=eight"])
    with pytest.raises(TemplateError, match="section.key=value"):
        apply_overrides(template, ["input.clip_len"])


def test_instantiate_rejects_broken_template_with_exit_2(tmp_path):
    path = _broken(tmp_path, lambda d: d["training"].pop("epochs"))
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/instantiate_template.py"), str(path), str(tmp_path / "wd")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(path) in lines[0] and "training.epochs" in lines[0]
    assert not (tmp_path / "wd").exists()


def test_a_template_written_before_an_added_key_gets_its_default(tmp_path):
    """Work dirs and checkpoints keep their template.yaml: one without training.bn_statistics (added
    later) still loads, with the value ADDED_KEYS gives; a wrong value is still refused."""
    from action_rec.templates import ADDED_KEYS

    text = S3D.read_text(encoding="utf-8")
    older = tmp_path / "template.yaml"
    older.write_text("".join(line for line in text.splitlines(True) if "bn_statistics:" not in line))
    assert "bn_statistics" not in older.read_text()
    assert load_template(older).training.bn_statistics == ADDED_KEYS["training.bn_statistics"] == "auto"
    with pytest.raises(TemplateError, match="'training.bn_statistics' must be one of auto, update, keep"):
        apply_overrides(load_template(older), ["training.bn_statistics=freeze"])


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.parent.name)
def test_to_dict_and_yaml_round_trips_are_lossless(path):
    """What work dirs and checkpoints store: the template's YAML, exactly, and back the same object."""
    template = load_template(path)
    data = template.to_dict()
    assert data == yaml.safe_load(path.read_text(encoding="utf-8"))  # nothing added, dropped or retyped
    assert Template.from_dict(data) == template
    assert load_template(yaml.safe_load(yaml.safe_dump(data))) == template
    assert isinstance(data["input"]["mean"], list) and isinstance(data["data"]["rotation_deg"], int)


def test_a_template_is_frozen_and_an_override_makes_a_new_one():
    template = load_template(S3D)
    with pytest.raises(dataclasses.FrozenInstanceError):
        template.input.clip_len = 8  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        template.model = template.model  # type: ignore[misc]
    assert isinstance(template.input.mean, tuple)  # no list to change in place either
    changed = apply_overrides(template, ["input.clip_len=8", "training.grad_clip={type: agc, value: 0.02}"])
    assert changed is not template and changed != template
    assert (changed.input.clip_len, template.input.clip_len) == (8, 16)
    assert changed.training.grad_clip == GradClip(type="agc", value=0.02)
    assert template.training.grad_clip == GradClip(type="norm", value=40.0)
    assert changed.model is template.model  # untouched sections are shared: they cannot change
    assert apply_overrides(template, []) == template


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.depth=3", "unknown key 'model.depth'"),
        ("modle.head=linear", "unknown key 'modle.head'"),
        ("data.colour.red=1", "unknown key 'data.colour.red'"),
        ("input.clip_len.x=1", "unknown key 'input.clip_len.x'"),
        ("data.colour={none: 1, photometric: 0, crossnorm: 0, red: 0}", "unknown key 'data.colour.red'"),
    ],
)
def test_unknown_keys_are_refused_in_overrides_and_mappings(override, expected):
    with pytest.raises(TemplateError, match=re.escape(expected)):
        apply_overrides(load_template(S3D), [override])
    data = load_template(S3D).to_dict()
    data["loss"]["gamma"] = 2
    with pytest.raises(TemplateError, match="unknown key 'loss.gamma'"):
        Template.from_dict(data, "stored")


def test_schema_and_added_keys_come_from_the_dataclasses():
    assert SCHEMA["training"]["lr_steps"] == [int, None] and SCHEMA["input"]["mean"][1] == 3
    assert SCHEMA["model"]["head"] == ("angular", "linear")
    assert ADDED_KEYS == {"training.bn_statistics": "auto"}
    assert list(SCHEMA) == list(load_template(S3D).to_dict())  # the file's order
