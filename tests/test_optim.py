"""Tests of dotkernels_ssl.pretraining.optim against hand-written reference computations (float64)."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from dotkernels_ssl.pretraining.optim import (  # noqa: E402
    LARS,
    WarmupCosine,
    param_groups,
    scaled_lr,
    warmup_cosine_schedule,
    warmup_steps,
)


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2)).double()
    with torch.no_grad():  # non-trivial norm parameters
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.5, 0.5)
    return model


def _loss(model: nn.Module, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(8, 4, generator=g, dtype=torch.float64)
    y = torch.randn(8, 2, generator=g, dtype=torch.float64)
    return ((model(x) - y) ** 2).mean()


def _reference_lars(params, grads, bufs, lr, momentum, wd, eta):
    """The LARS formula written out in numpy; 1-D parameters: SGD with momentum only."""
    out = []
    for i, (w, g) in enumerate(zip(params, grads)):
        if w.ndim > 1:
            u = g + wd * w
            wn, un = np.sqrt((w * w).sum()), np.sqrt((u * u).sum())
            u = u * (eta * wn / un if wn > 0 and un > 0 else 1.0)
        else:
            u = g
        bufs[i] = u.copy() if bufs[i] is None else momentum * bufs[i] + u
        out.append(w - lr * bufs[i])
    return out


def test_lars_matches_reference_formula() -> None:
    model = _tiny_model()
    ref_model = copy.deepcopy(model)
    lr, momentum, wd, eta = 0.7, 0.9, 0.05, 0.001
    opt = LARS(param_groups(model, wd), lr=lr, momentum=momentum, weight_decay=wd, eta=eta)
    ref = [p.detach().numpy().copy() for p in ref_model.parameters()]
    bufs = [None] * len(ref)
    for step in range(4):
        # reference: gradients at the reference parameters, update in numpy
        with torch.no_grad():
            for p, w in zip(ref_model.parameters(), ref):
                p.copy_(torch.from_numpy(w))
        ref_model.zero_grad()
        _loss(ref_model, step).backward()
        grads = [p.grad.numpy().copy() for p in ref_model.parameters()]
        ref = _reference_lars(ref, grads, bufs, lr, momentum, wd, eta)

        opt.zero_grad()
        _loss(model, step).backward()
        opt.step()
        for p, w in zip(model.parameters(), ref):
            np.testing.assert_allclose(p.detach().numpy(), w, rtol=1e-12, atol=1e-14)


def test_default_group_excludes_ndim1_and_groups_split() -> None:
    model = _tiny_model()
    groups = param_groups(model, 1e-6)
    adapted = {id(p) for p in groups[0]["params"]}
    excluded = {id(p) for p in groups[1]["params"]}
    assert {id(p) for p in model.parameters() if p.ndim > 1} == adapted
    assert {id(p) for p in model.parameters() if p.ndim == 1} == excluded
    assert groups[0]["weight_decay"] == 1e-6 and groups[1]["weight_decay"] == 0.0
    assert groups[0]["lars_exclude"] is False and groups[1]["lars_exclude"] is True
    model[0].weight.requires_grad_(False)
    assert sum(len(g["params"]) for g in param_groups(model, 0.1)) == len(list(model.parameters())) - 1

    # one plain group (lars_exclude=None): the same updates as the explicit split
    a, b = _tiny_model(), _tiny_model()
    opt_a = LARS(a.parameters(), lr=0.3, weight_decay=0.01)
    opt_b = LARS(param_groups(b, 0.01), lr=0.3, weight_decay=0.01)
    for step in range(3):
        for m, o in ((a, opt_a), (b, opt_b)):
            o.zero_grad()
            _loss(m, step).backward()
            o.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_excluded_parameters_follow_sgd_momentum() -> None:
    lars_model, sgd_model = _tiny_model(), _tiny_model()
    lars = LARS(lars_model.parameters(), lr=0.2, momentum=0.9, weight_decay=0.5, lars_exclude=True)
    sgd = torch.optim.SGD(sgd_model.parameters(), lr=0.2, momentum=0.9)
    for step in range(5):
        for m, o in ((lars_model, lars), (sgd_model, sgd)):
            o.zero_grad()
            _loss(m, step).backward()
            o.step()
    for p, q in zip(lars_model.parameters(), sgd_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-13, atol=1e-15)


def test_trust_ratio_edge_cases() -> None:
    w = nn.Parameter(torch.zeros(3, 2, dtype=torch.float64))
    opt = LARS([w], lr=1.0, momentum=0.0, weight_decay=0.0, eta=0.001)
    w.grad = torch.ones_like(w)
    opt.step()  # ||w|| = 0: trust ratio 1, so a plain SGD step
    torch.testing.assert_close(w.detach(), -torch.ones(3, 2, dtype=torch.float64))
    w.grad = torch.zeros_like(w)
    opt.step()  # ||u|| = 0: nothing moves, no NaN
    torch.testing.assert_close(w.detach(), -torch.ones(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError):
        LARS([w], lr=-1.0)


def _cosine(step: int, warmup: int, total: int, base: float, ratio: float) -> float:
    """The schedule written from its definition."""
    final = base * ratio
    if step < warmup:
        return base * (step + 1) / warmup
    if step >= total:
        return final
    t = (step - warmup) / (total - warmup - 1)
    return final + (base - final) * (1 + math.cos(math.pi * t)) / 2


def _hand_written_lr(step: int, warmup: int, total: int, base: float, ratio: float) -> float:
    """The hand-written schedule the LambdaLR replaced (its lr_at, verbatim): the reference of equality."""
    b, w, t = base, warmup, total
    f = ratio * b
    if step < w:
        return b * (step + 1) / w
    if step >= t:
        return f
    span = t - w - 1
    progress = (step - w) / span if span > 0 else 1.0
    return f + (b - f) * 0.5 * (1.0 + math.cos(math.pi * progress))


@pytest.mark.parametrize(
    ("warmup", "total", "base", "ratio"),
    [
        (10, 50, 2.4, 0.001),
        (210, 1680, 0.6, 0.001),
        (0, 5, 1.0, 0.001),
        (4, 5, 0.3, 0.0),
        (2, 4, 1.2, 0.5),
        (0, 1, 1.0, 0.01),
    ],
)
def test_schedule_equals_the_hand_written_one_at_every_step(warmup, total, base, ratio) -> None:
    p = nn.Parameter(torch.zeros(2, 2))
    opt = LARS([{"params": [p]}, {"params": [nn.Parameter(torch.zeros(2))], "lr_scale": 0.5}])
    sched = warmup_cosine_schedule(opt, warmup, total, base, ratio)
    assert isinstance(sched, torch.optim.lr_scheduler.LambdaLR)
    for step in range(total + 3):
        ref = _hand_written_lr(step, warmup, total, base, ratio)
        assert abs(opt.param_groups[0]["lr"] - ref) <= 1e-7 * max(1.0, ref)
        assert opt.param_groups[0]["lr"] == pytest.approx(ref, rel=1e-13, abs=1e-15)
        assert opt.param_groups[1]["lr"] == pytest.approx(0.5 * ref, rel=1e-13, abs=1e-15)
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
        opt.step()
        sched.step()


def test_schedule_shape() -> None:
    opt = LARS([nn.Parameter(torch.zeros(2, 2))])
    warmup, total, base = 10, 50, scaled_lr(1.2, 512)
    assert base == pytest.approx(2.4)
    sched = warmup_cosine_schedule(opt, warmup, total, base, final_lr_ratio=0.001)
    seen = []
    for _ in range(total + 3):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx(base / warmup)  # warm-up start
    assert seen[warmup - 1] == pytest.approx(base) == seen[warmup]  # the peak, then the cosine starts
    assert seen[total - 1] == pytest.approx(0.001 * base, rel=1e-12) == seen[total + 2]  # the last step: final lr
    assert all(a <= b + 1e-15 for a, b in itertools.pairwise(seen[:warmup]))
    assert all(a >= b - 1e-15 for a, b in itertools.pairwise(seen[warmup:total]))
    for bad in ((6, 5, 1.0), (0, 0, 1.0), (-1, 5, 1.0)):
        with pytest.raises(ValueError):
            warmup_cosine_schedule(opt, *bad)
    with pytest.raises(ValueError):
        warmup_cosine_schedule(opt, 1, 5, -1.0)
    with pytest.raises(ValueError):
        scaled_lr(1.0, 0)


def test_schedule_rebuilt_at_a_step_continues_the_curve() -> None:
    """A resumed run builds the schedule at its step: the same rates as an uninterrupted one; new settings re-plan."""
    opt = LARS([nn.Parameter(torch.zeros(3, 3))])
    a = warmup_cosine_schedule(opt, 4, 20, 0.8)
    rates = []
    for _ in range(20):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        a.step()
    opt2 = LARS([nn.Parameter(torch.zeros(3, 3))])
    opt2.load_state_dict(opt.state_dict())  # the stored optimizer holds the old rates: the schedule resets them
    b = warmup_cosine_schedule(opt2, 4, 20, 0.8, step=7)
    rest = []
    for _ in range(13):
        rest.append(opt2.param_groups[0]["lr"])
        opt2.step()
        b.step()
    assert rest == rates[7:]
    c = warmup_cosine_schedule(opt2, 4, 40, 0.8, step=7)  # --epochs doubled on resume
    assert opt2.param_groups[0]["lr"] == pytest.approx(_hand_written_lr(7, 4, 40, 0.8, 0.001), rel=1e-13)
    assert c.last_epoch == 7
    assert WarmupCosine(4, 40)(7) == pytest.approx(_hand_written_lr(7, 4, 40, 1.0, 0.001), rel=1e-13)


def _timm_style_lars(params, grads, bufs, lr, momentum, wd, eta, eps=1e-8):
    """timm's Lars update written out: trust ratio eta ||w|| / (||g|| + wd ||w|| + eps)."""
    out = []
    for i, (w, g) in enumerate(zip(params, grads)):
        u = g
        if w.ndim > 1:
            wn, gn = np.sqrt((w * w).sum()), np.sqrt((g * g).sum())
            trust = eta * wn / (gn + wd * wn + eps) if wn > 0 and gn > 0 else 1.0
            u = (g + wd * w) * trust
        bufs[i] = u.copy() if bufs[i] is None else momentum * bufs[i] + u
        out.append(w - lr * bufs[i])
    return out


def test_lars_is_kept_because_timms_trust_ratio_differs() -> None:
    """The reference formula (VICReg / Barlow Twins) and timm's Lars give different steps beyond 1e-7."""
    model = _tiny_model()
    lr, momentum, wd, eta = 0.7, 0.9, 0.05, 0.001
    opt = LARS(param_groups(model, wd), lr=lr, momentum=momentum, weight_decay=wd, eta=eta)
    w0 = [p.detach().numpy().copy() for p in model.parameters()]
    opt.zero_grad()
    _loss(model, 0).backward()
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    opt.step()
    ours = [p.detach().numpy() for p in model.parameters()]
    ref = _reference_lars(w0, grads, [None] * len(w0), lr, momentum, wd, eta)
    timm = _timm_style_lars(w0, grads, [None] * len(w0), lr, momentum, wd, eta)
    for a, r in zip(ours, ref):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)  # equal steps to far below 1e-7
    assert max(np.abs(t - r).max() for t, r in zip(timm, ref)) > 1e-7


def test_lars_state_dict_resume() -> None:
    """Optimizer state (momentum buffers) survives a state_dict round trip: resumed == uninterrupted."""
    a, b = _tiny_model(), _tiny_model()
    opt_a = LARS(param_groups(a, 0.01), lr=0.5)
    for step in range(2):
        opt_a.zero_grad()
        _loss(a, step).backward()
        opt_a.step()
    b.load_state_dict(a.state_dict())
    opt_b = LARS(param_groups(b, 0.01), lr=0.5)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as through torch.save / torch.load
    for m, o in ((a, opt_a), (b, opt_b)):
        o.zero_grad()
        _loss(m, 2).backward()
        o.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("epochs", "per_epoch", "total", "expected"),
    [(1.0, 210, 1680, 210), (0.5, 7, 70, 4), (10.0, 210, 210, 105), (10.0, 4, 4, 2), (1.0, 1, 1, 0), (0.0, 50, 500, 0)],
)
def test_warmup_is_at_most_half_of_the_run(epochs, per_epoch, total, expected) -> None:
    n = warmup_steps(epochs, per_epoch, total)
    assert n == expected == min(round(epochs * per_epoch), total // 2)
    # the run then anneals: its last learning rate is the final one, not the peak
    if total > 1:
        assert WarmupCosine(n, total, 0.001)(total - 1) == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("epochs", "per_epoch", "total"), [(-1.0, 10, 10), (math.nan, 10, 10), (1.0, 0, 10), (1.0, 5, 0)]
)
def test_warmup_steps_rejects_bad_input(epochs, per_epoch, total) -> None:
    with pytest.raises(ValueError):
        warmup_steps(epochs, per_epoch, total)
