"""Host-side special functions in log space, accurate at the huge orders that large dimensions q produce.

scipy.special covers the moderate range; at q in the thousands its Bessel functions underflow (``ive(32767, 1e4)``
is 0) and its hypergeometric functions overflow, and differences of ``gammaln`` lose digits to cancellation. The
functions here keep float64 relative accuracy there.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special as sc

from ._validate import host_array

__all__ = ["log_gamma_ratio", "log_iv", "log_rising"]

# Stirling series coefficients B_{2k} / (2k (2k-1)) for k = 1..8.
_STIRLING = (
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
    -3617.0 / 122400.0,
)
_STIRLING_MIN = 20.0


def stirling_correction(x: np.ndarray) -> np.ndarray:
    """lnGamma(x) - [(x - 1/2) ln x - x + ln(2 pi)/2] for x >= 20, to float64 precision (host helper)."""
    inv = 1.0 / x
    inv2 = inv * inv
    total = np.zeros_like(x)
    for coeff in reversed(_STIRLING):
        total = total * inv2 + coeff
    return total * inv


def _broadcast_positive(a: ArrayLike, name_a: str, b: ArrayLike, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 arrays broadcast together, checked positive (NaN refused; +inf allowed)."""
    a, b = host_array(a, name_a), host_array(b, name_b)
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError as exc:
        raise ValueError(f"{name_a} and {name_b} must broadcast to one shape, got {a.shape} and {b.shape}") from exc
    for value, name in ((a, name_a), (b, name_b)):
        if not np.all(value > 0):
            raise ValueError(f"{name} must be positive, got {value[~(value > 0)][0]}")
    return a, b


def log_gamma_ratio(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    r"""Return :math:`\ln\Gamma(a) - \ln\Gamma(b)` for positive ``a``, ``b`` without cancellation.

    ``gammaln(a) - gammaln(b)`` loses about ``eps * |gammaln(a)|`` absolute accuracy, which is 1e-10 at a ~ 1e5;
    for large arguments the Stirling series is differenced term by term instead, with ``log1p`` for the leading
    term, so the result keeps relative accuracy near 1e-15 of its own magnitude.

    Parameters
    ----------
    a, b : array_like
        Positive reals (broadcast together).

    Returns
    -------
    ndarray or float
        :math:`\ln\Gamma(a) - \ln\Gamma(b)` in float64 (a NumPy scalar for scalar input).

    See Also
    --------
    log_rising : the logarithm of the rising factorial.

    Accuracy
    --------
    For a, b >= 20: absolute error at most :math:`4\epsilon \max(1, |r|)` with r the result (relative accuracy
    even when a - b is tiny against a). Below 20, ``gammaln(a) - gammaln(b)``, whose absolute error is at most
    :math:`4\epsilon \max(1, |r|) + 2\epsilon \max(|\ln\Gamma(a)|, |\ln\Gamma(b)|)` (<= 2e-14 when a and b
    are close). Tested against mpmath for a, b in [0.01, 1e7].

    Examples
    --------
    >>> float(log_gamma_ratio(32768.5, 32768.0))  # 0.5 * log(32768) - 1 / (8 * 32768) + ...
    5.19860003950232...
    """
    a, b = _broadcast_positive(a, "a", b, "b")
    out = np.empty(a.shape, dtype=np.float64)
    large = (a >= _STIRLING_MIN) & (b >= _STIRLING_MIN)
    small = ~large
    out[small] = sc.gammaln(a[small]) - sc.gammaln(b[small])
    if np.any(large):
        al, bl = a[large], b[large]
        d = al - bl
        # (a - 1/2) ln a - (b - 1/2) ln b - (a - b) = (a - 1/2) log1p(d / b) + d ln b - d
        lead = (al - 0.5) * np.log1p(d / bl) + d * (np.log(bl) - 1.0)
        out[large] = lead + (stirling_correction(al) - stirling_correction(bl))
    return out if out.ndim else out[()]


def log_rising(x: ArrayLike, n: ArrayLike) -> np.ndarray:
    r"""Return :math:`\ln (x)_n = \ln\Gamma(x + n) - \ln\Gamma(x)` (log of the rising factorial), x > 0, n >= 0.

    Parameters
    ----------
    x : array_like
        Positive reals.
    n : array_like
        Non-negative reals (broadcast with x).

    Returns
    -------
    ndarray or float
        :math:`\ln (x)_n` in float64.

    See Also
    --------
    log_gamma_ratio : the difference of two log-gammas it is computed with.

    Accuracy
    --------
    That of :func:`log_gamma_ratio` at (x + n, x).

    Examples
    --------
    >>> import math
    >>> math.isclose(log_rising(3.5, 4), math.log(3.5 * 4.5 * 5.5 * 6.5), rel_tol=1e-15)
    True
    """
    x, n = host_array(x, "x"), host_array(n, "n")
    if not np.all(n >= 0):
        raise ValueError(f"n must be non-negative, got {np.broadcast_to(n, np.shape(n))[~(n >= 0)][0]}")
    x, _ = _broadcast_positive(x, "x", np.ones_like(n), "n")
    return log_gamma_ratio(x + n, x)


# Debye polynomials u_k(p) of DLMF 10.41.10, highest power first for np.polyval.
_DEBYE = (
    np.array([1.0]),
    np.array([-5.0, 0.0, 3.0, 0.0]) / 24.0,
    np.array([385.0, 0.0, -462.0, 0.0, 81.0, 0.0, 0.0]) / 1152.0,
    np.array([-425425.0, 0.0, 765765.0, 0.0, -369603.0, 0.0, 30375.0, 0.0, 0.0, 0.0]) / 414720.0,
    np.array([185910725.0, 0.0, -446185740.0, 0.0, 349922430.0, 0.0, -94121676.0, 0.0, 4465125.0, 0.0, 0.0, 0.0, 0.0])
    / 39813120.0,
)
_DEBYE_MIN_ORDER = 150.0


def _log_iv_debye(nu: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Uniform asymptotic expansion of ln I_nu(nu z), DLMF 10.41.3, five terms; relative error < 1e-13 at nu >= 150."""
    z = x / nu
    root = np.hypot(1.0, z)
    p = 1.0 / root
    # eta = sqrt(1+z^2) + ln(z / (1 + sqrt(1+z^2))), written so that small z keeps its digits and huge z
    # (where 1 + sqrt(1+z^2) - z = 1 + 1/(sqrt(1+z^2) + z)) does not overflow
    with np.errstate(divide="ignore"):
        log_ratio = np.where(z > 1.0, -np.log1p((1.0 + 1.0 / (root + z)) / z), np.log(z) - np.log1p(root))
    eta = root + log_ratio
    series = np.zeros_like(nu)
    for k in reversed(range(len(_DEBYE))):
        series = series / nu + np.polyval(_DEBYE[k], p)
    return nu * eta - 0.5 * np.log(2.0 * np.pi * nu) + 0.5 * np.log(p) + np.log(series)


def _hyp0f1_small(b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """0F1(; b; x^2/4) for x^2/4 small against b (positive terms, summed until they stop mattering)."""
    z = 0.25 * x * x
    term = np.ones_like(b)
    total = np.ones_like(b)
    k = 0
    # terms decrease once k > sqrt(z) and then faster than geometrically: the loop always ends
    while np.any(term > 1e-17 * total):
        term = term * z / ((b + k) * (k + 1))
        total = total + term
        k += 1
    return total


def log_ive_hankel(nu: np.ndarray, x: np.ndarray) -> np.ndarray:
    """ln(I_nu(x) e^-x) by Hankel's expansion (DLMF 10.40.1) for x >= 1e3 (nu + 1)^2, five terms (host helper)."""
    mu = 4.0 * nu * nu
    term = np.ones_like(x)
    total = np.ones_like(x)
    for k in range(1, 6):
        term = -term * ((mu - (2 * k - 1) ** 2) / (8.0 * k)) / x
        total = total + term
    return np.log(total) - 0.5 * (np.log(2.0 * np.pi) + np.log(x))


def log_iv(nu: ArrayLike, x: ArrayLike) -> np.ndarray:
    r"""Logarithm of the modified Bessel function of the first kind, :math:`\ln I_\nu(x)`, for nu >= 0, x >= 0.

    Uses ``scipy.special.ive`` for orders below 150 (its power series where ``ive`` underflows) and the uniform
    (Debye) asymptotic expansion of DLMF 10.41 with five terms above, where ``ive`` underflows
    (``ive(32767, 1e4) == 0``). ``log_iv(nu, 0)`` is ``-inf`` for
    nu > 0 and 0 for nu = 0.

    Parameters
    ----------
    nu : array_like
        Order, non-negative.
    x : array_like
        Argument, non-negative.

    Returns
    -------
    ndarray
        :math:`\ln I_\nu(x)` in float64, finite wherever :math:`I_\nu(x) > 0`.

    See Also
    --------
    scipy.special.ive : the exponentially scaled Bessel function used for orders below 150.

    Accuracy
    --------
    Absolute error at most :math:`10^{-13} \max(1, |\ln I_\nu(x)|)` for :math:`0 \le \nu \le 10^5`,
    :math:`10^{-6} \le x \le 10^5` (tested against mpmath); beyond, for x up to 1.8e308, Hankel's expansion (orders
    below 150, x >= 1e3 (nu + 1)^2) and the Debye expansion keep relative accuracy 1e-15 (tested to x = 1e300).
    Exact at x = 0; the limits ``inf`` (x = inf) and ``-inf`` (nu = inf). Domain: nu >= 0, x >= 0, not both
    infinite; torch tensors (also with ``requires_grad``) are read detached.

    References
    ----------
    .. [1] NIST Digital Library of Mathematical Functions, sections 10.40 (Hankel's expansion) and 10.41 (Debye's
       uniform expansion), https://dlmf.nist.gov/10.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import iv
    >>> bool(np.isclose(log_iv(2.5, 3.0), np.log(iv(2.5, 3.0))))
    True
    >>> bool(np.isfinite(log_iv(32767.0, 1e4)))
    True
    """
    nu, x = host_array(nu, "nu"), host_array(x, "x")
    try:
        nu, x = np.broadcast_arrays(nu, x)
    except ValueError as exc:
        raise ValueError(f"nu and x must broadcast to one shape, got shapes {nu.shape} and {x.shape}") from exc
    if np.any(nu < 0) or np.any(np.isnan(nu)):
        raise ValueError(f"nu must be non-negative (NaN is not allowed), got {nu[(nu < 0) | np.isnan(nu)][0]}")
    if np.any(x < 0) or np.any(np.isnan(x)):
        raise ValueError(f"x must be non-negative (NaN is not allowed), got {x[(x < 0) | np.isnan(x)][0]}")
    if np.any(np.isinf(nu) & np.isinf(x)):
        raise ValueError("nu and x must not both be infinite (ln I_nu(x) has no limit there)")
    out = np.empty(nu.shape, dtype=np.float64)
    zero = x == 0
    out[zero] = np.where(nu[zero] == 0, 0.0, -np.inf)
    # the limits: I_nu(inf) = inf for finite nu, I_inf(x) = 0 for finite x > 0
    out[np.isinf(x)] = np.inf
    out[np.isinf(nu) & ~zero] = -np.inf
    zero = zero | np.isinf(x) | np.isinf(nu)
    debye = (~zero) & (nu >= _DEBYE_MIN_ORDER)
    direct = (~zero) & ~debye
    if np.any(direct):
        nd, xd = nu[direct], x[direct]
        with np.errstate(divide="ignore"):
            vals = np.log(sc.ive(nd, xd)) + xd
        # scipy's ive returns NaN or 0 beyond x ~ 1e9; there x >> nu^2 and Hankel's expansion converges at once
        huge = xd > 1e3 * (nd + 1.0) ** 2
        vals[huge] = log_ive_hankel(nd[huge], xd[huge]) + xd[huge]
        # ive underflows only for small x (x^2/4 << nu + 1 below order 150), where the power series
        # I_nu(x) = (x/2)^nu / Gamma(nu+1) * 0F1(; nu+1; x^2/4) converges in a few terms.
        under = ~np.isfinite(vals) | (vals < -600.0)
        if np.any(under):
            nu_u, x_u = nd[under], xd[under]
            vals[under] = nu_u * np.log(0.5 * x_u) - sc.gammaln(nu_u + 1.0) + np.log(_hyp0f1_small(nu_u + 1.0, x_u))
        out[direct] = vals
    if np.any(debye):
        out[debye] = _log_iv_debye(nu[debye], x[debye])
    return out if out.ndim else out[()]
