"""MMD estimators and mean embeddings: exact identities, independent references, Monte Carlo, backends, autograd.

Exact identities (V vs U, moments vs Gram, blocked vs Gram, kappa = 0 vs uniform) are checked to 1e-12 relative
to the scale sum_l |a_l| of the kernel. Monte Carlo checks accept an average within 4 (expectations over
replicates) or 5 (averages over samples) estimated standard errors; all draws are seeded.
"""

import math

import array_api_strict as xps
import mpmath as mp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.special import iv

from dotkernels import (
    ArcCosineKernel,
    DistanceKernel,
    ExponentialKernel,
    GaussianKernel,
    HeatKernel,
    LegendreSeriesKernel,
    MonomialKernel,
    PoissonKernel,
    PolynomialKernel,
    SFRIKKernel,
    SpectrumAccuracyWarning,
    legendre_all,
    projected_quadrature,
)
from dotkernels.mmd import (
    _choose_method,
    mean_embedding,
    mmd2,
    mmd2_uniform,
    mmd2_vmf,
    uniform_mean_embedding,
    vmf_mean_embedding,
    vmf_mean_embedding_norm2,
)
from dotkernels.sampling import sample_uniform, sample_vmf

DEGREE2 = [
    LegendreSeriesKernel([0.0, 1.0, 40.0]),
    LegendreSeriesKernel([0.3, 2.0, 5.0]),
    MonomialKernel(2),
    PolynomialKernel(2, 0.7),
    MonomialKernel(1),
    DistanceKernel(s=2.0),
]
GENERAL = [
    GaussianKernel(1.3),
    SFRIKKernel(),
    ArcCosineKernel(0),
    ArcCosineKernel(1),
    DistanceKernel(s=1.0),
    PoissonKernel(0.3),
    HeatKernel(0.3),
    ExponentialKernel(2.0),
]
ALL = DEGREE2 + GENERAL
METHODS = ["gram", "blocked", "moments"]


def _scale(kernel, q):
    """sum_l |a_l| (phi(1) for non-negative spectra): the size of the terms of every statistic."""
    a0 = kernel.uniform_mean_embedding(q=q)
    return abs(a0) + abs(kernel.phi_at_one(q=q) - a0) + 1.0


def _methods(kernel):
    return METHODS if kernel.degree is not None and kernel.degree <= 2 else METHODS[:2]


def _exact_gram(A, B, kernel):
    """phi(<a_i, b_j>) in numpy with the exact profile at coinciding points (no open-interval clipping)."""
    return kernel.profile(np.clip(A @ B.T, -1.0, 1.0), q=A.shape[1])


def _reference_v(Z, kernel):
    """n^-2 sum_ij phi(t_ij) - a_0, with the diagonal phi(1), straight from a numpy Gram matrix."""
    K = _exact_gram(Z, Z, kernel)
    q = Z.shape[1]
    np.fill_diagonal(K, kernel.phi_at_one(q=q))
    return K.mean() - kernel.uniform_mean_embedding(q=q)


def _skewed(n, q, seed):
    """A clearly non-uniform sample (vMF), with a duplicated point."""
    mu = np.zeros(q)
    mu[0] = 1.0
    Z = sample_vmf(n, mu=mu, kappa=2.0, rng=seed)
    Z[1] = Z[0]
    return Z


# =================================================================================================================
# exact identities


@pytest.mark.parametrize("kernel", ALL, ids=repr)
@pytest.mark.parametrize("q", [2, 3, 9])
def test_v_u_relation(kernel, q):
    n = 37
    Z = _skewed(n, q, seed=q)
    phi1, a0 = kernel.phi_at_one(q=q), kernel.uniform_mean_embedding(q=q)
    for method in _methods(kernel):
        v = float(mmd2_uniform(Z, kernel, estimator="v", method=method))
        u = float(mmd2_uniform(Z, kernel, estimator="u", method=method))
        assert n * v == pytest.approx((n - 1) * u + (phi1 - a0), abs=1e-12 * n * _scale(kernel, q))


@pytest.mark.parametrize("kernel", ALL, ids=repr)
def test_gram_matches_reference(kernel):
    Z = _skewed(40, 5, seed=1)
    got = float(mmd2_uniform(Z, kernel, method="gram"))
    assert got == pytest.approx(_reference_v(Z, kernel), abs=1e-12 * _scale(kernel, 5))


@pytest.mark.parametrize("kernel", DEGREE2, ids=repr)
@pytest.mark.parametrize("q, n", [(2, 2), (3, 50), (16, 200), (64, 30)])
@pytest.mark.parametrize("estimator", ["v", "u"])
def test_moments_match_gram(kernel, q, n, estimator):
    Z = _skewed(n, q, seed=n + q) if n > 2 else sample_uniform(n, q=q, rng=0)
    gram = float(mmd2_uniform(Z, kernel, estimator=estimator, method="gram"))
    moments = float(mmd2_uniform(Z, kernel, estimator=estimator, method="moments"))
    assert moments == pytest.approx(gram, abs=1e-12 * _scale(kernel, q))


def test_moments_exact_diagonal_for_float32_rows():
    # rows of a float32 array are unit only to ~1e-7: the diagonal corrections keep moments == gram to 1e-12
    kernel = LegendreSeriesKernel([0.0, 1.0, 40.0])
    Z = _skewed(300, 12, seed=3).astype(np.float32)
    assert np.abs(np.linalg.norm(Z.astype(np.float64), axis=1) - 1).max() > 1e-9
    for estimator in ("v", "u"):
        gram = float(mmd2_uniform(Z, kernel, estimator=estimator, method="gram"))
        moments = float(mmd2_uniform(Z, kernel, estimator=estimator, method="moments"))
        assert moments == pytest.approx(gram, abs=1e-12 * 41)


@pytest.mark.parametrize(
    "kernel",
    [
        GaussianKernel(0.8),
        SFRIKKernel(),
        ArcCosineKernel(1),
        PoissonKernel(0.3),
        LegendreSeriesKernel([0.0, 1.0, 40.0]),
    ],
    ids=repr,
)
@pytest.mark.parametrize("block_size", [1, 7, 16, 64, 99, 100, 101, 1000])
def test_blocked_matches_gram(kernel, block_size):
    n, q = 100, 6
    Z = _skewed(n, q, seed=2)
    for estimator in ("v", "u"):
        gram = float(mmd2_uniform(Z, kernel, estimator=estimator, method="gram"))
        blocked = float(mmd2_uniform(Z, kernel, estimator=estimator, method="blocked", block_size=block_size))
        assert blocked == pytest.approx(gram, abs=1e-12 * _scale(kernel, q))


def test_spectral_form_of_the_statistic():
    # MMD_V^2 = sum_{l>=1} a_l n^-2 sum_ij P_l(t_ij): spectrum + Gegenbauer polynomials, no profile involved
    q, L = 4, 60
    kernel = GaussianKernel(1.0)
    Z = _skewed(50, q, seed=8)
    T = np.clip(Z @ Z.T, -1, 1)
    np.fill_diagonal(T, 1.0)
    P = legendre_all(L, T, q=q)
    a = kernel.spectrum(L, q=q)
    expected = float(np.tensordot(a[1:], P[1:].mean(axis=(1, 2)), axes=1))
    assert float(mmd2_uniform(Z, kernel)) == pytest.approx(expected, rel=1e-11)


def test_auto_choice():
    sfrik2 = SFRIKKernel([1.0, 40.0])
    assert _choose_method(sfrik2, 4096, 64) == "moments"
    assert _choose_method(sfrik2, 100, 512) == "gram"  # q > n: the Gram matrix is cheaper
    assert _choose_method(GaussianKernel(1.0), 4096, 64) == "gram"
    assert _choose_method(GaussianKernel(1.0), 20000, 128) == "blocked"
    assert _choose_method(SFRIKKernel(), 4096, 64) == "gram"  # degree 3
    Z = _skewed(120, 5, seed=4)
    for kernel in (sfrik2, GaussianKernel(1.0)):
        assert float(mmd2_uniform(Z, kernel)) == pytest.approx(
            float(mmd2_uniform(Z, kernel, method="gram")), abs=1e-12 * _scale(kernel, 5)
        )


@pytest.mark.parametrize(
    "kernel",
    [
        GaussianKernel(2.0),
        ArcCosineKernel(0),
        ArcCosineKernel(1),
        PoissonKernel(0.5),
        HeatKernel(0.1),
        SFRIKKernel(),
        MonomialKernel(2),
        ExponentialKernel(1.0),
    ],
    ids=repr,
)
def test_v_statistic_is_non_negative(kernel):
    # positive definite kernel: MMD_V^2 = ||mean embedding - a_0||^2 >= 0, also for nearly uniform or degenerate samples
    q = 3
    for Z in (
        sample_uniform(60, q=q, rng=5),
        _skewed(60, q, seed=6),
        np.tile(np.eye(q), (4, 1)),
        np.vstack([np.eye(q), -np.eye(q)]),
    ):
        for method in _methods(kernel):
            assert float(mmd2_uniform(Z, kernel, method=method)) >= -1e-13 * _scale(kernel, q)


def test_cross_polytope_is_a_design_for_degree_two():
    # +-e_i: sum z = 0 and Z^T Z / n = I/q, so MMD_V^2 = 0 for every kernel of degree <= 2 with a_0 removed
    q = 7
    Z = np.vstack([np.eye(q), -np.eye(q)])
    for kernel in DEGREE2:
        for method in METHODS:
            assert abs(float(mmd2_uniform(Z, kernel, method=method))) <= 1e-14 * _scale(kernel, q)


@pytest.mark.parametrize("kernel", [GaussianKernel(1.0), ArcCosineKernel(1)], ids=repr)
def test_uniform_mean_embedding_against_quadrature(kernel):
    for q in (2, 3, 10):
        t, w = projected_quadrature(200, q=q)
        assert uniform_mean_embedding(kernel, q=q) == pytest.approx(float(w @ kernel.profile(t, q=q)), rel=1e-6)


# =================================================================================================================
# Monte Carlo under the uniform law


@pytest.mark.parametrize(
    "kernel", [GaussianKernel(1.0), SFRIKKernel(), DistanceKernel(s=1.0), ArcCosineKernel(0)], ids=repr
)
def test_expectations_under_uniform(kernel):
    # E[n MMD_V^2] = sum_{l>=1} a_l = phi(1) - a_0 and E[MMD_U^2] = 0 exactly, for every n;
    # Var(MMD_U^2) = 2/(n(n-1)) sum_{l>=1} a_l^2 / N(q,l) (shared/MATH.md §4). 400 replicates, tolerance 4 SE.
    n, q, reps = 12, 3, 400
    rng = np.random.default_rng(11)
    nv, u = np.empty(reps), np.empty(reps)
    for r in range(reps):
        Z = sample_uniform(n, q=q, rng=rng)
        nv[r] = n * float(mmd2_uniform(Z, kernel, estimator="v"))
        u[r] = float(mmd2_uniform(Z, kernel, estimator="u"))
    target = kernel.phi_at_one(q=q) - kernel.uniform_mean_embedding(q=q)
    assert abs(nv.mean() - target) <= 4 * nv.std(ddof=1) / math.sqrt(reps)
    assert abs(u.mean()) <= 4 * u.std(ddof=1) / math.sqrt(reps)
    L = 400
    a = kernel.spectrum(L, q=q)
    var_u = 2.0 / (n * (n - 1)) * float(np.sum(a[1:] ** 2 / (2 * np.arange(1, L + 1) + 1)))
    var_hat = u.var(ddof=1)
    se_var = math.sqrt(max(np.mean((u - u.mean()) ** 4) - var_hat**2, 0.0) / reps)
    assert abs(var_hat - var_u) <= 4 * se_var


# =================================================================================================================
# two-sample MMD


@pytest.mark.parametrize(
    "kernel",
    [GaussianKernel(1.0), ArcCosineKernel(1), LegendreSeriesKernel([0.0, 1.0, 40.0]), DistanceKernel(s=1.0)],
    ids=repr,
)
def test_two_sample_against_gram_formula(kernel):
    q = 4
    X, Y = _skewed(30, q, seed=1), sample_uniform(45, q=q, rng=2)
    Kxx, Kyy, Kxy = _exact_gram(X, X, kernel), _exact_gram(Y, Y, kernel), _exact_gram(X, Y, kernel)
    n, m = 30, 45
    phi1 = kernel.phi_at_one(q=q)
    np.fill_diagonal(Kxx, phi1)
    np.fill_diagonal(Kyy, phi1)
    v = Kxx.mean() + Kyy.mean() - 2 * Kxy.mean()
    u = (Kxx.sum() - n * phi1) / (n * (n - 1)) + (Kyy.sum() - m * phi1) / (m * (m - 1)) - 2 * Kxy.mean()
    tol = 1e-12 * _scale(kernel, q)
    assert float(mmd2(X, Y, kernel)) == pytest.approx(v, abs=tol)
    assert float(mmd2(X, Y, kernel, estimator="u")) == pytest.approx(u, abs=tol)
    assert float(mmd2(Y, X, kernel, estimator="u", block_size=7)) == pytest.approx(u, abs=tol)
    assert abs(float(mmd2(X, X, kernel))) <= tol


def test_two_sample_u_is_unbiased():
    # X, Y iid uniform: E[MMD_U^2] = 0 (4 SE over 300 replicates); V is biased upwards by (phi(1) - a_0)(1/n + 1/m)
    kernel = GaussianKernel(1.5)
    q, n, m, reps = 3, 10, 15, 300
    rng = np.random.default_rng(2)
    u, v = np.empty(reps), np.empty(reps)
    for r in range(reps):
        X, Y = sample_uniform(n, q=q, rng=rng), sample_uniform(m, q=q, rng=rng)
        u[r] = float(mmd2(X, Y, kernel, estimator="u"))
        v[r] = float(mmd2(X, Y, kernel, estimator="v"))
    assert abs(u.mean()) <= 4 * u.std(ddof=1) / math.sqrt(reps)
    bias = (kernel.phi_at_one(q=q) - kernel.uniform_mean_embedding(q=q)) * (1 / n + 1 / m)
    assert abs(v.mean() - bias) <= 4 * v.std(ddof=1) / math.sqrt(reps)


# =================================================================================================================
# mean embeddings and von Mises–Fisher


def test_mean_embedding_against_gram():
    kernel = ArcCosineKernel(1)
    Z, A = _skewed(25, 5, seed=3), sample_uniform(9, q=5, rng=4)
    np.testing.assert_allclose(mean_embedding(Z, kernel, at=A), kernel.gram(A, Z).mean(axis=1), rtol=1e-13)
    blocked = mean_embedding(Z, kernel, at=A, block_size=2)
    np.testing.assert_allclose(blocked, kernel.gram(A, Z).mean(axis=1), rtol=1e-13)
    single = mean_embedding(Z, kernel, at=A[0])
    assert single.shape == () and float(single) == pytest.approx(kernel.gram(A[:1], Z).mean(), rel=1e-13)


def _vmf_embedding_quadrature_q3(kernel, mu, kappa, y):
    """E_{x ~ vMF(mu, kappa)} phi(<x, y>) on S^2 by 2-d quadrature over t = <x, mu> and the azimuth psi."""
    c = float(y @ mu)
    s = math.sqrt(max(1 - c * c, 0.0))

    def integrand(psi, t):
        # density of t times that of psi, uniform on [0, pi] by symmetry
        dens = kappa * math.exp(kappa * (t - 1)) / (1 - math.exp(-2 * kappa)) / math.pi
        u = min(max(t * c + math.sqrt(max(1 - t * t, 0)) * s * math.cos(psi), -1.0), 1.0)
        return dens * float(kernel.profile(np.array([u]), q=3)[0])

    return integrate.dblquad(integrand, -1, 1, 0, math.pi, epsabs=1e-13, epsrel=1e-11)[0]


@pytest.mark.parametrize("kernel", [GaussianKernel(0.7), ExponentialKernel(2.0), PolynomialKernel(3, 0.5)], ids=repr)
def test_vmf_mean_embedding_against_quadrature_q3(kernel):
    mu = np.array([0.0, 0.6, 0.8])
    kappa = 3.0
    ys = np.array([mu, -mu, [1.0, 0.0, 0.0], [0.0, 0.8, -0.6], [0.6, 0.0, 0.8]])
    got = vmf_mean_embedding(kernel, mu=mu, kappa=kappa, at=ys)
    ref = [_vmf_embedding_quadrature_q3(kernel, mu, kappa, y) for y in ys]
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-10)


def test_vmf_mean_embedding_circle():
    # q = 2: x = (cos theta, sin theta), density e^{kappa cos theta} / (2 pi I_0(kappa)); 1-d quadrature
    kernel, kappa = GaussianKernel(1.0), 1.7
    mu = np.array([1.0, 0.0])
    for angle in (0.0, 1.0, 2.5):
        y = np.array([math.cos(angle), math.sin(angle)])

        def f(th, a=angle):
            return math.exp(kappa * math.cos(th)) * math.exp(-2.0 * (1 - math.cos(th - a)))

        ref = integrate.quad(f, -math.pi, math.pi, epsabs=1e-14, epsrel=1e-12)[0] / (2 * math.pi * iv(0, kappa))
        assert float(vmf_mean_embedding(kernel, mu=mu, kappa=kappa, at=y)) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize(
    "q, kappa, kernel",
    [
        (5, 3.0, GaussianKernel(1.0)),
        (5, 3.0, ArcCosineKernel(0)),
        (512, 300.0, GaussianKernel(0.05)),
        (64, 40.0, SFRIKKernel()),
    ],
    ids=lambda p: repr(p),
)
def test_vmf_mean_embedding_against_monte_carlo(q, kappa, kernel):
    # 20000 (4000 at q = 512) vMF samples; each evaluation point within 5 standard errors of the sample average
    rng = np.random.default_rng(q)
    mu = rng.standard_normal(q)
    mu /= np.linalg.norm(mu)
    n = 20000 if q < 512 else 4000
    X = sample_vmf(n, mu=mu, kappa=kappa, rng=rng)
    ys = np.vstack([mu, sample_vmf(3, mu=mu, kappa=kappa, rng=rng), sample_uniform(2, q=q, rng=rng)])
    got = vmf_mean_embedding(kernel, mu=mu, kappa=kappa, at=ys)
    K = kernel.gram(ys, X)
    se = K.std(axis=1, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(got - K.mean(axis=1)) <= 5 * se + 1e-12)
    np.testing.assert_allclose(mean_embedding(X, kernel, at=ys), K.mean(axis=1), rtol=1e-12, atol=1e-12)
    # ||mu_vMF||^2 = E phi(<x, x'>) over independent pairs
    pairs = np.sum(X[: n // 2] * X[n // 2 :], axis=1)
    vals = kernel.profile(np.clip(pairs, -1, 1), q=q)
    norm2 = vmf_mean_embedding_norm2(kernel, q=q, kappa=kappa)
    assert abs(norm2 - vals.mean()) <= 5 * vals.std(ddof=1) / math.sqrt(vals.size)


def test_vmf_norm2_is_the_mean_of_the_embedding():
    # E_{x ~ vMF} mu_vMF(x) = sum a_l rho_l^2: integrate the embedding against the t-density (q = 3) by quadrature
    kernel, kappa = GaussianKernel(1.2), 2.5
    mu = np.array([0.0, 0.0, 1.0])

    def f(t):
        y = np.array([math.sqrt(max(1 - t * t, 0)), 0.0, t])
        density = kappa * math.exp(kappa * (t - 1)) / (1 - math.exp(-2 * kappa))
        return float(vmf_mean_embedding(kernel, mu=mu, kappa=kappa, at=y)) * density

    ref = integrate.quad(f, -1, 1, epsabs=1e-14, epsrel=1e-12)[0]
    assert vmf_mean_embedding_norm2(kernel, q=3, kappa=kappa) == pytest.approx(ref, rel=1e-11)


def test_vmf_truncation_meets_its_bound():
    kernel, q, kappa = GaussianKernel(2.0), 3, 50.0
    mu = np.array([1.0, 0.0, 0.0])
    ys = sample_uniform(20, q=q, rng=0)
    auto = vmf_mean_embedding(kernel, mu=mu, kappa=kappa, at=ys)
    full = vmf_mean_embedding(kernel, mu=mu, kappa=kappa, at=ys, degree=300)
    scale = vmf_mean_embedding_norm2(kernel, q=q, kappa=0.0) + np.abs(full).max()
    assert np.max(np.abs(auto - full)) <= 1e-13 * scale
    assert vmf_mean_embedding_norm2(kernel, q=q, kappa=kappa) == pytest.approx(
        vmf_mean_embedding_norm2(kernel, q=q, kappa=kappa, degree=300), rel=1e-13
    )
    # a loose tolerance stops earlier and stays within it
    loose = vmf_mean_embedding(kernel, mu=mu, kappa=kappa, at=ys, tol=1e-4)
    assert np.max(np.abs(loose - full)) <= 1e-4 * np.abs(full).max() * 10


@pytest.mark.parametrize(
    "kernel", [GaussianKernel(1.0), LegendreSeriesKernel([0.0, 1.0, 40.0]), ArcCosineKernel(1)], ids=repr
)
def test_kappa_zero_is_uniform(kernel):
    q = 6
    Z = _skewed(40, q, seed=9)
    mu = np.eye(q)[2]
    a0 = kernel.uniform_mean_embedding(q=q)
    np.testing.assert_allclose(vmf_mean_embedding(kernel, mu=mu, kappa=0.0, at=Z), a0, rtol=1e-14)
    assert vmf_mean_embedding_norm2(kernel, q=q, kappa=0.0) == pytest.approx(a0, rel=1e-14)
    for estimator in ("v", "u"):
        assert float(mmd2_vmf(Z, kernel, mu=mu, kappa=0.0, estimator=estimator)) == pytest.approx(
            float(mmd2_uniform(Z, kernel, estimator=estimator, method="gram")), abs=1e-12 * _scale(kernel, q)
        )


@pytest.mark.parametrize("kernel", [GaussianKernel(1.0), ArcCosineKernel(1)], ids=repr)
def test_mmd2_vmf_expectations(kernel):
    # vMF samples: E[MMD_U^2] = 0 and E[n MMD_V^2] = phi(1) - sum a_l rho_l^2 (400 replicates, 4 SE)
    q, kappa, n, reps = 3, 2.0, 15, 400
    mu = np.array([0.0, 0.0, 1.0])
    rng = np.random.default_rng(5)
    u, nv = np.empty(reps), np.empty(reps)
    for r in range(reps):
        Z = sample_vmf(n, mu=mu, kappa=kappa, rng=rng)
        u[r] = float(mmd2_vmf(Z, kernel, mu=mu, kappa=kappa, estimator="u"))
        nv[r] = n * float(mmd2_vmf(Z, kernel, mu=mu, kappa=kappa, estimator="v"))
    assert abs(u.mean()) <= 4 * u.std(ddof=1) / math.sqrt(reps)
    target = kernel.phi_at_one(q=q) - vmf_mean_embedding_norm2(kernel, q=q, kappa=kappa)
    assert abs(nv.mean() - target) <= 4 * nv.std(ddof=1) / math.sqrt(reps)
    # and a wrong centre is detected: a sample from vMF(mu) is far from vMF(-mu)
    assert float(mmd2_vmf(Z, kernel, mu=-mu, kappa=kappa)) > 10 * abs(float(mmd2_vmf(Z, kernel, mu=mu, kappa=kappa)))


def test_vmf_large_dimension_is_finite():
    q, kappa = 4096, 2000.0
    mu = np.eye(q)[0]
    y = np.vstack([mu, np.eye(q)[1]])
    vals = vmf_mean_embedding(GaussianKernel(0.01), mu=mu, kappa=kappa, at=y)
    assert np.all(np.isfinite(vals)) and vals[0] > vals[1] > 0
    assert math.isfinite(vmf_mean_embedding_norm2(GaussianKernel(0.01), q=q, kappa=kappa))


# =================================================================================================================
# backends, float64 accumulation, autograd

BACKENDS = {
    "numpy64": lambda a: np.asarray(a, dtype=np.float64),
    "numpy32": lambda a: np.asarray(a, dtype=np.float32),
    "torch64": lambda a: torch.tensor(a, dtype=torch.float64),
    "torch32": lambda a: torch.tensor(a, dtype=torch.float32),
    "strict64": lambda a: xps.asarray(a, dtype=xps.float64),
    "strict32": lambda a: xps.asarray(a, dtype=xps.float32),
}


def _to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return np.asarray(x) if isinstance(x, (np.ndarray, np.generic)) else np.from_dlpack(x)


def _float64_of(x):
    if isinstance(x, torch.Tensor):
        return torch.float64
    if isinstance(x, np.ndarray):
        return np.dtype(np.float64)
    return xps.float64


def _check_kind(out, inp, ndim):
    if isinstance(inp, np.ndarray) and ndim == 0:
        assert type(out) is np.float64  # scalars come back as NumPy scalars, as in scipy
        return
    assert type(out) is type(inp)
    assert out.dtype == _float64_of(inp)
    assert out.device == inp.device
    assert out.ndim == ndim


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_every_function_on_every_backend(backend):
    q = 5
    Z_np = _skewed(40, q, seed=12)
    Y_np = sample_uniform(30, q=q, rng=13)
    Z, Y = BACKENDS[backend](Z_np), BACKENDS[backend](Y_np)
    # the exact float64 values of the (possibly float32-rounded) input: the result must match them to 1e-12
    Z64, Y64 = _to_numpy(Z).astype(np.float64), _to_numpy(Y).astype(np.float64)
    mu = np.eye(q)[0]
    sfrik2 = LegendreSeriesKernel([0.0, 1.0, 40.0])
    cases = [
        (lambda z, y: mmd2_uniform(z, sfrik2, method="moments"), 0),
        (lambda z, y: mmd2_uniform(z, sfrik2, estimator="u", method="gram"), 0),
        (lambda z, y: mmd2_uniform(z, GaussianKernel(1.0), method="blocked", block_size=7), 0),
        (lambda z, y: mmd2_uniform(z, ArcCosineKernel(1), estimator="u"), 0),
        (lambda z, y: mmd2(z, y, GaussianKernel(1.0), estimator="u"), 0),
        (lambda z, y: mean_embedding(z, GaussianKernel(1.0), at=y), 1),
        (lambda z, y: vmf_mean_embedding(GaussianKernel(1.0), mu=mu, kappa=2.0, at=y), 1),
        (lambda z, y: mmd2_vmf(z, GaussianKernel(1.0), mu=mu, kappa=2.0, estimator="u"), 0),
    ]
    for fn, ndim in cases:
        out = fn(Z, Y)
        _check_kind(out, Z, ndim)
        np.testing.assert_allclose(_to_numpy(out), fn(Z64, Y64), rtol=1e-12, atol=1e-13)
        # against the original float64 data: float32 rounding of the input moves the value by ~1e-7 relative
        rtol = 1e-5 if backend.endswith("32") else 1e-12
        np.testing.assert_allclose(_to_numpy(out), fn(Z_np, Y_np), rtol=rtol, atol=1e-9)


def test_torch_float32_matches_numpy_float64():
    # the brief's contract: float32 torch input, float64 accumulation, value within 1e-6 relative of numpy float64
    q = 8
    Z_np = sample_uniform(500, q=q, rng=21)
    Zt = torch.tensor(Z_np, dtype=torch.float32)
    for kernel in (LegendreSeriesKernel([0.0, 1.0, 40.0]), GaussianKernel(1.0), SFRIKKernel()):
        for method in _methods(kernel):
            ref = float(mmd2_uniform(Z_np, kernel, method=method))
            got = mmd2_uniform(Zt, kernel, method=method)
            assert got.dtype == torch.float64
            assert float(got) == pytest.approx(ref, rel=1e-6)


def test_small_mmd_from_float32_input_is_accurate():
    # a perturbed cross-polytope: MMD^2 ~ 1e-5 while the Gram entries are O(40). Promoting the float32 input to
    # float64 before any arithmetic gives the float64 value of the same points; a float32 evaluation does not.
    q = 16
    rng = np.random.default_rng(0)
    Z = np.vstack([np.eye(q), -np.eye(q)]) + 6e-4 * rng.standard_normal((2 * q, q))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    Z32 = Z.astype(np.float32)
    Z32_exact = Z32.astype(np.float64)
    kernel = LegendreSeriesKernel([0.0, 1.0, 40.0])
    ref = float(mmd2_uniform(Z32_exact, kernel, normalize=True, method="gram"))
    assert 5e-6 < ref < 5e-5
    for method in METHODS:
        for Z_in in (torch.tensor(Z32), Z32, xps.asarray(Z32)):
            assert float(mmd2_uniform(Z_in, kernel, normalize=True, method=method)) == pytest.approx(ref, rel=1e-8)
    naive = float(kernel.gram(Z32, normalize=True).mean())  # a float32 Gram matrix averaged (a_0 = 0)
    assert abs(naive - ref) > 1e-4 * ref  # what float32 arithmetic gives: 4 orders of magnitude worse


def _analytic_gradient(Z, kernel, zero_pairs=()):
    """d/dz_k n^-2 sum_{i != j} phi(t_ij) = (2/n^2) sum_{j != k} phi'(t_kj) z_j (the diagonal is constant on the
    sphere); the pairs in zero_pairs contribute nothing (duplicates of a corner kernel, clipped as in gram)."""
    n, q = Z.shape
    T = np.clip(Z @ Z.T, -1, 1)
    D = kernel.derivative(np.clip(T, -1 + 1e-15, 1 - 1e-15) if kernel.has_corner else T, q=q)
    np.fill_diagonal(D, 0.0)
    for i, j in zero_pairs:
        D[i, j] = D[j, i] = 0.0
    return 2.0 / n**2 * D @ Z


GRAD_KERNELS = [LegendreSeriesKernel([0.0, 1.0, 40.0]), GaussianKernel(1.0), ArcCosineKernel(1)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kernel", GRAD_KERNELS, ids=repr)
def test_torch_gradient_matches_analytic(kernel, dtype):
    n, q = 30, 6
    Z_np = _skewed(n, q, seed=14)
    Z_np[1] = Z_np[0] + 1e-3 * np.arange(q)  # a near-duplicate
    Z_np /= np.linalg.norm(Z_np, axis=1, keepdims=True)
    Z_np = Z_np.astype(np.float32).astype(np.float64) if dtype == torch.float32 else Z_np
    grad_v = _analytic_gradient(Z_np, kernel)
    for method in _methods(kernel):
        for estimator, scale in (("v", 1.0), ("u", n / (n - 1))):
            Z = torch.tensor(Z_np, dtype=dtype, requires_grad=True)
            mmd2_uniform(Z, kernel, estimator=estimator, method=method, block_size=7).backward()
            assert Z.grad.dtype == dtype and torch.all(torch.isfinite(Z.grad))
            # computed in float64 from the exact input values; float32 input gets the float64 gradient rounded
            tol = 1e-6 if dtype == torch.float32 else 1e-9
            np.testing.assert_allclose(Z.grad.numpy(), scale * grad_v, rtol=tol, atol=tol * np.abs(grad_v).max())


@pytest.mark.parametrize("kernel", [*GRAD_KERNELS, ArcCosineKernel(0), DistanceKernel(s=1.0)], ids=repr)
def test_torch_gradient_with_duplicate_points(kernel):
    # exact duplicates (t = 1 off the diagonal) and an antipodal pair: finite gradients whose tangential part (the
    # only part that matters on the sphere: a duplicate pair pushes along z itself) is the analytic one
    n, q = 12, 4
    Z_np = _skewed(n, q, seed=15)
    Z_np[1] = Z_np[0]
    Z_np[3] = -Z_np[2]
    grad = _analytic_gradient(Z_np, kernel, zero_pairs=[(0, 1), (2, 3)] if kernel.has_corner else ())
    for method in _methods(kernel):
        Z = torch.tensor(Z_np, requires_grad=True)
        mmd2_uniform(Z, kernel, method=method).backward()
        assert torch.all(torch.isfinite(Z.grad))
        got = Z.grad.numpy()
        tangential = lambda g: g - np.sum(g * Z_np, axis=1, keepdims=True) * Z_np  # noqa: E731
        np.testing.assert_allclose(tangential(got), tangential(grad), rtol=1e-9, atol=1e-12 * np.abs(grad).max())


def test_torch_gradcheck():
    torch.manual_seed(0)
    X = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    Y = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    mu = np.array([0.0, 0.6, 0.8])
    g = GaussianKernel(0.9)
    sfrik2 = LegendreSeriesKernel([0.0, 1.0, 40.0])
    for fn in (
        lambda x, y: mmd2_uniform(x, sfrik2, estimator="u", method="moments", normalize=True),
        lambda x, y: mmd2_uniform(x, sfrik2, method="blocked", block_size=3, normalize=True),
        lambda x, y: mmd2(x, y, g, estimator="u", normalize=True),
        lambda x, y: mmd2_vmf(x, g, mu=mu, kappa=1.5, normalize=True),
        lambda x, y: mean_embedding(x, g, at=y, normalize=True),
        lambda x, y: vmf_mean_embedding(g, mu=mu, kappa=1.5, at=y, normalize=True),
    ):
        assert torch.autograd.gradcheck(fn, (X, Y), eps=1e-6, atol=1e-6)


# =================================================================================================================
# bad input


def _bad_calls():
    Z = sample_uniform(5, q=3, rng=0)
    k = GaussianKernel(1.0)
    mu = np.array([0.0, 0.0, 1.0])
    nan = Z.copy()
    nan[0, 0] = np.nan
    zero = Z.copy()
    zero[0] = 0.0
    return [
        (lambda: mmd2_uniform(Z[0], k), ValueError, "Z must be a 2-d array"),
        (lambda: mmd2_uniform(Z[None], k), ValueError, "Z must be a 2-d array"),
        (lambda: mmd2_uniform(Z[:1], k), ValueError, "Z must contain at least 2 points"),
        (lambda: mmd2_uniform(Z[:1], k, estimator="u"), ValueError, "Z must contain at least 2 points"),
        (lambda: mmd2_uniform(Z[:, :1], k), ValueError, "Z must have q >= 2"),
        (lambda: mmd2_uniform(nan, k), ValueError, "Z contains NaN"),
        (lambda: mmd2_uniform(2 * Z, k), ValueError, "rows of Z must be unit vectors"),
        (lambda: mmd2_uniform(zero, k, normalize=True), ValueError, "Z has a zero row"),
        (lambda: mmd2_uniform(Z, k, estimator="w"), ValueError, "estimator must be"),
        (lambda: mmd2_uniform(Z, k, method="fast"), ValueError, "method must be one of"),
        (lambda: mmd2_uniform(Z, k, method="moments"), ValueError, "method='moments' needs"),
        (lambda: mmd2_uniform(Z, SFRIKKernel(), method="moments"), ValueError, "method='moments'.*degree 3"),
        (lambda: mmd2_uniform(Z, k, method="blocked", block_size=0), ValueError, "block_size must be a positive"),
        (lambda: mmd2_uniform(Z, k, method="blocked", block_size=2.5), TypeError, "block_size must be a positive"),
        (lambda: mmd2_uniform(Z, 3.0), TypeError, "kernel must be"),
        (lambda: mmd2_uniform(Z, "nonsense"), ValueError, "unknown kernel"),
        (lambda: mmd2_uniform("abc", k), TypeError, "Z must"),
        (lambda: mmd2(Z, Z[:, :2] / np.linalg.norm(Z[:, :2], axis=1, keepdims=True), k), ValueError, "same dimension"),
        (lambda: mmd2(Z, torch.tensor(Z), k), TypeError, "same library"),
        (lambda: mmd2(Z, 2 * Z, k), ValueError, "rows of Y must be unit"),
        (lambda: mean_embedding(Z, k, at=np.ones((2, 4)) / 2), ValueError, "at must have the dimension"),
        (lambda: mean_embedding(Z, k, at=2 * Z), ValueError, "rows of at must be unit"),
        (lambda: vmf_mean_embedding(k, mu=mu, kappa=-1.0, at=Z), ValueError, "kappa must be >= 0"),
        (lambda: vmf_mean_embedding(k, mu=mu, kappa="x", at=Z), TypeError, "kappa must be a real"),
        (lambda: vmf_mean_embedding(k, mu=2 * mu, kappa=1.0, at=Z), ValueError, "mu must be a unit vector"),
        (
            lambda: vmf_mean_embedding(k, mu=[1.0, 0.0], kappa=1.0, at=Z),
            ValueError,
            "at must have the dimension q = 2 of mu",
        ),
        (
            lambda: vmf_mean_embedding(k, mu=mu, kappa=1.0, at=np.ones((2, 4)) / 2),
            ValueError,
            r"at must have the dimension q = 3 of mu, got 4 columns",
        ),
        (lambda: vmf_mean_embedding(k, mu="abc", kappa=1.0, at=Z), TypeError, "mu must be a real 1-d unit vector"),
        (lambda: vmf_mean_embedding(k, mu=mu, kappa=1.0, at=Z, degree=-1), ValueError, "degree must be"),
        (lambda: vmf_mean_embedding(k, mu=mu, kappa=1.0, at=Z, degree=10**8), ValueError, "degree must be <= 32768"),
        (lambda: vmf_mean_embedding(k, mu=mu, kappa=1.0, at=Z, tol=0.0), ValueError, "tol must be"),
        (lambda: vmf_mean_embedding_norm2(k, q=1, kappa=1.0), ValueError, "q must be"),
        (lambda: mmd2_vmf(Z, k, mu=mu, kappa=np.inf), ValueError, "kappa must be"),
        (lambda: mmd2_vmf(Z, k, mu=mu, kappa=1.0, estimator="x"), ValueError, "estimator must be"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_calls())))
def test_bad_input(case):
    call, exc, match = _bad_calls()[case]
    with pytest.raises(exc, match=match):
        call()


# =================================================================================================================
# scalars, keyword-only options, properties


def test_scalars_come_back_as_numpy_scalars():
    Z, Y = sample_uniform(20, q=4, rng=1), sample_uniform(25, q=4, rng=2)
    k, mu = GaussianKernel(gamma=1.0), np.eye(4)[0]
    for value in (
        mmd2_uniform(Z, k),
        mmd2_uniform(Z, k, estimator="u", method="blocked", block_size=3),
        mmd2_uniform(Z, LegendreSeriesKernel([0.0, 1.0, 2.0]), method="moments"),
        mmd2(Z, Y, k),
        mmd2_vmf(Z, k, mu=mu, kappa=2.0),
        mean_embedding(Z, k, at=Y[0]),
        vmf_mean_embedding(k, mu=mu, kappa=2.0, at=Y[0]),
    ):
        assert type(value) is np.float64
    assert mean_embedding(Z, k, at=Y).shape == (25,)


def test_options_are_keyword_only():
    Z = sample_uniform(10, q=3, rng=0)
    k, mu = GaussianKernel(gamma=1.0), np.eye(3)[0]
    for call in (
        lambda: mmd2_uniform(Z, k, "u"),
        lambda: mmd2(Z, Z, k, "u"),
        lambda: mmd2_vmf(Z, k, mu, 1.0),
        lambda: mean_embedding(Z, k, Z),
        lambda: vmf_mean_embedding(k, mu, 1.0, Z),
        lambda: vmf_mean_embedding_norm2(k, 3, 1.0),
        lambda: uniform_mean_embedding(k, 3),
    ):
        with pytest.raises(TypeError):
            call()


def test_mmd2_uniform_against_mpmath():
    """n^-2 sum_ij exp(-2 gamma (1 - t_ij)) - a_0 with a_0 = e^{-2 gamma} 0F1(; q/2; gamma^2), at 30 digits."""
    q, gamma = 5, 0.9
    Z = _skewed(12, q, seed=4)
    got_v = mmd2_uniform(Z, GaussianKernel(gamma=gamma))
    got_u = mmd2_uniform(Z, GaussianKernel(gamma=gamma), estimator="u")
    with mp.workdps(30):
        rows = [[mp.mpf(float(x)) for x in row] for row in Z]
        n = len(rows)
        t = [
            [mp.fsum(a * b for a, b in zip(rows[i], rows[j])) if i != j else mp.mpf(1) for j in range(n)]
            for i in range(n)
        ]
        phi = [[mp.exp(-2 * gamma * (1 - t[i][j])) for j in range(n)] for i in range(n)]
        a0 = mp.exp(-2 * mp.mpf(gamma)) * mp.hyp0f1(mp.mpf(q) / 2, mp.mpf(gamma) ** 2)
        v = mp.fsum(mp.fsum(r) for r in phi) / n**2 - a0
        u = (mp.fsum(mp.fsum(r) for r in phi) - n) / (n * (n - 1)) - a0
    assert got_v == pytest.approx(float(v), abs=1e-15)
    assert got_u == pytest.approx(float(u), abs=1e-15)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 15), m=st.integers(2, 15), q=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_mmd2_properties(n, m, q, seed):
    """mmd2 is symmetric, zero between a sample and itself (V), and n V = (n - 1) U + phi(1) - a_0."""
    rng = np.random.default_rng(seed)
    X, Y = sample_uniform(n, q=q, rng=rng), sample_vmf(m, mu=np.eye(q)[0], kappa=1.0, rng=rng)
    k = GaussianKernel(gamma=0.7)
    for estimator in ("v", "u"):
        assert mmd2(X, Y, k, estimator=estimator) == pytest.approx(mmd2(Y, X, k, estimator=estimator), abs=1e-13)
    assert abs(mmd2(X, X, k)) <= 1e-13
    v, u = mmd2_uniform(X, k), mmd2_uniform(X, k, estimator="u")
    shift = k.phi_at_one(q=q) - k.uniform_mean_embedding(q=q)
    assert n * v == pytest.approx((n - 1) * u + shift, abs=1e-12)
    assert v >= -1e-14  # a positive-definite kernel: MMD_V^2 >= 0


def test_vmf_truncation_warns_with_the_achieved_accuracy():
    """kappa = 1e9: rho_l ~ exp(-l^2 / (2 kappa)) needs degrees ~2e5 for the distance kernel, beyond the largest
    tried (32768): the warning states the relative accuracy reached."""
    with pytest.warns(SpectrumAccuracyWarning, match="accurate to about"):
        value = vmf_mean_embedding_norm2(DistanceKernel(s=1.0), q=3, kappa=1e9)
    assert math.isfinite(value)
