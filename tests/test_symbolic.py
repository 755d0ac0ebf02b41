"""Symbolic Gegenbauer algebra against sympy's own polynomials, closed forms and the numerical core; derivations."""

import math
import subprocess
import sys

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from _helpers import sphere
from hypothesis import given, settings
from hypothesis import strategies as st

from dotkernels.gegenbauer import harmonic_dimension, legendre, legendre_to_monomial
from dotkernels.kernels import DistanceKernel, GaussianKernel, MonomialKernel, PolynomialKernel
from dotkernels.regularizers import (
    centering,
    centering_whitening_via_kernel,
    spectral_contrastive_repulsion,
    wang_isola_uniformity,
    whitening,
)
from dotkernels.symbolic import (
    Identity,
    derive_barlow_twins_relation,
    derive_centering_whitening_identity,
    derive_energy_distance_identity,
    derive_spectral_contrastive_identity,
    derive_uniformity_identity,
    derive_vicreg_covariance_relation,
    harmonic_dimension_symbolic,
    legendre_series_to_monomial,
    legendre_symbolic,
    monomial_spectrum_symbolic,
    polynomial_kernel_spectrum_symbolic,
)

q, t = sp.symbols("q t")


# ---------------------------------------------------------------------------------------------------------------
# polynomials


@pytest.mark.parametrize("l", range(9))
def test_legendre_at_q3_is_legendre_and_at_q2_is_chebyshev(l):
    P = legendre_symbolic(l, t, q=q)
    assert sp.expand(P.subs(q, 3) - sp.legendre(l, t)) == 0
    assert sp.expand(P.subs(q, 2) - sp.chebyshevt(l, t)) == 0
    assert sp.expand(legendre_symbolic(l, t, q=3) - sp.legendre(l, t)) == 0  # integer q directly
    assert sp.cancel(P.subs(t, 1)) == 1


@pytest.mark.parametrize("l", range(6))
def test_legendre_symbolic_is_normalised_gegenbauer(l):
    lam = (q - 2) / 2
    C = sp.gegenbauer(l, lam, t)
    ref = C / C.subs(t, 1)
    assert sp.simplify(sp.expand_func(legendre_symbolic(l, t, q=q) - ref)) == 0


def test_low_degrees_match_the_reference_formulas():
    assert sp.cancel(legendre_symbolic(2, t, q=q) - (q * t**2 - 1) / (q - 1)) == 0
    assert sp.cancel(legendre_symbolic(3, t, q=q) - ((q + 2) * t**3 - 3 * t) / (q - 1)) == 0
    p4 = ((q + 2) * (q + 4) * t**4 - 6 * (q + 2) * t**2 + 3) / (q**2 - 1)
    assert sp.cancel(legendre_symbolic(4, t, q=q) - p4) == 0


@pytest.mark.parametrize("qq", [2, 3, 5, 17, 64, 1000])
def test_legendre_symbolic_matches_numerical_core(qq):
    ts = np.linspace(-1, 1, 13)
    for l in range(8):
        f = sp.lambdify(t, legendre_symbolic(l, t, q=q).subs(q, qq), "numpy")
        np.testing.assert_allclose(f(ts) * np.ones_like(ts), legendre(l, ts, q=qq), rtol=1e-12, atol=1e-13)


@given(l=st.integers(0, 6), qq=st.integers(2, 200))
@settings(max_examples=25)
def test_orthogonality_and_harmonic_dimension(l, qq):
    # E_nu[P_l^2] = 1/N(q,l): integrate against the density c_q (1-s^2)^((q-3)/2) exactly (Beta integrals of t^k)
    P = sp.Poly(legendre_symbolic(l, t, q=qq), t)
    sq = sp.Poly(P.as_expr() ** 2, t)
    moments = monomial_spectrum_symbolic  # a_0(t^k) = E_nu[t^k]
    value = sum(c * moments(k, q=qq)[0] for (k,), c in sq.terms())
    assert sp.nsimplify(value) == sp.Rational(1, harmonic_dimension(l, q=qq))
    assert harmonic_dimension_symbolic(l, q=qq) == harmonic_dimension(l, q=qq)
    assert harmonic_dimension_symbolic(l, q=q).subs(q, qq) == harmonic_dimension(l, q=qq)


def test_harmonic_dimension_symbolic_low_degrees():
    assert harmonic_dimension_symbolic(0, q=q) == 1
    assert sp.expand(harmonic_dimension_symbolic(1, q=q) - q) == 0
    assert sp.expand(harmonic_dimension_symbolic(2, q=q) - (q - 1) * (q + 2) / 2) == 0


# ---------------------------------------------------------------------------------------------------------------
# spectra


def closed_form_monomial(p, l, qs):
    """a_l(t^p) = N(q,l) p! Gamma(q/2) / (2^p ((p-l)/2)! Gamma((p+l+q)/2)) (shared/MATH.md)."""
    if l > p or (p - l) % 2:
        return sp.Integer(0)
    lam = (
        sp.factorial(p)
        * sp.gamma(qs / 2)
        / (2**p * sp.factorial((p - l) // 2) * sp.gamma(sp.Rational(p + l, 2) + qs / 2))
    )
    return harmonic_dimension_symbolic(l, q=qs) * lam


@pytest.mark.parametrize("p", range(7))
def test_monomial_spectrum_matches_closed_form(p):
    a = monomial_spectrum_symbolic(p, q=q)
    assert len(a) == p + 1
    for l in range(p + 1):
        assert sp.simplify(sp.gammasimp(a[l] - closed_form_monomial(p, l, q))) == 0
    # and t^p = sum_l a_l P_{l,q}
    assert sp.cancel(sum(a[l] * legendre_symbolic(l, t, q=q) for l in range(p + 1)) - t**p) == 0


@pytest.mark.parametrize("qq", [2, 3, 7, 64])
def test_monomial_and_polynomial_spectra_match_kernels(qq):
    for p in range(6):
        a = [float(x.subs(q, qq)) for x in monomial_spectrum_symbolic(p, q=q)]
        np.testing.assert_allclose(a, MonomialKernel(p=p).spectrum(p, q=qq), rtol=1e-12, atol=1e-15)
    c = sp.Rational(7, 10)
    coeffs = [sp.binomial(4, j) * c ** (4 - j) for j in range(5)]  # (0.7 + t)^4
    a = [float(x) for x in polynomial_kernel_spectrum_symbolic(coeffs, q=qq)]
    np.testing.assert_allclose(a, PolynomialKernel(p=4, c=0.7).spectrum(4, q=qq), rtol=1e-12)


def test_polynomial_spectrum_with_symbolic_coefficients_and_mercer_eigenvalues():
    c0, c1, c2 = sp.symbols("c0 c1 c2")
    a = polynomial_kernel_spectrum_symbolic([c0, c1, c2], q=q)
    assert sp.cancel(a[0] - (c0 + c2 / q)) == 0
    assert sp.cancel(a[1] - c1) == 0
    assert sp.cancel(a[2] - c2 * (q - 1) / q) == 0
    # Mercer eigenvalue of t^2 at degree 2: a_2 / N(q,2) = 2 / (q (q+2))
    assert sp.cancel(a[2].subs(c2, 1) / harmonic_dimension_symbolic(2, q=q) - 2 / (q * (q + 2))) == 0


@pytest.mark.parametrize("qq", [2, 3, 5, 40])
def test_legendre_series_to_monomial_round_trip(qq):
    a = [sp.Rational(1, 3), 0, 1, 40, sp.Rational(-5, 7), 2]
    c_int = legendre_series_to_monomial(a, q=qq)
    c_sym = [x.subs(q, qq) for x in legendre_series_to_monomial(a, q=q)]
    ref = legendre_to_monomial([float(x) for x in a], q=qq, exact=True)  # Fractions, numeric q (core module)
    assert [sp.nsimplify(x) for x in c_int] == [sp.nsimplify(x) for x in c_sym]
    np.testing.assert_allclose([float(x) for x in c_int], [float(x) for x in ref], rtol=1e-14)
    back = polynomial_kernel_spectrum_symbolic(c_int, q=qq)
    assert [sp.nsimplify(x) for x in back] == [sp.nsimplify(x) for x in a]


def test_sfrik_kernel_in_monomials_symbolic_q():
    c = legendre_series_to_monomial([0, 1, 40, 40], q=q)
    series = sum(ci * t**i for i, ci in enumerate(c))
    ref = t + 40 * (q * t**2 - 1) / (q - 1) + 40 * ((q + 2) * t**3 - 3 * t) / (q - 1)
    assert sp.cancel(series - ref) == 0


# ---------------------------------------------------------------------------------------------------------------
# derivations


DERIVATIONS = [
    derive_centering_whitening_identity,
    derive_uniformity_identity,
    derive_spectral_contrastive_identity,
    derive_energy_distance_identity,
    derive_vicreg_covariance_relation,
    derive_barlow_twins_relation,
]


@pytest.mark.parametrize("derive", DERIVATIONS, ids=lambda f: f.__name__)
def test_derivations_verify(derive):
    identity = derive()
    assert isinstance(identity, Identity)
    assert identity.verify()
    assert sp.simplify(identity.simplified_difference()) == 0
    for step in identity.steps:
        assert step.verify(), step.name
    # a perturbed statement must fail: the check is not vacuous
    wrong = Identity.of("perturbed", identity.lhs, identity.rhs + sp.Rational(1, 7))
    assert not wrong.verify()


def test_centering_whitening_identity_other_sizes_and_numbers():
    ident = derive_centering_whitening_identity(check_size=(4, 2))
    assert ident.verify()
    # the 'q/(q-1)' factor matters
    A, B = ident.symbols["A"], ident.symbols["B"]
    b2 = ident.symbols["b2"]
    assert not Identity.of("bad", ident.lhs, ident.rhs.subs(b2, b2 * (q + 1) / q)).verify()
    # numbers: substitute the moments of a random batch; both sides equal the kernel MMD
    rng = np.random.default_rng(3)
    Z = sphere(rng, 11, 6)
    subs = {A: float(centering(Z)), B: float(np.trace((Z.T @ Z / 11) @ (Z.T @ Z / 11))), q: 6}
    subs.update({ident.symbols["b1"]: 1.5, b2: 40.0})
    mmd = float(centering_whitening_via_kernel(Z, b1=1.5, b2=40.0))
    assert math.isclose(float(ident.lhs.subs(subs)), mmd, rel_tol=1e-12)
    assert math.isclose(float(ident.rhs.subs(subs)), mmd, rel_tol=1e-12)


def test_uniformity_identity_numbers():
    ident = derive_uniformity_identity()
    s = ident.symbols
    for qq, gamma in [(3, 1.0), (10, 2.5), (64, 0.7)]:
        a0 = float(s["a0_closed_form"].subs({s["q"]: qq, s["gamma"]: gamma}).evalf(30))
        assert math.isclose(a0, GaussianKernel(gamma=gamma).uniform_mean_embedding(q=qq), rel_tol=1e-12)
        assert math.isclose(a0, float(mp.exp(-2 * gamma) * mp.hyp0f1(mp.mpf(qq) / 2, gamma**2)), rel_tol=1e-14)
    rng = np.random.default_rng(5)
    Z = sphere(rng, 9, 4)
    gamma = 2.0
    M = float(np.mean(np.exp(-gamma * np.sum((Z[:, None] - Z[None]) ** 2, axis=-1))))
    a0 = GaussianKernel(gamma=gamma).uniform_mean_embedding(q=4)
    lhs = float(ident.lhs.subs({s["n"]: 9, s["M"]: M}))
    rhs = float(ident.rhs.subs({s["n"]: 9, s["M"]: M, s["a0"]: a0}))
    assert math.isclose(lhs, float(wang_isola_uniformity(Z, gamma=gamma)), rel_tol=1e-12)
    assert math.isclose(rhs, lhs, rel_tol=1e-12)


def test_spectral_contrastive_and_energy_identity_numbers():
    ident = derive_spectral_contrastive_identity()
    s = ident.symbols
    Z = sphere(np.random.default_rng(8), 7, 5)
    B = float(np.mean((Z @ Z.T) ** 2))
    assert math.isclose(
        float(ident.lhs.subs({s["n"]: 7, s["B"]: B})), float(spectral_contrastive_repulsion(Z)), rel_tol=1e-12
    )
    assert math.isclose(float(ident.steps[2].lhs.subs({s["B"]: B, s["q"]: 5})), float(whitening(Z)), rel_tol=1e-12)
    energy = derive_energy_distance_identity()
    for qq in (2, 3, 9, 300):
        c = float(energy.symbols["c_closed_form"].subs(energy.symbols["q"], qq).evalf(30))
        assert math.isclose(c, -DistanceKernel(s=1.0).uniform_mean_embedding(q=qq), rel_tol=1e-12)


def test_vicreg_and_barlow_relations_at_other_sizes():
    assert derive_vicreg_covariance_relation(2, q=3).verify()
    assert derive_vicreg_covariance_relation(4, q=2).verify()
    assert derive_barlow_twins_relation(2, q=3).verify()
    assert derive_barlow_twins_relation(3, q=2, redundancy_weight=sp.Rational(51, 10000)).verify()


def test_identity_str_and_fields():
    ident = derive_spectral_contrastive_identity(q=7)
    assert "MMD_U" in str(ident)
    assert sp.simplify(ident.difference - (ident.lhs - ident.rhs)) == 0
    assert ident.verify()


# ---------------------------------------------------------------------------------------------------------------
# validation and lazy import


def test_errors():
    with pytest.raises(ValueError, match="q must be an integer dimension >= 2"):
        legendre_symbolic(2, q=1)
    with pytest.raises(TypeError, match="q must be"):
        legendre_symbolic(2, q=2.5)
    with pytest.raises(TypeError, match="q must be"):
        legendre_symbolic(2, q=sp.Rational(5, 2))
    with pytest.raises(ValueError, match="degree"):
        legendre_symbolic(-1, q=q)
    with pytest.raises(TypeError, match="degree"):
        harmonic_dimension_symbolic(1.5, q=q)
    with pytest.raises(ValueError, match="non-empty"):
        legendre_series_to_monomial([], q=q)
    with pytest.raises(ValueError, match="n must be >= 2"):
        derive_vicreg_covariance_relation(1, q=2)
    with pytest.raises(TypeError):
        harmonic_dimension_symbolic(2, 3)  # q is keyword-only


def test_dotkernels_imports_without_sympy():
    code = (
        "import sys; sys.modules['sympy'] = None\n"
        "import dotkernels, dotkernels.symbolic, dotkernels.regularizers\n"
        "try:\n"
        "    dotkernels.symbolic.legendre_symbolic(2)\n"
        "except ImportError as e:\n"
        "    print('ok', 'sympy' in str(e))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok True", out.stderr
