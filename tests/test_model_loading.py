"""Weight loading: our checkpoints, snapshots in the original mmcv layout, bare state dicts, and the
errors for files that do not fit."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from action_rec.errors import UserError
from action_rec.models import (
    CheckpointError,
    CheckpointMismatchError,
    build_model,
    load_weights,
    remap_state_dict,
)
from action_rec.templates import Template, apply_overrides, load_template

torch.set_num_threads(1)

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "model_templates" / "custom-action-recognition"
S3D, X3D = "s3d-rgb-mobilenet-v3", "x3d-rgb-mobilenet-v3-lgd-gc"


def template(name: str) -> Template:
    return load_template(TEMPLATE_DIR / name / "template.yaml")


def trained_model(name: str, num_classes: int, seed: int = 0) -> nn.Module:
    """A model whose every tensor differs from a fresh init (stands in for trained weights)."""
    torch.manual_seed(seed)
    model = build_model(template(name), num_classes=num_classes)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not key.endswith("reg_mask"):
                tensor.copy_(
                    torch.rand_like(tensor) + 0.5 if "running_var" in key else torch.randn_like(tensor) * 0.1
                )
            elif not tensor.is_floating_point():
                tensor.fill_(seed + 7)
    return model.eval()


def mmcv_snapshot(state: dict[str, torch.Tensor]) -> dict:
    """The original mmcv layout: ``module.`` prefix, meta and optimizer beside the state dict."""
    return {
        "meta": {"mmcv_version": "1.2.0", "epoch": 40, "iter": 1000, "config": "model = dict(...)"},
        "state_dict": {f"module.{k}": v for k, v in state.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "momentum": 0.9, "params": [0, 1]}]},
    }


def backbone_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.backbone.state_dict(), b.backbone.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_remap_strips_module_prefix_and_unindexes_a_single_head():
    t = torch.zeros(1)
    sd = {"module.backbone.conv.0.0.weight": t, "module.cls_head.0.fc_angular.weight": t}
    assert set(remap_state_dict(sd)) == {"backbone.conv.0.0.weight", "cls_head.fc_angular.weight"}
    two = {"module.cls_head.0.fc_angular.weight": t, "module.cls_head.1.fc_angular.weight": t}
    assert set(remap_state_dict(two)) == {"cls_head.0.fc_angular.weight", "cls_head.1.fc_angular.weight"}
    plain = {"backbone.x": t, "cls_head.fc_angular.weight": t}
    assert remap_state_dict(plain) == plain


def test_x3d_snapshot_with_two_heads_loads_backbone_and_reinitialises_head(tmp_path):
    source = trained_model(X3D, 700)
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("cls_head.")}
    head700 = source.cls_head.state_dict()
    head35 = trained_model(X3D, 35, seed=1).cls_head.state_dict()
    state |= {f"cls_head.0.{k}": v for k, v in head700.items()}
    state |= {f"cls_head.1.{k}": v for k, v in head35.items()}
    path = tmp_path / "x3d-snapshot.pth"
    torch.save(mmcv_snapshot(state), path)

    model = build_model(template(X3D), num_classes=5)
    fresh_head = {k: v.clone() for k, v in model.cls_head.state_dict().items()}
    lines = []
    report = load_weights(model, path, log=lines.append)

    assert backbone_equal(model, source)
    assert not report.head_loaded
    assert len(lines) == 1 and "\n" not in lines[0]
    assert str(path) in lines[0]
    assert "fine-tuning: head re-initialised for 5 classes" in lines[0]
    assert "700" in lines[0] and "35" in lines[0]
    assert model.cls_head.fc_angular.weight.shape == (256, 5)
    assert not torch.equal(model.cls_head.fc_angular.weight, fresh_head["fc_angular.weight"])  # re-drawn
    torch.testing.assert_close(model.cls_head.fc_angular.weight.norm(dim=0), torch.ones(5))
    assert torch.equal(model.cls_head.fc_angular.reg_mask, torch.triu(torch.ones(5, 5), diagonal=1))
    assert (model.cls_head.fc_pre_angular[1].running_var == 1).all()  # head statistics not taken over


def test_s3d_snapshot_without_reg_mask_and_other_class_count(tmp_path):
    source = trained_model(S3D, 700)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("reg_mask")}
    path = tmp_path / "s3d-snapshot.pth"
    torch.save(mmcv_snapshot(state), path)

    model = build_model(template(S3D), num_classes=12)
    lines = []
    report = load_weights(model, path, log=lines.append)
    assert backbone_equal(model, source)
    assert not report.head_loaded
    assert lines == [report.message]
    assert "fine-tuning: head re-initialised for 12 classes (checkpoint head has 700)" in report.message
    assert torch.equal(model.cls_head.fc_angular.reg_mask, torch.triu(torch.ones(12, 12), diagonal=1))


def test_snapshot_with_matching_head_and_no_reg_mask_loads_everything(tmp_path):
    source = trained_model(S3D, 9)
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("reg_mask")}
    path = tmp_path / "s3d-snapshot.pth"
    torch.save(mmcv_snapshot(state), path)
    model = build_model(template(S3D), num_classes=9).eval()
    report = load_weights(model, path, log=None)
    assert report.head_loaded
    assert torch.equal(model.cls_head.fc_angular.reg_mask, torch.triu(torch.ones(9, 9), diagonal=1))
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


@pytest.mark.parametrize("name", [S3D, X3D])
def test_our_checkpoint_round_trip_gives_identical_outputs(name, tmp_path):
    source = trained_model(name, 4)
    checkpoint = {
        "state_dict": source.state_dict(),
        "optimizer": {"state": {}, "param_groups": []},
        "scheduler": {},
        "epoch": 3,
        "iteration": 120,
        "template": {"name": name},
        "class_names": ["a", "b", "c", "d"],
        "meta": {"note": "test"},
    }
    path = tmp_path / "latest.pth"
    torch.save(checkpoint, path)
    model = build_model(template(name), num_classes=4).eval()
    report = load_weights(model, path, log=None)
    assert report.head_loaded
    assert report.loaded == len([k for k in source.state_dict() if not k.endswith("reg_mask")])
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_bare_state_dict_and_ddp_prefix_in_memory():
    source = trained_model(S3D, 3)
    model = build_model(template(S3D), num_classes=3)
    report = load_weights(model, {f"module.{k}": v for k, v in source.state_dict().items()}, log=None)
    assert report.head_loaded and report.source == "<state_dict>"
    assert backbone_equal(model, source)
    assert torch.equal(model.cls_head.fc_angular.weight, source.cls_head.fc_angular.weight)


def test_linear_head_checkpoint_into_angular_model_reinitialises_head():
    t = apply_overrides(template(S3D), ["model.head=linear"])
    source = build_model(t, num_classes=3)
    model = build_model(template(S3D), num_classes=3)
    report = load_weights(model, source.state_dict(), log=None)
    assert not report.head_loaded
    assert "different layout" in report.message and "fc.weight" in report.message


def test_mismatched_backbone_lists_missing_unexpected_and_misshaped_keys(tmp_path):
    state = dict(trained_model(S3D, 27).state_dict())
    del state["backbone.features.3.conv.0.weight"]
    del state["backbone.conv.0.1.running_mean"]
    state["backbone.features.99.weight"] = torch.zeros(3)
    state["backbone.features.1.conv.4.weight"] = torch.zeros(16, 16, 3, 1, 1)
    path = tmp_path / "broken.pth"
    torch.save({"state_dict": state}, path)
    model = build_model(template(S3D), num_classes=27)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as info:
        load_weights(model, path, log=None)
    message = str(info.value)
    assert isinstance(info.value, UserError)
    first, *lists = message.splitlines()
    assert str(path) in first and "2 missing, 1 unexpected, 1 mis-shaped" in first
    assert any(
        line.strip().startswith("missing:") and "backbone.features.3.conv.0.weight" in line for line in lists
    )
    assert any("backbone.conv.0.1.running_mean" in line for line in lists)
    assert any(
        line.strip().startswith("unexpected:") and "backbone.features.99.weight" in line for line in lists
    )
    assert any(
        "backbone.features.1.conv.4.weight (checkpoint (16, 16, 3, 1, 1) vs model (16, 16, 5, 1, 1))" in line
        for line in lists
    )
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing half-loaded


def test_wrong_architecture_gives_a_truncated_readable_list():
    s3d_state = trained_model(S3D, 27).state_dict()
    model = build_model(template(X3D), num_classes=27)
    with pytest.raises(CheckpointMismatchError) as info:
        load_weights(model, s3d_state, log=None)
    message = str(info.value)
    assert message.startswith("<state_dict>: ")
    assert "wrong template?" in message.splitlines()[0]
    assert "more)" in message  # hundreds of LGD keys are summarised, not dumped
    assert len(message.splitlines()) <= 4 and len(message) < 3000


def test_unknown_top_level_keys_are_unexpected():
    state = dict(trained_model(S3D, 3).state_dict())
    state["neck.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match=r"unexpected: neck\.weight"):
        load_weights(build_model(template(S3D), num_classes=3), state, log=None)


def test_files_that_are_not_checkpoints(tmp_path):
    model = build_model(template(S3D), num_classes=3)
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"notes\.txt: not a readable PyTorch checkpoint"):
        load_weights(model, text, log=None)
    with pytest.raises(CheckpointError, match=r"missing\.pth: no such checkpoint file"):
        load_weights(model, tmp_path / "missing.pth", log=None)
    listing = tmp_path / "list.pth"
    torch.save([1, 2, 3], listing)
    with pytest.raises(CheckpointError, match=r"list\.pth: checkpoint holds a list"):
        load_weights(model, listing, log=None)
    no_tensors = tmp_path / "meta.pth"
    torch.save({"meta": {"epoch": 1}}, no_tensors)
    with pytest.raises(CheckpointError, match=r"meta\.pth: no state dict found"):
        load_weights(model, no_tensors, log=None)


class _Payload:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": _Payload()}, f, protocol=2)
    with pytest.raises(CheckpointError, match=r"evil\.pth"):
        load_weights(build_model(template(S3D), num_classes=3), path, log=None)
    assert "code ran" not in capsys.readouterr().out
