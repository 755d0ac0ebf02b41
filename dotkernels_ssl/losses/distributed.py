r"""World information and gradient-carrying collectives: the one place that talks to ``torch.distributed``.

Every function falls back to the identity (or to the trivial answer) when ``torch.distributed`` is not
available, not initialised, or initialised with a single process, so the losses run unchanged in a single
process.

Gradient convention
-------------------
Under ``DistributedDataParallel`` (DDP) every rank ``r`` computes its own scalar loss :math:`L_r` and calls
``backward``; DDP then *averages* the parameter gradients over the :math:`W` ranks. The collectives here are
written so that autograd on rank ``r`` produces the gradient of the **sum over ranks**

.. math::  F = \sum_{s=0}^{W-1} L_s

with respect to the tensors owned by rank ``r``. Concretely, if :math:`X = [x_0; \dots; x_{W-1}]` is the
gathered batch, the backward of :func:`all_gather_with_grad` on rank ``r`` returns

.. math::  \frac{\partial F}{\partial x_r} = \sum_{s} \big(\partial L_s / \partial X\big)_{\text{rows of } r}

(an ``all_reduce(SUM)`` of the incoming gradient, then this rank's rows), and the backward of
:func:`all_reduce_sum` returns :math:`\sum_s \partial L_s / \partial y`. After DDP's averaging every parameter
receives :math:`\nabla_\theta F / W`. Hence the **full-batch gradient is recovered exactly** whenever

.. math::  \frac1W \sum_s L_s = L_{\text{full batch}},

i.e. when each rank either computes the global loss identically (replicated terms: statistics of the gathered
batch) or a rank-local share scaled so that the shares average to the global value (for a global mean over
:math:`N` rows, rank ``r`` uses :math:`\frac{W}{N}\sum_{i \in r} \ell_i`, which is the local mean when the
local batch sizes are equal). This is the standard exact form (the official VICReg / SFRIK
``FullGatherLayer``); the losses of :mod:`dotkernels_ssl.losses` follow it and the two-process gloo
tests check it. What a loss *returns* is then made the global value on every rank by :func:`global_values`
(``share + (mean over ranks of the shares - share).detach()``), which leaves this gradient unchanged.

Unequal local batch sizes are supported by the gathers (padding to the largest local size); the sizes are
exchanged with one small extra collective unless passed explicitly as ``sizes``.

Process group and metrics
-------------------------
:func:`init_from_env` / :func:`shutdown` start and end the default process group of a ``torchrun`` launch
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` in the environment) and pick the device (``cuda:LOCAL_RANK`` with NCCL,
the CPU with gloo); :func:`barrier`, :func:`broadcast_object`, :func:`broadcast`, :func:`all_gather_object`,
:func:`all_reduce_mean` and :func:`all_reduce_min` are the no-grad collectives of a training loop, each the
identity (or the trivial answer) in a single process.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistributedContext",
    "all_gather_no_grad",
    "all_gather_object",
    "all_gather_with_grad",
    "all_reduce_max",
    "all_reduce_mean",
    "all_reduce_min",
    "all_reduce_sum",
    "barrier",
    "broadcast",
    "broadcast_object",
    "default_backend",
    "gather_sizes",
    "global_values",
    "init_from_env",
    "is_distributed",
    "is_initialized",
    "is_main_process",
    "launched_by_torchrun",
    "local_rank",
    "local_slice",
    "rank",
    "select_device",
    "shutdown",
    "world_size",
]


# ``all_gather_into_tensor`` was renamed ``all_gather_single`` (the old name warns from torch 2.14 on).
_all_gather_single = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


def is_initialized() -> bool:
    """True when ``torch.distributed`` is available and its default process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the default group (1 when ``torch.distributed`` is not initialised)."""
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """Rank of this process in the default group (0 when ``torch.distributed`` is not initialised)."""
    return dist.get_rank() if is_initialized() else 0


def is_distributed() -> bool:
    """True when ``torch.distributed`` is initialised with more than one process."""
    return is_initialized() and dist.get_world_size() > 1


def _comm_device(like: torch.Tensor | None = None) -> torch.device:
    """Device for small bookkeeping tensors: that of ``like``, else CUDA for NCCL, else CPU."""
    if like is not None:
        return like.device
    if is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_sizes(n_local: int, device: torch.device | None = None) -> list[int]:
    """Local batch sizes of all ranks, in rank order (``[n_local]`` in a single process).

    Parameters
    ----------
    n_local : int
        Number of rows held by this rank.
    device : torch.device, optional
        Device of the bookkeeping tensor (must be a CUDA device for NCCL); inferred from the backend by
        default.
    """
    n_local = int(n_local)
    if n_local < 0:
        raise ValueError(f"n_local must be >= 0, got {n_local}")
    if not is_distributed():
        return [n_local]
    dev = device if device is not None else _comm_device()
    t = torch.tensor([n_local], dtype=torch.int64, device=dev)
    out = torch.empty(world_size(), dtype=torch.int64, device=dev)
    _all_gather_single(out, t)
    return [int(v) for v in out.tolist()]


def _check_sizes(sizes: Sequence[int], n_local: int) -> list[int]:
    sizes = [int(s) for s in sizes]
    if len(sizes) != world_size():
        raise ValueError(f"sizes has {len(sizes)} entries but the world size is {world_size()}")
    if sizes[rank()] != n_local:
        raise ValueError(f"sizes[{rank()}] = {sizes[rank()]} does not match the local size {n_local}")
    return sizes


def local_slice(n_local: int, sizes: Sequence[int] | None = None) -> slice:
    """Rows of the gathered batch (rank order) that belong to this rank.

    Parameters
    ----------
    n_local : int
        Number of rows held by this rank.
    sizes : sequence of int, optional
        Local sizes of all ranks (from :func:`gather_sizes`); exchanged with a collective when omitted.

    Returns
    -------
    slice
        ``slice(start, start + n_local)`` with ``start = sum(sizes[:rank])``; ``slice(0, n_local)`` in a
        single process.
    """
    if not is_distributed():
        return slice(0, int(n_local))
    sizes = _check_sizes(gather_sizes(n_local) if sizes is None else sizes, int(n_local))
    start = sum(sizes[: rank()])
    return slice(start, start + int(n_local))


def _gather(x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """All-gather along dim 0 (no autograd); pads to the largest local size when sizes differ."""
    x = x.contiguous()
    w = len(sizes)
    m = max(sizes)
    if all(s == m for s in sizes):
        out = x.new_empty((w * m, *x.shape[1:]))
        _all_gather_single(out, x)
        return out
    padded = x.new_zeros((m, *x.shape[1:]))
    padded[: x.shape[0]] = x
    out = x.new_empty((w * m, *x.shape[1:]))
    _all_gather_single(out, padded)
    out = out.view(w, m, *x.shape[1:])
    return torch.cat([out[r, : sizes[r]] for r in range(w)], dim=0)


def _prepare_sizes(x: torch.Tensor, sizes: Sequence[int] | None) -> list[int]:
    if x.dim() < 1:
        raise ValueError("expected a tensor with at least one dimension (rows along dim 0)")
    n = int(x.shape[0])
    return _check_sizes(gather_sizes(n, x.device) if sizes is None else sizes, n)


class _AllGatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:  # type: ignore[override]
        start = sum(sizes[: rank()])
        ctx.rows = (start, start + int(x.shape[0]))
        return _gather(x, sizes)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        # Sum the gradient of every rank's loss with respect to the gathered batch, keep our rows.
        g = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        start, stop = ctx.rows
        return g[start:stop], None


def all_gather_with_grad(x: torch.Tensor, sizes: Sequence[int] | None = None) -> torch.Tensor:
    r"""Concatenate ``x`` from every rank along dim 0, with a gradient that flows back to every rank.

    Forward: :math:`X = [x_0; x_1; \dots; x_{W-1}]` (rank order). Backward on rank ``r``: the incoming
    gradient :math:`G_r = \partial L_r / \partial X` is summed over ranks with ``all_reduce(SUM)`` and the
    rows of rank ``r`` are returned, :math:`\big(\sum_s G_s\big)_{\text{rows of } r}` — the gradient of
    :math:`\sum_s L_s`. With DDP's averaging, a loss that every rank computes identically from ``X`` gives
    exactly the full-batch gradient (see the module docstring).

    Parameters
    ----------
    x : Tensor
        Local rows, shape ``(n_local, ...)``; the trailing shape, dtype and device must agree across ranks.
    sizes : sequence of int, optional
        Local row counts of all ranks (from :func:`gather_sizes`). Exchanged with one small collective when
        omitted. Unequal sizes are supported (padding to the largest).

    Returns
    -------
    Tensor
        Shape ``(sum(sizes), ...)``; ``x`` itself in a single process.
    """
    if not is_distributed():
        return x
    return _AllGatherWithGrad.apply(x, _prepare_sizes(x, sizes))


def all_gather_no_grad(x: torch.Tensor, sizes: Sequence[int] | None = None) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0, detached from autograd.

    Same layout and size handling as :func:`all_gather_with_grad`; ``x.detach()`` in a single process.
    """
    if not is_distributed():
        return x.detach()
    with torch.no_grad():
        return _gather(x.detach(), _prepare_sizes(x, sizes))


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(y, op=dist.ReduceOp.SUM)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        g = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        return g


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    r"""Sum of ``x`` over ranks, :math:`y = \sum_r x_r`, with a gradient (out of place).

    Backward on rank ``r`` returns :math:`\sum_s \partial L_s / \partial y` (an ``all_reduce(SUM)`` of the
    incoming gradient), the gradient of :math:`\sum_s L_s` with respect to :math:`x_r` — the same convention
    as :func:`all_gather_with_grad`. ``x`` itself in a single process.
    """
    if not is_distributed():
        return x
    return _AllReduceSum.apply(x)


def _all_reduce_detached(x: torch.Tensor, op: dist.ReduceOp.RedOpType) -> torch.Tensor:
    y = x.detach().clone(memory_format=torch.contiguous_format)
    if is_distributed():
        dist.all_reduce(y, op=op)
    return y


def all_reduce_max(x: torch.Tensor) -> torch.Tensor:
    """Element-wise maximum over ranks, detached (for numerical shifts such as a global log-sum-exp).

    ``x.detach()`` in a single process.
    """
    return _all_reduce_detached(x, dist.ReduceOp.MAX)


def all_reduce_min(x: torch.Tensor) -> torch.Tensor:
    """Element-wise minimum over ranks, detached (e.g. "every rank is finite" flags); ``x.detach()`` in one process."""
    return _all_reduce_detached(x, dist.ReduceOp.MIN)


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over ranks, detached and out of place (metrics for logging); ``x.detach()`` in one process."""
    return _all_reduce_detached(x, dist.ReduceOp.SUM) / world_size()


def global_values(shares: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    r"""Each rank share :math:`L_r` as the global value with the share's gradient (one all-reduce, no autograd).

    Returns :math:`L_r + \big(\bar L - L_r\big)_{\text{detached}}` for every entry, with :math:`\bar L = \frac1W
    \sum_s L_s` all-reduced without autograd: the forward value is that of the global loss (the same on every rank,
    what a user logs), the gradient is that of :math:`L_r`, so DDP's averaging still gives the full-batch gradient
    (module docstring). ``shares`` itself (as a dict) in a single process (no collective).
    """
    shares = dict(shares)
    if not is_distributed() or not shares:
        return shares
    dtype = next(iter(shares.values())).dtype
    means = all_reduce_mean(torch.stack([t.detach().to(dtype) for t in shares.values()]))
    return {k: t + (means[i].to(t.dtype) - t.detach()) for i, (k, t) in enumerate(shares.items())}


# --------------------------------------------------------------------------------------------------------------
# process group, launch environment and no-grad collectives of a training loop


def launched_by_torchrun(env: Mapping[str, str] | None = None) -> bool:
    """True when the environment names a rank and a world size (``torchrun`` / ``torch.distributed.run``)."""
    env = os.environ if env is None else env
    return "RANK" in env and "WORLD_SIZE" in env


def local_rank(env: Mapping[str, str] | None = None) -> int:
    """``LOCAL_RANK`` of the launch environment (0 when not launched by ``torchrun``)."""
    env = os.environ if env is None else env
    return int(env.get("LOCAL_RANK", 0))


def select_device(spec: str | torch.device = "auto", *, local_rank: int | None = None) -> torch.device:
    """The device of this process: ``"auto"`` is CUDA when available (``cuda:local_rank`` under a launch), else CPU.

    Raises
    ------
    ValueError
        A CUDA device is asked for and CUDA is not available.
    """
    if isinstance(spec, torch.device):
        return spec
    spec = str(spec).strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda" and local_rank is not None:
        spec = f"cuda:{int(local_rank)}"
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but CUDA is not available")
    return device


def default_backend(device: torch.device | str) -> str:
    """``"nccl"`` for a CUDA device, ``"gloo"`` otherwise."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


@dataclass
class DistributedContext:
    """Where this process stands: world size, rank, local rank, and whether :func:`init_from_env` started the group.

    ``active`` is True when more than one process takes part (collectives do something); ``is_main`` on rank 0.
    """

    world: int = 1
    rank: int = 0
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return is_initialized() and self.world > 1


def init_from_env(
    device: torch.device | str,
    *,
    backend: str = "auto",
    timeout_s: float = 1800.0,
    env: Mapping[str, str] | None = None,
) -> DistributedContext:
    """Join the default process group of a ``torchrun`` launch (``env://``), or describe the one already running.

    Parameters
    ----------
    device : torch.device or str
        Device of this process (``cuda:LOCAL_RANK`` under NCCL; made the current CUDA device here).
    backend : {"auto", "nccl", "gloo"}
        ``"auto"``: :func:`default_backend` of ``device``.
    timeout_s : float
        Collective timeout in seconds.
    env : mapping, optional
        The launch environment (``os.environ`` by default).

    Returns
    -------
    DistributedContext
        ``initialized_here`` is True when this call started the group (then end it with :func:`shutdown`); a
        single-process context when the environment names no launch and no group is running.
    """
    env = os.environ if env is None else env
    device = torch.device(device)
    if backend not in ("auto", "nccl", "gloo"):
        raise ValueError(f"backend must be 'auto', 'nccl' or 'gloo', got {backend!r}")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if is_initialized():
        return DistributedContext(dist.get_world_size(), dist.get_rank(), local_rank(env), False)
    if not launched_by_torchrun(env):
        return DistributedContext()
    backend = default_backend(device) if backend == "auto" else backend
    kwargs: dict[str, Any] = {"device_id": device} if backend == "nccl" else {}
    dist.init_process_group(
        backend=backend, init_method="env://", timeout=datetime.timedelta(seconds=float(timeout_s)), **kwargs
    )
    return DistributedContext(dist.get_world_size(), dist.get_rank(), local_rank(env), True)


def shutdown(context: DistributedContext | None = None) -> None:
    """Destroy the default process group when ``context`` started it (or, without a context, whenever one runs)."""
    if is_initialized() and (context is None or context.initialized_here):
        dist.destroy_process_group()


def is_main_process() -> bool:
    """True on rank 0 (and in a single process)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (nothing in a single process)."""
    if is_distributed():
        dist.barrier()


def broadcast(x: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Rank ``src``'s ``x`` on every rank, in place, no autograd; ``x`` unchanged in a single process."""
    if is_distributed():
        dist.broadcast(x, src=src)
    return x


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s picklable ``obj`` on every rank; ``obj`` itself in a single process."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """The picklable ``obj`` of every rank, in rank order; ``[obj]`` in a single process."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
