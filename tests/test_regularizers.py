"""Classic SSL regularisers against brute-force references, and their exact kernel forms (numpy and torch float64).

MMDs are computed here directly from ``kernel.gram`` (V: Gram mean - a_0; U: off-diagonal mean - a_0), independently
of the helpers in ``dotkernels.regularizers``.
"""

import math

import mpmath as mp
import numpy as np
import pytest
import torch
from _helpers import sphere
from hypothesis import given
from hypothesis import strategies as st

from dotkernels.kernels import DistanceKernel, GaussianKernel, LegendreSeriesKernel, MonomialKernel
from dotkernels.regularizers import (
    barlow_twins_redundancy,
    centering,
    centering_whitening,
    centering_whitening_kernel,
    centering_whitening_via_kernel,
    energy_distance_to_uniform,
    energy_distance_via_kernel,
    energy_kernel,
    spectral_contrastive_kernel,
    spectral_contrastive_repulsion,
    spectral_contrastive_repulsion_via_kernel,
    vicreg_covariance,
    vicreg_variance,
    wang_isola_kernel,
    wang_isola_uniformity,
    wang_isola_uniformity_via_kernel,
    whitening,
    whitening_kernel,
    whitening_via_kernel,
)

TOL = dict(rtol=1e-12, atol=1e-12)
BACKENDS = ["numpy", "torch"]


def to_backend(Z, backend):
    return torch.tensor(Z, dtype=torch.float64) if backend == "torch" else Z


def value(x):
    return float(x.detach()) if hasattr(x, "detach") else float(x)


def mmd2(Z, kernel, estimator):
    """Squared MMD to the uniform law from the Gram matrix (numpy, float64)."""
    K = kernel.gram(np.asarray(Z))
    n, q = Z.shape
    a0 = kernel.uniform_mean_embedding(q=q)
    if estimator == "v":
        return K.sum() / n**2 - a0
    return (K.sum() - np.trace(K)) / (n * (n - 1)) - a0


def centred_sphere(rng, n_half, q):
    """Unit-norm rows with mean exactly 0: the rows y_i and -y_i."""
    Y = sphere(rng, n_half, q)
    return np.concatenate([Y, -Y])


def balanced_sphere(rng, n0, q):
    """Centred unit-norm rows with diag S = I/q (all cyclic coordinate shifts of +-y_i); S is circulant, not I/q."""
    Y = sphere(rng, n0, q)
    rows = [np.roll(Y, s, axis=1) for s in range(q)]
    Z = np.concatenate(rows)
    return np.concatenate([Z, -Z])


def random_rotation(rng, q):
    Q, R = np.linalg.qr(rng.standard_normal((q, q)))
    return Q * np.sign(np.diag(R))


batches = dict(n=st.integers(2, 30), q=st.integers(2, 24), seed=st.integers(0, 2**32 - 1))


# ---------------------------------------------------------------------------------------------------------------
# classic forms against brute-force loops


def test_classic_forms_against_loops(rng):
    n, q, t = 9, 4, 1.7
    Z = rng.standard_normal((n, q)) * 0.7 + 0.2  # generic rows, not on the sphere
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    uni = math.log(np.mean([math.exp(-t * np.sum((Z[i] - Z[j]) ** 2)) for i, j in pairs]))
    assert math.isclose(value(wang_isola_uniformity(Z, gamma=t)), uni, rel_tol=1e-13)
    assert math.isclose(value(centering(Z)), np.sum(Z.mean(0) ** 2), rel_tol=1e-13)
    S = sum(np.outer(z, z) for z in Z) / n
    assert math.isclose(value(whitening(Z)), np.sum((S - np.eye(q) / q) ** 2), rel_tol=1e-13)
    rep = np.mean([(Z[i] @ Z[j]) ** 2 for i, j in pairs])
    assert math.isclose(value(spectral_contrastive_repulsion(Z)), rep, rel_tol=1e-13)


def test_vicreg_and_barlow_against_original_torch_code(rng):
    # the released implementations' formulas, written with torch's own var / BatchNorm1d
    n, q = 16, 6
    z1 = torch.tensor(rng.standard_normal((n, q)) * 2 + 1)
    z2 = torch.tensor(rng.standard_normal((n, q)) + z1.numpy())
    std = torch.sqrt(z1.var(dim=0) + 1e-4)
    v_ref = torch.mean(torch.relu(1 - std))
    x = z1 - z1.mean(dim=0)
    cov = (x.T @ x) / (n - 1)
    off = cov.flatten()[:-1].view(q - 1, q + 1)[:, 1:].flatten()
    c_ref = off.pow(2).sum() / q
    assert math.isclose(value(vicreg_variance(z1)), float(v_ref), rel_tol=1e-13)
    assert math.isclose(value(vicreg_covariance(z1)), float(c_ref), rel_tol=1e-13)
    bn = torch.nn.BatchNorm1d(q, affine=False, dtype=torch.float64).train()
    c = bn(z1).T @ bn(z2) / n
    on = (torch.diagonal(c) - 1).pow(2).sum()
    offd = (c - torch.diag(torch.diagonal(c))).pow(2).sum()
    ref = float(on + 0.0051 * offd)
    assert math.isclose(value(barlow_twins_redundancy(z1, z2)), ref, rel_tol=1e-12)
    assert math.isclose(value(barlow_twins_redundancy(z1.numpy(), z2.numpy())), ref, rel_tol=1e-12)


def test_uniformity_log_sum_exp_does_not_underflow(rng):
    Z = sphere(rng, 6, 3)
    got = value(wang_isola_uniformity(Z, gamma=500.0))
    D = np.sum((Z[:, None] - Z[None]) ** 2, axis=-1)[~np.eye(6, dtype=bool)]
    ref = float(mp.log(mp.fsum(mp.exp(-500 * mp.mpf(d)) for d in D) / 30))
    assert np.isfinite(got) and math.isclose(got, ref, rel_tol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# exact kernel forms


@pytest.mark.parametrize("backend", BACKENDS)
@given(**batches, gamma=st.floats(0.1, 5.0))
def test_uniformity_is_log_of_a0_plus_mmd_u(backend, n, q, seed, gamma):
    Z = sphere(np.random.default_rng(seed), n, q)
    kernel = GaussianKernel(gamma=gamma)
    a0 = kernel.uniform_mean_embedding(q=q)
    expected = a0 + mmd2(Z, kernel, "u")  # the argument of the log; a0 + MMD_U^2 cancels to ~eps * a0 absolutely
    Zb = to_backend(Z, backend)
    atol = 1e-14 * max(a0, 1.0)
    np.testing.assert_allclose(math.exp(value(wang_isola_uniformity(Zb, gamma=gamma))), expected, rtol=1e-12, atol=atol)
    via_kernel = math.exp(value(wang_isola_uniformity_via_kernel(Zb, gamma=gamma)))
    np.testing.assert_allclose(via_kernel, expected, rtol=1e-12, atol=atol)
    assert wang_isola_kernel(gamma=gamma) == kernel


@pytest.mark.parametrize("backend", BACKENDS)
@given(**batches, b1=st.floats(-3, 3), b2=st.floats(-3, 3))
def test_centering_whitening_is_mmd_v_of_p1_p2(backend, n, q, seed, b1, b2):
    Z = sphere(np.random.default_rng(seed), n, q)
    expected = mmd2(Z, LegendreSeriesKernel([0.0, b1, b2]), "v")
    Zb = to_backend(Z, backend)
    np.testing.assert_allclose(value(centering_whitening(Zb, b1=b1, b2=b2)), expected, **TOL)
    np.testing.assert_allclose(value(centering_whitening_via_kernel(Zb, b1=b1, b2=b2)), expected, **TOL)
    np.testing.assert_allclose(value(centering(Zb)), mmd2(Z, LegendreSeriesKernel([0.0, 1.0]), "v"), **TOL)
    np.testing.assert_allclose(centering_whitening_kernel(b1=b1, b2=b2).spectrum(2, q=q), [0.0, b1, b2], rtol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
@given(**batches)
def test_whitening_is_mmd_v_of_t_squared(backend, n, q, seed):
    Z = sphere(np.random.default_rng(seed), n, q)
    Zb = to_backend(Z, backend)
    expected = mmd2(Z, MonomialKernel(2), "v")
    np.testing.assert_allclose(value(whitening(Zb)), expected, **TOL)
    np.testing.assert_allclose(value(whitening_via_kernel(Zb)), expected, **TOL)
    # t^2 = 1/q + (q-1)/q P_2: the same as (q-1)/q times the P_2 MMD
    np.testing.assert_allclose(expected, (q - 1) / q * mmd2(Z, LegendreSeriesKernel([0, 0, 1]), "v"), **TOL)
    assert whitening_kernel() == MonomialKernel(2)


@pytest.mark.parametrize("backend", BACKENDS)
@given(**batches)
def test_spectral_contrastive_repulsion_is_one_over_q_plus_mmd_u(backend, n, q, seed):
    Z = sphere(np.random.default_rng(seed), n, q)
    Zb = to_backend(Z, backend)
    kernel = spectral_contrastive_kernel()
    assert math.isclose(kernel.uniform_mean_embedding(q=q), 1 / q, rel_tol=1e-14)
    got = value(spectral_contrastive_repulsion(Zb))
    np.testing.assert_allclose(got, 1 / q + mmd2(Z, kernel, "u"), **TOL)
    np.testing.assert_allclose(value(spectral_contrastive_repulsion_via_kernel(Zb)), got, **TOL)
    np.testing.assert_allclose(got, (n * (value(whitening(Zb)) + 1 / q) - 1) / (n - 1), **TOL)
    # V form: n^-2 sum_ij t_ij^2 = 1/q + whitening
    np.testing.assert_allclose(np.mean((Z @ Z.T) ** 2), 1 / q + value(whitening(Zb)), **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("estimator", ["v", "u"])
@given(**batches, s=st.sampled_from([0.3, 1.0, 1.5, 2.0]))
def test_energy_distance_is_mmd_of_distance_kernel(backend, estimator, n, q, seed, s):
    Z = sphere(np.random.default_rng(seed), n, q)
    Zb = to_backend(Z, backend)
    kernel = DistanceKernel(s=s)
    assert energy_kernel(s=s) == kernel
    expected = mmd2(Z, kernel, estimator)
    np.testing.assert_allclose(value(energy_distance_to_uniform(Zb, s=s, estimator=estimator)), expected, **TOL)
    np.testing.assert_allclose(value(energy_distance_via_kernel(Zb, s=s, estimator=estimator)), expected, **TOL)


def test_energy_distance_against_loops_and_bakshaev(rng):
    n, q = 8, 5
    Z = sphere(rng, n, q)
    D = [np.linalg.norm(Z[i] - Z[j]) for i in range(n) for j in range(n)]
    c = -DistanceKernel(s=1.0).uniform_mean_embedding(q=q)
    np.testing.assert_allclose(value(energy_distance_to_uniform(Z)), 2 * c - np.mean(D) - c, **TOL)
    # Bakshaev's statistic n * E_V; on S^2 the mean distance is 4/3
    assert math.isclose(-DistanceKernel(s=1.0).uniform_mean_embedding(q=3), 4 / 3, rel_tol=1e-14)


@pytest.mark.parametrize("q", [2, 3, 5, 16, 200])
@pytest.mark.parametrize("alpha", [0.4, 1.0, 1.6, 2.0])
def test_uniform_mean_distance_against_quadrature_and_kernel(q, alpha):
    # E||Y - Y'||^alpha = E_nu (2 - 2s)^(alpha/2): mpmath quadrature of the projected density
    mp.mp.dps = 30
    cq = mp.gamma(mp.mpf(q) / 2) / (mp.sqrt(mp.pi) * mp.gamma(mp.mpf(q - 1) / 2))
    ref = cq * mp.quad(lambda s: (1 - s * s) ** (mp.mpf(q - 3) / 2) * (2 - 2 * s) ** (mp.mpf(alpha) / 2), [-1, 0, 1])
    got = -DistanceKernel(s=alpha).uniform_mean_embedding(q=q)  # the c_s(q) of energy_distance_to_uniform
    assert math.isclose(got, float(ref), rel_tol=1e-12)


def test_sphere_gradients_of_classic_and_kernel_forms_agree(rng):
    Z = sphere(rng, 12, 6)
    pairs = [
        (lambda z: wang_isola_uniformity(z, gamma=2.5), lambda z: wang_isola_uniformity_via_kernel(z, gamma=2.5)),
        (
            lambda z: centering_whitening(z, b1=1.0, b2=40.0),
            lambda z: centering_whitening_via_kernel(z, b1=1.0, b2=40.0),
        ),
        (spectral_contrastive_repulsion, spectral_contrastive_repulsion_via_kernel),
        (energy_distance_to_uniform, energy_distance_via_kernel),
    ]
    for classic, kernel_form in pairs:
        grads = []
        for f in (classic, kernel_form):
            z = torch.tensor(Z, requires_grad=True)
            f(z).backward()
            g = z.grad.numpy()
            grads.append(g - np.sum(g * Z, axis=1, keepdims=True) * Z)  # tangent part: the forms agree on the sphere
        assert np.all(np.isfinite(grads[0]))
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10, atol=1e-12)


def test_exact_forms_are_rotation_invariant_and_vicreg_barlow_are_not(rng):
    # every dot-product MMD statistic is a function of Z Z^T, so it cannot change under Z -> Z R
    n, q = 20, 5
    Z = sphere(rng, n, q) + 0.0
    ZR = Z @ random_rotation(rng, q)
    for f in (wang_isola_uniformity, centering, whitening, spectral_contrastive_repulsion, energy_distance_to_uniform):
        np.testing.assert_allclose(value(f(ZR)), value(f(Z)), **TOL)
    Zraw = rng.standard_normal((n, q)) * np.array([3.0, 1.0, 0.5, 0.2, 2.0])
    ZrawR = Zraw @ random_rotation(rng, q)
    for f in (
        vicreg_covariance,
        vicreg_variance,
        lambda z: barlow_twins_redundancy(z, z + 0.3 * np.sin(z), redundancy_weight=0.5),
    ):
        a, b = value(f(Zraw)), value(f(ZrawR))
        assert abs(a - b) > 1e-3 * max(abs(a), abs(b)), f
    Zs = Zraw / np.linalg.norm(Zraw, axis=1, keepdims=True)  # also on the sphere
    ZsR = Zs @ random_rotation(rng, q)
    for f in (vicreg_covariance, vicreg_variance):
        a, b = value(f(Zs)), value(f(ZsR))
        assert abs(a - b) > 1e-3 * max(abs(a), abs(b))


# ---------------------------------------------------------------------------------------------------------------
# VICReg: what differs, and the nearest exact statements


def _vicreg_lhs(Z):
    n, q = Z.shape
    Cn = np.cov(Z.T, bias=True)
    return q * ((n - 1) / n) ** 2 * value(vicreg_covariance(Z)) + np.sum((np.diag(Cn) - 1 / q) ** 2)


@given(**batches)
def test_vicreg_covariance_exact_relation_any_data(n, q, seed):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, q)) + rng.standard_normal(q)  # generic, uncentred, off the sphere
    m = Z.mean(0)
    S = Z.T @ Z / n
    W = S - np.eye(q) / q
    rhs = value(whitening(Z)) - 2 * m @ W @ m + (m @ m) ** 2
    np.testing.assert_allclose(_vicreg_lhs(Z), rhs, **TOL)


@pytest.mark.parametrize("backend", BACKENDS)
@given(n_half=st.integers(1, 15), q=st.integers(2, 24), seed=st.integers(0, 2**32 - 1))
def test_vicreg_covariance_centred_unit_rows_is_p2_mmd(backend, n_half, q, seed):
    Z = centred_sphere(np.random.default_rng(seed), n_half, q)
    n = Z.shape[0]
    Zb = to_backend(Z, backend)
    p2 = mmd2(Z, LegendreSeriesKernel([0, 0, 1]), "v")
    cov = value(vicreg_covariance(Zb))
    lhs = q * ((n - 1) / n) ** 2 * cov + np.sum((np.diag(Z.T @ Z / n) - 1 / q) ** 2)
    np.testing.assert_allclose(lhs, (q - 1) / q * p2, **TOL)
    np.testing.assert_allclose(lhs, mmd2(Z, MonomialKernel(2), "v"), **TOL)
    C = np.cov(Z.T, ddof=1)
    np.testing.assert_allclose(np.sum(C**2), (n / (n - 1)) ** 2 * ((q - 1) / q * p2 + 1 / q), **TOL)
    np.testing.assert_allclose(q * cov, np.sum(C**2) - np.sum(np.diag(C) ** 2), **TOL)


def test_vicreg_covariance_differs_from_whitening_for_uncentred_data(rng):
    n, q = 40, 6
    Z = sphere(rng, n, q) + 1.5 * np.eye(q)[0]
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    m = Z.mean(0)
    W = Z.T @ Z / n - np.eye(q) / q
    gap = _vicreg_lhs(Z) - value(whitening(Z))
    assert abs(gap) > 1e-2 * value(whitening(Z))  # VICReg's centred covariance is not the whitening term ...
    np.testing.assert_allclose(gap, (m @ m) ** 2 - 2 * m @ W @ m, **TOL)  # ... by exactly this 3-point term
    # and even for centred data VICReg alone misses the diagonal term
    Zc = centred_sphere(rng, 20, q)
    cov_part = q * ((2 * 20 - 1) / 40) ** 2 * value(vicreg_covariance(Zc))
    assert value(whitening(Zc)) - cov_part > 1e-3


@given(**batches, eps=st.sampled_from([0.0, 1e-4, 0.1]), gamma=st.floats(0.0, 2.0))
def test_vicreg_variance_total_variance_and_jensen_bound(n, q, seed, eps, gamma):
    Z = sphere(np.random.default_rng(seed), n, q)
    m2 = value(centering(Z))
    V = Z.var(axis=0, ddof=1)
    np.testing.assert_allclose(V.sum(), n / (n - 1) * (1 - m2), **TOL)
    bound = gamma - math.sqrt(n * (1 - m2) / ((n - 1) * q) + eps)
    assert value(vicreg_variance(Z, target_std=gamma, eps=eps)) >= bound - 1e-12


@pytest.mark.parametrize("q", [2, 3, 7])
@pytest.mark.parametrize("eps", [0.0, 1e-4])
def test_vicreg_variance_equality_and_zero_set(q, eps):
    Z = np.concatenate([np.eye(q), -np.eye(q)])  # m = 0, equal variances, diag S = I/q
    n = 2 * q
    for gamma in (1.0, 3.0):  # every hinge active: the Jensen bound is attained
        bound = gamma - math.sqrt(n / ((n - 1) * q) + eps)
        np.testing.assert_allclose(value(vicreg_variance(Z, target_std=gamma, eps=eps)), bound, **TOL)
    if eps == 0.0:
        gamma0 = math.sqrt(n / ((n - 1) * q))
        assert value(vicreg_variance(Z, target_std=gamma0, eps=0.0)) <= 1e-15
        assert value(centering(Z)) == 0.0
        rng = np.random.default_rng(q)
        for Zr in (sphere(rng, n, q), centred_sphere(rng, q, q)):  # m != 0 or diag S != I/q: strictly positive
            m, d = value(centering(Zr)), np.sum((np.diag(Zr.T @ Zr / n) - 1 / q) ** 2)
            assert m + d > 1e-6 and value(vicreg_variance(Zr, target_std=gamma0, eps=0.0)) > 1e-8


# ---------------------------------------------------------------------------------------------------------------
# Barlow Twins: what differs, and the nearest exact statements


def _standardised(Z):
    return (Z - Z.mean(0)) / Z.std(0)


@pytest.mark.parametrize("backend", BACKENDS)
@given(n=st.integers(3, 30), q=st.integers(2, 16), seed=st.integers(0, 2**32 - 1), lambd=st.floats(0.0, 3.0))
def test_barlow_twins_single_view_is_p2_form_of_standardised_rows(backend, n, q, seed, lambd):
    Z = np.random.default_rng(seed).standard_normal((n, q)) * np.linspace(0.5, 2, q) + 1.0
    Y = _standardised(Z) / math.sqrt(q)
    T = Y @ Y.T
    got = value(
        barlow_twins_redundancy(to_backend(Z, backend), to_backend(Z, backend), redundancy_weight=lambd, eps=0.0)
    )
    scale = max(1.0, lambd * q * q)
    np.testing.assert_allclose(got, lambd * q * q * (np.mean(T**2) - 1 / q), rtol=1e-12, atol=1e-12 * scale)
    p2 = (q * T**2 - 1) / (q - 1)  # P_{2,q} off the sphere (the rows of Y are unit only on average)
    np.testing.assert_allclose(got, lambd * q * (q - 1) * np.mean(p2), rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(got, lambd * q * q * value(whitening(Y)), rtol=1e-12, atol=1e-12 * scale)


@given(n=st.integers(3, 30), q=st.integers(2, 16), seed=st.integers(0, 2**32 - 1))
def test_barlow_twins_two_views_lambda_one_is_product_kernel_statistic(n, q, seed):
    rng = np.random.default_rng(seed)
    Z1 = rng.standard_normal((n, q))
    Z2 = Z1 + 0.5 * rng.standard_normal((n, q))
    Y1, Y2 = _standardised(Z1) / math.sqrt(q), _standardised(Z2) / math.sqrt(q)
    joint = np.mean((Y1 @ Y1.T) * (Y2 @ Y2.T))
    align = np.mean(np.sum(Y1 * Y2, axis=1))
    expected = q * q * joint - 2 * q * align + q
    got = value(barlow_twins_redundancy(Z1, Z2, redundancy_weight=1.0, eps=0.0))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * q * q)


@pytest.mark.parametrize("q", [2, 3, 8])
def test_barlow_twins_on_sphere_is_p2_mmd_for_balanced_centred_rows(rng, q):
    Z = balanced_sphere(rng, 3, q)
    n = Z.shape[0]
    np.testing.assert_allclose(np.diag(Z.T @ Z / n), np.full(q, 1 / q), **TOL)
    p2 = mmd2(Z, LegendreSeriesKernel([0, 0, 1]), "v")
    assert p2 > 1e-3  # not trivially whitened
    for lambd in (0.0051, 1.0):
        got = value(barlow_twins_redundancy(Z, Z, redundancy_weight=lambd, eps=0.0))
        np.testing.assert_allclose(got, lambd * q * (q - 1) * p2, **TOL)


def test_barlow_twins_is_not_the_p2_mmd_in_general(rng):
    n, q = 30, 5
    Z = sphere(rng, n, q) + 1.5 * np.eye(q)[1]
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    p2 = mmd2(Z, LegendreSeriesKernel([0, 0, 1]), "v")
    single = value(barlow_twins_redundancy(Z, Z, redundancy_weight=1.0, eps=0.0))
    assert abs(single - q * (q - 1) * p2) > 0.1 * single  # the rows of Z are not standardised
    Z2 = Z + 0.3 * rng.standard_normal((n, q))
    two = value(barlow_twins_redundancy(Z, Z2, redundancy_weight=1.0, eps=0.0))
    assert abs(two - single) > 1e-2  # the second view enters through the cross-correlation
    # eps of BatchNorm1d perturbs the exact statements at the level of eps
    assert abs(value(barlow_twins_redundancy(Z, Z, redundancy_weight=1.0)) - single) < 1e-2


# ---------------------------------------------------------------------------------------------------------------
# validation


def test_errors(rng):
    Z = sphere(rng, 5, 3)
    with pytest.raises(ValueError, match="2-d"):
        centering(Z[0])
    with pytest.raises(ValueError, match="at least 2 rows"):
        wang_isola_uniformity(Z[:1])
    with pytest.raises(ValueError, match="gamma must be > 0"):
        wang_isola_uniformity(Z, gamma=0.0)
    with pytest.raises(TypeError, match="gamma must be a real number"):
        wang_isola_kernel(gamma="2")
    with pytest.raises(TypeError):
        wang_isola_uniformity(Z, 2.0)  # options are keyword-only
    with pytest.raises(ValueError, match="at least 2 columns"):
        centering_whitening(Z[:, :1])
    with pytest.raises(ValueError, match="s must lie in"):
        energy_distance_to_uniform(Z, s=2.5)
    with pytest.raises(ValueError, match="estimator"):
        energy_distance_via_kernel(Z, estimator="x")
    with pytest.raises(ValueError, match="unit vectors"):
        energy_distance_to_uniform(2 * Z)
    with pytest.raises(ValueError, match="unit vectors"):
        wang_isola_uniformity_via_kernel(2 * Z)
    with pytest.raises(ValueError, match="same shape"):
        barlow_twins_redundancy(Z, Z[:4])
    with pytest.raises(ValueError, match="eps must be >= 0"):
        vicreg_variance(Z, eps=-1.0)
    with pytest.raises(ValueError, match="redundancy_weight must be >= 0"):
        barlow_twins_redundancy(Z, Z, redundancy_weight=-1.0)


def test_returns_backend_scalars(rng):
    Z = torch.tensor(sphere(rng, 6, 4))
    for f in (centering, whitening, vicreg_variance, vicreg_covariance, spectral_contrastive_repulsion):
        out = f(Z)
        assert isinstance(out, torch.Tensor) and out.ndim == 0 and out.dtype == torch.float64
    out = centering(sphere(rng, 6, 4).astype(np.float32))
    assert out.dtype == np.float32


def test_array_api_strict_backend(rng):
    xps = pytest.importorskip("array_api_strict")
    Z = sphere(rng, 7, 4)
    Zs = xps.asarray(Z)
    funcs = [
        wang_isola_uniformity,
        centering,
        whitening,
        centering_whitening,
        vicreg_variance,
        vicreg_covariance,
        spectral_contrastive_repulsion,
        energy_distance_to_uniform,
        wang_isola_uniformity_via_kernel,
        centering_whitening_via_kernel,
        spectral_contrastive_repulsion_via_kernel,
        energy_distance_via_kernel,
        lambda z: barlow_twins_redundancy(z, z * 2.0 + 1.0),
    ]
    for f in funcs:
        out = f(Zs)
        assert type(out).__module__.startswith("array_api_strict")
        np.testing.assert_allclose(float(out), value(f(Z)), rtol=1e-14, atol=1e-15)
