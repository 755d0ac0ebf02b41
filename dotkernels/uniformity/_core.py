r"""Uniformity tests on the sphere :math:`S^{q-1}`: the Sobolev class, with the definitions of the R package sphunif.

Every named test here is a kernel-MMD test against the uniform distribution :math:`\sigma`: for a dot-product kernel
:math:`\varphi(t) = \sum_{l \ge 0} a_l P_{l,q}(t)` with :math:`a_l \ge 0` for :math:`l \ge 1`,

.. math::

    T_n^V = n\,\mathrm{MMD}_V^2 = \frac1n \sum_{i,j=1}^n \varphi(X_i^T X_j) - n a_0, \qquad
    T_n^U = (n-1)\,\mathrm{MMD}_U^2 = \frac2n \sum_{i<j} \bigl(\varphi(X_i^T X_j) - a_0\bigr)
          = T_n^V - (\varphi(1) - a_0).

Under the null hypothesis :math:`X_i \sim \sigma` (i.i.d.),

.. math::

    T_n^V \rightsquigarrow T = \sum_{l \ge 1} \frac{a_l}{N(q,l)}\, \chi^2_{N(q,l)}, \qquad
    E[T_n^V] = E[T] = \sum_{l \ge 1} a_l = \varphi(1) - a_0 \ \text{(exactly, for every n)},

and :math:`T_n^U \rightsquigarrow T - (\varphi(1) - a_0)` (mean 0). In sphunif's notation the weights of the
chi-squares are :math:`v_k^2 = a_k / d_{p,k}` with :math:`d_{p,k} = N(q,k)`, p = q.

Named tests (``test=``, case-insensitive) and their kernels (:math:`\theta = \arccos t`,
:math:`\|x - y\| = \sqrt{2 - 2t} = 2\sin(\theta/2)`; the estimator is the test's default, "u" for sphunif's U-type
statistics):

============  ==========================================  =========================================  ===  ============
test          kernel :math:`\varphi(t)`                   as a dotkernels kernel                     est  degrees >= 1
============  ==========================================  =========================================  ===  ============
``rayleigh``  :math:`q\,t = q P_{1,q}(t)`                 ``LegendreSeriesKernel([0, q])``           v    1
``bingham``   :math:`N(q,2) P_{2,q}(t)`                   ``LegendreSeriesKernel([0, 0, N])``        v    2
``ajne``      :math:`\tfrac12 (1 - \theta/\pi)`           ``0.5 * ArcCosineKernel(order=0)``         v    odd
``gine_gn``   :math:`-c_q \sin\theta`                     ``GineKernel()``                           v    even
``gine_fn``   :math:`2 (1 - \theta/\pi) - c_q\sin\theta`  ``2 * ArcCosineKernel(0) + GineKernel()``  v    all
``bakshaev``  :math:`-\|x - y\|`                          ``DistanceKernel(s=1)``                    v    all
``riesz``     :math:`-\|x - y\|^s`, 0 < s <= 2            ``DistanceKernel(s=s)``                    v    all
``poisson``   :math:`\psi_\rho(t)`, 0 < rho < 1           ``PoissonKernel(rho, normalized=True)``    u    all
``softmax``   :math:`e^{\kappa (t - 1)}`, kappa > 0       ``GaussianKernel(gamma=kappa / 2)``        u    all
``sobolev``   :math:`\sum_{k=1}^K v_k^2 N(q,k) P_{k,q}`   ``LegendreSeriesKernel``                   v    v_k^2 > 0
``kernel``    any kernel with :math:`a_l \ge 0`, l >= 1   ``kernel=``                                v    its own
============  ==========================================  =========================================  ===  ============

The statistics, exactly as sphunif computes them (``sph_stat_*``), with :math:`\theta_{ij} = \arccos(X_i^T X_j)`,
:math:`\bar X` the sample mean and :math:`S = n^{-1} \sum_i X_i X_i^T`:

- Rayleigh :math:`R_n = n q \|\bar X\|^2`, null :math:`\chi^2_q`;
- Bingham :math:`B_n = \tfrac{n q (q+2)}{2} (\mathrm{tr}\, S^2 - 1/q)`, null :math:`\chi^2_{(q-1)(q+2)/2}`;
- Ajne :math:`A_n = \tfrac n4 - \tfrac{1}{n\pi} \sum_{i<j} \theta_{ij}`;
- Giné :math:`G_n = \tfrac n2 - \tfrac{q-1}{2n} \gamma_q^2 \sum_{i<j} \sin\theta_{ij}`,
  :math:`\gamma_q = \Gamma(\tfrac{q-1}{2}) / \Gamma(\tfrac q2)`, and :math:`F_n = 4 A_n + G_n`; the kernel constant
  :math:`c_q = \tfrac{q-1}{4} \gamma_q^2` makes :math:`E[c_q \sin\theta] = 1/2`;
- Riesz(s) :math:`-\tfrac2n \sum_{i<j} \|X_i - X_j\|^s + n\, E\|X - Y\|^s`; Bakshaev is s = 1 (the energy distance);
- Poisson(rho) :math:`\tfrac2n \sum_{i<j} (\psi_\rho(X_i^T X_j) - b_0)` with sphunif's kernel
  :math:`\psi_\rho(t) = ((1-\rho)^2 / (1 - 2\rho t + \rho^2))^{q/2}` (:math:`\psi_\rho(1) = 1`) and
  :math:`b_0 = (1-\rho)^{q-1}/(1+\rho)`;
- Softmax(kappa) :math:`\tfrac2n \sum_{i<j} (e^{\kappa(X_i^T X_j - 1)} - b_0)`,
  :math:`b_0 = \Gamma(\tfrac q2) (2/\kappa)^{q/2-1} I_{q/2-1}(\kappa) e^{-\kappa}`;
- Sobolev(vk2) :math:`\tfrac1n \sum_{i,j} \sum_{k=1}^K v_k^2 N(q,k) P_{k,q}(X_i^T X_j)`, null
  :math:`\sum_k v_k^2 \chi^2_{N(q,k)}`;
- kernel: :math:`n\,\mathrm{MMD}_V^2` (or :math:`(n-1)\,\mathrm{MMD}_U^2` with ``estimator="u"``).

Passing ``estimator`` other than the test's default gives the other statistic of the same kernel (its null law is
shifted accordingly). Ajne's kernel has odd degrees only (it cannot see axial alternatives), Giné's :math:`G_n` even
degrees only (it cannot see a mean direction); :math:`F_n`, Bakshaev, Riesz (s < 2), Poisson and Softmax have every
:math:`a_l > 0` (consistent against every alternative).

The registry of tests
---------------------
Every named test is one :class:`UniformityTest` entry of :data:`UNIFORMITY_TESTS` (name -> kernel or statistic
function, null law, default parameters and their validation, default estimator); :func:`register_uniformity_test`
adds one. :func:`uniformity_test`, :func:`uniformity_statistic` and :func:`uniformity_kernel` read nothing else, so a
new test needs no other change.

Null distribution and its accuracy
----------------------------------
The default ``method="auto"`` uses the asymptotic law where it was measured calibrated at the sample size and a
finite-n Monte Carlo law otherwise (see :mod:`dotkernels.uniformity`). ``method="asymptotic"`` uses the asymptotic
law: the exact chi-square when a single degree carries the
kernel (Rayleigh, Bingham), Imhof's inversion of :class:`~dotkernels.nulls.WeightedChiSquare` otherwise (relative
accuracy ~1e-10 in the tails). ``"imhof"``, ``"hbe"``, ``"sw"`` and ``"exact"`` choose the algorithm by name. A
:class:`scipy.stats.MonteCarloMethod` simulates the statistic on ``n_resamples`` samples of the same size (uniform
on the sphere unless ``rvs`` is given) and gives the Monte Carlo p-value
:math:`(1 + \#\{T^* \ge T\}) / (1 + n_{resamples})`, as :func:`scipy.stats.monte_carlo_test` does.

Infinite series are truncated adaptively (:func:`sobolev_null`): the degree L grows until the neglected mean
:math:`\sum_{l > L} a_l = \varphi(1) - a_0 - \sum_{1 \le l \le L} a_l` (exact for non-negative spectra) is at most
:data:`TAIL_RTOL` (1e-6) times :math:`\sum_{l \ge 1} a_l`, up to :data:`MAX_DEGREE` (2^21). The neglected mean is
added to the law's ``shift``, so the truncated law has the exact mean; what it leaves out is the centred remainder
:math:`R - E R`, whose variance is at most :math:`2 w_{L+1} E R` when the weights :math:`w_l = a_l/N(q,l)` do not
increase beyond L (true for every named test). Where the neglected mean cannot reach TAIL_RTOL by MAX_DEGREE
(Riesz with s < 1, large q) a :class:`~dotkernels.nulls.TruncationWarning` is issued only if that variance exceeds
TAIL_RTOL times the variance of the law (the p-values' error is of the order of their ratio); the neglected mean is
reported as ``truncation_error`` in every case. Degrees beyond 1000 enter the law in groups of nearly equal weight
(ratio <= 1.1; weights below 1e-10 of the largest grouped one in a few wider groups), each a scaled chi-square
with the group's exact mean and variance; degrees whose dimension
:math:`N(q,l)` overflows float64 or whose weight underflows (large q) enter through their mean only: their standard
deviation :math:`\sqrt{2 a_l w_l}` is below :math:`2 \cdot 10^{-140} \max(a_l, \sqrt{a_l})`.

References
----------
García-Portugués, E. and Verdebout, T. (2018). An overview of uniformity tests on the hypersphere.
arXiv:1804.00286. García-Portugués, E., Navarro-Esteban, P. and Cuesta-Albertos, J. A. (2023). On a
projection-based class of uniformity tests on the hypersphere. Bernoulli 29(1). Fernández-de-Marcos, A. and
García-Portugués, E. (2023). On new omnibus tests of uniformity on the hypersphere. TEST 32. R package sphunif.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special
from scipy.stats import MonteCarloMethod

from .._array_api import to_numpy
from .._validate import (
    check_block_size,
    check_dimension,
    check_estimator,
    check_integer,
    check_points,
    check_real,
    check_rng,
    host_float,
)
from ..gegenbauer import harmonic_dimension, log_harmonic_dimension
from ..kernels import (
    ArcCosineKernel,
    DistanceKernel,
    DotProductKernel,
    GaussianKernel,
    GineKernel,
    LegendreSeriesKernel,
    PoissonKernel,
    parse_kernel,
)
from ..mmd import mmd2_uniform
from ..nulls import MonteCarloNull, TruncationWarning, WeightedChiSquare
from . import _calibrated, _specs

__all__ = [
    "MAX_DEGREE",
    "TAIL_RTOL",
    "UNIFORMITY_TESTS",
    "UniformityTest",
    "UniformityTestResult",
    "register_uniformity_test",
    "sobolev_null",
    "uniformity_kernel",
    "uniformity_statistic",
    "uniformity_test",
]

#: Relative tolerance on the neglected mean of the truncated null series.
TAIL_RTOL: float = 1e-6
#: Largest degree the automatic truncation of a null series reaches.
MAX_DEGREE: int = 2**21

_ASYMPTOTIC_METHODS = ("asymptotic", "imhof", "hbe", "sw", "exact")
_METHODS = ("auto", *_ASYMPTOTIC_METHODS)
# Degrees whose log N(q, l) exceeds this (N ~ 1e304) or whose log weight is below _LOG_MIN_WEIGHT are not kept as
# chi-square terms (their mean goes into the shift of the law).
_LOG_MAX_DIM = 700.0
_LOG_MIN_WEIGHT = math.log(1e-280)
# Negative coefficients smaller than this (relative to sum_l a_l) are rounding noise and are treated as zero.
_NEGATIVE_RTOL = 1e-12
# A null law whose standard deviation is below this fraction of the kernel's size cannot be resolved in float64.
_DEGENERATE_RTOL = 1e-8
# Degrees up to this one are kept as individual chi-square terms; beyond, terms of nearly equal weight are grouped.
_DIRECT_DEGREE = 1000
# Largest weight ratio within a group, and the most groups (wider bins when the weights span a huge range).
_GROUP_RATIO = 1.1
# Weights within this factor of the largest grouped weight use ratio-1.1 groups; smaller ones (whose share of the
# variance is below this factor) share _COARSE_GROUPS wider groups.
_FINE_RANGE = 1e10
_COARSE_GROUPS = 16
# Degrees checked for negative coefficients before a Monte Carlo test of a user kernel.
_CHECK_DEGREE = 64
# First degree tried by the automatic truncation (doubled until the tolerance is met).
_FIRST_DEGREE = 64


# =================================================================================================================
# the registry of named tests


@dataclass(frozen=True, eq=False)
class UniformityTest:
    r"""One named uniformity test: how to get its statistic and its null law.

    A test is defined either by a dot-product ``kernel`` (statistic :math:`n\,\mathrm{MMD}_V^2` or
    :math:`(n-1)\,\mathrm{MMD}_U^2`, asymptotic null law by :func:`sobolev_null`) or by a ``statistic`` function;
    ``null`` overrides the asymptotic law (a test with neither a kernel nor ``null`` has Monte Carlo p-values only).

    Parameters
    ----------
    name : str
        Lower-case name (lookups are case-insensitive).
    kernel : callable, optional
        ``kernel(q=q, **params) -> DotProductKernel``.
    statistic : callable, optional
        ``statistic(Z, **params) -> float`` for a float64 numpy array Z of unit rows, shape (n, q); large values
        reject. Default: from ``kernel`` and the estimator.
    null : callable, optional
        ``null(n=n, q=q, method=method, **params)`` -> a law with ``sf`` (asymptotic); ``method`` is one of
        "asymptotic", "imhof", "hbe", "sw", "exact". Default: :func:`sobolev_null` of the kernel.
    estimator : {"v", "u"}
        Default estimator of kernel tests (sphunif's U-type statistics: "u").
    defaults : mapping
        Parameter names and default values (other keywords are rejected).
    validate : callable, optional
        ``validate(params) -> params``: checks the filled-in parameters (raise ValueError/TypeError naming them) and
        returns them normalised (hashable values).
    description : str
        One line for humans.

    See Also
    --------
    register_uniformity_test : Adds an entry to :data:`UNIFORMITY_TESTS`.

    Examples
    --------
    >>> from dotkernels import LegendreSeriesKernel
    >>> spec = UniformityTest("degree3", kernel=lambda q: LegendreSeriesKernel([0, 0, 0, 1.0]))
    >>> spec.estimator, spec.defaults
    ('v', {})
    """

    name: str
    kernel: Callable[..., DotProductKernel] | None = None
    statistic: Callable[..., float] | None = None
    null: Callable[..., Any] | None = None
    estimator: str = "v"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    validate: Callable[[dict], dict] | None = None
    description: str = ""


#: The named tests, by lower-case name (read-only use; add entries with :func:`register_uniformity_test`).
UNIFORMITY_TESTS: dict[str, UniformityTest] = {}


def register_uniformity_test(spec: UniformityTest, *, replace: bool = False) -> UniformityTest:
    """Add a named test to :data:`UNIFORMITY_TESTS` (its name lower-cased); returns the stored entry.

    Raises ValueError if the name is taken (unless ``replace``), TypeError for a malformed entry.

    Parameters
    ----------
    spec : UniformityTest
        The test.
    replace : bool
        Replace an entry of the same name.

    Returns
    -------
    UniformityTest
        The stored entry (name lower-cased, estimator checked).

    See Also
    --------
    UniformityTest : The entry.
    uniformity_test : Runs registered tests by name.

    Accuracy
    --------
    Not numeric (registration).

    Examples
    --------
    >>> from dotkernels import LegendreSeriesKernel
    >>> spec = UniformityTest("degree3", kernel=lambda q: LegendreSeriesKernel([0, 0, 0, 1.0]))
    >>> register_uniformity_test(spec).name
    'degree3'
    >>> del UNIFORMITY_TESTS["degree3"]
    """
    if not isinstance(spec, UniformityTest):
        raise TypeError(f"spec must be a UniformityTest, got {type(spec).__name__}")
    if not isinstance(spec.name, str) or not spec.name.strip():
        raise TypeError(f"the test's name must be a non-empty string, got {spec.name!r}")
    if spec.kernel is None and spec.statistic is None and spec.name.strip().lower() != "kernel":
        raise TypeError(f"test {spec.name!r} needs a kernel or a statistic function")
    check_estimator(spec.estimator)
    name = spec.name.strip().lower()
    if name in UNIFORMITY_TESTS and not replace:
        raise ValueError(f"a uniformity test named {name!r} is already registered (pass replace=True)")
    stored = UniformityTest(
        name=name,
        kernel=spec.kernel,
        statistic=spec.statistic,
        null=spec.null,
        estimator=check_estimator(spec.estimator),
        defaults=dict(spec.defaults),
        validate=spec.validate,
        description=spec.description,
    )
    UNIFORMITY_TESTS[name] = stored
    return stored


def _lookup(test: Any) -> UniformityTest:
    if not isinstance(test, str):
        raise TypeError(f"test must be a string, one of {', '.join(UNIFORMITY_TESTS)}; got {type(test).__name__}")
    name = test.strip().lower()
    if name not in UNIFORMITY_TESTS:
        raise ValueError(f"unknown test {test!r}; test must be one of {', '.join(UNIFORMITY_TESTS)}")
    return UNIFORMITY_TESTS[name]


def _check_params(spec: UniformityTest, params: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(spec.defaults))
    if unknown:
        takes = f"takes only {', '.join(spec.defaults)}" if spec.defaults else "takes no parameters"
        raise TypeError(f"unexpected parameter(s) {', '.join(unknown)} for test {spec.name!r}; it {takes}")
    out = dict(spec.defaults)
    out.update(params)
    return spec.validate(out) if spec.validate is not None else out


# ----------------------------------------------------------------------------------------------------------------
# the Sobolev tests of sphunif


def _check_riesz(params: dict) -> dict:
    s = check_real(params["s"], "s")
    if not 0 < s <= 2:
        raise ValueError(
            f"s must lie in (0, 2] for the Riesz test, got {s}: for s > 2 the kernel -||x-y||^s has negative "
            "Gegenbauer coefficients (the null law is not a sum of chi-squares); s = 0 (the logarithmic "
            "kernel) has no finite null mean"
        )
    return {"s": s}


def _check_poisson(params: dict) -> dict:
    rho = check_real(params["rho"], "rho")
    if not 0 < rho < 1:
        raise ValueError(f"rho must lie in (0, 1) for the Poisson test, got {rho} (rho -> 0 is the Rayleigh test)")
    return {"rho": rho}


def _check_softmax(params: dict) -> dict:
    kappa = check_real(params["kappa"], "kappa")
    if not kappa > 0:
        raise ValueError(f"kappa must be > 0 for the Softmax test, got {kappa} (kappa -> 0 is the Rayleigh test)")
    return {"kappa": kappa}


def _check_sobolev(params: dict) -> dict:
    try:
        vk2 = np.asarray(params["vk2"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError("vk2 must be a sequence of real weights v_1^2, ..., v_K^2") from exc
    if vk2.ndim != 1 or vk2.size == 0:
        raise ValueError(f"vk2 must be a non-empty 1-d sequence v_1^2, ..., v_K^2, got shape {vk2.shape}")
    if not np.all(np.isfinite(vk2)):
        raise ValueError("vk2 must be finite")
    if np.any(vk2 < 0):
        raise ValueError(f"vk2 must be non-negative (they are the chi-square weights), got {vk2.tolist()}")
    if not np.any(vk2 > 0):
        raise ValueError("vk2 must contain at least one positive weight")
    return {"vk2": tuple(vk2.tolist())}


def _sobolev_kernel(*, q: int, vk2: tuple) -> DotProductKernel:
    v = np.asarray(vk2, dtype=np.float64)
    k = np.arange(1, v.size + 1)
    with np.errstate(divide="ignore", over="ignore"):
        coef = np.where(v > 0, np.exp(np.log(v) + log_harmonic_dimension(k, q=q)), 0.0)
    if not np.all(np.isfinite(coef)):
        raise ValueError(f"vk2 too long for q={q}: v_k^2 N(q, k) overflows float64 (N(q, k) is astronomical)")
    return LegendreSeriesKernel(np.concatenate([[0.0], coef]))


for _spec in (
    UniformityTest(
        "rayleigh", kernel=lambda q: LegendreSeriesKernel([0.0, float(q)]), description="n q ||mean||^2; chi^2_q"
    ),
    UniformityTest(
        "bingham",
        kernel=lambda q: LegendreSeriesKernel([0.0, 0.0, float(harmonic_dimension(2, q=q))]),
        description="n q (q + 2) / 2 (tr S^2 - 1/q); chi^2_{(q-1)(q+2)/2}",
    ),
    UniformityTest("ajne", kernel=lambda q: 0.5 * ArcCosineKernel(order=0), description="Ajne's A_n (odd degrees)"),
    UniformityTest("gine_gn", kernel=lambda q: GineKernel(), description="Gine's G_n (even degrees)"),
    UniformityTest(
        "gine_fn",
        kernel=lambda q: 2.0 * ArcCosineKernel(order=0) + GineKernel(),
        description="Gine's F_n = 4 A_n + G_n",
    ),
    UniformityTest("bakshaev", kernel=lambda q: DistanceKernel(s=1.0), description="Bakshaev: energy distance"),
    UniformityTest(
        "riesz",
        kernel=lambda q, s: DistanceKernel(s=s),
        defaults={"s": 1.0},
        validate=_check_riesz,
        description="Riesz(s): -||x - y||^s, 0 < s <= 2",
    ),
    UniformityTest(
        "poisson",
        kernel=lambda q, rho: PoissonKernel(rho=rho, normalized=True),
        estimator="u",
        defaults={"rho": 0.5},
        validate=_check_poisson,
        description="Poisson(rho), psi(1) = 1",
    ),
    UniformityTest(
        "softmax",
        kernel=lambda q, kappa: GaussianKernel(gamma=kappa / 2.0),
        estimator="u",
        defaults={"kappa": 1.0},
        validate=_check_softmax,
        description="Softmax(kappa): exp(kappa (t - 1))",
    ),
    UniformityTest(
        "sobolev",
        kernel=_sobolev_kernel,
        defaults={"vk2": (0.0, 0.0, 1.0)},
        validate=_check_sobolev,
        description="finite Sobolev test with weights v_k^2",
    ),
    UniformityTest("kernel", description="n MMD_V^2 of the kernel= argument"),
):
    register_uniformity_test(_spec)
del _spec


@functools.lru_cache(maxsize=256)
def _cached_kernel(spec: UniformityTest, q: int, params: tuple) -> DotProductKernel:
    return spec.kernel(q=q, **dict(params))


def _named_kernel(spec: UniformityTest, q: int, params: dict) -> DotProductKernel:
    key = tuple(sorted(params.items()))
    try:
        hash(key)
    except TypeError:  # a registered test whose parameters are not hashable: no caching
        return spec.kernel(q=q, **params)
    return _cached_kernel(spec, q, key)


def _resolve(
    test: Any, kernel: Any, q: int, params: Mapping[str, Any]
) -> tuple[UniformityTest, DotProductKernel | None, dict]:
    spec = _lookup(test)
    if spec.name == "kernel":
        if params:
            raise TypeError(f"unexpected parameter(s) {', '.join(sorted(params))} for test 'kernel'")
        if kernel is None:
            raise ValueError(
                "test='kernel' needs a kernel: pass kernel=DotProductKernel or a string like 'gaussian:gamma=1'"
            )
        return spec, parse_kernel(kernel), {}
    if kernel is not None:
        raise ValueError(f"kernel= is only used with test='kernel'; test {spec.name!r} defines its own kernel")
    checked = _check_params(spec, params)
    kern = _named_kernel(spec, q, checked) if spec.kernel is not None else None
    return spec, kern, checked


def _estimator_for(spec: UniformityTest, kernel: DotProductKernel | None, estimator: Any) -> str:
    if estimator is None:
        return spec.estimator
    estimator = check_estimator(estimator)
    if kernel is None and estimator != spec.estimator:
        raise ValueError(
            f"test {spec.name!r} has a single statistic (estimator={spec.estimator!r}); got estimator={estimator!r}"
        )
    return estimator


def uniformity_kernel(test: str, *, q: int, **params: Any) -> tuple[DotProductKernel, str]:
    r"""The dot-product kernel that defines a named test in dimension q, and the test's default estimator.

    Parameters
    ----------
    test : str
        A registered test with a kernel (see the module table), case-insensitive.
    q : int
        Ambient dimension (sphere :math:`S^{q-1}`), >= 2.
    **params
        ``s`` (riesz, default 1), ``rho`` (poisson, default 0.5), ``kappa`` (softmax, default 1), ``vk2`` (sobolev,
        default ``(0, 0, 1)``), as in sphunif.

    Returns
    -------
    kernel : DotProductKernel
        :math:`\varphi`: the statistic is :math:`n\,\mathrm{MMD}_V^2` ("v") or :math:`(n-1)\,\mathrm{MMD}_U^2` ("u").
    estimator : {"v", "u"}
        "u" for sphunif's U-type tests (poisson, softmax).

    See Also
    --------
    uniformity_test : The test itself.
    sobolev_null : The asymptotic null law of a kernel's statistic.

    Accuracy
    --------
    Exact (the kernel object of the test).

    Examples
    --------
    >>> kernel, estimator = uniformity_kernel("Bingham", q=3)
    >>> kernel.spectrum(3, q=3).round(12).tolist(), estimator  # N(3, 2) P_2: the Bingham test
    ([0.0, 0.0, 5.0, 0.0], 'v')
    >>> uniformity_kernel("softmax", q=5, kappa=2.0)[1]
    'u'
    """
    spec = _lookup(test)
    if spec.name == "kernel":
        raise ValueError("test='kernel' takes the kernel itself: pass kernel=... to uniformity_test")
    if spec.kernel is None:
        raise ValueError(f"test {spec.name!r} is not defined by a dot-product kernel")
    q = check_dimension(q)
    params = _check_params(spec, params)
    return _named_kernel(spec, q, params), spec.estimator


# =================================================================================================================
# statistic


def _check_sample(Z: Any) -> tuple[Any, int, int]:
    Z, _ = check_points(Z, "Z", min_rows=2)
    return Z, int(Z.shape[0]), int(Z.shape[1])


def _kernel_statistic(Z: Any, kernel: DotProductKernel, estimator: str, block_size: int | None) -> float:
    n = int(Z.shape[0])
    value = host_float(mmd2_uniform(Z, kernel, estimator=estimator, block_size=block_size))
    return (n - 1) * value if estimator == "u" else n * value


def _statistic(
    Z: Any,
    spec: UniformityTest,
    kernel: DotProductKernel | None,
    estimator: str,
    params: dict,
    block_size: int | None,
) -> float:
    if kernel is not None and (spec.statistic is None or estimator != spec.estimator):
        return _kernel_statistic(Z, kernel, estimator, block_size)
    return float(spec.statistic(np.asarray(to_numpy(Z), dtype=np.float64), **params))


def uniformity_statistic(
    Z: Any,
    test: str = "rayleigh",
    *,
    kernel: DotProductKernel | str | None = None,
    estimator: str | None = None,
    block_size: int | None = None,
    **params: Any,
) -> float:
    r"""The statistic of a uniformity test (sphunif's ``sph_stat_*`` definitions; see the module table).

    :math:`n\,\mathrm{MMD}_V^2` of the test's kernel for ``estimator="v"``, :math:`(n-1)\,\mathrm{MMD}_U^2` for
    ``"u"`` (default: the test's own, "u" for poisson and softmax), computed by :func:`dotkernels.mmd.mmd2_uniform`
    (accumulated in float64; blocked for large n, moment forms for the kernels of degree <= 2).

    Parameters
    ----------
    Z : array, shape (n, q)
        Unit-norm rows, n >= 2; any array-API array.
    test, kernel, estimator, block_size, **params
        As in :func:`uniformity_test`.

    Returns
    -------
    float
        The statistic.

    See Also
    --------
    uniformity_test : The statistic with its p-value.

    Accuracy
    --------
    float64 sums through :func:`dotkernels.mmd.mmd2_uniform`: relative ~1e-13 of n max|phi| (tested against
    sphunif's formulas to 1e-10 and its golden values). Domain: n >= 2 unit rows, q >= 2.

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.eye(3)
    >>> round(uniformity_statistic(Z, "rayleigh"), 12)  # n q ||mean||^2 = 3 * 3 * 3 / 9
    3.0
    """
    Z, _, q = _check_sample(Z)
    spec, kern, checked = _resolve(test, kernel, q, params)
    estimator = _estimator_for(spec, kern, estimator)
    return _statistic(Z, spec, kern, estimator, checked, check_block_size(block_size))


# =================================================================================================================
# null distributions


def _coefficients(kernel: DotProductKernel, q: int, log_abs: np.ndarray, sign: np.ndarray, total: float) -> np.ndarray:
    """The coefficients a_0..a_L; ValueError if some a_l, l >= 1, is negative beyond rounding."""
    a = np.where(sign != 0, sign * np.exp(np.minimum(log_abs, 700.0)), 0.0)
    scale = max(abs(total), float(np.max(np.abs(a[1:]), initial=0.0)), np.finfo(float).tiny)
    negative = np.nonzero((sign[1:] < 0) & (np.abs(a[1:]) > _NEGATIVE_RTOL * scale))[0] + 1
    if negative.size:
        l = int(negative[0])
        raise ValueError(
            f"kernel {kernel!r} has a negative Gegenbauer coefficient a_{l} = {a[l]:.6g} in q={q}: the test needs "
            "a_l >= 0 for every l >= 1 (a positive-definite kernel up to a constant); its null law is not a sum "
            "of chi-squares"
        )
    return np.where(sign > 0, a, 0.0)


def _automatic_degree(
    kernel: DotProductKernel, q: int, total: float, rtol: float, max_degree: int
) -> tuple[int, np.ndarray, np.ndarray]:
    """Smallest L <= max_degree with sum_{l > L} a_l <= rtol * total (max_degree if none); (L, log|a|, sign).

    L grows from _FIRST_DEGREE by jumps predicted from the tail's power-law decay (a_l ~ l^-p for the named tests;
    geometric decay only makes the jump larger than needed), and the smallest L is then read off the cumulative sums.
    """
    L = min(_FIRST_DEGREE, max_degree)
    while True:
        log_abs, sign = kernel.log_spectrum(L, q=q)
        a = _coefficients(kernel, q, log_abs, sign, total)
        tails = total - np.cumsum(a[1:])  # tails[l - 1] = sum_{k > l} a_k
        ok = np.nonzero(tails <= rtol * total)[0]
        if ok.size:
            L = int(ok[0]) + 1
            return L, log_abs[: L + 1], sign[: L + 1]
        if L >= max_degree:
            return L, log_abs, sign
        # jump to the degree where a power-law tail fitted on [L/2, L] would meet the tolerance (at least double)
        # (in log space: a nearly flat tail predicts a jump far beyond max_degree, which must not overflow)
        log_grow = math.log(2.0)
        t_half, t_end = float(tails[L // 2 - 1]), float(tails[L - 1])
        if rtol <= 0:
            log_grow = math.inf
        elif 0.0 < t_end < t_half:
            power = math.log(t_half / t_end) / math.log(L / (L // 2))
            log_grow = max(log_grow, math.log(1.25) + math.log(t_end / (rtol * total)) / power)
        L = (
            max_degree
            if log_grow >= math.log(max_degree / L)
            else int(min(math.ceil(L * math.exp(log_grow)), max_degree))
        )


def _log_dimensions(L: int, q: int) -> np.ndarray:
    """log N(q, l) for l = 0..L: exact (log_harmonic_dimension) up to _DIRECT_DEGREE, by log-gammas beyond.

    The degrees beyond _DIRECT_DEGREE only set the grouping and the groups' variances, for which the log-gamma
    form's absolute error (~1e-16 log Gamma(l + q), below 1e-9 here) is immaterial; it is much faster at 1e6 degrees.
    """
    head = min(L, _DIRECT_DEGREE)
    exact = np.asarray(log_harmonic_dimension(np.arange(head + 1), q=q), dtype=np.float64)
    if L <= head:
        return exact
    l = np.arange(head + 1, L + 1, dtype=np.float64)
    tail = (
        np.log(2.0 * l + q - 2.0) - np.log(l) + special.gammaln(l + q - 2.0) - special.gammaln(l) - math.lgamma(q - 1.0)
    )
    return np.concatenate([exact, tail])


def _grouped_terms(a: np.ndarray, log_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Terms w_l chi^2_{N_l} merged into groups of nearly equal weight, each with its exact mean and variance.

    A group with means m_l = w_l N_l becomes w_g chi^2_{d_g}, w_g = sum w_l m_l / sum m_l, d_g = (sum m_l)^2 /
    sum w_l m_l: the first two cumulants are those of the group, the third is off by a factor within
    [1/ratio, 1] where ratio bounds the weights' spread in the group (1.1 for weights within 1e10 of the largest;
    the smaller ones share a few wider groups).
    """
    if a.size == 0:
        return a, a
    top = float(np.max(log_w))
    depth = top - log_w
    fine = math.log(_GROUP_RATIO)
    n_fine = math.ceil(math.log(_FINE_RANGE) / fine)
    coarse = max(fine, (float(np.max(depth)) - n_fine * fine) / _COARSE_GROUPS)
    bins = np.where(
        depth < n_fine * fine, np.floor(depth / fine), n_fine + np.floor((depth - n_fine * fine) / coarse)
    ).astype(np.int64)
    bins = np.unique(bins, return_inverse=True)[1]
    scale = math.exp(top)  # weights relative to the largest: no underflow of w m for tiny weights
    m1 = np.bincount(bins, weights=a)
    m2 = np.bincount(bins, weights=a * np.exp(log_w - top))
    w = scale * m2 / m1
    return w, m1 / w


def sobolev_null(
    kernel: DotProductKernel | str,
    *,
    q: int,
    estimator: str = "v",
    method: str = "asymptotic",
    degree: int | None = None,
    rtol: float = TAIL_RTOL,
    max_degree: int = MAX_DEGREE,
) -> WeightedChiSquare:
    r"""Asymptotic null law of :math:`n\,\mathrm{MMD}_V^2` (or :math:`(n-1)\,\mathrm{MMD}_U^2`) of a kernel.

    :math:`T = \sum_{l \ge 1} (a_l / N(q,l))\, \chi^2_{N(q,l)}`, shifted by :math:`-(\varphi(1) - a_0)` for the
    U-statistic, truncated at a degree L as described in the module notes: the neglected mean
    :math:`\sum_{l > L} a_l` goes into the shift (the law's mean is exact) and is reported as the law's
    ``truncation_error``; ``truncation_degree`` is L. Laws are cached (a kernel and its options give the same
    object): the first law of a slowly converging series (Ajne, Giné, Bakshaev, Riesz: :math:`a_l \sim l^{-1-s}`)
    evaluates up to ~2e6 coefficients, about a second; later calls are free.

    Parameters
    ----------
    kernel : DotProductKernel or str
        Its coefficients :math:`a_l`, l >= 1, must be non-negative (``a_0`` may have any sign).
    q : int
        Dimension, >= 2.
    estimator : {"v", "u"}
        Law of :math:`n\,\mathrm{MMD}_V^2` ("v") or of :math:`(n-1)\,\mathrm{MMD}_U^2` ("u").
    method : {"asymptotic", "imhof", "hbe", "sw", "exact"}
        Distribution-function algorithm of :class:`~dotkernels.nulls.WeightedChiSquare`; ``"asymptotic"`` is the
        exact chi-square when a single degree carries the kernel and Imhof's inversion otherwise; ``"exact"`` needs
        a single degree.
    degree : int, optional
        Truncation degree L >= 1; default: automatic (``rtol``, ``max_degree``; the kernel's own degree if finite).
    rtol : float
        Target of the automatic truncation: neglected mean <= rtol * :math:`\sum_{l \ge 1} a_l`.
    max_degree : int
        Largest degree of the automatic truncation.

    Returns
    -------
    WeightedChiSquare
        With attributes ``truncation_degree`` (L) and ``truncation_error`` (the neglected mean).

    Raises
    ------
    ValueError
        If a coefficient :math:`a_l`, 1 <= l <= L, is negative beyond rounding (negative values smaller than 1e-12
        times :math:`\sum_{l \ge 1} a_l` are rounding noise of the spectrum and count as 0), or the law is
        degenerate.

    Warns
    -----
    TruncationWarning
        When the neglected part's variance bound exceeds ``rtol`` times the law's variance at ``max_degree``.

    See Also
    --------
    uniformity_test : The tests whose asymptotic laws these are.
    dotkernels.nulls.WeightedChiSquare : The law returned.

    References
    ----------
    .. [1] García-Portugués, E. and Verdebout, T. (2018). An overview of uniformity tests on the hypersphere.
       arXiv:1804.00286.

    Accuracy
    --------
    The method's (Imhof: ~1e-10 relative, tails included) plus the truncation: the neglected mean is at most
    ``rtol`` (1e-6) of the total or warned about, and enters the shift exactly; the remaining centred part
    changes sf by about its variance over the law's (bounded in the module notes). Tested against mpmath (the
    tail), term-by-term laws (1e-12) and sphunif's golden p-values (1e-6).

    Examples
    --------
    >>> from dotkernels import DistanceKernel
    >>> law = sobolev_null(DistanceKernel(s=1.0), q=3)  # Bakshaev's test on S^2
    >>> round(law.mean(), 12)  # = E||X - Y|| = 4/3 exactly (the neglected tail is in the shift)
    1.333333333333
    >>> bool(law.truncation_error <= 1e-6 * 4 / 3)
    True
    """
    kernel = parse_kernel(kernel)
    q = check_dimension(q)
    estimator = check_estimator(estimator)
    if not isinstance(method, str) or method.lower() not in _ASYMPTOTIC_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _ASYMPTOTIC_METHODS))}, got {method!r}")
    rtol = check_real(rtol, "rtol", nonnegative=True)
    max_degree = check_integer(max_degree, "max_degree", minimum=1)
    if degree is not None:
        degree = check_integer(degree, "degree", minimum=1, requirement="an integer degree >= 1 or None")
    return _sobolev_null(kernel, q, estimator, method.lower(), degree, rtol, max_degree)


@functools.lru_cache(maxsize=128)
def _sobolev_null(
    kernel: DotProductKernel, q: int, estimator: str, method: str, degree: int | None, rtol: float, max_degree: int
) -> WeightedChiSquare:
    phi1 = float(kernel.phi_at_one(q=q))
    a0 = float(kernel.uniform_mean_embedding(q=q))
    total = phi1 - a0  # sum_{l >= 1} a_l for a non-negative spectrum
    if not math.isfinite(total):
        raise ValueError(f"{kernel!r}: phi(1) - a_0 = {total} is not finite in q={q}; the null law has no mean")
    finite = kernel.degree
    automatic = degree is None and finite is None
    if automatic:
        L, log_abs, sign = _automatic_degree(kernel, q, total, rtol, max_degree)
    else:
        L = degree if degree is not None else max(int(finite), 1)
        log_abs, sign = kernel.log_spectrum(L, q=q)
    a = _coefficients(kernel, q, log_abs, sign, total)
    degrees = np.arange(L + 1)
    log_n = _log_dimensions(L, q)
    with np.errstate(divide="ignore"):
        log_w = np.where(a > 0, np.log(np.where(a > 0, a, 1.0)) - log_n, -np.inf)
    keep = (degrees >= 1) & (a > 0) & (log_n < _LOG_MAX_DIM) & (log_w > _LOG_MIN_WEIGHT)
    if not np.any(keep):
        raise ValueError(
            f"the null law of {kernel!r} in q={q} is degenerate: no degree l >= 1 carries a representable "
            "chi-square weight a_l / N(q, l) (e.g. a kernel concentrated on degrees where N(q, l) is astronomical); "
            "use a Monte Carlo method or a kernel adapted to the dimension"
        )
    kept_sum = math.fsum(a[keep])
    exact_series = finite is not None and finite <= L and bool(np.all(keep[1:] | (a[1:] == 0)))
    folded = 0.0 if exact_series else max(total - kept_sum, 0.0)  # mean entering through the shift
    series_tail = 0.0 if exact_series else max(total - math.fsum(a[1:]), 0.0)  # sum_{l > L} a_l
    shift = -kept_sum if estimator == "u" else folded

    direct = keep & (degrees <= _DIRECT_DEGREE)
    grouped = keep & (degrees > _DIRECT_DEGREE)
    w_direct = np.exp(log_w[direct])
    d_direct = np.exp(log_n[direct])
    d_direct = np.where(d_direct < 1e12, np.round(d_direct), d_direct)  # exact integer dimensions where possible
    w_group, d_group = _grouped_terms(a[grouped], log_w[grouped])
    weights = np.concatenate([w_direct, w_group])
    dofs = np.concatenate([d_direct, d_group])
    single = weights.size == 1 and folded == 0.0
    if method == "exact" and not single:
        raise ValueError(
            f"method='exact' needs a null law with a single chi-square term; {kernel!r} in q={q} has "
            f"{weights.size} terms (use 'asymptotic' or 'imhof')"
        )
    law_method = "exact" if method == "asymptotic" and single else ("imhof" if method == "asymptotic" else method)
    law = WeightedChiSquare(weights, dofs, method=law_method, shift=shift, tail_bound=series_tail)
    law.truncation_degree = int(L)
    if not law.std() > _DEGENERATE_RTOL * max(abs(phi1), abs(a0), total):
        raise ValueError(
            f"the null law of {kernel!r} in q={q} is numerically degenerate (standard deviation {law.std():.3g} "
            f"against a kernel of size {max(abs(phi1), abs(a0)):.3g}): the kernel concentrates on degrees with "
            "astronomical multiplicity N(q, l), so the statistic cannot be resolved in float64; use a kernel "
            "adapted to the dimension (e.g. Poisson rho ~ 1/q)"
        )
    if automatic and series_tail > rtol * total:
        # Var(R) <= 2 sup_{l > L} w_l E[R]; the sup is taken as the largest weight of the last quarter of degrees
        tail_w = log_w[max(1, (3 * L) // 4) :]
        w_sup = float(np.exp(np.max(tail_w))) if np.any(np.isfinite(tail_w)) else 0.0
        variance = 2.0 * w_sup * series_tail
        if variance > rtol * law.var():
            warnings.warn(
                f"null law of {kernel!r} in q={q}: at degree {L} the neglected mean is {series_tail:.3g} "
                f"({series_tail / total:.2g} of the total; added to the shift, so the mean is exact) and the "
                f"neglected variance is at most {variance:.3g} ({variance / law.var():.2g} of the law's variance), "
                f"above rtol = {rtol:g}; p-values are accurate to about that ratio",
                TruncationWarning,
                stacklevel=4,
            )
    return law


# =================================================================================================================
# the result


@dataclass(frozen=True, repr=False)
class UniformityTestResult:
    r"""Result of :func:`uniformity_test`, like the result objects of :mod:`scipy.stats`.

    It unpacks as ``statistic, pvalue = uniformity_test(...)`` (a sequence of length 2) and keeps named fields.

    Parameters
    ----------
    statistic : float
        The test statistic (sphunif's definition).
    pvalue : float
        Asymptotic or Monte Carlo p-value (``null_distribution.sf(statistic)``).
    null_distribution : WeightedChiSquare or MonteCarloNull
        The null law used for the p-value.
    test : str
        The test's registered (lower-case) name.
    kernel : DotProductKernel or None
        The kernel :math:`\varphi` that defines the test (statistic :math:`n\,\mathrm{MMD}_V^2` or
        :math:`(n-1)\,\mathrm{MMD}_U^2` of it); None for tests defined by a statistic function only.
    n, q : int
        Sample size and dimension.
    estimator : {"v", "u"}
        The estimator of the statistic.
    truncation_degree : int or None
        Degree L at which the asymptotic null series is truncated (None for Monte Carlo p-values).
    truncation_error : float
        :math:`\sum_{l > L} a_l`, the neglected mean (added to the law's shift); 0 for Monte Carlo p-values.
    parameters : dict
        The test's parameters with defaults filled in.
    method : str
        The null law the p-value comes from: ``"asymptotic"`` (or the algorithm named), ``"exact bound"``
        (CJ12's union bound) or ``"Monte Carlo (B samples)"``.

    See Also
    --------
    uniformity_test : Returns it.
    UniformityBatteryResult : Several results on one sample.

    Examples
    --------
    >>> from dotkernels.sampling import sample_uniform
    >>> res = uniformity_test(sample_uniform(50, q=3, rng=0), "Rayleigh")
    >>> statistic, pvalue = res
    >>> res.test, res.method, res.null_distribution.method  # the chi-square law of Rayleigh's statistic
    ('rayleigh', 'asymptotic', 'exact')
    """

    statistic: float
    pvalue: float
    null_distribution: Any = None
    test: str = ""
    kernel: DotProductKernel | None = None
    n: int = 0
    q: int = 0
    estimator: str = "v"
    truncation_degree: int | None = None
    truncation_error: float = 0.0
    parameters: dict = field(default_factory=dict)
    method: str = ""

    @classmethod
    def from_null(
        cls,
        statistic: float,
        pvalue: float,
        null_distribution: Any,
        *,
        test: str,
        kernel: DotProductKernel | None,
        n: int,
        q: int,
        estimator: str,
        parameters: dict,
        method: str = "",
    ) -> UniformityTestResult:
        """The result of a test whose truncation fields are read off its null law (none for a Monte Carlo law).

        Parameters
        ----------
        statistic, pvalue : float
            The statistic and its p-value.
        null_distribution : object
            The null law (its ``truncation_degree`` and ``truncation_error``, if any, are copied).
        test : str
            The test's name.
        kernel : DotProductKernel or None
            The test's kernel.
        n, q : int
            Sample size and dimension.
        estimator : {"v", "u"}
            The estimator of the statistic.
        parameters : dict
            The test's parameters.
        method : str
            The null law's method (see the class attributes).

        Returns
        -------
        UniformityTestResult
            The result.

        See Also
        --------
        uniformity_test : Builds these results.

        Examples
        --------
        >>> from scipy import stats
        >>> res = UniformityTestResult.from_null(
        ...     1.0, 0.8, stats.chi2(3), test="rayleigh", kernel=None, n=10, q=3, estimator="v", parameters={}
        ... )
        >>> res.truncation_degree is None, res.pvalue
        (True, 0.8)
        """
        return cls(
            statistic,
            pvalue,
            null_distribution,
            test,
            kernel,
            n,
            q,
            estimator,
            getattr(null_distribution, "truncation_degree", None),
            float(getattr(null_distribution, "truncation_error", 0.0)),
            parameters,
            method,
        )

    def __iter__(self):
        return iter((self.statistic, self.pvalue))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index):
        return (self.statistic, self.pvalue)[index]

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.parameters.items())
        return (
            f"UniformityTestResult(test={self.test!r}{params}, statistic={self.statistic!r}, pvalue={self.pvalue!r}, "
            f"n={self.n}, q={self.q}, estimator={self.estimator!r}, null_distribution={self.null_distribution!r})"
        )


# =================================================================================================================
# the test


def _uniform_batch(rng: np.random.Generator, size: tuple[int, int, int]) -> np.ndarray:
    x = rng.standard_normal(size)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _monte_carlo(
    method: MonteCarloMethod,
    n: int,
    q: int,
    simulate: Callable[[np.ndarray], float],
) -> np.ndarray:
    n_resamples = check_integer(method.n_resamples, "n_resamples", minimum=1)
    batch = n_resamples if method.batch is None else check_integer(method.batch, "batch", minimum=1)
    rvs = method.rvs
    if rvs is not None and not callable(rvs):
        raise TypeError(f"MonteCarloMethod.rvs must be None or a callable rvs(size), got {type(rvs).__name__}")
    rng = check_rng(method.rng) if rvs is None else None
    out = np.empty(n_resamples)
    done = 0
    while done < n_resamples:
        m = min(batch, n_resamples - done)
        samples = _uniform_batch(rng, (m, n, q)) if rvs is None else np.asarray(rvs(size=(m, n, q)), dtype=np.float64)
        if samples.shape != (m, n, q):
            raise ValueError(f"MonteCarloMethod.rvs(size=(m, n, q)) must return shape {(m, n, q)}, got {samples.shape}")
        for i in range(m):
            out[done + i] = simulate(samples[i])
        done += m
    return out


def uniformity_test(
    Z: Any,
    test: str = "rayleigh",
    *,
    method: str | MonteCarloMethod = "auto",
    kernel: DotProductKernel | str | None = None,
    estimator: str | None = None,
    degree: int | None = None,
    block_size: int | None = None,
    **params: Any,
) -> UniformityTestResult:
    r"""Test whether the rows of Z are uniformly distributed on the sphere :math:`S^{q-1}`.

    Parameters
    ----------
    Z : array, shape (n, q)
        n >= 2 unit vectors (rows) in :math:`\mathbb{R}^q`, q >= 2; numpy or any array-API array (torch, ...).
    test : str or list of str
        A registered test (:data:`UNIFORMITY_TESTS`, case-insensitive): ``"rayleigh"``, ``"bingham"``, ``"ajne"``,
        ``"gine_gn"``, ``"gine_fn"``, ``"bakshaev"``, ``"riesz"`` (s), ``"poisson"`` (rho), ``"softmax"`` (kappa),
        ``"sobolev"`` (vk2) or ``"kernel"`` (kernel=...) (definitions, kernels and scalings in the module table), or
        any other test of sphunif (see :mod:`dotkernels.uniformity`); a list of names or ``"all"`` runs several
        tests in one pass and returns a :class:`~dotkernels.uniformity.UniformityBatteryResult` (see
        :func:`~dotkernels.uniformity.uniformity_battery`).
    method : str or scipy.stats.MonteCarloMethod
        ``"auto"`` (default): a p-value valid at this n and q: the asymptotic law where its size was measured
        within binomial error of the level at this n (:mod:`dotkernels.calibration`, ``docs/calibration.md``), a
        finite-n Monte Carlo law of 1999 uniform samples, cached per (test, n, q, parameters) and drawn from a
        fixed seed, where it was not or where the test has no usable asymptotic law, and CJ12's exact union bound
        (the result's ``method`` says which; the module notes of ``dotkernels.uniformity._calibrated`` give the
        rules). ``"asymptotic"`` (the best algorithm for the asymptotic law: the exact chi-square for a single
        degree, Imhof's inversion otherwise), an algorithm by name (``"imhof"``, ``"hbe"``, ``"sw"``, ``"exact"``
        for a single chi-square), or a :class:`scipy.stats.MonteCarloMethod`: ``n_resamples`` statistics of samples of
        size n drawn by ``rvs(size=(m, n, q))`` (m <= ``batch`` samples of unit rows per call; default: uniform on
        the sphere from ``rng``), p-value :math:`(1 + \#\{T^* \ge T\}) / (1 + n_{resamples})`.
    kernel : DotProductKernel or str, optional
        The kernel of ``test="kernel"``: statistic :math:`n\,\mathrm{MMD}_V^2`, null
        :math:`\sum_{l \ge 1} (a_l/N(q,l))\chi^2_{N(q,l)}`; its coefficients must be non-negative for l >= 1.
    estimator : {"v", "u"}, optional
        :math:`n\,\mathrm{MMD}_V^2` or :math:`(n-1)\,\mathrm{MMD}_U^2` of the test's kernel; default: the test's
        own ("u" for poisson and softmax, as in sphunif; "v" otherwise).
    degree : int, optional
        Truncation degree of the asymptotic series (default automatic: see the module notes).
    block_size : int, optional
        Row block size of :func:`dotkernels.mmd.mmd2_uniform` (large n).
    **params
        ``s`` (riesz, default 1), ``rho`` (poisson, default 0.5), ``kappa`` (softmax, default 1),
        ``vk2`` (sobolev: weights :math:`v_1^2, \dots, v_K^2`, default ``(0, 0, 1)``).

    Returns
    -------
    UniformityTestResult
        Unpacks as ``statistic, pvalue``; fields as documented there. The p-value is :math:`P(T \ge t)` under the
        null law (for a discrete statistic the observed value included; the lower tail :math:`P(T \le t)` for
        CJ12, whose small values reject). An asymptotic p-value is that of the n -> infinity law, not of the
        finite-n one; a Monte Carlo p-value is valid at every n.

    Raises
    ------
    ValueError, TypeError
        Fewer than 2 points, rows that are not unit vectors, NaN/inf, an unknown test, method or parameter, a kernel
        with a negative coefficient :math:`a_l` (l >= 1) -- each naming the offending argument; a test without a
        usable null law at this n (the message names the method to pass).

    Warns
    -----
    CalibrationWarning
        With ``"auto"``, where the asymptotic law was measured anti-conservative at this n but a finite-n Monte
        Carlo law is too costly to compute by default (large n); the message names the method to pass.

    See Also
    --------
    uniformity_battery : Several tests on one sample in one pass.
    dotkernels.calibration.size_study : Measured sizes of the default p-values.

    References
    ----------
    .. [1] García-Portugués, E. and Verdebout, T. (2018). An overview of uniformity tests on the hypersphere.
       arXiv:1804.00286.
    .. [2] García-Portugués, E. and Verdebout, T. sphunif: Uniformity Tests on the Circle, Sphere, and Hypersphere.
       R package, https://CRAN.R-project.org/package=sphunif.
    .. [3] Cai, T. T. and Jiang, T. (2012). Phase transition in limiting distributions of coherence of
       high-dimensional random matrices. Journal of Multivariate Analysis 107, 24-39.
    .. [4] García-Portugués, E., Navarro-Esteban, P. and Cuesta-Albertos, J. A. (2023). On a projection-based
       class of uniformity tests on the hypersphere. Bernoulli 29(1).
    .. [5] Ajne, B. (1968). A simple test for uniformity of a circular distribution. Biometrika 55(2), 343-354.
    .. [6] Bingham, C. (1974). An antipodally symmetric distribution on the sphere. The Annals of Statistics 2(6),
       1201-1225.
    .. [7] Rayleigh, Lord (1919). On the problem of random vibrations, and of random flights in one, two, or three
       dimensions. Philosophical Magazine 37(220), 321-347.

    Accuracy
    --------
    Statistic as :func:`uniformity_statistic`; asymptotic p-values as :func:`sobolev_null` (sphunif's golden
    values to 1e-6 relative); Monte Carlo p-values exact in the sense of :func:`scipy.stats.monte_carlo_test`,
    standard error :math:`\sqrt{p(1-p)/n_{resamples}}` as estimates of the finite-n p-value.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import MonteCarloMethod
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((200, 3))
    >>> Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    >>> statistic, pvalue = uniformity_test(Z, "rayleigh")
    >>> bool(pvalue > 0.01), uniformity_test(Z, "rayleigh").null_distribution.method  # chi^2_3
    (True, 'exact')
    >>> Z[:, 2] = np.abs(Z[:, 2])  # fold onto the upper hemisphere
    >>> bool(uniformity_test(Z, "Ajne").pvalue < 1e-6)
    True
    >>> res = uniformity_test(Z, "ajne", method=MonteCarloMethod(n_resamples=99, rng=1))
    >>> res.pvalue  # no simulated statistic reaches the observed one
    0.01
    """
    if not isinstance(test, str) or test.strip().lower() == "all":
        if kernel is not None or estimator is not None or degree is not None:
            raise TypeError("kernel=, estimator= and degree= apply to a single test, not to several")
        from ._battery import uniformity_battery

        return uniformity_battery(Z, test, method=method, block_size=block_size, **params)
    Z, n, q = _check_sample(Z)
    spec, kern, checked = _resolve(test, kernel, q, params)
    estimator = _estimator_for(spec, kern, estimator)
    block_size = check_block_size(block_size)
    if degree is not None:
        degree = check_integer(degree, "degree", minimum=1, requirement="an integer degree >= 1 or None")

    registered = _specs.REGISTRY.get(spec.name)
    if registered is not None:
        _specs.lookup(registered.name, q)  # the dimensions the test applies to
    if registered is not None and registered.name == "CCF09":  # the directions of the sample and its simulations
        checked = _specs.draw_random_directions(registered, checked, q)

    def result(statistic: float, pvalue: float, law: Any, label: str) -> UniformityTestResult:
        return UniformityTestResult.from_null(
            statistic,
            pvalue,
            law,
            test=spec.name,
            kernel=kern,
            n=n,
            q=q,
            estimator=estimator,
            parameters=checked,
            method=label,
        )

    if isinstance(method, MonteCarloMethod):
        if kern is not None:  # the same spectrum check as the asymptotic law, on the low degrees
            log_abs, sign = kern.log_spectrum(_CHECK_DEGREE, q=q)
            _coefficients(kern, q, log_abs, sign, float(kern.phi_at_one(q=q) - kern.uniform_mean_embedding(q=q)))
        statistic = _statistic(Z, spec, kern, estimator, checked, block_size)
        simulated = _monte_carlo(
            method, n, q, lambda sample: _statistic(sample, spec, kern, estimator, checked, block_size)
        )
        null = _calibrated.monte_carlo_law(registered.name if registered is not None else "", simulated, n, q)
        label = f"Monte Carlo ({null.n_resamples} samples)"
        return result(statistic, _calibrated.pvalue_of(null, statistic), null, label)

    if not isinstance(method, str) or method.lower() not in _METHODS:
        raise ValueError(
            f"method must be one of {', '.join(map(repr, _METHODS))} or a scipy.stats.MonteCarloMethod, got {method!r}"
        )
    method = method.lower()
    own_law = kern is None or estimator == spec.estimator

    def asymptotic_law(law_method: str) -> Any:
        if spec.null is not None and own_law:
            return spec.null(n=n, q=q, method=law_method, **checked)
        if kern is not None:
            return sobolev_null(kern, q=q, estimator=estimator, method=law_method, degree=degree)
        return None

    if method == "auto" and registered is not None and own_law and degree is None:
        [(law, label, note)] = _calibrated.auto_nulls(
            [(registered, checked)], n, q, lambda *_: asymptotic_law("asymptotic"), stacklevel=4
        )
        if law is None:
            raise ValueError(f"test {spec.name!r}: {note}")
    else:
        label = "asymptotic" if method == "auto" else method
        law = asymptotic_law(label)
        if law is None:
            raise ValueError(
                f"test {spec.name!r} has no asymptotic null law here; pass method='auto' or "
                "method=scipy.stats.MonteCarloMethod(...)"
            )
    if isinstance(law, MonteCarloNull) and registered is not None:
        # the observed statistic by the computation of the simulated ones (for kernels whose statistic is tiny
        # against the kernel's size, such as Poisson at large q, the mean-embedding route would be rounding noise)
        sample = _specs.Sample(np.asarray(to_numpy(Z), dtype=np.float64))
        statistic = float(_specs.battery_statistics(sample, [(registered, checked)])[0])
    else:
        statistic = _statistic(Z, spec, kern, estimator, checked, block_size)
    return result(statistic, _calibrated.pvalue_of(law, statistic), law, label)
