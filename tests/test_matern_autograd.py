"""Gradients in t through the tabulated Matérn and heat profiles (torch autograd, jax), and jax.jit.

Large calls read a table of the profile (dotkernels.kernels._tabulated); with a gradient in t they still do, and the
derivative comes from the table of the derivative (nu > 1, the heat kernel) or of its bounded part plus closed forms
(nu <= 1). These tests hold the gradients to the direct derivative series (an independent route: Clenshaw's sum of
the derivative coefficients plus the references' closed-form derivatives) within the tables' stated bounds, to
finite differences, and check the route taken by value identity with the table and by counting calls. Most tests
lower the table route's threshold of points (a module constant) so that a few hundred points take it; one Gram
matrix of 200 points takes it at the real threshold.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import pytest
from array_api_compat import array_namespace
from hypothesis import given, settings
from hypothesis import strategies as st

from dotkernels import MaternKernel, SpectrumAccuracyWarning, sample_uniform
from dotkernels.kernels import _autograd, _tabulated, matern

torch = pytest.importorskip("torch")

# (nu, lengthscale, q): heads of 92 to 16385 terms (all above the table's 64), nu below, at and above 1
CASES = [
    (0.5, 0.5, 3),
    (0.7, 0.4, 3),
    (1.0, 0.5, 3),
    (1.5, 0.5, 3),
    (2.5, 0.3, 3),
    (1.5, 0.2, 5),
    (0.5, 0.3, 10),
    (math.inf, 0.1, 3),
]
IDS = [f"nu={nu}-ell={ell}-q={q}" for nu, ell, q in CASES]


@contextlib.contextmanager
def _counting_table_evaluations():
    """The shapes of the points each ChebyshevTable.evaluate call receives while the block runs."""
    calls = []
    original = _tabulated.ChebyshevTable.evaluate

    def counted(self, x, xp):
        calls.append(x.shape)
        return original(self, x, xp)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(_tabulated.ChebyshevTable, "evaluate", counted)
        yield calls


@pytest.fixture
def small_calls(monkeypatch):
    """The table route from 8 points on (the rule is otherwise unchanged)."""
    monkeypatch.setattr(matern, "_TABLE_MIN_POINTS", 8)


@pytest.fixture
def direct_only(monkeypatch):
    """A function that runs its argument with the table route switched off."""

    def run(fn, *args):
        with monkeypatch.context() as m:
            m.setattr(matern, "_TABLE_MIN_POINTS", 1 << 62)
            return fn(*args)

    return run


def _grid(n: int, seed: int = 0) -> np.ndarray:
    """n points of [-1, 1): t = -1, even, random, and crowding t = 1 (1 - t down to 1e-12) and t = -1."""
    rng = np.random.default_rng(seed)
    k = n // 4
    near = 10.0 ** rng.uniform(-12, 0, k)
    rest = rng.uniform(-1, 1, n - 3 * k - 1)
    return np.concatenate([[-1.0], np.linspace(-0.999, 0.999, k), rest, 1.0 - near, -1.0 + near])


def _kernel(nu, ell, q):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpectrumAccuracyWarning)
        kernel = MaternKernel(nu, ell)
        return kernel, kernel._plan(q)


def _torch_gradient(kernel, t, q):
    tt = torch.tensor(t, dtype=torch.float64, requires_grad=True)
    value = kernel.profile(tt, q=q)
    (grad,) = torch.autograd.grad(value.sum(), tt)
    return value.detach().numpy(), grad.numpy()


def _rounding(kernel, q):
    """The rounding of an evaluation of the direct derivative series, relative to phi(1): Clenshaw's, about
    (L+1) eps sum |e'_l| (legendre_series, Accuracy), and the references' bounded part, a few eps of
    |w| 4^a (1 + 2a); twice that bounds two evaluations in different orders (numpy, torch, jax)."""
    plan = kernel._plan(q)
    first = matern.derivative_coefficients(plan.head, q=q)
    size = float(np.sum(np.abs(first))) + sum(abs(w) * 4.0**a * (1 + 2 * a) for a, w, _ in plan.refs)
    return 8 * matern._EPS * first.size * size / plan.total


def _table_error(kernel, nu, q):
    """The bound of the table the gradient reads, relative to phi(1): of phi' (nu > 1, heat) or of its bounded
    part (nu <= 1; the unbounded references' derivatives are added in closed form, as the direct series does)."""
    plan = kernel._plan(q)
    if nu > 1.0:
        return kernel._derivative_table(q).error / plan.total
    return _autograd.matern_bounded_derivative_table(kernel._c(), nu, q).error / plan.total


def _check_slope(grad, direct, kernel, nu, q):
    """|grad - direct| within the table's bound, the series' rounding, and 4 eps of the value (the references'
    unbounded powers near t = 1)."""
    bound = _table_error(kernel, nu, q) + _rounding(kernel, q)
    bound = bound + 4 * matern._EPS * np.abs(direct)
    deviation = np.abs(grad - direct)
    assert np.all(deviation <= bound), (float(np.max(deviation / bound)), np.argmax(deviation / bound))


# ---- torch ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nu, ell, q", CASES, ids=IDS)
def test_torch_gradient_in_t_against_the_direct_derivative(small_calls, nu, ell, q):
    kernel, plan = _kernel(nu, ell, q)
    t = _grid(2000)
    value, grad = _torch_gradient(kernel, t, q)
    # the table's values (evaluated by torch), bit for bit
    tt = torch.from_numpy(t)
    np.testing.assert_array_equal(value, kernel._table(q).evaluate(tt, array_namespace(tt)).numpy() / plan.total)
    direct = matern._plan_derivative(plan, t, np, q) / plan.total  # the derivative series, summed directly
    _check_slope(grad, direct, kernel, nu, q)


@pytest.mark.parametrize("nu", [0.5, 1.5, math.inf])
def test_torch_backward_after_the_lengthscale_changed(small_calls, nu):
    """The table route's backward pass differentiates the profile of the forward pass: a lengthscale changed in
    between (an optimiser step before backward) is not read."""
    t = _grid(400)
    kernel = MaternKernel(nu, 0.5)
    tt = torch.tensor(t, requires_grad=True)
    out = kernel.profile(tt, q=3)
    kernel.lengthscale = 0.3
    (grad,) = torch.autograd.grad(out.sum(), tt)
    _, expected = _torch_gradient(MaternKernel(nu, 0.5), t, 3)
    np.testing.assert_array_equal(grad.numpy(), expected)


@pytest.mark.parametrize("nu, ell, q", [(0.5, 0.5, 3), (1.5, 0.5, 3), (2.5, 0.3, 3), (math.inf, 0.1, 3)])
def test_torch_gradient_in_t_against_finite_differences(small_calls, nu, ell, q):
    """Fourth-order central differences of the direct profile at h = 5e-4 on (-0.9, 0.9): truncation
    h^4/30 max|phi^(5)| = 2.1e-15 max|phi^(5)| and rounding 3 profile_error / (2 h) = 3e3 profile_error, below 1e-8
    for these kernels."""
    kernel, plan = _kernel(nu, ell, q)
    t = np.linspace(-0.9, 0.9, 64)
    _, grad = _torch_gradient(kernel, t, q)
    h = 5e-4

    def f(x):
        return matern._plan_profile(plan, x, np, q) / plan.total

    fd = (8 * (f(t + h) - f(t - h)) - (f(t + 2 * h) - f(t - 2 * h))) / (12 * h)
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-8)


@pytest.mark.parametrize("nu, ell", [(0.5, 0.5), (1.5, 0.5), (math.inf, 0.1)])
def test_torch_gradcheck_in_t_and_the_lengthscale_together(small_calls, nu, ell):
    t = torch.tensor(np.linspace(-0.95, 0.95, 8), dtype=torch.float64, requires_grad=True)
    p = torch.tensor(ell, dtype=torch.float64, requires_grad=True)
    with _counting_table_evaluations() as calls:
        MaternKernel(nu, p).profile(t, q=3)
    assert len(calls) == 2  # the profile and the shifted (lengthscale) profile, both from tables
    assert torch.autograd.gradcheck(lambda t, p: MaternKernel(nu, p).profile(t, q=3), (t, p))
    assert torch.autograd.gradcheck(lambda t, p: MaternKernel(nu, p).derivative(t, q=3), (t, p))


@pytest.mark.parametrize("nu, ell", [(0.5, 0.5), (1.5, 0.5), (2.5, 0.3), (math.inf, 0.1)])
def test_torch_second_derivatives_are_those_of_the_direct_route(small_calls, direct_only, nu, ell):
    """create_graph=True: the gradient's graph is the direct route's, so second derivatives are exact (gradgradcheck)
    and equal to the direct route's; derivative() with a gradient in t reads the derivative table and differentiates
    the direct derivative series."""
    t = torch.tensor(np.linspace(-0.95, 0.95, 8), dtype=torch.float64, requires_grad=True)
    kernel = MaternKernel(nu, ell)
    assert torch.autograd.gradgradcheck(lambda t: kernel.profile(t, q=3), (t,))

    def second(t):
        (g,) = torch.autograd.grad(kernel.profile(t, q=3).sum(), t, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), t)
        return h

    np.testing.assert_allclose(second(t), direct_only(second, t), rtol=1e-12, atol=1e-12)
    if nu > 1.0:
        d = kernel.derivative(t, q=3)
        (h,) = torch.autograd.grad(d.sum(), t)
        np.testing.assert_allclose(h, direct_only(second, t), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nu", [0.5, 0.7, 1.0])
def test_torch_gradient_at_t_equal_one(small_calls, direct_only, nu):
    """nu <= 1: phi' is infinite at t = 1 (logarithmic at nu = 1). There the gradient is the head's derivative,
    sum_l e'_l (the unbounded references' derivatives counted 0 at their zero; read from the table of the bounded
    part), finite, as torch autograd of the direct route gives; a zero upstream gradient gives 0, never NaN."""
    kernel, plan = _kernel(nu, 0.5, 3)
    t0 = np.array([1.0] * 16 + [0.5] * 16)
    weights = torch.tensor([0.0] * 8 + [1.0] * 24, dtype=torch.float64)

    def grad_of(t):
        tt = torch.tensor(t, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad((kernel.profile(tt, q=3) * weights).sum(), tt)
        return g.numpy()

    got = grad_of(t0)
    assert np.all(np.isfinite(got)) and np.all(got[:8] == 0.0)
    head_slope = math.fsum(matern.derivative_coefficients(plan.head, q=3)) / plan.total
    bound = _table_error(kernel, nu, 3) + _rounding(kernel, 3)
    np.testing.assert_allclose(got[8:16], head_slope, rtol=0, atol=bound)
    np.testing.assert_allclose(got, direct_only(grad_of, t0), rtol=0, atol=bound)


@pytest.mark.parametrize("nu", [0.5, 1.5])
def test_gram_with_points_that_require_grad_takes_the_table_route(direct_only, nu):
    """n = 200 points (40000 inner products, above the threshold of 32768): the Gram matrix with X and the
    lengthscale requiring grad is the table's, bit for bit, without a direct sum (but of phi(-1) and phi(1) for the
    corner of nu = 1/2); its gradients in X and in the lengthscale are the direct route's within the tables'
    bounds."""
    ell, q, n = 0.5, 3, 200
    X0 = torch.from_numpy(sample_uniform(n, q=q, rng=0))
    W = torch.from_numpy(np.random.default_rng(1).standard_normal((n, n)))

    def loss_and_grads():
        X = X0.clone().requires_grad_(True)
        p = torch.tensor(ell, dtype=torch.float64, requires_grad=True)
        K = MaternKernel(nu, p).gram(X)
        gx, gp = torch.autograd.grad((K * W).sum(), (X, p))
        return K.detach(), gx, gp

    direct_calls = []

    def counted(function):
        def run(*args):
            direct_calls.append(math.prod(args[1].shape))
            return function(*args)

        return run

    with pytest.MonkeyPatch.context() as m:
        m.setattr(matern, "_plan_profile", counted(matern._plan_profile))
        m.setattr(matern, "_plan_derivative", counted(matern._plan_derivative))
        K, gx, gp = loss_and_grads()
    assert all(size <= 2 for size in direct_calls)
    np.testing.assert_array_equal(K, MaternKernel(nu, ell).gram(X0))  # the no-grad call (the table route)
    K_direct, gx_direct, gp_direct = direct_only(loss_and_grads)
    kernel, plan = _kernel(nu, ell, q)
    assert float(torch.max(torch.abs(K - K_direct))) <= kernel.profile_error(q=q)
    # dL/dX_i = sum_j (W_ij phi'(G_ij) + W_ji phi'(G_ji)) X_j, |X_j| <= 1: each phi' within the derivative
    # table's bound plus the rounding of the direct derivative series, and the sums' rounding (n eps of the sum of
    # the terms' sizes)
    weights = float(torch.max(torch.sum(torch.abs(W) + torch.abs(W.T), dim=1)))
    G = (X0 @ X0.T).numpy()
    top = float(np.max(np.abs(matern._plan_derivative(plan, G[~np.eye(n, dtype=bool)], np, q)))) / plan.total
    slope = _table_error(kernel, nu, q) + _rounding(kernel, q) + 4 * matern._EPS * top
    bound_x = weights * (slope + 2 * n * matern._EPS * top)
    assert float(torch.max(torch.abs(gx - gx_direct))) <= bound_x
    # dL/dell = sum_ij W_ij d delta/d ell (ratio D(t) / Z - F(t) S / Z^2), delta = c - c0, D and F tabulated
    shifted = kernel._plan(q, shift=1)
    s = nu + 0.5 * (q - 1)
    ratio = -s * math.exp(shifted.log_scale - plan.log_scale)
    d_delta = 4.0 * nu / ell**3
    term = abs(ratio) * kernel._table(q, 1).error / plan.total
    term += abs(shifted.total * ratio) * kernel._table(q).error / plan.total**2
    # and the sum's rounding: n^2 eps of sum |W_ij dK_ij/d ell|, |D| <= D(1) and |F| <= F(1) (positive definite)
    size = d_delta * 2 * abs(shifted.total * ratio) / plan.total
    bound_p = (d_delta * term + 2 * n * n * matern._EPS * size) * float(torch.sum(torch.abs(W)))
    assert abs(float(gp - gp_direct)) <= bound_p


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=16, max_size=64),
    st.sampled_from([(0.5, 0.5, 3), (1.5, 0.5, 3), (math.inf, 0.1, 3)]),
)
def test_torch_gradient_property(values, case):
    """At any points of [-1, 1], the table route's gradient is the direct derivative within the stated bound."""
    nu, ell, q = case
    t = np.array(values)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(matern, "_TABLE_MIN_POINTS", 16)
        kernel, plan = _kernel(nu, ell, q)
        _, grad = _torch_gradient(kernel, t, q)
    inside = t < 1.0  # at t = 1 exactly the convention of test_torch_gradient_at_t_equal_one (nu <= 1)
    direct = matern._plan_derivative(plan, t[inside], np, q) / plan.total
    _check_slope(grad[inside], direct, kernel, nu, q)


# ---- jax ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def jax(jax_x64):
    """jax with float64 arrays, the setting restored afterwards (see conftest)."""
    return jax_x64


@pytest.mark.parametrize("nu, ell, q", [(0.5, 0.5, 3), (1.0, 0.5, 3), (2.5, 0.3, 3), (math.inf, 0.1, 3)])
def test_jax_grad_and_jit_on_the_table_route(jax, small_calls, nu, ell, q):
    kernel, plan = _kernel(nu, ell, q)
    t = _grid(1000)
    t = t[t < 1.0]
    tj = jax.numpy.asarray(t)

    def total(x):
        return kernel.profile(x, q=q, validate=False).sum()

    with _counting_table_evaluations() as calls:
        grad = np.asarray(jax.grad(total)(tj))
    assert len(calls) == 2  # the profile's table and its derivative's (of its bounded part for nu <= 1)
    direct = matern._plan_derivative(plan, t, np, q) / plan.total
    _check_slope(grad, direct, kernel, nu, q)
    _check_slope(np.asarray(jax.jit(jax.grad(total))(tj)), direct, kernel, nu, q)
    values = np.asarray(jax.jit(lambda x: kernel.profile(x, q=q))(tj))
    np.testing.assert_allclose(
        values, matern._plan_profile(plan, t, np, q) / plan.total, rtol=0, atol=kernel.profile_error(q=q)
    )


@pytest.mark.parametrize("nu, ell, q", [(0.5, 0.5, 3), (2.5, 0.3, 3), (math.inf, 0.1, 3)])
def test_jax_second_derivatives_on_the_table_route_are_the_direct_routes(jax, small_calls, nu, ell, q):
    """Nested jax.grad (diagonal: the profile is elementwise) differentiates the direct route, not the tables."""
    kernel, _ = _kernel(nu, ell, q)

    def second(x):
        return jax.grad(lambda y: jax.grad(lambda z: kernel.profile(z, q=q, validate=False).sum())(y).sum())(x)

    inner = jax.numpy.asarray(np.linspace(-0.95, 0.95, 16))
    got = np.asarray(second(inner))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(matern, "_TABLE_MIN_POINTS", 1 << 62)
        ref = np.asarray(second(inner))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_jax_large_call_gradient_in_t_and_the_lengthscale(jax):
    """32768 points (the real threshold): jax.grad in t and in a jax lengthscale through the tables, against the
    direct derivative series and central differences in the lengthscale (error h^2/6 |d^3/d ell^3| + rounding,
    below 1e-8 relative at h = 1e-5 here)."""
    nu, ell, q = 1.5, 0.5, 3
    kernel, plan = _kernel(nu, ell, q)
    t = np.resize(_grid(4096), matern._TABLE_MIN_POINTS)
    t = np.where(t < 1.0, t, 0.0)
    tj = jax.numpy.asarray(t)
    grad = np.asarray(jax.grad(lambda x: kernel.profile(x, q=q, validate=False).sum())(tj))
    direct = matern._plan_derivative(plan, t, np, q) / plan.total
    _check_slope(grad, direct, kernel, nu, q)

    def f(p):
        return MaternKernel(nu, p).profile(tj, q=q, validate=False).sum()

    g = float(jax.grad(f)(jax.numpy.asarray(ell)))
    h = 1e-5
    fd = (float(f(ell + h)) - float(f(ell - h))) / (2 * h)
    assert g == pytest.approx(fd, rel=1e-8)


def test_jax_jit_of_the_direct_route_with_a_long_head(jax):
    """The direct route under jax.jit (a head of 16385 terms): compiled as a scan, the numpy values to rounding."""
    kernel, plan = _kernel(0.7, 0.4, 3)
    assert plan.head.size == 16385
    t = np.linspace(-1, 1, 101)
    got = np.asarray(jax.jit(lambda x: kernel.profile(x, q=3))(jax.numpy.asarray(t)))
    ref = kernel.profile(t, q=3)
    size = float(np.sum(np.abs(plan.head))) + sum(abs(w) * 4.0**a for a, w, _ in plan.refs)
    rounding = 8 * matern._EPS * plan.head.size * size / plan.total  # two evaluations' rounding, as _rounding
    np.testing.assert_allclose(got, ref, rtol=0, atol=rounding)
    d = np.asarray(jax.jit(lambda x: kernel.derivative(x, q=3))(jax.numpy.asarray(t[1:-1])))
    _check_slope(d, kernel.derivative(t[1:-1], q=3), kernel, 0.7, 3)


def test_a_lengthscale_traced_by_jit_is_a_type_error(jax):
    t = jax.numpy.linspace(-1.0, 1.0, 5)
    with pytest.raises(TypeError, match="lengthscale"):
        jax.jit(lambda p: MaternKernel(1.5, p).profile(t, q=3))(0.5)
    # a jax array closed over: its value is not read under jit either
    p = jax.numpy.asarray(0.5)
    with pytest.raises(TypeError, match="lengthscale"):
        jax.jit(lambda x: MaternKernel(1.5, p).profile(x, q=3))(t)
    # a Python float, or a static argument
    got = jax.jit(lambda x: MaternKernel(1.5, 0.5).profile(x, q=3))(t)
    static = jax.jit(lambda x, ell: MaternKernel(1.5, ell).profile(x, q=3), static_argnums=1)(t, 0.5)
    assert np.array_equal(np.asarray(static), np.asarray(got))
    ref = MaternKernel(1.5, 0.5).profile(np.asarray(t), q=3)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=0, atol=MaternKernel(1.5, 0.5).profile_error(q=3))


@pytest.mark.parametrize("nu", [0.5, 1.0])
def test_jax_gradient_at_t_equal_one_is_the_torch_one(jax, small_calls, nu):
    kernel, _ = _kernel(nu, 0.5, 3)
    t = np.array([1.0] * 16 + [0.5] * 16)
    weights = np.array([0.0] * 8 + [1.0] * 24)
    got = np.asarray(jax.grad(lambda x: (kernel.profile(x, q=3) * weights).sum())(jax.numpy.asarray(t)))
    tt = torch.tensor(t, dtype=torch.float64, requires_grad=True)
    (ref,) = torch.autograd.grad((kernel.profile(tt, q=3) * torch.from_numpy(weights)).sum(), tt)
    assert np.all(np.isfinite(got)) and np.all(got[:8] == 0.0)
    np.testing.assert_allclose(got, ref.numpy(), rtol=0, atol=_rounding(kernel, 3))
