"""The accuracy each kernel family states, held against mpmath closed forms at the edges of its domain.

The references are independent of the code under test: Bessel functions (mpmath.besseli) for the exponential and
Gaussian kernels, the Gauss hypergeometric function (mpmath.hyp2f1) for the inverse multiquadric kernel (which the
code computes as a Gaussian-mixture integral), Gamma-function formulas at 50 digits for the rest.
"""

import math

import mpmath as mp
import numpy as np
import pytest
from _mpref import harmonic_dimension_mp, spectrum_mp

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
        # MATH.md's form of the Riesz coefficients (sqrt(pi) and 2^(2a+q-2)), a = s/2
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
