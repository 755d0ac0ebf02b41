"""Gegenbauer machinery against mpmath at high precision, exact integer arithmetic and hypothesis properties.

Each test holds a function to the accuracy its docstring states, on a grid that includes the edges of the domain
(t = +-1, q up to 65536, degrees up to 10^5).
"""

import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
from _mpref import harmonic_dimension_mp, legendre_mp, legendre_mp_recurrence
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import eval_chebyt, eval_legendre

from dotkernels.gegenbauer import (
    derivative_coefficients,
    harmonic_dimension,
    legendre,
    legendre_all,
    legendre_series,
    legendre_series_derivative,
    legendre_to_monomial,
    log_harmonic_dimension,
    monomial_to_legendre,
    recurrence_coefficients,
)
from dotkernels.quadrature import projected_quadrature

EPS = np.finfo(np.float64).eps
DIMENSIONS = [2, 3, 4, 7, 128, 4096, 32768, 65536]


def _legendre_bound(l, q, eps=EPS):
    """The documented absolute error bound of legendre()."""
    return eps * (4 * (l + 1) + 2 * l * (l + q - 2) / (q - 1))


# ---------------------------------------------------------------------------------------------------------------
# recurrence coefficients


@pytest.mark.parametrize("q", [2, 3, 5, 64, 65536])
def test_recurrence_coefficients_exact_rationals(q):
    alpha, beta = recurrence_coefficients(40, q=q)
    assert alpha.shape == beta.shape == (41,) and alpha.dtype == np.float64
    assert (alpha[0], beta[0]) == (1.0, 0.0)
    for k in range(1, 41):
        # correctly rounded quotients: float(Fraction) rounds correctly
        assert alpha[k] == float(Fraction(2 * k + q - 2, k + q - 2))
        assert beta[k] == float(Fraction(k, k + q - 2))
    assert not alpha.flags.writeable


@pytest.mark.parametrize("q", [2, 3, 9, 1000])
def test_recurrence_generates_gegenbauer(q):
    # the recurrence's polynomials against the explicit Gegenbauer sum (mpmath), in exact-enough arithmetic
    alpha, beta = recurrence_coefficients(6, q=q)
    t = mp.mpf("0.37")
    with mp.workdps(50):
        values = [mp.mpf(1), t]
        for k in range(1, 6):
            values.append(mp.mpf(alpha[k]) * t * values[k] - mp.mpf(beta[k]) * values[k - 1])
        for l in range(7):
            assert abs(values[l] - legendre_mp(l, q, t)) < 1e-14


# ---------------------------------------------------------------------------------------------------------------
# evaluation


@pytest.mark.parametrize("q", DIMENSIONS)
def test_legendre_against_mpmath(q):
    ts = [-1.0, 0.0, 1.0, 1 / math.sqrt(q), 3 / math.sqrt(q), -0.77, 0.31, 1 - 1e-9, -1 + 1e-12]
    ts = np.array([t for t in ts if abs(t) <= 1])
    degrees = [0, 1, 2, 3, 7, 31, 100, 200]
    values = legendre_all(200, ts, q=q)
    assert values.shape == (201, ts.size)
    for l in degrees:
        single = legendre(l, ts, q=q)
        np.testing.assert_array_equal(single, values[l])
        for t, v in zip(ts, single):
            ref = legendre_mp(l, q, t)
            assert abs(v - ref) <= _legendre_bound(l, q), (q, l, t, v, ref)


@pytest.mark.parametrize("q", [2, 3, 5, 64, 65536])
@pytest.mark.parametrize("l", [1000, 5000])
def test_legendre_large_degree_against_mpmath(q, l):
    ts = np.array([-1.0, -0.999999, -0.4, 0.013, 0.5, 0.9999, 1.0])
    got = legendre(l, ts, q=q)
    for t, v in zip(ts, got):
        ref = legendre_mp_recurrence(l, q, t)
        assert abs(v - ref) <= _legendre_bound(l, q), (q, l, t, v, ref)


@given(q=st.integers(2, 70000), l=st.integers(0, 400), t=st.floats(-1.0, 1.0, allow_nan=False))
def test_legendre_bound_random(q, l, t):
    ref = legendre_mp_recurrence(l, q, t, dps=40)
    assert abs(legendre(l, t, q=q) - ref) <= _legendre_bound(l, q)


@pytest.mark.parametrize("q", [2, 3, 17, 65536])
def test_legendre_float32_within_its_eps(q):
    # the bound scales with the eps of t's dtype; the float32 input itself is the point of evaluation
    t32 = np.linspace(-1, 1, 41, dtype=np.float32)
    eps32 = float(np.finfo(np.float32).eps)
    for l in (0, 1, 5, 40, 200):
        got = legendre(l, t32, q=q)
        assert got.dtype == np.float32
        ref = np.array([float(legendre_mp_recurrence(l, q, float(t), dps=30)) for t in t32])
        assert np.all(np.abs(got.astype(np.float64) - ref) <= _legendre_bound(l, q, eps32)), (q, l)


def test_special_cases_against_scipy():
    t = np.linspace(-1, 1, 101)
    for l in range(12):
        np.testing.assert_allclose(legendre(l, t, q=2), eval_chebyt(l, t), atol=1e-14)
        np.testing.assert_allclose(legendre(l, t, q=3), eval_legendre(l, t), atol=1e-14)


def test_large_q_tends_to_monomial():
    t = np.linspace(-1, 1, 11)
    for l in range(6):
        err = np.max(np.abs(legendre(l, t, q=10**7) - t**l))
        assert err <= 2 * l * l / 10**7 + 1e-15  # P_{l,q} - t^l = O(l^2 / q)


@given(q=st.integers(2, 70000), l=st.integers(0, 300))
def test_exact_at_the_ends(q, l):
    assert legendre(l, 1.0, q=q) == 1.0
    assert legendre(l, -1.0, q=q) == (-1.0) ** l


@given(q=st.integers(2, 70000), l=st.integers(0, 60), t=st.floats(-1.0, 1.0, allow_nan=False))
def test_bounded(q, l, t):
    assert abs(float(legendre(l, t, q=q))) <= 1.0 + _legendre_bound(l, q)


def test_scalars_come_back_as_numpy_scalars():
    for value in (
        legendre(0, 0.5, q=3),
        legendre(3, 0.5, q=3),
        legendre_series([1.0, 2.0], 0.5, q=3),
        legendre_series([1.0], 0.5, q=3),
        legendre_series_derivative([1.0, 2.0, 3.0], 0.5, q=4),
    ):
        assert isinstance(value, np.float64)
    assert legendre_all(2, 0.5, q=3).shape == (3,)


# ---------------------------------------------------------------------------------------------------------------
# harmonic dimensions


def test_harmonic_dimension_exact():
    for q in [2, 3, 4, 10, 128]:
        assert harmonic_dimension(0, q=q) == 1
        assert harmonic_dimension(1, q=q) == q
        assert harmonic_dimension(2, q=q) == (q - 1) * (q + 2) // 2
    for l in range(1, 30):
        assert harmonic_dimension(l, q=2) == 2
        assert harmonic_dimension(l, q=3) == 2 * l + 1
    # N(q, l) = C(l+q-1, q-1) - C(l+q-3, q-1): dimension of harmonic polynomials, independent formula
    for q in [3, 5, 17, 300]:
        for l in range(0, 25):
            expected = math.comb(l + q - 1, q - 1) - (math.comb(l + q - 3, q - 1) if l >= 2 else 0)
            assert harmonic_dimension(l, q=q) == expected
    assert harmonic_dimension(3.0, q=4.0) == harmonic_dimension(3, q=4)  # integral floats are integers


def _log_n_mp(l, q):
    with mp.workdps(60):
        return mp.log(harmonic_dimension_mp(q, l)) if l else mp.mpf(0)


LOG_N_BOUND = 4 * EPS  # relative error of ln N stated in the docstring


@pytest.mark.parametrize("q", [2, 3, 4, 5, 20, 33, 34, 35, 64, 4096, 65535, 65536])
def test_log_harmonic_dimension_grid(q):
    degrees = np.array([0, 1, 2, 3, 5, 19, 31, 32, 33, 34, 50, 300, 2000, 65534, 65535, 65536, 65537, 10**5])
    got = log_harmonic_dimension(degrees, q=q)
    assert got.dtype == np.float64 and got.shape == degrees.shape
    for l, g in zip(degrees, got):
        ref = _log_n_mp(int(l), q)
        assert abs(mp.mpf(g) - ref) <= LOG_N_BOUND * abs(ref), (q, l, g, ref)
    assert got[0] == 0.0


def test_log_harmonic_dimension_reported_case_and_huge_sizes():
    # the case a cumulative log1p sum got wrong by 5e-12: now within a few ulp of ln N (~ 9e3)
    for l, q in [(2000, 65536), (10**9, 3), (10**9, 10**9), (7, 10**12), (10**6, 65536)]:
        ref = _log_n_mp(l, q)
        assert abs(mp.mpf(log_harmonic_dimension(l, q=q)) - ref) <= LOG_N_BOUND * abs(ref), (l, q)


@given(q=st.integers(2, 10**6), l=st.integers(0, 10**6))
def test_log_harmonic_dimension_random(q, l):
    ref = _log_n_mp(l, q)
    got = log_harmonic_dimension(l, q=q)
    assert isinstance(got, np.float64)
    assert abs(mp.mpf(got) - ref) <= LOG_N_BOUND * abs(ref)


@given(q=st.integers(2, 400), l=st.integers(0, 400))
def test_log_harmonic_dimension_matches_exact_integer(q, l):
    n = harmonic_dimension(l, q=q)
    exact_log = math.log(n)  # math.log of a Python int is correctly rounded to about 1 ulp
    assert abs(log_harmonic_dimension(l, q=q) - exact_log) <= LOG_N_BOUND * abs(exact_log) + 2 * EPS * abs(exact_log)


# ---------------------------------------------------------------------------------------------------------------
# series


@given(q=st.integers(2, 5000), L=st.integers(1, 25))
def test_orthogonality_under_quadrature(q, L):
    x, w = projected_quadrature(L + 2, q=q)
    P = legendre_all(L, x, q=q)
    G = (P * w) @ P.T
    n = np.exp(log_harmonic_dimension(np.arange(L + 1), q=q))
    np.testing.assert_allclose(G * np.sqrt(np.outer(n, n)), np.eye(L + 1), atol=1e-12)


@given(
    coefficients=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=30),
    q=st.sampled_from([2, 3, 5, 100, 65536]),
)
def test_series_against_mpmath(coefficients, q):
    t = np.array([-1.0, -0.93, -0.2, 0.0, 0.41, 0.999, 1.0])
    L = len(coefficients) - 1
    got = legendre_series(coefficients, t, q=q)
    bound = 4 * (L + 1) ** 2 * EPS * sum(abs(c) for c in coefficients)
    for t0, g in zip(t, got):
        with mp.workdps(40):
            ref = mp.fsum(c * legendre_mp_recurrence(l, q, t0, dps=40) for l, c in enumerate(coefficients))
        assert abs(g - ref) <= bound + 1e-300


@given(
    coefficients=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=12),
    q=st.sampled_from([2, 3, 5, 100, 65536]),
)
def test_derivative_against_mpmath(coefficients, q):
    L = len(coefficients) - 1
    scale = sum(abs(c) * l * (l + q - 2) / (q - 1) for l, c in enumerate(coefficients))
    bound = 4 * max(L, 1) ** 2 * EPS * scale + 1e-300
    for t0 in (-1.0, -0.6, 0.05, 0.7, 1.0):
        with mp.workdps(40):
            # term by term, so that tiny coefficients keep their digits beside large ones
            ref = mp.fsum(
                c * mp.diff(lambda s, l=l: legendre_mp_recurrence(l, q, s, dps=None), mp.mpf(t0))
                for l, c in enumerate(coefficients)
                if c
            )
        got = legendre_series_derivative(coefficients, t0, q=q)
        assert abs(got - ref) <= bound


def test_derivative_coefficients_closed_form():
    # d/dt P_{l,q} = l (l+q-2)/(q-1) P_{l-1,q+2}: exact rationals
    for q in [2, 3, 8]:
        a = [0.0] * 6
        a[5] = 1.0
        d = derivative_coefficients(a, q=q)
        assert d.tolist() == [0.0] * 4 + [float(Fraction(5 * (5 + q - 2), q - 1))]
    assert derivative_coefficients([3.0], q=3).tolist() == [0.0]


@given(
    coefficients=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40),
    q=st.integers(2, 10**6),
)
def test_derivative_coefficients_within_two_eps(coefficients, q):
    got = derivative_coefficients(coefficients, q=q)
    for l in range(1, len(coefficients)):
        exact = Fraction(coefficients[l]) * Fraction(l * (l + q - 2), q - 1)
        assert abs(Fraction(float(got[l - 1])) - exact) <= 2 * Fraction(EPS) * abs(exact)


def test_basis_conversions_exact_and_float():
    # P_3 in q = 3 is (5 t^3 - 3 t) / 2; P_2 in general q is (q t^2 - 1) / (q - 1)
    assert legendre_to_monomial([0, 0, 0, 1], q=3, exact=True) == [0, Fraction(-3, 2), 0, Fraction(5, 2)]
    for q in [2, 3, 7, 100]:
        assert legendre_to_monomial([0, 0, 1], q=q, exact=True) == [Fraction(-1, q - 1), 0, Fraction(q, q - 1)]
        p4 = legendre_to_monomial([0, 0, 0, 0, 1], q=q, exact=True)
        assert p4[4] == Fraction((q + 2) * (q + 4), q * q - 1) and p4[0] == Fraction(3, q * q - 1)
    rng = np.random.default_rng(0)
    for q in [2, 3, 9]:
        c = [Fraction(int(v), 7) for v in rng.integers(-9, 9, size=7)]
        assert legendre_to_monomial(monomial_to_legendre(c, q=q, exact=True), q=q, exact=True) == c
        t = np.linspace(-1, 1, 13)
        a = monomial_to_legendre([float(v) for v in c], q=q)
        expected = np.polyval([float(v) for v in c[::-1]], t)
        np.testing.assert_allclose(legendre_series(a, t, q=q), expected, atol=2**6 * EPS * 10)


def test_exact_basis_conversions_stay_exact_and_check_their_input():
    """exact=True: every float (float32 included) is converted exactly, integers beyond 2^53 stay exact, and bad
    input gives an error naming coefficients (it gave numpy's or Fraction's own messages, or returned floats)."""
    c32 = [np.float32(0.1), 0, 1]
    expected = [Fraction(float(np.float32(0.1))) - Fraction(1, 2), 0, Fraction(3, 2)]  # 0.1 + (3t^2 - 1)/2
    for got in (legendre_to_monomial(c32, q=3, exact=True), legendre_to_monomial(np.array(c32), q=3, exact=True)):
        assert got == expected and all(isinstance(v, (int, Fraction)) for v in got)
    big = np.array([2**60 + 1, 0, 3], dtype=np.int64)
    assert legendre_to_monomial(big, q=3, exact=True)[0] == 2**60 + 1 - Fraction(3, 2)
    for function in (legendre_to_monomial, monomial_to_legendre):
        for bad, error, match in [
            ([float("nan"), 1.0], ValueError, "coefficients must be finite"),
            ([1.0, float("inf")], ValueError, "coefficients must be finite"),
            (["a"], TypeError, "coefficients must be a 1-d sequence of real numbers"),
            ([[1, 2]], TypeError, "coefficients must be a 1-d sequence of real numbers"),
            ([1 + 2j], TypeError, "coefficients must be a 1-d sequence of real numbers"),
            ([], ValueError, "coefficients must be a non-empty"),
            (3.0, ValueError, "coefficients must be a non-empty"),
        ]:
            with pytest.raises(error, match=match):
                function(bad, q=3, exact=True)


@given(coefficients=st.lists(st.integers(-20, 20), min_size=1, max_size=10), q=st.integers(2, 50))
def test_float_conversion_within_stated_accuracy(coefficients, q):
    L = len(coefficients) - 1
    exact = legendre_to_monomial(coefficients, q=q, exact=True)
    got = legendre_to_monomial([float(c) for c in coefficients], q=q)
    bound = 2**L * EPS * sum(abs(c) for c in coefficients) * 4
    assert np.all(np.abs(got - np.array([float(e) for e in exact])) <= bound)


# ---------------------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: legendre(2, 0.5, q=1), "q must be"),
        (lambda: legendre(-1, 0.5, q=3), "degree must be"),
        (lambda: legendre(1.5, 0.5, q=3), "degree must be"),
        (lambda: legendre(2, 1.5, q=3), "t must lie in"),
        (lambda: legendre(2, np.array([0.1, np.nan]), q=3), "NaN"),
        (lambda: harmonic_dimension(2, q=1), "q must be"),
        (lambda: harmonic_dimension(-2, q=3), "degree must be"),
        (lambda: log_harmonic_dimension(np.array([1, -2]), q=3), "degree must"),
        (lambda: log_harmonic_dimension(np.array([1.5]), q=3), "degree must"),
        (lambda: legendre_series([], 0.5, q=3), "coefficients"),
        (lambda: legendre_series([1.0, np.inf], 0.5, q=3), "finite"),
        (lambda: projected_quadrature(0, q=3), "n must be"),
        (lambda: legendre(2, 0.5, q="3"), "q must be"),
        (lambda: recurrence_coefficients(-1, q=3), "degree must be"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_q_is_keyword_only():
    with pytest.raises(TypeError):
        legendre(2, 3, 0.5)
    with pytest.raises(TypeError):
        harmonic_dimension(3, 4)


def test_rounding_outside_interval_is_accepted():
    assert np.isfinite(legendre(5, 1.0 + 1e-15, q=3))


# ---------------------------------------------------------------------------------------------------------------
# torch: the in-place Clenshaw sum and its autograd function


def test_torch_series_gradients_in_coefficients_and_points():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    t_np = rng.uniform(-1.0, 1.0, (4, 6))
    coef_np = rng.uniform(-1.0, 1.0, 30)
    coef = torch.tensor(coef_np, requires_grad=True)
    t = torch.tensor(t_np, requires_grad=True)
    weights = torch.tensor(rng.standard_normal((4, 6)))
    value = legendre_series(coef, t, q=3)
    assert value.dtype == torch.float64 and value.shape == (4, 6)
    np.testing.assert_allclose(value.detach().numpy(), legendre_series(coef_np, t_np, q=3), rtol=1e-13, atol=1e-13)
    grad_coef, grad_t = torch.autograd.grad(value, (coef, t), weights)
    # d/da_l = sum(w * P_l(t)): scipy's Legendre polynomials, an independent evaluation
    expected = [np.sum(weights.numpy() * eval_legendre(l, t_np)) for l in range(30)]
    np.testing.assert_allclose(grad_coef.numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        grad_t.numpy(), weights.numpy() * legendre_series_derivative(coef_np, t_np, q=3), rtol=1e-12, atol=1e-11
    )


@pytest.mark.parametrize("q", [2, 7, 1000])
def test_torch_series_gradcheck_and_second_derivatives(q):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(q)
    coef = torch.tensor(rng.uniform(0.0, 1.0, 6), requires_grad=True)
    t = torch.tensor(rng.uniform(-0.95, 0.95, 5), requires_grad=True)

    def f(a, s):
        return legendre_series(a, s, q=q, validate=False)

    assert torch.autograd.gradcheck(f, (coef, t))
    assert torch.autograd.gradgradcheck(f, (coef, t))


def test_torch_series_keeps_only_its_inputs_for_the_backward_pass():
    # the sum of 5000 terms saves the coefficients and t, not one tensor per term (memory O(size of t))
    torch = pytest.importorskip("torch")
    t = torch.linspace(-1.0, 1.0, 2000, dtype=torch.float64, requires_grad=True)
    coef = 1.0 / np.arange(1, 5001) ** 2
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda x: saved.append(x.numel()) or x, lambda x: x):
        value = legendre_series(coef, t, q=3, validate=False)
    assert len(saved) <= 2 and sum(saved) <= 2000 + 5000
    (grad,) = torch.autograd.grad(value.sum(), t)
    np.testing.assert_allclose(
        grad.numpy(), legendre_series_derivative(coef, t.detach().numpy(), q=3), rtol=1e-11, atol=1e-9
    )


def test_torch_series_in_place_path_matches_numpy_at_high_degree():
    torch = pytest.importorskip("torch")
    t = np.linspace(-1.0, 1.0, 501)
    coef = np.random.default_rng(0).uniform(0.0, 1.0, 3000) / np.arange(1, 3001)
    for dtype, tol in [(torch.float64, 1e-12), (torch.float32, 1e-4)]:
        value = legendre_series(coef, torch.tensor(t, dtype=dtype), q=5)
        assert value.dtype == dtype
        np.testing.assert_allclose(value.numpy(), legendre_series(coef, t, q=5), rtol=tol, atol=tol * coef.sum())


def test_tensor_coefficients_that_require_grad_are_named_in_errors():
    torch = pytest.importorskip("torch")
    coef = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"coefficients .* requires grad.*t is a numpy"):
        legendre_series(coef, np.array([0.5]), q=3)
    for call in (
        lambda: derivative_coefficients(coef, q=3),
        lambda: legendre_to_monomial(coef, q=3),
        lambda: monomial_to_legendre(coef, q=3),
    ):
        with pytest.raises(TypeError, match="coefficients is a torch tensor that requires grad"):
            call()
    # without grad, a tensor of coefficients is host numbers like any other
    assert legendre_series(coef.detach(), 0.5, q=3) == pytest.approx(1 + 2 * 0.5 + 3 * (3 * 0.25 - 1) / 2)
    with pytest.raises(ValueError, match="coefficients"):
        legendre_series(torch.ones((2, 2), requires_grad=True), torch.tensor([0.5]), q=3)


def test_jax_series_gradient_in_the_coefficients():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    t = np.linspace(-0.9, 0.9, 7)
    grad = jax.grad(lambda a: legendre_series(a, jnp.asarray(t), q=3).sum())(jnp.asarray([0.5, 1.0, 2.0, 1.0]))
    expected = [np.sum(eval_legendre(l, t)) for l in range(4)]
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=1e-13, atol=1e-14)
