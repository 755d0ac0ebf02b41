"""The Gram matrix of the heat kernel (and of the other series kernels): phi(1) exactly on its diagonal (numpy,
torch, jax, array-api-strict, float32 and float64, rows of norm 1 up to rounding or normalised by gram), the
off-diagonal entries unchanged, and the derivatives in a tensor diffusion time against mpmath sums of the series."""

from __future__ import annotations

import math

import array_api_strict as xps
import mpmath as mp
import numpy as np
import pytest
from _helpers import sphere
from _mpref import harmonic_dimension_mp
from hypothesis import given, settings
from hypothesis import strategies as st

from dotkernels import BandLimitedKernel, HeatKernel, LegendreSeriesKernel, SFRIKKernel, SpectralKernel

torch = pytest.importorskip("torch")


def _series_mp(time: float, q: int, t: float, power: int = 0, dps: int = 30) -> mp.mpf:
    """sum_l (-l(l+q-2))^power N(q,l) exp(-time l(l+q-2)) P_{l,q}(t) at ``dps`` digits: phi (power 0) and its
    derivatives in the time; P_{l,q} by the three-term recurrence, the sum up to where the terms are below 1e-40."""
    with mp.workdps(dps):
        x, total = mp.mpf(t), mp.mpf(0)
        prev, cur = mp.mpf(1), x
        l = 0
        while True:
            lam = l * (l + q - 2)
            p = prev if l == 0 else cur
            term = (-lam) ** power * harmonic_dimension_mp(q, l) * mp.exp(-mp.mpf(time) * lam)
            total += term * p
            if l > 10 and abs(term) < mp.mpf(10) ** -40 * abs(total):
                return total
            if l >= 1:
                prev, cur = cur, ((2 * l + q - 2) * x * cur - l * prev) / (l + q - 2)
            l += 1


def _rows(rng, n, q):
    """Unit rows whose computed norms differ from 1 by up to 1e-9 (inside gram's tolerance)."""
    return sphere(rng, n, q) * (1.0 + 1e-9 * rng.uniform(-1, 1, (n, 1)))


@pytest.mark.parametrize("q", [2, 3, 5, 64])
@pytest.mark.parametrize("time", [1e-3, 0.02, 0.5])
def test_phi_at_one_on_the_diagonal_exactly(q, time, rng):
    kernel = HeatKernel(time)
    phi = kernel.phi_at_one(q=q)
    # phi(1) itself, against mpmath
    assert phi == pytest.approx(float(_series_mp(time, q, 1.0)), rel=1e-14)
    X = _rows(rng, 40, q)
    K = kernel.gram(X)
    assert np.all(np.diag(K) == phi)
    # normalised rows (3 times too long, then divided by their norms)
    Kn = kernel.gram(3.0 * X, normalize=True)
    assert np.all(np.diag(Kn) == phi)
    # off the diagonal: the profile at the computed inner products, unchanged
    G = np.clip(X @ X.T, -1.0, 1.0)
    off = ~np.eye(40, dtype=bool)
    np.testing.assert_array_equal(K[off], kernel.profile(G, q=q)[off])


def test_the_diagonal_without_the_fix_is_not_phi_at_one(rng):
    # what the exact diagonal corrects: at short times phi'(1) is large, so the rounding of <x, x> moves phi(<x, x>)
    kernel, q = HeatKernel(1e-3), 3
    X = _rows(rng, 200, q)
    t = np.clip(np.einsum("ij,ij->i", X, X), -1.0, 1.0)
    assert np.any(kernel.profile(t, q=q) != kernel.phi_at_one(q=q))
    assert np.all(np.diag(kernel.gram(X)) == kernel.phi_at_one(q=q))


def test_off_diagonal_against_mpmath(rng):
    time, q = 0.05, 5
    X = sphere(rng, 5, q)
    K = HeatKernel(time).gram(X)
    G = X @ X.T
    # <x_i, x_i> = 1 for points on the sphere: the reference there is phi(1) (phi_at_one's accuracy, 1e-14 relative)
    ref = np.array([[float(_series_mp(time, q, 1.0 if i == j else G[i, j])) for j in range(5)] for i in range(5)])
    off = ~np.eye(5, dtype=bool)
    np.testing.assert_allclose(K[off], ref[off], rtol=0, atol=2e-15 * ref[0, 0])
    np.testing.assert_allclose(np.diag(K), np.diag(ref), rtol=1e-14, atol=0)


BACKENDS = {
    "numpy32": lambda a: a.astype(np.float32),
    "torch64": lambda a: torch.tensor(a, dtype=torch.float64),
    "torch32": lambda a: torch.tensor(a, dtype=torch.float32),
    "strict64": lambda a: xps.asarray(a, dtype=xps.float64),
    "strict32": lambda a: xps.asarray(a, dtype=xps.float32),
}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_every_backend_and_dtype(backend, rng):
    kernel, q = HeatKernel(2e-3), 4
    X = BACKENDS[backend](sphere(rng, 30, q))
    K = np.from_dlpack(kernel.gram(X))
    d = np.diag(K)
    assert d.dtype == np.from_dlpack(X).dtype
    assert np.all(d == d.dtype.type(kernel.phi_at_one(q=q)))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_tensor_time_diagonal_value_and_derivatives(dtype, rng):
    time, q, n = 0.01, 3, 20
    X = torch.tensor(_rows(rng, n, q), dtype=dtype)
    tau = torch.tensor(time, dtype=torch.float64, requires_grad=True)
    K = HeatKernel(tau).gram(X)
    phi = HeatKernel(time).phi_at_one(q=q)
    assert K.dtype == dtype and torch.all(torch.diagonal(K) == torch.tensor(phi, dtype=dtype))
    (g,) = torch.autograd.grad(K[3, 3], tau, create_graph=True)
    (h,) = torch.autograd.grad(g, tau)
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    # d phi(1) / d time = -sum_l l(l+q-2) a_l, and the second derivative sum_l (l(l+q-2))^2 a_l
    assert float(g) == pytest.approx(float(_series_mp(time, q, 1.0, power=1)), rel=rtol)
    assert float(h) == pytest.approx(float(_series_mp(time, q, 1.0, power=2)), rel=rtol)
    # off the diagonal, the same series at the inner products
    t01 = float(X[0] @ X[1])
    (g01,) = torch.autograd.grad(HeatKernel(tau).gram(X)[0, 1], tau)
    atol = (1e-13 if dtype == torch.float64 else 1e-5) * abs(float(g))
    assert abs(float(g01) - float(_series_mp(time, q, t01, power=1))) < atol


def test_the_sklearn_frontends_derivative_of_the_diagonal(rng):
    # scikit-learn's frontend takes dK/dlog(time) through torch (forward mode, else reverse mode twice): on the
    # diagonal it is time * d phi(1) / d time
    pytest.importorskip("sklearn")
    from dotkernels.integrations.sklearn import SklearnKernel

    time, q = 0.03, 5
    K, dK = SklearnKernel(HeatKernel(time))(sphere(rng, 6, q), eval_gradient=True)
    assert np.all(np.diag(K) == HeatKernel(time).phi_at_one(q=q))
    np.testing.assert_allclose(np.diag(dK[..., 0]), time * float(_series_mp(time, q, 1.0, power=1)), rtol=1e-12)


def test_jax_grad_of_the_diagonal(rng):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        time, q = 0.05, 3
        X = jnp.asarray(sphere(rng, 8, q))
        K = HeatKernel(jnp.asarray(time)).gram(X)
        assert np.all(np.diag(np.asarray(K)) == HeatKernel(time).phi_at_one(q=q))
        trace = jax.grad(lambda s: jnp.trace(HeatKernel(s).gram(X)))(jnp.asarray(time))
        assert float(trace) == pytest.approx(8 * float(_series_mp(time, q, 1.0, power=1)), rel=1e-12)
    finally:
        jax.config.update("jax_enable_x64", previous)


@settings(max_examples=25, deadline=None)
@given(time=st.floats(1e-3, 3.0), q=st.integers(2, 200), seed=st.integers(0, 2**32 - 1))
def test_exact_diagonal_property(time, q, seed):
    rng = np.random.default_rng(seed)
    X = _rows(rng, 6, q)
    kernel = HeatKernel(time)
    phi = kernel.phi_at_one(q=q)
    assert math.isfinite(phi) and np.all(np.diag(kernel.gram(X)) == phi)
    tau = torch.tensor(time, dtype=torch.float64, requires_grad=True)
    K = HeatKernel(tau).gram(torch.from_numpy(X))
    assert torch.all(torch.diagonal(K) == phi)


def _poisson_spectrum(degree, *, q):
    # the Poisson kernel with rho = 1/2, (1 - rho^2) / (1 - 2 rho t + rho^2)^(q/2): a_l = N(q, l) rho^l
    return np.array([float(harmonic_dimension_mp(q, l)) * 0.5**l for l in range(degree + 1)])


def test_the_other_series_kernels_have_phi_at_one_on_their_diagonal(rng):
    q = 4
    X = _rows(rng, 50, q)
    # phi(1) from independent closed forms: the sum of the coefficients; sum_{l <= L} N(q, l) = N(q + 1, L);
    # the Poisson kernel's (1 + rho) / (1 - rho)^(q - 1)
    cases = [
        (SFRIKKernel(), 81.0),
        (LegendreSeriesKernel([0.5, 0.25, 2.0]), 2.75),
        (BandLimitedKernel(degree=3), float(harmonic_dimension_mp(q + 1, 3))),
        (SpectralKernel(_poisson_spectrum), 1.5 / 0.5**3),
    ]
    for kernel, phi in cases:
        assert kernel.phi_at_one(q=q) == pytest.approx(phi, rel=1e-15), kernel
        K = kernel.gram(X)
        assert np.all(np.diag(K) == kernel.phi_at_one(q=q)), kernel
        off = ~np.eye(50, dtype=bool)
        np.testing.assert_array_equal(K[off], kernel.profile(np.clip(X @ X.T, -1.0, 1.0), q=q)[off])
