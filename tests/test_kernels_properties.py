"""Property-based tests of the kernel mathematics and of kernel strings (parse_kernel and repr)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dotkernels.gegenbauer import legendre_series
from dotkernels.kernels import (
    ArcCosineKernel,
    BandLimitedKernel,
    DistanceKernel,
    ExponentialKernel,
    GaussianKernel,
    GeneratingFunctionKernel,
    GineKernel,
    HeatKernel,
    InverseMultiquadricKernel,
    LegendreSeriesKernel,
    MonomialKernel,
    PoissonKernel,
    PolynomialKernel,
    SFRIKKernel,
    TruncatedKernel,
    parse_kernel,
)

dims = st.sampled_from([2, 3, 4, 7, 64, 4096])
positive = st.floats(0.01, 20.0)
rhos = st.floats(0.0, 0.9)

kernels = st.one_of(
    st.builds(ExponentialKernel, st.floats(0.01, 5.0)),
    st.builds(GaussianKernel, st.floats(0.01, 5.0)),
    st.builds(MonomialKernel, st.integers(0, 8)),
    st.builds(PolynomialKernel, st.integers(0, 8), st.floats(0.0, 3.0)),
    st.builds(InverseMultiquadricKernel, st.floats(1.0, 5.0), st.floats(0.1, 3.0)),
    st.builds(ArcCosineKernel, st.integers(0, 1)),
    st.builds(SFRIKKernel, st.lists(st.floats(0.0, 50.0), min_size=1, max_size=5)),
    st.builds(BandLimitedKernel, st.integers(0, 6)),
)


@given(kernel=kernels, q=dims)
def test_coefficients_sum_to_phi_at_one(kernel, q):
    # sum_l a_l = phi(1); the tail beyond degree 80 is below 1e-13 for these parameters except arc-cosine kernels,
    # whose tail is bounded by truncation_error itself (non-negative coefficients)
    degree = 80
    a = kernel.spectrum(degree, q=q)
    phi1 = kernel.phi_at_one(q=q)
    tail = kernel.truncation_error(degree, q=q)
    assert math.fsum(a) + tail == pytest.approx(phi1, rel=1e-13)
    assert tail >= -1e-12 * phi1
    if not isinstance(kernel, ArcCosineKernel):
        assert tail <= 1e-10 * max(phi1, 1.0)


@given(kernel=kernels, q=dims, t=st.floats(-1.0, 1.0))
def test_profile_is_the_series(kernel, q, t):
    degree = 120
    a = kernel.spectrum(degree, q=q)
    bound = kernel.truncation_error(degree, q=q) if kernel.is_positive_semidefinite(q=q) else math.inf
    series = float(legendre_series(a, t, q=q))
    # non-negative coefficients: |phi - series| <= tail sum (attained at t = 1), plus rounding of the sum
    assert abs(float(kernel.profile(t, q=q)) - series) <= bound + 1e-12 * kernel.phi_at_one(q=q)


@given(k1=kernels, k2=kernels, c=positive, q=dims)
def test_spectra_of_sums_and_multiples(k1, k2, c, q):
    degree = 10
    a1, a2 = k1.spectrum(degree, q=q), k2.spectrum(degree, q=q)
    np.testing.assert_allclose((k1 + k2).spectrum(degree, q=q), a1 + a2, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose((c * k1).spectrum(degree, q=q), c * a1, rtol=1e-13, atol=1e-300)
    assert (k1 + c * k2).phi_at_one(q=q) == pytest.approx(k1.phi_at_one(q=q) + c * k2.phi_at_one(q=q), rel=1e-13)
    assert (k1 + k2).uniform_mean_embedding(q=q) == pytest.approx(a1[0] + a2[0], rel=1e-13, abs=1e-300)
    # semi-definiteness is preserved by sums and positive multiples; strictness by adding a strictly PD kernel
    assert (k1 + c * k2).is_positive_semidefinite(q=q)
    strict = (k1 + GaussianKernel(1.0)).is_strictly_positive_definite(q=q)
    assert strict is True


@given(kernel=kernels, q=dims, degree=st.integers(0, 12))
def test_truncation(kernel, q, degree):
    tr = TruncatedKernel(kernel, degree)
    a = kernel.spectrum(degree + 3, q=q)
    np.testing.assert_array_equal(tr.spectrum(degree + 3, q=q)[: degree + 1], a[: degree + 1])
    assert np.all(tr.spectrum(degree + 3, q=q)[degree + 1 :] == 0)
    assert tr.truncation_error(degree, q=q) == pytest.approx(0.0, abs=1e-13 * max(1.0, abs(tr.phi_at_one(q=q))))
    assert tr.is_strictly_positive_definite(q=q) is False


@given(rho=rhos, q=dims)
def test_poisson_normalisations(rho, q):
    plain, normalized = PoissonKernel(rho), PoissonKernel(rho, normalized=True)
    assert normalized.phi_at_one(q=q) == pytest.approx(1.0, rel=1e-13)
    scale = normalized.uniform_mean_embedding(q=q)
    np.testing.assert_allclose(normalized.spectrum(20, q=q), scale * plain.spectrum(20, q=q), rtol=1e-13)
    if q <= 64:  # beyond, the classical kernel's phi(1) = (1 + rho) / (1 - rho)^(q-1) overflows float64
        t = np.linspace(-1, 1, 7)
        np.testing.assert_allclose(normalized.profile(t, q=q), scale * plain.profile(t, q=q), rtol=1e-12)


# ---- kernel strings ---------------------------------------------------------------------------------------------

every_kernel = st.one_of(
    kernels,
    st.builds(PoissonKernel, rhos, normalized=st.booleans()),
    st.builds(GeneratingFunctionKernel, rhos),
    st.builds(HeatKernel, st.floats(1e-3, 2.0)),
    st.builds(DistanceKernel, st.floats(0.05, 4.0)),
    st.builds(LegendreSeriesKernel, st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=5)),
    st.just(GineKernel()),
)


@given(kernel=every_kernel, other=every_kernel, c=positive, degree=st.integers(0, 5))
def test_repr_round_trips_through_parse_kernel(kernel, other, c, degree):
    for k in (kernel, kernel + other, c * kernel, c * (kernel + other), TruncatedKernel(kernel, degree)):
        assert parse_kernel(repr(k)) == k, repr(k)


@given(
    gamma=positive, kappa=positive, time=positive, rho=rhos, s=positive, c=positive, beta=positive, p=st.integers(0, 9)
)
def test_short_grammar_builds_the_classes(gamma, kappa, time, rho, s, c, beta, p):
    assert parse_kernel(f"gaussian:gamma={gamma!r}") == GaussianKernel(gamma)
    assert parse_kernel(f"rbf:{gamma!r}") == GaussianKernel(gamma)
    assert parse_kernel(f"exponential:kappa={kappa!r}") == ExponentialKernel(kappa)
    assert parse_kernel(f"heat:time={time!r}") == HeatKernel(time)
    assert parse_kernel(f"poisson:rho={rho!r}") == PoissonKernel(rho)
    assert parse_kernel(f"poisson:rho={rho!r},normalized=true") == PoissonKernel(rho, normalized=True)
    assert parse_kernel(f"generating:rho={rho!r}") == GeneratingFunctionKernel(rho)
    assert parse_kernel(f"distance:s={s!r}") == DistanceKernel(s)
    assert parse_kernel(f"riesz:{s!r}") == DistanceKernel(s)
    assert parse_kernel(f"imq:c={c!r},beta={beta!r}") == InverseMultiquadricKernel(c, beta)
    assert parse_kernel(f"polynomial:{p},{c!r}") == PolynomialKernel(p, c)
    assert parse_kernel(f"monomial:p={p}") == MonomialKernel(p)
    assert parse_kernel(f"bandlimited:degree={p}") == BandLimitedKernel(p)


@given(coefficients=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=6))
def test_legendre_starts_at_degree_zero_and_sfrik_at_degree_one(coefficients):
    text = ",".join(repr(v) for v in coefficients)
    legendre = parse_kernel(f"legendre:{text}")
    sfrik = parse_kernel(f"sfrik:{text}")
    assert legendre == LegendreSeriesKernel(coefficients)
    assert sfrik == SFRIKKernel(coefficients)
    degree = len(coefficients) + 1
    a = np.zeros(degree + 1)
    a[: len(coefficients)] = coefficients
    np.testing.assert_array_equal(legendre.spectrum(degree, q=5), a)
    np.testing.assert_array_equal(sfrik.spectrum(degree, q=5), np.concatenate([[0.0], a[:-1]]))


def test_named_kernels():
    assert parse_kernel("sfrik") == SFRIKKernel((1.0, 40.0, 40.0))
    assert parse_kernel("energy") == DistanceKernel(1.0)
    assert parse_kernel("gine") == GineKernel()
    assert parse_kernel("ArcCosine:order=1") == ArcCosineKernel(1)
    k = GaussianKernel(1.0)
    assert parse_kernel(k) is k


@pytest.mark.parametrize(
    "spec, error, match",
    [
        ("nope", ValueError, "unknown kernel"),
        ("gaussian:sigma=1", ValueError, "unknown parameter"),
        ("gaussian:tau=1", ValueError, "unknown parameter"),
        ("gaussian:gamma=-1", ValueError, "gamma must be"),
        ("gaussian:gamma=abc", ValueError, "expected a number"),
        ("gaussian:1,2", ValueError, "too many positional"),
        ("gaussian:gamma=1,gamma=2", ValueError, "given twice"),
        ("legendre", ValueError, "legendre needs coefficients"),
        ("legendre:a0=1", ValueError, "positional coefficients"),
        ("energy:2", ValueError, "takes no parameters"),
        ("GaussianKernel(gamma=", ValueError, "cannot parse"),
        ("os.system('x')", ValueError, "cannot build a kernel"),
        ("GaussianKernel(gamma=__import__('os'))", ValueError, "cannot build a kernel"),
        ("GaussianKernel(gamma=x)", ValueError, "only numbers"),
        ("ProfileKernel(abs)", ValueError, "cannot build a kernel"),
        (3.0, TypeError, "string or a DotProductKernel"),
    ],
)
def test_parse_kernel_errors(spec, error, match):
    with pytest.raises(error, match=match):
        parse_kernel(spec)
