r"""Uniformity tests on :math:`S^{q-1}`, q >= 3, beyond the kernel (Sobolev) tests: sphunif's definitions.

Projected-ecdf tests (García-Portugués, Navarro-Esteban & Cuesta-Albertos 2023)
-------------------------------------------------------------------------------
PCvM, PAD and PRt compare the empirical distribution of every projection :math:`\gamma^T X_i` with the projected
law :math:`F_q` of the uniform distribution (:math:`\frac{1 + T}{2} \sim \mathrm{Beta}(\tfrac{q-1}2, \tfrac{q-1}2)`),
averaged over the directions :math:`\gamma`. Each is a V-statistic of a kernel of the angle
:math:`\theta_{ij} = \arccos X_i^T X_j`,

.. math::

    T_n = \frac1n \sum_{i,j=1}^n g(\theta_{ij}) - n\,E[g(\theta)],

with, writing :math:`c = \cos(\theta/2)`, :math:`r = \tan(\theta/2)`, :math:`f_q = F_q'` and
:math:`s(t) = r t / \sqrt{1 - t^2}` (sphunif's ``sph_stat_*_Psi`` for q > 4; the same formulas hold at every
q >= 3):

- PCvM: :math:`g = \tfrac{\theta}{2\pi} + 2 F_q(c)^2 - 4\int_0^c f_q(t) F_q(t) F_{q-1}(s(t))\,dt`,
  :math:`E[g] = 13/12`, mean of the null law :math:`g(0) - E[g] = 1/6`;
- PAD: :math:`g = 4\int_0^c f_q(t) \log\tfrac{F_q(t)}{F_q(-t)} F_{q-1}(-s(t))\,dt`,
  :math:`E[g] = 2\log 2 - 1`, null mean 1;
- PRt(t), :math:`t_m = \min(t, 1-t)`, :math:`\theta_t = 2\arccos(-F_q^{-1}(t_m))`:
  :math:`g = t_m - \tfrac{\theta}{2\pi} + 2\int_0^{\cos(\theta_t/2)} f_q(u) F_{q-1}(s(u))\,du` for
  :math:`\theta < \theta_t` and :math:`\tfrac12 - t_m` beyond, :math:`E[g] = \tfrac12 - t_m(1 - t_m)`, null mean
  :math:`t_m(1 - t_m)`.

The integrals are computed by Gauss–Legendre quadrature (200 nodes) after the substitution :math:`s = \sin\varphi`
(smooth integrand) on a grid of 2049 angles and interpolated by a cubic spline (checked against the kernels'
definition as a double integral to 1e-8 and against sphunif's closed forms at q = 3, 4 to 1e-9; the statistics agree
with sphunif's at q = 3 to 2e-13); PCvM and PRt at q = 3, 4 use those closed forms. sphunif interpolates linearly on
1000 angles with 160 nodes (about 1e-6 in g, 1e-4 relative in the statistic for q > 4 and PAD at q = 3). The
asymptotic null law is :math:`\sum_{k\ge1} v_k^2\chi^2_{N(q,k)}` with :math:`v_k^2 = E[g(\theta) P_{k,q}(\cos\theta)]`
(:func:`projected_weights`, by Gauss quadrature in :math:`\theta` with :func:`dotkernels.gegenbauer.legendre_all`).

Other tests
-----------
- Rayleigh_HD: :math:`(R_n - q)/\sqrt{2q}`, :math:`R_n = n q \|\bar X\|^2`; null: the standardised
  :math:`\chi^2_q` (its n -> infinity law at fixed q; sphunif uses its q -> infinity limit N(0, 1), whose 1 % test
  rejects 2.5-3.4 % of uniform samples at q = 3 and 10).
- CJ12 (Cai & Jiang 2012): :math:`C = \log(1 - \max_{i<j} (X_i^T X_j)^2)`; regime 1 (sub-exponential):
  :math:`qC + 4\log n - \log\log n`; regime 3 (super-exponential): :math:`qC + \tfrac{4q}{q-2}\log n - \log q`;
  regime 2 as regime 1 with the law's parameter :math:`\beta`. Null
  :math:`F(x) = 1 - \exp(-K e^{(x + 8\beta)/2})`, :math:`K = (8\pi)^{-1/2}` (1, 2 with :math:`\beta = 0`),
  :math:`(2\pi)^{-1/2}` (3), :math:`\sqrt{\beta/(2\pi(1 - e^{-4\beta}))}` (2). The statistic falls as the
  largest coherence grows, so small values reject: the asymptotic p-value is the lower tail :math:`F(x)` (sphunif
  reports :math:`1 - F(x)`, the wrong tail), and the default p-value is the exact union bound of
  ``_calibrated`` (valid at every n, q).
- CCF09 (Cuesta-Albertos et al. 2009): :math:`\max_k \sqrt n \sup_x |F_{n,k}(x) - F_q(x)|` over the projections
  on k directions (sphunif's ``original = FALSE``); Monte Carlo null.
- Pycke (q = 3): :math:`-\tfrac{1}{2\pi(n-1)}\sum_{i<j}\log(1 - X_i^T X_j) - n\tfrac{\log 2 + 1 - \log 4}{4\pi}`;
  for q > 3 sphunif (with a warning) and this module use the Riesz statistic with s = 0:
  :math:`-\tfrac1n\sum_{i<j}\log(1 - X_i^T X_j) - \tfrac{n-1}2\log 2 + n\tau_q`. Monte Carlo null.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import interpolate, special, stats

from .._validate import check_integer, check_real
from ..gegenbauer import legendre_all, log_harmonic_dimension

__all__: list[str] = []

_GRID = 2049  # interpolation grid of the projected-ecdf kernels on [0, pi]
_NODES = 200  # Gauss-Legendre nodes of the inner integrals
_PAIR_BLOCK = 2048
_MAX_DIM = 1e18  # largest N(q, k) whose chi-square weight is resolved (see projected_null)


# =================================================================================================================
# projected law


def projected_cdf(t: Any, *, q: int) -> np.ndarray:
    r""":math:`F_q(t) = P(X_1 \le t)`, X uniform on :math:`S^{q-1}`: :math:`I_{(1+t)/2}(\tfrac{q-1}2,\tfrac{q-1}2)`."""
    a = 0.5 * (q - 1)
    t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
    return special.betainc(a, a, 0.5 * (1.0 + t))


def projected_pdf(t: Any, *, q: int) -> np.ndarray:
    r""":math:`f_q(t) = (1 - t^2)^{(q-3)/2} / B(\tfrac12, \tfrac{q-1}2)` on (-1, 1)."""
    t = np.asarray(t, dtype=np.float64)
    log_c = special.gammaln(0.5 * q) - 0.5 * math.log(math.pi) - special.gammaln(0.5 * (q - 1))
    with np.errstate(divide="ignore"):
        return np.where(np.abs(t) < 1, np.exp(log_c + 0.5 * (q - 3) * np.log1p(-np.minimum(t * t, 1.0))), 0.0)


def projected_ppf(p: float, *, q: int) -> float:
    a = 0.5 * (q - 1)
    return float(2.0 * special.betaincinv(a, a, p) - 1.0)


# =================================================================================================================
# projected-ecdf kernels


def _check_rothman_t(t: float) -> float:
    t = check_real(t, "t")
    if not 0 < t < 1:
        raise ValueError(f"t must lie in (0, 1) for the projected Rothman test, got {t}")
    return min(t, 1.0 - t)


def _inner_rule(upper: np.ndarray, r: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Nodes t (shape (m, nodes)), weights dt and :math:`s(t) = r t/\sqrt{1-t^2}` on [0, upper] (per row).

    Substitution :math:`s = \sin\varphi` when ``upper = cos(theta/2)`` (then s runs over [0, 1]):
    :math:`t = \sin\varphi / \sqrt{r^2 + \sin^2\varphi}`, smooth in :math:`\varphi`.
    """
    x, w = np.polynomial.legendre.leggauss(nodes)
    phi_max = np.arcsin(np.clip(r * upper / np.sqrt(np.maximum(1.0 - upper * upper, 1e-300)), 0.0, 1.0))
    phi = 0.5 * phi_max[:, None] * (x[None, :] + 1.0)
    wphi = 0.5 * phi_max[:, None] * w[None, :]
    sphi, cphi = np.sin(phi), np.cos(phi)
    r2 = (r * r)[:, None]
    den = r2 + sphi * sphi
    t = sphi / np.sqrt(den)
    dt = wphi * cphi * r2 / den**1.5
    return t, dt, sphi


@lru_cache(maxsize=64)
def _kernel_grid(test: str, q: int, t_m: float) -> tuple[Any, float, float, float]:
    """Spline of g on [0, pi] (in theta), g(0), E[g] and, for PRt, theta_t."""
    theta = np.linspace(0.0, math.pi, _GRID)
    inner = theta[1:-1]
    r = np.tan(0.5 * inner)
    c = np.cos(0.5 * inner)
    theta_t = math.pi
    if test == "pcvm":
        t, dt, s = _inner_rule(c, r, _NODES)
        integral = np.sum(dt * projected_pdf(t, q=q) * projected_cdf(t, q=q) * projected_cdf(s, q=q - 1), axis=1)
        g_in = inner / (2 * math.pi) + 2.0 * projected_cdf(c, q=q) ** 2 - 4.0 * integral
        g0, g_pi, mean = 1.25, 0.5 + 2.0 * 0.25 - 0.0, 13.0 / 12.0
    elif test == "pad":
        t, dt, s = _inner_rule(c, r, _NODES)
        a = 0.5 * (q - 1)
        upper = special.betainc(a, a, 0.5 * (1.0 + t))
        lower = special.betainc(a, a, 0.5 * (1.0 - t))
        f = projected_pdf(t, q=q)
        # where F(-t) underflows, f(t) log F(-t) is below the double range as well (sphunif drops it too)
        ok = (lower > 0) & (f > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            val = np.where(ok, f * (np.log(np.where(ok, upper, 1.0)) - np.log(np.where(ok, lower, 1.0))), 0.0)
        integral = np.sum(dt * val * projected_cdf(-s, q=q - 1), axis=1)
        g_in = 4.0 * integral
        g0, g_pi, mean = 2.0 * math.log(2.0), 0.0, 2.0 * math.log(2.0) - 1.0
    elif test == "prt":
        ct = -projected_ppf(t_m, q=q)  # cos(theta_t / 2)
        theta_t = 2.0 * math.acos(ct)
        g_in = np.full(inner.shape, 0.5 - t_m)
        below = inner < theta_t
        rb = r[below]
        u, du, s = _inner_rule(np.full(rb.shape, ct), rb, _NODES)
        integral = np.sum(du * projected_pdf(u, q=q) * projected_cdf(s, q=q - 1), axis=1)
        g_in[below] = t_m - inner[below] / (2 * math.pi) + 2.0 * integral
        g0, g_pi, mean = 0.5, 0.5 - t_m, 0.5 - t_m * (1.0 - t_m)
    else:  # pragma: no cover
        raise AssertionError(test)
    g = np.concatenate([[g0], g_in, [g_pi]])
    if test == "prt" and theta_t < math.pi:
        # kink at theta_t: spline below, constant above
        k = int(np.searchsorted(theta, theta_t))
        th_b = np.append(theta[:k], theta_t)
        g_b = np.append(g[:k], 0.5 - t_m)
        spline = interpolate.CubicSpline(th_b, g_b)
    else:
        spline = interpolate.CubicSpline(theta, g)
    return _UniformSpline(spline), g0, mean, theta_t


def grid_position(theta: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval index and offset of the angles on the uniform grid of step h (shared by the kernels' splines)."""
    idx = np.floor_divide(theta, h).astype(np.intp)
    np.maximum(idx, 0, out=idx)
    return idx, theta - idx * h


#: Step of the kernels' interpolation grid on [0, pi].
GRID_STEP = math.pi / (_GRID - 1)


class _UniformSpline:
    """A cubic spline on a uniform grid (the last knot may be closer): O(1) interval lookup, Horner evaluation
    (scipy's general evaluation searches the knots)."""

    def __init__(self, spline: interpolate.CubicSpline):
        self.x = np.asarray(spline.x)
        self.c = np.ascontiguousarray(spline.c)
        self.h = float(self.x[1] - self.x[0])
        self.spline = spline

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64)
        return self.at(*grid_position(theta, self.h))

    def at(self, idx: np.ndarray, dx: np.ndarray) -> np.ndarray:
        """Values at the points ``idx * h + dx`` (0 <= dx < h; see :func:`grid_position`)."""
        last = self.x.size - 2
        if idx.size and int(idx.max()) > last:  # theta = pi, or beyond PRt's last knot
            clipped = np.minimum(idx, last)
            dx = dx + (idx - clipped) * self.h
            idx = clipped
        c = self.c
        out = c[0, idx] * dx
        out += c[1, idx]
        out *= dx
        out += c[2, idx]
        out *= dx
        out += c[3, idx]
        return out


def projected_kernel(
    theta: Any, test: str, *, q: int, t: float = 1.0 / 3.0, position: tuple | None = None
) -> np.ndarray:
    r"""The kernel :math:`g(\theta)` of PCvM, PAD or PRt(t) in dimension q >= 3 (see the module notes).

    ``position``: the angles' :func:`grid_position` on the grid of step :data:`GRID_STEP`, when already computed.
    """
    test = test.lower()
    t_m = _check_rothman_t(t) if test == "prt" else 0.0
    theta = np.asarray(theta, dtype=np.float64)
    if q in (3, 4) and test in ("pcvm", "prt"):
        return _closed_form_kernel(theta, test, q, t_m)
    spline, g0, _, theta_t = _kernel_grid(test, int(q), t_m)
    theta = np.clip(theta, 0.0, math.pi)
    out = spline.at(*position) if position is not None else spline(theta)
    if test == "prt":
        out = np.where(theta >= theta_t, 0.5 - t_m, out)
    return np.where(theta <= 0.0, g0, out)


def _closed_form_kernel(theta: np.ndarray, test: str, q: int, t_m: float) -> np.ndarray:
    """sphunif's closed forms of the PCvM and PRt kernels at q = 3, 4 (same additive constant as the general g)."""
    th = np.clip(theta, 0.0, math.pi)
    if test == "pcvm":
        if q == 3:
            return 1.25 - 0.25 * np.sin(0.5 * th)
        with np.errstate(over="ignore", invalid="ignore"):
            h = th * (th - 2 * math.pi) + (math.pi - th) * np.tan(0.5 * th) - 2.0 * np.sin(0.5 * th) ** 2
        h = np.where(th >= math.pi, -(math.pi**2) + 2.0 - 2.0, h)  # (pi - th) tan(th/2) -> 2 at pi
        return 1.25 + h / (4.0 * math.pi**2)
    theta_t = 2.0 * math.acos(-projected_ppf(t_m, q=q))
    below = th < theta_t
    half = 0.5 * np.where(below, th, 0.0)
    if q == 3:
        c1 = (0.5 - t_m) / math.sqrt(t_m * (1.0 - t_m))
        with np.errstate(divide="ignore", invalid="ignore"):
            root = np.sqrt(np.clip(np.cos(half) ** 2 - (1.0 - 2.0 * t_m) ** 2, 0.0, None))
            at = np.where(half > 0, np.arctan(root / np.sin(half)), 0.5 * math.pi)
        var = 0.5 - t_m + ((2.0 * t_m - 1.0) * np.arccos(np.clip(c1 * np.tan(half), -1.0, 1.0)) + at) / math.pi
    else:
        var = (
            0.5
            + t_m
            + (-0.5 * (2.0 * half + theta_t) + 0.5 * math.sin(theta_t) + np.tan(half) * math.cos(0.5 * theta_t) ** 2)
            / math.pi
        )
    return np.where(below, var, 0.5 - t_m)


def projected_kernel_mean(test: str, *, t: float = 1.0 / 3.0) -> tuple[float, float]:
    r""":math:`E[g]` and the mean of the null law :math:`g(0) - E[g]` (both exact)."""
    test = test.lower()
    if test == "pcvm":
        return 13.0 / 12.0, 1.0 / 6.0
    if test == "pad":
        return 2.0 * math.log(2.0) - 1.0, 1.0
    t_m = _check_rothman_t(t)
    return 0.5 - t_m * (1.0 - t_m), t_m * (1.0 - t_m)


def _row_blocks(Z: np.ndarray, gram: np.ndarray | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(row indices, their rows of the Gram matrix) in blocks of _PAIR_BLOCK rows: read-only views of ``gram`` when
    given, else ``Z[rows] @ Z.T``."""
    n = Z.shape[0]
    for start in range(0, n, _PAIR_BLOCK):
        stop = min(start + _PAIR_BLOCK, n)
        yield np.arange(start, stop), (gram[start:stop] if gram is not None else Z[start:stop] @ Z.T)


def _sum_pairs_kernel(Z: np.ndarray, kernel, *, gram: np.ndarray | None = None) -> float:
    r""":math:`\sum_{i,j} g(\theta_{ij})` in row blocks (from the Gram matrix when given); :math:`\theta_{ii} = 0`."""
    total = 0.0
    for rows, block in _row_blocks(Z, gram):
        theta = np.arccos(np.clip(block, -1.0, 1.0))
        # the rounding of X_i^T X_i is not an angle: theta_ii = 0 exactly
        theta[np.arange(rows.size), rows] = 0.0
        total += math.fsum(np.sum(kernel(theta), axis=1))
    return total


def projected_statistic(Z: np.ndarray, test: str, *, t: float = 1.0 / 3.0, gram: np.ndarray | None = None) -> float:
    r"""PCvM, PAD or PRt(t) statistic :math:`\tfrac1n\sum_{i,j} g(\theta_{ij}) - n E[g]` (sphunif's definitions)."""
    n, q = Z.shape
    mean, _ = projected_kernel_mean(test, t=t)
    total = _sum_pairs_kernel(Z, lambda th: projected_kernel(th, test, q=q, t=t), gram=gram)
    return float(total / n - n * mean)


@lru_cache(maxsize=64)
def projected_weights(test: str, *, q: int, degree: int, t: float = 1.0 / 3.0) -> tuple[np.ndarray, float]:
    r"""Chi-square weights :math:`v_k^2 = E[g(\theta)P_{k,q}(\cos\theta)]`, k = 1..degree, and the null mean.

    The expectation is over :math:`\theta = \arccos X^T Y`, density :math:`\propto \sin^{q-2}\theta` on
    :math:`[0, \pi]`, computed by composite Gauss–Legendre quadrature in :math:`\theta` (panels split at PRt's
    kink :math:`\theta_t`).
    """
    test = test.lower()
    t_m = _check_rothman_t(t) if test == "prt" else 0.0
    _, _, _, theta_t = _kernel_grid(test, q, t_m)
    edges = np.linspace(0.0, math.pi, 65)
    if test == "prt" and theta_t < math.pi:
        edges = np.unique(np.append(edges, theta_t))
    x, w = np.polynomial.legendre.leggauss(64)
    a, b = edges[:-1, None], edges[1:, None]
    th = (0.5 * (b - a) * (x[None, :] + 1.0) + a).ravel()
    wt = (0.5 * (b - a) * w[None, :]).ravel()
    log_c = special.gammaln(0.5 * q) - 0.5 * math.log(math.pi) - special.gammaln(0.5 * (q - 1))
    dens = np.exp(log_c + (q - 2) * np.log(np.sin(th)))
    g = projected_kernel(th, test, q=q, t=t)
    P = np.asarray(legendre_all(degree, np.cos(th), q=q))
    v = P[1:] @ (wt * dens * g)
    return v, projected_kernel_mean(test, t=t)[1]


def harmonic_dims(degree: int, *, q: int) -> np.ndarray:
    """N(q, k), k = 1..degree, as floats (rounded when exact)."""
    with np.errstate(over="ignore"):  # inf beyond float64: such degrees are never kept (see projected_null)
        dims = np.exp(log_harmonic_dimension(np.arange(1, degree + 1), q=q))
    return np.where(dims < 1e12, np.round(dims), dims)


# =================================================================================================================
# other spherical statistics


def rayleigh_hd(Z: np.ndarray) -> float:
    r"""High-dimensional standardised Rayleigh statistic :math:`(n q \|\bar X\|^2 - q)/\sqrt{2q}`."""
    n, q = Z.shape
    m = Z.mean(axis=0)
    return float((n * q * float(m @ m) - q) / math.sqrt(2.0 * q))


def max_abs_inner_product(Z: np.ndarray, *, gram: np.ndarray | None = None) -> float:
    r""":math:`\max_{i<j} |X_i^T X_j|`, in row blocks."""
    best = 0.0
    for rows, G in _row_blocks(Z, gram):
        G = np.abs(G)
        G[np.arange(rows.size), rows] = 0.0
        best = max(best, float(G.max()))
    return best


def cj12(Z: np.ndarray, *, regime: int = 3, gram: np.ndarray | None = None) -> float:
    r"""Cai & Jiang's (2012) statistic in regime 1, 2 or 3 (see the module notes; +inf at q = 2)."""
    regime = check_regime(regime)
    n, q = Z.shape
    m = max_abs_inner_product(Z, gram=gram)
    with np.errstate(divide="ignore"):
        c = float(np.log1p(-m * m))
    if regime == 3:
        if q == 2:
            return math.inf
        return q * c + 4.0 * q / (q - 2.0) * math.log(n) - math.log(q)
    return q * c + 4.0 * math.log(n) - math.log(math.log(n))


def check_regime(regime: int) -> int:
    regime = check_integer(regime, "regime", minimum=1, requirement="1, 2 or 3 (the asymptotic regime of CJ12)")
    if regime not in (1, 2, 3):
        raise ValueError(f"regime must be 1, 2 or 3 (the asymptotic regime of CJ12), got {regime}")
    return regime


def cj12_constant(regime: int, beta: float) -> float:
    r"""The constant :math:`K` of CJ12's limit law :math:`F(x) = 1 - \exp(-K e^{(x + 8\beta)/2})` in each regime."""
    if regime == 2 and beta == 0:
        regime = 1
    if regime == 3:
        return 1.0 / math.sqrt(2.0 * math.pi)
    if regime == 2:
        return math.sqrt(beta / (2.0 * math.pi * (1.0 - math.exp(-4.0 * beta))))
    return 1.0 / math.sqrt(8.0 * math.pi)


def cj12_cdf(x: float, *, regime: int = 3, beta: float = 0.0) -> float:
    r"""Limit law :math:`F(x) = 1 - \exp(-K e^{(x + 8\beta)/2})` of CJ12 (see the module notes)."""
    regime = check_regime(regime)
    beta = check_real(beta, "beta", nonnegative=True)
    fact = cj12_constant(regime, beta)
    if x == math.inf:
        return 1.0
    return float(-math.expm1(-fact * math.exp(0.5 * (x + 8.0 * beta))))


def ccf09(Z: np.ndarray, directions: np.ndarray) -> float:
    r"""CCF09: the largest Kolmogorov–Smirnov statistic :math:`\sqrt n\,D_n` over the given projections."""
    n, q = Z.shape
    U = np.sort(projected_cdf(Z @ directions.T, q=q), axis=0)
    i = np.arange(1, n + 1)[:, None] / n
    dev = U - i
    ks = np.maximum(-dev.min(axis=0), dev.max(axis=0) + 1.0 / n)
    return float(math.sqrt(n) * ks.max())


def riesz0_tau(q: int) -> float:
    r""":math:`\tau_q`, the bias term of sphunif's Riesz statistic with s = 0 (log kernel)."""
    if q == 2:
        return 0.0
    if q == 3:
        return math.log(2.0) - 0.5
    if q == 4:
        return 0.25
    m = np.arange(1, q - 1, dtype=np.float64)
    signs = 2 * m - 4 * np.ceil(0.5 * m) + 1
    return 0.5 * (math.log(2.0) + (-1.0) ** (q - 1) * (math.log(2.0) + math.fsum(signs / m)))


def _sum_log1m(Z: np.ndarray, gram: np.ndarray | None) -> float:
    r""":math:`\sum_{i<j}\log(1 - X_i^T X_j)`."""
    n = Z.shape[0]
    total = 0.0
    for rows, G in _row_blocks(Z, gram):
        mask = np.arange(n)[None, :] > rows[:, None]
        with np.errstate(divide="ignore"):
            vals = np.log1p(-np.minimum(G, 1.0))
        total += math.fsum(np.sum(np.where(mask, vals, 0.0), axis=1))
    return total


def pycke_sphere(Z: np.ndarray, *, gram: np.ndarray | None = None) -> float:
    r"""Pycke's statistic (q = 2, 3), and sphunif's replacement for q > 3: Riesz with s = 0."""
    n, q = Z.shape
    s = _sum_log1m(Z, gram)
    if q == 2:
        return float(-2.0 / (n - 1.0) * s - math.log(2.0) * n)
    if q == 3:
        return float(
            -s / (2.0 * math.pi * (n - 1.0)) - (math.log(2.0) / (4 * math.pi) + (1 - math.log(4.0)) / (4 * math.pi)) * n
        )
    return float(-s / n - 0.5 * math.log(2.0) * (n - 1.0) + n * riesz0_tau(q))


def normal_sf(x: float) -> float:
    return float(stats.norm.sf(x))


def projected_null(test: str, *, q: int, t: float = 1.0 / 3.0, method: str = "imhof", rtol: float = 1e-7) -> Any:
    r"""Asymptotic null law :math:`\sum_k v_k^2\chi^2_{N(q,k)}` of PCvM, PAD or PRt(t), tail mean folded in.

    The degree doubles from 64 until the neglected mean is below ``rtol`` times the total (at most 1024); the
    neglected mean goes into the law's shift (exact mean) and ``truncation_error``.
    """
    from ..nulls import WeightedChiSquare

    degree = 64
    while True:
        v, total = projected_weights(test, q=q, degree=degree, t=t)
        dims = harmonic_dims(degree, q=q)
        # a_k = N(q, k) v_k^2 carries the quadrature noise of v_k times sqrt(N(q, k)): degrees with
        # N(q, k) > 1e18 are not resolved in float64 (noise ~ 1e-16 sqrt(N)); their chi-squares are
        # concentrated at their means (weight v_k^2 tiny), which go into the shift.
        resolved = dims <= _MAX_DIM
        a = v * dims
        cum = np.cumsum(np.where(resolved, a, 0.0))
        done = np.nonzero(cum >= (1.0 - rtol) * total)[0]
        if done.size or not resolved[-1] or degree >= 1024:
            break
        degree *= 2
    last = int(done[0]) + 1 if done.size else int(np.count_nonzero(resolved))
    keep = np.zeros(degree, dtype=bool)
    keep[:last] = v[:last] > 0  # exact zeros (PRt at rational t) come out as +-noise
    tail = total - float(math.fsum(a[keep]))
    method = "imhof" if method == "asymptotic" else method
    return WeightedChiSquare(v[keep], dims[keep], method=method, shift=tail, tail_bound=abs(tail))


# =================================================================================================================
# the stereographic test (Fernández-de-Marcos & García-Portugués 2024)


def check_stereo_a(a: float) -> float:
    a = check_real(a, "a")
    if not -1 <= a <= 1:
        raise ValueError(f"a must lie in [-1, 1] for the Stereo test, got {a}")
    return a


def stereo_mean(q: int) -> float:
    r""":math:`E[\cot(\theta/2)] = E[\tan(\theta/2)] = B(\tfrac q2, \tfrac q2 - 1) / B(\tfrac{q-1}2, \tfrac{q-1}2)`."""
    return float(math.exp(special.betaln(0.5 * q, 0.5 * q - 1.0) - special.betaln(0.5 * (q - 1), 0.5 * (q - 1))))


def stereo_pair_kernel(t: np.ndarray, a: float, q: int) -> np.ndarray:
    r""":math:`\psi_a = \cot(\theta/2) + a\tan(\theta/2) - (1 + a)E[\cot(\theta/2)]`, with
    :math:`\cot(\theta/2) = \sqrt{(1 + t)/(1 - t)}`."""
    one_plus = np.clip(1.0 + t, 0.0, 2.0)
    one_minus = np.clip(1.0 - t, 0.0, 2.0)
    with np.errstate(divide="ignore"):
        out = np.sqrt(one_plus / one_minus)
        if a != 0.0:
            out += a * np.sqrt(one_minus / one_plus)
    out -= (1.0 + a) * stereo_mean(q)
    return out


def stereo(Z: np.ndarray, *, a: float = 0.0, gram: np.ndarray | None = None) -> float:
    r"""Stereographic test statistic :math:`\tfrac2n\sum_{i<j}\psi_a(\theta_{ij})` (a U-statistic; q >= 3)."""
    a = check_stereo_a(a)
    n, q = Z.shape
    total = 0.0
    for rows, G in _row_blocks(Z, gram):
        mask = np.arange(n)[None, :] > rows[:, None]
        vals = stereo_pair_kernel(np.where(mask, G, 0.0), a, q)
        total += math.fsum(np.sum(np.where(mask, vals, 0.0), axis=1))
    return float(2.0 / n * total)


def stereo_weights(degree: int, *, q: int, a: float = 0.0) -> np.ndarray:
    r"""Chi-square weights :math:`v_k^2`, k = 1..degree, of the Stereo test (q >= 3; closed form of the paper).

    :math:`v_k^2 = b_k / (1 + 2k/(q-2))` with, :math:`\lambda = q/2 - 1`,
    :math:`b_{2k-1} = (1-a)\tfrac{(2k-1)(4k-4+q)}{2k+q-3}\tfrac{1}{2\pi}
    \bigl(\tfrac{\Gamma(k-1/2)\Gamma(\lambda)}{\Gamma(k+\lambda-1/2)}\bigr)^2` and
    :math:`b_{2k} = (1+a)(4k+q-2)\tfrac{1}{2\pi}\bigl(\tfrac{\Gamma(k+1/2)\Gamma(\lambda)}{\Gamma(k+(q-1)/2)}\bigr)^2`.
    """
    a = check_stereo_a(a)
    lam = 0.5 * q - 1.0
    m = np.arange(1, degree + 1, dtype=np.float64)
    k = np.ceil(0.5 * m)
    odd = m % 2 == 1
    with np.errstate(divide="ignore"):
        log_odd = (
            np.log(2 * k - 1)
            + np.log(4 * (k - 1) + q)
            - np.log(2 * k + q - 3)
            + 2 * (special.gammaln(k - 0.5) + special.gammaln(lam) - special.gammaln(k + lam - 0.5))
            - math.log(2 * math.pi)
        )
        log_even = (
            np.log(4 * k + q - 2)
            + 2 * (special.gammaln(k + 0.5) + special.gammaln(lam) - special.gammaln(k + 0.5 * (q - 1)))
            - math.log(2 * math.pi)
        )
    b = np.where(odd, (1.0 - a) * np.exp(log_odd), (1.0 + a) * np.exp(log_even))
    return b / (1.0 + 2.0 * m / (q - 2.0))


def stereo_null(*, q: int, a: float = 0.0, method: str = "imhof", degree: int = 4096) -> Any:
    r"""Null law :math:`\sum_k v_k^2(\chi^2_{N(q,k)} - N(q,k))` of the Stereo U-statistic (q >= 4; at q = 3 the
    series of variances diverges and only Monte Carlo calibrates the test, as in sphunif)."""
    from ..nulls import WeightedChiSquare

    if q < 4:
        raise ValueError("the Stereo test has no asymptotic null law at q = 3 (its variance series diverges)")
    v = stereo_weights(degree, q=q, a=a)
    dims = harmonic_dims(degree, q=q)
    keep = (v > 0) & (dims <= _MAX_DIM)
    method = "imhof" if method == "asymptotic" else method
    # centred terms: the unresolved degrees (tiny weights, huge dimensions) contribute mean 0, negligible variance
    return WeightedChiSquare(v[keep], dims[keep], method=method, shift=-float(math.fsum(v[keep] * dims[keep])))


# =================================================================================================================
# Stein's test (Axmann, Ebner & García-Portugués)


def stein_weights(K: int, *, q: int, cf: bool = False) -> np.ndarray:
    r"""Chi-square weights :math:`v_k^2`, k = 1..K, of the Stein test (a finite Sobolev test).

    The Stein identity :math:`E[\Delta_S f(X)] = 0` of the uniform law with the test functions
    :math:`f_t(x) = e^{t^T x}`, :math:`\|t\| = 1` (``cf=True``: :math:`e^{i t^T x}`), averaged over the directions t,
    gives the kernel :math:`\sum_k v_k^2 N(q,k) P_{k,q}` with (:math:`\lambda = q/2 - 1`, Laplace–Beltrami eigenvalue
    :math:`k(k + q - 2)`)

    .. math::

        v_k^2 = \bigl(k(k + q - 2)\,\Gamma(q/2)\,2^{\lambda} I_{k+\lambda}(1)\bigr)^2

    (:math:`J_{k+\lambda}(1)` for ``cf``); sphunif truncates the series at K terms (default 10).
    """
    K = check_integer(K, "K", minimum=1)
    lam = 0.5 * q - 1.0
    k = np.arange(1, K + 1, dtype=np.float64)
    if cf:
        bessel_log = np.log(np.abs(special.jv(k + lam, 1.0)))
    else:
        from ..special import log_iv

        bessel_log = np.asarray(log_iv(k + lam, 1.0), dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_v = np.log(k) + np.log(k + q - 2.0) + special.gammaln(0.5 * q) + lam * math.log(2.0) + bessel_log
    return np.exp(2.0 * log_v)
