"""sphunif's circular uniformity tests (q = 2): statistics and null laws against sphunif 1.4.4 and against
independent computations (exact enumeration, Monte Carlo with binomial tolerances, closed forms)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats

from dotkernels.nulls import WeightedChiSquare
from dotkernels.uniformity import _circular as C
from dotkernels.uniformity import uniformity_test

DATA = Path(__file__).parent / "data" / "sphunif"
DATASETS = ("q2_n50_unif", "q2_n50_vmf")


def _golden() -> dict[tuple[str, str], dict[str, float]]:
    out = {}
    with open(DATA / "golden.csv", newline="") as f:
        for row in csv.DictReader(f):
            out[(row["dataset"], row["test"])] = {
                k: (float(row[k]) if row[k] not in ("NA", "") else math.nan)
                for k in ("statistic", "pvalue_asymp", "pvalue_MC")
            }
    return out


GOLDEN = _golden()


def _theta(ds: str) -> np.ndarray:
    return np.loadtxt(DATA / f"{ds}_theta.csv", skiprows=1)


STATISTICS = {
    "Kuiper": C.kuiper,
    "Watson": C.watson,
    "Watson_1976": C.watson_1976,
    "Cressie": C.cressie,
    "Hodges_Ajne": C.hodges_ajne,
    "FG01": C.feltz_goldin,
    "Range": C.range_statistic,
    "Rao": C.rao,
    "Greenwood": C.greenwood,
    "Log_gaps": C.log_gaps,
    "Vacancy": C.vacancy,
    "Max_uncover": C.max_uncover,
    "Num_uncover": C.num_uncover,
    "Gini": C.gini,
    "Gini_squared": C.gini_squared,
    "Hermans_Rasson": C.hermans_rasson,
    "Pycke": C.pycke,
    "Pycke_q": C.pycke_q,
    "Rothman": C.rothman,
    "PRt": C.rothman,
    "PCvM": C.pcvm,
    "PAD": C.pad,
}


@pytest.mark.parametrize("ds", DATASETS)
def test_angles_of_unit_vectors(ds):
    X = np.loadtxt(DATA / f"{ds}.csv", skiprows=1, delimiter=",")
    np.testing.assert_allclose(C.angles(X), _theta(ds), rtol=0, atol=4e-15)


@pytest.mark.parametrize("ds", DATASETS)
@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_statistic_matches_sphunif(ds, name):
    value = STATISTICS[name](_theta(ds))
    ref = GOLDEN[(ds, name)]["statistic"]
    assert value == pytest.approx(ref, rel=1e-10, abs=1e-13)


def _sobolev_law(test, *, param=None, degree=4096, tail=True):
    v, total = C.sobolev_weights(test, degree, param)
    keep = v > 0
    shift = total - 2.0 * math.fsum(v) if tail else 0.0
    return WeightedChiSquare(v[keep], np.full(int(keep.sum()), 2.0), shift=shift, tail_bound=max(shift, 0.0))


@pytest.mark.parametrize("ds", DATASETS)
def test_exact_and_normal_laws_match_sphunif(ds):
    th = _theta(ds)
    n = th.size
    pvalues = {
        "Kuiper": C.kuiper_sf(C.kuiper(th), n),
        "Watson": C.watson_sf(C.watson(th)),
        "Watson_1976": C.watson_1976_sf(C.watson_1976(th)),
        "Range": C.range_sf(C.range_statistic(th), n),
        "Rao": C.normal_sf(C.rao(th), C.RAO_SD),
        "Greenwood": C.normal_sf(C.greenwood(th), 2.0),
        "Log_gaps": C.log_gaps_sf(C.log_gaps(th)),
        "Vacancy": C.normal_sf(C.vacancy(th)),
        "Max_uncover": C.max_uncover_sf(C.max_uncover(th)),
        "Num_uncover": C.normal_sf(C.num_uncover(th)),
        "Gini": C.normal_sf(C.gini(th), 3**-0.5),
        "Gini_squared": C.normal_sf(C.gini_squared(th), 4.0),
        "Pycke": C.pycke_sf(C.pycke(th)),
    }
    for name, p in pvalues.items():
        # Watson (1976): sphunif integrates its series with 40 Gauss nodes (about 1e-9)
        rel = 2e-9 if name == "Watson_1976" else 1e-11
        assert p == pytest.approx(GOLDEN[(ds, name)]["pvalue_asymp"], rel=rel), name


@pytest.mark.parametrize("ds", DATASETS)
def test_hodges_ajne_pvalue_convention(ds):
    """sphunif reports P(H > h) = our P(H >= h + 1); the p-value of the discrete statistic is P(H >= h)."""
    th = _theta(ds)
    h = C.hodges_ajne(th)
    assert C.hodges_ajne_sf(h + 1, th.size) == pytest.approx(GOLDEN[(ds, "Hodges_Ajne")]["pvalue_asymp"], rel=1e-12)
    assert C.hodges_ajne_sf(h, th.size) > C.hodges_ajne_sf(h + 1, th.size)
    # the reported p-value is P(H >= h), not sphunif's
    res = uniformity_test(np.column_stack([np.cos(th), np.sin(th)]), "Hodges_Ajne")
    assert res.statistic == h and res.pvalue == pytest.approx(C.hodges_ajne_sf(h, th.size), rel=1e-12)


@pytest.mark.parametrize("ds", DATASETS)
def test_num_uncover_continuity_correction(ds):
    """The count L_n is discrete: the reported p-value is the normal law's P(L >= l) with the continuity correction
    (sphunif: the uncorrected normal tail, the golden value)."""
    th = _theta(ds)
    n, x = th.size, C.num_uncover(th)
    assert C.normal_sf(x) == pytest.approx(GOLDEN[(ds, "Num_uncover")]["pvalue_asymp"], rel=1e-11)
    e = math.exp(-1.0)
    half_step = 0.5 / math.sqrt(n * e * (1 - e * 2.0))
    res = uniformity_test(np.column_stack([np.cos(th), np.sin(th)]), "Num_uncover", method="asymptotic")
    assert res.statistic == pytest.approx(x, rel=1e-12)
    assert res.pvalue == pytest.approx(C.normal_sf(x - half_step), rel=1e-12)


@pytest.mark.parametrize("ds", DATASETS)
@pytest.mark.parametrize(
    ("name", "test", "param"),
    [
        ("Hermans_Rasson", "hermans_rasson", None),
        ("Pycke_q", "pycke_q", 0.5),
        ("Rothman", "rothman", 1.0 / 3.0),
        ("PCvM", "pcvm", None),
        ("PAD", "pad", None),
    ],
)
def test_sobolev_laws_reproduce_sphunif_truncation(ds, name, test, param):
    """With sphunif's truncation (10^4 weights, neglected mean dropped) our weights give sphunif's p-values to its
    Imhof tolerance (1e-6 absolute); with the tail folded in they move by sphunif's truncation error."""
    x = STATISTICS[name](_theta(ds))
    ref = GOLDEN[(ds, name)]["pvalue_asymp"]
    truncated = float(_sobolev_law(test, param=param, degree=10000, tail=False).sf(x))
    assert truncated == pytest.approx(ref, rel=2e-5)
    exact = float(_sobolev_law(test, param=param).sf(x))
    assert abs(exact - ref) < 1e-3 * ref


@pytest.mark.parametrize("ds", DATASETS)
def test_pcvm_law_is_twice_watson(ds):
    x = C.pcvm(_theta(ds))
    assert float(_sobolev_law("pcvm").sf(x)) == pytest.approx(C.watson_sf(x / 2.0), rel=1e-9)


@pytest.mark.parametrize(
    ("test", "param"), [("hermans_rasson", None), ("pycke_q", 0.3), ("rothman", 0.25), ("pad", None)]
)
def test_sobolev_weights_sum_to_the_mean(test, param):
    """2 sum_k v_k^2 = E[T] (= g(0) - E g); the tails decay like 1/K (log K / K for PAD)."""
    v, total = C.sobolev_weights(test, 200000, param)
    assert 2.0 * math.fsum(v) == pytest.approx(total, rel=2e-4)


@pytest.mark.parametrize("k", [1, 2, 5, 40])
def test_pad_weights_closed_form_against_quadrature(k):
    v, _ = C.sobolev_weights("pad", k)
    val, _ = integrate.quad(lambda u: u * math.log(u) if u > 0 else 0.0, 0, 2 * math.pi, weight="cos", wvar=k)
    assert v[-1] == pytest.approx(val / math.pi**2, rel=1e-9)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_sobolev_weights_are_cosine_coefficients_of_the_kernel(k):
    """v_k^2 = E[g(Psi) cos(k Psi)], Psi uniform on [0, pi], for the Hermans-Rasson and Rothman kernels."""
    hr = lambda p: -(p + C.HR_BETA2 * np.sin(p))  # noqa: E731
    v, _ = C.sobolev_weights("hermans_rasson", k)
    val = integrate.quad(hr, 0, math.pi, weight="cos", wvar=k)[0] / math.pi
    assert v[-1] == pytest.approx(val, rel=1e-9)
    t = 1.0 / 3.0
    ro = lambda p: -np.minimum(p / (2 * math.pi) - t * (1 - t), t * t)  # noqa: E731
    v, _ = C.sobolev_weights("rothman", k, t)
    kink = 2 * math.pi * t
    val = sum(integrate.quad(ro, a, b, weight="cos", wvar=k)[0] for a, b in ((0, kink), (kink, math.pi))) / math.pi
    assert v[-1] == pytest.approx(val, abs=1e-12)


def test_hodges_ajne_exact_law_by_monte_carlo():
    rng = np.random.default_rng(1)
    n, m = 9, 20000
    h = np.array([C.hodges_ajne(rng.uniform(0, 2 * np.pi, n)) for _ in range(m)])
    for k in (6, 7, 8, 9):
        p = C.hodges_ajne_sf(k, n)
        emp = float(np.mean(h >= k))
        assert abs(emp - p) < 4.5 * math.sqrt(p * (1 - p) / m) + 1e-12, k


def test_range_exact_law_by_monte_carlo():
    rng = np.random.default_rng(2)
    n, m = 8, 20000
    r = np.array([C.range_statistic(rng.uniform(0, 2 * np.pi, n)) for _ in range(m)])
    for x in (1.5, 2.0, 3.0):
        p = C.range_sf(x, n)
        assert abs(float(np.mean(r > x)) - p) < 4.5 * math.sqrt(p * (1 - p) / m), x


def test_watson_1976_law_by_monte_carlo():
    rng = np.random.default_rng(3)
    n, m = 400, 4000
    s = np.array([C.watson_1976(rng.uniform(0, 2 * np.pi, n)) for _ in range(m)])
    for x in (0.6, 0.8, 1.0):
        p = C.watson_1976_sf(x)
        # finite-n bias of the sup of the empirical bridge is O(n^{-1/2}) ~ 0.05 in x: loose tolerance
        assert abs(float(np.mean(s > x)) - p) < 0.04, x


@pytest.mark.parametrize(
    ("stat", "sf"),
    [
        (C.kuiper, lambda x, n: np.array([C.kuiper_sf(v, n) for v in x])),
        (C.watson, lambda x, n: np.array([C.watson_sf(v) for v in x])),
        (C.hermans_rasson, lambda x, n: _sobolev_law("hermans_rasson", degree=256).sf(x)),
        (C.rothman, lambda x, n: _sobolev_law("rothman", param=1 / 3, degree=256).sf(x)),
        (C.pad, lambda x, n: _sobolev_law("pad", degree=256).sf(x)),
        (C.pycke_q, lambda x, n: _sobolev_law("pycke_q", param=0.5, degree=64).sf(x)),
    ],
    ids=["kuiper", "watson", "hermans_rasson", "rothman", "pad", "pycke_q"],
)
def test_null_calibration(stat, sf):
    """p-values under the null are uniform (KS test) at n = 100."""
    rng = np.random.default_rng(11)
    n, m = 100, 300
    x = np.array([stat(rng.uniform(0, 2 * np.pi, n)) for _ in range(m)])
    assert stats.kstest(sf(x, n), "uniform").pvalue > 1e-3


def test_spacing_tests_reject_a_concentrated_sample_and_not_uniform_ones():
    rng = np.random.default_rng(5)
    n = 200
    conc = np.mod(rng.vonmises(0.0, 2.0, n), 2 * np.pi)
    assert C.normal_sf(C.greenwood(conc), 2.0) < 1e-3
    assert C.normal_sf(C.gini(conc), 3**-0.5) < 1e-3
    assert C.max_uncover_sf(C.max_uncover(conc)) < 1e-3
    assert C.range_sf(C.range_statistic(conc), n) < 1e-3
    rej = 0
    for _ in range(200):
        th = rng.uniform(0, 2 * np.pi, n)
        rej += C.normal_sf(C.rao(th), C.RAO_SD) < 0.05
    assert rej / 200 < 0.12  # nominal 5 %, normal approximation at n = 200


def test_bad_parameters():
    th = np.linspace(0, 6, 10)
    with pytest.raises(ValueError, match="t must lie in"):
        C.cressie(th, 1.5)
    with pytest.raises(ValueError, match="q must lie in"):
        C.pycke_q(th, 1.0)
    with pytest.raises(ValueError, match="a must be > 0"):
        C.vacancy(th, -1.0)
    with pytest.raises(ValueError, match="circular data"):
        C.angles(np.ones((3, 3)))
