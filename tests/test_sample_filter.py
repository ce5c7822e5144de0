"""X3D's sample filtering against the original's definition, by hand."""

from pathlib import Path

import numpy as np
import pytest
import torch

from action_rec.data.annotations import VideoRecord
from action_rec.data.sampling import sample_clip_indices, weighted_offset
from action_rec.training.run_state import CheckpointError
from action_rec.training.sample_filter import FilteredEpochSampler, SampleFilter


def _record(n: int) -> VideoRecord:
    return VideoRecord("v", 0, 0, n, 0, n, 30.0, Path("/nowhere/v"))


def test_weighted_offset_follows_the_window_sums():
    rng = np.random.default_rng(0)
    weights = np.array([0.0, 0.0, 3.0, 1.0, 0.0, 0.0])  # span 2: windows 0..4 sum to 0, 3, 4, 1, 0
    draws = np.bincount([weighted_offset(weights, 2, rng) for _ in range(8000)], minlength=5) / 8000
    np.testing.assert_allclose(draws, [0, 3 / 8, 4 / 8, 1 / 8, 0], atol=0.02)
    uniform = np.bincount([weighted_offset(np.zeros(6), 2, rng) for _ in range(5000)], minlength=5) / 5000
    np.testing.assert_allclose(uniform, [0.2] * 5, atol=0.03)
    assert weighted_offset(weights, 6, rng) == 0 and weighted_offset(weights, 9, rng) == 0


def test_a_given_offset_replaces_the_drawn_one_and_keeps_the_jitter():
    rec = _record(40)
    for seed in range(20):
        idx = sample_clip_indices(rec, 4, 2, np.random.default_rng(seed), offset=7)
        assert np.all(idx - (1 + 7 + np.arange(4) * 2) >= 0) and np.all(idx - (1 + 7 + np.arange(4) * 2) <= 1)


def test_frames_accumulate_signed_confidence_and_offsets_follow_the_weights():
    # One video of 10 segment frames, clips of 2 frames every 2nd: span 4, offsets 0..6.
    f = SampleFilter([_record(10)], clip_len=2, frame_interval=2, target_fps=None, seed=0)
    cos = torch.tensor([[0.9, 0.1]])  # max cosine 0.9, predicted class 0
    f.update(0, [(0, 0, 0)], cos, torch.tensor([0]), angular=True)  # epoch 0: the original starts at 1
    assert not f.scored.any()
    f.update(1, [(1, 0, 0)], cos, torch.tensor([0]), angular=True)  # right: frames 0-3 get +0.9
    weight, scored = f.frames(0)
    assert torch.allclose(weight, torch.tensor([0.9] * 4 + [0.0] * 6, dtype=torch.float64))
    assert scored.sum() == 4
    # 40 % scored: offsets stay uniform.
    offsets = np.bincount([f.offset(e, 0) for e in range(3500)], minlength=7) / 3500
    np.testing.assert_allclose(offsets, [1 / 7] * 7, atol=0.03)

    f.update(1, [(1, 0, 6)], torch.tensor([[0.5, 0.2]]), torch.tensor([1]), angular=True)  # wrong: -0.5
    f.update(1, [(1, 0, 3)], torch.tensor([[0.0, 0.2]]), torch.tensor([1]), angular=True)  # right: +0.2
    weight, scored = f.frames(0)
    expected = torch.tensor([0.9, 0.9, 0.9, 1.1, 0.2, 0.2, -0.3, -0.5, -0.5, -0.5], dtype=torch.float64)
    assert torch.allclose(weight, expected) and bool(scored.all())
    # Every frame scored: w_f = 0 where negative, else 1 + weight; offsets by window sum.
    w = np.array([1.9, 1.9, 1.9, 2.1, 1.2, 1.2, 0, 0, 0, 0])
    sums = np.array([w[o : o + 4].sum() for o in range(7)])
    offsets = np.bincount([f.offset(e, 0) for e in range(6000)], minlength=7) / 6000
    np.testing.assert_allclose(offsets, sums / sums.sum(), atol=0.02)
    assert offsets[6] == 0.0  # the window of wrong frames is never drawn


def test_linear_head_scores_with_the_softmax_probability():
    f = SampleFilter([_record(8)], clip_len=4, frame_interval=1, target_fps=None, seed=0)
    logits = torch.tensor([[2.0, 0.0]])
    f.update(1, [(1, 0, 2)], logits, torch.tensor([1]), angular=False)  # wrong
    p = torch.softmax(logits, 1).max().item()
    assert torch.allclose(f.frames(0)[0][2:6], torch.full((4,), -p, dtype=torch.float64))


def test_sampler_keys_carry_the_offsets_in_batch_order():
    f = SampleFilter([_record(10), _record(30)], clip_len=2, frame_interval=2, target_fps=None, seed=3)
    sampler = FilteredEpochSampler([1, 0, 1], f)
    sampler.set_epoch(4)
    keys = list(sampler)
    assert keys == sampler.keys and [k[:2] for k in keys] == [(4, 1), (4, 0), (4, 1)]
    assert keys[0][2] == keys[2][2] == f.offset(4, 1)  # a function of (seed, epoch, clip, weights)
    assert 0 <= keys[1][2] <= 6 and 0 <= keys[0][2] <= 26
    state = f.state_dict()
    g = SampleFilter([_record(10), _record(30)], clip_len=2, frame_interval=2, target_fps=None, seed=3)
    g.load_state_dict(state)
    assert torch.equal(g.weight, f.weight)
    with pytest.raises(CheckpointError, match="--resume: .* cover 40 frames"):
        SampleFilter([_record(5)], 2, 2, None, 3).load_state_dict(state)


def test_training_with_sample_filtering_resumes_exactly(tmp_path):
    from action_rec.data import make_synthetic_dataset
    from action_rec.models.checkpoint import read_checkpoint
    from action_rec.training import cli

    data = make_synthetic_dataset(
        tmp_path / "data", num_classes=2, train_per_class=3, val_per_class=1, frames=12, size=40
    )
    template = (
        Path(__file__).resolve().parents[1]
        / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
    )

    def argv(out, *extra):
        return [
            "--template", str(template), "--train-ann-files", "train.txt", "--train-data-roots", str(data),
            "--save-checkpoints-to", str(out), "--epochs", "3", "--batch-size", "3", "--device", "cpu",
            "--workers", "0", "--seed", "1", "--no-progress", "--base-learning-rate", "0.05", *extra, "--set",
            "input.clip_len=5", "input.size=32", "input.resize_short=36", "training.warmup_epochs=1",
            "training.sample_filtering=true",
        ]  # fmt: skip

    # Clips of 5 frames every 2nd cover 10 of a video's 12 frames: after epoch 1 every video is over 80 %
    # scored, so epoch 2 draws its offsets by weight.
    assert cli.main(argv(tmp_path / "whole")) == 0
    assert cli.main(argv(tmp_path / "split", "--stop-after", "2")) == 0
    after_two = read_checkpoint(tmp_path / "split" / "latest.pth").raw["sample_filter"]
    assert after_two["scored"].double().mean() > 0.8 and after_two["weight"].abs().sum() > 0
    assert cli.main(argv(tmp_path / "split", "--resume")) == 0
    a, b = (read_checkpoint(tmp_path / d / "latest.pth").raw for d in ("whole", "split"))
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert torch.equal(a["sample_filter"]["weight"], b["sample_filter"]["weight"])
