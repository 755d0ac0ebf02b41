"""LARS, its parameter groups, the per-step warm-up + cosine learning-rate schedule, and the lr scaling rule.

The recipe of the paper (docs/PAPER.md): LARS with momentum 0.9, trust coefficient 0.001 and weight decay 1e-6;
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

__all__ = ["LARS", "WarmupCosineSchedule", "build_optimizer", "param_groups", "scaled_lr", "warmup_steps"]


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

    Kept by hand because neither torch nor torchvision ships a LARS optimiser.

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
        Learning rate (usually set at every step by :class:`WarmupCosineSchedule`).
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


class WarmupCosineSchedule:
    """Linear warm-up then cosine decay of the learning rate, set on the optimizer at every step.

    Kept by hand because a resumed run may change its length or peak (``--epochs``, ``--lr``) and re-plan the
    rest of the curve from the current step, which ``torch.optim.lr_scheduler.SequentialLR`` (LinearLR then
    CosineAnnealingLR) cannot do once built.

    With ``W = warmup_steps``, ``T = total_steps``, peak ``b = base_lr`` and final ``f = final_lr_ratio * b``,
    the learning rate of step ``s`` (counted from 0) is::

        s < W:           b * (s + 1) / W
        W <= s < T:      f + (b - f) * (1 + cos(pi * (s - W) / (T - W - 1))) / 2
        s >= T:          f

    so the rate rises to ``b`` at ``s = W - 1``, stays ``b`` at ``s = W`` and reaches ``f`` at the last step
    ``s = T - 1``.

    Each parameter group gets ``lr * group.get("lr_scale", 1.0)``.

    Parameters
    ----------
    optimizer
        The optimizer whose groups' ``lr`` is set.
    warmup_steps, total_steps
        ``0 <= warmup_steps <= total_steps``, ``total_steps >= 1``.
    base_lr
        Peak learning rate (see :func:`scaled_lr`).
    final_lr_ratio
        Final learning rate as a fraction of ``base_lr``.

    Notes
    -----
    The constructor sets the rate of step 0; call :meth:`step` after each ``optimizer.step()`` (the convention
    of torch's schedulers). :meth:`state_dict` / :meth:`load_state_dict` carry the step count, so a resumed
    run continues the same curve.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int,
        total_steps: int,
        base_lr: float,
        final_lr_ratio: float = 0.001,
    ) -> None:
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"need total_steps >= 1 and 0 <= warmup_steps <= total_steps, got {warmup_steps}, {total_steps}"
            )
        if base_lr < 0 or final_lr_ratio < 0:
            raise ValueError(f"base_lr and final_lr_ratio must be >= 0, got {base_lr}, {final_lr_ratio}")
        self.optimizer = optimizer
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.base_lr = float(base_lr)
        self.final_lr_ratio = float(final_lr_ratio)
        self.step_count = 0
        self._last_lr: list[float] = []
        self._apply()

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step`` (before any group's ``lr_scale``)."""
        b, w, t = self.base_lr, self.warmup_steps, self.total_steps
        f = self.final_lr_ratio * b
        if step < w:
            return b * (step + 1) / w
        if step >= t:
            return f
        span = t - w - 1
        progress = (step - w) / span if span > 0 else 1.0
        return f + (b - f) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def _apply(self) -> None:
        lr = self.lr_at(self.step_count)
        self._last_lr = []
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
            self._last_lr.append(group["lr"])

    def step(self) -> None:
        """Advance to the next step and set its learning rate."""
        self.step_count += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The learning rate set on each parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state: its parameters and the step count."""
        return {
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "base_lr": self.base_lr,
            "final_lr_ratio": self.final_lr_ratio,
            "step_count": self.step_count,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` and set the learning rate of the restored step."""
        self.warmup_steps = int(state["warmup_steps"])
        self.total_steps = int(state["total_steps"])
        self.base_lr = float(state["base_lr"])
        self.final_lr_ratio = float(state["final_lr_ratio"])
        self.step_count = int(state["step_count"])
        self._apply()


def build_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    """The optimiser of ``cfg.optim`` (LARS, SGD or AdamW) over :func:`param_groups`; the schedule sets its rate."""
    o = cfg.optim
    groups = param_groups(model, o.weight_decay)
    if o.optimizer == "lars":
        return LARS(groups, lr=0.0, momentum=o.momentum, weight_decay=o.weight_decay, eta=o.eta)
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=0.0, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.AdamW(groups, lr=0.0, weight_decay=o.weight_decay)
