"""The same evaluations on numpy, torch (CPU, float32/float64, autograd) and array-api-strict."""

import array_api_strict as xps
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
)

KERNELS = [GaussianKernel(0.8), PolynomialKernel(3, 0.5), SFRIKKernel(), HeatKernel(0.2), PoissonKernel(0.3),
           ArcCosineKernel(1), DistanceKernel(0.5)]
Q = 6


def _points(n=7, q=Q, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, q))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


BACKENDS = {
    "numpy64": lambda a: a.astype(np.float64),
    "numpy32": lambda a: a.astype(np.float32),
    "torch64": lambda a: torch.tensor(a, dtype=torch.float64),
    "torch32": lambda a: torch.tensor(a, dtype=torch.float32),
    "strict64": lambda a: xps.asarray(a, dtype=xps.float64),
    "strict32": lambda a: xps.asarray(a, dtype=xps.float32),
}


def _to_numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return np.asarray(x) if isinstance(x, np.ndarray) else np.from_dlpack(x)


def _check_same_kind(out, inp):
    assert type(out) is type(inp)
    assert out.dtype == inp.dtype
    assert out.device == inp.device


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_polynomials_on_every_backend(backend):
    t_np = np.linspace(-1, 1, 11)
    t = BACKENDS[backend](t_np)
    rtol = 1e-5 if backend.endswith("32") else 1e-13
    for fn, ref in [
        (lambda s: legendre(5, Q, s), legendre(5, Q, t_np)),
        (lambda s: legendre_series([0.3, 1, 40, 40], Q, s), legendre_series([0.3, 1, 40, 40], Q, t_np)),
        (lambda s: legendre_series_derivative([0.3, 1, 40, 40], Q, s),
         legendre_series_derivative([0.3, 1, 40, 40], Q, t_np)),
        (lambda s: legendre_all(4, Q, s), legendre_all(4, Q, t_np)),
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
        out = method(t, Q)
        _check_same_kind(out, t)
        np.testing.assert_allclose(_to_numpy(out), method(t_np, Q), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
def test_torch_autograd_matches_derivative(kernel, dtype):
    t = torch.linspace(-0.9, 0.9, 9, dtype=dtype, requires_grad=True)
    (grad,) = torch.autograd.grad(kernel.profile(t, Q).sum(), t)
    expected = kernel.derivative(t.detach(), Q)
    tol = 1e-4 if dtype == torch.float32 else 1e-11
    torch.testing.assert_close(grad, expected, rtol=tol, atol=tol * float(expected.abs().max()))


def test_gram_gradient_in_float64_gradcheck():
    X = torch.tensor(_points(5, 4), dtype=torch.float64, requires_grad=True)

    def f(x):
        x = x / x.norm(dim=1, keepdim=True)
        return SFRIKKernel().gram(x).mean() + GaussianKernel(1.0).gram(x).mean()

    assert torch.autograd.gradcheck(f, (X,))


def test_corner_kernel_gradient_is_finite_on_the_diagonal():
    X = torch.tensor(_points(6, 5), dtype=torch.float64, requires_grad=True)
    for kernel in (ArcCosineKernel(0), DistanceKernel(0.5)):
        K = kernel.gram(X)
        (g,) = torch.autograd.grad(K.sum(), X)
        assert torch.isfinite(g).all()
