"""Learning-rate schedule and gradient clipping of the recipe."""

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from action_rec.templates import apply_overrides, load_template
from action_rec.training.optim import adaptive_clip_grad_, clip_gradients, unitwise_norm
from action_rec.training.schedules import LRSchedule, build_lr_scheduler

S3D = (
    Path(__file__).resolve().parents[1]
    / "model_templates/custom-action-recognition/s3d-rgb-mobilenet-v3/template.yaml"
)


def _schedule(kind, head_only=5):
    return LRSchedule(
        base_lr=1e-3, epochs=65, head_only_epochs=head_only, head_lr_multiplier=10.0, warmup_epochs=5,
        kind=kind, lr_steps=[30, 50],
    )  # fmt: skip


def test_head_only_phase_then_warmup_from_one_percent():
    s = _schedule("step")
    assert s.learning_rates(0.0) == {"backbone": 0.0, "head": pytest.approx(1e-2)}
    assert s.learning_rates(4.99)["backbone"] == 0.0
    assert s.head_only(4) and not s.head_only(5)
    assert s.learning_rates(5.0)["backbone"] == pytest.approx(1e-5)  # 1 % at warm-up start
    assert s.learning_rates(7.5)["head"] == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))
    assert s.learning_rates(10.0)["backbone"] == pytest.approx(1e-3)


def test_step_schedule_drops_tenfold_at_each_step():
    s = _schedule("step")
    assert s.learning_rates(29.9)["head"] == pytest.approx(1e-3)
    assert s.learning_rates(30.0)["head"] == pytest.approx(1e-4)
    assert s.learning_rates(50.0)["head"] == pytest.approx(1e-5)


def test_cosine_schedule_goes_from_full_rate_to_one_percent():
    s = _schedule("cosine")
    assert s.learning_rates(10.0)["head"] == pytest.approx(1e-3)
    assert s.learning_rates(65.0)["head"] == pytest.approx(1e-5)
    q = 0.5
    mid = 10 + 55 * q
    assert s.factors(mid)["head"] == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * q**1.5)))
    values = [s.factors(10 + e)["head"] for e in range(56)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_from_scratch_skips_head_only_phase():
    template = apply_overrides(load_template(S3D), [
        "training.base_learning_rate=0.1", "training.epochs=10", "training.head_only_epochs=5",
        "training.head_lr_multiplier=10.0", "training.warmup_epochs=1", "training.lr_schedule=cosine",
        "training.lr_steps=[]",
    ])  # fmt: skip
    s = LRSchedule.from_template(template, fine_tune=False)
    assert not s.head_only(0)
    assert s.learning_rates(0.0)["backbone"] == pytest.approx(1e-3)
    assert LRSchedule.from_template(template, fine_tune=True).head_only(4)


def test_lambda_lr_scheduler_sets_named_groups_per_iteration():
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "name": "backbone"}, {"params": [b], "name": "head"}], lr=1.0)
    schedule = _schedule("step")
    scheduler = build_lr_scheduler(opt, schedule, iters_per_epoch=4)
    assert [g["lr"] for g in opt.param_groups] == [0.0, pytest.approx(1e-2)]  # head-only phase
    for _ in range(4 * 7 + 2):  # to epoch 7.5: warm-up half way
        opt.step()
        scheduler.step()
    expected = 1e-3 * (0.01 + 0.99 * 0.5)
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(expected), pytest.approx(expected)]
    # Restored from its state (the iteration count), a new scheduler continues where the old one was.
    opt2 = torch.optim.SGD([{"params": [a], "name": "backbone"}, {"params": [b], "name": "head"}], lr=1.0)
    again = build_lr_scheduler(opt2, schedule, iters_per_epoch=4)
    opt2.load_state_dict(opt.state_dict())
    again.load_state_dict(scheduler.state_dict())
    opt.step(), scheduler.step(), opt2.step(), again.step()
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]


def test_agc_clips_only_units_whose_gradient_is_too_large():
    p = nn.Parameter(torch.tensor([[3.0, 4.0], [0.0, 0.0001]]))  # unit norms 5 and 1e-4 (-> eps 1e-3)
    p.grad = torch.tensor([[0.6, 0.8], [1.0, 0.0]])  # unit 0: 1.0 <= 0.2 * 5; unit 1: 1.0 > 0.2 * 1e-3
    clipped = adaptive_clip_grad_([p], clip=0.2, eps=1e-3)
    assert clipped == 1
    assert torch.allclose(p.grad[0], torch.tensor([0.6, 0.8]))
    assert unitwise_norm(p.grad)[1].item() == pytest.approx(0.2 * 1e-3, rel=1e-5)
    # 1-D (BN weight, bias): each element is its own unit, u(x) = |x|, as in the original.
    bias = nn.Parameter(torch.tensor([1.0, -10.0, 0.0]))
    bias.grad = torch.tensor([0.1, -3.0, 0.5])
    assert torch.equal(unitwise_norm(bias), torch.tensor([1.0, 10.0, 0.0]))
    assert adaptive_clip_grad_([bias], clip=0.2) == 1
    # 0.1 <= 0.2 * 1: kept; 3 > 0.2 * 10: scaled to 2 (sign kept); 0.5 > 0.2 * max(0, 1e-3): to 2e-4.
    assert torch.allclose(bias.grad, torch.tensor([0.1, -2.0, 2e-4]), rtol=1e-5)


def test_agc_over_many_parameters_equals_each_parameter_alone():
    """The 1-D parameters are clipped in one pass: the same gradients, and the same count, as one by one."""
    g = torch.Generator().manual_seed(0)
    shapes = [(4,), (7,), (), (3, 2, 1, 3, 3), (5,), (6, 4)]
    params = [nn.Parameter(torch.randn(s, generator=g)) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * 0.5
    params[1].grad.zero_()  # a parameter without any clipped unit
    alone = [p.detach().clone().requires_grad_() for p in params]
    hits = 0
    for a, p in zip(alone, params, strict=True):
        a.grad = p.grad.clone()
        hits += adaptive_clip_grad_([a], clip=0.2)
    assert 0 < hits < len(params)
    assert adaptive_clip_grad_(params, clip=0.2) == hits
    for a, p in zip(alone, params, strict=True):
        assert torch.equal(p.grad, a.grad)


def test_global_norm_clipping():
    p = nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([30.0, 40.0])
    norm = clip_gradients([p], "norm", 40.0)
    assert norm == pytest.approx(50.0)
    assert p.grad.norm().item() == pytest.approx(40.0, rel=1e-4)
    q = nn.Parameter(torch.zeros(2))
    q.grad = torch.tensor([30.0, 40.0])
    assert clip_gradients([q], "none", 1.0) is None and q.grad.norm().item() == pytest.approx(50.0)
