r"""Normalised Gegenbauer polynomials ("Legendre polynomials in dimension q") and their series.

Notation: the sphere :math:`S^{q-1} \subset \mathbb{R}^q`, :math:`q \ge 2`, :math:`\lambda = (q-2)/2`.

.. math::

    P_{l,q}(t) = C_l^{\lambda}(t) / C_l^{\lambda}(1), \qquad P_{l,q}(1) = 1, \qquad |P_{l,q}| \le 1 \text{ on } [-1, 1].

q = 2 gives the Chebyshev polynomials :math:`T_l`, q = 3 the Legendre polynomials, and :math:`P_{l,q}(t) \to t^l`
as q grows. Every evaluation uses the normalised three-term recurrence

.. math::

    P_{k+1,q}(t) = \alpha_k\, t\, P_{k,q}(t) - \beta_k\, P_{k-1,q}(t), \qquad
    \alpha_k = \frac{2k+q-2}{k+q-2}, \quad \beta_k = \frac{k}{k+q-2} \quad (\alpha_0 = 1,\ \beta_0 = 0),

whose coefficients (:func:`recurrence_coefficients`, the one implementation used everywhere) stay in [0, 2] for
every q, so nothing overflows even at q = 65536 (unlike normalising scipy's ``eval_gegenbauer``, which is ``inf``
there). Since :math:`\alpha_k = 1 + \beta_k`, single polynomials are evaluated as
:math:`P_{k+1} = tP_k + \beta_k (tP_k - P_{k-1})`, which is exact at :math:`t = \pm 1` and loses fewer digits
elsewhere. Evaluation uses only ``+`` and ``*`` and therefore runs on any array-API array (numpy, torch, jax,
array-api-strict, ...), preserving its type, dtype and device.

Accuracy statements below use ``eps``, the machine epsilon of the dtype of ``t`` (2.2e-16 in float64); they are
checked against mpmath at high precision in the test suite.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Any

import array_api_compat
import numpy as np
from numpy.typing import ArrayLike

from ._array_api import is_numpy, to_numpy
from ._validate import _concrete_bool, check_coefficients, check_degree, check_dimension, check_inner_products
from .special import stirling_correction

__all__ = [
    "derivative_coefficients",
    "harmonic_dimension",
    "legendre",
    "legendre_all",
    "legendre_series",
    "legendre_series_derivative",
    "legendre_to_monomial",
    "log_harmonic_dimension",
    "monomial_to_legendre",
    "recurrence_coefficients",
]


# ---------------------------------------------------------------------------------------------------------------
# validation


def _scalar(x: Any, xp: Any) -> Any:
    """A 0-d numpy result as a NumPy scalar (other backends keep their 0-d arrays)."""
    if is_numpy(xp) and getattr(x, "ndim", 1) == 0:
        return x[()]
    return x


# ---------------------------------------------------------------------------------------------------------------
# the recurrence


def _recurrence_integers(degree: int, q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer numerators and denominator of (alpha_k, beta_k), k = 0..degree: (2k+q-2, k) / (k+q-2)."""
    if 2 * degree + q >= 2**62:
        raise ValueError(f"degree and q too large for the recurrence (2 degree + q must be < 2**62), got {degree}, {q}")
    k = np.arange(degree + 1, dtype=np.int64)
    denominator = k + (q - 2)
    alpha_numerator = denominator + k
    beta_numerator = k.copy()
    denominator[0], alpha_numerator[0], beta_numerator[0] = 1, 1, 0  # P_1 = t (also for q = 2)
    return alpha_numerator, beta_numerator, denominator


@lru_cache(maxsize=128)
def _recurrence_float(degree: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    alpha_numerator, beta_numerator, denominator = _recurrence_integers(degree, q)
    # integers below 2**53 convert exactly, so each coefficient is the correctly rounded quotient
    alpha = alpha_numerator / denominator
    beta = beta_numerator / denominator
    alpha.setflags(write=False)
    beta.setflags(write=False)
    return alpha, beta


def recurrence_coefficients(degree: int, *, q: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Coefficients :math:`\alpha_k, \beta_k`, k = 0..degree, of :math:`P_{k+1,q} = \alpha_k t P_{k,q} - \beta_k
    P_{k-1,q}`.

    .. math::

        \alpha_k = \frac{2k+q-2}{k+q-2}, \qquad \beta_k = \frac{k}{k+q-2} \quad (k \ge 1), \qquad
        \alpha_0 = 1,\ \beta_0 = 0,

    so that :math:`\alpha_k = 1 + \beta_k`, :math:`0 \le \beta_k \le 1 \le \alpha_k \le 2`. This is the one
    implementation of the recurrence's coefficients: every evaluation of :math:`P_{l,q}` and of its series
    (Clenshaw's algorithm needs :math:`\alpha_0..\alpha_{L-1}` and :math:`\beta_1..\beta_{L}` for degree L) uses it.

    Parameters
    ----------
    degree : int
        Largest index k, >= 0 (the coefficients reach :math:`P_{degree+1,q}`).
    q : int
        Dimension, >= 2.

    Returns
    -------
    alpha, beta : ndarray
        Read-only float64 arrays of length ``degree + 1``.

    See Also
    --------
    legendre : the polynomials this recurrence evaluates.
    legendre_series : Clenshaw sums built on the same coefficients.

    Accuracy
    --------
    Each coefficient is the correctly rounded quotient of two integers (error <= eps/2 relative) for
    ``degree + q < 2**53``.

    References
    ----------
    .. [1] NIST Digital Library of Mathematical Functions, sections 18.3 and 18.9 (Gegenbauer polynomials and
       their recurrence), https://dlmf.nist.gov/18.

    Examples
    --------
    >>> alpha, beta = recurrence_coefficients(3, q=3)  # Legendre: (2k+1)/(k+1), k/(k+1)
    >>> alpha.tolist(), beta.tolist()
    ([1.0, 1.5, 1.6666666666666667, 1.75], [0.0, 0.5, 0.6666666666666666, 0.75])
    """
    return _recurrence_float(check_degree(degree), check_dimension(q))


def _recurrence_exact(degree: int, q: int) -> tuple[list[Fraction], list[Fraction]]:
    alpha_numerator, beta_numerator, denominator = _recurrence_integers(degree, q)
    alpha = [Fraction(int(a), int(d)) for a, d in zip(alpha_numerator, denominator)]
    beta = [Fraction(int(b), int(d)) for b, d in zip(beta_numerator, denominator)]
    return alpha, beta


# ---------------------------------------------------------------------------------------------------------------
# harmonic dimensions


def harmonic_dimension(degree: int, *, q: int) -> int:
    r"""Dimension :math:`N(q, l)` of the space of spherical harmonics of degree l on :math:`S^{q-1}`, exactly.

    .. math::

        N(q, 0) = 1, \qquad N(q, l) = \frac{2l + q - 2}{l} \binom{l + q - 3}{l - 1}.

    It is also the multiplicity of the Mercer eigenvalue :math:`a_l / N(q, l)` of a dot-product kernel, and it is
    astronomically large at large q (N(64, 12) ~ 1e13): the result is an exact Python int.

    Parameters
    ----------
    degree : int
        Degree l >= 0.
    q : int
        Dimension, >= 2.

    Returns
    -------
    int
        :math:`N(q, l)`, an exact Python integer.

    See Also
    --------
    log_harmonic_dimension : its logarithm, vectorised over degrees.

    Accuracy
    --------
    Exact (integer arithmetic), for every l >= 0 and q >= 2.

    References
    ----------
    .. [1] K. Atkinson and W. Han, "Spherical Harmonics and Approximations on the Unit Sphere: An Introduction",
       Lecture Notes in Mathematics 2044, Springer 2012, section 2.1.

    Examples
    --------
    >>> harmonic_dimension(4, q=3), harmonic_dimension(7, q=2), harmonic_dimension(2, q=10)
    (9, 2, 54)
    """
    l = check_degree(degree)
    q = check_dimension(q)
    if l == 0:
        return 1
    return (2 * l + q - 2) * math.comb(l + q - 3, l - 1) // l


# below this many factors log C(k + m, k) is summed exactly; above, the symmetric Stirling form is as accurate
_LOG_BINOMIAL_TERMS = 32


def _log_binomial(k: np.ndarray, m: np.ndarray) -> np.ndarray:
    r"""ln C(k + m, k) for integer arrays k, m >= 0, to a few ulp, without cancellation.

    Small :math:`s = \min(k, m)`: :math:`\sum_{i=1}^{s} \operatorname{log1p}(b/i)` (b = max(k, m)), all terms
    positive, summed with Neumaier compensation. Otherwise the Stirling series of the three log-gammas, grouped as
    :math:`k\operatorname{log1p}(m/k) + m\operatorname{log1p}(k/m) + \frac12(\operatorname{log1p}(k/m) - \ln k -
    \ln 2\pi) + \text{corrections}`: two positive leading terms and nothing that cancels.
    """
    small = np.minimum(k, m).astype(np.float64)
    big = np.maximum(k, m).astype(np.float64)
    out = np.zeros(small.shape)
    direct = small < _LOG_BINOMIAL_TERMS
    if np.any(direct):
        s, b = small[direct], big[direct]
        total = np.zeros_like(s)
        compensation = np.zeros_like(s)
        for i in range(1, _LOG_BINOMIAL_TERMS):
            term = np.where(i <= s, np.log1p(b / i), 0.0)
            new = total + term
            compensation += np.where(np.abs(total) >= term, (total - new) + term, (term - new) + total)
            total = new
        out[direct] = total + compensation
    if np.any(~direct):
        kk, mm = k[~direct].astype(np.float64), m[~direct].astype(np.float64)
        lead = kk * np.log1p(mm / kk) + mm * np.log1p(kk / mm)
        middle = 0.5 * (np.log1p(kk / mm) - np.log(kk) - math.log(2.0 * math.pi))
        corrections = stirling_correction(kk + mm) - stirling_correction(kk) - stirling_correction(mm)
        out[~direct] = lead + (middle + corrections)
    return out


def log_harmonic_dimension(degree: int | ArrayLike, *, q: int) -> float | np.ndarray:
    r"""Natural logarithm of :math:`N(q, l)`, vectorised over integer degrees.

    .. math::

        \ln N(q, l) = \operatorname{log1p}\Big(\frac{l+q-2}{l}\Big) + \ln\binom{l+q-3}{l-1} \quad (l \ge 1),

    both terms non-negative. The binomial is the exact sum of :math:`\min(l-1, q-2)` positive ``log1p`` terms
    when that is below 32 (compensated summation), and otherwise the Stirling series of the three log-gammas
    grouped into positive leading terms, so that no digits cancel at any size (the usual
    ``gammaln(a) - gammaln(b) - gammaln(c)`` loses :math:`\sim \epsilon \ln\Gamma(a)`). O(1) per degree.

    Parameters
    ----------
    degree : int or array_like of int
        Degrees l >= 0.
    q : int
        Dimension, >= 2.

    Returns
    -------
    float or ndarray
        A NumPy float64 scalar for a scalar degree, else a float64 array of the degrees' shape.

    See Also
    --------
    harmonic_dimension : the exact integer.

    Accuracy
    --------
    Relative error of :math:`\ln N` at most 4 eps (eps = 2.2e-16), tested against mpmath for q in [2, 65536]
    and l in [0, 10^5] (and spot checks to l, q ~ 10^9); ``log_harmonic_dimension(0) == 0`` and
    ``log_harmonic_dimension(1) == ln q`` to rounding. As for any float64 logarithm, this bounds the relative
    error of :math:`N = e^{\ln N}` by about :math:`4\epsilon \ln N` (1e-12 when :math:`\ln N \sim 10^3`); use
    :func:`harmonic_dimension` for the exact integer.

    Examples
    --------
    >>> import math
    >>> math.isclose(math.exp(log_harmonic_dimension(12, q=64)), harmonic_dimension(12, q=64), rel_tol=1e-14)
    True
    """
    q = check_dimension(q)
    scalar = np.ndim(degree) == 0
    if scalar:
        degrees = np.asarray([check_degree(degree)], dtype=np.int64)
    else:
        raw = np.asarray(degree)
        if raw.size and (
            raw.dtype == bool
            or not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating))
            or not np.all(np.isfinite(raw))
            or not np.all(np.equal(np.mod(raw, 1), 0))
        ):
            raise TypeError("degree must contain non-negative integer degrees")
        if raw.size and np.any(raw < 0):
            raise ValueError("degree must contain non-negative integer degrees")
        degrees = raw.astype(np.int64)
    out = np.zeros(degrees.shape, dtype=np.float64)
    positive = degrees >= 1
    if np.any(positive):
        l = degrees[positive]
        lf = l.astype(np.float64)
        head = np.log1p((lf + (q - 2)) / lf)
        out[positive] = head + _log_binomial(l - 1, np.full_like(l, q - 2))
    return np.float64(out[0]) if scalar else out


# ---------------------------------------------------------------------------------------------------------------
# evaluation


def legendre(degree: int, t: Any, *, q: int, validate: bool = True) -> Any:
    r"""Normalised Gegenbauer polynomial :math:`P_{l,q}(t)` with :math:`P_{l,q}(1) = 1`.

    Parameters
    ----------
    degree : int
        Degree l >= 0.
    t : array_like
        Points in [-1, 1]; any array-API array (the result has its type, dtype and device) or numbers.
    q : int
        Ambient dimension of the sphere :math:`S^{q-1}`, >= 2 (any size: 65536 works).
    validate : bool
        Check that ``t`` is finite and within [-1, 1] up to rounding (one reduction; skip it in hot loops).

    Returns
    -------
    array
        :math:`P_{l,q}(t)` in ``t``'s dtype (a NumPy scalar for a scalar ``t``). q = 3 equals
        :func:`scipy.special.eval_legendre`, q = 2 :func:`scipy.special.eval_chebyt`.

    See Also
    --------
    legendre_all : every degree up to ``degree`` at once.
    legendre_series : a series of them, by Clenshaw's algorithm.

    Accuracy
    --------
    Absolute error at most :math:`\epsilon\,(4(l+1) + 2\,l(l+q-2)/(q-1))`, the second term being the condition
    of the problem near :math:`t = \pm 1` (:math:`P'_{l,q}(1) = l(l+q-2)/(q-1)`); exact at :math:`t = \pm 1`.
    Domain: every l >= 0, q >= 2, t in [-1, 1]. Cost O(l) per point.

    References
    ----------
    .. [1] NIST Digital Library of Mathematical Functions, sections 18.3 and 18.9 (Gegenbauer polynomials and
       their recurrence), https://dlmf.nist.gov/18.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([-1.0, 0.3, 1.0])
    >>> np.allclose(legendre(3, t, q=2), np.cos(3 * np.arccos(t)))  # Chebyshev T_3
    True
    >>> np.allclose(legendre(2, t, q=3), (3 * t**2 - 1) / 2)  # Legendre P_2
    True
    """
    l = check_degree(degree)
    q = check_dimension(q)
    t, xp = check_inner_products(t, validate=validate)
    if l == 0:
        return _scalar(xp.ones_like(t), xp)
    _, beta = _recurrence_float(l, q)
    previous, current = xp.ones_like(t), t
    for b in beta[1:l].tolist():
        tp = t * current
        previous, current = current, tp + b * (tp - previous)
    return _scalar(current, xp)


def legendre_all(degree: int, t: Any, *, q: int, validate: bool = True) -> Any:
    r""":math:`P_{0,q}(t), \dots, P_{L,q}(t)` stacked along a new leading axis: shape ``(degree + 1,) + t.shape``.

    Parameters
    ----------
    degree : int
        The largest degree L >= 0.
    t : array_like
        Points in [-1, 1]; any array-API array (the result has its type, dtype and device) or numbers.
    q : int
        Dimension, >= 2.
    validate : bool
        Check that ``t`` is finite and within [-1, 1] up to rounding.

    Returns
    -------
    array
        ``(degree + 1,) + t.shape`` values, row l being :math:`P_{l,q}(t)`; memory ``degree + 1`` times t's.

    See Also
    --------
    legendre : one degree.
    legendre_series : their weighted sum without storing every degree.

    Accuracy
    --------
    Row l as :func:`legendre` (the same recurrence, bitwise identical values).

    Examples
    --------
    >>> import numpy as np
    >>> legendre_all(3, np.array([0.5]), q=3).ravel()
    array([ 1.    ,  0.5   , -0.125 , -0.4375])
    """
    L = check_degree(degree)
    q = check_dimension(q)
    t, xp = check_inner_products(t, validate=validate)
    values = [xp.ones_like(t)]
    if L >= 1:
        values.append(t)
    _, beta = _recurrence_float(L, q)
    for k, b in enumerate(beta[1:L].tolist(), start=1):
        tp = t * values[k]
        values.append(tp + b * (tp - values[k - 1]))
    return xp.stack(values, axis=0)


def _clenshaw_numpy_inplace(coef: Sequence[float], alpha: list[float], beta: list[float], t: np.ndarray):
    """Clenshaw with three rotating buffers and in-place ufuncs (numpy has no autograd to protect): no temporaries
    per step, which matters for n x n Gram matrices."""
    b_next = np.zeros_like(t)
    b_next2 = np.zeros_like(t)
    work = np.empty_like(t)
    for k in range(len(coef) - 1, -1, -1):
        np.multiply(t, b_next, out=work)
        work *= alpha[k]
        b_next2 *= beta[k + 1]
        work -= b_next2
        if coef[k] != 0.0:
            work += coef[k]
        b_next2, b_next, work = b_next, work, b_next2
    return b_next


def _clenshaw_torch_inplace(coef: Sequence[float], q: int, t: Any) -> Any:
    """The same sum for a torch tensor that needs no graph: two buffers updated in place, three kernels a term."""
    L = len(coef) - 1
    alpha, beta = _recurrence_float(L, q)
    alpha, beta = alpha.tolist(), [*beta.tolist(), 0.0]
    b_next = t.new_zeros(t.shape)
    b_next2 = t.new_zeros(t.shape)
    for k in range(L, -1, -1):
        # b_k = c_k + alpha_k t b_{k+1} - beta_{k+1} b_{k+2}, written over b_{k+2}
        b_next2.mul_(-beta[k + 1])
        if coef[k] != 0.0:
            b_next2.add_(coef[k])
        b_next2.addcmul_(t, b_next, value=alpha[k])
        b_next, b_next2 = b_next2, b_next
    return b_next


#: elements of P_l(t) held at once when the gradient of a series with respect to its coefficients is formed
_PROJECTION_ELEMENTS = 1 << 22


def _torch_projections(grad: Any, t: Any, L: int, q: int) -> Any:
    """sum(grad * P_l(t)) for l = 0..L by the recurrence, without keeping all P_l: blocks of rows, one matmul each."""
    import torch

    g = grad.reshape(-1).to(t.dtype)
    x = t.reshape(-1)
    rows = max(1, min(L + 1, _PROJECTION_ELEMENTS // max(x.numel(), 1)))
    block = x.new_empty((rows, x.numel()))
    out = x.new_empty(L + 1)
    _, beta = _recurrence_float(max(L, 1), q)
    alpha = (1.0 + beta).tolist()
    beta = beta.tolist()
    previous, current = torch.ones_like(x), x.clone()  # P_{l-2}, P_{l-1}
    start = 0
    for l in range(L + 1):
        row = block[l - start]
        if l == 0:
            row.fill_(1.0)
        elif l == 1:
            row.copy_(x)
        else:  # P_l = alpha_{l-1} t P_{l-1} - beta_{l-1} P_{l-2}, written over P_{l-2}
            previous.mul_(-beta[l - 1]).addcmul_(x, current, value=alpha[l - 1])
            previous, current = current, previous
            row.copy_(current)
        if l - start + 1 == rows or l == L:
            out[start : l + 1] = block[: l - start + 1] @ g
            start = l + 1
    return out


_TORCH_FUNCTION: Any = None


def _torch_clenshaw_function() -> Any:
    """The autograd function of the torch Clenshaw sum, defined on first use (dotkernels never imports torch itself).

    Forward: the in-place sum, O(size of t) memory whatever the degree. Backward: d/dt by the derivative series in
    dimension q + 2 (itself this function, so that second derivatives in t exist), d/da_l = sum(grad * P_l(t)) by
    :func:`_torch_projections` (the stacked, differentiable form when a graph of the backward is asked for).
    """
    global _TORCH_FUNCTION
    if _TORCH_FUNCTION is not None:
        return _TORCH_FUNCTION
    import torch

    class ClenshawSum(torch.autograd.Function):
        @staticmethod
        def forward(coef, t, q):
            return _clenshaw_torch_inplace(coef.detach().cpu().tolist(), q, t.detach())

        @staticmethod
        def setup_context(ctx, inputs, output):
            coef, t, q = inputs
            ctx.q = q
            ctx.save_for_backward(coef, t)

        @staticmethod
        def backward(ctx, grad):
            coef, t = ctx.saved_tensors
            q, L = ctx.q, coef.shape[0] - 1
            grad_coef = grad_t = None
            if ctx.needs_input_grad[1]:
                if L == 0:
                    grad_t = torch.zeros_like(t)
                else:
                    l = torch.arange(1, L + 1, dtype=coef.dtype, device=coef.device)
                    derivative = coef[1:] * (l * (l + (q - 2)) / (q - 1))
                    grad_t = grad * ClenshawSum.apply(derivative, t, q + 2)
            if ctx.needs_input_grad[0]:
                if torch.is_grad_enabled():  # a graph of the gradient is asked for: the differentiable stacked form
                    P = legendre_all(L, t, q=q, validate=False)
                    grad_coef = (P * grad).reshape(L + 1, -1).sum(dim=1)
                else:
                    grad_coef = _torch_projections(grad, t.detach(), L, q)
                grad_coef = grad_coef.to(dtype=coef.dtype, device=coef.device)
            return grad_coef, grad_t, None

    _TORCH_FUNCTION = ClenshawSum
    return ClenshawSum


def _clenshaw(coef: Any, q: int, t: Any, xp: Any) -> Any:
    r"""sum_k coef[k] P_{k,q}(t): b_k = c_k + alpha_k t b_{k+1} - beta_{k+1} b_{k+2}, result b_0.

    ``coef`` is a list of host floats, or a 1-d array of ``t``'s library (then differentiable in it).
    """
    host = isinstance(coef, list)
    if array_api_compat.is_torch_array(t):
        import torch

        if host:
            if not (torch.is_grad_enabled() and t.requires_grad):
                return _clenshaw_torch_inplace(coef, q, t) if len(coef) > 1 else torch.full_like(t, coef[0])
            coef = torch.tensor(coef, dtype=torch.float64, device=t.device)
        return _torch_clenshaw_function().apply(coef, t, q)
    L = (len(coef) if host else int(coef.shape[0])) - 1
    if L == 0:
        return xp.full_like(t, coef[0]) if host else xp.zeros_like(t) + coef[0]
    alpha, beta = _recurrence_float(L, q)
    alpha, beta = alpha.tolist(), [*beta.tolist(), 0.0]  # beta_{L+1} multiplies b_{L+2} = 0
    if host and isinstance(t, np.ndarray):
        return _clenshaw_numpy_inplace(coef, alpha, beta, t)
    b_next = xp.zeros_like(t)  # b_{k+1}
    b_next2 = xp.zeros_like(t)  # b_{k+2}
    for k in range(L, -1, -1):
        b = coef[k] + alpha[k] * t * b_next - beta[k + 1] * b_next2
        b_next2, b_next = b_next, b
    return b_next


def _host_coefficients(coefficients: Any, name: str = "coefficients") -> np.ndarray:
    """``check_coefficients`` with a message naming the argument for arrays that cannot be copied to the host
    (a torch tensor that requires grad, a traced jax array)."""
    if getattr(coefficients, "requires_grad", False):
        raise TypeError(
            f"{name} is a torch tensor that requires grad: here the coefficients must be host numbers (detach them; "
            "legendre_series and legendre_series_derivative take tensor coefficients with t a tensor)"
        )
    try:
        return check_coefficients(coefficients, name)
    except RuntimeError as exc:
        raise TypeError(f"{name} must be host numbers here, got {type(coefficients).__name__}") from exc


def _series_coefficients(coefficients: Any, t: Any, xp: Any, name: str = "coefficients") -> Any:
    """Coefficients for :func:`_clenshaw`: host floats, or a 1-d array of ``t``'s library kept for autodiff.

    An array of another library than numpy is kept as it is when ``t`` belongs to the same library; a torch tensor
    that requires grad with ``t`` of another library is a TypeError naming the argument.
    """
    if isinstance(coefficients, (list, tuple, np.ndarray, np.generic, int, float)):
        return _host_coefficients(coefficients, name).tolist()
    try:
        cxp = array_api_compat.array_namespace(coefficients)
    except TypeError:
        return _host_coefficients(coefficients, name).tolist()
    if is_numpy(cxp):
        return _host_coefficients(coefficients, name).tolist()
    if is_numpy(xp) or cxp is not xp:
        if getattr(coefficients, "requires_grad", False):
            raise TypeError(
                f"{name} is a {type(coefficients).__module__.split('.')[0]} array that requires grad, but t is a "
                f"{type(t).__module__.split('.')[0]} array: pass t as an array of the same library (on the same "
                "device) for the gradient to flow, or detach the coefficients"
            )
        return _host_coefficients(to_numpy(coefficients), name).tolist()
    if coefficients.ndim != 1 or coefficients.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 1-d array a_0, ..., a_L, got shape {tuple(coefficients.shape)}")
    if not xp.isdtype(coefficients.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype, got {coefficients.dtype}")
    if _concrete_bool(xp.any(xp.logical_not(xp.isfinite(coefficients)))):
        raise ValueError(f"{name} must be finite")
    return coefficients


def legendre_series(coefficients: ArrayLike, t: Any, *, q: int, validate: bool = True) -> Any:
    r"""Evaluate :math:`\sum_{l=0}^{L} a_l P_{l,q}(t)` by Clenshaw's algorithm, O(L) per point.

    Parameters
    ----------
    coefficients : array_like of float
        :math:`a_0, \dots, a_L`: host numbers (a dot-product kernel's Gegenbauer spectrum), or a 1-d array of
        ``t``'s library (a torch tensor or jax array: the result is then differentiable in them too, e.g. for
        learning kernel hyperparameters).
    t : array_like
        Points in [-1, 1], any array-API array; the result keeps its type, dtype and device and is differentiable
        under torch and jax autodiff.
    q : int
        Dimension, >= 2.
    validate : bool
        Check ``t`` as :func:`legendre` does.

    Returns
    -------
    array
        :math:`\sum_l a_l P_{l,q}(t)` of ``t``'s shape, type, dtype and device (a NumPy scalar for a scalar t).

    See Also
    --------
    legendre_series_derivative : the derivative of the series.
    legendre_all : the individual polynomials.

    Notes
    -----
    Under torch the sum runs in place in two buffers (three kernels per term, no allocation per term) inside an
    autograd function that saves only t and the coefficients: memory O(size of t) whatever the degree, also when
    t or the coefficients require grad. Its backward pass is the derivative series in dimension q + 2 for t (itself
    differentiable: second derivatives exist) and :math:`\partial/\partial a_l = \sum \text{grad} \cdot
    P_{l,q}(t)` for the coefficients, formed by blocks of degrees.

    Accuracy
    --------
    Absolute error at most :math:`4 (L+1)^2 \epsilon \sum_l |a_l|` on [-1, 1] (typically :math:`\sim (L+1)
    \epsilon \sum_l |a_l|`). Domain: q >= 2, t in [-1, 1], finite coefficients.

    References
    ----------
    .. [1] C. W. Clenshaw, "A note on the summation of Chebyshev series", Mathematical Tables and Other Aids to
       Computation 9 (51), 1955, 118-120.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(-1, 1, 5)
    >>> np.allclose(legendre_series([0.0, 1.0, 40.0, 40.0], t, q=3),
    ...             t + 40 * (3 * t**2 - 1) / 2 + 40 * (5 * t**3 - 3 * t) / 2)
    True
    """
    q = check_dimension(q)
    t, xp = check_inner_products(t, validate=validate)
    coef = _series_coefficients(coefficients, t, xp)
    return _scalar(_clenshaw(coef, q, t, xp), xp)


def derivative_coefficients(coefficients: ArrayLike, *, q: int) -> np.ndarray:
    r"""Coefficients in dimension q + 2 of the derivative of :math:`\sum_l a_l P_{l,q}`.

    .. math::

        \frac{d}{dt} \sum_{l=0}^{L} a_l P_{l,q}(t) = \sum_{l=0}^{L-1} a'_l P_{l,q+2}(t), \qquad
        a'_l = a_{l+1}\, \frac{(l+1)(l+q-1)}{q-1},

    from :math:`\frac{d}{dt} C_l^{\lambda} = 2\lambda C_{l-1}^{\lambda+1}`.

    Parameters
    ----------
    coefficients : array_like of float
        :math:`a_0, \dots, a_L` (host numbers).
    q : int
        Dimension of the series, >= 2.

    Returns
    -------
    ndarray
        float64 :math:`a'_0, \dots, a'_{L-1}` (``[0.0]`` for a constant series).

    See Also
    --------
    legendre_series_derivative : evaluates the derivative with these coefficients.

    Accuracy
    --------
    Each coefficient to 2 eps relative.

    References
    ----------
    .. [1] NIST Digital Library of Mathematical Functions, equation 18.9.19 (the derivative of a Gegenbauer
       polynomial), https://dlmf.nist.gov/18.

    Examples
    --------
    >>> derivative_coefficients([0.0, 0.0, 1.0], q=3).tolist()  # P_2' = 3 t = 3 P_{1,5}
    [0.0, 3.0]
    """
    coef = _host_coefficients(coefficients).tolist()
    q = check_dimension(q)
    if len(coef) == 1:
        return np.zeros(1)
    l = np.arange(1, len(coef), dtype=np.float64)
    return np.asarray(coef[1:]) * (l * (l + (q - 2)) / (q - 1))


def legendre_series_derivative(coefficients: ArrayLike, t: Any, *, q: int, validate: bool = True) -> Any:
    r"""Evaluate :math:`\frac{d}{dt} \sum_l a_l P_{l,q}(t)` as a Clenshaw sum in dimension q + 2.

    Uses :func:`derivative_coefficients`, :math:`P'_{l,q}(t) = \frac{l(l+q-2)}{q-1} P_{l-1,q+2}(t)`, which is as
    stable as the series itself.

    Parameters
    ----------
    coefficients : array_like of float
        :math:`a_0, \dots, a_L`, host numbers or a 1-d array of ``t``'s library (as in :func:`legendre_series`).
    t : array_like
        Points in [-1, 1], any array-API array.
    q : int
        Dimension, >= 2.
    validate : bool
        Check ``t`` as :func:`legendre` does.

    Returns
    -------
    array
        The derivative at ``t``, of ``t``'s shape, type, dtype and device.

    See Also
    --------
    legendre_series : the series itself.
    derivative_coefficients : the coefficients in dimension q + 2.

    Accuracy
    --------
    As :func:`legendre_series` for the coefficients :math:`a'_l` of :func:`derivative_coefficients`: absolute
    error at most :math:`4 L^2 \epsilon \sum_l |a_l|\, l(l+q-2)/(q-1)`.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([-0.5, 0.25, 1.0])
    >>> np.allclose(legendre_series_derivative([0, 0, 1], t, q=3), 3 * t)
    True
    """
    q = check_dimension(q)
    t, xp = check_inner_products(t, validate=validate)
    coef = _series_coefficients(coefficients, t, xp)
    if isinstance(coef, list):
        derivative = derivative_coefficients(coef, q=q).tolist()
    elif coef.shape[0] == 1:
        derivative = [0.0]
    else:
        l = xp.arange(1, coef.shape[0], dtype=coef.dtype, device=array_api_compat.device(coef))
        derivative = coef[1:] * (l * (l + (q - 2)) / (q - 1))
    return _scalar(_clenshaw(derivative, q + 2, t, xp), xp)


# ---------------------------------------------------------------------------------------------------------------
# basis conversions


def _exact_number(x: Any, values: Any) -> Any:
    """Keep ints, Fractions and sympy objects exact; turn finite floats (any precision) into exact Fractions."""
    if isinstance(x, numbers.Rational):  # int, bool, numpy integer, Fraction, sympy Rational
        return int(x) if isinstance(x, (bool, np.integer)) else x
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(x):
            raise ValueError(f"coefficients must be finite, got {values!r}")
        return Fraction(float(x))
    if type(x).__module__.split(".")[0] == "sympy":
        return x
    raise TypeError(
        "coefficients must be a 1-d sequence of real numbers a_0, ..., a_L (ints, Fractions, floats or sympy "
        f"numbers), got {values!r}"
    )


def _basis_coefficients(coefficients: Any, exact: bool) -> list[Any]:
    """The coefficients of a change of basis: exact numbers (``exact``) or host floats, checked with messages
    naming the argument."""
    if not exact:
        return _host_coefficients(coefficients).tolist()
    if isinstance(coefficients, np.ndarray) and coefficients.dtype.kind in "biu":
        values = coefficients.tolist()  # integers beyond 2^53 stay exact
    elif isinstance(coefficients, (list, tuple)):
        values = list(coefficients)
    else:  # arrays of any library, scalars: the float checks and their messages
        values = _host_coefficients(coefficients).tolist()
    if not values:
        raise ValueError("coefficients must be a non-empty 1-d sequence a_0, ..., a_L")
    return [_exact_number(x, coefficients) for x in values]


def _legendre_monomial_table(L: int, q: int, exact: bool) -> list[list[Any]]:
    """Row l holds the monomial coefficients of P_{l,q} (length L + 1), via the recurrence."""
    zero, one = (Fraction(0), Fraction(1)) if exact else (0.0, 1.0)
    alpha, beta = _recurrence_exact(L, q) if exact else (c.tolist() for c in _recurrence_float(L, q))
    rows = [[one] + [zero] * L]
    if L >= 1:
        rows.append([zero, one] + [zero] * (L - 1))
    for k in range(1, L):
        new = [zero] * (L + 1)
        for j in range(L):
            new[j + 1] += alpha[k] * rows[k][j]
        for j in range(L + 1):
            new[j] -= beta[k] * rows[k - 1][j]
        rows.append(new)
    return rows


def legendre_to_monomial(coefficients: Sequence[Any], *, q: int, exact: bool = False) -> list[Any] | np.ndarray:
    r"""Monomial coefficients :math:`c_p` with :math:`\sum_l a_l P_{l,q}(t) = \sum_p c_p t^p`.

    Parameters
    ----------
    coefficients : sequence
        :math:`a_0, \dots, a_L`.
    q : int
        Dimension, >= 2.
    exact : bool
        If True, compute with exact rational arithmetic (``fractions.Fraction``; floats are converted exactly) and
        return a list of Fractions; otherwise a float64 array.

    Returns
    -------
    list of Fraction or ndarray
        :math:`c_0, \dots, c_L`.

    See Also
    --------
    monomial_to_legendre : the inverse change of basis.

    Accuracy
    --------
    ``exact=True``: exact. Otherwise the float64 change of basis, whose condition grows like :math:`2^L` (the
    monomial basis is badly conditioned): absolute error about :math:`2^L \epsilon \sum_l |a_l|`; use ``exact``
    beyond degree ~20.

    Examples
    --------
    >>> legendre_to_monomial([0, 0, 1], q=3, exact=True)  # P_2 = (3 t^2 - 1) / 2
    [Fraction(-1, 2), Fraction(0, 1), Fraction(3, 2)]
    """
    q = check_dimension(q)
    coef = _basis_coefficients(coefficients, exact)
    L = len(coef) - 1
    table = _legendre_monomial_table(L, q, exact)
    out = [sum(coef[l] * table[l][p] for l in range(L + 1)) for p in range(L + 1)]
    return out if exact else np.asarray(out, dtype=np.float64)


def monomial_to_legendre(coefficients: Sequence[Any], *, q: int, exact: bool = False) -> list[Any] | np.ndarray:
    r"""Gegenbauer coefficients :math:`a_l` with :math:`\sum_p c_p t^p = \sum_l a_l P_{l,q}(t)`.

    Solves the triangular system given by :func:`legendre_to_monomial` (exactly with ``exact=True``).

    Parameters
    ----------
    coefficients : sequence
        Monomial coefficients :math:`c_0, \dots, c_L`.
    q : int
        Dimension, >= 2.
    exact : bool
        If True, compute with exact rational arithmetic and return a list of Fractions; otherwise a float64
        array.

    Returns
    -------
    list of Fraction or ndarray
        :math:`a_0, \dots, a_L`.

    See Also
    --------
    legendre_to_monomial : the inverse change of basis.

    Accuracy
    --------
    ``exact=True``: exact. Otherwise absolute error about :math:`2^L \epsilon \sum_p |c_p|` (the inverse change
    of basis is as badly conditioned); use ``exact`` beyond degree ~20.

    Examples
    --------
    >>> monomial_to_legendre([0, 0, 1], q=3, exact=True)  # t^2 = 1/3 + 2/3 P_2
    [Fraction(1, 3), Fraction(0, 1), Fraction(2, 3)]
    """
    q = check_dimension(q)
    c = _basis_coefficients(coefficients, exact)
    L = len(c) - 1
    table = _legendre_monomial_table(L, q, exact)
    a = [Fraction(0) if exact else 0.0] * (L + 1)
    remainder = list(c)
    # back substitution: the leading monomial of P_l is t^l
    for l in range(L, -1, -1):
        a[l] = remainder[l] / table[l][l]
        for p in range(l + 1):
            remainder[p] -= a[l] * table[l][p]
    return a if exact else np.asarray(a, dtype=np.float64)
