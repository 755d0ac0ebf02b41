r"""Normalised Gegenbauer polynomials ("Legendre polynomials in dimension q") and their series.

Notation: the sphere :math:`S^{q-1} \subset \mathbb{R}^q`, :math:`q \ge 2`, :math:`\lambda = (q-2)/2`.

.. math::

    P_{l,q}(t) = C_l^{\lambda}(t) / C_l^{\lambda}(1), \qquad P_{l,q}(1) = 1, \qquad |P_{l,q}| \le 1 \text{ on } [-1, 1].

q = 2 gives the Chebyshev polynomials :math:`T_l`, q = 3 the Legendre polynomials, and :math:`P_{l,q}(t) \to t^l`
as q grows. Every evaluation uses the normalised three-term recurrence

.. math::

    P_{l+1,q}(t) = \frac{(2l+q-2)\, t\, P_{l,q}(t) - l\, P_{l-1,q}(t)}{l+q-2},

whose two factors stay in [0, 2] for every q, so nothing overflows even at q = 65536 (unlike normalising scipy's
``eval_gegenbauer``, which is ``inf`` there). Evaluation uses only ``+`` and ``*`` and therefore runs on any
array-API array (numpy, torch, cupy, jax, ...), preserving its type, dtype and device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._array_api import as_array

__all__ = [
    "harmonic_dimension",
    "legendre",
    "legendre_all",
    "legendre_series",
    "legendre_series_derivative",
    "legendre_to_monomial",
    "log_harmonic_dimension",
    "monomial_to_legendre",
]


# ---------------------------------------------------------------------------------------------------------------
# validation


def _check_dimension(q: Any, name: str = "q") -> int:
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)):
        if isinstance(q, (float, np.floating)) and float(q).is_integer():
            q = int(q)
        else:
            raise TypeError(f"{name} must be an integer dimension >= 2, got {q!r}")
    q = int(q)
    if q < 2:
        raise ValueError(f"{name} must be an integer dimension >= 2 (the sphere S^(q-1) in R^q), got {q}")
    return q


def _check_degree(l: Any, name: str = "l") -> int:
    if isinstance(l, bool) or not isinstance(l, (int, np.integer)):
        if isinstance(l, (float, np.floating)) and float(l).is_integer():
            l = int(l)
        else:
            raise TypeError(f"{name} must be a non-negative integer degree, got {l!r}")
    l = int(l)
    if l < 0:
        raise ValueError(f"{name} must be a non-negative integer degree, got {l}")
    return l


def _check_t(t: Any, name: str = "t", validate: bool = True):
    t, xp = as_array(t, name)
    if validate:
        bad = xp.logical_not(xp.isfinite(t))
        if bool(xp.any(bad)):
            raise ValueError(f"{name} contains NaN or inf")
        tol = 64.0 * float(xp.finfo(t.dtype).eps)
        if bool(xp.any(xp.abs(t) > 1.0 + tol)):
            raise ValueError(f"{name} must lie in [-1, 1] (inner products of unit vectors); got values beyond rounding")
    return t, xp


def _recurrence_factors(k: int, q: int) -> tuple[float, float]:
    """(alpha_k, beta_k) with P_{k+1} = alpha_k t P_k - beta_k P_{k-1}."""
    if k == 0:
        return 1.0, 0.0
    denom = k + q - 2
    return (2 * k + q - 2) / denom, k / denom


# ---------------------------------------------------------------------------------------------------------------
# harmonic dimensions


def harmonic_dimension(q: int, l: int) -> int:
    r"""Dimension :math:`N(q, l)` of the space of spherical harmonics of degree l on :math:`S^{q-1}`, exactly.

    .. math::

        N(q, 0) = 1, \qquad N(q, l) = \frac{2l + q - 2}{l} \binom{l + q - 3}{l - 1}.

    It is also the multiplicity of the Mercer eigenvalue :math:`a_l / N(q, l)` of a dot-product kernel, and it is
    astronomically large at large q (N(64, 12) ~ 1e13): the result is an exact Python int.

    Examples
    --------
    >>> harmonic_dimension(3, 4), harmonic_dimension(2, 7), harmonic_dimension(10, 2)
    (9, 2, 54)
    """
    q = _check_dimension(q)
    l = _check_degree(l)
    if l == 0:
        return 1
    return (2 * l + q - 2) * math.comb(l + q - 3, l - 1) // l


def log_harmonic_dimension(q: int, l: int | ArrayLike) -> float | np.ndarray:
    r"""Natural logarithm of :math:`N(q, l)`, vectorised over ``l``, accurate to ~1e-15 relative in N.

    The binomial is accumulated as :math:`\sum_{j<l} \operatorname{log1p}((q-2)/j)`, free of the cancellation in
    a difference of ``gammaln`` values at large q.

    Examples
    --------
    >>> import math
    >>> math.isclose(math.exp(log_harmonic_dimension(64, 12)), harmonic_dimension(64, 12), rel_tol=1e-13)
    True
    """
    q = _check_dimension(q)
    scalar = np.ndim(l) == 0
    degrees = np.atleast_1d(np.asarray(l))
    if degrees.size and (np.any(degrees < 0) or not np.all(np.equal(np.mod(degrees, 1), 0))):
        raise ValueError("l must contain non-negative integer degrees")
    degrees = degrees.astype(np.int64)
    top = int(degrees.max()) if degrees.size else 0
    j = np.arange(1, max(top, 1), dtype=np.float64)  # j = 1 .. top-1
    log_binom = np.concatenate([[0.0, 0.0], np.cumsum(np.log1p((q - 2) / j))])  # index l -> log C(l+q-3, l-1)
    table = np.zeros(top + 1)
    if top >= 1:
        ls = np.arange(1, top + 1, dtype=np.float64)
        table[1:] = np.log(2 * ls + q - 2) - np.log(ls) + log_binom[1 : top + 1]
    out = table[degrees]
    return float(out[0]) if scalar else out


# ---------------------------------------------------------------------------------------------------------------
# evaluation


def legendre(l: int, q: int, t: Any, *, validate: bool = True) -> Any:
    r"""Normalised Gegenbauer polynomial :math:`P_{l,q}(t)` with :math:`P_{l,q}(1) = 1`.

    Parameters
    ----------
    l : int
        Degree, >= 0.
    q : int
        Ambient dimension of the sphere :math:`S^{q-1}`, >= 2 (any size: 65536 works).
    t : array_like
        Points in [-1, 1]; any array-API array (the result has its type, dtype and device) or numbers.
    validate : bool
        Check that ``t`` is finite and within [-1, 1] up to rounding (one reduction; skip it in hot loops).

    Returns
    -------
    array
        :math:`P_{l,q}(t)`, computed by the stable normalised recurrence (module docstring) in ``t``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([-1.0, 0.3, 1.0])
    >>> np.allclose(legendre(3, 2, t), np.cos(3 * np.arccos(t)))  # Chebyshev T_3
    True
    >>> np.allclose(legendre(2, 3, t), (3 * t**2 - 1) / 2)  # Legendre P_2
    True
    """
    l = _check_degree(l)
    q = _check_dimension(q)
    t, xp = _check_t(t, validate=validate)
    previous = xp.ones_like(t)
    if l == 0:
        return previous
    current = t
    for k in range(1, l):
        alpha, beta = _recurrence_factors(k, q)
        previous, current = current, alpha * t * current - beta * previous
    return current


def legendre_all(L: int, q: int, t: Any, *, validate: bool = True) -> Any:
    """All of :math:`P_{0,q}(t), ..., P_{L,q}(t)` stacked along a new leading axis of length L + 1.

    Examples
    --------
    >>> import numpy as np
    >>> legendre_all(3, 3, np.array([0.5])).ravel()
    array([ 1.    ,  0.5   , -0.125 , -0.4375])
    """
    L = _check_degree(L, "L")
    q = _check_dimension(q)
    t, xp = _check_t(t, validate=validate)
    values = [xp.ones_like(t)]
    if L >= 1:
        values.append(t)
    for k in range(1, L):
        alpha, beta = _recurrence_factors(k, q)
        values.append(alpha * t * values[k] - beta * values[k - 1])
    return xp.stack(values, axis=0)


def _as_coefficients(coefficients: Any) -> list[float]:
    coef = np.asarray(coefficients, dtype=np.float64) if not isinstance(coefficients, np.ndarray) else coefficients
    if coef.ndim != 1 or coef.size == 0:
        raise ValueError("coefficients must be a non-empty 1-d sequence a_0, ..., a_L")
    coef = coef.astype(np.float64)
    if not np.all(np.isfinite(coef)):
        raise ValueError("coefficients must be finite")
    return [float(c) for c in coef]


def _clenshaw_numpy_inplace(coef: Sequence[float], q: int, t: np.ndarray) -> np.ndarray:
    """The same recurrence with three rotating buffers and in-place ufuncs (numpy has no autograd to protect):
    no temporaries per step, which matters for n x n Gram matrices."""
    b_next = np.zeros_like(t)
    b_next2 = np.zeros_like(t)
    work = np.empty_like(t)
    for k in range(len(coef) - 1, -1, -1):
        alpha, _ = _recurrence_factors(k, q)
        _, beta_next = _recurrence_factors(k + 1, q)
        np.multiply(t, b_next, out=work)
        work *= alpha
        b_next2 *= beta_next
        work -= b_next2
        work += coef[k]
        b_next2, b_next, work = b_next, work, b_next2
    return b_next


def _clenshaw(coef: Sequence[float], q: int, t: Any, xp) -> Any:
    """sum_k coef[k] P_{k,q}(t) by Clenshaw's backward recurrence (only + and *; any backend)."""
    L = len(coef) - 1
    if L == 0:
        return xp.full_like(t, coef[0])
    if isinstance(t, np.ndarray):
        return _clenshaw_numpy_inplace(coef, q, t)
    b_next = xp.zeros_like(t)  # b_{k+1}
    b_next2 = xp.zeros_like(t)  # b_{k+2}
    for k in range(L, -1, -1):
        alpha, _ = _recurrence_factors(k, q)
        _, beta_next = _recurrence_factors(k + 1, q)
        b = coef[k] + alpha * t * b_next - beta_next * b_next2
        b_next2, b_next = b_next, b
    return b_next


def legendre_series(coefficients: Sequence[float] | np.ndarray, q: int, t: Any, *, validate: bool = True) -> Any:
    r"""Evaluate :math:`\sum_{l=0}^{L} a_l P_{l,q}(t)` by Clenshaw's algorithm, O(L) per point.

    Parameters
    ----------
    coefficients : sequence of float
        :math:`a_0, \dots, a_L` (host numbers; a dot-product kernel's Gegenbauer spectrum).
    q : int
        Dimension, >= 2.
    t : array_like
        Points in [-1, 1], any array-API array; the result keeps its type, dtype and device and is differentiable
        under torch autograd.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(-1, 1, 5)
    >>> np.allclose(legendre_series([0.0, 1.0, 40.0, 40.0], 3, t),
    ...             t + 40 * (3 * t**2 - 1) / 2 + 40 * (5 * t**3 - 3 * t) / 2)
    True
    """
    coef = _as_coefficients(coefficients)
    q = _check_dimension(q)
    t, xp = _check_t(t, validate=validate)
    return _clenshaw(coef, q, t, xp)


def _derivative_coefficients(coef: Sequence[float], q: int) -> list[float]:
    # P'_{l,q}(t) = l (l + q - 2) / (q - 1) * P_{l-1,q+2}(t)  (from C_l^lambda' = 2 lambda C_{l-1}^{lambda+1})
    return [coef[l] * l * (l + q - 2) / (q - 1) for l in range(1, len(coef))] or [0.0]


def legendre_series_derivative(
    coefficients: Sequence[float] | np.ndarray, q: int, t: Any, *, validate: bool = True
) -> Any:
    r"""Evaluate :math:`\frac{d}{dt} \sum_l a_l P_{l,q}(t)` as a Clenshaw sum in dimension q + 2.

    Uses :math:`P'_{l,q}(t) = \frac{l(l+q-2)}{q-1} P_{l-1,q+2}(t)`, which is as stable as the series itself.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([-0.5, 0.25, 1.0])
    >>> np.allclose(legendre_series_derivative([0, 0, 1], 3, t), 3 * t)
    True
    """
    coef = _as_coefficients(coefficients)
    q = _check_dimension(q)
    t, xp = _check_t(t, validate=validate)
    return _clenshaw(_derivative_coefficients(coef, q), q + 2, t, xp)


# ---------------------------------------------------------------------------------------------------------------
# basis conversions


def _exact_number(x: Any) -> Any:
    """Keep Fractions, ints and sympy numbers exact; turn floats into exact Fractions."""
    if isinstance(x, float):
        return Fraction(x)
    return x


def _legendre_monomial_table(L: int, q: Any, exact: bool) -> list[list[Any]]:
    """Row l holds the monomial coefficients of P_{l,q} (length L + 1), via the recurrence."""
    zero, one = (Fraction(0), Fraction(1)) if exact else (0.0, 1.0)
    rows = [[one] + [zero] * L]
    if L >= 1:
        rows.append([zero, one] + [zero] * (L - 1))
    for k in range(1, L):
        if exact:
            alpha, beta = Fraction(2 * k + q - 2, k + q - 2), Fraction(k, k + q - 2)
        else:
            alpha, beta = _recurrence_factors(k, q)
        new = [zero] * (L + 1)
        for j in range(L):
            new[j + 1] += alpha * rows[k][j]
        for j in range(L + 1):
            new[j] -= beta * rows[k - 1][j]
        rows.append(new)
    return rows


def legendre_to_monomial(coefficients: Sequence[Any], q: int, *, exact: bool = False) -> list[Any] | np.ndarray:
    r"""Monomial coefficients :math:`c_p` with :math:`\sum_l a_l P_{l,q}(t) = \sum_p c_p t^p`.

    Parameters
    ----------
    coefficients : sequence
        :math:`a_0, \dots, a_L`.
    q : int
        Dimension, >= 2.
    exact : bool
        If True, compute with exact rational arithmetic (``fractions.Fraction``; floats are converted exactly) and
        return a list of Fractions; otherwise a float64 array (fine for low degrees; the monomial basis is badly
        conditioned beyond degree ~20).

    Examples
    --------
    >>> legendre_to_monomial([0, 0, 1], 3, exact=True)  # P_2 = (3 t^2 - 1) / 2
    [Fraction(-1, 2), Fraction(0, 1), Fraction(3, 2)]
    """
    q = _check_dimension(q)
    coef = [_exact_number(c) for c in coefficients] if exact else _as_coefficients(coefficients)
    L = len(coef) - 1
    if L < 0:
        raise ValueError("coefficients must be non-empty")
    table = _legendre_monomial_table(L, q, exact)
    out = [sum(coef[l] * table[l][p] for l in range(L + 1)) for p in range(L + 1)]
    return out if exact else np.asarray(out, dtype=np.float64)


def monomial_to_legendre(coefficients: Sequence[Any], q: int, *, exact: bool = False) -> list[Any] | np.ndarray:
    r"""Gegenbauer coefficients :math:`a_l` with :math:`\sum_p c_p t^p = \sum_l a_l P_{l,q}(t)`.

    Solves the triangular system given by :func:`legendre_to_monomial` (exactly with ``exact=True``).

    Examples
    --------
    >>> monomial_to_legendre([0, 0, 1], 3, exact=True)  # t^2 = 1/3 + 2/3 P_2
    [Fraction(1, 3), Fraction(0, 1), Fraction(2, 3)]
    """
    q = _check_dimension(q)
    c = [_exact_number(x) for x in coefficients] if exact else _as_coefficients(coefficients)
    L = len(c) - 1
    if L < 0:
        raise ValueError("coefficients must be non-empty")
    table = _legendre_monomial_table(L, q, exact)
    a = [Fraction(0) if exact else 0.0] * (L + 1)
    remainder = list(c)
    # back substitution: the leading monomial of P_l is t^l
    for l in range(L, -1, -1):
        a[l] = remainder[l] / table[l][l]
        for p in range(l + 1):
            remainder[p] -= a[l] * table[l][p]
    return a if exact else np.asarray(a, dtype=np.float64)
