"""Tabulated profiles (piecewise Chebyshev in u = sqrt((1 - t)/2)): the table's error bound on dense grids against the
direct route (itself tested against mpmath in test_matern.py) and against closed forms; the route rule; every array
library; the exact Gram diagonal; gradients in the lengthscale through the tables."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotkernels import MaternKernel, SpectrumAccuracyWarning, sample_uniform
from dotkernels.kernels import matern
from dotkernels.kernels._tabulated import ChebyshevTable, tabulate

NUS = [0.5, 1.0, 1.5, 2.5, 0.3, 2.7, math.inf]
EDGES = np.concatenate(
    [[-1.0, 1.0, 0.0], 1.0 - 10.0 ** -np.arange(1, 17), -1.0 + 10.0 ** -np.arange(1, 17), [np.nextafter(1.0, 0.0)]]
)


def _grid(n: int, seed: int = 0) -> np.ndarray:
    """n points of [-1, 1]: the edges above, an even grid, random points, and points crowding t = 1 and t = -1."""
    rng = np.random.default_rng(seed)
    k = max((n - EDGES.size) // 4, 1)
    near = rng.uniform(0.0, 1.0, k) ** 6  # 1 - t from 0 to 1, most below 1e-3
    rest = n - EDGES.size - 3 * k
    return np.concatenate([EDGES, np.linspace(-1, 1, k), rng.uniform(-1, 1, rest), 1.0 - near, -1.0 + near])


def _plan_and_table(nu: float, ell: float, q: int):
    kernel = MaternKernel(nu, ell)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpectrumAccuracyWarning)
        return kernel._plan(q), kernel._table(q), kernel


def _check_against_direct(nu: float, ell: float, q: int, n: int) -> float:
    """|table - direct| <= the table's bound on n points, relative to phi(1); returns the largest ratio."""
    plan, table, kernel = _plan_and_table(nu, ell, q)
    t = _grid(n)
    direct = matern._plan_profile(plan, t, np, q)
    got = table.evaluate(t, np)
    assert got.dtype == np.float64 and got.shape == t.shape
    deviation = np.abs(got - direct)
    assert np.all(deviation <= table.error), (
        nu,
        ell,
        q,
        float(np.max(deviation) / table.error),
        t[np.argmax(deviation)],
    )
    # the ends exactly: u = 0 at t = 1 and u = 1 at t = -1
    assert abs(float(table.evaluate(np.array([1.0]), np)[0]) - float(direct[1])) <= table.error
    # profile_error is the plan's bound plus the table's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpectrumAccuracyWarning)
        bound = kernel.profile_error(q=q)
    expected = 2.0 * plan.error / plan.total + (
        table.error / plan.total if plan.head.size > matern._TABLE_MIN_HEAD else 0
    )
    assert bound == pytest.approx(expected, rel=1e-12)
    return float(np.max(deviation) / table.error)


# ---- the table of a known function ----------------------------------------------------------------------------------


def _known(u):
    """exp(t) + (2 - 2t)^0.3 ln(2 - 2t) + (2 - 2t)^2.5 at t = 1 - 2u^2 (the singular parts from u itself)."""
    x = 4.0 * u * u
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), 0.0)
    return np.exp(1.0 - 2.0 * u * u) + x**0.3 * lx + x**2.5


def test_table_of_a_known_function_within_its_bound_to_the_ends():
    import mpmath as mp

    table = tabulate(_known, scale=math.e, tol=1e-14)
    assert table.intervals < 200
    t = _grid(20000, seed=1)
    got = table.evaluate(t, np)
    with mp.workdps(30):
        x = [mp.mpf(2) - 2 * mp.mpf(float(v)) for v in t]
        ref = np.array(
            [float(mp.exp(1 - xi / 2) + (xi**0.3 * mp.log(xi) if xi > 0 else 0) + xi ** mp.mpf(2.5)) for xi in x]
        )
    assert np.max(np.abs(got - ref)) <= table.error < 1e-14 * np.max(np.abs(ref))
    # read-only arrays, dyadic breakpoints from 0 to 1
    assert not table.breaks.flags.writeable and not table.coefficients.flags.writeable
    assert table.breaks[0] == 0.0 and table.breaks[-1] == 1.0 and np.all(np.diff(table.breaks) > 0)
    assert np.all(np.frexp(np.diff(table.breaks))[0] == 0.5)  # every width a power of 2
    with pytest.raises(ValueError):
        table.breaks[0] = 1.0


def test_every_array_library_gives_the_numpy_values():
    torch = pytest.importorskip("torch")
    table = tabulate(_known, scale=math.e, tol=1e-14)
    t = _grid(3000, seed=2).reshape(30, 100)
    ref = table.evaluate(t, np)
    import array_api_compat

    tt = torch.from_numpy(t)
    got = table.evaluate(tt, array_api_compat.array_namespace(tt))
    assert got.shape == (30, 100) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=4 * table.error)
    # with a graph (the out-of-place route), and in float32
    tg = tt.clone().requires_grad_(True)
    np.testing.assert_allclose(
        table.evaluate(tg, array_api_compat.array_namespace(tg)).detach().numpy(), ref, atol=1e-13
    )
    t32 = tt.to(torch.float32)
    got32 = table.evaluate(t32, array_api_compat.array_namespace(t32))
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), table.evaluate(t32.numpy(), np), rtol=0, atol=1e-6 * np.max(ref))
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    tj = jax.numpy.asarray(t)
    assert tj.dtype == jax.numpy.float64
    np.testing.assert_allclose(np.asarray(table.evaluate(tj, array_api_compat.array_namespace(tj))), ref, atol=1e-13)


@pytest.mark.skipif("not __import__('torch').cuda.is_available()")
@pytest.mark.cuda
def test_cuda_tensors():
    import array_api_compat
    import torch

    table = tabulate(_known, scale=math.e, tol=1e-14)
    t = _grid(5000, seed=3)
    tc = torch.from_numpy(t).cuda()
    got = table.evaluate(tc, array_api_compat.array_namespace(tc))
    assert got.device == tc.device
    np.testing.assert_allclose(got.cpu().numpy(), table.evaluate(t, np), rtol=0, atol=4 * table.error)


# ---- Matérn and heat tables against the direct route -----------------------------------------------------------------

FAST_CASES = [(nu, ell, q) for nu in NUS for ell, q in [(0.5, 3), (0.1, 10)]] + [(1.5, 0.01, 100), (0.5, 3.0, 2)]


@pytest.mark.parametrize("nu, ell, q", FAST_CASES)
def test_table_against_the_direct_route(nu, ell, q):
    _check_against_direct(nu, ell, q, 3000)


SLOW_CASES = [(nu, ell, q) for nu in NUS for ell in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0) for q in (2, 3, 5, 10, 100, 1000)]


@pytest.mark.slow  # 16 minutes for the 252 cases on a loaded 2-core machine (10^5 points of the direct route each)
@pytest.mark.parametrize("nu, ell, q", SLOW_CASES)
def test_table_against_the_direct_route_on_dense_grids(nu, ell, q):
    _check_against_direct(nu, ell, q, 100_000)


@settings(max_examples=12)
@given(
    nu=st.one_of(st.floats(0.2, 3.0), st.just(math.inf)),
    ell=st.floats(0.05, 3.0),
    q=st.sampled_from([2, 3, 5, 10, 100]),
    t=st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=50),
)
def test_table_property(nu, ell, q, t):
    plan, table, _ = _plan_and_table(nu, ell, q)
    t = np.array([*t, 1.0, -1.0])
    assert np.all(np.abs(table.evaluate(t, np) - matern._plan_profile(plan, t, np, q)) <= table.error)


@pytest.mark.parametrize("nu, ell, q", [(1.5, 0.5, 3), (1.2, 0.3, 3), (2.5, 0.5, 10), (math.inf, 0.05, 3)])
def test_derivative_table_against_the_direct_route(nu, ell, q):
    kernel = MaternKernel(nu, ell)
    plan, table = kernel._plan(q), kernel._derivative_table(q)
    t = _grid(3000, seed=9)
    direct = matern._plan_derivative(plan, t, np, q)
    assert np.all(np.abs(table.evaluate(t, np) - direct) <= table.error)
    assert table.error < 1e-9 * np.max(np.abs(direct))
    # large calls of derivative() read it (nu > 1); nu <= 1, whose derivative is unbounded at t = 1, sums directly
    big = _grid(matern._TABLE_MIN_POINTS, seed=10)
    np.testing.assert_array_equal(kernel.derivative(big, q=q), table.evaluate(big, np) / plan.total)
    rough = MaternKernel(0.5, ell)
    np.testing.assert_array_equal(
        rough.derivative(big, q=q), matern._plan_derivative(rough._plan(q), big, np, q) / rough._plan(q).total
    )


# ---- the route of MaternKernel --------------------------------------------------------------------------------------


def test_large_calls_read_the_table_and_small_calls_sum_directly():
    kernel = MaternKernel(1.5, 0.5)
    plan, table = kernel._plan(3), kernel._table(3)
    assert plan.head.size > matern._TABLE_MIN_HEAD
    t = _grid(matern._TABLE_MIN_POINTS)
    np.testing.assert_array_equal(kernel.profile(t, q=3), table.evaluate(t, np) / plan.total)
    small = t[: matern._TABLE_MIN_POINTS - 1]
    np.testing.assert_array_equal(kernel.profile(small, q=3), matern._plan_profile(plan, small, np, 3) / plan.total)
    # a short head (large q) always sums directly
    short = MaternKernel(2.5, 0.5)
    assert short._plan(100).head.size <= matern._TABLE_MIN_HEAD
    np.testing.assert_array_equal(
        short.profile(t, q=100), matern._plan_profile(short._plan(100), t, np, 100) / short._plan(100).total
    )


def test_gram_route_agrees_with_the_direct_route_and_is_fast():
    import time

    X = sample_uniform(400, q=3, rng=0)
    for nu in (0.5, 2.5, math.inf):
        kernel = MaternKernel(nu, 0.1)
        kernel.gram(X[:300])  # plan and table built, cached
        start = time.perf_counter()
        K = kernel.gram(X)
        assert time.perf_counter() - start < 1.0  # 160 000 entries (the direct route: seconds)
        T = np.clip(X @ X.T, -1, 1)
        direct = np.concatenate(
            [kernel.profile(row, q=3) for row in np.array_split(T.ravel(), 16)]  # calls below the table's threshold
        ).reshape(T.shape)
        np.fill_diagonal(direct, 1.0)
        np.testing.assert_allclose(K, direct, rtol=0, atol=kernel.profile_error(q=3))


# ---- the exact diagonal ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nu", NUS)
def test_normalised_gram_has_exactly_one_on_its_diagonal(nu):
    rng = np.random.default_rng(4)
    X = sample_uniform(300, q=5, rng=5)
    X = X * (1.0 + 1e-9 * rng.standard_normal((300, 1)))  # norms within the tolerance of gram, not exactly 1
    for n in (300, 3):  # the table's route and the direct route
        K = MaternKernel(nu, 0.3).gram(X[:n])
        assert np.all(np.diag(K) == 1.0)
        K = MaternKernel(nu, 0.3, normalize=False).gram(X[:n])
        assert np.all(np.diag(K) == MaternKernel(nu, 0.3, normalize=False).phi_at_one(q=5))


def test_exact_diagonal_with_a_learnable_lengthscale():
    torch = pytest.importorskip("torch")
    X = torch.from_numpy(sample_uniform(50, q=3, rng=6))
    for nu in (1.5, math.inf):
        ell = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
        K = MaternKernel(nu, ell).gram(X)
        assert torch.all(torch.diagonal(K) == 1.0)
        K.sum().backward()
        assert ell.grad is not None and torch.isfinite(ell.grad)


# ---- gradients in the lengthscale through the tables -----------------------------------------------------------------


@pytest.mark.parametrize("nu, normalize", [(1.5, True), (0.5, False), (math.inf, True), (math.inf, False)])
def test_lengthscale_gradient_through_the_tables(nu, normalize):
    """A call with 2^15 points reads the tables (the profile and its derivative in c, or in the heat time) and gives
    the value and the gradient of the direct route (small calls)."""
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(_grid(matern._TABLE_MIN_POINTS, seed=7))
    ell = torch.tensor(0.2 if nu < math.inf else 0.05, dtype=torch.float64, requires_grad=True)
    kernel = MaternKernel(nu, ell, normalize=normalize)
    assert matern._use_table(kernel._plan(3), t, None)
    w = torch.from_numpy(np.random.default_rng(8).standard_normal(t.shape))
    big = kernel.profile(t, q=3, validate=False)
    (grad_big,) = torch.autograd.grad((w * big).sum(), ell)
    values, grad_small = [], torch.zeros((), dtype=torch.float64)
    for tc, wc in zip(torch.chunk(t, 4), torch.chunk(w, 4)):
        small = kernel.profile(tc, q=3, validate=False)
        values.append(small.detach())
        grad_small += torch.autograd.grad((wc * small).sum(), ell)[0]
    scale = float(torch.max(torch.abs(torch.cat(values))))
    np.testing.assert_allclose(big.detach().numpy(), torch.cat(values).numpy(), rtol=0, atol=1e-11 * scale)
    assert float(grad_big) == pytest.approx(float(grad_small), rel=1e-9)


def test_table_type():
    table = tabulate(np.cos, scale=1.0, tol=1e-14)
    assert isinstance(table, ChebyshevTable) and table.degree == 20 and table.intervals >= 16


EXTENDED_CASES = [
    (0.5, 0.01, 3),
    (1.0, 0.02, 5),
    (1.5, 0.01, 10),
    (2.5, 0.02, 2),
    (math.inf, 0.01, 3),
    (2.0, 0.02, 100),
]


@pytest.mark.parametrize("nu, ell, q", EXTENDED_CASES)
def test_extended_tables_against_the_extended_route(nu, ell, q):
    """Small lengthscales: the table (built from double-double and long-double sums in u) against the same plan summed
    at the points t, within the table's bound, on a grid crowding t = 1 and t = -1."""
    plan, _, _ = _plan_and_table(nu, ell, q)
    assert plan.extended is not None
    ratio = _check_against_direct(nu, ell, q, 3000)
    assert ratio <= 1.0
