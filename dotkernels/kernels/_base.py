r"""The base class :class:`DotProductKernel` and the contract a kernel family implements.

A kernel :math:`k(x, y) = \varphi(\langle x, y\rangle)` on :math:`S^{q-1}` expands as
:math:`\varphi(t) = \sum_{l \ge 0} a_l P_{l,q}(t)` with :math:`a_l = N(q, l)\, E_{\nu_q}[\varphi(t) P_{l,q}(t)]`.
The public methods (``spectrum``, ``log_spectrum``, ``profile``, ``gram``, ...) are written once here; a family
provides the mathematics through the following hooks.

Extension contract
------------------
A new family subclasses :class:`DotProductKernel` and implements

``_profile(t, xp, q)``
    :math:`\varphi(t)` for an array ``t`` of the namespace ``xp`` (numpy, torch, cupy, jax, array-api-strict),
    returning an array of the same type, dtype and device, built from ``xp`` functions only so that autograd
    works. ``t`` is already validated; ``q`` is None when the caller gave no dimension (allowed only when the
    class attribute ``dimension_dependent`` is False).
``_log_spectrum(q, degree)``
    ``(log|a_l|, sign(a_l))`` for l = 0..degree as float64 numpy arrays (``q`` and ``degree`` validated ints);
    zero coefficients have sign 0. Computed host-side and in log space so that nothing overflows at large q.
    The result is cached by the base class (bounded LRU per instance).
``_params()``
    A hashable tuple of the parameters (equality, hashing and the cache key).
``_named_params()``
    ``[(name, value), ...]`` in constructor order, used by ``repr``; ``repr`` round-trips through
    :func:`~dotkernels.kernels.parse_kernel` for the families of its grammar.

and optionally

``_derivative(t, xp, q)``
    :math:`\varphi'(t)` (default: NotImplementedError; torch autograd still works through ``_profile``).
``_phi_at_one(q)``, ``_log_phi_at_one(q)``, ``_uniform_mean_embedding(q)``
    Closed forms of :math:`\varphi(1)` (``inf`` beyond float64, never an OverflowError), of :math:`\ln\varphi(1)`
    (finite where :math:`\varphi(1)` overflows) and of :math:`a_0` (defaults: the profile at 1, its logarithm and
    the spectrum at degree 0).
``_positive_semidefinite(q)``
    True/False when the sign of every :math:`a_l` is known, None (default) to let the base class check degrees.
``_strictly_positive_definite(q)``
    Schoenberg's strict condition when the family knows it, None (default) when it cannot be decided.
``_spectrum_error(q, degree)``
    Absolute error bound of each :math:`a_l` (default: the stated relative accuracy of :meth:`spectrum` times
    :math:`|a_l|`).

Learnable real parameters are declared as class attributes ``lengthscale = Hyperparameter(positive=True)``: the
constructor assigns the value (a float, or a torch/jax 0-d array, validated by the descriptor), host code reads
``self.lengthscale`` (its current value as a float), and ``_profile`` uses ``self._hyper("lengthscale", t, xp)``,
the tensor itself when it belongs to t's library, so that autograd reaches it (``kernel.hyperparameters`` lists
them). The spectrum cache is keyed by ``_params()``, so in-place updates of such tensors are seen.

Class attributes: ``dimension_dependent`` (the profile depends on q), ``has_corner`` (:math:`\varphi` is not
differentiable at t = 1), ``exact_diagonal`` (``gram(X)`` puts :math:`\varphi(1)` on its diagonal even without a
corner), ``degree`` (polynomial degree or None), ``name`` (short name), ``spectrum_rtol``.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import array_api_compat
import numpy as np
from scipy import special

from .._array_api import array_namespace
from .._validate import (
    check_degree,
    check_dimension,
    check_hyperparameter,
    check_inner_products,
    check_points,
    host_float,
)
from ..gegenbauer import harmonic_dimension, log_harmonic_dimension

if TYPE_CHECKING:
    from .algebra import TruncatedKernel

__all__ = ["DotProductKernel", "SpectrumAccuracyWarning"]

#: entries kept per kernel instance in the spectrum cache (one entry per (q, degree) asked)
SPECTRUM_CACHE_SIZE = 32


class SpectrumAccuracyWarning(RuntimeWarning):
    """A spectrum or profile could not reach its stated accuracy; the message gives the accuracy achieved.

    See Also
    --------
    DotProductKernel.spectrum_error : the error bound of each coefficient.

    Examples
    --------
    >>> import warnings
    >>> from dotkernels import MaternKernel
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = MaternKernel(nu=1.5, lengthscale=1e-3).profile(0.5, q=3)
    >>> caught[0].category.__name__
    'SpectrumAccuracyWarning'
    """


def signed_exp(log_abs: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """``sign * exp(log_abs)`` with exact zeros where ``sign == 0`` (overflow to inf is allowed)."""
    with np.errstate(over="ignore"):
        out = np.asarray(sign, dtype=np.float64) * np.exp(log_abs)
    out = np.atleast_1d(out)
    out[np.atleast_1d(sign) == 0] = 0.0
    return out


def log_abs_sign(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log|v|, sign(v))`` of real values, ``-inf`` and 0 for zeros."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(np.abs(values)), np.sign(values)


class Hyperparameter:
    """A real parameter of a kernel that may be a 0-d torch or jax array (then learnable by autograd).

    Reading the attribute gives its current value as a Python float (host computations: spectra, ``repr``, equality,
    the spectrum cache, which is keyed by it, so that an optimiser's in-place update is seen); the value as given
    (the tensor) is in ``kernel.hyperparameters`` and is what ``_profile`` uses through :func:`hyperparameter_in`.
    """

    def __init__(self, *, positive: bool = False, nonnegative: bool = False):
        self.positive = positive
        self.nonnegative = nonnegative
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return host_float(obj.__dict__["_hyperparameters"][self.name])

    def __set__(self, obj: Any, value: Any) -> None:
        value = check_hyperparameter(value, self.name, positive=self.positive, nonnegative=self.nonnegative)
        obj.__dict__.setdefault("_hyperparameters", {})[self.name] = value


def hyperparameter_in(raw: Any, t: Any, xp: Any) -> Any:
    """A hyperparameter for arithmetic with the array ``t`` of namespace ``xp``: the tensor itself (cast to t's
    dtype and device, keeping its graph) when it belongs to the same library, else its current value as a float."""
    if isinstance(raw, float):
        return raw
    try:
        same = array_api_compat.array_namespace(raw) is xp
    except TypeError:
        same = False
    if not same:
        return host_float(raw)
    raw = xp.astype(raw, t.dtype) if raw.dtype != t.dtype else raw
    device = array_api_compat.device(t)
    return raw if array_api_compat.device(raw) == device else array_api_compat.to_device(raw, device)


def numpy_scalar(x: Any) -> Any:
    """A 0-d numpy array as a numpy scalar (the scipy convention); anything else unchanged."""
    return x[()] if isinstance(x, np.ndarray) and x.ndim == 0 else x


def clip_through(x: Any, xp: Any, low: float | None = None, high: float | None = None) -> Any:
    """``clip(x, low, high)`` whose derivative is 1 everywhere, for autograd at the ends of an interval.

    ``xp.clip`` (``torch.clamp``, ``jnp.clip``) gives a zero or halved gradient at a value equal to a bound, so the
    derivative of a profile at t = 1 exactly would be lost; here a value beyond a bound becomes
    ``x - (x - bound)`` with the difference taken without gradient: exactly the bound (Sterbenz: x is within a
    factor 2 of it, as rounding leaves it), with the gradient of x, and a value on a bound keeps its gradient:
    autograd gives the one-sided derivative from inside.
    """
    if high is not None:
        x = xp.where(x > high, x - without_gradient(x - high), x)
    if low is not None:
        x = xp.where(x < low, x - without_gradient(x - low), x)
    return x


def snap_to(x: Any, value: float) -> Any:
    """``value`` exactly where x rounds near it (within a factor 2), with the gradient of x."""
    return x - without_gradient(x - value)


def without_gradient(x: Any) -> Any:
    """x detached from autograd (torch ``detach``, jax ``stop_gradient``); anything else unchanged."""
    if hasattr(x, "detach") and callable(x.detach):
        return x.detach()
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(x, jax.Array):
        return jax.lax.stop_gradient(x)
    return x


def _put_diagonal(K: Any, value: Any, eye: Any, xp: Any) -> Any:
    """K with ``value`` on its diagonal (exactly), the diagonal keeping the gradient of K's entries there."""
    if isinstance(K, np.ndarray) or not (array_api_compat.is_torch_array(K) or array_api_compat.is_jax_array(K)):
        return xp.where(eye, value, K)
    difference = K - without_gradient(K)  # 0 with the gradient of K
    difference = xp.where(xp.isfinite(K), difference, xp.zeros_like(K))
    return xp.where(eye, difference + without_gradient(value), K)


class DotProductKernel:
    r"""Base class of dot-product kernels :math:`k(x, y) = \varphi(\langle x, y\rangle)` on the sphere.

    One kernel object serves every dimension: ``q`` comes from the data (:meth:`gram`) or is passed as a keyword
    (``spectrum(degree, q=q)``; ``profile(t, q=q)`` for kernels whose profile depends on q, flagged by
    ``dimension_dependent``). See the module docstring of :mod:`dotkernels.kernels._base` for the hooks a family
    implements.

    Attributes
    ----------
    dimension_dependent : bool
        True when :math:`\varphi` itself depends on q: ``profile`` then needs ``q``.
    degree : int or None
        Polynomial degree of :math:`\varphi` when it is a polynomial, else None.
    has_corner : bool
        True when :math:`\varphi` is not differentiable at t = 1: ``gram`` then puts :math:`\varphi(\pm 1)` at
        coinciding / antipodal points analytically.
    exact_diagonal : bool
        True when ``gram(X)`` puts :math:`\varphi(1)` exactly on its diagonal also without a corner (families
        whose profile is approximated, so that a normalised kernel has exactly 1 there, and series kernels, whose
        :math:`\varphi(1)` is the compensated sum of their coefficients).
    spectrum_rtol : float
        The floor of the relative error bound of each computed :math:`a_l` (where it does not under- or overflow
        float64); :meth:`spectrum_error` gives the bound per degree, which grows above it at high degree.

    See Also
    --------
    dotkernels.kernels.parse_kernel : kernels from strings.
    MaternKernel, GaussianKernel, HeatKernel : families.

    Notes
    -----
    Hyperparameters declared with :class:`Hyperparameter` (``lengthscale``, ``gamma``, ``kappa``, ``time``, ...) may
    be torch or jax scalars: ``gram``, ``profile`` and ``derivative`` are then differentiable in them, while host
    methods (``spectrum``, ``repr``, equality) read their current values.

    References
    ----------
    .. [1] I. J. Schoenberg, "Positive definite functions on spheres", Duke Math. J. 9, 96-108, 1942.
    .. [2] C. Müller, "Spherical Harmonics", Lecture Notes in Mathematics 17, Springer, 1966 (Funk–Hecke formula).

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels import GaussianKernel
    >>> k = GaussianKernel(gamma=1.0)
    >>> k.is_positive_semidefinite(q=3), round(float(k.profile(0.5)), 6)
    (True, 0.367879)
    """

    dimension_dependent: bool = False
    degree: int | None = None
    has_corner: bool = False
    exact_diagonal: bool = False
    name: str = "kernel"
    spectrum_rtol: float = 1e-12

    # ---- hooks --------------------------------------------------------------------------------------------------
    def _profile(self, t: Any, xp: Any, q: int | None) -> Any:
        raise NotImplementedError

    def _derivative(self, t: Any, xp: Any, q: int | None) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form derivative; use autograd")

    def _log_spectrum(self, q: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _params(self) -> tuple:
        return ()

    def _named_params(self) -> list[tuple[str, Any]]:
        return []

    def _phi_at_one(self, q: int | None) -> float:
        return float(self._profile(np.ones(1), np, q)[0])

    def _log_phi_at_one(self, q: int | None) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.log(self._phi_at_one(q)))

    def _uniform_mean_embedding(self, q: int) -> float:
        return float(self.spectrum(0, q=q)[0])

    def _warn_beyond_range(self, dtype: Any, xp: Any, q: int | None) -> None:
        """RuntimeWarning where phi(1) is beyond the largest finite value of ``dtype`` (narrower than float64): the
        profile then overflows to inf there. ln phi(1) is computed once per (parameters, q)."""
        try:
            largest = float(xp.finfo(dtype).max)
        except (TypeError, ValueError):  # not a floating dtype
            return
        if largest >= float(np.finfo(np.float64).max):
            return
        memo = self.__dict__.setdefault("_log_phi_memo", {})
        key = (self._params(), q)
        if key not in memo:
            try:
                memo[key] = float(self._log_phi_at_one(q))
            except (ArithmeticError, ValueError, NotImplementedError):
                memo[key] = math.nan
            while len(memo) > SPECTRUM_CACHE_SIZE:
                memo.pop(next(iter(memo)))
        log_phi = memo[key]
        if log_phi > math.log(largest):
            if log_phi < 700.0:
                value = f"{math.exp(log_phi):.3g}"
            else:  # beyond float64 too: mantissa and exponent from the logarithm
                exponent = math.floor(log_phi / math.log(10.0))
                mantissa = math.exp(log_phi - exponent * math.log(10.0))
                value = f"{mantissa:.3f}e+{exponent}"
            warnings.warn(
                f"phi(1) of {self!r}{'' if q is None else f' at q={q}'} is {value}, beyond the largest {dtype} value "
                f"({largest:.3g}): the profile overflows to inf in {dtype} near t = 1. Compute in float64, or scale "
                "the kernel down (c * kernel, or a normalised kernel)",
                RuntimeWarning,
                stacklevel=3,
            )

    def _positive_semidefinite(self, q: int) -> bool | None:
        return None

    def _strictly_positive_definite(self, q: int) -> bool | None:
        return None

    def _spectrum_error(self, q: int, degree: int) -> np.ndarray:
        rtol = np.maximum(self.spectrum_rtol, 5e-16 * log_harmonic_dimension(np.arange(degree + 1), q=q))
        return rtol * np.abs(self.spectrum(degree, q=q))

    def _gram_diagonal(self, G: Any, xp: Any, q: int) -> Any:
        """phi(1) on the diagonal of ``gram(X)``: the host value, or the profile at 1 (in G's library) where tensor
        hyperparameters carry a gradient."""
        if not self._tensor_hyperparameters():
            return self._phi_at_one(q)
        return self._profile(xp.ones(1, dtype=G.dtype, device=array_api_compat.device(G)), xp, q)[0]

    def _hyper(self, name: str, t: Any, xp: Any) -> Any:
        """The hyperparameter ``name`` for arithmetic with ``t``: its tensor (same library) or its float value."""
        return hyperparameter_in(self.__dict__["_hyperparameters"][name], t, xp)

    def _tensor_hyperparameters(self) -> bool:
        return any(not isinstance(v, float) for v in self.__dict__.get("_hyperparameters", {}).values())

    # ---- validation ---------------------------------------------------------------------------------------------
    def _needs_q(self, q: Any) -> int | None:
        if q is None:
            if self.dimension_dependent:
                raise ValueError(
                    f"q is required: the profile of {self!r} depends on the dimension (pass q=..., or use gram(X))"
                )
            return None
        return check_dimension(q)

    # ---- spectrum -----------------------------------------------------------------------------------------------
    def log_spectrum(self, degree: int, *, q: int) -> tuple[np.ndarray, np.ndarray]:
        r"""Gegenbauer coefficients in log space: ``(log|a_l|, sign(a_l))`` for l = 0..degree.

        Float64 host arrays (read-only); zero coefficients have sign 0 and log ``-inf``. ``log|a_l|`` is finite
        where :math:`a_l` itself over- or underflows float64 (:math:`N(q, l)` is astronomically large at large q).
        Accuracy: the absolute error of ``log|a_l|`` is, to first order, the relative error of :math:`a_l`, bounded
        by ``spectrum_error(degree, q=q) / |a_l|``; it is never below half an ulp of :math:`\ln|a_l|` (4.5e-13
        once :math:`|\ln a_l| \ge 4096`). For the closed-form families it is
        :math:`\max(\text{spectrum\_rtol}, 2\epsilon M_l)`, :math:`M_l` the size of the logarithms combined
        (:mod:`dotkernels.kernels.closed_form`).

        Parameters
        ----------
        degree : int
            Largest degree l, >= 0.
        q : int
            Dimension of :math:`\mathbb{R}^q` (the sphere :math:`S^{q-1}`), >= 2, keyword-only.

        Returns
        -------
        log_abs : numpy.ndarray
            :math:`\ln|a_l|`, float64, read-only (``-inf`` for zero coefficients).
        sign : numpy.ndarray
            :math:`\operatorname{sign}(a_l)`, float64, read-only.

        See Also
        --------
        spectrum : the same in linear scale.
        log_eigenvalues : the Mercer eigenvalues in log space.

        Examples
        --------
        >>> from dotkernels import ExponentialKernel
        >>> log_abs, sign = ExponentialKernel(kappa=1.0).log_spectrum(2, q=65536)
        >>> sign.tolist()
        [1.0, 1.0, 1.0]
        """
        q = check_dimension(q)
        degree = check_degree(degree)
        cache = self.__dict__.get("_spectrum_cache")
        if cache is None:
            cache = self.__dict__["_spectrum_cache"] = OrderedDict()
        key = (q, degree, self._params())  # the current parameter values: in-place updates of tensors are seen
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        log_abs, sign = self._log_spectrum(q, degree)
        log_abs = np.array(log_abs, dtype=np.float64)
        sign = np.array(sign, dtype=np.float64)
        if log_abs.shape != (degree + 1,) or sign.shape != (degree + 1,):
            raise ValueError(f"{type(self).__name__}._log_spectrum must return two arrays of length {degree + 1}")
        sign[np.isneginf(log_abs)] = 0.0
        log_abs[sign == 0] = -np.inf
        if np.any(np.isnan(log_abs)):
            raise FloatingPointError(f"spectrum of {self!r} at q={q} produced NaN")
        log_abs.setflags(write=False)
        sign.setflags(write=False)
        cache[key] = (log_abs, sign)
        while len(cache) > SPECTRUM_CACHE_SIZE:
            cache.popitem(last=False)
        return log_abs, sign

    def spectrum(self, degree: int, *, q: int) -> np.ndarray:
        r"""Gegenbauer coefficients :math:`a_0, \dots, a_{degree}` of :math:`\varphi` in dimension q (float64).

        :math:`\varphi(t) = \sum_l a_l P_{l,q}(t)`, :math:`a_l = N(q,l) E_{\nu_q}[\varphi P_{l,q}]`. Computed in log
        space (see :meth:`log_spectrum`) as :math:`\ln N(q,l) + \ln|\lambda_l|`; each coefficient that neither over-
        nor underflows float64 is within :meth:`spectrum_error` of the exact value, for every q >= 2 (one that
        overflows is ``inf``, with a RuntimeWarning). For the
        closed-form families that bound is :math:`\max(\text{spectrum\_rtol}, 2\epsilon M_l)` relative
        (``spectrum_rtol`` = 1e-12; :math:`M_l`, the size of the logarithms combined, grows like
        :math:`l \ln(l + q)` and with the parameter: 1e-12 at low degree, 8.6e-12 for the Gaussian kernel at
        q = 1000, gamma = 300, l ~ 1300; see :mod:`dotkernels.kernels.closed_form`).

        Parameters
        ----------
        degree : int
            Largest degree l, >= 0.
        q : int
            Dimension of :math:`\mathbb{R}^q` (the sphere :math:`S^{q-1}`), >= 2, keyword-only.

        Returns
        -------
        numpy.ndarray
            :math:`a_0, \dots, a_{degree}` (float64).

        See Also
        --------
        log_spectrum : the same in log space (finite at any q).
        eigenvalues : :math:`a_l / N(q, l)`.
        spectrum_error : a bound on the error of each coefficient.

        Examples
        --------
        >>> from dotkernels import GaussianKernel
        >>> a = GaussianKernel(gamma=1.0).spectrum(4, q=3)
        >>> bool((a > 0).all())
        True
        """
        log_abs, sign = self.log_spectrum(degree, q=q)
        out = signed_exp(log_abs, sign)
        overflow = np.isinf(out)
        if overflow.any():
            l = int(np.argmax(overflow))
            warnings.warn(
                f"{int(overflow.sum())} Gegenbauer coefficients of {self!r} at q={q} are beyond float64, the first at "
                f"degree {l} (ln|a_{l}| = {log_abs[l]:.10g}): inf there; log_spectrum gives them in log space",
                RuntimeWarning,
                stacklevel=2,
            )
        return out

    def spectrum_error(self, degree: int, *, q: int) -> np.ndarray:
        r"""Bound on the absolute error of each computed :math:`a_0, \dots, a_{degree}` (float64 array).

        Closed-form families return :math:`\max(\text{spectrum\_rtol}, 2\epsilon M_l)\, |a_l|` (see
        :meth:`spectrum`; held against mpmath at every degree up to the underflow on dense grids); series and
        product kernels their rigorous bounds; quadrature-based spectra (:class:`ProfileKernel`) their estimated
        error.

        Parameters
        ----------
        degree : int
            Largest degree l, >= 0.
        q : int
            Dimension of :math:`\mathbb{R}^q` (the sphere :math:`S^{q-1}`), >= 2, keyword-only.

        Returns
        -------
        numpy.ndarray
            Absolute error bound of each :math:`a_l` (float64).

        See Also
        --------
        spectrum : the coefficients themselves.

        Examples
        --------
        >>> from dotkernels import PoissonKernel
        >>> bool((PoissonKernel(rho=0.5).spectrum_error(3, q=3) < 1e-10).all())
        True
        """
        return np.asarray(self._spectrum_error(check_dimension(q), check_degree(degree)), dtype=np.float64)

    def log_eigenvalues(self, degree: int, *, q: int) -> tuple[np.ndarray, np.ndarray]:
        r"""Mercer eigenvalues in log space: ``(log|lambda_l|, sign(lambda_l))`` for l = 0..degree.

        :math:`\lambda_l = a_l / N(q, l)`, computed as :math:`\ln|a_l| - \ln N(q, l)` so that it stays finite where
        :math:`a_l` or :math:`N(q, l)` over- or underflows float64 (large q).

        Parameters
        ----------
        degree : int
            Largest degree l, >= 0.
        q : int
            Dimension of :math:`\mathbb{R}^q` (the sphere :math:`S^{q-1}`), >= 2, keyword-only.

        Returns
        -------
        log_abs : numpy.ndarray
            :math:`\ln|\lambda_l|` (float64, ``-inf`` where :math:`\lambda_l = 0`).
        sign : numpy.ndarray
            :math:`\operatorname{sign}(\lambda_l)` (float64: 1, -1 or 0).

        See Also
        --------
        eigenvalues : the same in linear scale, with the multiplicities.
        log_spectrum : the Gegenbauer coefficients :math:`a_l` in log space.

        Notes
        -----
        Accuracy: that of :meth:`log_spectrum` plus 4 eps relative in :math:`\ln N(q, l)`.

        Examples
        --------
        >>> from dotkernels import GaussianKernel
        >>> log_lam, sign = GaussianKernel(gamma=1.0).log_eigenvalues(3, q=100000)
        >>> bool(np.all(np.isfinite(log_lam))), sign.tolist()
        (True, [1.0, 1.0, 1.0, 1.0])
        """
        log_abs, sign = self.log_spectrum(degree, q=q)
        log_lam = log_abs - log_harmonic_dimension(np.arange(degree + 1), q=q)
        log_lam[sign == 0] = -np.inf
        return log_lam, sign.copy()

    def eigenvalues(
        self, degree: int, *, q: int, return_multiplicities: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        r"""Mercer eigenvalues :math:`\lambda_l = a_l / N(q, l)`, l = 0..degree, and optionally their multiplicities.

        The integral operator :math:`(T f)(x) = \int k(x, y) f(y)\, d\sigma(y)`, :math:`\sigma` the uniform
        *probability* measure on :math:`S^{q-1}`, has eigenvalue :math:`\lambda_l` on the spherical harmonics of
        degree l, a space of dimension :math:`N(q, l)` (Funk–Hecke):
        :math:`k(x, y) = \sum_l \lambda_l \sum_{m=1}^{N(q,l)} Y_{lm}(x) Y_{lm}(y)` with :math:`Y_{lm}`
        orthonormal in :math:`L^2(\sigma)`. (With the surface measure of
        total mass :math:`|S^{q-1}|` instead, every eigenvalue is multiplied by :math:`|S^{q-1}|`.) The Gram matrix of
        n points drawn uniformly, divided by n, has eigenvalues close to :math:`\lambda_l`, each
        :math:`N(q, l)` times.

        Parameters
        ----------
        degree : int
            Largest degree l, >= 0.
        q : int
            Dimension of :math:`\mathbb{R}^q` (the sphere :math:`S^{q-1}`), >= 2, keyword-only.
        return_multiplicities : bool
            Also return :math:`N(q, l)` (keyword-only).

        Returns
        -------
        eigenvalues : numpy.ndarray
            :math:`\lambda_0, \dots, \lambda_{degree}` (float64; 0 where they underflow, see
            :meth:`log_eigenvalues`).
        multiplicities : numpy.ndarray
            Only with ``return_multiplicities``: :math:`N(q, l)` as int64, or as exact Python ints (object array)
            when one exceeds int64.

        See Also
        --------
        log_eigenvalues : the same in log space (finite at any q).
        spectrum : the Gegenbauer coefficients :math:`a_l = N(q, l) \lambda_l`.
        dotkernels.harmonic_dimension : the multiplicity :math:`N(q, l)`.

        Notes
        -----
        Accuracy: the relative accuracy of :meth:`spectrum` (``spectrum_rtol``, 1e-12 unless the family states
        otherwise) plus the rounding of :math:`\ln N(q, l)` (4 eps relative).

        Examples
        --------
        >>> from dotkernels import MonomialKernel
        >>> lam, mult = MonomialKernel(p=1).eigenvalues(2, q=3, return_multiplicities=True)
        >>> lam.round(12).tolist(), mult.tolist()  # <x, y> = (1/3) sum_m Y_1m(x) Y_1m(y)
        ([0.0, 0.333333333333, 0.0], [1, 3, 5])
        """
        log_lam, sign = self.log_eigenvalues(degree, q=q)
        lam = signed_exp(log_lam, sign)
        if not return_multiplicities:
            return lam
        counts = [harmonic_dimension(l, q=q) for l in range(degree + 1)]
        if max(counts) < 2**63:
            return lam, np.array(counts, dtype=np.int64)
        return lam, np.array(counts, dtype=object)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        r"""The real parameters declared learnable, as given to the constructor (floats, or torch/jax 0-d arrays).

        Attributes read from the kernel (``kernel.lengthscale``) are their current values as floats; this mapping
        keeps the tensors themselves, e.g. to hand them to an optimiser. Empty for families without such parameters.

        Returns
        -------
        dict
            Parameter name to value, in constructor order.

        See Also
        --------
        gram : differentiable in these parameters when they are tensors that require grad.

        Examples
        --------
        >>> from dotkernels import GaussianKernel
        >>> GaussianKernel(gamma=2.0).hyperparameters
        {'gamma': 2.0}
        """
        return dict(self.__dict__.get("_hyperparameters", {}))

    def uniform_mean_embedding(self, *, q: int) -> float:
        r"""Mean embedding of the uniform distribution, the constant :math:`a_0 = E_{\nu_q}[\varphi]`.

        It equals :math:`\|\mu_\sigma\|^2`; the squared MMD to the uniform law is the Gram matrix's mean minus
        :math:`a_0`. Accuracy: ``spectrum_rtol`` relative.

        Parameters
        ----------
        q : int
            Dimension of :math:`\mathbb{R}^q` (the sphere :math:`S^{q-1}`), >= 2, keyword-only.

        Returns
        -------
        float
            :math:`a_0`.

        See Also
        --------
        spectrum : all the coefficients.
        dotkernels.mmd2_uniform : the squared MMD to the uniform law.

        Examples
        --------
        >>> from dotkernels import SFRIKKernel
        >>> SFRIKKernel().uniform_mean_embedding(q=128)
        0.0
        """
        return float(self._uniform_mean_embedding(check_dimension(q)))

    def truncation_error(self, degree: int, *, q: int) -> float:
        r""":math:`\varphi(1) - \sum_{l \le degree} a_l`, the tail :math:`\sum_{l > degree} a_l` of the series.

        When every :math:`a_l \ge 0` (a positive semi-definite kernel) this is the sup-norm error of the
        degree-``degree`` truncation on [-1, 1] (attained at t = 1). Accuracy: absolute, about
        ``1e-15 * max(|phi(1)|, sum |a_l|)`` plus the spectrum's error (the difference is formed in float64).
        Where :math:`\varphi(1)` is beyond float64 (see :meth:`log_phi_at_one`) the difference cannot be formed:
        ``inf``, with a RuntimeWarning giving the tail relative to :math:`\varphi(1)`.

        Parameters
        ----------
        degree : int
            Largest degree l, >= 0.
        q : int
            Dimension of :math:`\mathbb{R}^q` (the sphere :math:`S^{q-1}`), >= 2, keyword-only.

        Returns
        -------
        float
            :math:`\varphi(1) - \sum_{l \le degree} a_l`.

        See Also
        --------
        truncate : the truncated kernel itself.

        Examples
        --------
        >>> from dotkernels import SFRIKKernel
        >>> SFRIKKernel().truncation_error(3, q=8)
        0.0
        """
        q = check_dimension(q)
        degree = check_degree(degree)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # coefficients beyond float64: the warning below says it
            phi, a = float(self._phi_at_one(q)), self.spectrum(degree, q=q)
        if math.isfinite(phi) and np.isfinite(a).all():
            return float(phi - math.fsum(a))
        # phi(1) beyond float64: the tail is known only relative to phi(1), to about eps * ln phi(1)
        log_phi = float(self._log_phi_at_one(q))
        log_abs, signs = self.log_spectrum(degree, q=q)
        head, sign = special.logsumexp(log_abs, b=signs, return_sign=True)
        relative = -math.expm1(head - log_phi) + 0.0 if sign > 0 else math.nan
        warnings.warn(
            f"phi(1) of {self!r} at q={q} is beyond float64 (ln phi(1) = {log_phi:.10g}), so its tail beyond degree "
            f"{degree} cannot be formed in float64: returning inf; relative to phi(1) the tail is {relative:.3g} "
            f"(to about {4e-16 * max(1.0, abs(log_phi)):.1g})",
            RuntimeWarning,
            stacklevel=2,
        )
        return math.inf

    # ---- definiteness -------------------------------------------------------------------------------------------
    def is_positive_semidefinite(self, *, q: int, degree: int | None = None) -> bool:
        r"""Schoenberg's criterion on :math:`S^{q-1}`: every :math:`a_l \ge 0`.

        The family's closed-form answer is used when it is known for every degree and ``degree`` is None;
        otherwise :math:`a_0, \dots, a_{degree}` are checked (default ``degree``: the polynomial degree, else 128 —
        for an infinite series of unknown sign pattern the answer is then a necessary condition only).

        Parameters
        ----------
        q : int
            Dimension of :math:`\mathbb{R}^q` (the sphere :math:`S^{q-1}`), >= 2, keyword-only.
        degree : int, optional
            Check the coefficients up to this degree only (keyword-only).

        Returns
        -------
        bool
            Whether every checked :math:`a_l \ge 0`.

        See Also
        --------
        is_strictly_positive_definite : the strict condition.

        Examples
        --------
        >>> from dotkernels import DistanceKernel, SFRIKKernel
        >>> SFRIKKernel().is_positive_semidefinite(q=3), DistanceKernel(s=1.0).is_positive_semidefinite(q=3)
        (True, False)
        """
        q = check_dimension(q)
        if degree is None:
            known = self._positive_semidefinite(q)
            if known is not None:
                return bool(known)
            degree = self.degree if self.degree is not None else 128
        _, sign = self.log_spectrum(check_degree(degree), q=q)
        return bool(np.all(sign >= 0))

    def is_strictly_positive_definite(self, *, q: int) -> bool | None:
        r"""Schoenberg's strict condition on :math:`S^{q-1}`; None when it cannot be decided.

        Strict positive definiteness (every Gram matrix of distinct points is positive definite) holds for a
        positive semi-definite kernel iff, for q >= 3, infinitely many :math:`a_l` of even and infinitely many of
        odd degree are positive (Chen, Menegatto & Sun 2003), and for q = 2 iff the degrees
        :math:`\{l \in \mathbb{Z} : a_{|l|} > 0\}` meet every arithmetic progression of :math:`\mathbb{Z}`
        (Menegatto 1995; Pinkus 2004). A finite series (a polynomial profile) is never strictly positive definite.

        Parameters
        ----------
        q : int
            Dimension of :math:`\mathbb{R}^q` (the sphere :math:`S^{q-1}`), >= 2, keyword-only.

        Returns
        -------
        bool or None
            The answer, or None when it cannot be decided from what the family knows.

        See Also
        --------
        is_positive_semidefinite : Schoenberg's condition.

        Examples
        --------
        >>> from dotkernels import GaussianKernel, SFRIKKernel
        >>> GaussianKernel().is_strictly_positive_definite(q=3), SFRIKKernel().is_strictly_positive_definite(q=3)
        (True, False)
        """
        q = check_dimension(q)
        if self.degree is not None:
            return False
        known = self._positive_semidefinite(q)
        if known is False:
            return False
        answer = self._strictly_positive_definite(q)
        return None if answer is None else bool(answer)

    # ---- evaluation ---------------------------------------------------------------------------------------------
    def profile(self, t: Any, *, q: int | None = None, validate: bool = True) -> Any:
        r"""The profile :math:`\varphi(t)` on any array-API array (same type, dtype and device as ``t``).

        ``q`` is required for ``dimension_dependent`` kernels. ``validate`` checks that t is finite and inside
        [-1, 1] up to rounding (one reduction; pass False in hot loops). Accuracy: a few ulps of the dtype for
        closed-form profiles; series-defined profiles state theirs.

        Parameters
        ----------
        t : array_like
            Inner products in [-1, 1]: any array-API array, a number or a sequence.
        q : int, optional
            Dimension, keyword-only; required for ``dimension_dependent`` kernels.
        validate : bool
            Check that t is finite and in [-1, 1] up to rounding (keyword-only); skipped under ``jax.jit``, where
            the values of t are not known while it traces.

        Returns
        -------
        array
            :math:`\varphi(t)`, of t's library, dtype and device (a NumPy scalar for a number). Where
            :math:`\varphi(1)` is beyond the largest value of a dtype narrower than float64 (float32, float16), the
            values near t = 1 overflow to inf: a RuntimeWarning names the dtype and :math:`\varphi(1)`.

        See Also
        --------
        derivative : :math:`\varphi'(t)`.
        gram : the kernel matrix of points.

        Examples
        --------
        >>> from dotkernels import ExponentialKernel
        >>> float(ExponentialKernel(kappa=2.0).profile(0.5))
        2.718281828459045
        """
        q = self._needs_q(q)
        t, xp = check_inner_products(t, validate=validate)
        self._warn_beyond_range(t.dtype, xp, q)
        return numpy_scalar(self._profile(t, xp, q))

    def derivative(self, t: Any, *, q: int | None = None, validate: bool = True) -> Any:
        r""":math:`\varphi'(t)` on any array-API array (same type, dtype and device as ``t``).

        Accuracy: a few ulps of the dtype for closed forms; series kernels sum the derivative series in dimension
        q + 2 (absolute error of a few ulps times :math:`\sum_l |a_l| l (l + q - 2) / (q - 1)`). Kernels with a
        corner at t = 1 (``has_corner``) have an infinite derivative there.

        Parameters
        ----------
        t : array_like
            Inner products in [-1, 1]: any array-API array, a number or a sequence.
        q : int, optional
            Dimension, keyword-only; required for ``dimension_dependent`` kernels.
        validate : bool
            Check that t is finite and in [-1, 1] up to rounding (keyword-only).

        Returns
        -------
        array
            :math:`\varphi'(t)`, of t's library, dtype and device.

        See Also
        --------
        profile : :math:`\varphi(t)`.

        Examples
        --------
        >>> from dotkernels import MonomialKernel
        >>> float(MonomialKernel(p=3).derivative(0.5))
        0.75
        """
        q = self._needs_q(q)
        t, xp = check_inner_products(t, validate=validate)
        return numpy_scalar(self._derivative(t, xp, q))

    def __call__(self, t: Any, *, q: int | None = None) -> Any:
        return self.profile(t, q=q)

    def phi_at_one(self, *, q: int | None = None) -> float:
        r""":math:`\varphi(1) = k(x, x) = \sum_l a_l` (``q`` needed for dimension-dependent kernels).

        Accuracy: the closed form rounded to float64 (a few ulps); for series kernels the compensated sum of their
        coefficients.

        Parameters
        ----------
        q : int, optional
            Dimension, keyword-only; required for ``dimension_dependent`` kernels.

        Returns
        -------
        float
            :math:`\varphi(1)` (``inf`` beyond float64, with a warning).

        See Also
        --------
        log_phi_at_one : its logarithm.

        Examples
        --------
        >>> from dotkernels import SFRIKKernel
        >>> SFRIKKernel().phi_at_one(q=3)
        81.0
        """
        q = self._needs_q(q)
        value = float(self._phi_at_one(q))
        if math.isinf(value):
            warnings.warn(
                f"phi(1) of {self!r}{'' if q is None else f' at q={q}'} is beyond float64 "
                f"(ln phi(1) = {self._log_phi_at_one(q):.10g}); log_phi_at_one gives it in log space",
                RuntimeWarning,
                stacklevel=2,
            )
        return value

    def log_phi_at_one(self, *, q: int | None = None) -> float:
        r"""Natural logarithm of :math:`\varphi(1) = k(x, x)`, finite where :math:`\varphi(1)` overflows float64.

        Parameters
        ----------
        q : int, optional
            Dimension of :math:`\mathbb{R}^q`, needed for dimension-dependent kernels (keyword-only).

        Returns
        -------
        float
            :math:`\ln \varphi(1)`; ``-inf`` when :math:`\varphi(1) = 0`. A negative :math:`\varphi(1)` (possible
            only for truncated or summed conditionally positive definite kernels) raises ValueError.

        See Also
        --------
        phi_at_one : the value itself (``inf`` with a RuntimeWarning beyond float64).
        log_spectrum : the coefficients, whose sum is :math:`\varphi(1)`, in log space.

        Notes
        -----
        Accuracy: the closed form in log space, to a few ulps of :math:`\max(1, |\ln\varphi(1)|)` absolute, for
        the families that can overflow (exponential, Poisson, generating-function, inverse multiquadric,
        polynomial, ReLU network kernels, products, and sums and positive multiples of these); for the others,
        the logarithm of :meth:`phi_at_one`.

        Examples
        --------
        >>> from dotkernels import PoissonKernel
        >>> round(PoissonKernel(rho=0.5).log_phi_at_one(q=8192) / math.log(10), 2)  # phi(1) = 1.5 * 2^8191
        2465.91
        """
        q = self._needs_q(q)
        value = float(self._log_phi_at_one(q))
        if math.isnan(value):
            raise ValueError(f"phi(1) of {self!r} is negative ({self._phi_at_one(q)!r}): use phi_at_one")
        return value

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
            Tolerance on the row norms; default ``10 * sqrt(eps)`` of the dtype.

        Returns
        -------
        array
            (n, m) matrix of X's type, dtype and device, accurate to the profile's accuracy at the computed inner
            products (whose rounding, about eps of the dtype, dominates). Inner products are clipped to [-1, 1]
            (the diagonal of ``gram(X)`` at t = 1 exactly); for kernels with a corner at t = 1 (``has_corner``),
            inner products within eps of +-1 (coinciding or antipodal points) are taken at exactly +-1, and the
            diagonal is :math:`\varphi(1)` exactly. Kernels flagged ``exact_diagonal`` (Matérn, heat and the other
            series kernels) also put :math:`\varphi(1)` exactly on the diagonal of ``gram(X)``.

        See Also
        --------
        profile : the profile at given inner products.
        eigenvalues : the eigenvalues of the integral operator.

        Notes
        -----
        Gradients (torch autograd, jax): the clipping keeps the gradient, so the derivative of an entry in X (and
        Y) is :math:`\varphi'(t)` times that of :math:`t = \langle x, y\rangle` everywhere, with the one-sided
        derivative of :meth:`profile` at t = +-1: on the diagonal, :math:`2 \varphi'(1) x_i` for the row
        :math:`x_i`. Where :math:`\varphi'(\pm 1)` is infinite (a corner), the profile's autograd gives its finite
        part there (see the family), never NaN.

        Under ``jax.jit`` the checks on the values of X and Y (finite, rows of unit norm) cannot run and are
        skipped; the checks on shapes still run. Where :math:`\varphi(1)` is beyond the largest value of a dtype
        narrower than float64 (float32, float16), the diagonal and the entries near it overflow to inf: a
        RuntimeWarning names the dtype and :math:`\varphi(1)`.

        Examples
        --------
        >>> import numpy as np
        >>> from dotkernels import MonomialKernel
        >>> MonomialKernel(p=2).gram(np.eye(2)).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
        """
        X, _ = check_points(X, "X", normalize=normalize, atol=atol, float64=False)
        same = Y is None
        Y = X if same else check_points(Y, "Y", normalize=normalize, atol=atol, float64=False)[0]
        xp = array_namespace(X, Y)
        if X.shape[1] != Y.shape[1]:
            raise ValueError(
                f"X and Y must have the same number of columns (dimension), got {X.shape[1]} and {Y.shape[1]}"
            )
        q = int(X.shape[1])
        self._warn_beyond_range(X.dtype, xp, q)
        G = xp.matmul(X, xp.matrix_transpose(Y))
        # clipped with the gradient kept (the profile's one-sided derivative at +-1, not torch.clamp's zero)
        T = clip_through(G, xp, -1.0, 1.0)
        if self.has_corner:
            # coinciding / antipodal points at exactly +-1 rather than in the open interval: the exact phi(+-1),
            # and autograd gets the family's gradient there (finite: the bounded part of an infinite derivative)
            eps = float(xp.finfo(G.dtype).eps)
            T = xp.where(G >= 1.0 - eps, snap_to(G, 1.0), xp.where(G <= -1.0 + eps, snap_to(G, -1.0), T))
        eye = None
        if same:
            index = xp.arange(int(G.shape[0]), device=array_api_compat.device(G))
            eye = index[:, None] == index[None, :]
            T = xp.where(eye, snap_to(G, 1.0), T)  # <x, x> = 1 exactly, with its gradient
        K = self._profile(T, xp, q)
        if same and (self.exact_diagonal or self.has_corner):
            # phi(1) exactly, whatever the rounding of the profile at 1; the gradient of the profile at t = 1
            K = _put_diagonal(K, self._gram_diagonal(G, xp, q), eye, xp)
        return K

    # ---- arithmetic ---------------------------------------------------------------------------------------------
    def __add__(self, other: Any) -> DotProductKernel:
        from .algebra import SumKernel

        if not isinstance(other, DotProductKernel):
            return NotImplemented
        return SumKernel([self, other])

    def __mul__(self, c: Any) -> DotProductKernel:
        from .algebra import ScaledKernel

        if isinstance(c, DotProductKernel):  # k1 * k2: the pointwise product, itself a dot-product kernel
            from .products import ProductKernel

            return ProductKernel([self, c])
        return ScaledKernel(c, self)

    __rmul__ = __mul__

    def truncate(self, degree: int) -> TruncatedKernel:
        r"""The kernel :math:`\sum_{l \le degree} a_l(q) P_{l,q}` (dimension dependent by construction).

        Parameters
        ----------
        degree : int
            Largest degree kept, >= 0.

        Returns
        -------
        TruncatedKernel
            The truncated kernel.

        See Also
        --------
        truncation_error : the sup-norm error of the truncation.

        Examples
        --------
        >>> from dotkernels import GaussianKernel
        >>> GaussianKernel(gamma=1.0).truncate(3).degree
        3
        """
        from .algebra import TruncatedKernel

        return TruncatedKernel(self, degree)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._named_params())
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._params() == other._params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._params()))
