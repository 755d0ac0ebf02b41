"""The accuracy each kernel family states, held against mpmath closed forms at the edges of its domain.

The references are independent of the code under test: Bessel functions (mpmath.besseli) for the exponential and
Gaussian kernels, the Gauss hypergeometric function (mpmath.hyp2f1) for the inverse multiquadric kernel (which the
code computes as a Gaussian-mixture integral), Gamma-function formulas at 50 digits for the rest.
"""

import functools
import math

import mpmath as mp
import numpy as np
import pytest
from _mpref import (
    harmonic_dimension_mp,
    log_bessel_spectrum_mp,
    log_harmonic_dimensions_mp,
    log_monomial_spectrum_mp,
    log_polynomial_spectrum_mp,
    spectrum_mp,
)

from dotkernels.kernels import (
    ArcCosineKernel,
    DistanceKernel,
    ExponentialKernel,
    GaussianKernel,
    GeneratingFunctionKernel,
    GineKernel,
    HeatKernel,
    InverseMultiquadricKernel,
    MonomialKernel,
    PoissonKernel,
    PolynomialKernel,
)

R = mp.mpf
DIMENSIONS = [2, 3, 5, 64, 1024, 65536]


def log_ref(values):
    return np.array([float(mp.log(abs(v))) if v != 0 else -np.inf for v in values])


def assert_log_close(kernel, degrees, q, ref_log, rtol=1e-12):
    """a_l within the stated relative accuracy, max(rtol, 5e-16 (ln N(q, l) + |ln a_l|)), at the given degrees."""
    log_abs, _ = kernel.log_spectrum(int(max(degrees)), q=q)
    got = log_abs[np.asarray(degrees)]
    finite = np.isfinite(ref_log)
    assert np.all(np.isfinite(got) == finite), (kernel, q)
    log_n = np.array([float(mp.log(harmonic_dimension_mp(q, int(l)))) for l in degrees])
    tol = np.maximum(rtol, 5e-16 * (log_n + np.abs(ref_log)))[finite]
    err = np.abs(np.expm1(got[finite] - ref_log[finite]))
    assert np.all(err <= tol), (kernel, q, err, tol)


def lambda_exp_mp(kappa, q, l):
    kappa = R(kappa)
    return mp.gamma(R(q) / 2) * (2 / kappa) ** (R(q) / 2 - 1) * mp.besseli(l + R(q) / 2 - 1, kappa)


DEGREES = [0, 1, 2, 3, 7, 20, 40]


@pytest.mark.parametrize("q", DIMENSIONS)
@pytest.mark.parametrize("kappa", [1e-3, 1.0, 30.0, 1000.0])
def test_exponential_and_gaussian_spectra_against_bessel(q, kappa):
    with mp.workdps(50):
        lam = [lambda_exp_mp(kappa, q, l) for l in DEGREES]
        exp_ref = log_ref([harmonic_dimension_mp(q, l) * v for l, v in zip(DEGREES, lam)])
        gauss_ref = log_ref([harmonic_dimension_mp(q, l) * v * mp.exp(-R(kappa)) for l, v in zip(DEGREES, lam)])
    # relative 1e-12 where a_l is a normal float64; exp(1000 t) has |log a_l| ~ 1000, one ulp of which is 1e-13
    assert_log_close(ExponentialKernel(kappa), DEGREES, q, exp_ref, rtol=1e-12 if kappa < 1000 else 2e-12)
    assert_log_close(GaussianKernel(kappa / 2), DEGREES, q, gauss_ref)


@pytest.mark.parametrize("q", [3, 64, 65536])
def test_gaussian_spectrum_at_large_degree(q):
    degrees = [0, 100, 999, 2000]
    gamma = 50.0
    with mp.workdps(50):
        ref = log_ref(
            [harmonic_dimension_mp(q, l) * lambda_exp_mp(2 * gamma, q, l) * mp.exp(-2 * R(gamma)) for l in degrees]
        )
    assert_log_close(GaussianKernel(gamma), degrees, q, ref)


def imq_spectrum_mp(c, beta, q, degrees):
    """a_l of (c^2 + 2 - 2t)^-beta from its Gegenbauer-hypergeometric form (mpmath.hyp2f1 handles z -> 1)."""
    c, beta = R(c), R(beta)
    s = c**2 + 2
    r = 2 / (s + mp.sqrt(s * s - 4))  # r + 1/r = c^2 + 2
    u = 2 * r / (1 + r * r)
    out = []
    for l in degrees:
        lam = (
            r**beta
            * (1 + r * r) ** (-beta)
            * mp.rf(beta, l)
            * (u / 2) ** l
            / mp.rf(R(q) / 2, l)
            * mp.hyp2f1((beta + l) / 2, (beta + l + 1) / 2, l + R(q) / 2, u * u)
        )
        out.append(harmonic_dimension_mp(q, l) * lam)
    return out


@pytest.mark.parametrize("c", [0.003, 0.01])
def test_imq_mean_embedding_of_the_issue(c):
    # q = 3, beta = 1/2: a_0 = E (c^2 + 2 - 2t)^(-1/2) = (sqrt(c^2 + 4) - c) / 2 exactly
    exact = (math.sqrt(c * c + 4.0) - c) / 2.0
    assert InverseMultiquadricKernel(c, 0.5).uniform_mean_embedding(q=3) == pytest.approx(exact, rel=1e-13)


@pytest.mark.parametrize("q", [2, 3, 4, 64, 65536])
@pytest.mark.parametrize("c", [1e-4, 0.003, 1.0, 1e4])
@pytest.mark.parametrize("beta", [0.01, 0.5, 7.5, 100.0])
def test_imq_spectrum_against_hypergeometric_form(q, c, beta):
    degrees = [0, 1, 2, 5, 12]
    with mp.workdps(40):
        ref = log_ref(imq_spectrum_mp(c, beta, q, degrees))
    assert_log_close(InverseMultiquadricKernel(c, beta), degrees, q, ref)


@pytest.mark.parametrize("q", [3, 1024])
def test_imq_spectrum_at_large_degree(q):
    degrees = [0, 50, 300]
    with mp.workdps(40):
        ref = log_ref(imq_spectrum_mp(0.05, 1.5, q, degrees))
    assert_log_close(InverseMultiquadricKernel(0.05, 1.5), degrees, q, ref)


@pytest.mark.parametrize("q", DIMENSIONS)
def test_gamma_function_families_at_every_dimension(q):
    degrees = [0, 1, 2, 3, 10, 31, 200]
    rho, s, p, c = R("0.3"), R("0.7"), 6, R("0.4")
    with mp.workdps(50):
        n = [harmonic_dimension_mp(q, l) for l in degrees]
        poisson = [nl * rho**l for nl, l in zip(n, degrees)]
        normalized = [v * (1 - rho) ** (q - 1) / (1 + rho) for v in poisson]
        generating = [mp.binomial(l + q - 3, l) * rho**l if q > 2 else (1 if l == 0 else 0) for l in degrees]
        heat = [nl * mp.exp(-R("0.01") * l * (l + q - 2)) for nl, l in zip(n, degrees)]
        # shared/MATH.md's form of the Riesz coefficients (sqrt(pi) and 2^(2a+q-2)), a = s/2
        a = s / 2
        distance = [
            -nl
            * mp.rf(-a, l)
            * 2 ** (2 * a + q - 2)
            * mp.gamma(R(q) / 2)
            * mp.gamma(a + R(q - 1) / 2)
            / (mp.sqrt(mp.pi) * mp.gamma(a + l + q - 1))
            for nl, l in zip(n, degrees)
        ]

        def lam_monomial(j, l):
            if l > j or (j - l) % 2:
                return R(0)
            return (
                mp.factorial(j) * mp.gamma(R(q) / 2) / (2**j * mp.factorial((j - l) // 2) * mp.gamma(R(j + l + q) / 2))
            )

        monomial = [nl * lam_monomial(p, l) for nl, l in zip(n, degrees)]
        polynomial = [
            nl * mp.fsum(mp.binomial(p, j) * c ** (p - j) * lam_monomial(j, l) for j in range(p + 1))
            for nl, l in zip(n, degrees)
        ]
    cases = [
        (PoissonKernel(0.3), poisson),
        (PoissonKernel(0.3, normalized=True), normalized),
        (GeneratingFunctionKernel(0.3), generating),
        (HeatKernel(0.01), heat),
        (DistanceKernel(0.7), distance),
        (MonomialKernel(p), monomial),
        (PolynomialKernel(p, 0.4), polynomial),
    ]
    for kernel, ref in cases:
        assert_log_close(kernel, degrees, q, log_ref(ref))
        _, sign = kernel.log_spectrum(max(degrees), q=q)
        assert np.all(sign[degrees] == [mp.sign(v) for v in ref]), kernel


@pytest.mark.parametrize("q", [3, 64, 65536])
def test_arccos_and_gine_against_quadrature_at_large_q(q):
    degree = 5
    acos = [(ArcCosineKernel(0), lambda t: 1 - mp.acos(t) / mp.pi)]
    acos.append((ArcCosineKernel(1), lambda t: (mp.sqrt(1 - t * t) + (mp.pi - mp.acos(t)) * t) / mp.pi))
    with mp.workdps(30):
        cq = R(q - 1) / 4 * mp.exp(2 * (mp.loggamma(R(q - 1) / 2) - mp.loggamma(R(q) / 2)))
    acos.append((GineKernel(), lambda t: -cq * mp.sqrt(1 - t * t)))
    for kernel, phi in acos:
        ref = spectrum_mp(phi, q, degree, dps=30)
        got = kernel.spectrum(degree, q=q)
        for l in range(degree + 1):
            if abs(ref[l]) < R(10) ** -25 * max(abs(v) for v in ref):
                assert got[l] == 0.0, (kernel, l)
            else:
                assert got[l] == pytest.approx(float(ref[l]), rel=1e-12), (kernel, l)


def test_uniform_mean_embeddings_in_closed_form():
    assert GineKernel().uniform_mean_embedding(q=65536) == -0.5
    assert PoissonKernel(0.2).uniform_mean_embedding(q=65536) == 1.0
    assert HeatKernel(0.3).uniform_mean_embedding(q=65536) == 1.0
    with mp.workdps(40):
        ref = float((1 - R("0.2")) ** 65535 / R("1.2"))
    assert PoissonKernel(0.2, normalized=True).uniform_mean_embedding(q=65536) == pytest.approx(ref, rel=1e-12)
    # E -||x - y|| on S^2 is -4/3
    assert DistanceKernel(1.0).uniform_mean_embedding(q=3) == pytest.approx(-4.0 / 3.0, rel=1e-14)


@pytest.mark.parametrize("q", [3, 64, 65536])
def test_truncation_error_against_mpmath_tail(q):
    # Poisson: the tail sum_{l > degree} N(q,l) rho^l by mpmath's nsum, against phi(1) - sum_{l <= degree} a_l
    rho, degree = R(1) / (4 * q), 3
    with mp.workdps(50):
        tail = mp.nsum(lambda l: harmonic_dimension_mp(q, int(l)) * rho**l, [degree + 1, mp.inf])
    got = PoissonKernel(float(rho)).truncation_error(degree, q=q)
    phi1 = PoissonKernel(float(rho)).phi_at_one(q=q)
    assert abs(got - float(tail)) <= 1e-15 * phi1 * 4


@pytest.mark.parametrize(
    "kernel", [GaussianKernel(3.0), InverseMultiquadricKernel(0.1, 1.0), PoissonKernel(0.4)], ids=repr
)
def test_spectrum_error_bounds_the_true_error(kernel):
    q, degree = 5, 12
    phi = {
        "gaussian": lambda t: mp.exp(-6 * (1 - t)),
        "imq": lambda t: (R("0.01") + 2 - 2 * t) ** -1,
        "poisson": lambda t: (1 - R("0.16")) / (1 - R("0.8") * t + R("0.16")) ** (R(q) / 2),
    }[kernel.name]
    ref = np.array([float(v) for v in spectrum_mp(phi, q, degree, dps=40)])
    err = np.abs(kernel.spectrum(degree, q=q) - ref)
    assert np.all(err <= kernel.spectrum_error(degree, q=q) + 1e-300)


@pytest.mark.parametrize("order", [0, 1])
def test_arccos_at_large_degree_on_s2(order):
    # q = 3: m_l = E[sigma(t) P_l(t)] = (1/2) int_0^1 t^order P_l(t) dt with scipy-free mpmath Legendre polynomials;
    # a_l = 2 E[r^(2 order)] (2l + 1) m_l^2 with E[r^0] = 1, E[r^2] = 3
    degrees = [0, 1, 2, 3, 51, 52, 100, 101]
    got = ArcCosineKernel(order).spectrum(max(degrees), q=3)[degrees]
    with mp.workdps(40):
        for l, value in zip(degrees, got):
            m = mp.quad(lambda t, l=l: t**order * mp.legendre(l, t), [0, 1]) / 2
            ref = 2 * (3 if order else 1) * (2 * l + 1) * m**2
            if ref < R(10) ** -30:
                assert value == 0.0
            else:
                assert value == pytest.approx(float(ref), rel=1e-12), l


@pytest.mark.parametrize("q", [3, 64])
def test_heat_profile_at_short_time(q):
    # phi(t) = sum_l N(q,l) exp(-time l(l+q-2)) P_{l,q}(t): the profile must carry every term that matters
    time = 2e-3
    kernel = HeatKernel(time)
    t = [-0.5, 0.0, 0.9, 1.0]
    with mp.workdps(30):
        ref = []
        for x in t:
            x = R(x)
            total, prev, cur = mp.mpf(0), mp.mpf(1), x
            for l in range(0, 400):
                p = prev if l == 0 else cur
                total += harmonic_dimension_mp(q, l) * mp.exp(-time * l * (l + q - 2)) * p
                if l >= 1:
                    prev, cur = cur, ((2 * l + q - 2) * x * cur - l * prev) / (l + q - 2)
            ref.append(total)
    got = kernel.profile(np.array(t), q=q)
    phi1 = float(ref[-1])
    np.testing.assert_allclose(got, [float(v) for v in ref], rtol=0, atol=1e-14 * phi1)
    assert kernel.phi_at_one(q=q) == pytest.approx(phi1, rel=1e-14)


# ---- dense grids: every degree up to where a_l underflows, against mpmath; spectrum_error is a bound there ------

_TINY_LOG = math.log(np.finfo(np.float64).tiny)


def assert_bounded_dense(kernel, q, ref_log, *, signs=None):
    """At every degree whose a_l is a normal float64: |a_l - ref| <= spectrum_error, i.e. the relative error
    |expm1(ln a_l - ln ref)| is at most spectrum_error / |a_l| = max(spectrum_rtol, 2 eps M_l) (also the absolute
    error of log_spectrum); returns the largest relative error and the largest relative bound."""
    L = len(ref_log) - 1
    ref = np.array([-np.inf if v is None else float(v) for v in ref_log])
    log_abs, sign = kernel.log_spectrum(L, q=q)
    a, bound = kernel.spectrum(L, q=q), kernel.spectrum_error(L, q=q)
    assert np.all(np.isfinite(log_abs) == np.isfinite(ref)), (kernel, q)
    if signs is not None:
        assert np.all(sign == signs), (kernel, q)
    normal = np.isfinite(ref) & (ref > _TINY_LOG + 1.0) & (ref < 709.0)
    if not np.any(normal):  # every a_l under- or overflows float64: log_spectrum alone was checked
        return 0.0, 0.0
    err = np.abs(np.expm1(log_abs[normal] - ref[normal]))
    relative_bound = bound[normal] / np.abs(a[normal])
    worst = int(np.argmax(err / relative_bound))
    assert np.all(err <= relative_bound), (kernel, q, np.nonzero(normal)[0][worst], err[worst], relative_bound[worst])
    return float(err.max()), float(relative_bound.max())


@functools.cache
def _bessel_reference(gamma, q, L, scaled):
    return tuple(float(v) for v in log_bessel_spectrum_mp(gamma, q, L, scaled=scaled))


def _until_underflow(ref):
    ref = np.asarray(ref)
    return ref[: int(np.nonzero(ref > _TINY_LOG)[0].max()) + 1]


# the corners where the error of a_l exceeds 1e-12: large q, large parameter, degrees up to the underflow
@pytest.mark.parametrize(
    "family, parameter, q, top",
    [
        ("gaussian", 300.0, 1000, 1500),  # 1.9e-12 at l = 1285
        ("exponential", 500.0, 1000, 1700),  # 1.9e-12 at l = 1440
        ("gaussian", 1000.0, 3, 1900),
        ("exponential", 2000.0, 5, 3700),  # the edge of the stated domain, kappa = 2e3
        ("gaussian", 30.0, 65536, 600),
    ],
)
def test_bessel_spectra_within_their_bound_on_dense_grids(family, parameter, q, top):
    if family == "gaussian":
        kernel, ref = GaussianKernel(parameter), _bessel_reference(parameter, q, top, True)
    else:
        kernel, ref = ExponentialKernel(parameter), _bessel_reference(parameter / 2, q, top, False)
    ref = _until_underflow(ref)
    err, bound = assert_bounded_dense(kernel, q, ref)
    assert err > 2e-13  # the grid reaches the degrees where rounding shows
    assert bound <= 20 * max(err, 1e-12)  # and the bound is not vacuous


@pytest.mark.slow
@pytest.mark.parametrize("q", [2, 3, 5, 64, 1000, 65536])
@pytest.mark.parametrize("gamma", [1e-3, 1.0, 30.0, 300.0, 1000.0])
def test_bessel_spectra_within_their_bound_full_grid(q, gamma):
    top = 4000
    assert_bounded_dense(GaussianKernel(gamma), q, _until_underflow(_bessel_reference(gamma, q, top, True)))
    assert_bounded_dense(ExponentialKernel(2 * gamma), q, _until_underflow(_bessel_reference(gamma, q, top, False)))


@pytest.mark.parametrize("q, p", [(1000, 2000), (3, 2000), (65536, 1000), (2, 500)])
def test_monomial_spectrum_within_its_bound_on_dense_grids(q, p):
    # 5.5e-12 at p = 2000, q = 1000, l = 1740: above 1e-12, within spectrum_error
    err, bound = assert_bounded_dense(MonomialKernel(p), q, log_monomial_spectrum_mp(p, q, p))
    assert bound <= 20 * max(err, 1e-12)


@pytest.mark.parametrize("q, p, c", [(3, 300, 1.0), (1000, 200, 3.0), (65536, 200, 0.1)])
def test_polynomial_spectrum_within_its_bound_on_dense_grids(q, p, c):
    assert_bounded_dense(PolynomialKernel(p, c), q, log_polynomial_spectrum_mp(p, c, q))


@pytest.mark.slow
@pytest.mark.parametrize("q, p, c", [(1000, 2000, 1.0), (3, 2000, 0.5)])
def test_polynomial_spectrum_within_its_bound_at_high_degree(q, p, c):
    assert_bounded_dense(PolynomialKernel(p, c), q, log_polynomial_spectrum_mp(p, c, q))


@pytest.mark.parametrize("q", [2, 3, 5, 64, 1000, 65536])
def test_poisson_and_generating_function_within_their_bound_on_dense_grids(q):
    L = 3000
    with mp.workdps(50):
        log_n = log_harmonic_dimensions_mp(q, L)
        for rho in ["0.001", "0.5", "0.99"]:
            r = R(rho)
            poisson = [log_n[l] + l * mp.log(r) for l in range(L + 1)]
            scale = (q - 1) * mp.log(1 - r) - mp.log(1 + r)
            # ln C(l + q - 3, l) by the exact ratios (l + q - 2) / (l + 1)
            log_binom = [mp.mpf(0)]
            for l in range(L):
                log_binom.append(log_binom[-1] + mp.log(mp.mpf(l + q - 2) / (l + 1)))
            generating = [(log_binom[l] + l * mp.log(r)) if q > 2 else (0 if l == 0 else None) for l in range(L + 1)]
            assert_bounded_dense(PoissonKernel(float(rho)), q, poisson)
            assert_bounded_dense(PoissonKernel(float(rho), normalized=True), q, [v + scale for v in poisson])
            assert_bounded_dense(GeneratingFunctionKernel(float(rho)), q, generating)


@pytest.mark.parametrize(
    "q, s", [(2, 0.01), (3, 1.0), (5, 4.0), (64, 1.9), (1000, 7.5), (1000, 1.0), (65536, 0.7), (65536, 3.0)]
)
def test_distance_spectrum_within_its_bound_on_dense_grids(q, s):
    L = 1500
    with mp.workdps(50):
        log_n = log_harmonic_dimensions_mp(q, L)
        a = R(s) / 2
        base = (2 * a + q - 2) * mp.log(2) + mp.loggamma(R(q) / 2) + mp.loggamma(a + R(q - 1) / 2) - mp.log(mp.pi) / 2
        ref, signs = [], []
        for l in range(L + 1):
            poch = mp.rf(-a, l)
            ref.append(None if poch == 0 else log_n[l] + base + mp.log(abs(poch)) - mp.loggamma(a + l + q - 1))
            signs.append(-float(mp.sign(poch)))
    err, _ = assert_bounded_dense(DistanceKernel(s), q, ref, signs=np.array(signs))
    if q <= 64:  # no running sum of logarithms: 1e-12 holds at every degree in low dimension
        assert err <= 1e-12


@pytest.mark.parametrize("q, c, beta", [(3, 0.05, 1.5), (3, 1e-4, 0.5), (64, 1.0, 7.5), (1024, 0.003, 100.0)])
def test_imq_spectrum_within_its_bound(q, c, beta):
    degrees = list(range(0, 41, 4))
    with mp.workdps(40):
        ref = log_ref(imq_spectrum_mp(c, beta, q, degrees))
    kernel = InverseMultiquadricKernel(c, beta)
    got = kernel.log_spectrum(40, q=q)[0][degrees]
    bound = kernel.spectrum_error(40, q=q)[degrees] / kernel.spectrum(40, q=q)[degrees]
    assert np.all(np.abs(np.expm1(got - ref)) <= bound)


# ---- phi(1) in log space ---------------------------------------------------------------------------------------


def test_log_phi_at_one_against_mpmath_where_phi_overflows():
    with mp.workdps(50):
        cases = [
            # notebook 01's example: the Poisson kernel at q = 8192, rho = 1/2 has phi(1) ~ 10^2466
            (PoissonKernel(0.5), 8192, mp.log(R("1.5") / R("0.5") ** 8191)),
            (ExponentialKernel(1000.0), None, R(1000)),
            (PolynomialKernel(2000, 10.0), None, 2000 * mp.log(11)),
            (GeneratingFunctionKernel(0.9), 65536, -65534 * mp.log(R("0.1"))),
            (InverseMultiquadricKernel(1e-200, 2.0), None, -4 * mp.log(R("1e-200"))),
        ]
        for kernel, q, ref in cases:
            assert kernel.log_phi_at_one(q=q) == pytest.approx(float(ref), rel=1e-14), kernel
            with pytest.warns(RuntimeWarning, match="log_phi_at_one"):
                assert kernel.phi_at_one(q=q) == math.inf
    assert round(PoissonKernel(0.5).log_phi_at_one(q=8192) / math.log(10), 2) == 2465.91


def test_log_phi_at_one_agrees_with_phi_at_one_and_is_silent_where_finite():
    import warnings

    kernels = [
        (PoissonKernel(0.5), 130),
        (PoissonKernel(0.5, normalized=True), 8192),
        (GaussianKernel(3.0), None),
        (ExponentialKernel(3.0), None),
        (DistanceKernel(1.0), None),
        (HeatKernel(0.1), 5),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kernel, q in kernels:
            value = kernel.phi_at_one(q=q)
            expected = math.log(value) if value > 0 else -math.inf
            assert kernel.log_phi_at_one(q=q) == pytest.approx(expected, rel=1e-14, abs=1e-300), kernel
    assert PoissonKernel(0.5).phi_at_one(q=130) == pytest.approx(1.5 * 2.0**129, rel=1e-14)  # 1.02e39


_EPS = float(np.finfo(float).eps)


@pytest.mark.parametrize("q", [3, 130, 8192, 65536])
@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9])
def test_log_phi_at_one_of_sums_and_multiples_against_mpmath(q, rho):
    """Sums and positive multiples keep phi(1) in log space where it overflows float64 (and where only the sum
    does): ln phi(1) within 8 ulps of 1 + |ln c| + |ln phi_terms(1)| (the logarithms combined), on a grid from
    below the overflow edge to far beyond."""
    with mp.workdps(60):
        log_poisson = mp.log1p(R(rho)) - (q - 1) * mp.log1p(-R(rho))
        for kappa in [1.0, 700.0, 709.5, 710.0, 750.0, 1000.0, 5000.0]:
            for c in [1e-300, 0.5, 3.0, 1e300]:
                k = c * (PoissonKernel(rho) + ExponentialKernel(kappa))
                log_sum = mp.log(mp.exp(log_poisson) + mp.exp(R(kappa)))
                ref = mp.log(c) + log_sum
                tol = 8 * _EPS * (1.0 + abs(math.log(c)) + float(abs(log_sum)))
                assert abs(k.log_phi_at_one(q=q) - float(ref)) <= tol, (k, q)
                if float(ref) > 709.8:
                    with pytest.warns(RuntimeWarning, match="log_phi_at_one"):
                        assert k.phi_at_one(q=q) == math.inf
                else:
                    assert k.phi_at_one(q=q) == pytest.approx(float(mp.exp(ref)), rel=1e-13)


def test_log_phi_at_one_of_a_sum_whose_terms_fit_but_whose_sum_overflows():
    k = ExponentialKernel(709.0) + ExponentialKernel(709.5) + ExponentialKernel(709.7)
    with mp.workdps(40):
        ref = float(mp.log(mp.exp(709) + mp.exp(R("709.5")) + mp.exp(R("709.7"))))
    assert abs(k.log_phi_at_one(q=3) - ref) <= 8 * _EPS * ref
    with pytest.warns(RuntimeWarning, match="log_phi_at_one"):
        assert k.phi_at_one(q=3) == math.inf


@pytest.mark.parametrize(("kappa", "q", "degree"), [(800.0, 3, 5), (800.0, 3, 400), (2000.0, 64, 30), (750.0, 5, 0)])
def test_truncation_error_beyond_float64_warns_with_the_relative_tail(kappa, q, degree):
    """phi(1) beyond float64: the tail cannot be formed as a float64 difference; inf with a RuntimeWarning giving
    the tail relative to phi(1), held against mpmath's Bessel series (3 significant digits printed)."""
    import re

    kernel = ExponentialKernel(kappa)
    with pytest.warns(RuntimeWarning, match="beyond float64") as caught:
        assert kernel.truncation_error(degree, q=q) == math.inf
    printed = float(re.search(r"relative to phi\(1\) the tail is (\S+)", str(caught[0].message)).group(1))
    with mp.workdps(60):
        head = mp.fsum(harmonic_dimension_mp(q, l) * lambda_exp_mp(kappa, q, l) for l in range(degree + 1))
        ref = float(1 - head / mp.exp(R(kappa)))
    assert printed == pytest.approx(ref, rel=5e-3, abs=1e-12)


def test_spectrum_beyond_float64_warns_and_log_spectrum_has_it():
    """Coefficients that overflow float64 are inf with a RuntimeWarning naming the first degree (they were a silent
    inf); log_spectrum has them, against mpmath's Bessel series."""
    import warnings

    kernel, q = ExponentialKernel(800.0), 3
    with pytest.warns(RuntimeWarning, match=r"4 Gegenbauer coefficients .* beyond float64, the first at degree 0"):
        a = kernel.spectrum(3, q=q)
    assert np.all(a == np.inf)
    with mp.workdps(40):
        ref = [float(mp.log(harmonic_dimension_mp(q, l) * lambda_exp_mp(800, q, l))) for l in range(4)]
    np.testing.assert_allclose(kernel.log_spectrum(3, q=q)[0], ref, rtol=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.all(np.isfinite(ExponentialKernel(700.0).spectrum(3, q=q)))  # e^700: within range, silent


def test_truncation_error_beyond_float64_of_a_sum_and_finite_where_phi_fits():
    import warnings

    with pytest.warns(RuntimeWarning, match="beyond float64"):
        assert (PoissonKernel(0.5) + ExponentialKernel(1.0)).truncation_error(10, q=8192) == math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = (ExponentialKernel(700.0) + ExponentialKernel(1.0)).truncation_error(3, q=3)
    with mp.workdps(60):
        head = mp.fsum(
            harmonic_dimension_mp(3, l) * (lambda_exp_mp(700, 3, l) + lambda_exp_mp(1, 3, l)) for l in range(4)
        )
        ref = mp.exp(700) + mp.e - head
    assert abs(got - float(ref)) <= 4e-15 * float(mp.exp(700))


# ---- extreme parameters --------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [1e10, 1e300, 1e308])
def test_gaussian_spectrum_at_huge_gamma_underflows_correctly(gamma):
    # a_l -> N(q, l) / (4 gamma) on S^2 (the kernel tends to a point mass): 2.5e-309 at gamma = 1e308 (subnormal)
    a = GaussianKernel(gamma).spectrum(3, q=3)
    if gamma < 1e100:
        ref = [float(mp.exp(v)) for v in log_bessel_spectrum_mp(gamma, 3, 3)]
    else:  # the relative corrections to (2l + 1) / (4 gamma) are O(l^2 / gamma), far below float64's resolution
        ref = [(2 * l + 1) / 4.0 / gamma for l in range(4)]
    np.testing.assert_allclose(a, ref, rtol=1e-12)  # 2.5e-309 is subnormal, still 14 digits
    assert np.all(GaussianKernel(gamma).spectrum(3, q=1000) == 0.0)  # gamma^-(q-1)/2 underflows


def test_imq_spectrum_at_huge_and_tiny_c():
    a = InverseMultiquadricKernel(1e100, 1.0).spectrum(2, q=3)
    assert a[0] == pytest.approx(1e-200, rel=1e-12) and a[1] == 0.0
    assert np.all(InverseMultiquadricKernel(1e200, 1.0).spectrum(2, q=3) == 0.0)


def test_imq_spectrum_refuses_quadratures_that_would_run_for_minutes():
    import time

    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"beyond the limit of 4e\+06 node-degree pairs"):
        InverseMultiquadricKernel(1e-4, 1e8).spectrum(300, q=3)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("order", [0, 1])
def test_arccos_within_its_bound_to_degree_1500_on_s2(order):
    # q = 3: m_l = (1/2) int_0^1 t^order P_l, with int_0^1 P_l = (P_{l-1}(0) - P_{l+1}(0)) / (2l + 1) (exact values of
    # mpmath's Legendre polynomials at 0) and t P_l = ((l + 1) P_{l+1} + l P_{l-1}) / (2l + 1)
    L = 1500
    with mp.workdps(40):
        p0 = [mp.legendre(n, 0) for n in range(L + 3)]

        def integral(l):
            return R(1) if l == 0 else (p0[l - 1] - p0[l + 1]) / (2 * l + 1)

        ref = []
        for l in range(L + 1):
            m = integral(l) / 2 if order == 0 else ((l + 1) * integral(l + 1) + l * integral(l - 1)) / (2 * l + 1) / 2
            value = 2 * (3 if order else 1) * (2 * l + 1) * m**2
            ref.append(None if value < R(10) ** -300 else mp.log(value))
    err, _ = assert_bounded_dense(ArcCosineKernel(order), 3, ref)
    assert err > 1e-12  # the grid reaches the degrees where the bound must exceed 1e-12


def test_extreme_parameters_give_values_or_name_the_problem():
    # s -> 0: -||x - y||^s -> -1 + s ln||x - y||: a_0 -> -1 and a_l ~ s / 2 * (something finite), never a NaN
    a = DistanceKernel(1e-300).spectrum(3, q=3)
    assert a[0] == pytest.approx(-1.0, rel=1e-15) and np.all((a[1:] > 0) & (a[1:] < 1e-299))
    assert np.all(np.isfinite(DistanceKernel(1e10).log_spectrum(5, q=3)[0]))
    with pytest.raises(ValueError, match=r"c\^2 underflows float64"):
        InverseMultiquadricKernel(1e-300, 1e-300).spectrum(3, q=3)


@pytest.mark.slow
def test_gine_within_its_bound_at_high_degree_on_s2():
    # q = 3: phi(t) = -(2/pi) sqrt(1 - t^2), a_l = (2l + 1)/2 int_0^pi phi(cos th) P_l(cos th) sin th dth
    kernel, L = GineKernel(), 400
    log_abs, bound = kernel.log_spectrum(L, q=3)[0], kernel.spectrum_error(L, q=3) / np.abs(kernel.spectrum(L, q=3))
    with mp.workdps(30):
        for l in [2, 50, 100, 200, 400]:
            f = lambda th, l=l: -2 / mp.pi * mp.sin(th) ** 2 * mp.legendre(l, mp.cos(th))  # noqa: E731
            ref = (2 * l + 1) / R(2) * mp.quad(f, mp.linspace(0, mp.pi, 40))
            assert abs(float(mp.expm1(R(log_abs[l]) - mp.log(abs(ref))))) <= bound[l], l
