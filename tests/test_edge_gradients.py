"""Gradients in t at the ends t = +-1 of every kernel family, ``gram`` under autograd and ``jax.jit``.

A clip (``torch.clamp``, ``jnp.clip``) zeroes or halves the gradient at a value equal to its bound, and acos / sqrt
have infinite derivatives at +-1 that cancel analytically. These tests hold torch autograd of ``profile`` at
t = -1, 1 and just inside to the closed-form ``derivative`` (an independent route: the derivative's own formula,
or the chain rule through the layers of the network kernels) and, where the profile is smooth up to the end, to
one-sided finite differences of the numpy profile; where the derivative is infinite (corners) autograd must give
the finite part, never NaN.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dotkernels import (
    ArcCosineKernel,
    BandLimitedKernel,
    DistanceKernel,
    ExponentialKernel,
    GaussianKernel,
    GeneratingFunctionKernel,
    GineKernel,
    HeatKernel,
    InverseMultiquadricKernel,
    LegendreSeriesKernel,
    MaternKernel,
    MonomialKernel,
    NNGPKernel,
    NTKKernel,
    PoissonKernel,
    PolynomialKernel,
    SFRIKKernel,
)
from dotkernels.kernels import matern
from dotkernels.kernels._base import clip_through

torch = pytest.importorskip("torch")

BOTH, LOWER, NONE = (-1.0, 1.0), (-1.0,), ()

# (kernel, q, the ends where the profile is smooth: one-sided finite differences converge there)
CASES = [
    (ExponentialKernel(kappa=1.3), 3, BOTH),
    (GaussianKernel(gamma=0.7), 3, BOTH),
    (PolynomialKernel(p=3, c=1.0), 3, BOTH),
    (MonomialKernel(p=3), 3, BOTH),
    (HeatKernel(time=0.3), 3, BOTH),
    (MaternKernel(nu=1.5, lengthscale=0.5), 3, LOWER),
    (MaternKernel(nu=2.5, lengthscale=0.5), 5, LOWER),
    (MaternKernel(nu=1.0, lengthscale=0.5), 3, LOWER),
    (MaternKernel(nu=0.5, lengthscale=0.5), 3, LOWER),
    (MaternKernel(nu=0.75, lengthscale=0.4), 4, LOWER),
    (MaternKernel(nu=math.inf, lengthscale=0.5), 3, BOTH),
    (PoissonKernel(rho=0.5), 3, BOTH),
    (PoissonKernel(rho=0.5, normalized=True), 4, BOTH),
    (GeneratingFunctionKernel(rho=0.5), 4, BOTH),
    (InverseMultiquadricKernel(c=1.0, beta=0.5), 3, BOTH),
    (DistanceKernel(s=1.0), 3, LOWER),
    (DistanceKernel(s=2.0), 3, BOTH),
    (DistanceKernel(s=3.0), 3, LOWER),
    (ArcCosineKernel(order=0), 3, NONE),
    (ArcCosineKernel(order=1), 3, NONE),
    (BandLimitedKernel(degree=3), 3, BOTH),
    (LegendreSeriesKernel([1.0, 0.5, 0.25]), 3, BOTH),
    (SFRIKKernel(), 3, BOTH),
    (GineKernel(), 3, NONE),
    (NNGPKernel(depth=2), 3, NONE),
    (NNGPKernel(depth=2, activation="step"), 3, NONE),
    (NNGPKernel(depth=2, activation="erf", bias_variance=0.5), 3, BOTH),
    (NNGPKernel(depth=1, activation="gelu"), 3, BOTH),
    (NTKKernel(depth=2), 3, NONE),
    (NTKKernel(depth=2, activation="erf"), 3, BOTH),
    (NTKKernel(depth=1, activation="gelu"), 3, BOTH),
    (2.0 * MaternKernel(nu=1.5, lengthscale=0.5) + GaussianKernel(gamma=1.0), 3, LOWER),
]
IDS = [repr(k) for k, _, _ in CASES]

INSIDE = 1e-6


def _autograd(kernel, t0: float, q: int) -> float:
    t = torch.tensor([t0], dtype=torch.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (g,) = torch.autograd.grad(kernel.profile(t, q=q).sum(), t)
    return float(g[0])


def _derivative(kernel, t0: float, q: int) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(kernel.derivative(np.array([t0]), q=q)[0])


def _one_sided(kernel, end: float, q: int, h: float = 1e-3) -> float:
    """Fourth-order one-sided finite difference from inside [-1, 1] (error O(h^4) for a smooth profile)."""
    step = -end * h  # towards the inside
    t = end + step * np.arange(5)
    f = np.asarray(kernel.profile(t, q=q), dtype=np.float64)
    return float((-25 * f[0] + 48 * f[1] - 36 * f[2] + 16 * f[3] - 3 * f[4]) / (12 * step))


def _scale(kernel, q: int) -> float:
    t = np.linspace(-1.0, 1.0, 201)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = np.asarray(kernel.derivative(t[1:-1], q=q))
    return float(np.max(np.abs(d[np.isfinite(d)]))) + 1.0


@pytest.mark.parametrize(("kernel", "q", "smooth"), CASES, ids=IDS)
def test_autograd_at_the_ends_is_the_one_sided_derivative(kernel, q, smooth):
    scale = _scale(kernel, q)
    for t0 in (-1.0, -1.0 + INSIDE, 1.0 - INSIDE, 1.0):
        g = _autograd(kernel, t0, q)
        assert math.isfinite(g), (t0, g)
        d = _derivative(kernel, t0, q)
        if math.isfinite(d):
            # the profiles' own accuracy: 1e-12 of phi(1) for the Matérn tables, ulps elsewhere
            assert abs(g - d) <= 1e-9 * scale, (t0, g, d)
        else:
            assert kernel.has_corner or isinstance(kernel, MaternKernel), (t0, d)
    # independent of both routes: finite differences of the numpy profile, from inside
    for end in smooth:
        reference = _one_sided(kernel, end, q)
        assert abs(_autograd(kernel, end, q) - reference) <= 1e-7 * scale, (end, reference)


@pytest.mark.parametrize(("kernel", "q", "smooth"), CASES, ids=IDS)
def test_autograd_matches_the_derivative_on_a_grid_up_to_the_ends(kernel, q, smooth):
    # +-(1 - 10^-k), k = 1..15, where acos / sqrt autograd cancels infinite parts (about eps / sqrt(1 - t^2)
    # of the scale: 3e-10 at 1 - 1e-15 for the arc-cosine and ReLU kernels), and a uniform grid; 1e-9 relative or
    # of the largest |phi'| inside (the derivatives of the corners grow without bound towards +-1)
    k = np.arange(1, 16)
    t = np.concatenate([-1.0 + 10.0**-k, 1.0 - 10.0**-k, np.linspace(-1.0, 1.0, 41)])
    tt = torch.tensor(t, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (g,) = torch.autograd.grad(kernel.profile(tt, q=q).sum(), tt)
    g = g.numpy()
    d = np.asarray(_derivative_array(kernel, t, q))
    assert np.all(np.isfinite(g))
    finite = np.isfinite(d)
    assert np.all(finite | (np.abs(t) == 1.0))  # infinite only at the corners +-1
    np.testing.assert_allclose(g[finite], d[finite], rtol=1e-9, atol=1e-9 * _scale(kernel, q))


def _derivative_array(kernel, t: np.ndarray, q: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(kernel.derivative(t, q=q), dtype=np.float64)


@pytest.mark.parametrize(
    ("kernel", "q", "expected"),
    [
        (DistanceKernel(s=1.0), 3, {1.0: 0.0}),
        (DistanceKernel(s=0.5), 3, {1.0: 0.0}),
        (ArcCosineKernel(order=0), 3, {-1.0: 0.0, 1.0: 0.0}),
        (GineKernel(), 5, {-1.0: 0.0, 1.0: 0.0}),
        (NNGPKernel(depth=2, activation="step"), 3, {-1.0: 0.0, 1.0: 0.0}),
        # relu NTK, sigma_w^2 = 2: Theta_1 = 2 kappa1 + 2 t kappa0, Theta_2 = 2 kappa1(kappa1) + kappa0(kappa1) Theta_1;
        # without the infinite kappa0'(1): Theta_1'(1) = 2 + 2 = 4, Theta_2'(1) = 2 + 4 = 6
        (NTKKernel(depth=1), 3, {-1.0: 0.0, 1.0: 4.0}),
        (NTKKernel(depth=2), 3, {-1.0: 0.0, 1.0: 6.0}),
    ],
    ids=repr,
)
def test_autograd_at_a_corner_is_the_finite_part(kernel, q, expected):
    for end, value in expected.items():
        assert math.isinf(_derivative(kernel, end, q))
        assert _autograd(kernel, end, q) == pytest.approx(value, abs=1e-14)


@pytest.fixture
def table_route(monkeypatch):
    """Run a function with the Matérn table route from one point on."""

    def run(fn, *args):
        with monkeypatch.context() as m:
            m.setattr(matern, "_TABLE_MIN_POINTS", 1)
            return fn(*args)

    return run


@pytest.mark.parametrize(("nu", "ell", "q"), [(0.5, 0.5, 3), (0.75, 0.4, 4), (1.0, 0.5, 3), (0.5, 0.3, 10)])
def test_matern_corner_direct_route_matches_the_table_route_at_one(table_route, nu, ell, q):
    # at t = 1 the derivative is infinite; both routes give the finite head part (the head's and the bounded
    # references' derivatives): the table route by its table of that part, the direct route by autograd
    kernel = MaternKernel(nu=nu, lengthscale=ell)
    direct = _autograd(kernel, 1.0, q)
    tabled = table_route(_autograd, kernel, 1.0, q)
    assert math.isfinite(direct) and direct != 0.0
    assert direct == pytest.approx(tabled, rel=1e-8, abs=1e-10 * _scale(kernel, q))
    assert math.isinf(_derivative(kernel, 1.0, q))


def _sphere(n: int, q: int, seed: int = 0) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, q))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.mark.parametrize(("kernel", "q", "smooth"), CASES, ids=IDS)
def test_gram_diagonal_gradient_is_the_profile_gradient_at_one(kernel, q, smooth):
    X = _sphere(6, q)
    X = np.vstack([X, X[:1], -X[1:2]])  # a coinciding and an antipodal point
    Xt = torch.tensor(X, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        K = kernel.gram(Xt)
        values = kernel.gram(X)
    np.testing.assert_allclose(K.detach().numpy(), values, rtol=0, atol=1e-15 * float(np.max(np.abs(values))))
    (grad,) = torch.autograd.grad(torch.diagonal(K).sum(), Xt, retain_graph=True)
    # d phi(<x, x>) / dx = 2 phi'(1) x
    slope = _autograd(kernel, 1.0, q)
    np.testing.assert_allclose(grad.numpy(), 2.0 * slope * X, rtol=1e-12, atol=1e-12 * abs(slope))
    # the coinciding pair (t = 1) and the antipodal pair (t = -1): with a corner, the profile's gradient at exactly
    # +-1 (finite); otherwise at the computed inner product (1 - eps, say), clipped
    n = X.shape[0]
    G = (Xt @ Xt.T).detach().numpy()
    for (i, j), end in (((0, n - 2), 1.0), ((1, n - 1), -1.0)):
        (g,) = torch.autograd.grad(K[i, j], Xt, retain_graph=True)
        slope = _autograd(kernel, end if kernel.has_corner else float(np.clip(G[i, j], -1.0, 1.0)), q)
        np.testing.assert_allclose(g[i].numpy(), slope * X[j], rtol=1e-12, atol=1e-12 * abs(slope) + 1e-300)
        assert bool(torch.all(torch.isfinite(g)))


def test_gram_with_two_point_sets_keeps_the_gradient_at_the_ends():
    kernel = ArcCosineKernel(order=1)
    X = _sphere(4, 3)
    Xt = torch.tensor(X, requires_grad=True)
    K = kernel.gram(Xt, torch.tensor(np.vstack([X[:1], -X[1:2]])))
    (g,) = torch.autograd.grad(K[0, 0] + K[1, 1], Xt)
    np.testing.assert_allclose(g[0].numpy(), 1.0 * X[0], rtol=1e-14)  # phi'(1) = 1
    np.testing.assert_allclose(g[1].numpy(), 0.0 * X[1], atol=1e-14)  # phi'(-1) = 0


@given(st.floats(min_value=-2.0, max_value=2.0), st.sampled_from([(-1.0, 1.0), (0.0, 4.0), (0.0, None)]))
def test_clip_through_is_clip_with_gradient_one(x, bounds):
    low, high = bounds
    t = torch.tensor([x], dtype=torch.float64, requires_grad=True)
    y = clip_through(t, torch, low, high)
    (g,) = torch.autograd.grad(y.sum(), t)
    assert float(y.detach()[0]) == float(np.clip(x, low, high))
    assert float(g[0]) == 1.0


# ---- jax.jit ----------------------------------------------------------------------------------------------------
@pytest.fixture
def jax64(jax_x64):
    """jax with float64 enabled for the test (restored after; see conftest)."""
    return jax_x64


JIT_KERNELS = [
    MaternKernel(nu=1.5, lengthscale=0.5),
    MaternKernel(nu=0.5, lengthscale=0.3),
    GaussianKernel(gamma=1.0),
    DistanceKernel(s=1.0),
    NTKKernel(depth=2),
]


@pytest.mark.parametrize("kernel", JIT_KERNELS, ids=repr)
def test_gram_under_jax_jit_matches_eager(jax64, kernel):
    jax = jax64
    jnp = jax.numpy
    X = _sphere(30, 3, seed=1)
    X = np.vstack([X, X[:1], -X[1:2]])
    Xj = jnp.asarray(X)
    eager = np.asarray(kernel.gram(Xj))
    jitted = np.asarray(jax.jit(lambda Z: kernel.gram(Z))(Xj))
    # Matérn: the summation's stated bound (XLA may fuse the Clenshaw recurrence differently); others: ulps
    tol = 4.0 * kernel.profile_error(q=3) if isinstance(kernel, MaternKernel) else 0.0
    tol += 4e-16 * float(np.max(np.abs(eager)))
    np.testing.assert_allclose(jitted, eager, rtol=0, atol=tol)
    np.testing.assert_allclose(eager, kernel.gram(X), rtol=0, atol=tol)
    grad = np.asarray(jax.jit(jax.grad(lambda Z: kernel.gram(Z).sum()))(Xj))
    assert np.all(np.isfinite(grad))


def test_gram_under_jax_jit_skips_only_the_value_checks(jax64):
    jax = jax64
    jnp = jax.numpy
    kernel = GaussianKernel(gamma=1.0)
    bad = jnp.asarray(2.0 * _sphere(4, 3))
    with pytest.raises(ValueError, match="unit vectors"):
        kernel.gram(bad)  # eager: checked
    np.asarray(jax.jit(lambda Z: kernel.gram(Z))(bad))  # traced: the values are not known, no error
    with pytest.raises(ValueError, match="2-d array"):
        jax.jit(lambda Z: kernel.gram(Z))(jnp.ones(3))  # shapes are checked while tracing


# ---- float32 overflow --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kernel", "phi_one"),
    [
        (LegendreSeriesKernel([1e39, 1.0]), "1e+39"),
        (ExponentialKernel(kappa=100.0), f"{math.exp(100.0):.3g}"),  # e^100 = 2.69e43
        (NTKKernel(depth=200, weight_variance=4.0), None),
    ],
    ids=repr,
)
def test_float32_overflow_warns_with_the_dtype_and_the_value(kernel, phi_one):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log_phi = kernel.log_phi_at_one(q=3)
    assert log_phi > math.log(float(np.finfo(np.float32).max))  # the premise, from the closed form in log space
    t = np.array([0.5, 1.0], dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"), pytest.warns(RuntimeWarning, match=r"largest float32") as caught:
        values = kernel.profile(t, q=3)
    message = str(caught[0].message)
    assert phi_one is None or phi_one in message
    assert not np.isfinite(values[-1])  # the overflow the warning announces
    X = torch.eye(3, dtype=torch.float32)
    with pytest.warns(RuntimeWarning, match=r"torch\.float32"):
        kernel.gram(X)


@pytest.mark.parametrize(
    ("kernel", "dtype"),
    [
        (ExponentialKernel(kappa=80.0), np.float32),  # e^80 = 5.5e34 < 3.4e38
        (ExponentialKernel(kappa=100.0), np.float64),
        (MaternKernel(nu=1.5, lengthscale=0.5), np.float32),
        (DistanceKernel(s=1.0), np.float32),  # phi(1) = 0
    ],
    ids=repr,
)
def test_no_overflow_warning_within_range(kernel, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = kernel.profile(np.array([0.5, 1.0], dtype=dtype), q=3)
    assert np.all(np.isfinite(values))
