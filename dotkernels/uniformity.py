r"""Uniformity tests on the sphere :math:`S^{q-1}`: the Sobolev class, with the definitions of the R package sphunif.

Every test here is a kernel-MMD test against the uniform distribution :math:`\sigma`: for a dot-product kernel
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

Named tests (``test=``) and their kernels (:math:`\theta = \arccos t`, :math:`\|x - y\| = \sqrt{2 - 2t} =
2\sin(\theta/2)`; "U" marks sphunif's U-type statistics):

============  ==========================================  ===================================  ===  ==================
test          kernel :math:`\varphi(t)`                   as a dotkernels kernel               U/V  degrees l >= 1
============  ==========================================  ===================================  ===  ==================
``rayleigh``  :math:`q\,t = q P_{1,q}(t)`                 ``LegendreSeriesKernel([0, q])``     V    1
``bingham``   :math:`N(q,2) P_{2,q}(t)`                   ``LegendreSeriesKernel([0, 0, N])``  V    2
``ajne``      :math:`\tfrac12 (1 - \theta/\pi)`           ``0.5 * ArcCosineKernel(0)``         V    odd
``gine_gn``   :math:`-c_q \sin\theta`                     Giné kernel (this module)            V    even
``gine_fn``   :math:`2 (1 - \theta/\pi) - c_q\sin\theta`  ``4 * ajne + gine_gn``               V    all
``bakshaev``  :math:`-\|x - y\|`                          ``DistanceKernel(0.5)``              V    all
``riesz``     :math:`-\|x - y\|^s`, 0 < s <= 2            ``DistanceKernel(s / 2)``            V    all (s = 2: 1)
``poisson``   :math:`\psi_\rho(t)`, 0 < rho < 1           scaled ``PoissonKernel(rho)``        U    all
``softmax``   :math:`e^{\kappa (t - 1)}`, kappa > 0       ``GaussianKernel(tau=kappa / 2)``    U    all
``sobolev``   :math:`\sum_{k=1}^K v_k^2 N(q,k) P_{k,q}`   ``LegendreSeriesKernel``             V    k with v_k^2 > 0
``kernel``    any kernel with :math:`a_l \ge 0`, l >= 1   ``kernel=``                          V    its spectrum
============  ==========================================  ===================================  ===  ==================

The statistics, exactly as sphunif computes them (``sph_stat_*``), with :math:`\theta_{ij} = \arccos(X_i^T X_j)`,
:math:`\bar X` the sample mean and :math:`S = n^{-1} \sum_i X_i X_i^T`:

- Rayleigh :math:`R_n = n q \|\bar X\|^2`, null :math:`\chi^2_q`;
- Bingham :math:`B_n = \tfrac{n q (q+2)}{2} (\mathrm{tr}\, S^2 - 1/q)`, null :math:`\chi^2_{(q-1)(q+2)/2}`;
- Ajne :math:`A_n = \tfrac n4 - \tfrac{1}{n\pi} \sum_{i<j} \theta_{ij}`;
- Giné :math:`G_n = \tfrac n2 - \tfrac{q-1}{2n} \gamma_q^2 \sum_{i<j} \sin\theta_{ij}`,
  :math:`\gamma_q = \Gamma(\tfrac{q-1}{2}) / \Gamma(\tfrac q2)`, and :math:`F_n = 4 A_n + G_n`; the kernel constant
  :math:`c_q = \tfrac{q-1}{4} \gamma_q^2` makes :math:`E[c_q \sin\theta] = 1/2`;
- Riesz(s) :math:`-\tfrac2n \sum_{i<j} \|X_i - X_j\|^s + n\, E\|X - Y\|^s` (sphunif writes
  :math:`\|X_i - X_j\|^s = 2^s \sin^s(\theta_{ij}/2)`); Bakshaev is s = 1 (the energy distance);
- Poisson(rho) :math:`\tfrac2n \sum_{i<j} (\psi_\rho(X_i^T X_j) - b_0)` with sphunif's kernel
  :math:`\psi_\rho(t) = ((1-\rho)^2 / (1 - 2\rho t + \rho^2))^{q/2}` (the classical Poisson kernel
  :math:`(1-\rho^2)/(1-2\rho t+\rho^2)^{q/2}` times :math:`(1-\rho)^{q-1}/(1+\rho)`, so
  :math:`\psi_\rho(1) = 1`) and :math:`b_0 = (1-\rho)^{q-1}/(1+\rho)`;
- Softmax(kappa) :math:`\tfrac2n \sum_{i<j} (e^{\kappa(X_i^T X_j - 1)} - b_0)`,
  :math:`b_0 = \Gamma(\tfrac q2) (2/\kappa)^{q/2-1} I_{q/2-1}(\kappa) e^{-\kappa}`;
- Sobolev(vk2) :math:`\tfrac1n \sum_{i,j} \sum_{k=1}^K v_k^2 N(q,k) P_{k,q}(X_i^T X_j)` (sphunif:
  :math:`\sum_k b_k C_k^{q/2-1}` with :math:`b_k = (1 + \tfrac{2k}{q-2}) v_k^2`), null
  :math:`\sum_k v_k^2 \chi^2_{N(q,k)}`;
- kernel: :math:`n\,\mathrm{MMD}_V^2`, null :math:`\sum_{l \ge 1} (a_l/N(q,l)) \chi^2_{N(q,l)}`.

Each V-type statistic is :math:`n\,\mathrm{MMD}_V^2` of its kernel, each U-type one :math:`(n-1)\,\mathrm{MMD}_U^2`
(its null law is the V-law shifted by :math:`-(\varphi(1) - a_0) = -(1 - b_0)`, as in sphunif); adding a constant
to :math:`\varphi` changes neither. Ajne's kernel has odd degrees only (it cannot see axial alternatives), Giné's
:math:`G_n` even degrees only (it cannot see a mean direction); :math:`F_n`, Bakshaev, Riesz (s < 2), Poisson and
Softmax have every :math:`a_l > 0` (consistent against every alternative).

Null distribution and truncation
--------------------------------
The asymptotic null law is a :class:`~dotkernels.nulls.WeightedChiSquare` (Imhof, HBE or Satterthwaite–Welch;
``"exact"`` chi-square when a single degree carries the kernel). Infinite series are truncated at a degree L
chosen as the smallest L (capped at :data:`MAX_DEGREE`) whose neglected mean
:math:`\sum_{l > L} a_l = \varphi(1) - a_0 - \sum_{1 \le l \le L} a_l` (exact for non-negative spectra) is at most
:data:`TAIL_RTOL` times :math:`\sum_{l \ge 1} a_l`. Degrees whose dimension :math:`N(q, l)` overflows float64 or
whose weight :math:`a_l / N(q, l)` underflows are left out too (at large q: N(16384, 120) ~ 1e306). The neglected
mean is added to the law's ``shift``, so the truncated law keeps the exact mean; what remains is a centred
remainder with variance :math:`2 \sum_{\text{neglected}} a_l^2 / N(q, l)`, tiny because the neglected weights are
tiny (high degree or huge multiplicity: :math:`\chi^2_N / N \to 1`). The neglected mean is reported as
``truncation_error`` (and as the law's ``truncation_error``).

``pvalue="monte_carlo"`` simulates the same statistic on ``n_mc`` uniform samples of the same size and returns the
exact Monte Carlo p-value :math:`(1 + \#\{T^* \ge T\}) / (n_{mc} + 1)`.

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
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .gegenbauer import _check_dimension, harmonic_dimension, log_harmonic_dimension
from .kernels import (
    ArcCosineKernel,
    DistanceKernel,
    DotProductKernel,
    GaussianKernel,
    LegendreSeriesKernel,
    ScaledKernel,
    SumKernel,
    parse_kernel,
)
from .mmd import mmd2_uniform
from .nulls import WeightedChiSquare, monte_carlo_pvalue
from .sampling import sample_uniform
from .special import log_gamma_ratio

__all__ = [
    "MAX_DEGREE",
    "TAIL_RTOL",
    "TESTS",
    "MonteCarloNull",
    "UniformityTestResult",
    "sobolev_null",
    "uniformity_kernel",
    "uniformity_statistic",
    "uniformity_test",
]

#: Names accepted by ``uniformity_test(test=...)``.
TESTS: tuple[str, ...] = (
    "rayleigh",
    "bingham",
    "ajne",
    "gine_gn",
    "gine_fn",
    "bakshaev",
    "riesz",
    "poisson",
    "softmax",
    "sobolev",
    "kernel",
)
#: Relative tolerance on the neglected mean of the truncated null series.
TAIL_RTOL: float = 1e-6
#: Largest degree kept in the truncated null series.
MAX_DEGREE: int = 500

_U_TESTS = frozenset({"poisson", "softmax"})
_PARAMS: dict[str, dict[str, Any]] = {
    "riesz": {"s": 1.0},
    "poisson": {"rho": 0.5},
    "softmax": {"kappa": 1.0},
    "sobolev": {"vk2": (0.0, 0.0, 1.0)},
}
_PVALUES = ("asymptotic", "monte_carlo")
_METHODS = ("imhof", "hbe", "sw")
# Degrees whose log N(q, l) exceeds this (N ~ 1e304) or whose log weight is below _LOG_MIN_WEIGHT are not kept as
# chi-square terms (their mean goes into the shift of the law).
_LOG_MAX_DIM = 700.0
_LOG_MIN_WEIGHT = math.log(1e-280)
# Negative coefficients smaller than this (relative to sum_l a_l) are rounding noise and are treated as zero.
_NEGATIVE_RTOL = 1e-12
# A null law whose standard deviation is below this fraction of the kernel's size cannot be resolved in float64.
_DEGENERATE_RTOL = 1e-8


# =================================================================================================================
# kernels of the named tests that are not dotkernels families


class _GineKernel(DotProductKernel):
    r"""Kernel of Giné's :math:`G_n`: :math:`\varphi(t) = -c_q \sqrt{1 - t^2} = -c_q \sin\theta`.

    :math:`c_q = \tfrac{q-1}{4} (\Gamma(\tfrac{q-1}{2}) / \Gamma(\tfrac q2))^2`, so that :math:`a_0 = -1/2`. Even
    degrees only: :math:`a_{2k}/N(q, 2k) = v_{2k}^2 = \frac{(q-1)(2k-1)}{8\pi(2k+q-1)}
    \bigl(\Gamma(\tfrac{q-1}{2}) \Gamma(k - \tfrac12) / \Gamma(k + \tfrac{q-1}{2})\bigr)^2` (sphunif's weights).
    """

    name = "gine"
    has_corner = True
    dimension_dependent = True

    @staticmethod
    def _log_c(q: int) -> float:
        return math.log((q - 1) / 4.0) + 2.0 * float(log_gamma_ratio((q - 1) / 2.0, q / 2.0))

    def _profile(self, t, xp, q):
        return -math.exp(self._log_c(q)) * xp.sqrt(xp.clip(1.0 - t * t, 0.0, None))

    def _derivative(self, t, xp, q):
        return math.exp(self._log_c(q)) * t / xp.sqrt(xp.clip(1.0 - t * t, 0.0, None))

    def _phi_at_one(self, q):
        return 0.0

    def _uniform_mean_embedding(self, q):
        return -0.5

    def _log_spectrum(self, q, L):
        degrees = np.arange(L + 1)
        log_a = np.full(L + 1, -np.inf)
        sign = np.zeros(L + 1)
        log_a[0], sign[0] = math.log(0.5), -1.0
        even = degrees[2::2]
        if even.size:
            k = even / 2.0
            log_v2 = (
                math.log(q - 1.0)
                + np.log(2.0 * k - 1.0)
                - np.log(8.0 * math.pi * (2.0 * k + q - 1.0))
                + 2.0 * (np.asarray(log_gamma_ratio(k - 0.5, k + (q - 1) / 2.0)) + math.lgamma((q - 1) / 2.0))
            )
            log_a[even] = log_v2 + log_harmonic_dimension(q, even)
            sign[even] = 1.0
        return log_a, sign

    def _known_positive_definite(self, q):
        return False

    def __repr__(self):
        return "GineKernel()"


class _PoissonTestKernel(DotProductKernel):
    r"""sphunif's Poisson kernel :math:`\psi_\rho(t) = ((1-\rho)^2/(1 - 2\rho t + \rho^2))^{q/2}`, 0 < rho < 1.

    The classical Poisson kernel times :math:`(1-\rho)^{q-1}/(1+\rho)`: :math:`\psi_\rho(1) = 1`,
    :math:`a_l = N(q,l)\,\rho^l (1-\rho)^{q-1}/(1+\rho)`, all positive; computed in log space (no underflow of the
    scale factor at large q).
    """

    name = "poisson_test"
    dimension_dependent = True

    def __init__(self, rho: float):
        self.rho = float(rho)

    def _params(self):
        return (self.rho,)

    def _named_params(self):
        return [("rho", self.rho)]

    def __repr__(self):
        return f"SphunifPoissonKernel(rho={self.rho!r})"

    def _log_scale(self, q: int) -> float:
        return (q - 1) * math.log1p(-self.rho) - math.log1p(self.rho)

    def _profile(self, t, xp, q):
        r = self.rho
        return xp.exp(0.5 * q * (2.0 * math.log1p(-r) - xp.log(1.0 - 2.0 * r * t + r * r)))

    def _derivative(self, t, xp, q):
        r = self.rho
        return q * r * self._profile(t, xp, q) / (1.0 - 2.0 * r * t + r * r)

    def _phi_at_one(self, q):
        return 1.0

    def _uniform_mean_embedding(self, q):
        return math.exp(self._log_scale(q))

    def _log_spectrum(self, q, L):
        degrees = np.arange(L + 1)
        log_a = log_harmonic_dimension(q, degrees) + degrees * math.log(self.rho) + self._log_scale(q)
        return log_a, np.ones(L + 1)

    def _known_positive_definite(self, q):
        return True


# =================================================================================================================
# parameters and kernels


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _check_test(test: Any) -> str:
    if not isinstance(test, str):
        raise TypeError(f"test must be a string, one of {', '.join(TESTS)}; got {type(test).__name__}")
    name = test.strip().lower()
    if name not in TESTS:
        raise ValueError(f"unknown test {test!r}; test must be one of {', '.join(TESTS)}")
    return name


def _check_params(test: str, params: Mapping[str, Any]) -> dict[str, Any]:
    allowed = _PARAMS.get(test, {})
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = f"takes only {', '.join(allowed)}" if allowed else "takes no parameters"
        raise TypeError(f"unexpected parameter(s) {', '.join(unknown)} for test {test!r}; it {takes}")
    out = dict(allowed)
    out.update(params)
    if test == "riesz":
        s = _real(out["s"], "s")
        if not 0 < s <= 2:
            raise ValueError(
                f"s must lie in (0, 2] for the Riesz test, got {s}: for s > 2 the kernel -||x-y||^s has negative "
                "Gegenbauer coefficients (the null law is not a sum of chi-squares); s = 0 (the logarithmic "
                "kernel) has no finite null mean"
            )
        out["s"] = s
    elif test == "poisson":
        rho = _real(out["rho"], "rho")
        if not 0 < rho < 1:
            raise ValueError(f"rho must lie in (0, 1) for the Poisson test, got {rho} (rho -> 0 is the Rayleigh test)")
        out["rho"] = rho
    elif test == "softmax":
        kappa = _real(out["kappa"], "kappa")
        if not kappa > 0:
            raise ValueError(f"kappa must be > 0 for the Softmax test, got {kappa} (kappa -> 0 is the Rayleigh test)")
        out["kappa"] = kappa
    elif test == "sobolev":
        try:
            vk2 = np.asarray(out["vk2"], dtype=np.float64)
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
        out["vk2"] = tuple(vk2.tolist())
    return out


@functools.lru_cache(maxsize=256)
def _named_kernel(test: str, q: int, params: tuple) -> DotProductKernel:
    p = dict(params)
    if test == "rayleigh":
        return LegendreSeriesKernel([0.0, float(q)])
    if test == "bingham":
        return LegendreSeriesKernel([0.0, 0.0, float(harmonic_dimension(q, 2))])
    if test == "ajne":
        return ScaledKernel(0.5, ArcCosineKernel(0))
    if test == "gine_gn":
        return _GineKernel()
    if test == "gine_fn":
        return SumKernel([ScaledKernel(2.0, ArcCosineKernel(0)), _GineKernel()])
    if test == "bakshaev":
        return DistanceKernel(0.5)
    if test == "riesz":
        return DistanceKernel(p["s"] / 2.0)
    if test == "poisson":
        return _PoissonTestKernel(p["rho"])
    if test == "softmax":
        return GaussianKernel(tau=p["kappa"] / 2.0)
    if test == "sobolev":
        vk2 = np.asarray(p["vk2"])
        k = np.arange(1, vk2.size + 1)
        with np.errstate(divide="ignore", over="ignore"):
            coef = np.where(vk2 > 0, np.exp(np.log(vk2) + log_harmonic_dimension(q, k)), 0.0)
        if not np.all(np.isfinite(coef)):
            raise ValueError(f"vk2 too long for q={q}: v_k^2 N(q, k) overflows float64 (N(q, k) is astronomical)")
        return LegendreSeriesKernel(np.concatenate([[0.0], coef]))
    raise AssertionError(test)  # pragma: no cover


def uniformity_kernel(test: str, q: int, **params: Any) -> tuple[DotProductKernel, bool]:
    r"""The dot-product kernel that defines a named test in dimension q, and whether the test is U-type.

    Parameters
    ----------
    test : str
        One of :data:`TESTS` except ``"kernel"`` (see the module table).
    q : int
        Ambient dimension (sphere :math:`S^{q-1}`), >= 2.
    **params
        ``s`` (riesz, default 1), ``rho`` (poisson, default 0.5), ``kappa`` (softmax, default 1), ``vk2`` (sobolev,
        default ``(0, 0, 1)``), as in sphunif.

    Returns
    -------
    kernel : DotProductKernel
        :math:`\varphi` with statistic :math:`n\,\mathrm{MMD}_V^2` (V-type) or :math:`(n-1)\,\mathrm{MMD}_U^2`.
    u_statistic : bool
        True for the U-type tests (poisson, softmax).

    Examples
    --------
    >>> kernel, u = uniformity_kernel("bingham", 3)
    >>> kernel.spectrum(3, 3).round(12).tolist(), u  # N(3, 2) P_2: the Bingham test
    ([0.0, 0.0, 5.0, 0.0], False)
    >>> uniformity_kernel("softmax", 5, kappa=2.0)
    (GaussianKernel(tau=1.0), True)
    """
    test = _check_test(test)
    if test == "kernel":
        raise ValueError("test='kernel' takes the kernel itself: pass kernel=... to uniformity_test")
    q = _check_dimension(q)
    params = _check_params(test, params)
    return _named_kernel(test, q, tuple(sorted(params.items()))), test in _U_TESTS


# =================================================================================================================
# statistic


def _check_sample(Z: Any) -> tuple[Any, int, int]:
    if isinstance(Z, (list, tuple)):
        Z = np.asarray(Z, dtype=np.float64)
    Z = DotProductKernel._check_points(Z, "Z", False, None)
    n, q = int(Z.shape[0]), int(Z.shape[1])
    if n < 2:
        raise ValueError(f"Z must contain at least 2 points (rows), got {n}")
    return Z, n, q


def _statistic(Z: Any, kernel: DotProductKernel, u_statistic: bool, block_size: int | None) -> float:
    n = int(Z.shape[0])
    value = mmd2_uniform(Z, kernel, estimator="u" if u_statistic else "v", method="auto", block_size=block_size)
    value = float(value.detach().cpu() if hasattr(value, "detach") else value)
    return (n - 1) * value if u_statistic else n * value


def _resolve(test: str, kernel: Any, q: int, params: Mapping[str, Any]) -> tuple[str, DotProductKernel, bool, dict]:
    test = _check_test(test)
    if test == "kernel":
        if params:
            raise TypeError(f"unexpected parameter(s) {', '.join(sorted(params))} for test 'kernel'")
        if kernel is None:
            raise ValueError(
                "test='kernel' needs a kernel: pass kernel=DotProductKernel or a string like 'gaussian:tau=1'"
            )
        return test, parse_kernel(kernel), False, {}
    if kernel is not None:
        raise ValueError(f"kernel= is only used with test='kernel'; test {test!r} defines its own kernel")
    checked = _check_params(test, params)
    return test, _named_kernel(test, q, tuple(sorted(checked.items()))), test in _U_TESTS, checked


def uniformity_statistic(
    Z: Any, test: str = "rayleigh", *, kernel: Any = None, block_size: int | None = None, **params: Any
) -> float:
    r"""The statistic of a uniformity test (sphunif's ``sph_stat_*`` definitions; see the module table).

    :math:`n\,\mathrm{MMD}_V^2` of the test's kernel for the V-type tests, :math:`(n-1)\,\mathrm{MMD}_U^2` for the
    U-type ones (poisson, softmax), computed by :func:`dotkernels.mmd.mmd2_uniform` (accumulated in float64;
    blocked for large n, moment forms for the degree <= 2 kernels).

    Parameters
    ----------
    Z : array, shape (n, q)
        Unit-norm rows, n >= 2; any array-API array.
    test, kernel, block_size, **params
        As in :func:`uniformity_test`.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> Z = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> round(uniformity_statistic(Z, "rayleigh"), 12)  # n q ||mean||^2 = 3 * 3 * 3 / 9
    3.0
    """
    Z, _, q = _check_sample(Z)
    _, kern, u, _ = _resolve(test, kernel, q, params)
    return _statistic(Z, kern, u, block_size)


# =================================================================================================================
# null distributions


def _check_nonnegative(
    kernel: DotProductKernel, q: int, log_abs: np.ndarray, sign: np.ndarray, total: float
) -> np.ndarray:
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
    return a


def sobolev_null(
    kernel: DotProductKernel | str,
    q: int,
    *,
    u_statistic: bool = False,
    method: str = "imhof",
    degree: int | None = None,
    rtol: float = TAIL_RTOL,
    max_degree: int = MAX_DEGREE,
) -> tuple[WeightedChiSquare, int]:
    r"""Asymptotic null law of :math:`n\,\mathrm{MMD}_V^2` (or :math:`(n-1)\,\mathrm{MMD}_U^2`) for a kernel.

    :math:`T = \sum_{l \ge 1} (a_l / N(q,l))\, \chi^2_{N(q,l)}`, shifted by :math:`-(\varphi(1) - a_0)` for the
    U-statistic, truncated as described in the module notes (the neglected mean goes into the shift and is
    reported as the law's ``truncation_error``).

    Parameters
    ----------
    kernel : DotProductKernel or str
        Its coefficients :math:`a_l`, l >= 1, must be non-negative (``a_0`` may have any sign).
    q : int
        Dimension, >= 2.
    u_statistic : bool
        Law of the U-statistic :math:`(n-1)\,\mathrm{MMD}_U^2` instead of :math:`n\,\mathrm{MMD}_V^2`.
    method : {"imhof", "hbe", "sw"}
        Distribution-function method of :class:`~dotkernels.nulls.WeightedChiSquare`; ignored (``"exact"``) when a
        single degree carries the whole kernel.
    degree : int, optional
        Truncation degree L; default: automatic (``rtol``, ``max_degree``; the kernel's own degree if finite).
    rtol : float
        Target of the automatic truncation: neglected mean <= rtol * :math:`\sum_{l \ge 1} a_l`.
    max_degree : int
        Cap of the automatic truncation.

    Returns
    -------
    law : WeightedChiSquare
    L : int
        The last degree kept as a chi-square term.

    Raises
    ------
    ValueError
        If a coefficient :math:`a_l`, 1 <= l <= L, is negative (beyond rounding), or the law is degenerate.

    Examples
    --------
    >>> from dotkernels import DistanceKernel
    >>> law, L = sobolev_null(DistanceKernel(0.5), 3)  # Bakshaev's test on S^2
    >>> round(law.mean(), 12)  # = E||X - Y|| = 4/3 exactly (the neglected tail is in the shift)
    1.333333333333
    """
    kernel = parse_kernel(kernel)
    q = _check_dimension(q)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
    rtol = _real(rtol, "rtol")
    if not rtol >= 0:
        raise ValueError(f"rtol must be >= 0, got {rtol}")
    if isinstance(max_degree, bool) or not isinstance(max_degree, numbers.Integral) or max_degree < 1:
        raise ValueError(f"max_degree must be an integer >= 1, got {max_degree!r}")
    finite = kernel.degree
    if degree is not None:
        if isinstance(degree, bool) or not isinstance(degree, numbers.Integral) or degree < 1:
            raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
        L = int(degree)
    elif finite is not None:
        L = max(int(finite), 1)
    else:
        L = None

    phi1 = float(kernel.phi_at_one(q))
    a0 = float(kernel.uniform_mean_embedding(q))
    total = phi1 - a0  # sum_{l >= 1} a_l for a non-negative spectrum
    if not math.isfinite(total):
        raise ValueError(f"{kernel!r}: phi(1) - a_0 = {total} is not finite in q={q}; the null law has no mean")

    if L is None:  # automatic: grow L until the neglected mean is below rtol * total
        L = min(16, int(max_degree))
        while True:
            log_abs, sign = kernel.log_spectrum(q, L)
            a = _check_nonnegative(kernel, q, log_abs, sign, total)
            tail = total - math.fsum(a[1:])
            if tail <= rtol * total or L >= max_degree:
                break
            L = min(2 * L, int(max_degree))
        # smallest degree reaching the tolerance
        tails = total - np.cumsum(a)[1:] + a[0]
        ok = np.nonzero(tails <= rtol * total)[0]
        if ok.size:
            L = int(ok[0]) + 1
    log_abs, sign = kernel.log_spectrum(q, L)
    a = _check_nonnegative(kernel, q, log_abs, sign, total)
    degrees = np.arange(L + 1)
    log_n = log_harmonic_dimension(q, degrees)
    keep = (degrees >= 1) & (sign > 0) & (log_n < _LOG_MAX_DIM) & (log_abs - log_n > _LOG_MIN_WEIGHT)
    if not np.any(keep):
        raise ValueError(
            f"the null law of {kernel!r} in q={q} is degenerate: no degree l >= 1 carries a representable "
            "chi-square weight a_l / N(q, l) (e.g. a kernel concentrated on degrees where N(q, l) is astronomical); "
            "use pvalue='monte_carlo' or a kernel adapted to the dimension"
        )
    kept = np.where(keep, a, 0.0)
    last = int(np.nonzero(keep)[0][-1])
    kept_sum = math.fsum(kept)
    exact_series = finite is not None and finite <= L and bool(np.all(keep[1:] | (sign[1:] == 0)))
    tail = 0.0 if exact_series else max(total - kept_sum, 0.0)
    shift = -kept_sum if u_statistic else tail
    single = int(np.count_nonzero(keep)) == 1 and tail == 0.0
    with np.errstate(over="ignore", divide="ignore"):  # 1/w_l overflows harmlessly for huge N(q, l)
        law = WeightedChiSquare.from_spectrum(
            kept[: last + 1], q, method="exact" if single else method, shift=shift, tail_bound=tail
        )
    if not law.std() > _DEGENERATE_RTOL * max(abs(phi1), abs(a0), total):
        raise ValueError(
            f"the null law of {kernel!r} in q={q} is numerically degenerate (standard deviation {law.std():.3g} "
            f"against a kernel of size {max(abs(phi1), abs(a0)):.3g}): the kernel concentrates on degrees with "
            "astronomical multiplicity N(q, l), so the statistic cannot be resolved in float64; use a kernel "
            "adapted to the dimension (e.g. Poisson rho ~ 1/q)"
        )
    return law, last


@dataclass(frozen=True)
class MonteCarloNull:
    r"""Monte Carlo null distribution of a uniformity statistic: ``n_mc`` statistics of uniform samples.

    Attributes
    ----------
    statistics : ndarray
        The simulated statistics, sorted.
    n, q : int
        Sample size and dimension they were simulated at.
    """

    statistics: np.ndarray
    n: int
    q: int

    @property
    def n_mc(self) -> int:
        return int(self.statistics.size)

    def sf(self, x: Any) -> Any:
        """Exact Monte Carlo p-value ``(1 + #{T* >= x}) / (n_mc + 1)``."""
        return monte_carlo_pvalue(x, self.statistics)

    def cdf(self, x: Any) -> Any:
        """Empirical distribution function ``#{T* <= x} / n_mc``."""
        out = np.searchsorted(self.statistics, np.asarray(x, dtype=np.float64), side="right") / self.n_mc
        return float(out) if np.ndim(out) == 0 else out

    def ppf(self, p: Any) -> Any:
        """Empirical quantiles (``numpy.quantile``, linear interpolation)."""
        out = np.quantile(self.statistics, p)
        return float(out) if np.ndim(out) == 0 else out

    def mean(self) -> float:
        return float(np.mean(self.statistics))

    def var(self) -> float:
        return float(np.var(self.statistics, ddof=1))

    def __repr__(self) -> str:
        return f"MonteCarloNull(n_mc={self.n_mc}, n={self.n}, q={self.q}, mean={self.mean():.6g})"


@dataclass(frozen=True)
class UniformityTestResult:
    r"""Result of :func:`uniformity_test` (frozen, like the result objects of :mod:`scipy.stats`).

    Attributes
    ----------
    statistic : float
        The test statistic (sphunif's definition).
    pvalue : float
        Asymptotic or Monte Carlo p-value.
    null_distribution : WeightedChiSquare or MonteCarloNull
        The null law used for the p-value (``sf(statistic) == pvalue``).
    kernel : DotProductKernel
        The kernel :math:`\varphi` that defines the test (statistic = :math:`n\,\mathrm{MMD}_V^2` or
        :math:`(n-1)\,\mathrm{MMD}_U^2` of it).
    test : str
    n, q : int
        Sample size and dimension.
    u_statistic : bool
        True for the U-type statistics (poisson, softmax).
    truncation_degree : int or None
        Last degree kept in the asymptotic null series (None for Monte Carlo p-values).
    truncation_error : float
        :math:`\sum` of the coefficients :math:`a_l` left out of the series (their mean, added to the law's shift).
    parameters : dict
        The test's parameters (s, rho, kappa, vk2) with defaults filled in.
    """

    statistic: float
    pvalue: float
    null_distribution: WeightedChiSquare | MonteCarloNull
    kernel: DotProductKernel
    test: str
    n: int
    q: int
    u_statistic: bool
    truncation_degree: int | None
    truncation_error: float
    parameters: dict = field(default_factory=dict)


# =================================================================================================================
# the test


def _rng(random_state: Any) -> np.random.Generator | np.random.RandomState:
    if isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        return random_state
    if random_state is None or (isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool)):
        return np.random.default_rng(random_state)
    raise TypeError(f"random_state must be None, an int or a numpy Generator, got {type(random_state).__name__}")


def uniformity_test(
    Z: Any,
    test: str = "rayleigh",
    *,
    kernel: DotProductKernel | str | None = None,
    pvalue: str = "asymptotic",
    method: str = "imhof",
    n_mc: int = 1000,
    random_state: Any = None,
    degree: int | None = None,
    block_size: int | None = None,
    **params: Any,
) -> UniformityTestResult:
    r"""Test whether the rows of Z are uniformly distributed on the sphere :math:`S^{q-1}`.

    Parameters
    ----------
    Z : array, shape (n, q)
        n >= 2 unit vectors (rows) in :math:`\mathbb{R}^q`, q >= 2; numpy or any array-API array (torch, ...).
    test : str
        ``"rayleigh"``, ``"bingham"``, ``"ajne"``, ``"gine_gn"``, ``"gine_fn"``, ``"bakshaev"``, ``"riesz"`` (s),
        ``"poisson"`` (rho), ``"softmax"`` (kappa), ``"sobolev"`` (vk2) or ``"kernel"`` (kernel=...). Definitions,
        kernels and scalings in the module table (those of sphunif).
    kernel : DotProductKernel or str, optional
        The kernel of ``test="kernel"``: statistic :math:`n\,\mathrm{MMD}_V^2`, null
        :math:`\sum_{l \ge 1} (a_l/N(q,l))\chi^2_{N(q,l)}`; its coefficients must be non-negative for l >= 1.
    pvalue : {"asymptotic", "monte_carlo"}
        Asymptotic null law, or simulation of the statistic on ``n_mc`` uniform samples of size n.
    method : {"imhof", "hbe", "sw"}
        How the asymptotic law is evaluated (Imhof inversion; Hall–Buckley–Eagleson or Satterthwaite–Welch moment
        matching). Rayleigh, Bingham and single-degree kernels use the exact chi-square.
    n_mc : int
        Monte Carlo replicates.
    random_state : None, int or numpy Generator
        Randomness of the Monte Carlo simulation.
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

    Raises
    ------
    ValueError, TypeError
        Fewer than 2 points, rows that are not unit vectors, NaN/inf, an unknown test or parameter, a kernel with a
        negative coefficient :math:`a_l` (l >= 1) -- each naming the offending argument.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((200, 3))
    >>> Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    >>> res = uniformity_test(Z, "rayleigh")
    >>> bool(res.pvalue > 0.01), res.null_distribution.method  # chi^2_3
    (True, 'exact')
    >>> Z[:, 2] = np.abs(Z[:, 2])  # fold onto the upper hemisphere
    >>> bool(uniformity_test(Z, "ajne").pvalue < 1e-6)
    True
    """
    Z, n, q = _check_sample(Z)
    test, kern, u, checked = _resolve(test, kernel, q, params)
    if pvalue not in _PVALUES:
        raise ValueError(f"pvalue must be one of {', '.join(_PVALUES)}, got {pvalue!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
    if block_size is not None and (
        isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral) or block_size < 1
    ):
        raise ValueError(f"block_size must be a positive integer or None, got {block_size!r}")

    if pvalue == "asymptotic":
        law, L = sobolev_null(kern, q, u_statistic=u, method=method, degree=degree)
        statistic = _statistic(Z, kern, u, block_size)
        p = float(law.sf(statistic))
        return UniformityTestResult(statistic, p, law, kern, test, n, q, u, L, float(law.truncation_error), checked)

    if isinstance(n_mc, bool) or not isinstance(n_mc, numbers.Integral) or n_mc < 1:
        raise ValueError(f"n_mc must be a positive integer, got {n_mc!r}")
    rng = _rng(random_state)
    # check the kernel's spectrum (negative coefficients) with the same rules as the asymptotic law
    if test == "kernel":
        sobolev_null(kern, q, method=method, degree=degree)
    statistic = _statistic(Z, kern, u, block_size)
    simulated = np.empty(int(n_mc))
    for i in range(int(n_mc)):
        simulated[i] = _statistic(sample_uniform(n, q, rng), kern, u, block_size)
    null = MonteCarloNull(np.sort(simulated), n, q)
    return UniformityTestResult(
        statistic, float(monte_carlo_pvalue(statistic, simulated)), null, kern, test, n, q, u, None, 0.0, checked
    )
