r"""Random samples on the sphere :math:`S^{q-1}`: uniform, von Mises–Fisher and (axial) Watson.

Every sampler returns a float64 numpy array of shape ``(n, q)`` whose rows are unit vectors (to 1e-15), and takes
``rng`` (SPEC 7): a :class:`numpy.random.Generator`, a seed, or None (fresh entropy); a legacy
:class:`numpy.random.RandomState` is rejected. The sample size comes first and every option is keyword-only.

The rotationally symmetric laws are sampled through their projection :math:`t = \mu^T x` and an independent uniform
tangent direction :math:`v \perp \mu`: :math:`x = t\mu + \sqrt{1 - t^2}\, v`. The density of t is
:math:`\propto g(t) (1 - t^2)^{(q-3)/2}` on [-1, 1] for a density :math:`\propto g(\mu^T x)` on the sphere.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

from ._validate import check_dimension, check_integer, check_points, check_real, check_rng, host_array

__all__ = ["sample_uniform", "sample_vmf", "sample_watson"]

RandomLike = None | int | np.random.SeedSequence | np.random.Generator


# ---------------------------------------------------------------------------------------------------------------
# validation


def _direction(mu: ArrayLike) -> np.ndarray:
    """A unit vector of length q >= 2 (to 10 sqrt(eps), as :func:`check_points` demands of points), renormalised."""
    try:
        mu = host_array(mu, "mu")  # torch tensors (also with requires_grad) are read detached
    except (TypeError, ValueError) as exc:
        raise TypeError(f"mu must be a real 1-d array, got {type(mu).__name__}") from exc
    if mu.ndim != 1:
        raise ValueError(f"mu must be a 1-d unit vector of length q >= 2, got shape {mu.shape}")
    (unit,), _ = check_points(mu[None, :], "mu", normalize=True)  # shape, finiteness, zero vector
    norm = float(np.linalg.norm(mu))
    if abs(norm - 1.0) > 10.0 * math.sqrt(np.finfo(np.float64).eps):
        raise ValueError(f"mu must be a unit vector, got norm {norm:.6g}")
    return unit


# ---------------------------------------------------------------------------------------------------------------
# building blocks


def _tangent(rng, mu: np.ndarray, n: int) -> np.ndarray:
    """n unit vectors uniform on the great sphere orthogonal to mu."""
    out = np.empty((n, mu.size))
    todo = np.arange(n)
    while todo.size:
        g = rng.standard_normal((todo.size, mu.size))
        g -= np.outer(g @ mu, mu)
        norms = np.linalg.norm(g, axis=1)
        ok = norms > 1e-12 * math.sqrt(mu.size)
        out[todo[ok]] = g[ok] / norms[ok, None]
        todo = todo[~ok]
    return out


def _assemble(mu: np.ndarray, t: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """x = t mu + s v with s = sqrt(1 - t^2) given separately (it carries the digits near t = +-1)."""
    x = t[:, None] * mu[None, :] + s[:, None] * v
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sample_uniform(n: int, *, q: int, rng: RandomLike = None) -> np.ndarray:
    r"""n points uniform on :math:`S^{q-1}`: normalised standard Gaussian vectors.

    Parameters
    ----------
    n : int
        Number of points (>= 0).
    q : int
        Ambient dimension (>= 2).
    rng : numpy.random.Generator, int, SeedSequence or None
        Source of randomness (SPEC 7).

    Returns
    -------
    ndarray
        ``(n, q)`` float64, unit rows.

    See Also
    --------
    sample_vmf : concentrated samples (von Mises-Fisher).
    dotkernels.uniformity_test : tests of uniformity on such samples.

    Accuracy
    --------
    Exact law (up to the generator); row norms equal 1 to 2 eps.

    Examples
    --------
    >>> X = sample_uniform(1000, q=5, rng=0)
    >>> X.shape, bool(np.allclose(np.linalg.norm(X, axis=1), 1.0))
    ((1000, 5), True)
    """
    n, q, rng = check_integer(n, "n", minimum=0), check_dimension(q), check_rng(rng)
    out = np.empty((n, q))
    todo = np.arange(n)
    while todo.size:  # a zero Gaussian vector has probability 0, but redraw rather than divide by it
        g = rng.standard_normal((todo.size, q))
        norms = np.linalg.norm(g, axis=1)
        ok = norms > 0
        out[todo[ok]] = g[ok] / norms[ok, None]
        todo = todo[~ok]
    return out


# ---------------------------------------------------------------------------------------------------------------
# von Mises–Fisher


def _vmf_projection(rng, n: int, q: int, kappa: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Wood's (1994) rejection sampler for t = mu^T x under vMF(kappa); returns (t, sqrt(1 - t^2)).

    Proposal: :math:`W = (1 - (1+b) Z) / (1 - (1-b) Z)`, :math:`Z \sim \mathrm{Beta}(a, a)`, a = (q-1)/2, with
    density :math:`\propto (1-t^2)^{a-1} (1 - x_0 t)^{-2a}`; accept when
    :math:`\kappa W + (q-1)\log(1 - x_0 W) - c \ge \log U`, :math:`c = \kappa x_0 + (q-1)\log(1 - x_0^2)`.
    Every quantity that cancels at large kappa or large q is written without the cancellation: with
    :math:`Z = G_1/(G_1+G_2)` (gamma variates), :math:`1 - W = 2bG_1/(G_2 + bG_1)`, :math:`1 + W = 2G_2/(G_2+bG_1)`,
    :math:`b = (q-1)/(2\kappa + \sqrt{4\kappa^2 + (q-1)^2})`, :math:`1 - x_0 = 2b/(1+b)`, and the log-acceptance is
    :math:`\kappa((1-x_0) - (1-W)) + (q-1)(\log(1 - x_0 W) - \log(1 - x_0^2))`.
    """
    a = 0.5 * (q - 1)
    # b = (q-1) / (2 kappa + sqrt(4 kappa^2 + (q-1)^2)) = r / (1 + sqrt(1 + r^2)), r = (q-1) / (2 kappa): no overflow
    r = a / kappa
    b = r / (1.0 + math.hypot(1.0, r))
    if b == 0.0:  # kappa beyond ~1e308 / q: the law is the point mass at mu to float64 resolution
        return np.ones(n), np.zeros(n)
    one_minus_x0 = 2.0 * b / (1.0 + b)
    x0 = (1.0 - b) / (1.0 + b)
    log_one_minus_x0_sq = math.log(4.0 * b) - 2.0 * math.log1p(b)
    t = np.empty(n)
    s = np.empty(n)
    filled = 0
    while filled < n:
        m = max(16, int(1.3 * (n - filled)) + 8)
        g1 = rng.gamma(a, size=m)
        g2 = rng.gamma(a, size=m)
        den = g2 + b * g1
        one_minus_w = 2.0 * b * g1 / den
        one_plus_w = 2.0 * g2 / den
        log_accept = kappa * (one_minus_x0 - one_minus_w) + (q - 1) * (
            np.log(one_minus_x0 + x0 * one_minus_w) - log_one_minus_x0_sq
        )
        ok = np.log(rng.random(m)) <= log_accept
        ok &= den > 0
        k = min(int(ok.sum()), n - filled)
        w_minus, w_plus = one_minus_w[ok][:k], one_plus_w[ok][:k]
        t[filled : filled + k] = 1.0 - w_minus
        s[filled : filled + k] = np.sqrt(w_minus * w_plus)
        filled += k
    return t, s


def sample_vmf(n: int, *, mu: ArrayLike, kappa: float, rng: RandomLike = None) -> np.ndarray:
    r"""n points from the von Mises–Fisher distribution :math:`\propto \exp(\kappa\, \mu^T x)` on :math:`S^{q-1}`.

    The projection :math:`t = \mu^T x` (density :math:`\propto e^{\kappa t}(1-t^2)^{(q-3)/2}`) is drawn by Wood's
    (1994) rejection algorithm, written without cancellation so that it stays exact and efficient at large q and
    large kappa (acceptance rate above ~0.6 for every q and kappa); the tangent part is uniform on the sphere
    orthogonal to mu. ``kappa = 0`` gives the uniform distribution.

    Parameters
    ----------
    n : int
        Number of points (>= 0).
    mu : array_like
        Mean direction, a unit vector of length q >= 2.
    kappa : float
        Concentration, >= 0.
    rng : numpy.random.Generator, int, SeedSequence or None
        Source of randomness (SPEC 7).

    Returns
    -------
    ndarray
        ``(n, q)`` float64, unit rows. :math:`E[\mu^T x] = A_q(\kappa) = I_{q/2}(\kappa)/I_{q/2-1}(\kappa)`.

    See Also
    --------
    sample_watson : the axial (Watson) law.
    dotkernels.vmf_mean_embedding : kernel mean embeddings of this law.

    Accuracy
    --------
    Exact law (rejection sampling, no approximation); :math:`1 - \mu^T x` keeps its relative digits at any
    kappa (tested to kappa = 1e12 and q = 1000 against Bessel-ratio moments from mpmath).

    References
    ----------
    .. [1] A. T. A. Wood, "Simulation of the von Mises Fisher distribution", Communications in Statistics -
       Simulation and Computation 23(1), 157-164 (1994).

    Examples
    --------
    >>> mu = np.array([0.0, 0.0, 1.0])
    >>> X = sample_vmf(20000, mu=mu, kappa=10.0, rng=0)
    >>> bool(abs((X @ mu).mean() - (1 / np.tanh(10.0) - 1 / 10.0)) < 0.01)  # A_3(k) = coth k - 1/k
    True
    """
    n, mu, rng = check_integer(n, "n", minimum=0), _direction(mu), check_rng(rng)
    kappa = check_real(kappa, "kappa", nonnegative=True)
    if kappa == 0.0:
        return sample_uniform(n, q=mu.size, rng=rng)
    t, s = _vmf_projection(rng, n, mu.size, kappa)
    return _assemble(mu, t, s, _tangent(rng, mu, n))


# ---------------------------------------------------------------------------------------------------------------
# Watson


class _WatsonEnvelope:
    r"""Ratio-of-uniforms sampler for :math:`\tau = |\mu^T x|` under Watson(kappa), q >= 3.

    :math:`\tau` has density :math:`f(\tau) \propto (1-\tau^2)^m e^{\kappa \tau^2}` on [0, 1], m = (q-3)/2 >= 0,
    unimodal: the mode is :math:`\tau_0 = \sqrt{1 - m/\kappa}` when :math:`\kappa > m` (bipolar) and 0 otherwise.
    The variable y is :math:`1 - \tau` in the first case (so that points near the poles keep their digits) and
    :math:`\tau` in the second; :math:`\ell(y) = \log f - \log f(\text{mode}) \le 0`. Ratio of uniforms with the
    mode as centre: draw :math:`u \sim U(0, 1)`, :math:`v \sim U(v_-, v_+)`, put :math:`y = y_0 + v/u` and accept
    when :math:`0 \le y \le 1` and :math:`2\log u \le \ell(y)`, where
    :math:`v_\pm = \pm\sup_{\pm(y - y_0) > 0} |y - y_0| e^{\ell(y)/2}` (computed numerically on a
    geometric-plus-linear grid, refined by Brent's method and inflated by 1e-4 relative). The acceptance rate is
    half the area under f over the rectangle: between 0.46 and 0.73 over q in [3, 1e5], |kappa| in [1e-2, 1e12].
    """

    def __init__(self, q: int, kappa: float):
        m = 0.5 * (q - 3)
        self.m, self.kappa = m, kappa
        self.bipolar = kappa > m
        if self.bipolar:
            ratio = m / kappa
            self.y0 = ratio / (1.0 + math.sqrt(1.0 - ratio)) if m > 0 else 0.0
            self._log_mode = m * math.log(self.y0 * (2.0 - self.y0)) if m > 0 else 0.0
        else:
            self.y0 = 0.0
        self.v_plus = 1.0001 * self._side_sup(1.0)
        self.v_minus = -1.0001 * self._side_sup(0.0) if self.y0 > 0 else 0.0

    def ell(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        m, kappa = self.m, self.kappa
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.bipolar:
                y0 = self.y0
                out = kappa * (y0 - y) * (2.0 - y - y0)
                if m > 0:
                    out = out + m * np.log(y * (2.0 - y)) - self._log_mode
            else:
                out = m * np.log1p(-y * y) + kappa * y * y
        return np.where(np.isnan(out), -np.inf, out)

    def _log_h(self, y: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            out = np.log(np.abs(y - self.y0)) + 0.5 * self.ell(y)
        return np.where(np.isfinite(out), out, -np.inf)

    def _side_sup(self, edge: float) -> float:
        """sup |y - y0| exp(ell(y)/2) for y between y0 and edge."""
        y0 = self.y0
        grid = np.unique(np.concatenate([np.logspace(-17, 0, 1200), np.linspace(0.0, 1.0, 401)[1:]]))
        ys = y0 + (edge - y0) * grid
        lh = self._log_h(ys)
        i = int(np.argmax(lh))
        best = float(lh[i])
        lo, hi = sorted((float(ys[max(i - 1, 0)]), float(ys[min(i + 1, ys.size - 1)])))
        if hi > lo:

            def objective(y: float) -> float:
                v = float(self._log_h(np.asarray(y)))
                return -v if math.isfinite(v) else math.inf

            res = minimize_scalar(objective, bounds=(lo, hi), method="bounded", options={"xatol": 1e-15 * hi})
            if math.isfinite(res.fun):
                best = max(best, -float(res.fun))
        return math.exp(best) if math.isfinite(best) else 0.0

    def sample(self, rng, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(tau, sqrt(1 - tau^2)) for n draws."""
        ys = np.empty(n)
        filled = 0
        while filled < n:
            k = max(16, int(1.6 * (n - filled)) + 8)
            u = rng.random(k)
            v = self.v_minus + (self.v_plus - self.v_minus) * rng.random(k)
            with np.errstate(divide="ignore", invalid="ignore"):
                y = self.y0 + v / u
                ok = (u > 0) & (y >= 0.0) & (y <= 1.0)
                ok[ok] = 2.0 * np.log(u[ok]) <= self.ell(y[ok])
            take = y[ok][: n - filled]
            ys[filled : filled + take.size] = take
            filled += take.size
        if self.bipolar:  # y = 1 - tau
            return 1.0 - ys, np.sqrt(ys * (2.0 - ys))
        return ys, np.sqrt((1.0 - ys) * (1.0 + ys))


def sample_watson(n: int, *, mu: ArrayLike, kappa: float, rng: RandomLike = None) -> np.ndarray:
    r"""n points from the (axial) Watson distribution :math:`\propto \exp(\kappa (\mu^T x)^2)` on :math:`S^{q-1}`.

    ``kappa > 0`` is bipolar (mass near :math:`\pm\mu`), ``kappa < 0`` is a girdle (mass near the great sphere
    orthogonal to mu), ``kappa = 0`` is uniform. The law is symmetric under :math:`x \to -x`, so
    :math:`E[\mu^T x] = 0` while :math:`E[(\mu^T x)^2]` grows with kappa: the departure from uniformity that the
    odd-degree (Rayleigh, Ajne) tests cannot see.

    The projection :math:`t = \mu^T x` has density :math:`\propto e^{\kappa t^2} (1 - t^2)^{(q-3)/2}`. Its modulus
    is drawn by rejection (ratio of uniforms centred at the mode, acceptance rate 0.46–0.73 at every q and kappa),
    its sign uniformly, and the tangent part uniformly on the sphere orthogonal to mu. On the circle (q = 2) the
    angle :math:`2\theta` is von Mises with concentration :math:`\kappa/2` and is drawn as such.

    Parameters
    ----------
    n : int
        Number of points (>= 0).
    mu : array_like
        Axis, a unit vector of length q >= 2 (mu and -mu give the same law).
    kappa : float
        Concentration, any finite real.
    rng : numpy.random.Generator, int, SeedSequence or None
        Source of randomness (SPEC 7).

    Returns
    -------
    ndarray
        ``(n, q)`` float64, unit rows.

    See Also
    --------
    sample_vmf : the (non-axial) von Mises-Fisher law.

    Accuracy
    --------
    Exact law (ratio-of-uniforms rejection, no approximation), tested against hypergeometric moments (mpmath) and
    quadrature for q in [2, 10000], kappa in [-100, 1e9].

    Examples
    --------
    >>> mu = np.array([1.0, 0.0, 0.0, 0.0])
    >>> X = sample_watson(5000, mu=mu, kappa=20.0, rng=0)
    >>> t = X @ mu
    >>> bool(abs(t.mean()) < 0.05), bool((t**2).mean() > 0.8)
    (True, True)
    """
    n, mu, rng = check_integer(n, "n", minimum=0), _direction(mu), check_rng(rng)
    kappa = check_real(kappa, "kappa")
    q = mu.size
    if kappa == 0.0:
        return sample_uniform(n, q=q, rng=rng)
    if q == 2:
        # exp(kappa cos^2 theta) = exp(kappa/2) exp((kappa/2) cos 2 theta): 2 theta ~ von Mises(0 or pi, |kappa|/2)
        phi = rng.vonmises(0.0 if kappa > 0 else math.pi, 0.5 * abs(kappa), size=n)
        half = 0.5 * phi
        tau, s = np.abs(np.cos(half)), np.abs(np.sin(half))
    else:
        tau, s = _WatsonEnvelope(q, kappa).sample(rng, n)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return _assemble(mu, sign * tau, s, _tangent(rng, mu, n))
