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

Every p-value is :math:`P(T \ge t)` under the test's null law (the observed value included for the discrete
statistics Hodges_Ajne, Cressie and Num_uncover; the lower tail for CJ12, whose small values reject). The default
``method="auto"`` gives each test a p-value valid at the n and q it is given: the asymptotic law where its size was
measured within binomial error of the level (``docs/calibration.md``, :mod:`dotkernels.calibration`), otherwise and
for the tests without an asymptotic law a finite-n Monte Carlo law (1999 uniform samples from a
fixed seed, cached per test, n, q and parameters), and CJ12's exact union bound; ``method="asymptotic"`` gives the
asymptotic laws alone (NaN in a battery for a test without one), a :class:`scipy.stats.MonteCarloMethod` a fresh
Monte Carlo law for every test.

Where the library differs from sphunif (1.4.4) on purpose: CJ12's p-value is the lower tail (sphunif's upper tail has
no power against concentration and rejects up to 100 % of uniform samples at q = 3), Hodges_Ajne reports
:math:`P(H \ge h)` (sphunif: :math:`P(H > h)`, exact size 0.111 at n = 20 for a 5 % test), Num_uncover's normal
law has a continuity correction; the evidence is in the notes of ``dotkernels.uniformity._calibrated``.

References
----------
.. [1] García-Portugués, E. and Verdebout, T. (2018). An overview of uniformity tests on the hypersphere.
   arXiv:1804.00286.
.. [2] García-Portugués, E. and Verdebout, T. sphunif: Uniformity Tests on the Circle, Sphere, and Hypersphere.
   R package, https://CRAN.R-project.org/package=sphunif.
.. [3] García-Portugués, E., Navarro-Esteban, P. and Cuesta-Albertos, J. A. (2023). On a projection-based class of
   uniformity tests on the hypersphere. Bernoulli 29(1).
.. [4] Cai, T. T. and Jiang, T. (2012). Phase transition in limiting distributions of coherence of
   high-dimensional random matrices. Journal of Multivariate Analysis 107, 24-39.
.. [5] Ajne, B. (1968). A simple test for uniformity of a circular distribution. Biometrika 55(2), 343-354.
.. [6] Bingham, C. (1974). An antipodally symmetric distribution on the sphere. The Annals of Statistics 2(6),
   1201-1225.
.. [7] Rayleigh, Lord (1919). On the problem of random vibrations, and of random flights in one, two, or three
   dimensions. Philosophical Magazine 37(220), 321-347.
"""

from . import _specs
from ._battery import UniformityBatteryResult as UniformityBatteryResult
from ._battery import uniformity_battery as uniformity_battery
from ._calibrated import CalibrationWarning as CalibrationWarning
from ._core import *  # noqa: F403
from ._core import UNIFORMITY_TESTS, UniformityTest, register_uniformity_test
from ._core import __all__ as _core_all

__all__ = sorted(
    [
        *_core_all,
        "CalibrationWarning",
        "UniformityBatteryResult",
        "available_uniformity_tests",
        "uniformity_battery",
    ]
)


def available_uniformity_tests(*, q: int | None = None) -> tuple[str, ...]:
    """sphunif's names of the tests that run in dimension q (every test if None), as ``test="all"`` runs them.

    Parameters
    ----------
    q : int, optional
        Dimension (circular tests at q = 2, CJ12, Stereo and Rayleigh_HD at q >= 3); None lists every test.

    Returns
    -------
    tuple of str
        The names, sorted case-insensitively.

    See Also
    --------
    uniformity_battery : Runs them on one sample.

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
        law = spec.null_law(n, q, spec.check(dict(params), q), method)
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
