"""The projected-law quadrature and the log-space special functions against independent references."""

import mpmath as mp
import numpy as np
import pytest
from _mpref import harmonic_dimension_mp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import roots_jacobi

from dotkernels.quadrature import projected_density, projected_quadrature
from dotkernels.special import log_gamma_ratio, log_iv, log_rising


def _even_moment(q, k):
    # E_nu[t^(2k)] = (1/2)_k / (q/2)_k  ((1+t)/2 is Beta((q-1)/2, (q-1)/2))
    return float(mp.rf(mp.mpf(1) / 2, k) / mp.rf(mp.mpf(q) / 2, k))


@pytest.mark.parametrize("q", [2, 3, 5, 64, 512, 4096, 65536])
@pytest.mark.parametrize("n", [1, 7, 60, 400, 2000])
def test_rule_is_finite_and_exact_on_moments(q, n):
    x, w = projected_quadrature(n, q=q)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(w)) and np.all(w >= 0)
    assert np.all(np.diff(x) > 0) and np.all(np.abs(x) < 1)
    assert w.sum() == pytest.approx(1.0, abs=1e-13)
    for k in range(0, min(n, 12)):  # degree 2k <= 2n - 1
        assert w @ x ** (2 * k) == pytest.approx(_even_moment(q, k), rel=1e-12, abs=1e-300)
        assert abs(w @ x ** (2 * k + 1)) <= 1e-15


def _gauss_rule_mp(n, q, guesses, dps=40):
    """Nodes (zeros of P_{n,q}, polished by Newton from ``guesses``) and Christoffel weights
    w_i = 1 / sum_{k<n} N(q,k) P_{k,q}(x_i)^2 at ``dps`` digits."""
    with mp.workdps(dps):

        def values(x):
            p = [mp.mpf(1), x]
            d = [mp.mpf(0), mp.mpf(1)]
            for k in range(1, n):
                p.append(((2 * k + q - 2) * x * p[k] - k * p[k - 1]) / (k + q - 2))
                d.append(((2 * k + q - 2) * (p[k] + x * d[k]) - k * d[k - 1]) / (k + q - 2))
            return p, d

        nodes, weights = [], []
        for guess in guesses:
            x = mp.mpf(guess)
            for _ in range(4):
                p, d = values(x)
                x -= p[n] / d[n]
            p, _ = values(x)
            ns = [harmonic_dimension_mp(q, k) for k in range(n)]
            weights.append(1 / mp.fsum(ns[k] * p[k] ** 2 for k in range(n)))
            nodes.append(x)
        return nodes, weights


@pytest.mark.parametrize("q, n", [(3, 30), (5, 64), (64, 40), (4096, 50), (65536, 100), (65536, 12)])
def test_rule_against_mpmath(q, n):
    # the documented accuracy: nodes to a few eps absolute, weights to 1e-13 relative (tails included)
    x, w = projected_quadrature(n, q=q)
    nodes, weights = _gauss_rule_mp(n, q, x)
    eps = np.finfo(np.float64).eps
    for xi, wi, xr, wr in zip(x, w, nodes, weights):
        assert abs(xi - xr) <= 4 * eps, (xi, xr)
        assert abs(wi - wr) <= 1e-13 * wr, (wi, wr)


@given(q=st.integers(2, 70000), n=st.integers(1, 40), data=st.data())
def test_rule_integrates_polynomials_exactly(q, n, data):
    # a random polynomial of degree <= 2n - 1 in the P_{l,q} basis: its nu_q mean is its coefficient a_0
    degree = data.draw(st.integers(0, 2 * n - 1))
    coefficients = data.draw(st.lists(st.floats(-1, 1), min_size=degree + 1, max_size=degree + 1))
    x, w = projected_quadrature(n, q=q)
    from dotkernels.gegenbauer import legendre_series

    value = float(w @ legendre_series(coefficients, x, q=q))
    assert abs(value - coefficients[0]) <= 1e-12 * (1 + sum(abs(c) for c in coefficients))


def test_rule_matches_scipy_where_scipy_works():
    for q, n in [(3, 20), (5, 50), (64, 40), (300, 30)]:
        a = (q - 3) / 2
        xs, ws = roots_jacobi(n, a, a)
        assert np.all(np.isfinite(xs))
        x, w = projected_quadrature(n, q=q)
        np.testing.assert_allclose(x, xs, atol=1e-14)
        np.testing.assert_allclose(w, ws / ws.sum(), rtol=1e-11)


def test_scipy_fails_where_we_do_not():
    # the trap this module exists for: scipy returns NaN silently at large q and many nodes
    xs, _ = roots_jacobi(200, (65536 - 3) / 2, (65536 - 3) / 2)
    assert not np.all(np.isfinite(xs))
    x, w = projected_quadrature(200, q=65536)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(w))


def test_chebyshev_closed_forms():
    n = 40
    x, w = projected_quadrature(n, q=2)  # arcsine law: Chebyshev-Gauss
    np.testing.assert_allclose(x, np.sort(np.cos((2 * np.arange(1, n + 1) - 1) * np.pi / (2 * n))), atol=1e-15)
    np.testing.assert_allclose(w, 1.0 / n, rtol=1e-13)
    x, w = projected_quadrature(n, q=4)  # semicircle law: Chebyshev-Gauss of the second kind
    theta = np.arange(n, 0, -1) * np.pi / (n + 1)
    np.testing.assert_allclose(x, np.cos(theta), atol=1e-15)
    np.testing.assert_allclose(w, 2 / (n + 1) * np.sin(theta) ** 2, rtol=1e-12)


@pytest.mark.parametrize("q", [2.0, 3, 7, 50])
def test_density_integrates_to_one(q):
    q = int(q)
    pts = [-1, -0.5, 0, 0.5, 1]
    value = quad(lambda t: projected_density(t, q=q), -1, 1, points=pts, limit=200)[0]
    assert value == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("q", [2, 3, 4, 7, 64, 4096, 65536])
def test_density_against_mpmath(q):
    eps = np.finfo(np.float64).eps
    ts = np.array([0.0, 0.3, -0.5, 1 / np.sqrt(q), -4 / np.sqrt(q), 0.9, 1 - 1e-6, -(1 - 1e-12), 0.999999999])
    ts = ts[np.abs(ts) < 1]
    got = projected_density(ts, q=q)
    for t, g in zip(ts, got):
        with mp.workdps(50):
            tm = mp.mpf(t)
            ref = (
                mp.gamma(mp.mpf(q) / 2)
                / (mp.sqrt(mp.pi) * mp.gamma(mp.mpf(q - 1) / 2))
                * (1 - tm**2) ** (mp.mpf(q - 3) / 2)
            )
        bound = (8 + np.log(q) + abs(q - 3) * t * t / (1 - t * t)) * eps
        assert abs(g - ref) <= bound * ref + 1e-300, (q, t, g, ref)
    assert projected_density(1.0, q=5) == 0.0 and projected_density(-1.5, q=5) == 0.0
    assert isinstance(projected_density(0.2, q=5), np.float64)


@settings(max_examples=8)  # mpmath's besseli is slow at large orders; the edges have their own grid
@given(nu=st.floats(0, 1e5), x=st.floats(1e-6, 1e5))
def test_log_iv_against_mpmath(nu, x):
    with mp.workdps(40):
        ref = mp.log(mp.besseli(nu, x, maxterms=10**6))
    got = log_iv(nu, x)
    assert abs(got - float(ref)) <= 1e-13 * max(1.0, abs(float(ref)))


@pytest.mark.parametrize(
    "nu, x",
    [
        (nu, x)
        for nu in (0.0, 0.5, 1.0, 149.99, 150.0, 150.01, 3000.0, 32767.0, 1e5)
        for x in (1e-6, 0.3, 1.0, 150.0, 1e4)
    ]
    + [(0.0, 1e5), (150.0, 1e5), (1e5, 1e5)],
)
def test_log_iv_on_the_edges_of_its_domain(nu, x):
    # the switch between scipy's ive and the Debye expansion at order 150, tiny and huge arguments
    with mp.workdps(40):
        ref = float(mp.log(mp.besseli(nu, x, maxterms=10**6)))
    assert abs(log_iv(nu, x) - ref) <= 1e-13 * max(1.0, abs(ref))


def test_log_iv_edge_cases():
    assert log_iv(0.0, 0.0) == 0.0 and log_iv(3.0, 0.0) == -np.inf
    assert np.isfinite(log_iv(32767.0, 1e4))  # ive underflows to 0 here
    with pytest.raises(ValueError, match="nu"):
        log_iv(-1.0, 1.0)
    with pytest.raises(ValueError, match="x"):
        log_iv(1.0, -1.0)


@given(a=st.floats(0.01, 1e7), d=st.floats(-50, 50))
def test_log_gamma_ratio_against_mpmath(a, d):
    b = a + d
    if b <= 0.01:
        b = a
    with mp.workdps(50):
        ref = mp.loggamma(a) - mp.loggamma(b)
    eps = np.finfo(np.float64).eps
    bound = 4 * eps * max(1.0, abs(float(ref)))  # the documented bound
    if min(a, b) < 20:
        with mp.workdps(50):
            bound += 2 * eps * float(max(abs(mp.loggamma(a)), abs(mp.loggamma(b))))
    assert abs(log_gamma_ratio(a, b) - float(ref)) <= bound


@given(x=st.floats(0.01, 1e6), n=st.integers(0, 10**5))
def test_log_rising_against_mpmath(x, n):
    eps = np.finfo(np.float64).eps
    with mp.workdps(50):
        ref = mp.log(mp.rf(x, n))
        # below 20 the documented bound adds 2 eps max |lnGamma| of the two arguments
        extra = 2 * eps * float(max(abs(mp.loggamma(x + n)), abs(mp.loggamma(x)))) if x < 20 else 0.0
    assert abs(log_rising(x, n) - float(ref)) <= 4 * eps * max(1.0, abs(float(ref))) + extra
    assert log_rising(3.5, 4) == pytest.approx(np.log(3.5 * 4.5 * 5.5 * 6.5), rel=1e-15)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: log_iv([1.0, 2.0, 3.0], [1.0, 2.0]), ValueError, "nu and x must broadcast"),
        (lambda: log_iv("a", 1.0), TypeError, "nu must be real numbers"),
        (lambda: log_iv(1.0, "x"), TypeError, "x must be real numbers"),
        (lambda: log_iv(-1.0, 1.0), ValueError, "nu must be non-negative"),
        (lambda: log_iv(1.0, np.nan), ValueError, "x must be non-negative"),
        (lambda: log_iv(np.inf, np.inf), ValueError, "both be infinite"),
        (lambda: log_gamma_ratio(0.0, 1.0), ValueError, "a must be positive"),
        (lambda: log_gamma_ratio(1.0, [1.0, np.nan]), ValueError, "b must be positive"),
        (lambda: log_gamma_ratio([1.0, 2.0], [1.0, 2.0, 3.0]), ValueError, "a and b must broadcast"),
        (lambda: log_rising(1.0, -1.0), ValueError, "n must be non-negative"),
        (lambda: log_rising("x", 1.0), TypeError, "x must be real numbers"),
    ],
)
def test_special_functions_name_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_log_iv_reads_tensors_detached_and_takes_limits():
    torch = pytest.importorskip("torch")
    nu = torch.tensor([0.5, 200.0], requires_grad=True)
    np.testing.assert_array_equal(log_iv(nu, 3.0), log_iv(np.array([0.5, 200.0]), 3.0))
    assert log_iv(3.0, np.inf) == np.inf and log_iv(np.inf, 3.0) == -np.inf


@pytest.mark.parametrize("nu, x", [(1.0, 1e300), (300.0, 1e300), (300.0, 1e10), (0.0, 1e12), (5.0, 2e9)])
def test_log_iv_at_huge_arguments(nu, x):
    # scipy's ive is NaN or 0 there; Hankel's expansion (small orders) and the Debye expansion (large) take over
    with mp.workdps(40):
        ref = float(mp.log(mp.besseli(nu, x)))
    assert log_iv(nu, x) == pytest.approx(ref, rel=1e-15)
