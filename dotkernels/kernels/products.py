r"""Products and compositions of dot-product kernels, with their exact spectra.

The pointwise product :math:`\varphi_1(t)\varphi_2(t)` of two dot-product kernels is a dot-product kernel
(Schur), and so is a composition :math:`\varphi(\psi(t))` when :math:`\psi` maps [-1, 1] into [-1, 1] and
:math:`\varphi` has a power series with non-negative coefficients (the layer map of a network). Their spectra:

- **Power series.** Where every factor has Taylor coefficients :math:`c_p \ge 0` (exponential, Gaussian,
  polynomial, inverse multiquadric, arc-cosine, NNGP/NTK kernels, and their sums, positive multiples, products and
  compositions; :func:`power_series`), the product or composition is computed as a series with non-negative
  terms, and mapped to the Gegenbauer basis with positive weights (:mod:`dotkernels._power_series`): no
  cancellation at any q, with the truncation bound :math:`E_P = \varphi(1) - \sum_{p \le P} c_p` of that module.
- **Gegenbauer linearisation.** Otherwise, products use the exact expansion
  :math:`P_{l,q} P_{m,q} = \sum_j g_q(l, m, j) P_{l+m-2j, q}` with the non-negative coefficients of Dougall's
  formula (:func:`linearization_coefficients`), applied to the factors' spectra truncated at a degree M. When
  the factors' coefficients beyond M are non-negative (every positive semi-definite kernel, and the distance
  kernels), the omitted part is bounded degree by degree: a pair (l, m) reaches degree k only if
  :math:`|l - m| \le k`, so for two factors the omitted pairs add at most
  :math:`T_A \sum_{m > M - k} |b_m| + T_B \sum_{l > M - k} |a_l|` (tails :math:`T = \varphi(1) - \sum_{l \le M}
  a_l`), a product of two small tails; with more factors, the global bound
  :math:`\prod_i (S_i + T_i) - \prod_i S_i`. The factors' own errors are carried through the linearisation.

Compositions whose outer kernel has no non-negative power series fall back to quadrature of the profile in the
angle :math:`\theta = \arccos t` (error estimated from two rules), as do the degrees of any series spectrum that
quadrature gets more accurately (low dimension, slowly converging series).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import gammaln

from .. import _power_series as ps
from .._validate import check_degree, check_dimension, check_integer
from ..special import log_rising
from ._base import DotProductKernel, SpectrumAccuracyWarning
from .algebra import ScaledKernel, SumKernel
from .closed_form import (
    ArcCosineKernel,
    ExponentialKernel,
    GaussianKernel,
    InverseMultiquadricKernel,
    MonomialKernel,
    PolynomialKernel,
)
from .network import NNGPKernel, NTKKernel

__all__ = ["CompositionKernel", "ProductKernel", "linearization_coefficients", "power_series"]

#: largest number of terms of an outer series applied by Horner's scheme
_MAX_OUTER = 256
#: largest number of terms power_series accepts (Horner's scheme then costs about ten seconds on one core)
_MAX_TERMS = 1 << 14
#: largest (degree + 1) * (truncation degree)^2 of a linearised product (about ten seconds on one core)
LINEARIZATION_WORK_LIMIT = 3e7


# =================================================================================================================
# power series of the families that have one


def power_series(kernel: DotProductKernel, terms: int) -> tuple[np.ndarray, float, float] | None:
    r"""Taylor coefficients of a kernel's profile when they are all non-negative, else None.

    Returns ``(c, remainder, spread)``: :math:`c_0, \dots, c_{terms-1}` (each :math:`\ge 0` and at most the true
    coefficient), ``remainder`` :math:`= \varphi(1) - \sum_p c_p \ge 0` (the value at 1 of the omitted,
    non-negative part, so :math:`0 \le \varphi - \sum_p c_p t^p \le` remainder on [-1, 1]) and ``spread``, the
    part of ``remainder`` that may sit at powers below ``terms`` (0 when the returned coefficients are the exact
    ones and only the powers beyond ``terms`` are missing). Known for
    :class:`ExponentialKernel`, :class:`GaussianKernel`, :class:`MonomialKernel`, :class:`PolynomialKernel`,
    :class:`InverseMultiquadricKernel`, :class:`ArcCosineKernel`, the network kernels (``power_series`` method),
    and sums, positive multiples, products and compositions of these.

    Parameters
    ----------
    kernel : DotProductKernel
        The kernel whose profile is expanded.
    terms : int
        Number of coefficients, >= 1.

    Returns
    -------
    tuple of (ndarray, float, float) or None
        ``(c, remainder, spread)`` as above; None when the kernel has no known series with non-negative
        coefficients.

    See Also
    --------
    ProductKernel, CompositionKernel : the kernels whose spectra use these series.

    Accuracy
    --------
    Each coefficient to a few ulps (closed forms, or recurrences adding non-negative terms only); ``remainder``
    includes the rounding of :math:`\varphi(1) - \sum_p c_p` (4 eps :math:`\varphi(1)`).

    Examples
    --------
    >>> from dotkernels import ExponentialKernel
    >>> c, remainder, spread = power_series(ExponentialKernel(kappa=1.0), 4)
    >>> c.round(12).tolist(), spread
    ([1.0, 1.0, 0.5, 0.166666666667], 0.0)
    """
    terms = check_integer(terms, "terms", minimum=1)
    if terms > _MAX_TERMS:
        raise ValueError(
            f"terms must be <= {_MAX_TERMS}, got {terms}: products and compositions of series cost up to "
            f"{_MAX_OUTER} * terms^2 operations"
        )
    p = np.arange(terms, dtype=np.float64)
    if isinstance(kernel, ExponentialKernel):
        c = np.exp(p * math.log(kernel.kappa) - gammaln(p + 1))
        return _finish(c, kernel._phi_at_one(None))
    if isinstance(kernel, GaussianKernel):
        x = 2.0 * kernel.gamma
        c = np.exp(-x + p * math.log(x) - gammaln(p + 1))
        return _finish(c, 1.0)
    if isinstance(kernel, MonomialKernel):
        c = np.zeros(terms)
        if kernel.p < terms:
            c[kernel.p] = 1.0
        return _finish(c, 1.0)
    if isinstance(kernel, PolynomialKernel):
        j = np.arange(min(kernel.p, terms - 1) + 1, dtype=np.float64)
        with np.errstate(divide="ignore"):
            log_c = gammaln(kernel.p + 1) - gammaln(j + 1) - gammaln(kernel.p - j + 1)
            log_c = log_c + (
                (kernel.p - j) * math.log(kernel.c) if kernel.c > 0 else np.where(j == kernel.p, 0, -np.inf)
            )
        c = np.zeros(terms)
        c[: j.size] = np.exp(log_c)
        return _finish(c, kernel._phi_at_one(None))
    if isinstance(kernel, InverseMultiquadricKernel):
        # (c^2 + 2 - 2t)^(-beta) = (c^2 + 2)^(-beta) sum_n (beta)_n / n! (2 / (c^2 + 2))^n t^n
        d = kernel.c**2 + 2.0
        c = np.exp(-kernel.beta * math.log(d) + log_rising(kernel.beta, p) - gammaln(p + 1) + p * math.log(2.0 / d))
        return _finish(c, kernel._phi_at_one(None))
    if isinstance(kernel, ArcCosineKernel):
        return _finish(ps.arccos_series(kernel.order, terms), 1.0)
    if isinstance(kernel, ScaledKernel):
        inner = power_series(kernel.kernel, terms)
        if inner is None:
            return None
        return kernel.c * inner[0], kernel.c * inner[1], kernel.c * inner[2]
    if isinstance(kernel, SumKernel):
        parts = [power_series(k, terms) for k in kernel.kernels]
        if any(part is None for part in parts):
            return None
        return (
            np.sum([part[0] for part in parts], axis=0),
            math.fsum(part[1] for part in parts),
            math.fsum(part[2] for part in parts),
        )
    if isinstance(kernel, (ProductKernel, CompositionKernel)):
        return kernel._series(terms)
    if isinstance(kernel, (NNGPKernel, NTKKernel)):
        return kernel.power_series(terms)
    return None


def _finish(c: np.ndarray, value_at_one: float, spread: float = 0.0) -> tuple[np.ndarray, float, float]:
    # value_at_one - sum c_p cannot resolve a tail below the rounding of value_at_one: 4 eps covers it
    remainder = float(max(value_at_one - math.fsum(c), 0.0) + 4 * np.finfo(np.float64).eps * abs(value_at_one))
    return c, remainder, float(min(max(spread, 0.0), remainder))


def _spectrum_from_series(kernel: DotProductKernel, q: int, degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log a_l, sign, error) by the series route, with the angle quadrature where it is more accurate."""
    a, error, _, _ = ps.best_spectrum(
        kernel._series, degree, q=q, rtol=kernel.spectrum_rtol, profile=lambda t: kernel._profile(t, np, q)
    )
    with np.errstate(divide="ignore"):
        return np.log(a), np.where(a > 0, 1.0, 0.0), error


def _spectrum_by_quadrature(kernel: DotProductKernel, q: int, degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log|a_l|, sign, estimated error) by Gauss-Legendre in the angle (two rules), with an accuracy warning."""
    if degree > ps.MAX_SERIES_DEGREE:
        raise ValueError(
            f"degree must be <= {ps.MAX_SERIES_DEGREE} for the quadrature spectrum of {kernel!r}, got {degree}: "
            "it evaluates (degree + 1) x (4 degree + 512) polynomial values (memory and time grow like degree^2)"
        )
    nodes = 2 * degree + 256
    profile = lambda t: kernel._profile(t, np, q)  # noqa: E731
    first, _ = ps.angle_quadrature_spectrum(profile, degree, q=q, nodes=nodes)
    a, rounding = ps.angle_quadrature_spectrum(profile, degree, q=q, nodes=2 * nodes)
    error = np.abs(a - first) + rounding + ps.ROUNDING * np.abs(a)
    bad = error > kernel.spectrum_rtol * np.abs(a)
    if np.any(bad):
        worst = float(np.max(error[bad] / np.maximum(np.abs(a[bad]), 1e-300)))
        warnings.warn(
            f"{kernel!r}: spectrum in q={q} by quadrature accurate only to {worst:.2g} relative at degrees "
            f"{np.nonzero(bad)[0][[0, -1]].tolist()} (first, last); spectrum_error gives the estimate per degree",
            SpectrumAccuracyWarning,
            stacklevel=5,
        )
    with np.errstate(divide="ignore"):
        return np.log(np.abs(a)), np.sign(a), error


# =================================================================================================================
# Gegenbauer linearisation


def _log_linearization(l: np.ndarray, m: np.ndarray, j: np.ndarray, q: int) -> np.ndarray:
    """log g_q(l, m, j): the coefficient of P_{l+m-2j} in P_l P_m (0 <= j <= min(l, m)), q >= 3."""
    lam = 0.5 * (q - 2)
    k = l + m - 2 * j
    return (
        np.log(k + lam)
        - np.log(l + m + lam - j)
        + log_rising(lam, j)
        + log_rising(lam, l - j)
        + log_rising(lam, m - j)
        + log_rising(2 * lam, l + m - j)
        + log_rising(j + 1, l - j)  # l! / j! ... grouped as rising factorials to avoid large cancelling gammas
        + gammaln(m + 1)
        - gammaln(l - j + 1)
        - gammaln(m - j + 1)
        - log_rising(lam, l + m - j)
        - log_rising(2 * lam, l)
        - log_rising(2 * lam, m)
    )


def linearization_coefficients(degree1: int, degree2: int, *, q: int) -> np.ndarray:
    r"""Coefficients :math:`g_q(l, m, k)` of :math:`P_{l,q} P_{m,q} = \sum_k g_q(l, m, k) P_{k,q}`, k = 0..l+m.

    With l = ``degree1`` and m = ``degree2``: Dougall's formula for the Gegenbauer polynomials
    :math:`C^\lambda_n`, :math:`\lambda = (q-2)/2`, in the normalisation :math:`P_{l,q}(1) = 1`: for
    :math:`k = l + m - 2j`, :math:`0 \le j \le \min(l, m)`,

    .. math::

        g_q(l, m, k) = \frac{k + \lambda}{l + m + \lambda - j}
        \frac{(\lambda)_j (\lambda)_{l-j} (\lambda)_{m-j} (2\lambda)_{l+m-j}\, l!\, m!}
             {j!\, (l-j)!\, (m-j)!\, (\lambda)_{l+m-j}\, (2\lambda)_l\, (2\lambda)_m},

    and 0 for the other k; q = 2 (Chebyshev): :math:`T_l T_m = (T_{l+m} + T_{|l-m|})/2`. Every coefficient is
    non-negative and they sum to 1 (the value at t = 1).

    Parameters
    ----------
    degree1, degree2 : int
        The degrees l and m, >= 0.
    q : int
        Dimension of :math:`\mathbb{R}^q`, >= 2 (keyword-only).

    Returns
    -------
    ndarray
        :math:`g_q(l, m, k)` for k = 0..l+m (float64).

    See Also
    --------
    ProductKernel : products of kernels, whose spectra use these coefficients.

    References
    ----------
    .. [1] NIST Digital Library of Mathematical Functions, section 18.18(vi) (linearization formulas),
       https://dlmf.nist.gov/18.18.

    Accuracy
    --------
    Computed in log space with :func:`~dotkernels.log_rising`: relative error about 1e-13 for degrees up to a few
    hundred and every q >= 2 (tested against exact rational arithmetic and the polynomial identity).

    Examples
    --------
    >>> linearization_coefficients(1, 1, q=3).round(12).tolist()  # t^2 = 1/3 + 2/3 P_2
    [0.333333333333, 0.0, 0.666666666667]
    """
    l = check_degree(degree1, "degree1")
    m = check_degree(degree2, "degree2")
    q = check_dimension(q)
    if l + m > 10**7:
        raise ValueError(
            f"degree1 + degree2 must be <= 10^7 (the result has degree1 + degree2 + 1 entries), got {l + m}"
        )
    out = np.zeros(l + m + 1)
    j = np.arange(min(l, m) + 1, dtype=np.float64)
    k = (l + m - 2 * j).astype(int)
    if q == 2:
        if l == 0 or m == 0:
            out[l + m] = 1.0
        else:
            out[l + m] += 0.5
            out[abs(l - m)] += 0.5
        return out
    out[k] = np.exp(_log_linearization(float(l), float(m), j, q))
    return out


def _linearized_product(a: np.ndarray, b: np.ndarray, degree: int, q: int) -> np.ndarray:
    """Gegenbauer coefficients 0..degree of (sum_l a_l P_l)(sum_m b_m P_m)."""
    out = np.zeros(degree + 1)
    la, lb = np.nonzero(a)[0], np.nonzero(b)[0]
    if la.size == 0 or lb.size == 0:
        return out
    ms = lb.astype(np.float64)
    for l in la.tolist():
        close = np.abs(ms - l) <= degree  # P_l P_m has degrees |l - m| .. l + m
        if not np.any(close):
            continue
        m = ms[close]
        if q == 2:
            for mm, bm in zip(m.astype(int).tolist(), b[m.astype(int)].tolist()):
                g = linearization_coefficients(l, mm, q=2)
                top = min(degree, g.size - 1)
                out[: top + 1] += a[l] * bm * g[: top + 1]
            continue
        # j from max(0, ceil((l + m - degree) / 2)) to min(l, m)
        jmax = np.minimum(l, m)
        jmin = np.maximum(0, np.ceil((l + m - degree) / 2))
        counts = (jmax - jmin + 1).astype(int)
        keep = counts > 0
        m, jmin, counts = m[keep], jmin[keep], counts[keep]
        mm = np.repeat(m, counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        jj = np.repeat(jmin, counts) + offsets
        k = (l + mm - 2 * jj).astype(int)
        values = a[l] * b[mm.astype(int)] * np.exp(_log_linearization(float(l), mm, jj, q))
        out += np.bincount(k, weights=values, minlength=degree + 1)[: degree + 1]
    return out


# =================================================================================================================
# kernels


def _check_kernels(kernels: Any, name: str) -> tuple[DotProductKernel, ...]:
    if isinstance(kernels, DotProductKernel) or not isinstance(kernels, Sequence):
        raise TypeError(f"{name} must be a sequence of DotProductKernel instances")
    out = tuple(kernels)
    for k in out:
        if not isinstance(k, DotProductKernel):
            raise TypeError(f"{name} must contain DotProductKernel instances, got {type(k).__name__}")
    if len(out) < 1:
        raise ValueError(f"{name} must not be empty")
    return out


class ProductKernel(DotProductKernel):
    r"""Pointwise product :math:`\varphi_1(t) \cdots \varphi_n(t)` of dot-product kernels (``k1 * k2``).

    Positive semi-definite when every factor is (Schur product theorem). Spectrum: through the power series when
    every factor has one with non-negative coefficients, else through the Gegenbauer linearisation of the factors'
    spectra truncated at degree ``max(2 * degree + 64, 128)`` (see :mod:`dotkernels.kernels.products` for both
    error bounds; :meth:`spectrum_error` returns them per degree).

    Parameters
    ----------
    kernels : sequence of DotProductKernel
        The factors (nested products are flattened).

    See Also
    --------
    CompositionKernel : the composition of two kernels.
    linearization_coefficients : the Gegenbauer linearisation used when a factor has no positive power series.

    Accuracy
    --------
    :meth:`spectrum_error` bounds each coefficient's error (rigorously on the series route and for the
    linearisation of positive semi-definite factors; plus float64 rounding, about 1e-13 relative). The
    linearisation costs about (degree + 1) (2 degree + 64)^2 operations: beyond ``LINEARIZATION_WORK_LIMIT`` = 3e7
    (degree ~ 175 for two infinite series, about ten seconds on one core) the spectrum is refused with a
    ValueError; series spectra accept degrees up to 2000.

    References
    ----------
    .. [1] I. J. Schoenberg, "Positive definite functions on spheres", Duke Mathematical Journal 9(1), 96-108
       (1942).
    .. [2] NIST Digital Library of Mathematical Functions, section 18.18(vi) (linearization formulas),
       https://dlmf.nist.gov/18.18.

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels import ExponentialKernel, MonomialKernel
    >>> k = ProductKernel([ExponentialKernel(kappa=1.0), MonomialKernel(p=2)])
    >>> t = np.array([0.5])
    >>> bool(np.isclose(k.profile(t)[0], np.exp(0.5) * 0.25))
    True
    >>> a = k.spectrum(40, q=512)
    >>> bool(np.isclose(a.sum(), np.e))  # phi(1) = e; the series converges fast
    True
    """

    name = "product"

    def __init__(self, kernels: Sequence[DotProductKernel]):
        flat: list[DotProductKernel] = []
        for k in _check_kernels(kernels, "kernels"):
            flat.extend(k.kernels if isinstance(k, ProductKernel) else [k])
        self.kernels = tuple(flat)
        self.dimension_dependent = any(k.dimension_dependent for k in flat)
        self.has_corner = any(k.has_corner for k in flat)
        degrees = [k.degree for k in flat]
        self.degree = None if any(d is None for d in degrees) else int(sum(degrees))
        self.spectrum_rtol = max(k.spectrum_rtol for k in flat)
        self._parts: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _params(self) -> tuple:
        return tuple((type(k).__name__, k._params()) for k in self.kernels)

    def __repr__(self) -> str:
        return f"ProductKernel([{', '.join(repr(k) for k in self.kernels)}])"

    def _profile(self, t: Any, xp: Any, q: int | None) -> Any:
        out = self.kernels[0]._profile(t, xp, q)
        for k in self.kernels[1:]:
            out = out * k._profile(t, xp, q)
        return out

    def _derivative(self, t: Any, xp: Any, q: int | None) -> Any:
        values = [k._profile(t, xp, q) for k in self.kernels]
        total = None
        for i, k in enumerate(self.kernels):
            term = k._derivative(t, xp, q)
            for j, v in enumerate(values):
                if j != i:
                    term = term * v
            total = term if total is None else total + term
        return total

    def _phi_at_one(self, q: int | None) -> float:
        return float(math.prod(k._phi_at_one(q) for k in self.kernels))

    def _log_phi_at_one(self, q: int | None) -> float:
        return math.fsum(k._log_phi_at_one(q) for k in self.kernels)

    def _series(self, terms: int) -> tuple[np.ndarray, float, float] | None:
        parts = [power_series(k, terms) for k in self.kernels]
        if any(part is None for part in parts):
            return None
        c = parts[0][0]
        for part in parts[1:]:
            c = ps.multiply(c, part[0], terms=terms)
        c = np.maximum(c, 0.0)
        # the factors' spread parts S_i can meet anything: prod V_i - prod (V_i - S_i) bounds their share
        values = [k._phi_at_one(None) for k in self.kernels]
        spread = math.prod(values) - math.prod(v - part[2] for v, part in zip(values, parts))
        return _finish(c, math.prod(values), spread)

    def _compute(self, q: int, degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = (q, degree)
        if key in self._parts:
            return self._parts[key]
        if not self.dimension_dependent and self._series(1) is not None:
            result = _spectrum_from_series(self, q, degree)
        else:
            result = self._linearized(q, degree)
        self._parts[key] = result
        while len(self._parts) > 32:  # bounded, like the base class's cache
            self._parts.pop(next(iter(self._parts)))
        return result

    def _linearized(self, q: int, degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        degrees = [k.degree for k in self.kernels]
        truncation = max(2 * degree + 64, 128)
        sizes = [truncation if d is None else d for d in degrees]
        work = (degree + 1) * sum(min(m, truncation) ** 2 for m in sizes[1:]) if len(sizes) > 1 else 0
        if work > LINEARIZATION_WORK_LIMIT:
            top = max(d for d in range(degree + 1) if (d + 1) * max(2 * d + 64, 128) ** 2 <= LINEARIZATION_WORK_LIMIT)
            raise ValueError(
                f"{self!r}: the Gegenbauer linearisation to degree {degree} costs about {work:.3g} operations (it "
                f"grows like degree^3), beyond the limit {LINEARIZATION_WORK_LIMIT:.3g} (about ten seconds on one "
                "core); "
                f"degrees up to about {top} are feasible for two factors with infinite series"
            )
        spectra, errors = [], []
        for k, d in zip(self.kernels, degrees):
            M = d if d is not None else truncation
            spectra.append(np.asarray(k.spectrum(M, q=q), dtype=np.float64))
            errors.append(np.asarray(k.spectrum_error(M, q=q), dtype=np.float64))
        current = spectra[0]
        for nxt in spectra[1:]:
            top = degree if nxt is spectra[-1] else min(current.size + nxt.size - 2, degree + truncation)
            current = _linearized_product(current, nxt, top, q)
        a = current[: degree + 1]
        if a.size < degree + 1:
            a = np.concatenate([a, np.zeros(degree + 1 - a.size)])
        # tails T_i = phi_i(1) - sum_{l <= M_i} a_l (non-negative coefficients beyond M_i, as for every positive
        # semi-definite factor; 0 for polynomials), with the rounding of that difference
        eps = np.finfo(np.float64).eps
        tails = [
            0.0
            if d is not None
            else max(k._phi_at_one(q) - math.fsum(s), 0.0) + 4 * eps * abs(k._phi_at_one(q)) + math.fsum(e)
            for k, d, s, e in zip(self.kernels, degrees, spectra, errors)
        ]
        if len(spectra) == 2:
            error = self._pair_bound(spectra, errors, tails, degree, q)
        else:
            # omitted part: prod (S_i + T_i + E_i) - prod S_i with S_i = sum |a_l| kept and E_i their errors
            kept = [math.fsum(np.abs(s)) for s in spectra]
            own = [math.fsum(e) for e in errors]
            bound = math.prod(s + t + e for s, t, e in zip(kept, tails, own)) - math.prod(kept)
            error = np.full(degree + 1, max(bound, 0.0))
        error = error + ps.ROUNDING * np.abs(a)
        with np.errstate(divide="ignore"):
            return np.log(np.abs(a)), np.sign(a), error

    @staticmethod
    def _pair_bound(
        spectra: list[np.ndarray], errors: list[np.ndarray], tails: list[float], degree: int, q: int
    ) -> np.ndarray:
        r"""Per-degree error bound of the linearised product of two truncated spectra A (to M_A), B (to M_B).

        A pair (l, m) reaches degree k only if :math:`|l - m| \le k`, and :math:`0 \le g \le 1`: the omitted pairs
        with l > M_A add at most :math:`T_A \sum_{m > M_A - k} |B_m|` to degree k (and symmetrically), and the
        kept pairs carry the factors' own errors, linearised like the coefficients themselves.
        """
        (A, B), (EA, EB), (TA, TB) = spectra, errors, tails
        k = np.arange(degree + 1)

        def beyond(X: np.ndarray, tail: float, start: np.ndarray) -> np.ndarray:
            # sum_{m > start} |X_m| including the tail beyond the kept coefficients
            suffix = np.concatenate([np.cumsum(np.abs(X)[::-1])[::-1], [0.0]])
            return suffix[np.clip(start + 1, 0, X.size)] + tail

        omitted = TA * beyond(B, TB, A.size - 1 - k) + TB * beyond(A, TA, B.size - 1 - k)
        own = _linearized_product(EA, np.abs(B), degree, q) + _linearized_product(np.abs(A) + EA, EB, degree, q)
        return omitted + own

    def _log_spectrum(self, q: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
        log_a, sign, _ = self._compute(q, degree)
        return log_a, sign

    def _spectrum_error(self, q: int, degree: int) -> np.ndarray:
        return self._compute(q, degree)[2].copy()

    def _positive_semidefinite(self, q: int) -> bool | None:
        answers = [k._positive_semidefinite(q) for k in self.kernels]
        return True if all(a is True for a in answers) else None


class CompositionKernel(DotProductKernel):
    r"""Composition :math:`\varphi(\psi(t))` of a kernel profile :math:`\varphi` (``outer``) with ``inner``
    :math:`\psi`, which must map [-1, 1] into [-1, 1].

    With non-negative Taylor coefficients for both (:func:`power_series`), the composition's coefficients are
    computed with non-negative terms only (Horner's scheme on the outer series, or the arc-sine recurrences when
    the outer kernel is an :class:`ArcCosineKernel`), and the spectrum carries the bound
    :math:`\varphi(\psi(1)) - \sum_{p \le P} c_p`; the composition is then positive semi-definite on every sphere.
    Otherwise the spectrum is computed by Gauss–Legendre quadrature of the profile in the angle (error estimated
    from two rules; accurate where :math:`N(q, l)` is moderate, with a :class:`SpectrumAccuracyWarning` beyond).

    Parameters
    ----------
    outer : DotProductKernel
        The kernel :math:`\varphi` applied to the inner profile's values.
    inner : DotProductKernel
        The kernel :math:`\psi`, with values in [-1, 1].

    See Also
    --------
    ProductKernel : the pointwise product of kernels.
    NNGPKernel : compositions of arc-cosine layers (wide networks).

    Accuracy
    --------
    :meth:`spectrum_error` per coefficient (a rigorous bound on the series route, an estimate on the quadrature
    route); degrees up to 2000 on the series route.

    References
    ----------
    .. [1] I. J. Schoenberg, "Positive definite functions on spheres", Duke Mathematical Journal 9(1), 96-108
       (1942).

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels import ArcCosineKernel, ExponentialKernel
    >>> k = CompositionKernel(ExponentialKernel(kappa=1.0), ArcCosineKernel(order=1))
    >>> bool(np.isclose(k.profile(np.array([1.0]))[0], np.e))
    True
    >>> bool(np.all(k.spectrum_error(20, q=256) <= 1e-10 * k.spectrum(20, q=256)))
    True
    """

    name = "composition"

    def __init__(self, outer: DotProductKernel, inner: DotProductKernel):
        for value, label in ((outer, "outer"), (inner, "inner")):
            if not isinstance(value, DotProductKernel):
                raise TypeError(f"{label} must be a DotProductKernel, got {type(value).__name__}")
        if inner.dimension_dependent or outer.dimension_dependent:
            raise ValueError("outer and inner must be kernels whose profile does not depend on q")
        ends = np.asarray(inner.profile(np.array([-1.0, 1.0])), dtype=np.float64)
        if np.any(np.abs(ends) > 1.0 + 1e-12) or abs(inner.phi_at_one()) > 1.0 + 1e-12:
            raise ValueError(
                f"inner must map [-1, 1] into [-1, 1] (|psi(1)| <= 1), got psi(-1), psi(1) = {ends.tolist()}; "
                "rescale it, e.g. 0.5 * kernel"
            )
        self.outer = outer
        self.inner = inner
        self.has_corner = inner.has_corner or outer.has_corner
        self.degree = None if outer.degree is None or inner.degree is None else outer.degree * inner.degree
        self.spectrum_rtol = max(outer.spectrum_rtol, inner.spectrum_rtol)
        self._parts: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _params(self) -> tuple:
        return (type(self.outer).__name__, self.outer._params(), type(self.inner).__name__, self.inner._params())

    def _named_params(self) -> list[tuple[str, Any]]:
        return [("outer", self.outer), ("inner", self.inner)]

    def _profile(self, t: Any, xp: Any, q: int | None) -> Any:
        return self.outer._profile(self.inner._profile(t, xp, q), xp, q)

    def _derivative(self, t: Any, xp: Any, q: int | None) -> Any:
        inner = self.inner._profile(t, xp, q)
        return self.outer._derivative(inner, xp, q) * self.inner._derivative(t, xp, q)

    def _phi_at_one(self, q: int | None) -> float:
        return float(self.outer._profile(np.asarray([self.inner._phi_at_one(q)]), np, q)[0])

    def _series(self, terms: int) -> tuple[np.ndarray, float, float] | None:
        inner = power_series(self.inner, terms)
        if inner is None:
            return None
        g, _, inner_spread = inner
        if isinstance(self.outer, ArcCosineKernel):
            if not g[0] < 1.0:
                return None
            _, u, v = ps.arcsine_compose(g)
            c = u if self.outer.order == 0 else v
            outer_tail = 0.0
        else:
            outer = power_series(self.outer, _MAX_OUTER)
            if outer is None:
                return None
            f, f_remainder, _ = outer
            # enough outer terms for their tail (times |psi| <= 1) to be negligible
            tail = np.cumsum(f[::-1])[::-1]
            scale = max(abs(self._phi_at_one(None)), 1e-300)
            needed = np.nonzero(tail + f_remainder > 1e-17 * scale)[0]
            count = int(needed[-1]) + 1 if needed.size else 1
            # the omitted outer terms f_n psi^n, n >= count, weigh at most sum_n f_n |psi(1)|^n <= this tail
            outer_tail = float(tail[count]) + f_remainder if count < f.size else f_remainder
            c = ps.compose(f[:count], g, terms=terms)
        value = self._phi_at_one(None)
        # an inexact inner series may move weight anywhere: then the whole remainder counts as spread
        spread = math.inf if inner_spread > 0 else outer_tail
        return _finish(np.maximum(c, 0.0), value, spread)

    def _compute(self, q: int, degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = (q, degree)
        if key in self._parts:
            return self._parts[key]
        if self._series(1) is not None:
            result = _spectrum_from_series(self, q, degree)
        else:
            result = _spectrum_by_quadrature(self, q, degree)
        self._parts[key] = result
        while len(self._parts) > 32:  # bounded, like the base class's cache
            self._parts.pop(next(iter(self._parts)))
        return result

    def _log_spectrum(self, q: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
        log_a, sign, _ = self._compute(q, degree)
        return log_a, sign

    def _spectrum_error(self, q: int, degree: int) -> np.ndarray:
        return np.asarray(self._compute(q, degree)[2], dtype=np.float64).copy()

    def _positive_semidefinite(self, q: int) -> bool | None:
        return True if self._series(1) is not None else None
