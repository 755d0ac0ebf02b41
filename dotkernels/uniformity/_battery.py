r"""Many uniformity tests on one sample in one pass, as sphunif's ``unif_test(type = c(...))``.

:func:`uniformity_battery` computes the statistics of the requested tests with one blocked pass over the pairs
(the inner products and every pairwise function are computed once and shared, see :mod:`dotkernels.uniformity._specs`),
their asymptotic null laws (cached per dimension and parameters), and, with a
:class:`scipy.stats.MonteCarloMethod`, one set of simulated uniform samples for all the tests. The result lists each
test's statistic and p-value, prints as a table and is indexed by test name.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import MonteCarloMethod

from .._array_api import to_numpy
from .._validate import check_integer, check_points, check_rng
from . import _calibrated as A
from . import _specs as B

__all__: list[str] = []

_METHODS = ("auto", "asymptotic", "imhof", "hbe", "sw", "exact")


def _result(
    spec: B.TestSpec, statistic: float, pvalue: float, law: Any, params: dict, n: int, q: int, method: str = ""
):
    """The test's UniformityTestResult (kernel tests carry their kernel and estimator)."""
    from . import _core as U

    kernel, estimator = None, "v"
    registered = U.UNIFORMITY_TESTS.get(spec.name.lower())
    if registered is not None and registered.kernel is not None and spec.name.lower() != "rayleigh":
        kernel, estimator = U.uniformity_kernel(spec.name, q=q, **params)
    return U.UniformityTestResult.from_null(
        statistic,
        pvalue,
        law,
        test=spec.name,
        kernel=kernel,
        n=n,
        q=q,
        estimator=estimator,
        parameters=params,
        method=method,
    )


class UniformityBatteryResult(Mapping):
    r"""Results of several uniformity tests on one sample (a read-only mapping test name -> result).

    Indexing is case-insensitive (``res["gine_gn"]`` and ``res["Gine_Gn"]``); each entry is the test's
    :class:`~dotkernels.uniformity.UniformityTestResult` (it unpacks as ``statistic, pvalue``; the p-value is NaN
    where no law was computed, with the reason in ``notes``). ``statistics`` and ``pvalues`` are dicts by test name;
    ``str(res)`` is a table.

    Parameters
    ----------
    entries : sequence of UniformityTestResult
        The results, in the order of the tests.
    n, q : int
        Sample size and dimension.
    method : str
        The p-value method requested (``"auto"``, ``"asymptotic"``, ...; a Monte Carlo description).
    notes : mapping, optional
        Test name -> why its p-value is NaN or which law ``"auto"`` chose and why.

    See Also
    --------
    uniformity_battery : Builds it.
    UniformityTestResult : Each entry.

    Examples
    --------
    >>> from dotkernels.sampling import sample_uniform
    >>> res = uniformity_battery(sample_uniform(50, q=2, rng=0), ["Kuiper", "Watson"])
    >>> list(res), len(res["kuiper"])  # each entry unpacks as statistic, pvalue
    (['Kuiper', 'Watson'], 2)
    """

    def __init__(self, entries: Sequence[Any], *, n: int, q: int, method: str, notes: Mapping[str, str] | None = None):
        self._entries = {e.test: e for e in entries}
        self._lower = {e.test.lower(): e.test for e in entries}
        self.n, self.q, self.method = n, q, method
        self.notes = dict(notes or {})

    def __getitem__(self, name: str) -> Any:
        key = self._lower.get(str(name).strip().lower())
        if key is None:
            raise KeyError(name)
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def statistics(self) -> dict[str, float]:
        return {k: e.statistic for k, e in self._entries.items()}

    @property
    def pvalues(self) -> dict[str, float]:
        return {k: e.pvalue for k, e in self._entries.items()}

    def table(self) -> str:
        """The results as a fixed-width text table (test, statistic, p-value, null law).

        Returns
        -------
        str
            A header line and one line per test.

        See Also
        --------
        UniformityBatteryResult.pvalues : The p-values as a dict.

        Examples
        --------
        >>> from dotkernels.sampling import sample_uniform
        >>> res = uniformity_battery(sample_uniform(50, q=2, rng=0), ["Kuiper"])
        >>> res.table().splitlines()[1].split()
        ['test', 'statistic', 'p-value', 'null', 'law']
        """
        width = max([4, *(len(k) for k in self._entries)])
        lines = [f"Uniformity tests on S^{self.q - 1}: n = {self.n}, q = {self.q}, p-values: {self.method}"]
        lines.append(f"{'test':<{width}}  {'statistic':>14}  {'p-value':>11}  null law")
        for name, e in self._entries.items():
            note = self.notes.get(name, "")
            p = (
                ("MC only" if ("no asymptotic" in note or "MonteCarloMethod" in note) else "n/a")
                if math.isnan(e.pvalue)
                else f"{e.pvalue:11.4g}"
            )
            lines.append(f"{name:<{width}}  {e.statistic:>14.7g}  {p:>11}  {e.method}".rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return f"UniformityBatteryResult(n={self.n}, q={self.q}, tests={list(self._entries)})"


def _requests(tests: Any, q: int, params: Mapping[str, Any]) -> list[tuple[B.TestSpec, dict]]:
    if isinstance(tests, str):
        if tests.strip().lower() != "all":
            tests = [tests]
        else:
            tests = list(B.available_tests(q))
    if not isinstance(tests, (list, tuple)) or not tests:
        raise TypeError("test must be a string (a test name), a non-empty list of names or 'all'")
    specs = []
    seen = set()
    for name in tests:
        spec = B.lookup(name, q)
        if spec.name not in seen:
            seen.add(spec.name)
            specs.append(spec)
    used = set()
    out = []
    for spec in specs:
        p = B.resolve_params(spec, params, q, strict=False)
        out.append((spec, p))
        for key in spec.defaults:
            used.add(key.lower())
            for prefix in (spec.name, *spec.prefixes):
                used.add(f"{prefix.lower()}_{key.lower()}")
    unknown = sorted(k for k in params if k.lower() not in used)
    if unknown:
        raise TypeError(f"unexpected parameter(s) {', '.join(unknown)}: no requested test takes them")
    return out


def uniformity_battery(
    Z: Any,
    tests: Any = "all",
    *,
    method: str | MonteCarloMethod = "auto",
    block_size: int | None = None,
    **params: Any,
) -> UniformityBatteryResult:
    r"""Several uniformity tests on one sample, sharing the pairwise computations (and the Monte Carlo samples).

    Parameters
    ----------
    Z : array, shape (n, q) or (n,)
        Unit vectors (rows), n >= 2 (numpy or any array-API array, copied to the host); q = 2 gives the circular
        tests; a 1-d array is taken as angles on the circle.
    tests : str or list of str
        Test names (sphunif's spelling, case-insensitive) or ``"all"`` (every test that applies in dimension q).
    method : str or scipy.stats.MonteCarloMethod
        ``"auto"`` (default): for each test the null law whose p-value is valid at this n and q (the asymptotic law
        where it was measured calibrated, a cached finite-n Monte Carlo law where it was not or where the test has
        none, CJ12's exact union bound; see :func:`~dotkernels.uniformity.uniformity_test`); each entry's
        ``method`` says which. ``"asymptotic"`` (or an algorithm of the weighted chi-square laws) for the
        asymptotic laws only; tests that have none get a NaN p-value ("MC only" in the table). A
        :class:`scipy.stats.MonteCarloMethod` simulates ``n_resamples`` uniform samples (from ``method.rng``,
        ``batch`` at a time) once and computes every requested statistic on each.
    block_size : int, optional
        Rows per block of the pairwise pass (memory ~ 8 block_size n bytes per pairwise quantity).
    **params
        Test parameters by sphunif's names: ``s``, ``rho``, ``kappa``, ``vk2``, ``t``, ``pycke_q``, ``a``,
        ``regime``, ``beta``, ``modified``, ``directions``, ``n_proj``, ``rng`` (CCF09's random directions); a
        ``<test>_<param>`` form (``rothman_t=0.25``, ``cressie_t=0.5``) applies to one test only.

    Returns
    -------
    UniformityBatteryResult
        The results by test name; ``notes`` gives the reason of every NaN p-value and of every Monte Carlo law
        chosen by ``"auto"``.

    Warns
    -----
    CalibrationWarning
        With ``"auto"``, for a test whose asymptotic law was measured anti-conservative at this n where the
        finite-n Monte Carlo law is too costly to compute by default.

    See Also
    --------
    uniformity_test : One test, with the same methods.
    dotkernels.calibration.size_study : The measured sizes behind ``"auto"``.

    References
    ----------
    .. [1] García-Portugués, E. and Verdebout, T. (2018). An overview of uniformity tests on the hypersphere.
       arXiv:1804.00286.
    .. [2] García-Portugués, E. and Verdebout, T. sphunif: Uniformity Tests on the Circle, Sphere, and Hypersphere.
       R package, https://CRAN.R-project.org/package=sphunif.

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels.sampling import sample_uniform
    >>> Z = sample_uniform(100, q=3, rng=0)
    >>> res = uniformity_battery(Z, ["Rayleigh", "Bingham", "PCvM"])
    >>> statistic, pvalue = res["pcvm"]
    >>> sorted(res), bool(0 < pvalue < 1)
    (['Bingham', 'PCvM', 'Rayleigh'], True)
    """
    if np.ndim(Z) == 1:  # angles on the circle
        theta = np.asarray(to_numpy(Z), dtype=np.float64)
        Z = np.column_stack([np.cos(theta), np.sin(theta)])
    Z, _ = check_points(Z, "Z", min_rows=2)
    Z = np.asarray(to_numpy(Z), dtype=np.float64)  # the one-pass computation runs on the host (numpy)
    n, q = Z.shape
    block = B.BLOCK_ROWS if block_size is None else check_integer(block_size, "block_size", minimum=1)
    # CCF09 without fixed directions draws them once, for the sample and its simulations
    requests = [(spec, B.draw_random_directions(spec, p, q)) for spec, p in _requests(tests, q, params)]
    observed = B.battery_statistics(B.Sample(Z), requests, block_rows=block)

    if isinstance(method, MonteCarloMethod):
        simulated = _simulate(method, n, q, requests, block)
        label = f"Monte Carlo ({simulated.shape[0]} samples)"
        entries = []
        for k, ((spec, p), x) in enumerate(zip(requests, observed, strict=True)):
            null = A.monte_carlo_law(spec.name, simulated[:, k], n, q)
            entries.append(_result(spec, x, A.pvalue_of(null, x), null, p, n, q, label))
        return UniformityBatteryResult(entries, n=n, q=q, method=label)

    if not isinstance(method, str) or method.lower() not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _METHODS))} or a MonteCarloMethod")
    method = method.lower()
    entries, notes = [], {}
    if method == "auto":
        chosen = A.auto_nulls(requests, n, q, lambda spec, p: spec.null_law(n, q, p, "asymptotic"))
        for (spec, p), x, (law, label, note) in zip(requests, observed, chosen, strict=True):
            pvalue = A.pvalue_of(law, x) if law is not None else math.nan
            entries.append(_result(spec, x, pvalue, law, p, n, q, label))
            if note:
                notes[spec.name] = note
        return UniformityBatteryResult(entries, n=n, q=q, method=method, notes=notes)
    for (spec, p), x in zip(requests, observed, strict=True):
        note = ""
        try:
            law = spec.null_law(n, q, p, method)
        except ValueError as exc:  # e.g. a law that float64 cannot resolve (Poisson rho = 0.5 at q = 100)
            law, note = None, str(exc)
        if law is None and not note:
            note = "no asymptotic law: pass method='auto' or method=scipy.stats.MonteCarloMethod(...)"
        pvalue = A.pvalue_of(law, x) if law is not None else math.nan
        entries.append(_result(spec, x, pvalue, law, p, n, q, method if law is not None else ""))
        if note:
            notes[spec.name] = note
    return UniformityBatteryResult(entries, n=n, q=q, method=method, notes=notes)


def _simulate(method: MonteCarloMethod, n: int, q: int, requests, block: int) -> np.ndarray:
    n_resamples = check_integer(method.n_resamples, "n_resamples", minimum=1)
    batch = n_resamples if method.batch is None else check_integer(method.batch, "batch", minimum=1)
    rvs = method.rvs
    if rvs is not None and not callable(rvs):
        raise TypeError(f"MonteCarloMethod.rvs must be None or a callable rvs(size), got {type(rvs).__name__}")
    rng = check_rng(method.rng) if rvs is None else None
    out = np.empty((n_resamples, len(requests)))
    done = 0
    while done < n_resamples:
        m = min(batch, n_resamples - done)
        if rvs is None:
            samples = rng.standard_normal((m, n, q))
            samples /= np.linalg.norm(samples, axis=-1, keepdims=True)
        else:
            samples = np.asarray(rvs(size=(m, n, q)), dtype=np.float64)
            if samples.shape != (m, n, q):
                raise ValueError(f"MonteCarloMethod.rvs(size=(m, n, q)) must return shape {(m, n, q)}")
        for i in range(m):
            out[done + i] = B.battery_statistics(B.Sample(samples[i]), requests, block_rows=block)
        done += m
    return out
