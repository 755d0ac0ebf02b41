"""NNGP / NTK kernels of wide fully connected networks, and the power-series numerics behind their spectra.

References used here, each independent of the code under test: mpmath Taylor coefficients and high-precision
quadrature, exact rational Gegenbauer coefficients (monomial_to_legendre(exact=True)), the closed-form ReLU kernels
written as Arora et al. (2019)'s sum of products, two-dimensional Gauss–Hermite quadrature of the dual
activations, and Monte Carlo over random finite-width networks.
"""

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from _helpers import sphere
from _mpref import spectrum_mp
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import erf

import dotkernels
from dotkernels import _power_series as ps
from dotkernels.gegenbauer import monomial_to_legendre
from dotkernels.kernels import (
    ArcCosineKernel,
    ExponentialKernel,
    MonomialKernel,
    NNGPKernel,
    NTKKernel,
    SpectrumAccuracyWarning,
    parse_kernel,
)

# ---------------------------------------------------------------------------------------------------------------
# power-series numerics


def _taylor(f, n, dps=40):
    with mp.workdps(dps):
        return np.array([float(c) for c in mp.taylor(f, 0, n - 1)])


def test_arccos_series_against_mpmath_taylor():
    k0 = _taylor(lambda t: 1 - mp.acos(t) / mp.pi, 40)
    k1 = _taylor(lambda t: (mp.sqrt(1 - t * t) + (mp.pi - mp.acos(t)) * t) / mp.pi, 40)
    np.testing.assert_allclose(ps.arccos_series(0, 40), k0, rtol=5e-14, atol=1e-25)
    np.testing.assert_allclose(ps.arccos_series(1, 40), k1, rtol=5e-14, atol=1e-25)
    # kappa(1) = 1: the coefficients sum to 1 (slowly: the tails decay like P^(-1/2) and P^(-3/2))
    for order, power in ((0, 0.5), (1, 1.5)):
        c = ps.arccos_series(order, 20001)
        assert 0 < 1 - c.sum() < 2.0 * 20000**-power


@pytest.mark.parametrize("g0", [0.0, 0.3])
def test_arcsine_compose_against_mpmath_taylor(g0):
    g = np.array([g0, 0.4, 0.0, 0.2, 0.1])  # g(1) = 1 - (0.3 - g0): a normalised layer when g0 = 0.3

    def gm(t):
        return sum(mp.mpf(c) * t**p for p, c in enumerate(g))

    n = 30
    padded = np.concatenate([g, np.zeros(n - g.size)])
    w, u, v = ps.arcsine_compose(padded)
    np.testing.assert_allclose(w, _taylor(lambda t: 1 / mp.sqrt(1 - gm(t) ** 2), n), rtol=1e-13, atol=1e-25)
    np.testing.assert_allclose(u, _taylor(lambda t: 1 - mp.acos(gm(t)) / mp.pi, n), rtol=1e-13, atol=1e-25)
    kappa1 = _taylor(lambda t: (mp.sqrt(1 - gm(t) ** 2) + (mp.pi - mp.acos(gm(t))) * gm(t)) / mp.pi, n)
    np.testing.assert_allclose(v, kappa1, rtol=1e-13, atol=1e-25)


def test_inverse_sqrt_compose_across_blocks():
    # g = c t: (1 - c^2 t^2)^(-1/2) = sum_n binom(2n, n) 4^(-n) c^(2n) t^(2n), over several blocks of 256
    c = 0.999
    w = ps.inverse_sqrt_compose(np.concatenate([[0.0, c], np.zeros(998)]))
    with mp.workdps(30):
        exact = np.array([float(mp.binomial(2 * k, k) / mp.mpf(4) ** k * mp.mpf(c) ** (2 * k)) for k in range(500)])
    np.testing.assert_allclose(w[0::2], exact, rtol=1e-13)
    assert np.all(w[1::2] == 0)
    # a dense g with g(0) > 0 against the plain term-by-term recurrence
    g = np.zeros(700)
    g[:5] = [0.2, 0.3, 0.1, 0.15, 0.2]
    h = np.convolve(g, g)[:700]
    dh = np.arange(1, 700) * h[1:]
    reference, dw = np.zeros(700), np.zeros(699)
    reference[0] = (1 - h[0]) ** -0.5
    for p in range(699):
        total = np.dot(dh[: p + 1], reference[p::-1]) + 2 * np.dot(h[1 : p + 1], dw[p - 1 :: -1] if p else [])
        dw[p] = total / (2 * (1 - h[0]))
        reference[p + 1] = dw[p] / (p + 1)
    np.testing.assert_allclose(ps.inverse_sqrt_compose(g), reference, rtol=1e-13)


def test_multiply_and_compose_against_numpy_polynomials():
    rng = np.random.default_rng(0)
    a, b = rng.random(7), rng.random(5)
    np.testing.assert_allclose(ps.multiply(a, b, terms=11), np.polynomial.polynomial.polymul(a, b)[:11])
    f = rng.random(4)
    expected = np.zeros(1)
    for p, c in enumerate(f):
        expected = np.polynomial.polynomial.polyadd(expected, c * np.polynomial.polynomial.polypow(b, p))
    np.testing.assert_allclose(ps.compose(f, b, terms=13), expected[:13], rtol=1e-14)


@pytest.mark.parametrize("q", [2, 3, 7, 64, 1024, 65536])
def test_log_monomial_projection_against_mpmath(q):
    # lambda_l(t^p) = E[t^p P_l] = p! Gamma(q/2) / (2^p ((p - l)/2)! Gamma((p + l + q)/2)), at 50 digits
    for p, l in [(0, 0), (1, 1), (6, 2), (41, 7), (400, 100), (3001, 1)]:
        with mp.workdps(50):
            exact = (
                mp.loggamma(p + 1)
                + mp.loggamma(mp.mpf(q) / 2)
                - p * mp.log(2)
                - mp.loggamma(mp.mpf(p - l) / 2 + 1)
                - mp.loggamma(mp.mpf(p + l + q) / 2)
            )
        got = ps.log_monomial_projection(p, l, q=q)
        assert abs(got - float(exact)) <= 1e-15 * max(1.0, float(ps.log_monomial_magnitude(p, l, q=q)))
    assert ps.log_monomial_projection(5, 2, q=q) == -np.inf  # wrong parity
    assert ps.log_monomial_projection(2, 4, q=q) == -np.inf  # degree above the power


@pytest.mark.parametrize("q", [3, 8, 2048])
def test_monomial_spectra_agree_with_the_monomial_kernel(q):
    for p in (0, 1, 5, 12):
        c = np.zeros(p + 1)
        c[p] = 1.0
        log_a, sign, error = ps.series_spectrum(c, 14, q=q)
        a = np.where(sign > 0, np.exp(log_a), 0.0)
        np.testing.assert_allclose(a, MonomialKernel(p=p).spectrum(14, q=q), rtol=1e-11, atol=0)
        assert np.all(error <= 1e-11 * a)


@given(
    coefficients=st.lists(st.integers(0, 9), min_size=1, max_size=9),
    q=st.integers(2, 12),
)
def test_series_spectrum_against_exact_rationals(coefficients, q):
    exact = monomial_to_legendre(coefficients, q=q, exact=True)
    log_a, sign, _ = ps.series_spectrum(np.array(coefficients, dtype=float), len(coefficients) - 1, q=q)
    a = np.where(sign > 0, np.exp(log_a), 0.0)
    np.testing.assert_allclose(a, [float(x) for x in exact], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("q", [2, 3, 16, 1024])
@pytest.mark.parametrize("terms", [8, 30])
def test_truncation_bound_holds(q, terms):
    """exp(t) truncated after `terms` powers: 0 <= a_true - a_hat <= error, a_true from ExponentialKernel."""
    p = np.arange(terms)
    c = np.exp(-np.cumsum(np.log(np.maximum(p, 1))))  # 1 / p!
    with mp.workdps(50):
        remainder = float(mp.e - mp.fsum(1 / mp.factorial(k) for k in range(terms)))
    log_a, sign, error = ps.series_spectrum(c, 20, q=q, remainder=remainder)
    a_hat = np.where(sign > 0, np.exp(log_a), 0.0)
    a_true = ExponentialKernel(kappa=1.0).spectrum(20, q=q)
    difference = a_true - a_hat
    # the reference is accurate to its spectrum_error (1e-12 relative)
    reference_error = ExponentialKernel(kappa=1.0).spectrum_error(20, q=q)
    assert np.all(difference >= -reference_error - error)
    assert np.all(difference <= error * (1 + 1e-9) + reference_error)
    assert math.fsum(np.maximum(difference, 0)) <= remainder * (1 + 1e-9) + math.fsum(reference_error)


def test_hermite_coefficients_against_closed_forms():
    # erf(sqrt(s) x): a_n^2 sum to E[erf^2] = (2/pi) arcsin(2s / (1 + 2s)); x^3 = He_3 + 3 He_1
    a, err = ps.hermite_coefficients(lambda x: x**3, 6)
    np.testing.assert_allclose(a, [0, 3, 0, math.sqrt(6), 0, 0], atol=1e-12)
    s = 0.7
    a, err = ps.hermite_coefficients(erf, 80, scale=s)
    assert err < 1e-14
    assert math.isclose(math.fsum(a * a), 2 / math.pi * math.asin(2 * s / (1 + 2 * s)), rel_tol=1e-13)
    with pytest.raises(ValueError, match="nodes"):
        ps.hermite_coefficients(erf, 10, nodes=500)


# ---------------------------------------------------------------------------------------------------------------
# profiles against published closed forms


def _arora_relu(t, depth):
    """Arora et al. (2019), ReLU, c_sigma = 2, no bias, unit inputs: Theta = sum_h Sigma^(h-1) prod Sigmadot."""
    t = np.asarray(t, dtype=np.float64)
    sigmas, dots = [t], []
    for _ in range(depth):
        theta = np.arccos(np.clip(sigmas[-1], -1, 1))
        sigmas.append((np.sin(theta) + (np.pi - theta) * np.cos(theta)) / np.pi)
        dots.append((np.pi - theta) / np.pi)
    ntk = np.zeros_like(t)
    for h in range(depth + 1):
        term = sigmas[h]
        for dot in dots[h:]:
            term = term * dot
        ntk = ntk + term
    return sigmas[-1], ntk


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_relu_profiles_against_arora_et_al(depth):
    t = np.linspace(-1, 1, 41)
    nngp, ntk = _arora_relu(t, depth)
    # sigma_w^2 = 2 scales the read-out layer too: our kernels are twice Arora et al.'s
    np.testing.assert_allclose(NNGPKernel(depth=depth).profile(t), 2 * nngp, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(NTKKernel(depth=depth).profile(t), 2 * ntk, rtol=1e-13, atol=1e-15)
    assert NTKKernel(depth=depth).phi_at_one() == pytest.approx(2 * (depth + 1), rel=1e-15)


def _dual_by_quadrature(function, s, c, nodes=120):
    """E[f(u) f(v)], (u, v) centred Gaussian with variances s and covariance c: 2-d Gauss-Hermite (Cholesky)."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / math.sqrt(2 * math.pi)
    rho = c / s
    u = math.sqrt(s) * x[:, None]
    v = math.sqrt(s) * (rho * x[:, None] + math.sqrt(max(1 - rho * rho, 0.0)) * x[None, :])
    return float(np.einsum("i,j,ij->", w, w, function(u) * function(v)))


def _recursion_by_quadrature(function, derivative, t, depth, sw, sb):
    k, kxx = sw * t + sb, sw + sb
    theta = k
    for _ in range(depth):
        value = _dual_by_quadrature(function, kxx, k)
        dvalue = _dual_by_quadrature(derivative, kxx, k)
        k_next = sw * value + sb
        theta = k_next + sw * dvalue * theta
        k, kxx = k_next, sw * _dual_by_quadrature(function, kxx, kxx) + sb
    return k, theta


def _gelu(x):
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def _gelu_derivative(x):
    return 0.5 * (1 + erf(x / math.sqrt(2))) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)


@pytest.mark.parametrize(
    "activation, function, derivative",
    [
        ("erf", erf, lambda x: 2 / math.sqrt(math.pi) * np.exp(-x * x)),
        ("gelu", _gelu, _gelu_derivative),
    ],
)
def test_smooth_activations_against_two_dimensional_quadrature(activation, function, derivative):
    sw, sb = 1.7, 0.2
    for t in (-0.8, 0.1, 0.95):
        k, theta = _recursion_by_quadrature(function, derivative, t, 2, sw, sb)
        nngp = NNGPKernel(depth=2, activation=activation, weight_variance=sw, bias_variance=sb)
        ntk = NTKKernel(depth=2, activation=activation, weight_variance=sw, bias_variance=sb)
        assert float(nngp.profile(np.array(t))) == pytest.approx(k, rel=1e-11)
        assert float(ntk.profile(np.array(t))) == pytest.approx(theta, rel=1e-11)


def test_callable_activation_matches_the_named_one():
    t = np.linspace(-1, 1, 9)
    for cls in (NNGPKernel, NTKKernel):
        named = cls(depth=3, activation="erf", weight_variance=1.3, bias_variance=0.4)
        generic = cls(depth=3, activation=erf, weight_variance=1.3, bias_variance=0.4)
        np.testing.assert_allclose(generic.profile(t), named.profile(t), rtol=1e-12)
        np.testing.assert_allclose(generic.spectrum(12, q=9), named.spectrum(12, q=9), rtol=1e-9, atol=1e-15)
    # a polynomial activation gives a polynomial kernel: finitely many positive coefficients
    cubic = NNGPKernel(depth=2, activation=lambda x: x**3, weight_variance=1.0)
    c, remainder, _ = cubic.power_series(40)
    assert np.all(c[10:] == 0) and remainder < 1e-12 * cubic.phi_at_one()
    assert cubic.is_strictly_positive_definite(q=5) is False


def test_step_nngp_and_its_missing_ntk():
    t = np.linspace(-1, 1, 11)
    # step network, one hidden layer, no bias: K_1 = sigma_w^2 (1 - arccos(t)/pi) / 2
    np.testing.assert_allclose(NNGPKernel(depth=1, activation="step").profile(t), 1 - np.arccos(t) / np.pi)
    with pytest.raises(ValueError, match="step"):
        NTKKernel(depth=1, activation="step")


# ---------------------------------------------------------------------------------------------------------------
# Monte Carlo over random finite-width networks


def _empirical_kernels(X, depth, width, sw, sb, seed):
    """Empirical NNGP (last hidden features) and NTK (parameter gradients) of one random ReLU network (torch)."""
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(seed)
    X = torch.as_tensor(X, dtype=torch.float64)
    q = X.shape[1]
    params = []
    fan_in = q
    for h in range(depth + 1):
        out = 1 if h == depth else width
        params.append(torch.randn(out, fan_in, generator=g, dtype=torch.float64).requires_grad_())
        params.append(torch.randn(out, generator=g, dtype=torch.float64).requires_grad_())
        fan_in = width

    def forward(x):
        z = x
        for h in range(depth + 1):
            W, b = params[2 * h], params[2 * h + 1]
            scale = math.sqrt(sw) if h == 0 else math.sqrt(sw / width)
            pre = scale * (W @ z) + math.sqrt(sb) * b
            if h == depth:
                return pre[0], z
            z = torch.relu(pre)

    grads, feats = [], []
    for x in X:
        f, features = forward(x)
        grads.append(torch.cat([gr.reshape(-1) for gr in torch.autograd.grad(f, params)]))
        feats.append(features.detach())
    G = torch.stack(grads)
    F = torch.stack(feats)
    nngp = sw * (F @ F.T) / width + sb
    return nngp.numpy(), (G @ G.T).numpy()


def test_wide_relu_network_converges_to_nngp_and_ntk():
    """Width 3000, 3 networks averaged: the relative standard error is about sqrt(2/3000/3) ~ 1.5%."""
    rng = np.random.default_rng(7)
    X = sphere(rng, 4, 6)
    X[1] = (X[0] + 0.2 * X[1]) / np.linalg.norm(X[0] + 0.2 * X[1])  # a close pair
    depth, sw, sb = 2, 2.0, 0.1
    runs = [_empirical_kernels(X, depth, 3000, sw, sb, seed) for seed in range(3)]
    nngp_hat = np.mean([r[0] for r in runs], axis=0)
    ntk_hat = np.mean([r[1] for r in runs], axis=0)
    nngp = NNGPKernel(depth=depth, weight_variance=sw, bias_variance=sb)
    ntk = NTKKernel(depth=depth, weight_variance=sw, bias_variance=sb)
    K, T = nngp.gram(X), ntk.gram(X)
    # tolerance: 4 standard errors of the average, relative to the diagonal
    assert np.max(np.abs(nngp_hat - K)) <= 0.06 * K[0, 0]
    assert np.max(np.abs(ntk_hat - T)) <= 0.06 * T[0, 0]


def test_wide_gelu_network_converges_to_nngp():
    rng = np.random.default_rng(3)
    X = sphere(rng, 5, 4)
    width, sw, sb = 4000, 1.5, 0.3
    h = math.sqrt(sw) * rng.standard_normal((width, 4)) @ X.T + math.sqrt(sb) * rng.standard_normal((width, 1))
    z = _gelu(h)
    h2 = math.sqrt(sw / width) * rng.standard_normal((width, width)) @ z + math.sqrt(sb) * rng.standard_normal(
        (width, 1)
    )
    z2 = _gelu(h2)
    empirical = sw * z2.T @ z2 / width + sb
    K = NNGPKernel(depth=2, activation="gelu", weight_variance=sw, bias_variance=sb).gram(X)
    assert np.max(np.abs(empirical - K)) <= 0.08 * K[0, 0]


# ---------------------------------------------------------------------------------------------------------------
# spectra


def _relu_mp(depth, sw, sb, tangent):
    def phi(t):
        k, s = sw * t + sb, mp.mpf(sw + sb)
        theta = k
        for _ in range(depth):
            rho = k / s
            ang = mp.acos(max(min(rho, 1), -1))
            kappa0 = 1 - ang / mp.pi
            kappa1 = (mp.sin(ang) + (mp.pi - ang) * mp.cos(ang)) / mp.pi
            k_next = sw * s / 2 * kappa1 + sb
            theta = k_next + sw * kappa0 / 2 * theta
            k, s = k_next, sw * s / 2 + sb
        return theta if tangent else k

    return phi


@pytest.mark.parametrize("q", [2, 3, 5])
@pytest.mark.parametrize("cls", [NNGPKernel, NTKKernel])
def test_relu_spectra_against_mpmath_quadrature(cls, q):
    depth, sw, sb = 2, 2.0, 0.3
    kernel = cls(depth=depth, weight_variance=sw, bias_variance=sb)
    reference = np.array([float(x) for x in spectrum_mp(_relu_mp(depth, sw, sb, cls is NTKKernel), q, 6, dps=20)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpectrumAccuracyWarning)
        a, error = kernel.spectrum(6, q=q), kernel.spectrum_error(6, q=q)
    assert np.all(np.abs(a - reference) <= error + 1e-14 * reference)
    assert np.all(error <= 1e-9 * reference)


def test_ntk_spectrum_at_large_q_against_mpmath_quadrature():
    q = 1024
    kernel = NTKKernel(depth=3)
    reference = np.array([float(x) for x in spectrum_mp(_relu_mp(3, 2.0, 0.0, True), q, 3, dps=30)])
    a, error = kernel.spectrum(3, q=q), kernel.spectrum_error(3, q=q)
    assert set(kernel.spectrum_route(3, q=q).tolist()) == {"series"}
    np.testing.assert_allclose(a, reference, rtol=1e-12)
    assert np.all(error <= 1e-12 * a)


def test_done_when_ntk_depth3_degree200_q1024():
    kernel = NTKKernel(depth=3)
    a, error = kernel.spectrum(200, q=1024), kernel.spectrum_error(200, q=1024)
    # float64 log-space rounding of N(q, l) and of the log-factorials dominates: ~1e-12 relative at degree 200
    assert np.all(a > 0) and np.all(error <= 5e-12 * a)
    # the exact spectrum sums to Theta(1) = 8 up to the degrees beyond 200 (tail between 0 and 8)
    assert 0 < kernel.truncation_error(200, q=1024) < 8


@pytest.mark.parametrize("q", [64, 4096, 65536])
def test_series_route_agrees_across_truncations(q):
    # the spectrum computed with 512 powers lies within its own bound of the one computed with 4096 powers
    kernel = NTKKernel(depth=2, bias_variance=0.5)
    c1, r1, _ = kernel.power_series(512)
    c2, r2, _ = kernel.power_series(4096)
    la1, _, e1 = ps.series_spectrum(c1, 30, q=q, remainder=r1)
    la2, _, _ = ps.series_spectrum(c2, 30, q=q, remainder=r2)
    a1, a2 = np.exp(la1), np.exp(la2)
    assert np.all(a2 - a1 >= -1e-12 * a2)
    assert np.all(a2 - a1 <= e1 + 1e-12 * a2)
    np.testing.assert_allclose(kernel.spectrum(30, q=q), a1, rtol=1e-12)


@given(
    depth=st.integers(1, 4),
    weight_variance=st.floats(0.5, 3.0),
    bias_variance=st.floats(0.0, 1.0),
    q=st.sampled_from([2, 3, 7, 40, 300, 5000]),
    tangent=st.booleans(),
)
def test_network_kernel_properties(depth, weight_variance, bias_variance, q, tangent):
    cls = NTKKernel if tangent else NNGPKernel
    kernel = cls(depth=depth, weight_variance=weight_variance, bias_variance=bias_variance)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpectrumAccuracyWarning)
        a, error = kernel.spectrum(12, q=q), kernel.spectrum_error(12, q=q)
    phi1 = kernel.phi_at_one()
    assert np.all(a >= 0) and np.all(error >= 0)
    assert math.fsum(a) <= phi1 * (1 + 1e-12) + math.fsum(error)
    assert float(kernel.profile(np.array(1.0))) == pytest.approx(phi1, rel=1e-13)
    # the power series reproduces the profile to within its remainder on [-1, 1]
    c, remainder, spread = kernel.power_series(400)
    assert spread == 0.0
    t = np.linspace(-1, 1, 9)
    series = np.polynomial.polynomial.polyval(t, c)
    assert np.all(np.abs(kernel.profile(t) - series) <= remainder * (1 + 1e-9) + 1e-13 * phi1)
    assert np.all(kernel.profile(t) - series >= -1e-13 * phi1)  # the omitted part has non-negative coefficients...
    assert kernel.profile(np.array(1.0)) - series[-1] >= -1e-13 * phi1  # ...so it is largest at t = 1


def test_spectra_sum_to_phi_at_one_and_are_positive():
    for kernel in (NNGPKernel(depth=3, bias_variance=0.2), NTKKernel(depth=2, activation="gelu")):
        for q in (3, 100, 20000):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SpectrumAccuracyWarning)
                a = kernel.spectrum(60, q=q)
            assert np.all(a >= 0) and a.sum() <= kernel.phi_at_one() * (1 + 1e-12)
            assert kernel.truncation_error(60, q=q) >= -1e-12


def test_arccos_nngp_matches_the_arc_cosine_kernel():
    # one hidden ReLU layer, sigma_w^2 = 1, no bias: K_1 = kappa_1 / 2 (and step: kappa_0 / 2)
    for order, activation in ((1, "relu"), (0, "step")):
        k = NNGPKernel(depth=1, activation=activation, weight_variance=1.0)
        reference = ArcCosineKernel(order=order)
        for q in (3, 50, 5000):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SpectrumAccuracyWarning)
                a, error = 2 * k.spectrum(20, q=q), 2 * k.spectrum_error(20, q=q)
            b = reference.spectrum(20, q=q)
            assert np.all(np.abs(a - b) <= error + reference.spectrum_error(20, q=q))
            assert np.all(error[b > 0] <= 1e-8 * b[b > 0])


def test_strict_positive_definiteness():
    # one hidden ReLU layer without bias: odd degrees >= 3 vanish (Bietti & Mairal 2019); deeper nets are strict
    assert NNGPKernel(depth=1).is_strictly_positive_definite(q=3) is False
    assert NTKKernel(depth=1).is_strictly_positive_definite(q=3) is False
    assert NTKKernel(depth=2).is_strictly_positive_definite(q=3) is True
    assert NTKKernel(depth=1, bias_variance=0.1).is_strictly_positive_definite(q=3) is True
    assert NNGPKernel(depth=3).is_positive_semidefinite(q=10)
    a = NTKKernel(depth=1).spectrum(9, q=6)
    assert np.all(a[3::2] == 0) and np.all(a[::2] > 0)


# ---------------------------------------------------------------------------------------------------------------
# the machinery: backends, Gram matrices, MMD, SSL loss, validation


def test_torch_profile_gram_and_autograd():
    torch = pytest.importorskip("torch")
    kernel = NTKKernel(depth=2, bias_variance=0.1)
    t = torch.linspace(-0.99, 0.99, 7, dtype=torch.float64)
    np.testing.assert_allclose(kernel.profile(t).numpy(), kernel.profile(t.numpy()), rtol=1e-14)
    Z = torch.nn.functional.normalize(torch.randn(16, 5, dtype=torch.float64), dim=1).requires_grad_()
    K = kernel.gram(Z)
    assert torch.allclose(torch.diagonal(K), torch.full((16,), kernel.phi_at_one(), dtype=torch.float64))
    K.sum().backward()
    assert torch.isfinite(Z.grad).all()
    k32 = NNGPKernel(depth=2, activation="gelu").gram(Z.detach().float())
    assert k32.dtype == torch.float32


@pytest.mark.parametrize("activation", ["relu", "step", "erf", "gelu"])
def test_array_api_strict_profiles(activation):
    xps = pytest.importorskip("array_api_strict")
    t = np.linspace(-1, 1, 9)
    kernels = [NNGPKernel(depth=2, activation=activation, bias_variance=0.2)]
    if activation != "step":
        kernels.append(NTKKernel(depth=2, activation=activation, bias_variance=0.2))
    for kernel in kernels:
        out = kernel.profile(xps.asarray(t))
        assert type(out).__module__.startswith("array_api_strict")
        np.testing.assert_allclose(np.asarray(out), kernel.profile(t), rtol=1e-15, atol=1e-15)


def test_mmd_to_uniform_and_ssl_regulariser(rng):
    kernel = NTKKernel(depth=2)
    Z = sphere(rng, 400, 8)
    uniform = dotkernels.mmd2_uniform(Z, kernel, estimator="u")
    clustered = dotkernels.mmd2_uniform(sphere(rng, 400, 8) * 0.2 + np.eye(8)[0], kernel, normalize=True)
    assert abs(uniform) < 0.02 and clustered > 0.5
    torch = pytest.importorskip("torch")
    losses = pytest.importorskip("dotkernels_ssl.losses")
    loss = losses.KernelUniformityLoss(kernel=NTKKernel(depth=2))
    z = torch.randn(128, 8, requires_grad=True)
    value = loss(z)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(z.grad).all()


def test_validation():
    with pytest.raises(ValueError, match="depth"):
        NTKKernel(depth=0)
    with pytest.raises(TypeError, match="depth"):
        NTKKernel(depth=1.5)
    with pytest.raises(ValueError, match="activation"):
        NNGPKernel(activation="tanhh")
    with pytest.raises(TypeError, match="activation"):
        NNGPKernel(activation=3)
    with pytest.raises(ValueError, match="weight_variance"):
        NNGPKernel(weight_variance=0.0)
    with pytest.raises(ValueError, match="bias_variance"):
        NNGPKernel(bias_variance=-1.0)
    with pytest.raises(ValueError, match="derivative"):
        NNGPKernel(activation="relu", derivative=np.cos)
    assert repr(NTKKernel(depth=3)) == "NTKKernel(depth=3, activation='relu', weight_variance=2.0, bias_variance=0.0)"
    assert NTKKernel(depth=3) == NTKKernel(depth=3) and NTKKernel(depth=3) != NNGPKernel(depth=3)


def test_kernel_strings():
    assert parse_kernel("ntk:depth=3") == NTKKernel(depth=3)
    assert parse_kernel("nngp:2,bias_variance=0.5") == NNGPKernel(depth=2, bias_variance=0.5)
    for kernel in (NTKKernel(depth=2, activation="erf", bias_variance=0.1), NNGPKernel(depth=4, activation="step")):
        assert parse_kernel(repr(kernel)) == kernel
    with pytest.raises(ValueError, match="depth"):
        parse_kernel("ntk:depth=0")


def test_neural_tangents_reference_if_available():
    nt = pytest.importorskip("neural_tangents")
    stax = nt.stax
    rng = np.random.default_rng(1)
    q = 5
    X = sphere(rng, 6, q)
    sw, sb = 2.0, 0.1
    layers = []
    for _ in range(3):
        layers += [stax.Dense(1, W_std=math.sqrt(sw), b_std=math.sqrt(sb)), stax.Relu()]
    _, _, kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=math.sqrt(sw), b_std=math.sqrt(sb)))
    # neural-tangents divides the first layer by the input width: feed sqrt(q) x
    reference = kernel_fn(math.sqrt(q) * X, None, ("nngp", "ntk"))
    np.testing.assert_allclose(NNGPKernel(depth=3, bias_variance=sb).gram(X), reference.nngp, rtol=1e-5)
    np.testing.assert_allclose(NTKKernel(depth=3, bias_variance=sb).gram(X), reference.ntk, rtol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# work limits and phi(1) in log space


@pytest.mark.parametrize(
    "kernel, degree, q, match",
    [
        (NTKKernel(depth=2), 10**5, 5, "degree must be <= 2000"),
        (NTKKernel(depth=10**4), 30, 5, r"degrees up to 29 at depth 10000, or depth up to 9755 at degree 30"),
        (NNGPKernel(depth=10**6), 5, 64, "degrees up to 2 at depth 1000000"),
    ],
)
def test_spectra_that_would_run_for_minutes_are_refused_at_once(kernel, degree, q, match):
    import time

    start = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        kernel.spectrum(degree, q=q)
    assert time.perf_counter() - start < 1.0


@pytest.mark.slow
def test_deep_network_spectrum_within_the_work_limit():
    # depth 10^4 once took 90 s: at the largest feasible number of terms it returns with its bound
    kernel = NTKKernel(depth=10**4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpectrumAccuracyWarning)
        a, err = kernel.spectrum(3, q=1024), kernel.spectrum_error(3, q=1024)
    assert np.all(a > 0) and np.all(err < a)


def test_log_phi_at_one_of_deep_relu_networks_against_mpmath():
    # K_{h+1}(1) = sw K_h(1) / 2 + sb, Theta_{h+1}(1) = K_{h+1}(1) + sw Theta_h(1) / 2 (ReLU), in mpmath
    sw, sb, depth = 3.0, 0.5, 3000
    with mp.workdps(40):
        k = mp.mpf(sw + sb)
        theta = k
        for _ in range(depth):
            k = sw * k / 2 + sb
            theta = k + sw * theta / 2
    ntk = NTKKernel(depth=depth, weight_variance=sw, bias_variance=sb)
    nngp = NNGPKernel(depth=depth, weight_variance=sw, bias_variance=sb)
    assert ntk.log_phi_at_one() == pytest.approx(float(mp.log(theta)), rel=1e-13)
    assert nngp.log_phi_at_one() == pytest.approx(float(mp.log(k)), rel=1e-13)
    with pytest.warns(RuntimeWarning, match="log_phi_at_one"):
        assert ntk.phi_at_one() == math.inf
    small = NTKKernel(depth=3, activation="erf", bias_variance=0.3)
    assert small.log_phi_at_one() == pytest.approx(math.log(small.phi_at_one()), rel=1e-14)


def test_depths_that_would_take_minutes_to_build_are_refused():
    with pytest.raises(ValueError, match=r"depth must be <= 1000 for activation 'gelu'"):
        NNGPKernel(depth=1001, activation="gelu")
    with pytest.raises(ValueError, match=r"depth must be <= 1000000 for activation 'relu'"):
        NTKKernel(depth=10**6 + 1)
