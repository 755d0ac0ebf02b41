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

At small lengthscales :math:`d_j` grows like :math:`c^j`, and the head's low degrees and the references cancel: their
sizes reach :math:`c^{\nu + J - 1}` times :math:`\varphi(1)`, so that in float64 no (J, L) gets below 1e-8 to 1e-6 of
:math:`\varphi(1)` at lengthscale 0.01. Where the float64 plan's bound misses 1e-13 of :math:`\varphi(1)` (or its
head is longer than 4096 terms and the extended plan reaches 1e-13 at a smaller cost), the profile is summed in
extended precision where the cancellation is (the "extended plan"): the head's degrees
:math:`l \le M` (M of the order of :math:`\sqrt c`) and the references in double-double arithmetic (pairs of float64,
about 32 digits: Dekker's product and Knuth's sum on numpy arrays, :math:`\ln` by a Newton step, :math:`\exp` by
Taylor's series and squarings), with up to 8 references, and the degrees :math:`M < l \le L`, whose coefficients are
below :math:`\varphi(1)`, in float64. The constants come from mpmath (:math:`d_j` to 60 digits, the Riesz constants,
the coefficients of degree :math:`\le M + 1` by recurrences in l), the coefficients of degree M to L from long-double
recurrences restarted from mpmath every 512 degrees (16 where long double is float64). (J, M, L) make the cost of an
evaluation smallest under the bound (L up to 65536 where nothing shorter reaches the target, M up to 4096): the
truncation (as above), plus :math:`\epsilon_{dd} (16 \sum_{l \le M} (l+1) |e_l| + \sum_j |w_j| (4^{a_j} (2 a_j + 8)
+ 1))`, :math:`\epsilon_{dd} = 2^{-104}` (a factor 2.4 on logarithmic references), plus :math:`\epsilon (4 (L+1)
\sum_{M < l \le L} |e_l| + \frac12 \sum_{M < l \le L} |e_l| \frac{l(l+q-2)}{q-1})` (Clenshaw's float64 sum, whose
rounding grows like L near t = 1, and t rounded to float64 where it is built from u), plus the long-double
recurrences' error and the final float64 roundings. The heat kernel's head, where its float64 bound misses the
target (lengthscales below about 0.1), is summed in long double (a head of at most a few thousand terms), in
double-double where long double is float64 (Windows, macOS on arm64; its plan and table then take 1 to 4 s to build
at lengthscale 0.01). Calls of
numpy arrays sum it directly, torch and jax arrays through a host copy (where t needs a gradient, the float64
plan's graph carries it and its value is corrected by a constant; a jax array traced by a transformation, e.g.
``jax.jit``, ``jax.grad`` or ``jax.vmap``, is summed on the host by ``jax.pure_callback``, in the same way), and the
table is built from it.

Each point of this direct route costs O(L). Large calls (at least 32768 points, a head longer than 64 terms) read
instead a table of the same profile (:mod:`dotkernels.kernels._tabulated`): piecewise Chebyshev interpolants of
degree 20 in :math:`u = \sqrt{(1-t)/2}`, in which the profile :math:`G(t) + \sum_j w_j (2-2t)^{\nu+j}` is analytic
for half-integer :math:`\nu` and has a :math:`u^{2\nu}` (or :math:`u^{2\nu} \ln u`) singularity at u = 0 otherwise,
resolved by intervals graded geometrically towards u = 0. It is built once per plan (adaptively, from the direct
route) and cached; its interpolation bound is part of :meth:`MaternKernel.profile_error`. The rule is the same for
numpy, torch and jax arrays, with or without a gradient in t (:mod:`dotkernels.kernels._autograd`): the gradient
of the tabulated profile is read from a table of :math:`\varphi'` where it is bounded (nu > 1, the heat kernel), and
for nu <= 1 from a table of its bounded part (the head's and the references' of exponent a > 1) plus the other
references' derivatives :math:`-2 w_j a_j (2-2t)^{a_j - 1}` in closed form; a gradient's own graph (second
derivatives) is the direct route's. Under jax the direct route's head is summed by a ``jax.lax.scan``, so that
``jax.jit`` compiles it in a time independent of L.
"""

from __future__ import annotations

import math
import threading
import warnings
from functools import lru_cache, partial
from typing import Any, NamedTuple

import array_api_compat
import numpy as np
from scipy.special import digamma, gammaln, gammasgn

from .._validate import check_dimension
from ..gegenbauer import derivative_coefficients, legendre_series, log_harmonic_dimension
from ..special import log_gamma_ratio
from ._autograd import check_concrete, jax_legendre_series, matern_bounded_derivative_table, tabulated
from ._base import DotProductKernel, Hyperparameter, SpectrumAccuracyWarning, hyperparameter_in
from ._tabulated import ChebyshevTable, tabulate

__all__ = ["MaternKernel"]

_EPS = float(np.finfo(np.float64).eps)
#: the most references (terms of the tail's expansion) and the longest head tried
_MAX_TERMS = 6
_MAX_HEAD = 1 << 14
#: relative accuracy aimed at for the profile (the stated bound is 1e-12)
_TARGET = 1e-13
#: beyond this bound of the plan (relative to phi(1)) the profile warns (the table's interpolation bound, of the
#: order of the plan's, is not included: profile_error adds it)
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
    #: the extended-precision representation of the same profile (small lengthscales), else None: then head and
    #: refs are the float64 plan of the gradient route, and total, error and rounding are the extended plan's
    extended: Any = None


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
    for j in range(_MAX_TERMS_EXTENDED):
        a = nu + j
        log_x, sign_x = _log_head_reference(a, degrees, q)
        references.append((log_n + log_x, sign_x, *_log_riesz_constant(a, q)))
    for array in (degrees, log_n, lam, *(r[0] for r in references), *(r[1] for r in references)):
        array.setflags(write=False)
    return degrees, log_n, lam, tuple(references)


@lru_cache(maxsize=_PLAN_CACHE_SIZE)
def _matern_plan(c: float, nu: float, q: int) -> _Plan:
    """The float64 plan; where its bound misses the target, the extended-precision plan of the same profile (the
    float64 plan kept for the gradient route), whichever bound is smaller (cached)."""
    plan = _double_plan(c, nu, q)
    reached = plan.error <= _TARGET * plan.total
    if reached and plan.head.size <= 4097:
        return plan
    # long float64 heads (few or no references) are also compared by cost with the extended plan, whose references
    # leave a smoother profile to tabulate
    extended = _extended_plan(c, nu, q, plan.log_scale)
    if extended is None:
        return plan
    cost = _COST_DD * extended.head_hi.size + _COST_FLOAT * extended.tail.size
    if reached and not (extended.error <= _TARGET * extended.total and cost < _COST_FLOAT * plan.head.size):
        return plan
    if not reached and extended.error >= plan.error:
        return plan
    return plan._replace(total=extended.total, error=extended.error, rounding=extended.rounding, extended=extended)


def _double_plan(c: float, nu: float, q: int) -> _Plan:
    """The cheapest (J, L) whose float64 bound reaches the target accuracy, else the most accurate one."""
    h = 0.5 * (q - 2)
    s = nu + 0.5 * (q - 1)
    d = np.array([float(x) for x in _mp_tail_coefficients(c, nu, q, _MAX_TERMS_EXTENDED + 1)])
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


# ---- extended precision (small lengthscales) ------------------------------------------------------------------------
# With c = 2 nu / lengthscale^2 large, d_j grows like c^j and the head's low-degree coefficients and the references
# cancel to 10^(j + nu) log10(c) of phi(1): no float64 plan reaches the target. The extended plan keeps the same
# head-plus-references form with more references (J up to 8: a head of a few thousand terms instead of 16384 at
# lengthscale 0.01), and sums the degrees l <= M, where the cancellation is, in double-double arithmetic (about 32
# digits, numpy arrays of (high, low) float64 pairs), the references too; the degrees M < l <= L, whose coefficients
# are of the size of phi(1) or below, in float64. Its constants come from mpmath (40 digits): d_j, the Riesz
# constants, and the coefficients of degree <= M (recurrences in l), the others from long-double recurrences started
# from mpmath values every few hundred degrees.

_EPS_LD = float(np.finfo(np.longdouble).eps)
#: the error unit of the double-double bounds: 4 u^2 (u = 2^-53). Dekker's product (_dd_mul) is within 7 u^2
#: relative; the sum (_dd_add, the "sloppy" one) has only the absolute bound u^2 (|a| + |b|), which the bound's
#: factors (16 (l + 1) |e_l| for Clenshaw's sum) cover by a measured margin of about 2, not a proof
_EPS_DD = 2.0**-104
_SPLITTER = 134217729.0  # 2^27 + 1
_MP_DPS = 40
#: the most references of an extended plan, the most degrees summed in double-double
_MAX_TERMS_EXTENDED = 8
_MAX_DD = 4096
#: points evaluated at once by the extended route (its temporaries stay in cache)
_EXTENDED_BLOCK = 4096
#: long-double recurrences restart from mpmath values every this many degrees (where long double is 80-bit)
_LD_BLOCK = 512 if _EPS_LD < 1e-18 else 16
#: roundings per degree of the long-double recurrences, accumulated over a block (the ratio of N(q, l), the
#: Matérn factor's ratio and exp/log1p, the cumulative products and the references' subtraction: 8 to 9 counted)
_LD_ROUNDINGS = 10
#: the cost model of an extended plan: numpy operations per degree of the double-double and of the float64 sums
_COST_DD = 72
_COST_FLOAT = 5


class _Extended(NamedTuple):
    r"""A profile :math:`\sum_{l \le M} e_l P_{l,q} + \sum_{M < l \le L} e_l P_{l,q} + \sum_j w_j R_{a_j}` in the units
    of its float64 plan: the first sum and the references in double-double, the second in float64."""

    head_hi: np.ndarray  # e_0..e_M, high and low parts
    head_lo: np.ndarray
    tail: np.ndarray  # e_0..e_L in float64, zero up to degree M
    refs: tuple[tuple[float, float, float, bool], ...]  # (a, weight high, weight low, logarithmic)
    nu: float
    alpha: tuple[np.ndarray, np.ndarray]  # the recurrence's alpha_k, beta_k (k <= M + 1) in double-double
    beta: tuple[np.ndarray, np.ndarray]
    total: float
    error: float
    rounding: float
    long_head: tuple | None = None  # (coefficients, alpha, beta) in long double: the heat kernel's whole head
    #: the derivative in t as a profile one dimension up (see :func:`_slope_plan`): (c + q - 1, nu - 1) for the
    #: Matérn profile with nu > 1, (tau,) for the heat kernel, else None
    slope: tuple | None = None


def _two_sum(a, b):
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def _fast_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


def _split(a):
    c = _SPLITTER * a
    high = c - (c - a)
    return high, a - high


def _two_product(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _dd_add(ah, al, bh, bl):
    s, e = _two_sum(ah, bh)
    return _fast_two_sum(s, e + (al + bl))


def _dd_mul(ah, al, bh, bl):
    p, e = _two_product(ah, bh)
    return _fast_two_sum(p, e + (ah * bl + al * bh))


_CONTEXTS = threading.local()


def _mp() -> Any:
    """This thread's private mpmath context: its precision (``workdps``) is never changed by another thread, nor by
    user code that sets ``mpmath.mp.dps`` (a process-wide setting)."""
    context = getattr(_CONTEXTS, "mp", None)
    if context is None:
        import mpmath

        context = _CONTEXTS.mp = mpmath.MPContext()
    return context


def _dd_of(x) -> tuple[float, float]:
    """An mpmath number as a double-double (high, low)."""
    high = float(x)
    return high, float(x - high)


@lru_cache(maxsize=1)
def _dd_constants() -> tuple:
    """ln 2 and 1/i! (i <= 10) in double-double."""
    mp = _mp()
    with mp.workdps(_MP_DPS):
        return _dd_of(mp.log(2)), tuple(_dd_of(1 / mp.factorial(i)) for i in range(11))


def _dd_exp(yh, yl):
    """exp(y) in double-double: y = k ln 2 + r, exp(r / 1024) - 1 by Taylor (9 terms), squared ten times."""
    ln2, inverse_factorials = _dd_constants()
    k = np.rint(yh / ln2[0])
    ph, pl = _two_product(k, ln2[0])
    rh, rl = _dd_add(yh, yl, -ph, -pl)
    ph, pl = _two_product(k, ln2[1])
    rh, rl = _dd_add(rh, rl, -ph, -pl)
    rh, rl = rh * (1.0 / 1024.0), rl * (1.0 / 1024.0)
    sh, sl = inverse_factorials[9]
    for i in range(8, 0, -1):
        sh, sl = _dd_mul(sh, sl, rh, rl)
        sh, sl = _dd_add(sh, sl, *inverse_factorials[i])
    zh, zl = _dd_mul(sh, sl, rh, rl)  # exp(r) - 1
    for _ in range(10):  # exp(2r) - 1 = z (z + 2)
        wh, wl = _dd_add(zh, zl, 2.0, 0.0)
        zh, zl = _dd_mul(zh, zl, wh, wl)
    zh, zl = _dd_add(zh, zl, 1.0, 0.0)
    k = k.astype(np.int64)
    return np.ldexp(zh, k), np.ldexp(zl, k)


def _dd_log(xh, xl):
    """ln x (x > 0) in double-double: one Newton step from the float64 logarithm, ln(1 + d) = d - d^2/2 + O(d^3)."""
    y = np.log(xh)
    eh, el = _dd_exp(-y, np.zeros_like(y))
    ph, pl = _dd_mul(xh, xl, eh, el)
    dh, dl = _dd_add(ph, pl, -1.0, 0.0)
    dh, dl = _dd_add(dh, dl, -0.5 * dh * dh, 0.0)
    return _dd_add(y, 0.0, dh, dl)


def _dd_sqrt(xh, xl):
    r = np.sqrt(xh)
    ph, pl = _two_product(r, r)
    return _fast_two_sum(r, ((xh - ph) - pl + xl) / (2.0 * r))


def _extended_values(ext: _Extended, th, tl, xh, xl, q: int) -> np.ndarray:
    """The extended plan at t = th + tl, x = 2 - 2t = xh + xl (double-double; float64 result)."""
    if ext.long_head is not None:
        head, alpha, beta = ext.long_head
        t = th.astype(np.longdouble) + tl
        b1 = np.zeros_like(t)
        b2 = np.zeros_like(t)
        for k in range(head.size - 1, -1, -1):
            b1, b2 = head[k] + alpha[k] * t * b1 - beta[k + 1] * b2, b1
        return b1.astype(np.float64)
    outh, outl = _extended_dd(ext, th, tl, xh, xl)
    M = ext.head_hi.size - 1
    if ext.tail.size > M + 1:
        outl = outl + legendre_series(ext.tail, th, q=q, validate=False)
    return outh + outl


def _extended_dd(ext: _Extended, th, tl, xh, xl) -> tuple:
    """The double-double part of the extended plan (the head to degree M and the references) at t = th + tl,
    x = 2 - 2t = xh + xl: a (high, low) pair."""
    M = ext.head_hi.size - 1
    (ah, al), (bh, bl) = ext.alpha, ext.beta
    b1h = np.zeros_like(th)
    b1l = np.zeros_like(th)
    b2h = np.zeros_like(th)
    b2l = np.zeros_like(th)
    for k in range(M, -1, -1):  # b_k = e_k + alpha_k t b_{k+1} - beta_{k+1} b_{k+2}
        ph, pl = _dd_mul(th, tl, b1h, b1l)
        ph, pl = _dd_mul(ph, pl, ah[k], al[k])
        sh, sl = _dd_mul(b2h, b2l, -bh[k + 1], -bl[k + 1])
        sh, sl = _dd_add(ph, pl, sh, sl)
        sh, sl = _dd_add(sh, sl, ext.head_hi[k], ext.head_lo[k])
        b2h, b2l, b1h, b1l = b1h, b1l, sh, sl
    outh, outl = b1h, b1l
    if ext.refs:
        positive = xh > 0.0
        uh = np.where(positive, xh, 1.0)
        ul = np.where(positive, xl, 0.0)
        nu = ext.nu
        whole = math.floor(nu)
        if nu - whole == 0.5 and whole < 8:
            ph, pl = _dd_sqrt(uh, ul)
            for _ in range(whole):
                ph, pl = _dd_mul(ph, pl, uh, ul)
        elif nu == whole and whole < 8:
            ph, pl = uh, ul
            for _ in range(whole - 1):
                ph, pl = _dd_mul(ph, pl, uh, ul)
        else:
            lh, ll = _dd_log(uh, ul)
            ph, pl = _two_product(nu, lh)
            ph, pl = _dd_exp(*_fast_two_sum(ph, pl + nu * ll))
        if any(logarithmic for *_, logarithmic in ext.refs):
            lh, ll = _dd_log(uh, ul)
        for _, wh, wl, logarithmic in ext.refs:
            rh, rl = _dd_mul(ph, pl, lh, ll) if logarithmic else (ph, pl)
            rh, rl = _dd_mul(rh, rl, wh, wl)
            rh = np.where(positive, rh, 0.0)
            rl = np.where(positive, rl, 0.0)
            outh, outl = _dd_add(outh, outl, rh, rl)
            ph, pl = _dd_mul(ph, pl, uh, ul)
    return outh, outl


def _extended_numpy(ext: _Extended, t: np.ndarray, q: int) -> np.ndarray:
    """The extended plan at float64 inner products t (exact inputs), by blocks of points."""
    flat = np.clip(np.asarray(t, dtype=np.float64).reshape(-1), -1.0, 1.0)
    out = np.empty_like(flat)
    for start in range(0, flat.size, _EXTENDED_BLOCK):
        th = flat[start : start + _EXTENDED_BLOCK]
        xh, xl = _two_sum(2.0, -2.0 * th)
        out[start : start + _EXTENDED_BLOCK] = _extended_values(ext, th, np.zeros_like(th), xh, xl, q)
    return out.reshape(np.shape(t))


def _extended_profile_u(ext: _Extended, u: np.ndarray, q: int) -> np.ndarray:
    """The extended plan at t = 1 - 2u^2 exactly (t and x = 4u^2 in double-double), for the tables."""
    u = np.asarray(u, dtype=np.float64)
    out = np.empty_like(u)
    for start in range(0, u.size, _EXTENDED_BLOCK):
        v = u[start : start + _EXTENDED_BLOCK]
        sh, sl = _two_product(v, v)
        th, tl = _two_sum(1.0, -2.0 * sh)
        th, tl = _fast_two_sum(th, tl - 2.0 * sl)
        out[start : start + _EXTENDED_BLOCK] = _extended_values(ext, th, tl, 4.0 * sh, 4.0 * sl, q)
    return out


def _extended_profile(plan: _Plan, t: Any, xp: Any, q: int) -> Any:
    """The extended plan at t of any library: numpy directly; other arrays through a host copy (jax arrays traced by
    a transformation through ``jax.pure_callback``). Where t needs a gradient, the derivative is the extended plan
    of :func:`_slope_plan` (nu > 1, the heat kernel), else the float64 route's; second derivatives are the float64
    route's."""
    ext = plan.extended
    if isinstance(t, np.ndarray):
        out = _extended_numpy(ext, t, q)
        return out if t.dtype == np.float64 else out.astype(np.result_type(t.dtype, np.float32))
    double = plan._replace(extended=None)
    shifted = _slope_plan(plan, q)

    def slope_of(s):
        return shifted[1] * _plan_profile(shifted[0], s, xp, q + 2)

    if array_api_compat.is_torch_array(t):
        import torch

        def value(s):
            exact = torch.from_numpy(_extended_numpy(ext, s.detach().to("cpu", torch.float64).numpy(), q))
            return exact.to(device=s.device, dtype=s.dtype)

        if not (torch.is_grad_enabled() and t.requires_grad):
            return value(t)
        if shifted is not None:
            return tabulated(t, value, slope_of, lambda s: _plan_profile(double, s, xp, q))
        approx = _plan_profile(double, t, xp, q)
        return approx + (value(t) - approx.detach())
    try:
        host = np.asarray(t, dtype=np.float64)
    except Exception:  # a traced array (jax transformations): the value from the host
        import jax

        if shifted is not None:
            return tabulated(t, lambda s: _jax_extended(ext, s, q), slope_of, lambda s: _plan_profile(double, s, xp, q))
        approx = _plan_profile(double, t, xp, q)
        return approx + jax.lax.stop_gradient(_jax_extended(ext, t, q) - approx)
    return xp.asarray(_extended_numpy(ext, host, q), dtype=t.dtype, device=_device(t))


def _jax_extended(ext: _Extended, t: Any, q: int) -> Any:
    """The extended plan at a jax array t traced by a transformation (``jax.jit``, ``jax.grad``, ``jax.vmap``):
    summed on the host by ``jax.pure_callback`` (no derivative: t enters through ``stop_gradient``)."""
    import jax

    dtype = t.dtype

    def host(x):
        return _extended_numpy(ext, np.asarray(x, dtype=np.float64), q).astype(dtype)

    shape = jax.ShapeDtypeStruct(t.shape, dtype)
    return jax.pure_callback(host, shape, jax.lax.stop_gradient(t), vmap_method="expand_dims")


def _corrected(value: Any, t: Any, plan: _Plan, q: int, normalize: bool) -> Any:
    """``value`` (a float64 route's tensor, with its graph) plus a constant: the extended plan's value at t (t with a
    host value: torch tensors, concrete jax arrays; else ``value`` as it is)."""
    if array_api_compat.is_torch_array(t):
        host = t.detach().to("cpu", dtype=_torch_float64()).numpy()
    else:
        try:
            host = np.asarray(t, dtype=np.float64)
        except Exception:  # a traced jax array: summed on the host by a callback
            import jax

            exact = _jax_extended(plan.extended, t, q)
            exact = exact / plan.total if normalize else exact * math.exp(plan.log_scale)
            return value + jax.lax.stop_gradient(exact.astype(value.dtype) - value)
    exact = _extended_numpy(plan.extended, host, q)
    exact = exact / plan.total if normalize else exact * math.exp(plan.log_scale)
    if array_api_compat.is_torch_array(value):
        return value + (value.new_tensor(exact) - value.detach())
    if array_api_compat.is_jax_array(value):
        import jax

        return value + jax.lax.stop_gradient(value.__array_namespace__().asarray(exact, dtype=value.dtype) - value)
    return value


def _torch_float64() -> Any:
    import torch

    return torch.float64


@lru_cache(maxsize=_PLAN_CACHE_SIZE)
def _mp_tail_coefficients(c: float, nu: float, q: int, terms: int) -> tuple:
    r"""d_0..d_{terms-1}: :math:`\mu(n)/\rho^{(\nu)}(n) \sim \sum_j d_j \prod_{i \le j} (n^2 - (b+i)^2)^{-1}`, in
    mpmath (60 digits: the Bernoulli polynomials at large b cancel)."""
    mp = _mp()
    with mp.workdps(60):
        h = mp.mpf(q - 2) / 2
        b = h + mp.mpf(nu)
        s = b + mp.mpf(1) / 2
        beta2 = mp.mpf(c) - h * h
        A = [mp.mpf(0)] * terms
        for m in range(1, terms):
            A[m] = -s * (-1) ** (m + 1) * beta2**m / m - 2 * mp.bernpoly(2 * m + 1, b + 1) / (2 * m * (2 * m + 1))
        g = [mp.mpf(0)] * terms
        g[0] = mp.mpf(1)
        for k in range(1, terms):
            g[k] = mp.fsum(i * A[i] * g[k - i] for i in range(1, k + 1)) / k
        d = []
        residual = list(g)
        for j in range(terms):
            basis = [mp.mpf(0)] * terms
            basis[j] = mp.mpf(1)
            for i in range(1, j + 1):
                y = (b + i) ** 2
                for k in range(1, terms):
                    basis[k] += y * basis[k - 1]
            d.append(residual[j])
            residual = [r - d[j] * x for r, x in zip(residual, basis)]
        return tuple(d)


def _mp_riesz_constant(a, q: int):
    """The signed constant C of :func:`_log_riesz_constant` in mpmath (a an mpf)."""
    mp = _mp()
    base = 4**a * mp.gamma(a + mp.mpf(q - 1) / 2) / mp.gamma(mp.mpf(q - 1) / 2) * mp.gamma(q - 1)
    if _is_integer(float(a)):
        m = round(float(a))
        return base * (-((-1) ** m)) * mp.factorial(m)
    return base / mp.gamma(-a)


def _mp_reference_start(a, q: int, m_top: int) -> list:
    r"""The coefficients :math:`x_l` of :func:`_log_head_reference` for l = 0..m_top in mpmath (a an mpf)."""
    mp = _mp()
    out = []
    if not _is_integer(float(a)):
        rho = mp.gamma(-a) / mp.gamma(a + q - 1)
        for l in range(m_top + 1):
            out.append(rho)
            rho = rho * (l - a) / (l + a + q - 1)
        return out
    m = round(float(a))
    sign = -((-1) ** m)
    for l in range(m_top + 1):
        if l <= m:
            factors = [i - a for i in range(l)]
            poch = mp.fprod(factors) if factors else mp.mpf(1)
            dlog = -mp.fsum(1 / f for f in factors) + mp.log(4) + mp.digamma(a + mp.mpf(q - 1) / 2)
            dlog -= mp.digamma(l + a + q - 1)
            out.append(poch * dlog / (mp.gamma(l + a + q - 1) * mp.factorial(m) * sign))
        elif l == m + 1:
            out.append(1 / mp.gamma(2 * m + q))
        else:
            out.append(out[-1] * (l - 1 - a) / (l - 1 + a + q - 1))
    return out


def _extended_choice(c: float, nu: float, q: int, log_scale: float, d: list) -> tuple | None:
    """(J, M, L) of the cheapest extended plan whose bound (from float64 estimates) reaches the target, else of the
    most accurate one."""
    size = 4 * _MAX_HEAD
    s = nu + 0.5 * (q - 1)
    degrees, log_n, lam, references = _tables(nu, q, size)
    log_a = log_n - s * np.log1p(lam / c)
    a_units = np.exp(log_a - (log_scale + s * math.log(c)))
    total = float(np.sum(a_units))
    digits = np.abs(log_a - (log_scale + s * math.log(c))) + log_n + 1.0
    e = a_units.copy()
    magnitude = a_units.copy()  # |A_l| + sum_j |d_j X_l|
    slope = lam / max(q - 1, 1)  # |P'_{l,q}| <= l(l+q-2)/(q-1) on [-1, 1]
    n_last = size + 0.5 * (q - 2)
    ld_rate = _EPS_LD * (_LD_ROUNDINGS * _LD_BLOCK + s * math.log1p(lam[-1] / c) + 8)
    refs_round = 0.0
    candidates: list[tuple] = []
    Ls = [1 << k for k in range(4, 17)]  # beyond 16384: where nothing shorter reaches the target (large q)
    for J in range(_MAX_TERMS_EXTENDED + 1):
        if J:
            a = nu + J - 1
            log_nx, sign_x, log_c, _ = references[J - 1]
            coeff = float(d[J - 1]) * sign_x * np.exp(log_nx - log_scale)
            e -= coeff
            magnitude += np.abs(coeff)
            weight = abs(float(d[J - 1])) * math.exp(min(-log_scale - log_c, 700.0))
            refs_round += weight * (4.0**a * (2 * a + 8) * (2.4 if _is_integer(a) else 1.0) + 1.0)
        a = nu + J
        log_x, _ = _log_rho(a, degrees[-1:], q)
        log_far = math.log(abs(float(d[J])) or 1e-300) + log_n[-1] + log_x[0] - log_scale
        log_far += (1 + 2 * a) * math.log(n_last) - 2 * a * math.log(n_last + 0.5) - math.log(a)
        far = math.exp(min(log_far, 700.0))
        ae = np.abs(e)
        P = np.cumsum(ae * (degrees + 1.0))  # prefix sums (the large low degrees), suffix sums (the small high ones)
        suffix = np.append(np.cumsum(ae[::-1])[::-1], 0.0)
        W = np.append(np.cumsum((ae * slope)[::-1])[::-1], 0.0)
        G = np.append(np.cumsum(magnitude[::-1])[::-1], 0.0)
        tail_error = np.append(np.cumsum((_EPS * digits * magnitude)[::-1])[::-1], 0.0)
        first = math.ceil(nu + max(J - 1, 0)) + 1  # mpmath up to at least the references' special degrees
        for L in Ls:
            if L <= first:
                continue
            truncation = float(suffix[L + 1]) + float(tail_error[L + 1]) + far
            Ms = np.unique(np.clip(np.round(first * 1.25 ** np.arange(60)).astype(np.int64), first, min(L, _MAX_DD)))
            middle = suffix[Ms + 1] - suffix[L + 1]
            S = _EPS * (4.0 * (L + 1) * middle + 0.5 * (W[Ms + 1] - W[L + 1])) + ld_rate * (G[Ms + 1] - G[L + 1])
            D = _EPS_DD * (16.0 * P[Ms] + refs_round)
            F = 2.0 * _EPS * (total + middle)
            bound = truncation + S + D + F
            cost = _COST_DD * (Ms + 1) + _COST_FLOAT * (L + 1) + 600 * J
            candidates += [(float(bound[i]), int(cost[i]), J, int(Ms[i]), L) for i in range(Ms.size)]
    if not candidates:
        return None
    # the cheapest within the target, else within twice the smallest bound
    smallest = min(c[0] for c in candidates)
    return min((c for c in candidates if c[0] <= max(_TARGET * total, 2.0 * smallest)), key=lambda c: c[1])[2:]


def _extended_plan(c: float, nu: float, q: int, log_scale: float) -> _Extended | None:
    """The extended plan of the Matérn profile in the float64 plan's units (None where no plan is found)."""
    mp = _mp()
    d = _mp_tail_coefficients(c, nu, q, _MAX_TERMS_EXTENDED + 1)
    choice = _extended_choice(c, nu, q, log_scale, d)
    if choice is None:
        return None
    J, M, L = choice
    s_float = nu + 0.5 * (q - 1)
    with mp.workdps(_MP_DPS):
        cm, num = mp.mpf(c), mp.mpf(nu)
        s = num + mp.mpf(q - 1) / 2
        unit = mp.exp(mp.mpf(log_scale))
        alist = [num + j for j in range(J)]
        dj = [mp.mpf(x) for x in d[:J]]
        starts = [_mp_reference_start(a, q, M + 1) for a in alist]
        # the head up to degree M + 1 by recurrences in l
        head, anchor = [], None
        n_l = mp.mpf(1)
        for l in range(M + 2):
            mu = (cm + l * (l + q - 2)) ** (-s)
            xs = [dj[j] * n_l * starts[j][l] / unit for j in range(J)]
            a_l = n_l * mu / unit
            if l <= M:
                head.append(a_l - mp.fsum(xs))
            else:
                anchor = (a_l, xs)
            if q > 2:
                n_l = n_l * (l + q - 2) * (2 * l + q) / ((l + 1) * (2 * l + q - 2))
            else:
                n_l = mp.mpf(2)
        refs = []
        for j, a in enumerate(alist):
            w = dj[j] / (_mp_riesz_constant(a, q) * unit)
            refs.append((float(a), *_dd_of(w), _is_integer(float(a))))
        head_total = mp.fsum(head)
        hi_lo = [_dd_of(e) for e in head]

        def anchor_at(l):
            if q > 2:
                log_n = mp.loggamma(l + q - 2) - mp.loggamma(l + 1) - mp.loggamma(q - 2)
                log_n += mp.log(mp.mpf(2 * l + q - 2) / (q - 2))
            else:
                log_n = mp.log(2)
            log_u = mp.mpf(log_scale)
            a_l = mp.exp(log_n - s * mp.log(cm + l * (l + q - 2)) - log_u)
            xs = [
                dj[j] * mp.exp(log_n + mp.loggamma(l - a) - mp.loggamma(l + a + q - 1) - log_u)
                for j, a in enumerate(alist)
            ]
            return a_l, xs

        # degrees M < l <= L: long-double recurrences from mpmath values every _LD_BLOCK degrees
        ld = np.longdouble
        tail = np.zeros(L + 1)
        magnitude = 0.0
        for l0 in range(M + 1, L + 1, _LD_BLOCK):
            l1 = min(l0 + _LD_BLOCK, L + 1)
            a0, x0 = anchor if l0 == M + 1 else anchor_at(l0)
            l = np.arange(l0, l1).astype(ld)
            ratio_n = (l + (q - 2)) * (2 * l + q) / ((l + 1) * (2 * l + (q - 2))) if q > 2 else np.ones_like(l)
            lam = l * (l + (q - 2))
            lam0 = ld(l0) * (l0 + q - 2)
            cum_n = np.concatenate([[ld(1)], np.cumprod(ratio_n[:-1])])
            values = _ld_of(a0) * cum_n * np.exp(-ld(s_float) * np.log1p((lam - lam0) / (ld(c) + lam0)))
            size_sum = np.abs(values)
            for j, a in enumerate(alist):
                ratio = ratio_n * (l - ld(a)) / (l + ld(a) + (q - 1))
                xj = _ld_of(x0[j]) * np.concatenate([[ld(1)], np.cumprod(ratio[:-1])])
                values = values - xj
                size_sum = size_sum + np.abs(xj)
            tail[l0:l1] = values.astype(np.float64)
            magnitude += float(np.sum(size_sum))
        total = float(head_total + mp.mpf(math.fsum(tail)))
    # the bound, with the exact coefficients
    head_abs = math.fsum(abs(h) * (l + 1) for l, (h, _) in enumerate(hi_lo))
    tail_abs = float(np.sum(np.abs(tail)))
    degrees = np.arange(L + 1, dtype=np.float64)
    tail_slope = float(np.sum(np.abs(tail) * degrees * (degrees + q - 2.0))) / max(q - 1, 1)
    refs_round = sum(abs(wh) * (4.0**a * (2 * a + 8) * (2.4 if lg else 1.0) + 1.0) for a, wh, _, lg in refs)
    ld_rate = _EPS_LD * (_LD_ROUNDINGS * _LD_BLOCK + s_float * math.log1p(L * (L + q - 2.0) / c) + 8)
    rounding = _EPS * (4.0 * (L + 1) * tail_abs + 0.5 * tail_slope) + ld_rate * magnitude
    rounding += _EPS_DD * (16.0 * head_abs + refs_round) + 2.0 * _EPS * (abs(total) + tail_abs)
    truncation = _extended_truncation(c, nu, q, log_scale, d, J, L)
    alpha, beta = _dd_recurrence(M + 1, q)
    head_hi = np.array([h for h, _ in hi_lo])
    head_lo = np.array([lo for _, lo in hi_lo])
    for array in (head_hi, head_lo, tail, *alpha, *beta):
        array.setflags(write=False)
    slope = (c + q - 1.0, nu - 1.0) if nu > 1.0 else None
    return _Extended(
        head_hi, head_lo, tail, tuple(refs), nu, alpha, beta, total, truncation + rounding, rounding, slope=slope
    )


def _ld_of(x) -> np.longdouble:
    high, low = _dd_of(x)
    return np.longdouble(high) + np.longdouble(low)


def _extended_truncation(c: float, nu: float, q: int, log_scale: float, d: list, J: int, L: int) -> float:
    """A bound on sum_{l > L} N(q,l) |r_l| (float64 coefficients to degree 65536 with their rounding, the next term
    of the expansion beyond)."""
    size = 4 * _MAX_HEAD
    s = nu + 0.5 * (q - 1)
    degrees, log_n, lam, references = _tables(nu, q, size)
    top = log_scale + s * math.log(c)
    log_a = log_n - s * np.log1p(lam / c)
    e = np.exp(log_a - top)
    magnitude = e.copy()
    for j in range(J):
        log_nx, sign_x, _, _ = references[j]
        coeff = float(d[j]) * sign_x * np.exp(log_nx - log_scale)
        e -= coeff
        magnitude += np.abs(coeff)
    digits = np.abs(log_a - top) + log_n + 1.0
    a = nu + J
    log_x, _ = _log_rho(a, degrees[-1:], q)
    n_last = size + 0.5 * (q - 2)
    log_far = math.log(abs(float(d[J])) or 1e-300) + log_n[-1] + log_x[0] - log_scale
    log_far += (1 + 2 * a) * math.log(n_last) - 2 * a * math.log(n_last + 0.5) - math.log(a)
    tail = np.abs(e[L + 1 :]) + _EPS * digits[L + 1 :] * magnitude[L + 1 :]
    return float(np.sum(tail)) + math.exp(min(log_far, 700.0))


def _dd_recurrence(size: int, q: int) -> tuple:
    """alpha_k, beta_k of the Gegenbauer recurrence, k = 0..size, in double-double (exact rationals rounded)."""
    mp = _mp()
    ah, al, bh, bl = (np.zeros(size + 1) for _ in range(4))
    with mp.workdps(_MP_DPS):
        for k in range(size + 1):
            if k == 0:
                alpha, beta = mp.mpf(1), mp.mpf(0)
            else:
                alpha = mp.mpf(2 * k + q - 2) / (k + q - 2)
                beta = mp.mpf(k) / (k + q - 2)
            ah[k], al[k] = _dd_of(alpha)
            bh[k], bl[k] = _dd_of(beta)
    return (ah, al), (bh, bl)


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
    # Clenshaw's rounding grows with the degree: about (L+1) eps sum |a_l| (measured against the table's smooth fit);
    # the coefficients' own rounding: their exponents' (ln N to 4 eps relative) and exp's
    log_n = np.abs(log_a[: keep + 1] + tau * degrees[: keep + 1] * (degrees[: keep + 1] + q - 2.0))
    rounding = 4 * _EPS * head.size * head.sum()
    rounding += _EPS * float(np.sum(head * (np.abs(log_a[: keep + 1] - top) + 4.0 * log_n + 2.0)))
    plan = _Plan(top, head, (), math.fsum(head), tail_bound + rounding, rounding)
    if plan.error <= _TARGET * plan.total:
        return plan
    extended = _long_heat(tau, q, keep, top, tail_bound)
    if extended is None or extended.error >= plan.error:
        return plan
    return plan._replace(total=extended.total, error=extended.error, rounding=extended.rounding, extended=extended)


def _long_heat(tau: float, q: int, L: int, top: float, tail_bound: float) -> _Extended | None:
    """The heat kernel's head in long double (coefficients by ratio recurrences from mpmath values every
    ``_LD_BLOCK`` degrees, Clenshaw's sum with the recurrence in long double); in double-double where long double
    is float64."""
    if _EPS_LD > 1e-18:  # long double is float64 (Windows, macOS arm64): the head in double-double instead
        return _dd_heat(tau, q, L, top, tail_bound)
    mp = _mp()
    ld = np.longdouble
    head = np.empty(L + 1, dtype=ld)
    with mp.workdps(_MP_DPS):
        for l0 in range(0, L + 1, _LD_BLOCK):
            l1 = min(l0 + _LD_BLOCK, L + 1)
            if q > 2:
                log_n = mp.loggamma(l0 + q - 2) - mp.loggamma(l0 + 1) - mp.loggamma(q - 2)
                log_n += mp.log(mp.mpf(2 * l0 + q - 2) / (q - 2))
            else:
                log_n = mp.log(2) if l0 else mp.mpf(0)
            anchor = _ld_of(mp.exp(log_n - mp.mpf(tau) * l0 * (l0 + q - 2) - mp.mpf(top)))
            l = np.arange(l0, l1).astype(ld)
            if q > 2:
                ratio = (l + (q - 2)) * (2 * l + q) / ((l + 1) * (2 * l + (q - 2)))
            else:
                ratio = np.where(l == 0, ld(2), ld(1))
            ratio = ratio * np.exp(-ld(tau) * (2 * l + (q - 1)))
            head[l0:l1] = anchor * np.concatenate([[ld(1)], np.cumprod(ratio[:-1])])
    k = np.arange(L + 2).astype(ld)
    alpha = np.where(k == 0, ld(1), (2 * k + (q - 2)) / np.maximum(k + (q - 2), 1))
    beta = np.where(k == 0, ld(0), k / np.maximum(k + (q - 2), 1))
    total = float(np.sum(head))
    size = float(np.sum(np.abs(head)))
    slope = float(np.sum(np.abs(head) * k[:-1] * (k[:-1] + (q - 2)))) / max(q - 1, 1)
    # the recurrences (3 roundings a degree and exp's), Clenshaw's sum (as in float64), t rounded to long double
    # where it is built from u, the result rounded to float64
    rounding = _EPS_LD * ((3 + tau * (2 * L + q)) * _LD_BLOCK + 4 + 4 * (L + 1)) * size + _EPS_LD * slope
    rounding += 2.0 * _EPS * size
    for array in (head, alpha, beta):
        array.setflags(write=False)
    empty = np.zeros(0)
    return _Extended(
        empty,
        empty,
        empty,
        (),
        math.inf,
        (empty, empty),
        (empty, empty),
        total,
        tail_bound + rounding,
        rounding,
        (head, alpha, beta),
        (tau,),
    )


def _dd_heat(tau: float, q: int, L: int, top: float, tail_bound: float) -> _Extended:
    """The heat kernel's head in double-double (coefficients by ratio recurrences in mpmath, rounded once; Clenshaw's
    sum of the extended Matérn plans without references): where long double is float64."""
    mp = _mp()
    hi_lo = []
    with mp.workdps(_MP_DPS):
        coefficient = mp.exp(-mp.mpf(top))  # N(q, 0) e^0 = 1 in the plan's units
        step = mp.exp(-2 * mp.mpf(tau))
        factor = mp.exp(-mp.mpf(tau) * (q - 1))  # e^{-tau (2l + q - 1)}: from degree l to l + 1
        for l in range(L + 1):
            hi_lo.append(_dd_of(coefficient))
            if q > 2:
                ratio = mp.mpf((l + q - 2) * (2 * l + q)) / ((l + 1) * (2 * l + q - 2))
            else:
                ratio = mp.mpf(2 if l == 0 else 1)
            coefficient = coefficient * ratio * factor
            factor = factor * step
    head_hi = np.array([h for h, _ in hi_lo])
    head_lo = np.array([lo for _, lo in hi_lo])
    total = math.fsum(head_hi) + math.fsum(head_lo)
    size = float(np.sum(np.abs(head_hi)))
    # Clenshaw's double-double rounding (the bound of the extended Matérn plans) and the result rounded to float64
    rounding = _EPS_DD * 16.0 * float(np.sum(np.abs(head_hi) * np.arange(1.0, L + 2.0))) + 2.0 * _EPS * size
    alpha, beta = _dd_recurrence(L + 1, q)
    for array in (head_hi, head_lo, *alpha, *beta):
        array.setflags(write=False)
    empty = np.zeros(0)
    return _Extended(
        head_hi, head_lo, empty, (), math.inf, alpha, beta, total, tail_bound + rounding, rounding, slope=(tau,)
    )


def _reference_profile(t: Any, xp: Any, a: float, logarithmic: bool) -> Any:
    r""":math:`x^a` (or :math:`x^a \ln x`), x = 2 - 2t, for autograd: the one-sided derivative at t = +-1 (a clip
    that keeps the gradient), and at t = 1 the gradient 0 where the derivative is 0 (a > 1) or infinite (a < 1,
    :math:`x \ln x`): the finite part, as the table route's, never inf or NaN."""
    from ._base import clip_through

    x = clip_through(2.0 - 2.0 * t, xp, 0.0, 4.0)
    if a == 1.0 and not logarithmic:
        return x  # slope -2 at t = 1 too
    positive = x > 0.0
    safe = xp.where(positive, x, xp.ones_like(x))  # no inf * 0 in the gradient at x = 0
    value = safe**a
    if logarithmic:
        value = value * xp.log(safe)
    return xp.where(positive, value, xp.zeros_like(x))


def _reference_derivative(t: Any, xp: Any, a: float, logarithmic: bool) -> Any:
    r"""The derivative in t of :func:`_reference_profile`; at t = 1: 0 (a > 1), -2 (x, a = 1), -inf (a < 1) or
    +inf (:math:`x \ln x`, a <= 1)."""
    from ._base import clip_through

    x = clip_through(2.0 - 2.0 * t, xp, 0.0, 4.0)
    if not logarithmic and a >= 1.0:
        return -2.0 * a * x ** (a - 1.0)
    positive = x > 0.0
    safe = xp.where(positive, x, xp.ones_like(x))  # the limit at x = 0 without numpy's divide-by-zero warning
    power = safe ** (a - 1.0)
    if not logarithmic:
        return xp.where(positive, -2.0 * a * power, xp.full_like(x, -math.inf))
    inside = -2.0 * (a * power * xp.log(safe) + power)
    return xp.where(positive, inside, xp.full_like(x, 0.0 if a > 1.0 else math.inf))


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
    :math:`2 - 2t = 4u^2`; the extended plan in double-double."""
    if plan.extended is not None:
        return _extended_profile_u(plan.extended, u, q)
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


def _slope_plan(plan: _Plan, q: int) -> tuple[_Plan, float] | None:
    r"""``(plan', factor)`` with :math:`F'(t) = \text{factor} \cdot F'_{plan'}(t)` for an extended plan (in the units
    of each): as :math:`\frac{d}{dt} P_{l,q} = \frac{l(l+q-2)}{q-1} P_{l-1,q+2}`,
    :math:`N(q,l) \frac{l(l+q-2)}{q-1} = q N(q+2,l-1)` and :math:`l(l+q-2) = m(m+q) + q - 1` (m = l - 1), the
    derivative of the Matérn profile (nu > 1, c) on :math:`S^{q-1}` is q times the Matérn profile (nu - 1,
    c + q - 1) on :math:`S^{q+1}` (the same exponent s), and the heat kernel's is :math:`q e^{-\tau(q-1)}` times
    the heat kernel on :math:`S^{q+1}`: summed by its own extended plan, to its own bound. None where the plan is
    not extended or the derivative is unbounded (nu <= 1)."""
    ext = plan.extended
    if ext is None or ext.slope is None:
        return None
    if len(ext.slope) == 1:
        (tau,) = ext.slope
        shifted = _heat_plan(tau, q + 2)
        log_factor = math.log(q) - tau * (q - 1) + shifted.log_scale - plan.log_scale
    else:
        shifted = _matern_plan(*ext.slope, q + 2)
        log_factor = math.log(q) + shifted.log_scale - plan.log_scale
    return shifted, math.exp(log_factor)


def _build_derivative_table(plan: _Plan, q: int) -> ChebyshevTable:
    shifted = _slope_plan(plan, q)
    if shifted is not None:
        slope, factor = shifted
        return tabulate(
            lambda u: factor * _plan_profile_u(slope, u, q + 2),
            scale=factor * slope.total,
            tol=_TABLE_TOL,
            degree=_TABLE_DEGREE,
            noise=factor * slope.rounding,
        )
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
    # the truncation's ripples (degree L) are not resolved: the tolerance is the truncation plus a quarter of the
    # rounding bound
    tol = max(_TABLE_TOL, (plan.error - 0.75 * plan.rounding) / plan.total)
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
    if plan.extended is not None:
        return _extended_profile(plan, t, xp, q)
    if array_api_compat.is_jax_array(t):  # a scan: jax.jit compiles it in a time independent of the head's length
        out = jax_legendre_series(plan.head, t, q)
    else:
        out = legendre_series(plan.head, t, q=q, validate=False)
    for a, w, logarithmic in plan.refs:
        out = out + w * _reference_profile(t, xp, a, logarithmic)
    return out


def _plan_derivative(plan: _Plan, t: Any, xp: Any, q: int) -> Any:
    shifted = _slope_plan(plan, q)
    if shifted is not None:  # extended plans (nu > 1, the heat kernel): the profile one dimension up
        slope, factor = shifted
        if isinstance(t, np.ndarray):
            return factor * _plan_profile(slope, t, np, q + 2)
        # with a gradient in t: these values, the float64 plan's second derivative (as the profile's)
        double = plan._replace(extended=None)
        return tabulated(
            t, lambda s: factor * _plan_profile(slope, s, xp, q + 2), None, lambda s: _plan_derivative(double, s, xp, q)
        )
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
    :mod:`dotkernels.kernels.matern`): no truncation at 65536 terms, at most 16384 terms summed in float64 (65536 in the
    extended-precision plans of small lengthscales and large q) (the "plan", chosen
    once per (nu, lengthscale, q) and cached). The direct route costs O(L) per point for a head of L terms: a 1000 x
    1000 Gram matrix took 4 to 47 s at q = 3 and 10 in benchmarks/README.md. Calls with at least 32768 points
    (:meth:`~DotProductKernel.gram` of at least 182 points, large :meth:`~DotProductKernel.profile` calls) read
    instead a piecewise Chebyshev table of the plan's profile in :math:`u = \sqrt{(1-t)/2}` (degree 20 per interval,
    intervals graded towards t = 1), built once per plan from the direct route (cached) and evaluated in O(1) per
    point, when the head has more than 64 terms: there the same matrix took 0.05 to 0.16 s with numpy, plans and
    tables at most 0.05 and 0.22 s to build. The rule depends only on the call's size and the plan, never on what is
    cached. The table route serves numpy, torch (any device) and jax arrays, also with a gradient in t (torch
    tensors that require grad, e.g. the points of ``gram(X)`` with ``X.requires_grad``; jax arrays under
    ``jax.grad``). The gradient in t is then read from a table of :math:`\varphi'` for nu > 1 and the heat kernel,
    where :math:`\varphi'` is bounded (its table's bound, below 1e-9 of :math:`\max|\varphi'|` in the cases
    tested, holds against the direct route). At small lengthscales (below about 0.05, where the profile is summed
    in extended precision) the derivative of nu > 1 and of the heat kernel, and the gradient in t, is the extended
    sum of the profile one dimension up (:math:`\varphi'` on :math:`S^{q-1}` is q times the Matérn profile of
    smoothness nu - 1 and :math:`c + q - 1`, or the heat kernel, on :math:`S^{q+1}`): within 1e-12 of
    :math:`\max|\varphi'|` (tested at lengthscale 0.01 against Poisson summation, q = 2); for nu <= 1 it comes from
    the float64 plan: within 1e-7 of the largest :math:`|\varphi'|` at angles from 1e-3 lengthscales on (measured
    7.6e-8 at nu = 1/2, lengthscale 0.01, q = 2). For nu <= 1, where :math:`\varphi'` is unbounded at t = 1, it is read
    from a table of its bounded part (the head's derivative and the references' of exponent > 1, built on the first
    gradient) plus the unbounded references' derivatives in closed form, O(1) per point as well; at t = 1 exactly
    the gradient is then the bounded part, the head's derivative :math:`\sum_l e'_l` (the unbounded derivatives,
    infinite for nu < 1, logarithmic for nu = 1, counted 0), finite as torch autograd of the direct route gives,
    so that a zero upstream gradient stays 0.
    Second derivatives (``create_graph=True``, nested ``jax.grad``) are those of the direct route. With a tensor
    lengthscale the shifted plan (the derivative in the lengthscale, below) is tabulated too. Large calls of
    :meth:`~DotProductKernel.derivative` read the table of :math:`\varphi'` in the same way for nu > 1 and the
    heat kernel; for nu <= 1 :math:`\varphi'` is summed directly. Under ``jax.jit`` the lengthscale must be a
    Python float (e.g. a static argument): the plan is built on the host from its value, and a jax-array
    lengthscale raises TypeError there (``jax.grad`` in it works outside ``jax.jit``).
    :meth:`~DotProductKernel.gram` of one set of points puts :math:`\varphi(1)` exactly on its diagonal (exactly 1
    when normalised).

    Accuracy: the spectrum is the closed form above (each coefficient to 1e-13 relative plus the rounding of the
    logarithms of :math:`\mu_l` and :math:`N(q, l)`, and :math:`Z` to the profile's bound). The profile's error is
    bounded, for each (nu, lengthscale, q), by the tail beyond the head (computed) plus the rounding of the
    cancellation between the head and the tail's closed forms (in float64, or, where that misses 1e-13 of
    :math:`\varphi(1)`, at small lengthscales, in double-double and float64 arithmetic: see
    :mod:`dotkernels.kernels.matern`), plus, where the table can be used, the table's interpolation bound relative
    to the direct route (twice the largest deviation at 60 check points per interval, plus the direct route's
    rounding noise and the float64 rounding of the evaluation); :meth:`profile_error` returns that sum relative to
    :math:`\varphi(1)`, a bound for both routes and every array library (jax arrays traced by ``jax.jit``,
    ``jax.grad`` or ``jax.vmap`` included: the extended sums run on the host through ``jax.pure_callback``), tested
    on grids of :math:`10^5` points up to t = -1 and t = 1. The
    bound is at most 1e-12 (measured 4e-15 to 7e-13) for nu = 1/2, 1, 3/2, 2, 5/2, 7/2 and the heat kernel,
    lengthscales 0.01 to 3 and q = 2, 3, 5, 10, 100, 1000; it grows below lengthscale 0.01 (1.6e-10 at nu = 3/2,
    lengthscale 0.001, q = 3), and a :class:`SpectrumAccuracyWarning` is raised beyond 1e-10. The errors measured
    against mpmath (Poisson summation on the circle, the same raised to q = 10 by derivatives in t, the
    Mehler–Dirichlet integral on :math:`S^2`, heat-kernel subordination at q = 5 to 1000) are below the bound
    (tested at lengthscales 0.01 to 0.05). The extended plans cost more to build at the smallest lengthscales
    (up to seconds at lengthscale 0.01 and q = 100, where heads have 32768 to 65536 terms). Their direct route costs
    about :math:`72 M + 5 L` array operations per block of 4096
    points (M of the order of :math:`\sqrt c`).

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
        self.has_corner = nu <= 1.0  # phi'(1) is infinite up to nu = 1 (a (1 - t) log(1 - t) term at nu = 1)

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
        # the hyperparameters read now: a backward pass after the lengthscale changed differentiates this profile
        c, nu = (0.5 * self.lengthscale**2 if math.isinf(self.nu) else self._c()), self.nu
        if bounded:
            if math.isinf(nu):
                derivative_table = partial(_heat_derivative_table, c, q, bool(shift))
            else:
                derivative_table = partial(_matern_derivative_table, c, nu + shift, q)

            def slope(s):  # built on the first gradient asked for
                return derivative_table().evaluate(s, xp)

        else:
            # nu <= 1: a table of the derivative of the head and of the references of exponent a > 1 (bounded),
            # plus the derivatives of the others in closed form, which are infinite (a < 1) or logarithmic (a = 1) at
            # t = 1: there they count 0, as torch autograd of the direct route gives (finite, so that a zero
            # gradient there stays 0)
            singular = [ref for ref in plan.refs if ref[0] <= 1.0]

            def slope(s):
                out = matern_bounded_derivative_table(c, nu, q).evaluate(s, xp)
                one = s >= 1.0
                zero = xp.zeros_like(s)
                inside = xp.where(one, zero, s)
                for a, w, logarithmic in singular:
                    out = out + xp.where(one, zero, w * _reference_derivative(inside, xp, a, logarithmic))
                return out

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
        value = value / xp.sum(coef) if self.normalize else value * math.exp(plan.log_scale)
        if plan.extended is not None and not derivative:
            # the value of the long-double plan, the gradient of these float64 sums (a constant correction)
            value = _corrected(value, t, plan, q, self.normalize)
        return value

    def _profile(self, t, xp, q):
        return self._evaluate(t, xp, q, derivative=False)

    def _derivative(self, t, xp, q):
        return self._evaluate(t, xp, q, derivative=True)

    def profile_error(self, *, q: int) -> float:
        r"""Bound on the absolute error of :meth:`~DotProductKernel.profile` on [-1, 1], relative to :math:`\varphi(1)`.

        The tail of the series beyond the summed head (computed exactly to degree 65536, by its asymptotics beyond)
        plus a bound on the rounding of the summation, for this lengthscale and dimension (0-ish for nu = inf,
        whose series converges faster than geometrically; where the float64 sum's bound misses 1e-13 of
        :math:`\varphi(1)`, at small lengthscales, the sum is in double-double and long double arithmetic, see
        :mod:`dotkernels.kernels.matern`), plus, where large calls read the tabulated profile
        (heads longer than 64 terms), the table's interpolation bound (the table is built here if needed, once).
        A bound for every call of float64 inputs, whichever route and array library it takes (float32 inputs are
        summed in float32, with errors of float32's order: 3.5e-6 of :math:`\varphi(1)` measured at nu = 0.7,
        lengthscale 1, q = 3).

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
