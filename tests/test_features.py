"""Random feature maps, the feature MMD and GP prior samples, against exact kernel matrices and Monte Carlo.

Every Monte Carlo check states its tolerance from a variance: either the exact variance the code states (checked
itself against an independent closed form or a sample), or the variance of a sample moment estimated from the
sample (a t-type bound). The seeds are fixed; the bounds are 5 to 6 standard deviations.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import torch
from _helpers import sphere
from hypothesis import given
from hypothesis import strategies as st

import dotkernels.prior as prior_module
from dotkernels import (
    DistanceKernel,
    ExponentialKernel,
    GaussianKernel,
    LegendreSeriesKernel,
    PolynomialKernel,
    SFRIKKernel,
    legendre_series,
    mmd2_uniform,
    sample_vmf,
)
from dotkernels.features import (
    FeatureMMDResult,
    RandomGegenbauerFeatures,
    RandomMaclaurinFeatures,
    mmd2_uniform_features,
)
from dotkernels.prior import sample_gp_prior

Z_SCORE = 6.0


def _pair(q, t):
    """Two unit vectors with inner product t (away from the coordinate axes, for Rademacher vectors)."""
    rng = np.random.default_rng(7)
    Q, _ = np.linalg.qr(rng.standard_normal((q, 2)))
    x, e = Q[:, 0], Q[:, 1]
    return np.stack([x, t * x + math.sqrt(1 - t * t) * e])


def _sample_moments(values):
    """Mean, variance, and the standard errors of both estimated from the sample (fourth central moment)."""
    R = values.size
    mean = values.mean()
    var = values.var(ddof=1)
    m4 = np.mean((values - mean) ** 4)
    return mean, var, math.sqrt(var / R), math.sqrt(max(m4 - var * var, 0.0) / R)


# =================================================================================================================
# random Gegenbauer features


@pytest.mark.parametrize(
    ("kernel", "q", "t"),
    [
        (GaussianKernel(gamma=1.0), 3, 0.3),
        (GaussianKernel(gamma=1.0), 3, 1.0),
        (GaussianKernel(gamma=0.5), 10, -0.4),
        (LegendreSeriesKernel([0.5, 1.0, 2.0, 1.0]), 2, 0.7),
        (SFRIKKernel(), 8, 0.2),
    ],
)
@pytest.mark.parametrize("per_degree", [True, False])
def test_gegenbauer_single_direction_mean_and_variance_by_monte_carlo(kernel, q, t, per_degree):
    # R directions give R independent single-direction estimates of phi_L(t); their sample mean and variance
    # agree with phi_L(t) (addition theorem) and with variance() (exact quadrature) within their standard errors
    R = 40000
    features = RandomGegenbauerFeatures(kernel, q=q, n_directions=R, per_degree=per_degree, rng=11)
    X = _pair(q, t)
    F = features.transform(X) * math.sqrt(R)  # one direction's features, unscaled
    k = len(features.degrees) if per_degree else 1
    assert F.shape == (2, R * k)
    products = (F[0].reshape(R, k) * F[1].reshape(R, k)).sum(axis=1)
    mean, var, se_mean, se_var = _sample_moments(products)
    phi_L = legendre_series(kernel.spectrum(features.degree, q=q), t, q=q)
    assert abs(mean - phi_L) <= Z_SCORE * se_mean
    stated = float(features.variance(X)[0, 1]) * R
    assert abs(var - stated) <= Z_SCORE * se_var, (var, stated)


@given(q=st.integers(2, 3000), t=st.floats(-1.0, 1.0), a1=st.floats(0.01, 10.0))
def test_gegenbauer_variance_closed_form_degree_one(q, t, a1):
    # phi = a_1 P_1: one direction gives a_1 q <x,u><y,u>, whose variance is a_1^2 (q (1 + 2 t^2) / (q + 2) - t^2)
    # (fourth moments of u uniform on the sphere: E[u_i^2 u_j^2] = (1 + 2 delta_ij) / (q (q + 2)))
    features = RandomGegenbauerFeatures(LegendreSeriesKernel([0.0, a1]), q=q, n_directions=1, rng=0)
    expected = a1 * a1 * (q * (1 + 2 * t * t) / (q + 2) - t * t)
    assert float(features.variance(_pair(q, t))[0, 1]) == pytest.approx(expected, rel=1e-10, abs=1e-12 * a1 * a1)


@pytest.mark.parametrize(("q", "gamma", "n", "m"), [(3, 1.0, 30, 3000), (1000, 0.25, 8, 400)])
def test_gegenbauer_gram_against_the_exact_kernel(q, gamma, n, m):
    kernel = GaussianKernel(gamma=gamma)
    features = RandomGegenbauerFeatures(kernel, q=q, n_directions=m, rng=3)
    X = sphere(np.random.default_rng(4), n, q)
    G, K = features.gram(X), kernel.gram(X)
    sd = np.sqrt(features.variance(X))
    assert features.truncation_error <= 1e-6
    assert np.all(np.abs(G - K) <= Z_SCORE * sd + features.truncation_error)
    # the Gram matrix is random: a non-zero error, as large as its standard deviation
    assert 0.2 < np.sqrt(np.mean(((G - K) / sd) ** 2)) < 3.0


def test_gegenbauer_memory_is_proportional_to_n_times_the_number_of_features():
    q, n, m = 1000, 50, 200
    features = RandomGegenbauerFeatures(GaussianKernel(gamma=0.5), q=q, n_directions=m, rng=0)
    X = sphere(np.random.default_rng(1), n, q)
    tracemalloc.start()
    F = features.transform(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert F.shape == (n, features.n_features) == (n, m * (features.degree + 1))
    # the (L + 1) Gegenbauer values, their stack and the output, plus the directions: no q x q or n x n array
    assert peak <= 8 * (3 * n * features.n_features + 2 * n * m + m * q) + 2**16


def test_gegenbauer_truncation_error_bounds_the_truncated_kernel_on_a_dense_grid():
    t = np.linspace(-1.0, 1.0, 4001)
    for kernel, q in [(GaussianKernel(gamma=2.0), 3), (ExponentialKernel(kappa=3.0), 50), (GaussianKernel(), 1000)]:
        features = RandomGegenbauerFeatures(kernel, q=q, n_directions=1, rtol=1e-8, rng=0)
        a = kernel.spectrum(features.degree, q=q)
        error = np.abs(kernel.profile(t, q=q) - legendre_series(a, t, q=q)).max()
        assert features.truncation_error <= 1e-8 * kernel.phi_at_one(q=q) + 1e-15
        assert error <= features.truncation_error + 1e-14
        # the smallest such degree: one degree less misses the target
        assert kernel.truncation_error(features.degree - 1, q=q) > 1e-8 * kernel.phi_at_one(q=q)


def test_gegenbauer_features_need_non_negative_coefficients():
    with pytest.raises(ValueError, match="a_0 < 0"):
        RandomGegenbauerFeatures(DistanceKernel(s=1.0), q=3, degree=4)
    with pytest.raises(ValueError, match="n_directions"):
        RandomGegenbauerFeatures(GaussianKernel(), q=3, n_directions=0)
    with pytest.raises(TypeError, match="kernel"):
        RandomGegenbauerFeatures(np.exp, q=3)
    features = RandomGegenbauerFeatures(GaussianKernel(), q=3, n_directions=4, rng=0)
    with pytest.raises(ValueError, match="q = 3 columns"):
        features.transform(sphere(np.random.default_rng(0), 2, 4))


def test_gegenbauer_features_are_reproducible_and_follow_torch():
    a = RandomGegenbauerFeatures("gaussian:gamma=1", q=5, n_directions=30, rng=5)
    b = RandomGegenbauerFeatures("gaussian:gamma=1", q=5, n_directions=30, rng=5)
    X = sphere(np.random.default_rng(2), 6, 5)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    Xt = torch.tensor(X, requires_grad=True)
    Ft = a.transform(Xt)
    assert isinstance(Ft, torch.Tensor) and Ft.dtype == torch.float64
    np.testing.assert_allclose(Ft.detach().numpy(), a.transform(X), rtol=1e-12, atol=1e-14)
    assert torch.autograd.gradcheck(lambda Z: a.gram(Z / Z.norm(dim=1, keepdim=True)), (Xt,))


# =================================================================================================================
# random Maclaurin features


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
@pytest.mark.parametrize(("kernel", "q", "t"), [(ExponentialKernel(kappa=1.0), 3, 0.4), (GaussianKernel(0.5), 20, 1.0)])
def test_maclaurin_single_feature_mean_and_variance_by_monte_carlo(distribution, kernel, q, t):
    R = 40000
    features = RandomMaclaurinFeatures(kernel, q=q, n_features=R, distribution=distribution, rng=2)
    X = _pair(q, t)
    F = features.transform(X) * math.sqrt(R)
    products = F[0] * F[1]
    mean, var, se_mean, se_var = _sample_moments(products)
    truncated = np.polynomial.polynomial.polyval(t, features.coefficients)
    assert abs(mean - truncated) <= Z_SCORE * se_mean
    stated = float(features.variance(X)[0, 1]) * R
    assert abs(var - stated) <= Z_SCORE * se_var, (var, stated)


def test_maclaurin_coefficients_and_truncation_error_are_the_taylor_series():
    features = RandomMaclaurinFeatures(ExponentialKernel(kappa=1.0), q=3, degree=3, n_features=10, rng=0)
    np.testing.assert_allclose(features.coefficients, [1, 1, 1 / 2, 1 / 6], rtol=1e-14)
    assert features.truncation_error == pytest.approx(math.e - (1 + 1 + 1 / 2 + 1 / 6), rel=1e-12)
    auto = RandomMaclaurinFeatures(ExponentialKernel(kappa=1.0), q=3, rtol=1e-9, n_features=10, rng=0)
    tail = math.e - math.fsum(1 / math.factorial(p) for p in range(auto.degree + 1))
    assert tail <= 1e-9 * math.e < math.e - math.fsum(1 / math.factorial(p) for p in range(auto.degree))
    assert auto.truncation_error >= tail
    poly = RandomMaclaurinFeatures(PolynomialKernel(p=2, c=1.0), q=4, n_features=10, rng=0)
    np.testing.assert_allclose(poly.coefficients, [1, 2, 1], rtol=1e-14)


def test_maclaurin_needs_non_negative_power_series():
    # SFRIK's P_2 = (q t^2 - 1) / (q - 1) has a negative constant term: no Maclaurin features
    with pytest.raises(ValueError, match=r"c_0 = .* < 0"):
        RandomMaclaurinFeatures(SFRIKKernel(), q=3)
    with pytest.raises(ValueError, match="no power series"):
        RandomMaclaurinFeatures(DistanceKernel(s=1.0), q=3)
    # 1 + P_2 = 1/2 + 3/2 t^2 at q = 3: non-negative, exact
    features = RandomMaclaurinFeatures(LegendreSeriesKernel([1.0, 0.0, 1.0]), q=3, n_features=5, rng=0)
    np.testing.assert_allclose(features.coefficients, [0.5, 0.0, 1.5], rtol=1e-15)
    assert features.truncation_error == 0.0
    with pytest.raises(ValueError, match="distribution"):
        RandomMaclaurinFeatures(ExponentialKernel(), q=3, distribution="uniform")


@pytest.mark.parametrize(("q", "n", "m"), [(3, 25, 4000), (1000, 6, 500)])
def test_maclaurin_gram_against_the_exact_kernel(q, n, m):
    kernel = ExponentialKernel(kappa=0.5)
    features = RandomMaclaurinFeatures(kernel, q=q, n_features=m, rng=9)
    X = sphere(np.random.default_rng(8), n, q)
    G, K = features.gram(X), kernel.gram(X)
    sd = np.sqrt(features.variance(X))
    assert np.all(np.abs(G - K) <= Z_SCORE * sd + features.truncation_error)
    assert features.counts.sum() == m


# =================================================================================================================
# the linear-time MMD


@pytest.mark.parametrize(("q", "estimator"), [(3, "u"), (3, "v"), (10, "u")])
def test_feature_mmd_is_unbiased_with_the_stated_variance(q, estimator):
    kernel = GaussianKernel(gamma=1.0)
    mu = np.zeros(q)
    mu[0] = 1.0
    Z = sample_vmf(150, mu=mu, kappa=1.5, rng=0)
    exact = float(mmd2_uniform(Z, kernel, estimator=estimator))
    R, m = 200, 32
    results = [mmd2_uniform_features(Z, kernel, estimator=estimator, n_directions=m, rng=r) for r in range(R)]
    estimates = np.array([r.estimate for r in results])
    stated_var = np.mean([r.standard_error**2 for r in results])
    mean, var, se_mean, _ = _sample_moments(estimates)
    assert abs(mean - exact) <= Z_SCORE * se_mean + results[0].truncation_error
    # the sample variance of R = 200 near-normal estimates has relative standard deviation sqrt(2 / 199) = 0.1
    assert abs(var / stated_var - 1.0) <= 0.45, (var, stated_var)


def test_feature_mmd_result_and_large_dimension():
    Z = sphere(np.random.default_rng(3), 300, 1000)
    kernel = GaussianKernel(gamma=0.25)
    result = mmd2_uniform_features(Z, kernel, estimator="u", n_directions=300, block_size=64, rng=1)
    assert isinstance(result, FeatureMMDResult) and result.n_directions == 300
    exact = float(mmd2_uniform(Z, kernel, estimator="u"))
    assert abs(result.estimate - exact) <= Z_SCORE * result.standard_error + result.truncation_error
    # blocks do not change the value
    whole = mmd2_uniform_features(Z, kernel, estimator="u", n_directions=300, rng=1)
    assert whole.estimate == pytest.approx(result.estimate, rel=1e-12, abs=1e-15)
    with pytest.raises(ValueError, match="n_directions"):
        mmd2_uniform_features(Z, kernel, n_directions=1)
    with pytest.raises(ValueError, match="estimator"):
        mmd2_uniform_features(Z, kernel, estimator="w")


# =================================================================================================================
# prior samples


def _covariance_tolerance(K, samples, extra=0.0):
    """5 standard deviations of each entry of a Gaussian sample covariance: Var = (K_ii K_jj + K_ij^2) / S."""
    d = np.diag(K)
    return Z_SCORE * np.sqrt((np.outer(d, d) + K * K + extra) / samples)


@pytest.mark.parametrize(("q", "kernel"), [(3, GaussianKernel(gamma=2.0)), (1000, GaussianKernel(gamma=0.5))])
def test_exact_prior_samples_have_the_kernel_as_covariance(q, kernel):
    X = sphere(np.random.default_rng(1), 12, q)
    S = 20000
    f = sample_gp_prior(X, kernel, S, method="cholesky", rng=2)
    assert f.shape == (S, 12)
    K = kernel.gram(X)
    C = f.T @ f / S
    assert np.all(np.abs(C - K) <= _covariance_tolerance(K, S))


@pytest.mark.parametrize(("q", "kernel"), [(3, GaussianKernel(gamma=2.0)), (1000, GaussianKernel(gamma=0.25))])
def test_feature_prior_samples_have_the_kernel_as_covariance_on_average(q, kernel):
    # each call draws new features: the per-call sample covariance has expectation K_L, and variance
    # (E[G_ii G_jj] + E[G_ij^2]) / S + Var(G_ij) with G = Phi Phi^T; E[G_ii G_jj] <= K_ii K_jj + sd_ii sd_jj
    X = sphere(np.random.default_rng(999), 10, q)  # a seed that no feature draw below uses
    S, R, m = 500, 40, 200
    covariances = [
        (lambda f: f.T @ f / S)(sample_gp_prior(X, kernel, S, method="features", n_directions=m, rng=r))
        for r in range(R)
    ]
    C = np.mean(covariances, axis=0)
    K = kernel.gram(X)
    V = RandomGegenbauerFeatures(kernel, q=q, n_directions=m, rng=0).variance(X)
    sd = np.sqrt(np.diag(V))
    per_call = (np.outer(np.diag(K), np.diag(K)) + np.outer(sd, sd) + K * K + V) / S + V
    assert np.all(np.abs(C - K) <= Z_SCORE * np.sqrt(per_call / R) + 1e-6)


def test_prior_method_choice_and_torch(monkeypatch):
    X = sphere(np.random.default_rng(1), 8, 4)
    kernel = GaussianKernel(gamma=1.0)
    exact = sample_gp_prior(X, kernel, 3, rng=5)
    np.testing.assert_array_equal(exact, sample_gp_prior(X, kernel, 3, method="cholesky", rng=5))
    monkeypatch.setattr(prior_module, "EXACT_POINTS", 4)
    auto = sample_gp_prior(X, kernel, 3, n_directions=50, rng=5)
    np.testing.assert_array_equal(auto, sample_gp_prior(X, kernel, 3, method="features", n_directions=50, rng=5))
    # beyond FEATURE_VALUES, one feature per direction: the samples are those of the summed map's second draw
    monkeypatch.setattr(prior_module, "FEATURE_VALUES", 8 * 50)
    summed = sample_gp_prior(X, kernel, 3, n_directions=50, rng=5)
    rng = np.random.default_rng(5)
    RandomGegenbauerFeatures(kernel, q=4, n_directions=50, rng=rng)
    features = RandomGegenbauerFeatures(kernel, q=4, n_directions=50, per_degree=False, rng=rng)
    np.testing.assert_allclose(summed, (features.transform(X) @ rng.standard_normal((50, 3))).T, rtol=1e-12)
    features = RandomMaclaurinFeatures(kernel, q=4, n_features=100, rng=0)
    assert sample_gp_prior(X, kernel, 2, features=features, rng=0).shape == (2, 8)
    ft = sample_gp_prior(torch.tensor(X, dtype=torch.float32), kernel, 2, rng=0)
    assert isinstance(ft, torch.Tensor) and ft.dtype == torch.float32 and ft.shape == (2, 8)


def test_prior_jitter_on_a_low_rank_kernel_and_bad_input():
    # SFRIK at q = 3 has rank 3 + 5 + 7 = 15 < 40 points: the matrix is singular and needs its jitter
    X = sphere(np.random.default_rng(1), 40, 3)
    kernel = SFRIKKernel([1.0, 1.0, 1.0])
    f = sample_gp_prior(X, kernel, 20000, jitter=1e-8, rng=0)
    K = kernel.gram(X)
    assert np.all(np.abs(f.T @ f / 20000 - K) <= _covariance_tolerance(K, 20000) + 1e-7)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        sample_gp_prior(X, DistanceKernel(s=1.0), 1)
    with pytest.raises(ValueError, match="method"):
        sample_gp_prior(X, kernel, 1, method="eigh")
    with pytest.raises(ValueError, match="n_samples"):
        sample_gp_prior(X, kernel, 0)
    with pytest.raises(ValueError, match="drawn for"):
        sample_gp_prior(X, kernel, 1, features=RandomGegenbauerFeatures(kernel, q=4, n_directions=2, rng=0))
    with pytest.raises(ValueError, match="jitter"):
        sample_gp_prior(X, kernel, 1, jitter=-1.0)


def test_exact_prior_of_float32_points_is_the_float64_one():
    """The Cholesky route forms K in float64 whatever the points' dtype: float32 points give the samples of their
    float64 values (a float32 kernel matrix is indefinite far above the jitter: 300 points, GaussianKernel(0.1)
    failed with jitter 1e-6 phi(1)), in float32, without a jitter warning."""
    import warnings

    X = sphere(np.random.default_rng(2), 300, 3).astype(np.float32)
    kernel = GaussianKernel(gamma=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f32 = sample_gp_prior(X, kernel, 2, rng=3)
    X64 = X.astype(np.float64)
    X64 /= np.linalg.norm(X64, axis=1, keepdims=True)
    expected = sample_gp_prior(X64, kernel, 2, rng=3)
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, expected.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_kernels_whose_phi_at_one_overflows_are_refused_not_sampled_as_inf():
    X = sphere(np.random.default_rng(1), 6, 3)
    kernel = ExponentialKernel(kappa=800.0)  # phi(1) = e^800
    with pytest.raises(ValueError, match=r"beyond float64"):
        sample_gp_prior(X, kernel, 2, rng=0)
    with pytest.raises(ValueError, match=r"beyond float64.*pass degree"):
        RandomGegenbauerFeatures(kernel, q=3, n_directions=3, rng=0)
    with pytest.raises(ValueError, match=r"beyond float64.*pass degree"):
        RandomMaclaurinFeatures(kernel, q=3, n_features=3, rng=0)
    from dotkernels import PoissonKernel

    with pytest.raises(ValueError, match=r"beyond float64.*pass degree"):  # it chose degree 0 before
        RandomGegenbauerFeatures(PoissonKernel(rho=0.5), q=8192, n_directions=3, rng=0)


def test_the_module_table_of_variances_is_what_the_code_states():
    # the table "Which one" of dotkernels.features: one direction's variance of the estimate of k(x, x) for
    # GaussianKernel(gamma) at q = 3, 10, 100, 1000, and one Maclaurin feature's (Gaussian vectors: 1 + 2 t^2 = 3)
    import re

    import dotkernels.features as module

    rows = re.findall(r"^(\d+(?:\.\d+)?)\s+([\d.e+]+)\s+([\d.e+]+)\s+([\d.e+]+)\s+([\d.e+]+)\s+([\d.e+]+)\s*$",
                      module.__doc__, flags=re.MULTILINE)  # fmt: skip
    assert [float(r[0]) for r in rows] == [0.25, 1.0, 4.0]
    x = np.eye(3)[:1]
    for gamma, *stated in rows:
        kernel = GaussianKernel(gamma=float(gamma))
        for q, text in zip((3, 10, 100, 1000), stated[:4], strict=True):
            value = float(RandomGegenbauerFeatures(kernel, q=q, n_directions=1, rng=0).variance(np.eye(q)[:1])[0, 0])
            assert value == pytest.approx(float(text), rel=0.05), (gamma, q, value, text)
            # "off the diagonal, at t = 0, it stays below 0.2 in every case above, against 0.6 to 1 for Maclaurin"
            features = RandomGegenbauerFeatures(kernel, q=q, n_directions=1, rng=0)
            assert float(features.variance(np.eye(q)[:1], np.eye(q)[1:2])[0, 0]) < 0.2
        maclaurin = RandomMaclaurinFeatures(kernel, q=3, n_features=1, distribution="gaussian", rng=0)
        assert float(maclaurin.variance(x)[0, 0]) == pytest.approx(float(stated[4]), rel=0.05)
        assert 0.6 <= float(maclaurin.variance(x, np.eye(3)[1:2])[0, 0]) <= 1.0
    # "at q = 1000, gamma = 1 the summed form has variance 2.6e3" (RandomGegenbauerFeatures' notes)
    summed = RandomGegenbauerFeatures(GaussianKernel(gamma=1.0), q=1000, n_directions=1, per_degree=False, rng=0)
    assert float(summed.variance(np.eye(1000)[:1])[0, 0]) == pytest.approx(2.6e3, rel=0.05)
