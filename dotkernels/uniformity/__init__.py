r"""Uniformity tests on the circle and the sphere :math:`S^{q-1}`: every test of the R package sphunif.

:func:`uniformity_test` runs one test (``uniformity_test(Z, "Kuiper")``) or several on one sample
(``uniformity_test(Z, ["Rayleigh", "Bingham", "PCvM"])``, ``uniformity_test(Z, "all")``); test names are sphunif's,
matched case-insensitively, and parameters keep sphunif's meaning. One test gives a
:class:`UniformityTestResult` (``statistic, pvalue = ...``); several give a :class:`UniformityBatteryResult`, a
mapping test name -> result that prints as a table, computed with one pass over the pairs of points (the inner
products and every pairwise function are computed once and shared) and, with a
:class:`scipy.stats.MonteCarloMethod`, one set of simulated uniform samples for all the tests.
:func:`available_uniformity_tests` lists the tests of a dimension, what ``"all"`` runs (sphunif's
``avail_cir_tests`` at q = 2, ``avail_sph_tests`` at q >= 3).

The tests (parameters in brackets; statistics as sphunif defines them; null laws):

- kernel (Sobolev) tests, any q: Rayleigh (modified: Jupp's finite-n modification), Bingham, Ajne, Gine_Gn,
  Gine_Fn, Bakshaev, Riesz (s), Poisson (rho), Softmax (kappa), Sobolev (vk2): weighted chi-square laws with the
  neglected tail's mean folded in (module notes of ``_core``);
- projected-ecdf tests, any q: PCvM, PAD, PRt (t): V-statistics of kernels computed by quadrature, weighted
  chi-square laws with weights by quadrature (``_spherical``);
- Stein (K, cf), any q: finite Sobolev test from Stein's identity; Stereo (a), q >= 3: stereographic test, a
  U-statistic with a centred weighted chi-square law (q >= 4; Monte Carlo at q = 3);
- CJ12 (regime, beta), q >= 3: Cai & Jiang's extreme-value test; Rayleigh_HD: normal law; CCF09 (directions,
  n_proj, rng): random projections, Monte Carlo; Pycke: log kernel (Gumbel law at q = 2, Monte Carlo otherwise);
- circular tests, q = 2 (``_circular``): Kuiper, Watson, Watson_1976 (their limit laws), Hodges_Ajne (exact law),
  Cressie (t) and FG01 (Monte Carlo), the spacings tests Range (exact), Rao, Greenwood, Log_gaps, Gini,
  Gini_squared, Vacancy (a), Max_uncover (a), Num_uncover (a) (normal or Gumbel laws), and the Sobolev tests
  Hermans_Rasson, Pycke_q (pycke_q), Rothman (t) (weighted chi-square laws with 2 degrees of freedom).

Tests without an asymptotic law need ``method=scipy.stats.MonteCarloMethod(...)`` alone; in a battery they get a
NaN p-value (the reason in ``notes``).
"""

from . import _specs
from ._battery import UniformityBatteryResult as UniformityBatteryResult
from ._battery import uniformity_battery as uniformity_battery
from ._core import *  # noqa: F403
from ._core import UNIFORMITY_TESTS, UniformityTest, register_uniformity_test
from ._core import __all__ as _core_all

__all__ = sorted([*_core_all, "UniformityBatteryResult", "available_uniformity_tests", "uniformity_battery"])


def available_uniformity_tests(*, q: int | None = None) -> tuple[str, ...]:
    """sphunif's names of the tests that run in dimension q (every test if None), as ``test="all"`` runs them.

    Examples
    --------
    >>> "Kuiper" in available_uniformity_tests(q=2), "Kuiper" in available_uniformity_tests(q=3)
    (True, False)
    """
    return _specs.available_tests(q)


# =================================================================================================================
# sphunif's other tests in the registry of uniformity_test


def _adapter(spec: _specs.TestSpec) -> UniformityTest:
    """A registry entry of uniformity_test for a test of the one-pass registry."""

    def validate(params: dict) -> dict:
        return spec.check(dict(params), None)

    def statistic(Z, **params):
        q = Z.shape[1]
        _specs.lookup(spec.name, q)  # the dimension
        params = spec.check(dict(params), q)
        params = _specs.draw_random_directions(spec, params, q)
        return _specs.battery_statistics(_specs.Sample(Z), [(spec, params)])[0]

    def null(*, n, q, method, **params):
        _specs.lookup(spec.name, q)
        law = spec.null(n, q, spec.check(dict(params), q), method) if spec.null is not None else None
        if law is None:
            raise ValueError(
                f"test {spec.name!r} has no asymptotic null law in dimension q={q}; pass "
                "method=scipy.stats.MonteCarloMethod(...)"
            )
        return law

    return UniformityTest(
        spec.name,
        statistic=statistic,
        null=null if spec.null is not None else None,
        defaults=dict(spec.defaults),
        validate=validate,
        description=spec.description,
    )


for _spec in _specs.REGISTRY.values():
    if _spec.name.lower() not in UNIFORMITY_TESTS:
        register_uniformity_test(_adapter(_spec))
del _spec

# Rayleigh gains Jupp's finite-n modification (modified=True)
_rayleigh_kernel = UNIFORMITY_TESTS["rayleigh"].kernel
register_uniformity_test(
    UniformityTest(
        "rayleigh",
        kernel=lambda q, modified: _rayleigh_kernel(q=q),
        statistic=lambda Z, modified: _specs.rayleigh_statistic(_specs.Sample(Z), modified),
        defaults={"modified": False},
        validate=lambda p: _specs.REGISTRY["rayleigh"].check(dict(p), None),
        description="n q ||mean||^2 (modified=True: Jupp's (2001) finite-n modification); chi^2_q",
    ),
    replace=True,
)
