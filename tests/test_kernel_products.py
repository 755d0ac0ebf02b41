"""Kernel algebra: products k1 * k2 (power series or Gegenbauer linearisation) and compositions phi(psi(t)).

Independent references: exact rational Gegenbauer expansions (monomial_to_legendre / legendre_to_monomial with
exact=True), the polynomial identity at random points, mpmath Taylor coefficients and mpmath quadrature spectra.
"""

import warnings

import mpmath as mp
import numpy as np
import pytest
from _mpref import spectrum_mp
from hypothesis import given
from hypothesis import strategies as st

from dotkernels.gegenbauer import harmonic_dimension, legendre_all, legendre_to_monomial, monomial_to_legendre
from dotkernels.kernels import (
    ArcCosineKernel,
    CompositionKernel,
    DistanceKernel,
    ExponentialKernel,
    GaussianKernel,
    HeatKernel,
    InverseMultiquadricKernel,
    LegendreSeriesKernel,
    MonomialKernel,
    NNGPKernel,
    PolynomialKernel,
    ProductKernel,
    ScaledKernel,
    SFRIKKernel,
    SpectrumAccuracyWarning,
    SumKernel,
    linearization_coefficients,
    power_series,
)

# ---------------------------------------------------------------------------------------------------------------
# linearisation coefficients


@given(l=st.integers(0, 14), m=st.integers(0, 14), q=st.sampled_from([2, 3, 4, 5, 9, 40, 1000, 65536]))
def test_linearization_is_the_product_of_polynomials(l, m, q):
    t = np.linspace(-1, 1, 17)
    g = linearization_coefficients(l, m, q=q)
    P = legendre_all(l + m, t, q=q)
    np.testing.assert_allclose(P[l] * P[m], g @ P, atol=2e-13)
    assert np.all(g >= 0) and abs(g.sum() - 1) < 1e-13
    assert np.all(g[(l + m - np.arange(l + m + 1)) % 2 == 1] == 0)  # parity
    assert np.all(g[: abs(l - m)] == 0)


@pytest.mark.parametrize("q", [2, 3, 6, 11])
def test_linearization_against_exact_rationals(q):
    for l, m in [(1, 1), (3, 2), (4, 4), (6, 3)]:
        pl = legendre_to_monomial([0] * l + [1], q=q, exact=True)
        pm = legendre_to_monomial([0] * m + [1], q=q, exact=True)
        product = [0] * (l + m + 1)
        for i, a in enumerate(pl):
            for j, b in enumerate(pm):
                product[i + j] += a * b
        exact = monomial_to_legendre(product, q=q, exact=True)
        np.testing.assert_allclose(linearization_coefficients(l, m, q=q), [float(x) for x in exact], rtol=1e-13)


def test_linearization_validation():
    with pytest.raises(ValueError, match="q"):
        linearization_coefficients(1, 1, q=1)
    with pytest.raises(ValueError, match="degree1"):
        linearization_coefficients(-1, 1, q=3)
    with pytest.raises(TypeError, match="degree2"):
        linearization_coefficients(1, 1.5, q=3)


# ---------------------------------------------------------------------------------------------------------------
# power series of the families


def _taylor(f, n):
    with mp.workdps(40):
        return np.array([float(c) for c in mp.taylor(f, 0, n - 1)])


@pytest.mark.parametrize(
    "kernel, f",
    [
        (ExponentialKernel(kappa=1.7), lambda t: mp.exp(1.7 * t)),
        (GaussianKernel(gamma=0.6), lambda t: mp.exp(-1.2 * (1 - t))),
        (PolynomialKernel(p=4, c=0.5), lambda t: (0.5 + t) ** 4),
        (MonomialKernel(p=3), lambda t: t**3),
        (InverseMultiquadricKernel(c=1.0, beta=0.7), lambda t: (3 - 2 * t) ** mp.mpf(-0.7)),
        (ArcCosineKernel(order=1), lambda t: (mp.sqrt(1 - t * t) + (mp.pi - mp.acos(t)) * t) / mp.pi),
        (2.0 * ExponentialKernel(kappa=1.0) + MonomialKernel(p=2), lambda t: 2 * mp.exp(t) + t**2),
    ],
)
def test_power_series_of_the_families(kernel, f):
    c, remainder, spread = power_series(kernel, 24)
    np.testing.assert_allclose(c, _taylor(f, 24), rtol=1e-13, atol=1e-25)
    assert spread == 0.0
    assert remainder >= 0 and remainder == pytest.approx(kernel.phi_at_one() - c.sum(), abs=1e-14)


def test_no_power_series_for_kernels_without_one():
    for kernel in (DistanceKernel(s=1.0), HeatKernel(time=0.1), SFRIKKernel()):
        assert power_series(kernel, 8) is None


# ---------------------------------------------------------------------------------------------------------------
# products


def test_operator_and_flattening():
    k1, k2, k3 = ExponentialKernel(kappa=1.0), MonomialKernel(p=2), ArcCosineKernel(order=0)
    product = k1 * k2
    assert isinstance(product, ProductKernel) and product.kernels == (k1, k2)
    assert (product * k3).kernels == (k1, k2, k3)
    assert isinstance(2.0 * k1, ScaledKernel) and isinstance(k1 * 2.0, ScaledKernel)
    assert product == ProductKernel([k1, k2]) and hash(product) == hash(ProductKernel([k1, k2]))
    assert product.has_corner is False and (product * k3).has_corner is True
    assert MonomialKernel(p=2) * PolynomialKernel(p=3) != product
    assert (MonomialKernel(p=2) * PolynomialKernel(p=3)).degree == 5
    with pytest.raises(TypeError):
        ProductKernel([k1, "gaussian"])
    with pytest.raises(TypeError):
        ProductKernel(k1)


@pytest.mark.parametrize(
    "kernel",
    [
        2.5 * HeatKernel(time=0.3),
        0.5 * (GaussianKernel(gamma=1.0) + MonomialKernel(p=2)),
        GaussianKernel(gamma=2.0) + ExponentialKernel(kappa=0.5) + MonomialKernel(p=1),
        GaussianKernel(gamma=0.7).truncate(4),
        3.0 * GaussianKernel(gamma=0.7).truncate(4),
    ],
    ids=repr,
)
def test_combinators_name_their_constructor_arguments(kernel):
    # _named_params lists the constructor arguments by name (what the frontends rebuild a kernel from): the kernel
    # rebuilt from them is equal, and its factor is there by name beside the inner kernel and its hyperparameters
    from dotkernels.integrations._common import parameters, with_parameters

    named = dict(kernel._named_params())
    assert type(kernel)(**named) == kernel
    assert set(kernel.hyperparameters) <= set(named)
    assert parameters(kernel) == named
    t = np.linspace(-1, 1, 9)
    if isinstance(kernel, ScaledKernel):
        assert list(named) == ["c", "kernel"] and named["c"] == kernel.c
        assert named["kernel"].hyperparameters == kernel.kernel.hyperparameters
        doubled = with_parameters(kernel, {"c": 2 * kernel.c})
        assert type(doubled) is ScaledKernel and doubled.kernel == kernel.kernel
        np.testing.assert_allclose(doubled.profile(t, q=3), 2 * kernel.profile(t, q=3), rtol=1e-15)
    elif isinstance(kernel, SumKernel):
        assert list(named) == ["kernels"] and named["kernels"] == kernel.kernels
    else:
        assert list(named) == ["kernel", "degree"] and named["degree"] == 4


def test_a_family_without_named_hyperparameters_is_refused_by_the_frontends():
    from dotkernels.integrations._common import parameters
    from dotkernels.kernels._base import Hyperparameter

    class Unnamed(GaussianKernel):  # declares a hyperparameter but does not list it in _named_params
        width = Hyperparameter(positive=True)

        def __init__(self, gamma=1.0, width=1.0):
            super().__init__(gamma=gamma)
            self.width = width

    with pytest.raises(TypeError, match=r"Unnamed._named_params\(\) must list .*\['width'\]"):
        parameters(Unnamed())


def test_product_profile_and_derivative():
    k = ExponentialKernel(kappa=0.8) * ArcCosineKernel(order=1) * MonomialKernel(p=2)
    t = np.linspace(-0.95, 0.95, 11)
    expected = np.exp(0.8 * t) * ArcCosineKernel(order=1).profile(t) * t**2
    np.testing.assert_allclose(k.profile(t), expected, rtol=1e-14)
    h = 1e-6
    numeric = (k.profile(t + h) - k.profile(t - h)) / (2 * h)
    np.testing.assert_allclose(k.derivative(t), numeric, rtol=1e-7, atol=1e-9)
    assert k.phi_at_one() == pytest.approx(np.exp(0.8))


@pytest.mark.parametrize("q", [3, 5])
def test_series_product_spectrum_against_mpmath(q):
    k = GaussianKernel(gamma=0.5) * ArcCosineKernel(order=0)
    reference = np.array(
        [float(x) for x in spectrum_mp(lambda t: mp.exp(-(1 - t)) * (1 - mp.acos(t) / mp.pi), q, 6, dps=20)]
    )
    a, error = k.spectrum(6, q=q), k.spectrum_error(6, q=q)
    assert np.all(np.abs(a - reference) <= error + 1e-14 * np.abs(reference))


@pytest.mark.parametrize("q", [3, 64, 4096])
def test_series_route_equals_linearisation_route(q):
    """Polynomial x exponential: by series, and by linearising the polynomial's own (finite) Gegenbauer series."""
    polynomial = PolynomialKernel(p=3, c=0.5)
    as_legendre = LegendreSeriesKernel(polynomial.spectrum(3, q=q))  # same function in dimension q, no series
    by_series = ExponentialKernel(kappa=1.0) * polynomial
    by_linearisation = ExponentialKernel(kappa=1.0) * as_legendre
    a, b = by_series.spectrum(12, q=q), by_linearisation.spectrum(12, q=q)
    bound = by_series.spectrum_error(12, q=q) + by_linearisation.spectrum_error(12, q=q)
    assert np.all(np.abs(a - b) <= bound + 1e-12 * a)
    assert np.all(by_linearisation.spectrum_error(12, q=q) <= 1e-10 * a)


def test_linearised_product_against_mpmath_quadrature():
    q = 4
    heat, sfrik = HeatKernel(time=0.05), SFRIKKernel()
    k = heat * sfrik

    def phi(t):
        x = np.array(float(t))
        return mp.mpf(float(heat.profile(x, q=q))) * mp.mpf(float(sfrik.profile(x, q=q)))

    reference = np.array([float(x) for x in spectrum_mp(phi, q, 8, dps=20)])
    a, error = k.spectrum(8, q=q), k.spectrum_error(8, q=q)
    # the reference profile is float64: 1e-12 relative of phi(1) covers it
    assert np.all(np.abs(a - reference) <= error + 1e-12 * k.phi_at_one(q=q))


def test_linearised_product_with_a_corner_and_its_bound():
    q = 5
    k = GaussianKernel(gamma=1.0) * DistanceKernel(s=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpectrumAccuracyWarning)
        reference = np.array(
            [float(x) for x in spectrum_mp(lambda t: -mp.exp(-2 * (1 - t)) * mp.sqrt(2 - 2 * t), q, 5, dps=20)]
        )
    a, error = k.spectrum(5, q=q), k.spectrum_error(5, q=q)
    assert np.all(np.abs(a - reference) <= error)
    # the distance kernel's tail beyond the truncation is large, but it meets only the Gaussian's tiny tail
    assert np.all(error <= 1e-10 * np.abs(reference))


def test_three_factor_linearised_product():
    q = 6
    k = HeatKernel(time=0.1) * SFRIKKernel() * DistanceKernel(s=1.0)
    x, w = np.polynomial.legendre.leggauss(400)
    theta = np.pi * (x + 1) / 2
    t = np.cos(theta)
    weight = w * np.sin(theta) ** (q - 2)
    weight /= weight.sum()
    reference = np.array([harmonic_dimension(l, q=q) for l in range(7)]) * (
        legendre_all(6, t, q=q) @ (weight * k.profile(t, q=q))
    )
    a, error = k.spectrum(6, q=q), k.spectrum_error(6, q=q)
    assert np.all(np.abs(a - reference) <= error + 1e-12 * k.phi_at_one(q=q) + 1e-9 * np.abs(reference))


def test_product_of_scaled_factors_scales():
    k1, k2 = ExponentialKernel(kappa=1.0), ArcCosineKernel(order=1)
    np.testing.assert_allclose((3.0 * k1 * k2).spectrum(10, q=30), 3.0 * (k1 * k2).spectrum(10, q=30), rtol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# compositions


def test_composition_profile_and_validation():
    k = CompositionKernel(GaussianKernel(gamma=0.5), ArcCosineKernel(order=1))
    t = np.linspace(-1, 1, 9)
    np.testing.assert_allclose(k.profile(t), np.exp(-(1 - ArcCosineKernel(order=1).profile(t))), rtol=1e-14)
    assert k.phi_at_one() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="inner"):
        CompositionKernel(GaussianKernel(), ExponentialKernel(kappa=1.0))  # exp(1) > 1
    with pytest.raises(ValueError, match="q"):
        CompositionKernel(GaussianKernel(), SFRIKKernel())
    with pytest.raises(TypeError):
        CompositionKernel(GaussianKernel(), np.cos)


@pytest.mark.parametrize("q", [3, 6])
def test_composition_spectra_against_mpmath(q):
    kappa1 = lambda t: (mp.sqrt(1 - t * t) + (mp.pi - mp.acos(t)) * t) / mp.pi  # noqa: E731
    cases = [
        (CompositionKernel(GaussianKernel(gamma=0.5), ArcCosineKernel(order=1)), lambda t: mp.exp(-(1 - kappa1(t)))),
        (CompositionKernel(ArcCosineKernel(order=0), 0.9 * GaussianKernel(gamma=0.3)), None),
    ]
    for kernel, phi in cases:
        if phi is None:

            def phi(t):
                return 1 - mp.acos(mp.mpf("0.9") * mp.exp(-mp.mpf("0.6") * (1 - t))) / mp.pi

        reference = np.array([float(x) for x in spectrum_mp(phi, q, 6, dps=20)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpectrumAccuracyWarning)
            a, error = kernel.spectrum(6, q=q), kernel.spectrum_error(6, q=q)
        assert np.all(np.abs(a - reference) <= error + 1e-13 * np.abs(reference))


def test_arc_cosine_composition_is_a_relu_network():
    # kappa_1(kappa_1(t)) = 4 K_2 for sigma_w^2 = 1 and no bias
    k = CompositionKernel(ArcCosineKernel(order=1), ArcCosineKernel(order=1))
    network = NNGPKernel(depth=2, weight_variance=1.0)
    for q in (3, 1024):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpectrumAccuracyWarning)
            a, b = k.spectrum(30, q=q), 4 * network.spectrum(30, q=q)
            bound = k.spectrum_error(30, q=q) + 4 * network.spectrum_error(30, q=q)
        assert np.all(np.abs(a - b) <= bound) and np.all(bound <= 1e-7 * b)


def test_composition_without_a_series_uses_quadrature():
    q = 3
    outer, inner = DistanceKernel(s=1.0), ArcCosineKernel(order=1)
    k = CompositionKernel(outer, inner)
    kappa1 = lambda t: (mp.sqrt(1 - t * t) + (mp.pi - mp.acos(t)) * t) / mp.pi  # noqa: E731
    reference = np.array([float(x) for x in spectrum_mp(lambda t: -mp.sqrt(2 - 2 * kappa1(t)), q, 4, dps=20)])
    a, error = k.spectrum(4, q=q), k.spectrum_error(4, q=q)
    assert np.all(np.abs(a - reference) <= error + 1e-13 * np.abs(reference))
    assert np.all(error <= 1e-10 * np.abs(reference))
    assert k.is_positive_semidefinite(q=q, degree=4) is False  # a_0 < 0, like the distance kernel


def test_linearised_products_that_would_run_for_minutes_are_refused():
    import time

    kernel = ProductKernel([DistanceKernel(1.0), HeatKernel(0.3)])
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"degrees up to about 174 are feasible"):
        kernel.spectrum(300, q=5)
    assert time.perf_counter() - start < 1.0


def test_profile_kernel_refuses_degrees_beyond_its_work_limit():
    from dotkernels.kernels import ProfileKernel

    with pytest.raises(ValueError, match=r"degrees up to about 3503 are feasible"):
        ProfileKernel(np.exp).spectrum(10**5, q=5)


def test_log_phi_at_one_of_a_product_is_the_sum_of_its_factors():
    kernel = ProductKernel([ExponentialKernel(800.0), PolynomialKernel(3, 1.0)])
    assert kernel.log_phi_at_one() == pytest.approx(800.0 + 3.0 * np.log(2.0), rel=1e-15)
    with pytest.warns(RuntimeWarning, match="log_phi_at_one"):
        assert kernel.phi_at_one() == np.inf


def test_composition_quadrature_refuses_degrees_beyond_its_limit():
    kernel = CompositionKernel(DistanceKernel(1.0), GaussianKernel(1.0))
    with pytest.raises(ValueError, match=r"degree must be <= 2000 for the quadrature spectrum"):
        kernel.spectrum(10**5, q=3)


def test_series_and_linearisation_sizes_beyond_their_limits_are_refused():
    with pytest.raises(ValueError, match=r"terms must be <= 16384"):
        power_series(ExponentialKernel(1.0), 10**6)
    with pytest.raises(ValueError, match=r"terms must be <= 12247 at depth 4"):
        NNGPKernel(depth=4).power_series(10**5)
    with pytest.raises(ValueError, match=r"degree1 \+ degree2 must be <= 10\^7"):
        linearization_coefficients(10**9, 10**9, q=3)
