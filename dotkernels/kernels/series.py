r"""Kernels defined by their Gegenbauer coefficients: finite series (Legendre, SFRIK, band-limited) and infinite
spectra (heat, user spectra) whose profile is the series itself.

The profile of a series kernel is evaluated by Clenshaw's recurrence (:func:`~dotkernels.legendre_series`), with an
absolute error of a few ulps times :math:`\sum_l |a_l|`; its derivative by the series of
:func:`~dotkernels.derivative_coefficients` in dimension q + 2. Infinite spectra are summed up to the degree where
the remaining terms fall below ``1e-17`` of the largest (:attr:`tail_rtol`), with a
:class:`SpectrumAccuracyWarning` stating the achieved accuracy where that degree exceeds ``max_degree``.
``gram(X)`` of one set of points puts :math:`\varphi(1)` (``phi_at_one``, the compensated sum of the coefficients)
exactly on its diagonal, whatever the rounding of :math:`\langle x, x\rangle`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np

from .._validate import check_coefficients, check_degree, host_float
from ..gegenbauer import (
    derivative_coefficients,
    harmonic_dimension,
    legendre_series,
    legendre_series_derivative,
    log_harmonic_dimension,
)
from ._base import SPECTRUM_CACHE_SIZE, DotProductKernel, Hyperparameter, SpectrumAccuracyWarning, log_abs_sign

__all__ = [
    "BandLimitedKernel",
    "HeatKernel",
    "LegendreSeriesKernel",
    "SFRIKKernel",
    "SpectralKernel",
]


class _SeriesProfile(DotProductKernel):
    """Kernels evaluated as the Gegenbauer series of ``_coefficients(q)`` (a float64 array a_0..a_L); ``gram(X)``
    puts phi(1), the compensated sum of the coefficients, on its diagonal."""

    dimension_dependent = True
    exact_diagonal = True

    def _coefficients(self, q: int) -> np.ndarray:
        raise NotImplementedError

    def _profile(self, t, xp, q):
        return legendre_series(self._coefficients(q), t, q=q, validate=False)

    def _derivative(self, t, xp, q):
        coef = derivative_coefficients(self._coefficients(q), q=q)
        return legendre_series(coef, t, q=q + 2, validate=False)

    def _phi_at_one(self, q):
        return float(math.fsum(self._coefficients(q)))


class _FiniteSeries(_SeriesProfile):
    """A finite series with fixed coefficients a_0..a_L, the same in every dimension."""

    _a: np.ndarray
    spectrum_rtol = 0.0

    def _set_spectrum(self, a: np.ndarray) -> None:
        nonzero = np.nonzero(a)[0]
        a = a[: (nonzero[-1] + 1 if nonzero.size else 1)].copy()
        a.setflags(write=False)
        self._a = a
        self.degree = a.size - 1

    def _coefficients(self, q):
        return self._a

    def spectrum(self, degree: int, *, q: int) -> np.ndarray:
        # the coefficients themselves (exact), not their round trip through log space
        self.log_spectrum(degree, q=q)
        a = np.zeros(degree + 1)
        m = min(degree + 1, self._a.size)
        a[:m] = self._a[:m]
        return a

    def _log_spectrum(self, q, degree):
        a = np.zeros(degree + 1)
        m = min(degree + 1, self._a.size)
        a[:m] = self._a[:m]
        return log_abs_sign(a)

    def _positive_semidefinite(self, q):
        return bool(np.all(self._a >= 0))


class LegendreSeriesKernel(_FiniteSeries):
    r"""Finite Legendre series :math:`\varphi(t) = \sum_{l=0}^{L} a_l P_{l,q}(t)` with fixed coefficients.

    The same coefficients in every dimension (the profile therefore depends on q); the spectrum is exact.
    Positive semi-definite iff every :math:`a_l \ge 0`; never strictly positive definite.

    Parameters
    ----------
    coefficients : sequence of float
        :math:`a_0, a_1, \dots, a_L` (trailing zeros are dropped).

    See Also
    --------
    SFRIKKernel : the same from degree 1, with non-negative coefficients.
    dotkernels.legendre_series : the Clenshaw sum that evaluates the profile.

    Examples
    --------
    >>> k = LegendreSeriesKernel([0.0, 1.0, 40.0, 40.0])
    >>> k.spectrum(5, q=128).tolist()
    [0.0, 1.0, 40.0, 40.0, 0.0, 0.0]
    """

    name = "legendre"

    def __init__(self, coefficients: Sequence[float]):
        self._set_spectrum(check_coefficients(coefficients, "coefficients", what="a_0, ..., a_L"))
        self.coefficients = self._a

    def _params(self):
        return tuple(self._a.tolist())

    def _named_params(self):
        return [("coefficients", self._a.tolist())]

    def __repr__(self):
        return f"LegendreSeriesKernel({self._a.tolist()!r})"


class SFRIKKernel(_FiniteSeries):
    r"""The SFRIK kernel (Zheng et al., ICLR 2023): :math:`\varphi(t) = \sum_{l=1}^{L} b_l P_{l,q}(t)`.

    Defaults :math:`(b_1, b_2, b_3) = (1, 40, 40)`, the paper's L = 3 choice; :math:`a_0 = 0`, so the batch mean of
    the Gram matrix is directly the squared MMD to the uniform distribution. Positive semi-definite, not strictly
    positive definite (a finite series); the spectrum is exact.

    Parameters
    ----------
    coefficients : sequence of float
        :math:`b_1, \dots, b_L`, non-negative (the coefficients of degrees 1..L).

    See Also
    --------
    LegendreSeriesKernel : any finite series from degree 0.

    References
    ----------
    .. [1] M. Zheng et al., "Self-supervised learning with a spherical kernel regulariser" (SFRIK), ICLR 2023.

    Examples
    --------
    >>> SFRIKKernel().spectrum(4, q=8192).tolist()
    [0.0, 1.0, 40.0, 40.0, 0.0]
    """

    name = "sfrik"

    def __init__(self, coefficients: Sequence[float] = (1.0, 40.0, 40.0)):
        b = check_coefficients(coefficients, "coefficients", what="b_1, ..., b_L")
        if np.any(b < 0):
            raise ValueError(f"coefficients must be non-negative, got {b.tolist()}")
        self._set_spectrum(np.concatenate([[0.0], b]))
        self.coefficients = tuple(b.tolist())

    def _params(self):
        return self.coefficients

    def _named_params(self):
        return [("coefficients", self.coefficients)]

    def _uniform_mean_embedding(self, q):
        return 0.0


class BandLimitedKernel(_SeriesProfile):
    r"""Band-limited kernel :math:`\varphi(t) = \sum_{l \le degree} N(q,l) P_{l,q}(t)`: the reproducing kernel of
    the polynomials of degree <= ``degree`` on :math:`S^{q-1}` (all Mercer eigenvalues equal to 1).

    Positive semi-definite, never strictly. Accuracy: :math:`a_l = N(q, l)` to 1e-12 relative (exactly an integer
    where it is below 2^53).

    Parameters
    ----------
    degree : int
        Largest degree L >= 0 of the polynomials reproduced.

    See Also
    --------
    dotkernels.harmonic_dimension : :math:`N(q, l)`.

    Examples
    --------
    >>> BandLimitedKernel(degree=2).spectrum(3, q=3).tolist()
    [1.0, 3.0, 5.0, 0.0]
    """

    name = "bandlimited"

    def __init__(self, degree: int = 2):
        self.degree = check_degree(degree)

    def _params(self):
        return (self.degree,)

    def _named_params(self):
        return [("degree", self.degree)]

    def _coefficients(self, q):
        return self.spectrum(self.degree, q=q)

    def spectrum(self, degree: int, *, q: int) -> np.ndarray:
        r"""Gegenbauer coefficients :math:`a_l = N(q, l)` up to the band limit, then 0 (exact integers below 2^53).

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
        >>> BandLimitedKernel(degree=1).spectrum(2, q=4).tolist()
        [1.0, 4.0, 0.0]
        """
        # N(q, l) exactly (integers below 2^53 are exact floats), not through log space
        log_abs, _ = self.log_spectrum(degree, q=q)
        a = np.zeros(degree + 1)
        for l in range(min(degree, self.degree) + 1):
            a[l] = float(harmonic_dimension(l, q=q)) if log_abs[l] < 700.0 else math.inf
        return a

    def _phi_at_one(self, q):
        # sum_{l <= L} N(q, l) = N(q + 1, L)
        total = harmonic_dimension(self.degree, q=q + 1)
        return float(total) if total < 2**1023 else math.inf

    def _uniform_mean_embedding(self, q):
        return 1.0

    def _log_spectrum(self, q, degree):
        degrees = np.arange(degree + 1)
        log_a = np.where(degrees <= self.degree, log_harmonic_dimension(degrees, q=q), -np.inf)
        return log_a, np.where(degrees <= self.degree, 1.0, 0.0)

    def _positive_semidefinite(self, q):
        return True


class _SpectrallyDefined(_SeriesProfile):
    """Kernels defined by an infinite spectrum: the profile is the series up to where the terms are negligible."""

    #: terms below this fraction of the largest |a_l| are dropped from the profile
    tail_rtol: float = 1e-17
    #: the largest degree summed; beyond it a SpectrumAccuracyWarning states the size of the last term
    max_degree: int = 1 << 16

    def _auto_degree(self, q: int) -> int:
        cache = self.__dict__.setdefault("_degree_cache", {})
        key = (q, self._params())  # the current parameter values: in-place updates of tensors are seen
        if key in cache:
            return cache[key]
        while len(cache) >= SPECTRUM_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        degree = 32
        while True:
            log_abs, _ = self.log_spectrum(degree, q=q)
            finite = log_abs[np.isfinite(log_abs)]
            top = finite.max() if finite.size else 0.0
            last = log_abs[-8:]
            decreasing = bool(np.all(np.diff(last) <= 0)) or not np.any(np.isfinite(last))
            small = bool(np.all(last < top + math.log(self.tail_rtol)))
            if (small and decreasing) or degree >= self.max_degree:
                break
            degree = min(2 * degree, self.max_degree)
        if not (small and decreasing):
            achieved = float(np.exp(last.max() - top)) if np.any(np.isfinite(last)) else 0.0
            warnings.warn(
                f"{self!r}: the spectrum in q={q} is still significant at degree {degree} (last terms "
                f"{achieved:.2g} of the largest); the profile is truncated there",
                SpectrumAccuracyWarning,
                stacklevel=4,
            )
            cache[key] = degree
            return degree
        keep = np.nonzero(log_abs >= top + math.log(self.tail_rtol))[0]
        cache[key] = int(keep[-1]) if keep.size else 0
        return cache[key]

    def _coefficients(self, q):
        return self.spectrum(self._auto_degree(q), q=q)


class HeatKernel(_SpectrallyDefined):
    r"""Heat kernel on :math:`S^{q-1}` at diffusion time ``time``: :math:`a_l = N(q,l)\, e^{-\tau l (l + q - 2)}`,
    :math:`\tau` = ``time``.

    :math:`l(l+q-2)` are the eigenvalues of the Laplace–Beltrami operator; :math:`a_0 = 1`. Defined by its
    spectrum (accurate to 1e-12 relative, every q); the profile is the series, truncated where the remaining terms
    are below 1e-17 of the largest (the terms decay faster than geometrically there), so :math:`\varphi` is
    accurate to about 1e-15 relative to :math:`\varphi(1)`. Strictly positive definite.
    :meth:`~DotProductKernel.gram` of one set of points puts :math:`\varphi(1)` (:meth:`~DotProductKernel.phi_at_one`,
    the compensated sum of the coefficients) exactly on its diagonal, whatever the rounding of
    :math:`\langle x, x\rangle`; with a tensor ``time`` its derivatives in the time there are those of
    :math:`\sum_l a_l`.

    Parameters
    ----------
    time : float or 0-d array
        Diffusion time :math:`\tau > 0`. A torch (or jax) scalar is kept as it is: the profile, its derivative and
        the Gram matrix are then differentiable in it (the coefficients are formed in the tensor's library), and host
        methods read its current value.

    See Also
    --------
    MaternKernel : its ``nu = inf`` limit, by lengthscale (:math:`\tau = \ell^2/2`) and normalised.

    References
    ----------
    .. [1] V. Borovitskiy, A. Terenin, P. Mostowsky and M. P. Deisenroth, "Matérn Gaussian processes on Riemannian
       manifolds", NeurIPS 2020.

    Examples
    --------
    >>> HeatKernel(time=0.1).uniform_mean_embedding(q=3)
    1.0

    A learnable diffusion time:

    >>> import torch
    >>> tau = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    >>> HeatKernel(time=tau).profile(torch.tensor(0.5, dtype=torch.float64), q=3).backward()
    >>> bool(tau.grad > 0)  # diffusing longer spreads the heat towards t = 0.5
    True
    """

    name = "heat"
    time = Hyperparameter(positive=True)

    def __init__(self, time: float = 0.1):
        self.time = time  # a float, or a torch/jax scalar (learnable): see Hyperparameter

    def _tensor_coefficients(self, t: Any, xp: Any, q: int) -> Any:
        """The coefficients in t's library when ``time`` is a tensor of that library (so autograd reaches it)."""
        tau = self._hyper("time", t, xp)
        if isinstance(tau, float):
            return None
        degree = self._auto_degree(q)
        degrees = np.arange(degree + 1, dtype=np.float64)
        device = array_api_compat.device(t)
        lam = xp.asarray(degrees * (degrees + q - 2.0), dtype=t.dtype, device=device)
        log_n = xp.asarray(log_harmonic_dimension(np.arange(degree + 1), q=q), dtype=t.dtype, device=device)
        return xp.exp(log_n - tau * lam)

    def _profile(self, t, xp, q):
        coef = self._tensor_coefficients(t, xp, q)
        if coef is None:
            return super()._profile(t, xp, q)
        return legendre_series(coef, t, q=q, validate=False)

    def _derivative(self, t, xp, q):
        coef = self._tensor_coefficients(t, xp, q)
        if coef is None:
            return super()._derivative(t, xp, q)
        return legendre_series_derivative(coef, t, q=q, validate=False)

    def _gram_diagonal(self, G, xp, q):
        phi = self._phi_at_one(q)
        coef = self._tensor_coefficients(G, xp, q)
        if coef is None or not math.isfinite(phi):
            return phi if coef is None else xp.sum(coef)
        # phi(1) = sum_l a_l with its derivatives in the time (of every order); the constant correction (a few ulps)
        # makes the value the host's compensated sum exactly
        total = xp.sum(coef)
        return total + (phi - host_float(total))

    def _params(self):
        return (self.time,)

    def _named_params(self):
        return [("time", self.time)]

    def _uniform_mean_embedding(self, q):
        return 1.0

    def _log_spectrum(self, q, degree):
        degrees = np.arange(degree + 1, dtype=np.float64)
        log_a = log_harmonic_dimension(np.arange(degree + 1), q=q) - self.time * degrees * (degrees + q - 2)
        return log_a, np.ones(degree + 1)

    def _positive_semidefinite(self, q):
        return True

    def _strictly_positive_definite(self, q):
        return True


class SpectralKernel(_SpectrallyDefined):
    r"""A kernel given by a user spectrum ``spectrum(degree, q=q) -> a_0..a_degree``.

    The profile is the series truncated where the terms fall below 1e-17 of the largest and decrease (a heuristic
    for a user spectrum: the user states its decay). Positive semi-definiteness is checked degree by degree.

    Parameters
    ----------
    spectrum : callable
        ``spectrum(degree, q=q)`` returning the Gegenbauer coefficients in dimension q (length degree + 1).
        For coefficients that do not depend on q, use :class:`LegendreSeriesKernel`.
    name : str
        Label used in ``repr``.

    See Also
    --------
    LegendreSeriesKernel : finite series with fixed coefficients.
    ProfileKernel : a kernel given by its profile instead.

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels import log_harmonic_dimension
    >>> def poisson(degree, *, q):
    ...     l = np.arange(degree + 1)
    ...     return np.exp(log_harmonic_dimension(l, q=q)) * 0.5**l
    >>> round(SpectralKernel(poisson).phi_at_one(q=3), 12)  # the Poisson kernel with rho = 1/2: (1+rho)/(1-rho)^2
    6.0
    """

    name = "spectral"

    def __init__(self, spectrum: Callable[..., Any], name: str = "spectral"):
        if not callable(spectrum):
            raise TypeError("spectrum must be a callable spectrum(degree, *, q) -> a_0..a_degree")
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}")
        self._spectrum_fn = spectrum
        self.name = name

    def _params(self):
        return (id(self._spectrum_fn),)

    def _named_params(self):
        return [("spectrum", getattr(self._spectrum_fn, "__name__", "<callable>"))]

    def _log_spectrum(self, q, degree):
        a = np.asarray(self._spectrum_fn(degree, q=q), dtype=np.float64)
        if a.shape != (degree + 1,):
            raise ValueError(f"spectrum(degree, q=q) must return {degree + 1} coefficients, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"spectrum({degree}, q={q}) returned non-finite coefficients")
        return log_abs_sign(a)
