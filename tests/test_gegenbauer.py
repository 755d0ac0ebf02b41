"""Gegenbauer machinery against mpmath at 250 digits, exact integer arithmetic and hypothesis properties."""

import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
from _mpref import harmonic_dimension_mp, legendre_mp
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import eval_chebyt, eval_legendre

from dotkernels.gegenbauer import (
    harmonic_dimension,
    legendre,
    legendre_all,
    legendre_series,
    legendre_series_derivative,
    legendre_to_monomial,
    log_harmonic_dimension,
    monomial_to_legendre,
)
from dotkernels.quadrature import projected_quadrature

DIMENSIONS = [2, 3, 4, 7, 128, 4096, 32768, 65536]


@pytest.mark.parametrize("q", DIMENSIONS)
def test_legendre_against_mpmath(q):
    ts = [-1.0, 0.0, 1.0, 1 / math.sqrt(q), 3 / math.sqrt(q), -0.77, 0.31]
    ts = np.array([t for t in ts if abs(t) <= 1])
    degrees = [0, 1, 2, 3, 7, 31, 100, 200]
    values = legendre_all(200, q, ts)
    for l in degrees:
        single = legendre(l, q, ts)
        np.testing.assert_array_equal(single, values[l])
        for t, v in zip(ts, single):
            ref = legendre_mp(l, q, t)
            # relative 1e-13, absolute near a zero of the polynomial (where the relative error is unbounded)
            assert abs(v - ref) <= 1e-13 * abs(ref) + 2e-16, (q, l, t, v, ref)


def test_special_cases_against_scipy():
    t = np.linspace(-1, 1, 101)
    for l in range(12):
        np.testing.assert_allclose(legendre(l, 2, t), eval_chebyt(l, t), atol=1e-14)
        np.testing.assert_allclose(legendre(l, 3, t), eval_legendre(l, t), atol=1e-14)


def test_large_q_tends_to_monomial():
    t = np.linspace(-1, 1, 11)
    for l in range(6):
        err = np.max(np.abs(legendre(l, 10**7, t) - t**l))
        assert err <= 2 * l * l / 10**7 + 1e-15  # P_{l,q} - t^l = O(l^2 / q)


def test_harmonic_dimension_exact():
    for q in [2, 3, 4, 10, 128]:
        assert harmonic_dimension(q, 0) == 1
        assert harmonic_dimension(q, 1) == q
        assert harmonic_dimension(q, 2) == (q - 1) * (q + 2) // 2
    for l in range(1, 30):
        assert harmonic_dimension(2, l) == 2
        assert harmonic_dimension(3, l) == 2 * l + 1
    # N(q, l) = C(l+q-1, q-1) - C(l+q-3, q-1): dimension of harmonic polynomials, independent formula
    for q in [3, 5, 17, 300]:
        for l in range(0, 25):
            expected = math.comb(l + q - 1, q - 1) - (math.comb(l + q - 3, q - 1) if l >= 2 else 0)
            assert harmonic_dimension(q, l) == expected


@pytest.mark.parametrize("q", [2, 3, 64, 4096, 65536])
def test_log_harmonic_dimension(q):
    degrees = np.array([0, 1, 2, 5, 50, 300])
    got = log_harmonic_dimension(q, degrees)
    for l, g in zip(degrees, got):
        ref = mp.log(harmonic_dimension_mp(q, int(l)))
        assert abs(g - float(ref)) <= 1e-14 * max(1.0, abs(float(ref)))
    assert log_harmonic_dimension(q, 3) == pytest.approx(float(mp.log(harmonic_dimension(q, 3))), rel=1e-15)


@given(
    q=st.integers(2, 70000),
    l=st.integers(0, 60),
    t=st.floats(-1.0, 1.0, allow_nan=False),
)
def test_bounded_and_normalised(q, l, t):
    assert legendre(l, q, 1.0) == pytest.approx(1.0, abs=1e-13)
    assert abs(float(legendre(l, q, t))) <= 1.0 + 1e-13
    assert float(legendre(l, q, -1.0)) == pytest.approx((-1) ** l, abs=1e-12)


@given(q=st.integers(2, 5000), L=st.integers(1, 25))
def test_orthogonality_under_quadrature(q, L):
    x, w = projected_quadrature(L + 2, q)
    P = legendre_all(L, q, x)
    G = (P * w) @ P.T
    n = np.exp(log_harmonic_dimension(q, np.arange(L + 1)))
    np.testing.assert_allclose(G * np.sqrt(np.outer(n, n)), np.eye(L + 1), atol=1e-12)


@given(
    coefficients=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=12),
    q=st.sampled_from([2, 3, 5, 100, 65536]),
)
def test_series_and_derivative(coefficients, q):
    t = np.linspace(-1, 1, 9)
    direct = sum(c * legendre(l, q, t) for l, c in enumerate(coefficients))
    scale = 1 + sum(abs(c) for c in coefficients)
    np.testing.assert_allclose(legendre_series(coefficients, q, t), direct, atol=1e-13 * scale)
    # derivative against mpmath's numerical differentiation of the mpmath polynomials at interior points
    for t0 in (-0.6, 0.05, 0.7):
        ref = mp.diff(lambda s: mp.fsum(c * legendre_mp(l, q, s) for l, c in enumerate(coefficients)), t0)
        got = legendre_series_derivative(coefficients, q, t0)
        assert abs(got - float(ref)) <= 1e-11 * scale * max(1, len(coefficients) ** 2)


def test_basis_conversions_exact_and_float():
    # P_3 in q = 3 is (5 t^3 - 3 t) / 2; P_2 in general q is (q t^2 - 1) / (q - 1)
    assert legendre_to_monomial([0, 0, 0, 1], 3, exact=True) == [0, Fraction(-3, 2), 0, Fraction(5, 2)]
    for q in [2, 3, 7, 100]:
        assert legendre_to_monomial([0, 0, 1], q, exact=True) == [Fraction(-1, q - 1), 0, Fraction(q, q - 1)]
        p4 = legendre_to_monomial([0, 0, 0, 0, 1], q, exact=True)
        assert p4[4] == Fraction((q + 2) * (q + 4), q * q - 1) and p4[0] == Fraction(3, q * q - 1)
    rng = np.random.default_rng(0)
    for q in [2, 3, 9]:
        c = [Fraction(int(v), 7) for v in rng.integers(-9, 9, size=7)]
        assert legendre_to_monomial(monomial_to_legendre(c, q, exact=True), q, exact=True) == c
        t = np.linspace(-1, 1, 13)
        a = monomial_to_legendre([float(v) for v in c], q)
        np.testing.assert_allclose(legendre_series(a, q, t), np.polyval([float(v) for v in c[::-1]], t), atol=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: legendre(2, 1, 0.5), "q must be"),
        (lambda: legendre(-1, 3, 0.5), "l must be"),
        (lambda: legendre(1.5, 3, 0.5), "l must be"),
        (lambda: legendre(2, 3, 1.5), "t must lie in"),
        (lambda: legendre(2, 3, np.array([0.1, np.nan])), "NaN"),
        (lambda: harmonic_dimension(1, 2), "q must be"),
        (lambda: harmonic_dimension(3, -2), "l must be"),
        (lambda: legendre_series([], 3, 0.5), "coefficients"),
        (lambda: legendre_series([1.0, np.inf], 3, 0.5), "finite"),
        (lambda: projected_quadrature(0, 3), "n must be"),
        (lambda: legendre(2, "3", 0.5), "q must be"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_rounding_outside_interval_is_accepted():
    assert np.isfinite(legendre(5, 3, 1.0 + 1e-15))
