r"""Samplers of the non-uniform laws used in the power studies of uniformity tests (sphunif's ``r_alt`` set).

Besides the von Mises–Fisher and Watson laws of :mod:`dotkernels.sampling`:

===================================  =============================================================================
sampler                              law
===================================  =============================================================================
:func:`sample_vmf_mixture`           mixture of vMF laws; by default sphunif's "MvMF": equal weights on the means
                                     :math:`\pm e_1, \dots, \pm e_q` (axial) or :math:`e_1, \dots, e_q`
:func:`sample_antipodal_vmf`         :math:`\tfrac12\,\mathrm{vMF}(\mu, \kappa) + \tfrac12\,\mathrm{vMF}(-\mu, \kappa)`
                                     (axial)
:func:`sample_acg`                   angular central Gaussian, shape
                                     :math:`\mathrm{diag}(1, \dots, 1, 1 + \kappa)/(q + \kappa)`
:func:`sample_small_circle`          density :math:`\propto \exp(-\kappa (\mu^T x - \nu)^2)` (mass near the small
                                     circle :math:`\mu^T x = \nu`)
:func:`sample_cauchy_like`           density :math:`\propto (1 - \rho^2)/(1 + \rho^2 - 2\rho\,\mu^T x)^{q/2}`,
                                     :math:`\rho = ((2\kappa + 1) - \sqrt{4\kappa + 1})/(2\kappa)` (the Poisson
                                     kernel; the wrapped Cauchy law at q = 2)
:func:`sample_cauchy_mixture`        sphunif's "MC": the Cauchy-like law about :math:`\pm e_1, \dots, \pm e_q`
:func:`sample_antipodal_dependent`   sphunif's "UAD": :math:`\lceil n/2\rceil` uniform points, each followed by a
                                     point uniform on the cap of angle r about its antipode
:func:`sample_tangent_normal`        any rotationally symmetric law :math:`\propto h(\mu^T x)` about :math:`\mu`
===================================  =============================================================================

Rotationally symmetric laws are drawn in tangent-normal form :math:`X = V\mu + \sqrt{1 - V^2}\,U`, U uniform on
the unit sphere of :math:`\mu^\perp`, V with density :math:`\propto h(v)(1 - v^2)^{(q-3)/2}` on (-1, 1), sampled
by inverting its distribution function, computed by Gauss–Legendre quadrature on 8192 panels in
:math:`\theta = \arccos v` and inverted by monotone (PCHIP) interpolation: the quantile of V is within 1e-7 of the
exact one (checked on the vMF law, kappa from 0.5 to 500, in the tests).

Every sampler takes ``rng`` (a :class:`numpy.random.Generator`, a seed or None) and returns a float64 (n, q) array.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import interpolate, special

from ._validate import check_dimension, check_integer, check_real, check_rng
from .sampling import sample_uniform, sample_vmf

__all__ = [
    "cauchy_rho",
    "sample_acg",
    "sample_antipodal_dependent",
    "sample_antipodal_vmf",
    "sample_cauchy_like",
    "sample_cauchy_mixture",
    "sample_small_circle",
    "sample_spherical_cap",
    "sample_tangent_normal",
    "sample_vmf_mixture",
]

_PANELS = 8192


def _count(n: Any) -> int:
    return check_integer(n, "n", minimum=0, requirement="a non-negative integer number of points")


def _direction(mu: ArrayLike, name: str = "mu") -> np.ndarray:
    arr = np.asarray(mu, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"{name} must be a 1-d vector of length q >= 2, got shape {arr.shape}")
    norm = float(np.linalg.norm(arr))
    if not math.isfinite(norm) or norm == 0:
        raise ValueError(f"{name} must be a finite non-zero vector")
    return arr / norm


def _tangent_frame(mu: np.ndarray) -> np.ndarray:
    """A (q, q-1) orthonormal basis of the orthogonal complement of mu (Householder reflection)."""
    q = mu.size
    e = np.zeros(q)
    e[0] = 1.0
    v = mu - e if mu[0] < 0 else mu + e
    H = np.eye(q) - 2.0 * np.outer(v, v) / float(v @ v)
    return H[:, 1:]


def _assemble(mu: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    q = mu.size
    n = v.size
    frame = _tangent_frame(mu)
    u = rng.standard_normal((n, q - 1))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    x = v[:, None] * mu[None, :] + np.sqrt(np.clip(1.0 - v * v, 0.0, None))[:, None] * (u @ frame.T)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _projection_quantile(log_h: Callable[[np.ndarray], np.ndarray], q: int) -> Callable[[np.ndarray], np.ndarray]:
    r"""Quantile function of V with density :math:`\propto h(v)(1 - v^2)^{(q-3)/2}`, in the angle variable."""
    x, w = np.polynomial.legendre.leggauss(8)
    edges = np.linspace(0.0, math.pi, _PANELS + 1)
    a, b = edges[:-1, None], edges[1:, None]
    th = 0.5 * (b - a) * (x[None, :] + 1.0) + a
    wt = 0.5 * (b - a) * w[None, :]
    # density in theta: h(cos theta) sin^{q-2} theta
    with np.errstate(divide="ignore"):
        log_dens = log_h(np.cos(th)) + (q - 2) * np.log(np.sin(th))
    shift = float(np.max(log_dens[np.isfinite(log_dens)]))
    mass = np.sum(wt * np.exp(log_dens - shift), axis=1)
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    cdf /= cdf[-1]
    # theta as a monotone function of the cdf (flat panels removed)
    keep = np.concatenate([[True], np.diff(cdf) > 0])
    inverse = interpolate.PchipInterpolator(cdf[keep], edges[keep])
    return lambda u: np.cos(inverse(u))


def sample_tangent_normal(
    n: int, *, mu: ArrayLike, log_density: Callable[[np.ndarray], np.ndarray], rng: Any = None
) -> np.ndarray:
    r"""Rotationally symmetric law with density :math:`\propto \exp(\text{log\_density}(\mu^T x))` on the sphere.

    Parameters
    ----------
    n : int
        Number of points.
    mu : array_like, shape (q,)
        Axis of symmetry (normalised).
    log_density : callable
        Vectorised :math:`\log h(v)`, v in [-1, 1] (up to a constant).
    rng : numpy.random.Generator, int, SeedSequence or None

    Returns
    -------
    ndarray, shape (n, q)

    See Also
    --------
    dotkernels.sampling.sample_vmf : The von Mises-Fisher law.
    sample_small_circle, sample_cauchy_like : Laws drawn through this function.

    Examples
    --------
    >>> X = sample_tangent_normal(2000, mu=[0, 0, 1], log_density=lambda v: 3.0 * v, rng=0)  # vMF(kappa = 3)
    >>> round(float(X[:, 2].mean()), 1)  # coth(3) - 1/3
    0.7
    """
    n, mu, rng = _count(n), _direction(mu), check_rng(rng)
    quantile = _projection_quantile(log_density, mu.size)
    v = quantile(rng.random(n))
    return _assemble(mu, v, rng)


def sample_vmf_mixture(
    n: int,
    *,
    kappa: float,
    q: int | None = None,
    mu: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    axial: bool = True,
    rng: Any = None,
) -> np.ndarray:
    r"""Mixture of von Mises–Fisher laws with a common concentration.

    With ``mu=None`` (sphunif's "MvMF"): equal weights on :math:`e_1, \dots, e_q`, each sign-flipped with
    probability 1/2 when ``axial`` (means :math:`\pm e_j`). Otherwise the rows of ``mu`` (k, q) are the means,
    drawn with probabilities ``weights`` (default equal), sign-flipped when ``axial``.

    Parameters
    ----------
    n : int
        Number of points.
    kappa : float
        Concentration, ``kappa >= 0`` (0: the uniform law).
    q : int, optional
        Dimension; needed when ``mu`` is None (means :math:`e_1, \dots, e_q`).
    mu : array_like, shape (k, q), optional
        The means (rows, normalised); default :math:`e_1, \dots, e_q`.
    weights : array_like, shape (k,), optional
        Mixture weights (non-negative, normalised to sum 1); default equal.
    axial : bool
        Flip the sign of each point with probability 1/2 (means :math:`\pm` the rows of ``mu``).
    rng : numpy.random.Generator, int seed or None
        Source of randomness (SPEC 7).

    Returns
    -------
    ndarray, shape (n, q)
        The points, float64 rows on the unit sphere.

    See Also
    --------
    sample_antipodal_vmf : Two antipodal components.
    dotkernels.sampling.sample_vmf : One component.

    References
    ----------
    .. [1] E. García-Portugués and T. Verdebout, "An overview of uniformity tests on the hypersphere",
       arXiv:1804.00286, 2018; the R package sphunif (``r_alt``).

    Examples
    --------
    >>> X = sample_vmf_mixture(1000, kappa=50.0, q=3, rng=0)
    >>> bool(np.all(np.abs(X).max(axis=1) > 0.8))  # every point near one of +-e_j
    True
    """
    n, rng = _count(n), check_rng(rng)
    kappa = check_real(kappa, "kappa", nonnegative=True)
    if mu is None:
        if q is None:
            raise ValueError("pass q (means +-e_1..+-e_q) or the means mu")
        means = np.eye(check_dimension(q))
    else:
        means = np.atleast_2d(np.asarray(mu, dtype=np.float64))
        if q is not None and means.shape[1] != q:
            raise ValueError(f"mu has {means.shape[1]} columns but q = {q}")
        means = np.stack([_direction(m) for m in means])
    k = means.shape[0]
    if weights is None:
        p = np.full(k, 1.0 / k)
    else:
        p = np.asarray(weights, dtype=np.float64)
        if p.shape != (k,) or np.any(p < 0) or not p.sum() > 0:
            raise ValueError(f"weights must be {k} non-negative numbers with a positive sum")
        p = p / p.sum()
    comp = rng.choice(k, size=n, p=p)
    out = np.empty((n, means.shape[1]))
    for j in range(k):
        idx = np.nonzero(comp == j)[0]
        if idx.size:
            out[idx] = sample_vmf(idx.size, mu=means[j], kappa=kappa, rng=rng)
    if axial:
        out *= np.where(rng.random(n) < 0.5, -1.0, 1.0)[:, None]
    return out


def sample_antipodal_vmf(n: int, *, mu: ArrayLike, kappa: float, rng: Any = None) -> np.ndarray:
    r"""Axial (antipodal) vMF: :math:`\tfrac12\mathrm{vMF}(\mu, \kappa) + \tfrac12\mathrm{vMF}(-\mu, \kappa)`.

    Parameters
    ----------
    n : int
        Number of points.
    mu : array_like, shape (q,)
        The mean direction or axis (normalised).
    kappa : float
        Concentration, ``kappa >= 0`` (0: the uniform law).
    rng : numpy.random.Generator, int seed or None
        Source of randomness (SPEC 7).

    Returns
    -------
    ndarray, shape (n, q)
        The points, float64 rows on the unit sphere.

    See Also
    --------
    sample_vmf_mixture : Mixtures of several vMF laws.
    dotkernels.sampling.sample_watson : The Watson law, another axial law.

    References
    ----------
    .. [1] E. García-Portugués and T. Verdebout, "An overview of uniformity tests on the hypersphere",
       arXiv:1804.00286, 2018; the R package sphunif (``r_alt``).

    Examples
    --------
    >>> X = sample_antipodal_vmf(4000, mu=[1, 0, 0], kappa=20.0, rng=1)
    >>> abs(float(X[:, 0].mean())) < 0.05, round(float(np.abs(X[:, 0]).mean()), 2)  # coth(20) - 1/20
    (True, 0.95)
    """
    return sample_vmf_mixture(n, kappa=kappa, mu=np.atleast_2d(_direction(mu)), axial=True, rng=rng)


def sample_acg(n: int, *, q: int, kappa: float, mu: ArrayLike | None = None, rng: Any = None) -> np.ndarray:
    r"""Angular central Gaussian with shape :math:`(I + \kappa\,\mu\mu^T)/(q + \kappa)` (sphunif's "ACG").

    :math:`X = Y/\|Y\|`, :math:`Y \sim N(0, I + \kappa\mu\mu^T)`; :math:`\mu = e_q` by default (sphunif's choice).

    Parameters
    ----------
    n : int
        Number of points.
    q : int
        Dimension of the ambient space (the sphere :math:`S^{q-1}`), ``q >= 2``.
    kappa : float
        Excess variance along ``mu``, ``kappa >= 0`` (0: the uniform law).
    mu : array_like, shape (q,), optional
        The axis (normalised); default :math:`e_q`.
    rng : numpy.random.Generator, int seed or None
        Source of randomness (SPEC 7).

    Returns
    -------
    ndarray, shape (n, q)
        The points, float64 rows on the unit sphere.

    See Also
    --------
    dotkernels.sampling.sample_watson : The Watson law, another axial law.
    sample_antipodal_vmf : The antipodal vMF mixture.

    References
    ----------
    .. [1] E. García-Portugués and T. Verdebout, "An overview of uniformity tests on the hypersphere",
       arXiv:1804.00286, 2018; the R package sphunif (``r_alt``).

    Examples
    --------
    >>> X = sample_acg(5000, q=3, kappa=10.0, rng=0)
    >>> bool(np.mean(X[:, 2] ** 2) > 0.5)  # mass along the axis e_3
    True
    """
    n, q, rng = _count(n), check_dimension(q), check_rng(rng)
    kappa = check_real(kappa, "kappa", nonnegative=True)
    m = np.eye(q)[-1] if mu is None else _direction(mu)
    if m.size != q:
        raise ValueError(f"mu must have length q = {q}")
    y = rng.standard_normal((n, q))
    y += (math.sqrt(1.0 + kappa) - 1.0) * (y @ m)[:, None] * m[None, :]
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def sample_small_circle(n: int, *, mu: ArrayLike, kappa: float, nu: float = 0.5, rng: Any = None) -> np.ndarray:
    r"""Small-circle law: density :math:`\propto \exp(-\kappa(\mu^T x - \nu)^2)`, -1 < nu < 1 (sphunif's "SC").

    Parameters
    ----------
    n : int
        Number of points.
    mu : array_like, shape (q,)
        The mean direction or axis (normalised).
    kappa : float
        Concentration, ``kappa >= 0`` (0: the uniform law).
    nu : float
        Height :math:`\mu^T x = \nu` of the small circle, -1 < nu < 1.
    rng : numpy.random.Generator, int seed or None
        Source of randomness (SPEC 7).

    Returns
    -------
    ndarray, shape (n, q)
        The points, float64 rows on the unit sphere.

    See Also
    --------
    sample_tangent_normal : Any rotationally symmetric law.
    dotkernels.sampling.sample_vmf : The von Mises-Fisher law.

    References
    ----------
    .. [1] E. García-Portugués and T. Verdebout, "An overview of uniformity tests on the hypersphere",
       arXiv:1804.00286, 2018; the R package sphunif (``r_alt``).

    Examples
    --------
    >>> X = sample_small_circle(3000, mu=[0, 0, 1], kappa=200.0, nu=0.5, rng=0)
    >>> round(float(X[:, 2].mean()), 2)  # concentrated near the circle z = 0.5
    0.5
    """
    kappa = check_real(kappa, "kappa", nonnegative=True)
    nu = check_real(nu, "nu")
    if not -1 < nu < 1:
        raise ValueError(f"nu must lie in (-1, 1) (the height of the small circle), got {nu}")
    return sample_tangent_normal(n, mu=mu, log_density=lambda v: -kappa * (v - nu) ** 2, rng=rng)


def cauchy_rho(kappa: float) -> float:
    r""":math:`\rho = ((2\kappa + 1) - \sqrt{4\kappa + 1})/(2\kappa)` of the Cauchy-like law (sphunif's map).

    Parameters
    ----------
    kappa : float
        Concentration, ``kappa >= 0`` (0: the uniform law).

    Returns
    -------
    float
        :math:`\rho` in [0, 1).

    See Also
    --------
    sample_cauchy_like : The law it parametrises.

    References
    ----------
    .. [1] E. García-Portugués and T. Verdebout, "An overview of uniformity tests on the hypersphere",
       arXiv:1804.00286, 2018; the R package sphunif (``r_alt``).

    Examples
    --------
    >>> cauchy_rho(2.0)
    0.5
    """
    kappa = check_real(kappa, "kappa", nonnegative=True)
    if kappa == 0:
        return 0.0
    return ((2.0 * kappa + 1.0) - math.sqrt(4.0 * kappa + 1.0)) / (2.0 * kappa)


def sample_cauchy_like(n: int, *, mu: ArrayLike, kappa: float, rng: Any = None) -> np.ndarray:
    r"""Cauchy-like law (sphunif's "C"): density :math:`\propto (1 + \rho^2 - 2\rho\,\mu^T x)^{-q/2}`.

    Parameters
    ----------
    n : int
        Number of points.
    mu : array_like, shape (q,)
        The mean direction or axis (normalised).
    kappa : float
        Concentration, ``kappa >= 0``, mapped to :math:`\rho` by :func:`cauchy_rho`.
    rng : numpy.random.Generator, int seed or None
        Source of randomness (SPEC 7).

    Returns
    -------
    ndarray, shape (n, q)
        The points, float64 rows on the unit sphere.

    See Also
    --------
    cauchy_rho : The map from kappa to rho.
    sample_cauchy_mixture : Mixtures about the axes.
    dotkernels.kernels.PoissonKernel : The kernel with the same profile.

    References
    ----------
    .. [1] E. García-Portugués and T. Verdebout, "An overview of uniformity tests on the hypersphere",
       arXiv:1804.00286, 2018; the R package sphunif (``r_alt``).

    Examples
    --------
    >>> X = sample_cauchy_like(4000, mu=[1.0, 0.0], kappa=2.0, rng=0)  # wrapped Cauchy, rho = 0.5
    >>> round(float(X[:, 0].mean()), 1)  # E cos = rho
    0.5
    """
    mu = _direction(mu)
    rho = cauchy_rho(kappa)
    q = mu.size
    return sample_tangent_normal(
        n, mu=mu, log_density=lambda v: -0.5 * q * np.log1p(rho * rho - 2.0 * rho * v), rng=rng
    )


def sample_cauchy_mixture(n: int, *, q: int, kappa: float, axial: bool = True, rng: Any = None) -> np.ndarray:
    r"""sphunif's "MC": the Cauchy-like law about :math:`e_j` (j uniform), sign-flipped when ``axial``.

    Parameters
    ----------
    n : int
        Number of points.
    q : int
        Dimension of the ambient space (the sphere :math:`S^{q-1}`), ``q >= 2``.
    kappa : float
        Concentration of each component, ``kappa >= 0``.
    axial : bool
        Flip the sign of each point with probability 1/2.
    rng : numpy.random.Generator, int seed or None
        Source of randomness (SPEC 7).

    Returns
    -------
    ndarray, shape (n, q)
        The points, float64 rows on the unit sphere.

    See Also
    --------
    sample_cauchy_like : One component.

    References
    ----------
    .. [1] E. García-Portugués and T. Verdebout, "An overview of uniformity tests on the hypersphere",
       arXiv:1804.00286, 2018; the R package sphunif (``r_alt``).

    Examples
    --------
    >>> X = sample_cauchy_mixture(3000, q=3, kappa=50.0, rng=0)
    >>> float(np.mean(np.abs(X).max(axis=1) > 0.9))  # near one of +-e_j (uniform points: 0.30)
    0.78
    """
    n, q, rng = _count(n), check_dimension(q), check_rng(rng)
    comp = rng.integers(0, q, size=n)
    out = np.empty((n, q))
    for j in range(q):
        idx = np.nonzero(comp == j)[0]
        if idx.size:
            out[idx] = sample_cauchy_like(idx.size, mu=np.eye(q)[j], kappa=kappa, rng=rng)
    if axial:
        out *= np.where(rng.random(n) < 0.5, -1.0, 1.0)[:, None]
    return out


def sample_spherical_cap(n: int, *, mu: ArrayLike, r: float, rng: Any = None) -> np.ndarray:
    r"""Uniform law on the cap :math:`\{x: \angle(x, \mu) \le r\}`, 0 < r <= pi (exact inverse of the projected law).

    Parameters
    ----------
    n : int
        Number of points.
    mu : array_like, shape (q,)
        The mean direction or axis (normalised).
    r : float
        Angular radius of the cap, 0 < r <= pi (pi: the whole sphere).
    rng : numpy.random.Generator, int seed or None
        Source of randomness (SPEC 7).

    Returns
    -------
    ndarray, shape (n, q)
        The points, float64 rows on the unit sphere.

    See Also
    --------
    sample_antipodal_dependent : Pairs of points on antipodal caps.
    dotkernels.sampling.sample_uniform : The whole sphere.

    References
    ----------
    .. [1] E. García-Portugués and T. Verdebout, "An overview of uniformity tests on the hypersphere",
       arXiv:1804.00286, 2018; the R package sphunif (``r_alt``).

    Examples
    --------
    >>> X = sample_spherical_cap(1000, mu=[0, 0, 1], r=0.5, rng=0)
    >>> bool(X[:, 2].min() >= np.cos(0.5) - 1e-12), round(float(X[:, 2].mean()), 2)  # (1 + cos r) / 2 on S^2
    (True, 0.94)
    """
    n, m, rng = _count(n), _direction(mu), check_rng(rng)
    r = check_real(r, "r", positive=True)
    if r > math.pi:
        raise ValueError(f"r must lie in (0, pi], got {r}")
    a = 0.5 * (m.size - 1)
    # V = cos(angle) has the projected law restricted to [cos r, 1]
    lo = special.betainc(a, a, 0.5 * (1.0 + math.cos(r)))
    u = lo + (1.0 - lo) * rng.random(n)
    v = 2.0 * special.betaincinv(a, a, u) - 1.0
    return _assemble(m, v, rng)


def sample_antipodal_dependent(n: int, *, q: int, r: float = math.pi / 10, rng: Any = None) -> np.ndarray:
    r"""sphunif's "UAD": uniform points, each (odd rows) followed by a point uniform on the cap of angle r about
    its antipode; marginally close to uniform, but with antipodal dependence.

    Parameters
    ----------
    n : int
        Number of points.
    q : int
        Dimension of the ambient space (the sphere :math:`S^{q-1}`), ``q >= 2``.
    r : float
        Angular radius of the caps about the antipodes, 0 < r <= pi (default pi / 10).
    rng : numpy.random.Generator, int seed or None
        Source of randomness (SPEC 7).

    Returns
    -------
    ndarray, shape (n, q)
        The points, float64 rows on the unit sphere.

    See Also
    --------
    sample_spherical_cap : The caps.
    dotkernels.sampling.sample_uniform : The uniform law.

    References
    ----------
    .. [1] E. García-Portugués and T. Verdebout, "An overview of uniformity tests on the hypersphere",
       arXiv:1804.00286, 2018; the R package sphunif (``r_alt``).

    Examples
    --------
    >>> X = sample_antipodal_dependent(10, q=3, rng=0)
    >>> bool(np.all(np.einsum("ij,ij->i", X[0::2], X[1::2]) <= -np.cos(np.pi / 10) + 1e-12))
    True
    """
    n, q, rng = _count(n), check_dimension(q), check_rng(rng)
    n_first = (n + 1) // 2
    first = sample_uniform(n_first, q=q, rng=rng)
    second = np.stack([sample_spherical_cap(1, mu=-first[i], r=r, rng=rng)[0] for i in range(n - n_first)])
    out = np.empty((n, q))
    out[0::2] = first
    if n - n_first:
        out[1::2] = second
    return out
