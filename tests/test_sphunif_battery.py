"""Many uniformity tests in one pass: the battery against the one-test computations and sphunif; null calibration
and power of the tests added from sphunif; the samplers of the alternatives."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.stats import MonteCarloMethod

from dotkernels import alternatives as A
from dotkernels.sampling import sample_uniform, sample_vmf
from dotkernels.uniformity import _circular as C
from dotkernels.uniformity import _spherical as S
from dotkernels.uniformity import uniformity_battery, uniformity_test

DATA = Path(__file__).parent / "data" / "sphunif"


def _golden():
    out = {}
    with open(DATA / "golden.csv", newline="") as f:
        for row in csv.DictReader(f):
            out[(row["dataset"], row["test"])] = float(row["statistic"]) if row["statistic"] != "NA" else math.nan
    return out


GOLDEN = _golden()
# sphunif's linear interpolation of these kernels (see test_sphunif_spherical.py)
DISCRETISED = {"PCvM", "PAD", "PRt"}


def _data(ds):
    if ds.startswith("q100"):
        return np.load(DATA / f"{ds}.npy")
    return np.loadtxt(DATA / f"{ds}.csv", skiprows=1, delimiter=",")


def _dirs(q):
    if q == 100:
        return np.load(DATA / "CCF09_dirs_q100.npy")
    return np.loadtxt(DATA / f"CCF09_dirs_q{q}.csv", skiprows=1, delimiter=",")


@pytest.mark.parametrize("ds", ["q2_n50_unif", "q2_n50_vmf", "q3_n100_vmf", "q10_n200_unif", "q100_n300_vmf"])
def test_battery_all_matches_sphunif(ds):
    q = int(ds.split("_")[0][1:])
    res = uniformity_battery(_data(ds), "all", directions=_dirs(q), method="asymptotic")
    assert len(res) == (34 if q == 2 else 19)  # sphunif's avail_cir_tests / avail_sph_tests
    if q == 100:  # psi_rho at rho = 0.5 is ~1e-30 times its constant: sphunif's value is rounding noise
        assert math.isnan(res["Poisson"].pvalue) and "degenerate" in res.notes["Poisson"]
    for name, entry in res.items():
        if q == 100 and name == "Poisson":
            continue
        ref = GOLDEN[(ds, name)]
        rel = 2e-3 if (name in DISCRETISED and not (q == 3 and name != "PAD") and q > 2) else 1e-10
        assert entry.statistic == pytest.approx(ref, rel=rel, abs=1e-12), name


@pytest.mark.parametrize("q", [2, 3, 10])
def test_battery_statistics_equal_one_by_one_calls(q):
    """The shared one-pass computation gives the statistics of separate uniformity_test calls (kernel tests) and of
    the separate statistic functions, to rounding."""
    Z = sample_vmf(300, mu=np.eye(q)[0], kappa=0.5, rng=q)
    kernel_tests = ["rayleigh", "bingham", "ajne", "gine_gn", "gine_fn", "bakshaev", "riesz", "poisson", "softmax"]
    res = uniformity_battery(Z, kernel_tests, block_size=64)
    for name in kernel_tests:
        single = uniformity_test(Z, name)
        assert res[name].statistic == pytest.approx(single.statistic, rel=1e-10, abs=1e-12), name
        assert res[name].pvalue == pytest.approx(single.pvalue, rel=1e-8, abs=1e-14), name
    if q > 2:
        res = uniformity_battery(Z, ["PCvM", "PAD", "PRt", "CJ12", "Rayleigh_HD", "Pycke"], block_size=37)
        for name in ("pcvm", "pad", "prt"):
            assert res[name].statistic == pytest.approx(S.projected_statistic(Z, name), rel=1e-11)
        assert res["cj12"].statistic == pytest.approx(S.cj12(Z), rel=1e-13)
        assert res["pycke"].statistic == pytest.approx(S.pycke_sphere(Z), rel=1e-11)


def test_battery_names_and_parameters():
    th = np.loadtxt(DATA / "q2_n50_unif.csv", skiprows=1, delimiter=",")
    res = uniformity_battery(th, ["WATSON_1976", "hodges_ajne", "Rothman", "PRt", "Cressie"], rothman_t=0.25, t=0.5)
    assert list(res) == ["Watson_1976", "Hodges_Ajne", "Rothman", "PRt", "Cressie"]
    assert res["rothman"].parameters == {"t": 0.25} and res["prt"].parameters == {"t": 0.25}
    assert res["cressie"].parameters == {"t": 0.5} and res["cressie"].statistic == C.hodges_ajne(C.angles(th))
    # no asymptotic law: the default is the cached finite-n Monte Carlo law, "asymptotic" gives NaN
    assert res["Cressie"].method.startswith("Monte Carlo") and 0 < res["Cressie"].pvalue <= 1
    only = uniformity_battery(th, ["Cressie"], t=0.5, method="asymptotic")
    assert math.isnan(only["Cressie"].pvalue) and "MC only" in str(only)
    statistic, _ = res["Watson_1976"]
    assert statistic == pytest.approx(GOLDEN[("q2_n50_unif", "Watson_1976")], rel=1e-12)
    with pytest.raises(TypeError, match="no requested test takes"):
        uniformity_battery(th, ["Kuiper"], kappa=2.0)
    with pytest.raises(ValueError, match="unknown test"):
        uniformity_battery(th, ["Kuyper"])
    with pytest.raises(ValueError, match="circular test"):
        uniformity_battery(sample_uniform(10, q=3, rng=0), ["Kuiper"])
    with pytest.raises(ValueError, match="needs q >= 3"):
        uniformity_battery(th, ["CJ12"])
    with pytest.raises(ValueError, match="t must lie"):
        uniformity_battery(th, ["Rothman"], t=1.5)


def test_battery_monte_carlo_shares_the_samples():
    """One set of simulated samples serves every test: the p-values equal those of one-test runs on the same
    samples, and the Monte Carlo p-value of a test with an asymptotic law is close to the asymptotic one."""
    th = np.loadtxt(DATA / "q2_n50_vmf.csv", skiprows=1, delimiter=",")
    tests = ["Cressie", "FG01", "Kuiper", "Watson", "Rao"]
    res = uniformity_battery(th, tests, method=MonteCarloMethod(n_resamples=400, rng=3))
    for name in tests:
        one = uniformity_battery(th, [name], method=MonteCarloMethod(n_resamples=400, rng=3))
        assert one[name].pvalue == res[name].pvalue
        assert res[name].null_distribution.n_resamples == 400
    asym = uniformity_battery(th, ["Watson"])["Watson"].pvalue
    assert abs(res["Watson"].pvalue - asym) < 4.5 * math.sqrt(asym * (1 - asym) / 400) + 0.01
    # sphunif's Monte Carlo p-values (M = 2000) of the tests without asymptotic law, within binomial error;
    # sphunif counts simulated values > x (for the discrete Cressie count that is P(T > x), ours is P(T >= x))
    for name, ref in (("Cressie", 0.1025), ("FG01", 0.081)):
        sims = res[name].null_distribution.statistics
        p = float(np.mean(sims > res[name].statistic))
        assert abs(p - ref) < 4.5 * math.sqrt(ref * (1 - ref) * (1 / 400 + 1 / 2000)), name


def test_battery_table_and_mapping():
    res = uniformity_battery(sample_uniform(60, q=4, rng=2), ["Rayleigh", "PCvM", "CCF09"], rng=0)
    text = str(res)
    assert text.splitlines()[0].startswith("Uniformity tests on S^3: n = 60, q = 4")
    assert all(name in text for name in ("Rayleigh", "PCvM", "CCF09"))
    assert set(res.statistics) == {"Rayleigh", "PCvM", "CCF09"} and len(res.pvalues) == 3
    assert res["ccf09"].parameters["directions"].shape == (50, 4)  # drawn from rng


# ------------------------------------------------------------------------------------------------ calibration


CALIBRATED = [
    (2, ["Kuiper", "Watson", "Watson_1976", "Hermans_Rasson", "Pycke_q", "Rothman", "PAD", "PCvM", "Pycke"]),
    (3, ["PCvM", "PAD", "PRt"]),
    (5, ["PCvM", "PAD", "PRt", "Stein", "Stereo"]),
]


@pytest.mark.parametrize(("q", "names"), CALIBRATED)
def test_null_calibration(q, names):
    """p-values of uniform samples (n = 100) are uniform: KS test for each test, 200 samples."""
    rng = np.random.default_rng(100 + q)
    pvals = {name: [] for name in names}
    for _ in range(200):
        res = uniformity_battery(sample_uniform(100, q=q, rng=rng), names)
        for name in names:
            pvals[name].append(res[name].pvalue)
    for name in names:
        assert stats.kstest(pvals[name], "uniform").pvalue > 1e-3, name


def test_spacing_tests_calibration_is_asymptotic():
    """The spacing tests' normal/Gumbel laws are first-order: at n = 400 their 5 % tests reject 2-9 %."""
    rng = np.random.default_rng(7)
    names = ["Rao", "Greenwood", "Gini", "Gini_squared", "Log_gaps", "Vacancy", "Max_uncover", "Range"]
    rej = dict.fromkeys(names, 0)
    m = 200
    for _ in range(m):
        res = uniformity_battery(sample_uniform(400, q=2, rng=rng), names)
        for name in names:
            rej[name] += res[name].pvalue < 0.05
    for name in names:
        assert 0.015 <= rej[name] / m <= 0.10, (name, rej[name] / m)


def test_cj12_calibration_in_its_regime():
    """Regime 1 (log n / q -> 0): the extreme-value law's lower tail is uniform under the null (n = 20, q = 3000,
    200 samples); the default union bound is valid and nearly exact there (size in [a - a^2/2, a])."""
    rng = np.random.default_rng(8)
    samples = [sample_uniform(20, q=3000, rng=rng) for _ in range(200)]
    p = [uniformity_battery(Z, ["CJ12"], regime=1, method="asymptotic")["CJ12"].pvalue for Z in samples]
    assert stats.kstest(p, "uniform").pvalue > 1e-3
    bound = np.array([uniformity_battery(Z, ["CJ12"], regime=1)["CJ12"].pvalue for Z in samples])
    # the bound is >= the limit law's lower tail to first order: it sits below the diagonal only by rounding
    assert stats.kstest(bound, "uniform", alternative="greater").pvalue > 1e-3


# ------------------------------------------------------------------------------------------------ power


def test_power_of_the_circular_tests():
    rng = np.random.default_rng(9)
    n = 200
    unimodal = C.angles(A.sample_cauchy_like(n, mu=[1.0, 0.0], kappa=2.0, rng=rng))
    axial = C.angles(A.sample_antipodal_vmf(n, mu=[1.0, 0.0], kappa=4.0, rng=rng))
    res = uniformity_battery(unimodal, "all", method="asymptotic")
    for name in (
        "Kuiper",
        "Watson",
        "Watson_1976",
        "Hodges_Ajne",
        "Hermans_Rasson",
        "Pycke_q",
        "Rothman",
        "PAD",
        "PCvM",
        "Gini",
        "Gini_squared",
        "Greenwood",
        "Log_gaps",
        "Max_uncover",
        "Rao",
        "Vacancy",
    ):
        assert res[name].pvalue < 1e-3, name
    assert res["Range"].pvalue < 0.05  # the largest gap alone is a weak test
    res = uniformity_battery(axial, ["Kuiper", "Watson", "Hermans_Rasson", "Pycke", "PAD"])
    for name in res:
        assert res[name].pvalue < 1e-3, name
    mc = uniformity_battery(unimodal, ["Cressie", "FG01", "CCF09"], method=MonteCarloMethod(n_resamples=199, rng=1))
    for name in mc:
        assert mc[name].pvalue == 0.005, name  # no simulated uniform sample reaches the observed statistic


@pytest.mark.parametrize("q", [3, 6])
def test_power_of_the_spherical_tests(q):
    rng = np.random.default_rng(q)
    Z = sample_vmf(150, mu=np.eye(q)[0], kappa=1.5, rng=rng)
    res = uniformity_battery(Z, ["PCvM", "PAD", "PRt", "Rayleigh_HD", "CCF09"], rng=0)
    for name in ("PCvM", "PAD", "PRt", "Rayleigh_HD"):
        assert res[name].pvalue < 1e-4, name
    mc = uniformity_battery(Z, ["Pycke", "CCF09"], method=MonteCarloMethod(n_resamples=99, rng=1), rng=0)
    assert mc["Pycke"].pvalue == 0.01 and mc["CCF09"].pvalue == 0.01


def test_power_of_stein_and_stereo():
    """Stein against a vMF law; Stereo with a = 1 (even degrees) against sphunif's antipodal-dependence
    alternative, which pairwise tests of odd degrees cannot see."""
    Z = sample_vmf(150, mu=np.eye(3)[0], kappa=1.0, rng=0)
    assert uniformity_battery(Z, ["Stein"])["Stein"].pvalue < 1e-5
    X = A.sample_antipodal_dependent(200, q=5, rng=0)
    res = uniformity_battery(X, ["Stereo", "Rayleigh"], a=1.0)
    assert res["Stereo"].pvalue < 1e-3 and res["Rayleigh"].pvalue > 0.5


def test_cj12_rejects_concentration_not_regularity():
    """Documented difference from sphunif: CJ12's statistic falls as the largest coherence rises, so the p-value is
    the lower tail. sphunif's upper tail 1 - F(t) rejects a regular (orthogonal) sample and never a concentrated one;
    ours rejects the concentrated one and not the regular one, with the limit law and with the default bound."""
    q, n = 400, 30
    rng = np.random.default_rng(4)
    Z = np.linalg.qr(rng.standard_normal((q, n)))[0].T  # orthonormal rows: max |X_i^T X_j| = 0
    Z = Z + 1e-3 * rng.standard_normal(Z.shape)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    vmf = sample_vmf(n, mu=np.eye(q)[0], kappa=400.0, rng=rng)
    for method in ("auto", "asymptotic"):
        regular = uniformity_battery(Z, ["CJ12"], method=method)["CJ12"]
        concentrated = uniformity_battery(vmf, ["CJ12"], method=method)["CJ12"]
        assert regular.pvalue > 0.5 and concentrated.pvalue < 1e-6, method
        # sphunif's p-value 1 - F(t) is the other tail
        assert 1.0 - S.cj12_cdf(regular.statistic) < 1e-6 and 1.0 - S.cj12_cdf(concentrated.statistic) > 0.99
    assert uniformity_battery(sample_uniform(n, q=q, rng=rng), ["CJ12"])["CJ12"].pvalue > 1e-3


# ------------------------------------------------------------------------------------------------ alternatives


def test_rayleigh_finite_n_modification():
    """At n = 10 the chi-square tail of Rayleigh's statistic is conservative (1 % test: ~0.65 %); Jupp's (2001)
    modification brings it to the nominal level (simulated exactly: 60000 samples, binomial tolerance)."""
    rng = np.random.default_rng(0)
    n, q, m = 10, 3, 60000
    X = rng.standard_normal((m, n, q))
    X /= np.linalg.norm(X, axis=2, keepdims=True)
    r = n * q * np.sum(X.mean(axis=1) ** 2, axis=1)
    jupp = (1 - 1 / (2 * n)) * r + r**2 / (2 * n * (q + 2))
    c = stats.chi2.isf(0.01, q)
    se = math.sqrt(0.01 * 0.99 / m)
    assert np.mean(r > c) < 0.01 - 4 * se
    assert abs(np.mean(jupp > c) - 0.01) < 4.5 * se
    # the battery's modified=True is this statistic
    res = uniformity_battery(X[0], ["Rayleigh"], modified=True)
    assert res["Rayleigh"].statistic == pytest.approx(jupp[0], rel=1e-13)
    assert res["Rayleigh"].pvalue == pytest.approx(stats.chi2.sf(jupp[0], q), rel=1e-12)


def test_sample_vmf_mixture_and_antipodal_moments():
    rng = np.random.default_rng(1)
    kappa, q = 10.0, 3
    X = A.sample_vmf_mixture(20000, kappa=kappa, q=q, rng=rng)
    # |X_j| for the component about +-e_j: E|X^T mu| = coth(kappa) - 1/kappa; each axis chosen w.p. 1/q
    a = np.max(np.abs(X), axis=1)
    assert abs(a.mean() - (1 / math.tanh(kappa) - 1 / kappa)) < 0.01
    assert np.all(np.abs(X.mean(axis=0)) < 0.03)  # axial: centred
    Y = A.sample_antipodal_vmf(20000, mu=[0, 0, 1], kappa=kappa, rng=rng)
    assert abs(np.abs(Y[:, 2]).mean() - (1 / math.tanh(kappa) - 1 / kappa)) < 0.005
    assert abs(Y[:, 2].mean()) < 0.02


def test_sample_acg_second_moment():
    """E[X X^T] of the ACG with shape diag(1, .., 1 + kappa): check by Monte Carlo against quadrature."""
    rng = np.random.default_rng(2)
    q, kappa = 4, 3.0
    X = A.sample_acg(40000, q=q, kappa=kappa, rng=rng)
    # E[x_q^2] = E[(1+kappa) g_q^2 / ((1+kappa) g_q^2 + sum_{j<q} g_j^2)], g ~ N(0, I): 1-d quadrature via Beta
    b = stats.beta(0.5, 0.5 * (q - 1))
    ref = b.expect(lambda u: (1 + kappa) * u / ((1 + kappa) * u + (1 - u)))
    assert abs(np.mean(X[:, -1] ** 2) - ref) < 4.5 * np.std(X[:, -1] ** 2) / math.sqrt(X.shape[0])


@pytest.mark.parametrize("q", [2, 3, 7])
def test_tangent_normal_laws_match_their_projected_densities(q):
    """V = mu^T X of the small-circle and Cauchy-like samplers against the density h(v)(1 - v^2)^{(q-3)/2}: KS."""
    rng = np.random.default_rng(q)
    mu = np.eye(q)[-1]
    cases = [
        (A.sample_small_circle(3000, mu=mu, kappa=8.0, nu=0.4, rng=rng), lambda v: np.exp(-8.0 * (v - 0.4) ** 2)),
        (
            A.sample_cauchy_like(3000, mu=mu, kappa=3.0, rng=rng),
            lambda v: (1 + A.cauchy_rho(3.0) ** 2 - 2 * A.cauchy_rho(3.0) * v) ** (-q / 2),
        ),
    ]
    # the law of the angle arccos(V): density h(cos theta) sin^{q-2}(theta) on [0, pi]
    grid = np.linspace(0, math.pi, 20001)
    for X, h in cases:
        assert np.allclose(np.linalg.norm(X, axis=1), 1.0)
        dens = h(np.cos(grid)) * np.sin(grid) ** (q - 2)
        cdf = np.concatenate([[0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
        cdf /= cdf[-1]
        angle = np.arccos(np.clip(X @ mu, -1, 1))
        assert stats.kstest(angle, lambda v, c=cdf: np.interp(v, grid, c)).pvalue > 1e-3
        # the tangent part is uniform: its mean is zero
        assert np.all(np.abs((X - np.outer(X @ mu, mu)).mean(axis=0)) < 0.05)


@pytest.mark.parametrize("kappa", [0.5, 3.0, 50.0, 500.0])
def test_tangent_normal_quantile_against_the_exact_vmf_quantile(kappa):
    """On S^2 the vMF projection has F(v) = (e^{kappa v} - e^{-kappa}) / (e^{kappa} - e^{-kappa})."""
    rng = np.random.default_rng(0)
    u = rng.random(200)
    X = A.sample_tangent_normal(200, mu=[0, 0, 1], log_density=lambda v: kappa * v, rng=np.random.default_rng(0))
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0)
    # the sampler draws u first: V = F^{-1}(1 - u)
    w = 1 - u
    exact = 1 + np.log(w + (1 - w) * np.exp(-2 * kappa)) / kappa
    assert np.max(np.abs(X[:, 2] - exact)) < 1e-7


def test_wrapped_cauchy_at_q2():
    """At q = 2 the Cauchy-like law is the wrapped Cauchy with E[cos] = rho, E[cos 2 theta] = rho^2."""
    rho = A.cauchy_rho(2.0)
    X = A.sample_cauchy_like(40000, mu=[1.0, 0.0], kappa=2.0, rng=3)
    th = np.arctan2(X[:, 1], X[:, 0])
    assert abs(np.cos(th).mean() - rho) < 0.01 and abs(np.cos(2 * th).mean() - rho**2) < 0.01


def test_antipodal_dependent_sample():
    rng = np.random.default_rng(5)
    r = math.pi / 10
    X = A.sample_antipodal_dependent(2001, q=3, r=r, rng=rng)
    assert X.shape == (2001, 3)
    cos = np.einsum("ij,ij->i", X[0:-1:2], X[1::2])
    assert np.all(cos <= -math.cos(r) + 1e-12)
    # the cap is uniform: P(angle to the antipode <= r/2) = (1 - cos(r/2)) / (1 - cos r)
    frac = np.mean(-cos >= math.cos(r / 2))
    p = (1 - math.cos(r / 2)) / (1 - math.cos(r))
    assert abs(frac - p) < 4.5 * math.sqrt(p * (1 - p) / cos.size)
    # marginally uniform (first points) and detected by the pairwise tests
    res = uniformity_battery(X[:200], ["Bingham", "PAD"])
    assert res["PAD"].pvalue > 1e-4


def test_sampler_arguments():
    with pytest.raises(ValueError, match="nu must lie"):
        A.sample_small_circle(5, mu=[0, 0, 1], kappa=1.0, nu=1.5)
    with pytest.raises(ValueError, match="kappa must be >= 0"):
        A.sample_cauchy_like(5, mu=[0, 1], kappa=-1.0)
    with pytest.raises(TypeError, match="rng"):
        A.sample_acg(5, q=3, kappa=1.0, rng=np.random.RandomState(0))
    a = A.sample_vmf_mixture(7, kappa=2.0, q=3, rng=11)
    b = A.sample_vmf_mixture(7, kappa=2.0, q=3, rng=11)
    assert np.array_equal(a, b)


# ------------------------------------------------------------------------------------------------ uniformity_test


def test_uniformity_test_runs_every_sphunif_test_by_name():
    """Single tests go through uniformity_test's registry; lists and "all" give the battery."""
    X = np.loadtxt(DATA / "q2_n50_vmf.csv", skiprows=1, delimiter=",")
    for name, golden_name in (
        ("Kuiper", "Kuiper"),
        ("watson_1976", "Watson_1976"),
        ("GINI", "Gini"),
        ("Stein", "Stein"),
    ):
        statistic, pvalue = uniformity_test(X, name)
        assert statistic == pytest.approx(GOLDEN[("q2_n50_vmf", golden_name)], rel=1e-10), name
        assert 0 <= pvalue <= 1
    assert uniformity_test(X, "Rothman", t=0.25).parameters == {"t": 0.25}
    battery = uniformity_test(X, "all")
    assert len(battery) == 34 and battery["kuiper"].statistic == uniformity_test(X, "kuiper").statistic
    Z = _data("q10_n200_vmf")
    for name in ("PCvM", "CJ12", "Rayleigh_HD", "Stereo", "Stein"):
        assert uniformity_test(Z, name).statistic == pytest.approx(GOLDEN[("q10_n200_vmf", name)], rel=2e-3), name


def test_uniformity_test_monte_carlo_and_missing_laws():
    X = np.loadtxt(DATA / "q2_n50_unif.csv", skiprows=1, delimiter=",")
    with pytest.raises(ValueError, match="MonteCarloMethod"):
        uniformity_test(X, "Cressie", method="asymptotic")
    res = uniformity_test(X, "FG01", method=MonteCarloMethod(n_resamples=199, rng=4))
    assert res.null_distribution.n_resamples == 199
    assert abs(res.pvalue - 0.1205) < 4.5 * math.sqrt(0.12 * 0.88 * (1 / 199 + 1 / 2000))  # sphunif's, M = 2000
    Z = _data("q3_n100_unif")
    with pytest.raises(ValueError, match="no asymptotic null law"):
        uniformity_test(Z, "Pycke", method="asymptotic")
    with pytest.raises(ValueError, match="circular test"):
        uniformity_test(Z, "Kuiper")
    with pytest.raises(TypeError, match="unexpected parameter"):
        uniformity_test(Z, "CJ12", kappa=1.0)
    with pytest.raises(TypeError, match="apply to a single test"):
        uniformity_test(Z, ["Rayleigh", "Bingham"], degree=3)
    # CCF09: fixed directions, or drawn from rng (the same seed, the same directions)
    a = uniformity_test(Z, "CCF09", rng=5, method=MonteCarloMethod(n_resamples=49, rng=1))
    b = uniformity_test(Z, "CCF09", rng=5, method=MonteCarloMethod(n_resamples=49, rng=1))
    assert a.statistic == b.statistic and a.pvalue == b.pvalue
    ref = GOLDEN[("q3_n100_unif", "CCF09")]
    assert uniformity_test(
        Z, "CCF09", directions=_dirs(3), method=MonteCarloMethod(n_resamples=9, rng=0)
    ).statistic == (pytest.approx(ref, rel=1e-11))


def test_rayleigh_modified_through_uniformity_test():
    Z = sample_uniform(30, q=3, rng=2)
    plain, modified = uniformity_test(Z, "rayleigh"), uniformity_test(Z, "Rayleigh", modified=True)
    r = plain.statistic
    assert modified.statistic == pytest.approx((1 - 1 / 60) * r + r * r / (2 * 30 * 5), rel=1e-13)
    assert modified.pvalue == pytest.approx(stats.chi2.sf(modified.statistic, 3), rel=1e-12)


def test_battery_takes_torch_tensors():
    torch = pytest.importorskip("torch")
    Z = sample_uniform(80, q=4, rng=0)
    a = uniformity_test(torch.from_numpy(Z), ["Rayleigh", "PCvM", "Stein"])
    b = uniformity_test(Z, ["Rayleigh", "PCvM", "Stein"])
    assert a.statistics == b.statistics and a.pvalues == b.pvalues
