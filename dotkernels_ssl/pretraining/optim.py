"""LARS, its parameter groups, the per-step warm-up + cosine learning-rate schedule, and the lr scaling rule.

The schedule is torch's ``LambdaLR`` with the :class:`WarmupCosine` multiplier. LARS is kept by hand: neither
torch nor torchvision ships one, and timm's ``Lars`` divides the trust ratio by ``||g|| + wd ||w|| + eps``
instead of ``||g + wd w||`` (the formula of the VICReg and Barlow Twins code this recipe follows), so its steps
differ (``tests/test_optim.py`` compares both with the written-out formula).

The recipe of the paper (docs/background.md): LARS with momentum 0.9, trust coefficient 0.001 and weight decay 1e-6;
biases and normalisation parameters excluded from both the weight decay and the LARS adaptation; peak
learning rate ``base_lr * global_batch / 256``; linear warm-up, then a cosine decay to ``0.001 x peak``, set
at every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from .config import Config

__all__ = [
    "LARS",
    "WarmupCosine",
    "build_optimizer",
    "param_groups",
    "scaled_lr",
    "warmup_cosine_schedule",
    "warmup_steps",
]


def scaled_lr(base_lr: float, global_batch: int) -> float:
    """The linear scaling rule: ``base_lr * global_batch / 256``."""
    if global_batch < 1:
        raise ValueError(f"global_batch must be >= 1, got {global_batch}")
    return float(base_lr) * int(global_batch) / 256.0


def warmup_steps(warmup_epochs: float, steps_per_epoch: int, total_steps: int) -> int:
    """Warm-up length in steps: ``round(warmup_epochs * steps_per_epoch)``, at most half of ``total_steps``.

    The cap keeps short runs (a 1-epoch smoke test of a recipe with 10 warm-up epochs) from spending every
    step in the warm-up and ending at the peak learning rate: at least half of every run is the cosine decay.

    Examples
    --------
    >>> warmup_steps(1.0, 210, 8 * 210), warmup_steps(10.0, 210, 210)
    (210, 105)
    """
    if warmup_epochs < 0 or not math.isfinite(warmup_epochs):
        raise ValueError(f"warmup_epochs must be a finite number >= 0, got {warmup_epochs}")
    if steps_per_epoch < 1 or total_steps < 1:
        raise ValueError(f"need steps_per_epoch >= 1 and total_steps >= 1, got {steps_per_epoch}, {total_steps}")
    return min(round(warmup_epochs * steps_per_epoch), total_steps // 2)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split a model's trainable parameters into a LARS-adapted, weight-decayed group and an excluded group.

    Parameters
    ----------
    model
        The model; parameters with ``requires_grad=False`` are left out.
    weight_decay
        Weight decay of the adapted group.

    Returns
    -------
    list of dict
        ``[{"params": weights, "weight_decay": weight_decay, "lars_exclude": False},
        {"params": biases_and_norms, "weight_decay": 0.0, "lars_exclude": True}]``; the excluded group holds
        the parameters with ``ndim <= 1`` (biases, BatchNorm/LayerNorm weights and biases). Empty groups are
        dropped. Other optimizers ignore the ``lars_exclude`` key, so the groups also give e.g. SGD or AdamW
        the usual no-decay split.
    """
    adapted, excluded = [], []
    for p in model.parameters():
        if p.requires_grad:
            (excluded if p.ndim <= 1 else adapted).append(p)
    groups = [
        {"params": adapted, "weight_decay": float(weight_decay), "lars_exclude": False},
        {"params": excluded, "weight_decay": 0.0, "lars_exclude": True},
    ]
    return [g for g in groups if g["params"]]


class LARS(torch.optim.Optimizer):
    """Layer-wise Adaptive Rate Scaling (You et al., 2017), as used by SimCLR, Barlow Twins and VICReg.

    Kept by hand because neither torch nor torchvision ships a LARS optimiser, and timm's ``Lars`` computes a
    different trust ratio (see the module docstring).

    For each parameter ``w`` with gradient ``g`` that is not excluded::

        u = g + weight_decay * w
        u = u * (eta * ||w|| / ||u||)     (the trust ratio; 1 when ||w|| = 0 or ||u|| = 0)
        m = momentum * m + u              (m = u at the first step)
        w = w - lr * m

    An excluded parameter skips the first two lines (no weight decay, no adaptation): it follows plain SGD
    with momentum, exactly as ``torch.optim.SGD(momentum=momentum)``.

    Parameters
    ----------
    params
        Parameters or parameter groups. A group's ``lars_exclude`` is True (exclude all its parameters), False
        (adapt all) or None (the default: exclude the parameters with ``ndim <= 1``, i.e. biases and norm
        parameters). :func:`param_groups` builds the usual two groups.
    lr
        Learning rate (usually set at every step by :func:`warmup_cosine_schedule`).
    momentum
        Momentum (0.9).
    weight_decay
        Weight decay of the adapted parameters (1e-6 in the paper).
    eta
        Trust coefficient (0.001).
    lars_exclude
        Default of the groups' ``lars_exclude``.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.0,
        momentum: float = 0.9,
        weight_decay: float = 1e-6,
        eta: float = 0.001,
        lars_exclude: bool | None = None,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(
                f"need lr >= 0, momentum >= 0, weight_decay >= 0, eta > 0; got {lr}, {momentum}, {weight_decay}, {eta}"
            )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "eta": eta,
            "lars_exclude": lars_exclude,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """Perform one optimisation step (see the class docstring for the update)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, wd, eta = group["lr"], group["momentum"], group["weight_decay"], group["eta"]
            exclude_all = group["lars_exclude"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("LARS does not support sparse gradients")
                update = p.grad
                excluded = p.ndim <= 1 if exclude_all is None else bool(exclude_all)
                if not excluded:
                    if wd != 0:
                        update = update.add(p, alpha=wd)
                    w_norm = torch.linalg.vector_norm(p)
                    u_norm = torch.linalg.vector_norm(update)
                    one = torch.ones_like(w_norm)
                    trust = torch.where(w_norm > 0, torch.where(u_norm > 0, eta * w_norm / u_norm, one), one)
                    update = update.mul(trust)
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = torch.clone(update).detach()
                else:
                    buf.mul_(momentum).add_(update)
                p.add_(buf, alpha=-lr)
        return loss


class WarmupCosine:
    """The warm-up + cosine multiplier of the peak learning rate at each step (a ``LambdaLR`` function).

    With ``W = warmup_steps``, ``T = total_steps`` and ``r = final_lr_ratio``, the multiplier of step ``s``
    (counted from 0) is::

        s < W:           (s + 1) / W
        W <= s < T:      r + (1 - r) * (1 + cos(pi * (s - W) / (T - W - 1))) / 2
        s >= T:          r

    so the rate rises to the peak at ``s = W - 1``, stays there at ``s = W`` and reaches ``r x peak`` at the last
    step ``s = T - 1``. An object rather than a closure, so that ``LambdaLR.state_dict`` stores its settings.

    Parameters
    ----------
    warmup_steps, total_steps
        ``0 <= warmup_steps <= total_steps``, ``total_steps >= 1``.
    final_lr_ratio
        Final learning rate as a fraction of the peak.
    """

    def __init__(self, warmup_steps: int, total_steps: int, final_lr_ratio: float = 0.001) -> None:
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"need total_steps >= 1 and 0 <= warmup_steps <= total_steps, got {warmup_steps}, {total_steps}"
            )
        if final_lr_ratio < 0:
            raise ValueError(f"final_lr_ratio must be >= 0, got {final_lr_ratio}")
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.final_lr_ratio = float(final_lr_ratio)

    def __call__(self, step: int) -> float:
        """The multiplier of step ``step``."""
        w, t, r = self.warmup_steps, self.total_steps, self.final_lr_ratio
        if step < w:
            return (step + 1) / w
        if step >= t:
            return r
        span = t - w - 1
        progress = (step - w) / span if span > 0 else 1.0
        return r + (1.0 - r) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_schedule(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    base_lr: float,
    final_lr_ratio: float = 0.001,
    *,
    step: int = 0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then cosine decay to ``final_lr_ratio x base_lr``: a ``LambdaLR`` of :class:`WarmupCosine`.

    Each parameter group's peak is ``base_lr * group.get("lr_scale", 1.0)``; call ``step()`` after each
    ``optimizer.step()`` (torch's convention). The schedule is a function of the step only, so a resumed run
    builds it again at its global step (``step``): a changed length or peak (``--epochs``, ``--lr``) re-plans the
    rest of the curve from there.

    Parameters
    ----------
    optimizer
        The optimizer whose groups' ``lr`` is set.
    warmup_steps, total_steps, final_lr_ratio
        See :class:`WarmupCosine`.
    base_lr
        Peak learning rate (see :func:`scaled_lr`).
    step
        The step the optimizer is at (0 for a new run); its learning rate is set at once.

    Returns
    -------
    torch.optim.lr_scheduler.LambdaLR
        The scheduler (``get_last_lr()`` gives each group's current rate).
    """
    if base_lr < 0:
        raise ValueError(f"base_lr must be >= 0, got {base_lr}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    fn = WarmupCosine(warmup_steps, total_steps, final_lr_ratio)
    for group in optimizer.param_groups:
        group["initial_lr"] = float(base_lr) * group.get("lr_scale", 1.0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn, last_epoch=step - 1)


def build_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    """The optimiser of ``cfg.optim`` (LARS, SGD or AdamW) over :func:`param_groups`; the schedule sets its rate."""
    o = cfg.optim
    groups = param_groups(model, o.weight_decay)
    if o.optimizer == "lars":
        return LARS(groups, lr=0.0, momentum=o.momentum, weight_decay=o.weight_decay, eta=o.eta)
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=0.0, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.AdamW(groups, lr=0.0, weight_decay=o.weight_decay)
