"""Checkpoint files: atomic writes, weights_only loading, RNG state round trip."""

import random

import numpy as np
import pytest
import torch

from action_rec.training import checkpoint as ckpt


def test_round_trip_with_weights_only(tmp_path):
    obj = {
        "state_dict": {"w": torch.arange(4.0)},
        "epoch": 3,
        "template": {"name": "x", "input": {"mean": [1.0, 2.0, 3.0]}},
        "class_names": ["a", "b"],
        "rng": ckpt.capture_rng_state(),
    }
    path = ckpt.save_checkpoint(tmp_path / "latest.pth", obj)
    loaded = ckpt.load_checkpoint(path)
    assert torch.equal(loaded["state_dict"]["w"], obj["state_dict"]["w"])
    assert loaded["template"] == obj["template"] and loaded["class_names"] == ["a", "b"]
    torch.load(path, weights_only=True)  # loadable without trusting pickled code


def test_rng_state_restores_every_generator(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = ckpt.capture_rng_state()
    ckpt.save_checkpoint(tmp_path / "r.pth", {"rng": state})
    first = (random.random(), np.random.rand(3).tolist(), np.random.randn(), torch.rand(3).tolist())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.restore_rng_state(ckpt.load_checkpoint(tmp_path / "r.pth")["rng"])
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
    assert ckpt.load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pth"]  # no temporary left behind


def test_unreadable_files_raise_one_line_errors(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="no such checkpoint"):
        ckpt.load_checkpoint(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ckpt.CheckpointError, match=r"bad\.pth: cannot read checkpoint"):
        ckpt.load_checkpoint(bad)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(1), tensor)
    with pytest.raises(ckpt.CheckpointError, match="not a checkpoint"):
        ckpt.load_checkpoint(tensor)
