r"""Classic self-supervised regularisers in their original form, and the dot-product kernels that reproduce them.

Every function takes a batch of embeddings ``Z`` (n x q, any array-API array: numpy, torch, ...) and returns a
0-d array of the same library, dtype and device (differentiable under torch autograd).

Notation: rows :math:`z_i`, :math:`t_{ij} = z_i^T z_j`, :math:`m = n^{-1}\sum_i z_i`, :math:`S = n^{-1} Z^T Z =
E[z z^T]` (uncentred second moment over the batch), :math:`C_n = S - m m^T` (centred covariance, denominator n),
:math:`\sigma` the uniform law on :math:`S^{q-1}`. For a dot-product kernel :math:`\varphi = \sum_l a_l P_{l,q}`,

.. math::

    \mathrm{MMD}_V^2 = n^{-2} \sum_{i,j} \varphi(t_{ij}) - a_0, \qquad
    \mathrm{MMD}_U^2 = \frac{1}{n(n-1)} \sum_{i \ne j} \varphi(t_{ij}) - a_0,

(:math:`a_0` is the uniform mean embedding) and :math:`n\,\mathrm{MMD}_V^2 = (n-1)\mathrm{MMD}_U^2 + \varphi(1) - a_0`.

Exact special cases (rows on the unit sphere; each is tested to 1e-12 and derived in :mod:`dotkernels.symbolic`):

* Wang & Isola uniformity = :math:`\log(a_0 + \mathrm{MMD}_U^2)` with ``GaussianKernel(gamma)``;
* centring :math:`\|m\|^2` = :math:`\mathrm{MMD}_V^2` with :math:`P_{1,q}(t) = t`;
* whitening :math:`\|S - I/q\|_F^2` = :math:`\mathrm{MMD}_V^2` with :math:`t^2` (``MonomialKernel(2)``);
* :math:`b_1\|m\|^2 + b_2\frac{q}{q-1}\|S - I/q\|_F^2` = :math:`\mathrm{MMD}_V^2` with :math:`b_1 P_{1,q} + b_2
  P_{2,q}`;
* spectral contrastive repulsion = :math:`1/q + \mathrm{MMD}_U^2` with :math:`t^2`;
* energy distance to :math:`\sigma` = :math:`\mathrm{MMD}^2` (V or U) with ``DistanceKernel(s=s)``.

Not MMDs (what differs and the nearest exact statements are in their docstrings): VICReg's variance hinge and
off-diagonal covariance, Barlow Twins' redundancy reduction. Every dot-product-kernel MMD statistic is a function of
the Gram matrix :math:`Z Z^T`, hence unchanged when Z is replaced by :math:`Z R` for an orthogonal R; these three
terms change, so no dot-product kernel reproduces them.

Accuracy and domain: the original forms are evaluated in the input's dtype by their defining formulas (relative
error a few eps of that dtype, tested against loops in float64 and mpmath); the ``*_via_kernel`` forms are
:func:`dotkernels.mmd.mmd2_uniform` (float64 accumulation) and need unit-norm rows (ValueError otherwise). Batches
need n >= 2 rows (``centering`` and ``whitening``: n >= 1).
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

from ._array_api import array_namespace, as_array
from ._validate import check_estimator, check_points, check_real
from .kernels import DistanceKernel, DotProductKernel, GaussianKernel, LegendreSeriesKernel, MonomialKernel
from .mmd import mmd2_uniform

__all__ = [
    "barlow_twins_redundancy",
    "centering",
    "centering_whitening",
    "centering_whitening_kernel",
    "centering_whitening_via_kernel",
    "energy_distance_to_uniform",
    "energy_distance_via_kernel",
    "energy_kernel",
    "spectral_contrastive_kernel",
    "spectral_contrastive_repulsion",
    "spectral_contrastive_repulsion_via_kernel",
    "vicreg_covariance",
    "vicreg_variance",
    "wang_isola_kernel",
    "wang_isola_uniformity",
    "wang_isola_uniformity_via_kernel",
    "whitening",
    "whitening_kernel",
    "whitening_via_kernel",
]


# ---------------------------------------------------------------------------------------------------------------
# helpers


def _batch(Z: Any, name: str = "Z", *, min_rows: int = 2, min_cols: int = 1) -> tuple[Any, Any]:
    Z, xp = as_array(Z, name)
    if Z.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (n, q) of embeddings, got shape {tuple(Z.shape)}")
    if Z.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} rows (embeddings), got {Z.shape[0]}")
    if Z.shape[1] < min_cols:
        raise ValueError(f"{name} must have at least {min_cols} columns (dimension), got {Z.shape[1]}")
    return Z, xp


def _eye(xp: Any, n: int, like: Any) -> Any:
    return xp.eye(n, dtype=like.dtype, device=array_api_compat.device(like))


def _second_moment(Z: Any, xp: Any) -> Any:
    """S = Z^T Z / n."""
    return xp.matmul(xp.matrix_transpose(Z), Z) / Z.shape[0]


def _squared_distances(Z: Any, xp: Any) -> Any:
    """||z_i - z_j||^2 from the coordinates (clipped at 0 against rounding)."""
    sq = xp.sum(Z * Z, axis=1)
    D = sq[:, None] + sq[None, :] - 2.0 * xp.matmul(Z, xp.matrix_transpose(Z))
    return xp.clip(D, 0.0, None)


def _kernel_mmd2(Z: Any, kernel: DotProductKernel, estimator: str) -> Any:
    """MMD^2 of the batch to the uniform law (V: diagonal kept; U: i != j) by :func:`~dotkernels.mmd.mmd2_uniform`."""
    return mmd2_uniform(Z, kernel, estimator=estimator, method="gram")


def _standardize(Z: Any, xp: Any, eps: float) -> Any:
    """Columns centred and divided by sqrt(biased variance + eps) (BatchNorm1d(affine=False) in training mode)."""
    centred = Z - xp.mean(Z, axis=0)
    var = xp.mean(centred * centred, axis=0)
    return centred / xp.sqrt(var + eps)


# ---------------------------------------------------------------------------------------------------------------
# Wang & Isola uniformity


def wang_isola_uniformity(Z: Any, *, gamma: float = 2.0) -> Any:
    r"""Wang & Isola's (2020) uniformity loss :math:`\log \frac{1}{n(n-1)} \sum_{i \ne j} e^{-\gamma \|z_i - z_j\|^2}`.

    The original code averages ``pdist(z).pow(2).mul(-t).exp()`` (their ``t`` is ``gamma``) over the pairs i < j,
    which is the same mean. It is evaluated here in log-sum-exp form (no underflow for large gamma).

    Exact relation (unit-norm rows). With the Gaussian kernel :math:`k(x, y) = e^{-\gamma\|x-y\|^2} = \varphi(x^Ty)`,
    :math:`\varphi(t) = e^{-2\gamma(1-t)}` (:func:`wang_isola_kernel`),

    .. math::

        \text{uniformity}(Z) = \log\big(a_0 + \mathrm{MMD}_U^2\big), \qquad
        a_0 = e^{-2\gamma}\, {}_0F_1(; q/2; \gamma^2),

    a strictly increasing function of the U-statistic :math:`\mathrm{MMD}_U^2`
    (see :func:`wang_isola_uniformity_via_kernel` and :func:`dotkernels.symbolic.derive_uniformity_identity`).
    For rows off the sphere the loss is still defined but is not an MMD to the uniform law.

    Parameters
    ----------
    Z : array, shape (n, q), n >= 2
        Embeddings (normally l2-normalised).
    gamma : float
        Scale, > 0 (the paper's ``t``, default 2).

    Returns
    -------
    array
        0-d, Z's library, dtype and device.

    See Also
    --------
    wang_isola_uniformity_via_kernel : The same as a Gaussian-kernel MMD.
    dotkernels_ssl.losses.AlignUniformLoss : The training loss.

    Accuracy
    --------
    Log-sum-exp in the input dtype: relative error a few eps of that dtype (tested against mpmath at
    gamma = 500). Domain: n >= 2 rows, gamma > 0.

    References
    ----------
    .. [1] T. Wang and P. Isola, "Understanding contrastive representation learning through alignment and
       uniformity on the hypersphere", International Conference on Machine Learning (ICML), 2020.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.eye(3)  # every pair at squared distance 2
    >>> bool(np.isclose(wang_isola_uniformity(Z, gamma=2.0), -4.0))
    True
    """
    gamma = check_real(gamma, "gamma", positive=True)
    Z, xp = _batch(Z)
    n = Z.shape[0]
    logits = -gamma * _squared_distances(Z, xp)
    diagonal = _eye(xp, n, Z) > 0.5
    logits = xp.where(diagonal, -math.inf, logits)
    top = xp.max(logits)
    return xp.log(xp.sum(xp.exp(logits - top))) + top - math.log(n * (n - 1))


def wang_isola_kernel(*, gamma: float = 2.0) -> GaussianKernel:
    r"""The kernel of Wang & Isola's uniformity: :math:`\exp(-\gamma\|x - y\|^2)` (``GaussianKernel(gamma=gamma)``).

    Parameters
    ----------
    gamma : float
        Scale of the Gaussian potential, ``gamma > 0`` (Wang & Isola's ``t``).

    Returns
    -------
    GaussianKernel
        ``GaussianKernel(gamma=gamma)``.

    See Also
    --------
    wang_isola_uniformity : The uniformity term.

    Accuracy
    --------
    Exact (a kernel object).

    References
    ----------
    .. [1] T. Wang and P. Isola, "Understanding contrastive representation learning through alignment and
       uniformity on the hypersphere", International Conference on Machine Learning (ICML), 2020.

    Examples
    --------
    >>> wang_isola_kernel(gamma=2.0)
    GaussianKernel(gamma=2.0)
    """
    return GaussianKernel(gamma=check_real(gamma, "gamma", positive=True))


def wang_isola_uniformity_via_kernel(Z: Any, *, gamma: float = 2.0) -> Any:
    r""":math:`\log(a_0 + \mathrm{MMD}_U^2)` with ``GaussianKernel(gamma=gamma)``, by
    :func:`dotkernels.mmd.mmd2_uniform`: equals :func:`wang_isola_uniformity` for unit-norm rows (the rows must be
    unit vectors). The sum :math:`a_0 + \mathrm{MMD}_U^2` cancels to an absolute accuracy of about
    :math:`\epsilon a_0`, so when the off-diagonal mean is much smaller than :math:`a_0` (large gamma, spread-out
    batch) prefer :func:`wang_isola_uniformity` for the value.

    Parameters
    ----------
    Z : array, shape (n, q)
        Embeddings on the unit sphere (rows); any array-API array.
    gamma : float
        Scale of the Gaussian potential, ``gamma > 0`` (Wang & Isola's ``t``).

    Returns
    -------
    array
        0-d, of Z's library, dtype and device.

    See Also
    --------
    wang_isola_uniformity : The original form.
    dotkernels.mmd.mmd2_uniform : The squared MMD.

    Accuracy
    --------
    Absolute ~eps * a_0 in the argument of the log (float64, :func:`dotkernels.mmd.mmd2_uniform`).
    Domain: n >= 2 unit rows.

    References
    ----------
    .. [1] T. Wang and P. Isola, "Understanding contrastive representation learning through alignment and
       uniformity on the hypersphere", International Conference on Machine Learning (ICML), 2020.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    >>> bool(np.isclose(wang_isola_uniformity_via_kernel(Z), wang_isola_uniformity(Z)))
    True
    """
    kernel = wang_isola_kernel(gamma=gamma)
    Z, xp = check_points(Z, "Z", min_rows=2, float64=False)
    a0 = kernel.uniform_mean_embedding(q=int(Z.shape[1]))
    return xp.log(a0 + _kernel_mmd2(Z, kernel, "u"))


# ---------------------------------------------------------------------------------------------------------------
# centring and whitening


def centering(Z: Any) -> Any:
    r"""Centring term :math:`\|m\|^2 = \|n^{-1}\sum_i z_i\|^2`.

    Exact relation (unit-norm rows): :math:`\|m\|^2 = n^{-2}\sum_{ij} t_{ij} = \mathrm{MMD}_V^2` for
    :math:`\varphi = P_{1,q}(t) = t` (:math:`a_0 = 0`), i.e. ``centering_whitening_via_kernel(Z, b1=1, b2=0)``. Alone it
    only centres the batch (it collapsed in the SFRIK paper: 27.7% linear accuracy).

    Parameters
    ----------
    Z : array, shape (n, q)
        Embeddings (rows); any array-API array.

    Returns
    -------
    array
        0-d, of Z's library, dtype and device.

    See Also
    --------
    whitening : The second-moment term.
    centering_whitening : Both, as the MMD of :math:`b_1 P_{1,q} + b_2 P_{2,q}`.

    Accuracy
    --------
    A few eps of the input dtype (relative). Domain: n >= 1 rows.

    References
    ----------
    .. [1] M. Zheng, G. Puy, E. Riccietti, P. Pérez and R. Gribonval, "Self-supervised learning with
       rotation-invariant kernels", International Conference on Learning Representations (ICLR), 2023.

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.isclose(centering(np.eye(3)), 1 / 3))  # m = (1, 1, 1) / 3
    True
    """
    Z, xp = _batch(Z, min_rows=1)
    m = xp.mean(Z, axis=0)
    return xp.sum(m * m)


def whitening(Z: Any) -> Any:
    r"""Whitening term :math:`\|E[z z^T] - I/q\|_F^2 = \|S - I/q\|_F^2` (uncentred second moment over the batch).

    Exact relations (unit-norm rows, so :math:`\operatorname{tr} S = 1`): :math:`\|S - I/q\|_F^2 =
    \operatorname{tr} S^2 - 1/q = n^{-2}\sum_{ij} t_{ij}^2 - 1/q`, which is

    .. math::

        \mathrm{MMD}_V^2[t^2] = \tfrac{q-1}{q}\, \mathrm{MMD}_V^2[P_{2,q}]

    since :math:`t^2 = \frac1q + \frac{q-1}{q} P_{2,q}(t)` (:func:`whitening_kernel`, :func:`whitening_via_kernel`).

    Parameters
    ----------
    Z : array, shape (n, q)
        Embeddings (rows); any array-API array.

    Returns
    -------
    array
        0-d, of Z's library, dtype and device.

    See Also
    --------
    whitening_via_kernel : The same as the MMD of :math:`t^2`.
    centering : The first-moment term.

    Accuracy
    --------
    A few eps of the input dtype times q (relative). Domain: n >= 1 rows.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[1.0, 0.0], [1.0, 0.0]])  # S = diag(1, 0): ||S - I/2||^2 = 1/4 + 1/4
    >>> float(whitening(Z)), float(whitening_via_kernel(Z))
    (0.5, 0.5)
    """
    Z, xp = _batch(Z, min_rows=1)
    q = Z.shape[1]
    W = _second_moment(Z, xp) - _eye(xp, q, Z) / q
    return xp.sum(W * W)


def centering_whitening(Z: Any, *, b1: float = 1.0, b2: float = 1.0) -> Any:
    r"""The moment form :math:`b_1 \|m\|^2 + b_2 \frac{q}{q-1} \|S - I/q\|_F^2` (costs O(n q^2)).

    Exact relation (unit-norm rows): it equals :math:`\mathrm{MMD}_V^2` for :math:`\varphi = b_1 P_{1,q} + b_2
    P_{2,q}` (:func:`centering_whitening_kernel`; proof in
    :func:`dotkernels.symbolic.derive_centering_whitening_identity`): :math:`n^{-2}\sum_{ij} t_{ij} = \|m\|^2`,
    :math:`n^{-2}\sum_{ij} P_{2,q}(t_{ij}) = \frac{q\operatorname{tr}S^2 - 1}{q-1} = \frac{q}{q-1}\|S - I/q\|_F^2`.

    Parameters
    ----------
    Z : array, shape (n, q)
        Embeddings (rows); any array-API array.
    b1, b2 : float
        Weights of the centring and the whitening terms (non-negative).

    Returns
    -------
    array
        0-d, of Z's library, dtype and device.

    See Also
    --------
    centering_whitening_via_kernel : The same as a kernel MMD.
    centering_whitening_kernel : The kernel.

    Accuracy
    --------
    As :func:`centering` and :func:`whitening`. Domain: n >= 1 rows, q >= 2.

    References
    ----------
    .. [1] M. Zheng, G. Puy, E. Riccietti, P. Pérez and R. Gribonval, "Self-supervised learning with
       rotation-invariant kernels", International Conference on Learning Representations (ICLR), 2023.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    >>> float(centering_whitening(Z, b1=1.0, b2=1.0))  # 0 + 3/2 * 2/3
    1.0
    """
    b1 = check_real(b1, "b1")
    b2 = check_real(b2, "b2")
    Z, _ = _batch(Z, min_rows=1, min_cols=2)
    q = Z.shape[1]
    return b1 * centering(Z) + (b2 * q / (q - 1)) * whitening(Z)


def centering_whitening_kernel(*, b1: float = 1.0, b2: float = 1.0) -> LegendreSeriesKernel:
    r"""The kernel :math:`b_1 P_{1,q}(t) + b_2 P_{2,q}(t)` (``LegendreSeriesKernel([0, b1, b2])``, :math:`a_0 = 0`).

    Its :math:`\mathrm{MMD}_V^2` is :func:`centering_whitening` on unit-norm rows; positive definite iff
    :math:`b_1, b_2 \ge 0`, and characteristic for no q (it only sees the first two moments).

    Parameters
    ----------
    b1, b2 : float
        Weights of the centring and the whitening terms (non-negative).

    Returns
    -------
    LegendreSeriesKernel
        :math:`b_1 P_{1,q} + b_2 P_{2,q}`.

    See Also
    --------
    centering_whitening : The regulariser.
    dotkernels.kernels.SFRIKKernel : With a degree-3 term.

    Accuracy
    --------
    Exact (a kernel object).

    References
    ----------
    .. [1] M. Zheng, G. Puy, E. Riccietti, P. Pérez and R. Gribonval, "Self-supervised learning with
       rotation-invariant kernels", International Conference on Learning Representations (ICLR), 2023.

    Examples
    --------
    >>> centering_whitening_kernel(b1=1.0, b2=40.0)
    LegendreSeriesKernel([0.0, 1.0, 40.0])
    """
    return LegendreSeriesKernel([0.0, check_real(b1, "b1"), check_real(b2, "b2")])


def centering_whitening_via_kernel(Z: Any, *, b1: float = 1.0, b2: float = 1.0) -> Any:
    r""":math:`\mathrm{MMD}_V^2` of the unit-norm rows of Z with :math:`b_1 P_{1,q} + b_2 P_{2,q}`, by
    :func:`dotkernels.mmd.mmd2_uniform`; equals :func:`centering_whitening`.

    Parameters
    ----------
    Z : array, shape (n, q)
        Embeddings on the unit sphere (rows); any array-API array.
    b1, b2 : float
        Weights of the centring and the whitening terms (non-negative).

    Returns
    -------
    array
        0-d, of Z's library, dtype and device.

    See Also
    --------
    centering_whitening : The moment form.
    dotkernels.mmd.mmd2_uniform : The squared MMD.

    Accuracy
    --------
    float64 sums of :func:`dotkernels.mmd.mmd2_uniform` (absolute ~1e-15 * (abs(b1) + abs(b2))). Domain: n >= 2 unit
    rows.

    References
    ----------
    .. [1] M. Zheng, G. Puy, E. Riccietti, P. Pérez and R. Gribonval, "Self-supervised learning with
       rotation-invariant kernels", International Conference on Learning Representations (ICLR), 2023.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.eye(3)
    >>> bool(np.isclose(centering_whitening_via_kernel(Z, b1=1.0, b2=40.0), centering_whitening(Z, b1=1.0, b2=40.0)))
    True
    """
    return _kernel_mmd2(Z, centering_whitening_kernel(b1=b1, b2=b2), "v")


def whitening_kernel() -> MonomialKernel:
    r"""The kernel :math:`(x^T y)^2` (``MonomialKernel(2)``): :math:`a_0 = 1/q`, :math:`a_2 = (q-1)/q`; its
    :math:`\mathrm{MMD}_V^2` is :func:`whitening` on unit-norm rows.

    Returns
    -------
    MonomialKernel
        :math:`\varphi(t) = t^2`.

    See Also
    --------
    whitening : The regulariser.

    Accuracy
    --------
    Exact (a kernel object).

    Examples
    --------
    >>> whitening_kernel()
    MonomialKernel(p=2)
    """
    return MonomialKernel(2)


def whitening_via_kernel(Z: Any) -> Any:
    r""":math:`\mathrm{MMD}_V^2[t^2] = n^{-2}\sum_{ij} t_{ij}^2 - 1/q`; equals :func:`whitening` for unit-norm rows.

    Parameters
    ----------
    Z : array, shape (n, q)
        Embeddings on the unit sphere (rows); any array-API array.

    Returns
    -------
    array
        0-d, of Z's library, dtype and device.

    See Also
    --------
    whitening : The moment form.
    dotkernels.mmd.mmd2_uniform : The squared MMD.

    Accuracy
    --------
    float64 sums of :func:`dotkernels.mmd.mmd2_uniform` (absolute ~1e-15). Domain: n >= 2 unit rows.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    >>> bool(np.isclose(whitening_via_kernel(Z), whitening(Z)))
    True
    """
    return _kernel_mmd2(Z, whitening_kernel(), "v")


# ---------------------------------------------------------------------------------------------------------------
# VICReg


def vicreg_variance(Z: Any, *, target_std: float = 1.0, eps: float = 1e-4) -> Any:
    r"""VICReg's variance term :math:`v(Z) = \frac1q \sum_k \max\big(0, \gamma - \sqrt{\operatorname{Var}(z^{(k)})
    + \varepsilon}\big)` (unbiased variance of each column, as ``torch.var``; Bardes et al. 2022).

    Not an MMD. What differs: it is a hinge on per-coordinate standard deviations, so it is neither a polynomial
    in the :math:`t_{ij}` nor rotation invariant (``vicreg_variance(Z @ R) != vicreg_variance(Z)`` in general for an
    orthogonal R, whereas every dot-product-kernel MMD statistic is a function of :math:`ZZ^T`); and it is applied to
    unnormalised embeddings with target :math:`\gamma = 1`.

    Exact statements for unit-norm rows (:math:`V_k` the unbiased column variances):

    * :math:`\sum_k V_k = \frac{n}{n-1}\big(1 - \|m\|^2\big)`: the total variance is fixed by the centring term.
    * Jensen bound: :math:`v(Z) \ge \gamma - \sqrt{\frac{n (1 - \|m\|^2)}{(n-1) q} + \varepsilon}`, with equality
      iff all :math:`V_k` are equal and every hinge is active (:math:`\gamma \ge \sqrt{V_k + \varepsilon}`).
    * Zero set: with :math:`\varepsilon = 0` and :math:`\gamma = \sqrt{n / ((n-1) q)}`, :math:`v(Z) = 0` iff
      :math:`m = 0` and :math:`\operatorname{diag} S = I/q`, i.e. iff the centring term and the diagonal part
      :math:`\sum_k (S_{kk} - 1/q)^2` of the whitening term both vanish.

    Parameters
    ----------
    Z : array, shape (n, q), n >= 2
    target_std : float
        Target standard deviation :math:`\gamma` (VICReg: 1).
    eps : float
        Added to the variance before the square root (VICReg: 1e-4).

    Returns
    -------
    array
        0-d, of Z's library, dtype and device.

    See Also
    --------
    vicreg_covariance : The covariance term.
    dotkernels_ssl.losses.VICRegLoss : The training loss.

    Accuracy
    --------
    A few eps of the input dtype (relative). Domain: n >= 2 rows, eps >= 0.

    References
    ----------
    .. [1] A. Bardes, J. Ponce and Y. LeCun, "VICReg: Variance-invariance-covariance regularization for
       self-supervised learning", International Conference on Learning Representations (ICLR), 2022.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.eye(3)  # every column has unbiased variance 1/3
    >>> bool(np.isclose(vicreg_variance(Z, eps=0.0), 1 - np.sqrt(1 / 3)))
    True
    """
    target_std = check_real(target_std, "target_std")
    eps = check_real(eps, "eps", nonnegative=True)
    Z, xp = _batch(Z)
    n = Z.shape[0]
    centred = Z - xp.mean(Z, axis=0)
    var = xp.sum(centred * centred, axis=0) / (n - 1)
    return xp.mean(xp.clip(target_std - xp.sqrt(var + eps), 0.0, None))


def vicreg_covariance(Z: Any) -> Any:
    r"""VICReg's covariance term :math:`c(Z) = \frac1q \sum_{k \ne l} C_{kl}^2`, :math:`C = \frac{1}{n-1}
    \sum_i (z_i - m)(z_i - m)^T` (Bardes et al. 2022).

    Not an MMD. What differs from the whitening term :math:`\|S - I/q\|_F^2` (= :math:`\mathrm{MMD}_V^2[t^2]` on the
    sphere): (i) it drops the diagonal of C, so it is not rotation invariant and no dot-product kernel reproduces it;
    (ii) it centres the batch, and :math:`\|C_n\|_F^2` contains the three-point statistic :math:`m^T S m =
    n^{-3}\sum_{ijk} t_{ij}t_{ik}`; (iii) the denominator n - 1.

    Exact statement (any real Z; :math:`C_n = \frac{n-1}{n} C = S - m m^T`; proof in
    :func:`dotkernels.symbolic.derive_vicreg_covariance_relation`):

    .. math::

        q \Big(\frac{n-1}{n}\Big)^2 c(Z) + \sum_k \big((C_n)_{kk} - \tfrac1q\big)^2
        = \|S - I/q\|_F^2 - 2\, m^T (S - I/q)\, m + \|m\|^4 .

    Hence for centred embeddings with unit-norm rows (m = 0, :math:`\operatorname{tr} C_n = 1`):
    :math:`q (\frac{n-1}{n})^2 c(Z) + \sum_k ((C_n)_{kk} - \frac1q)^2 = \mathrm{MMD}_V^2[t^2] = \frac{q-1}{q}
    \mathrm{MMD}_V^2[P_{2,q}]`, and the full covariance satisfies :math:`\|C\|_F^2 = (\frac{n}{n-1})^2
    (\frac{q-1}{q}\mathrm{MMD}_V^2[P_{2,q}] + \frac1q)`.

    Parameters
    ----------
    Z : array, shape (n, q)
        Embeddings (rows); any array-API array.

    Returns
    -------
    array
        0-d, of Z's library, dtype and device.

    See Also
    --------
    vicreg_variance : The variance term.
    whitening : The rotation-invariant relative.
    dotkernels.symbolic.derive_vicreg_covariance_relation : The proof of the relation.

    Accuracy
    --------
    A few eps of the input dtype times the size of C (relative). Domain: n >= 2 rows.

    References
    ----------
    .. [1] A. Bardes, J. Ponce and Y. LeCun, "VICReg: Variance-invariance-covariance regularization for
       self-supervised learning", International Conference on Learning Representations (ICLR), 2022.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[1.0, 1.0], [-1.0, -1.0]])  # C = [[2, 2], [2, 2]]: (2^2 + 2^2) / 2
    >>> float(vicreg_covariance(Z))
    4.0
    """
    Z, xp = _batch(Z)
    n, q = Z.shape
    centred = Z - xp.mean(Z, axis=0)
    C = xp.matmul(xp.matrix_transpose(centred), centred) / (n - 1)
    diagonal = xp.sum(centred * centred, axis=0) / (n - 1)
    return (xp.sum(C * C) - xp.sum(diagonal * diagonal)) / q


# ---------------------------------------------------------------------------------------------------------------
# Barlow Twins


def barlow_twins_redundancy(Z1: Any, Z2: Any, *, redundancy_weight: float = 0.0051, eps: float = 1e-5) -> Any:
    r"""Barlow Twins' loss :math:`\sum_k (1 - c_{kk})^2 + \lambda \sum_{k \ne l} c_{kl}^2` (Zbontar et al. 2021).

    :math:`c = \hat Z_1^T \hat Z_2 / n` is the cross-correlation of the batch-standardised views
    :math:`\hat z^{(k)} = (z^{(k)} - \mu_k)/\sqrt{\sigma_k^2 + \varepsilon}` (biased variance: ``BatchNorm1d``
    without affine parameters, whose :math:`\varepsilon = 10^{-5}`; pass ``eps=0`` for the exact statements).

    Not an MMD. What differs: (i) it couples two views: :math:`c` is a cross-correlation, a statistic of the pairs
    :math:`(z^{(1)}_i, z^{(2)}_i)`, not of one view's distribution; (ii) per-coordinate standardisation is not rotation
    equivariant and moves the rows off the sphere; (iii) the weight :math:`\lambda` splits diagonal and off-diagonal
    terms, so the loss is not rotation invariant.

    Exact statements (``eps=0``; :math:`Y^{(v)} = \hat Z_v / \sqrt q`, whose rows have mean squared norm 1; proof in
    :func:`dotkernels.symbolic.derive_barlow_twins_relation`):

    * two views, :math:`\lambda = 1`: :math:`\|c - I\|_F^2 = q^2 n^{-2}\sum_{ij}(y^{(1)T}_i y^{(1)}_j)
      (y^{(2)T}_i y^{(2)}_j) - 2q\, n^{-1}\sum_i y^{(1)T}_i y^{(2)}_i + q`: a pairwise statistic of the joint
      embedding with the product kernel :math:`t_1 t_2`, minus an alignment term;
    * one view (``Z1 = Z2 = Z``, so :math:`c_{kk} = 1`), every :math:`\lambda`:
      :math:`\mathrm{BT}(Z, Z) = \lambda q^2\big(n^{-2}\sum_{ij}(y_i^Ty_j)^2 - \frac1q\big) = \lambda q^2
      \|S_Y - I/q\|_F^2 = \lambda q(q-1)\, n^{-2}\sum_{ij} P_{2,q}(y_i^T y_j)`: the whitening / :math:`P_2` form
      evaluated on standardised rows (an MMD to the uniform law only where those rows lie on the sphere, e.g.
      for centred unit-norm Z with :math:`\operatorname{diag}S = I/q`, when :math:`Y = Z` and
      :math:`\mathrm{BT}(Z,Z) = \lambda q (q-1)\,\mathrm{MMD}_V^2[P_{2,q}]`).

    Parameters
    ----------
    Z1, Z2 : array, shape (n, q), n >= 2
        The two views' embeddings (same library).
    redundancy_weight : float
        Off-diagonal weight :math:`\lambda` (released code's ``lambd``: 0.0051).
    eps : float
        Standardisation epsilon (``BatchNorm1d``: 1e-5).

    Returns
    -------
    array
        0-d, of Z's library, dtype and device.

    See Also
    --------
    vicreg_covariance : VICReg's covariance term.
    dotkernels_ssl.losses.BarlowTwinsLoss : The training loss.

    Accuracy
    --------
    A few eps of the input dtype times q^2 (relative). Domain: n >= 2 rows, two views of equal shape.

    References
    ----------
    .. [1] J. Zbontar, L. Jing, I. Misra, Y. LeCun and S. Deny, "Barlow Twins: Self-supervised learning via
       redundancy reduction", International Conference on Machine Learning (ICML), 2021.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[1.0, -1.0], [-1.0, 1.0]])  # standardised: c = [[1, -1], [-1, 1]]
    >>> float(barlow_twins_redundancy(Z, Z, redundancy_weight=0.5, eps=0.0))  # 0 + 0.5 * (1 + 1)
    1.0
    """
    lambd = check_real(redundancy_weight, "redundancy_weight", nonnegative=True)
    eps = check_real(eps, "eps", nonnegative=True)
    Z1, _ = _batch(Z1, "Z1")
    Z2, _ = _batch(Z2, "Z2")
    if Z1.shape != Z2.shape:
        raise ValueError(f"Z1 and Z2 must have the same shape, got {tuple(Z1.shape)} and {tuple(Z2.shape)}")
    xp = array_namespace(Z1, Z2)
    n = Z1.shape[0]
    A = _standardize(Z1, xp, eps)
    B = _standardize(Z2, xp, eps)
    c = xp.matmul(xp.matrix_transpose(A), B) / n
    diagonal = xp.sum(A * B, axis=0) / n
    on_diagonal = xp.sum((1.0 - diagonal) ** 2)
    off_diagonal = xp.sum(c * c) - xp.sum(diagonal * diagonal)
    return on_diagonal + lambd * off_diagonal


# ---------------------------------------------------------------------------------------------------------------
# spectral contrastive loss


def spectral_contrastive_repulsion(Z: Any) -> Any:
    r"""Repulsive term of HaoChen et al.'s (2021) spectral contrastive loss,
    :math:`\frac{1}{n(n-1)}\sum_{i \ne j} (z_i^T z_j)^2` (the batch estimate of :math:`E[(f(x)^Tf(x'))^2]` over
    independent pairs).

    Exact relations (unit-norm rows): with :math:`\varphi(t) = t^2` (:func:`spectral_contrastive_kernel`,
    :math:`a_0 = 1/q`, :math:`a_2 = (q-1)/q`, :math:`\varphi(1) = 1`),

    .. math::

        \text{repulsion}(Z) = \frac1q + \mathrm{MMD}_U^2[t^2]
        = \frac{n\,(\|S - I/q\|_F^2 + 1/q) - 1}{n - 1},

    and the V-statistic form including :math:`i = j` is :math:`n^{-2}\sum_{ij} t_{ij}^2 = \frac1q + \|S - I/q\|_F^2`.
    HaoChen et al. do not normalise the embeddings; for general rows the term is the U-statistic of the kernel
    :math:`(x^Ty)^2` on :math:`\mathbb{R}^q`, :math:`(n^2 \operatorname{tr}S^2 - \sum_i \|z_i\|^4)/(n(n-1))`, not an MMD
    to the uniform law on the sphere.

    Parameters
    ----------
    Z : array, shape (n, q)
        Embeddings (rows); any array-API array.

    Returns
    -------
    array
        0-d, of Z's library, dtype and device.

    See Also
    --------
    spectral_contrastive_repulsion_via_kernel : The same through the MMD of :math:`t^2`.

    Accuracy
    --------
    A few eps of the input dtype (relative). Domain: n >= 2 rows.

    References
    ----------
    .. [1] J. Z. HaoChen, C. Wei, A. Gaidon and T. Ma, "Provable guarantees for self-supervised deep learning with
       spectral contrastive loss", Advances in Neural Information Processing Systems (NeurIPS), 2021.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    >>> float(spectral_contrastive_repulsion(Z))  # (z_1^T z_2)^2
    1.0
    """
    Z, xp = _batch(Z)
    n = Z.shape[0]
    G = xp.matmul(Z, xp.matrix_transpose(Z))
    sq = xp.sum(Z * Z, axis=1)
    return (xp.sum(G * G) - xp.sum(sq * sq)) / (n * (n - 1))


def spectral_contrastive_kernel() -> MonomialKernel:
    r"""The kernel :math:`(x^T y)^2` (``MonomialKernel(2)``) of the spectral contrastive repulsion.

    Returns
    -------
    MonomialKernel
        :math:`\varphi(t) = t^2`.

    See Also
    --------
    spectral_contrastive_repulsion : The regulariser.

    Accuracy
    --------
    Exact (a kernel object).

    References
    ----------
    .. [1] J. Z. HaoChen, C. Wei, A. Gaidon and T. Ma, "Provable guarantees for self-supervised deep learning with
       spectral contrastive loss", Advances in Neural Information Processing Systems (NeurIPS), 2021.

    Examples
    --------
    >>> spectral_contrastive_kernel()
    MonomialKernel(p=2)
    """
    return MonomialKernel(2)


def spectral_contrastive_repulsion_via_kernel(Z: Any) -> Any:
    r""":math:`a_0 + \mathrm{MMD}_U^2[t^2]` with :math:`a_0 = 1/q`; equals :func:`spectral_contrastive_repulsion` for
    unit-norm rows.

    Parameters
    ----------
    Z : array, shape (n, q)
        Embeddings on the unit sphere (rows); any array-API array.

    Returns
    -------
    array
        0-d, of Z's library, dtype and device.

    See Also
    --------
    spectral_contrastive_repulsion : The original form.
    dotkernels.mmd.mmd2_uniform : The squared MMD.

    Accuracy
    --------
    float64 sums of :func:`dotkernels.mmd.mmd2_uniform` (absolute ~1e-15). Domain: n >= 2 unit rows.

    References
    ----------
    .. [1] J. Z. HaoChen, C. Wei, A. Gaidon and T. Ma, "Provable guarantees for self-supervised deep learning with
       spectral contrastive loss", Advances in Neural Information Processing Systems (NeurIPS), 2021.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    >>> bool(np.isclose(spectral_contrastive_repulsion_via_kernel(Z), spectral_contrastive_repulsion(Z)))
    True
    """
    kernel = spectral_contrastive_kernel()
    Z, _ = check_points(Z, "Z", min_rows=2, float64=False)
    return kernel.uniform_mean_embedding(q=int(Z.shape[1])) + _kernel_mmd2(Z, kernel, "u")


# ---------------------------------------------------------------------------------------------------------------
# energy distance


def energy_distance_to_uniform(Z: Any, *, s: float = 1.0, estimator: str = "v") -> Any:
    r"""Energy distance of the batch to the uniform law :math:`\sigma` on :math:`S^{q-1}`, in its original form

    .. math::

        \mathcal{E}_s = 2 E\|X - Y\|^s - E\|X - X'\|^s - E\|Y - Y'\|^s
        = c_s(q) - \widehat{E}\|X - X'\|^s,

    X from the batch, :math:`Y, Y' \sim \sigma`; :math:`E\|x - Y\|^s = E\|Y - Y'\|^s = c_s(q) =
    2^s \Gamma(\beta + \frac{s}{2})\Gamma(2\beta) / (\Gamma(\beta)\Gamma(2\beta + \frac{s}{2}))`,
    :math:`\beta = \frac{q-1}{2}` (Beta law of :math:`(1 - Y^TY')/2`), for every unit x. The batch term
    :math:`\widehat{E}\|X - X'\|^s` is the mean over all i, j (``"v"``) or over i != j (``"u"``).

    Exact relation (unit-norm rows): it is :math:`\mathrm{MMD}^2` (same estimator) with the distance kernel
    :math:`\varphi(t) = -\|x - y\|^s = -(2 - 2t)^{s/2}` (``DistanceKernel(s=s)``, :func:`energy_kernel`),
    whose uniform mean embedding is :math:`a_0 = -c_s(q)`. For :math:`0 < s < 2` it is characteristic;
    :math:`n\,\mathcal{E}_1` (V) is Bakshaev's uniformity statistic.

    Parameters
    ----------
    Z : array, shape (n, q), n >= 2
        Embeddings on the unit sphere (the closed form of :math:`E\|x - Y\|^s` needs :math:`\|x\| = 1`; rows off
        the sphere by more than ``10 sqrt(eps)`` of their dtype raise ValueError).
    s : float
        Exponent in (0, 2].
    estimator : {"v", "u"}

    Returns
    -------
    array
        0-d, Z's library, dtype and device; :math:`c_s(q)` is ``-DistanceKernel(s=s).uniform_mean_embedding(q=q)``.

    See Also
    --------
    energy_distance_via_kernel : The same as a distance-kernel MMD.
    dotkernels.kernels.DistanceKernel : The kernel.

    Accuracy
    --------
    The batch mean in the input dtype (a few eps relative) and c_s(q) in closed form (~1e-15 relative). Domain:
    n >= 2 unit rows, 0 < s <= 2.

    References
    ----------
    .. [1] G. J. Székely and M. L. Rizzo, "Energy statistics: a class of statistics based on distances", Journal
       of Statistical Planning and Inference 143(8), 1249-1272, 2013.
    .. [2] M. Zheng, G. Puy, E. Riccietti, P. Pérez and R. Gribonval, "Self-supervised learning with
       rotation-invariant kernels", ICLR, 2023.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])  # E||Y - Y'|| = 4/3 on S^2; the batch: (0 + 2 + 2 + 0) / 4
    >>> bool(np.isclose(energy_distance_to_uniform(Z, s=1.0), 4 / 3 - 1))
    True
    """
    s = check_real(s, "s", positive=True)
    if s > 2:
        raise ValueError(f"s must lie in (0, 2], got {s}")
    estimator = check_estimator(estimator)
    Z, xp = check_points(Z, "Z", min_rows=2, float64=False)
    n, q = Z.shape
    D2 = _squared_distances(Z, xp)
    diagonal = _eye(xp, n, Z) > 0.5
    # keep the zero diagonal out of the power (its derivative is infinite for s < 2)
    D = xp.where(diagonal, 0.0, xp.where(diagonal, 1.0, D2) ** (s / 2))
    mean = xp.sum(D) / (n * n if estimator == "v" else n * (n - 1))
    return -energy_kernel(s=s).uniform_mean_embedding(q=int(q)) - mean


def energy_kernel(*, s: float = 1.0) -> DistanceKernel:
    r"""The kernel :math:`-\|x - y\|^s` of the energy distance (``DistanceKernel(s=s)``), 0 < s <= 2.

    Parameters
    ----------
    s : float
        Exponent in (0, 2].

    Returns
    -------
    DistanceKernel
        :math:`\varphi(t) = -\|x - y\|^s` (``DistanceKernel(s=s)``).

    See Also
    --------
    energy_distance_to_uniform : The energy distance.

    Accuracy
    --------
    Exact (a kernel object). Domain: 0 < s <= 2.

    References
    ----------
    .. [1] G. J. Székely and M. L. Rizzo, "Energy statistics: a class of statistics based on distances", Journal
       of Statistical Planning and Inference 143(8), 1249-1272, 2013.
    .. [2] M. Zheng, G. Puy, E. Riccietti, P. Pérez and R. Gribonval, "Self-supervised learning with
       rotation-invariant kernels", ICLR, 2023.

    Examples
    --------
    >>> energy_kernel(s=1.0)
    DistanceKernel(s=1.0)
    """
    s = check_real(s, "s", positive=True)
    if s > 2:
        raise ValueError(f"s must lie in (0, 2], got {s}")
    return DistanceKernel(s=s)


def energy_distance_via_kernel(Z: Any, *, s: float = 1.0, estimator: str = "v") -> Any:
    r""":math:`\mathrm{MMD}^2` with ``DistanceKernel(s=s)`` (V or U), by :func:`dotkernels.mmd.mmd2_uniform`; equals
    :func:`energy_distance_to_uniform`.

    Parameters
    ----------
    Z : array, shape (n, q)
        Embeddings on the unit sphere (rows); any array-API array.
    s : float
        Exponent in (0, 2].
    estimator : {"v", "u"}
        V-statistic (every pair) or U-statistic (distinct pairs).

    Returns
    -------
    array
        0-d, of Z's library, dtype and device.

    See Also
    --------
    energy_distance_to_uniform : The original form.
    dotkernels.mmd.mmd2_uniform : The squared MMD.

    Accuracy
    --------
    float64 sums of :func:`dotkernels.mmd.mmd2_uniform` (absolute ~1e-15 * 2^s). Domain: n >= 2 unit rows, 0 < s
    <= 2.

    References
    ----------
    .. [1] G. J. Székely and M. L. Rizzo, "Energy statistics: a class of statistics based on distances", Journal
       of Statistical Planning and Inference 143(8), 1249-1272, 2013.
    .. [2] M. Zheng, G. Puy, E. Riccietti, P. Pérez and R. Gribonval, "Self-supervised learning with
       rotation-invariant kernels", ICLR, 2023.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
    >>> bool(np.isclose(energy_distance_via_kernel(Z), energy_distance_to_uniform(Z)))
    True
    """
    return _kernel_mmd2(Z, energy_kernel(s=s), check_estimator(estimator))
