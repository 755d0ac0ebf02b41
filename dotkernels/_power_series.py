r"""Power series with non-negative coefficients: the exact route to spectra of composed kernels at any q.

A profile :math:`\varphi(t) = \sum_p c_p t^p` with every :math:`c_p \ge 0` is positive definite on every sphere
(Schoenberg), and everything done to such series here adds non-negative terms only: products, compositions, the
arc-sine / arc-cosine maps of ReLU and step networks, and the change to the Gegenbauer basis of :math:`S^{q-1}`,

.. math::

    a_l = N(q, l) \sum_{p \ge l,\ p \equiv l \ (2)} c_p\, \lambda_l(t^p), \qquad
    \lambda_l(t^p) = E_{\nu_q}[t^p P_{l,q}(t)] = \frac{p!\, \Gamma(q/2)}{2^p\, ((p-l)/2)!\, \Gamma((p+l+q)/2)},

so nothing cancels and every coefficient keeps float64 relative accuracy at any q (2 ... 65536 and beyond).

Truncation bound
----------------
A series truncated after the power P, :math:`\hat c_p` (p <= P), computed by operations that only drop non-negative
terms, satisfies :math:`0 \le \hat c_p \le c_p`, so the remainder :math:`D(t) = \varphi(t) - \sum_{p \le P} \hat c_p
t^p` again has non-negative coefficients and

.. math::

    \sup_{[-1, 1]} |D| = D(1) = \varphi(1) - \sum_{p \le P} \hat c_p =: E_P,

an exact number when :math:`\varphi(1)` is known in closed form. Its Gegenbauer coefficients are non-negative and
sum to :math:`E_P`, so :math:`0 \le a_l - \hat a_l` and :math:`\sum_l (a_l - \hat a_l) \le E_P`. When the computed
coefficients are exact up to P (only the powers beyond P are missing), each degree has the sharper bound

.. math::

    0 \le a_l - \hat a_l \le E_P \max_{p > P,\ p \equiv l\ (2)} N(q, l) \lambda_l(t^p),

because :math:`N(q,l)\lambda_l(t^p)` is a probability weight in l for each p: in high dimension the powers beyond
P put their mass on degrees far above l and the bound is astronomically small. When a part
:math:`S \le E_P` of the omitted series may sit at powers :math:`\le P` (a truncated outer series in a
composition, a truncated Hermite expansion), the bound of each degree is :math:`S + E_P \max_p N\lambda_l`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import gammaln, logsumexp, roots_legendre

from ._validate import check_degree, check_dimension, check_integer
from .gegenbauer import legendre_all, log_harmonic_dimension
from .special import log_rising

__all__ = [
    "MAX_SERIES_DEGREE",
    "ROUNDING",
    "angle_quadrature_spectrum",
    "arccos_series",
    "arcsine_compose",
    "best_spectrum",
    "compose",
    "gauss_hermite_rule",
    "hermite_coefficients",
    "inverse_sqrt_compose",
    "log_monomial_magnitude",
    "log_monomial_projection",
    "max_monomial_weight",
    "multiply",
    "series_spectrum",
]


#: relative rounding allowance of a sum of positive terms in log space (float64)
ROUNDING = 1e-13
#: block length of the recurrence of inverse_sqrt_compose
_BLOCK = 256
#: largest degree best_spectrum accepts (its cost grows like degree^2 to degree^3: about a minute here)
MAX_SERIES_DEGREE = 2000


def _as_series(coefficients: Any, name: str) -> np.ndarray:
    c = np.asarray(coefficients, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d array of power-series coefficients")
    if not np.all(np.isfinite(c)):
        raise ValueError(f"{name} must be finite")
    return c


def multiply(a: Any, b: Any, *, terms: int | None = None) -> np.ndarray:
    r"""Coefficients of the product of two power series, truncated after ``terms`` powers.

    :math:`(ab)_p = \sum_{j \le p} a_j b_{p-j}` for p < ``terms`` (default: ``len(a)``), by direct convolution (no
    FFT: for non-negative inputs every output keeps float64 relative accuracy, however small it is).

    Examples
    --------
    >>> multiply([1.0, 1.0], [1.0, 1.0], terms=3).tolist()  # (1 + t)^2
    [1.0, 2.0, 1.0]
    """
    a, b = _as_series(a, "a"), _as_series(b, "b")
    n = a.size if terms is None else check_integer(terms, "terms", minimum=1)
    out = np.convolve(a[:n], b[:n])[:n]
    return np.concatenate([out, np.zeros(n - out.size)]) if out.size < n else out


def compose(outer: Any, inner: Any, *, terms: int | None = None) -> np.ndarray:
    r"""Coefficients of :math:`f(g(t))` for power series f (``outer``) and g (``inner``), truncated after ``terms``.

    Horner's scheme :math:`f_0 + g(f_1 + g(f_2 + \dots))` with truncated products: O(len(outer) * terms^2). With
    non-negative coefficients every operation only adds non-negative terms (no cancellation). Use it for outer
    series that are short or converge fast; :func:`arcsine_compose` handles the arc-sine family in O(terms^2).

    Examples
    --------
    >>> compose([0.0, 0.0, 1.0], [0.0, 1.0, 1.0], terms=5).tolist()  # (t + t^2)^2
    [0.0, 0.0, 1.0, 2.0, 1.0]
    """
    f, g = _as_series(outer, "outer"), _as_series(inner, "inner")
    n = g.size if terms is None else check_integer(terms, "terms", minimum=1)
    g = np.concatenate([g[:n], np.zeros(max(0, n - g.size))])
    out = np.zeros(n)
    out[0] = f[-1]
    for coefficient in f[-2::-1]:
        out = np.convolve(out, g)[:n]
        out[0] += coefficient
    return out


def arccos_series(order: int, terms: int) -> np.ndarray:
    r"""Taylor coefficients of the normalised arc-cosine kernels :math:`\kappa_0, \kappa_1` (Cho & Saul 2009).

    :math:`\kappa_0(t) = 1 - \arccos(t)/\pi = \tfrac12 + \tfrac1\pi \sum_n b_n t^{2n+1}/(2n+1)` and
    :math:`\kappa_1(t) = (\sqrt{1-t^2} + (\pi - \arccos t)\, t)/\pi = \tfrac1\pi + \tfrac t2 +
    \tfrac1\pi \sum_n b_n t^{2n+2} / ((2n+1)(2n+2))` (:math:`\kappa_1' = \kappa_0`), with
    :math:`b_n = \binom{2n}{n} 4^{-n}`. All coefficients are positive; they decay like :math:`p^{-3/2}` (order 0)
    and :math:`p^{-5/2}` (order 1), and :math:`\kappa_0(1) = \kappa_1(1) = 1`.

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.isclose(arccos_series(1, 5)[:3], [1 / np.pi, 0.5, 0.5 / np.pi]).all())
    True
    """
    order = check_integer(order, "order", minimum=0)
    if order not in (0, 1):
        raise ValueError(f"order must be 0 or 1, got {order}")
    terms = check_integer(terms, "terms", minimum=1)
    n = np.arange((terms + 1) // 2 + 1, dtype=np.float64)
    log_b = gammaln(2 * n + 1) - 2 * gammaln(n + 1) - n * math.log(4.0)
    out = np.zeros(terms + 2)
    if order == 0:
        out[0] = 0.5
        idx = (2 * n + 1).astype(int)
        out[idx[idx < out.size]] = (np.exp(log_b) / ((2 * n + 1) * math.pi))[idx < out.size]
    else:
        out[0] = 1.0 / math.pi
        out[1] = 0.5
        idx = (2 * n + 2).astype(int)
        keep = idx < out.size
        out[idx[keep]] = (np.exp(log_b) / ((2 * n + 1) * (2 * n + 2) * math.pi))[keep]
    return out[:terms]


def inverse_sqrt_compose(inner: Any) -> np.ndarray:
    r"""Coefficients of :math:`(1 - g(t)^2)^{-1/2}` for a series g with non-negative coefficients and g(0) < 1.

    From :math:`2 (1 - g^2) w' = (g^2)' w` (J. C. P. Miller's recurrence for powers of a series), in blocks of
    256 coefficients (one correlation for the known terms, forward substitution within the block): every step
    adds non-negative terms and divides by :math:`2(1 - g(0)^2) > 0` only, so each coefficient keeps float64
    relative accuracy. O(P^2) operations for P terms, in compiled loops (0.1 s for P = 16384).

    Examples
    --------
    >>> inverse_sqrt_compose([0.0, 1.0, 0.0, 0.0, 0.0]).tolist()  # (1 - t^2)^(-1/2) = 1 + t^2/2 + 3t^4/8 + ...
    [1.0, 0.0, 0.5, 0.0, 0.375]
    """
    g = _as_series(inner, "inner")
    if np.any(g < 0):
        raise ValueError("inner must have non-negative coefficients")
    if not g[0] < 1.0:
        raise ValueError(f"inner(0) must be < 1, got {g[0]}")
    n = g.size
    h = np.convolve(g, g)[:n]
    dh = np.arange(1, n) * h[1:]  # coefficients of (g^2)'
    w = np.zeros(n)
    dw = np.zeros(max(n - 1, 0))  # dw[p] = (p + 1) w[p + 1], the coefficients of w'
    w[0] = (1.0 - h[0]) ** -0.5
    denominator = 2.0 * (1.0 - h[0])
    # 2 (1 - h0) dw[p] = sum_{i <= p} w[i] dh[p - i] + 2 sum_{k < p} dw[k] h[p - k] with w[i] = dw[i - 1] / i,
    # solved block by block: the terms from the coefficients known before a block by one correlation each, the
    # block itself by forward substitution (a lower-triangular system whose off-diagonal entries all add
    # non-negative terms)
    start = 0
    while start < n - 1:
        stop = min(start + _BLOCK, n - 1)
        size = stop - start
        rhs = np.correlate(dh[: size + start], w[start::-1], mode="valid")
        if start:
            rhs += 2.0 * np.correlate(h[1 : size + start], dw[start - 1 :: -1], mode="valid")
        rows, cols = np.tril_indices(size, -1)
        system = np.zeros((size, size))
        system[rows, cols] = -(dh[rows - cols - 1] / (start + cols + 1) + 2.0 * h[rows - cols])
        system[np.arange(size), np.arange(size)] = denominator
        block = solve_triangular(system, rhs, lower=True, check_finite=False)
        dw[start:stop] = block
        w[start + 1 : stop + 1] = block / np.arange(start + 1, stop + 1)
        start = stop
    return w


def arcsine_compose(inner: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The arc-cosine kernels of a series: :math:`(w, \kappa_0 \circ g, \kappa_1 \circ g)`, each as long as g.

    For g with non-negative coefficients and :math:`g(0) < 1` (a layer's normalised covariance):
    :math:`w = (1 - g^2)^{-1/2}` (:func:`inverse_sqrt_compose`), :math:`(\kappa_0\circ g)' = w g' / \pi` and
    :math:`(\kappa_1\circ g)' = (\kappa_0\circ g)\, g'` (:math:`\kappa_0' = 1/(\pi\sqrt{1-t^2})`,
    :math:`\kappa_1' = \kappa_0`). Only non-negative terms are added, so each coefficient keeps float64 relative
    accuracy. O(P^2) for P terms.

    Examples
    --------
    >>> import numpy as np
    >>> w, u, v = arcsine_compose(np.array([0.0, 1.0, 0.0, 0.0, 0.0]))  # g(t) = t
    >>> bool(np.allclose(u, arccos_series(0, 5)) and np.allclose(v, arccos_series(1, 5)))
    True
    """
    g = _as_series(inner, "inner")
    w = inverse_sqrt_compose(g)
    n = g.size
    dg = np.arange(1, n) * g[1:]
    u = np.zeros(n)
    u[0] = 0.5 + math.asin(g[0]) / math.pi
    if n > 1:
        u[1:] = np.convolve(w, dg)[: n - 1] / (math.pi * np.arange(1, n))
    v = np.zeros(n)
    v[0] = (math.sqrt(1.0 - g[0] * g[0]) + g[0] * (math.pi - math.acos(g[0]))) / math.pi
    if n > 1:
        v[1:] = np.convolve(u, dg)[: n - 1] / np.arange(1, n)
    return w, u, v


def log_monomial_projection(powers: Any, degrees: Any, *, q: int) -> np.ndarray:
    r""":math:`\ln \lambda_l(t^p) = \ln E_{\nu_q}[t^p P_{l,q}(t)]`, broadcast over ``powers`` p and ``degrees`` l.

    :math:`\lambda_l(t^p) = p!\,\Gamma(q/2) / (2^p ((p-l)/2)!\,\Gamma((p+l+q)/2))` for :math:`l \le p`,
    :math:`p \equiv l \pmod 2`, and 0 (log ``-inf``) otherwise. Written as
    :math:`\ln (j+1)_{l+j} - p \ln 2 - \ln (q/2)_{l+j}` with p = l + 2j through :func:`~dotkernels.log_rising`
    (no large log-gammas are differenced). Accuracy: absolute, about 4e-16 times the size of those three terms
    (:func:`log_monomial_magnitude`), i.e. relative 1e-15 for moderate p and q, 1e-12 at p ~ q ~ 1e4.

    Examples
    --------
    >>> import numpy as np
    >>> float(np.exp(log_monomial_projection(2, 0, q=3)))  # E[t^2] = 1/3 on S^2
    0.333...
    """
    q = check_dimension(q)
    p, l = np.broadcast_arrays(np.asarray(powers, dtype=np.float64), np.asarray(degrees, dtype=np.float64))
    out = np.full(p.shape, -np.inf)
    ok = (l <= p) & (np.mod(p - l, 2) == 0) & (l >= 0)
    pp, ll = p[ok], l[ok]
    j = (pp - ll) / 2
    out[ok] = log_rising(j + 1, ll + j) - pp * math.log(2.0) - log_rising(q / 2, ll + j)
    return out


def log_monomial_magnitude(powers: Any, degrees: Any, *, q: int) -> np.ndarray:
    """Size of the terms summed in :func:`log_monomial_projection`: its absolute rounding is ~4e-16 times this."""
    q = check_dimension(q)
    p, l = np.broadcast_arrays(np.asarray(powers, dtype=np.float64), np.asarray(degrees, dtype=np.float64))
    j = np.maximum((p - l) / 2, 0.0)
    n = np.maximum(l + j, 0.0)
    return log_rising(j + 1, n) + p * math.log(2.0) + log_rising(q / 2, n)


def max_monomial_weight(degree: int, above: int, *, q: int) -> np.ndarray:
    r"""log of :math:`\max_{p > P,\ p \equiv l\ (2)} N(q,l)\,\lambda_l(t^p)` for l = 0..degree (P = ``above``).

    The weight of degree l in the Gegenbauer expansion of :math:`t^p` (these weights sum to 1 over l). In p it
    rises while :math:`p (q - 1) < l^2 + l q - 2l - 2q + 2` (the ratio of consecutive terms,
    :math:`(p+1)(p+2) / ((p-l+2)(p+l+q))`, exceeds 1) and falls after, so the maximum over p > P is at the first
    admissible p beyond both P and that turning point.
    """
    L = check_degree(degree)
    q = check_dimension(q)
    P = check_integer(above, "above", minimum=0)
    l = np.arange(L + 1, dtype=np.float64)
    first = P + 1 + ((P + 1 - l) % 2)  # smallest p > P with p = l (mod 2)
    first = np.maximum(first, l)
    turn = np.ceil((l * l + l * q - 2 * l - 2 * q + 2) / (q - 1))
    turn = turn + ((turn - l) % 2)
    candidates = np.stack([first, np.maximum(first, turn), np.maximum(first, turn + 2)])
    values = log_monomial_projection(candidates, l[None, :], q=q)
    return log_harmonic_dimension(np.arange(L + 1), q=q) + values.max(axis=0)


def series_spectrum(
    coefficients: Any, degree: int, *, q: int, remainder: float = 0.0, spread: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Gegenbauer coefficients of :math:`\sum_{p \le P} c_p t^p` (all :math:`c_p \ge 0`) and their error bound.

    Parameters
    ----------
    coefficients : array_like
        :math:`c_0, \dots, c_P`, non-negative.
    degree : int
        Largest degree l returned.
    q : int
        Dimension (keyword-only), >= 2.
    remainder : float
        :math:`E_P = \varphi(1) - \sum_{p \le P} c_p \ge 0`, the value at 1 of the missing part of the series.
    spread : float
        The part S of ``remainder`` that may sit at powers <= P (0 when :math:`c_0, \dots, c_P` are the exact
        coefficients and only the powers beyond P are missing). The bound of degree l is
        :math:`S + E_P \max_{p > P} N(q,l)\lambda_l(t^p)` (module docstring), at most :math:`E_P`.

    Returns
    -------
    log_abs, sign, error : ndarray
        :math:`\ln a_l` (``-inf`` where :math:`a_l = 0`), the signs (1 or 0), and the bound on
        :math:`|a_l^{\text{true}} - a_l|`: the truncation bound plus float64 rounding,
        :math:`(10^{-13} + 5 \cdot 10^{-16} (\ln N(q, l) + m_l))\, a_l` with :math:`m_l` the mean size of the
        logarithms summed (:func:`log_monomial_magnitude`).

    Examples
    --------
    >>> import numpy as np
    >>> log_a, sign, err = series_spectrum([0.0, 0.0, 1.0], 2, q=3)  # t^2 = 1/3 + 2/3 P_2
    >>> np.exp(log_a).round(12).tolist(), bool(np.all(err < 1e-12))
    ([0.333333333333, 0.0, 0.666666666667], True)
    """
    c = _as_series(coefficients, "coefficients")
    if np.any(c < 0):
        raise ValueError("coefficients must be non-negative")
    L = check_degree(degree)
    q = check_dimension(q)
    remainder = max(float(remainder), 0.0)
    spread = min(max(float(spread), 0.0), remainder)
    P = c.size - 1
    degrees = np.arange(L + 1)
    log_n = log_harmonic_dimension(degrees, q=q)
    log_a = np.full(L + 1, -np.inf)
    with np.errstate(divide="ignore"):
        log_c = np.log(c)
    half = P // 2 + 1
    j = np.arange(half, dtype=np.float64)
    magnitude = np.zeros(L + 1)
    for parity in (0, 1):
        ls = degrees[parity::2].astype(np.float64)
        if ls.size == 0:
            continue
        powers = ls[:, None] + 2 * j[None, :]
        valid = powers <= P
        safe = np.where(valid, powers, 0.0)
        terms = np.where(valid, log_monomial_projection(safe, ls[:, None], q=q), -np.inf)
        idx = safe.astype(int)
        terms = terms + np.where(valid, log_c[idx], -np.inf)
        with np.errstate(invalid="ignore"):
            row = logsumexp(terms, axis=1)
            log_a[parity::2] = row
            # first-order rounding of the sum: the weighted mean size of the logarithms of its terms
            weights = np.where(
                np.isfinite(row)[:, None], np.exp(terms - np.where(np.isfinite(row), row, 0)[:, None]), 0
            )
        magnitude[parity::2] = np.sum(weights * log_monomial_magnitude(safe, ls[:, None], q=q), axis=1)
    log_a = np.where(np.isfinite(log_a), log_a + log_n, -np.inf)
    sign = np.where(np.isfinite(log_a), 1.0, 0.0)
    if remainder == 0.0:
        error = np.zeros(L + 1)
    else:
        error = np.minimum(spread + remainder * np.exp(np.minimum(max_monomial_weight(L, P, q=q), 0.0)), remainder)
    # float64 rounding: the positive sum (1e-13 relative) and the logarithms of N(q, l) and of its terms
    a = np.where(sign > 0, np.exp(log_a), 0.0)
    return log_a, sign, error + (ROUNDING + 5e-16 * (log_n + magnitude)) * a


def angle_quadrature_spectrum(
    profile: Callable[[np.ndarray], Any], degree: int, *, q: int, nodes: int
) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`a_l = N(q,l) \int_0^\pi \varphi(\cos\theta) P_{l,q}(\cos\theta) \sin^{q-2}\theta\, d\theta /
    \int_0^\pi \sin^{q-2}\theta\, d\theta` by Gauss–Legendre in the angle, and its rounding bound.

    Profiles that are smooth functions of the angle (the arc-cosine kernels, network kernels, distance kernels:
    :math:`\|x - y\| = 2\sin(\theta/2)`) converge geometrically, where Gauss–Jacobi quadrature in t converges only
    algebraically on their :math:`\sqrt{1-t}` singularities. The rounding bound
    :math:`8\epsilon N(q,l) \sum_i |w_i \varphi_i P_l(x_i)|` grows with :math:`N(q,l)`: use it in low dimension.

    Returns
    -------
    a, rounding : ndarray
        The coefficients and the bound on their float64 rounding (not on the quadrature error: compare two rules).
    """
    L = check_degree(degree)
    q = check_dimension(q)
    x, w = roots_legendre(check_integer(nodes, "nodes", minimum=1))
    theta = 0.5 * math.pi * (x + 1.0)
    t = np.cos(theta)
    with np.errstate(divide="ignore"):
        log_weight = np.log(w) + (q - 2) * np.log(np.sin(theta))
    weight = np.exp(log_weight - log_weight.max())
    weight /= weight.sum()
    values = weight * np.asarray(profile(t), dtype=np.float64)
    polys = legendre_all(L, t, q=q, validate=False)
    n = np.exp(log_harmonic_dimension(np.arange(L + 1), q=q))
    return n * (polys @ values), 8 * np.finfo(np.float64).eps * n * (np.abs(polys) @ np.abs(values))


def best_spectrum(
    series: Callable[[int], tuple[np.ndarray, float, float]],
    degree: int,
    *,
    q: int,
    rtol: float,
    profile: Callable[[np.ndarray], Any] | None = None,
    min_terms: int = 512,
    max_terms: int = 1 << 12,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Spectrum of a non-negative power series by the most accurate route, degree by degree.

    The series route (:func:`series_spectrum`, rigorous bound) with ``max(min_terms, 4 degree + 4)`` powers,
    doubled up to ``max_terms`` while the worst relative bound improves fourfold (each doubling costs four times
    as much); where its bound exceeds ``rtol``
    and a ``profile`` is given, Gauss–Legendre quadrature in the angle (:func:`angle_quadrature_spectrum`, error
    estimated from rules of ``2 degree + 256`` and twice as many nodes, plus rounding) replaces the degrees it
    computes more accurately. ``series(terms)`` returns ``(c, remainder, spread)``.

    Returns
    -------
    a, error, route, spread : ndarray, ndarray, ndarray, float
        Coefficients (>= 0), error bounds, route per degree (0 series, 1 quadrature) and the series' spread.

    Raises
    ------
    ValueError
        When ``degree`` exceeds :data:`MAX_SERIES_DEGREE` (the call would run for minutes).
    """
    if degree > MAX_SERIES_DEGREE:
        raise ValueError(
            f"degree must be <= {MAX_SERIES_DEGREE} for a spectrum computed from a power series, got {degree}: "
            f"the cost grows like degree^2 to degree^3 (degree 1000 takes seconds, {MAX_SERIES_DEGREE} up to a "
            "minute on one core); ask for fewer degrees"
        )
    terms = max(min_terms, 4 * degree + 4)
    quadrature = None
    previous_worst = math.inf
    while True:
        c, remainder, spread = series(terms)
        log_a, sign, error = series_spectrum(c, degree, q=q, remainder=remainder, spread=spread)
        a = np.where(sign > 0, np.exp(log_a), 0.0)
        route = np.zeros(degree + 1, dtype=np.int8)
        if quadrature is None and profile is not None and np.any(error > rtol * a):
            nodes = 2 * degree + 256
            first, _ = angle_quadrature_spectrum(profile, degree, q=q, nodes=nodes)
            second, rounding = angle_quadrature_spectrum(profile, degree, q=q, nodes=2 * nodes)
            quadrature = (np.maximum(second, 0.0), np.abs(second - first) + rounding + ROUNDING * np.abs(second))
        if quadrature is not None:
            better = (quadrature[1] < error) & (quadrature[1] < 0.5 * quadrature[0])
            a = np.where(better, quadrature[0], a)
            error = np.where(better, quadrature[1], error)
            route = better.astype(np.int8)
        failing = (error > rtol * a) & (a > 0)
        if not np.any(failing) or terms >= max_terms or spread > 0:
            break
        worst = float(np.max(error[failing] / np.maximum(a[failing], 1e-300)))
        if worst > 0.25 * previous_worst:  # more powers no longer pay
            break
        previous_worst = worst
        terms *= 2
    return a, error, route, spread


@functools.lru_cache(maxsize=16)
def gauss_hermite_rule(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the probabilists' Gauss–Hermite rule, weights summing to 1 (cached, read-only)."""
    nodes = check_integer(nodes, "nodes", minimum=1)
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / math.sqrt(2.0 * math.pi)
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def _normalised_hermite(n: int, x: np.ndarray) -> np.ndarray:
    """He_k(x) / sqrt(k!) for k = 0..n-1 (rows), by the normalised three-term recurrence."""
    out = np.empty((n, x.size))
    out[0] = 1.0
    if n > 1:
        out[1] = x
    for k in range(1, n - 1):
        out[k + 1] = (x * out[k] - math.sqrt(k) * out[k - 1]) / math.sqrt(k + 1)
    return out


def hermite_coefficients(
    function: Callable[[np.ndarray], Any], terms: int, *, scale: float = 1.0, nodes: int | None = None
) -> tuple[np.ndarray, float]:
    r"""Normalised Hermite coefficients of :math:`x \mapsto f(\sqrt{s}\, x)` under the standard Gaussian.

    :math:`f(\sqrt s Z) = \sum_n a_n He_n(Z)/\sqrt{n!}` in :math:`L^2(N(0,1))`, with
    :math:`a_n = E[f(\sqrt s Z) He_n(Z)] / \sqrt{n!}`, computed by Gauss–Hermite quadrature (probabilists' weight)
    with ``nodes`` points (default ``min(2 * terms + 100, 300)``) and, to estimate the error, with 40 more (numpy's
    rule is accurate to about 350 nodes, which bounds ``terms`` to about 150).
    Then :math:`E[f(\sqrt s U) f(\sqrt s V)] = \sum_n a_n^2 \rho^n` for standard Gaussians of correlation
    :math:`\rho` (the dual activation; Mehler's formula).

    Returns
    -------
    a : ndarray
        :math:`a_0, \dots, a_{terms-1}`.
    error : float
        Largest difference between the two quadratures (an estimate of the absolute error of each :math:`a_n`):
        about 1e-15 for smooth activations (erf, GELU, polynomials); algebraic convergence for kinks (ReLU).

    Examples
    --------
    >>> import numpy as np
    >>> a, err = hermite_coefficients(lambda x: x**2, 4)  # x^2 = He_0 + sqrt(2) He_2 / sqrt(2!)
    >>> np.abs(a).round(12).tolist()
    [1.0, 0.0, 1.414213562373, 0.0]
    """
    if not callable(function):
        raise TypeError("function must be callable f(x) on numpy arrays")
    terms = check_integer(terms, "terms", minimum=1)
    scale = float(scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale}")
    m = check_integer(nodes, "nodes", minimum=1) if nodes is not None else min(2 * terms + 100, 300)
    if m > 310:
        raise ValueError(f"nodes must be <= 310 (numpy's Gauss-Hermite rule breaks down near 400), got {m}")

    def coefficients(count: int) -> np.ndarray:
        x, w = gauss_hermite_rule(count)
        fx = np.asarray(function(math.sqrt(scale) * x), dtype=np.float64)
        if fx.shape != x.shape or not np.all(np.isfinite(fx)):
            raise ValueError("function(x) must return finite values of the shape of x")
        return _normalised_hermite(terms, x) @ (w * fx)

    first = coefficients(m)
    second = coefficients(m + 40)
    return second, float(np.max(np.abs(second - first)))
