r"""Kernels given by any profile function: the spectrum by Gauss quadrature for the projected law :math:`\nu_q`."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .._validate import check_dimension, check_integer, check_real
from ..gegenbauer import log_harmonic_dimension, recurrence_coefficients
from ..quadrature import projected_quadrature
from ._base import SPECTRUM_CACHE_SIZE, DotProductKernel, SpectrumAccuracyWarning

__all__ = ["ProfileKernel"]

#: largest (degree + 1) * nodes of a quadrature spectrum (about ten seconds on one core); beyond, spectrum refuses
QUADRATURE_WORK_LIMIT = 2.5e7


class ProfileKernel(DotProductKernel):
    r"""A kernel from any profile function :math:`\varphi`; its spectrum by Gauss quadrature for :math:`\nu_q`.

    :math:`a_l = N(q,l) \sum_i w_i \varphi(x_i) P_{l,q}(x_i)` with the rule of :func:`projected_quadrature`. The
    quadrature gives :math:`\lambda_l = a_l/N(q,l)` to an absolute accuracy of about :math:`\epsilon \max|\varphi|`
    for a smooth :math:`\varphi`, and :math:`a_l` multiplies that error by :math:`N(q,l)`, which is astronomically
    large at large q (N(64, 12) ~ 1e13). The spectrum is therefore computed with two rule sizes; coefficients whose
    two values disagree by more than ``rtol`` relative (or that are below the error floor
    :math:`N(q,l)\,\epsilon \max|\varphi|`) trigger a :class:`SpectrumAccuracyWarning` stating the degrees, and
    :meth:`spectrum_error` returns the estimated absolute error per degree. Prefer a closed-form family at large q.
    Definiteness is checked degree by degree (never decided strictly).

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
    name : str
        Label used in ``repr``.

    See Also
    --------
    dotkernels.projected_quadrature : the quadrature rule for :math:`\nu_q`.
    DotProductKernel.spectrum_error : the estimated error per degree.

    Accuracy
    --------
    As estimated by the two rule sizes (:meth:`spectrum_error`). A spectrum costs (degree + 1) * nodes polynomial
    evaluations, twice: beyond ``QUADRATURE_WORK_LIMIT`` = 2.5e7 (degree ~ 3500 with the default nodes, ten to
    twenty seconds on one core) it is refused with a ValueError that says which degrees are feasible.

    Examples
    --------
    >>> import numpy as np
    >>> ProfileKernel(np.exp).spectrum(1, q=3).round(9).tolist()
    [1.175201194, 1.103638324]
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
        self.nodes = None if nodes is None else check_integer(nodes, "nodes", minimum=1)
        self.rtol = check_real(rtol, "rtol", positive=True)
        self.spectrum_rtol = self.rtol
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

    def _lambda_by_quadrature(self, q: int, degree: int, n: int) -> tuple[np.ndarray, float]:
        x, w = projected_quadrature(n, q=q)
        fx = np.asarray(self.function(x.copy()), dtype=np.float64)
        if fx.shape != x.shape or not np.all(np.isfinite(fx)):
            raise ValueError("function(t) must return finite values of the same shape as t on (-1, 1)")
        # P_{k,q}(x) streamed through the recurrence (memory O(n), not O(n * degree))
        alpha, beta = recurrence_coefficients(degree, q=q)
        wf = w * fx
        lam = np.empty(degree + 1)
        prev, cur = np.zeros_like(x), np.ones_like(x)
        for k in range(degree + 1):
            lam[k] = wf @ cur
            prev, cur = cur, alpha[k] * x * cur - beta[k] * prev
        return lam, float(np.max(np.abs(fx)))

    def _log_spectrum(self, q, degree):
        n = self.nodes or max(256, 2 * degree + 64)
        if (degree + 1) * n > QUADRATURE_WORK_LIMIT:
            top = (math.isqrt(int(2 * QUADRATURE_WORK_LIMIT)) - 64) // 2
            raise ValueError(
                f"{self!r}: a quadrature spectrum to degree {degree} with {n} nodes costs (degree + 1) * nodes = "
                f"{(degree + 1) * n:.3g} polynomial evaluations, twice, beyond the limit {QUADRATURE_WORK_LIMIT:.3g} "
                f"(about ten seconds on one core); degrees up to about {top} are feasible with the default nodes"
            )
        lam, scale = self._lambda_by_quadrature(q, degree, n)
        lam2, _ = self._lambda_by_quadrature(q, degree, 2 * n)
        log_n = log_harmonic_dimension(np.arange(degree + 1), q=q)
        floor = 64 * np.finfo(np.float64).eps * max(scale, 1e-300)
        err = np.maximum(np.abs(lam2 - lam), floor)  # absolute error estimate on lambda_l
        error_a = np.exp(log_n + np.log(err))
        self._error_cache[(q, degree)] = error_a
        while len(self._error_cache) > SPECTRUM_CACHE_SIZE:
            self._error_cache.pop(next(iter(self._error_cache)))
        # below the quadrature's resolution a coefficient is indistinguishable from 0: report it as 0, and warn
        # when that resolution, amplified by N(q,l), is not small against the spectrum itself
        unresolved = np.abs(lam2) <= floor
        lam2 = np.where(unresolved, 0.0, lam2)
        with np.errstate(divide="ignore"):
            log_a = log_n + np.log(np.abs(lam2))
        top = np.max(np.exp(log_a[np.isfinite(log_a)])) if np.any(np.isfinite(log_a)) else 0.0
        bad = np.where(unresolved, error_a > self.rtol * max(top, 1e-300), err > self.rtol * np.abs(lam2))
        if np.any(bad):
            worst = float(np.max(np.where(unresolved, error_a / max(top, 1e-300), err / np.abs(lam2 + unresolved))))
            warnings.warn(
                f"{self!r}: quadrature spectrum in q={q} is not accurate to rtol={self.rtol:g} at degrees "
                f"{np.nonzero(bad)[0].tolist()[:10]} (estimated relative error up to {worst:.2g}; the error of "
                "lambda_l is multiplied by N(q,l)); use a closed-form kernel, a smoother profile or a lower degree",
                SpectrumAccuracyWarning,
                stacklevel=4,
            )
        return log_a, np.sign(lam2)

    def _spectrum_error(self, q, degree):
        self.log_spectrum(degree, q=q)
        key = (check_dimension(q), degree)
        if key not in self._error_cache:  # the spectrum came from the cache of an earlier call
            self._log_spectrum(q, degree)
        return self._error_cache[key]
