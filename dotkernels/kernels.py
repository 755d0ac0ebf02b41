r"""Dot-product kernels on the sphere and their Gegenbauer spectra.

A kernel :math:`k(x, y) = \varphi(\langle x, y\rangle)` on :math:`S^{q-1}` expands as

.. math::

    \varphi(t) = \sum_{l \ge 0} a_l P_{l,q}(t), \qquad a_l = N(q, l)\, E_{\nu_q}[\varphi(t) P_{l,q}(t)]
    \quad\text{(Funk–Hecke)},

with Mercer eigenvalues :math:`a_l / N(q, l)` of multiplicity :math:`N(q, l)`. The kernel is positive definite on
:math:`S^{q-1}` iff every :math:`a_l \ge 0` (Schoenberg), the uniform distribution's mean embedding is the constant
:math:`a_0`, and :math:`\sum_l a_l = \varphi(1)`.

One kernel object serves every dimension: the dimension comes from the data (``gram``) or is passed explicitly
(``spectrum(q, L)``; ``profile(t, q)`` for the kernels whose profile depends on q, flagged by
``dimension_dependent``). Spectra are computed host-side in float64 and in log space, from closed forms where they
exist; profiles run on any array-API array (numpy, torch, cupy, jax, array-api-strict) with its dtype and device,
and are differentiable under torch autograd.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np
from scipy.special import gammaln, logsumexp

from ._array_api import array_namespace, as_array
from .gegenbauer import (
    _check_degree,
    _check_dimension,
    _check_t,
    _clenshaw,
    _derivative_coefficients,
    log_harmonic_dimension,
)
from .quadrature import projected_quadrature
from .special import log_gamma_ratio, log_iv, log_rising

__all__ = [
    "ArcCosineKernel",
    "BandLimitedKernel",
    "DistanceKernel",
    "DotProductKernel",
    "ExponentialKernel",
    "GaussianKernel",
    "GegenbauerKernel",
    "HeatKernel",
    "InverseMultiquadricKernel",
    "LegendreSeriesKernel",
    "MonomialKernel",
    "PoissonKernel",
    "PolynomialKernel",
    "ProfileKernel",
    "SFRIKKernel",
    "ScaledKernel",
    "SpectralKernel",
    "SpectrumAccuracyWarning",
    "SumKernel",
    "TruncatedKernel",
    "parse_kernel",
]


class SpectrumAccuracyWarning(RuntimeWarning):
    """A spectrum computed by quadrature could not reach the requested accuracy for some degrees."""


def _positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return value


def _positive_int(value: Any, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, float)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
        value = int(value)
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def _signed_exp(log_abs: np.ndarray, sign: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        out = sign * np.exp(log_abs)
    out[sign == 0] = 0.0
    return out


def _log_monomial_lambda(j: np.ndarray, l: np.ndarray, q: int) -> np.ndarray:
    r"""log E_nu[t^j P_{l,q}(t)] (= lambda_l of t^j) for l <= j, j - l even; -inf elsewhere.

    lambda_l(t^j) = j! Gamma(q/2) / (2^j ((j-l)/2)! Gamma((j+l+q)/2)).
    """
    j, l = np.broadcast_arrays(np.asarray(j, dtype=np.float64), np.asarray(l, dtype=np.float64))
    out = np.full(j.shape, -np.inf)
    ok = (l <= j) & (np.mod(j - l, 2) == 0)
    jj, ll = j[ok], l[ok]
    out[ok] = gammaln(jj + 1) - jj * np.log(2.0) - gammaln((jj - ll) / 2 + 1) - log_rising(q / 2, (jj + ll) / 2)
    return out


def _log_expansion_lambda(s: float, q: int, degrees: np.ndarray) -> np.ndarray:
    r"""log lambda_l of exp(s t) in dimension q for the given degrees (s > 0).

    lambda_l = Gamma(q/2) / Gamma(l + q/2) (s/2)^l 0F1(; l + q/2; s^2/4), the hypergeometric series summed
    directly (all terms positive) where it converges quickly; otherwise the Bessel form
    Gamma(q/2) (2/s)^{q/2-1} I_{l+q/2-1}(s) through :func:`log_iv`.
    """
    degrees = np.asarray(degrees, dtype=np.float64)
    b = degrees + q / 2
    z = 0.25 * s * s
    out = np.empty_like(degrees)
    series = z <= 50 * b + 1000
    if np.any(series):
        bs = b[series]
        term = np.ones_like(bs)
        total = np.ones_like(bs)
        k = 0
        while True:
            term = term * z / ((bs + k) * (k + 1))
            total = total + term
            k += 1
            if np.all(term <= 1e-17 * total) and np.all(z < (bs + k) * (k + 1)):
                break
        ls = degrees[series]
        out[series] = -log_rising(q / 2, ls) + ls * np.log(s / 2) + np.log(total)
    if np.any(~series):
        ls = degrees[~series]
        out[~series] = gammaln(q / 2) + (1 - q / 2) * np.log(s / 2) + log_iv(ls + q / 2 - 1, s)
    return out


# =================================================================================================================
# base class


class DotProductKernel:
    r"""Base class of dot-product kernels :math:`k(x, y) = \varphi(\langle x, y\rangle)` on the sphere.

    Subclasses implement ``_profile``, ``_derivative`` and ``_log_spectrum`` (and may override the closed forms of
    ``_phi_at_one``, ``_uniform_mean_embedding`` and ``_known_positive_definite``).

    Attributes
    ----------
    dimension_dependent : bool
        True when :math:`\varphi` itself depends on q (spectrally defined kernels, Legendre series, Poisson, ...):
        ``profile`` then needs ``q``.
    degree : int or None
        Polynomial degree of :math:`\varphi` when it is a polynomial, else None.
    has_corner : bool
        True when :math:`\varphi` is not differentiable at t = 1 (arc-cosine, distance kernels): ``gram`` then puts
        :math:`\varphi(1)` on the diagonal analytically and keeps off-diagonal entries inside (-1, 1).
    """

    dimension_dependent: bool = False
    degree: int | None = None
    has_corner: bool = False
    name: str = "kernel"

    # ---- to implement -------------------------------------------------------------------------------------------
    def _profile(self, t: Any, xp: Any, q: int | None) -> Any:
        raise NotImplementedError

    def _derivative(self, t: Any, xp: Any, q: int | None) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form derivative")

    def _log_spectrum(self, q: int, L: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _params(self) -> tuple:
        return ()

    def _phi_at_one(self, q: int | None) -> float:
        return float(self._profile(np.ones(1), np, q)[0])

    def _uniform_mean_embedding(self, q: int) -> float:
        return float(self.spectrum(q, 0)[0])

    def _known_positive_definite(self, q: int) -> bool | None:
        """True/False when known on every degree, None when it must be checked degree by degree."""
        return None

    # ---- public API ---------------------------------------------------------------------------------------------
    def _needs_q(self, q: int | None) -> int | None:
        if q is None:
            if self.dimension_dependent:
                raise ValueError(
                    f"q is required: the profile of {self!r} depends on the dimension (pass q=..., or use gram(X))"
                )
            return None
        return _check_dimension(q)

    def log_spectrum(self, q: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
        r"""Gegenbauer coefficients in log space: ``(log|a_l|, sign(a_l))`` for l = 0..degree (float64, host).

        Zero coefficients have sign 0 and log -inf.
        """
        q = _check_dimension(q)
        degree = _check_degree(degree, "degree")
        key = (q, degree)
        cache = self.__dict__.setdefault("_spectrum_cache", {})
        if key not in cache:
            log_abs, sign = self._log_spectrum(q, degree)
            log_abs = np.asarray(log_abs, dtype=np.float64).copy()
            sign = np.asarray(sign, dtype=np.float64).copy()
            sign[~np.isfinite(log_abs) & (log_abs < 0)] = 0.0
            log_abs[sign == 0] = -np.inf
            if np.any(np.isnan(log_abs)):
                raise FloatingPointError(f"spectrum of {self!r} at q={q} produced NaN")
            log_abs.setflags(write=False)
            sign.setflags(write=False)
            cache[key] = (log_abs, sign)
        return cache[key]

    def spectrum(self, q: int, degree: int) -> np.ndarray:
        r"""Gegenbauer coefficients :math:`a_0, \dots, a_{degree}` of :math:`\varphi` in dimension q (float64).

        :math:`\varphi(t) = \sum_l a_l P_{l,q}(t)`; computed in log space (see :meth:`log_spectrum`), so
        coefficients that do not under/overflow float64 are accurate to ~1e-12 relative.

        Examples
        --------
        >>> from dotkernels import GaussianKernel
        >>> a = GaussianKernel(tau=1.0).spectrum(q=3, degree=4)
        >>> bool((a > 0).all())
        True
        """
        log_abs, sign = self.log_spectrum(q, degree)
        return _signed_exp(log_abs, sign)

    def profile(self, t: Any, q: int | None = None, *, validate: bool = True) -> Any:
        r"""The profile :math:`\varphi(t)` on any array-API array (same type, dtype and device as ``t``).

        ``q`` is required for ``dimension_dependent`` kernels. ``validate`` checks that t is finite and inside
        [-1, 1] up to rounding (one reduction; pass False in hot loops).
        """
        q = self._needs_q(q)
        t, xp = _check_t(t, validate=validate)
        return self._profile(t, xp, q)

    def derivative(self, t: Any, q: int | None = None, *, validate: bool = True) -> Any:
        r""":math:`\varphi'(t)` on any array-API array (same type, dtype and device as ``t``)."""
        q = self._needs_q(q)
        t, xp = _check_t(t, validate=validate)
        return self._derivative(t, xp, q)

    def __call__(self, t: Any, q: int | None = None) -> Any:
        return self.profile(t, q)

    def phi_at_one(self, q: int | None = None) -> float:
        r""":math:`\varphi(1) = k(x, x) = \sum_l a_l`."""
        return self._phi_at_one(self._needs_q(q))

    def uniform_mean_embedding(self, q: int) -> float:
        r"""Mean embedding of the uniform distribution, the constant :math:`a_0 = E_{\nu_q}[\varphi]`.

        It equals :math:`\|\mu_\sigma\|^2` and is subtracted from the batch mean of the Gram matrix to give the
        squared MMD to the uniform distribution.
        """
        return self._uniform_mean_embedding(_check_dimension(q))

    def truncation_error(self, q: int, L: int) -> float:
        r""":math:`\varphi(1) - \sum_{l \le L} a_l`, the sup-norm error of the degree-L truncation when the
        coefficients beyond L are non-negative (the error is attained at t = 1)."""
        q = _check_dimension(q)
        L = _check_degree(L, "L")
        return self._phi_at_one(q) - float(math.fsum(self.spectrum(q, L)))

    def is_positive_definite(self, q: int, degree: int | None = None) -> bool:
        r"""Schoenberg's criterion on :math:`S^{q-1}`: every :math:`a_l \ge 0`.

        Uses the family's closed-form answer when it is known for all degrees; otherwise (or when ``degree`` is
        given) checks :math:`a_0, \dots, a_{degree}` (default degree: the kernel's polynomial degree, else 128).
        """
        q = _check_dimension(q)
        if degree is None:
            known = self._known_positive_definite(q)
            if known is not None:
                return known
            degree = self.degree if self.degree is not None else 128
        _, sign = self.log_spectrum(q, _check_degree(degree, "degree"))
        return bool(np.all(sign >= 0))

    def gram(self, X: Any, Y: Any = None, *, normalize: bool = False, atol: float | None = None) -> Any:
        r"""Kernel matrix :math:`[\varphi(\langle x_i, y_j\rangle)]` for unit-norm rows of X (n x q), Y (m x q).

        Parameters
        ----------
        X, Y : array
            Arrays of the same library, rows on the sphere :math:`S^{q-1}`; Y defaults to X.
        normalize : bool
            Divide the rows by their norms first; otherwise rows whose norm differs from 1 by more than ``atol``
            raise ValueError.
        atol : float, optional
            Tolerance on the row norms; default ``10 * sqrt(eps)`` of the dtype (3.4e-3 in float32, 1.5e-7 in
            float64).

        Returns
        -------
        array
            (n, m) matrix of X's type, dtype and device. Inner products are clipped to [-1, 1]; for kernels with a
            corner at t = 1 the diagonal of ``gram(X)`` is :math:`\varphi(1)` exactly and the off-diagonal entries
            stay inside the open interval, so autograd never meets an infinite derivative.
        """
        X = self._check_points(X, "X", normalize, atol)
        same = Y is None
        Y = X if same else self._check_points(Y, "Y", normalize, atol)
        xp = array_namespace(X, Y)
        if X.shape[1] != Y.shape[1]:
            raise ValueError(
                f"X and Y must have the same number of columns (dimension), got {X.shape[1]} and {Y.shape[1]}"
            )
        q = int(X.shape[1])
        G = xp.matmul(X, xp.matrix_transpose(Y))
        if not self.has_corner:
            return self._profile(xp.clip(G, -1.0, 1.0), xp, q)
        eps = float(xp.finfo(G.dtype).eps)
        K = self._profile(xp.clip(G, -1.0 + eps, 1.0 - eps), xp, q)
        # coinciding / antipodal points get the exact phi(+-1) (with zero gradient) rather than phi(+-(1 - eps))
        phi_ends = self._profile(xp.asarray([-1.0, 1.0], dtype=G.dtype, device=array_api_compat.device(G)), xp, q)
        K = xp.where(G >= 1.0 - eps, phi_ends[1], xp.where(G <= -1.0 + eps, phi_ends[0], K))
        if same:
            eye = xp.eye(G.shape[0], dtype=G.dtype, device=array_api_compat.device(G))
            K = K * (1.0 - eye) + self._phi_at_one(q) * eye
        return K

    @staticmethod
    def _check_points(X: Any, name: str, normalize: bool, atol: float | None) -> Any:
        X, xp = as_array(X, name)
        if X.ndim != 2:
            raise ValueError(f"{name} must be a 2-d array of points (n, q), got shape {tuple(X.shape)}")
        if X.shape[1] < 2:
            raise ValueError(f"{name} must have q >= 2 columns (points on S^(q-1)), got {X.shape[1]}")
        if X.shape[0] < 1:
            raise ValueError(f"{name} must contain at least one point")
        if not bool(xp.all(xp.isfinite(X))):
            raise ValueError(f"{name} contains NaN or inf")
        norms = xp.sqrt(xp.sum(X * X, axis=1))
        if normalize:
            if bool(xp.any(norms == 0)):
                raise ValueError(f"{name} has a zero row that cannot be normalised")
            return X / norms[:, None]
        tol = atol if atol is not None else 10.0 * math.sqrt(float(xp.finfo(X.dtype).eps))
        deviation = xp.max(xp.abs(norms - 1.0))
        worst = float(deviation.detach() if hasattr(deviation, "detach") else deviation)
        if worst > tol:
            raise ValueError(
                f"rows of {name} must be unit vectors (max | ||x|| - 1 | = {worst:.3g} > atol = {tol:.3g}); "
                "pass normalize=True to project them onto the sphere"
            )
        return X

    # ---- arithmetic ---------------------------------------------------------------------------------------------
    def __add__(self, other: Any) -> DotProductKernel:
        if not isinstance(other, DotProductKernel):
            return NotImplemented
        return SumKernel([self, other])

    def __mul__(self, c: Any) -> DotProductKernel:
        if isinstance(c, DotProductKernel):
            return NotImplemented
        return ScaledKernel(c, self)

    __rmul__ = __mul__

    def truncate(self, L: int) -> TruncatedKernel:
        """The kernel :math:`\\sum_{l \\le L} a_l P_{l,q}` (dimension dependent by construction)."""
        return TruncatedKernel(self, L)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._named_params())
        return f"{type(self).__name__}({params})"

    def _named_params(self) -> list[tuple[str, Any]]:
        return []

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._params() == other._params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._params()))


# =================================================================================================================
# closed-form families


class ExponentialKernel(DotProductKernel):
    r"""Exponential kernel :math:`\varphi(t) = e^{s t}`, s > 0.

    Spectrum: :math:`a_l = N(q,l)\, \Gamma(q/2) (2/s)^{q/2-1} I_{l+q/2-1}(s)` (q = 2: :math:`2 I_l(s)` for
    l >= 1), summed as a positive hypergeometric series in log space; :math:`a_l \to s^l / l!` as q grows.
    Positive definite on every sphere.
    """

    name = "exponential"

    def __init__(self, s: float = 1.0):
        self.s = _positive(s, "s")

    def _params(self) -> tuple:
        return (self.s,)

    def _named_params(self):
        return [("s", self.s)]

    def _profile(self, t, xp, q):
        return xp.exp(self.s * t)

    def _derivative(self, t, xp, q):
        return self.s * xp.exp(self.s * t)

    def _phi_at_one(self, q):
        return math.exp(self.s)

    def _log_spectrum(self, q, L):
        degrees = np.arange(L + 1)
        return log_harmonic_dimension(q, degrees) + _log_expansion_lambda(self.s, q, degrees), np.ones(L + 1)

    def _known_positive_definite(self, q):
        return True


class GaussianKernel(DotProductKernel):
    r"""Gaussian kernel :math:`\exp(-\tau \|x - y\|^2) = \varphi(t) = e^{-2\tau(1 - t)}`, tau > 0.

    :math:`a_l = N(q,l)\, \Gamma(q/2)\, \tau^{-(q/2-1)}\, \mathrm{ive}(l+q/2-1, 2\tau)`; uniform mean embedding
    :math:`a_0 = e^{-2\tau}\, {}_0F_1(; q/2; \tau^2)`. With tau = t of Wang & Isola, the uniformity loss is
    :math:`\log(a_0 + \mathrm{MMD}_U^2)`.
    """

    name = "gaussian"

    def __init__(self, tau: float = 1.0):
        self.tau = _positive(tau, "tau")

    def _params(self) -> tuple:
        return (self.tau,)

    def _named_params(self):
        return [("tau", self.tau)]

    def _profile(self, t, xp, q):
        return xp.exp(-2.0 * self.tau * (1.0 - t))

    def _derivative(self, t, xp, q):
        return 2.0 * self.tau * xp.exp(-2.0 * self.tau * (1.0 - t))

    def _phi_at_one(self, q):
        return 1.0

    def _log_spectrum(self, q, L):
        degrees = np.arange(L + 1)
        log_a = log_harmonic_dimension(q, degrees) - 2 * self.tau + _log_expansion_lambda(2 * self.tau, q, degrees)
        return log_a, np.ones(L + 1)

    def _known_positive_definite(self, q):
        return True


class MonomialKernel(DotProductKernel):
    r"""Monomial kernel :math:`\varphi(t) = t^p`, p a non-negative integer.

    :math:`\lambda_l = p!\,\Gamma(q/2) / (2^p ((p-l)/2)!\,\Gamma((p+l+q)/2))` for l <= p with p - l even, else 0;
    :math:`a_l = N(q,l) \lambda_l`. Positive definite on every sphere. :math:`(u^T v)^2` is the repulsive term of
    the spectral contrastive loss.
    """

    name = "monomial"

    def __init__(self, p: int = 2):
        self.p = _positive_int(p, "p")
        self.degree = self.p

    def _params(self):
        return (self.p,)

    def _named_params(self):
        return [("p", self.p)]

    def _profile(self, t, xp, q):
        return t**self.p if self.p else xp.ones_like(t)

    def _derivative(self, t, xp, q):
        return self.p * t ** (self.p - 1) if self.p > 1 else xp.full_like(t, float(self.p))

    def _phi_at_one(self, q):
        return 1.0

    def _log_spectrum(self, q, L):
        degrees = np.arange(L + 1)
        log_a = log_harmonic_dimension(q, degrees) + _log_monomial_lambda(self.p, degrees, q)
        return log_a, np.where(np.isfinite(log_a), 1.0, 0.0)

    def _known_positive_definite(self, q):
        return True


class PolynomialKernel(DotProductKernel):
    r"""Polynomial kernel :math:`\varphi(t) = (c + t)^p`, c >= 0, p a non-negative integer.

    :math:`\lambda_l = \sum_j \binom{p}{j} c^{p-j} \lambda_l(t^j)`, a sum of non-negative terms done in log space.
    """

    name = "polynomial"

    def __init__(self, p: int = 2, c: float = 1.0):
        self.p = _positive_int(p, "p")
        self.c = _positive(c, "c", allow_zero=True)
        self.degree = self.p

    def _params(self):
        return (self.p, self.c)

    def _named_params(self):
        return [("p", self.p), ("c", self.c)]

    def _profile(self, t, xp, q):
        return (self.c + t) ** self.p if self.p else xp.ones_like(t)

    def _derivative(self, t, xp, q):
        return self.p * (self.c + t) ** (self.p - 1) if self.p > 1 else xp.full_like(t, float(self.p))

    def _phi_at_one(self, q):
        return (self.c + 1.0) ** self.p

    def _log_spectrum(self, q, L):
        degrees = np.arange(L + 1)
        j = np.arange(self.p + 1, dtype=np.float64)
        with np.errstate(divide="ignore"):
            log_binom = gammaln(self.p + 1) - gammaln(j + 1) - gammaln(self.p - j + 1)
            log_c = (self.p - j) * np.log(self.c) if self.c > 0 else np.where(j == self.p, 0.0, -np.inf)
        terms = (log_binom + log_c)[:, None] + _log_monomial_lambda(j[:, None], degrees[None, :], q)
        log_lambda = logsumexp(terms, axis=0)
        log_a = log_harmonic_dimension(q, degrees) + log_lambda
        return log_a, np.where(np.isfinite(log_a), 1.0, 0.0)

    def _known_positive_definite(self, q):
        return True


class PoissonKernel(DotProductKernel):
    r"""Poisson kernel :math:`\varphi(t) = (1 - r^2) / (1 - 2 r t + r^2)^{q/2}`, 0 <= r < 1.

    :math:`\lambda_l = r^l`, so :math:`a_l = N(q,l)\, r^l` and :math:`a_0 = 1`. Dimension dependent; its value at
    t = 1, :math:`(1+r)/(1-r)^{q-1}`, grows exponentially with q, so use r ~ 1/q in high dimension.
    """

    name = "poisson"
    dimension_dependent = True

    def __init__(self, r: float = 0.5):
        self.r = _positive(r, "r", allow_zero=True)
        if self.r >= 1:
            raise ValueError(f"r must lie in [0, 1), got {self.r}")

    def _params(self):
        return (self.r,)

    def _named_params(self):
        return [("r", self.r)]

    def _profile(self, t, xp, q):
        r = self.r
        return (1 - r * r) * xp.exp(-0.5 * q * xp.log(1 - 2 * r * t + r * r))

    def _derivative(self, t, xp, q):
        r = self.r
        return q * r * (1 - r * r) * xp.exp(-(0.5 * q + 1) * xp.log(1 - 2 * r * t + r * r))

    def _phi_at_one(self, q):
        return math.exp(math.log1p(self.r) - (q - 1) * math.log1p(-self.r))

    def _uniform_mean_embedding(self, q):
        return 1.0

    def _log_spectrum(self, q, L):
        degrees = np.arange(L + 1)
        with np.errstate(divide="ignore"):
            log_r = np.log(self.r)
        log_a = log_harmonic_dimension(q, degrees) + np.where(degrees == 0, 0.0, degrees * log_r)
        return log_a, np.where(np.isfinite(log_a), 1.0, 0.0)

    def _known_positive_definite(self, q):
        return True


class GegenbauerKernel(DotProductKernel):
    r"""Gegenbauer generating function :math:`\varphi(t) = (1 - 2 r t + r^2)^{-(q-2)/2}`, 0 <= r < 1.

    The generating function of :math:`C_l^{(q-2)/2}`, so :math:`a_l = \binom{l+q-3}{l} r^l`. In terms of the
    distance, :math:`\varphi = r^{-(q-2)/2} (c^2 + \|x-y\|^2)^{-(q-2)/2}` with :math:`c^2 = (1-r)^2/r`: the inverse
    multiquadric kernel with the dimension's own exponent (constant 1 on the circle, q = 2).
    """

    name = "gegenbauer"
    dimension_dependent = True

    def __init__(self, r: float = 0.5):
        self.r = _positive(r, "r", allow_zero=True)
        if self.r >= 1:
            raise ValueError(f"r must lie in [0, 1), got {self.r}")

    def _params(self):
        return (self.r,)

    def _named_params(self):
        return [("r", self.r)]

    def _profile(self, t, xp, q):
        r = self.r
        return xp.exp(-0.5 * (q - 2) * xp.log(1 - 2 * r * t + r * r))

    def _derivative(self, t, xp, q):
        r = self.r
        return (q - 2) * r * xp.exp(-0.5 * q * xp.log(1 - 2 * r * t + r * r))

    def _phi_at_one(self, q):
        return math.exp(-(q - 2) * math.log1p(-self.r))

    def _uniform_mean_embedding(self, q):
        return 1.0

    def _log_spectrum(self, q, L):
        degrees = np.arange(L + 1, dtype=np.float64)
        with np.errstate(divide="ignore"):
            log_r = np.log(self.r)
            if q == 2:
                log_binom = np.where(degrees == 0, 0.0, -np.inf)
            else:
                log_binom = log_rising(q - 2, degrees) - gammaln(degrees + 1)
        log_a = log_binom + np.where(degrees == 0, 0.0, degrees * log_r)
        return log_a, np.where(np.isfinite(log_a), 1.0, 0.0)

    def _known_positive_definite(self, q):
        return True


class InverseMultiquadricKernel(DotProductKernel):
    r"""Inverse multiquadric kernel :math:`(c^2 + \|x - y\|^2)^{-\beta} = (c^2 + 2 - 2t)^{-\beta}`, c > 0, beta > 0.

    Writing :math:`c^2 + 2 - 2t = (1 + r^2 - 2 r t) / r` with :math:`r + 1/r = c^2 + 2` (0 < r < 1), the profile is
    :math:`r^\beta (1+r^2)^{-\beta} \sum_j (\beta)_j/j!\, u^j t^j` with :math:`u = 2r/(1+r^2) < 1`: a power series
    with positive coefficients, so :math:`a_l = N(q,l) \sum_j c_j \lambda_l(t^j)` is a positive series, summed in
    log space until its terms fall below 1e-17 of the total. Positive definite on every sphere.
    """

    name = "imq"

    def __init__(self, c: float = 1.0, beta: float = 0.5):
        self.c = _positive(c, "c")
        self.beta = _positive(beta, "beta")
        s = self.c**2 + 2.0
        self._r = 2.0 / (s + math.sqrt(s * s - 4.0))

    def _params(self):
        return (self.c, self.beta)

    def _named_params(self):
        return [("c", self.c), ("beta", self.beta)]

    def _profile(self, t, xp, q):
        return xp.exp(-self.beta * xp.log(self.c**2 + 2.0 - 2.0 * t))

    def _derivative(self, t, xp, q):
        return 2.0 * self.beta * xp.exp(-(self.beta + 1.0) * xp.log(self.c**2 + 2.0 - 2.0 * t))

    def _phi_at_one(self, q):
        return self.c ** (-2.0 * self.beta)

    def _log_spectrum(self, q, L):
        r, beta = self._r, self.beta
        log_u = math.log(2 * r) - math.log1p(r * r)
        log_pref = beta * math.log(r) - beta * math.log1p(r * r)
        degrees = np.arange(L + 1, dtype=np.float64)
        # terms decay like j^(beta-1) u^j; take enough of them for 1e-17 relative accuracy
        j_max = int(L + 40 + (40 * math.log(10) + max(beta, 1) * 10) / max(-log_u, 1e-12))
        j_max = min(j_max, L + 200000)
        j = np.arange(j_max + 1, dtype=np.float64)
        log_coef = log_pref + log_rising(beta, j) - gammaln(j + 1) + j * log_u
        log_lambda = np.empty(L + 1)
        for l in range(L + 1):
            log_lambda[l] = logsumexp(log_coef[l::2] + _log_monomial_lambda(j[l::2], float(l), q))
        return log_harmonic_dimension(q, degrees) + log_lambda, np.ones(L + 1)

    def _known_positive_definite(self, q):
        return True


class DistanceKernel(DotProductKernel):
    r"""Distance (Riesz / energy) kernel :math:`\varphi(t) = -\|x - y\|^{2a} = -(2 - 2t)^a`, a > 0.

    :math:`\lambda_l(\|x-y\|^{2a}) = (-a)_l\, 4^a\, \Gamma(a + \tfrac{q-1}{2})\, \Gamma(q-1) /
    (\Gamma(\tfrac{q-1}{2})\, \Gamma(a + l + q - 1))`, equivalently docs/MATH.md's
    :math:`(-a)_l 2^{2a+q-2}\Gamma(q/2)\Gamma(a+(q-1)/2)/(\sqrt\pi\,\Gamma(a+l+q-1))`. For 0 < a < 1 every
    :math:`a_l`, l >= 1, is positive while :math:`a_0 < 0`: conditionally positive definite, and its MMD to the
    uniform distribution is a valid (characteristic) energy distance. a = 1/2 is the energy distance; n times its
    MMD is Bakshaev's statistic.
    """

    name = "distance"
    has_corner = True

    def __init__(self, a: float = 0.5):
        self.a = _positive(a, "a")
        self.degree = int(self.a) if float(self.a).is_integer() else None

    def _params(self):
        return (self.a,)

    def _named_params(self):
        return [("a", self.a)]

    def _profile(self, t, xp, q):
        return -((xp.clip(2.0 - 2.0 * t, 0.0, None)) ** self.a)

    def _derivative(self, t, xp, q):
        return 2.0 * self.a * (xp.clip(2.0 - 2.0 * t, 0.0, None)) ** (self.a - 1.0)

    def _phi_at_one(self, q):
        return 0.0

    def _log_spectrum(self, q, L):
        a = self.a
        degrees = np.arange(L + 1, dtype=np.float64)
        factors = np.arange(L, dtype=np.float64) - a  # (-a)_l = prod_{j<l} (j - a)
        with np.errstate(divide="ignore"):
            log_poch = np.concatenate([[0.0], np.cumsum(np.log(np.abs(factors)))])
        sign_poch = np.concatenate([[1.0], np.cumprod(np.sign(factors))])
        log_lambda = (
            log_poch
            + a * math.log(4.0)
            + log_gamma_ratio(a + (q - 1) / 2, (q - 1) / 2)
            - log_gamma_ratio(a + degrees + q - 1, q - 1)
        )
        log_a = log_harmonic_dimension(q, degrees) + log_lambda
        return log_a, -sign_poch  # the kernel is MINUS the distance power

    def _known_positive_definite(self, q):
        return False


class ArcCosineKernel(DotProductKernel):
    r"""Arc-cosine kernel of order 0 or 1 (Cho & Saul), normalised to :math:`\varphi(1) = 1`.

    Order 0: :math:`\varphi(t) = 1 - \theta/\pi`; order 1:
    :math:`\varphi(t) = (\sin\theta + (\pi - \theta)\cos\theta)/\pi`,
    :math:`\theta = \arccos t`. They are :math:`2 E_w[\sigma(w\cdot x)\sigma(w\cdot y)]` for Gaussian w and
    :math:`\sigma` the step / ReLU, hence :math:`a_l = 2 E[r^{2n}] N(q,l)\, m_l^2` with :math:`E[r^0] = 1`,
    :math:`E[r^2] = q` and :math:`m_l = E_{\nu_q}[\sigma(t) P_{l,q}(t)]`, in closed form from Rodrigues' formula.
    :math:`m_l = 0` for every even l >= 2 (order 0) or odd l >= 3 (order 1): these kernels are NOT characteristic.
    """

    name = "arccos"
    has_corner = True

    def __init__(self, order: int = 0):
        order = _positive_int(order, "order")
        if order not in (0, 1):
            raise ValueError(f"order must be 0 or 1, got {order}")
        self.order = order

    def _params(self):
        return (self.order,)

    def _named_params(self):
        return [("order", self.order)]

    def _profile(self, t, xp, q):
        theta = xp.acos(xp.clip(t, -1.0, 1.0))
        if self.order == 0:
            return 1.0 - theta / math.pi
        return (xp.sin(theta) + (math.pi - theta) * xp.cos(theta)) / math.pi

    def _derivative(self, t, xp, q):
        t = xp.clip(t, -1.0, 1.0)
        if self.order == 0:
            return 1.0 / (math.pi * xp.sqrt(1.0 - t * t))
        return 1.0 - xp.acos(t) / math.pi

    def _phi_at_one(self, q):
        return 1.0

    def _log_spectrum(self, q, L):
        n = self.order
        degrees = np.arange(L + 1)
        log_m = np.full(L + 1, -np.inf)
        log_cq = float(log_gamma_ratio(q / 2, (q - 1) / 2)) - 0.5 * math.log(math.pi)
        log_abs_t = log_cq + math.log(2.0 / (q - 1))  # log E|t|
        if n == 0:
            log_m[0] = math.log(0.5)
            start = 1  # odd degrees l = 2j + 1
        else:
            log_m[0] = log_abs_t - math.log(2.0)
            if L >= 1:
                log_m[1] = -math.log(2.0 * q)
            start = 2  # even degrees l = 2j + 2
        ls = np.arange(start, L + 1, 2, dtype=np.float64)
        if ls.size:
            jj = (ls - start) / 2
            beta = ls + (q - 3) / 2
            log_m[ls.astype(int)] = (
                log_cq
                - ls * math.log(2.0)
                + log_gamma_ratio((q - 1) / 2, ls + (q - 1) / 2)
                + gammaln(ls - start + 1)
                + log_gamma_ratio(beta + 1, beta - jj + 1)
                - gammaln(jj + 1)
            )
        log_moment = 0.0 if n == 0 else math.log(q)
        log_a = math.log(2.0) + log_moment + log_harmonic_dimension(q, degrees) + 2 * log_m
        return log_a, np.where(np.isfinite(log_a), 1.0, 0.0)

    def _known_positive_definite(self, q):
        return True


# =================================================================================================================
# kernels defined by their Gegenbauer coefficients


class _SeriesProfile(DotProductKernel):
    """Kernels evaluated as a finite Gegenbauer series ``_coefficients(q)`` (Clenshaw; derivative in q + 2)."""

    dimension_dependent = True

    def _coefficients(self, q: int) -> list[float]:
        raise NotImplementedError

    def _profile(self, t, xp, q):
        return _clenshaw(self._coefficients(q), q, t, xp)

    def _derivative(self, t, xp, q):
        return _clenshaw(_derivative_coefficients(self._coefficients(q), q), q + 2, t, xp)


class LegendreSeriesKernel(_SeriesProfile):
    r"""Finite Legendre series :math:`\varphi(t) = \sum_{l=0}^{L} a_l P_{l,q}(t)` with fixed coefficients.

    The same coefficients in every dimension (the profile therefore depends on q). Evaluated by Clenshaw's
    recurrence, derivative by the dimension-(q+2) series.

    Examples
    --------
    >>> k = LegendreSeriesKernel([0.0, 1.0, 40.0, 40.0])
    >>> k.spectrum(q=128, degree=5).tolist()
    [0.0, 1.0, 40.0, 40.0, 0.0, 0.0]
    """

    name = "legendre"
    dimension_dependent = True

    def __init__(self, coefficients: Sequence[float]):
        coef = np.asarray(coefficients, dtype=np.float64)
        if coef.ndim != 1 or coef.size == 0:
            raise ValueError("coefficients must be a non-empty 1-d sequence a_0, ..., a_L")
        if not np.all(np.isfinite(coef)):
            raise ValueError("coefficients must be finite")
        nonzero = np.nonzero(coef)[0]
        coef = coef[: (nonzero[-1] + 1 if nonzero.size else 1)]
        coef.setflags(write=False)
        self.coefficients = coef
        self.degree = coef.size - 1

    def _params(self):
        return tuple(self.coefficients.tolist())

    def _named_params(self):
        return [("coefficients", self.coefficients.tolist())]

    def _coefficients(self, q):
        return self.coefficients.tolist()

    def _phi_at_one(self, q):
        return float(math.fsum(self.coefficients))

    def spectrum(self, q: int, degree: int) -> np.ndarray:
        # the coefficients themselves, not their round trip through log space
        self.log_spectrum(q, degree)  # validates q and degree
        a = np.zeros(degree + 1)
        m = min(degree + 1, self.coefficients.size)
        a[:m] = self.coefficients[:m]
        return a

    def _log_spectrum(self, q, L):
        a = np.zeros(L + 1)
        m = min(L + 1, self.coefficients.size)
        a[:m] = self.coefficients[:m]
        with np.errstate(divide="ignore"):
            return np.log(np.abs(a)), np.sign(a)

    def _known_positive_definite(self, q):
        return bool(np.all(self.coefficients >= 0))


class SFRIKKernel(LegendreSeriesKernel):
    r"""The SFRIK kernel (Zheng et al., ICLR 2023): :math:`\varphi(t) = \sum_{l=1}^{L} b_l P_{l,q}(t)`.

    Defaults :math:`(b_1, b_2, b_3) = (1, 40, 40)`, the paper's L = 3 choice; :math:`a_0 = 0`, so the batch mean
    of the Gram matrix is directly the squared MMD to the uniform distribution.
    """

    name = "sfrik"

    def __init__(self, weights: Sequence[float] = (1.0, 40.0, 40.0)):
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 1 or weights.size == 0:
            raise ValueError("weights must be a non-empty 1-d sequence b_1, ..., b_L")
        if np.any(weights < 0):
            raise ValueError(f"weights must be non-negative, got {weights.tolist()}")
        super().__init__(np.concatenate([[0.0], weights]))
        self.weights = tuple(weights.tolist())

    def _named_params(self):
        return [("weights", self.weights)]


class BandLimitedKernel(_SeriesProfile):
    r"""Band-limited kernel :math:`\varphi(t) = \sum_{l \le L} N(q,l) P_{l,q}(t)`: the reproducing kernel of the
    polynomials of degree <= L on :math:`S^{q-1}` (all Mercer eigenvalues equal to 1)."""

    name = "bandlimited"
    dimension_dependent = True

    def __init__(self, L: int = 2):
        self.L = _positive_int(L, "L")
        self.degree = self.L

    def _params(self):
        return (self.L,)

    def _named_params(self):
        return [("L", self.L)]

    def _coefficients(self, q):
        return self.spectrum(q, self.L).tolist()


    def _phi_at_one(self, q):
        return float(math.fsum(self.spectrum(q, self.L)))

    def _uniform_mean_embedding(self, q):
        return 1.0

    def _log_spectrum(self, q, L):
        degrees = np.arange(L + 1)
        log_a = np.where(degrees <= self.L, log_harmonic_dimension(q, degrees), -np.inf)
        return log_a, np.where(degrees <= self.L, 1.0, 0.0)

    def _known_positive_definite(self, q):
        return True


class _SpectrallyDefined(_SeriesProfile):
    """Kernels defined by an infinite spectrum: the profile is the series truncated where the tail is negligible."""

    dimension_dependent = True
    tail_rtol: float = 1e-17
    max_degree: int = 1 << 16

    def _auto_degree(self, q: int) -> int:
        cache = self.__dict__.setdefault("_degree_cache", {})
        if q not in cache:
            L = 32
            while True:
                log_abs, _ = self.log_spectrum(q, L)
                finite = log_abs[np.isfinite(log_abs)]
                top = finite.max() if finite.size else 0.0
                last = log_abs[-8:]
                decreasing = bool(np.all(np.diff(last) <= 0)) or not np.any(np.isfinite(last))
                if (np.all(last < top + math.log(self.tail_rtol)) and decreasing) or L >= self.max_degree:
                    break
                L *= 2
            if L >= self.max_degree:
                warnings.warn(
                    f"{self!r}: spectrum still significant at degree {L} in q={q}; profile truncated there",
                    SpectrumAccuracyWarning,
                    stacklevel=3,
                )
            nonneg = np.nonzero(log_abs >= top + math.log(self.tail_rtol))[0]
            cache[q] = int(nonneg[-1]) if nonneg.size else 0
        return cache[q]

    def _coefficients(self, q):
        return self.spectrum(q, self._auto_degree(q)).tolist()


    def _phi_at_one(self, q):
        return float(math.fsum(self.spectrum(q, self._auto_degree(q))))


class HeatKernel(_SpectrallyDefined):
    r"""Heat kernel on :math:`S^{q-1}` at time tau: :math:`a_l = N(q,l)\, e^{-\tau l (l + q - 2)}`.

    :math:`l(l+q-2)` are the eigenvalues of the Laplace–Beltrami operator; :math:`a_0 = 1`. Defined by its
    spectrum; the profile is the series, truncated where the remaining terms are below 1e-17 of the largest.
    """

    name = "heat"

    def __init__(self, tau: float = 0.1):
        self.tau = _positive(tau, "tau")

    def _params(self):
        return (self.tau,)

    def _named_params(self):
        return [("tau", self.tau)]

    def _uniform_mean_embedding(self, q):
        return 1.0

    def _log_spectrum(self, q, L):
        degrees = np.arange(L + 1, dtype=np.float64)
        return log_harmonic_dimension(q, degrees) - self.tau * degrees * (degrees + q - 2), np.ones(L + 1)

    def _known_positive_definite(self, q):
        return True


class SpectralKernel(_SpectrallyDefined):
    r"""A kernel given by a user spectrum: ``spectrum(q, degree) -> a_0..a_degree``.

    Parameters
    ----------
    spectrum : callable
        ``spectrum(q, degree)`` returning the Gegenbauer coefficients in dimension q (array of length degree + 1).
        For coefficients that do not depend on q, use :class:`LegendreSeriesKernel`.
    name : str
        Label used in ``repr``.

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels.gegenbauer import log_harmonic_dimension
    >>> k = SpectralKernel(lambda q, L: np.exp(log_harmonic_dimension(q, np.arange(L + 1))) * 0.5 ** np.arange(L + 1))
    >>> round(k.uniform_mean_embedding(5), 12)  # the Poisson kernel with r = 1/2
    1.0
    """

    name = "spectral"

    def __init__(self, spectrum: Callable[[int, int], Any], name: str = "spectral"):
        if not callable(spectrum):
            raise TypeError("spectrum must be a callable spectrum(q, degree) -> a_0..a_degree")
        self._spectrum_fn = spectrum
        self.name = name

    def _params(self):
        return (id(self._spectrum_fn),)

    def _named_params(self):
        return [("spectrum", getattr(self._spectrum_fn, "__name__", "<callable>"))]

    def _log_spectrum(self, q, L):
        a = np.asarray(self._spectrum_fn(q, L), dtype=np.float64)
        if a.shape != (L + 1,):
            raise ValueError(f"spectrum(q, degree) must return {L + 1} coefficients, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"spectrum(q={q}, degree={L}) returned non-finite coefficients")
        with np.errstate(divide="ignore"):
            return np.log(np.abs(a)), np.sign(a)


class ProfileKernel(DotProductKernel):
    r"""A kernel from any profile function :math:`\varphi`; its spectrum by Gauss quadrature for :math:`\nu_q`.

    :math:`a_l = N(q,l) \sum_i w_i \varphi(x_i) P_{l,q}(x_i)` with the rule of :func:`projected_quadrature`. The
    quadrature gives :math:`\lambda_l = a_l/N(q,l)` to an absolute accuracy of about
    :math:`\epsilon \max|\varphi|`, and :math:`a_l` multiplies that error by :math:`N(q,l)`, which is astronomically
    large at large q (N(64, 12) ~ 1e13). The spectrum is therefore computed with two rule sizes; coefficients whose
    two values disagree by more than ``rtol`` relative (or that are below the error floor
    :math:`N(q,l)\,\epsilon \max|\varphi|`) trigger a :class:`SpectrumAccuracyWarning`, and ``spectrum_error``
    returns the estimated absolute error per degree. Prefer a closed-form family at large q.

    Parameters
    ----------
    function : callable
        :math:`\varphi(t)` for an array t (numpy for the spectrum; any array-API array for ``profile``/``gram``).
    derivative : callable, optional
        :math:`\varphi'(t)`; without it ``derivative`` raises NotImplementedError (torch autograd still works).
    nodes : int, optional
        Quadrature size (default ``max(256, 2 * degree + 64)``).
    rtol : float
        Accuracy threshold of the warning.
    corner : bool
        Set when :math:`\varphi` is not differentiable at t = 1 (see :attr:`DotProductKernel.has_corner`).
    """

    name = "profile"

    def __init__(
        self,
        function: Callable[[Any], Any],
        derivative: Callable[[Any], Any] | None = None,
        *,
        nodes: int | None = None,
        rtol: float = 1e-8,
        corner: bool = False,
        name: str = "profile",
    ):
        if not callable(function):
            raise TypeError("function must be callable: function(t) -> phi(t)")
        if derivative is not None and not callable(derivative):
            raise TypeError("derivative must be callable or None")
        self.function = function
        self._derivative_fn = derivative
        self.nodes = None if nodes is None else _positive_int(nodes, "nodes", minimum=1)
        self.rtol = _positive(rtol, "rtol")
        self.has_corner = bool(corner)
        self.name = name
        self._error_cache: dict = {}

    def _params(self):
        return (id(self.function), id(self._derivative_fn), self.nodes, self.rtol)

    def _named_params(self):
        return [("function", getattr(self.function, "__name__", "<callable>"))]

    def _profile(self, t, xp, q):
        return self.function(t)

    def _derivative(self, t, xp, q):
        if self._derivative_fn is None:
            raise NotImplementedError("ProfileKernel was built without derivative=...; use torch autograd instead")
        return self._derivative_fn(t)

    def _lambda_by_quadrature(self, q: int, L: int, n: int) -> tuple[np.ndarray, float]:
        x, w = projected_quadrature(n, q)
        fx = np.asarray(self.function(x.copy()), dtype=np.float64)
        if fx.shape != x.shape or not np.all(np.isfinite(fx)):
            raise ValueError("function(t) must return finite values of the same shape as t on (-1, 1)")
        lam = np.empty(L + 1)
        prev, cur = np.ones_like(x), x.copy()
        wf = w * fx
        lam[0] = wf.sum()
        if L >= 1:
            lam[1] = wf @ cur
        for k in range(1, L):
            alpha = (2 * k + q - 2) / (k + q - 2)
            beta = k / (k + q - 2)
            prev, cur = cur, alpha * x * cur - beta * prev
            lam[k + 1] = wf @ cur
        return lam, float(np.max(np.abs(fx)))

    def _log_spectrum(self, q, L):
        n = self.nodes or max(256, 2 * L + 64)
        lam, scale = self._lambda_by_quadrature(q, L, n)
        lam2, _ = self._lambda_by_quadrature(q, L, 2 * n)
        log_n = log_harmonic_dimension(q, np.arange(L + 1))
        floor = 64 * np.finfo(np.float64).eps * max(scale, 1e-300)
        err = np.maximum(np.abs(lam2 - lam), floor)  # absolute error estimate on lambda_l
        error_a = np.exp(log_n + np.log(err))
        self._error_cache[(q, L)] = error_a
        # below the quadrature's resolution a coefficient is indistinguishable from 0: report it as 0, and warn
        # when that resolution, amplified by N(q,l), is not small against the spectrum itself
        unresolved = np.abs(lam2) <= floor
        lam2 = np.where(unresolved, 0.0, lam2)
        with np.errstate(divide="ignore"):
            log_a = log_n + np.log(np.abs(lam2))
        top = np.max(np.abs(np.exp(log_a[np.isfinite(log_a)]))) if np.any(np.isfinite(log_a)) else 0.0
        bad = np.where(unresolved, error_a > self.rtol * max(top, 1e-300), err > self.rtol * np.abs(lam2))
        if np.any(bad):
            warnings.warn(
                f"{self!r}: quadrature spectrum in q={q} is not accurate to rtol={self.rtol:g} at degrees "
                f"{np.nonzero(bad)[0].tolist()[:10]} (the error of lambda_l is multiplied by N(q,l)); "
                "use a closed-form kernel, a smoother profile or a lower degree",
                SpectrumAccuracyWarning,
                stacklevel=4,
            )
        return log_a, np.sign(lam2)

    def spectrum_error(self, q: int, degree: int) -> np.ndarray:
        """Estimated absolute error of each quadrature coefficient a_0..a_degree."""
        self.log_spectrum(q, degree)
        return self._error_cache[(_check_dimension(q), _check_degree(degree, "degree"))]


# =================================================================================================================
# combinations


class SumKernel(DotProductKernel):
    """Sum of kernels: spectra and profiles add."""

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
        degrees = [k.degree for k in flat]
        self.degree = None if any(d is None for d in degrees) else max(degrees)

    def _params(self):
        return tuple((type(k).__name__, k._params()) for k in self.kernels)

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
        return float(math.fsum(k._phi_at_one(q) for k in self.kernels))

    def _uniform_mean_embedding(self, q):
        return float(math.fsum(k._uniform_mean_embedding(q) for k in self.kernels))

    def _log_spectrum(self, q, L):
        total = np.zeros(L + 1)
        for k in self.kernels:
            total = total + k.spectrum(q, L)
        with np.errstate(divide="ignore"):
            return np.log(np.abs(total)), np.sign(total)

    def _known_positive_definite(self, q):
        answers = [k._known_positive_definite(q) for k in self.kernels]
        return True if all(a is True for a in answers) else None


class ScaledKernel(DotProductKernel):
    """Positive multiple ``c * kernel``."""

    name = "scaled"

    def __init__(self, c: float, kernel: DotProductKernel):
        if not isinstance(kernel, DotProductKernel):
            raise TypeError(f"kernel must be a DotProductKernel, got {type(kernel).__name__}")
        self.c = _positive(c, "c")
        self.kernel = kernel
        self.dimension_dependent = kernel.dimension_dependent
        self.has_corner = kernel.has_corner
        self.degree = kernel.degree

    def _params(self):
        return (self.c, type(self.kernel).__name__, self.kernel._params())

    def __repr__(self):
        return f"{self.c!r} * {self.kernel!r}"

    def _profile(self, t, xp, q):
        return self.c * self.kernel._profile(t, xp, q)

    def _derivative(self, t, xp, q):
        return self.c * self.kernel._derivative(t, xp, q)

    def _phi_at_one(self, q):
        return self.c * self.kernel._phi_at_one(q)

    def _uniform_mean_embedding(self, q):
        return self.c * self.kernel._uniform_mean_embedding(q)

    def _log_spectrum(self, q, L):
        log_abs, sign = self.kernel.log_spectrum(q, L)
        return log_abs + math.log(self.c), sign

    def _known_positive_definite(self, q):
        return self.kernel._known_positive_definite(q)


class TruncatedKernel(_SeriesProfile):
    r"""Truncation :math:`\sum_{l \le L} a_l(q) P_{l,q}` of a kernel to degree L (dimension dependent)."""

    name = "truncated"
    dimension_dependent = True

    def __init__(self, kernel: DotProductKernel, L: int):
        if not isinstance(kernel, DotProductKernel):
            raise TypeError(f"kernel must be a DotProductKernel, got {type(kernel).__name__}")
        self.kernel = kernel
        self.L = _positive_int(L, "L")
        self.degree = self.L

    def _params(self):
        return (type(self.kernel).__name__, self.kernel._params(), self.L)

    def __repr__(self):
        return f"{self.kernel!r}.truncate({self.L})"

    def _coefficients(self, q):
        return self.kernel.spectrum(q, self.L).tolist()


    def _phi_at_one(self, q):
        return float(math.fsum(self.kernel.spectrum(q, self.L)))

    def _uniform_mean_embedding(self, q):
        return self.kernel._uniform_mean_embedding(q)

    def _log_spectrum(self, q, L):
        log_abs, sign = self.kernel.log_spectrum(q, min(L, self.L))
        pad = L + 1 - log_abs.size
        return np.concatenate([log_abs, np.full(pad, -np.inf)]), np.concatenate([sign, np.zeros(pad)])

    def _known_positive_definite(self, q):
        return None


# =================================================================================================================
# construction from strings

_FAMILIES: dict[str, tuple[type, tuple[str, ...]]] = {
    "exponential": (ExponentialKernel, ("s",)),
    "gaussian": (GaussianKernel, ("tau",)),
    "polynomial": (PolynomialKernel, ("p", "c")),
    "monomial": (MonomialKernel, ("p",)),
    "heat": (HeatKernel, ("tau",)),
    "poisson": (PoissonKernel, ("r",)),
    "gegenbauer": (GegenbauerKernel, ("r",)),
    "imq": (InverseMultiquadricKernel, ("c", "beta")),
    "distance": (DistanceKernel, ("a",)),
    "arccos": (ArcCosineKernel, ("order",)),
    "bandlimited": (BandLimitedKernel, ("L",)),
}
_ALIASES = {"exp": "exponential", "riesz": "distance", "rbf": "gaussian", "arccosine": "arccos"}


def _parse_number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None


def parse_kernel(spec: str | DotProductKernel) -> DotProductKernel:
    """Build a kernel from a string such as ``"gaussian:tau=2.5"`` (kernel objects pass through).

    Grammar: ``NAME`` or ``NAME:ARGS`` with ARGS ``key=value`` pairs or positional values separated by commas.
    Names: exponential (s), gaussian (tau), polynomial (p, c), monomial (p), heat (tau), poisson (r),
    gegenbauer (r), imq (c, beta), distance (a; alias riesz), energy (a = 1/2), arccos (order), bandlimited (L),
    legendre (b_1, ..., b_L: a series without constant term), sfrik (optional weights b_1, ..., b_L).

    Examples
    --------
    >>> parse_kernel("gaussian:tau=2.5")
    GaussianKernel(tau=2.5)
    >>> parse_kernel("legendre:1,40,40").spectrum(8, 3).tolist()
    [0.0, 1.0, 40.0, 40.0]
    """
    if isinstance(spec, DotProductKernel):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"kernel must be a string or a DotProductKernel, got {type(spec).__name__}")
    name, _, args = spec.strip().partition(":")
    name = _ALIASES.get(name.strip().lower(), name.strip().lower())
    parts = [p.strip() for p in args.split(",") if p.strip()] if args else []
    if name in ("legendre", "sfrik"):
        if any("=" in p for p in parts):
            raise ValueError(f"{name} takes positional weights b_1,...,b_L, e.g. '{name}:1,40,40'; got {spec!r}")
        weights = [float(_parse_number(p)) for p in parts]
        if name == "legendre" and not weights:
            raise ValueError("legendre needs weights b_1,...,b_L, e.g. 'legendre:1,40,40'")
        return SFRIKKernel(weights) if weights else SFRIKKernel()
    if name == "energy":
        if parts:
            raise ValueError("energy takes no parameters (it is distance:a=0.5)")
        return DistanceKernel(0.5)
    if name not in _FAMILIES:
        known = sorted([*_FAMILIES, "legendre", "sfrik", "energy", *_ALIASES])
        raise ValueError(f"unknown kernel {name!r} in {spec!r}; known kernels: {', '.join(known)}")
    cls, names = _FAMILIES[name]
    kwargs: dict[str, Any] = {}
    for i, part in enumerate(parts):
        key, eq, value = part.partition("=")
        if not eq:
            if i >= len(names):
                raise ValueError(f"too many positional parameters for {name!r}: expected at most {names}")
            key, value = names[i], part
        key = key.strip()
        if key not in names:
            raise ValueError(f"unknown parameter {key!r} for kernel {name!r}; expected one of {names}")
        kwargs[key] = _parse_number(value.strip())
    return cls(**kwargs)
