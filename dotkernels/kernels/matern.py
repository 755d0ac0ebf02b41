r"""The Matérn kernels of the sphere (Borovitskiy et al. 2020): Mercer eigenvalues
:math:`(2\nu/\ell^2 + l(l+q-2))^{-\nu-(q-1)/2}`, and the heat kernel as :math:`\nu \to \infty`.

The series :math:`\sum_l N(q,l) (c + l(l+q-2))^{-s} P_{l,q}(t)`, :math:`c = 2\nu/\ell^2`, :math:`s = \nu + (q-1)/2`,
has an algebraic tail: its terms decay like :math:`l^{-1-2\nu}`, so truncating it after L terms leaves an error of
order :math:`L^{-2\nu}` (1e-6 after 65536 terms at :math:`\nu = 1/2`). The profile is summed instead as a finite
head plus the tail's asymptotics (Kummer's transformation): with :math:`n = l + (q-2)/2` and the Riesz kernels
:math:`(2 - 2t)^a`, whose Gegenbauer coefficients are :math:`N(q,l) K_a \rho^{(a)}_l`,
:math:`\rho^{(a)}_l = \Gamma(l - a) / \Gamma(l + a + q - 1)` (a closed form, see :class:`DistanceKernel`),

.. math::

    (c + l(l+q-2))^{-s} = \sum_{j < J} d_j\, \rho^{(\nu + j)}_l + r_l, \qquad r_l = O(n^{-2s-2J}),

where the :math:`d_j` come from the asymptotic expansion of :math:`\mu_l / \rho^{(\nu)}_l` in powers of
:math:`1/n^2` (Bernoulli polynomials: :math:`\ln \Gamma(n+b+1) - \ln\Gamma(n-b) - (2b+1) \ln n = -\sum_{m \ge 1}
\frac{2 B_{2m+1}(b+1)}{2m(2m+1)} n^{-2m}`, b = (q-2)/2 + nu) re-expanded in the factorial basis
:math:`\rho^{(\nu+j)} / \rho^{(\nu)} = \prod_{i=1}^{j} (n^2 - (b+i)^2)^{-1}`. Then

.. math::

    \varphi(t) = \sum_{l \le L} N(q,l)\Big(\mu_l - \sum_{j<J} d_j \rho^{(\nu+j)}_l\Big) P_{l,q}(t)
    + \sum_{j<J} \frac{d_j}{K_{\nu+j}} (2 - 2t)^{\nu+j} + \sum_{l > L} N(q,l)\, r_l\, P_{l,q}(t),

and the last sum, bounded by :math:`\sum_{l > L} N(q,l) |r_l|` (as :math:`|P_{l,q}| \le 1`), is computed exactly for
:math:`L < l \le 4 L_{\max}` and by the next asymptotic term beyond. Integer :math:`\nu + j` use the logarithmic
kernels :math:`(2-2t)^a \ln(2-2t)` (the derivative in a of the Riesz kernel), whose coefficients beyond degree a are
the same :math:`\rho^{(a)}_l` up to a constant. J (0 to 6) and L (16 to 16384) are chosen per (nu, c, q) to make the
truncation bound plus the rounding bound :math:`\epsilon (\sum_l |e_l| + \sum_j |w_j| 4^{a_j})` smallest; the
references vanish at t = 1, so :math:`\varphi(1)` is the sum of the head coefficients.

Each point of this direct route costs O(L). Large calls (at least 32768 points, a head longer than 64 terms) read
instead a table of the same profile (:mod:`dotkernels.kernels._tabulated`): piecewise Chebyshev interpolants of
degree 20 in :math:`u = \sqrt{(1-t)/2}`, in which the profile :math:`G(t) + \sum_j w_j (2-2t)^{\nu+j}` is analytic
for half-integer :math:`\nu` and has a :math:`u^{2\nu}` (or :math:`u^{2\nu} \ln u`) singularity at u = 0 otherwise,
resolved by intervals graded geometrically towards u = 0. It is built once per plan (adaptively, from the direct
route) and cached; its interpolation bound is part of :meth:`MaternKernel.profile_error`.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Any, NamedTuple

import array_api_compat
import numpy as np
from scipy.special import bernoulli, digamma, gammaln, gammasgn

from .._validate import check_dimension
from ..gegenbauer import derivative_coefficients, legendre_series, log_harmonic_dimension
from ..special import log_gamma_ratio
from ._autograd import check_concrete, jax_legendre_series, tabulated
from ._base import DotProductKernel, Hyperparameter, SpectrumAccuracyWarning, hyperparameter_in
from ._tabulated import ChebyshevTable, tabulate

__all__ = ["MaternKernel"]

_EPS = float(np.finfo(np.float64).eps)
_BERNOULLI = bernoulli(40)
#: the most references (terms of the tail's expansion) and the longest head tried
_MAX_TERMS = 6
_MAX_HEAD = 1 << 14
#: relative accuracy aimed at for the profile (the stated bound is 1e-12)
_TARGET = 1e-13
#: beyond this bound (relative to phi(1)) the profile warns
_WARN = 1e-10
#: plans kept per function, shared by every kernel object (frontends rebuild kernels at every step)
_PLAN_CACHE_SIZE = 64
#: the table route: calls with at least this many points, heads longer than this (the rule of MaternKernel, Notes)
_TABLE_MIN_POINTS = 1 << 15
_TABLE_MIN_HEAD = 64
#: the tables' degree per interval, their relative tolerance (at least a quarter of the plan's bound) and cache
_TABLE_DEGREE = 20
_TABLE_TOL = 1e-14
_TABLE_CACHE_SIZE = 32


class _Plan(NamedTuple):
    """A profile :math:`F(t)/e^{\text{log\\_scale}} = \\sum_{l \\le L} e_l P_{l,q}(t) + \\sum_j w_j R_{a_j}(t)`."""

    log_scale: float
    head: np.ndarray
    refs: tuple[tuple[float, float, bool], ...]  # (a, weight, logarithmic)
    total: float  # F(1) in the same units: the sum of the head
    error: float  # bound on sup_t |F - computed F| in the same units
    rounding: float  # the part of the bound that is rounding (noise from point to point)


def _bernoulli_poly(n: int, x: float) -> float:
    return math.fsum(math.comb(n, k) * float(_BERNOULLI[k]) * x ** (n - k) for k in range(n + 1))


def _tail_coefficients(c: float, nu: float, q: int, terms: int) -> np.ndarray:
    r"""d_0..d_{terms-1}: :math:`\mu(n)/\rho^{(\nu)}(n) \sim \sum_j d_j \prod_{i \le j} (n^2 - (b+i)^2)^{-1}`."""
    h = 0.5 * (q - 2)
    b = h + nu
    s = b + 0.5
    beta2 = c - h * h
    K = terms
    A = np.zeros(K)  # ln of the ratio, a power series in w = 1/n^2
    for m in range(1, K):
        A[m] = -s * (-1) ** (m + 1) * beta2**m / m - 2.0 * _bernoulli_poly(2 * m + 1, b + 1.0) / (2 * m * (2 * m + 1))
    g = np.zeros(K)
    g[0] = 1.0
    for k in range(1, K):
        g[k] = math.fsum(i * A[i] * g[k - i] for i in range(1, k + 1)) / k
    d = np.zeros(K)
    residual = g.copy()
    for j in range(K):
        basis = np.zeros(K)
        basis[j] = 1.0
        for i in range(1, j + 1):  # times 1 / (1 - (b+i)^2 w)
            y = (b + i) ** 2
            for k in range(1, K):
                basis[k] += y * basis[k - 1]
        d[j] = residual[j]
        residual = residual - d[j] * basis
    return d


def _is_integer(a: float) -> bool:
    return abs(a - round(a)) < 1e-12


def _log_riesz_base(a: float, q: int) -> float:
    r""":math:`\ln(4^a \Gamma(a + (q-1)/2) / \Gamma((q-1)/2) \cdot \Gamma(q-1))`: the Riesz constant C without its
    :math:`1/\Gamma(-a)`."""
    log_c = a * math.log(4.0) + float(log_gamma_ratio(a + 0.5 * (q - 1), 0.5 * (q - 1)))
    return log_c + (math.lgamma(q - 1) if q > 2 else 0.0)


def _log_riesz_constant(a: float, q: int) -> tuple[float, float]:
    r"""``(ln|C|, sign C)``: the Riesz kernel :math:`(2-2t)^a` is :math:`C \sum_l N(q,l) \rho^{(a)}_l P_{l,q}`; for an
    integer a, :math:`(2-2t)^a \ln(2-2t)` is that sum beyond degree a (the derivative of :math:`1/\Gamma(-a)`)."""
    log_c = _log_riesz_base(a, q)
    if _is_integer(a):
        m = round(a)
        # d/da 1/Gamma(-a) at a = m is -(-1)^m m!
        return log_c + math.lgamma(m + 1), -((-1.0) ** m)
    return log_c - float(gammaln(-a)), float(gammasgn(-a))


def _log_rho(a: float, degrees: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    r"""``(ln|rho|, sign)`` of :math:`\rho^{(a)}_l = \Gamma(l-a)/\Gamma(l+a+q-1)` (degrees with l - a a pole: 0)."""
    l = degrees.astype(np.float64)
    out = np.full(l.shape, -np.inf)
    sign = np.zeros(l.shape)
    above = l - a > 0.5
    out[above] = log_gamma_ratio(l[above] - a, l[above] + a + q - 1)
    sign[above] = 1.0
    below = ~above & ~((l - a <= 0) & (np.abs(l - a - np.round(l - a)) < 1e-12))
    out[below] = gammaln(l[below] - a) - gammaln(l[below] + a + q - 1)
    sign[below] = gammasgn(l[below] - a)
    return out, sign


def _log_head_reference(a: float, degrees: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    r"""``(ln|x_l|, sign)`` of the coefficients :math:`x_l` with :math:`R_a(t) = \sum_l N(q,l) x_l P_{l,q}(t)` and
    :math:`R_a = (2-2t)^a / C` (a not an integer) or :math:`(2-2t)^a \ln(2-2t) / C` (a an integer), so that
    :math:`x_l = \rho^{(a)}_l` beyond degree a."""
    log_x, sign = _log_rho(a, degrees, q)
    if not _is_integer(a):
        return log_x, sign
    # integer a = m: below and at degree m, x_l = d/da lambda_l(a) / C with lambda_l(a) = C(a) (-a)_l / Gamma(l+a+q-1)
    m = round(a)
    log_c, sign_c = _log_riesz_constant(a, q)
    log_c0 = _log_riesz_base(a, q)
    for l in range(0, min(m, int(degrees[-1])) + 1):
        factors = np.arange(l, dtype=np.float64) - a  # (-a)_l = prod_{i<l} (i - a), no zero for l <= m
        log_poch = float(np.sum(np.log(np.abs(factors)))) if l else 0.0
        sign_poch = float(np.prod(np.sign(factors))) if l else 1.0
        log_lam = log_c0 + log_poch - math.lgamma(l + a + q - 1)
        dlog = -float(np.sum(1.0 / factors)) + math.log(4.0) + digamma(a + 0.5 * (q - 1)) - digamma(l + a + q - 1)
        value = sign_poch * dlog * math.exp(log_lam - log_c) * sign_c
        log_x[l] = math.log(abs(value)) if value != 0 else -np.inf
        sign[l] = math.copysign(1.0, value) if value != 0 else 0.0
    return log_x, sign


@lru_cache(maxsize=24)
def _tables(nu: float, q: int, size: int) -> tuple:
    """What does not depend on the lengthscale: degrees, ln N(q,l), l(l+q-2) and the references' coefficients."""
    degrees = np.arange(size + 1)
    log_n = np.asarray(log_harmonic_dimension(degrees, q=q), dtype=np.float64)
    lam = degrees * (degrees + q - 2.0)
    references = []
    for j in range(_MAX_TERMS):
        a = nu + j
        log_x, sign_x = _log_head_reference(a, degrees, q)
        references.append((log_n + log_x, sign_x, *_log_riesz_constant(a, q)))
    for array in (degrees, log_n, lam, *(r[0] for r in references), *(r[1] for r in references)):
        array.setflags(write=False)
    return degrees, log_n, lam, tuple(references)


@lru_cache(maxsize=_PLAN_CACHE_SIZE)
def _matern_plan(c: float, nu: float, q: int) -> _Plan:
    """The cheapest (J, L) whose bound reaches the target accuracy, else the most accurate one (cached)."""
    h = 0.5 * (q - 2)
    s = nu + 0.5 * (q - 1)
    d = _tail_coefficients(c, nu, q, _MAX_TERMS + 1)
    candidates: list[tuple] = []
    for size in (1 << 12, 4 * _MAX_HEAD):
        degrees, log_n, lam, references = _tables(nu, q, size)
        # a_l c^s: the constant c^-s apart, so that the exponents' rounding is that of their variation over l
        log_a = log_n - s * np.log1p(lam / c)
        top = float(np.max(log_a))
        log_scale = top - s * math.log(c)
        e = np.exp(log_a - top)
        digits = np.abs(log_a - top) + log_n + 1.0  # the size of each exponent: its rounding, in units of eps
        compensation = np.zeros(size + 1)
        refs: list[tuple[float, float, bool]] = []
        rounding_refs = 0.0
        n_last = size + h
        for terms in range(_MAX_TERMS + 1):
            if terms:  # add the reference j = terms - 1
                a = nu + terms - 1
                log_nx, sign_x, log_c, sign_c = references[terms - 1]
                coeff = d[terms - 1] * sign_x * np.exp(log_nx - log_scale)
                e = e - coeff
                compensation += np.abs(coeff)
                weight = float(d[terms - 1] * math.exp(-log_scale - log_c) * sign_c)
                refs.append((a, weight, _is_integer(a)))
                rounding_refs += abs(weight) * 4.0**a * (3.0 if _is_integer(a) else 1.0)
            a = nu + terms  # beyond the computed degrees: the next term, a power law n^(-1 - 2a)
            if a >= size // 8:
                break
            log_x, _ = _log_rho(a, degrees[-1:], q)
            with np.errstate(divide="ignore"):
                log_last = math.log(abs(d[terms])) if d[terms] else -math.inf
            log_far = log_last + log_n[-1] + log_x[0] - log_scale
            log_far += (1 + 2 * a) * math.log(n_last) - 2 * a * math.log(n_last + 0.5) - math.log(a)
            far = math.exp(min(log_far, 700.0))
            abs_e = np.abs(e)
            total = float(np.sum(e[: size // 4 + 1]))
            L = 16
            while L <= size // 4:
                if L > a:
                    # pairwise sums (np.sum): the tail keeps its relative accuracy
                    work = 3.0 * np.sum(compensation[: L + 1]) + 16.0 * np.sum(abs_e[: L + 1]) + 3.0 * rounding_refs
                    work += 2.0 * float(np.sum(abs_e[: L + 1] * digits[: L + 1]))
                    bound = float(np.sum(abs_e[L + 1 :])) + far + _EPS * work
                    candidates.append((bound, L, log_scale, e[: L + 1].copy(), tuple(refs), total, _EPS * work))
                    if bound <= _TARGET * total:
                        break
                L *= 2
        smallest = min(c[0] for c in candidates)
        # the shortest head within twice the best bound (or within the target)
        best = min((c for c in candidates if c[0] <= max(2.0 * smallest, _TARGET * c[5])), key=lambda c: c[1])
        if best[0] <= _TARGET * best[5]:
            break
    bound, L, log_scale, head, refs, _, rounding = best
    head.setflags(write=False)
    return _Plan(log_scale, head, refs, math.fsum(head), bound, rounding)


@lru_cache(maxsize=_PLAN_CACHE_SIZE)
def _heat_plan(tau: float, q: int) -> _Plan:
    """The heat kernel's series N(q,l) e^{-tau l(l+q-2)} up to where the terms fall below 1e-17 of the largest."""
    size = 64
    while True:
        degrees = np.arange(size + 1)
        log_a = log_harmonic_dimension(degrees, q=q) - tau * degrees * (degrees + q - 2.0)
        top = float(np.max(log_a))
        small = log_a < top + math.log(1e-17)
        if (small[-8:].all() and np.all(np.diff(log_a[-8:]) < 0)) or size >= (1 << 22):
            break
        size *= 2
    keep = int(np.nonzero(~small)[0][-1]) + 1 if np.any(~small) else 1
    head = np.exp(log_a[: keep + 1] - top)
    tail_bound = float(np.sum(np.exp(log_a[keep + 1 :] - top))) + 1e-17 * head.sum()
    head.setflags(write=False)
    # Clenshaw's rounding grows with the degree: about (L+1) eps sum |a_l| (measured against the table's smooth fit)
    rounding = 4 * _EPS * head.size * head.sum()
    return _Plan(top, head, (), math.fsum(head), tail_bound + rounding, rounding)


def _reference_profile(t: Any, xp: Any, a: float, logarithmic: bool) -> Any:
    x = xp.clip(2.0 - 2.0 * t, 0.0, 4.0)
    value = x**a
    if logarithmic:
        value = value * xp.log(xp.clip(x, 1e-300, None))
    return value


def _reference_derivative(t: Any, xp: Any, a: float, logarithmic: bool) -> Any:
    x = xp.clip(2.0 - 2.0 * t, 0.0, 4.0)
    if logarithmic:
        lx = xp.log(xp.clip(x, 1e-300, None))
        return -2.0 * (a * x ** (a - 1.0) * lx + x ** (a - 1.0))
    return -2.0 * a * x ** (a - 1.0)


def _one_minus_two_squares(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(t, r)`` with t = fl(1 - 2u^2) and r = (1 - 2u^2) - t to a few ulps of r (error-free transformations:
    Dekker's product and Knuth's sum), as t near 1 keeps few digits of u."""
    square = u * u
    split = 134217729.0 * u  # 2^27 + 1
    high = split - (split - u)
    low = u - high
    square_error = ((high * high - square) + 2.0 * high * low) + low * low  # u^2 = square + square_error exactly
    t = 1.0 - 2.0 * square
    back = t - 1.0
    sum_error = (1.0 - (t - back)) + (-2.0 * square - back)  # 1 - 2 square = t + sum_error exactly
    return t, sum_error - 2.0 * square_error


def _plan_profile_u(plan: _Plan, u: np.ndarray, q: int) -> np.ndarray:
    """The plan's profile at :math:`t = 1 - 2u^2` (numpy float64): the head at t = fl(1 - 2u^2) corrected to first
    order for the rounding of t (the head's slope reaches 1/lengthscale^2), the Riesz kernels from
    :math:`2 - 2t = 4u^2`."""
    t, r = _one_minus_two_squares(u)
    out = legendre_series(plan.head, t, q=q, validate=False)
    if plan.head.size > 1:
        out = out + r * legendre_series(derivative_coefficients(plan.head, q=q), t, q=q + 2, validate=False)
    x = 4.0 * u * u
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), 0.0)
    for a, w, logarithmic in plan.refs:
        out = out + w * (x**a * lx if logarithmic else x**a)
    return out


def _plan_derivative_u(plan: _Plan, u: np.ndarray, q: int) -> np.ndarray:
    """The plan's derivative :math:`F'(t)` at :math:`t = 1 - 2u^2` (numpy float64, references of exponent a > 1 only:
    bounded at t = 1), corrected for the rounding of t as :func:`_plan_profile_u`."""
    t, r = _one_minus_two_squares(u)
    first = derivative_coefficients(plan.head, q=q)
    out = legendre_series(first, t, q=q + 2, validate=False)
    if first.size > 1:
        out = out + r * legendre_series(derivative_coefficients(first, q=q + 2), t, q=q + 4, validate=False)
    x = 4.0 * u * u
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), 0.0)
    for a, w, logarithmic in plan.refs:
        power = x ** (a - 1.0)
        out = out - 2.0 * w * ((a * lx + 1.0) * power if logarithmic else a * power)
    return out


def _build_derivative_table(plan: _Plan, q: int) -> ChebyshevTable:
    first = derivative_coefficients(plan.head, q=q)
    ends = np.abs(_plan_derivative(plan, np.array([-1.0, 1.0]), np, q))
    # Clenshaw's rounding, about (L+1) eps sum |a'_l|, and the references' (a few eps of each term's size)
    noise = 4 * _EPS * first.size * float(np.sum(np.abs(first)))
    noise += 4 * _EPS * sum(abs(w) * 4.0**a * (1 + 2 * a) for a, w, _ in plan.refs)
    return tabulate(
        lambda u: _plan_derivative_u(plan, u, q),
        scale=float(np.max(ends)),
        tol=_TABLE_TOL,
        degree=_TABLE_DEGREE,
        noise=noise,
    )


@lru_cache(maxsize=_TABLE_CACHE_SIZE)
def _matern_derivative_table(c: float, nu: float, q: int) -> ChebyshevTable:
    """The table of the derivative of ``_matern_plan(c, nu, q)``, nu > 1 (cached)."""
    return _build_derivative_table(_matern_plan(c, nu, q), q)


@lru_cache(maxsize=_TABLE_CACHE_SIZE)
def _heat_derivative_table(tau: float, q: int, slope: bool = False) -> ChebyshevTable:
    """The table of the derivative in t of ``_heat_plan(tau, q)`` (or of ``_heat_slope_plan``)."""
    return _build_derivative_table(_heat_slope_plan(tau, q) if slope else _heat_plan(tau, q), q)


def _build_table(plan: _Plan, q: int) -> ChebyshevTable:
    tol = max(_TABLE_TOL, 0.25 * plan.error / plan.total)
    return tabulate(
        lambda u: _plan_profile_u(plan, u, q), scale=plan.total, tol=tol, degree=_TABLE_DEGREE, noise=plan.rounding
    )


@lru_cache(maxsize=_TABLE_CACHE_SIZE)
def _matern_table(c: float, nu: float, q: int) -> ChebyshevTable:
    """The table of the plan ``_matern_plan(c, nu, q)`` (cached: a few tens of kB each)."""
    return _build_table(_matern_plan(c, nu, q), q)


@lru_cache(maxsize=_TABLE_CACHE_SIZE)
def _heat_table(tau: float, q: int, slope: bool = False) -> ChebyshevTable:
    """The table of ``_heat_plan(tau, q)`` (or of its derivative in tau, ``_heat_slope_plan``)."""
    return _build_table(_heat_slope_plan(tau, q) if slope else _heat_plan(tau, q), q)


@lru_cache(maxsize=_PLAN_CACHE_SIZE)
def _heat_slope_plan(tau: float, q: int) -> _Plan:
    r"""The derivative in :math:`\tau` of the heat plan's series, in the same units: coefficients
    :math:`-l(l+q-2) e_l`."""
    plan = _heat_plan(tau, q)
    degrees = np.arange(plan.head.size, dtype=np.float64)
    head = -degrees * (degrees + q - 2.0) * plan.head
    head.setflags(write=False)
    size = float(np.sum(np.abs(head))) or 1.0
    return _Plan(plan.log_scale, head, (), math.fsum(head), 4 * _EPS * head.size * size, 4 * _EPS * head.size * size)


def _use_table(plan: _Plan, t: Any, xp: Any) -> bool:
    """The deterministic rule of the table route (see :class:`MaternKernel`, Notes): numpy, torch and jax arrays,
    with or without a gradient in t (the table is then differentiated by :func:`._autograd.tabulated`)."""
    if plan.head.size <= _TABLE_MIN_HEAD or math.prod(t.shape) < _TABLE_MIN_POINTS:
        return False
    return isinstance(t, np.ndarray) or array_api_compat.is_torch_array(t) or array_api_compat.is_jax_array(t)


def _plan_profile(plan: _Plan, t: Any, xp: Any, q: int) -> Any:
    if array_api_compat.is_jax_array(t):  # a scan: jax.jit compiles it in a time independent of the head's length
        out = jax_legendre_series(plan.head, t, q)
    else:
        out = legendre_series(plan.head, t, q=q, validate=False)
    for a, w, logarithmic in plan.refs:
        out = out + w * _reference_profile(t, xp, a, logarithmic)
    return out


def _plan_derivative(plan: _Plan, t: Any, xp: Any, q: int) -> Any:
    first = derivative_coefficients(plan.head, q=q)
    if array_api_compat.is_jax_array(t):
        out = jax_legendre_series(first, t, q + 2)
    else:
        out = legendre_series(first, t, q=q + 2, validate=False)
    for a, w, logarithmic in plan.refs:
        out = out + w * _reference_derivative(t, xp, a, logarithmic)
    return out


class MaternKernel(DotProductKernel):
    r"""Matérn kernel on :math:`S^{q-1}` (Borovitskiy et al. 2020), normalised to :math:`k(x, x) = 1` by default.

    .. math::

        k(x, y) = \frac{1}{Z} \sum_{l \ge 0} \mu_l \sum_m Y_{lm}(x) Y_{lm}(y)
        = \sum_l a_l P_{l,q}(\langle x, y\rangle), \qquad
        \mu_l = \Big(\frac{2\nu}{\ell^2} + l(l+q-2)\Big)^{-\nu-(q-1)/2}, \quad a_l = N(q,l)\, \mu_l / Z,

    :math:`Y_{lm}` orthonormal for the uniform probability measure, :math:`l(l+q-2)` the eigenvalues of the
    Laplace–Beltrami operator of :math:`S^{q-1}` (dimension d = q - 1). ``nu = inf`` is the heat kernel
    :math:`\mu_l = e^{-\ell^2 l(l+q-2)/2}` (:class:`HeatKernel` with ``time`` :math:`= \ell^2/2`). This is the
    parameterisation of GeometricKernels (``MaternGeometricKernel`` on ``Hypersphere(dim=q-1)``, which uses the
    exponent :math:`-\nu - d/2`), so both give the same kernel, here without truncating the series.
    With ``normalize=True`` (default) :math:`Z = \sum_l N(q,l) \mu_l` (so :math:`\varphi(1) = 1`, the
    "unit variance" of GeometricKernels); with ``normalize=False``, :math:`Z = 1`: the Mercer eigenvalues are exactly
    :math:`\mu_l` and :math:`\varphi(1) = \sum_l N(q,l) \mu_l`, which under- or overflows float64 at large q
    (:meth:`~DotProductKernel.log_spectrum` stays finite). Strictly positive definite on every sphere.

    Parameters
    ----------
    nu : float
        Smoothness, > 0, or ``math.inf`` (the heat kernel). The sample paths are :math:`\lceil\nu\rceil - 1` times
        differentiable; :math:`\nu = 1/2, 3/2, 5/2` are the usual choices.
    lengthscale : float or 0-d array
        :math:`\ell > 0`. A torch (or jax) scalar is kept as it is: :meth:`~DotProductKernel.gram`,
        :meth:`~DotProductKernel.profile` and :meth:`~DotProductKernel.derivative` are then differentiable in it
        (first derivatives), and host methods read its current value.
    normalize : bool
        Divide by :math:`Z` so that :math:`k(x, x) = 1` (keyword-only).

    Notes
    -----
    How the profile is computed: the head of the series plus the asymptotics of its tail (see
    :mod:`dotkernels.kernels.matern`): no truncation at 65536 terms, at most 16384 terms summed (the "plan", chosen
    once per (nu, lengthscale, q) and cached). The direct route costs O(L) per point for a head of L terms: a 1000 x
    1000 Gram matrix took 4 to 47 s at q = 3 and 10 in benchmarks/README.md. Calls with at least 32768 points
    (:meth:`~DotProductKernel.gram` of at least 182 points, large :meth:`~DotProductKernel.profile` calls) read
    instead a piecewise Chebyshev table of the plan's profile in :math:`u = \sqrt{(1-t)/2}` (degree 20 per interval,
    intervals graded towards t = 1), built once per plan from the direct route (cached) and evaluated in O(1) per
    point, when the head has more than 64 terms: there the same matrix took 0.05 to 0.16 s with numpy, plans and
    tables at most 0.05 and 0.22 s to build. The rule depends only on the call's size and the plan, never on what is
    cached. The table route serves numpy and torch arrays (any device) that need no gradient in t; a gradient in t
    (torch tensors that require grad, jax arrays) takes the direct route. With a tensor lengthscale the shifted plan
    (the derivative in the lengthscale, below) is tabulated too. Large calls of :meth:`~DotProductKernel.derivative`
    read a table of :math:`\varphi'` in the same way for nu > 1 and the heat kernel, where :math:`\varphi'` is
    bounded (its table's bound, below 1e-9 of :math:`\max|\varphi'|` in the cases tested, holds against the direct
    route); for nu <= 1 :math:`\varphi'` is unbounded at t = 1 and is summed directly.
    :meth:`~DotProductKernel.gram` of one set of points puts :math:`\varphi(1)` exactly on its diagonal (exactly 1
    when normalised).

    Accuracy: the spectrum is the closed form above (each coefficient to 1e-13 relative plus the rounding of the
    logarithms of :math:`\mu_l` and :math:`N(q, l)`, and :math:`Z` to the profile's bound). The profile's error is
    bounded, for each (nu, lengthscale, q), by the tail beyond the head (computed) plus the rounding of the
    cancellation between the head and the tail's closed forms, plus, where the table can be used, the table's
    interpolation bound relative to the direct route (twice the largest deviation at 60 check points per interval,
    plus the direct route's rounding noise and the float64 rounding of the evaluation); :meth:`profile_error`
    returns that sum relative to :math:`\varphi(1)`, a bound for both routes, tested on grids of :math:`10^5` points
    up to t = -1 and t = 1. The bound is below 1e-12 for nu = 1/2 and lengthscale >= 0.5, nu = 3/2 and lengthscale
    >= 1, nu = 5/2 and lengthscale >= 0.1 at q <= 10, the heat kernel at lengthscale >= 0.1, and wherever the
    spectrum decays fast (q = 100: lengthscale >= 0.1); it grows like :math:`\ell^{-2\nu - 1}` below (2e-10 to 2e-9
    at nu = 1/2, lengthscale 0.05 to 0.03), and a :class:`SpectrumAccuracyWarning` is raised beyond 1e-10. The
    errors measured against mpmath (Poisson summation on the circle, the Mehler–Dirichlet integral on :math:`S^2`,
    heat-kernel subordination at q = 5 to 1000) are 3 to 30 times below the bound.

    The lengthscale is learnable: with a torch scalar that requires grad, gradients reach it through the profile
    (the derivative in :math:`c = 2\nu/\ell^2` is the same series with :math:`\nu + 1`, times :math:`-s`; for the
    heat kernel, the series of :math:`-l(l+q-2) a_l` on the table route).

    See Also
    --------
    HeatKernel : the limit nu -> inf, parameterised by the diffusion time.
    DotProductKernel.eigenvalues : the Mercer eigenvalues :math:`a_l / N(q, l)` and their multiplicities.

    References
    ----------
    .. [1] V. Borovitskiy, A. Terenin, P. Mostowsky and M. P. Deisenroth, "Matérn Gaussian processes on Riemannian
       manifolds", NeurIPS 2020.
    .. [2] E. E. Kummer, "Eine neue Methode, die numerischen Summen langsam convergirender Reihen zu berechnen",
       J. Reine Angew. Math. 16, 1837 (the transformation of the tail).

    Examples
    --------
    >>> import numpy as np
    >>> k = MaternKernel(nu=1.5, lengthscale=0.5)
    >>> X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> K = k.gram(X)
    >>> round(float(K[0, 0]), 12), bool(0 < K[0, 1] < 1)
    (1.0, True)
    >>> lam, mult = k.eigenvalues(2, q=3, return_multiplicities=True)
    >>> mult.tolist()
    [1, 3, 5]

    A learnable lengthscale:

    >>> import torch
    >>> ell = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    >>> Kt = MaternKernel(nu=1.5, lengthscale=ell).gram(torch.from_numpy(X))
    >>> Kt[0, 1].backward()
    >>> bool(ell.grad > 0)
    True
    """

    name = "matern"
    dimension_dependent = True
    exact_diagonal = True
    lengthscale = Hyperparameter(positive=True)

    def __init__(self, nu: float = 1.5, lengthscale: Any = 1.0, *, normalize: bool = True):
        if isinstance(nu, str) and nu.strip().lower() in ("inf", "infinity"):
            nu = math.inf
        if isinstance(nu, bool) or not isinstance(nu, (int, float, np.integer, np.floating)):
            raise TypeError(f"nu must be a positive real number or math.inf, got {nu!r}")
        nu = float(nu)
        if math.isnan(nu) or nu <= 0:
            raise ValueError(f"nu must be > 0 (or math.inf for the heat kernel), got {nu}")
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"normalize must be a bool, got {normalize!r}")
        self.nu = nu
        self.lengthscale = lengthscale  # validated by the Hyperparameter descriptor
        self.normalize = bool(normalize)
        self.has_corner = nu < 1.0

    def _params(self):
        return (self.nu, self.lengthscale, self.normalize)

    def _named_params(self):
        return [("nu", self.nu), ("lengthscale", self.lengthscale)] + ([] if self.normalize else [("normalize", False)])

    # ---- host side ----------------------------------------------------------------------------------------------
    def _c(self) -> float:
        return 2.0 * self.nu / self.lengthscale**2

    def _plan(self, q: int, shift: int = 0) -> _Plan:
        if math.isinf(self.nu):
            return _heat_plan(0.5 * self.lengthscale**2, q)
        plan = _matern_plan(self._c(), self.nu + shift, q)
        if shift == 0 and 2.0 * plan.error > _WARN * plan.total:
            warnings.warn(
                f"{self!r} at q={q}: the profile is accurate to {2.0 * plan.error / plan.total:.2g} of phi(1) only "
                "(the bound of the head-plus-tail summation, rounding included)",
                SpectrumAccuracyWarning,
                stacklevel=5,
            )
        return plan

    def _log_mu(self, q: int, degrees: np.ndarray) -> np.ndarray:
        lam = degrees * (degrees + q - 2.0)
        if math.isinf(self.nu):
            return -0.5 * self.lengthscale**2 * lam
        return -(self.nu + 0.5 * (q - 1)) * np.log(self._c() + lam)

    def _log_z(self, q: int) -> float:
        plan = self._plan(q)
        return plan.log_scale + math.log(plan.total)

    def _log_spectrum(self, q, degree):
        degrees = np.arange(degree + 1, dtype=np.float64)
        log_a = log_harmonic_dimension(np.arange(degree + 1), q=q) + self._log_mu(q, degrees)
        if self.normalize:
            log_a = log_a - self._log_z(q)
        return log_a, np.ones(degree + 1)

    def _phi_at_one(self, q):
        if self.normalize:
            return 1.0
        log_z = self._log_z(q)
        return math.exp(log_z) if log_z < 709.0 else math.inf

    def _log_phi_at_one(self, q):
        return 0.0 if self.normalize else self._log_z(q)

    def _uniform_mean_embedding(self, q):
        return float(np.exp(self._log_spectrum(q, 0)[0][0]))

    def _gram_diagonal(self, G, xp, q):
        # normalised: exactly 1 (a constant: no gradient in the lengthscale, as phi(1) = 1 for every lengthscale)
        return 1.0 if self.normalize else super()._gram_diagonal(G, xp, q)

    def _positive_semidefinite(self, q):
        return True

    def _strictly_positive_definite(self, q):
        return True

    # ---- profile ------------------------------------------------------------------------------------------------
    def _table(self, q: int, shift: int = 0) -> ChebyshevTable:
        """The cached table of ``self._plan(q, shift)`` (shift 1: the heat kernel's derivative in the time)."""
        if math.isinf(self.nu):
            return _heat_table(0.5 * self.lengthscale**2, q, bool(shift))
        return _matern_table(self._c(), self.nu + shift, q)

    def _derivative_table(self, q: int, shift: int = 0) -> ChebyshevTable:
        """The cached table of the derivative in t of ``self._plan(q, shift)`` (nu + shift > 1)."""
        if math.isinf(self.nu):
            return _heat_derivative_table(0.5 * self.lengthscale**2, q, bool(shift))
        return _matern_derivative_table(self._c(), self.nu + shift, q)

    def _values(self, t, xp, q, derivative: bool, shift: int = 0):
        """The plan's profile (or derivative) at t in its units: the table for large calls, else the direct sum
        (derivatives are tabulated for nu + shift > 1, where they are bounded)."""
        plan = _heat_slope_plan(0.5 * self.lengthscale**2, q) if shift and math.isinf(self.nu) else self._plan(q, shift)
        bounded = self.nu + shift > 1.0  # the derivative in t is bounded at t = 1: tabulated
        if not _use_table(plan, t, xp) or (derivative and not bounded):
            return (_plan_derivative if derivative else _plan_profile)(plan, t, xp, q)
        # a gradient in t (torch autograd, jax): the table's value, the derivative below, and second derivatives
        # (a graph of the gradient) by the direct route
        if derivative:
            table = self._derivative_table(q, shift)
            return tabulated(t, lambda s: table.evaluate(s, xp), None, lambda s: _plan_derivative(plan, s, xp, q))
        table = self._table(q, shift)
        if bounded:

            def slope(s):  # built on the first gradient asked for
                return self._derivative_table(q, shift).evaluate(s, xp)

        else:
            # the direct derivative; at t = 1 exactly, where it is infinite (nu < 1) or logarithmic (nu = 1), the
            # head's derivative (the references' derivatives counted 0 at their zero), as torch autograd of the
            # direct route gives: finite, so that a zero gradient there stays 0
            at_one = math.fsum(derivative_coefficients(plan.head, q=q))

            def slope(s):
                one = s >= 1.0
                inside = _plan_derivative(plan, xp.where(one, xp.zeros_like(s), s), xp, q)
                return xp.where(one, xp.full_like(s, at_one), inside)

        return tabulated(t, lambda s: table.evaluate(s, xp), slope, lambda s: _plan_profile(plan, s, xp, q))

    def _evaluate(self, t, xp, q, derivative: bool):
        check_concrete(self.__dict__["_hyperparameters"]["lengthscale"], "lengthscale", self)
        plan = self._plan(q)
        raw = hyperparameter_in(self.__dict__["_hyperparameters"]["lengthscale"], t, xp)
        if isinstance(raw, float):
            value = self._values(t, xp, q, derivative)
            if isinstance(value, np.ndarray) and value.ndim and not np.shares_memory(value, t):
                # a fresh array: scaled in place (no temporary of the size of a Gram matrix)
                if self.normalize:
                    value /= plan.total
                else:
                    value *= math.exp(plan.log_scale)
                return value
            return value / plan.total if self.normalize else value * math.exp(plan.log_scale)
        # a tensor lengthscale: value + (p - p0) dF/dp carries the first derivative in p (its value is unchanged)
        if math.isinf(self.nu):
            if not derivative and _use_table(plan, t, xp):
                # large calls: F(tau0) + (tau - tau0) dF/dtau, both tabulated
                delta = 0.5 * raw**2 - 0.5 * self.lengthscale**2
                slope = _heat_slope_plan(0.5 * self.lengthscale**2, q)
                numerator = self._values(t, xp, q, False) + delta * self._values(t, xp, q, False, shift=1)
                if not self.normalize:
                    return numerator * math.exp(plan.log_scale)
                return numerator / (plan.total + delta * slope.total)
            # the heat kernel's coefficients in the tensor's namespace: exact derivatives of every order
            return self._heat_tensor(t, xp, q, raw, derivative)
        value = self._values(t, xp, q, derivative)
        s = self.nu + 0.5 * (q - 1)
        c0 = self._c()
        delta = 2.0 * self.nu / raw**2 - c0
        shifted = self._plan(q, shift=1)
        ratio = -s * math.exp(shifted.log_scale - plan.log_scale)
        d_value = self._values(t, xp, q, derivative, shift=1) * ratio  # dF/dc in the plan's units
        numerator = value + delta * d_value
        if not self.normalize:
            return numerator * math.exp(plan.log_scale)
        return numerator / (plan.total + delta * (shifted.total * ratio))

    def _heat_tensor(self, t, xp, q, raw, derivative):
        plan = self._plan(q)
        L = plan.head.size - 1
        degrees = np.arange(L + 1, dtype=np.float64)
        lam = xp.asarray(degrees * (degrees + q - 2.0), dtype=t.dtype, device=_device(t))
        log_n = xp.asarray(
            log_harmonic_dimension(np.arange(L + 1), q=q) - plan.log_scale, dtype=t.dtype, device=_device(t)
        )
        coef = xp.exp(log_n - 0.5 * raw**2 * lam)
        if derivative:
            l = xp.asarray(degrees[1:], dtype=t.dtype, device=_device(t))
            value = (
                legendre_series(coef[1:] * (l * (l + (q - 2)) / (q - 1)), t, q=q + 2, validate=False)
                if L
                else (xp.zeros_like(t))
            )
        else:
            value = legendre_series(coef, t, q=q, validate=False)
        if self.normalize:
            return value / xp.sum(coef)
        return value * math.exp(plan.log_scale)

    def _profile(self, t, xp, q):
        return self._evaluate(t, xp, q, derivative=False)

    def _derivative(self, t, xp, q):
        return self._evaluate(t, xp, q, derivative=True)

    def profile_error(self, *, q: int) -> float:
        r"""Bound on the absolute error of :meth:`~DotProductKernel.profile` on [-1, 1], relative to :math:`\varphi(1)`.

        The tail of the series beyond the summed head (computed exactly to degree 65536, by its asymptotics beyond)
        plus a bound on the rounding of the summation, for this lengthscale and dimension (0-ish for nu = inf,
        whose series converges faster than geometrically), plus, where large calls read the tabulated profile
        (heads longer than 64 terms), the table's interpolation bound (the table is built here if needed, once).
        A bound for every call, whichever route it takes.

        Parameters
        ----------
        q : int
            Dimension of :math:`\mathbb{R}^q`, >= 2, keyword-only.

        Returns
        -------
        float
            The bound, e.g. 2e-13 at nu = 1/2, lengthscale 0.5, q = 3.

        See Also
        --------
        DotProductKernel.spectrum_error : the error bound of the coefficients.

        Examples
        --------
        >>> MaternKernel(nu=0.5, lengthscale=0.5).profile_error(q=3) < 1e-12
        True
        """
        q = check_dimension(q)
        plan = self._plan(q)
        table = self._table(q).error if plan.head.size > _TABLE_MIN_HEAD else 0.0
        return float((2.0 * plan.error + table) / plan.total)

    def _spectrum_error(self, q, degree):
        rel = 1e-13 + (self.profile_error(q=q) if self.normalize else 0.0)
        return rel * np.abs(self.spectrum(degree, q=q))


def _device(x: Any) -> Any:
    return array_api_compat.device(x)
