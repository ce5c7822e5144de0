"""Checkpoint files: atomic writes, RNG state round trip, and the one reader (action_rec.models.checkpoint):
one torch.load per file, the head's class count, the template precedence."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from action_rec.models import build_model
from action_rec.models.checkpoint import (
    CheckpointError,
    load_trained_model,
    model_template,
    read_checkpoint,
)
from action_rec.templates import apply_overrides, load_template
from action_rec.training import run_state as ckpt

ROOT = Path(__file__).resolve().parents[1]
S3D = ROOT / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
TINY = ["input.clip_len=4", "input.size=32", "input.resize_short=40"]


def test_round_trip_with_weights_only(tmp_path):
    obj = {
        "state_dict": {"w": torch.arange(4.0)},
        "epoch": 3,
        "template": {"name": "x", "input": {"mean": [1.0, 2.0, 3.0]}},
        "class_names": ["a", "b"],
        "rng": ckpt.capture_rng_state(),
    }
    path = ckpt.save_checkpoint(tmp_path / "latest.pth", obj)
    loaded = read_checkpoint(path)
    assert torch.equal(loaded.state_dict["w"], obj["state_dict"]["w"])
    assert loaded.template == obj["template"] and loaded.class_names == ["a", "b"]
    assert loaded.raw["epoch"] == 3 and loaded.source == str(path)
    assert loaded.head_classes is None  # no head in this state dict


def test_rng_state_restores_every_generator(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = ckpt.capture_rng_state()
    ckpt.save_checkpoint(tmp_path / "r.pth", {"rng": state})
    first = (random.random(), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3).tolist())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.restore_rng_state(torch.load(tmp_path / "r.pth", weights_only=True)["rng"])
    again = (random.random(), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3).tolist())
    assert again == first


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "latest.pth"
    ckpt.save_checkpoint(path, {"epoch": 1})

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pth"]  # no temporary left behind


def test_unreadable_files_raise_one_line_errors(tmp_path):
    with pytest.raises(CheckpointError, match=r"missing\.pth: no such checkpoint file"):
        read_checkpoint(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match=r"bad\.pth: not a readable PyTorch checkpoint \(.+\)$"):
        read_checkpoint(bad)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(1), tensor)
    with pytest.raises(CheckpointError, match=r"tensor\.pth: checkpoint holds a Tensor, not a dict"):
        read_checkpoint(tensor)


@pytest.mark.parametrize("head, classes", [("linear", 5), ("angular", 7)])
def test_class_count_of_a_linear_and_an_am_softmax_head(tmp_path, head, classes):
    template = apply_overrides(load_template(S3D), [f"model.head={head}"])
    state = build_model(template, num_classes=classes).state_dict()
    path = tmp_path / "c.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)  # DDP-saved
    assert read_checkpoint(path).head_classes == classes
    two_heads = {k: v for k, v in state.items() if not k.startswith("cls_head.")}
    for i in range(2):
        two_heads |= {
            k.replace("cls_head.", f"cls_head.{i}.", 1): v for k, v in state.items() if "cls_head." in k
        }
    assert read_checkpoint(two_heads).head_classes is None  # a multi-dataset snapshot: no single head


def test_checkpoint_settings_win_over_the_given_template_with_one_log_line(tmp_path):
    trained = apply_overrides(load_template(S3D), [*TINY, "model.head=linear", "training.batch_size=3"])
    state = build_model(trained, num_classes=2).state_dict()
    path = tmp_path / "latest.pth"
    ckpt.save_checkpoint(
        path, {"state_dict": state, "template": trained.to_dict(), "class_names": ["a", "b"]}
    )
    given = apply_overrides(load_template(S3D), ["training.batch_size=9", "data.rotation_deg=3"])
    lines = []
    used = model_template(given, read_checkpoint(path), lines.append)
    assert used.input == trained.input and used.model == trained.model
    assert used.training.batch_size == 9 and used.data.rotation_deg == 3  # the rest: given
    assert given.input.clip_len == 16  # the given template is not changed
    assert len(lines) == 1 and str(path) in lines[0] and "input.clip_len 4, not 16" in lines[0]
    assert model_template(used, read_checkpoint(path), lines.append) == used and len(lines) == 1  # no news

    bare = tmp_path / "bare.pth"
    torch.save({"state_dict": state}, bare)
    assert model_template(given, read_checkpoint(bare), lines.append) is given  # a snapshot has no template


def test_load_trained_model_reads_the_file_once(tmp_path, monkeypatch):
    trained = apply_overrides(load_template(S3D), TINY)
    source = build_model(trained, num_classes=3).eval()
    path = tmp_path / "latest.pth"
    ckpt.save_checkpoint(
        path, {"state_dict": source.state_dict(), "template": trained.to_dict(), "class_names": list("abc")}
    )
    real_load, calls = torch.load, []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a[0]) or real_load(*a, **k))
    model, template, names, head_loaded = load_trained_model(load_template(S3D), path, None, lambda m: None)
    assert calls == [path] and names == ["a", "b", "c"] and head_loaded
    assert template.input.clip_len == 4
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_a_stored_template_that_does_not_validate_names_the_checkpoint(tmp_path):
    from action_rec.templates import TemplateError

    stale = load_template(S3D).to_dict()
    del stale["input"]["target_fps"]
    path = tmp_path / "old.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "template": stale}, path)
    with pytest.raises(TemplateError, match=r"old\.pth \(its stored template\).*input\.target_fps"):
        model_template(load_template(S3D), read_checkpoint(path), None)


def test_checkpoints_store_the_template_as_a_plain_dict_and_older_ones_still_load(tmp_path):
    """What a checkpoint holds is the template's YAML as a dict (weights_only loads it); one written
    before training.bn_statistics existed, as a dict without it, still gives its settings."""
    trained = apply_overrides(load_template(S3D), [*TINY, "training.bn_statistics=update"])
    path = ckpt.save_checkpoint(
        tmp_path / "new.pth", {"state_dict": {"w": torch.zeros(1)}, "template": trained.to_dict()}
    )
    stored = torch.load(path, weights_only=True)["template"]
    assert type(stored) is dict and load_template(stored) == trained
    older = trained.to_dict()
    del older["training"]["bn_statistics"]
    torch.save({"state_dict": {"w": torch.zeros(1)}, "template": older}, tmp_path / "old.pth")
    used = model_template(load_template(S3D), read_checkpoint(tmp_path / "old.pth"), None)
    assert used.input == trained.input and used.training.bn_statistics == "auto"  # training: the given one's
