"""Samplers on the sphere against independent references: Bessel ratios and hypergeometric moments (mpmath),
quadrature of the projected densities, closed-form CDFs (Kolmogorov–Smirnov).

Monte Carlo tolerances: a sample mean is accepted within 5 estimated standard errors of its reference (two-sided
probability of a false failure ~6e-7 per check); every draw is seeded, so the tests are deterministic.
"""

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from dotkernels.sampling import _WatsonEnvelope, sample_uniform, sample_vmf, sample_watson

N_SIGMA = 5.0


def _unit(q, seed=0):
    v = np.random.default_rng(seed).standard_normal(q)
    return v / np.linalg.norm(v)


def _assert_mean(samples, reference, label=""):
    samples = np.asarray(samples, dtype=np.float64)
    se = samples.std(ddof=1) / math.sqrt(samples.size)
    err = abs(samples.mean() - reference)
    message = f"{label}: mean {samples.mean()!r} vs {reference!r}, se {se:.3g}"
    assert err <= N_SIGMA * se + 1e-15 * abs(reference), message


def _bessel_ratio(q, kappa):
    """A_q(kappa) = I_{q/2}(kappa) / I_{q/2-1}(kappa) in 30-digit arithmetic."""
    with mp.workdps(30):
        return float(mp.besseli(mp.mpf(q) / 2, kappa) / mp.besseli(mp.mpf(q) / 2 - 1, kappa))


def _check_rows(X, n, q):
    assert X.shape == (n, q) and X.dtype == np.float64
    assert np.all(np.isfinite(X))
    # unit rows to 2 eps (the module's statement), plus the rounding of the norm computed here
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=0, atol=4 * np.finfo(np.float64).eps)


def _second_moment_check(X, reference):
    """Every entry of E[x x^T] within N_SIGMA standard errors of reference."""
    n = X.shape[0]
    prods = X[:, :, None] * X[:, None, :]
    mean = prods.mean(axis=0)
    se = prods.std(axis=0, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(mean - reference) <= N_SIGMA * se + 1e-12), np.max(np.abs(mean - reference) / (se + 1e-300))


# ---------------------------------------------------------------------------------------------------------------
# uniform


@pytest.mark.parametrize("q", [2, 3, 7])
def test_uniform_moments(q):
    X = sample_uniform(20000, q=q, rng=1)
    _check_rows(X, 20000, q)
    for j in range(q):
        _assert_mean(X[:, j], 0.0, f"mean[{j}]")
    _second_moment_check(X, np.eye(q) / q)


def test_uniform_projection_law():
    # t = <x, e> for uniform x: (1 + t)/2 ~ Beta((q-1)/2, (q-1)/2)
    q = 6
    X = sample_uniform(4000, q=q, rng=2)
    res = stats.kstest((1 + X[:, 0]) / 2, stats.beta((q - 1) / 2, (q - 1) / 2).cdf)
    assert res.pvalue > 1e-4


def test_rng_forms():
    a = sample_uniform(5, q=4, rng=3)
    np.testing.assert_array_equal(a, sample_uniform(5, q=4, rng=3))
    np.testing.assert_array_equal(a, sample_uniform(5, q=4, rng=np.random.default_rng(3)))
    np.testing.assert_array_equal(
        sample_vmf(5, mu=_unit(4), kappa=2.0, rng=np.random.SeedSequence(7)),
        sample_vmf(5, mu=_unit(4), kappa=2.0, rng=np.random.default_rng(np.random.SeedSequence(7))),
    )
    for sampler in (
        lambda rng: sample_uniform(5, q=4, rng=rng),
        lambda rng: sample_vmf(5, mu=_unit(4), kappa=2.0, rng=rng),
        lambda rng: sample_watson(5, mu=_unit(4), kappa=2.0, rng=rng),
    ):
        with pytest.raises(TypeError, match="RandomState"):
            sampler(np.random.RandomState(0))
        generator = np.random.default_rng(11)
        first = sampler(generator)
        assert not np.array_equal(first, sampler(generator))  # the Generator is advanced, not copied
        _check_rows(first, 5, 4)
    assert sample_watson(0, mu=_unit(4), kappa=2.0, rng=0).shape == (0, 4)
    one, two = (sample_vmf(5, mu=_unit(4), kappa=2.0, rng=seed) for seed in (1, 2))
    assert not np.array_equal(one, two)


# ---------------------------------------------------------------------------------------------------------------
# von Mises–Fisher


@pytest.mark.parametrize(
    "q, kappa",
    [(2, 0.5), (3, 10.0), (5, 0.01), (10, 100.0), (50, 5.0), (200, 1e4), (1000, 1e6)],
)
def test_vmf_mean_resultant_length(q, kappa):
    mu = _unit(q, seed=q)
    n = 20000 if q <= 200 else 4000
    X = sample_vmf(n, mu=mu, kappa=kappa, rng=q)
    _check_rows(X, n, q)
    t = X @ mu
    A = _bessel_ratio(q, kappa)
    _assert_mean(t, A, "E[mu^T x]")
    # E[t^2] = 1 - (q-1) A / kappa, checked through the tangent norm s^2 = 1 - t^2 (full relative precision)
    perp = X - np.outer(t, mu)
    _assert_mean(np.sum(perp * perp, axis=1), (q - 1) * A / kappa, "E[1 - t^2]")


def test_vmf_full_second_moment():
    # E[x x^T] = (A/kappa) I + (1 - q A/kappa) mu mu^T: the tangent part is isotropic
    q, kappa = 4, 3.0
    mu = _unit(q, 7)
    A = _bessel_ratio(q, kappa)
    X = sample_vmf(40000, mu=mu, kappa=kappa, rng=5)
    _second_moment_check(X, (A / kappa) * np.eye(q) + (1 - q * A / kappa) * np.outer(mu, mu))


@pytest.mark.parametrize("kappa", [0.3, 4.0, 50.0])
def test_vmf_projection_cdf_q3(kappa):
    # q = 3: t has density kappa e^{kappa t} / (2 sinh kappa) on [-1, 1]
    mu = _unit(3, 11)
    t = sample_vmf(5000, mu=mu, kappa=kappa, rng=int(kappa * 10)) @ mu

    def cdf(x):
        return np.expm1(kappa * (np.clip(x, -1, 1) + 1)) / np.expm1(2 * kappa)

    assert stats.kstest(t, cdf).pvalue > 1e-4


def test_vmf_extreme_concentration_keeps_digits():
    # q = 3, kappa = 1e12: 1 - t ~ Exp(kappa); the tangent norm^2 = 1 - t^2 ~ 2(1 - t) has mean (q-1) A / kappa
    q, kappa = 3, 1e12
    mu = _unit(q, 1)
    X = sample_vmf(20000, mu=mu, kappa=kappa, rng=0)
    perp = X - np.outer(X @ mu, mu)
    s2 = np.sum(perp * perp, axis=1)
    assert np.all(s2 > 0)
    _assert_mean(s2 * kappa, (q - 1) * _bessel_ratio(q, kappa), "kappa E[1 - t^2]")


def test_vmf_kappa_zero_is_uniform():
    q = 5
    X = sample_vmf(20000, mu=_unit(q), kappa=0.0, rng=4)
    _second_moment_check(X, np.eye(q) / q)


# ---------------------------------------------------------------------------------------------------------------
# Watson


def _watson_t2_quadrature(q, kappa):
    """E[t^2] for the density ~ exp(kappa t^2) (1 - t^2)^((q-3)/2) on [-1, 1], by adaptive quadrature."""
    if q == 2:  # integrable (1 - t^2)^(-1/2): t = cos(theta), theta uniform on [0, pi] before tilting
        shift = max(kappa, 0.0)
        z = integrate.quad(lambda th: math.exp(kappa * math.cos(th) ** 2 - shift), 0, math.pi)[0]
        w = integrate.quad(lambda th: math.cos(th) ** 2 * math.exp(kappa * math.cos(th) ** 2 - shift), 0, math.pi)[0]
        return w / z
    m = (q - 3) / 2
    tau0 = math.sqrt(1 - m / kappa) if kappa > m else 0.0
    log_mode = (m * math.log1p(-tau0 * tau0) if m else 0.0) + kappa * tau0 * tau0

    def f(t):
        return math.exp(m * math.log1p(-t * t) + kappa * t * t - log_mode) if abs(t) < 1 else (1.0 if m == 0 else 0.0)

    pts = [tau0] if 0 < tau0 < 1 else None
    z = integrate.quad(f, 0, 1, points=pts, limit=400, epsabs=0, epsrel=1e-12)[0]
    w = integrate.quad(lambda t: t * t * f(t), 0, 1, points=pts, limit=400, epsabs=0, epsrel=1e-12)[0]
    return w / z


def _watson_t2_hypergeometric(q, kappa):
    """E[t^2] = d/dkappa log 1F1(1/2; q/2; kappa) = 1F1(3/2; q/2+1; kappa) / (q 1F1(1/2; q/2; kappa))."""
    with mp.workdps(30):
        return float(mp.hyp1f1(1.5, q / 2 + 1, kappa) / mp.hyp1f1(0.5, mp.mpf(q) / 2, kappa) / q)


@pytest.mark.parametrize(
    "q, kappa",
    [(2, 3.0), (2, -3.0), (3, 10.0), (4, 0.3), (5, -20.0), (10, 100.0), (50, 30.0), (200, 1000.0)],
)
def test_watson_moments_vs_quadrature(q, kappa):
    mu = _unit(q, seed=q + 1)
    X = sample_watson(20000, mu=mu, kappa=kappa, rng=q)
    _check_rows(X, 20000, q)
    t = X @ mu
    _assert_mean(t, 0.0, "E[mu^T x]")  # axial: symmetric under x -> -x
    ref = _watson_t2_quadrature(q, kappa)
    assert ref == pytest.approx(_watson_t2_hypergeometric(q, kappa), rel=1e-8)
    _assert_mean(t * t, ref, "E[(mu^T x)^2]")


@pytest.mark.parametrize("q, kappa", [(1000, 1e5), (10000, 30.0), (64, 1e9)])
def test_watson_extreme_parameters(q, kappa):
    mu = _unit(q, seed=3)
    n = 2000
    X = sample_watson(n, mu=mu, kappa=kappa, rng=1)
    _check_rows(X, n, q)
    t = X @ mu
    perp = X - np.outer(t, mu)
    s2 = np.sum(perp * perp, axis=1)  # 1 - t^2 with full relative precision
    _assert_mean(t, 0.0)
    _assert_mean(s2, 1 - _watson_t2_hypergeometric(q, kappa), "E[1 - t^2]")


@pytest.mark.parametrize("kappa", [4.0, -4.0])
def test_watson_projection_cdf_q3(kappa):
    # q = 3: |t| has density ~ exp(kappa tau^2) on [0, 1]; CDF erfi(sqrt(k) tau)/erfi(sqrt(k)) (erf for kappa < 0)
    mu = _unit(3, 2)
    tau = np.abs(sample_watson(5000, mu=mu, kappa=kappa, rng=9) @ mu)
    r = math.sqrt(abs(kappa))
    fn = special.erfi if kappa > 0 else special.erf
    assert stats.kstest(tau, lambda x: fn(r * np.clip(x, 0, 1)) / fn(r)).pvalue > 1e-4


def test_watson_tangent_isotropic():
    # E[x x^T] = E[t^2] mu mu^T + (1 - E[t^2]) / (q - 1) (I - mu mu^T)
    q, kappa = 4, 5.0
    mu = _unit(q, 4)
    m2 = _watson_t2_hypergeometric(q, kappa)
    X = sample_watson(40000, mu=mu, kappa=kappa, rng=8)
    P = np.outer(mu, mu)
    _second_moment_check(X, m2 * P + (1 - m2) / (q - 1) * (np.eye(q) - P))


@pytest.mark.parametrize("q", [3, 5, 50, 2000])
@pytest.mark.parametrize("kappa", [-100.0, 0.5, 3.0, 40.0, 1e6])
def test_watson_envelope_is_valid_and_efficient(q, kappa):
    env = _WatsonEnvelope(q, kappa)
    # the ratio-of-uniforms rectangle contains the region: |y - y0| e^{ell/2} <= v_pm on an independent fine grid
    y = np.concatenate(
        [
            np.linspace(0, 1, 200001),
            env.y0 + np.logspace(-14, 0, 20001) * (1 - env.y0),
            env.y0 * (1 - np.logspace(-14, 0, 20001)),
        ]
    )
    y = y[(y >= 0) & (y <= 1)]
    with np.errstate(divide="ignore"):
        h = (y - env.y0) * np.exp(0.5 * env.ell(y))
    assert h.max() <= env.v_plus and h.min() >= env.v_minus
    assert np.all(env.ell(y) <= 1e-12)
    # acceptance rate = (1/2) int f / rectangle, f normalised at its mode; int f from 1F1 (mpmath)
    m = (q - 3) / 2
    if kappa > m:
        log_mode = (m * math.log(m / kappa) if m else 0.0) + kappa * (1 - m / kappa)
    else:
        log_mode = 0.0
    with mp.workdps(30):
        log_int = float(mp.log(mp.beta(0.5, m + 1) / 2 * mp.hyp1f1(0.5, mp.mpf(q) / 2, kappa))) - log_mode
    efficiency = 0.5 * math.exp(log_int) / (env.v_plus - env.v_minus)
    assert 0.4 <= efficiency <= 1.0


# ---------------------------------------------------------------------------------------------------------------
# properties over the whole parameter range


@settings(max_examples=25)
@given(
    n=st.integers(0, 50),
    q=st.integers(2, 300),
    kappa=st.floats(-1e6, 1e6, allow_nan=False),
    seed=st.integers(0, 2**32 - 1),
)
def test_samplers_return_unit_rows_and_honour_the_seed(n, q, kappa, seed):
    mu = _unit(q, seed % 1000)
    for sampler in (
        lambda rng: sample_uniform(n, q=q, rng=rng),
        lambda rng: sample_vmf(n, mu=mu, kappa=abs(kappa), rng=rng),
        lambda rng: sample_watson(n, mu=mu, kappa=kappa, rng=rng),
    ):
        X = sampler(seed)
        _check_rows(X, n, q)
        np.testing.assert_array_equal(X, sampler(np.random.default_rng(seed)))


@settings(max_examples=10)
@given(q=st.integers(3, 60), kappa=st.floats(0.1, 200.0))
def test_vmf_mean_resultant_length_random(q, kappa):
    X = sample_vmf(4000, mu=_unit(q, 1), kappa=kappa, rng=q)
    _assert_mean(X @ _unit(q, 1), _bessel_ratio(q, kappa), f"E[mu^T x] at q={q}, kappa={kappa}")


# ---------------------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: sample_uniform(-1, q=3), ValueError, "n must"),
        (lambda: sample_uniform(2.5, q=3), TypeError, "n must"),
        (lambda: sample_uniform(3, q=1), ValueError, "q must"),
        (lambda: sample_uniform(3, q=3.5), TypeError, "q must"),
        (lambda: sample_uniform(3, q=3, rng="seed"), TypeError, "rng must"),
        (lambda: sample_uniform(3, 3), TypeError, "positional"),
        (lambda: sample_vmf(3, mu=[1.0, 1.0], kappa=1.0), ValueError, "mu must be a unit vector"),
        (lambda: sample_vmf(3, mu=np.eye(3), kappa=1.0), ValueError, "mu must be a 1-d"),
        (lambda: sample_vmf(3, mu=[1.0], kappa=1.0), ValueError, "mu must have q >= 2"),
        (lambda: sample_vmf(3, mu=[np.nan, 1.0], kappa=1.0), ValueError, "mu contains NaN"),
        (lambda: sample_vmf(3, mu=[0.0, 0.0], kappa=1.0), ValueError, "mu has a zero row"),
        (lambda: sample_vmf(3, mu=[0.0, 1.0], kappa=-1.0), ValueError, "kappa must be >= 0"),
        (lambda: sample_vmf(3, mu=[0.0, 1.0], kappa=np.inf), ValueError, "kappa must"),
        (lambda: sample_vmf(3, mu=[0.0, 1.0], kappa="big"), TypeError, "kappa must be a real"),
        (lambda: sample_watson(3, mu=[0.0, 1.0], kappa=np.nan), ValueError, "kappa must be finite"),
        (lambda: sample_watson(3, mu=[0.0, 2.0], kappa=1.0), ValueError, "mu must be a unit vector"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_vmf_accepts_a_tensor_that_requires_grad_and_huge_kappa():
    torch = pytest.importorskip("torch")
    mu = torch.tensor([0.0, 0.0, 1.0], requires_grad=True)
    X = sample_vmf(50, mu=mu, kappa=5.0, rng=0)
    np.testing.assert_array_equal(X, sample_vmf(50, mu=np.array([0.0, 0.0, 1.0]), kappa=5.0, rng=0))
    # kappa = 1e300 once failed with "math domain error" (4 kappa^2 overflowed): the law is then a point mass at mu
    # to float64 resolution, 1 - mu^T x ~ (q - 1) / (2 kappa)
    for kappa in (1e300, 1.7e308):
        X = sample_vmf(100, mu=[0.0, 1.0, 0.0], kappa=kappa, rng=1)
        assert np.all(np.isfinite(X)) and np.all(np.abs(X[:, 1] - 1.0) <= 1e-15)
    X = sample_vmf(20000, mu=[0.0, 0.0, 1.0], kappa=1e12, rng=2)
    # under vMF(kappa) on S^2, kappa (1 - t) is exponential with mean 1 (up to e^(-2 kappa))
    assert np.mean(1e12 * (1.0 - X[:, 2])) == pytest.approx(1.0, abs=0.05)
