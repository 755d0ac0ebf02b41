r"""Calibration of the uniformity tests: measured sizes under uniformity and power against alternatives.

:func:`size_study` draws uniform samples of each size n on each sphere :math:`S^{q-1}` and measures, for every
requested test and its p-value method (by default the one :func:`~dotkernels.uniformity.uniformity_test` uses), the
rejection rate :math:`\hat r = \#\{p \le \alpha\}/m` at each level :math:`\alpha` over m samples, with its binomial
standard error :math:`\sqrt{\alpha(1-\alpha)/m}` (the error of a rate whose true value is the level). A cell is
flagged ``anti_conservative`` when

.. math::

    \hat r > \alpha + z \sqrt{\alpha(1-\alpha)\,(1/m + 1/B)},

the one-sided binomial test of "size <= alpha" at the family-wise level 5 % over the study's cells
(:math:`z = \Phi^{-1}(1 - 0.05/\#\text{cells})`, Bonferroni) unless ``z`` is given; B is the number of samples of
a Monte Carlo null law (whose conditional size varies by :math:`\sqrt{\alpha(1-\alpha)/B}`), :math:`B = \infty` for
the other laws. :func:`power_study` measures rejection rates under alternatives (von Mises--Fisher, Watson and a
vMF mixture by default) the same way.

The p-values are those the library reports: the statistics of each sample are computed in one pass
(:func:`~dotkernels.uniformity.uniformity_battery`'s computation) and each test's p-value is its null law's
p-value at the statistic. Since a p-value is a monotone function of its statistic (for a fixed n, q and law), the
number of samples with :math:`p \le \alpha` is found by bisection over the sorted statistics (about
:math:`\log_2 m` evaluations of the p-value per level instead of m), which gives exactly the count of the
per-sample p-values.

The table of the library's measured sizes is ``docs/calibration.md`` (written by ``benchmarks/bench_calibration.py``).

References
----------
.. [1] García-Portugués, E. and Verdebout, T. (2018). An overview of uniformity tests on the hypersphere.
   arXiv:1804.00286.
.. [2] García-Portugués, E. and Verdebout, T. sphunif: Uniformity Tests on the Circle, Sphere, and Hypersphere.
   R package, https://CRAN.R-project.org/package=sphunif.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from ._validate import check_integer, check_rng
from .sampling import sample_vmf, sample_watson
from .uniformity import _calibrated as _A
from .uniformity import _specs as _B
from .uniformity._calibrated import CalibrationWarning

__all__ = [
    "CalibrationWarning",
    "PowerStudyResult",
    "SizeStudyResult",
    "power_study",
    "size_study",
]

_LEVELS = (0.01, 0.05, 0.10)
_FAMILY_LEVEL = 0.05

TestsLike = str | Sequence[str] | Mapping[str, str | Callable[[np.ndarray], float]]
Sampler = Callable[[int, int, np.random.Generator], np.ndarray]


# =================================================================================================================
# results


def _as_list(value: Any) -> list:
    return value.tolist() if isinstance(value, np.ndarray) else list(value)


@dataclass(frozen=True)
class SizeStudyResult:
    r"""Measured sizes of uniformity tests: one entry per cell (test, n, q, level), as parallel arrays.

    Built by :func:`size_study`; the fields are its named results.

    Parameters
    ----------
    test : tuple of str
        Test name (or label of a callable) of each cell.
    n, q : ndarray of int
        Sample size and dimension of each cell.
    alpha : ndarray of float
        Nominal level of each cell.
    setting : tuple of str
        The p-value method requested for the cell (``"auto"``, the default, or ``"asymptotic"``).
    method : tuple of str
        The null law the p-values came from (``"asymptotic"``, ``"Monte Carlo (1999 samples)"``, ``"exact
        bound"``, ``"callable"``).
    rejection_rate : ndarray of float
        Fraction of the ``n_samples`` uniform samples with :math:`p \le \alpha`.
    standard_error : ndarray of float
        Binomial standard error :math:`\sqrt{\alpha(1-\alpha)/m}` of a rate equal to the level.
    tolerance : ndarray of float
        The excess over the level that flags a cell (module notes).
    anti_conservative : ndarray of bool
        ``rejection_rate > alpha + tolerance``.
    n_samples : int
        Number m of samples per (n, q).
    z : float
        The normal quantile of the tolerance.

    See Also
    --------
    size_study : Computes it.

    Examples
    --------
    >>> res = size_study(["Rayleigh"], n=20, q=3, alpha=0.05, n_samples=200, rng=0)
    >>> res.test, res.alpha.tolist(), res.method, res.standard_error.round(4).tolist()
    (('Rayleigh',), [0.05], ('asymptotic',), [0.0154])
    """

    test: tuple[str, ...]
    n: np.ndarray
    q: np.ndarray
    alpha: np.ndarray
    setting: tuple[str, ...]
    method: tuple[str, ...]
    rejection_rate: np.ndarray
    standard_error: np.ndarray
    tolerance: np.ndarray
    anti_conservative: np.ndarray
    n_samples: int
    z: float

    def rows(self) -> list[dict[str, Any]]:
        """The cells as a list of dicts (one per cell, the field names as keys).

        Returns
        -------
        list of dict
            Keys ``test, n, q, alpha, setting, method, rejection_rate, standard_error, tolerance,
            anti_conservative``.

        See Also
        --------
        to_dict : The whole result as JSON-ready data.

        Examples
        --------
        >>> res = size_study(["Rayleigh"], n=20, q=3, alpha=0.05, n_samples=100, rng=0)
        >>> sorted(res.rows()[0])[:3]
        ['alpha', 'anti_conservative', 'method']
        """
        keys = ("test", "n", "q", "alpha", "setting", "method", "rejection_rate", "standard_error", "tolerance")
        cols = [_as_list(getattr(self, k)) for k in keys]
        flags = _as_list(self.anti_conservative)
        return [{**dict(zip(keys, vals, strict=True)), "anti_conservative": bool(f)} for *vals, f in zip(*cols, flags)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: ``{"n_samples", "z", "cells": rows()}``.

        Returns
        -------
        dict
            The result; :meth:`from_dict` reads it back.

        See Also
        --------
        from_dict : The inverse.

        Examples
        --------
        >>> res = size_study(["Rayleigh"], n=20, q=3, alpha=0.05, n_samples=100, rng=0)
        >>> SizeStudyResult.from_dict(res.to_dict()).rejection_rate.tolist() == res.rejection_rate.tolist()
        True
        """
        return {"n_samples": int(self.n_samples), "z": float(self.z), "cells": self.rows()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SizeStudyResult:
        """The result of :meth:`to_dict` (e.g. read from a JSON file).

        Parameters
        ----------
        data : mapping
            ``{"n_samples", "z", "cells"}`` as :meth:`to_dict` writes it.

        Returns
        -------
        SizeStudyResult
            The result.

        See Also
        --------
        to_dict : The inverse.

        Examples
        --------
        >>> cell = {"test": "Rayleigh", "n": 20, "q": 3, "alpha": 0.05, "setting": "auto", "method": "asymptotic",
        ...         "rejection_rate": 0.04, "standard_error": 0.01, "tolerance": 0.03, "anti_conservative": False}
        >>> SizeStudyResult.from_dict({"n_samples": 500, "z": 3.0, "cells": [cell]}).test
        ('Rayleigh',)
        """
        cells = list(data["cells"])
        col = lambda k, t=float: np.array([c[k] for c in cells], dtype=t)  # noqa: E731
        return cls(
            test=tuple(str(c["test"]) for c in cells),
            n=col("n", np.int64),
            q=col("q", np.int64),
            alpha=col("alpha"),
            setting=tuple(str(c["setting"]) for c in cells),
            method=tuple(str(c["method"]) for c in cells),
            rejection_rate=col("rejection_rate"),
            standard_error=col("standard_error"),
            tolerance=col("tolerance"),
            anti_conservative=col("anti_conservative", bool),
            n_samples=int(data["n_samples"]),
            z=float(data["z"]),
        )

    def table(self) -> str:
        """A fixed-width text table of the cells (flagged cells marked ``*``).

        Returns
        -------
        str
            One line per (test, n, q), the rates at each level.

        See Also
        --------
        rows : The same cells as dicts.

        Examples
        --------
        >>> res = size_study(["Rayleigh"], n=20, q=3, alpha=0.05, n_samples=100, rng=0)
        >>> res.table().splitlines()[0].split()[:4]
        ['test', 'n', 'q', 'alpha=0.05']
        """
        levels = sorted(set(_as_list(self.alpha)))
        groups: dict[tuple, dict[float, str]] = {}
        methods: dict[tuple, str] = {}
        for row in self.rows():
            key = (row["test"] if row["setting"] == "auto" else f"{row['test']} ({row['setting']})", row["n"], row["q"])
            mark = "*" if row["anti_conservative"] else " "
            groups.setdefault(key, {})[row["alpha"]] = f"{row['rejection_rate']:.4f}{mark}"
            methods[key] = row["method"]
        width = max([4, *(len(k[0]) for k in groups)])
        labels = "  ".join(f"{'alpha=' + format(a, 'g'):>11}" for a in levels)
        head = f"{'test':<{width}}  {'n':>5}  {'q':>4}  {labels}"
        lines = [head + "  method"]
        for key, rates in groups.items():
            cells = "  ".join(f"{rates.get(a, ''):>11}" for a in levels)
            lines.append(f"{key[0]:<{width}}  {key[1]:>5}  {key[2]:>4}  {cells}  {methods[key]}")
        return "\n".join(lines)


@dataclass(frozen=True)
class PowerStudyResult:
    r"""Measured rejection rates of uniformity tests under alternatives, one entry per cell.

    Built by :func:`power_study`; the fields are its named results.

    Parameters
    ----------
    test : tuple of str
        Test name of each cell.
    alternative : tuple of str
        Name of the alternative law of each cell.
    n, q : ndarray of int
        Sample size and dimension.
    alpha : ndarray of float
        Level.
    method : tuple of str
        The null law the p-values came from.
    power : ndarray of float
        Fraction of the samples with :math:`p \le \alpha`.
    standard_error : ndarray of float
        Binomial standard error :math:`\sqrt{\hat p(1-\hat p)/m}` of the power.
    n_samples : int
        Number m of samples per cell.

    See Also
    --------
    power_study : Computes it.

    Examples
    --------
    >>> res = power_study(["Rayleigh"], n=50, q=3, n_samples=100, rng=0)
    >>> sorted(set(res.alternative))
    ['Watson', 'mixture', 'vMF']
    """

    test: tuple[str, ...]
    alternative: tuple[str, ...]
    n: np.ndarray
    q: np.ndarray
    alpha: np.ndarray
    method: tuple[str, ...]
    power: np.ndarray
    standard_error: np.ndarray
    n_samples: int

    def rows(self) -> list[dict[str, Any]]:
        """The cells as a list of dicts (one per cell, the field names as keys).

        Returns
        -------
        list of dict
            Keys ``test, alternative, n, q, alpha, method, power, standard_error``.

        See Also
        --------
        to_dict : The whole result as JSON-ready data.

        Examples
        --------
        >>> res = power_study(["Rayleigh"], n=50, q=3, n_samples=100, rng=0)
        >>> res.rows()[0]["alternative"]
        'vMF'
        """
        keys = ("test", "alternative", "n", "q", "alpha", "method", "power", "standard_error")
        return [dict(zip(keys, vals, strict=True)) for vals in zip(*(_as_list(getattr(self, k)) for k in keys))]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: ``{"n_samples", "cells": rows()}``.

        Returns
        -------
        dict
            The result; :meth:`from_dict` reads it back.

        See Also
        --------
        from_dict : The inverse.

        Examples
        --------
        >>> res = power_study(["Rayleigh"], n=50, q=3, n_samples=100, rng=0)
        >>> PowerStudyResult.from_dict(res.to_dict()).power.tolist() == res.power.tolist()
        True
        """
        return {"n_samples": int(self.n_samples), "cells": self.rows()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PowerStudyResult:
        """The result of :meth:`to_dict`.

        Parameters
        ----------
        data : mapping
            ``{"n_samples", "cells"}`` as :meth:`to_dict` writes it.

        Returns
        -------
        PowerStudyResult
            The result.

        See Also
        --------
        to_dict : The inverse.

        Examples
        --------
        >>> cell = {"test": "Rayleigh", "alternative": "vMF", "n": 50, "q": 3, "alpha": 0.05,
        ...         "method": "asymptotic", "power": 0.9, "standard_error": 0.01}
        >>> PowerStudyResult.from_dict({"n_samples": 900, "cells": [cell]}).power.tolist()
        [0.9]
        """
        cells = list(data["cells"])
        col = lambda k, t=float: np.array([c[k] for c in cells], dtype=t)  # noqa: E731
        return cls(
            test=tuple(str(c["test"]) for c in cells),
            alternative=tuple(str(c["alternative"]) for c in cells),
            n=col("n", np.int64),
            q=col("q", np.int64),
            alpha=col("alpha"),
            method=tuple(str(c["method"]) for c in cells),
            power=col("power"),
            standard_error=col("standard_error"),
            n_samples=int(data["n_samples"]),
        )


# =================================================================================================================
# the engine


def _levels(alpha: Any) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(alpha, dtype=np.float64))
    if values.ndim != 1 or values.size == 0 or not np.all((values > 0) & (values < 1)):
        raise ValueError(f"alpha must be a level or a sequence of levels in (0, 1), got {alpha!r}")
    return tuple(float(a) for a in values)


def _grid(value: Any, name: str, minimum: int) -> tuple[int, ...]:
    values = [value] if np.ndim(value) == 0 else list(value)
    if not values:
        raise ValueError(f"{name} must be an integer or a non-empty sequence of integers")
    return tuple(check_integer(v, name, minimum=minimum) for v in values)


def _check_method(method: Any) -> tuple[str, ...]:
    values = [method] if method is None or isinstance(method, str) else list(method)
    out = []
    for m in values:
        m = "auto" if m is None else m
        if not isinstance(m, str) or m.lower() not in ("auto", "asymptotic"):
            raise ValueError(
                "method must be None (the default p-values), 'auto', 'asymptotic' or a sequence of them, "
                f"got {method!r}"
            )
        out.append(m.lower())
    if not out:
        raise ValueError("method must name at least one method")
    return tuple(dict.fromkeys(out))


def _tests_at(tests: TestsLike, q: int) -> list[tuple[str, Any]]:
    """(label, spec or callable) of the requested tests that apply in dimension q."""
    if isinstance(tests, str):
        if tests.strip().lower() != "all":
            tests = [tests]
        else:
            return [(name, _B.REGISTRY[name.lower()]) for name in _B.available_tests(q)]
    if not isinstance(tests, (Mapping, Sequence)):
        raise TypeError(f"tests must be 'all', a sequence of names or a mapping, got {type(tests).__name__}")
    items = list(tests.items()) if isinstance(tests, Mapping) else [(t, t) for t in tests]
    if not items:
        raise ValueError("tests must name at least one test")
    out = []
    for label, test in items:
        if callable(test):
            out.append((str(label), test))
            continue
        if not isinstance(test, str):
            raise TypeError(f"tests must hold test names or callables Z -> p-value, got {type(test).__name__}")
        spec = _B.REGISTRY.get(test.strip().lower())
        if spec is None:
            _B.lookup(test, q)  # raises the registry's error naming the test
        if spec.name not in _B.available_tests(q):
            continue
        out.append((str(label) if isinstance(tests, Mapping) else spec.name, spec))
    return out


def _uniform(n: int, q: int, rng: np.random.Generator) -> np.ndarray:
    return _A.uniform_points(rng, n, q)


def _null_laws(requests, n, q, method):
    def asym(spec, p):
        return spec.null_law(n, q, p, "asymptotic")

    if method == "auto":
        return [(law, label) for law, label, _ in _A.auto_nulls(requests, n, q, asym, stacklevel=4)]
    out = []
    for spec, p in requests:
        try:
            law = asym(spec, p)
        except ValueError:
            law = None
        out.append((law, "asymptotic" if law is not None else "none"))
    return out


def _rejections(law: Any, lower: bool, statistics: np.ndarray, levels: Sequence[float], memo: dict) -> list[int]:
    """#{samples with p <= alpha} for each level: bisection over the sorted statistics (p is monotone in T).

    ``memo`` keeps the p-values computed, by (law, index), for the other levels and methods of the same cell.
    """
    x = np.sort(statistics)
    m = x.size

    def p(i: int) -> float:
        key = (id(law), i)
        if key not in memo:
            memo[key] = (law, _A.pvalue_of(law, x[i]))  # the law is kept alive with its id
        return memo[key][1]

    counts = []
    for a in levels:
        lo, hi = 0, m
        if lower:  # p non-decreasing in T: count = first index with p > a
            while lo < hi:
                mid = (lo + hi) // 2
                if p(mid) <= a:
                    lo = mid + 1
                else:
                    hi = mid
            counts.append(lo)
        else:  # p non-increasing in T: count = m - first index with p <= a
            while lo < hi:
                mid = (lo + hi) // 2
                if p(mid) <= a:
                    hi = mid
                else:
                    lo = mid + 1
            counts.append(m - lo)
    return counts


def _measure(
    tests: TestsLike,
    ns: Sequence[int],
    qs: Sequence[int],
    levels: Sequence[float],
    n_samples: int,
    rng: np.random.Generator,
    methods: Sequence[str],
    sampler: Sampler,
) -> list[tuple[str, int, int, float, str, str, float, float]]:
    """(test, n, q, alpha, setting, law, rate, monte carlo B or inf) of every cell under the sampler's law."""
    out = []
    for q in qs:
        entries = _tests_at(tests, q)
        if not entries:
            continue
        for n in ns:
            requests, callables = [], []
            for label, test in entries:
                if callable(test) and not isinstance(test, _B.TestSpec):
                    callables.append((label, test))
                else:
                    params = _B.resolve_params(test, {}, q, strict=False)
                    if test.name == "CCF09":
                        params = {**params, "rng": rng}
                    requests.append((label, test, _B.draw_random_directions(test, params, q)))
            specs = [(spec, p) for _, spec, p in requests]
            stat = np.empty((n_samples, len(specs)))
            pvals = np.empty((n_samples, len(callables)))
            for r in range(n_samples):
                Z = sampler(n, q, rng)
                if specs:
                    stat[r] = _B.battery_statistics(_B.Sample(Z), specs)
                for k, (_, fn) in enumerate(callables):
                    pvals[r, k] = float(fn(Z))
            memo: dict = {}
            for method in methods:
                laws = _null_laws(specs, n, q, method) if specs else []
                for k, ((label, spec, _), (law, law_label)) in enumerate(zip(requests, laws, strict=True)):
                    if law is None:
                        continue
                    counts = _rejections(law, spec.name in _A.LOWER_TAIL, stat[:, k], levels, memo)
                    resamples = law.n_resamples if law_label.startswith("Monte Carlo") else math.inf
                    for a, c in zip(levels, counts, strict=True):
                        out.append((label, n, q, a, method, law_label, c / n_samples, resamples))
            for k, (label, _) in enumerate(callables):
                for a in levels:
                    rate = float(np.mean(pvals[:, k] <= a))
                    out.append((label, n, q, a, methods[0], "callable", rate, math.inf))
    return out


def size_study(
    tests: TestsLike = "all",
    *,
    n: int | Sequence[int],
    q: int | Sequence[int],
    alpha: float | Sequence[float] = _LEVELS,
    n_samples: int = 1000,
    rng: Any = None,
    method: str | Sequence[str] | None = None,
    z: float | None = None,
) -> SizeStudyResult:
    r"""Rejection rates of uniformity tests under uniformity: the sizes of their p-values at finite n.

    Parameters
    ----------
    tests : str, sequence of str or mapping
        ``"all"`` (every test of each dimension, as :func:`~dotkernels.uniformity.uniformity_battery` runs them),
        test names, or a mapping label -> test name or callable ``f(Z) -> p-value`` (any p-value computed from an
        (n, q) array of unit rows, e.g. a monitor of embeddings). Names apply in the dimensions where
        ``uniformity_battery(Z, "all")`` runs them (circular tests at q = 2 only, CJ12, Stereo and Rayleigh_HD at
        q >= 3); callables in every dimension.
    n, q : int or sequence of int
        Sample sizes and dimensions (every combination is a cell).
    alpha : float or sequence of float
        Nominal levels (default 0.01, 0.05, 0.10).
    n_samples : int
        Number m of uniform samples per (n, q); the binomial standard error at 5 % is :math:`0.218/\sqrt m`.
    rng : numpy.random.Generator, int or None
        Source of the samples (and of CCF09's directions).
    method : {None, "auto", "asymptotic"} or sequence of them
        The p-value method measured: None or ``"auto"`` the default of
        :func:`~dotkernels.uniformity.uniformity_test`, ``"asymptotic"`` the asymptotic laws (tests without one are
        left out); several methods are measured on the same samples (the callables once, under the first).
    z : float, optional
        Normal quantile of the flagging tolerance; default: Bonferroni at the family-wise level 5 % over the cells.

    Returns
    -------
    SizeStudyResult
        One cell per (test, n, q, level).

    Warns
    -----
    CalibrationWarning
        Where a default p-value would need a Monte Carlo law too costly to compute (large n).

    See Also
    --------
    power_study : Rejection rates under alternatives.
    dotkernels.uniformity.uniformity_test : The tests and their default p-values.

    Notes
    -----
    Accuracy: each rate is the exact count of the per-sample p-values at most alpha (bisection over the sorted
    statistics, the p-value being monotone in the statistic), an estimate of the size with binomial standard error
    :math:`\sqrt{r(1-r)/m}`.

    References
    ----------
    .. [1] García-Portugués, E. and Verdebout, T. (2018). An overview of uniformity tests on the hypersphere.
       arXiv:1804.00286.

    Examples
    --------
    >>> res = size_study(["Rayleigh", "Kuiper"], n=[20, 50], q=[2, 3], alpha=0.05, n_samples=200, rng=1)
    >>> sorted(set(zip(res.test, res.q.tolist())))
    [('Kuiper', 2), ('Rayleigh', 2), ('Rayleigh', 3)]
    >>> bool(res.anti_conservative.any())
    False
    """
    levels = _levels(alpha)
    ns, qs = _grid(n, "n", 2), _grid(q, "q", 2)
    n_samples = check_integer(n_samples, "n_samples", minimum=1)
    methods = _check_method(method)
    gen = check_rng(rng)
    cells = _measure(tests, ns, qs, levels, n_samples, gen, methods, _uniform)
    if z is None:
        z = float(stats.norm.isf(_FAMILY_LEVEL / max(len(cells), 1)))
    elif not (isinstance(z, (int, float)) and math.isfinite(z) and z >= 0):
        raise ValueError(f"z must be a non-negative real number or None, got {z!r}")
    a = np.array([c[3] for c in cells], dtype=np.float64)
    rate = np.array([c[6] for c in cells], dtype=np.float64)
    resamples = np.array([c[7] for c in cells], dtype=np.float64)
    se = np.sqrt(a * (1.0 - a) / n_samples)
    tol = z * np.sqrt(a * (1.0 - a) * (1.0 / n_samples + 1.0 / resamples))
    return SizeStudyResult(
        test=tuple(c[0] for c in cells),
        n=np.array([c[1] for c in cells], dtype=np.int64),
        q=np.array([c[2] for c in cells], dtype=np.int64),
        alpha=a,
        setting=tuple(c[4] for c in cells),
        method=tuple(c[5] for c in cells),
        rejection_rate=rate,
        standard_error=se,
        tolerance=tol,
        anti_conservative=rate > a + tol,
        n_samples=n_samples,
        z=float(z),
    )


def _default_alternatives(q: int) -> dict[str, Sampler]:
    """The default alternatives of :func:`power_study` in dimension q (see there)."""
    from .alternatives import sample_vmf_mixture

    q = check_integer(q, "q", minimum=2)
    mu = np.eye(q)[0]
    return {
        "vMF": lambda n, q_, rng: sample_vmf(n, mu=mu, kappa=math.sqrt(q) / 2.0, rng=rng),
        "Watson": lambda n, q_, rng: sample_watson(n, mu=mu, kappa=q / 2.0 + 1.0, rng=rng),
        "mixture": lambda n, q_, rng: sample_vmf_mixture(n, kappa=float(q), q=q, rng=rng),
    }


def power_study(
    tests: TestsLike = "all",
    *,
    n: int | Sequence[int],
    q: int | Sequence[int],
    alternatives: Mapping[str, Sampler] | None = None,
    alpha: float | Sequence[float] = 0.05,
    n_samples: int = 500,
    rng: Any = None,
    method: str | None = None,
) -> PowerStudyResult:
    r"""Rejection rates of uniformity tests under alternatives (their power at finite n).

    Parameters
    ----------
    tests : str, sequence of str or mapping
        As in :func:`size_study`.
    n, q : int or sequence of int
        Sample sizes and dimensions.
    alternatives : mapping, optional
        Name -> sampler ``f(n, q, rng) -> (n, q)`` array of unit rows. Default, in each dimension q:
        ``"vMF"``, von Mises--Fisher about :math:`e_1` with :math:`\kappa = \sqrt q / 2` (a mean direction);
        ``"Watson"``, bipolar Watson about :math:`e_1` with :math:`\kappa = q/2 + 1` (axial, no mean direction);
        ``"mixture"``, sphunif's "MvMF", equal-weight vMF laws about :math:`\pm e_1, \dots, \pm e_q` with
        :math:`\kappa = q` (multimodal, axial; :func:`dotkernels.alternatives.sample_vmf_mixture`). The
        concentrations grow with q so that the departures stay detectable at n = 50.
    alpha : float or sequence of float
        Levels (default 0.05).
    n_samples : int
        Samples per (alternative, n, q).
    rng : numpy.random.Generator, int or None
        Source of the samples.
    method : {None, "auto", "asymptotic"}
        The p-value method, as in :func:`size_study`.

    Returns
    -------
    PowerStudyResult
        One cell per (alternative, test, n, q, level).

    See Also
    --------
    size_study : Rejection rates under uniformity.

    Examples
    --------
    >>> res = power_study(["Rayleigh", "Bingham"], n=50, q=3, n_samples=200, rng=0)
    >>> power = {(r["test"], r["alternative"]): r["power"] for r in res.rows()}
    >>> power[("Rayleigh", "vMF")] > 0.5, power[("Rayleigh", "Watson")] < 0.2, power[("Bingham", "Watson")] > 0.5
    (True, True, True)
    """
    levels = _levels(alpha)
    ns, qs = _grid(n, "n", 2), _grid(q, "q", 2)
    n_samples = check_integer(n_samples, "n_samples", minimum=1)
    methods = _check_method(method)
    gen = check_rng(rng)
    rows = []
    for q_ in qs:
        alts = _default_alternatives(q_) if alternatives is None else dict(alternatives)
        for name, sampler in alts.items():
            if not callable(sampler):
                raise TypeError(f"alternatives[{name!r}] must be a sampler f(n, q, rng), got {type(sampler).__name__}")
            for cell in _measure(tests, ns, (q_,), levels, n_samples, gen, methods[:1], sampler):
                rows.append((name, *cell[:4], *cell[5:7]))
    power = np.array([r[6] for r in rows], dtype=np.float64)
    return PowerStudyResult(
        test=tuple(r[1] for r in rows),
        alternative=tuple(r[0] for r in rows),
        n=np.array([r[2] for r in rows], dtype=np.int64),
        q=np.array([r[3] for r in rows], dtype=np.int64),
        alpha=np.array([r[4] for r in rows], dtype=np.float64),
        method=tuple(r[5] for r in rows),
        power=power,
        standard_error=np.sqrt(power * (1.0 - power) / n_samples),
        n_samples=n_samples,
    )
