"""Kernel families: closed-form spectra against mpmath quadrature, identities, properties and errors."""

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from _mpref import spectrum_mp
from conftest import sphere
from hypothesis import given
from hypothesis import strategies as st

from dotkernels.gegenbauer import harmonic_dimension, legendre, legendre_series, log_harmonic_dimension
from dotkernels.kernels import (
    ArcCosineKernel,
    BandLimitedKernel,
    DistanceKernel,
    DotProductKernel,
    ExponentialKernel,
    GaussianKernel,
    GegenbauerKernel,
    HeatKernel,
    InverseMultiquadricKernel,
    LegendreSeriesKernel,
    MonomialKernel,
    PoissonKernel,
    PolynomialKernel,
    ProfileKernel,
    SFRIKKernel,
    SpectralKernel,
    SpectrumAccuracyWarning,
    parse_kernel,
)

R = mp.mpf
# (kernel, mpmath profile(t, q)) for every closed-form family
FAMILIES = [
    (GaussianKernel(1.3), lambda t, q: mp.exp(-2 * R("1.3") * (1 - t))),
    (ExponentialKernel(2.0), lambda t, q: mp.exp(2 * t)),
    (PolynomialKernel(5, 0.7), lambda t, q: (R("0.7") + t) ** 5),
    (MonomialKernel(4), lambda t, q: t**4),
    (PoissonKernel(0.3), lambda t, q: (1 - R("0.09")) / (1 - 2 * R("0.3") * t + R("0.09")) ** (R(q) / 2)),
    (GegenbauerKernel(0.4), lambda t, q: (1 - 2 * R("0.4") * t + R("0.16")) ** (-R(q - 2) / 2)),
    (InverseMultiquadricKernel(1.0, 0.5), lambda t, q: (3 - 2 * t) ** R(-0.5)),
    (DistanceKernel(0.5), lambda t, q: -((2 - 2 * t) ** R(0.5))),
    (DistanceKernel(0.3), lambda t, q: -((2 - 2 * t) ** R("0.3"))),
    (ArcCosineKernel(0), lambda t, q: 1 - mp.acos(t) / mp.pi),
    (ArcCosineKernel(1), lambda t, q: (mp.sin(mp.acos(t)) + (mp.pi - mp.acos(t)) * t) / mp.pi),
]
IDS = [repr(k) for k, _ in FAMILIES]


@pytest.mark.parametrize("q", [2, 3, 5, 64, 1024])
@pytest.mark.parametrize("kernel, phi", FAMILIES, ids=IDS)
def test_closed_form_spectrum_against_mpmath(kernel, phi, q):
    L = 6
    ref = np.array([float(v) for v in spectrum_mp(lambda t: phi(t, q), q, L, dps=40)])
    got = kernel.spectrum(q, L)
    big = np.abs(ref) > 1e-30 * np.abs(ref).max()
    np.testing.assert_allclose(got[big], ref[big], rtol=1e-10)
    assert np.all(np.abs(got[~big]) <= 1e-30 * np.abs(ref).max())


POSITIVE = [
    GaussianKernel(0.7),
    ExponentialKernel(1.5),
    PolynomialKernel(3, 1.0),
    PoissonKernel(0.2),
    GegenbauerKernel(0.3),
    InverseMultiquadricKernel(1.5, 1.0),
    HeatKernel(0.05),
    BandLimitedKernel(4),
    SFRIKKernel(),
    ArcCosineKernel(1),
]


@pytest.mark.parametrize("q", [3, 16])
@pytest.mark.parametrize("kernel", POSITIVE, ids=repr)
def test_profile_equals_series_within_truncation_bound(kernel, q):
    L = 60
    a = kernel.spectrum(q, L)
    t = np.linspace(-1, 1, 41)
    bound = kernel.truncation_error(q, L)
    assert bound >= -1e-12 * kernel.phi_at_one(q)
    err = np.abs(kernel.profile(t, q) - legendre_series(a, q, t))
    assert np.all(err <= max(bound, 0.0) + 1e-12 * kernel.phi_at_one(q))
    assert math.fsum(a) == pytest.approx(kernel.phi_at_one(q) - bound, rel=1e-13)


@pytest.mark.parametrize("q", [3, 6, 8])
def test_heat_kernel_profile_by_independent_quadrature(q):
    # the profile (series) fed back through Gauss quadrature must return the defining spectrum
    heat = HeatKernel(0.08)
    back = ProfileKernel(lambda t: heat.profile(np.clip(t, -1, 1), q), nodes=400)
    np.testing.assert_allclose(back.spectrum(q, 8), heat.spectrum(q, 8), rtol=1e-9, atol=1e-12)
    assert heat.uniform_mean_embedding(q) == 1.0


def test_band_limited_christoffel_darboux():
    L = 7
    t = np.linspace(-0.95, 0.95, 21)
    expected = (L + 1) * (legendre(L, 3, t) - legendre(L + 1, 3, t)) / (1 - t)  # q = 3 closed form
    np.testing.assert_allclose(BandLimitedKernel(L).profile(t, 3), expected, rtol=1e-12)


def test_gaussian_mean_embedding_closed_form():
    for q in [2, 3, 7, 100, 3000]:
        tau = 0.9
        ref = mp.exp(-2 * R(tau)) * mp.hyp0f1(R(q) / 2, R(tau) ** 2)
        assert GaussianKernel(tau).uniform_mean_embedding(q) == pytest.approx(float(ref), rel=1e-13)


@pytest.mark.parametrize("kernel", [GaussianKernel(1.0), DistanceKernel(0.5), ArcCosineKernel(0), PoissonKernel(0.3)])
def test_mean_embedding_monte_carlo(kernel, rng):
    # a_0 = E phi(<x, y>) for independent uniform x, y; 2e5 pairs, 5 standard errors
    q = 5
    x, y = sphere(rng, 200_000, q), sphere(rng, 200_000, q)
    vals = kernel.profile(np.clip(np.sum(x * y, axis=1), -1, 1), q)
    se = vals.std() / math.sqrt(vals.size)
    assert abs(vals.mean() - kernel.uniform_mean_embedding(q)) <= 5 * se


@given(q=st.integers(2, 12), seed=st.integers(0, 10**6))
def test_gram_of_positive_spectrum_is_psd(q, seed):
    rng = np.random.default_rng(seed)
    X = sphere(rng, 30, q)
    for kernel in (GaussianKernel(1.0), SFRIKKernel(), HeatKernel(0.3), ArcCosineKernel(0)):
        K = kernel.gram(X)
        eig = np.linalg.eigvalsh(K)
        assert eig.min() >= -1e-10 * max(1.0, eig.max())


@pytest.mark.parametrize("q, l", [(3, 2), (3, 4), (4, 3), (6, 2), (2, 5)])
def test_gram_rank_of_single_degree(q, l, rng):
    X = sphere(rng, 3 * harmonic_dimension(q, l) + 10, q)
    K = legendre(l, q, np.clip(X @ X.T, -1, 1))
    s = np.linalg.svd(K, compute_uv=False)
    assert int(np.sum(s > 1e-9 * s[0])) == harmonic_dimension(q, l)


@pytest.mark.parametrize("kernel", [GaussianKernel(0.8), PolynomialKernel(3, 0.5), ArcCosineKernel(1)], ids=repr)
def test_funk_hecke_monte_carlo(kernel, rng):
    # E_x[phi(<x,y>) P_l(<x,e>)] = (a_l / N(q,l)) P_l(<y,e>) for a zonal harmonic; 4e5 samples, 5 SE
    q, n = 4, 400_000
    x = sphere(rng, n, q)
    y, e = sphere(rng, 1, q)[0], sphere(rng, 1, q)[0]
    a = kernel.spectrum(q, 3)
    for l in range(4):
        vals = kernel.profile(np.clip(x @ y, -1, 1), q) * legendre(l, q, np.clip(x @ e, -1, 1))
        expected = a[l] / harmonic_dimension(q, l) * legendre(l, q, float(y @ e))
        assert abs(vals.mean() - expected) <= 5 * vals.std() / math.sqrt(n)


@given(t=st.floats(-1, 1), q=st.sampled_from([2, 3, 10, 512]))
def test_profile_equals_series_sum(t, q):
    for kernel in (GaussianKernel(0.5), MonomialKernel(3), SFRIKKernel((1.0, 2.0)), BandLimitedKernel(3)):
        a = kernel.spectrum(q, 40)
        assert float(kernel.profile(t, q)) == pytest.approx(float(legendre_series(a, q, t)), abs=1e-12)


@pytest.mark.parametrize("q", [4096, 32768, 65536])
def test_large_dimension_spectra_are_finite_and_sum_to_phi1(q):
    for kernel in (GaussianKernel(1.0), ExponentialKernel(1.0), PoissonKernel(1.0 / q), HeatKernel(1e-3)):
        a = kernel.spectrum(q, 400)
        assert np.all(np.isfinite(a)) and np.all(a >= 0)
        assert math.fsum(a) == pytest.approx(kernel.phi_at_one(q), rel=1e-12)
    for kernel in (DistanceKernel(0.5), ArcCosineKernel(0), ArcCosineKernel(1), MonomialKernel(3)):
        assert np.all(np.isfinite(kernel.spectrum(q, 50)))
    # q -> infinity: a_l(exp(s t)) -> s^l / l!
    a = ExponentialKernel(1.0).spectrum(q, 4)
    np.testing.assert_allclose(a, [1 / math.factorial(l) for l in range(5)], rtol=50.0 / q)


def test_log_spectrum_survives_overflow():
    log_a, sign = BandLimitedKernel(120).log_spectrum(65536, 120)
    assert np.all(np.isfinite(log_a)) and log_a[-1] > 710 and np.all(sign == 1)
    np.testing.assert_allclose(log_a, log_harmonic_dimension(65536, np.arange(121)))
    assert not np.all(np.isfinite(BandLimitedKernel(120).spectrum(65536, 120)))  # a_120 overflows float64


def test_arithmetic():
    g, p = GaussianKernel(1.0), PolynomialKernel(2, 1.0)
    q = 7
    np.testing.assert_allclose((g + p).spectrum(q, 5), g.spectrum(q, 5) + p.spectrum(q, 5))
    np.testing.assert_allclose((2.5 * g).spectrum(q, 5), 2.5 * g.spectrum(q, 5))
    t = np.linspace(-1, 1, 5)
    np.testing.assert_allclose((g + 3 * p).profile(t, q), g.profile(t) + 3 * p.profile(t))
    tr = g.truncate(3)
    assert tr.degree == 3 and tr.dimension_dependent
    np.testing.assert_allclose(tr.spectrum(q, 5)[:4], g.spectrum(q, 3))
    assert np.all(tr.spectrum(q, 5)[4:] == 0)
    np.testing.assert_allclose(tr.profile(t, q), legendre_series(g.spectrum(q, 3), q, t))
    with pytest.raises(ValueError, match="c must be"):
        -1.0 * g
    assert (g + p).uniform_mean_embedding(q) == pytest.approx(g.spectrum(q, 0)[0] + p.spectrum(q, 0)[0])


def test_positive_definiteness():
    assert GaussianKernel(1.0).is_positive_definite(5)
    assert not DistanceKernel(0.5).is_positive_definite(5)
    assert not LegendreSeriesKernel([1.0, -0.5, 1.0]).is_positive_definite(3)
    assert SFRIKKernel().is_positive_definite(8192)
    # t^3 - t is PD nowhere (a_1 < 0 for every q)... but (t^3 + t) is PD everywhere
    odd = ProfileKernel(lambda t: t**3 + t)
    assert odd.is_positive_definite(3, degree=5)
    assert not ProfileKernel(lambda t: t**3 - t).is_positive_definite(3, degree=5)
    # distance kernels: every degree >= 1 positive for 0 < a < 1
    _, sign = DistanceKernel(0.4).log_spectrum(9, 30)
    assert sign[0] == -1 and np.all(sign[1:] == 1)


def test_sfrik_kernel_by_name():
    k = parse_kernel("sfrik")
    assert isinstance(k, SFRIKKernel)
    np.testing.assert_array_equal(k.spectrum(8192, 4), [0, 1, 40, 40, 0])
    assert k.uniform_mean_embedding(8192) == 0.0
    assert k.phi_at_one(8192) == 81.0
    np.testing.assert_array_equal(parse_kernel("legendre:1,40,40").spectrum(3, 3), [0, 1, 40, 40])


def test_parse_kernel():
    assert parse_kernel("gaussian:tau=2.5") == GaussianKernel(2.5)
    assert parse_kernel("heat:tau=0.01") == HeatKernel(0.01)
    assert parse_kernel("polynomial:3,0.5") == PolynomialKernel(3, 0.5)
    assert parse_kernel("energy") == DistanceKernel(0.5)
    assert parse_kernel("riesz:a=0.3") == DistanceKernel(0.3)
    k = GaussianKernel(1.0)
    assert parse_kernel(k) is k
    for bad, match in [
        ("nope", "unknown kernel"),
        ("gaussian:sigma=1", "unknown parameter"),
        ("gaussian:tau=-1", "tau must be"),
        ("gaussian:tau=abc", "expected a number"),
        ("legendre", "legendre needs weights"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_kernel(bad)


def test_profile_kernel_matches_closed_form_and_warns_at_large_q():
    exp_profile = ProfileKernel(np.exp)
    for q in (2, 3, 5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpectrumAccuracyWarning)
            got, error = exp_profile.spectrum(q, 12), exp_profile.spectrum_error(q, 12)
        # quadrature resolves lambda_l only to ~eps * max|phi| absolutely: the error estimate must cover the truth
        assert np.all(np.abs(got - ExponentialKernel(1.0).spectrum(q, 12)) <= 1e-13 * np.abs(got) + error)
        np.testing.assert_allclose(got[:6], ExponentialKernel(1.0).spectrum(q, 5), rtol=1e-11)
    with pytest.warns(SpectrumAccuracyWarning, match="N\\(q,l\\)"):
        ProfileKernel(np.exp).spectrum(4096, 12)  # the quadrature error times N(4096, 12) ~ 1e36
    err = ProfileKernel(np.exp).spectrum_error(3, 4)
    assert np.all(err > 0) and np.all(err < 1e-12)


def test_spectral_kernel_user_spectrum():
    poisson = PoissonKernel(0.25)
    user = SpectralKernel(lambda q, L: poisson.spectrum(q, L))
    t = np.linspace(-1, 1, 9)
    np.testing.assert_allclose(user.profile(t, 6), poisson.profile(t, 6), rtol=1e-13)
    with pytest.raises(ValueError, match="coefficients"):
        SpectralKernel(lambda q, L: np.ones(2)).spectrum(3, 5)


def test_gram_checks_and_corners(rng):
    X = sphere(rng, 12, 5)
    k = DistanceKernel(0.5)
    K = k.gram(X)
    np.testing.assert_array_equal(np.diag(K), 0.0)
    np.testing.assert_allclose(K, -np.linalg.norm(X[:, None] - X[None], axis=-1), atol=1e-7)
    # coinciding and antipodal points between two samples get phi(+-1) exactly
    E = np.eye(3)
    np.testing.assert_array_equal(np.diag(k.gram(E, E.copy())), 0.0)
    np.testing.assert_array_equal(np.diag(k.gram(E, -E)), -2.0)
    with pytest.raises(ValueError, match="unit vectors"):
        GaussianKernel(1.0).gram(2 * X)
    np.testing.assert_allclose(GaussianKernel(1.0).gram(2 * X, normalize=True), GaussianKernel(1.0).gram(X))
    with pytest.raises(ValueError, match="same number of columns"):
        GaussianKernel(1.0).gram(X, sphere(rng, 3, 4))
    with pytest.raises(ValueError, match="2-d"):
        GaussianKernel(1.0).gram(X[0])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianKernel(1.0).gram(bad)
    with pytest.raises(ValueError, match="q >= 2"):
        GaussianKernel(1.0).gram(np.ones((3, 1)))
    # dimension-dependent kernels take q from the data
    np.testing.assert_allclose(SFRIKKernel().gram(X), legendre_series([0, 1, 40, 40], 5, np.clip(X @ X.T, -1, 1)))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: GaussianKernel(0.0), "tau must be"),
        (lambda: GaussianKernel(float("nan")), "tau must be"),
        (lambda: ExponentialKernel(-1), "s must be"),
        (lambda: PolynomialKernel(2.5), "p must be"),
        (lambda: PolynomialKernel(2, -1.0), "c must be"),
        (lambda: MonomialKernel(-1), "p must be"),
        (lambda: PoissonKernel(1.0), "r must lie"),
        (lambda: GegenbauerKernel(-0.1), "r must be"),
        (lambda: DistanceKernel(0), "a must be"),
        (lambda: ArcCosineKernel(2), "order must be"),
        (lambda: BandLimitedKernel(-1), "L must be"),
        (lambda: SFRIKKernel((1, -1)), "weights must be"),
        (lambda: LegendreSeriesKernel([]), "coefficients"),
        (lambda: GaussianKernel(1.0).spectrum(1, 3), "q must be"),
        (lambda: GaussianKernel(1.0).spectrum(3, -1), "degree must be"),
        (lambda: SFRIKKernel().profile(0.5), "q is required"),
        (lambda: GaussianKernel(1.0).profile(1.2), "t must lie"),
        (lambda: GaussianKernel(1.0).truncate(-2), "L must be"),
        (lambda: ProfileKernel(3.0), "function must be callable"),
    ],
)
def test_bad_input(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_every_family_is_a_dot_product_kernel():
    for kernel, _ in FAMILIES:
        assert isinstance(kernel, DotProductKernel)
        assert kernel.phi_at_one(7) == pytest.approx(float(kernel.profile(1.0, 7)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HeatKernel(0.01).profile(np.linspace(-1, 1, 5), 3)
