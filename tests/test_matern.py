"""MaternKernel: spectrum, profile and normalisation against independent mpmath computations; eigenvalues;
learnable hyperparameters (gradients against finite differences); GeometricKernels' parameterisation."""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
import pytest

from dotkernels import (
    ExponentialKernel,
    GaussianKernel,
    HeatKernel,
    MaternKernel,
    PolynomialKernel,
    SpectrumAccuracyWarning,
    parse_kernel,
)
from dotkernels.kernels.matern import _matern_plan

R = mp.mpf


def _c(nu, ell):
    return 2 * R(nu) / R(ell) ** 2


def _profile(kernel, t, q):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpectrumAccuracyWarning)
        return np.asarray(kernel.profile(t, q=q))


def _bound(nu, ell, q):
    """The plan's own error bound relative to phi(1)."""
    plan = _matern_plan(2 * nu / ell**2, nu, q)
    return 2.0 * plan.error / plan.total


# ---- independent references ---------------------------------------------------------------------------------------


def _bessel_matern(x, beta, s):
    r""":math:`\hat f(x) = \frac{1}{2\pi}\int (\omega^2 + \beta^2)^{-s} e^{i\omega x} d\omega` (Euclidean Matérn)."""
    x = abs(x)
    if x == 0:
        return mp.gamma(s - R(1) / 2) / (2 * mp.sqrt(mp.pi) * mp.gamma(s)) * beta ** (1 - 2 * s)
    return (x / (2 * beta)) ** (s - R(1) / 2) * mp.besselk(s - R(1) / 2, beta * x) / (mp.sqrt(mp.pi) * mp.gamma(s))


def _bessel_matern_derivative(x, beta, s):
    # d/dx x^m K_m(beta x) = -beta x^m K_{m-1}(beta x)
    sign = 1 if x >= 0 else -1
    x = abs(x)
    m = s - R(1) / 2
    return -sign * beta * x**m * mp.besselk(m - 1, beta * x) / ((2 * beta) ** m * mp.sqrt(mp.pi) * mp.gamma(s))


def _lattice(f, theta, half):
    """2 pi sum_m (+-1)^m f(theta + 2 pi m) (Poisson summation over Z, or over Z + 1/2 with the signs)."""
    total = f(theta)
    scale, m = abs(total), 1
    while True:
        term = f(theta + 2 * mp.pi * m) + f(theta - 2 * mp.pi * m)
        total += (-1) ** m * term if half else term
        scale = max(scale, abs(term))
        if abs(term) < R(10) ** (-mp.mp.dps) * scale or m > 400:
            return 2 * mp.pi * total
        m += 1


def circle_reference(theta, nu, ell):
    r"""q = 2: :math:`\sum_{n \in \mathbb{Z}} (n^2 + c)^{-\nu-1/2} e^{in\theta}`, by Poisson summation."""
    c, s = _c(nu, ell), R(nu) + R(1) / 2
    return _lattice(lambda x: _bessel_matern(x, mp.sqrt(c), s), theta, half=False)


def sphere_reference(theta, nu, ell):
    r"""q = 3 by Mehler–Dirichlet, :math:`P_l(\cos\theta) = \frac{\sqrt2}{\pi}\int_\theta^\pi
    \frac{\sin((l+\frac12)\varphi)}{\sqrt{\cos\theta - \cos\varphi}} d\varphi`: the profile is
    :math:`\frac{\sqrt2}{\pi}\int_\theta^\pi \frac{-g'(\varphi)}{\sqrt{\cos\theta-\cos\varphi}} d\varphi` with
    :math:`g(\varphi) = \sum_{n \in \mathbb{Z}+1/2} (n^2 + c - 1/4)^{-s} e^{in\varphi}` (Poisson summation)."""
    c, s = _c(nu, ell), R(nu) + 1
    beta = mp.sqrt(c - R(1) / 4)

    def integrand(u):  # phi = theta + u^2 removes the endpoint singularity; cos a - cos b as a product of sines
        phi = theta + u * u
        g = -_lattice(lambda x: _bessel_matern_derivative(x, beta, s), phi, half=True)
        return 2 * u * g / mp.sqrt(2 * mp.sin((phi + theta) / 2) * mp.sin(u * u / 2))

    width = 1 / beta
    ends = sorted({*[p for p in (theta + width, theta + 4 * width, mp.pi / 2) if theta < p < mp.pi], mp.pi})
    return mp.sqrt(2) / mp.pi * mp.quad(integrand, [mp.mpf(0)] + [mp.sqrt(p - theta) for p in ends])


def normaliser_reference(nu, ell, q):
    r""":math:`\sum_l N(q,l) (c + l(l+q-2))^{-s}`: 400 terms, then Euler–Maclaurin (mpmath's sumem) on the rest."""
    c, s = _c(nu, ell), R(nu) + R(q - 1) / 2

    def term(l):
        n = mp.binomial(l + q - 3, l) * (2 * l + q - 2) / (q - 2) if q > 2 else (1 if l == 0 else 2)
        return n * (c + l * (l + q - 2)) ** (-s)

    return mp.fsum(term(l) for l in range(400)) + mp.sumem(term, [400, mp.inf])


def subordination_reference(t, nu, ell, q, theta):
    r"""Any q, t away from 1: :math:`\frac{1}{\Gamma(s)}\int_0^\infty \tau^{s-1} e^{-c\tau} H_\tau(t) d\tau`, the
    heat kernel :math:`H_\tau = \sum_l N(q,l) e^{-\tau l(l+q-2)} P_{l,q}` summed directly; below
    :math:`\tau_0 = \theta^2/400` the heat kernel is below :math:`e^{-90}` of its diagonal and is left out."""
    c, s = _c(nu, ell), R(nu) + R(q - 1) / 2
    t = R(t)

    def heat(tau):
        total, p_prev, p, l, n_l = mp.mpf(0), mp.mpf(0), mp.mpf(1), 0, mp.mpf(1)
        while True:
            term = n_l * mp.exp(-tau * l * (l + q - 2)) * p
            total += term
            if l > 10 and abs(term) < R(10) ** (-35) * abs(total) and l * (l + q - 2) * tau > 50:
                return total
            # next normalised Gegenbauer polynomial and harmonic dimension
            p_prev, p = p, ((2 * l + q - 2) * t * p - l * p_prev) / (l + q - 2)
            n_l = n_l * (l + q - 2) * (2 * l + q) / ((l + 1) * (2 * l + q - 2)) if (q > 2 or l > 0) else mp.mpf(2)
            l += 1

    tau0 = R(theta) ** 2 / 400
    f = lambda tau: tau ** (s - 1) * mp.exp(-c * tau) * heat(tau)  # noqa: E731
    hi = 60 / c + 60
    return mp.quad(f, [tau0, 10 * tau0, 100 * tau0, 1 / c, hi]) / mp.gamma(s)


def direct_reference(t, nu, ell, q, degree):
    r"""Large q, where the series converges fast: :math:`\sum_{l \le L} a_l P_{l,q}(t)` in mpmath, and the remaining
    :math:`\sum_{l > L} a_l` (a bound on the rest, since :math:`|P_{l,q}| \le 1`) by Euler–Maclaurin."""
    c, s = _c(nu, ell), R(nu) + R(q - 1) / 2
    t = R(t)

    def term(l):
        return mp.binomial(l + q - 3, l) * (2 * l + q - 2) / (q - 2) * (c + l * (l + q - 2)) ** (-s)

    total, p_prev, p = mp.mpf(0), mp.mpf(0), mp.mpf(1)
    for l in range(degree + 1):
        total += term(l) * p
        p_prev, p = p, ((2 * l + q - 2) * t * p - l * p_prev) / (l + q - 2)
    return total, mp.sumem(term, [degree + 1, mp.inf])


# ---- profile --------------------------------------------------------------------------------------------------------

CASES = [(0.5, 1.0), (0.5, 0.3), (0.5, 0.1), (1.5, 0.5), (1.5, 0.2), (2.5, 0.3), (2.5, 0.1), (0.7, 0.4), (1.0, 0.5)]
# a dense grid in theta with t -> 1 resolved (theta down to 1e-7, where t = cos(theta) is 1 - 5e-15)
THETAS = np.concatenate([[0.0], np.geomspace(1e-7, 0.1, 12), np.linspace(0.15, math.pi, 12)])


@pytest.mark.parametrize("nu, ell", CASES)
def test_profile_on_the_circle_against_poisson_summation(nu, ell):
    t = np.cos(THETAS)
    with mp.workdps(30):
        ref = np.array([float(circle_reference(mp.acos(R(float(x))), nu, ell)) for x in t])
    k = MaternKernel(nu, ell)
    got = _profile(k, t, 2)
    err = np.max(np.abs(got - ref / ref[0]))
    bound = _bound(nu, ell, 2)
    assert err <= max(bound, 1e-15)  # the computed bound holds
    if bound <= 1e-12:
        assert err <= 1e-12
    unnormalised = _profile(MaternKernel(nu, ell, normalize=False), t, 2)
    np.testing.assert_allclose(unnormalised, ref, rtol=0, atol=max(bound, 1e-15) * ref[0] * 1.01)


@pytest.mark.parametrize("nu, ell", [(0.5, 0.3), (1.5, 0.2), (2.5, 0.1), (0.7, 0.4), (1.0, 0.5)])
def test_table_route_on_the_circle_against_poisson_summation(nu, ell):
    """Calls of at least 2^15 points read the tabulated profile: within profile_error of the mpmath reference."""
    from dotkernels.kernels import matern

    k = MaternKernel(nu, ell)
    t = np.cos(THETAS)
    big = np.resize(t, matern._TABLE_MIN_POINTS)
    assert matern._use_table(k._plan(2), big, np)
    with mp.workdps(30):
        ref = np.array([float(circle_reference(mp.acos(R(float(x))), nu, ell)) for x in t])
    got = _profile(k, big, 2)[: t.size]
    np.testing.assert_allclose(got, ref / ref[0], rtol=0, atol=k.profile_error(q=2))
    assert np.max(np.abs(got - _profile(k, t, 2))) <= k.profile_error(q=2)  # and of the direct route


@pytest.mark.slow  # about a minute per case (Bessel functions inside a quadrature, mpmath)
@pytest.mark.parametrize("nu, ell", [(0.5, 1.0), (1.5, 0.4), (2.5, 0.3)])
def test_profile_on_the_two_sphere_against_mehler_dirichlet(nu, ell):
    thetas = np.array([1e-3, 0.05, 1.0, 2.5])
    t = np.cos(thetas)
    with mp.workdps(16):
        z = normaliser_reference(nu, ell, 3)
        ref = np.array([float(sphere_reference(mp.acos(R(float(x))), nu, ell) / z) for x in t])
    got = _profile(MaternKernel(nu, ell), t, 3)
    bound = max(_bound(nu, ell, 3), 1e-14)
    np.testing.assert_allclose(got, ref, rtol=0, atol=bound + 1e-14)  # the bound holds (the reference: 16 digits)


HIGH_Q = [(5, 0.5, 0.5), (5, 1.5, 0.3), (10, 0.5, 0.3), (10, 2.5, 0.2)]


@pytest.mark.parametrize("q, nu, ell", HIGH_Q[:1])
def test_profile_in_dimension_five_against_heat_subordination(q, nu, ell):
    test_profile_in_higher_dimensions_against_heat_subordination(q, nu, ell)


@pytest.mark.slow  # 5-30 s a case (direct heat-kernel sums inside a quadrature, mpmath)
@pytest.mark.parametrize("q, nu, ell", HIGH_Q)
def test_profile_in_higher_dimensions_against_heat_subordination(q, nu, ell):
    thetas = np.array([0.5, 1.2, 2.5, math.pi])
    with mp.workdps(20):
        z = normaliser_reference(nu, ell, q)
        ref = np.array([float(subordination_reference(math.cos(th), nu, ell, q, th) / z) for th in thetas])
    got = _profile(MaternKernel(nu, ell), np.cos(thetas), q)
    np.testing.assert_allclose(got, ref, rtol=0, atol=max(_bound(nu, ell, q), 1e-14))


@pytest.mark.parametrize("q, nu, ell", [(100, 2.5, 0.07), (1000, 1.5, 0.007), (1000, 1.5, 0.005), (1000, 2.5, 0.007)])
def test_profile_at_large_q_against_direct_summation(q, nu, ell):
    """Where the spectrum decays fast (large q, lengthscales of order 1/q): the series summed in mpmath."""
    t = np.array([-1.0, -0.3, -0.05, 0.0, 0.04, 0.1, 0.5, 0.9, 0.999, 1.0])
    with mp.workdps(30):
        degree = 1500 if q < 1000 else 600
        z, rest = direct_reference(1, nu, ell, q, degree)
        assert rest < 1e-14 * z  # the terms left out: at most this much at any t
        ref = np.array([float(direct_reference(x, nu, ell, q, degree)[0] / z) for x in t])
    kernel = MaternKernel(nu, ell)
    bound = kernel.profile_error(q=q)
    assert bound < 1e-12
    np.testing.assert_allclose(_profile(kernel, t, q), ref, rtol=0, atol=max(bound, 1e-14) + float(rest / z))


@pytest.mark.parametrize("q", [2, 3, 5, 10, 100, 1000])
@pytest.mark.parametrize("nu, ell", [(0.5, 0.3), (1.5, 0.1), (2.5, 1.0), (0.75, 0.05), (3.0, 0.2)])
def test_normaliser_and_spectrum_against_mpmath(q, nu, ell):
    k = MaternKernel(nu, ell)
    with mp.workdps(30):
        z = normaliser_reference(nu, ell, q)
        c, s = _c(nu, ell), R(nu) + R(q - 1) / 2
        ref = [
            float(
                (mp.binomial(l + q - 3, l) * (2 * l + q - 2) / (q - 2) if q > 2 else (1 if l == 0 else 2))
                * (c + l * (l + q - 2)) ** (-s)
                / z
            )
            for l in range(6)
        ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpectrumAccuracyWarning)
        got = k.spectrum(5, q=q)
        lam = k.eigenvalues(5, q=q)
        # the normalisation constant Z = sum_l N(q,l) mu_l: relative error within the plan's bound
        log_z = MaternKernel(nu, ell, normalize=False).log_phi_at_one(q=q)
    bound = max(_bound(nu, ell, q), 1e-14)
    with mp.workdps(30):
        assert abs(log_z - float(mp.log(z))) <= 2 * bound + 4e-16 * abs(log_z)
    big = np.array(ref) > 1e-290
    # the logarithms of N(q, l) and of mu_l = (c + l(l+q-2))^-s are rounded: 4 eps times their size
    rtol = 2 * bound + 4e-16 * (10 + abs(log_z) + float(s) * math.log(float(c) + 5 * (q + 3)))
    np.testing.assert_allclose(got[big], np.array(ref)[big], rtol=rtol)
    # the Mercer eigenvalues are a_l / N(q, l) = mu_l / Z
    with mp.workdps(30):
        mu = [float((c + l * (l + q - 2)) ** (-s) / z) for l in range(6)]
    np.testing.assert_allclose(lam[big], np.array(mu)[big], rtol=rtol)


def test_profile_is_cheap_and_normalised():
    import time

    X = np.random.default_rng(0).standard_normal((200, 3))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    k = MaternKernel(1.5, 0.5)
    k.gram(X[:2])  # the plan, once
    start = time.perf_counter()
    K = k.gram(X)
    assert time.perf_counter() - start < 2.0
    np.testing.assert_allclose(np.diag(K), 1.0, rtol=0, atol=1e-14)
    assert np.linalg.eigvalsh(K).min() > -1e-12


def test_heat_limit():
    """nu = inf is the heat kernel at time lengthscale^2 / 2, divided by its value at t = 1."""
    t = np.linspace(-1, 1, 11)
    heat = HeatKernel(time=0.5 * 0.4**2)
    for q in (2, 3, 10):
        got = MaternKernel(math.inf, 0.4).profile(t, q=q)
        np.testing.assert_allclose(got, heat.profile(t, q=q) / heat.phi_at_one(q=q), rtol=1e-13, atol=1e-15)
    # and the Matérn kernels approach it as nu grows
    far = MaternKernel(400.0, 0.4).profile(t, q=3)
    assert np.max(np.abs(far - MaternKernel(math.inf, 0.4).profile(t, q=3))) < 2e-3


STATED_NUS = [0.5, 1.0, 1.5, 2.0, 2.5, 3.5, math.inf]
STATED_QS = [2, 3, 5, 10, 100, 1000]


@pytest.mark.parametrize("nu", STATED_NUS)
def test_stated_bounds(nu):
    """The Notes of MaternKernel: profile_error at most 1e-12 (here at the ends of the lengthscales, q = 3 and 10;
    the whole grid below)."""
    for q in (3, 10):
        for ell in (0.01, 3.0):
            assert MaternKernel(nu, ell).profile_error(q=q) <= 1e-12


@pytest.mark.slow  # about 5 minutes on a loaded 2-core machine: 462 plans and tables
@pytest.mark.parametrize("q", STATED_QS)
def test_stated_bounds_on_the_whole_grid(q):
    for nu in STATED_NUS:
        for ell in (0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 3.0):
            bound = MaternKernel(nu, ell).profile_error(q=q)
            assert bound <= 1e-12, (nu, ell, q, bound)


def test_small_lengthscale_warns_with_the_achieved_accuracy():
    with pytest.warns(SpectrumAccuracyWarning, match="accurate to"):
        MaternKernel(2.5, 0.0005).profile(0.5, q=3)


# ---- eigenvalues --------------------------------------------------------------------------------------------------


def _product_rule(n_theta: int, n_phi: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre in cos(theta) times equispaced phi: exact on S^2 for polynomials of degree < 2 n_theta."""
    x, w = np.polynomial.legendre.leggauss(n_theta)
    phi = 2 * np.pi * np.arange(n_phi) / n_phi
    st = np.sqrt(1 - x**2)
    pts = np.stack([np.outer(st, np.cos(phi)).ravel(), np.outer(st, np.sin(phi)).ravel(), np.repeat(x, n_phi)], axis=1)
    return pts, np.repeat(w / 2, n_phi) / n_phi


@pytest.mark.parametrize(
    "kernel",
    [MaternKernel(2.5, 0.6), MaternKernel(0.5, 0.8), GaussianKernel(1.5), ExponentialKernel(2.0), HeatKernel(0.05)],
    ids=repr,
)
def test_eigenvalues_are_those_of_the_integral_operator(kernel):
    """Funk–Hecke: W^(1/2) K W^(1/2) on a quadrature rule has eigenvalue lambda_l with multiplicity 2l + 1."""
    pts, w = _product_rule(30, 60)
    K = kernel.gram(pts)
    sw = np.sqrt(w)
    eig = np.sort(np.linalg.eigvalsh(sw[:, None] * K * sw[None, :]))[::-1]
    lam, mult = kernel.eigenvalues(5, q=3, return_multiplicities=True)
    assert mult.tolist() == [1, 3, 5, 7, 9, 11]
    order = np.argsort(-lam)
    expected = np.repeat(lam[order], mult[order])
    # the rule is exact up to degree 59; the kernels' spectra beyond are far below the tolerance
    # (the Matérn spectra decay like l^(-1 - 2 nu): their tails beyond degree 59 set the tolerance)
    tol = {0.5: 2e-4, 2.5: 1e-5}.get(kernel.nu, 1e-9) if isinstance(kernel, MaternKernel) else 1e-9
    np.testing.assert_allclose(eig[: expected.size], expected, rtol=tol, atol=tol * lam[0])


def test_eigenvalues_in_log_space_at_huge_q():
    k = MaternKernel(1.5, 0.01)
    log_lam, sign = k.log_eigenvalues(3, q=100000)
    assert np.all(np.isfinite(log_lam)) and np.all(sign == 1)
    _, mult = k.eigenvalues(2, q=100000, return_multiplicities=True)
    assert mult.dtype == np.int64 and mult.tolist() == [1, 100000, 99999 * 100002 // 2]
    _, mult = GaussianKernel(1.0).eigenvalues(6, q=2**20, return_multiplicities=True)
    assert mult.dtype == object and int(mult[6]) == __import__("dotkernels").harmonic_dimension(6, q=2**20)


# ---- GeometricKernels' parameterisation ---------------------------------------------------------------------------


@pytest.mark.parametrize("nu", [0.5, 1.5, 2.5, math.inf])
@pytest.mark.parametrize("dim", [2, pytest.param(4, marks=pytest.mark.slow)])  # dim 4: 30-50 s a case (theirs)
def test_same_kernel_as_geometric_kernels(nu, dim):
    gk = pytest.importorskip("geometric_kernels")  # noqa: F841 (not a dependency: compared where installed)
    from geometric_kernels.kernels import MaternGeometricKernel
    from geometric_kernels.spaces import Hypersphere

    kernel = MaternGeometricKernel(Hypersphere(dim=dim))
    params = kernel.init_params()
    params["nu"], params["lengthscale"] = np.array([nu]), np.array([0.7])
    ours = MaternKernel(nu, 0.7)
    theirs = np.asarray(kernel.eigenvalues(params)).ravel()
    mine = ours.eigenvalues(theirs.size - 1, q=dim + 1)
    # they normalise by the sum over their 25 levels: the ratios are the same
    np.testing.assert_allclose(theirs / theirs[0], mine / mine[0], rtol=1e-12)
    X = np.random.default_rng(1).standard_normal((6, dim + 1))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    # at this lengthscale their truncation (25 levels) errs by up to 5e-2 of phi(1) at nu = 1/2, 1e-3 beyond
    np.testing.assert_allclose(np.asarray(kernel.K(params, X, X)), ours.gram(X), atol=5e-2 if nu == 0.5 else 1e-3)


# ---- parameters ---------------------------------------------------------------------------------------------------


def test_repr_round_trip_and_equality():
    for k in (MaternKernel(1.5, 0.5), MaternKernel(math.inf, 0.2), MaternKernel(0.5, 2.0, normalize=False)):
        assert parse_kernel(repr(k)) == k
    assert parse_kernel("matern:nu=1.5,lengthscale=0.5") == MaternKernel(1.5, 0.5)
    assert parse_kernel("matern:0.5,0.1") == MaternKernel(0.5, 0.1)
    assert parse_kernel("matern:nu=inf,lengthscale=0.3") == MaternKernel(math.inf, 0.3)
    assert MaternKernel(1.5, 0.5) != MaternKernel(1.5, 0.6)
    assert MaternKernel(1.5, 0.5).has_corner is False and MaternKernel(0.5, 0.5).has_corner is True
    # phi'(1) is infinite also at nu = 1 (a logarithmic term)
    assert MaternKernel(1.0, 0.5).has_corner is True and MaternKernel(1.0, 0.5).derivative(1.0, q=3) == math.inf


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: MaternKernel(0.0, 1.0), "nu must be > 0"),
        (lambda: MaternKernel(-1.0, 1.0), "nu must be > 0"),
        (lambda: MaternKernel("a", 1.0), "nu must be"),
        (lambda: MaternKernel(1.5, 0.0), "lengthscale must be > 0"),
        (lambda: MaternKernel(1.5, math.nan), "lengthscale must be finite"),
        (lambda: MaternKernel(1.5, np.ones(2)), "lengthscale must be a real number or a 0-d array"),
        (lambda: MaternKernel(1.5, 1.0, normalize=1), "normalize must be a bool"),
        (lambda: MaternKernel(1.5, 1.0).profile(0.5), "q is required"),
        (lambda: MaternKernel(1.5, 1.0).eigenvalues(-1, q=3), "degree must be"),
        (lambda: MaternKernel(1.5, 1.0).eigenvalues(3, q=1), "q must be"),
    ],
)
def test_bad_input(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bad_tensor_hyperparameters():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="lengthscale must be > 0"):
        MaternKernel(1.5, torch.tensor(-1.0))
    with pytest.raises(TypeError, match="0-d"):
        GaussianKernel(torch.ones(2))
    with pytest.raises(TypeError, match="real floating"):
        GaussianKernel(torch.tensor(1))


# ---- learnable hyperparameters ------------------------------------------------------------------------------------

LEARNABLE = [
    ("matern 1/2", lambda p: MaternKernel(0.5, p), 0.4),
    ("matern 3/2", lambda p: MaternKernel(1.5, p), 0.3),
    ("matern 2, unnormalised", lambda p: MaternKernel(2.0, p, normalize=False), 0.7),
    ("matern inf", lambda p: MaternKernel(math.inf, p), 0.5),
    ("heat", lambda p: HeatKernel(time=p), 0.1),
    ("gaussian", lambda p: GaussianKernel(gamma=p), 1.3),
    ("exponential", lambda p: ExponentialKernel(kappa=p), 0.7),
    ("polynomial", lambda p: PolynomialKernel(3, c=p), 0.5),
    ("outputscale", lambda p: p * MaternKernel(2.5, 0.5), 2.0),
]


@pytest.mark.parametrize("make, value", [(m, v) for _, m, v in LEARNABLE], ids=[n for n, _, _ in LEARNABLE])
def test_gradients_against_finite_differences(make, value):
    torch = pytest.importorskip("torch")
    X = torch.from_numpy(_product_rule(4, 5)[0])
    t = torch.linspace(-1, 0.98, 9, dtype=torch.float64)
    p = torch.tensor(value, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: make(p).gram(X), (p,))
    assert torch.autograd.gradcheck(lambda p: make(p).profile(t, q=3), (p,))
    assert torch.autograd.gradcheck(lambda p: make(p).derivative(t, q=3), (p,))
    # the host methods read the value
    k = make(p)
    np.testing.assert_allclose(k.spectrum(4, q=3), make(value).spectrum(4, q=3), rtol=1e-14)
    assert repr(k) == repr(make(value)) and k == make(value)


def test_in_place_updates_are_seen_by_the_caches():
    torch = pytest.importorskip("torch")
    for make, value in [(lambda p: HeatKernel(time=p), 0.1), (lambda p: MaternKernel(1.5, p), 0.5)]:
        p = torch.tensor(value, dtype=torch.float64, requires_grad=True)
        k = make(p)
        t = torch.tensor([0.3], dtype=torch.float64)
        before = (k.spectrum(3, q=3).copy(), float(k.profile(t, q=3)))
        with torch.no_grad():
            p.mul_(2.0)
        np.testing.assert_allclose(k.spectrum(3, q=3), make(2 * value).spectrum(3, q=3), rtol=1e-14)
        assert float(k.profile(t, q=3)) == pytest.approx(float(make(2 * value).profile(0.3, q=3)), rel=1e-13)
        assert not np.allclose(before[0], k.spectrum(3, q=3))


def test_learning_the_lengthscale_by_marginal_likelihood():
    """A few Adam steps on the GP marginal likelihood move the lengthscale towards the one of the data."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    K = MaternKernel(1.5, 0.3).gram(X) + 1e-4 * np.eye(120)
    y = torch.from_numpy(np.linalg.cholesky(K) @ rng.standard_normal(120))
    Xt = torch.from_numpy(X)
    log_ell = torch.tensor(math.log(1.0), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([log_ell], lr=0.1)
    for _ in range(40):
        opt.zero_grad()
        K = MaternKernel(1.5, log_ell.exp()).gram(Xt) + 1e-4 * torch.eye(120, dtype=torch.float64)
        L = torch.linalg.cholesky(K)
        alpha = torch.cholesky_solve(y[:, None], L)
        nll = 0.5 * (y[:, None] * alpha).sum() + torch.log(torch.diagonal(L)).sum()
        nll.backward()
        opt.step()
    assert abs(float(log_ell.exp()) - 0.3) < 0.15


def test_jax_gradient(jax_x64):
    jax, jnp = jax_x64, jax_x64.numpy

    t = jnp.linspace(-1.0, 0.9, 5)

    def f(ell):
        return jnp.sum(MaternKernel(1.5, ell).profile(t, q=3, validate=False))

    g = jax.grad(f)(jnp.asarray(0.5))
    h = 1e-6
    fd = (float(f(jnp.asarray(0.5 + h))) - float(f(jnp.asarray(0.5 - h)))) / (2 * h)
    assert float(g) == pytest.approx(fd, rel=1e-6)


# ---- small lengthscales: the extended-precision plans ----------------------------------------------------------------


def _matern_1d(x, beta, s):
    """:func:`_bessel_matern` continued analytically off the real axis (even in x: Re x >= 0 taken)."""
    if mp.re(x) < 0:
        x = -x
    if x == 0:
        return _bessel_matern(mp.mpf(0), beta, s)
    return (x / (2 * beta)) ** (s - R(1) / 2) * mp.besselk(s - R(1) / 2, beta * x) / (mp.sqrt(mp.pi) * mp.gamma(s))


def _circle_series(t, c, s):
    r""":math:`\sum_{n \in \mathbb{Z}} (c + n^2)^{-s} e^{in\theta}` at :math:`\cos\theta = t` (t complex off the
    cuts), by Poisson summation."""
    theta = mp.acos(t)
    beta = mp.sqrt(c)
    return _lattice(lambda x: _matern_1d(x, beta, s), theta, half=False)


def _contour_derivative(f, x, n, radius, points=64):
    r""":math:`f^{(n)}(x)` by the trapezoidal rule for Cauchy's integral on a circle (f analytic on a larger disc)."""
    total = mp.mpf(0)
    for k in range(points):
        w = mp.expjpi(2 * mp.mpf(k) / points)
        total += f(x + radius * w) / w**n
    return mp.re(mp.factorial(n) * total / (points * radius**n))


def even_dimension_reference(t, nu, ell, q):
    r"""The unnormalised profile in dimension q = 2 + 2k from the circle: :math:`P'_{l,q} = \frac{l(l+q-2)}{q-1}
    P_{l-1,q+2}` and :math:`N(q+2, l) = N(q, l+1) \frac{l(l+q-2)}{q(q-1)}|_{l+1}` give
    :math:`\varphi_{q+2}(t; c, \nu) = \frac1q \frac{d}{dt} \varphi_q(t; c - (q-1), \nu + 1)`, so
    :math:`\varphi_q(t; c, \nu) = \frac{1}{2^k k!} \frac{d^k}{dt^k} \varphi_2(t; c - k^2, \nu + k)`, the k-th derivative
    by Cauchy's integral (radius: half the distance to the singularity at t = 1), the circle's by Poisson summation."""
    k = (q - 2) // 2
    c, s = _c(nu, ell) - k * k, R(nu) + k + R(1) / 2
    t = R(t)
    if k == 0:
        return _circle_series(t, c, s)
    radius = min((1 - t) / 2, R(1) / 4)
    # the contour's sum cancels to about radius^k f^(k) / f: more digits as t nears 1
    with mp.workdps(mp.mp.dps + k * max(0, int(-mp.log10(radius)) - 2)):
        derivative = _contour_derivative(lambda z: _circle_series(z, c, s), t, k, radius)
    return derivative / (2**k * mp.factorial(k))


SMALL = [(nu, ell) for nu in (0.5, 1.5) for ell in (0.01, 0.02, 0.05)]
# t = -1, 1 and 1 - 10^-k, the profile's scale (t = cos(theta), theta up to 40 lengthscales) and the rest of [-1, 1]
SMALL_T = np.unique(
    np.concatenate([[-1.0, 1.0], 1.0 - 10.0 ** -np.arange(1.0, 13.0), np.cos(np.linspace(0.002, 0.4, 12))])
)


def _check_small(nu, ell, q, t, reference):
    kernel = MaternKernel(nu, ell)
    bound = kernel.profile_error(q=q)
    assert bound <= 1e-12
    got = kernel.profile(t, q=q)
    big = kernel.profile(np.resize(t, 1 << 15), q=q)[: t.size]  # the table's route
    err = np.abs(got - reference)
    assert np.all(err <= bound), (float(np.max(err)), bound, t[np.argmax(err)])
    assert np.all(np.abs(big - reference) <= bound), (float(np.max(np.abs(big - reference))), bound)
    return float(np.max(err))


@pytest.mark.parametrize("nu, ell", SMALL)
def test_small_lengthscales_on_the_circle_against_poisson_summation(nu, ell):
    t = SMALL_T
    with mp.workdps(30):
        ref = np.array([float(circle_reference(mp.acos(R(float(x))), nu, ell)) for x in t])
    _check_small(nu, ell, 2, t, ref / ref[-1])


@pytest.mark.parametrize("nu, ell", SMALL)
def test_small_lengthscales_in_dimension_ten_against_the_circle(nu, ell):
    """q = 10 from the circle's Poisson summation by four derivatives (Cauchy's integral), normalised by the
    Euler–Maclaurin sum of the spectrum."""
    t = SMALL_T
    with mp.workdps(30):
        z = normaliser_reference(nu, ell, 10)
        ref = [even_dimension_reference(x, nu, ell, 10) / z for x in t[:-1]]
    _check_small(nu, ell, 10, t, np.array([*map(float, ref), 1.0]))


def test_dimension_raising_reference_against_direct_summation():
    """The reference of dimension q + 2k is right: q = 4 at a lengthscale where the series converges fast enough to be
    summed in mpmath (with the Euler–Maclaurin bound of the rest)."""
    nu, ell = 2.5, 0.7
    with mp.workdps(30):
        for x in (-0.6, 0.2, 0.9):
            direct, rest = direct_reference(x, nu, ell, 4, 3000)
            assert abs(even_dimension_reference(x, nu, ell, 4) - direct) <= rest + R(10) ** -25


@pytest.mark.parametrize("nu, ell", SMALL)
def test_small_lengthscales_on_the_two_sphere_against_mehler_dirichlet(nu, ell):
    """q = 3: the Mehler–Dirichlet integral of the circle's Poisson sum (at 20 digits) on the profile's scale, t = -1
    by the alternating series (mpmath's nsum), t = 1 by the Euler–Maclaurin sum."""
    t = np.concatenate([[-1.0, -0.3, 0.5], np.cos(ell * np.array([0.05, 0.3, 1.0, 3.0, 10.0])), [1.0]])
    with mp.workdps(20):
        z = normaliser_reference(nu, ell, 3)
        c, s = _c(nu, ell), R(nu) + 1
        at_minus_one = mp.nsum(lambda l: (-1) ** int(l) * (2 * l + 1) * (c + l * (l + 1)) ** (-s), [0, mp.inf])
        ref = [at_minus_one / z]
        ref += [sphere_reference(mp.acos(R(float(x))), nu, ell) / z for x in t[1:-1]]
    _check_small(nu, ell, 3, t, np.array([*map(float, ref), 1.0]))


def test_small_lengthscales_in_every_array_library(jax_x64):
    """Tensors take the extended plan through a host copy: the numpy values; with a gradient in t, the float64 plan's
    graph carries it (against the derivative) and the value is still the extended one."""
    torch = pytest.importorskip("torch")
    kernel = MaternKernel(1.5, 0.02)
    assert kernel._plan(3).extended is not None
    t = np.concatenate([[-1.0, 1.0], np.cos(np.linspace(0.0, 0.2, 50))])
    ref = kernel.profile(t, q=3)
    np.testing.assert_array_equal(kernel.profile(torch.from_numpy(t), q=3).numpy(), ref)
    tt = torch.from_numpy(t[2:]).requires_grad_(True)
    out = kernel.profile(tt, q=3)
    np.testing.assert_array_equal(out.detach().numpy(), ref[2:])
    (grad,) = torch.autograd.grad(out.sum(), tt)
    slope = kernel.derivative(t[3:], q=3)  # away from t = 1, where the derivative is large but finite
    np.testing.assert_allclose(grad.numpy()[1:], slope, rtol=1e-6, atol=1e-6 * np.max(np.abs(slope)))
    t32 = t.astype(np.float32)
    f32 = kernel.profile(t32, q=3)
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, kernel.profile(t32.astype(np.float64), q=3), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(kernel.profile(jax_x64.numpy.asarray(t), q=3)), ref, rtol=1e-15, atol=1e-18)


def test_small_lengthscale_gradient_in_the_lengthscale():
    """The learnable lengthscale at small lengthscales: the shifted plan is extended too, and the gradient matches
    central differences of the (extended) profile."""
    torch = pytest.importorskip("torch")
    t = np.cos(np.linspace(0.0, 0.1, 40))
    ell0, h = 0.02, 1e-6
    ell = torch.tensor(ell0, dtype=torch.float64, requires_grad=True)
    kernel = MaternKernel(0.5, ell)
    assert kernel._plan(3, shift=1).extended is not None
    out = kernel.profile(torch.from_numpy(t), q=3)
    np.testing.assert_array_equal(out.detach().numpy(), MaternKernel(0.5, ell0).profile(t, q=3))
    (grad,) = torch.autograd.grad(out.sum(), ell)
    fd = (MaternKernel(0.5, ell0 + h).profile(t, q=3) - MaternKernel(0.5, ell0 - h).profile(t, q=3)).sum() / (2 * h)
    assert float(grad) == pytest.approx(fd, rel=1e-6)


def _mp_gegenbauer_sum(coefficients, t, q):
    """sum_l c_l P_{l,q}(t) in mpmath by the forward recurrence (exact rational coefficients)."""
    total, previous, current = mp.mpf(0), mp.mpf(0), mp.mpf(1)
    for l, c in enumerate(coefficients):
        total += c * current
        if l == 0:
            previous, current = current, t
        else:
            previous, current = current, ((2 * l + q - 2) * t * current - l * previous) / (l + q - 2)
    return total


@pytest.mark.parametrize("nu, ell, q", [(0.5, 0.05, 3), (1.0, 0.1, 3), (0.7, 0.1, 5), (2.5, 0.03, 2), (2.0, 0.1, 2)])
def test_extended_sum_against_the_same_sum_in_mpmath(nu, ell, q):
    """The rounding part of an extended plan's bound: its double-double and float64 sums against the same
    coefficients and references summed in mpmath (50 digits), at t = -1, 1, 1 - 10^-k and across [-1, 1]."""
    from dotkernels.kernels import matern

    ext = MaternKernel(nu, ell)._plan(q).extended
    assert ext is not None and ext.tail.size <= 2049
    t = np.concatenate([[-1.0, 1.0], 1.0 - 10.0 ** -np.arange(1.0, 16.0), np.linspace(-0.99, 0.99, 9)])
    got = matern._extended_numpy(ext, t, q)
    M = ext.head_hi.size - 1
    with mp.workdps(50):
        coefficients = [mp.mpf(float(h)) + mp.mpf(float(lo)) for h, lo in zip(ext.head_hi, ext.head_lo)]
        coefficients += [mp.mpf(float(x)) for x in ext.tail[M + 1 :]]
        ref = []
        for x in t:
            x = mp.mpf(float(x))
            value = _mp_gegenbauer_sum(coefficients, x, q)
            y = 2 - 2 * x
            for j, (_, wh, wl, logarithmic) in enumerate(ext.refs):
                w = mp.mpf(wh) + mp.mpf(wl)
                if y > 0:  # the exponents nu + j exactly
                    value += w * y ** (mp.mpf(ext.nu) + j) * (mp.log(y) if logarithmic else 1)
            ref.append(value)
        err = max(abs(mp.mpf(float(g)) - r) for g, r in zip(got, ref))
    assert float(err) <= ext.rounding, (float(err), ext.rounding)


# ---- thread safety, platforms without an 80-bit long double ---------------------------------------------------------


def _clear_plan_caches():
    from dotkernels.kernels import _autograd, matern

    for cached in (
        matern._matern_plan,
        matern._mp_tail_coefficients,
        matern._heat_plan,
        matern._heat_slope_plan,
        matern._matern_table,
        matern._heat_table,
        matern._matern_derivative_table,
        matern._heat_derivative_table,
        _autograd.matern_bounded_derivative_table,
    ):
        cached.cache_clear()


def _same_plan(a, b):
    ea, eb = a.extended, b.extended
    assert ea is not None and eb is not None
    for x, y in ((ea.head_hi, eb.head_hi), (ea.head_lo, eb.head_lo), (ea.tail, eb.tail)):
        np.testing.assert_array_equal(x, y)
    assert ea.refs == eb.refs and ea.total == eb.total


def test_extended_plans_built_in_threads_are_those_built_alone():
    """The extended plans' mpmath constants are computed in a private mpmath context per thread: two threads building
    different plans at once, and a third one changing mpmath's process-wide precision meanwhile, give the plans that
    a single thread builds (bit for bit)."""
    import threading

    cases = [(2 * 1.5 / 0.01**2, 1.5, 3), (2 * 0.5 / 0.015**2, 0.5, 2)]
    _clear_plan_caches()
    alone = [_matern_plan(*case) for case in cases]
    _clear_plan_caches()
    start, stop = threading.Barrier(3), threading.Event()
    built, failures = [None, None], []

    def build(i):
        try:
            start.wait()
            built[i] = _matern_plan(*cases[i])
        except BaseException as exc:  # reported below
            failures.append(exc)

    def disturb():
        start.wait()
        while not stop.is_set():
            for dps in (15, 60):
                mp.mp.dps = dps
        mp.mp.dps = 15

    threads = [threading.Thread(target=build, args=(i,)) for i in range(2)] + [threading.Thread(target=disturb)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads[:2]:
            thread.join()
    finally:
        stop.set()
        threads[2].join()
        mp.mp.dps = 15
        _clear_plan_caches()
    assert not failures, failures
    for a, b in zip(built, alone):
        _same_plan(a, b)


def _heat_circle_reference(theta, tau):
    r"""q = 2: :math:`\sum_n e^{-\tau n^2} e^{in\theta}` by Poisson summation (Gaussians on the lattice 2 pi Z)."""
    return mp.nsum(lambda m: mp.exp(-((theta + 2 * mp.pi * m) ** 2) / (4 * tau)), [-mp.inf, mp.inf])


def test_heat_kernel_where_long_double_is_float64(monkeypatch):
    """Where long double is float64 (Windows, macOS arm64) the heat kernel's head is summed in double-double: the
    stated bound 1e-12 holds at lengthscale 0.01 (simulated here), and the profile on the circle matches Poisson
    summation within it, t = -1 and 1 - 10^-k included."""
    from dotkernels.kernels import matern

    monkeypatch.setattr(matern, "_EPS_LD", 2.0**-52)
    monkeypatch.setattr(matern, "_LD_BLOCK", 16)
    _clear_plan_caches()
    try:
        kernel = MaternKernel(math.inf, 0.01)
        for q in (2, 3, 10, 1000):
            plan = kernel._plan(q)
            assert plan.extended is not None and plan.extended.long_head is None
            assert kernel.profile_error(q=q) <= 1e-12, q
        bound = kernel.profile_error(q=2)
        t = SMALL_T
        with mp.workdps(30):
            tau = R(0.01) ** 2 / 2
            ref = np.array([float(_heat_circle_reference(mp.acos(R(float(x))), tau)) for x in t])
        ref = ref / ref[-1]
        got = kernel.profile(t, q=2)
        assert np.max(np.abs(got - ref)) <= bound, (float(np.max(np.abs(got - ref))), bound)
        big = kernel.profile(np.resize(t, 1 << 15), q=2)[: t.size]  # the table's route
        assert np.max(np.abs(big - ref)) <= bound
    finally:
        _clear_plan_caches()


@pytest.mark.parametrize("nu, ell", [(1.5, 0.01), (0.5, 0.02), (math.inf, 0.01)])
def test_small_lengthscales_under_jax_transformations(jax_x64, nu, ell):
    """Under jax.jit, jax.vmap and jax.grad the extended plan's value is summed on the host (a callback): the numpy
    values, within the stated bound; the gradient in t is the float64 plan's (against the derivative)."""
    jax, jnp = jax_x64, jax_x64.numpy
    kernel = MaternKernel(nu, ell)
    q = 3
    assert kernel._plan(q).extended is not None
    t = np.concatenate([[-1.0, 1.0], np.cos(np.linspace(0.0, 40 * ell, 298))])
    ref = kernel.profile(t, q=q)
    bound = kernel.profile_error(q=q)
    jitted = np.asarray(jax.jit(lambda x: kernel.profile(x, q=q, validate=False))(jnp.asarray(t)))
    assert np.max(np.abs(jitted - ref)) <= bound
    mapped = np.asarray(jax.vmap(lambda x: kernel.profile(x, q=q, validate=False))(jnp.asarray(t.reshape(2, -1))))
    assert np.max(np.abs(mapped.reshape(-1) - ref)) <= bound
    inside = jnp.asarray(t[3:])  # away from t = 1, where the derivative is large but finite
    value, grad = jax.value_and_grad(lambda x: jnp.sum(kernel.profile(x, q=q, validate=False)), allow_int=False)(inside)
    assert abs(float(value) - math.fsum(ref[3:])) <= bound * t.size
    slope = kernel.derivative(t[3:], q=q)
    np.testing.assert_allclose(np.asarray(grad), slope, rtol=1e-6, atol=1e-6 * np.max(np.abs(slope)))
    grad_jit = jax.jit(jax.grad(lambda x: jnp.sum(kernel.profile(x, q=q, validate=False))))(inside)
    np.testing.assert_allclose(np.asarray(grad_jit), np.asarray(grad), rtol=1e-12, atol=1e-12 * np.max(np.abs(slope)))


def _circle_derivative_reference(x, nu, ell):
    r"""q = 2: :math:`d\varphi/dt` at t = x (a float64 value, exactly) by Poisson summation of the derivative in
    theta, unnormalised (Bessel functions for nu < inf, Gaussians for the heat kernel)."""
    theta = mp.acos(R(float(x)))
    if math.isinf(nu):
        tau = R(ell) ** 2 / 2
        g = mp.nsum(
            lambda m: -(theta + 2 * mp.pi * m) / (2 * tau) * mp.exp(-((theta + 2 * mp.pi * m) ** 2) / (4 * tau)),
            [-mp.inf, mp.inf],
        )
    else:
        c, s = _c(nu, ell), R(nu) + R(1) / 2
        g = _lattice(lambda y: _bessel_matern_derivative(y, mp.sqrt(c), s), theta, half=False)
    return g / -mp.sin(theta)


@pytest.mark.parametrize("nu, ell", [(1.5, 0.01), (2.5, 0.01), (1.5, 0.03), (math.inf, 0.01), (0.5, 0.01)])
def test_small_lengthscale_derivative_on_the_circle_against_poisson_summation(nu, ell):
    """The Notes of MaternKernel: at small lengthscales the derivative (and the gradient in t, torch and jax) of nu > 1
    and the heat kernel is within 1e-12 of max|phi'|, that of nu <= 1 within 1e-7 of the largest |phi'| at angles
    from 1e-3 lengthscales on; at t = 1 - 10^-k, across the profile's scale, and t = -1."""
    torch = pytest.importorskip("torch")
    q = 2
    kernel = MaternKernel(nu, ell)
    assert kernel._plan(q).extended is not None
    theta = np.concatenate([ell * np.geomspace(1e-3, 40.0, 30), [1.0, 3.0]])
    t = np.concatenate([np.cos(theta), [-1.0 + 1e-12]])
    with mp.workdps(30):
        z = _heat_circle_reference(R(0), R(ell) ** 2 / 2) if math.isinf(nu) else circle_reference(R(0), nu, ell)
        ref = np.array([float(_circle_derivative_reference(x, nu, ell) / z) for x in t])
    scale = np.max(np.abs(ref))
    stated = 1e-12 if nu > 1 else 1e-7
    got = kernel.derivative(t, q=q)
    assert np.max(np.abs(got - ref)) <= stated * scale, float(np.max(np.abs(got - ref)) / scale)
    big = kernel.derivative(np.resize(t, 1 << 15), q=q)[: t.size]  # the table's route
    assert np.max(np.abs(big - ref)) <= stated * scale, float(np.max(np.abs(big - ref)) / scale)
    tt = torch.from_numpy(t).requires_grad_(True)
    (grad,) = torch.autograd.grad(kernel.profile(tt, q=q).sum(), tt)
    assert np.max(np.abs(grad.numpy() - ref)) <= stated * scale


@pytest.mark.parametrize("nu, ell, q", [(1.5, 0.02, 3), (0.5, 0.01, 2), (1.0, 0.03, 10)])
def test_long_double_recurrences_within_their_bound(nu, ell, q):
    """The extended plan's float64 degrees M < l <= L come from long-double recurrences restarted every _LD_BLOCK
    degrees: against the same coefficients in mpmath (log-gamma at 40 digits), their summed error is within the
    bound's long-double term (_LD_ROUNDINGS roundings a degree, accumulated over a block) plus their float64
    rounding."""
    from dotkernels.kernels import matern

    plan = MaternKernel(nu, ell)._plan(q)
    ext = plan.extended
    assert ext is not None
    c = 2 * nu / ell**2
    M, L = ext.head_hi.size - 1, ext.tail.size - 1
    assert L > M + matern._LD_BLOCK
    d = matern._mp_tail_coefficients(c, nu, q, matern._MAX_TERMS_EXTENDED + 1)
    s = nu + 0.5 * (q - 1)
    error, magnitude, size = R(0), R(0), 0.0
    with mp.workdps(40):
        unit = mp.exp(R(plan.log_scale))
        for l in range(M + 1, L + 1):
            log_n = mp.log(2) if q == 2 else mp.log(R(2 * l + q - 2) / (q - 2)) + mp.log(mp.binomial(l + q - 3, l))
            terms = [mp.exp(log_n - s * mp.log(R(c) + l * (l + q - 2))) / unit]
            for j, (a, *_rest) in enumerate(ext.refs):
                terms.append(-R(d[j]) * mp.exp(log_n + mp.loggamma(l - R(a)) - mp.loggamma(l + R(a) + q - 1)) / unit)
            exact = mp.fsum(terms)
            error += abs(R(float(ext.tail[l])) - exact)
            magnitude += mp.fsum(abs(x) for x in terms)
            size += abs(float(ext.tail[l]))
    rate = matern._EPS_LD * (matern._LD_ROUNDINGS * matern._LD_BLOCK + s * math.log1p(L * (L + q - 2.0) / c) + 8)
    assert float(error) <= rate * float(magnitude) + matern._EPS * size, (float(error), rate * float(magnitude))


@pytest.mark.parametrize("nu, ell, q", [(0.5, 0.01, 2), (1.5, 0.01, 3), (1.0, 0.01, 3), (0.7, 0.02, 5)])
def test_double_double_part_against_the_same_sum_in_mpmath(nu, ell, q):
    """The double-double term of an extended plan's bound, on its own: the head to degree M and the references in
    double-double (a high, low pair, before any float64 rounding) against the same sum in mpmath (50 digits), at
    lengthscales down to 0.01, t = -1, 1, 1 - 10^-k and across [-1, 1]."""
    from dotkernels.kernels import matern

    ext = MaternKernel(nu, ell)._plan(q).extended
    assert ext is not None
    t = np.concatenate([[-1.0, 1.0], 1.0 - 10.0 ** -np.arange(1.0, 16.0), np.linspace(-0.99, 0.99, 9)])
    xh, xl = matern._two_sum(2.0, -2.0 * t)
    high, low = matern._extended_dd(ext, t, np.zeros_like(t), xh, xl)
    head_abs = math.fsum(abs(h) * (l + 1) for l, h in enumerate(ext.head_hi))
    refs = sum(abs(wh) * (4.0**a * (2 * a + 8) * (2.4 if lg else 1.0) + 1.0) for a, wh, _, lg in ext.refs)
    bound = matern._EPS_DD * (16.0 * head_abs + refs)
    with mp.workdps(50):
        coefficients = [R(float(h)) + R(float(lo)) for h, lo in zip(ext.head_hi, ext.head_lo)]
        worst = R(0)
        for x, h, lo in zip(t, high, low):
            x = R(float(x))
            value = _mp_gegenbauer_sum(coefficients, x, q)
            y = 2 - 2 * x
            for j, (_, wh, wl, logarithmic) in enumerate(ext.refs):
                if y > 0:
                    value += (R(wh) + R(wl)) * y ** (R(ext.nu) + j) * (mp.log(y) if logarithmic else 1)
            worst = max(worst, abs(R(float(h)) + R(float(lo)) - value))
    assert float(worst) <= bound, (float(worst), bound)
