r"""Sums, positive multiples and truncations of kernels: spectra combine linearly, profiles pointwise."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special

from .._validate import check_degree
from ..gegenbauer import derivative_coefficients, legendre_series
from ._base import DotProductKernel, Hyperparameter, log_abs_sign

__all__ = ["ScaledKernel", "SumKernel", "TruncatedKernel"]

_LOG_FLOAT_MAX = math.log(np.finfo(np.float64).max)


def _finite_fsum(values: list[float]) -> float | None:
    """The compensated sum of finite values, or None when a value or the sum is beyond float64."""
    if not all(math.isfinite(v) for v in values):
        return None
    try:
        return float(math.fsum(values))
    except OverflowError:
        return None


class SumKernel(DotProductKernel):
    r"""Sum of kernels :math:`\varphi = \sum_i \varphi_i`: spectra, profiles and :math:`\varphi(1)` add.

    Accuracy: each :math:`a_l` is the float64 sum of the terms' coefficients, accurate to the worst term's
    ``spectrum_rtol`` relative to :math:`\sum_i |a_l^{(i)}|` (cancellation between signed terms is absolute).
    :math:`\varphi(1)` is the compensated sum of the terms'; where it or a term is beyond float64,
    :meth:`~DotProductKernel.log_phi_at_one` adds the terms' logarithms in log space (a few ulps of the largest
    :math:`|\ln\varphi_i(1)|`, absolute) and :meth:`~DotProductKernel.phi_at_one` is ``inf`` with a warning.

    Parameters
    ----------
    kernels : sequence of DotProductKernel
        The terms (sums among them are flattened); usually written ``k1 + k2``.

    See Also
    --------
    ScaledKernel : positive multiples.
    ProductKernel : pointwise products.

    Examples
    --------
    >>> from dotkernels import GaussianKernel, MonomialKernel
    >>> k = GaussianKernel(gamma=1.0) + MonomialKernel(p=2)
    >>> k
    GaussianKernel(gamma=1.0) + MonomialKernel(p=2)
    """

    name = "sum"

    def __init__(self, kernels: Sequence[DotProductKernel]):
        flat: list[DotProductKernel] = []
        for k in kernels:
            if not isinstance(k, DotProductKernel):
                raise TypeError(f"kernels must be DotProductKernel instances, got {type(k).__name__}")
            flat.extend(k.kernels if isinstance(k, SumKernel) else [k])
        if not flat:
            raise ValueError("kernels must not be empty")
        self.kernels = tuple(flat)
        self.dimension_dependent = any(k.dimension_dependent for k in flat)
        self.has_corner = any(k.has_corner for k in flat)
        self.spectrum_rtol = max(k.spectrum_rtol for k in flat)
        degrees = [k.degree for k in flat]
        self.degree = None if any(d is None for d in degrees) else max(degrees)

    def _params(self):
        return tuple((type(k).__name__, k._params()) for k in self.kernels)

    def _named_params(self):
        return [("kernels", self.kernels)]

    def __repr__(self):
        return " + ".join(repr(k) for k in self.kernels)

    def _profile(self, t, xp, q):
        out = self.kernels[0]._profile(t, xp, q)
        for k in self.kernels[1:]:
            out = out + k._profile(t, xp, q)
        return out

    def _derivative(self, t, xp, q):
        out = self.kernels[0]._derivative(t, xp, q)
        for k in self.kernels[1:]:
            out = out + k._derivative(t, xp, q)
        return out

    def _phi_at_one(self, q):
        total = _finite_fsum([k._phi_at_one(q) for k in self.kernels])
        if total is not None:
            return total
        log_abs, sign = self._log_sum_of_terms(q)
        return sign * (math.exp(log_abs) if log_abs < _LOG_FLOAT_MAX else math.inf)

    def _log_phi_at_one(self, q):
        total = _finite_fsum([k._phi_at_one(q) for k in self.kernels])
        if total is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                return float(np.log(total))
        log_abs, sign = self._log_sum_of_terms(q)
        return log_abs if sign > 0 else math.nan  # nan: phi(1) < 0 (log_phi_at_one raises)

    def _log_sum_of_terms(self, q):
        """(ln|phi(1)|, sign) from the terms' ln phi_i(1), added in log space (phi(1) beyond float64)."""
        logs, signs = [], []
        for k in self.kernels:
            log = k._log_phi_at_one(q)
            if math.isnan(log):  # a negative term (a truncated or conditionally positive definite kernel)
                value = k._phi_at_one(q)
                log = math.log(-value) if value < 0 else math.nan
                signs.append(-1.0)
            else:
                signs.append(1.0)
            logs.append(log)
        log_abs, sign = special.logsumexp(logs, b=signs, return_sign=True)
        return float(log_abs), float(sign)

    def _uniform_mean_embedding(self, q):
        return float(math.fsum(k._uniform_mean_embedding(q) for k in self.kernels))

    def _log_spectrum(self, q, degree):
        parts = np.stack([k.spectrum(degree, q=q) for k in self.kernels])
        return log_abs_sign(np.array([math.fsum(col) for col in parts.T]))

    def _spectrum_error(self, q, degree):
        return sum(k.spectrum_error(degree, q=q) for k in self.kernels)

    def _positive_semidefinite(self, q):
        answers = [k._positive_semidefinite(q) for k in self.kernels]
        return True if all(a is True for a in answers) else None

    def _strictly_positive_definite(self, q):
        # a PSD kernel plus a strictly PD one is strictly PD
        if not all(k._positive_semidefinite(q) is True for k in self.kernels):
            return None
        answers = [k.is_strictly_positive_definite(q=q) for k in self.kernels]
        if any(a is True for a in answers):
            return True
        return False if all(a is False for a in answers) and self.degree is not None else None


class ScaledKernel(DotProductKernel):
    r"""Positive multiple :math:`c\,\varphi`, c > 0 (written ``c * kernel``): the output scale of a GP kernel.

    Parameters
    ----------
    c : float or 0-d array
        The factor, > 0. A torch (or jax) scalar is kept as it is (a learnable output scale): the profile and the
        Gram matrix are differentiable in it.
    kernel : DotProductKernel
        The kernel multiplied.

    See Also
    --------
    SumKernel : sums of kernels.

    Notes
    -----
    Accuracy: the kernel's spectrum and profile times c (one rounding more); :math:`\ln(c\,\varphi(1)) =
    \ln c + \ln\varphi(1)` to a few ulps of :math:`|\ln c| + |\ln\varphi(1)|`, absolute, also where
    :math:`\varphi(1)` or :math:`c\,\varphi(1)` is beyond float64.

    Examples
    --------
    >>> from dotkernels import SFRIKKernel
    >>> (2.0 * SFRIKKernel()).phi_at_one(q=3)
    162.0
    """

    name = "scaled"
    c = Hyperparameter(positive=True)

    def __init__(self, c: float, kernel: DotProductKernel):
        if not isinstance(kernel, DotProductKernel):
            raise TypeError(f"kernel must be a DotProductKernel, got {type(kernel).__name__}")
        self.c = c  # a float, or a torch/jax scalar (learnable): see Hyperparameter
        self.kernel = kernel
        self.dimension_dependent = kernel.dimension_dependent
        self.has_corner = kernel.has_corner
        self.degree = kernel.degree
        self.spectrum_rtol = kernel.spectrum_rtol

    def _params(self):
        return (self.c, type(self.kernel).__name__, self.kernel._params())

    def _named_params(self):
        return [("c", self.c), ("kernel", self.kernel)]

    def __repr__(self):
        inner = repr(self.kernel)
        return f"{self.c!r} * ({inner})" if isinstance(self.kernel, SumKernel) else f"{self.c!r} * {inner}"

    def _profile(self, t, xp, q):
        return self._hyper("c", t, xp) * self.kernel._profile(t, xp, q)

    def _derivative(self, t, xp, q):
        return self._hyper("c", t, xp) * self.kernel._derivative(t, xp, q)

    def _phi_at_one(self, q):
        value = self.kernel._phi_at_one(q)
        log = self._log_phi_at_one(q) if math.isinf(value) else math.nan
        if math.isnan(log):  # the product is formed in float64 (it overflows only where c phi(1) does)
            return self.c * value
        return math.exp(log) if log < _LOG_FLOAT_MAX else math.inf  # c phi(1) within range although phi(1) is not

    def _log_phi_at_one(self, q):
        return math.log(self.c) + self.kernel._log_phi_at_one(q)

    def _uniform_mean_embedding(self, q):
        return self.c * self.kernel._uniform_mean_embedding(q)

    def _log_spectrum(self, q, degree):
        log_abs, sign = self.kernel.log_spectrum(degree, q=q)
        return log_abs + math.log(self.c), sign

    def _spectrum_error(self, q, degree):
        return self.c * self.kernel.spectrum_error(degree, q=q)

    def _positive_semidefinite(self, q):
        return self.kernel._positive_semidefinite(q)

    def _strictly_positive_definite(self, q):
        return self.kernel.is_strictly_positive_definite(q=q)


class TruncatedKernel(DotProductKernel):
    r"""Truncation :math:`\sum_{l \le degree} a_l(q) P_{l,q}` of a kernel (dimension dependent).

    The profile is the finite series evaluated by Clenshaw's recurrence (:func:`~dotkernels.legendre_series`),
    accurate to about ``1e-15 * sum |a_l|`` absolutely; never strictly positive definite.

    Parameters
    ----------
    kernel : DotProductKernel
        The kernel truncated.
    degree : int
        Largest degree kept, >= 0.

    See Also
    --------
    DotProductKernel.truncation_error : the sup-norm error of the truncation.

    Examples
    --------
    >>> from dotkernels import ExponentialKernel, TruncatedKernel
    >>> TruncatedKernel(ExponentialKernel(kappa=1.0), 2).spectrum(3, q=10000).round(3).tolist()  # ~ 1/l!
    [1.0, 1.0, 0.5, 0.0]
    """

    name = "truncated"
    dimension_dependent = True

    def __init__(self, kernel: DotProductKernel, degree: int):
        if not isinstance(kernel, DotProductKernel):
            raise TypeError(f"kernel must be a DotProductKernel, got {type(kernel).__name__}")
        self.kernel = kernel
        self.degree = check_degree(degree)
        self.spectrum_rtol = kernel.spectrum_rtol

    def _params(self):
        return (type(self.kernel).__name__, self.kernel._params(), self.degree)

    def _named_params(self):
        return [("kernel", self.kernel), ("degree", self.degree)]

    def __repr__(self):
        return f"TruncatedKernel({self.kernel!r}, {self.degree})"

    def _coefficients(self, q):
        return self.kernel.spectrum(self.degree, q=q)

    def _profile(self, t, xp, q):
        return legendre_series(self._coefficients(q), t, q=q, validate=False)

    def _derivative(self, t, xp, q):
        return legendre_series(derivative_coefficients(self._coefficients(q), q=q), t, q=q + 2, validate=False)

    def _phi_at_one(self, q):
        return float(math.fsum(self._coefficients(q)))

    def _uniform_mean_embedding(self, q):
        return self.kernel._uniform_mean_embedding(q)

    def spectrum(self, degree: int, *, q: int) -> np.ndarray:
        r"""Gegenbauer coefficients: the inner kernel's :math:`a_l` up to the truncation degree, then 0.

        Parameters
        ----------
        degree : int
            Largest degree l, >= 0.
        q : int
            Dimension of :math:`\mathbb{R}^q` (the sphere :math:`S^{q-1}`), >= 2, keyword-only.

        Returns
        -------
        numpy.ndarray
            :math:`a_0, \dots, a_{degree}`.

        See Also
        --------
        DotProductKernel.log_spectrum : the same in log space.

        Examples
        --------
        >>> from dotkernels import SFRIKKernel
        >>> TruncatedKernel(SFRIKKernel(), 2).spectrum(3, q=3).tolist()
        [0.0, 1.0, 40.0, 0.0]
        """
        # the inner kernel's own coefficients (exact for finite series), not their round trip through log space
        self.log_spectrum(degree, q=q)
        a = np.zeros(degree + 1)
        m = min(degree, self.degree) + 1
        a[:m] = self.kernel.spectrum(m - 1, q=q)
        return a

    def _log_spectrum(self, q, degree):
        log_abs, sign = self.kernel.log_spectrum(min(degree, self.degree), q=q)
        pad = degree + 1 - log_abs.size
        return np.concatenate([log_abs, np.full(pad, -np.inf)]), np.concatenate([sign, np.zeros(pad)])

    def _spectrum_error(self, q, degree):
        err = np.zeros(degree + 1)
        m = min(degree, self.degree) + 1
        err[:m] = self.kernel.spectrum_error(m - 1, q=q)
        return err

    def _positive_semidefinite(self, q):
        return None if self.kernel._positive_semidefinite(q) is not True else True
