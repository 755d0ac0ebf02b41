r"""Uniformity tests on the circle :math:`S^1` (q = 2), with the definitions of the R package sphunif.

The data are angles :math:`\Theta_1, \dots, \Theta_n \in [0, 2\pi)` (:func:`angles` converts unit vectors
:math:`(\cos\Theta, \sin\Theta)`). Notation: :math:`U_{(1)} \le \dots \le U_{(n)}` are the sorted
:math:`U_i = \Theta_i / (2\pi)`, :math:`\bar U` their mean, :math:`D_i` the circular gaps (spacings)
:math:`\Theta_{(i+1)} - \Theta_{(i)}`, :math:`D_n = 2\pi - \Theta_{(n)} + \Theta_{(1)}` (they sum to
:math:`2\pi`), and :math:`\Psi_{ij} = \pi - |\pi - |\Theta_i - \Theta_j||` the shortest angle between two points.

Statistics (large values reject) and null laws (the ``*_sf`` functions):

- Kuiper: :math:`\sqrt n\,(D_n^+ + D_n^-)`; Kuiper's law to first order in :math:`n^{-1/2}`.
- Watson: :math:`\sum_i (U_{(i)} - \bar U - \tfrac{i - 1/2}{n} + \tfrac12)^2 + \tfrac{1}{12 n}`; its exact limit law.
- Watson_1976: :math:`\sqrt n\,(\max_i(\tfrac in - U_{(i)}) + \bar U - \tfrac12)`; Watson's (1976) series.
- Hodges_Ajne: the most points in a half-circle; exact law (Ajne 1968), p-value :math:`P(H \ge h)` (sphunif:
  :math:`P(H > h)`).
- Cressie: the most points in an arc of length :math:`2\pi t`; Monte Carlo.
- FG01: Feltz & Goldin's 4-point Cramér–von Mises statistic; Monte Carlo.
- Range: :math:`\max_i D_i`; exact law.
- Rao: :math:`\sqrt n\,(\tfrac12\sum_i |D_i - 2\pi/n| - 2\pi/e)`; normal.
- Greenwood: :math:`\sqrt n\,(n \sum_i D_i^2 / (4\pi^2) - 2)`; normal, sd 2.
- Log_gaps: :math:`\sqrt n\,|\log(2\pi/n) - \overline{\log D} - \gamma|`; half-normal.
- Vacancy: :math:`\sqrt n\,(Y_n - e^{-a'})/\sigma_a`; normal.
- Max_uncover: :math:`n X_n - \log n + a'`; Gumbel.
- Num_uncover: :math:`-(n e^{-a'} - L_n)/\sqrt{n e^{-a'}(1 - e^{-a'}(1 + a'^2))}`; normal, with the continuity
  correction of the count :math:`L_n` (p-value :math:`P(L_n \ge l)`).
- Gini: :math:`\sqrt n\,(\sum_{i<j}|D_i - D_j| / (\pi (n-1)) - 1)`; normal, sd :math:`3^{-1/2}`.
- Gini_squared: :math:`\sqrt n\,(n \sum_{i<j}(D_i - D_j)^2 / (2\pi^2 (n-1)) - 2)`; normal, sd 4.
- Hermans_Rasson: :math:`n c_H - \tfrac2n\sum_{i<j}(\Psi_{ij} + \beta^2 \sin\Psi_{ij})`; weighted chi-square.
- Pycke: :math:`-\tfrac{2}{n-1}\sum_{i<j}\log(2 - 2\cos\Psi_{ij})`; Gumbel.
- Pycke_q: :math:`\tfrac4n\sum_{i<j}\tfrac{\cos\Psi_{ij} - q}{1 - 2q\cos\Psi_{ij} + q^2} + \tfrac{2}{1-q}`;
  weighted chi-square.
- Rothman (= PRt): :math:`t(1-t) - \tfrac2n\sum_{i<j}\min(\Psi_{ij}/2\pi - t(1-t), t^2)`; weighted chi-square.
- PCvM: twice Watson's statistic; its exact law.
- PAD: :math:`n + \tfrac2n\sum_{i<j}(h(\Psi_{ij})/\pi - 2\log 2\pi)`,
  :math:`h(\theta) = \theta\log\theta + (2\pi - \theta)\log(2\pi - \theta)`; weighted chi-square.

Here :math:`a' = a/(2\pi)` for the arc length :math:`a/n` of the coverage tests (sphunif's ``cov_a``, default
:math:`2\pi`), :math:`Y_n = \sum_i (D_i - a/n)^+ / (2\pi)` the vacancy, :math:`X_n = (\max_i D_i - a/n)^+/(2\pi)`,
:math:`L_n = \#\{i: D_i > a/n\}`, :math:`\beta^2 = (\pi^2/36)/(1/2 - 4/\pi^2)` and :math:`c_H = \pi/2 + 2\beta^2/\pi`.

The Sobolev statistics (Hermans_Rasson, Pycke_q, Rothman, PAD, PCvM) are V-statistics
:math:`\tfrac1n\sum_{i,j} g(\Psi_{ij}) - n E[g]` of a kernel with cosine coefficients :math:`b_k`, and their
asymptotic null laws are :math:`\sum_{k\ge1} v_k^2 \chi^2_2` with :math:`v_k^2 = E[g(\Psi)\cos(k\Psi)]`
(:func:`sobolev_weights`); the series is summed to a degree where the neglected mean is below ``1e-10`` relative
and that mean is added to the law's shift (exact mean).

References: García-Portugués & Verdebout (2018), arXiv:1804.00286 (definitions and null laws), and the references
therein (Kuiper 1960, Watson 1961 and 1976, Ajne 1968, Rao 1969, Feltz & Goldin 2001, Pycke 2010, ...).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import special, stats

from .._validate import check_integer, check_real

__all__: list[str] = []

TWO_PI = 2.0 * math.pi
# Hermans-Rasson constants (Pycke 2010's h_3)
HR_BETA2 = (math.pi**2 / 36.0) / (0.5 - 4.0 / math.pi**2)
HR_CONST = 0.5 * math.pi + HR_BETA2 * 2.0 / math.pi
# sd of Rao's spacing statistic
RAO_SD = TWO_PI * math.sqrt((2.0 - 5.0 / math.e) / math.e)
LOG_GAPS_SD = math.sqrt(math.pi**2 / 6.0 - 1.0)
# Rows of the pairwise block computations (memory ~ 8 * block * n bytes).
_PAIR_BLOCK = 2048


# =================================================================================================================
# data


def angles(Z: Any) -> np.ndarray:
    r"""Angles :math:`\operatorname{atan2}(z_2, z_1) \bmod 2\pi \in [0, 2\pi)` of the rows of an (n, 2) array.

    A 1-d array is taken as angles already and reduced mod :math:`2\pi`.

    Examples
    --------
    >>> angles(np.array([[1.0, 0.0], [0.0, -1.0]])).round(6).tolist()
    [0.0, 4.712389]
    """
    arr = np.asarray(Z, dtype=np.float64)
    if arr.ndim == 1:
        if not np.all(np.isfinite(arr)):
            raise ValueError("the angles must be finite")
        return np.mod(arr, TWO_PI)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"circular data must be angles (n,) or unit vectors (n, 2), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("Z contains NaN or inf")
    return np.mod(np.arctan2(arr[:, 1], arr[:, 0]), TWO_PI)


def _sorted(theta: np.ndarray) -> np.ndarray:
    theta = np.sort(np.mod(np.asarray(theta, dtype=np.float64), TWO_PI))
    if theta.size < 2:
        raise ValueError(f"at least 2 angles are needed, got {theta.size}")
    return theta


def gaps(theta: Any) -> np.ndarray:
    r"""Circular spacings :math:`D_1, \dots, D_n` of the sorted angles (they sum to :math:`2\pi`)."""
    s = _sorted(theta)
    return np.append(np.diff(s), TWO_PI - s[-1] + s[0])


def _pair_sum(theta: np.ndarray, f, *, block: int = _PAIR_BLOCK) -> float:
    r""":math:`\sum_{i<j} f(\Psi_{ij})` over the shortest angles, in row blocks (memory O(block n))."""
    n = theta.size
    total = 0.0
    for start in range(0, n - 1, block):
        stop = min(start + block, n - 1)
        rows = theta[start:stop, None]
        d = np.abs(rows - theta[None, :])
        psi = math.pi - np.abs(math.pi - d)
        vals = f(psi)
        # keep j > i only
        mask = np.arange(n)[None, :] > np.arange(start, stop)[:, None]
        total += math.fsum(np.sum(np.where(mask, vals, 0.0), axis=1))
    return total


# =================================================================================================================
# statistics based on the empirical distribution function


def kuiper(theta: Any) -> float:
    r"""Kuiper's :math:`V_n = \sqrt n\,(D_n^+ + D_n^-)` of :math:`U = \Theta/2\pi` (sphunif ``cir_stat_Kuiper``).

    Examples
    --------
    >>> round(kuiper(np.array([0.0, np.pi])), 12)  # D+ = D- = 1/2 - 1/2 ... : sqrt(2) * 0.5
    0.707106781187
    """
    u = _sorted(theta) / TWO_PI
    n = u.size
    i = np.arange(1, n + 1) / n
    dev = u - i
    return float(math.sqrt(n) * (dev.max() + 1.0 / n - dev.min()))


def watson(theta: Any) -> float:
    r"""Watson's :math:`U_n^2 = \sum_i (U_{(i)} - \bar U - \tfrac{i-1/2}{n} + \tfrac12)^2 + \tfrac{1}{12n}`."""
    u = _sorted(theta) / TWO_PI
    n = u.size
    i = (np.arange(1, n + 1) - 0.5) / n
    dev = u - i - (u.mean() - 0.5)
    return float(math.fsum(dev * dev) + 1.0 / (12.0 * n))


def watson_1976(theta: Any) -> float:
    r"""Watson's (1976) :math:`M_n = \sqrt n\,(\max_i(i/n - U_{(i)}) + \bar U - 1/2)`."""
    u = _sorted(theta) / TWO_PI
    n = u.size
    i = np.arange(1, n + 1) / n
    return float(math.sqrt(n) * (np.max(i - u) + u.mean() - 0.5))


def cressie(theta: Any, t: float = 1.0 / 3.0) -> float:
    r"""Cressie's (1977) scan statistic: the largest number of points in an arc of length :math:`2\pi t`.

    The arcs :math:`[\Theta_{(i)}, \Theta_{(i)} + 2\pi t)` start at the data points (sphunif's convention, the
    end shortened by one ulp of t).
    """
    t = check_real(t, "t")
    if not 0 < t < 1:
        raise ValueError(f"t must lie in (0, 1) (a fraction of the circle), got {t}")
    s = _sorted(theta)
    n = s.size
    ext = np.concatenate([s, s + TWO_PI, s + 2 * TWO_PI])
    upper = s + TWO_PI * (t - np.finfo(float).eps)
    counts = np.searchsorted(ext, upper, side="right") - np.arange(n)
    return float(counts.max())


def hodges_ajne(theta: Any) -> float:
    """Hodges–Ajne statistic: the largest number of points in a half-circle (Cressie's statistic at t = 1/2)."""
    return cressie(theta, 0.5)


def feltz_goldin(theta: Any) -> float:
    r"""Feltz & Goldin's (2001) four-point Cramér–von Mises statistic :math:`C_n^{(4)}` (sphunif's ``FG01``)."""
    u = _sorted(theta) / TWO_PI
    n = u.size
    ubar = u.mean()
    ih = (np.arange(1, n + 1) - 0.5) / n
    c = (math.fsum((u - ih) ** 2) + 1.0 / (12.0 * n)) / 6.0
    u2 = u * u
    # sum_r u_r (sum_{c >= r} u_c^2 - sum_{c < r} u_c^2)
    csum = np.cumsum(u2)
    total = csum[-1]
    below = csum - u2  # sum_{c < r}
    above = total - below  # sum_{c >= r}
    sigma_sum = math.fsum(u * (above - below))
    i2 = np.arange(2, n + 2)
    s2, s3, s4 = math.fsum(u2), math.fsum(u2 * u), math.fsum(u2 * u2)
    xi = n / 15.0 - n * ubar / 3.0 + sigma_sum / n + 0.5 * s2 - 2.0 * math.fsum(i2 * u2 * u) / (3.0 * n) + s4 / 6.0
    c += (
        -0.5 * n * (0.5 - ubar) ** 2
        + 2.0 * xi
        - 4.0 * (0.5 - ubar) * (n / 12.0 - s3 / 3.0)
        + n * (1.0 / 3.0 - s2 / n) ** 2
    )
    return float(c)


# =================================================================================================================
# spacings


def range_statistic(theta: Any) -> float:
    r"""Circular range test statistic: the largest gap :math:`\max_i D_i` (sphunif ``Range``)."""
    return float(gaps(theta).max())


def rao(theta: Any) -> float:
    r"""Rao's spacing statistic :math:`\sqrt n\,(\tfrac12\sum_i |D_i - 2\pi/n| - 2\pi/e)` (radians)."""
    d = gaps(theta)
    n = d.size
    return float(math.sqrt(n) * (0.5 * math.fsum(np.abs(d - TWO_PI / n)) - TWO_PI / math.e))


def greenwood(theta: Any) -> float:
    r"""Greenwood's statistic :math:`\sqrt n\,(n \sum_i D_i^2 / (4\pi^2) - 2)`."""
    d = gaps(theta)
    n = d.size
    return float(math.sqrt(n) * (n * math.fsum(d * d) / TWO_PI**2 - 2.0))


def log_gaps(theta: Any) -> float:
    r"""Darling's log-gaps statistic :math:`\sqrt n\,|\log(2\pi/n) - \tfrac1n\sum_i \log D_i - \gamma|`."""
    d = gaps(theta)
    n = d.size
    with np.errstate(divide="ignore"):
        mean_log = float(np.mean(np.log(d)))
    return float(abs(math.sqrt(n) * (math.log(TWO_PI / n) - mean_log - np.euler_gamma)))


def _check_cov_a(a: float) -> float:
    a = check_real(a, "a", positive=True)
    return a


def vacancy(theta: Any, a: float = TWO_PI) -> float:
    r"""Standardised vacancy of the arcs of length :math:`a/n` starting at the data (sphunif ``Vacancy``)."""
    a = _check_cov_a(a)
    d = gaps(theta)
    n = d.size
    y = math.fsum(np.clip(d - a / n, 0.0, None)) / TWO_PI
    a1 = a / TWO_PI
    e = math.exp(-a1)
    return float(math.sqrt(n) * (y - e) / math.sqrt(2.0 * e * (1.0 - e * (1.0 + a1 * (1.0 + 0.5 * a1)))))


def max_uncover(theta: Any, a: float = TWO_PI) -> float:
    r"""Standardised maximum uncovered spacing :math:`n X_n - \log n + a/(2\pi)` (sphunif ``Max_uncover``)."""
    a = _check_cov_a(a)
    d = gaps(theta)
    n = d.size
    x = max(float(d.max()) - a / n, 0.0) / TWO_PI
    return float(n * x - math.log(n) + a / TWO_PI)


def num_uncover(theta: Any, a: float = TWO_PI) -> float:
    r"""Standardised number of uncovered spacings (sphunif ``Num_uncover``; large values reject)."""
    a = _check_cov_a(a)
    d = gaps(theta)
    n = d.size
    count = float(np.count_nonzero(d > a / n))
    a1 = a / TWO_PI
    e = math.exp(-a1)
    return float(-(n * e - count) / math.sqrt(n * e * (1.0 - e * (1.0 + a1 * a1))))


def gini(theta: Any) -> float:
    r"""Gini mean difference of the gaps, :math:`\sqrt n\,(\sum_{i<j}|D_i - D_j| / (\pi(n-1)) - 1)`."""
    d = np.sort(gaps(theta))
    n = d.size
    k = np.arange(1, n + 1)
    total = math.fsum((2.0 * k - n - 1.0) * d)
    return float(math.sqrt(n) * (total / (math.pi * (n - 1.0)) - 1.0))


def gini_squared(theta: Any) -> float:
    r"""Gini squared mean difference, :math:`\sqrt n\,(n \sum_{i<j}(D_i - D_j)^2 / (2\pi^2(n-1)) - 2)`."""
    d = gaps(theta)
    n = d.size
    centred = d - TWO_PI / n
    q = n * math.fsum(centred * centred)  # = n sum d^2 - (sum d)^2 = sum_{i<j} (d_i - d_j)^2
    return float(math.sqrt(n) * (n / ((n - 1.0) * 2.0 * math.pi**2) * q - 2.0))


# =================================================================================================================
# Sobolev statistics on the circle (pairwise shortest angles)


def hermans_rasson(theta: Any) -> float:
    r"""Hermans–Rasson statistic :math:`n c_H - \tfrac2n\sum_{i<j}(\Psi_{ij} + \beta^2\sin\Psi_{ij})`."""
    th = np.mod(np.asarray(theta, dtype=np.float64), TWO_PI)
    n = th.size
    s = _pair_sum(th, lambda p: p + HR_BETA2 * np.sin(p))
    return float(-2.0 / n * s + n * HR_CONST)


def pycke(theta: Any) -> float:
    r"""Pycke's circular statistic :math:`-\tfrac{2}{n-1}\sum_{i<j}\log(2 - 2\cos\Psi_{ij})`."""
    th = np.mod(np.asarray(theta, dtype=np.float64), TWO_PI)
    n = th.size
    with np.errstate(divide="ignore"):
        s = _pair_sum(th, lambda p: -2.0 * np.log(4.0 * np.sin(0.5 * p) ** 2))
    return float(s / (n - 1.0))


def pycke_q(theta: Any, q: float = 0.5) -> float:
    r"""Pycke's "q-test" :math:`\tfrac4n\sum_{i<j}\tfrac{\cos\Psi - q}{1 - 2q\cos\Psi + q^2} + \tfrac{2}{1-q}`."""
    q = check_pycke_q(q)
    th = np.mod(np.asarray(theta, dtype=np.float64), TWO_PI)
    n = th.size
    s = _pair_sum(th, lambda p: (np.cos(p) - q) / (1.0 - 2.0 * q * np.cos(p) + q * q))
    return float(4.0 / n * s + 2.0 / (1.0 - q))


def check_pycke_q(q: float) -> float:
    q = check_real(q, "q")
    if not 0 < q < 1:
        raise ValueError(f"q must lie in (0, 1) for the Pycke q-test, got {q}")
    return q


def _check_rothman_t(t: float) -> float:
    t = check_real(t, "t")
    if not 0 < t < 1:
        raise ValueError(f"t must lie in (0, 1) for the Rothman test, got {t}")
    return min(t, 1.0 - t)


def rothman(theta: Any, t: float = 1.0 / 3.0) -> float:
    r"""Rothman's statistic :math:`t(1-t) - \tfrac2n\sum_{i<j}\min(\Psi_{ij}/2\pi - t(1-t), t^2)` (t -> min(t, 1-t))."""
    t = _check_rothman_t(t)
    th = np.mod(np.asarray(theta, dtype=np.float64), TWO_PI)
    n = th.size
    tm2 = t * (1.0 - t)
    s = _pair_sum(th, lambda p: np.minimum(p / TWO_PI - tm2, t * t))
    return float(-2.0 / n * s + tm2)


def pcvm(theta: Any) -> float:
    r"""Projected Cramér–von Mises statistic on the circle: :math:`2 U_n^2` (twice Watson's)."""
    return 2.0 * watson(theta)


def pad_kernel(p):
    with np.errstate(divide="ignore", invalid="ignore"):
        out = p * np.log(p) + (TWO_PI - p) * np.log(TWO_PI - p)
    return np.where(p > 0, out, TWO_PI * math.log(TWO_PI))


def pad(theta: Any) -> float:
    r"""Projected Anderson–Darling statistic on the circle (h as in the module table)."""
    th = np.mod(np.asarray(theta, dtype=np.float64), TWO_PI)
    n = th.size
    s = _pair_sum(th, pad_kernel)
    return float(2.0 / n * (s / math.pi - math.log(TWO_PI) * n * (n - 1.0)) + n)


# =================================================================================================================
# null laws (upper-tail probabilities)


def kuiper_sf(x: float, n: int, *, terms: int = 100) -> float:
    r"""Upper tail of Kuiper's :math:`V_n` with Stephens' first-order term in :math:`1/\sqrt n`.

    :math:`P(V_n > x) \approx 2\sum_{m\ge1}\bigl(4m^2x^2 - 1 - \tfrac{8 m^2 x}{3\sqrt n}(4m^2x^2 - 3)\bigr)
    e^{-2m^2x^2}` (Kuiper 1960; sphunif's default).
    """
    n = check_integer(n, "n", minimum=1)
    x = float(x)
    if x <= 0.32:
        return 1.0
    m = np.arange(1, terms + 1, dtype=np.float64)
    s = (m * x) ** 2
    terms_ = (4.0 * s - 1.0 - 4.0 / 3.0 / math.sqrt(n) * x * m * m * (4.0 * s - 3.0)) * np.exp(-2.0 * s)
    return float(np.clip(2.0 * math.fsum(terms_), 0.0, 1.0))


def watson_sf(x: float) -> float:
    r"""Upper tail of Watson's :math:`U^2`: :math:`2\sum_{m\ge1}(-1)^{m-1}e^{-2m^2\pi^2x}`."""
    x = float(x)
    if x <= 0:
        return 1.0
    return float(stats.kstwobign.sf(math.pi * math.sqrt(x)))


@lru_cache(maxsize=4)
def _watson_1976_rule(terms: int, nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    zeros = -special.ai_zeros(terms)[0]  # zeros a_m of Ai(-x)
    alpha = 2.0 / 3.0 * zeros**1.5
    x, w = np.polynomial.legendre.leggauss(nodes)
    th = 0.5 * math.pi * (x + 1.0)
    w = 0.5 * math.pi * w
    g = np.sin(2.0 * th / 3.0) ** 2 * np.sin(th / 3.0) / np.sin(th) ** 3
    return alpha, th, w, g


def watson_1976_cdf(x: float, *, terms: int = 25, nodes: int = 200) -> float:
    r"""Distribution function of Watson's (1976) :math:`M` (sup of the centred bridge): Airy-zero series.

    :math:`F(x) = \tfrac{8}{3\sqrt\pi}\sum_m \tfrac{1}{\alpha_m}\,(\tfrac{3\alpha_m}{\sqrt8 x})^3
    \int_0^\pi g(\theta) e^{-(3\alpha_m/(\sqrt8 x))^2 g(\theta)}\,d\theta`,
    :math:`g(\theta) = \sin^2(2\theta/3)\sin(\theta/3)/\sin^3\theta`, :math:`\alpha_m = \tfrac23 a_m^{3/2}`
    (:math:`a_m` the zeros of :math:`\mathrm{Ai}(-x)`); 1 for x >= 2.4 (sphunif's cut-off, where 1 - F < 1e-11).
    """
    x = float(x)
    if x <= 0:
        return 0.0
    if x >= 2.4:
        return 1.0
    alpha, _, w, g = _watson_1976_rule(terms, nodes)
    c = 3.0 / math.sqrt(8.0) / x
    total = 0.0
    for a in alpha:
        z = a * c
        total += float(np.sum(w * g * np.exp(-z * z * g))) * z**3 / a
    return float(np.clip(8.0 / (3.0 * math.sqrt(math.pi)) * total, 0.0, 1.0))


def watson_1976_sf(x: float) -> float:
    """Upper tail ``1 - F(x)`` of Watson's (1976) statistic."""
    return 1.0 - watson_1976_cdf(x)


def hodges_ajne_sf(x: float, n: int) -> float:
    r"""Exact :math:`P(H_n \ge x)` of the Hodges–Ajne count (Ajne 1968; sphunif's ``exact = TRUE``).

    :math:`P(H_n \ge k) = 2^{1-n}(2k - n)\sum_{j\ge0}\binom{n}{k + j(2k-n)}` for :math:`k > n/2`.
    """
    n = check_integer(n, "n", minimum=1)
    k = math.ceil(float(x) - 1e-9)
    if k <= n / 2.0:
        return 1.0
    if k > n:
        return 0.0
    step = 2 * k - n
    js = np.arange(0, (n - k) // step + 1)
    m = k + js * step
    logc = special.gammaln(n + 1) - special.gammaln(m + 1) - special.gammaln(n - m + 1)
    val = float(np.sum(np.exp(logc + math.log(step) - (n - 1) * math.log(2.0))))
    return float(np.clip(val, 0.0, 1.0))


def range_sf(x: float, n: int) -> float:
    r"""Exact upper tail of the largest circular gap (Stevens 1939):
    :math:`P(\max D > x) = \sum_{m\ge1}(-1)^{m-1}\binom nm (1 - m x/(2\pi))_+^{n-1}`."""
    n = check_integer(n, "n", minimum=2)
    u = float(x) / TWO_PI
    if u <= 1.0 / n:
        return 1.0
    if u >= 1.0:
        return 0.0
    m = np.arange(1, min(math.floor(1.0 / u), n) + 1)
    base = 1.0 - m * u
    ok = base > 0
    m, base = m[ok], base[ok]
    logt = special.gammaln(n + 1) - special.gammaln(m + 1) - special.gammaln(n - m + 1) + (n - 1) * np.log(base)
    shift = logt.max()
    sgn = np.where(m % 2 == 1, 1.0, -1.0)
    return float(np.clip(math.exp(shift) * math.fsum(sgn * np.exp(logt - shift)), 0.0, 1.0))


def normal_sf(x: float, sd: float = 1.0) -> float:
    """Upper tail of N(0, sd^2)."""
    return float(stats.norm.sf(x, scale=sd))


def log_gaps_sf(x: float) -> float:
    r"""Upper tail of :math:`|N(0, \pi^2/6 - 1)|`."""
    return float(min(1.0, 2.0 * stats.norm.sf(x, scale=LOG_GAPS_SD))) if x > 0 else 1.0


def max_uncover_sf(x: float) -> float:
    r"""Upper tail of the Gumbel law :math:`e^{-e^{-x}}`."""
    return float(-math.expm1(-math.exp(-x)))


def pycke_sf(x: float) -> float:
    r"""Upper tail of Pycke's circular statistic: :math:`1 - \exp(-e^{-(x + 2\gamma)/2})`."""
    return float(-math.expm1(-math.exp(-0.5 * (x + 2.0 * np.euler_gamma))))


# =================================================================================================================
# Sobolev weights on the circle


@lru_cache(maxsize=64)
def sobolev_weights(test: str, degree: int, param: float | None = None) -> tuple[np.ndarray, float]:
    r"""Chi-square weights :math:`v_1^2, \dots, v_K^2` (2 degrees of freedom each) and the exact total mean.

    The asymptotic null law of the circular Sobolev statistic is :math:`\sum_{k\ge1} v_k^2\chi^2_2`, of mean
    ``total`` = :math:`2\sum_k v_k^2`.

    Parameters
    ----------
    test : {"hermans_rasson", "pycke_q", "rothman", "pad", "pcvm"}
    degree : int
        Number K of weights.
    param : float, optional
        q of Pycke_q, t of Rothman.
    """
    k = np.arange(1, degree + 1, dtype=np.float64)
    if test == "hermans_rasson":
        odd = k % 2 == 1
        v = np.empty_like(k)
        v[odd] = 2.0 / (math.pi * k[odd] ** 2)
        v[~odd] = 2.0 * HR_BETA2 / (math.pi * (k[~odd] ** 2 - 1.0))
        return v, HR_CONST
    if test == "pycke_q":
        return param ** (k - 1.0), 2.0 / (1.0 - param)
    if test == "rothman":
        t = param
        return (np.sin(k * math.pi * t) / (math.pi * k)) ** 2, t * (1.0 - t)
    if test == "pcvm":  # 2 U^2: 2 sum chi2_2 / (4 pi^2 k^2)
        return 1.0 / (2.0 * math.pi**2 * k * k), 1.0 / 6.0
    if test == "pad":
        # pi^2 k^2 v_k^2 = int_0^{2 pi} u log(u) cos(k u) du = gamma + log(2 pi k) - Ci(2 pi k) (by parts twice)
        ci = special.sici(TWO_PI * k)[1]
        return (np.euler_gamma + np.log(TWO_PI * k) - ci) / (math.pi * k) ** 2, 1.0
    raise ValueError(f"no circular Sobolev weights for {test!r}")  # pragma: no cover


# =================================================================================================================
# the exact laws as scipy.stats distributions (frozen objects with sf, cdf, ppf, ...)


class _WatsonU2Law(stats.rv_continuous):
    """Watson's U^2 law (limit of U_n^2 under uniformity)."""

    def _sf(self, x):
        return np.vectorize(watson_sf, otypes=[float])(x)

    def _cdf(self, x):
        return 1.0 - self._sf(x)


class _Watson1976Law(stats.rv_continuous):
    """Law of Watson's (1976) M (limit of M_n under uniformity)."""

    def _cdf(self, x):
        return np.vectorize(watson_1976_cdf, otypes=[float])(x)


class _KuiperLaw(stats.rv_continuous):
    """Kuiper's V_n law to first order in 1/sqrt(n) (shape parameter n)."""

    def _argcheck(self, n):
        return n >= 1

    def _sf(self, x, n):
        return np.vectorize(lambda v, m: kuiper_sf(v, int(m)), otypes=[float])(x, n)

    def _cdf(self, x, n):
        return 1.0 - self._sf(x, n)


class _RangeLaw(stats.rv_continuous):
    """Exact law of the largest circular gap of n uniform points (shape parameter n)."""

    def _argcheck(self, n):
        return n >= 2

    def _sf(self, x, n):
        return np.vectorize(lambda v, m: range_sf(v, int(m)), otypes=[float])(x, n)

    def _cdf(self, x, n):
        return 1.0 - self._sf(x, n)


class _HodgesAjneLaw(stats.rv_discrete):
    """Exact law of the Hodges–Ajne count of n uniform points (shape parameter n); sf(k - 1) = P(H >= k)."""

    def _argcheck(self, n):
        return n >= 1

    def _sf(self, k, n):
        return np.vectorize(lambda v, m: hodges_ajne_sf(v + 1, int(m)), otypes=[float])(k, n)

    def _cdf(self, k, n):
        return 1.0 - self._sf(k, n)


WATSON_U2 = _WatsonU2Law(a=0.0, name="watson_u2")
WATSON_1976 = _Watson1976Law(a=0.0, b=2.4, name="watson_1976")
KUIPER = _KuiperLaw(a=0.0, name="kuiper")
RANGE = _RangeLaw(a=0.0, b=TWO_PI, name="circular_range")
HODGES_AJNE = _HodgesAjneLaw(a=0, name="hodges_ajne")
