"""Tests for dotkernels.nulls: the weighted chi-square null law of the Sobolev tests.

Every expected value comes from an independent computation: scipy.stats.chi2/gamma, closed forms for sums of
exponentials, mpmath convolutions of chi-square densities, Monte Carlo with a stated binomial tolerance,
Edgeworth expansions, or the Monte Carlo figures recorded in shared/MATH.md section 4.
"""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from dotkernels.nulls import MonteCarloNull, WeightedChiSquare, monte_carlo_pvalue

# quad's IntegrationWarning (or ours) would signal a loss of accuracy: make it fail the tests
pytestmark = pytest.mark.filterwarnings("error::scipy.integrate.IntegrationWarning")

# --------------------------------------------------------------------------- independent references


def _mp_chi2_sf(d, w, x):
    """sf of w chi^2_d at x, mpmath."""
    if x <= 0:
        return mp.mpf(1)
    return mp.gammainc(mp.mpf(d) / 2, mp.mpf(x) / (2 * mp.mpf(w)), mp.inf, regularized=True)


def _mp_chi2_cdf(d, w, x):
    if x <= 0:
        return mp.mpf(0)
    return mp.gammainc(mp.mpf(d) / 2, 0, mp.mpf(x) / (2 * mp.mpf(w)), regularized=True)


def _mp_chi2_pdf(d, w, y):
    k = mp.mpf(d) / 2
    th = 2 * mp.mpf(w)
    return y ** (k - 1) * mp.exp(-y / th) / (mp.gamma(k) * th**k)


def _mp_two_term(w, d, x):
    """(cdf, sf) of w1 chi^2_d1 + w2 chi^2_d2 at x by mpmath convolution (tanh-sinh, 18 digits).

    cdf(x) = int_0^x f1(y) F2(x - y) dy and sf(x) = S1(x) + int_0^x f1(y) S2(x - y) dy: both sums of
    non-negative terms, so each tail keeps its relative accuracy.
    """
    (w1, w2), (d1, d2) = w, d
    with mp.workdps(18):
        x = mp.mpf(x)
        cdf = mp.quad(lambda y: _mp_chi2_pdf(d1, w1, y) * _mp_chi2_cdf(d2, w2, x - y), [0, x / 2, x])
        sf = _mp_chi2_sf(d1, w1, x) + mp.quad(
            lambda y: _mp_chi2_pdf(d1, w1, y) * _mp_chi2_sf(d2, w2, x - y), [0, x / 2, x]
        )
        return float(cdf), float(sf)


def _mp_hypoexponential_sf(weights, x):
    """sf of sum_k w_k chi^2_2 (independent exponentials with means theta_k = 2 w_k, all distinct):
    sf(x) = sum_k prod_{j != k} theta_k / (theta_k - theta_j) exp(-x / theta_k)  (partial fractions)."""
    with mp.workdps(40):
        th = [2 * mp.mpf(w) for w in weights]
        out = mp.mpf(0)
        for k, tk in enumerate(th):
            coef = mp.mpf(1)
            for j, tj in enumerate(th):
                if j != k:
                    coef *= tk / (tk - tj)
            out += coef * mp.exp(-mp.mpf(x) / tk)
        return float(out)


def _exp2t_spectrum_q3(L=30, s=2.0):
    """Gegenbauer coefficients of phi(t) = exp(s t) on S^2: a_l = N(3, l) lambda_l, N(3, l) = 2l + 1,
    lambda_l = Gamma(3/2) (2/s)^{1/2} I_{l+1/2}(s)."""
    l = np.arange(L + 1)
    lam = special.gamma(1.5) * np.sqrt(2.0 / s) * special.iv(l + 0.5, s)
    return (2 * l + 1) * lam, lam


# --------------------------------------------------------------------------- single term


@pytest.mark.parametrize("method", ["imhof", "exact"])
@pytest.mark.parametrize("dof", [1.0, 2.0, 3.0, 7.5, 40.0])
def test_single_term_matches_scaled_chi2(method, dof):
    w = 1.7
    law = WeightedChiSquare([w], [dof], method=method)
    ref = stats.chi2(dof, scale=w)
    for p in [1e-13, 1e-10, 1e-6, 1e-2, 0.3, 0.5, 0.9]:
        x_hi = ref.isf(p)  # upper tail: sf(x_hi) = p
        np.testing.assert_allclose(law.sf(x_hi), ref.sf(x_hi), rtol=1e-8)
        np.testing.assert_allclose(law.cdf(x_hi), ref.cdf(x_hi), rtol=1e-8, atol=1e-13)
        x_lo = ref.ppf(p)  # lower tail: cdf(x_lo) = p
        np.testing.assert_allclose(law.cdf(x_lo), ref.cdf(x_lo), rtol=1e-8)


def test_single_term_tail_1e10_relative_1e6():
    """The brief's contract: relative 1e-6 at sf ~ 1e-10 (Imhof), for several degrees of freedom."""
    for dof in [1, 5, 30, 500]:
        law = WeightedChiSquare([0.25], [dof])
        x = stats.chi2.isf(1e-10, dof, scale=0.25)
        assert abs(law.sf(x) / 1e-10 - 1) < 1e-6


def test_rayleigh_and_bingham_are_exact_chi2():
    """shared/MATH.md section 4: Rayleigh (phi = q t) has null chi^2_q, Bingham (N(q,2) P_2) chi^2_{(q-1)(q+2)/2}."""
    for q in [2, 3, 7, 50]:
        ray = WeightedChiSquare.from_spectrum([0.0, float(q)], q=q, method="exact")
        np.testing.assert_allclose(ray.weights, [1.0], rtol=1e-14)
        np.testing.assert_allclose(ray.dofs, [q])
        x = np.array([0.5, 1.0, 2.0, 3.0]) * q
        np.testing.assert_allclose(ray.sf(x), stats.chi2.sf(x, q), rtol=1e-12)
        n2 = (q - 1) * (q + 2) / 2
        bing = WeightedChiSquare.from_spectrum([0.0, 0.0, n2], q=q, method="exact")
        np.testing.assert_allclose(bing.sf(x), stats.chi2.sf(x, n2), rtol=1e-12)
        bing_imhof = WeightedChiSquare.from_spectrum([0.0, 0.0, n2], q=q)
        np.testing.assert_allclose(bing_imhof.sf(x), stats.chi2.sf(x, n2), rtol=1e-9)


def test_exact_method_merges_equal_weights():
    law = WeightedChiSquare([0.5, 0.5, 0.5], [1.0, 2.0, 4.5], method="exact")
    x = np.array([0.3, 2.0, 5.0, 20.0])
    np.testing.assert_allclose(law.cdf(x), stats.chi2.cdf(x, 7.5, scale=0.5), rtol=1e-13)
    # several Imhof terms with a common weight are a single chi-square as well
    imh = WeightedChiSquare([0.5, 0.5, 0.5], [1.0, 2.0, 4.5])
    np.testing.assert_allclose(imh.sf(x), stats.chi2.sf(x, 7.5, scale=0.5), rtol=1e-9)


# --------------------------------------------------------------------------- mixtures vs closed forms


def test_two_exponentials_closed_form_bulk_and_far_tail():
    """weights (1, 2), dofs (2, 2): T = Exp(mean 2) + Exp(mean 4), sf(x) = 2 e^{-x/4} - e^{-x/2}."""
    law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])
    # a dense grid crosses the switch between Imhof's formula (bulk) and the shifted contour (tails)
    x = np.concatenate([np.linspace(0.01, 40.0, 40), [60.0, 80.0, 95.0, 100.0, 110.0, 120.0]])
    sf_ref = 2 * np.exp(-x / 4) - np.exp(-x / 2)
    cdf_ref = np.expm1(-x / 4) ** 2  # 1 - 2u + u^2 = (1 - u)^2 with u = e^{-x/4}: no cancellation
    sf = law.sf(x)
    np.testing.assert_allclose(sf, sf_ref, rtol=1e-8)
    assert sf_ref[-1] < 1e-12 and sf_ref[-4] == pytest.approx(9.69e-11, rel=1e-2)  # far tail reached
    np.testing.assert_allclose(law.cdf(x), cdf_ref, rtol=1e-8)
    # lower tail: cdf ~ x^2 / 16 for small x
    xs = np.array([1e-6, 1e-4, 1e-2])
    np.testing.assert_allclose(law.cdf(xs), np.expm1(-xs / 4) ** 2, rtol=1e-8)


def test_three_exponentials_partial_fractions():
    w = [0.5, 1.0, 2.5]
    law = WeightedChiSquare(w, [2.0, 2.0, 2.0])
    for x in [0.5, 2.0, 5.0, 8.0, 12.0, 25.0, 60.0, 110.0, 130.0]:
        ref = _mp_hypoexponential_sf(w, x)
        if ref > 1e-12:
            assert law.sf(x) == pytest.approx(ref, rel=1e-8)
        else:
            assert abs(law.sf(x) - ref) < 1e-12
        assert law.cdf(x) == pytest.approx(1 - ref, rel=1e-9, abs=1e-14)


@pytest.mark.parametrize(
    ("w", "d", "xs"),
    [
        ((10.0, 4.0, 1.0, 0.01), (2.0, 9.0, 3.0, 50.0), (400.0, 510.0, 600.0, 700.0)),
        # weights over ten decades, small dofs
        (
            (7746.4, 3447.6, 86.9, 10.7, 0.0153, 1.29e-4, 6.7e-6),
            (2.0, 9.0, 6.0, 9.0, 7.0, 8.0, 6.0),
            (3.5e5, 4.5e5, 5.2e5),
        ),
    ],
)
def test_far_tail_dominated_by_one_exponential(w, d, xs):
    """If the largest weight w_1 has d_1 = 2, T = theta E + R (E ~ Exp(1), theta = 2 w_1) and
    sf(x) = e^{-x/theta} E[e^{R/theta}] - E[e^{-(x-R)/theta}; R >= x] + P(R >= x), so
    |sf(x) - e^{-x/theta} M_R(1/theta)| <= P(R >= x) <= min_s e^{-s x} M_R(s) (Chernoff), with the
    moment generating function M_R(s) = prod_k (1 - 2 w_k s)^{-d_k/2}."""
    w, d = np.asarray(w), np.asarray(d)
    law = WeightedChiSquare(w, d)
    theta = 2 * w[0]

    def log_mgf_rest(s):
        return -0.5 * np.sum(d[1:, None] * np.log1p(-2 * w[1:, None] * np.atleast_1d(s)[None, :]), axis=0)

    s_grid = np.linspace(1e-3, 0.999, 999) / (2 * w[1])
    for x in xs:
        main = math.exp(-x / theta + log_mgf_rest(1 / theta)[0])
        bound = math.exp(np.min(-s_grid * x + log_mgf_rest(s_grid)))
        assert 1e-16 < main < 1e-7
        assert abs(law.sf(x) - main) <= bound + 1e-8 * main


@pytest.mark.parametrize(
    ("w", "d", "xs"),
    [
        ((1.0, 0.3), (1.0, 3.0), (1e-3, 1.9, 38.0)),
        ((0.2, 5.0), (1.0, 1.0), (2e-3, 8.0, 190.0)),
        ((1.0, 1e-3), (3.0, 200.0), (0.3, 3.2, 50.0)),
        ((1.0, 1e-6), (1.0, 1.0), (1e-5, 2.0, 45.0)),
    ],
)
def test_two_terms_vs_mpmath_convolution(w, d, xs):
    """Lower tail (cdf < 1e-2), bulk, and far upper tail (sf < 1e-8) against an 18-digit convolution."""
    law = WeightedChiSquare(w, d)
    x_lo, x_mid, x_hi = xs
    c_ref, _ = _mp_two_term(w, d, x_lo)
    assert c_ref < 1e-2
    assert law.cdf(x_lo) == pytest.approx(c_ref, rel=1e-8)
    c_ref, s_ref = _mp_two_term(w, d, x_mid)
    assert law.cdf(x_mid) == pytest.approx(c_ref, rel=1e-8)
    assert law.sf(x_mid) == pytest.approx(s_ref, rel=1e-8)
    _, s_ref = _mp_two_term(w, d, x_hi)
    assert 1e-12 < s_ref < 1e-8
    assert law.sf(x_hi) == pytest.approx(s_ref, rel=1e-8)


def test_three_terms_vs_monte_carlo():
    """Three terms with odd / fractional dofs: cdf vs the empirical cdf of 2e5 exact draws, 4 binomial SEs."""
    law = WeightedChiSquare([0.3, 1.0, 2.2], [1.0, 3.0, 2.5])
    n = 200_000
    sample = law.rvs(size=n, rng=20240601)
    x = np.quantile(sample, [0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 0.999])
    emp = (sample[:, None] <= x[None, :]).mean(axis=0)
    cdf = law.cdf(x)
    se = np.sqrt(cdf * (1 - cdf) / n)
    assert np.all(np.abs(emp - cdf) <= 4 * se)


# --------------------------------------------------------------------------- shared/MATH.md checkpoint


def test_math_md_checkpoint_exp2t_on_s2():
    """q = 3, phi = exp(2t): MC quantiles 5.04, 9.07, 14.02 have Imhof sf 0.5027, 0.1010, 0.0104 (shared/MATH.md)."""
    a, lam = _exp2t_spectrum_q3()
    tail = math.exp(2.0) - a.sum()  # sum_{l > 30} a_l = phi(1) - sum_{l <= 30} a_l
    law = WeightedChiSquare.from_spectrum(a, q=3, tail_bound=max(tail, 0.0))
    np.testing.assert_allclose(law.weights, lam[1:], rtol=1e-13)  # a_l / N(3, l) = lambda_l
    np.testing.assert_allclose(law.dofs, 2 * np.arange(1, 31) + 1)
    assert law.truncation_error == max(tail, 0.0)
    # E[T] = sum_{l >= 1} a_l = phi(1) - a_0 with a_0 = sinh(2) / 2
    assert law.mean() == pytest.approx(math.exp(2.0) - math.sinh(2.0) / 2, rel=1e-12)
    sf = law.sf([5.04, 9.07, 14.02])
    np.testing.assert_allclose(sf, [0.5027, 0.1010, 0.0104], atol=0.003)


def test_from_spectrum_harmonic_dimensions_and_zero_terms():
    a = np.array([3.0, 0.0, 2.0, 0.0, 0.5])
    law = WeightedChiSquare.from_spectrum(a, q=5, method="hbe", shift=0.25)
    n = [(2 * k + 3) * math.comb(k + 2, k - 1) // k for k in (2, 4)]  # N(5, 2) = 14, N(5, 4) = 55
    assert n == [14, 55]
    np.testing.assert_allclose(law.dofs, n)
    np.testing.assert_allclose(law.weights, [2.0 / 14, 0.5 / 55], rtol=1e-14)
    assert law.method == "hbe" and law.shift == 0.25 and law.truncation_error == 0.0
    assert law.mean() == pytest.approx(0.25 + 2.5, rel=1e-14)  # shift + sum_{l >= 1} a_l


def test_from_spectrum_huge_dimension_stays_finite():
    """N(q, l) ~ 1e13 and beyond, held as floats."""
    q, L = 60, 12
    a = np.r_[0.0, np.full(L, 1.0)]
    law = WeightedChiSquare.from_spectrum(a, q=q)
    assert law.dofs.max() > 1e13
    exact = math.comb(L + q - 3, L - 1) * (2 * L + q - 2) // L
    assert law.dofs[-1] == pytest.approx(exact, rel=1e-12)
    assert law.mean() == pytest.approx(L, rel=1e-12)
    x = law.mean() + law.std() * np.array([-3.0, 0.0, 3.0])
    assert np.all(np.isfinite(law.cdf(x)))


# --------------------------------------------------------------------------- moments and sampling

W3, D3 = np.array([0.3, 1.0, 2.2]), np.array([1.0, 3.0, 2.5])


def test_moments_and_cumulants_formulas():
    law = WeightedChiSquare(W3, D3, shift=-0.75)
    assert law.mean() == pytest.approx(-0.75 + np.sum(W3 * D3), rel=1e-14)
    assert law.cumulant(1) == pytest.approx(law.mean(), rel=1e-15)
    assert law.var() == pytest.approx(2 * np.sum(W3**2 * D3), rel=1e-14)
    assert law.std() == pytest.approx(math.sqrt(2 * np.sum(W3**2 * D3)), rel=1e-14)
    assert law.cumulant(2) == pytest.approx(law.var(), rel=1e-14)
    assert law.cumulant(3) == pytest.approx(8 * np.sum(W3**3 * D3), rel=1e-13)
    # chi^2_d has cumulants 2^{k-1} (k-1)! d
    for k in range(2, 8):
        ref = sum(2 ** (k - 1) * math.factorial(k - 1) * wk**k * dk for wk, dk in zip(W3, D3))
        assert law.cumulant(k) == pytest.approx(ref, rel=1e-12)
    # independently, from scipy's chi-square skewness and excess kurtosis (var = 2d):
    # kappa_3 = skew var^{3/2}, kappa_4 = kurt var^2, scaled by w^3 and w^4
    sk, ku = zip(*(stats.chi2(dk).stats(moments="sk") for dk in D3))
    k3 = sum(wk**3 * s * (2 * dk) ** 1.5 for wk, dk, s in zip(W3, D3, sk))
    k4 = sum(wk**4 * k * (2 * dk) ** 2 for wk, dk, k in zip(W3, D3, ku))
    assert law.cumulant(3) == pytest.approx(k3, rel=1e-12)
    assert law.cumulant(4) == pytest.approx(k4, rel=1e-12)


def test_rvs_moments_vs_exact():
    law = WeightedChiSquare(W3, D3, shift=0.5)
    n = 200_000
    x = law.rvs(size=n, rng=np.random.default_rng(7))
    k2, k3, k4 = law.cumulant(2), law.cumulant(3), 48 * np.sum(W3**4 * D3)
    assert abs(x.mean() - law.mean()) < 4 * math.sqrt(k2 / n)
    # Var of the sample variance ~ (kappa_4 + 2 kappa_2^2) / n
    assert abs(x.var() - k2) < 4 * math.sqrt((k4 + 2 * k2**2) / n)
    # third central moment = kappa_3; loose 10% check (its SE is ~3% here)
    assert abs(np.mean((x - x.mean()) ** 3) / k3 - 1) < 0.1


def test_rvs_shapes_and_random_state():
    law = WeightedChiSquare(W3, D3, shift=1.0)
    assert np.ndim(law.rvs(rng=0)) == 0
    assert law.rvs(size=5, rng=0).shape == (5,)
    assert law.rvs(size=(2, 3), rng=0).shape == (2, 3)
    np.testing.assert_array_equal(law.rvs(size=4, rng=3), law.rvs(size=4, rng=3))
    r1 = law.rvs(size=4, rng=np.random.default_rng(1))
    assert np.all(r1 > 1.0)  # the shift is applied, and chi-squares are positive
    with pytest.raises(TypeError, match="RandomState"):
        law.rvs(size=4, rng=np.random.RandomState(1))
    with pytest.raises(TypeError):
        law.rvs(4, 1)  # rng is keyword-only


# --------------------------------------------------------------------------- quantiles


@pytest.mark.parametrize("method", ["imhof", "hbe", "sw"])
def test_ppf_inverts_cdf(method):
    law = WeightedChiSquare(W3, D3, method=method, shift=0.2)
    x = np.array([1.5, 4.0, 15.0, 40.0])  # inside the support of every approximation
    assert np.all(law.cdf(x) > 0)
    np.testing.assert_allclose(law.ppf(law.cdf(x)), x, rtol=1e-8)
    np.testing.assert_allclose(law.isf(law.sf(x)), x, rtol=1e-8)
    assert law.ppf(1.0) == np.inf and law.isf(0.0) == np.inf
    if method == "imhof":
        assert law.ppf(0.0) == 0.2 and law.isf(1.0) == 0.2
        x_lo = np.array([0.201, 0.25])  # lower tail of the exact law
        np.testing.assert_allclose(law.ppf(law.cdf(x_lo)), x_lo, rtol=1e-8)


def test_imhof_quantiles_far_tails():
    law = WeightedChiSquare([1.0, 2.0], [2.0, 2.0])
    for p in [1e-3, 1e-8, 1e-11]:
        x = law.isf(p)
        assert 2 * math.exp(-x / 4) - math.exp(-x / 2) == pytest.approx(p, rel=1e-8)
        xl = law.ppf(p)
        assert math.expm1(-xl / 4) ** 2 == pytest.approx(p, rel=1e-8)
    assert law.ppf(0.0) == 0.0 and law.isf(1.0) == 0.0


# --------------------------------------------------------------------------- approximations


def test_hbe_and_sw_close_to_imhof_in_the_bulk():
    """On the shared/MATH.md example: |cdf_hbe - cdf_imhof| < 0.015, |cdf_sw - cdf_imhof| < 0.035 between the 5% and
    95% quantiles (HBE matches three cumulants, SW two)."""
    a, _ = _exp2t_spectrum_q3()
    laws = {m: WeightedChiSquare.from_spectrum(a, q=3, method=m) for m in ["imhof", "hbe", "sw"]}
    x = np.linspace(laws["imhof"].ppf(0.05), laws["imhof"].ppf(0.95), 25)
    ref = laws["imhof"].cdf(x)
    assert np.max(np.abs(laws["hbe"].cdf(x) - ref)) < 0.015
    assert np.max(np.abs(laws["sw"].cdf(x) - ref)) < 0.035
    # the fitted laws reproduce the matched cumulants
    hbe = laws["hbe"]._approx
    assert hbe.mean() == pytest.approx(laws["imhof"].mean(), rel=1e-12)
    assert hbe.var() == pytest.approx(laws["imhof"].var(), rel=1e-12)
    sk = laws["imhof"].cumulant(3) / laws["imhof"].var() ** 1.5
    assert float(hbe.stats(moments="s")) == pytest.approx(sk, rel=1e-10)
    assert laws["sw"]._approx.var() == pytest.approx(laws["imhof"].var(), rel=1e-12)


def test_hbe_beats_sw_in_the_tail_on_a_skewed_law():
    w, d = [5.0, 1.0, 0.5], [1.0, 4.0, 10.0]
    imh = WeightedChiSquare(w, d)
    hbe = WeightedChiSquare(w, d, method="hbe")
    sw = WeightedChiSquare(w, d, method="sw")
    for p in [1e-2, 1e-4, 1e-6]:
        x = imh.isf(p)
        err_hbe = abs(math.log(hbe.sf(x) / p))
        err_sw = abs(math.log(sw.sf(x) / p))
        assert err_hbe < err_sw


# --------------------------------------------------------------------------- huge degrees of freedom


def test_huge_dofs_edgeworth():
    """d ~ 1e12, w ~ 1e-12: T is normal to O(skewness ~ 1e-6).  The one-term Edgeworth expansion
    F(z) = Phi(z) - gamma / 6 (z^2 - 1) phi(z) is accurate to O(gamma^2, kappa_4 / kappa_2^2) ~ 1e-11; the
    rounding of x (~|x| 2^-52 / sd ~ 1e-10 in z) adds ~1e-10.  We allow 1e-8 absolute, and 1e-6 relative in
    the tails."""
    w = np.array([1e-12, 2e-12, 0.5e-12])
    d = np.array([1e12, 5e11, 2e12])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        law = WeightedChiSquare(w, d)
        mean, sd = law.mean(), law.std()
        assert mean == pytest.approx(3.0, rel=1e-14)
        assert sd == pytest.approx(math.sqrt(2 * np.sum(w**2 * d)), rel=1e-14)
        gamma = 8 * np.sum(w**3 * d) / sd**3
        assert 1e-7 < gamma < 1e-5
        z = np.array([-6.0, -4.0, -2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 4.0, 6.0])
        x = mean + sd * z
        cdf, sf = law.cdf(x), law.sf(x)
    assert np.all(np.isfinite(cdf)) and np.all(np.isfinite(sf))
    corr = gamma / 6 * (z**2 - 1) * stats.norm.pdf(z)
    np.testing.assert_allclose(cdf, stats.norm.cdf(z) - corr, atol=1e-8)
    np.testing.assert_allclose(sf, stats.norm.sf(z) + corr, atol=1e-8)
    tails = np.abs(z) >= 4
    np.testing.assert_allclose(cdf[tails & (z < 0)], (stats.norm.cdf(z) - corr)[tails & (z < 0)], rtol=1e-6)
    np.testing.assert_allclose(sf[tails & (z > 0)], (stats.norm.sf(z) + corr)[tails & (z > 0)], rtol=1e-6)
    # normal approximation standardised by the exact mean and variance: error ~ gamma / 6 max|(z^2-1) phi|
    assert np.max(np.abs(cdf - stats.norm.cdf(z))) < gamma / 6 * 0.5 + 1e-9
    # quantiles and sampling stay finite and consistent
    assert law.ppf(0.5) == pytest.approx(mean, abs=1e-3 * sd)
    xs = law.rvs(size=1000, rng=1)
    assert np.all(np.isfinite(xs)) and abs(xs.mean() - mean) < 4 * sd / math.sqrt(1000)


def test_huge_dofs_single_term_upper_tail_vs_scipy():
    law = WeightedChiSquare([1e-12], [1e12])
    ref = stats.chi2(1e12, scale=1e-12)
    x = law.mean() + law.std() * np.array([1.0, 3.0, 6.0])
    np.testing.assert_allclose(law.sf(x), ref.sf(x), rtol=1e-6)


# --------------------------------------------------------------------------- API details


def test_scalar_and_array_outputs_and_shift():
    law = WeightedChiSquare(W3, D3)
    shifted = WeightedChiSquare(W3, D3, shift=2.5)
    assert isinstance(law.cdf(1.0), np.floating) and np.ndim(law.cdf(1.0)) == 0
    xx = np.array([[0.5, 1.0, 2.0], [4.0, 8.0, 16.0]])
    assert law.cdf(xx).shape == (2, 3)
    np.testing.assert_allclose(shifted.cdf(xx + 2.5), law.cdf(xx), rtol=1e-12)
    assert shifted.ppf(0.3) == pytest.approx(law.ppf(0.3) + 2.5, rel=1e-10)
    assert law.cdf(-1.0) == 0.0 and law.sf(-1.0) == 1.0 and law.cdf(0.0) == 0.0
    assert law.cdf(np.inf) == 1.0 and law.sf(np.inf) == 0.0
    assert np.isnan(law.cdf(np.nan))
    assert law.support() == (0.0, math.inf)
    assert "WeightedChiSquare" in repr(law)


def test_extreme_arguments():
    """Far outside the bulk: no exception, correct limits; the small-ball lower tail against references."""
    one = WeightedChiSquare([1.5], [1.0])
    for x in [1e-300, 1e-40, 1e-20]:
        assert one.cdf(x) == pytest.approx(stats.chi2.cdf(x, 1, scale=1.5), rel=1e-10)
    two = WeightedChiSquare([1.5, 0.1], [1.0, 3.0])
    c_ref, _ = _mp_two_term((1.5, 0.1), (1.0, 3.0), 1e-14)
    assert two.cdf(1e-14) == pytest.approx(c_ref, rel=1e-8)
    for law in (one, two, WeightedChiSquare([1e-12], [1e12])):
        np.testing.assert_array_equal(law.sf([1e5, 1e20, 1e300]), 0.0)
        np.testing.assert_array_equal(law.cdf([1e5, 1e20, 1e300]), 1.0)
        assert 0.0 <= law.cdf(1e-300) < 1e-150


def test_cdf_vector_of_100_points_with_50_terms_is_monotone_and_matches_sf():
    # speed is measured in benchmarks/, not here
    rng = np.random.default_rng(0)
    law = WeightedChiSquare(rng.uniform(0.01, 1.0, 50), rng.integers(1, 30, 50).astype(float))
    x = np.linspace(law.mean() - 3 * law.std(), law.mean() + 6 * law.std(), 100)
    c = law.cdf(x)
    assert np.all(np.diff(c) >= 0)
    np.testing.assert_allclose(c + law.sf(x), 1.0, atol=1e-11)


# --------------------------------------------------------------------------- property tests

_weights = st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=5)


@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    method=st.sampled_from(["imhof", "hbe", "sw"]),
)
def test_cdf_properties(data, method):
    w = data.draw(_weights)
    d = data.draw(st.lists(st.floats(0.5, 60.0), min_size=len(w), max_size=len(w)))
    law = WeightedChiSquare(w, d, method=method)
    z = np.sort(data.draw(st.lists(st.floats(-2.0, 12.0), min_size=2, max_size=6)))
    x = law.mean() + law.std() * z
    cdf, sf = law.cdf(x), law.sf(x)
    assert np.all((cdf >= 0) & (cdf <= 1)) and np.all((sf >= 0) & (sf <= 1))
    np.testing.assert_allclose(cdf + sf, 1.0, atol=1e-11)
    assert np.all(np.diff(cdf) >= -1e-11)
    assert np.all(np.diff(sf) <= 1e-11)


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": [1.0, -1.0], "dofs": [1.0, 1.0]}, "weights"),
        ({"weights": [1.0, 0.0], "dofs": [1.0, 1.0]}, "weights"),
        ({"weights": [1.0, 1.0], "dofs": [1.0, 0.0]}, "dofs"),
        ({"weights": [1.0, 1.0], "dofs": [1.0, -2.0]}, "dofs"),
        ({"weights": [1.0, 2.0], "dofs": [1.0]}, "same length"),
        ({"weights": [1.0, np.nan], "dofs": [1.0, 1.0]}, "weights"),
        ({"weights": [1.0], "dofs": [np.inf]}, "dofs"),
        ({"weights": [], "dofs": []}, "weights"),
        ({"weights": [[1.0]], "dofs": [[1.0]]}, "weights"),
        ({"weights": [1.0], "dofs": [1.0], "method": "saddle"}, "method"),
        ({"weights": [1.0], "dofs": [1.0], "method": "monte_carlo"}, "method"),
        ({"weights": [1.0, 2.0], "dofs": [1.0, 1.0], "method": "exact"}, "weights"),
        ({"weights": [1.0], "dofs": [1.0], "shift": np.nan}, "shift"),
        ({"weights": [1.0], "dofs": [1.0], "tail_bound": -1.0}, "tail_bound"),
    ],
)
def test_bad_constructor_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeightedChiSquare(**kwargs)


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        WeightedChiSquare([1.0], [1.0], "imhof")


def test_bad_probabilities_and_cumulant_order():
    law = WeightedChiSquare([1.0], [2.0])
    for bad in [-0.1, 1.5, np.nan, [0.5, 2.0]]:
        with pytest.raises(ValueError, match="p"):
            law.ppf(bad)
        with pytest.raises(ValueError, match="p"):
            law.isf(bad)
    with pytest.raises(ValueError, match="k"):
        law.cumulant(0)


def test_bad_spectrum_inputs():
    with pytest.raises(ValueError, match="`a`"):
        WeightedChiSquare.from_spectrum([1.0, 2.0, -0.5], q=3)
    with pytest.raises(ValueError, match="`a`"):
        WeightedChiSquare.from_spectrum([1.0, 0.0, 0.0], q=3)
    with pytest.raises(ValueError, match="`a`"):
        WeightedChiSquare.from_spectrum([1.0, np.nan], q=3)
    with pytest.raises(ValueError, match="q must be"):
        WeightedChiSquare.from_spectrum([0.0, 1.0], q=1)
    with pytest.raises(TypeError, match="q must be"):
        WeightedChiSquare.from_spectrum([0.0, 1.0], q=3.5)
    with pytest.raises(TypeError):
        WeightedChiSquare.from_spectrum([0.0, 1.0], 3)  # q is keyword-only
    with pytest.raises(ValueError, match="method"):
        WeightedChiSquare.from_spectrum([0.0, 1.0], q=3, method="nope")


# --------------------------------------------------------------------------- Monte Carlo p-value


def test_monte_carlo_pvalue():
    sim = np.array([0.1, 3.0, 2.5, 1.0])
    assert monte_carlo_pvalue(2.5, sim) == pytest.approx((1 + 2) / 5)  # 3.0 and 2.5 are >= 2.5
    assert monte_carlo_pvalue(10.0, sim) == pytest.approx(1 / 5)
    assert monte_carlo_pvalue(-1.0, sim) == pytest.approx(1.0)
    stats_ = np.array([0.0, 1.0, 2.7, 9.0])
    brute = [(1 + np.sum(sim >= s)) / (sim.size + 1) for s in stats_]
    np.testing.assert_allclose(monte_carlo_pvalue(stats_, sim), brute)
    with pytest.raises(ValueError, match="simulated"):
        monte_carlo_pvalue(1.0, [])
    with pytest.raises(ValueError, match="simulated"):
        monte_carlo_pvalue(1.0, [1.0, np.nan])
    with pytest.raises(ValueError, match="statistic"):
        monte_carlo_pvalue(np.nan, [1.0])


def test_monte_carlo_pvalue_is_uniform_under_exchangeability():
    """With n + 1 exchangeable continuous draws (n simulated + the observed one) the p-value is uniform on
    {1/(n+1), ..., 1}: over the n + 1 choices of the observed draw each value appears exactly once."""
    rng = np.random.default_rng(5)
    draws = rng.standard_normal(20)
    p = [monte_carlo_pvalue(draws[i], np.delete(draws, i)) for i in range(draws.size)]
    np.testing.assert_allclose(np.sort(p), np.arange(1, 21) / 20)


def test_extremely_narrow_law_does_not_crash():
    # sd / mean ~ 1e-9: the Imhof integral spans ~1e9 carrier periods (quad's limit must stay an int it accepts)
    law = WeightedChiSquare([1e-17, 2e-17], [1e17, 3e17])
    z = 2.0
    sf = law.sf(law.mean() + z * law.std())
    assert sf == pytest.approx(stats.norm.sf(z), rel=1e-6)  # skewness ~1e-8: the normal limit


def test_huge_dofs_tiny_weights_construct_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        law = WeightedChiSquare([1e-290, 2e-290], [1e289, 3e289])
    assert np.isfinite(law.mean()) and law.mean() == pytest.approx(7e-1, rel=1e-12)


# --------------------------------------------------------------------------- Monte Carlo null law


def test_monte_carlo_null_matches_its_definition():
    rng = np.random.default_rng(11)
    sims = rng.gamma(2.0, size=999)
    null = MonteCarloNull(sims, n=10, q=3)
    assert null.n_resamples == 999 and np.all(np.diff(null.statistics) >= 0)
    x = np.array([0.5, 2.0, 6.0])
    np.testing.assert_allclose(null.sf(x), [(1 + np.sum(sims >= v)) / 1000 for v in x])  # scipy's (k + 1) / (n + 1)
    np.testing.assert_allclose(null.cdf(x), [np.mean(sims <= v) for v in x])
    assert null.ppf(0.5) == pytest.approx(np.median(sims))
    assert null.isf(0.1) == pytest.approx(np.quantile(sims, 0.9))
    assert null.mean() == pytest.approx(sims.mean()) and null.var() == pytest.approx(sims.var(ddof=1))
    draws = null.rvs(size=50, rng=0)
    assert draws.shape == (50,) and set(draws) <= set(sims)
    np.testing.assert_array_equal(draws, null.rvs(size=50, rng=0))
    assert "n_resamples=999" in repr(null)
    with pytest.raises(ValueError, match="statistics"):
        MonteCarloNull([1.0, np.nan])
    with pytest.raises(ValueError, match="p"):
        null.ppf(1.5)
