"""Null laws of the Sobolev uniformity tests: weighted sums of independent chi-squares.

Under the null hypothesis of uniformity on the sphere S^{q-1}, the V-statistic ``n MMD_V^2`` of a dot-product
kernel with Gegenbauer coefficients ``a_l`` converges in law to

.. math::

    T = \\sum_{l \\ge 1} \\frac{a_l}{N(q, l)} \\chi^2_{N(q, l)},

a weighted sum of independent chi-squares (the mathematics page of the documentation, "Uniformity tests").
:class:`WeightedChiSquare` is a frozen,
``scipy.stats``-like distribution for ``shift + sum_k w_k chi^2_{d_k}`` with several ways of computing its
distribution function:

``"imhof"``
    Numerical inversion of the characteristic function (Imhof, 1961); accurate everywhere, far tail included.
``"hbe"``
    Hall–Buckley–Eagleson: a shifted gamma law matching the first three cumulants.
``"sw"``
    Satterthwaite–Welch: a scaled chi-square ``c chi^2_nu`` matching two cumulants (poor in the tail).
``"exact"``
    A single weight: ``w chi^2_{sum d}``, evaluated with :mod:`scipy.stats` (Rayleigh, Bingham tests).

:class:`MonteCarloNull` is the null law given by statistics simulated under the null, and
:func:`monte_carlo_pvalue` its p-value ``(1 + #{T* >= T}) / (1 + n_resamples)`` (the convention of
:func:`scipy.stats.monte_carlo_test`).

Only numpy and scipy are used.
"""

from __future__ import annotations

import itertools
import math
import warnings
from numbers import Integral
from typing import Any

import numpy as np
from scipy import integrate, optimize, special, stats

from ._validate import check_dimension, check_real, check_rng
from .gegenbauer import log_harmonic_dimension

__all__ = ["MonteCarloNull", "TruncationWarning", "WeightedChiSquare", "monte_carlo_pvalue"]


class TruncationWarning(RuntimeWarning):
    """A null law truncated an infinite series short of its accuracy target; the message gives the accuracy.

    See Also
    --------
    dotkernels.uniformity.sobolev_null : The truncation rule.

    Examples
    --------
    To make the warning an error (for instance in a test):

    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", TruncationWarning)
    ...     try:
    ...         warnings.warn("the neglected tail exceeds the target", TruncationWarning)
    ...     except TruncationWarning as exc:
    ...         print("raised:", exc)
    raised: the neglected tail exceeds the target
    """


_METHODS = ("imhof", "hbe", "sw", "exact")

# Beyond |r| = sqrt(2 (c y - K(c))) (saddle point c, tail ~ Phi(-|r|)) the tail probability is computed along
# the shifted contour through c instead of Imhof's formula (which loses relative accuracy once sf << 1).
_CONTOUR_R = 1.5
# Beyond this many periods of the carrier cos(x t), the slowly varying remainder is integrated by QAWO.
_MAX_PERIODS = 400.0
# Absolute accuracy of Imhof's integral (bulk) and relative accuracy of the shifted-contour integral (tails).
_EPSABS_IMHOF = 1e-12
_EPSREL_CONTOUR = 1e-11
# Below y = _SMALL_Y_REL / rate the lower tail is given by its leading small-ball term (relative error < this).
_SMALL_Y_REL = 1e-13
# log of the smallest positive double (subnormals included)
_LOG_TINY = -745.2
# Warn when quad's error estimates exceed these (absolute for Imhof's formula, relative for the contour).
_WARN_ABS = 1e-9
_WARN_REL = 1e-6
# Two weights are "the same" for method="exact" when they agree to this relative tolerance.
_EXACT_RTOL = 1e-12
# Rounding of the harmonic dimensions N(q, l) to integers is exact below this size.
_ROUND_DIM_BELOW = 1e12


def _as_finite_1d(value, name: str) -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must be array-like of real numbers") from exc
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` must be finite (no NaN or inf)")
    return arr


def _as_probability(p, name: str) -> np.ndarray:
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must be array-like of probabilities") from exc
    if np.any(np.isnan(arr)) or np.any(arr < 0.0) or np.any(arr > 1.0):
        raise ValueError(f"`{name}` must lie in [0, 1]")
    return arr


def _ret(out: np.ndarray):
    return out[()] if out.ndim == 0 else out


_N_SERIES = 8  # terms of the power series in t used for the "small" terms (|s t| < 0.05: error < 0.05^17)
_LOOP_BELOW = 12  # use a Python loop instead of numpy for at most this many "large" terms


def _contour_integrand(c: float, drift: float, d: np.ndarray, s: np.ndarray, t_max: float):
    """Scalar integrand ``e^{L(t)} (c cos phi + t sin phi) / (c^2 + t^2)`` for ``0 <= t <= t_max``.

    ``L(t) = -1/4 sum d log1p(s^2 t^2)`` and ``phi(t) = 1/2 sum d (atan(s t) - s t) + drift t``.  The terms
    with ``s t_max < 0.05`` are summed once and for all as power series in ``tau = t / t_max``:
    ``sum d (atan(v) - v) = sum_{j>=1} (-1)^j tau^{2j+1} m_{2j+1} / (2j+1)`` and
    ``sum d log1p(v^2) = sum_{j>=1} (-1)^{j+1} tau^{2j} m_{2j} / j``, with ``m_r = sum d (s t_max)^r``
    (no cancellation even for huge ``d``); the others are evaluated term by term.
    """
    v_max = s * t_max
    small = v_max < 0.05
    vs, ds = v_max[small], d[small]
    j = np.arange(1, _N_SERIES + 1)
    # phase coefficients of tau^(2j+1) and log-envelope coefficients of tau^(2j), highest order first
    sgn = (-1.0) ** j
    ph_coef = [float(x) for x in (sgn * (ds * vs ** (2 * j[:, None] + 1)).sum(axis=1) / (2 * j + 1))[::-1]]
    le_coef = [float(x) for x in (-sgn * (ds * vs ** (2 * j[:, None])).sum(axis=1) / j)[::-1]]
    has_small = vs.size > 0
    d_big, s_big = d[~small], s[~small]
    n_big = d_big.size
    loop = n_big <= _LOOP_BELOW
    d_list, s_list = d_big.tolist(), s_big.tolist()
    cc = c * c
    atan, log1p = math.atan, math.log1p

    def f(t: float) -> float:
        if t == 0.0:
            return drift if c == 0.0 else 1.0 / c
        ph = t * drift
        log_env = 0.0
        if has_small:
            tau = t / t_max
            tau2 = tau * tau
            p_ph = 0.0
            p_le = 0.0
            for a_ph, a_le in zip(ph_coef, le_coef):
                p_ph = p_ph * tau2 + a_ph
                p_le = p_le * tau2 + a_le
            ph += 0.5 * p_ph * tau * tau2
            log_env -= 0.25 * p_le * tau2
        if n_big:
            if loop:
                for dk, sk in zip(d_list, s_list):
                    v = sk * t
                    ph += 0.5 * dk * (atan(v) - v)
                    log_env -= 0.25 * dk * log1p(v * v)
            else:
                v = s_big * t
                ph += 0.5 * float(np.dot(d_big, np.arctan(v) - v))
                log_env -= 0.25 * float(np.dot(d_big, np.log1p(v * v)))
        return math.exp(log_env) * (c * math.cos(ph) + t * math.sin(ph)) / (cc + t * t)

    return f


class WeightedChiSquare:
    r"""Law of ``shift + T`` with ``T = sum_k w_k chi^2_{d_k}`` (independent chi-squares).

    Parameters
    ----------
    weights : array_like, shape (K,)
        Positive weights ``w_k``.
    dofs : array_like, shape (K,)
        Positive degrees of freedom ``d_k`` (real, possibly huge, e.g. ``N(q, l) ~ 1e13``).
    method : {"imhof", "hbe", "sw", "exact"}
        How :meth:`cdf`, :meth:`sf`, :meth:`ppf` and :meth:`isf` are computed (see Notes).  The moments,
        cumulants and :meth:`rvs` are always those of the exact law.
    shift : float
        Constant added to ``T`` (sphunif shifts the null law of U-type statistics by ``phi(1) - a_0``).
    tail_bound : float
        Non-negative bound on the mean of the terms left out of ``T`` when a series was truncated, stored as
        :attr:`truncation_error` (see :meth:`from_spectrum`).

    Attributes
    ----------
    weights, dofs : ndarray
        The ``w_k`` and ``d_k`` (float64 copies).
    method : str
    shift : float
    truncation_degree : int or None
        Degree at which the series was truncated, when the law was built from a spectrum by
        :func:`dotkernels.uniformity.sobolev_null` (None otherwise).
    truncation_error : float
        The caller's bound on the neglected mean.  If ``R >= 0`` is the neglected part (``E R <= eps``),
        then for any ``h > 0``: ``sf(x) <= P(T + R > x) <= sf(x - h) + eps / h`` (Markov).

    See Also
    --------
    dotkernels.uniformity.sobolev_null : The null law of a kernel test.
    MonteCarloNull : A null law from simulated statistics.

    Notes
    -----
    Cumulants of ``T``: ``kappa_1 = sum w d``, ``kappa_r = 2^{r-1} (r-1)! sum w^r d``
    (``kappa_2 = 2 sum w^2 d``, ``kappa_3 = 8 sum w^3 d``).  The cumulant generating function is
    ``K(s) = -1/2 sum d log(1 - 2 w s)`` for ``s < 1 / (2 max w)``.

    ``"imhof"``: Imhof's (1961) inversion formula

    .. math::

        P(T > x) = \frac12 + \frac1\pi \int_0^\infty \frac{\sin\theta(u)}{u\,\rho(u)}\,du,\quad
        \theta(u) = \frac12\sum_k d_k \arctan(w_k u) - \frac{x u}2,\quad
        \rho(u) = \prod_k (1 + w_k^2 u^2)^{d_k/4},

    with ``log rho`` accumulated through ``log1p`` so that huge ``d_k`` cannot overflow.  The integral is
    done by :func:`scipy.integrate.quad` on ``[0, U]``, split geometrically, where beyond ``U`` the envelope
    ``1/(u rho(u))`` can no longer change the result (absolute target 1e-12); a slowly decaying oscillatory
    remainder (few degrees of freedom) is integrated by QAWO (``quad(..., weight="cos"/"sin")``).

    In the tails Imhof's formula returns ``1/2 + (a number close to -1/2)``: its absolute accuracy is kept
    but its *relative* accuracy is lost once ``sf`` (or ``cdf``) is small.  Therefore, when the saddle point
    ``c`` (``K'(c) = x``) is far from 0, i.e. ``r = sqrt(2 (c x - K(c))) > 1.5`` (tail below ~0.07), the same
    inversion is carried out along the shifted contour ``Re s = c`` (``c > 0``: upper, ``c < 0``: lower tail),

    .. math::

        P(T > x) = \frac{e^{K(c) - c x}}{\pi}\int_0^\infty e^{L(t)}\,
            \frac{c\cos\varphi(t) + t \sin\varphi(t)}{c^2 + t^2}\,dt,\qquad
        P(T \le x) = -(\text{same with } c < 0),

    ``L(t) = -1/4 sum d log1p(b_k^2)``, ``phi(t) = 1/2 sum d arctan(b_k) - x t``,
    ``b_k = 2 w_k t / (1 - 2 w_k c)`` (``c = 0`` is Imhof's formula with ``u = 2t``).  Along this contour the
    integrand has no cancellation, so tail probabilities keep a relative accuracy of about 1e-10 far beyond
    ``1e-12`` (until ``exp(K(c) - c x)`` underflows).  With huge ``d_k`` the law is very narrow compared with
    its mean, and the rounding of ``x`` itself (``|x| * 2**-52``) limits what any method can resolve.
    Two exact shortcuts: a tail whose Chernoff bound ``exp(K(c) - c x)`` underflows is 0, and very close to 0
    the lower tail is the leading small-ball term ``x^{D/2} / (Gamma(D/2 + 1) prod (2 w_k)^{d_k/2})``,
    ``D = sum d`` (used while its relative correction is below 1e-13).  Accuracy loss reported by
    :func:`scipy.integrate.quad` beyond 1e-9 (absolute, Imhof) or 1e-6 (relative, contour) raises an
    ``IntegrationWarning``.

    ``"hbe"``: ``loc + Gamma(k, theta)`` with ``theta = kappa_3 / (2 kappa_2)``,
    ``k = 4 kappa_2^3 / kappa_3^2``, ``loc = kappa_1 - k theta`` (Hall, 1983; Buckley & Eagleson, 1988).

    ``"sw"``: ``c chi^2_nu`` with ``c = kappa_2 / (2 kappa_1)``, ``nu = 2 kappa_1^2 / kappa_2``.

    ``"exact"``: ``w chi^2_{sum d}``; requires all weights equal (relative tolerance 1e-12), otherwise
    ``ValueError``.

    ``"exact"``, ``"hbe"`` and ``"sw"`` are evaluated by :mod:`scipy.stats`; with shape parameters above ~1e8
    (huge ``d``) scipy loses accuracy in the *lower* tail (its ``cdf`` below ~1e-9, its ``ppf`` already at
    ``p ~ 1e-6``), whereas ``"imhof"`` does not; the upper tail (p-values) is unaffected.

    Accuracy
    --------
    ``"imhof"``: ~1e-12 absolute in the bulk and ~1e-10 relative in both tails (shifted-contour inversion;
    tested against mpmath convolutions, closed forms and scipy to 1e-8 relative or better); an
    ``IntegrationWarning`` reports a larger quadrature error. ``"exact"``: scipy's chi-square.
    ``"hbe"``/``"sw"``: moment approximations (3 and 2 cumulants), accurate in the bulk only. Moments and
    :meth:`rvs` are exact. Domain: positive finite weights and degrees of freedom.

    References
    ----------
    .. [1] J. P. Imhof, "Computing the distribution of quadratic forms in normal variables", Biometrika 48(3/4),
       419-426, 1961.
    .. [2] P. Hall, "Chi squared approximations to the distribution of a sum of independent random variables",
       Annals of Probability 11(4), 1028-1036, 1983.
    .. [3] M. J. Buckley and G. K. Eagleson, "An approximation to the distribution of quadratic forms in normal
       random variables", Australian Journal of Statistics 30A, 150-159, 1988.
    .. [4] F. E. Satterthwaite, "An approximate distribution of estimates of variance components", Biometrics
       Bulletin 2(6), 110-114, 1946; B. L. Welch, "The generalization of 'Student's' problem when several different
       population variances are involved", Biometrika 34(1/2), 28-35, 1947.

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels.nulls import WeightedChiSquare
    >>> law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])  # sf(x) = 2 exp(-x/4) - exp(-x/2)
    >>> x = 10.0
    >>> bool(np.isclose(law.sf(x), 2 * np.exp(-x / 4) - np.exp(-x / 2), rtol=1e-9))
    True
    >>> float(law.mean()), float(law.var())
    (6.0, 20.0)
    >>> bool(np.isclose(law.cdf(law.ppf(0.95)), 0.95))
    True
    """

    def __init__(self, weights, dofs, *, method: str = "imhof", shift: float = 0.0, tail_bound: float = 0.0):
        w = _as_finite_1d(weights, "weights")
        d = _as_finite_1d(dofs, "dofs")
        if w.shape != d.shape:
            raise ValueError(f"`weights` and `dofs` must have the same length, got {w.shape[0]} and {d.shape[0]}")
        if np.any(w <= 0.0):
            raise ValueError("`weights` must be positive")
        if np.any(d <= 0.0):
            raise ValueError("`dofs` must be positive")
        if not isinstance(method, str) or method.lower() not in _METHODS:
            raise ValueError(f"method must be one of {', '.join(map(repr, _METHODS))}, got {method!r}")
        method = method.lower()
        self.weights = w
        self.dofs = d
        self.method = method
        self.shift = check_real(shift, "shift")
        self.truncation_error = check_real(tail_bound, "tail_bound", nonnegative=True)
        self.truncation_degree = None

        self._wmax = float(w.max())
        self._k1 = float(np.sum(w * d))
        self._k2 = 2.0 * float(np.sum(w * w * d))
        self._k3 = 8.0 * float(np.sum(w**3 * d))
        self._dsum = float(d.sum())
        with np.errstate(over="ignore"):  # inf simply disables the small-ball shortcut
            self._small_y_rate = float(np.sum(d / (4.0 * w))) / (0.5 * self._dsum + 1.0)
        self._small_y_logc = float(special.gammaln(0.5 * self._dsum + 1.0) + 0.5 * np.sum(d * np.log(2.0 * w)))
        self._approx = None
        if method == "exact":
            if np.any(np.abs(w - w[0]) > _EXACT_RTOL * w[0]):
                raise ValueError(
                    "method='exact' needs a single distinct weight; use 'imhof' for several distinct `weights`"
                )
            self._approx = stats.chi2(df=self._dsum, scale=self._k1 / self._dsum)
        elif method == "hbe":
            theta = self._k3 / (2.0 * self._k2)
            shape = self._k2 / theta**2
            self._approx = stats.gamma(a=shape, loc=self._k1 - shape * theta, scale=theta)
        elif method == "sw":
            c = self._k2 / (2.0 * self._k1)
            self._approx = stats.chi2(df=self._k1 / c, scale=c)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_spectrum(
        cls, a, *, q: int, method: str = "imhof", shift: float = 0.0, tail_bound: float = 0.0
    ) -> WeightedChiSquare:
        """Null law ``sum_{l >= 1} (a_l / N(q, l)) chi^2_{N(q, l)}`` of ``n MMD_V^2`` for a kernel spectrum.

        Parameters
        ----------
        a : array_like, shape (L + 1,)
            Gegenbauer coefficients ``a_0, ..., a_L`` (non-negative).  ``a_0`` does not enter the law;
            terms with ``a_l == 0`` are dropped.
        q : int
            Ambient dimension (sphere ``S^{q-1}``), ``q >= 2``.
        method, shift
            As in :class:`WeightedChiSquare`.
        tail_bound : float
            ``sum_{l > L} a_l``, the mean of the neglected terms, stored as ``truncation_error``.

        Returns
        -------
        WeightedChiSquare
            The law of the weighted chi-squares.

        See Also
        --------
        dotkernels.uniformity.sobolev_null : The same from a kernel, with the series truncated adaptively.

        Notes
        -----
        ``N(q, l) = (2l + q - 2) / l * binom(l + q - 3, l - 1)`` is computed in log space.

        Examples
        --------
        >>> law = WeightedChiSquare.from_spectrum([1.0, 3.0], q=3)  # a_1 = 3 on S^2: chi^2_3
        >>> law.weights.tolist(), law.dofs.tolist()
        ([1.0], [3.0])
        """
        q = check_dimension(q)
        arr = _as_finite_1d(a, "a")
        if np.any(arr < 0.0):
            raise ValueError("`a` must be non-negative (the null law needs a positive semi-definite kernel)")
        l = np.arange(arr.size)
        keep = (l >= 1) & (arr > 0.0)
        if not np.any(keep):
            raise ValueError("`a` has no positive coefficient a_l with l >= 1: the null law is degenerate")
        logn = log_harmonic_dimension(l[keep].astype(np.int64), q=q)
        dims = np.exp(logn)
        dims = np.where(dims < _ROUND_DIM_BELOW, np.round(dims), dims)
        return cls(arr[keep] / dims, dims, method=method, shift=shift, tail_bound=tail_bound)

    # ------------------------------------------------------------------ moments
    def cumulant(self, k: int) -> float:
        """``k``-th cumulant of ``shift + T``: ``shift + sum w d`` for k = 1, ``2^{k-1} (k-1)! sum w^k d``.

        Parameters
        ----------
        k : int
            Order of the cumulant, ``k >= 1``.

        Returns
        -------
        float
            The cumulant.

        See Also
        --------
        mean, var : The first two cumulants.

        Examples
        --------
        >>> law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])
        >>> round(law.cumulant(3), 9)  # 8 (1 * 2 + 8 * 2)
        144.0
        """
        if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
            raise ValueError(f"`k` must be an int >= 1, got {k!r}")
        k = int(k)
        if k == 1:
            return self.shift + self._k1
        logsum = special.logsumexp(k * np.log(self.weights) + np.log(self.dofs))
        return float(np.exp((k - 1) * math.log(2.0) + special.gammaln(k) + logsum))

    def mean(self) -> float:
        """``shift + sum_k w_k d_k``.

        Returns
        -------
        float
            The mean.

        See Also
        --------
        var, cumulant : The variance, any cumulant.

        Examples
        --------
        >>> law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])
        >>> float(law.mean())
        6.0
        """
        return self.shift + self._k1

    def var(self) -> float:
        """``2 sum_k w_k^2 d_k``.

        Returns
        -------
        float
            The variance.

        See Also
        --------
        std, cumulant : The standard deviation, any cumulant.

        Examples
        --------
        >>> law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])
        >>> float(law.var())
        20.0
        """
        return self._k2

    def std(self) -> float:
        """``sqrt(var())``.

        Returns
        -------
        float
            The standard deviation.

        See Also
        --------
        var : The variance.

        Examples
        --------
        >>> law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])
        >>> round(law.std() ** 2, 9)
        20.0
        """
        return math.sqrt(self._k2)

    def support(self) -> tuple[float, float]:
        """``(shift, inf)``.

        Returns
        -------
        tuple of float
            The lower and upper ends of the support.

        See Also
        --------
        cdf : The distribution function.

        Examples
        --------
        >>> law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])
        >>> law.support()
        (0.0, inf)
        """
        return (self.shift, math.inf)

    # ------------------------------------------------------------------ sampling
    def rvs(self, size=None, *, rng=None):
        """Exact draws of ``shift + sum_k w_k chi^2_{d_k}``, with ``chi^2_d = 2 Gamma(d / 2)``.

        Parameters
        ----------
        size : int or tuple of ints, optional
            Output shape; ``None`` gives a scalar.
        rng : numpy.random.Generator, int seed or None
            Source of randomness (SPEC 7).

        Returns
        -------
        float or ndarray
            The draws, of shape ``size``.

        See Also
        --------
        MonteCarloNull : A null law from simulated statistics.

        Examples
        --------
        >>> law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])
        >>> law.rvs(3, rng=0).shape
        (3,)
        """
        rng = check_rng(rng)
        shape = () if size is None else size
        out = np.zeros(shape, dtype=np.float64)
        for wk, dk in zip(self.weights, self.dofs):
            out += (2.0 * wk) * rng.standard_gamma(0.5 * dk, size=shape)
        out += self.shift
        return _ret(np.asarray(out))

    # ------------------------------------------------------------------ distribution functions
    def cdf(self, x):
        """``P(shift + T <= x)``, vectorised over ``x``.

        Parameters
        ----------
        x : float or array_like
            Points at which to evaluate.

        Returns
        -------
        float or ndarray
            The probabilities, of the shape of ``x``.

        See Also
        --------
        sf : The survival function (p-values), accurate in the upper tail.

        Examples
        --------
        >>> law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])
        >>> float(law.cdf(0.0))
        0.0
        """
        return self._cdf_sf(x)[0]

    def sf(self, x):
        """``P(shift + T > x)``, vectorised over ``x``.

        Parameters
        ----------
        x : float or array_like
            Points at which to evaluate.

        Returns
        -------
        float or ndarray
            The probabilities (p-values of statistics ``x``), of the shape of ``x``.

        See Also
        --------
        cdf : The distribution function.
        isf : The inverse survival function.

        Examples
        --------
        >>> law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])
        >>> import numpy as np
        >>> bool(np.isclose(law.sf(10.0), 2 * np.exp(-2.5) - np.exp(-5.0)))
        True
        """
        return self._cdf_sf(x)[1]

    def ppf(self, p):
        """Quantile function (inverse of :meth:`cdf`); ``p`` must lie in ``[0, 1]``.

        Parameters
        ----------
        p : float or array_like
            Probabilities in ``[0, 1]``.

        Returns
        -------
        float or ndarray
            The quantiles, of the shape of ``p``.

        See Also
        --------
        isf : Upper quantiles (critical values).

        Examples
        --------
        >>> law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])
        >>> import numpy as np
        >>> bool(np.isclose(law.cdf(law.ppf(0.95)), 0.95))
        True
        """
        return self._quantile(_as_probability(p, "p"), upper=False)

    def isf(self, p):
        """Inverse survival function (inverse of :meth:`sf`); ``p`` must lie in ``[0, 1]``.

        Parameters
        ----------
        p : float or array_like
            Probabilities in ``[0, 1]``.

        Returns
        -------
        float or ndarray
            The upper quantiles (critical values at level ``p``), of the shape of ``p``.

        See Also
        --------
        ppf : Quantiles.

        Examples
        --------
        >>> law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])
        >>> import numpy as np
        >>> bool(np.isclose(law.sf(law.isf(0.05)), 0.05))
        True
        """
        return self._quantile(_as_probability(p, "p"), upper=True)

    def _cdf_sf(self, x):
        try:
            xa = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError("`x` must be array-like of real numbers") from exc
        y = xa - self.shift
        if self._approx is not None:
            return _ret(self._approx.cdf(y)), _ret(self._approx.sf(y))
        cdf = np.empty(y.shape)
        sf = np.empty(y.shape)
        for idx, yi in np.ndenumerate(y):
            cdf[idx], sf[idx] = self._imhof_point(float(yi))
        return _ret(cdf), _ret(sf)

    # ------------------------------------------------------------------ quantiles
    def _quantile(self, p: np.ndarray, upper: bool):
        if self._approx is not None:
            out = self._approx.isf(p) if upper else self._approx.ppf(p)
            return _ret(np.asarray(out + self.shift, dtype=np.float64))
        out = np.empty(p.shape)
        for idx, pi in np.ndenumerate(p):
            out[idx] = self._imhof_quantile(float(pi), upper) + self.shift
        return _ret(out)

    def _imhof_quantile(self, p: float, upper: bool) -> float:
        """Solve ``sf(y) = p`` (upper) or ``cdf(y) = p`` (lower) for the unshifted ``y``."""
        if p == (1.0 if upper else 0.0):
            return 0.0
        if p == (0.0 if upper else 1.0):
            return math.inf
        # Match the smaller tail probability, in log scale (relative accuracy in the tails); 1 - p is exact
        # for p > 1/2.
        use_sf = upper == (p <= 0.5)
        target = math.log(p if p <= 0.5 else 1.0 - p)

        def g(y):  # increasing in y
            cdf, sf = self._imhof_point(y)
            if use_sf:
                return target - (math.log(sf) if sf > 0.0 else -800.0)
            return (math.log(cdf) if cdf > 0.0 else -800.0) - target

        sigma = math.sqrt(self._k2)
        theta = self._k3 / (2.0 * self._k2)
        shape = self._k2 / theta**2
        hbe = stats.gamma(a=shape, loc=self._k1 - shape * theta, scale=theta)
        tail_p = math.exp(target)
        guess = float(hbe.isf(tail_p) if use_sf else hbe.ppf(tail_p))
        if not math.isfinite(guess) or guess <= 0.0:
            guess = self._k1
        lo = hi = guess
        step = sigma
        for _ in range(2000):
            if g(hi) >= 0.0:
                break
            lo, hi = hi, hi + step
            step *= 2.0
        step, shrink = sigma, 0.5
        for _ in range(2000):
            if g(lo) <= 0.0:
                break
            if lo - step > 0.5 * lo:
                hi, lo = lo, lo - step
                step *= 2.0
            else:  # deep lower tail: shrink geometrically, ever faster (y -> 0)
                hi, lo = lo, lo * shrink
                shrink *= shrink
        if lo == hi:
            return lo
        return float(optimize.brentq(g, lo, hi, xtol=1e-300, rtol=1e-13, maxiter=500))

    # ------------------------------------------------------------------ Imhof / shifted-contour inversion
    def _kprime(self, c: float) -> float:
        return float(np.sum(self.dofs * self.weights / (1.0 - 2.0 * self.weights * c)))

    def _saddle(self, y: float) -> float:
        """Root ``c`` of ``K'(c) = y`` (``K'`` increases from 0 to inf on ``(-inf, 1/(2 max w))``)."""
        if y == self._k1:
            return 0.0
        if y > self._k1:
            dmax_w = float(np.max(self.dofs * self.weights * (self.weights == self._wmax)))
            eps = max(0.5 * min(1.0, dmax_w / y), 1e-12)
            lo, hi = 0.0, (1.0 - eps) / (2.0 * self._wmax)
            if self._kprime(hi) <= y:
                # Saddle point within 1e-12 of the pole 1 / (2 max w): any c in (0, 1 / (2 max w)) is a valid
                # contour, and the tail is then astronomically small anyway.
                return hi
        else:
            lo, hi = -self._dsum / y, 0.0
        return float(optimize.brentq(lambda c: self._kprime(c) - y, lo, hi, xtol=1e-13 * abs(hi - lo), maxiter=500))

    def _imhof_point(self, y: float) -> tuple[float, float]:
        """(cdf, sf) of the unshifted ``T`` at ``y``."""
        if math.isnan(y):
            return math.nan, math.nan
        if y <= 0.0:
            return 0.0, 1.0
        if math.isinf(y):
            return 1.0, 0.0
        if y * self._small_y_rate < _SMALL_Y_REL:
            # Small-ball regime: E e^{-sT} = prod (2 w s)^{-d/2} (1 - sum d / (4 w s) + ...), so by Watson's
            # lemma cdf(y) = y^{D/2} / (Gamma(D/2 + 1) prod (2 w)^{d/2}) (1 - y sum(d / (4 w)) / (D/2 + 1) + ...),
            # D = sum d; the relative correction is below _SMALL_Y_REL here.
            cdf = math.exp(0.5 * self._dsum * math.log(y) - self._small_y_logc)
            return cdf, 1.0 - cdf
        c = self._saddle(y)
        w, d = self.weights, self.dofs
        a_c = 1.0 - 2.0 * w * c
        s = 2.0 * w / a_c
        k2c = 0.5 * float(np.sum(d * s * s))  # K''(c)
        r0 = -0.5 * float(np.sum(d * np.log1p(-2.0 * w * c))) - c * y  # K(c) - c y <= 0
        if r0 < _LOG_TINY:  # Chernoff: the tail on c's side is <= exp(K(c) - c y), below the smallest double
            return (1.0, 0.0) if c > 0.0 else (0.0, 1.0)
        # Signed-root statistic of the saddle-point approximation: tail ~ Phi(-|r|).
        if math.sqrt(max(-2.0 * r0, 0.0)) <= _CONTOUR_R:
            c = 0.0
            s = 2.0 * w
            k2c = 0.5 * float(np.sum(d * s * s))
        integral, err = self._contour_integral(c, y, s, k2c)
        if c == 0.0:
            sf = 0.5 + integral / math.pi
            cdf = 0.5 - integral / math.pi
            if err / math.pi > _WARN_ABS:
                warnings.warn(
                    f"Imhof inversion at x={y + self.shift!r}: estimated absolute error {err / math.pi:.2g}",
                    integrate.IntegrationWarning,
                    stacklevel=4,
                )
        else:
            if err > _WARN_REL * abs(integral):
                warnings.warn(
                    f"Imhof (shifted-contour) inversion at x={y + self.shift!r}: estimated relative error "
                    f"{err / max(abs(integral), 1e-300):.2g}",
                    integrate.IntegrationWarning,
                    stacklevel=4,
                )
            tail = math.exp(r0) * integral / math.pi
            if c > 0.0:
                sf = tail
                cdf = 1.0 - sf
            else:
                cdf = -tail
                sf = 1.0 - cdf
        return min(max(cdf, 0.0), 1.0), min(max(sf, 0.0), 1.0)

    def _contour_integral(self, c: float, y: float, s: np.ndarray, k2c: float) -> tuple[float, float]:
        r"""``int_0^inf e^{L(t)} (c cos phi + t sin phi) / (c^2 + t^2) dt`` (see class Notes) and the sum of
        quad's error estimates."""
        d = self.dofs
        # phi(t) = 1/2 sum d (atan(s t) - s t) + t (K'(c) - y): accurate when K'(c) ~ y and sum d is huge.
        drift = 0.5 * float(np.sum(d * s)) - y

        def log_env(t):
            return -0.25 * float(np.sum(d * np.log1p((s * t) ** 2)))

        t0 = 1.0 / math.sqrt(k2c)  # width of the main lobe
        # Absolute target: ~1e-12 on Imhof's integral (probabilities in [0.07, 0.93] there); relative ~1e-11
        # (of the lobe's size t0 / |c|) on the contour integral, proportional to the tail probability.
        epsabs = _EPSABS_IMHOF if c == 0.0 else _EPSREL_CONTOUR * min(t0 / abs(c), math.pi / 2)
        epsrel = _EPSREL_CONTOUR
        # Upper cut-off: the remaining oscillatory tail is at most ~ envelope(t) * min(t, 2/y).
        log_cut = math.log(1e-2 * epsabs)
        t_cut = t0
        for _ in range(2000):
            env = log_env(t_cut) - 0.5 * math.log(c * c + t_cut * t_cut)
            if t_cut >= 8.0 * t0 and env + math.log(min(t_cut, 2.0 / y)) <= log_cut:
                break
            t_cut *= 2.0
        f = _contour_integrand(c, drift, d, s, t_cut)
        period = 2.0 * math.pi / y
        t_split = t_cut
        if t_cut > _MAX_PERIODS * period:
            # Beyond t_split, alpha(t) = 1/2 sum d atan(s t) turns slower than the carrier y t: hand the rest to
            # QAWO (quad with weight="cos"/"sin"), whose cost does not grow with the number of periods.
            def alpha_prime(t):
                return 0.5 * float(np.sum(d * s / (1.0 + (s * t) ** 2)))

            t_split = 8.0 * t0
            while alpha_prime(t_split) > 0.125 * y and t_split < t_cut:
                t_split *= 2.0
            t_split = min(max(t_split, 4.0 * period), t_cut)
        # Finite part, split geometrically from the lobe width up to t_split.
        edges = [0.0]
        if 0.0 < abs(c) < 0.5 * t0:
            edges.append(abs(c))
        t = t0
        while t < t_split:
            edges.append(t)
            t *= 4.0
        edges.append(t_split)
        n_pieces = len(edges) + (math.ceil(math.log(t_cut / t_split, 4.0)) if t_split < t_cut else 0)
        total = err = 0.0
        for lo, hi in itertools.pairwise(edges):
            # full_output=1: quad's warnings are replaced by the error check in _imhof_point
            val, e, *_ = integrate.quad(
                f,
                lo,
                hi,
                epsabs=epsabs / n_pieces,
                epsrel=epsrel,
                limit=int(min(max(200.0, 20.0 * (hi - lo) / period), 100_000.0)),
                full_output=1,
            )
            total += val
            err += e
        if t_split < t_cut:
            val, e = self._oscillatory_tail(c, y, s, t_split, t_cut, epsabs / n_pieces, epsrel)
            total += val
            err += e
        return total, err

    def _oscillatory_tail(
        self, c: float, y: float, s: np.ndarray, t_start: float, t_end: float, epsabs: float, epsrel: float
    ) -> float:
        """``int_{t_start}^{t_end}`` of the contour integrand, writing ``phi = alpha(t) - y t`` and
        integrating the smooth factors against ``cos(y t)`` and ``sin(y t)`` by QAWO on geometric pieces."""
        d = self.dofs

        def parts(t):
            st = s * t
            env = math.exp(-0.25 * float(np.sum(d * np.log1p(st * st)))) / (c * c + t * t)
            al = 0.5 * float(np.sum(d * np.arctan(st)))
            return env, math.cos(al), math.sin(al)

        def f_cos(t):
            env, ca, sa = parts(t)
            return env * (c * ca + t * sa)

        def f_sin(t):
            env, ca, sa = parts(t)
            return env * (c * sa - t * ca)

        # c cos(al - y t) + t sin(al - y t) = cos(y t) (c cos al + t sin al) + sin(y t) (c sin al - t cos al)
        total = err = 0.0
        lo = t_start
        while lo < t_end:
            hi = min(4.0 * lo, t_end)
            for fun, weight in ((f_cos, "cos"), (f_sin, "sin")):
                val, e, *_ = integrate.quad(
                    fun,
                    lo,
                    hi,
                    weight=weight,
                    wvar=y,
                    epsabs=0.5 * epsabs,
                    epsrel=epsrel,
                    limit=500,
                    full_output=1,
                )
                total += val
                err += e
            lo = hi
        return total, err

    def __repr__(self) -> str:
        return (
            f"WeightedChiSquare(K={self.weights.size}, mean={self.mean():.6g}, var={self.var():.6g}, "
            f"method={self.method!r}, shift={self.shift!r})"
        )


def monte_carlo_pvalue(statistic: Any, simulated: Any) -> float | np.ndarray:
    """Exact Monte Carlo p-value ``(1 + #{simulated >= statistic}) / (n_sim + 1)``.

    Parameters
    ----------
    statistic : float or array_like
        Observed statistic(s); large values are evidence against the null.
    simulated : array_like, shape (n_sim,)
        Statistics simulated under the null.

    Returns
    -------
    float or ndarray
        The p-value(s), in ``[1 / (n_sim + 1), 1]``; valid (super-uniform) under the null for any ``n_sim``.

    See Also
    --------
    MonteCarloNull : The null law of simulated statistics.
    scipy.stats.monte_carlo_test : The same convention in scipy.

    Accuracy
    --------
    Exact (counting); valid under the null at any number of simulations.

    Examples
    --------
    >>> monte_carlo_pvalue(2.5, [0.1, 3.0, 2.5, 1.0])
    0.6
    """
    sim = _as_finite_1d(simulated, "simulated")
    try:
        stat = np.asarray(statistic, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("`statistic` must be a real number or array of them") from exc
    if np.any(np.isnan(stat)):
        raise ValueError("`statistic` must not be NaN")
    srt = np.sort(sim)
    count = sim.size - np.searchsorted(srt, stat, side="left")
    out = (1.0 + count) / (sim.size + 1.0)
    return float(out) if out.ndim == 0 else out


class MonteCarloNull:
    r"""Null law of a statistic given by ``n_resamples`` values simulated under the null hypothesis.

    Its survival function is the Monte Carlo p-value ``(1 + #{T* >= x}) / (1 + n_resamples)`` of
    :func:`monte_carlo_pvalue` (exact: valid at any ``n_resamples``, the convention of
    :func:`scipy.stats.monte_carlo_test`), its distribution function and quantiles the empirical ones.

    Parameters
    ----------
    statistics : array_like, shape (n_resamples,)
        The simulated statistics (finite).
    n, q : int, optional
        Sample size and dimension they were simulated at (recorded for the repr).

    Attributes
    ----------
    statistics : ndarray
        The simulated statistics, sorted (a read-only float64 copy).

    See Also
    --------
    monte_carlo_pvalue : Its survival function.
    WeightedChiSquare : The asymptotic null law of the kernel tests.

    Accuracy
    --------
    Exact empirical quantities of the simulated statistics; as estimates of the true law, standard error
    :math:`\sqrt{p(1-p)/n_{resamples}}` for a probability p.

    Examples
    --------
    >>> null = MonteCarloNull([0.1, 3.0, 2.5, 1.0])
    >>> null.sf(2.5)  # (1 + 2) / (1 + 4)
    0.6
    >>> null.n_resamples, null.mean()
    (4, 1.65)
    """

    def __init__(self, statistics, *, n: int | None = None, q: int | None = None):
        values = np.sort(_as_finite_1d(statistics, "statistics"))
        values.setflags(write=False)
        self.statistics = values
        self.n = n
        self.q = q

    @property
    def n_resamples(self) -> int:
        """Number of simulated statistics."""
        return int(self.statistics.size)

    def sf(self, x: Any) -> Any:
        """Monte Carlo p-value ``(1 + #{T* >= x}) / (1 + n_resamples)``.

        Parameters
        ----------
        x : float or array_like
            Points at which to evaluate.

        Returns
        -------
        float or ndarray
            The p-values, of the shape of ``x``.

        See Also
        --------
        monte_carlo_pvalue : The same function.

        Examples
        --------
        >>> null = MonteCarloNull([0.1, 3.0, 2.5, 1.0])
        >>> null.sf(2.5)
        0.6
        """
        return monte_carlo_pvalue(x, self.statistics)

    def cdf(self, x: Any) -> Any:
        """Empirical distribution function ``#{T* <= x} / n_resamples``.

        Parameters
        ----------
        x : float or array_like
            Points at which to evaluate.

        Returns
        -------
        float or ndarray
            The probabilities, of the shape of ``x``.

        See Also
        --------
        sf : The Monte Carlo p-value.

        Examples
        --------
        >>> null = MonteCarloNull([0.1, 3.0, 2.5, 1.0])
        >>> null.cdf(2.5)
        0.75
        """
        out = np.searchsorted(self.statistics, np.asarray(x, dtype=np.float64), side="right") / self.n_resamples
        return float(out) if np.ndim(out) == 0 else out

    def ppf(self, p: Any) -> Any:
        """Empirical quantiles (:func:`numpy.quantile`, linear interpolation); ``p`` in [0, 1].

        Parameters
        ----------
        p : float or array_like
            Probabilities in ``[0, 1]``.

        Returns
        -------
        float or ndarray
            The quantiles, of the shape of ``p``.

        See Also
        --------
        isf : Upper quantiles.

        Examples
        --------
        >>> null = MonteCarloNull([0.1, 3.0, 2.5, 1.0])
        >>> null.ppf(0.5)
        1.75
        """
        out = np.quantile(self.statistics, _as_probability(p, "p"))
        return float(out) if np.ndim(out) == 0 else out

    def isf(self, p: Any) -> Any:
        """``ppf(1 - p)``.

        Parameters
        ----------
        p : float or array_like
            Probabilities in ``[0, 1]``.

        Returns
        -------
        float or ndarray
            The upper quantiles, of the shape of ``p``.

        See Also
        --------
        ppf : Quantiles.

        Examples
        --------
        >>> null = MonteCarloNull([0.1, 3.0, 2.5, 1.0])
        >>> null.isf(0.5)
        1.75
        """
        return self.ppf(1.0 - _as_probability(p, "p"))

    def mean(self) -> float:
        """Mean of the simulated statistics.

        Returns
        -------
        float
            The mean.

        See Also
        --------
        var : The variance.

        Examples
        --------
        >>> null = MonteCarloNull([0.1, 3.0, 2.5, 1.0])
        >>> null.mean()
        1.65
        """
        return float(np.mean(self.statistics))

    def var(self) -> float:
        """Unbiased variance of the simulated statistics (0 for a single value).

        Returns
        -------
        float
            The variance (denominator ``n_resamples - 1``).

        See Also
        --------
        std : The standard deviation.

        Examples
        --------
        >>> null = MonteCarloNull([0.1, 3.0, 2.5, 1.0])
        >>> round(null.var(), 6)
        1.79
        """
        return float(np.var(self.statistics, ddof=1)) if self.n_resamples > 1 else 0.0

    def std(self) -> float:
        """``sqrt(var())``.

        Returns
        -------
        float
            The standard deviation.

        See Also
        --------
        var : The variance.

        Examples
        --------
        >>> null = MonteCarloNull([0.1, 3.0, 2.5, 1.0])
        >>> round(null.std() ** 2, 6)
        1.79
        """
        return math.sqrt(self.var())

    def rvs(self, size=None, *, rng=None):
        """Draws from the empirical law of the simulated statistics (sampling with replacement).

        Parameters
        ----------
        size : int or tuple of ints, optional
            Output shape; ``None`` gives a scalar.
        rng : numpy.random.Generator, int seed or None
            Source of randomness (SPEC 7).

        Returns
        -------
        float or ndarray
            The draws, of shape ``size``.

        See Also
        --------
        statistics : The simulated statistics.

        Examples
        --------
        >>> null = MonteCarloNull([0.1, 3.0, 2.5, 1.0])
        >>> null.rvs(5, rng=0).shape
        (5,)
        """
        out = check_rng(rng).choice(self.statistics, size=size, replace=True)
        return float(out) if np.ndim(out) == 0 else out

    def __repr__(self) -> str:
        return (
            f"MonteCarloNull(n_resamples={self.n_resamples}, n={self.n}, q={self.q}, mean={self.mean():.6g}, "
            f"std={self.std():.6g})"
        )
