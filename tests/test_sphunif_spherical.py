"""sphunif's spherical tests beyond the kernel tests (PCvM, PAD, PRt at any q, CJ12, Rayleigh_HD, CCF09, Pycke)
against sphunif 1.4.4 and independent computations."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from dotkernels.sampling import sample_uniform
from dotkernels.uniformity import _spherical as S
from dotkernels.uniformity import uniformity_test

DATA = Path(__file__).parent / "data" / "sphunif"
DATASETS = (
    "q3_n100_unif",
    "q3_n100_vmf",
    "q10_n200_unif",
    "q10_n200_vmf",
    "q100_n300_unif",
    "q100_n300_vmf",
)


def _golden():
    out = {}
    with open(DATA / "golden.csv", newline="") as f:
        for row in csv.DictReader(f):
            out[(row["dataset"], row["test"])] = {
                k: (float(row[k]) if row[k] not in ("NA", "") else math.nan)
                for k in ("statistic", "pvalue_asymp", "pvalue_MC")
            }
    return out


GOLDEN = _golden()


def _data(ds: str) -> np.ndarray:
    if ds.startswith("q100"):
        return np.load(DATA / f"{ds}.npy")
    return np.loadtxt(DATA / f"{ds}.csv", skiprows=1, delimiter=",")


def _dirs(q: int) -> np.ndarray:
    if q == 100:
        return np.load(DATA / "CCF09_dirs_q100.npy")
    return np.loadtxt(DATA / f"CCF09_dirs_q{q}.csv", skiprows=1, delimiter=",")


# ------------------------------------------------------------------------------------------------ projected ecdf


def _sphunif_discretisation(Z, test, t=1.0 / 3.0, nodes=160, grid=1000):
    """sphunif's own evaluation (160 Gauss-Legendre nodes in t, linear interpolation on 1000 angles) of our
    kernel formulas: reproduces sphunif's statistics to rounding, so the kernels are sphunif's."""
    n, q = Z.shape
    x, w = np.polynomial.legendre.leggauss(nodes)
    angles = np.linspace(0, math.pi, grid)
    F = lambda v, p: S.projected_cdf(v, q=p)  # noqa: E731
    f = lambda v: S.projected_pdf(v, q=q)  # noqa: E731
    if test == "prt":
        tm = min(t, 1 - t)
        ct = -S.projected_ppf(tm, q=q)
        tht = 2 * math.acos(ct)
    vals = np.zeros(grid)
    for k, th in enumerate(angles):
        up = ct if test == "prt" else math.cos(th / 2)
        tk, wk = 0.5 * up * (x + 1), 0.5 * up * w
        s = math.tan(th / 2) * tk / np.sqrt(1 - tk * tk)
        if test == "pcvm":
            vals[k] = np.sum(wk * f(tk) * F(tk, q) * F(s, q - 1))
        elif test == "prt":
            vals[k] = np.sum(wk * f(tk) * F(s, q - 1))
        else:
            with np.errstate(divide="ignore"):
                lo = -np.log(F(-tk, q))
                lo[~np.isfinite(lo)] = 0
                logs = lo + np.log(F(tk, q))
            vals[k] = np.sum(wk * f(tk) * logs * F(-s, q - 1))
    iu = np.triu_indices(n, 1)
    th = np.arccos(np.clip((Z @ Z.T)[iu], -1, 1))
    integral = np.interp(th, angles, vals)
    if test == "pcvm":
        h = th / (2 * math.pi) + 2 * F(np.cos(th / 2), q) ** 2 - 4 * integral
        return 2 / n * (-0.375 * n * (n - 1) + h.sum()) + 0.5 - n / 3
    if test == "prt":
        h = np.where(th >= tht, 0.5 - tm, tm - th / (2 * math.pi) + 2 * integral)
        return 2 / n * h.sum() + 0.5 * (1 - n) + n * tm * (1 - tm)
    return 2 / n * (-math.log(2) * n * (n - 1) + 4 * integral.sum()) + n


CASES_DISCRETISED = [
    (ds, name) for ds in DATASETS for name in ("PCvM", "PAD", "PRt") if not (ds.startswith("q3") and name != "PAD")
]


@pytest.mark.parametrize(("ds", "name"), CASES_DISCRETISED)
def test_kernel_formulas_are_sphunifs(ds, name):
    ref = GOLDEN[(ds, name)]["statistic"]
    assert _sphunif_discretisation(_data(ds), name.lower()) == pytest.approx(ref, rel=2e-10)


@pytest.mark.parametrize("ds", ["q3_n100_unif", "q3_n100_vmf"])
@pytest.mark.parametrize("name", ["PCvM", "PRt"])
def test_exact_statistics_at_q3(ds, name):
    """sphunif evaluates PCvM and PRt in closed form at q = 3: agreement to rounding."""
    ref = GOLDEN[(ds, name)]["statistic"]
    assert S.projected_statistic(_data(ds), name.lower()) == pytest.approx(ref, rel=1e-11)


@pytest.mark.parametrize("ds", DATASETS)
@pytest.mark.parametrize("name", ["PCvM", "PAD", "PRt"])
def test_statistics_within_sphunifs_discretisation_error(ds, name):
    """sphunif's linear interpolation of the kernel (error ~1e-6) is multiplied by n in the statistic."""
    ref = GOLDEN[(ds, name)]["statistic"]
    assert S.projected_statistic(_data(ds), name.lower()) == pytest.approx(ref, rel=1e-3)


def _direct_kernel(theta, q, test, nr=600, nphi=1200):
    """g(theta) - E[g] from the definition: E over a random direction gamma of the cross term of the projected
    ecdfs, with (gamma^T x, gamma^T y) = (R cos phi, R cos(phi - theta)), R^2 ~ Beta(1, (q-2)/2)."""
    xr, wr = np.polynomial.legendre.leggauss(nr)
    u = 0.5 * (xr + 1)
    wu = 0.5 * wr * ((q - 2) / 2) * (1 - u) ** ((q - 4) / 2)
    R = np.sqrt(u)
    total = 0.0
    for a0 in (theta / 2, theta / 2 + math.pi):
        xp, wp = np.polynomial.legendre.leggauss(nphi)
        phi = 0.5 * math.pi * (xp + 1) + a0
        wphi = 0.5 * wp / 2
        A = S.projected_cdf(R[:, None] * np.cos(phi)[None, :], q=q)
        B = S.projected_cdf(R[:, None] * np.cos(phi - theta)[None, :], q=q)
        lo, hi = np.minimum(A, B), np.maximum(A, B)
        if test == "pcvm":
            w = (1 - hi) - (1 - A * A) / 2 - (1 - B * B) / 2 + 1 / 3
        else:
            w = -np.log(1 - lo) - np.log(hi) - 1
        total += np.sum(wu[:, None] * wphi[None, :] * w)
    return total


@pytest.mark.parametrize(
    ("q", "test", "theta"), [(4, "pcvm", 2.0), (4, "pad", 0.3), (10, "pcvm", 2.5), (10, "pad", 0.7)]
)
def test_kernel_against_its_definition(q, test, theta):
    """The direct double integral converges like N^-3: about 5e-8 at (300, 600) nodes."""
    mean, _ = S.projected_kernel_mean(test)
    value = float(S.projected_kernel(np.array([theta]), test, q=q)[0]) - mean
    assert value == pytest.approx(_direct_kernel(theta, q, test, nr=300, nphi=600), abs=1e-7)


@pytest.mark.parametrize("q", [3, 5, 10, 100])
@pytest.mark.parametrize("test", ["pcvm", "pad", "prt"])
def test_kernel_mean_and_null_mean(q, test):
    """E[g(theta)] (density sin^{q-2}) and g(0) - E[g] have the closed forms used for the statistic and the law."""
    x, w = np.polynomial.legendre.leggauss(64)
    edges = np.linspace(0, math.pi, 257)
    th = (0.5 * (edges[1:, None] - edges[:-1, None]) * (x + 1) + edges[:-1, None]).ravel()
    wt = (0.5 * (edges[1:, None] - edges[:-1, None]) * w).ravel()
    dens = np.exp((q - 2) * np.log(np.sin(th)))
    dens /= np.sum(wt * dens)
    mean, null_mean = S.projected_kernel_mean(test)
    assert np.sum(wt * dens * S.projected_kernel(th, test, q=q)) == pytest.approx(mean, abs=1e-9)
    assert float(S.projected_kernel(np.zeros(1), test, q=q)[0]) - mean == pytest.approx(null_mean, rel=1e-12)


@pytest.mark.parametrize("q", [3, 4])
def test_closed_forms_agree_with_the_general_kernel(q):
    th = np.linspace(0.01, 3.1, 50)
    for test, tm in (("pcvm", 0.0), ("prt", 1.0 / 3.0)):
        spline, _, _, theta_t = S._kernel_grid(test, q, tm)
        below = th < theta_t - 1e-3
        np.testing.assert_allclose(S.projected_kernel(th, test, q=q)[below], spline(th[below]), atol=1e-9)


@pytest.mark.parametrize("q", [3, 10])
def test_weights_against_monte_carlo_of_the_law(q):
    """The weights' law has the mean and variance of T = n MMD_V^2 under the null (Monte Carlo, n = 60)."""
    law = S.projected_null("pcvm", q=q)
    assert float(law.mean()) == pytest.approx(1.0 / 6.0, rel=1e-12)
    rng = np.random.default_rng(0)
    sims = np.array([S.projected_statistic(sample_uniform(60, q=q, rng=rng), "pcvm") for _ in range(400)])
    assert abs(sims.mean() - 1.0 / 6.0) < 4.5 * sims.std() / math.sqrt(sims.size)
    assert stats.kstest(law.sf(sims), "uniform").pvalue > 1e-3


@pytest.mark.parametrize("ds", DATASETS)
@pytest.mark.parametrize("name", ["PCvM", "PAD", "PRt"])
def test_pvalues_against_sphunif(ds, name):
    """At sphunif's statistic our law (tail mean folded in) differs from sphunif's by its truncation of the series
    at 10^4 terms without the neglected mean: ~1e-4 at q = 3, 1e-3 at q = 10, 2 % at q = 100 (as the p_tail
    column of diagnose_pvalues.csv shows for the other Sobolev tests)."""
    q = int(ds.split("_")[0][1:])
    ref = GOLDEN[(ds, name)]
    p = float(S.projected_null(name.lower(), q=q).sf(ref["statistic"]))
    rel = {3: 5e-4, 10: 2e-3, 100: 2.5e-2}[q]
    assert p == pytest.approx(ref["pvalue_asymp"], rel=rel)
    assert p >= ref["pvalue_asymp"]  # restoring the neglected mean moves the law up


# ------------------------------------------------------------------------------------------------ other tests


@pytest.mark.parametrize("ds", DATASETS)
def test_rayleigh_hd(ds):
    Z = _data(ds)
    ref = GOLDEN[(ds, "Rayleigh_HD")]
    x = S.rayleigh_hd(Z)
    assert x == pytest.approx(ref["statistic"], rel=1e-12)
    assert S.normal_sf(x) == pytest.approx(ref["pvalue_asymp"], rel=1e-12)
    # documented difference: the reported p-value is that of the standardised chi^2_q law, not sphunif's normal
    q = Z.shape[1]
    reported = uniformity_test(Z, "Rayleigh_HD").pvalue
    assert reported == pytest.approx(stats.chi2.sf(q + math.sqrt(2 * q) * x, q), rel=1e-10)


@pytest.mark.parametrize("ds", ["q2_n50_unif", "q2_n50_vmf"])
def test_rayleigh_hd_and_cj12_at_q2(ds):
    Z = np.loadtxt(DATA / f"{ds}.csv", skiprows=1, delimiter=",")
    ref = GOLDEN[(ds, "sph:Rayleigh_HD")]
    assert S.rayleigh_hd(Z) == pytest.approx(ref["statistic"], rel=1e-12)
    # the golden value is sphunif's distribution function, 1 - p
    assert 1.0 - S.normal_sf(S.rayleigh_hd(Z)) == pytest.approx(ref["pvalue_asymp"], rel=1e-12)
    assert S.cj12(Z) == math.inf and S.cj12_cdf(S.cj12(Z)) == 1.0


@pytest.mark.parametrize("ds", DATASETS)
def test_cj12(ds):
    Z = _data(ds)
    ref = GOLDEN[(ds, "CJ12")]
    x = S.cj12(Z)
    assert x == pytest.approx(ref["statistic"], rel=1e-12)
    assert 1.0 - S.cj12_cdf(x) == pytest.approx(ref["pvalue_asymp"], rel=1e-9, abs=1e-300)
    # documented difference: small values reject, the asymptotic p-value is the lower tail F(x) = 1 - sphunif's
    asymptotic = uniformity_test(Z, "CJ12", method="asymptotic")
    assert asymptotic.pvalue == pytest.approx(S.cj12_cdf(x), rel=1e-12, abs=1e-300)
    assert asymptotic.pvalue == pytest.approx(1.0 - ref["pvalue_asymp"], rel=1e-9, abs=1e-12)


def test_cj12_regimes_and_law():
    Z = _data("q10_n200_unif")
    n, q = Z.shape
    c = math.log1p(-(S.max_abs_inner_product(Z) ** 2))
    assert S.cj12(Z, regime=1) == pytest.approx(q * c + 4 * math.log(n) - math.log(math.log(n)), rel=1e-14)
    assert S.cj12(Z, regime=3) == pytest.approx(q * c + 4 * q / (q - 2) * math.log(n) - math.log(q), rel=1e-14)
    # regime 2 with beta = 0 is regime 1; the law is a Gumbel in x/2
    assert S.cj12_cdf(1.0, regime=2, beta=0.0) == S.cj12_cdf(1.0, regime=1)
    k = 1 / math.sqrt(8 * math.pi)
    assert S.cj12_cdf(0.3, regime=1) == pytest.approx(1 - math.exp(-k * math.exp(0.15)), rel=1e-14)
    with pytest.raises(ValueError, match="regime must be"):
        S.cj12(Z, regime=4)


@pytest.mark.parametrize("ds", [*DATASETS, "q2_n50_unif", "q2_n50_vmf"])
def test_ccf09_with_sphunifs_directions(ds):
    q = int(ds.split("_")[0][1:])
    Z = _data(ds) if q > 2 else np.loadtxt(DATA / f"{ds}.csv", skiprows=1, delimiter=",")
    assert S.ccf09(Z, _dirs(q)) == pytest.approx(GOLDEN[(ds, "CCF09")]["statistic"], rel=1e-11)


@pytest.mark.parametrize("ds", ["q3_n100_unif", "q3_n100_vmf", "q2_n50_unif"])
def test_ccf09_monte_carlo_pvalue(ds):
    """Our Monte Carlo p-value (M = 2000) and sphunif's (M = 2000) agree within their binomial errors."""
    q = int(ds.split("_")[0][1:])
    Z = _data(ds) if q > 2 else np.loadtxt(DATA / f"{ds}.csv", skiprows=1, delimiter=",")
    n = Z.shape[0]
    dirs = _dirs(q)
    x = S.ccf09(Z, dirs)
    rng = np.random.default_rng(7)
    sims = np.array([S.ccf09(sample_uniform(n, q=q, rng=rng), dirs) for _ in range(2000)])
    p = (1 + np.sum(sims >= x)) / 2001
    ref = GOLDEN[(ds, "CCF09")]["pvalue_MC"]
    se = math.sqrt(2 * max(ref, 1 / 2000) * (1 - ref) / 2000)
    assert abs(p - ref) < 4.5 * se + 1 / 2000


@pytest.mark.parametrize("ds", DATASETS)
def test_pycke(ds):
    """Pycke at q = 3; sphunif's Riesz s = 0 replacement for q > 3."""
    Z = _data(ds)
    assert S.pycke_sphere(Z) == pytest.approx(GOLDEN[(ds, "Pycke")]["statistic"], rel=1e-11)


def test_riesz0_tau_is_the_null_centring():
    """tau_q = (E[log(1 - X^T Y)] + log 2) / 2 (= E log ||X - Y||), which centres the Riesz s = 0 statistic."""
    from scipy import integrate

    for q in (3, 4, 7, 10):
        e_log = integrate.quad(lambda t, q=q: S.projected_pdf(t, q=q) * math.log1p(-t), -1, 1, limit=200)[0]
        assert S.riesz0_tau(q) == pytest.approx(0.5 * (e_log + math.log(2.0)), rel=1e-9)


# ------------------------------------------------------------------------------------------------ Stereo


@pytest.mark.parametrize("ds", DATASETS)
def test_stereo_matches_sphunif(ds):
    """The statistic (a U-statistic: its diagonal is infinite) to rounding (at q = 100 the sum cancels to 1e-1 of
    its terms' size), and the asymptotic p-value to sphunif's Imhof tolerance (none at q = 3, as in sphunif)."""
    Z = _data(ds)
    q = Z.shape[1]
    ref = GOLDEN[(ds, "Stereo")]
    assert S.stereo(Z) == pytest.approx(ref["statistic"], rel=1e-9)
    if q == 3:
        with pytest.raises(ValueError, match="no asymptotic null law"):
            S.stereo_null(q=3)
    else:
        p = float(S.stereo_null(q=q).sf(ref["statistic"]))
        assert p == pytest.approx(ref["pvalue_asymp"], rel=5e-5, abs=2e-9)


@pytest.mark.parametrize("q", [4, 7])
@pytest.mark.parametrize("a", [0.0, 0.5, -0.3])
def test_stereo_weights_are_the_kernels_coefficients(q, a):
    """v_k^2 = E[psi_a(theta) P_{k,q}(cos theta)] by quadrature in theta (the kernel's 2/theta singularity is
    integrable against sin^{q-2})."""
    from scipy import integrate

    from dotkernels.gegenbauer import legendre

    v = S.stereo_weights(4, q=q, a=a)
    c = math.exp(-float(np.log(integrate.quad(lambda th: math.sin(th) ** (q - 2), 0, math.pi)[0])))
    for k in range(1, 5):
        f = lambda th, k=k: (  # noqa: E731
            float(S.stereo_pair_kernel(np.array([math.cos(th)]), a, q)[0])
            * float(legendre(k, math.cos(th), q=q))
            * math.sin(th) ** (q - 2)
        )
        val = c * integrate.quad(f, 0, math.pi, limit=200)[0]
        assert v[k - 1] == pytest.approx(val, rel=1e-7, abs=1e-12), k


def test_stereo_mean_and_calibration():
    """E[cot(theta/2)] in closed form; the U-statistic's law is centred and calibrated at q = 5 (KS, n = 60)."""
    from scipy import integrate

    for q in (3, 5, 12):
        val = integrate.quad(lambda t, q=q: S.projected_pdf(t, q=q) * math.sqrt((1 + t) / (1 - t)), -1, 1, limit=200)[0]
        assert S.stereo_mean(q) == pytest.approx(val, rel=1e-8)
    law = S.stereo_null(q=5)
    assert float(law.mean()) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(3)
    x = np.array([S.stereo(sample_uniform(60, q=5, rng=rng), a=0.3) for _ in range(300)])
    assert stats.kstest(S.stereo_null(q=5, a=0.3).sf(x), "uniform").pvalue > 1e-3


# ------------------------------------------------------------------------------------------------ Stein


@pytest.mark.parametrize("ds", [*DATASETS, "q2_n50_unif", "q2_n50_vmf"])
def test_stein_matches_sphunif(ds):
    """Finite Sobolev test with K = 10 weights: statistic to rounding, p-value within sphunif's Imhof tolerance
    (1e-6 absolute), and sphunif's reported last weight v_10^2."""
    from dotkernels.gegenbauer import legendre_series, log_harmonic_dimension
    from dotkernels.nulls import WeightedChiSquare

    q = int(ds.split("_")[0][1:])
    Z = _data(ds) if q > 2 else np.loadtxt(DATA / f"{ds}.csv", skiprows=1, delimiter=",")
    n = Z.shape[0]
    v = S.stein_weights(10, q=q)
    dims = np.exp(log_harmonic_dimension(np.arange(1, 11), q=q))
    T = float(np.sum(legendre_series(np.concatenate([[0.0], v * dims]), np.clip(Z @ Z.T, -1, 1), q=q))) / n
    ref = GOLDEN[(ds, "Stein")]
    assert T == pytest.approx(ref["statistic"], rel=1e-12)
    p = float(WeightedChiSquare(v, np.where(dims < 1e12, np.round(dims), dims)).sf(ref["statistic"]))
    assert p == pytest.approx(ref["pvalue_asymp"], abs=1e-6)
    last = {2: 7.579e-16, 3: 6.685e-17, 10: 2.421e-21, 100: 2.158e-35}[q]
    assert v[-1] == pytest.approx(last, rel=1e-3)


@pytest.mark.parametrize("cf", [False, True])
def test_stein_kernel_is_the_stein_identity(cf):
    """sum_k v_k^2 N(3, k) P_k(s) = E_t[h(t^T x) conj h(t^T y)], t uniform on S^2, x^T y = s, with
    h = Delta_S e^{u} = (1 - 2u - u^2) e^u (cf: Delta_S e^{iu} = (-1 - 2iu + u^2) e^{iu}), by quadrature over t."""
    from dotkernels.gegenbauer import legendre_series

    q = 3
    v = S.stein_weights(40, q=q, cf=cf)
    coef = np.concatenate([[0.0], v * (2 * np.arange(1, 41) + 1)])
    xg, wg = np.polynomial.legendre.leggauss(80)  # cos of the polar angle of t
    phi = np.linspace(0, 2 * np.pi, 160, endpoint=False)
    if cf:
        h = lambda u: (-1 - 2j * u + u * u) * np.exp(1j * u)  # noqa: E731
    else:
        h = lambda u: (1 - 2 * u - u * u) * np.exp(u)  # noqa: E731
    for s in (-0.9, -0.2, 0.4, 0.95):
        c, sn = s, math.sqrt(1 - s * s)
        tz = xg[:, None]
        tx = np.sqrt(1 - tz**2) * np.cos(phi)[None, :]
        val = np.sum(wg[:, None] * h(tz) * np.conj(h(sn * tx + c * tz))).real / (2 * len(phi))
        assert float(legendre_series(coef, s, q=q)) == pytest.approx(val, rel=1e-9, abs=1e-12)
