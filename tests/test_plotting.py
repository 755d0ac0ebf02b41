"""dotkernels.plotting: what each plot draws (the data of its artists, labels, scales), not its pixels."""

import csv
import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy import special, stats  # noqa: E402

from dotkernels import (  # noqa: E402
    ArcCosineKernel,
    DistanceKernel,
    GaussianKernel,
    SFRIKKernel,
    harmonic_dimension,
    sample_uniform,
    uniformity_test,
)
from dotkernels import plotting as P  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _band(collection):
    """(x, lower, upper) of a fill_between polygon (its vertices: along the lower edge, back along the upper)."""
    v = collection.get_paths()[0].vertices
    x = np.unique(v[:, 0])
    lower = np.array([v[v[:, 0] == xi, 1].min() for xi in x])
    upper = np.array([v[v[:, 0] == xi, 1].max() for xi in x])
    return x, lower, upper


# ---- spectra ---------------------------------------------------------------------------------------------------


def test_spectrum_draws_the_coefficients_of_each_kernel_on_a_log_axis():
    kernels = {"gauss": GaussianKernel(gamma=2.5), "sfrik": SFRIKKernel()}
    ax = P.plot_spectrum(kernels, q=64, degree=10)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"gauss", "sfrik"}
    assert ax.get_yscale() == "log"
    assert "a_l" in ax.get_ylabel() and ax.get_xlabel().startswith("degree")
    a = GaussianKernel(gamma=2.5).spectrum(10, q=64)
    np.testing.assert_array_equal(lines["gauss"].get_xdata(), np.arange(11))
    np.testing.assert_allclose(lines["gauss"].get_ydata(), a, rtol=1e-12)
    # SFRIK: a_0 = 0 and a_l = 0 beyond degree 3 are gaps of the log plot (NaN)
    np.testing.assert_array_equal(lines["sfrik"].get_xdata(), np.arange(11))
    y = np.asarray(lines["sfrik"].get_ydata())
    np.testing.assert_array_equal(np.flatnonzero(np.isfinite(y)), [1, 2, 3])
    np.testing.assert_allclose(y[1:4], [1.0, 40.0, 40.0], rtol=1e-12)
    # every line has its own open marker shape
    assert lines["gauss"].get_marker() != lines["sfrik"].get_marker()
    assert {line.get_fillstyle() for line in lines.values()} == {"none"}


def _segments(line):
    """The (x0, x1) pairs joined by a drawn segment: consecutive points that are both finite."""
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata(), dtype=float)
    both = np.isfinite(y[:-1]) & np.isfinite(y[1:])
    return {(int(a), int(b)) for a, b in zip(x[:-1][both], x[1:][both])}


@pytest.mark.parametrize("order", [0, 1])
def test_spectrum_draws_no_segment_across_a_zero_coefficient(order):
    # the arc-cosine kernels vanish at every even degree >= 2 (order 0) or odd degree >= 3 (order 1): in closed form
    # (Cho & Saul 2009) their coefficients are zero there, so no segment of the line may join two of its neighbours
    kernel = ArcCosineKernel(order=order)
    degree = 12
    (line,) = P.plot_spectrum(kernel, q=3, degree=degree).get_lines()
    _, sign = kernel.log_spectrum(degree, q=3)
    zeros = [l for l in range(degree + 1) if sign[l] == 0]
    expected = [l for l in range(2, degree + 1) if (l % 2 == 0 if order == 0 else l % 2 == 1 and l >= 3)]
    assert zeros == expected
    y = np.asarray(line.get_ydata())
    assert np.isnan(y[zeros]).all()
    for a, b in _segments(line):
        assert b == a + 1 and a not in zeros and b not in zeros
    # every nonzero coefficient is still a marker at its value
    finite = np.flatnonzero(np.isfinite(y))
    np.testing.assert_allclose(y[finite], np.abs(kernel.spectrum(degree, q=3))[finite], rtol=1e-12)


def test_spectrum_eigenvalues_divide_by_the_exact_harmonic_dimension_and_drop_underflow():
    q, degree = 8192, 130
    kernel = GaussianKernel(gamma=2.5)
    ax = P.plot_spectrum(kernel, q=q, degree=degree, eigenvalues=True)
    (line,) = ax.get_lines()
    a = kernel.spectrum(degree, q=q)
    # log(a_l / N(q, l)) with N as an exact Python integer
    log_eig = np.array([math.log(a[l]) - math.log(harmonic_dimension(l, q=q)) for l in range(degree + 1)])
    representable = log_eig >= math.log(np.finfo(float).tiny)
    assert not representable.all(), "the test needs degrees whose eigenvalue underflows float64"
    y = np.asarray(line.get_ydata())
    x = np.flatnonzero(np.isfinite(y))
    np.testing.assert_array_equal(x, np.flatnonzero(representable))
    np.testing.assert_allclose(np.log(y[x]), log_eig[x], rtol=1e-12, atol=1e-9)
    assert "N(q, l)" in ax.get_ylabel()


def test_spectrum_several_dimensions_and_negative_coefficients():
    ax = P.plot_spectrum(DistanceKernel(s=1.0), q=[3, 10], degree=6)
    labels = [line.get_label() for line in ax.get_lines()]
    assert [lab for lab in labels if not lab.startswith("_")] == ["q = 3", "q = 10"]
    # a_0 < 0 for the distance kernel: drawn at |a_0| and marked
    marks = [line for line in ax.get_lines() if line.get_label() == "_negative"]
    assert len(marks) == 2
    for mark, q in zip(marks, [3, 10]):
        a0 = DistanceKernel(s=1.0).spectrum(0, q=q)[0]
        assert a0 < 0
        np.testing.assert_array_equal(mark.get_xdata(), [0])
        np.testing.assert_allclose(mark.get_ydata(), [-a0])


def test_spectrum_rejects_bad_arguments():
    with pytest.raises(ValueError, match="labels"):
        P.plot_spectrum([SFRIKKernel()], q=3, labels=["a", "b"])
    with pytest.raises(ValueError, match="degree"):
        P.plot_spectrum(SFRIKKernel(), q=3, degree=-1)


# ---- profile ---------------------------------------------------------------------------------------------------


def test_profile_draws_phi_the_truncated_series_and_the_bound():
    kernel = GaussianKernel(gamma=1.0)
    degrees = [1, 3, 6]
    ax = P.plot_profile(kernel, q=3, degrees=degrees, num=101)
    lines = ax.get_lines()
    assert len(lines) == 1 + len(degrees) and len(ax.collections) == len(degrees)
    t = np.asarray(lines[0].get_xdata())
    np.testing.assert_allclose(t, np.linspace(-1, 1, 101))
    # phi(t) = exp(-2 gamma (1 - t)) on the unit sphere
    np.testing.assert_allclose(lines[0].get_ydata(), np.exp(-2.0 * (1.0 - t)), rtol=1e-13)
    a = kernel.spectrum(max(degrees), q=3)
    for line, band, d in zip(lines[1:], ax.collections, degrees):
        # at q = 3, P_{l,3} is scipy's Legendre polynomial
        series = sum(a[l] * special.eval_legendre(l, t) for l in range(d + 1))
        np.testing.assert_allclose(line.get_ydata(), series, rtol=1e-12, atol=1e-15)
        bound = kernel.truncation_error(d, q=3)
        assert f"L = {d}" in line.get_label()
        xb, lower, upper = _band(band)
        phi = np.exp(-2.0 * (1.0 - xb))
        np.testing.assert_allclose(upper - phi, bound, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(phi - lower, bound, rtol=1e-9, atol=1e-15)
        # the bound holds (all a_l > 0) and is attained at t = 1
        err = np.abs(np.exp(-2.0 * (1.0 - t)) - series)
        assert err.max() <= bound * (1 + 1e-9) + 1e-15
        assert err[-1] == pytest.approx(bound, rel=1e-8, abs=1e-15)


# ---- null laws -------------------------------------------------------------------------------------------------


def _area(collection):
    x, lower, upper = _band(collection)
    return np.trapezoid(upper - lower, x)


@pytest.mark.parametrize("test", ["rayleigh", "bakshaev"])
def test_null_distribution_asymptotic_shades_the_pvalue(test):
    Z = sample_uniform(200, q=3, rng=1)
    result = uniformity_test(Z, test)
    ax = P.plot_null_distribution(result, num=400)
    (density, observed) = ax.get_lines()
    x, y = np.asarray(density.get_xdata()), np.asarray(density.get_ydata())
    assert np.all(y >= 0)
    assert np.trapezoid(y, x) == pytest.approx(1.0, abs=5e-3)  # the law's whole mass is on the grid
    np.testing.assert_allclose(observed.get_xdata(), [result.statistic] * 2)
    assert f"p = {result.pvalue:.3g}" in observed.get_label()
    # the shaded tail has the p-value's mass (up to the grid)
    assert _area(ax.collections[0]) == pytest.approx(result.pvalue, abs=1e-2)
    assert ax.get_xlabel() == f"{test} statistic"


def test_null_distribution_draws_a_frozen_scipy_law_from_its_pdf():
    law = stats.chi2(5)
    result = SimpleNamespace(statistic=9.0, pvalue=float(law.sf(9.0)), test="rayleigh", null_distribution=law)
    ax = P.plot_null_distribution(result, num=300)
    density = ax.get_lines()[0]
    x = np.asarray(density.get_xdata())
    np.testing.assert_allclose(density.get_ydata(), law.pdf(x), rtol=1e-12)
    assert x[0] == pytest.approx(law.ppf(1e-4)) and x[-1] == pytest.approx(law.ppf(1 - 1e-4))
    assert _area(ax.collections[0]) == pytest.approx(law.sf(9.0), abs=2e-3)


def test_null_distribution_monte_carlo_is_a_density_histogram():
    Z = sample_uniform(50, q=4, rng=2)
    result = uniformity_test(Z, "rayleigh", method=stats.MonteCarloMethod(n_resamples=300, rng=3))
    ax = P.plot_null_distribution(result, bins=20)
    hist = ax.patches[:20]
    widths = np.array([p.get_width() for p in hist])
    heights = np.array([p.get_height() for p in hist])
    assert np.sum(widths * heights) == pytest.approx(1.0)
    assert "300 draws" in ax.get_legend().get_texts()[0].get_text()
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [result.statistic] * 2)


# ---- calibration and power -------------------------------------------------------------------------------------


def test_pvalue_calibration_plots_sorted_pvalues_against_uniform_quantiles():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=50)
    ax = P.plot_pvalue_calibration({"test": p}, band="pointwise")
    diagonal, line = ax.get_lines()
    np.testing.assert_array_equal(diagonal.get_xdata(), [0, 1])
    np.testing.assert_allclose(line.get_xdata(), np.arange(1, 51) / 51)
    np.testing.assert_array_equal(line.get_ydata(), np.sort(p))
    assert line.get_label() == "test"
    # the band covers each order statistic of uniform p-values with probability 0.95 (checked by simulation)
    _, lower, upper = _band(ax.collections[0])
    sims = np.sort(rng.uniform(size=(4000, 50)), axis=1)
    for i in (0, 24, 49):
        inside = np.mean((sims[:, i] >= lower[i]) & (sims[:, i] <= upper[i]))
        assert inside == pytest.approx(0.95, abs=0.015)


def test_pvalue_calibration_takes_several_samples_and_rejects_non_pvalues():
    ax = P.plot_pvalue_calibration([np.linspace(0, 1, 10), np.linspace(0, 1, 30)], labels=["a", "b"], rng=0)
    assert [line.get_label() for line in ax.get_lines()] == ["uniform", "a", "b"]
    assert "m = 30" in ax.collections[0].get_label()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        P.plot_pvalue_calibration([0.5, 1.5])
    with pytest.raises(ValueError, match="confidence"):
        P.plot_pvalue_calibration([0.5], confidence=1.0)
    with pytest.raises(ValueError, match="band"):
        P.plot_pvalue_calibration([0.5], band="ks")
    with pytest.raises(ValueError, match="scale"):
        P.plot_pvalue_calibration([0.5], scale="symlog")
    with pytest.raises(ValueError, match="n_resamples"):
        P.plot_pvalue_calibration([0.5], n_resamples=10)
    with pytest.raises(TypeError, match="rng"):
        P.plot_pvalue_calibration([0.5], rng="seed")


@pytest.mark.parametrize("m", [1, 50, 300])
def test_pvalue_calibration_simultaneous_band_holds_the_whole_line_with_the_stated_probability(m):
    # independent check: fresh uniform samples (not those that calibrated the band) lie entirely inside with
    # probability 0.95; tolerance 0.02 = about 3 sd of the binomial error (4000 samples) and the band's own
    # Monte Carlo error (2000 resamples)
    ax = P.plot_pvalue_calibration(np.linspace(0.01, 0.99, m), rng=1)
    x, lower, upper = _band(ax.collections[0])
    np.testing.assert_allclose(x, np.arange(1, m + 1) / (m + 1))
    assert "95% simultaneous band" in ax.collections[0].get_label()
    sims = np.sort(np.random.default_rng(2).uniform(size=(4000, m)), axis=1)
    inside = np.all((sims >= lower) & (sims <= upper), axis=1).mean()
    assert inside == pytest.approx(0.95, abs=0.02)
    if m == 1:  # one order statistic: the simultaneous band is the pointwise one, Beta(1, 1) quantiles
        np.testing.assert_allclose([lower[0], upper[0]], [0.025, 0.975], atol=0.008)
    else:  # wider than the pointwise band at every quantile, whose whole-line coverage is far below 0.95
        pointwise = P.plot_pvalue_calibration(np.linspace(0.01, 0.99, m), band="pointwise")
        _, plo, pup = _band(pointwise.collections[0])
        assert np.all(lower <= plo) and np.all(upper >= pup)
        assert np.all((sims >= plo) & (sims <= pup), axis=1).mean() < 0.8


def test_pvalue_calibration_on_log_axes_shows_the_smallest_quantiles():
    p = np.random.default_rng(3).uniform(size=300)
    ax = P.plot_pvalue_calibration({"t": p}, scale="log", rng=0)
    assert ax.get_xscale() == ax.get_yscale() == "log"
    low, high = ax.get_xlim()
    assert 0 < low <= 1 / 301 and high == 1
    assert ax.get_ylim()[0] <= min(p.min(), 1 / 301)


def test_power_curve_with_binomial_error_bars_and_level():
    kappa = np.array([0.0, 0.5, 1.0])
    power = {"rayleigh": np.array([0.05, 0.4, 0.9]), "bingham": np.array([0.06, 0.1, 0.2])}
    ax = P.plot_power_curve(kappa, power, n_replicates=100, level=0.05, xlabel="kappa")
    assert len(ax.containers) == 2
    (data_line, _caps, (bars,)) = ax.containers[0]
    np.testing.assert_array_equal(data_line.get_ydata(), power["rayleigh"])
    segments = bars.get_segments()
    half = np.array([(s[1][1] - s[0][1]) / 2 for s in segments])
    np.testing.assert_allclose(half, np.sqrt(power["rayleigh"] * (1 - power["rayleigh"]) / 100))
    level = [line for line in ax.get_lines() if line.get_label() == "level 0.05"]
    np.testing.assert_array_equal(level[0].get_ydata(), [0.05, 0.05])
    assert ax.get_ylim() == (0.0, 1.0) and ax.get_xlabel() == "kappa"
    # curves with equal rates stay visible on top of each other: distinct open markers, the later ones smaller
    first, second = (container[0] for container in ax.containers)
    assert first.get_marker() != second.get_marker() and first.get_fillstyle() == "none"
    assert first.get_markersize() > second.get_markersize()
    with pytest.raises(ValueError, match="shape"):
        P.plot_power_curve(kappa, [0.1, 0.2])


# ---- training runs ---------------------------------------------------------------------------------------------


def _write(path, rows):
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _fake_run(folder, scale=1.0):
    """A run folder with the two CSV files of the pretraining loop (its column order)."""
    folder.mkdir()
    steps = [
        {
            "step": s,
            "epoch": 1 + (s - 1) // 5,
            "loss": scale * 10 / s,
            "invariance": scale * 1 / s,
            "uniformity": scale * 0.1 / s,
            "lr": 0.1,
            "images_per_s": 300.0,
        }
        for s in range(1, 11)
    ]
    _write(folder / "metrics_step.csv", steps)
    epochs = [
        {
            "epoch": e,
            "step": 5 * e,
            "loss": 3.0 / e,
            "invariance": 0.3 / e,
            "uniformity": 0.03 / e,
            "lr": 0.1,
            "images_per_s": 300.0,
            "epoch_seconds": 1.0,
            "knn_val": 0.5 + 0.1 * e,
            "mmd2_uniform": 0.1 / e,
            "rayleigh": 3.0,
            "effective_rank": 10.0 * e,
            "embedding_std": "",  # a monitor that was not recorded
            "monitor_seconds": 0.5,
            "peak_rss_mb": 100.0,
        }
        for e in (1, 2)
    ]
    _write(folder / "metrics_epoch.csv", epochs)
    return folder


def test_training_curves_draw_terms_accuracy_and_monitors(tmp_path):
    run = _fake_run(tmp_path / "sfrik")
    axes = P.plot_training_curves(run)
    assert [a.get_title() for a in axes] == [
        "loss terms",
        "kNN accuracy (validation)",
        "effective rank of the embeddings",
        "MMD$^2$ of the embeddings to the uniform law",
    ]
    loss = {line.get_label(): line for line in axes[0].get_lines()}
    assert set(loss) == {"sfrik: loss", "sfrik: invariance", "sfrik: uniformity"}
    np.testing.assert_array_equal(loss["sfrik: invariance"].get_xdata(), np.arange(1, 11))
    np.testing.assert_allclose(loss["sfrik: invariance"].get_ydata(), 1 / np.arange(1, 11))
    assert axes[0].get_yscale() == "log" and axes[0].get_xlabel() == "step"
    assert all(a.get_ylabel() for a in axes), "every panel names its y axis"
    # sized for a page column: at most two panels a row
    assert axes[0].figure.get_size_inches()[0] <= 9.5
    (knn,) = axes[1].get_lines()
    np.testing.assert_array_equal(knn.get_xdata(), [1, 2])
    np.testing.assert_allclose(knn.get_ydata(), [0.6, 0.7])
    np.testing.assert_allclose(axes[2].get_lines()[0].get_ydata(), [10.0, 20.0])


def test_training_curves_overlay_runs_in_one_colour_each(tmp_path):
    axes = P.plot_training_curves(_fake_run(tmp_path / "a"), panels=["loss", "knn_val"], label="SFRIK")
    P.plot_training_curves(_fake_run(tmp_path / "b", scale=2.0), panels=["loss", "knn_val"], label="VICReg", ax=axes)
    colours = {}
    for a in axes:
        for line in a.get_lines():
            colours.setdefault(line.get_label().split(":")[0], set()).add(line.get_color())
    assert set(colours) == {"SFRIK", "VICReg"}
    assert all(len(c) == 1 for c in colours.values()) and colours["SFRIK"] != colours["VICReg"]


def test_training_curves_fall_back_to_epoch_means_and_reject_unknown_panels(tmp_path):
    run = _fake_run(tmp_path / "r")
    (run / "metrics_step.csv").unlink()
    (ax,) = P.plot_training_curves(run, panels=["loss"])
    assert {line.get_label() for line in ax.get_lines()} == {"r: loss", "r: invariance", "r: uniformity"}
    with pytest.raises(ValueError, match="embedding_std"):
        P.plot_training_curves(run, panels=["embedding_std"])
    with pytest.raises(ValueError, match="one axes per panel"):
        P.plot_training_curves(run, panels=["loss", "knn_val"], ax=ax)
    with pytest.raises(FileNotFoundError, match=r"metrics_epoch\.csv"):
        P.plot_training_curves(tmp_path)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"dotkernels\[plot\]"):
        P.plot_power_curve([0, 1], [0.1, 0.2])


_PLOTS = [
    "plot_null_distribution",
    "plot_power_curve",
    "plot_profile",
    "plot_pvalue_calibration",
    "plot_spectrum",
    "plot_training_curves",
]


@pytest.mark.parametrize("name", _PLOTS)
def test_docstring_is_complete_and_its_see_also_names_resolve(name):
    import importlib

    numpydoc_validate = pytest.importorskip("numpydoc.validate")
    result = numpydoc_validate.validate(f"dotkernels.plotting.{name}")
    codes = {code for code, _ in result["errors"]}
    assert not codes & {"PR01", "PR02", "RT01", "EX01", "GL08", "SA01"}, result["errors"]
    doc = numpydoc_validate.Validator(numpydoc_validate.get_doc_object(getattr(P, name))).doc
    for names, _ in doc["See Also"]:
        for target, _role in names:
            parts = target.split(".") if "." in target else ["dotkernels", "plotting", target]
            obj = None
            for split in range(len(parts), 0, -1):  # the longest importable module, then attributes
                try:
                    obj = importlib.import_module(".".join(parts[:split]))
                except ImportError:
                    continue
                for attr in parts[split:]:
                    obj = getattr(obj, attr)
                break
            assert obj is not None and callable(obj), f"{name}: See Also names {target}, which does not resolve"
