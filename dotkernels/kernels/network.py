r"""Kernels of infinitely wide fully connected networks on the sphere: NNGP and neural tangent kernel.

A network with ``depth`` = L hidden layers of width n, activation :math:`\sigma`, weights
:math:`W^{(h)}_{ij} \sim N(0, 1)` and biases :math:`b^{(h)}_i \sim N(0, 1)`,

.. math::

    z^{(1)} = \sigma_w W^{(1)} x + \sigma_b b^{(1)}, \qquad
    z^{(h+1)} = \frac{\sigma_w}{\sqrt n} W^{(h+1)} \sigma(z^{(h)}) + \sigma_b b^{(h+1)}, \qquad
    f(x) = z^{(L+1)}_1,

on inputs :math:`x \in S^{q-1}`, converges as :math:`n \to \infty` to a Gaussian process with covariance
:math:`K_L` (the NNGP kernel; Neal 1996, Lee et al. 2018) and, trained by gradient descent in this (NTK)
parameterisation, follows the kernel :math:`\Theta_L` (Jacot et al. 2018; Arora et al. 2019; Lee et al. 2019):

.. math::

    K_0(t) = \sigma_w^2 t + \sigma_b^2, \qquad
    K_{h+1} = \sigma_w^2\, T_h(K_h) + \sigma_b^2, \qquad
    \Theta_0 = K_0, \qquad \Theta_{h+1} = K_{h+1} + \sigma_w^2\, \dot T_h(K_h)\, \Theta_h,

with :math:`T_h(c) = E[\sigma(u)\sigma(v)]`, :math:`\dot T_h(c) = E[\sigma'(u)\sigma'(v)] = dT_h/dc` for
:math:`(u, v)` centred Gaussian with variances :math:`s_h = K_h(1)` and covariance c. Both kernels are functions of
:math:`t = \langle x, y\rangle` only: dot-product kernels, positive semi-definite on every sphere (their Taylor
coefficients are non-negative). These are the conventions of neural-tangents' ``stax.Dense(W_std=σ_w, b_std=σ_b)``
(``parameterization="ntk"``) for inputs scaled to norm :math:`\sqrt q` (its first layer divides by the input
width).

Dual activations: ReLU :math:`T = \tfrac{s}{2}\kappa_1(\rho)`, :math:`\dot T = \tfrac12\kappa_0(\rho)` and step
:math:`T = \tfrac12 \kappa_0(\rho)` with :math:`\rho = c/s` and the arc-cosine kernels
:math:`\kappa_0 = 1 - \theta/\pi`, :math:`\kappa_1 = (\sin\theta + (\pi - \theta)\cos\theta)/\pi`,
:math:`\theta = \arccos\rho` (Cho & Saul 2009); erf :math:`T = \tfrac2\pi \arcsin(\beta\rho)`,
:math:`\beta = 2s/(1 + 2s)` (Williams 1997); any other activation through its Hermite expansion
:math:`T(c) = \sum_n a_n(s)^2 \rho^n` (Mehler's formula; Daniely et al. 2016).

Spectra
-------
Exact at any q: the profiles are power series in t with non-negative coefficients, computed to P powers by
recurrences that only add non-negative terms (:mod:`dotkernels._power_series`), and mapped to the Gegenbauer basis
with positive weights. The missing powers beyond P have a known total :math:`E_P = \varphi(1) - \sum_{p \le P}
c_p` (:math:`\varphi(1)` in closed form), which bounds the error of every :math:`a_l` — sharply in high dimension,
where the high powers carry no weight at low degrees. In low dimension, where the ReLU series converge slowly
(:math:`c_p \sim p^{-3/2}` for the NTK), the coefficients come instead from Gauss–Legendre quadrature in the
angle :math:`\theta = \arccos t` (the profiles are analytic in :math:`\theta`), with the error estimated from two
rule sizes. :meth:`spectrum_error` returns, for each degree, the bound (series) or estimate (quadrature) of the
route used, plus float64 rounding; :meth:`spectrum_route` says which. Typical relative accuracy of the depth-3
ReLU NTK to degree 200: 2e-12 for q >= 64 (rigorous; the rounding of the logarithms dominates), 1e-8 at q = 2 or
3 and 1e-7 at q = 5 (quadrature estimates); in between, where neither route is sharp, the bound of the highest
degrees degrades (7e-5 at q = 9, 9e-3 at q = 16; raise ``series_max_terms`` to sharpen it, at O(terms^2) cost), and
a :class:`SpectrumAccuracyWarning` says so whenever a coefficient misses ``spectrum_rtol`` = 1e-10.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import erf

from .. import _power_series as ps
from .._validate import check_degree, check_dimension, check_integer, check_real
from ._base import DotProductKernel, SpectrumAccuracyWarning, clip_through

__all__ = ["NNGPKernel", "NTKKernel"]

ACTIVATIONS = ("relu", "step", "erf", "gelu")

#: largest number of Hermite coefficients of a general activation, and of Gauss-Hermite nodes (numpy's rule is
#: accurate up to about 350 nodes)
_MAX_HERMITE = 128
_MAX_HERMITE_NODES = 300
#: spectra kept per kernel (one per (q, degree) asked)
_CACHE_SIZE = 32
#: largest depth accepted (relu, step, erf: closed-form layers), and for activations expanded in Hermite series
#: (about 10 ms per layer to build)
MAX_DEPTH = 10**6
MAX_HERMITE_DEPTH = 1000
#: largest depth * terms^2 a spectrum may cost (about ten seconds on one core); beyond, spectrum refuses and says
#: which degrees or depths fit
SERIES_WORK_LIMIT = 1.5e8


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _gelu_derivative(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _gauss_hermite_mean(function: Callable[[np.ndarray], Any], scale: float, nodes: int = 300) -> float:
    """E[f(sqrt(scale) Z)] for Z standard normal, by Gauss–Hermite quadrature."""
    x, w = ps.gauss_hermite_rule(nodes)
    values = np.asarray(function(math.sqrt(scale) * x), dtype=np.float64)
    return float(np.dot(w, values))


class _HermiteLayer:
    """Dual activation of a general activation at input variance ``scale``: T(rho) = sum_n alpha_n rho^n."""

    def __init__(self, function: Callable, derivative: Callable | None, scale: float):
        second_moment = _gauss_hermite_mean(lambda x: np.asarray(function(x)) ** 2, scale)
        terms = 32
        while True:
            nodes = min(2 * terms + 100, _MAX_HERMITE_NODES)
            a, quad_error = ps.hermite_coefficients(function, terms, scale=scale, nodes=nodes)
            a = np.where(np.abs(a) > 8.0 * quad_error, a, 0.0)  # structural zeros stay exact
            alpha = a * a
            tail = second_moment - math.fsum(alpha)
            if tail <= 1e-14 * max(second_moment, 1e-300) or terms >= _MAX_HERMITE:
                break
            terms *= 2
        self.alpha = alpha
        self.scale = scale
        self.value_at_one = second_moment
        self.tail = max(tail, 0.0)
        self.quadrature_error = quad_error
        # T'(c) = (1/s) sum_n n alpha_n rho^(n-1); its value at rho = 1 is E[f'(sqrt(s) Z)^2]
        self.dalpha = np.arange(1, alpha.size) * alpha[1:] / scale
        if derivative is not None:
            self.derivative_at_one = _gauss_hermite_mean(lambda x: np.asarray(derivative(x)) ** 2, scale)
        else:
            self.derivative_at_one = math.fsum(self.dalpha)


def _horner(coefficients: np.ndarray, x: Any) -> Any:
    out = x * 0.0 + float(coefficients[-1])
    for c in coefficients[-2::-1].tolist():
        out = out * x + c
    return out


class _FullyConnectedKernel(DotProductKernel):
    """Shared machinery of :class:`NNGPKernel` and :class:`NTKKernel`."""

    _tangent: bool = False
    #: the series route doubles its number of powers (from max(512, 4 degree + 4)) while the bound improves,
    #: until it passes this; raise it for sharper bounds at 10 <~ q <~ 60 and high degrees (cost O(terms^2))
    series_max_terms: int = 1 << 12

    def __init__(
        self,
        depth: int = 1,
        activation: str | Callable[[np.ndarray], Any] = "relu",
        *,
        weight_variance: float = 2.0,
        bias_variance: float = 0.0,
        derivative: Callable[[np.ndarray], Any] | None = None,
    ):
        self.depth = check_integer(depth, "depth", minimum=1, requirement="an integer number of hidden layers >= 1")
        if isinstance(activation, str):
            name = activation.strip().lower()
            if name not in ACTIVATIONS:
                raise ValueError(f"activation must be one of {ACTIVATIONS} or a callable, got {activation!r}")
            if derivative is not None:
                raise ValueError("derivative is only used with a callable activation")
            self.activation: str | Callable = name
        elif callable(activation):
            if derivative is not None and not callable(derivative):
                raise TypeError("derivative must be callable or None")
            self.activation = activation
        else:
            raise TypeError(f"activation must be one of {ACTIVATIONS} or a callable, got {type(activation).__name__}")
        self.weight_variance = check_real(weight_variance, "weight_variance", positive=True)
        self.bias_variance = check_real(bias_variance, "bias_variance", nonnegative=True)
        if self._tangent and self.activation == "step":
            raise ValueError(
                "the step activation has no neural tangent kernel (its derivative is a Dirac mass: "
                "Theta(x, x) is infinite); use NNGPKernel(activation='step')"
            )
        self._derivative_fn = derivative
        self.has_corner = self.activation in ("relu", "step")
        hermite = self.activation not in ("relu", "step", "erf")
        limit = MAX_HERMITE_DEPTH if hermite else MAX_DEPTH
        if self.depth > limit:
            raise ValueError(
                f"depth must be <= {limit} for activation {self._activation_label()!r}, got {self.depth}: "
                + (
                    "each layer's Hermite expansion takes about 10 ms (depth 1000: ten seconds)"
                    if hermite
                    else "every profile evaluation and spectrum loops over the layers"
                )
            )
        self._layers = self._layer_scalars()
        self._series_cache: dict[int, tuple[np.ndarray, float, float]] = {}
        self._spectrum_parts: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    # ---- description --------------------------------------------------------------------------------------------
    def _activation_label(self) -> Any:
        if isinstance(self.activation, str):
            return self.activation
        return getattr(self.activation, "__name__", "<callable>")

    def _params(self) -> tuple:
        act = self.activation if isinstance(self.activation, str) else id(self.activation)
        return (self.depth, act, self.weight_variance, self.bias_variance, id(self._derivative_fn))

    def _named_params(self) -> list[tuple[str, Any]]:
        return [
            ("depth", self.depth),
            ("activation", self._activation_label()),
            ("weight_variance", self.weight_variance),
            ("bias_variance", self.bias_variance),
        ]

    # ---- layer scalars ------------------------------------------------------------------------------------------
    def _function(self) -> tuple[Callable, Callable | None]:
        if self.activation == "gelu":
            return _gelu, _gelu_derivative
        return self.activation, self._derivative_fn  # type: ignore[return-value]

    def _layer_scalars(self) -> list[dict[str, Any]]:
        """Per hidden layer h: the input variance s_h = K_h(1) and the dual activation's data."""
        sw, sb = self.weight_variance, self.bias_variance
        s = sw + sb
        layers = []
        for _ in range(self.depth):
            layer: dict[str, Any] = {"s": s}
            if self.activation == "relu":
                value, dvalue = 0.5 * s, 0.5
            elif self.activation == "step":
                value, dvalue = 0.5, math.inf
            elif self.activation == "erf":
                beta = 2.0 * s / (1.0 + 2.0 * s)
                layer["beta"] = beta
                value = 2.0 / math.pi * math.asin(beta)
                dvalue = 4.0 / (math.pi * (1.0 + 2.0 * s) * math.sqrt(1.0 - beta * beta))
            else:
                function, derivative = self._function()
                hermite = _HermiteLayer(function, derivative, s)
                layer["hermite"] = hermite
                value, dvalue = hermite.value_at_one, hermite.derivative_at_one
            layer["T1"], layer["dT1"] = value, dvalue
            layers.append(layer)
            s = sw * value + sb
        self._output_variance = s
        return layers

    def _values_at_one(self) -> tuple[float, float]:
        """(K_L(1), Theta_L(1)) from the layer scalars (closed forms / Gaussian quadrature)."""
        sw, sb = self.weight_variance, self.bias_variance
        k = sw + sb
        theta = k
        for layer in self._layers:
            k_next = sw * layer["T1"] + sb
            theta = k_next + sw * layer["dT1"] * theta
            k = k_next
        return k, theta

    # ---- profile on any backend ---------------------------------------------------------------------------------
    def _dual(self, layer: dict[str, Any], rho: Any, xp: Any, need_derivative: bool) -> tuple[Any, Any]:
        s = layer["s"]
        if self.activation in ("relu", "step"):
            # rho = +-1 apart, so that autograd meets no infinite derivative of acos there: kappa1 gets its
            # one-sided derivative (kappa0(+-1) = 1, 0) and kappa0, whose derivative is infinite, the gradient 0
            rho = clip_through(rho, xp, -1.0, 1.0)
            inside = (rho > -1.0) & (rho < 1.0)
            safe = xp.where(inside, rho, xp.zeros_like(rho))
            theta = xp.acos(safe)
            top = rho > 0.0
            kappa0 = xp.where(inside, 1.0 - theta / math.pi, xp.where(top, xp.ones_like(rho), xp.zeros_like(rho)))
            if self.activation == "step":
                return 0.5 * kappa0, None
            kappa1 = xp.where(
                inside, (xp.sqrt(1.0 - safe * safe) + (math.pi - theta) * safe) / math.pi, xp.where(top, rho, 0.0 * rho)
            )
            return 0.5 * s * kappa1, 0.5 * kappa0
        if self.activation == "erf":
            beta = layer["beta"]
            x = beta * clip_through(rho, xp, -1.0, 1.0)
            value = (2.0 / math.pi) * xp.asin(x)
            dvalue = 4.0 / (math.pi * (1.0 + 2.0 * s)) / xp.sqrt(1.0 - x * x) if need_derivative else None
            return value, dvalue
        hermite: _HermiteLayer = layer["hermite"]
        value = _horner(hermite.alpha, rho)
        dvalue = _horner(hermite.dalpha, rho) if need_derivative and hermite.dalpha.size else None
        if need_derivative and dvalue is None:
            dvalue = rho * 0.0
        return value, dvalue

    def _dual_slopes(self, layer: dict[str, Any], rho: Any, xp: Any) -> tuple[Any, Any]:
        """(dT/dc, d^2T/dc^2) of the dual activation at c = s rho (for the derivative in t; infinite for relu's
        second and step's first at rho = +-1, the corners)."""
        s = layer["s"]
        if self.activation in ("relu", "step"):
            rho = xp.clip(rho, -1.0, 1.0)
            steep = 1.0 / (math.pi * s * xp.sqrt(1.0 - rho * rho))  # d kappa0(c / s) / dc
            if self.activation == "step":
                return 0.5 * steep, None
            return 0.5 * (1.0 - xp.acos(rho) / math.pi), 0.5 * steep
        if self.activation == "erf":
            beta = layer["beta"]
            x = beta * xp.clip(rho, -1.0, 1.0)
            scale = 4.0 / (math.pi * (1.0 + 2.0 * s))
            root = xp.sqrt(1.0 - x * x)
            return scale / root, scale * x / (root * root * root) * (beta / s)
        hermite: _HermiteLayer = layer["hermite"]
        dalpha = hermite.dalpha
        slope = _horner(dalpha, rho) if dalpha.size else rho * 0.0
        ddalpha = np.arange(1, dalpha.size) * dalpha[1:] / s
        curvature = _horner(ddalpha, rho) if ddalpha.size else rho * 0.0
        return slope, curvature

    def _derivative(self, t: Any, xp: Any, q: int | None) -> Any:
        # the chain rule through the layers: K_{h+1}' = sigma_w^2 T'(K_h) K_h', and for the tangent kernel
        # Theta_{h+1}' = K_{h+1}' + sigma_w^2 (T''(K_h) K_h' Theta_h + T'(K_h) Theta_h')
        sw, sb = self.weight_variance, self.bias_variance
        k = sw * t + sb
        dk = xp.zeros_like(t) + sw
        theta, dtheta = k, dk
        for layer in self._layers:
            rho = k / layer["s"]
            value, dvalue = self._dual(layer, rho, xp, self._tangent)
            slope, curvature = self._dual_slopes(layer, rho, xp)
            k_next = sw * value + sb
            dk_next = sw * slope * dk
            if self._tangent:
                dtheta = dk_next + sw * (curvature * dk * theta + dvalue * dtheta)
                theta = k_next + sw * dvalue * theta
            k, dk = k_next, dk_next
        return dtheta if self._tangent else dk

    def _kernels(self, t: Any, xp: Any) -> tuple[Any, Any]:
        sw, sb = self.weight_variance, self.bias_variance
        k = sw * t + sb
        theta = k
        for layer in self._layers:
            value, dvalue = self._dual(layer, k / layer["s"], xp, self._tangent)
            k_next = sw * value + sb
            if self._tangent:
                theta = k_next + sw * dvalue * theta
            k = k_next
        return k, theta

    def _phi_at_one(self, q: int | None) -> float:
        k, theta = self._values_at_one()
        return theta if self._tangent else k

    def _log_phi_at_one(self, q: int | None) -> float:
        if self.activation not in ("relu", "erf"):
            return super()._log_phi_at_one(q)
        # the recursion of _values_at_one on values stored as m * 2^e (exact rescaling): K_L(1) grows like
        # (sigma_w^2 / 2)^L for ReLU; each layer rounds once, so the log is accurate to about depth * eps
        sw, sb = self.weight_variance, self.bias_variance
        big = 2.0**500
        k, ek = sw + sb, 0
        theta, et = k, 0
        for layer in self._layers:
            if self.activation == "relu":
                k, dvalue = 0.5 * sw * k + math.ldexp(sb, -ek), 0.5
            else:  # erf: T(1) < 1 and the variances stay below sigma_w^2 + sigma_b^2 (ek stays 0)
                k, dvalue = sw * layer["T1"] + sb, layer["dT1"]
            theta = math.ldexp(k, ek - et) + sw * dvalue * theta
            if k > big:
                k, ek = math.ldexp(k, -500), ek + 500
            if theta > big:
                theta, et = math.ldexp(theta, -500), et + 500
        value, exponent = (theta, et) if self._tangent else (k, ek)
        return math.log(value) + exponent * math.log(2.0)

    # ---- power series -------------------------------------------------------------------------------------------
    def power_series(self, terms: int) -> tuple[np.ndarray, float, float]:
        r"""Taylor coefficients :math:`c_0, \dots, c_{terms-1}` of the profile and the bounds of the omitted part.

        Returns ``(c, remainder, spread)`` with every :math:`c_p \ge 0`; ``remainder``
        :math:`= \varphi(1) - \sum c_p` is the value at t = 1 of the (non-negative) omitted part, so that
        :math:`0 \le \varphi(t) - \sum_p c_p t^p \le` ``remainder`` on [-1, 1]; ``spread`` is the part of it that
        may sit at powers below ``terms``: 0 for relu, step and erf (exact recurrences: only the powers beyond
        ``terms`` are missing); for other activations the Hermite series of each layer is truncated where its tail
        is below 1e-14 of its sum, and ``spread`` is the loss at t = 1.

        Parameters
        ----------
        terms : int
            Number of coefficients, >= 1.

        Returns
        -------
        c : ndarray
            :math:`c_0, \dots, c_{terms-1}`, each :math:`\ge 0`.
        remainder : float
            :math:`\varphi(1) - \sum_p c_p \ge 0`.
        spread : float
            The part of ``remainder`` that may sit at powers below ``terms``.

        See Also
        --------
        dotkernels.kernels.power_series : the same for any kernel that has such a series.

        Accuracy
        --------
        Each coefficient to float64 relative accuracy (only non-negative terms are added).

        Examples
        --------
        >>> c, rem, spread = NNGPKernel(depth=1).power_series(4)  # 2 kappa_1(t) = 2/pi + t + t^2/pi + ...
        >>> c.round(12).tolist(), rem > 0, spread
        ([0.636619772368, 1.0, 0.318309886184, 0.0], True, 0.0)
        """
        terms = check_integer(terms, "terms", minimum=1)
        if self.depth * terms * terms > 4 * SERIES_WORK_LIMIT:
            raise ValueError(
                f"terms must be <= {math.isqrt(int(4 * SERIES_WORK_LIMIT // self.depth))} at depth {self.depth}, got "
                f"{terms}: the recurrences cost about depth * terms^2 operations (the limit is about forty seconds "
                "on one core)"
            )
        c, remainder, spread = self._series(terms)
        return c.copy(), remainder, spread

    def _series(self, terms: int) -> tuple[np.ndarray, float, float]:
        if terms in self._series_cache:
            return self._series_cache[terms]
        sw, sb = self.weight_variance, self.bias_variance
        k = np.zeros(terms)
        k[0] = sb
        if terms > 1:
            k[1] = sw
        theta = k.copy()
        for layer in self._layers:
            s = layer["s"]
            rho = k / s
            if self.activation in ("relu", "step"):
                _, u, v = ps.arcsine_compose(rho)
                value, dvalue = (0.5 * u, None) if self.activation == "step" else (0.5 * s * v, 0.5 * u)
            elif self.activation == "erf":
                beta = layer["beta"]
                w, u, _ = ps.arcsine_compose(beta * rho)
                # arcsin(beta rho) = pi (kappa_0(beta rho) - 1/2); d/dc: (4 / (pi (1 + 2 s))) (1 - beta^2 rho^2)^(-1/2)
                value = 2.0 * u
                value[0] -= 1.0
                dvalue = 4.0 / (math.pi * (1.0 + 2.0 * s)) * w
            else:
                hermite: _HermiteLayer = layer["hermite"]
                value = ps.compose(hermite.alpha, rho, terms=terms)
                dvalue = ps.compose(hermite.dalpha, rho, terms=terms) if hermite.dalpha.size else np.zeros(terms)
            k_next = sw * value
            k_next[0] += sb
            if self._tangent:
                theta = k_next + sw * ps.multiply(dvalue, theta)
            k = k_next
        c = theta if self._tangent else k
        c = np.maximum(c, 0.0)  # rounding only: every term added is non-negative
        value = self._phi_at_one(None)
        # phi(1) - sum c_p cannot resolve a tail below the rounding of phi(1): 4 eps |phi(1)| covers it
        remainder = float(max(value - math.fsum(c), 0.0) + 4 * np.finfo(np.float64).eps * abs(value))
        spread = 0.0
        if self.activation not in ("relu", "step", "erf"):
            # the truncated Hermite series miss a non-negative part whose value at t = 1 is this difference
            truncated = float(self._kernels(np.ones(1), np)[1 if self._tangent else 0][0])
            spread = min(max(value - truncated, 0.0) + 1e-15 * abs(value), remainder)
        self._series_cache[terms] = (c, remainder, spread)
        return c, remainder, spread

    # ---- spectrum -----------------------------------------------------------------------------------------------
    def _compute_spectrum(self, q: int, degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        key = (q, degree)
        if key in self._spectrum_parts:
            return self._spectrum_parts[key]
        min_terms, max_terms = self._feasible_terms(degree)
        a, error, route, spread = ps.best_spectrum(
            self._series,
            degree,
            q=q,
            rtol=self.spectrum_rtol,
            profile=lambda t: self._profile(t, np, q),
            min_terms=min_terms,
            max_terms=max_terms,
        )
        # zeros are structural (a whole parity vanishes); below ~1e-13 phi(1) in absolute terms a coefficient is
        # resolved only when the series is exact
        failing = (
            (error > self.spectrum_rtol * a) & (a > 0) & ((spread == 0) | (error > 1e-13 * abs(self._phi_at_one(q))))
        )
        if np.any(failing):
            worst = np.max(error[failing] / np.maximum(a[failing], 1e-300))
            warnings.warn(
                f"{self!r}: spectrum in q={q} accurate only to {worst:.2g} relative at degrees "
                f"{np.nonzero(failing)[0][[0, -1]].tolist()} (first, last); spectrum_error gives the bound per degree",
                SpectrumAccuracyWarning,
                stacklevel=5,
            )
        with np.errstate(divide="ignore"):
            log_a = np.log(a)
        sign = np.where(a > 0, 1.0, 0.0)
        parts = (log_a, sign, error, route)
        self._spectrum_parts[key] = parts
        while len(self._spectrum_parts) > _CACHE_SIZE:  # bounded, like the base class's cache
            self._spectrum_parts.pop(next(iter(self._spectrum_parts)))
        return parts

    def _feasible_terms(self, degree: int) -> tuple[int, int]:
        """(first, largest) number of power-series terms within the work budget, or ValueError saying what fits.

        Each layer costs about terms^2 operations (the arc-sine recurrences; Horner's scheme on the Hermite series
        of other activations, compiled), so a spectrum costs about depth * terms^2 with at least 4 degree + 4
        terms: the budget :data:`SERIES_WORK_LIMIT` (about ten seconds on one core) bounds depth and degree.
        """
        needed = 4 * degree + 4
        budget = math.isqrt(int(SERIES_WORK_LIMIT // self.depth))
        if needed > budget:
            if ps.MAX_SERIES_DEGREE < degree:
                ps.best_spectrum(self._series, degree, q=2, rtol=1.0)  # raises the degree limit's own message
            top_degree = max((budget - 4) // 4, -1)
            top_depth = max(int(SERIES_WORK_LIMIT // (needed * needed)), 0)
            raise ValueError(
                f"{self!r}: a spectrum to degree {degree} costs about depth * (4 degree + 4)^2 = "
                f"{self.depth * needed * needed:.3g} operations, beyond the limit {SERIES_WORK_LIMIT:.3g} (about ten "
                f"seconds on one core); feasible: "
                + (
                    f"degrees up to {top_degree} at depth {self.depth}"
                    if top_degree >= 0
                    else "no degree at this depth"
                )
                + f", or depth up to {top_depth} at degree {degree}"
            )
        first = max(needed, min(512, budget))
        return first, max(first, min(self.series_max_terms, budget // 2))

    def _log_spectrum(self, q: int, degree: int) -> tuple[np.ndarray, np.ndarray]:
        log_a, sign, _, _ = self._compute_spectrum(q, degree)
        return log_a, sign

    def _spectrum_error(self, q: int, degree: int) -> np.ndarray:
        return self._compute_spectrum(q, degree)[2].copy()

    def spectrum_route(self, degree: int, *, q: int) -> np.ndarray:
        r"""For each degree 0..degree, the route of :meth:`spectrum`: ``"series"`` or ``"quadrature"``.

        Parameters
        ----------
        degree : int
            Largest degree.
        q : int
            Dimension of :math:`\mathbb{R}^q` (keyword-only).

        Returns
        -------
        ndarray of str
            ``"series"`` or ``"quadrature"`` per degree.

        See Also
        --------
        spectrum_error : the bound (series) or estimate (quadrature) per degree.

        Accuracy
        --------
        Exact (it reports the choice made).

        Examples
        --------
        >>> set(NTKKernel(depth=2).spectrum_route(10, q=1024).tolist())
        {'series'}
        """
        route = self._compute_spectrum(check_dimension(q), check_degree(degree))[3]
        return np.where(route == 1, "quadrature", "series")

    def _positive_semidefinite(self, q: int) -> bool:
        return True

    def _strictly_positive_definite(self, q: int) -> bool | None:
        # a_l > 0 for every l <= p of the parity of p whenever c_p > 0 (all weights lambda_l(t^p) are positive):
        # strict positive definiteness needs positive coefficients of both parities arbitrarily far out
        c, _, _ = self._series(129)
        tail = c[64:]
        even, odd = tail[0::2], tail[1::2]
        if np.any(even > 0) and np.any(odd > 0):
            return True
        # one parity missing far out: these coefficients are structural zeros (exact in the recurrences)
        return False


class NNGPKernel(_FullyConnectedKernel):
    r"""The NNGP kernel :math:`K_L` of an infinitely wide fully connected network with ``depth`` hidden layers.

    See :mod:`dotkernels.kernels.network` for the network, the recursion and the spectrum's error bound.

    Parameters
    ----------
    depth : int
        Number of hidden layers, 1 <= L <= 10^6 (<= 1000 for gelu and callables, whose layers are expanded in
        Hermite series).
    activation : {"relu", "step", "erf", "gelu"} or callable
        The activation :math:`\sigma`; a callable takes and returns numpy arrays and enters through its Hermite
        expansion (Gauss–Hermite quadrature, series truncated below 1e-14 relative).
    weight_variance, bias_variance : float
        :math:`\sigma_w^2 > 0` and :math:`\sigma_b^2 \ge 0`. The default :math:`\sigma_w^2 = 2` (He
        initialisation) keeps :math:`K_h(1) = 2` for ReLU without bias.
    derivative : callable, optional
        :math:`\sigma'` of a callable activation (used for :math:`\dot T(1)` in :class:`NTKKernel`).

    See Also
    --------
    NTKKernel : the neural tangent kernel of the same network.
    ArcCosineKernel : the one-layer kernels of the step and ReLU activations.

    Accuracy
    --------
    Profiles to a few ulps for relu, step and erf (closed forms), to 1e-14 relative for other activations (Hermite
    series); :meth:`~DotProductKernel.derivative` by the chain rule through the layers, to a few ulps per layer
    (infinite at t = +-1 for step, a corner); torch and jax autograd of the profile give the one-sided derivative at
    t = +-1 where it is finite, and where it is infinite the finite part (the infinite factors of the chain rule
    count 0), never NaN. Spectra as stated in :mod:`dotkernels.kernels.network`, with :meth:`spectrum_error` per
    coefficient.
    A spectrum costs about depth * (4 degree + 4)^2 operations: degrees above 2000, or depth * terms^2 above
    ``SERIES_WORK_LIMIT`` = 1.5e8 (about ten seconds on one core), are refused with a ValueError that says which
    degrees and depths are feasible.

    References
    ----------
    .. [1] R. M. Neal, "Bayesian Learning for Neural Networks", Lecture Notes in Statistics 118, Springer (1996).
    .. [2] J. Lee, Y. Bahri, R. Novak, S. S. Schoenholz, J. Pennington and J. Sohl-Dickstein, "Deep neural networks
       as Gaussian processes", International Conference on Learning Representations (2018).
    .. [3] A. Jacot, F. Gabriel and C. Hongler, "Neural tangent kernel: convergence and generalization in neural
       networks", Advances in Neural Information Processing Systems 31 (2018).
    .. [4] Y. Cho and L. K. Saul, "Kernel methods for deep learning", Advances in Neural Information Processing
       Systems 22 (2009).

    Examples
    --------
    >>> import numpy as np
    >>> k = NNGPKernel(depth=2)
    >>> float(k.profile(np.array(1.0)))  # sigma_w^2 s / 2 with s = 2
    2.0
    >>> a = k.spectrum(3, q=1024)
    >>> bool(np.all(a > 0) and np.all(k.spectrum_error(3, q=1024) < 1e-12 * a))
    True
    """

    name = "nngp"
    spectrum_rtol = 1e-10
    _tangent = False

    def _profile(self, t: Any, xp: Any, q: int | None) -> Any:
        return self._kernels(t, xp)[0]


class NTKKernel(_FullyConnectedKernel):
    r"""The neural tangent kernel :math:`\Theta_L` of an infinitely wide fully connected network.

    With ReLU, no bias and :math:`\sigma_w^2 = 2`, :math:`\Theta_L(1) = 2 (L + 1)`, and the Mercer eigenvalues
    :math:`a_l / N(q, l)` decay like :math:`l^{-q}` on :math:`S^{q-1}` (Bietti & Mairal 2019; Chen & Xu 2021).

    Parameters
    ----------
    depth : int
        Number of hidden layers L >= 1.
    activation : {"relu", "erf", "gelu"} or callable
        The activation :math:`\sigma` (the step activation has no NTK); a callable takes and returns numpy arrays.
    weight_variance, bias_variance : float
        :math:`\sigma_w^2 > 0` and :math:`\sigma_b^2 \ge 0`.
    derivative : callable, optional
        :math:`\sigma'` of a callable activation (used for :math:`\dot T(1)`).

    See Also
    --------
    NNGPKernel : the NNGP kernel of the same network.

    Accuracy
    --------
    As :class:`NNGPKernel` (closed-form profiles for relu and erf; :meth:`spectrum_error` per coefficient; the same
    work limits). With relu, :math:`\Theta_L'` is infinite at t = +-1 (a corner); autograd there gives its finite
    part, never NaN.

    References
    ----------
    .. [1] R. M. Neal, "Bayesian Learning for Neural Networks", Lecture Notes in Statistics 118, Springer (1996).
    .. [2] J. Lee, Y. Bahri, R. Novak, S. S. Schoenholz, J. Pennington and J. Sohl-Dickstein, "Deep neural networks
       as Gaussian processes", International Conference on Learning Representations (2018).
    .. [3] A. Jacot, F. Gabriel and C. Hongler, "Neural tangent kernel: convergence and generalization in neural
       networks", Advances in Neural Information Processing Systems 31 (2018).
    .. [4] Y. Cho and L. K. Saul, "Kernel methods for deep learning", Advances in Neural Information Processing
       Systems 22 (2009).
    .. [5] A. Bietti and J. Mairal, "On the inductive bias of neural tangent kernels", Advances in Neural
       Information Processing Systems 32 (2019).

    Examples
    --------
    >>> import numpy as np
    >>> k = NTKKernel(depth=3)
    >>> float(k.phi_at_one())
    8.0
    >>> a, err = k.spectrum(200, q=1024), k.spectrum_error(200, q=1024)  # 0.1 s
    >>> bool(np.all(err <= 5e-12 * a))  # float64 rounding of the logarithms dominates the bound
    True
    """

    name = "ntk"
    spectrum_rtol = 1e-10
    _tangent = True

    def _profile(self, t: Any, xp: Any, q: int | None) -> Any:
        return self._kernels(t, xp)[1]
