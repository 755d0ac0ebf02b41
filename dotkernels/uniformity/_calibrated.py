r"""Default p-values that are valid at the sample size they are given (``method="auto"``).

An asymptotic null law is the n -> infinity law of a statistic; at small n some of them are anti-conservative (they
reject a true null more often than the nominal level). ``method="auto"``, the default of
:func:`~dotkernels.uniformity.uniformity_test` and :func:`~dotkernels.uniformity.uniformity_battery`, picks for each
test and each (n, q) a null law whose p-value is valid there, from the measured sizes of
:mod:`dotkernels.calibration` (the table of ``docs/calibration.md``):

- the asymptotic law where its measured size at the nominal levels 1 %, 5 % and 10 % is within binomial error of
  the level (or below it) at that n and dimension;
- a finite-n Monte Carlo law otherwise, and for the tests without an asymptotic law (Cressie, FG01, CCF09, Pycke
  at q >= 3, Stereo at q = 3, and the kernel tests whose asymptotic law float64 cannot resolve, such as Poisson with
  rho = 0.5 at q >= 50): :data:`DEFAULT_RESAMPLES` uniform samples of the same (n, q), drawn once from a fixed seed
  and cached per (test, n, q, parameters), so repeated calls cost one pass over the sample; the p-value is
  :math:`(1 + \#\{T^* \ge T\}) / (1 + B)`. Its size given the cached samples is within about
  :math:`\sqrt{\alpha(1-\alpha)/B}` (0.005 at 5 %) of the level; it is the same at every call (deterministic);
- for CJ12, the exact union bound below, valid at every n and q.

Where the Monte Carlo law would cost too much (more than :data:`MAX_PAIR_WORK` pair evaluations for the tests that
sum over pairs, :data:`MAX_LINEAR_WORK` for the others, or :data:`MAX_DRAW_WORK` coordinates drawn), a test whose
asymptotic law was measured anti-conservative keeps it with a :class:`CalibrationWarning` naming the test, its
measured size and the method to pass; a test without a usable asymptotic law gets no p-value (an error for one
test, NaN with the reason in ``notes`` in a battery).

CJ12 (Cai & Jiang 2012)
-----------------------
The statistic :math:`T = q\log(1 - L_n^2) + c_n` (:math:`L_n = \max_{i<j}|X_i^T X_j|`, :math:`c_n` the centring of
the regime) *decreases* as the largest coherence :math:`L_n` grows, so concentrated samples give small values and
the p-value is the lower tail :math:`P(T \le t)`. sphunif (1.4.4) and the limit law's upper tail :math:`1 - F(t)`
reject on the wrong side: at n = 100, q = 10 (20 000 samples per law) the 5 % test on the upper tail has power
0.000 against a von Mises--Fisher law with kappa = 10 or 50, where the lower tail has 0.48 and 1.00; and under
uniformity the upper-tail p-value rejected 100 % of the samples at q = 3 (n = 30 and 200) and 37 % at q = 10,
n = 40: the extreme-value limit is far from the finite-n law there. The default p-value of CJ12 is instead

.. math::

    p = \min\Bigl(1, \binom n2\, P\bigl((X^T Y)^2 \ge L_n^2\bigr)\Bigr), \qquad
    P\bigl((X^T Y)^2 \ge \ell^2\bigr) = I_{1 - \ell^2}\bigl(\tfrac{q-1}{2}, \tfrac12\bigr),

the union bound over the pairs, with the exact law of one inner product (:math:`(X^T Y)^2 \sim
\mathrm{Beta}(\tfrac12, \tfrac{q-1}2)`). It is valid at every n and q (:math:`P(p \le \alpha) \le \alpha`), and
nearly exact: the events :math:`\{|X_i^T X_j| \ge \ell\}` are pairwise independent under uniformity, so by the second
Bonferroni inequality the size at level :math:`\alpha` is at least :math:`\alpha - \alpha^2/2` (0.04875 at 5 %). It
is a finite-n version of Cai & Jiang's limit, which is this bound's Poisson limit. ``method="asymptotic"`` gives the
limit law's lower tail :math:`F(t)`. Measured with :func:`dotkernels.calibration.size_study` (4000 uniform samples
per cell, binomial standard error 0.0034 at 5 %) at q = 3, 10, 50 and n = 30, 100, 200: the bound's size is
0.044-0.054 at 5 % and 0.008-0.013 at 1 %; the limit law's lower tail rejects 0.000 at q = 3, 0.012-0.027 at
q = 10 and 0.067-0.080 (anti-conservative) at q = 50, at 5 %. ``docs/calibration.md`` has both on its grid.

Discrete statistics
-------------------
For a statistic with a discrete law the valid p-value is :math:`P(T \ge t)` (including the observed value); scipy's
``sf`` of a discrete law is :math:`P(T > t)`. Hodges--Ajne's p-value is its exact :math:`P(H \ge h)` (sphunif
reports :math:`P(H > h)`, whose 5 % test has exact size 0.111 at n = 20 instead of at most 0.05; :math:`P(H \ge h)`
gives 0.030); the number of uncovered spacings (Num_uncover) gets the continuity correction of its normal law
(:math:`P(L \ge l) \approx \bar\Phi((l - \tfrac12 - \mu)/\sigma)`); Cressie's count is calibrated by Monte Carlo,
whose p-value counts :math:`T^* \ge T`.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import special, stats

from ..nulls import MonteCarloNull
from . import _specs as B

__all__ = ["CalibrationWarning"]

#: Number of uniform samples of the finite-n Monte Carlo laws of ``method="auto"``.
DEFAULT_RESAMPLES: int = 1999
#: Largest n(n-1)/2 * DEFAULT_RESAMPLES (pair evaluations) spent on a finite-n Monte Carlo law of a pairwise test.
MAX_PAIR_WORK: float = 4e8
#: Largest n * DEFAULT_RESAMPLES spent on the Monte Carlo law of a test computed in O(n log n).
MAX_LINEAR_WORK: float = 4e8
#: Largest n * q * DEFAULT_RESAMPLES (coordinates drawn) spent on a finite-n Monte Carlo law.
MAX_DRAW_WORK: float = 1e8
#: Tests whose small values reject (p-value P(T <= t)).
LOWER_TAIL = frozenset({"CJ12"})
_SEED = 20_261_207
_CACHE_SIZE = 256
_BATCH = 64

#: Tests computed without pairwise sums (their cost is linear in n up to a logarithm).
_LINEAR = {
    "rayleigh",
    "rayleigh_hd",
    "bingham",
    "ccf09",
    "kuiper",
    "watson",
    "watson_1976",
    "hodges_ajne",
    "cressie",
    "fg01",
    "range",
    "rao",
    "greenwood",
    "log_gaps",
    "vacancy",
    "max_uncover",
    "num_uncover",
    "gini",
    "gini_squared",
    "pcvm",
}

# Where the asymptotic law is anti-conservative at the default parameters: test -> [(q_min, q_max, n_ok, alpha,
# size)], Monte Carlo for n < n_ok in q_min <= q <= q_max; size is the measured rejection rate of the asymptotic
# law's test at level alpha at the largest anti-conservative grid cell (quoted in warnings). Measured with
# dotkernels.calibration.size_study(method="asymptotic") at n in {10, 20, 50, 200}, q in {2, 3, 10, 100}, 2000
# samples per cell, then 1000 (benchmarks/bench_calibration.py, docs/calibration.md): a cell is anti-conservative when
# its rate exceeds alpha by more than 3 binomial standard errors (about 2.5 for the borderline Kuiper and Gini cells);
# between measured dimensions the rule of the less favourable neighbour applies, and a test still
# anti-conservative at n = 200 has n_ok = inf (Monte Carlo while affordable, a CalibrationWarning beyond).
FINITE_N: dict[str, list[tuple[int, float, float, float, float]]] = {
    "kuiper": [(2, 2, 50, 0.10, 0.117)],  # Stephens' 1/sqrt(n) term: 0.123 at n = 10, 0.117 at n = 20 (10 %)
    "gini": [(2, 2, 20, 0.05, 0.064)],  # n = 10: 0.064 (5 %)
    "gini_squared": [(2, 2, math.inf, 0.01, 0.022)],  # first-order normal law: 0.020-0.022 at 1 %, n = 20-200
    "greenwood": [(2, 2, math.inf, 0.01, 0.021)],  # 0.021 at 1 %, n = 200
    "poisson": [(4, math.inf, math.inf, 0.05, 0.071)],  # rho = 0.5, q = 10: 0.071 (5 %, n = 50), 0.0165 (1 %, n = 200)
    # flagged once at n = 10, q = 100 (Sobolev 0.023 at 1 %, Bingham and Gine_Gn 0.020, 1000 samples; 0.0125 over
    # 2000 other samples); the Monte Carlo law gives the same excess on those samples (0.020-0.025), so it is the
    # sample set's, but the exact finite-n law costs nothing at n < 20 and is kept
    "bingham": [(11, math.inf, 20, 0.01, 0.020)],
    "gine_gn": [(11, math.inf, 20, 0.01, 0.020)],
    "sobolev": [(11, math.inf, 20, 0.01, 0.023)],
}


class CalibrationWarning(UserWarning):
    """A default p-value whose null law was measured anti-conservative at this sample size and dimension.

    Issued by :func:`~dotkernels.uniformity.uniformity_test` and :func:`~dotkernels.uniformity.uniformity_battery`
    with ``method="auto"`` when a finite-n Monte Carlo law would be too costly; the message names the test, its
    measured size at the 5 % level and the method to pass instead.

    See Also
    --------
    dotkernels.calibration.size_study : Measures the sizes this warning quotes.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.warn("Rao: measured size 0.08", CalibrationWarning)
    >>> caught[0].category.__name__
    'CalibrationWarning'
    """


# =================================================================================================================
# p-values from null laws


def pvalue_of(law: Any, x: Any) -> Any:
    r"""The p-value of a statistic x under a null law: the law's own ``pvalue`` if it has one (lower tails,
    corrected laws), :math:`P(T \ge x)` = ``sf(ceil(x) - 1)`` for a discrete scipy law, ``sf(x)`` otherwise."""
    own = getattr(law, "pvalue", None)
    if own is not None:
        out = own(x)
    elif isinstance(getattr(law, "dist", None), stats.rv_discrete):
        out = law.sf(np.ceil(np.asarray(x, dtype=np.float64) - 1e-9) - 1.0)
    else:
        out = law.sf(x)
    return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=np.float64)


class _WrappedLaw:
    """Base of the laws that change only the p-value of a wrapped law ``self.law``: its other attributes (``cdf``,
    ``sf``, ``ppf``, ...) are reached through the wrapper."""

    law: Any

    def __getattr__(self, name: str) -> Any:
        if name == "law":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.law, name)


class LowerTail(_WrappedLaw):
    r"""A null law of a statistic whose small values reject: the p-value is :math:`P(T \le t)`.

    Attributes
    ----------
    law : object
        The law of the statistic (a frozen scipy law or a :class:`~dotkernels.nulls.MonteCarloNull`); its other
        methods (``cdf``, ``sf``, ``ppf``, ...) are reachable through this object.
    """

    def __init__(self, law: Any):
        self.law = law

    def pvalue(self, x: Any) -> Any:
        r""":math:`P(T \le x)`: ``law.cdf(x)``, or :math:`(1 + \#\{T^* \le x\})/(1 + B)` for a Monte Carlo law."""
        if isinstance(self.law, MonteCarloNull):
            count = np.searchsorted(self.law.statistics, np.asarray(x, dtype=np.float64), side="right")
            out = (1.0 + count) / (1.0 + self.law.n_resamples)
        else:
            out = self.law.cdf(x)
        return float(out) if np.ndim(out) == 0 else out

    def __repr__(self) -> str:
        return f"LowerTail({self.law!r})"


class ContinuityCorrected(_WrappedLaw):
    r"""A continuous law approximating an integer-valued statistic standardised as :math:`(L - \mu)/\sigma`: the
    p-value is :math:`\bar F(x - \tfrac{1}{2\sigma})`, the corrected :math:`P(L \ge l)`."""

    def __init__(self, law: Any, half_step: float):
        self.law = law
        self.half_step = float(half_step)

    def pvalue(self, x: Any) -> Any:
        """``law.sf(x - half_step)``."""
        out = self.law.sf(np.asarray(x, dtype=np.float64) - self.half_step)
        return float(out) if np.ndim(out) == 0 else out

    def __repr__(self) -> str:
        return f"ContinuityCorrected({self.law!r}, half_step={self.half_step!r})"


def monte_carlo_law(name: str, simulated: np.ndarray, n: int, q: int) -> Any:
    r"""The Monte Carlo null law of test ``name`` from its simulated statistics: its lower tail
    (:class:`LowerTail`) for the tests whose small values reject, else the law itself (p-value
    :math:`(1 + \#\{T^* \ge T\})/(1 + B)` through :func:`pvalue_of`)."""
    null = MonteCarloNull(simulated, n=n, q=q)
    return LowerTail(null) if name in LOWER_TAIL else null


class CJ12Bound:
    r"""The exact union bound of CJ12's p-value (module notes): a valid p-value at every n and q.

    ``pvalue(t)`` recovers :math:`L_n^2` from the statistic t of the regime and returns
    :math:`\min(1, \binom n2 I_{1-L_n^2}(\tfrac{q-1}2, \tfrac12))`.
    """

    def __init__(self, n: int, q: int, regime: int):
        self.n, self.q, self.regime = int(n), int(q), int(regime)
        if regime == 3:
            self.centring = 4.0 * q / (q - 2.0) * math.log(n) - math.log(q)
        else:
            self.centring = 4.0 * math.log(n) - math.log(math.log(n))

    def pvalue(self, x: Any) -> Any:
        r""":math:`\min(1, \binom n2 P((X^T Y)^2 \ge L^2))` with :math:`\log(1 - L^2) = (x - c_n)/q`."""
        log_one_minus = (np.asarray(x, dtype=np.float64) - self.centring) / self.q
        with np.errstate(over="ignore"):
            one_minus = np.exp(np.minimum(log_one_minus, 0.0))
        tail = special.betainc(0.5 * (self.q - 1), 0.5, one_minus)
        out = np.minimum(1.0, 0.5 * self.n * (self.n - 1.0) * tail)
        return float(out) if np.ndim(out) == 0 else out

    def cdf(self, x: Any) -> Any:
        """The bound itself (an upper bound on the null's :math:`P(T \\le x)`)."""
        return self.pvalue(x)

    def __repr__(self) -> str:
        return f"CJ12Bound(n={self.n}, q={self.q}, regime={self.regime})"


# =================================================================================================================
# the choice of law


def _finite_n_rule(name: str, q: int) -> tuple[float, float, float]:
    """(n_ok, level, measured size) of a test in dimension q: Monte Carlo below n_ok (0: the asymptotic law is fine)."""
    best = (0.0, math.nan, math.nan)
    for q_min, q_max, n_ok, alpha, size in FINITE_N.get(name.lower(), ()):
        if q_min <= q <= q_max and n_ok > best[0]:
            best = (n_ok, alpha, size)
    return best


def _affordable(name: str, n: int, q: int, n_resamples: int = DEFAULT_RESAMPLES) -> bool:
    if n * q * n_resamples > MAX_DRAW_WORK:
        return False
    if name.lower() in _LINEAR:
        return n * n_resamples <= MAX_LINEAR_WORK
    return 0.5 * n * (n - 1.0) * n_resamples <= MAX_PAIR_WORK


def _freeze(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return (value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _key(spec: B.TestSpec, n: int, q: int, params: dict) -> tuple:
    return (spec.name, n, q, tuple(sorted((k, _freeze(v)) for k, v in params.items() if k != "rng")))


_CACHE: OrderedDict[tuple, MonteCarloNull] = OrderedDict()


def uniform_points(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Uniform points on the sphere, ``shape[:-1]`` of them in R^shape[-1]: standard Gaussian vectors (drawn in C
    order) over their norms. ``uniform_points(rng, m, n, q)`` is bit for bit ``m`` successive ``uniform_points(rng, n,
    q)``, so batched and one-by-one draws from one generator give the same samples."""
    out = rng.standard_normal(shape)
    out /= np.linalg.norm(out, axis=-1, keepdims=True)
    return out


def _simulate(requests: Sequence[tuple[B.TestSpec, dict]], n: int, q: int, n_resamples: int) -> np.ndarray:
    """Statistics of the requests on ``n_resamples`` uniform samples of (n, q) from the fixed seed of (n, q)."""
    rng = np.random.default_rng([_SEED, n, q])
    out = np.empty((n_resamples, len(requests)))
    done = 0
    while done < n_resamples:
        m = min(_BATCH, n_resamples - done)
        samples = uniform_points(rng, m, n, q)
        for i in range(m):
            out[done + i] = B.battery_statistics(B.Sample(samples[i]), requests)
        done += m
    return out


def monte_carlo_nulls(
    requests: Sequence[tuple[B.TestSpec, dict]], n: int, q: int, n_resamples: int = DEFAULT_RESAMPLES
) -> list[MonteCarloNull]:
    """The cached finite-n Monte Carlo laws of the requests (the missing ones simulated together, shared samples)."""
    keys = [_key(spec, n, q, params) for spec, params in requests]
    missing = [i for i, key in enumerate(keys) if (key, n_resamples) not in _CACHE]
    if missing:
        sims = _simulate([requests[i] for i in missing], n, q, n_resamples)
        for col, i in enumerate(missing):
            _CACHE[(keys[i], n_resamples)] = MonteCarloNull(sims[:, col], n=n, q=q)
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    out = []
    for key in keys:
        _CACHE.move_to_end((key, n_resamples))
        out.append(_CACHE[(key, n_resamples)])
    return out


MONTE_CARLO_LABEL = f"Monte Carlo ({DEFAULT_RESAMPLES} samples)"


def auto_nulls(
    requests: Sequence[tuple[B.TestSpec, dict]],
    n: int,
    q: int,
    asymptotic: Callable[[B.TestSpec, dict], Any],
    *,
    stacklevel: int = 3,
) -> list[tuple[Any, str, str]]:
    """For each request (spec, params): (law or None, method label, note) as ``method="auto"`` chooses them.

    ``asymptotic(spec, params)`` returns the asymptotic law (None if the test has none; ValueError if it cannot be
    computed). The Monte Carlo laws needed are simulated together.
    """
    out: list[Any] = [None] * len(requests)
    to_simulate = []
    for i, (spec, params) in enumerate(requests):
        name = spec.name
        if name == "CJ12":
            out[i] = (CJ12Bound(n, q, params["regime"]), "exact bound", "")
            continue
        n_ok, level, size = _finite_n_rule(name, q)
        law, note = None, ""
        try:
            law = asymptotic(spec, params)
        except ValueError as exc:
            note = str(exc)
        if law is None and not note:
            note = f"test {name!r} has no asymptotic null law at q={q}"
        finite = n < n_ok
        if (law is None or finite) and _affordable(name, n, q):
            reason = note if law is None else f"the asymptotic law was measured anti-conservative at n={n}, q={q}"
            out[i] = (None, MONTE_CARLO_LABEL, reason)
            to_simulate.append(i)
        elif law is None:
            out[i] = (
                None,
                "",
                f"{note}; a finite-n Monte Carlo law at n={n} is not computed by default (cost): pass "
                "method=scipy.stats.MonteCarloMethod(n_resamples=...)",
            )
        else:
            if finite:
                warnings.warn(
                    f"{name}: the asymptotic null law was measured anti-conservative at this n (size {size:.3g} at "
                    f"the {level:.0%} level; docs/calibration.md) and a finite-n Monte Carlo law at n={n} is not "
                    "computed by default (cost): pass method=scipy.stats.MonteCarloMethod(n_resamples=...) for a "
                    "valid p-value",
                    CalibrationWarning,
                    stacklevel=stacklevel,
                )
            out[i] = (law, "asymptotic", "")
    if to_simulate:
        nulls = monte_carlo_nulls([requests[i] for i in to_simulate], n, q)
        for i, null in zip(to_simulate, nulls, strict=True):
            out[i] = (null, out[i][1], out[i][2])
    return out
