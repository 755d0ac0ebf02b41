"""The projected-law quadrature and the log-space special functions against independent references."""

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given
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
    x, w = projected_quadrature(n, q)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(w)) and np.all(w >= 0)
    assert np.all(np.diff(x) > 0) and np.all(np.abs(x) < 1)
    assert w.sum() == pytest.approx(1.0, abs=1e-13)
    for k in range(0, min(n, 12)):  # degree 2k <= 2n - 1
        assert w @ x ** (2 * k) == pytest.approx(_even_moment(q, k), rel=1e-12, abs=1e-300)
        assert abs(w @ x ** (2 * k + 1)) <= 1e-15


def test_rule_matches_scipy_where_scipy_works():
    for q, n in [(3, 20), (5, 50), (64, 40), (300, 30)]:
        a = (q - 3) / 2
        xs, ws = roots_jacobi(n, a, a)
        assert np.all(np.isfinite(xs))
        x, w = projected_quadrature(n, q)
        np.testing.assert_allclose(x, xs, atol=1e-14)
        np.testing.assert_allclose(w, ws / ws.sum(), rtol=1e-11)


def test_scipy_fails_where_we_do_not():
    # the trap this module exists for: scipy returns NaN silently at large q and many nodes
    xs, _ = roots_jacobi(200, (65536 - 3) / 2, (65536 - 3) / 2)
    assert not np.all(np.isfinite(xs))
    x, w = projected_quadrature(200, 65536)
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(w))


def test_chebyshev_closed_forms():
    n = 40
    x, w = projected_quadrature(n, 2)  # arcsine law: Chebyshev-Gauss
    np.testing.assert_allclose(x, np.sort(np.cos((2 * np.arange(1, n + 1) - 1) * np.pi / (2 * n))), atol=1e-15)
    np.testing.assert_allclose(w, 1.0 / n, rtol=1e-13)
    x, w = projected_quadrature(n, 4)  # semicircle law: Chebyshev-Gauss of the second kind
    theta = np.arange(n, 0, -1) * np.pi / (n + 1)
    np.testing.assert_allclose(x, np.cos(theta), atol=1e-15)
    np.testing.assert_allclose(w, 2 / (n + 1) * np.sin(theta) ** 2, rtol=1e-12)


@pytest.mark.parametrize("q", [2.0, 3, 7, 50])
def test_density_integrates_to_one(q):
    q = int(q)
    pts = [-1, -0.5, 0, 0.5, 1]
    assert quad(projected_density, -1, 1, args=(q,), points=pts, limit=200)[0] == pytest.approx(1.0, abs=1e-8)


@given(nu=st.floats(0, 1e5), x=st.floats(1e-6, 1e5))
def test_log_iv_against_mpmath(nu, x):
    with mp.workdps(40):
        ref = mp.log(mp.besseli(nu, x, maxterms=10**6))
    got = log_iv(nu, x)
    assert abs(got - float(ref)) <= 1e-13 * max(1.0, abs(float(ref)))


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
    assert abs(log_gamma_ratio(a, b) - float(ref)) <= 2e-15 * max(1.0, abs(float(ref))) + 1e-13 * (abs(d) < 1)
    assert log_rising(3.5, 4) == pytest.approx(np.log(3.5 * 4.5 * 5.5 * 6.5), rel=1e-15)
