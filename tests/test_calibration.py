"""Calibration of the uniformity tests' p-values: sizes at small n for every test, the discrete statistics, CJ12's
tail and bound, the finite-n laws of method="auto", dotkernels.calibration itself, and the generated docs page.

Tolerances: a measured rejection rate r of m samples at level alpha is checked against alpha + z sd with
sd = sqrt(alpha (1 - alpha) (1/m + 1/B)) (B the Monte Carlo law's samples, infinite otherwise) and z the one-sided
normal quantile at 1e-3 divided by the number of cells checked together (Bonferroni): a valid p-value fails a check
with probability below 1e-3. The samples come from fixed seeds, so the tests are deterministic.
"""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats

from dotkernels import calibration as K
from dotkernels.sampling import sample_uniform, sample_vmf
from dotkernels.uniformity import CalibrationWarning, available_uniformity_tests, uniformity_battery, uniformity_test
from dotkernels.uniformity import _calibrated as A
from dotkernels.uniformity import _circular as C
from dotkernels.uniformity import _spherical as S

ROOT = Path(__file__).resolve().parents[1]


def _z(cells: int, level: float = 1e-3) -> float:
    return float(stats.norm.isf(level / cells))


def _uniform_samples(m: int, n: int, q: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [sample_uniform(n, q=q, rng=rng) for _ in range(m)]


# ------------------------------------------------------------------------------------------------ every test


def test_every_test_has_a_valid_default_pvalue_at_small_n():
    """All 53 tests (34 circular at q = 2, 19 spherical at q = 3) at n = 20, 600 samples, level 5 %."""
    res = K.size_study("all", n=20, q=[2, 3], alpha=0.05, n_samples=600, rng=20, z=_z(53))
    assert len(res.test) == 53
    assert sorted(res.test[:34]) == sorted(available_uniformity_tests(q=2))
    assert sorted(res.test[34:]) == sorted(available_uniformity_tests(q=3))
    bad = [(t, q, r) for t, q, r, f in zip(res.test, res.q, res.rejection_rate, res.anti_conservative) if f]
    assert not bad, bad
    # the tests without asymptotic law get the finite-n Monte Carlo law by default
    methods = dict(zip(zip(res.test, res.q.tolist()), res.method))
    for name, q in (("Cressie", 2), ("FG01", 2), ("CCF09", 2), ("CCF09", 3), ("Pycke", 3), ("Stereo", 3)):
        assert methods[(name, q)].startswith("Monte Carlo"), name
    assert methods[("CJ12", 3)] == "exact bound" and methods[("Kuiper", 2)].startswith("Monte Carlo")
    assert methods[("Rayleigh", 3)] == "asymptotic"


def test_the_study_counts_the_reported_pvalues():
    """The bisection over sorted statistics gives the count of the battery's own p-values, for a continuous law
    (Imhof), a discrete one (Hodges-Ajne), a lower tail (CJ12's bound) and a Monte Carlo law (Cressie)."""
    for q, names in ((2, ["PAD", "Hodges_Ajne", "Cressie", "Num_uncover"]), (3, ["CJ12", "Bakshaev"])):
        samples = _uniform_samples(60, 15, q, seed=q)
        reported = {name: [] for name in names}
        statistics = {name: [] for name in names}
        laws = {}
        for Z in samples:
            res = uniformity_battery(Z, names)
            for name in names:
                reported[name].append(res[name].pvalue)
                statistics[name].append(res[name].statistic)
                laws[name] = res[name].null_distribution
        for name in names:
            levels = (0.05, 0.2, 0.5, 0.8)
            counts = K._rejections(laws[name], name in A.LOWER_TAIL, np.array(statistics[name]), levels, {})
            assert counts == [int(np.sum(np.array(reported[name]) <= a)) for a in levels], name


# ------------------------------------------------------------------------------------------------ discrete statistics


def test_hodges_ajne_reports_p_h_at_least_h_exact_size():
    """P(H >= h): the exact size of the reported 5 % test at n = 20 is 0.030 (P(H > h), sphunif's, gives 0.111).
    The law's probabilities are checked by simulating H, and the reported p-values on samples against them."""
    n = 20
    law = uniformity_battery(sample_uniform(n, q=2, rng=0), ["Hodges_Ajne"])["Hodges_Ajne"].null_distribution
    support = np.arange(n // 2, n + 1)
    at_least = np.array([C.hodges_ajne_sf(k, n) for k in support])
    pmf = at_least - np.append(at_least[1:], 0.0)
    reported = np.array([A.pvalue_of(law, k) for k in support])
    np.testing.assert_allclose(reported, at_least, rtol=1e-12)
    size_ge = float(np.sum(pmf[reported <= 0.05]))
    size_gt = float(np.sum(pmf[np.append(at_least[1:], 0.0) <= 0.05]))
    assert size_ge == pytest.approx(0.0300, abs=5e-4) and size_gt == pytest.approx(0.1110, abs=5e-4)
    # the pmf against simulated counts (independent of the formula)
    rng = np.random.default_rng(11)
    h = np.array([C.hodges_ajne(rng.uniform(0, 2 * np.pi, n)) for _ in range(6000)])
    for k, p in zip(support, at_least, strict=True):
        assert abs(np.mean(h >= k) - p) < 4.5 * math.sqrt(p * (1 - p) / h.size) + 1e-12, k
    # the p-values uniformity_test reports on uniform samples: rate at 5 % near 0.030, never the 0.111 of P(H > h)
    p = np.array([uniformity_test(Z, "Hodges_Ajne").pvalue for Z in _uniform_samples(1000, n, 2, seed=12)])
    assert abs(np.mean(p <= 0.05) - size_ge) < 4.5 * math.sqrt(size_ge * (1 - size_ge) / p.size)


def test_discrete_statistics_have_valid_pvalues_at_small_n():
    """Num_uncover (normal law, continuity-corrected) and Cressie (Monte Carlo counting T* >= T) at n = 10, 20."""
    res = K.size_study(["Num_uncover", "Cressie", "Range"], n=[10, 20], q=2, n_samples=1500, rng=3, z=_z(18))
    assert not res.anti_conservative.any(), res.table()


# ------------------------------------------------------------------------------------------------ CJ12


def test_cj12_union_bound_formula():
    """P((X^T Y)^2 >= l^2) of two uniform points: 1 - l at q = 3, and by quadrature of the projected density."""
    for q in (3, 4, 10, 50):
        for ell in (0.05, 0.3, 0.9, 0.999):
            law = A.CJ12Bound(2, q, 3)  # one pair: the bound is the exact probability
            statistic = q * math.log1p(-(ell**2)) + law.centring
            density = lambda t, q=q: S.projected_pdf(t, q=q)  # noqa: E731
            exact = 2 * integrate.quad(density, ell, 1.0, epsabs=0, epsrel=1e-12)[0]
            assert law.pvalue(statistic) == pytest.approx(exact, rel=1e-9), (q, ell)
            if q == 3:
                assert law.pvalue(statistic) == pytest.approx(1 - ell, rel=1e-12)


@pytest.mark.parametrize("q", [3, 10, 50])
def test_cj12_default_pvalue_size(q):
    """Size <= 0.05 + binomial error at n = 30, 100, 200 (1000 samples each); the bound's size is at least
    alpha - alpha^2/2 (second Bonferroni inequality, pairwise independent events) up to the same error."""
    res = K.size_study(["CJ12"], n=[30, 100, 200], q=q, alpha=0.05, n_samples=1000, rng=q, z=_z(9))
    assert set(res.method) == {"exact bound"}
    sd = math.sqrt(0.05 * 0.95 / 1000)
    for rate in res.rejection_rate:
        assert 0.05 - 0.05**2 / 2 - _z(9) * sd <= rate <= 0.05 + _z(9) * sd


def test_cj12_detects_concentration():
    """Power against von Mises-Fisher laws at n = 100, q = 10 (the wrong, upper tail had none)."""
    alts = {
        "vMF10": lambda n, q, rng: sample_vmf(n, mu=np.eye(q)[0], kappa=10.0, rng=rng),
        "vMF50": lambda n, q, rng: sample_vmf(n, mu=np.eye(q)[0], kappa=50.0, rng=rng),
    }
    res = K.power_study(["CJ12"], n=100, q=10, alternatives=alts, n_samples=200, rng=1)
    power = dict(zip(res.alternative, res.power))
    assert power["vMF10"] > 0.3 and power["vMF50"] > 0.99
    # sphunif's upper tail on the same laws: no power
    rng = np.random.default_rng(2)
    upper = [1 - S.cj12_cdf(S.cj12(sample_vmf(100, mu=np.eye(10)[0], kappa=10.0, rng=rng))) for _ in range(100)]
    assert np.mean(np.array(upper) <= 0.05) == 0.0


# ------------------------------------------------------------------------------------------------ method="auto"


def test_poisson_at_large_q_gets_a_finite_n_monte_carlo_pvalue():
    Z = sample_uniform(20, q=60, rng=4)
    res = uniformity_battery(Z, ["Poisson", "Rayleigh"])
    assert res["Poisson"].method.startswith("Monte Carlo") and 0 < res["Poisson"].pvalue <= 1
    assert "degenerate" in res.notes["Poisson"]
    single = uniformity_test(Z, "poisson")
    assert single.pvalue == res["Poisson"].pvalue  # the same cached law
    asym = uniformity_battery(Z, ["Poisson"], method="asymptotic")
    assert math.isnan(asym["Poisson"].pvalue) and "degenerate" in asym.notes["Poisson"]


def test_auto_switches_to_monte_carlo_below_the_measured_n_and_caches_it():
    small, large = sample_uniform(20, q=2, rng=5), sample_uniform(60, q=2, rng=5)
    a = uniformity_test(small, "Kuiper")
    assert a.method.startswith("Monte Carlo") and a.null_distribution.n_resamples == A.DEFAULT_RESAMPLES
    assert uniformity_test(large, "Kuiper").method == "asymptotic"
    b = uniformity_test(small, "Kuiper")
    assert b.null_distribution is a.null_distribution and b.pvalue == a.pvalue  # cached, deterministic
    expected = (1 + np.sum(a.null_distribution.statistics >= a.statistic)) / (1 + A.DEFAULT_RESAMPLES)
    assert a.pvalue == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(("n", "q", "m"), [(7, 2, 70), (12, 5, 3)])
def test_cached_monte_carlo_laws_keep_their_stream(n, q, m):
    """The finite-n laws of method="auto" (drawn in batches) and the size study's sampler (one sample at a time)
    share one sampler; the cached laws' samples are, bit for bit, one-by-one normalised Gaussian draws from the
    seed of (n, q), so a change of the batch size or the sampler cannot change a cached law unseen."""
    from dotkernels.uniformity import _specs

    requests = [(_specs.REGISTRY["rayleigh"], {"modified": False}), (_specs.REGISTRY["bingham"], {})]
    rng = np.random.default_rng([A._SEED, n, q])
    expected = np.empty((m, len(requests)))
    for i in range(m):
        Z = rng.standard_normal((n, q))
        Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
        expected[i] = _specs.battery_statistics(_specs.Sample(Z), requests)
    np.testing.assert_array_equal(A._simulate(requests, n, q, m), expected)
    rng, ref = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(3):
        Z = ref.standard_normal((n, q))
        np.testing.assert_array_equal(K._uniform(n, q, rng), Z / np.linalg.norm(Z, axis=1, keepdims=True))


def test_monte_carlo_pvalues_count_the_rejecting_tail_in_test_and_battery():
    """method=MonteCarloMethod: CJ12 (small values reject) gets (1 + #{T* <= t}) / (1 + B), the others
    (1 + #{T* >= t}) / (1 + B), counted here from the law's own simulated statistics, in uniformity_test and in
    uniformity_battery alike."""
    from scipy.stats import MonteCarloMethod

    Z = sample_uniform(25, q=4, rng=11)
    battery = uniformity_battery(Z, ["CJ12", "Rayleigh"], method=MonteCarloMethod(n_resamples=199, rng=2))
    for name, lower in [("CJ12", True), ("Rayleigh", False)]:
        single = uniformity_test(Z, name, method=MonteCarloMethod(n_resamples=199, rng=2))
        for res in (single, battery[name]):
            sims = np.asarray(res.null_distribution.statistics)
            count = np.sum(sims <= res.statistic) if lower else np.sum(sims >= res.statistic)
            assert sims.size == 199 and res.pvalue == pytest.approx((1 + count) / 200, rel=1e-15)


def test_wrapped_laws_reach_the_wrapped_law():
    """LowerTail and ContinuityCorrected change the p-value only; cdf, sf, ppf, mean are the wrapped law's."""
    import copy
    import pickle

    law = stats.norm(1.0, 2.0)
    for wrapped, p in [(A.LowerTail(law), law.cdf(0.3)), (A.ContinuityCorrected(law, 0.25), law.sf(0.05))]:
        assert wrapped.pvalue(0.3) == p
        assert wrapped.cdf(0.7) == law.cdf(0.7) and wrapped.ppf(0.2) == law.ppf(0.2) and wrapped.mean() == 1.0
        with pytest.raises(AttributeError):
            wrapped.no_such_method
        for clone in (copy.copy(wrapped), pickle.loads(pickle.dumps(wrapped))):
            assert clone.pvalue(0.3) == p


def test_auto_warns_where_monte_carlo_is_too_costly():
    """Poisson (rho = 0.5) was measured anti-conservative at q = 10; at n = 1000 the finite-n law costs too much."""
    Z = sample_uniform(1000, q=10, rng=6)
    with pytest.warns(CalibrationWarning, match=r"Poisson: .*size 0\.071 at the 5% level.*MonteCarloMethod"):
        res = uniformity_test(Z, "poisson")
    assert res.method == "asymptotic"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        uniformity_test(Z, "poisson", method="asymptotic")  # asked for: no warning


def test_rayleigh_hd_uses_the_chi_square_law():
    """Documented difference from sphunif (normal law): p = P(chi^2_q >= q + sqrt(2q) x)."""
    Z = sample_uniform(30, q=3, rng=7)
    res = uniformity_test(Z, "Rayleigh_HD")
    r = uniformity_test(Z, "Rayleigh").statistic
    assert res.pvalue == pytest.approx(stats.chi2.sf(r, 3), rel=1e-10)
    assert res.statistic == pytest.approx((r - 3) / math.sqrt(6), rel=1e-12)


# ------------------------------------------------------------------------------------------------ the module


def test_size_study_flags_an_anti_conservative_pvalue():
    """A p-value at half its value (size 2 alpha) is flagged; the standard error is the binomial one."""
    ok = lambda Z: uniformity_test(Z, "Rayleigh").pvalue  # noqa: E731
    res = K.size_study({"ok": ok, "halved": lambda Z: 0.5 * ok(Z)}, n=20, q=3, n_samples=600, rng=8)
    flags = dict(zip(zip(res.test, res.alpha.tolist()), res.anti_conservative))
    assert flags[("halved", 0.05)] and flags[("halved", 0.1)] and not flags[("ok", 0.05)]
    np.testing.assert_allclose(res.standard_error, np.sqrt(res.alpha * (1 - res.alpha) / 600))
    assert res.z == pytest.approx(_z(6, 0.05))
    back = K.SizeStudyResult.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.rows() == res.rows()
    with pytest.raises(ValueError, match="alpha"):
        K.size_study(["Rayleigh"], n=20, q=3, alpha=1.5, n_samples=10)
    with pytest.raises(ValueError, match="method"):
        K.size_study(["Rayleigh"], n=20, q=3, n_samples=10, method="imhof")
    with pytest.raises(ValueError, match="unknown test"):
        K.size_study(["Rayleygh"], n=20, q=3, n_samples=10)


def test_monitors_in_the_calibration():
    pytest.importorskip("torch")
    from dotkernels_ssl.pretraining.monitors import monitor_pvalues, rayleigh_test

    monitors = monitor_pvalues()
    Z = sample_uniform(40, q=5, rng=9)
    assert monitors["rayleigh_p"](Z) == rayleigh_test(Z).pvalue
    assert rayleigh_test(Z).pvalue == pytest.approx(uniformity_test(Z, "rayleigh").pvalue, rel=1e-12)
    res = K.size_study(monitors, n=30, q=[3, 10], n_samples=250, rng=10, z=_z(12))
    assert not any(f for t, f in zip(res.test, res.anti_conservative) if t == "rayleigh_p")


def test_plot_size_study_draws_the_rates():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from dotkernels.plotting import plot_size_study

    res = K.size_study(["Rayleigh", "Bingham", "CJ12"], n=[20, 50], q=3, n_samples=100, rng=0)
    ax = plot_size_study(res, alpha=0.05)
    keep = res.alpha == 0.05
    for n in (20, 50):
        coll = next(c for c in ax.collections if c.get_label() == f"n = {n}")
        drawn = np.sort(coll.get_offsets()[:, 1])
        np.testing.assert_allclose(drawn, np.sort(res.rejection_rate[keep & (res.n == n)]))
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["Bingham (q=3)", "CJ12 (q=3)", "Rayleigh (q=3)"]
    with pytest.raises(ValueError, match="alpha"):
        plot_size_study(res, alpha=0.2)


# ------------------------------------------------------------------------------------------------ the docs page


def _bench():
    spec = importlib.util.spec_from_file_location("bench_calibration", ROOT / "benchmarks" / "bench_calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_page_is_generated_from_the_committed_results():
    bench = _bench()
    data = json.loads(bench.RESULTS.read_text())
    assert bench.PAGE.read_text() == bench.render(data)
    # the committed study covers every test at every n of the grid, three levels, both settings
    cells = data["size"]["cells"]
    tests = {(c["test"], c["q"] == 2) for c in cells if not c["test"].startswith("dotkernels_ssl")}
    assert len(tests) == 53
    assert {c["n"] for c in cells} == {10, 20, 50, 200} and {c["alpha"] for c in cells} == {0.01, 0.05, 0.1}
    assert {c["setting"] for c in cells} == {"auto", "asymptotic"}
