r"""Baseline self-supervised losses with the conventions of their papers: AUH, VICReg, Barlow Twins, SimCLR.

Each loss is an :class:`torch.nn.Module` with a functional twin; the names of the terms are listed with it
(``loss = sum(weights[k] * terms[k])``):

- :class:`AlignUniformLoss` / :func:`align_uniform_loss`: ``align``, ``uniform``;
- :class:`VICRegLoss` / :func:`vicreg_loss`: ``invariance``, ``variance``, ``covariance``;
- :class:`BarlowTwinsLoss` / :func:`barlow_twins_loss`: ``on_diag``, ``off_diag``;
- :class:`NTXentLoss` / :func:`nt_xent_loss`: ``positive``, ``negative``.

Terms API
---------
``module(z1, z2)`` (or ``module([v1, v2, ...])``) returns the scalar loss. ``module.forward_terms(...)`` and
the functional twins return a :class:`LossTerms` ``(loss, terms, weights)``: ``terms`` maps a name to an
*unweighted* scalar tensor (still attached to the graph), ``weights`` maps the same names to the coefficients,
and

.. math::  \text{loss} = \sum_k \text{weights}[k] \cdot \text{terms}[k].

:meth:`LossTerms.scalars` gives detached Python floats for logging.

Views
-----
Every loss takes two views ``(z1, z2)`` of shape ``(n, q)`` (row ``i`` of each view is the same image) or a
list of ``V >= 2`` views (multi-crop; the first two are the global views). Pairwise terms (invariance,
alignment, cross-correlation, contrastive) are averaged over the pairs ``(0, 1)`` and ``(g, v)`` for ``g in
{0, 1}``, ``v >= 2`` (every view is compared with the global views; with two views this is the single pair
``(0, 1)``). Per-view terms (uniformity, variance, covariance) are averaged over all views.

Inputs in float16/bfloat16 are promoted to float32 and the losses run with autocast disabled (covariances and
Gram matrices in half precision lose the digits that matter); float64 stays float64.

Distributed
-----------
Under ``torch.distributed`` each rank passes its local rows. Global statistics use the gradient-carrying
collectives of :mod:`dotkernels_ssl.distributed` (negatives, uniformity, VICReg variance/covariance, Barlow
Twins batch normalisation and cross-correlation are over the global batch of ``N = sum of local sizes`` rows).
A term is either *replicated* (every rank computes the same global value) or a *rank share*: a global mean
:math:`\frac1N \sum_i \ell_i` is computed on rank ``r`` as :math:`\frac{W}{N}\sum_{i \in r} \ell_i` (the local
mean when local sizes are equal), so that the average over ranks is the global value. Either way the average
over ranks of the per-rank losses is the single-process loss on the concatenated batch, and with DDP's
gradient averaging the parameter gradients equal the single-process ones (see
:mod:`dotkernels_ssl.distributed`). Rank shares: AUH ``align``, VICReg ``invariance``, NT-Xent ``positive``
and ``negative`` (local anchors against the gathered batch, ``O(n N q)`` per rank). Replicated: AUH
``uniform``, VICReg ``variance``/``covariance``, Barlow Twins ``on_diag``/``off_diag``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import distributed as D

__all__ = [
    "ALIGN_UNIFORM_PRESETS",
    "AlignUniformLoss",
    "BarlowTwinsLoss",
    "LossTerms",
    "NTXentLoss",
    "VICRegLoss",
    "align_uniform_loss",
    "barlow_twins_loss",
    "nt_xent_loss",
    "vicreg_loss",
]

Views = Tensor | Sequence[Tensor]
_L = TypeVar("_L", bound="_TermsLoss")


class LossTerms(NamedTuple):
    """A loss together with its unweighted terms and their weights.

    Attributes
    ----------
    loss : Tensor
        The scalar loss, ``sum(weights[k] * terms[k] for k in terms)``.
    terms : dict[str, Tensor]
        Unweighted scalar terms, attached to the autograd graph (call :meth:`scalars` for logging).
    weights : dict[str, float]
        The coefficient of each term in ``loss``.
    """

    loss: Tensor
    terms: dict[str, Tensor]
    weights: dict[str, float]

    def scalars(self) -> dict[str, float]:
        """Detached Python floats ``{"loss": ..., **terms}`` for logging (one device sync)."""
        names = ["loss", *self.terms]
        values = torch.stack([self.loss.detach(), *(t.detach() for t in self.terms.values())]).tolist()
        return dict(zip(names, values))


def _combine(terms: dict[str, Tensor], weights: dict[str, float]) -> LossTerms:
    items = list(terms.items())
    loss = weights[items[0][0]] * items[0][1]
    for k, v in items[1:]:
        loss = loss + weights[k] * v
    return LossTerms(loss, terms, {k: float(weights[k]) for k in terms})


# ----------------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------------


def _as_views(z1: Views, z2: Tensor | None) -> list[Tensor]:
    if isinstance(z1, (list, tuple)):
        if z2 is not None:
            raise TypeError("pass either two tensors (z1, z2) or one list of views, not both")
        views = list(z1)
    else:
        if z2 is None:
            raise ValueError("a loss needs at least two views: pass (z1, z2) or a list of views")
        views = [z1, z2]
    if len(views) < 2:
        raise ValueError(f"a loss needs at least two views, got {len(views)}")
    for k, v in enumerate(views):
        if not isinstance(v, Tensor):
            raise TypeError(f"view {k} is a {type(v).__name__}, expected a torch.Tensor")
        if v.dim() != 2:
            raise ValueError(f"view {k} must be 2-D (batch, dim), got shape {tuple(v.shape)}")
        if not v.is_floating_point():
            raise TypeError(f"view {k} must be a floating-point tensor, got {v.dtype}")
        if v.shape != views[0].shape:
            raise ValueError(
                f"all views must have the same shape: view 0 is {tuple(views[0].shape)}, view {k} is {tuple(v.shape)}"
            )
        if v.dtype != views[0].dtype or v.device != views[0].device:
            raise ValueError(
                f"view {k} has dtype/device {v.dtype}/{v.device}, view 0 {views[0].dtype}/{views[0].device}"
            )
    if views[0].shape[0] < 1 or views[0].shape[1] < 1:
        raise ValueError(f"views must be non-empty, got shape {tuple(views[0].shape)}")
    return views


def _check_finite(views: list[Tensor]) -> None:
    """One fused reduction and one sync; the per-view test only runs when the sum is not finite."""
    acc = torch.float64 if views[0].dtype == torch.float64 else torch.float32
    total = torch.stack([v.detach().sum(dtype=acc) for v in views]).sum()
    if bool(torch.isfinite(total)):
        return
    for k, v in enumerate(views):
        if not bool(torch.isfinite(v.detach()).all()):
            raise ValueError(f"view {k} contains non-finite values (nan or inf)")


def _promote(views: list[Tensor]) -> list[Tensor]:
    if views[0].dtype in (torch.float16, torch.bfloat16):
        return [v.float() for v in views]
    return views


def _no_autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except (RuntimeError, ValueError):  # device types without autocast support
        return contextlib.nullcontext()


@dataclass(frozen=True)
class _World:
    """Batch layout across ranks: local sizes, global size ``N``, world size ``W``, this rank's rows."""

    sizes: list[int]
    world: int
    total: int
    rows: slice

    @property
    def share(self) -> float:
        """Scale turning a local sum into this rank's share of a global mean: ``W / N``."""
        return self.world / self.total


def _world(n_local: int, device: torch.device) -> _World:
    sizes = D.gather_sizes(n_local, device) if D.is_distributed() else [n_local]
    total = sum(sizes)
    if total < 2:
        raise ValueError(f"the (global) batch must have at least 2 rows, got {total}")
    return _World(sizes, len(sizes), total, D.local_slice(n_local, sizes))


def _prepare(z1: Views, z2: Tensor | None, check_finite: bool) -> tuple[list[Tensor], _World]:
    return _prepare_views(_as_views(z1, z2), check_finite)


def _prepare_views(views: list[Tensor], check_finite: bool) -> tuple[list[Tensor], _World]:
    """Checked (``check_finite``) and promoted views, with the batch layout across ranks."""
    if check_finite:
        _check_finite(views)
    views = _promote(views)
    return views, _world(int(views[0].shape[0]), views[0].device)


def _pairs(n_views: int) -> list[tuple[int, int]]:
    """``(0, 1)`` then every other view against each global view."""
    return [(0, 1)] + [(g, v) for g in (0, 1) for v in range(2, n_views)]


def _off_diagonal(m: Tensor) -> Tensor:
    """Off-diagonal entries of a square matrix as a flat view (no copy)."""
    k = m.shape[0]
    return m.flatten()[:-1].view(k - 1, k + 1)[:, 1:].flatten()


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value}")
    return value


def _nonnegative(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value}")
    return value


# ----------------------------------------------------------------------------------------------------
# Alignment and uniformity on the hypersphere (Wang & Isola, 2020)
# ----------------------------------------------------------------------------------------------------

#: Hyper-parameters of :class:`AlignUniformLoss`. ``"wang_isola"``: the defaults of Wang & Isola (2020)
#: (alignment ``E ||z1 - z2||^2``, weights 1 and 1, ``t = 2``). ``"sfrik"``: the AUH baseline as run in the
#: SFRIK paper (Zheng et al., 2023): alignment as a mean squared error over the ``n q`` entries
#: (``align_reduction="element"``) with weight 3000, uniformity weight 1, ``t = 2.5``.
ALIGN_UNIFORM_PRESETS: dict[str, dict[str, Any]] = {
    "wang_isola": {
        "align_weight": 1.0,
        "unif_weight": 1.0,
        "t": 2.0,
        "alpha": 2.0,
        "align_reduction": "sample",
    },
    "sfrik": {
        "align_weight": 3000.0,
        "unif_weight": 1.0,
        "t": 2.5,
        "alpha": 2.0,
        "align_reduction": "element",
    },
}


def _uniformity(z: Tensor, world: _World, t: float) -> Tensor:
    """``log( 1/(N(N-1)) sum_{i != j} exp(-t ||z_i - z_j||^2) )`` over the global batch (replicated)."""
    cols = D.all_gather_with_grad(z, world.sizes)  # (N, q)
    # ||u - v||^2 = 2 - 2 <u, v> for unit vectors: exponent -t ||.||^2 = 2 t (<u, v> - 1) <= 0.
    logits = (z @ cols.T - 1.0) * (2.0 * t)  # local rows (n, N)
    n = z.shape[0]
    idx = torch.arange(n, device=z.device)
    logits = logits.index_put((idx, idx + world.rows.start), torch.tensor(-math.inf, dtype=z.dtype, device=z.device))
    shift = D.all_reduce_max(logits.amax())
    local = torch.exp(logits - shift).sum()
    total = D.all_reduce_sum(local)
    return shift + torch.log(total) - math.log(world.total * (world.total - 1))


def align_uniform_loss(
    z1: Views,
    z2: Tensor | None = None,
    *,
    align_weight: float = 1.0,
    unif_weight: float = 1.0,
    t: float = 2.0,
    alpha: float = 2.0,
    align_reduction: str = "sample",
    eps: float = 1e-12,
    check_finite: bool = True,
) -> LossTerms:
    r"""Alignment + uniformity loss of Wang & Isola (2020) ("AUH").

    On l2-normalised embeddings :math:`u_i = z_i / \max(\|z_i\|, \varepsilon)`,

    .. math::
        \mathcal L_{\text{align}} = \frac1N \sum_i \|u^{(1)}_i - u^{(2)}_i\|_2^{\alpha}
        \quad(\text{divided by } q \text{ when } \texttt{align\_reduction="element"}),

    .. math::
        \mathcal L_{\text{uniform}}(U) = \log \frac{1}{N(N-1)} \sum_{i \ne j} e^{-t \|u_i - u_j\|_2^2}

    (the U-statistic over distinct pairs, the ``pdist`` form of the paper), averaged over views, and
    ``loss = align_weight * align + unif_weight * uniform``. The uniformity uses the global batch under
    ``torch.distributed`` (negatives from every rank; each rank computes its local rows against the gathered
    batch and the row sums are all-reduced). :math:`\log` of a mean is computed with a global max shift, so
    large ``t`` does not underflow.

    Parameters
    ----------
    z1, z2 : Tensor
        Views of shape ``(n, q)``, or ``z1`` a list of ``V >= 2`` views and ``z2`` omitted.
    align_weight, unif_weight : float
        Weights of the two terms (Wang & Isola: 1 and 1; SFRIK paper AUH: 3000 with ``"element"`` and 1, see
        :data:`ALIGN_UNIFORM_PRESETS`).
    t : float
        Uniformity scale (paper default 2; the SFRIK paper used 2.5).
    alpha : float
        Alignment exponent (default 2).
    align_reduction : {"sample", "element"}
        ``"sample"``: mean over samples of :math:`\|\cdot\|^\alpha` (Wang & Isola). ``"element"``: also
        divided by ``q``, i.e. ``F.mse_loss`` of the normalised views for ``alpha = 2`` (the SFRIK code's
        AUH).
    eps : float
        Normalisation floor.
    check_finite : bool
        Raise ``ValueError`` on nan/inf inputs (one device sync).

    Returns
    -------
    LossTerms
        Terms ``align`` (rank share) and ``uniform`` (replicated).
    """
    t = _positive("t", t)
    alpha = _positive("alpha", alpha)
    if align_reduction not in ("sample", "element"):
        raise ValueError(f"align_reduction must be 'sample' or 'element', got {align_reduction!r}")
    views, world = _prepare(z1, z2, check_finite)
    with _no_autocast(views[0].device):
        us = [F.normalize(v, dim=1, eps=eps) for v in views]
        q = us[0].shape[1]
        pair_terms = []
        for a, b in _pairs(len(us)):
            d = us[a] - us[b]
            if alpha == 2.0:
                per = d.pow(2).sum(dim=1)
            else:
                per = torch.linalg.vector_norm(d, dim=1).pow(alpha)
            s = per.sum() * world.share
            pair_terms.append(s / q if align_reduction == "element" else s)
        align = torch.stack(pair_terms).mean()
        uniform = torch.stack([_uniformity(u, world, t) for u in us]).mean()
    return _combine({"align": align, "uniform": uniform}, {"align": align_weight, "uniform": unif_weight})


# ----------------------------------------------------------------------------------------------------
# VICReg (Bardes, Ponce & LeCun, 2022)
# ----------------------------------------------------------------------------------------------------


def vicreg_loss(
    z1: Views,
    z2: Tensor | None = None,
    *,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    eps: float = 1e-4,
    gamma: float = 1.0,
    check_finite: bool = True,
) -> LossTerms:
    r"""VICReg: variance-invariance-covariance regularisation, with the official code's conventions.

    For views :math:`Z, Z' \in \mathbb R^{N \times q}` (raw embeddings, no normalisation),

    .. math::
        s(Z, Z') = \frac{1}{N q} \sum_{i,j} (z_{ij} - z'_{ij})^2, \qquad
        v(Z) = \frac1q \sum_j \max\big(0, \gamma - \sqrt{\operatorname{Var}(z_{\cdot j}) + \varepsilon}\big),

    .. math::
        c(Z) = \frac1q \sum_{j \ne k} C(Z)_{jk}^2, \qquad
        C(Z) = \frac{1}{N-1} (Z - \bar Z)^\top (Z - \bar Z)

    (unbiased variance). ``loss = sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance``
    with ``invariance = s(Z, Z')``, ``variance = (v(Z) + v(Z')) / 2`` and ``covariance = c(Z) + c(Z')``: the
    official code halves the variance term but sums the covariance term (the paper's formula sums both); the
    25 / 25 / 1 defaults were tuned with the code, which is followed here. With ``V`` views: ``invariance`` is
    the mean over pairs, ``variance`` the mean of ``v`` over views and ``covariance`` ``2 x`` the mean of
    ``c`` over views.

    Variance and covariance use the statistics of the global batch (gradient-carrying all-gather, ``O(N q^2)``
    per rank, replicated); the invariance term uses the local rows (rank share).

    Parameters
    ----------
    z1, z2 : Tensor
        Views of shape ``(n, q)``, or ``z1`` a list of views.
    sim_coeff, std_coeff, cov_coeff : float
        Weights (paper defaults 25 / 25 / 1; the SFRIK paper ran 10 / 10 / 1 at q = 8192).
    eps : float
        Added to the variance inside the square root.
    gamma : float
        Target standard deviation of the hinge.
    check_finite : bool
        Raise ``ValueError`` on nan/inf inputs (one device sync).

    Returns
    -------
    LossTerms
        Terms ``invariance``, ``variance``, ``covariance``.
    """
    eps = _nonnegative("eps", eps)
    gamma = _nonnegative("gamma", gamma)
    views, world = _prepare(z1, z2, check_finite)
    n_total = world.total
    with _no_autocast(views[0].device):
        q = views[0].shape[1]
        inv = [(views[a] - views[b]).pow(2).sum() * (world.share / q) for a, b in _pairs(len(views))]
        invariance = torch.stack(inv).mean()
        var_terms, cov_terms = [], []
        for v in views:
            x = D.all_gather_with_grad(v, world.sizes)
            x = x - x.mean(dim=0)
            std = torch.sqrt(x.pow(2).sum(dim=0) / (n_total - 1) + eps)
            var_terms.append(F.relu(gamma - std).mean())
            cov = (x.T @ x) / (n_total - 1)
            cov_terms.append(_off_diagonal(cov).pow(2).sum() / q)
        variance = torch.stack(var_terms).mean()
        covariance = 2.0 * torch.stack(cov_terms).mean()
    return _combine(
        {"invariance": invariance, "variance": variance, "covariance": covariance},
        {"invariance": sim_coeff, "variance": std_coeff, "covariance": cov_coeff},
    )


# ----------------------------------------------------------------------------------------------------
# Barlow Twins (Zbontar et al., 2021)
# ----------------------------------------------------------------------------------------------------


def _global_batch_norm(z: Tensor, world: _World, eps: float) -> Tensor:
    """Batch normalisation, no affine parameters, over the global batch (biased variance, as BatchNorm1d)."""
    mean = D.all_reduce_sum(z.sum(dim=0)) / world.total
    zc = z - mean
    var = D.all_reduce_sum(zc.pow(2).sum(dim=0)) / world.total
    return zc / torch.sqrt(var + eps)


def barlow_twins_loss(
    z1: Views,
    z2: Tensor | None = None,
    *,
    lambd: float = 0.0051,
    scale_loss: float = 1.0,
    bn_eps: float = 1e-5,
    check_finite: bool = True,
) -> LossTerms:
    r"""Barlow Twins redundancy-reduction loss.

    Each view is batch-normalised over the global batch without affine parameters,
    :math:`\hat z_{ij} = (z_{ij} - \mu_j) / \sqrt{\sigma_j^2 + \varepsilon}` (biased variance, as
    ``BatchNorm1d``/``SyncBatchNorm`` in training mode), and the cross-correlation is

    .. math::  c_{jk} = \frac1N \sum_{i=1}^{N} \hat z^{(1)}_{ij} \hat z^{(2)}_{ik}

    (computed as a sum over ranks of the local products, like the official code's ``all_reduce`` of ``c``,
    here with a gradient). ``loss = scale_loss * (on_diag + lambd * off_diag)`` with :math:`\text{on\_diag} =
    \sum_j (1 - c_{jj})^2` and :math:`\text{off\_diag} = \sum_{j \ne k} c_{jk}^2` (averaged over view pairs
    for multi-crop). Per-rank cost ``O(n q^2)``, communication ``O(q^2)``.

    Parameters
    ----------
    z1, z2 : Tensor
        Views of shape ``(n, q)``, or ``z1`` a list of views.
    lambd : float
        Off-diagonal weight (paper: 0.0051).
    scale_loss : float
        Global factor (1 in the final official code; early versions used 0.024 with a larger learning rate).
    bn_eps : float
        Batch-normalisation epsilon (``BatchNorm1d`` default 1e-5).
    check_finite : bool
        Raise ``ValueError`` on nan/inf inputs (one device sync).

    Returns
    -------
    LossTerms
        Terms ``on_diag`` and ``off_diag`` (replicated), weights ``scale_loss`` and ``scale_loss * lambd``.
    """
    lambd = _nonnegative("lambd", lambd)
    scale_loss = _positive("scale_loss", scale_loss)
    bn_eps = _nonnegative("bn_eps", bn_eps)
    views, world = _prepare(z1, z2, check_finite)
    with _no_autocast(views[0].device):
        normed: dict[int, Tensor] = {}
        on, off = [], []
        for a, b in _pairs(len(views)):
            for k in (a, b):
                if k not in normed:
                    normed[k] = _global_batch_norm(views[k], world, bn_eps)
            c = D.all_reduce_sum(normed[a].T @ normed[b]) / world.total
            on.append((torch.diagonal(c) - 1.0).pow(2).sum())
            off.append(_off_diagonal(c).pow(2).sum())
        on_diag = torch.stack(on).mean()
        off_diag = torch.stack(off).mean()
    return _combine({"on_diag": on_diag, "off_diag": off_diag}, {"on_diag": scale_loss, "off_diag": scale_loss * lambd})


# ----------------------------------------------------------------------------------------------------
# NT-Xent / SimCLR (Chen et al., 2020)
# ----------------------------------------------------------------------------------------------------


def nt_xent_loss(
    z1: Views,
    z2: Tensor | None = None,
    *,
    temperature: float = 0.15,
    eps: float = 1e-12,
    check_finite: bool = True,
) -> LossTerms:
    r"""NT-Xent (SimCLR) loss, both views as anchors, negatives from the global batch.

    With :math:`u` the l2-normalised embeddings of the :math:`2N` rows of both views, :math:`p(a)` the other
    view of the same image and :math:`\tau` the temperature,

    .. math::
        \ell_a = -\frac{\langle u_a, u_{p(a)}\rangle}{\tau}
                 + \log \sum_{b \ne a} \exp\frac{\langle u_a, u_b\rangle}{\tau}, \qquad
        \text{loss} = \frac{1}{2N} \sum_{a=1}^{2N} \ell_a

    (the positive is in the denominator together with the :math:`2N-2` negatives), split into
    ``positive`` (mean of the first part) and ``negative`` (mean of the log-sum-exp), both with weight 1. With
    ``V`` views the two-view loss is averaged over pairs. Under ``torch.distributed`` every rank evaluates its
    local anchors against the gathered batch (``O(n N q)`` per rank; rank shares).

    Parameters
    ----------
    z1, z2 : Tensor
        Views of shape ``(n, q)``, or ``z1`` a list of views.
    temperature : float
        :math:`\tau` (the SFRIK paper ran SimCLR with 0.15).
    eps : float
        Normalisation floor.
    check_finite : bool
        Raise ``ValueError`` on nan/inf inputs (one device sync).

    Returns
    -------
    LossTerms
        Terms ``positive`` and ``negative``.
    """
    temperature = _positive("temperature", temperature)
    views, world = _prepare(z1, z2, check_finite)
    with _no_autocast(views[0].device):
        us = [F.normalize(v, dim=1, eps=eps) for v in views]
        gathered: dict[int, Tensor] = {}
        n = us[0].shape[0]
        big_n = world.total
        start = world.rows.start
        ar = torch.arange(n, device=us[0].device)
        rows = torch.cat([ar, ar + n])
        self_col = torch.cat([ar + start, ar + start + big_n])
        pos_col = torch.cat([ar + start + big_n, ar + start])
        pos_terms, neg_terms = [], []
        for a, b in _pairs(len(us)):
            for k in (a, b):
                if k not in gathered:
                    gathered[k] = D.all_gather_with_grad(us[k], world.sizes)
            anchors = torch.cat([us[a], us[b]])  # (2n, q)
            keys = torch.cat([gathered[a], gathered[b]])  # (2N, q)
            logits = (anchors @ keys.T) / temperature
            positive = -logits[rows, pos_col].sum()
            masked = logits.index_put(
                (rows, self_col), torch.tensor(-math.inf, dtype=logits.dtype, device=logits.device)
            )
            negative = torch.logsumexp(masked, dim=1).sum()
            scale = world.share / 2.0  # W / (2N)
            pos_terms.append(positive * scale)
            neg_terms.append(negative * scale)
        positive = torch.stack(pos_terms).mean()
        negative = torch.stack(neg_terms).mean()
    return _combine({"positive": positive, "negative": negative}, {"positive": 1.0, "negative": 1.0})


# ----------------------------------------------------------------------------------------------------
# modules
# ----------------------------------------------------------------------------------------------------


def _from_preset(cls: type[_L], presets: dict[str, dict[str, Any]], name: str, overrides: dict[str, Any]) -> _L:
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(presets)}")
    return cls(**{**presets[name], **overrides})


class _TermsLoss(nn.Module):
    """``forward`` returns the scalar loss; ``forward_terms`` the :class:`LossTerms`.

    A subclass names its functional twin (``_loss_fn``) and the attributes passed to it as keyword arguments
    (``_loss_options``).
    """

    _loss_fn: ClassVar[Callable[..., LossTerms]]
    _loss_options: ClassVar[tuple[str, ...]]

    def _call(self, z1: Views, z2: Tensor | None) -> LossTerms:
        return self._loss_fn(z1, z2, **{name: getattr(self, name) for name in self._loss_options})

    def forward_terms(self, z1: Views, z2: Tensor | None = None) -> LossTerms:
        """Loss, unweighted terms and weights; see :class:`LossTerms`."""
        return self._call(z1, z2)

    def forward(self, z1: Views, z2: Tensor | None = None) -> Tensor:
        """Scalar loss of two views ``(z1, z2)`` or of a list of views ``z1``."""
        return self._call(z1, z2).loss


class AlignUniformLoss(_TermsLoss):
    """Alignment + uniformity (Wang & Isola, 2020); module form of :func:`align_uniform_loss`.

    Defaults are the paper's (weights 1 and 1, ``t = 2``, ``alpha = 2``).
    ``AlignUniformLoss.from_preset("sfrik")`` gives the AUH baseline as run in the SFRIK paper (``3000 * mse +
    1 * uniform``, ``t = 2.5``).
    """

    _loss_fn = staticmethod(align_uniform_loss)
    _loss_options = ("align_weight", "unif_weight", "t", "alpha", "align_reduction", "eps", "check_finite")

    def __init__(
        self,
        align_weight: float = 1.0,
        unif_weight: float = 1.0,
        t: float = 2.0,
        alpha: float = 2.0,
        align_reduction: str = "sample",
        eps: float = 1e-12,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        self.align_weight = _nonnegative("align_weight", align_weight)
        self.unif_weight = _nonnegative("unif_weight", unif_weight)
        self.t = _positive("t", t)
        self.alpha = _positive("alpha", alpha)
        if align_reduction not in ("sample", "element"):
            raise ValueError(f"align_reduction must be 'sample' or 'element', got {align_reduction!r}")
        self.align_reduction = align_reduction
        self.eps = float(eps)
        self.check_finite = bool(check_finite)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> AlignUniformLoss:
        """Build from a preset of :data:`ALIGN_UNIFORM_PRESETS`, then apply ``overrides``."""
        return _from_preset(cls, ALIGN_UNIFORM_PRESETS, name, overrides)

    def extra_repr(self) -> str:
        return (
            f"align_weight={self.align_weight}, unif_weight={self.unif_weight}, t={self.t}, "
            f"alpha={self.alpha}, "
            f"align_reduction={self.align_reduction!r}"
        )


class VICRegLoss(_TermsLoss):
    """VICReg (Bardes et al., 2022), 25 / 25 / 1 defaults; module form of :func:`vicreg_loss`."""

    _loss_fn = staticmethod(vicreg_loss)
    _loss_options = ("sim_coeff", "std_coeff", "cov_coeff", "eps", "gamma", "check_finite")

    def __init__(
        self,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
        eps: float = 1e-4,
        gamma: float = 1.0,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        self.sim_coeff = _nonnegative("sim_coeff", sim_coeff)
        self.std_coeff = _nonnegative("std_coeff", std_coeff)
        self.cov_coeff = _nonnegative("cov_coeff", cov_coeff)
        self.eps = _nonnegative("eps", eps)
        self.gamma = _nonnegative("gamma", gamma)
        self.check_finite = bool(check_finite)

    def extra_repr(self) -> str:
        return (
            f"sim_coeff={self.sim_coeff}, std_coeff={self.std_coeff}, cov_coeff={self.cov_coeff}, "
            f"eps={self.eps}, gamma={self.gamma}"
        )


class BarlowTwinsLoss(_TermsLoss):
    """Barlow Twins (Zbontar et al., 2021), ``lambd = 0.0051``; module form of :func:`barlow_twins_loss`."""

    _loss_fn = staticmethod(barlow_twins_loss)
    _loss_options = ("lambd", "scale_loss", "bn_eps", "check_finite")

    def __init__(
        self, lambd: float = 0.0051, scale_loss: float = 1.0, bn_eps: float = 1e-5, check_finite: bool = True
    ) -> None:
        super().__init__()
        self.lambd = _nonnegative("lambd", lambd)
        self.scale_loss = _positive("scale_loss", scale_loss)
        self.bn_eps = _nonnegative("bn_eps", bn_eps)
        self.check_finite = bool(check_finite)

    def extra_repr(self) -> str:
        return f"lambd={self.lambd}, scale_loss={self.scale_loss}, bn_eps={self.bn_eps}"


class NTXentLoss(_TermsLoss):
    """NT-Xent / SimCLR (Chen et al., 2020), temperature 0.15 by default; module of :func:`nt_xent_loss`."""

    _loss_fn = staticmethod(nt_xent_loss)
    _loss_options = ("temperature", "eps", "check_finite")

    def __init__(self, temperature: float = 0.15, eps: float = 1e-12, check_finite: bool = True) -> None:
        super().__init__()
        self.temperature = _positive("temperature", temperature)
        self.eps = float(eps)
        self.check_finite = bool(check_finite)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
