r"""Baseline self-supervised losses with the conventions of their papers: AUH, VICReg, Barlow Twins, SimCLR.

Each loss is a thin :class:`torch.nn.Module` over its functional twin; the names of the terms are listed with it
(``loss = sum(weights[k] * terms[k])``, the weight of term ``X`` is the option ``X_weight``):

- :class:`AlignUniformLoss` / :func:`align_uniform_loss`: ``invariance``, ``uniformity``;
- :class:`VICRegLoss` / :func:`vicreg_loss`: ``invariance``, ``variance``, ``covariance``;
- :class:`BarlowTwinsLoss` / :func:`barlow_twins_loss`: ``invariance`` (on-diagonal), ``redundancy``
  (off-diagonal);
- :class:`NTXentLoss` / :func:`nt_xent_loss`: ``contrastive``.

Views, half precision and the terms API are those of every loss (:class:`~dotkernels_ssl.losses.LossTerms`).

Distributed
-----------
Under ``torch.distributed`` each rank passes its local rows. Global statistics use the gradient-carrying
collectives of :mod:`dotkernels_ssl.losses.distributed` (negatives, uniformity, VICReg variance/covariance,
Barlow Twins batch normalisation and cross-correlation are over the global batch of ``N = sum of local sizes``
rows). A term is either *replicated* (every rank computes the same global value) or a *rank share*: a global mean
:math:`\frac1N \sum_i \ell_i` is computed on rank ``r`` as :math:`\frac{W}{N}\sum_{i \in r} \ell_i`, so that the
average over ranks is the global value and, with DDP's gradient averaging, the parameter gradients equal the
single-process ones. Rank shares: AUH ``invariance``, VICReg ``invariance``, NT-Xent ``contrastive`` (local anchors
against the gathered batch, ``O(n N q)`` per rank). Replicated: AUH ``uniformity``, VICReg ``variance`` and
``covariance``, Barlow Twins ``invariance`` and ``redundancy``. Every loss then *returns* the value of the global
loss on every rank (``share + (global - share).detach()``, one all-reduce without autograd), keeping the rank
share's gradient.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from . import distributed as D
from ._base import (
    DEFAULT_EPS,
    LossTerms,
    TermsLoss,
    Views,
    World,
    check_options,
    combine,
    no_autocast,
    prepare_views,
    squared_distance_share,
    view_pairs,
)

__all__ = [
    "AlignUniformLoss",
    "BarlowTwinsLoss",
    "NTXentLoss",
    "VICRegLoss",
    "align_uniform_loss",
    "barlow_twins_loss",
    "nt_xent_loss",
    "vicreg_loss",
]


def _off_diagonal(m: Tensor) -> Tensor:
    """Off-diagonal entries of a square matrix as a flat view (no copy)."""
    k = m.shape[0]
    return m.flatten()[:-1].view(k - 1, k + 1)[:, 1:].flatten()


# ----------------------------------------------------------------------------------------------------
# Alignment and uniformity on the hypersphere (Wang & Isola, 2020)
# ----------------------------------------------------------------------------------------------------


def _log_mean_gaussian(z: Tensor, world: World, gamma: float) -> Tensor:
    """``log( 1/(N(N-1)) sum_{i != j} exp(-gamma ||z_i - z_j||^2) )`` over the global batch (replicated)."""
    cols = D.all_gather_with_grad(z, world.sizes)  # (N, q)
    # ||u - v||^2 = 2 - 2 <u, v> for unit vectors: exponent -gamma ||.||^2 = 2 gamma (<u, v> - 1) <= 0.
    logits = (z @ cols.T - 1.0) * (2.0 * gamma)  # local rows (n, N)
    idx = torch.arange(z.shape[0], device=z.device)
    logits = logits.index_put((idx, idx + world.rows.start), torch.tensor(-math.inf, dtype=z.dtype, device=z.device))
    shift = D.all_reduce_max(logits.amax())
    total = D.all_reduce_sum(torch.exp(logits - shift).sum())
    return shift + torch.log(total) - math.log(world.total * (world.total - 1))


def _norm_power(d: Tensor, alpha: float) -> Tensor:
    """Row norms to the power alpha, with gradient 0 at coinciding rows (a subgradient at the minimum; for
    alpha < 1 the plain power's gradient there is inf * 0 = nan)."""
    norm = torch.linalg.vector_norm(d, dim=1)
    positive = norm > 0
    return torch.where(positive, torch.where(positive, norm, torch.ones_like(norm)).pow(alpha), torch.zeros_like(norm))


def _alignment(us: list[Tensor], world: World, alpha: float, align_reduction: str) -> Tensor:
    r"""Rank share of the mean over pairs of :math:`\frac1N\sum_i \|a_i - b_i\|^\alpha` (divided by q: "element")."""
    if alpha == 2.0:
        value = squared_distance_share(us, world)
    else:
        pairs = [_norm_power(us[a] - us[b], alpha).sum() for a, b in view_pairs(len(us))]
        value = torch.stack(pairs).mean() * world.share
    return value / us[0].shape[1] if align_reduction == "element" else value


def align_uniform_loss(
    z1: Views,
    z2: Tensor | None = None,
    *,
    invariance_weight: float = 1.0,
    uniformity_weight: float = 1.0,
    gamma: float = 2.0,
    alpha: float = 2.0,
    align_reduction: str = "sample",
    eps: float = DEFAULT_EPS,
    check_finite: bool = True,
) -> LossTerms:
    r"""Alignment + uniformity loss of Wang & Isola (2020) ("AUH").

    On l2-normalised embeddings :math:`u_i = z_i / \max(\|z_i\|, \varepsilon)`,

    .. math::
        \text{invariance} = \frac1N \sum_i \|u^{(1)}_i - u^{(2)}_i\|_2^{\alpha}
        \quad(\text{divided by } q \text{ when } \texttt{align\_reduction="element"}),

    .. math::
        \text{uniformity}(U) = \log \frac{1}{N(N-1)} \sum_{i \ne j} e^{-\gamma \|u_i - u_j\|_2^2}

    (the U-statistic over distinct pairs, the ``pdist`` form of the paper), averaged over views, and
    ``loss = invariance_weight * invariance + uniformity_weight * uniformity``. The uniformity uses the global batch
    under ``torch.distributed`` (each rank computes its local rows against the gathered batch and the row sums are
    all-reduced); the log of a mean is computed with a global max shift, so a large ``gamma`` does not underflow.

    Parameters
    ----------
    z1, z2 : Tensor
        Views of shape ``(n, q)``, or ``z1`` a list of ``V >= 2`` views and ``z2`` omitted.
    invariance_weight, uniformity_weight : float
        Weights of the two terms (Wang & Isola: 1 and 1; the SFRIK paper's AUH: 3000 with ``"element"`` and 1, see
        :data:`~dotkernels_ssl.losses.PRESETS`).
    gamma : float
        Scale of the Gaussian potential (Wang & Isola's ``t``; 2 in their paper, 2.5 in the SFRIK paper's runs).
    alpha : float
        Alignment exponent (default 2).
    align_reduction : {"sample", "element"}
        ``"sample"``: mean over samples of :math:`\|\cdot\|^\alpha` (Wang & Isola). ``"element"``: also divided by
        ``q``, i.e. ``F.mse_loss`` of the normalised views for ``alpha = 2`` (the SFRIK code's AUH).
    eps : float
        Normalisation floor.
    check_finite : bool
        Raise ``ValueError`` on nan/inf inputs (one device sync).

    Returns
    -------
    LossTerms
        Terms ``invariance`` (rank share) and ``uniformity`` (replicated); the values are global under DDP.

    See Also
    --------
    AlignUniformLoss : The module.
    dotkernels.regularizers.wang_isola_uniformity : The uniformity term as a Gaussian-kernel MMD.

    References
    ----------
    .. [1] T. Wang and P. Isola, "Understanding contrastive representation learning through alignment and
       uniformity on the hypersphere", International Conference on Machine Learning (ICML), 2020.

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(64, 8)
    >>> float(align_uniform_loss(z, z).terms["invariance"])
    0.0
    """
    o = check_options(locals())
    us, world = prepare_views(z1, z2, check_finite=check_finite, normalize_eps=o["eps"])
    with no_autocast(us[0].device):
        invariance = _alignment(us, world, o["alpha"], o["align_reduction"])
        uniformity = torch.stack([_log_mean_gaussian(u, world, o["gamma"]) for u in us]).mean()
    return combine(
        {"invariance": invariance, "uniformity": uniformity},
        {"invariance": o["invariance_weight"], "uniformity": o["uniformity_weight"]},
    )


# ----------------------------------------------------------------------------------------------------
# VICReg (Bardes, Ponce & LeCun, 2022)
# ----------------------------------------------------------------------------------------------------


def _variance_covariance(v: Tensor, world: World, target_std: float, eps: float) -> tuple[Tensor, Tensor]:
    """Hinge on the standard deviations and the sum of squared off-diagonal covariances / q, global batch."""
    x = D.all_gather_with_grad(v, world.sizes)
    x = x - x.mean(dim=0)
    n_total, q = x.shape
    std = torch.sqrt(x.pow(2).sum(dim=0) / (n_total - 1) + eps)
    cov = (x.T @ x) / (n_total - 1)
    return F.relu(target_std - std).mean(), _off_diagonal(cov).pow(2).sum() / q


def vicreg_loss(
    z1: Views,
    z2: Tensor | None = None,
    *,
    invariance_weight: float = 25.0,
    variance_weight: float = 25.0,
    covariance_weight: float = 1.0,
    target_std: float = 1.0,
    eps: float = 1e-4,
    check_finite: bool = True,
) -> LossTerms:
    r"""VICReg: variance-invariance-covariance regularisation, with the official code's conventions.

    For views :math:`Z, Z' \in \mathbb R^{N \times q}` (raw embeddings, no normalisation),

    .. math::
        s(Z, Z') = \frac{1}{N q} \sum_{i,j} (z_{ij} - z'_{ij})^2, \qquad
        v(Z) = \frac1q \sum_j \max\big(0, \sigma^* - \sqrt{\operatorname{Var}(z_{\cdot j}) + \varepsilon}\big),

    .. math::
        c(Z) = \frac1q \sum_{j \ne k} C(Z)_{jk}^2, \qquad
        C(Z) = \frac{1}{N-1} (Z - \bar Z)^\top (Z - \bar Z)

    (unbiased variance, :math:`\sigma^*` = ``target_std``). ``loss = invariance_weight * invariance +
    variance_weight * variance + covariance_weight * covariance`` with ``invariance = s(Z, Z')``, ``variance =
    (v(Z) + v(Z')) / 2`` and ``covariance = c(Z) + c(Z')``: the official code halves the variance term but sums the
    covariance term (the paper's formula sums both); the 25 / 25 / 1 defaults were tuned with the code, which is
    followed here. With ``V`` views: ``invariance`` is the mean over pairs, ``variance`` the mean of ``v`` over
    views and ``covariance`` ``2 x`` the mean of ``c`` over views.

    Variance and covariance use the statistics of the global batch (gradient-carrying all-gather, ``O(N q^2)``
    per rank, replicated); the invariance term uses the local rows (rank share).

    Parameters
    ----------
    z1, z2 : Tensor
        Views of shape ``(n, q)``, or ``z1`` a list of views.
    invariance_weight, variance_weight, covariance_weight : float
        Weights (paper defaults 25 / 25 / 1; the SFRIK paper ran 10 / 10 / 1 at q = 8192).
    target_std : float
        Target standard deviation of the hinge (1 in the paper).
    eps : float
        Added to the variance inside the square root.
    check_finite : bool
        Raise ``ValueError`` on nan/inf inputs (one device sync).

    Returns
    -------
    LossTerms
        Terms ``invariance``, ``variance``, ``covariance``; the values are global under DDP.

    See Also
    --------
    VICRegLoss : The module.
    dotkernels.regularizers.vicreg_variance : The variance term on any array library.
    dotkernels.regularizers.vicreg_covariance : The covariance term on any array library.

    References
    ----------
    .. [1] A. Bardes, J. Ponce and Y. LeCun, "VICReg: Variance-invariance-covariance regularization for
       self-supervised learning", International Conference on Learning Representations (ICLR), 2022.

    Examples
    --------
    >>> import torch
    >>> z = torch.eye(4).repeat(8, 1) * 4.0
    >>> sorted(vicreg_loss(z, z).terms)
    ['covariance', 'invariance', 'variance']
    """
    o = check_options(locals())
    views, world = prepare_views(z1, z2, check_finite=check_finite)
    with no_autocast(views[0].device):
        invariance = squared_distance_share(views, world) / views[0].shape[1]
        var_cov = [_variance_covariance(v, world, o["target_std"], o["eps"]) for v in views]
        variance = torch.stack([v for v, _ in var_cov]).mean()
        covariance = 2.0 * torch.stack([c for _, c in var_cov]).mean()
    return combine(
        {"invariance": invariance, "variance": variance, "covariance": covariance},
        {"invariance": o["invariance_weight"], "variance": o["variance_weight"], "covariance": o["covariance_weight"]},
    )


# ----------------------------------------------------------------------------------------------------
# Barlow Twins (Zbontar et al., 2021)
# ----------------------------------------------------------------------------------------------------


def _global_batch_norm(z: Tensor, world: World, eps: float) -> Tensor:
    """Batch normalisation, no affine parameters, over the global batch (biased variance, as BatchNorm1d)."""
    mean = D.all_reduce_sum(z.sum(dim=0)) / world.total
    zc = z - mean
    var = D.all_reduce_sum(zc.pow(2).sum(dim=0)) / world.total
    return zc / torch.sqrt(var + eps)


def barlow_twins_loss(
    z1: Views,
    z2: Tensor | None = None,
    *,
    invariance_weight: float = 1.0,
    redundancy_weight: float = 0.0051,
    bn_eps: float = 1e-5,
    check_finite: bool = True,
) -> LossTerms:
    r"""Barlow Twins redundancy-reduction loss.

    Each view is batch-normalised over the global batch without affine parameters,
    :math:`\hat z_{ij} = (z_{ij} - \mu_j) / \sqrt{\sigma_j^2 + \varepsilon}` (biased variance, as
    ``BatchNorm1d``/``SyncBatchNorm`` in training mode), and the cross-correlation is

    .. math::  c_{jk} = \frac1N \sum_{i=1}^{N} \hat z^{(1)}_{ij} \hat z^{(2)}_{ik}

    (a sum over ranks of the local products, like the official code's ``all_reduce`` of ``c``, here with a
    gradient). ``loss = invariance_weight * invariance + redundancy_weight * redundancy`` with
    :math:`\text{invariance} = \sum_j (1 - c_{jj})^2` and :math:`\text{redundancy} = \sum_{j \ne k} c_{jk}^2`
    (averaged over view pairs for multi-crop); the official ``scale_loss * (on_diag + lambd * off_diag)`` is
    ``invariance_weight = scale_loss``, ``redundancy_weight = scale_loss * lambd``. Per-rank cost ``O(n q^2)``,
    communication ``O(q^2)``.

    Parameters
    ----------
    z1, z2 : Tensor
        Views of shape ``(n, q)``, or ``z1`` a list of views.
    invariance_weight : float
        Weight of the on-diagonal term (1 in the final official code).
    redundancy_weight : float
        Weight of the off-diagonal term (the paper's :math:`\lambda = 0.0051`).
    bn_eps : float
        Batch-normalisation epsilon (``BatchNorm1d`` default 1e-5).
    check_finite : bool
        Raise ``ValueError`` on nan/inf inputs (one device sync).

    Returns
    -------
    LossTerms
        Terms ``invariance`` and ``redundancy`` (replicated).

    See Also
    --------
    BarlowTwinsLoss : The module.
    dotkernels.regularizers.barlow_twins_redundancy : The redundancy term on any array library.

    References
    ----------
    .. [1] J. Zbontar, L. Jing, I. Misra, Y. LeCun and S. Deny, "Barlow Twins: Self-supervised learning via
       redundancy reduction", International Conference on Machine Learning (ICML), 2021.

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(256, 4, dtype=torch.float64)
    >>> float(barlow_twins_loss(z, z).terms["invariance"]) < 1e-8
    True
    """
    o = check_options(locals())
    views, world = prepare_views(z1, z2, check_finite=check_finite)
    with no_autocast(views[0].device):
        normed = [_global_batch_norm(v, world, o["bn_eps"]) for v in views]
        on, off = [], []
        for a, b in view_pairs(len(views)):
            c = D.all_reduce_sum(normed[a].T @ normed[b]) / world.total
            on.append((torch.diagonal(c) - 1.0).pow(2).sum())
            off.append(_off_diagonal(c).pow(2).sum())
    return combine(
        {"invariance": torch.stack(on).mean(), "redundancy": torch.stack(off).mean()},
        {"invariance": o["invariance_weight"], "redundancy": o["redundancy_weight"]},
    )


# ----------------------------------------------------------------------------------------------------
# NT-Xent / SimCLR (Chen et al., 2020)
# ----------------------------------------------------------------------------------------------------


def _nt_xent_pair(a: Tensor, b: Tensor, keys: Tensor, world: World, temperature: float) -> Tensor:
    """Rank share of the two-view NT-Xent: local anchors ``[a; b]`` against the gathered keys ``[A; B]``."""
    n, big_n, start = a.shape[0], world.total, world.rows.start
    ar = torch.arange(n, device=a.device)
    rows = torch.cat([ar, ar + n])
    self_col = torch.cat([ar + start, ar + start + big_n])
    pos_col = torch.cat([ar + start + big_n, ar + start])
    logits = (torch.cat([a, b]) @ keys.T) / temperature
    positive = logits[rows, pos_col].sum()
    masked = logits.index_put((rows, self_col), torch.tensor(-math.inf, dtype=logits.dtype, device=logits.device))
    return (torch.logsumexp(masked, dim=1).sum() - positive) * (world.share / 2.0)  # W / (2N)


def nt_xent_loss(
    z1: Views,
    z2: Tensor | None = None,
    *,
    temperature: float = 0.15,
    eps: float = DEFAULT_EPS,
    check_finite: bool = True,
) -> LossTerms:
    r"""NT-Xent (SimCLR) loss, both views as anchors, negatives from the global batch.

    With :math:`u` the l2-normalised embeddings of the :math:`2N` rows of both views, :math:`p(a)` the other
    view of the same image and :math:`\tau` the temperature,

    .. math::
        \ell_a = -\frac{\langle u_a, u_{p(a)}\rangle}{\tau}
                 + \log \sum_{b \ne a} \exp\frac{\langle u_a, u_b\rangle}{\tau}, \qquad
        \text{contrastive} = \frac{1}{2N} \sum_{a=1}^{2N} \ell_a

    (the positive is in the denominator together with the :math:`2N-2` negatives), weight 1. With ``V`` views the
    two-view loss is averaged over pairs. Under ``torch.distributed`` every rank evaluates its local anchors
    against the gathered batch (``O(n N q)`` per rank; a rank share).

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
        Term ``contrastive``; the value is global under DDP.

    See Also
    --------
    NTXentLoss : The module.
    align_uniform_loss : Alignment and uniformity.

    References
    ----------
    .. [1] T. Chen, S. Kornblith, M. Norouzi and G. Hinton, "A simple framework for contrastive learning of
       visual representations", International Conference on Machine Learning (ICML), 2020.

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(16, 8)
    >>> float(nt_xent_loss(z, -z).loss) > float(nt_xent_loss(z, z).loss)
    True
    """
    o = check_options(locals())
    us, world = prepare_views(z1, z2, check_finite=check_finite, normalize_eps=o["eps"])
    with no_autocast(us[0].device):
        gathered = [D.all_gather_with_grad(u, world.sizes) for u in us]
        pairs = [
            _nt_xent_pair(us[a], us[b], torch.cat([gathered[a], gathered[b]]), world, o["temperature"])
            for a, b in view_pairs(len(us))
        ]
    return combine({"contrastive": torch.stack(pairs).mean()}, {"contrastive": 1.0})


# ----------------------------------------------------------------------------------------------------
# modules
# ----------------------------------------------------------------------------------------------------


class AlignUniformLoss(TermsLoss):
    """Alignment + uniformity (Wang & Isola, 2020); module of :func:`align_uniform_loss`.

    Defaults are the paper's (weights 1 and 1, ``gamma = 2``, ``alpha = 2``); ``from_preset("resnet18")`` gives the
    AUH baseline as run in the SFRIK paper (``3000 * mse + 1 * uniformity``, ``gamma = 2.5``). Under DDP the
    returned value is the global loss on every rank while the gradient is this rank's exact share
    (``share + (global - share).detach()``).

    Parameters
    ----------
    invariance_weight, uniformity_weight, gamma, alpha, align_reduction, eps, check_finite
        The options of :func:`align_uniform_loss` (same names, defaults and order, positional or keyword), checked once
        here and stored; see :func:`align_uniform_loss`.

    See Also
    --------
    align_uniform_loss : The functional twin.
    dotkernels.regularizers.wang_isola_uniformity : The uniformity term as a Gaussian-kernel MMD.

    References
    ----------
    .. [1] T. Wang and P. Isola, "Understanding contrastive representation learning through alignment and
       uniformity on the hypersphere", International Conference on Machine Learning (ICML), 2020.

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(32, 16)
    >>> float(AlignUniformLoss().forward_terms(z, z).terms["invariance"])
    0.0
    """

    function = staticmethod(align_uniform_loss)
    preset_method = "auh"


class VICRegLoss(TermsLoss):
    """VICReg (Bardes et al., 2022), 25 / 25 / 1 defaults; module of :func:`vicreg_loss`.

    Under DDP the returned value is the global loss on every rank while the gradient is this rank's exact share
    (``share + (global - share).detach()``).

    Parameters
    ----------
    invariance_weight, variance_weight, covariance_weight, target_std, eps, check_finite
        The options of :func:`vicreg_loss` (same names, defaults and order, positional or keyword), checked once
        here and stored; see :func:`vicreg_loss`.

    See Also
    --------
    vicreg_loss : The functional twin.
    dotkernels.regularizers.vicreg_variance : The variance term on any array library.
    dotkernels.regularizers.vicreg_covariance : The covariance term on any array library.

    References
    ----------
    .. [1] A. Bardes, J. Ponce and Y. LeCun, "VICReg: Variance-invariance-covariance regularization for
       self-supervised learning", International Conference on Learning Representations (ICLR), 2022.

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(32, 16)
    >>> float(VICRegLoss().forward_terms(z, z).terms["invariance"])
    0.0
    """

    function = staticmethod(vicreg_loss)
    preset_method = "vicreg"


class BarlowTwinsLoss(TermsLoss):
    """Barlow Twins (Zbontar et al., 2021), redundancy weight 0.0051; module of :func:`barlow_twins_loss`.

    Under DDP the returned value is the global loss on every rank (its terms are replicated statistics of the
    global batch) while the gradient is this rank's exact share.

    Parameters
    ----------
    invariance_weight, redundancy_weight, bn_eps, check_finite
        The options of :func:`barlow_twins_loss` (same names, defaults and order, positional or keyword), checked once
        here and stored; see :func:`barlow_twins_loss`.

    See Also
    --------
    barlow_twins_loss : The functional twin.
    dotkernels.regularizers.barlow_twins_redundancy : The redundancy term on any array library.

    References
    ----------
    .. [1] J. Zbontar, L. Jing, I. Misra, Y. LeCun and S. Deny, "Barlow Twins: Self-supervised learning via
       redundancy reduction", International Conference on Machine Learning (ICML), 2021.

    Examples
    --------
    >>> import torch
    >>> loss = BarlowTwinsLoss()
    >>> sorted(loss.forward_terms(torch.randn(32, 16), torch.randn(32, 16)).terms)
    ['invariance', 'redundancy']
    """

    function = staticmethod(barlow_twins_loss)
    preset_method = "barlow"


class NTXentLoss(TermsLoss):
    """NT-Xent / SimCLR (Chen et al., 2020), temperature 0.15 by default; module of :func:`nt_xent_loss`.

    Under DDP the returned value is the global loss on every rank while the gradient is this rank's exact share
    (``share + (global - share).detach()``).

    Parameters
    ----------
    temperature, eps, check_finite
        The options of :func:`nt_xent_loss` (same names, defaults and order, positional or keyword), checked once
        here and stored; see :func:`nt_xent_loss`.

    See Also
    --------
    nt_xent_loss : The functional twin.
    AlignUniformLoss : Alignment and uniformity, a non-contrastive relative.

    References
    ----------
    .. [1] T. Chen, S. Kornblith, M. Norouzi and G. Hinton, "A simple framework for contrastive learning of
       visual representations", International Conference on Machine Learning (ICML), 2020.

    Examples
    --------
    >>> import torch
    >>> loss = NTXentLoss(temperature=0.5)
    >>> loss(torch.randn(32, 16), torch.randn(32, 16)).shape
    torch.Size([])
    """

    function = staticmethod(nt_xent_loss)
    preset_method = "simclr"
