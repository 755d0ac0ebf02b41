r"""Plots of spectra, profiles, null laws, test calibration and power, and training runs (matplotlib).

Every function draws on the :class:`matplotlib.axes.Axes` passed as ``ax`` (a new figure when ``ax`` is None) and
returns it, as seaborn's functions and :meth:`scipy.stats.ecdf`'s ``plot`` do, so plots compose:

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from dotkernels import GaussianKernel, SFRIKKernel
>>> from dotkernels.plotting import plot_spectrum
>>> ax = plot_spectrum([GaussianKernel(gamma=2.5), SFRIKKernel()], q=64, degree=10)
>>> ax.get_yscale()
'log'

matplotlib is imported only when a function is called; it is not a dependency of the rest of the package
(``pip install "dotkernels[plot]"`` installs it).

Functions
---------
plot_spectrum
    Gegenbauer coefficients :math:`a_l` (or Mercer eigenvalues :math:`a_l / N(q, l)`) of several kernels or
    dimensions, on a log scale.
plot_profile
    The profile :math:`\varphi(t)` with its truncated series and the truncation bound.
plot_null_distribution
    The null law of a uniformity test with the observed statistic and its p-value.
plot_pvalue_calibration
    Quantile-quantile plot of p-values against the uniform law, with a simultaneous (or pointwise) confidence
    band, on linear or log axes.
plot_power_curve
    Rejection rate against an alternative's parameter, with Monte Carlo error bars.
plot_training_curves
    Loss terms, kNN accuracy and collapse monitors of a pretraining run folder.
plot_size_study
    Measured sizes of uniformity tests under uniformity (a :mod:`dotkernels.calibration` size study).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "plot_null_distribution",
    "plot_power_curve",
    "plot_profile",
    "plot_pvalue_calibration",
    "plot_size_study",
    "plot_spectrum",
    "plot_training_curves",
]


# marker shapes cycled over the lines of one plot (open markers: series drawn on top of each other stay visible)
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is installed with the test extra
        raise ImportError(
            'dotkernels.plotting needs matplotlib: pip install "dotkernels[plot]" (or matplotlib itself)'
        ) from exc
    return plt


def _axes(ax: Any) -> Any:
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def _labelled(items: Any, labels: Sequence[str] | None, what: str) -> list[tuple[str, Any]]:
    """``[(label, item), ...]`` from one item, a sequence or a mapping ``{label: item}``."""
    if isinstance(items, Mapping):
        pairs = [(str(k), v) for k, v in items.items()]
    elif isinstance(items, (list, tuple)):
        pairs = [(repr(v), v) for v in items]
    else:
        pairs = [(repr(items), items)]
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(pairs):
            raise ValueError(f"labels must have one entry per {what} ({len(pairs)}), got {len(labels)}")
        pairs = [(lab, v) for lab, (_, v) in zip(labels, pairs)]
    if not pairs:
        raise ValueError(f"at least one {what} is needed")
    return pairs


def _check_degree(degree: Any, name: str = "degree") -> int:
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {degree!r}")
    return int(degree)


# ---------------------------------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------------------------------


def plot_spectrum(
    kernels: Any,
    *,
    q: int | Sequence[int],
    degree: int = 30,
    eigenvalues: bool = False,
    labels: Sequence[str] | None = None,
    ax: Any = None,
    **plot_kwargs: Any,
) -> Any:
    r"""Plot the Gegenbauer coefficients :math:`|a_l|` or the Mercer eigenvalues :math:`a_l / N(q, l)`.

    One line per kernel and dimension, over the degrees :math:`l = 0, \dots,` ``degree``, on a logarithmic y axis.
    The values are computed in log space (:meth:`~dotkernels.kernels.DotProductKernel.log_spectrum` minus
    :func:`~dotkernels.gegenbauer.log_harmonic_dimension`) and exponentiated for the plot. Every coefficient is a
    marker (open, one shape per line, so that lines drawn on top of each other stay visible); coefficients that are
    exactly zero, or whose value is below the smallest normal float64 (about 2.2e-308), are gaps: the line is broken
    there (its y value is NaN), so no segment bridges a zero and a coefficient between two zeros is a lone marker.
    A negative coefficient is drawn at its absolute value and marked with an ``x``.

    Parameters
    ----------
    kernels : DotProductKernel, sequence of them, or mapping ``{label: kernel}``
        The kernels to compare.
    q : int or sequence of int
        Dimension(s) of the ambient space :math:`\mathbb{R}^q`; every kernel is drawn at every dimension.
    degree : int, optional
        Largest degree drawn.
    eigenvalues : bool, optional
        Draw the Mercer eigenvalues :math:`\lambda_l = a_l / N(q, l)` (each of multiplicity :math:`N(q, l)`)
        instead of the coefficients :math:`a_l`.
    labels : sequence of str, optional
        Legend labels, one per kernel (default: the mapping's keys or the kernels' ``repr``).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: a new figure).
    **plot_kwargs
        Passed to :meth:`matplotlib.axes.Axes.plot` (e.g. ``marker``, ``linewidth``).

    Returns
    -------
    matplotlib.axes.Axes
        One line per kernel and dimension, over every degree ``0..degree``, NaN where a coefficient is left out.

    See Also
    --------
    dotkernels.kernels.DotProductKernel.spectrum : The coefficients :math:`a_l` plotted.
    dotkernels.kernels.DotProductKernel.log_spectrum : Their logarithms, finite where the values underflow.
    plot_profile : The profile :math:`\varphi(t)` the coefficients expand.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from dotkernels import ArcCosineKernel, HeatKernel
    >>> ax = plot_spectrum(HeatKernel(time=0.1), q=[3, 64], degree=8, eigenvalues=True)
    >>> len(ax.get_lines())
    2
    >>> line = plot_spectrum(ArcCosineKernel(order=0), q=3, degree=6).get_lines()[0]
    >>> line.get_ydata()[[2, 4, 6]]  # a_l = 0 at even l >= 2: gaps, no segment through them
    array([nan, nan, nan])
    """
    from .gegenbauer import log_harmonic_dimension

    degree = _check_degree(degree)
    qs = [q] if isinstance(q, (int, np.integer)) and not isinstance(q, bool) else list(q)
    pairs = _labelled(kernels, labels, "kernel")
    ax = _axes(ax)
    degrees = np.arange(degree + 1)
    series = 0
    for label, kernel in pairs:
        for qq in qs:
            log_abs, sign = kernel.log_spectrum(degree, q=qq)
            log_abs = np.asarray(log_abs, dtype=np.float64)
            sign = np.asarray(sign, dtype=np.float64)
            if eigenvalues:
                log_abs = log_abs - np.asarray(log_harmonic_dimension(degrees, q=qq), dtype=np.float64)
            with np.errstate(under="ignore"):
                values = np.exp(log_abs)
            keep = (sign != 0) & np.isfinite(values) & (values >= np.finfo(np.float64).tiny)
            name = label if len(qs) == 1 else (f"q = {qq}" if len(pairs) == 1 else f"{label}, q = {qq}")
            marker = _MARKERS[series % len(_MARKERS)]
            series += 1
            options = {"marker": marker, "markersize": 4, "fillstyle": "none", "linewidth": 1, **plot_kwargs}
            (line,) = ax.plot(degrees, np.where(keep, values, np.nan), label=name, **options)
            negative = keep & (sign < 0)
            if negative.any():
                ax.plot(degrees[negative], values[negative], "x", color=line.get_color(), label="_negative")
    ax.set_yscale("log")
    ax.set_xlabel("degree $l$")
    ax.set_ylabel(r"eigenvalue $a_l / N(q, l)$" if eigenvalues else r"coefficient $|a_l|$")
    if len(qs) == 1:
        ax.set_title(f"q = {qs[0]}")
    ax.legend()
    return ax


def plot_profile(
    kernel: Any,
    *,
    q: int,
    degrees: Sequence[int] = (1, 2, 4, 8),
    num: int = 401,
    ax: Any = None,
) -> Any:
    r"""Plot the profile :math:`\varphi(t)` on :math:`[-1, 1]`, its truncated series and the truncation bound.

    For each degree :math:`L` in ``degrees`` the truncated series :math:`\varphi_L = \sum_{l \le L} a_l P_{l,q}`
    is drawn, with the band :math:`\varphi \pm \varepsilon_L` of the bound
    :math:`\varepsilon_L = \varphi(1) - \sum_{l \le L} a_l` (:meth:`~dotkernels.kernels.DotProductKernel.
    truncation_error`) shaded in the same colour. The bound holds when every coefficient beyond :math:`L` is
    non-negative, and is then attained at :math:`t = 1`.

    Parameters
    ----------
    kernel : DotProductKernel
    q : int
        Dimension; the coefficients :math:`a_l` depend on it.
    degrees : sequence of int, optional
        Truncation degrees drawn.
    num : int, optional
        Number of points on :math:`[-1, 1]`.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        The first line is :math:`\varphi`; then one line and one shaded band per degree, in the order given.

    See Also
    --------
    dotkernels.kernels.DotProductKernel.truncation_error : The bound :math:`\varepsilon_L` of the shaded bands.
    plot_spectrum : The coefficients :math:`a_l` of the series.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from dotkernels import GaussianKernel
    >>> ax = plot_profile(GaussianKernel(gamma=1.0), q=3, degrees=[1, 3])
    >>> len(ax.get_lines()), len(ax.collections)
    (3, 2)
    """
    from .gegenbauer import legendre_series

    degrees = [_check_degree(d, "degrees") for d in degrees]
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 2:
        raise ValueError(f"num must be an integer >= 2, got {num!r}")
    ax = _axes(ax)
    t = np.linspace(-1.0, 1.0, int(num))
    phi = np.asarray(kernel.profile(t, q=q), dtype=np.float64)
    ax.plot(t, phi, color="black", linewidth=2, label=r"$\varphi(t)$")
    top = max(degrees, default=0)
    a = np.asarray(kernel.spectrum(top, q=q), dtype=np.float64)
    for d in degrees:
        series = np.asarray(legendre_series(a[: d + 1], t, q=q), dtype=np.float64)
        bound = float(kernel.truncation_error(d, q=q))
        (line,) = ax.plot(t, series, linestyle="--", label=f"$L = {d}$, bound {bound:.2g}")
        ax.fill_between(t, phi - bound, phi + bound, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xlabel("$t = u^\\top v$")
    ax.set_ylabel(r"$\varphi(t)$")
    ax.set_title(f"q = {q}")
    ax.legend()
    return ax


# ---------------------------------------------------------------------------------------------------------------
# uniformity tests
# ---------------------------------------------------------------------------------------------------------------


def _null_density(law: Any, x: np.ndarray) -> np.ndarray:
    """Density of a null law on the grid ``x``: its ``pdf`` where it has one, else the derivative of its cdf."""
    pdf = getattr(law, "pdf", None)
    if callable(pdf):
        return np.asarray(pdf(x), dtype=np.float64)
    cdf = np.asarray(law.cdf(x), dtype=np.float64)
    return np.clip(np.gradient(cdf, x), 0.0, None)


def plot_null_distribution(result: Any, *, bins: int = 60, num: int = 200, ax: Any = None) -> Any:
    r"""Plot the null law of a uniformity test with the observed statistic and its p-value.

    A Monte Carlo null (a law with the simulated ``statistics``) is drawn as a density histogram; an asymptotic
    law (:class:`~dotkernels.nulls.WeightedChiSquare` or a frozen :mod:`scipy.stats` law) as its density on a grid,
    from ``pdf`` when the law has one and otherwise as the derivative of its ``cdf``. The observed statistic is a
    vertical line, the region beyond it (whose probability is the p-value) is shaded.

    Parameters
    ----------
    result : UniformityTestResult
        From :func:`~dotkernels.uniformity.uniformity_test` (any object with ``statistic``, ``pvalue``, ``test``
        and ``null_distribution`` attributes).
    bins : int, optional
        Histogram bins of a Monte Carlo null.
    num : int, optional
        Grid points of an asymptotic density.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        The null law (a histogram or a density line), the observed statistic's vertical line and its shaded tail.

    See Also
    --------
    dotkernels.uniformity.uniformity_test : The tests whose results it draws.
    plot_pvalue_calibration : P-values of many samples against the uniform law.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from dotkernels import sample_uniform, uniformity_test
    >>> result = uniformity_test(sample_uniform(100, q=3, rng=0), "rayleigh")
    >>> ax = plot_null_distribution(result)
    >>> ax.get_xlabel()
    'rayleigh statistic'
    """
    law = result.null_distribution
    statistic = float(result.statistic)
    pvalue = float(result.pvalue)
    ax = _axes(ax)
    samples = getattr(law, "statistics", None)
    if samples is not None:
        samples = np.asarray(samples, dtype=np.float64)
        heights, edges, _ = ax.hist(samples, bins=bins, density=True, color="0.7", label=f"null ({samples.size} draws)")
        lo, hi = float(edges[0]), float(max(edges[-1], statistic))
        centres = 0.5 * (edges[1:] + edges[:-1])
        tail = centres >= statistic
        if tail.any():
            ax.bar(centres[tail], heights[tail], width=np.diff(edges)[tail], color="C3", alpha=0.5)
    else:
        lo = float(law.ppf(1e-4))
        hi = float(max(law.ppf(1 - 1e-4), statistic * 1.05))
        x = np.linspace(lo, hi, int(num))
        density = _null_density(law, x)
        ax.plot(x, density, color="black", label="null density")
        tail = x >= statistic
        ax.fill_between(x[tail], 0.0, density[tail], color="C3", alpha=0.5)
    ax.axvline(statistic, color="C3", label=f"observed {statistic:.4g}, p = {pvalue:.3g}")
    ax.set_xlim(lo, hi)
    ax.set_xlabel(f"{result.test} statistic")
    ax.set_ylabel("density")
    ax.legend()
    return ax


def _simultaneous_tail(m: int, confidence: float, n_resamples: int, rng: np.random.Generator) -> float:
    r"""Pointwise tail :math:`\alpha_m` whose beta-quantile envelope holds all ``m`` order statistics at once.

    Aldor-Noiman et al. (2013): under calibration :math:`U_{(i)} \sim \mathrm{Beta}(i, m + 1 - i)`; a sample stays
    in the envelope :math:`[F_i^{-1}(\alpha), F_i^{-1}(1 - \alpha)]` iff the smallest two-sided tail
    :math:`\min_i \min(F_i(U_{(i)}), 1 - F_i(U_{(i)}))` is at least :math:`\alpha`; :math:`\alpha_m` is the
    ``1 - confidence`` quantile of that minimum over ``n_resamples`` simulated uniform samples.
    """
    from scipy import special

    i = np.arange(1, m + 1, dtype=np.float64)
    block = max(1, 2_000_000 // m)
    smallest = []
    for start in range(0, n_resamples, block):
        u = np.sort(rng.uniform(size=(min(block, n_resamples - start), m)), axis=1)
        cdf = special.betainc(i, m + 1 - i, u)
        smallest.append(np.minimum(cdf, 1.0 - cdf).min(axis=1))
    return float(np.quantile(np.concatenate(smallest), 1.0 - confidence, method="inverted_cdf"))


def plot_pvalue_calibration(
    pvalues: Any,
    *,
    labels: Sequence[str] | None = None,
    confidence: float = 0.95,
    band: str = "simultaneous",
    scale: str = "linear",
    n_resamples: int = 2000,
    rng: Any = None,
    ax: Any = None,
) -> Any:
    r"""Quantile-quantile plot of p-values against the uniform law on :math:`[0, 1]`, with a confidence band.

    The sorted p-values :math:`p_{(i)}` of :math:`m` tests are drawn against the uniform quantiles
    :math:`i / (m + 1)`; a calibrated test stays on the diagonal. Under calibration
    :math:`p_{(i)} \sim \mathrm{Beta}(i, m + 1 - i)`, and the shaded band (for the largest of the samples) is

    - ``band="simultaneous"`` (default): the beta-quantile envelope of Aldor-Noiman et al. (2013), whose pointwise
      level is lowered until the **whole** line of a calibrated test stays inside with probability ``confidence``
      (calibrated by simulating ``n_resamples`` uniform samples). A line that leaves it is evidence against
      calibration at that level;
    - ``band="pointwise"``: each order statistic alone is inside with probability ``confidence``. Over many
      quantiles a calibrated line is expected to leave it somewhere (read it one quantile at a time).

    ``scale="log"`` draws both axes on a log scale, which shows the small p-values, where a level-0.05 test
    decides, from half the smallest quantile or positive p-value drawn; ``"linear"`` shows :math:`[0, 1]`.
    P-values equal to 0 are not drawn on log axes.

    Parameters
    ----------
    pvalues : array_like, sequence of array_like, or mapping ``{label: array_like}``
        P-values of tests on samples drawn under the null hypothesis.
    labels : sequence of str, optional
        Legend labels, one per sample (default: the mapping's keys or "sample 1", "sample 2", ...).
    confidence : float, optional
        Coverage of the band, in (0, 1): of the whole line (simultaneous) or of each quantile (pointwise).
    band : {"simultaneous", "pointwise"}, optional
        Which band to shade (see above).
    scale : {"linear", "log"}, optional
        Scale of both axes.
    n_resamples : int, optional
        Uniform samples simulated to calibrate the simultaneous band: its coverage is ``confidence`` up to a
        Monte Carlo standard error of :math:`\sqrt{c(1 - c) / n_\text{resamples}}` (0.005 at the defaults).
    rng : numpy.random.Generator, int or None, optional
        Generator (or seed) of that simulation.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        The first line is the diagonal, then one line per sample of p-values; the band is ``ax.collections[0]``.

    See Also
    --------
    scipy.stats.ecdf : The empirical distribution function of a sample, with confidence bands.

    References
    ----------
    Aldor-Noiman, S., Brown, L. D., Buja, A., Rolke, W. and Stine, R. A. (2013). The power to see: a new graphical
    test of normality. The American Statistician 67(4), 249-260.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> p = np.random.default_rng(0).uniform(size=200)
    >>> ax = plot_pvalue_calibration({"uniform": p}, scale="log", rng=1)
    >>> ax.get_lines()[1].get_label(), ax.get_xscale()
    ('uniform', 'log')
    >>> ax.collections[0].get_label()
    '95% simultaneous band (m = 200)'
    """
    from scipy import stats

    from ._validate import check_rng

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if band not in ("simultaneous", "pointwise"):
        raise ValueError(f"band must be 'simultaneous' or 'pointwise', got {band!r}")
    if scale not in ("linear", "log"):
        raise ValueError(f"scale must be 'linear' or 'log', got {scale!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 100:
        raise ValueError(f"n_resamples must be an integer >= 100, got {n_resamples!r}")
    generator = check_rng(rng)
    if isinstance(pvalues, Mapping):
        samples = _labelled(pvalues, labels, "sample of p-values")
    else:
        nested = isinstance(pvalues, (list, tuple)) and len(pvalues) > 0 and np.ndim(pvalues[0]) == 1
        arr = list(pvalues) if nested else [pvalues]
        samples = _labelled(list(arr), labels or [f"sample {i + 1}" for i in range(len(arr))], "sample of p-values")
    checked = []
    for label, p in samples:
        p = np.sort(np.asarray(p, dtype=np.float64).ravel())
        if p.size == 0 or not np.all((p >= 0) & (p <= 1)):
            raise ValueError(f"pvalues ({label}) must be a non-empty array of numbers in [0, 1]")
        checked.append((label, p))
    ax = _axes(ax)
    m = max(p.size for _, p in checked)
    i = np.arange(1, m + 1)
    x = i / (m + 1)
    if band == "simultaneous":
        tail = _simultaneous_tail(m, confidence, int(n_resamples), generator)
    else:
        tail = (1 - confidence) / 2
    lower, upper = stats.beta.ppf(tail, i, m + 1 - i), stats.beta.ppf(1 - tail, i, m + 1 - i)
    if scale == "linear":
        low = 0.0
    else:  # from half the smallest quantile or p-value drawn (the band may go on below)
        drawn = np.concatenate([p[p > 0] for _, p in checked] + [x[:1]])
        low = float(drawn.min()) / 2
    ax.plot([low, 1], [low, 1], color="black", linewidth=1, label="uniform")
    ax.fill_between(x, lower, upper, color="0.85", label=f"{100 * confidence:g}% {band} band (m = {m})")
    for label, p in checked:
        ax.plot(np.arange(1, p.size + 1) / (p.size + 1), p, linewidth=1.2, alpha=0.85, label=label)
    if scale == "log":
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlim(low, 1)
    ax.set_ylim(low, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("uniform quantile")
    ax.set_ylabel("p-value quantile")
    ax.legend()
    return ax


def plot_power_curve(
    parameter: Any,
    power: Any,
    *,
    labels: Sequence[str] | None = None,
    n_replicates: int | None = None,
    level: float | None = None,
    xlabel: str = "parameter",
    ax: Any = None,
) -> Any:
    r"""Plot rejection rates against the parameter of an alternative (e.g. a concentration :math:`\kappa`).

    Parameters
    ----------
    parameter : array_like, shape (k,)
        Values of the alternative's parameter (x axis).
    power : array_like of shape (k,), sequence of them, or mapping ``{label: array_like}``
        Rejection rates in :math:`[0, 1]`, one curve per test.
    labels : sequence of str, optional
    n_replicates : int, optional
        Number of Monte Carlo samples behind each rate: draws error bars of one binomial standard error
        :math:`\sqrt{p(1 - p) / n}`.
    level : float, optional
        Nominal level of the tests, drawn as a horizontal line (the power at the null).
    xlabel : str, optional
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        One line per test, in the order given; with ``level``, a horizontal line at it.

    See Also
    --------
    dotkernels.calibration.power_study : Rejection rates of the tests under alternatives, to plot here.
    plot_pvalue_calibration : The p-values under the null, whose size the power curve starts from.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = plot_power_curve([0, 1, 2], {"rayleigh": [0.05, 0.4, 0.9]}, level=0.05, xlabel="kappa")
    >>> ax.get_xlabel(), [float(y) for y in ax.get_ylim()]
    ('kappa', [0.0, 1.0])
    """
    x = np.asarray(parameter, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"parameter must be a 1-d array, got shape {x.shape}")
    if isinstance(power, Mapping):
        curves = _labelled(power, labels, "power curve")
    else:
        arr = np.asarray(power, dtype=np.float64)
        rows = [arr] if arr.ndim == 1 else list(arr)
        curves = _labelled(rows, labels or [f"test {i + 1}" for i in range(len(rows))], "power curve")
    if n_replicates is not None and (isinstance(n_replicates, bool) or int(n_replicates) < 1):
        raise ValueError(f"n_replicates must be a positive integer, got {n_replicates!r}")
    ax = _axes(ax)
    for k, (label, y) in enumerate(curves):
        y = np.asarray(y, dtype=np.float64)
        if y.shape != x.shape or not np.all((y >= 0) & (y <= 1)):
            raise ValueError(f"power ({label}) must be rates in [0, 1] with the shape of parameter {x.shape}")
        # open markers of distinct shapes and sizes: curves with equal rates stay visible on top of each other
        style = {"marker": _MARKERS[k % len(_MARKERS)], "markersize": 8 - 4 * k / max(len(curves), 1)}
        style.update(fillstyle="none", linewidth=1)
        if n_replicates is None:
            ax.plot(x, y, label=label, **style)
        else:
            ax.errorbar(x, y, yerr=np.sqrt(y * (1 - y) / n_replicates), capsize=3, label=label, **style)
    if level is not None:
        ax.axhline(level, color="black", linestyle=":", label=f"level {level:g}")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rejection rate")
    ax.legend()
    return ax


# ---------------------------------------------------------------------------------------------------------------
# training runs
# ---------------------------------------------------------------------------------------------------------------

# columns of the run's CSV files that are not loss terms
_NOT_TERMS = frozenset(
    {"step", "epoch", "lr", "images_per_s", "epoch_seconds", "monitor_seconds", "peak_rss_mb", "peak_gpu_mb"}
)
_MONITORS = ("knn_val", "effective_rank", "mmd2_uniform", "embedding_std")
_TITLES = {
    "loss": "loss terms",
    "knn_val": "kNN accuracy (validation)",
    "effective_rank": "effective rank of the embeddings",
    "mmd2_uniform": "MMD$^2$ of the embeddings to the uniform law",
    "embedding_std": "std of the normalised embeddings",
}
_YLABELS = {
    "knn_val": "accuracy",
    "effective_rank": "effective rank",
    "mmd2_uniform": "MMD$^2$",
    "embedding_std": "standard deviation",
}


def _read_metrics(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, np.ndarray] = {}
    for key in rows[0] if rows else ():
        values = []
        for row in rows:
            try:
                values.append(float(row[key]))
            except (TypeError, ValueError):
                values.append(math.nan)
        columns[key] = np.asarray(values)
    return columns


def _loss_terms(columns: Mapping[str, np.ndarray]) -> list[str]:
    """The loss columns: the loop writes step and epoch, then the total and the terms, then ``lr`` and the rest."""
    keys = list(columns)
    end = keys.index("lr") if "lr" in keys else len(keys)
    return [k for k in keys[:end] if k not in _NOT_TERMS and k not in _MONITORS]


def plot_training_curves(
    run: str | Path,
    *,
    panels: Sequence[str] | None = None,
    label: str | None = None,
    ax: Any = None,
) -> Any:
    r"""Plot a pretraining run folder's loss terms, kNN accuracy and collapse monitors.

    Reads ``metrics_step.csv`` (the loss terms of every logged step; ``metrics_epoch.csv``'s epoch means when the
    step file is absent) and ``metrics_epoch.csv`` (the monitors after each epoch) written by
    ``dotkernels-pretrain``. Call it again with the returned axes and another run to compare runs: each run keeps
    one colour in every panel, its loss terms told apart by line style.

    Parameters
    ----------
    run : str or Path
        The run folder (``--out`` of ``dotkernels-pretrain``).
    panels : sequence of str, optional
        What to draw, one axes each: ``"loss"`` (every loss term and the total, against the training step) or the
        name of a column of ``metrics_epoch.csv`` (against the epoch), e.g. ``"knn_val"``, ``"effective_rank"``,
        ``"mmd2_uniform"``, ``"rayleigh"``. Default: ``"loss"`` and those of ``knn_val``, ``effective_rank``,
        ``mmd2_uniform``, ``embedding_std`` that the run recorded.
    label : str, optional
        Name of the run in the legends (default: the folder's name).
    ax : matplotlib.axes.Axes or sequence of them, optional
        One axes per panel (default: a new figure, two panels a row).

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
        One per panel, in order.

    Raises
    ------
    FileNotFoundError
        When the folder has no ``metrics_epoch.csv``.
    ValueError
        For a panel that names no recorded column, or ``ax`` with the wrong number of axes.

    See Also
    --------
    dotkernels_ssl.pretraining.cli.pretrain_main : The ``dotkernels-pretrain`` command that writes the run folder.
    dotkernels_ssl.pretraining.logs.read_result : The run's test accuracies (its ``eval.json``).

    Examples
    --------
    A run folder with the two files ``dotkernels-pretrain`` writes (here two epochs of five steps):

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import tempfile
    >>> from pathlib import Path
    >>> run = Path(tempfile.mkdtemp()) / "sfrik"
    >>> run.mkdir()
    >>> steps = [f"{s},{1 + (s - 1) // 5},{10 / s},{1 / s},0.1" for s in range(1, 11)]
    >>> _ = (run / "metrics_step.csv").write_text("step,epoch,loss,invariance,lr\n" + "\n".join(steps) + "\n")
    >>> _ = (run / "metrics_epoch.csv").write_text("epoch,loss,lr,knn_val\n1,3.0,0.1,0.6\n2,1.5,0.1,0.7\n")
    >>> axes = plot_training_curves(run)
    >>> [a.get_title() for a in axes]
    ['loss terms', 'kNN accuracy (validation)']
    >>> [line.get_label() for line in axes[0].get_lines()]
    ['sfrik: loss', 'sfrik: invariance']
    """
    run = Path(run)
    epoch_file = run / "metrics_epoch.csv"
    if not epoch_file.is_file():
        raise FileNotFoundError(f"run: {run} has no metrics_epoch.csv (not a dotkernels-pretrain run folder?)")
    epochs = _read_metrics(epoch_file)
    step_file = run / "metrics_step.csv"
    steps = _read_metrics(step_file) if step_file.is_file() else {}
    if not steps.get("step", np.empty(0)).size:
        steps = epochs
    recorded = {k for k, v in epochs.items() if np.isfinite(v).any()}
    if panels is None:
        panels = ["loss", *(m for m in _MONITORS if m in recorded)]
    panels = list(panels)
    for name in panels:
        if name != "loss" and name not in recorded:
            raise ValueError(f"panels: {name!r} is not recorded in {epoch_file}; recorded: {sorted(recorded)}")
    if ax is None:
        # at most two panels a row, sized for a page column
        cols = min(2, len(panels))
        rows = -(-len(panels) // cols)
        fig, grid = _pyplot().subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
        axes = grid.ravel()[: len(panels)]
        for extra in grid.ravel()[len(panels) :]:
            fig.delaxes(extra)
    else:
        axes = np.atleast_1d(np.asarray(ax, dtype=object))
        if axes.size != len(panels):
            raise ValueError(f"ax must hold one axes per panel ({len(panels)}), got {axes.size}")
    label = run.name if label is None else label
    color = None
    for panel, a in zip(panels, axes):
        if panel == "loss":
            terms = [k for k in _loss_terms(steps) if np.isfinite(steps[k]).any()]
            x_key = "step" if "step" in steps else "epoch"
            positive = all(np.nanmin(steps[k]) > 0 for k in terms)
            styles = ["-", "--", ":", "-."]
            for i, term in enumerate(sorted(terms, key=lambda k: (k != "loss", k))):
                keep = np.isfinite(steps[term])
                (line,) = a.plot(
                    steps[x_key][keep],
                    steps[term][keep],
                    linestyle=styles[i % len(styles)],
                    color=color,
                    label=f"{label}: {term}",
                )
                color = line.get_color()
            if positive and terms:
                a.set_yscale("log")
            a.set_xlabel(x_key)
            a.set_ylabel("loss term")
        else:
            keep = np.isfinite(epochs[panel])
            (line,) = a.plot(epochs["epoch"][keep], epochs[panel][keep], marker="o", color=color, label=label)
            color = line.get_color()
            a.set_xlabel("epoch")
            a.set_ylabel(_YLABELS.get(panel, panel))
        a.set_title(_TITLES.get(panel, panel))
        a.legend(fontsize="small")
    return axes


def plot_size_study(result: Any, *, alpha: float = 0.05, setting: str = "auto", ax: Any = None) -> Any:
    r"""Measured sizes of uniformity tests at one level: the table of a size study as a figure.

    One column per (dimension, test), sorted by dimension then name; one point per sample size n (colour) at the
    test's rejection rate under uniformity. The level is the horizontal line, the shaded band
    :math:`\alpha \pm 2\sqrt{\alpha(1-\alpha)/m}` the binomial error of m samples, and the cells the study flags as
    anti-conservative are circled in red.

    Parameters
    ----------
    result : SizeStudyResult
        A :func:`dotkernels.calibration.size_study` result (or one read back with ``SizeStudyResult.from_dict``).
    alpha : float, optional
        The level drawn (one of the study's levels).
    setting : str, optional
        Which p-value method of the study (``"auto"``, the default p-values, or ``"asymptotic"``).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        The axes; the points of sample size n are the collection labelled ``f"n = {n}"``.

    See Also
    --------
    dotkernels.calibration.size_study : Measures the sizes.
    plot_pvalue_calibration : The whole law of the p-values of one test.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from dotkernels.calibration import size_study
    >>> res = size_study(["Rayleigh", "Bingham"], n=[20, 50], q=3, alpha=0.05, n_samples=100, rng=0)
    >>> ax = plot_size_study(res)
    >>> sorted(c.get_label() for c in ax.collections if c.get_label().startswith("n ="))
    ['n = 20', 'n = 50']
    """
    levels = np.asarray(result.alpha, dtype=np.float64)
    settings = np.asarray(result.setting)
    if not np.any(np.isclose(levels, alpha)):
        raise ValueError(f"alpha must be one of the study's levels {sorted(set(levels.tolist()))}, got {alpha!r}")
    if not np.any(settings == setting):
        raise ValueError(f"setting must be one of the study's {sorted(set(settings.tolist()))}, got {setting!r}")
    keep = np.isclose(levels, alpha) & (settings == setting)
    tests = np.asarray(result.test)[keep]
    qs = np.asarray(result.q)[keep]
    ns = np.asarray(result.n)[keep]
    rates = np.asarray(result.rejection_rate, dtype=np.float64)[keep]
    flags = np.asarray(result.anti_conservative, dtype=bool)[keep]
    columns = sorted(set(zip(qs.tolist(), tests.tolist())), key=lambda c: (c[0], c[1].lower()))
    position = {c: i for i, c in enumerate(columns)}
    x = np.array([position[(q, t)] for q, t in zip(qs.tolist(), tests.tolist())], dtype=np.float64)
    ax = _axes(ax)
    se = math.sqrt(alpha * (1.0 - alpha) / int(result.n_samples))
    ax.axhspan(alpha - 2.0 * se, alpha + 2.0 * se, color="0.85", label=f"level {alpha:g} +- 2 binomial s.e.")
    ax.axhline(alpha, color="black", linewidth=0.8)
    for k, n in enumerate(sorted(set(ns.tolist()))):
        sel = ns == n
        ax.scatter(x[sel] + 0.15 * (k - 1.5), rates[sel], s=12, color=f"C{k}", label=f"n = {n}", zorder=3)
    if np.any(flags):
        ax.scatter(x[flags], rates[flags], s=80, facecolors="none", edgecolors="red", label="flagged", zorder=4)
    ax.set_xticks(np.arange(len(columns)))
    ax.set_xticklabels([f"{t} (q={q})" for q, t in columns], rotation=90, fontsize=6)
    ax.set_ylabel(f"rejection rate at level {alpha:g}")
    ax.set_xlim(-1, len(columns))
    ax.legend(fontsize=7)
    return ax
