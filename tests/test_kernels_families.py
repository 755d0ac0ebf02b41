"""Kernel families: spectra against mpmath quadrature, identities, Monte Carlo, Gram matrices, arithmetic, errors."""

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from _helpers import sphere
from _mpref import spectrum_mp
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
    GeneratingFunctionKernel,
    GineKernel,
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
    TruncatedKernel,
)

R = mp.mpf
# (kernel, mpmath profile(t, q), breakpoints of the profile's smoothness) for every closed-form family
FAMILIES = [
    (GaussianKernel(1.3), lambda t, q: mp.exp(-2 * R("1.3") * (1 - t))),
    (ExponentialKernel(2.0), lambda t, q: mp.exp(2 * t)),
    (PolynomialKernel(5, 0.7), lambda t, q: (R("0.7") + t) ** 5),
    (MonomialKernel(4), lambda t, q: t**4),
    (PoissonKernel(0.3), lambda t, q: (1 - R("0.09")) / (1 - 2 * R("0.3") * t + R("0.09")) ** (R(q) / 2)),
    (
        PoissonKernel(0.3, normalized=True),
        lambda t, q: ((1 - R("0.3")) ** 2 / (1 - 2 * R("0.3") * t + R("0.09"))) ** (R(q) / 2),
    ),
    (GeneratingFunctionKernel(0.4), lambda t, q: (1 - 2 * R("0.4") * t + R("0.16")) ** (-R(q - 2) / 2)),
    (InverseMultiquadricKernel(1.0, 0.5), lambda t, q: (3 - 2 * t) ** R(-0.5)),
    (InverseMultiquadricKernel(0.5, 2.5), lambda t, q: (R("0.25") + 2 - 2 * t) ** R(-2.5)),
    (DistanceKernel(1.0), lambda t, q: -((2 - 2 * t) ** R(0.5))),
    (DistanceKernel(0.6), lambda t, q: -((2 - 2 * t) ** R("0.3"))),
    (DistanceKernel(3.0), lambda t, q: -((2 - 2 * t) ** R("1.5"))),
    (ArcCosineKernel(0), lambda t, q: 1 - mp.acos(t) / mp.pi),
    (ArcCosineKernel(1), lambda t, q: (mp.sin(mp.acos(t)) + (mp.pi - mp.acos(t)) * t) / mp.pi),
    (
        GineKernel(),
        lambda t, q: -(R(q - 1) / 4) * (mp.gamma(R(q - 1) / 2) / mp.gamma(R(q) / 2)) ** 2 * mp.sqrt(1 - t * t),
    ),
]
IDS = [repr(k) for k, _ in FAMILIES]


@pytest.mark.parametrize("q", [2, 3, 5, 64, 1024])
@pytest.mark.parametrize("kernel, phi", FAMILIES, ids=IDS)
def test_closed_form_spectrum_against_mpmath_quadrature(kernel, phi, q):
    degree = 6
    # mpmath's quadrature controls its error absolutely: bring tiny profiles to O(1) by a constant first
    with mp.workdps(40):
        scale = 1 / abs(mp.quad(lambda th: phi(mp.cos(th), q) * mp.sin(th) ** (q - 2), [0, mp.pi / 8, mp.pi]))
        scale = scale if scale > 1e30 else mp.mpf(1)
        ref = np.array([float(v / scale) for v in spectrum_mp(lambda t: scale * phi(t, q), q, degree, dps=40)])
    got = kernel.spectrum(degree, q=q)
    big = np.abs(ref) > 1e-30 * np.abs(ref).max()
    np.testing.assert_allclose(got[big], ref[big], rtol=1e-10)
    assert np.all(np.abs(got[~big]) <= 1e-30 * np.abs(ref).max())
    # the profile itself, at a few points, against the mpmath profile
    t = np.array([-1.0, -0.3, 0.0, 0.45, 0.999])
    expected = np.array([float(phi(R(v), q)) for v in t])
    np.testing.assert_allclose(kernel.profile(t, q=q), expected, rtol=1e-13, atol=1e-14)
    assert kernel.phi_at_one(q=q) == pytest.approx(float(phi(R(1), q)), rel=1e-13, abs=1e-15)


POSITIVE = [
    GaussianKernel(0.7),
    ExponentialKernel(1.5),
    PolynomialKernel(3, 1.0),
    PoissonKernel(0.2),
    PoissonKernel(0.2, normalized=True),
    GeneratingFunctionKernel(0.3),
    InverseMultiquadricKernel(1.5, 1.0),
    HeatKernel(0.05),
    BandLimitedKernel(4),
    SFRIKKernel(),
    ArcCosineKernel(1),
]


@pytest.mark.parametrize("q", [3, 16])
@pytest.mark.parametrize("kernel", POSITIVE, ids=repr)
def test_profile_equals_series_within_truncation_bound(kernel, q):
    degree = 60
    a = kernel.spectrum(degree, q=q)
    t = np.linspace(-1, 1, 41)
    bound = kernel.truncation_error(degree, q=q)
    phi1 = kernel.phi_at_one(q=q)
    assert bound >= -1e-12 * phi1
    err = np.abs(kernel.profile(t, q=q) - legendre_series(a, t, q=q))
    assert np.all(err <= max(bound, 0.0) + 1e-12 * phi1)
    assert math.fsum(a) == pytest.approx(phi1 - bound, rel=1e-13)
    assert kernel.is_positive_semidefinite(q=q)


@pytest.mark.parametrize("q", [3, 6, 8])
def test_heat_kernel_profile_by_independent_quadrature(q):
    # the profile (series) fed back through Gauss quadrature must return the defining spectrum
    heat = HeatKernel(0.08)
    back = ProfileKernel(lambda t: heat.profile(np.clip(t, -1, 1), q=q), nodes=400)
    np.testing.assert_allclose(back.spectrum(8, q=q), heat.spectrum(8, q=q), rtol=1e-9, atol=1e-12)
    assert heat.uniform_mean_embedding(q=q) == 1.0


def test_band_limited_christoffel_darboux():
    degree = 7
    t = np.linspace(-0.95, 0.95, 21)
    expected = (degree + 1) * (legendre(degree, t, q=3) - legendre(degree + 1, t, q=3)) / (1 - t)  # q = 3
    np.testing.assert_allclose(BandLimitedKernel(degree).profile(t, q=3), expected, rtol=1e-12)
    assert BandLimitedKernel(degree).phi_at_one(q=3) == (degree + 1) ** 2
    assert BandLimitedKernel(3).spectrum(4, q=64).tolist() == [harmonic_dimension(l, q=64) for l in range(4)] + [0]


def test_gaussian_mean_embedding_closed_form():
    for q in [2, 3, 7, 100, 3000]:
        gamma = 0.9
        ref = mp.exp(-2 * R(gamma)) * mp.hyp0f1(R(q) / 2, R(gamma) ** 2)
        assert GaussianKernel(gamma).uniform_mean_embedding(q=q) == pytest.approx(float(ref), rel=1e-13)


@pytest.mark.parametrize(
    "kernel",
    [GaussianKernel(1.0), DistanceKernel(1.0), ArcCosineKernel(0), PoissonKernel(0.3), GineKernel()],
    ids=repr,
)
def test_mean_embedding_monte_carlo(kernel, rng):
    # a_0 = E phi(<x, y>) for independent uniform x, y; 2e5 pairs, 5 standard errors
    q = 5
    x, y = sphere(rng, 200_000, q), sphere(rng, 200_000, q)
    vals = kernel.profile(np.clip(np.sum(x * y, axis=1), -1, 1), q=q)
    se = vals.std() / math.sqrt(vals.size)
    assert abs(vals.mean() - kernel.uniform_mean_embedding(q=q)) <= 5 * se


@given(q=st.integers(2, 12), seed=st.integers(0, 10**6))
def test_gram_of_positive_spectrum_is_psd(q, seed):
    rng = np.random.default_rng(seed)
    X = sphere(rng, 30, q)
    for kernel in (GaussianKernel(1.0), SFRIKKernel(), HeatKernel(0.3), ArcCosineKernel(0)):
        K = kernel.gram(X)
        eig = np.linalg.eigvalsh(K)
        assert eig.min() >= -1e-10 * max(1.0, eig.max())


@pytest.mark.parametrize("kernel", [GaussianKernel(0.8), PolynomialKernel(3, 0.5), ArcCosineKernel(1)], ids=repr)
def test_funk_hecke_monte_carlo(kernel, rng):
    # E_x[phi(<x,y>) P_l(<x,e>)] = (a_l / N(q,l)) P_l(<y,e>) for a zonal harmonic; 4e5 samples, 5 SE
    q, n = 4, 400_000
    x = sphere(rng, n, q)
    y, e = sphere(rng, 1, q)[0], sphere(rng, 1, q)[0]
    a = kernel.spectrum(3, q=q)
    for l in range(4):
        vals = kernel.profile(np.clip(x @ y, -1, 1), q=q) * legendre(l, np.clip(x @ e, -1, 1), q=q)
        expected = a[l] / harmonic_dimension(l, q=q) * legendre(l, float(y @ e), q=q)
        assert abs(vals.mean() - expected) <= 5 * vals.std() / math.sqrt(n)


@given(t=st.floats(-1, 1), q=st.sampled_from([2, 3, 10, 512]))
def test_profile_equals_series_sum(t, q):
    for kernel in (GaussianKernel(0.5), MonomialKernel(3), SFRIKKernel((1.0, 2.0)), BandLimitedKernel(3)):
        a = kernel.spectrum(40, q=q)
        assert float(kernel.profile(t, q=q)) == pytest.approx(float(legendre_series(a, t, q=q)), abs=1e-12)


@pytest.mark.parametrize("q", [4096, 32768, 65536])
def test_large_dimension_spectra_are_finite_and_sum_to_phi1(q):
    for kernel in (GaussianKernel(1.0), ExponentialKernel(1.0), PoissonKernel(1.0 / q), HeatKernel(1e-3)):
        a = kernel.spectrum(400, q=q)
        assert np.all(np.isfinite(a)) and np.all(a >= 0)
        assert math.fsum(a) == pytest.approx(kernel.phi_at_one(q=q), rel=1e-12)
    for kernel in (DistanceKernel(1.0), ArcCosineKernel(0), ArcCosineKernel(1), MonomialKernel(3), GineKernel()):
        assert np.all(np.isfinite(kernel.spectrum(50, q=q)))
    # q -> infinity: a_l(exp(kappa t)) -> kappa^l / l!
    a = ExponentialKernel(1.0).spectrum(4, q=q)
    np.testing.assert_allclose(a, [1 / math.factorial(l) for l in range(5)], rtol=50.0 / q)


def test_log_spectrum_survives_overflow():
    log_a, sign = BandLimitedKernel(120).log_spectrum(120, q=65536)
    assert np.all(np.isfinite(log_a)) and log_a[-1] > 710 and np.all(sign == 1)
    np.testing.assert_allclose(log_a, log_harmonic_dimension(np.arange(121), q=65536))
    assert not np.all(np.isfinite(BandLimitedKernel(120).spectrum(120, q=65536)))  # a_120 overflows float64


def test_arithmetic():
    g, p = GaussianKernel(1.0), PolynomialKernel(2, 1.0)
    q = 7
    np.testing.assert_allclose((g + p).spectrum(5, q=q), g.spectrum(5, q=q) + p.spectrum(5, q=q))
    np.testing.assert_allclose((2.5 * g).spectrum(5, q=q), 2.5 * g.spectrum(5, q=q))
    t = np.linspace(-1, 1, 5)
    np.testing.assert_allclose((g + 3 * p).profile(t, q=q), g.profile(t) + 3 * p.profile(t))
    np.testing.assert_allclose((g + 3 * p).derivative(t), g.derivative(t) + 3 * p.derivative(t))
    tr = g.truncate(3)
    assert isinstance(tr, TruncatedKernel) and tr.degree == 3 and tr.dimension_dependent
    np.testing.assert_allclose(tr.spectrum(5, q=q)[:4], g.spectrum(3, q=q))
    assert np.all(tr.spectrum(5, q=q)[4:] == 0)
    np.testing.assert_allclose(tr.profile(t, q=q), legendre_series(g.spectrum(3, q=q), t, q=q))
    assert tr.phi_at_one(q=q) == pytest.approx(math.fsum(g.spectrum(3, q=q)), rel=1e-15)
    with pytest.raises(ValueError, match="c must be"):
        -1.0 * g
    assert (g + p).uniform_mean_embedding(q=q) == pytest.approx(g.spectrum(0, q=q)[0] + p.spectrum(0, q=q)[0])


def test_semi_definite_and_strictly_definite():
    assert GaussianKernel(1.0).is_positive_semidefinite(q=5)
    assert GaussianKernel(1.0).is_strictly_positive_definite(q=5) is True
    assert not DistanceKernel(1.0).is_positive_semidefinite(q=5)
    assert DistanceKernel(1.0).is_strictly_positive_definite(q=5) is False
    assert not LegendreSeriesKernel([1.0, -0.5, 1.0]).is_positive_semidefinite(q=3)
    # SFRIK: a_0 = 0 and finitely many a_l > 0: positive semi-definite, never strictly positive definite
    assert SFRIKKernel().is_positive_semidefinite(q=8192)
    assert SFRIKKernel().is_strictly_positive_definite(q=8192) is False
    assert BandLimitedKernel(5).is_strictly_positive_definite(q=3) is False
    assert MonomialKernel(3).is_strictly_positive_definite(q=3) is False
    # arc-cosine kernels miss every even (order 0) or odd (order 1) degree >= 3: not strictly positive definite
    for order in (0, 1):
        assert ArcCosineKernel(order).is_positive_semidefinite(q=3)
        assert ArcCosineKernel(order).is_strictly_positive_definite(q=3) is False
    # generating function: the constant 1 on the circle
    assert GeneratingFunctionKernel(0.5).is_strictly_positive_definite(q=2) is False
    assert GeneratingFunctionKernel(0.5).is_strictly_positive_definite(q=3) is True
    assert PoissonKernel(0.0).is_strictly_positive_definite(q=3) is False
    assert GineKernel().is_positive_semidefinite(q=4) is False
    assert HeatKernel(0.1).is_strictly_positive_definite(q=3) is True
    assert InverseMultiquadricKernel().is_strictly_positive_definite(q=3) is True
    # sums: PSD + strictly PD is strictly PD; two finite series are not
    assert (SFRIKKernel() + GaussianKernel()).is_strictly_positive_definite(q=3) is True
    assert (SFRIKKernel() + MonomialKernel(4)).is_strictly_positive_definite(q=3) is False
    assert (2.0 * GaussianKernel()).is_strictly_positive_definite(q=3) is True
    # undecidable without a closed form
    odd = ProfileKernel(lambda t: t**3 + t)
    assert odd.is_positive_semidefinite(q=3, degree=5)
    assert odd.is_strictly_positive_definite(q=3) is None
    assert not ProfileKernel(lambda t: t**3 - t).is_positive_semidefinite(q=3, degree=5)
    # distance kernels: every degree >= 1 positive for 0 < s < 2
    _, sign = DistanceKernel(0.8).log_spectrum(30, q=9)
    assert sign[0] == -1 and np.all(sign[1:] == 1)


def test_strict_definiteness_shows_in_gram_matrices(rng):
    # a strictly PD kernel gives a nonsingular Gram matrix on distinct points; SFRIK's has rank <= 1 + q + N(q,2)+...
    q = 3
    X = sphere(rng, 40, q)
    eig_gauss = np.linalg.eigvalsh(GaussianKernel(2.0).gram(X))
    assert eig_gauss.min() > 1e-12
    rank = sum(harmonic_dimension(l, q=q) for l in (1, 2, 3))  # a_0 = 0
    s = np.linalg.svd(SFRIKKernel().gram(X), compute_uv=False)
    assert int(np.sum(s > 1e-9 * s[0])) == rank


def test_profile_kernel_matches_closed_form_and_warns_at_large_q():
    exp_profile = ProfileKernel(np.exp)
    for q in (2, 3, 5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpectrumAccuracyWarning)
            got, error = exp_profile.spectrum(12, q=q), exp_profile.spectrum_error(12, q=q)
        # quadrature resolves lambda_l only to ~eps * max|phi| absolutely: the error estimate must cover the truth
        assert np.all(np.abs(got - ExponentialKernel(1.0).spectrum(12, q=q)) <= 1e-13 * np.abs(got) + error)
        np.testing.assert_allclose(got[:6], ExponentialKernel(1.0).spectrum(5, q=q), rtol=1e-11)
    with pytest.warns(SpectrumAccuracyWarning, match="N\\(q,l\\)"):
        ProfileKernel(np.exp).spectrum(12, q=4096)  # the quadrature error times N(4096, 12) ~ 1e36
    err = ProfileKernel(np.exp).spectrum_error(4, q=3)
    assert np.all(err > 0) and np.all(err < 1e-12)


def test_spectral_kernel_user_spectrum():
    poisson = PoissonKernel(0.25)
    user = SpectralKernel(lambda degree, *, q: poisson.spectrum(degree, q=q))
    t = np.linspace(-1, 1, 9)
    np.testing.assert_allclose(user.profile(t, q=6), poisson.profile(t, q=6), rtol=1e-13)
    assert user.is_strictly_positive_definite(q=6) is None
    with pytest.raises(ValueError, match="coefficients"):
        SpectralKernel(lambda degree, *, q: np.ones(2)).spectrum(5, q=3)


def test_spectral_kernel_warns_when_the_series_does_not_decay():
    slow = SpectralKernel(lambda degree, *, q: 1.0 / (1.0 + np.arange(degree + 1.0)) ** 2)
    slow.max_degree = 256
    with pytest.warns(SpectrumAccuracyWarning, match="still significant at degree 256"):
        slow.profile(0.5, q=3)


def test_gram_checks_and_corners(rng):
    X = sphere(rng, 12, 5)
    k = DistanceKernel(1.0)
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
    np.testing.assert_allclose(
        SFRIKKernel().gram(X), legendre_series([0, 1, 40, 40], np.clip(X @ X.T, -1, 1), q=5), rtol=1e-12
    )


def test_gram_keeps_float32():
    X = sphere(np.random.default_rng(0), 6, 4, dtype=np.float32)
    assert GaussianKernel(1.0).gram(X).dtype == np.float32


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: GaussianKernel(0.0), "gamma must be"),
        (lambda: GaussianKernel(float("nan")), "gamma must be"),
        (lambda: ExponentialKernel(-1), "kappa must be"),
        (lambda: PolynomialKernel(2.5), "p must be"),
        (lambda: PolynomialKernel(2, -1.0), "c must be"),
        (lambda: MonomialKernel(-1), "p must be"),
        (lambda: PoissonKernel(1.0), "rho must be"),
        (lambda: PoissonKernel(0.5, normalized="yes"), "normalized must be"),
        (lambda: GeneratingFunctionKernel(-0.1), "rho must be"),
        (lambda: HeatKernel(0), "time must be"),
        (lambda: DistanceKernel(0), "s must be"),
        (lambda: InverseMultiquadricKernel(c=0), "c must be"),
        (lambda: InverseMultiquadricKernel(beta=-1), "beta must be"),
        (lambda: ArcCosineKernel(2), "order must be"),
        (lambda: BandLimitedKernel(-1), "degree must be"),
        (lambda: SFRIKKernel((1, -1)), "coefficients must be"),
        (lambda: SFRIKKernel(("a",)), "coefficients must be"),
        (lambda: LegendreSeriesKernel([]), "coefficients"),
        (lambda: LegendreSeriesKernel([1.0, np.inf]), "coefficients must be finite"),
        (lambda: GaussianKernel(1.0).spectrum(3, q=1), "q must be"),
        (lambda: GaussianKernel(1.0).spectrum(-1, q=3), "degree must be"),
        (lambda: GaussianKernel(1.0).spectrum(3.5, q=3), "degree must be"),
        (lambda: GaussianKernel(1.0).is_positive_semidefinite(q=2.5), "q must be"),
        (lambda: SFRIKKernel().profile(0.5), "q is required"),
        (lambda: GaussianKernel(1.0).profile(1.2), "t must lie"),
        (lambda: GaussianKernel(1.0).profile(float("nan")), "NaN"),
        (lambda: GaussianKernel(1.0).truncate(-2), "degree must be"),
        (lambda: TruncatedKernel("gaussian", 2), "kernel must be"),
        (lambda: ProfileKernel(3.0), "function must be callable"),
        (lambda: SpectralKernel(3.0), "spectrum must be a callable"),
    ],
)
def test_bad_input(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_q_is_keyword_only():
    with pytest.raises(TypeError):
        GaussianKernel(1.0).spectrum(3, 5)  # type: ignore[misc]
    with pytest.raises(TypeError):
        GaussianKernel(1.0).truncation_error(3, 5)  # type: ignore[misc]
    with pytest.raises(TypeError):
        SFRIKKernel().profile(0.5, 3)  # type: ignore[misc]


def test_every_family_is_a_dot_product_kernel():
    for kernel, _ in FAMILIES:
        assert isinstance(kernel, DotProductKernel)
        assert kernel.phi_at_one(q=7) == pytest.approx(float(kernel.profile(1.0, q=7)), rel=1e-15, abs=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HeatKernel(0.01).profile(np.linspace(-1, 1, 5), q=3)


def test_spectrum_cache_is_bounded():
    k = GaussianKernel(0.5)
    for degree in range(100):
        k.spectrum(degree, q=3)
    assert len(k.__dict__["_spectrum_cache"]) <= 32
    # cached arrays are read-only
    log_abs, _ = k.log_spectrum(5, q=3)
    with pytest.raises(ValueError):
        log_abs[0] = 0.0


def test_derivatives_against_finite_differences():
    t = np.linspace(-0.9, 0.9, 7)
    h = 1e-6
    for kernel, _ in [*FAMILIES, (SFRIKKernel(), None), (HeatKernel(0.2), None), (BandLimitedKernel(3), None)]:
        numeric = (kernel.profile(t + h, q=5) - kernel.profile(t - h, q=5)) / (2 * h)
        scale = max(1.0, float(np.max(np.abs(numeric))))
        np.testing.assert_allclose(kernel.derivative(t, q=5), numeric, atol=1e-6 * scale, err_msg=repr(kernel))


@pytest.mark.parametrize(
    "kernel", [k for k, _ in FAMILIES] + [MonomialKernel(0), PolynomialKernel(0), SFRIKKernel()], ids=repr
)
def test_scalars_come_back_as_numpy_scalars(kernel):
    assert type(kernel.profile(0.5, q=4)) is np.float64
    assert type(kernel.derivative(0.5, q=4)) is np.float64
    assert kernel.profile(np.array([0.5]), q=4).shape == (1,)


BACKEND_KERNELS = [k for k, _ in FAMILIES] + [
    SFRIKKernel(),
    LegendreSeriesKernel([1.0, 2.0]),
    BandLimitedKernel(2),
    HeatKernel(0.1),
    GaussianKernel() + 2.0 * SFRIKKernel(),
    TruncatedKernel(GaussianKernel(), 3),
]


@pytest.mark.parametrize("kernel", BACKEND_KERNELS, ids=repr)
def test_torch_gram_matches_numpy_and_differentiates(kernel):
    torch = pytest.importorskip("torch")
    X = sphere(np.random.default_rng(3), 6, 4)
    Xt = torch.tensor(X, requires_grad=True)
    K = kernel.gram(Xt)
    (grad,) = torch.autograd.grad(K.sum(), Xt)
    np.testing.assert_allclose(K.detach().numpy(), kernel.gram(X), rtol=1e-12, atol=1e-13)
    assert bool(torch.isfinite(grad).all())
    t32 = torch.tensor([0.3, -0.2], dtype=torch.float32)
    assert kernel.profile(t32, q=4).dtype == torch.float32
    assert kernel.derivative(t32, q=4).dtype == torch.float32


def test_poisson_phi_at_one_beyond_float64_is_inf_not_an_error():
    # phi(1) = (1 + rho) / (1 - rho)^(q - 1) = 3 * 2^8191 at rho = 1/2, q = 8192: beyond float64, so +inf (IEEE)
    k = PoissonKernel(rho=0.5)
    assert k.phi_at_one(q=8192) == math.inf
    assert k.truncation_error(20, q=8192) == math.inf
    assert k.phi_at_one(q=8) == pytest.approx(1.5 / 0.5**7, rel=1e-15)
