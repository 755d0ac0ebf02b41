"""The same evaluations on numpy, torch (CPU), jax (CPU) and array-api-strict, in float32 and float64: values
against the numpy float64 computation, the result's array type, dtype and device, and gradients (torch autograd
and jax.grad) against the analytic derivatives."""

import array_api_strict as xps
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from dotkernels import (
    ArcCosineKernel,
    DistanceKernel,
    GaussianKernel,
    HeatKernel,
    PoissonKernel,
    PolynomialKernel,
    SFRIKKernel,
    legendre,
    legendre_all,
    legendre_series,
    legendre_series_derivative,
    mmd2_uniform,
)

KERNELS = [
    GaussianKernel(gamma=0.8),
    PolynomialKernel(p=3, c=0.5),
    SFRIKKernel(),
    HeatKernel(time=0.2),
    PoissonKernel(rho=0.3),
    ArcCosineKernel(order=1),
    DistanceKernel(s=1.0),
]
Q = 6


@pytest.fixture(autouse=True)
def jax_float64():
    """jax computes in float32 unless x64 is enabled; enable it for these tests only and restore it after."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _points(n=7, q=Q, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, q))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


BACKENDS = {
    "numpy64": lambda a: a.astype(np.float64),
    "numpy32": lambda a: a.astype(np.float32),
    "torch64": lambda a: torch.tensor(a, dtype=torch.float64),
    "torch32": lambda a: torch.tensor(a, dtype=torch.float32),
    "jax64": lambda a: jnp.asarray(a, dtype=jnp.float64),
    "jax32": lambda a: jnp.asarray(a, dtype=jnp.float32),
    "strict64": lambda a: xps.asarray(a, dtype=xps.float64),
    "strict32": lambda a: xps.asarray(a, dtype=xps.float32),
}


def _to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    return np.from_dlpack(x) if not isinstance(x, jax.Array) else np.asarray(x)


def _check_same_kind(out, inp):
    assert type(out) is type(inp)
    assert out.dtype == inp.dtype
    assert out.device == inp.device


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_polynomials_on_every_backend(backend):
    t_np = np.linspace(-1, 1, 11)
    t = BACKENDS[backend](t_np)
    rtol = 1e-5 if backend.endswith("32") else 1e-13
    coefficients = [0.3, 1, 40, 40]
    for fn, ref in [
        (lambda s: legendre(5, s, q=Q), legendre(5, t_np, q=Q)),
        (lambda s: legendre_series(coefficients, s, q=Q), legendre_series(coefficients, t_np, q=Q)),
        (
            lambda s: legendre_series_derivative(coefficients, s, q=Q),
            legendre_series_derivative(coefficients, t_np, q=Q),
        ),
        (lambda s: legendre_all(4, s, q=Q), legendre_all(4, t_np, q=Q)),
    ]:
        out = fn(t)
        _check_same_kind(out, t)
        np.testing.assert_allclose(_to_numpy(out), ref, rtol=rtol, atol=rtol * 100)


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
def test_gram_profile_derivative_on_every_backend(backend, kernel):
    X_np = _points()
    X = BACKENDS[backend](X_np)
    K = kernel.gram(X)
    _check_same_kind(K, X)
    rtol = 2e-4 if backend.endswith("32") else 1e-12
    ref = kernel.gram(X_np)
    np.testing.assert_allclose(_to_numpy(K), ref, rtol=rtol, atol=rtol * max(1.0, np.abs(ref).max()))
    t_np = np.linspace(-0.9, 0.9, 7)
    t = BACKENDS[backend](t_np)
    for method in (kernel.profile, kernel.derivative):
        out = method(t, q=Q)
        _check_same_kind(out, t)
        np.testing.assert_allclose(_to_numpy(out), method(t_np, q=Q), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b.endswith("64")])
def test_mmd_on_every_backend(backend):
    X_np = _points(9)
    X = BACKENDS[backend](X_np)
    for kernel in (SFRIKKernel(), GaussianKernel(gamma=0.8)):
        value = mmd2_uniform(X, kernel)
        if backend.startswith("numpy"):
            assert isinstance(value, np.float64)  # scalars come back as NumPy scalars on numpy input
        else:
            assert type(value) is type(X) and value.ndim == 0 and value.device == X.device
        assert float(value) == pytest.approx(float(mmd2_uniform(X_np, kernel)), rel=1e-12, abs=1e-14)


def test_polynomials_under_jax_jit():
    # validation needs values: it runs on concrete arrays and is skipped while jax.jit traces
    t = jnp.linspace(-1, 1, 11)
    coefficients = [0.3, 1.0, 40.0, 40.0]
    for fn in (
        lambda s: legendre(5, s, q=Q),
        lambda s: legendre_series(coefficients, s, q=Q),
        lambda s: legendre_series_derivative(coefficients, s, q=Q),
        lambda s: legendre_all(4, s, q=Q),
    ):
        np.testing.assert_allclose(np.asarray(jax.jit(fn)(t)), np.asarray(fn(t)), rtol=1e-14, atol=1e-14)
    grad = jax.jit(jax.grad(lambda s: legendre_series(coefficients, s, q=Q).sum()))(t)
    np.testing.assert_allclose(np.asarray(grad), legendre_series_derivative(coefficients, np.asarray(t), q=Q))
    with pytest.raises(ValueError, match="t must lie in"):
        legendre(2, jnp.array([2.0]), q=Q)  # concrete jax arrays are still validated
    with pytest.raises(ValueError, match="NaN"):
        jax.grad(lambda s: legendre(2, s, q=Q).sum())(jnp.array([jnp.nan]))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
def test_torch_autograd_matches_derivative(kernel, dtype):
    t = torch.linspace(-0.9, 0.9, 9, dtype=dtype, requires_grad=True)
    (grad,) = torch.autograd.grad(kernel.profile(t, q=Q).sum(), t)
    expected = kernel.derivative(t.detach(), q=Q)
    tol = 1e-4 if dtype == torch.float32 else 1e-11
    torch.testing.assert_close(grad, expected, rtol=tol, atol=tol * float(expected.abs().max()))


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
def test_jax_grad_matches_derivative(kernel, dtype):
    t = jnp.linspace(-0.9, 0.9, 9, dtype=dtype)
    grad = jax.grad(lambda s: kernel.profile(s, q=Q).sum())(t)
    assert grad.dtype == dtype
    expected = np.asarray(kernel.derivative(np.asarray(t, dtype=np.float64), q=Q))
    tol = 1e-4 if dtype == jnp.float32 else 1e-11
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=tol, atol=tol * np.abs(expected).max())


def _tangent(G, Z):
    """The component of each row of G orthogonal to the matching unit row of Z (the gradient on the sphere)."""
    return G - np.sum(G * Z, axis=1, keepdims=True) * Z


@pytest.mark.parametrize("kernel", [SFRIKKernel(), GaussianKernel(gamma=0.8), PolynomialKernel(p=3, c=0.5)], ids=repr)
def test_grad_of_mmd_on_the_sphere(kernel):
    # V-statistic: d/dz_k n^-2 sum_ij phi(z_i^T z_j) = 2 n^-2 sum_j phi'(z_k^T z_j) z_j; only the tangential part is
    # defined by a function on the sphere (moment forms and the Gram form differ off it)
    Z_np = _points(8)
    n = Z_np.shape[0]
    expected = _tangent(2.0 / n**2 * kernel.derivative(np.clip(Z_np @ Z_np.T, -1, 1), q=Q) @ Z_np, Z_np)
    g_jax = np.asarray(jax.grad(lambda Z: mmd2_uniform(Z, kernel))(jnp.asarray(Z_np)))
    np.testing.assert_allclose(_tangent(g_jax, Z_np), expected, rtol=1e-10, atol=1e-12)
    Z_t = torch.tensor(Z_np, requires_grad=True)
    (g_torch,) = torch.autograd.grad(mmd2_uniform(Z_t, kernel), Z_t)
    np.testing.assert_allclose(_tangent(g_torch.numpy(), Z_np), expected, rtol=1e-10, atol=1e-12)


def test_gram_gradient_in_float64_gradcheck():
    X = torch.tensor(_points(5, 4), dtype=torch.float64, requires_grad=True)

    def f(x):
        x = x / x.norm(dim=1, keepdim=True)
        return SFRIKKernel().gram(x).mean() + GaussianKernel(gamma=1.0).gram(x).mean()

    assert torch.autograd.gradcheck(f, (X,))


def test_corner_kernel_gradient_is_finite_on_the_diagonal():
    X = torch.tensor(_points(6, 5), dtype=torch.float64, requires_grad=True)
    for kernel in (ArcCosineKernel(order=0), DistanceKernel(s=1.0)):
        K = kernel.gram(X)
        (g,) = torch.autograd.grad(K.sum(), X)
        assert torch.isfinite(g).all()
    Xj = jnp.asarray(_points(6, 5))
    for kernel in (ArcCosineKernel(order=0), DistanceKernel(s=1.0)):
        g = jax.grad(lambda Z, k=kernel: k.gram(Z).sum())(Xj)
        assert bool(jnp.all(jnp.isfinite(g)))
