r"""Registry of sphunif's uniformity tests and the one-pass computation of many statistics on one sample.

Every test is a :class:`TestSpec`: its sphunif name, the dimensions it applies to, its parameters (sphunif's names
and defaults), the pairwise sums it needs, how its statistic is finished from them and the sample's other summaries
(mean, second moments, sorted angles, gaps, projections), and its asymptotic null law (None: Monte Carlo).

:func:`battery_statistics` computes the statistics of several tests with one blocked pass over the pairs
:math:`i < j`: the inner products :math:`X_i^T X_j` of a block of rows are computed once (one matrix product), and
every requested pairwise function (angle, :math:`\sin\theta`, :math:`\|X_i - X_j\|`, the Poisson and softmax
kernels, ...) is evaluated on that block and summed, each quantity computed once per block and shared between the
tests that use it. A new test is one :class:`TestSpec` added with :func:`register`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy import special, stats

from .._validate import check_integer, check_real, check_rng
from ..gegenbauer import harmonic_dimension, legendre_series, log_harmonic_dimension
from ..special import log_iv
from . import _circular as C
from . import _spherical as S

__all__: list[str] = []

#: Rows of the blocks of the pairwise pass (a block holds block x n inner products).
BLOCK_ROWS = 128
_KERNEL_NULL_DEGREE = 1024


# =================================================================================================================
# the sample and its pairwise blocks


class PairBlock:
    r"""The pairs (i, j), i < j, of one block: inner products ``t`` (an array of any shape) and quantities derived
    from them, each computed at most once (cached, in place where possible)."""

    def __init__(self, t: np.ndarray, psi: np.ndarray | None = None):
        self.t = t
        if psi is not None:
            self.__dict__["psi"] = psi

    @cached_property
    def psi(self) -> np.ndarray:
        """Shortest angle :math:`\theta = \arccos t`."""
        out = np.clip(self.t, -1.0, 1.0)
        return np.arccos(out, out=out)

    @cached_property
    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Position of the angles on the grid of the projected-ecdf kernels' splines (shared by PCvM, PAD, PRt)."""
        return S.grid_position(self.psi, S.GRID_STEP)

    @cached_property
    def one_minus_t(self) -> np.ndarray:
        out = np.subtract(1.0, self.t)
        return np.clip(out, 0.0, 2.0, out=out)

    @cached_property
    def sin_psi(self) -> np.ndarray:
        r""":math:`\sin\theta = \sqrt{1 - t^2}`."""
        out = np.multiply(self.t, self.t)
        np.subtract(1.0, out, out=out)
        np.maximum(out, 0.0, out=out)
        return np.sqrt(out, out=out)

    @cached_property
    def distance(self) -> np.ndarray:
        r""":math:`\|X_i - X_j\| = \sqrt{2 - 2t} = 2\sin(\theta/2)`."""
        out = np.multiply(self.t, -2.0)
        out += 2.0
        np.maximum(out, 0.0, out=out)
        return np.sqrt(out, out=out)


class Sample:
    """A sample of n points on S^{q-1} and its summaries, each computed once."""

    def __init__(self, Z: np.ndarray):
        self.Z = Z
        self.n, self.q = int(Z.shape[0]), int(Z.shape[1])

    @cached_property
    def mean(self) -> np.ndarray:
        return self.Z.mean(axis=0)

    @cached_property
    def second_moment(self) -> np.ndarray:
        return self.Z.T @ self.Z / self.n

    @cached_property
    def angles(self) -> np.ndarray:
        return C.angles(self.Z)

    @cached_property
    def sorted_angles(self) -> np.ndarray:
        return np.sort(self.angles)

    def pair_blocks(self, block_rows: int = BLOCK_ROWS):
        """The pairs i < j in blocks of rows: the upper triangle of each diagonal block (1-d), then the rectangle
        to its right (2-d)."""
        Z, n = self.Z, self.n
        circle = self.q == 2
        th = self.angles if circle else None
        for a in range(0, n, block_rows):
            b = min(a + block_rows, n)
            iu = np.triu_indices(b - a, 1)
            if circle:
                for cols in (slice(a, b), slice(b, n)):
                    d = np.abs(th[a:b, None] - th[None, cols])
                    psi = math.pi - np.abs(math.pi - d)
                    if cols.start == a:
                        psi = psi[iu]
                    if psi.size:
                        yield PairBlock(np.cos(psi), psi)
            else:
                yield PairBlock((Z[a:b] @ Z[a:b].T)[iu])
                if b < n:
                    yield PairBlock(Z[a:b] @ Z[b:].T)


# =================================================================================================================
# registry


@dataclass(frozen=True)
class PairTerm:
    """A pairwise quantity: ``key`` (shared between tests), ``fn(block) -> array`` and its reduction."""

    key: tuple
    fn: Callable[[PairBlock], np.ndarray]
    reduce: str = "sum"  # or "max"


@dataclass(frozen=True)
class TestSpec:
    r"""A named uniformity test.

    Attributes
    ----------
    name : str
        sphunif's spelling (matched case-insensitively).
    domain : {"any", "circle", "sphere"}
        Dimensions it applies to: every q >= 2, q = 2 only, or q >= 3.
    circular_battery : bool
        Listed in ``"all"`` at q = 2 (sphunif's ``avail_cir_tests``); spherical tests that can be computed at q = 2
        (Rayleigh_HD) are not.
    defaults : mapping
        Parameters and their defaults (sphunif's meaning).
    pairs : callable
        ``pairs(q, params) -> list[PairTerm]``, the pairwise sums it needs (possibly empty).
    finish : callable
        ``finish(sample, sums, params) -> float``: the statistic from the pairwise sums (``sums[key]``).
    null : callable or None
        ``null(n, q, params, method) -> law`` with ``sf``; None when only Monte Carlo calibrates it.
    description : str
    """

    name: str
    domain: str
    defaults: Mapping[str, Any]
    pairs: Callable[[int, dict], list[PairTerm]]
    finish: Callable[[Sample, dict, dict], float]
    null: Callable[[int, int, dict, str], Any] | None
    description: str = ""
    check: Callable[[dict, int], dict] = field(default=lambda params, q: params)
    circular_battery: bool = True
    prefixes: tuple[str, ...] = ()

    def null_law(self, n: int, q: int, params: dict, method: str) -> Any:
        """``null(n, q, params, method)``, or None for a test that only Monte Carlo calibrates."""
        return self.null(n, q, params, method) if self.null is not None else None


REGISTRY: dict[str, TestSpec] = {}


def register(spec: TestSpec) -> TestSpec:
    """Add a test to the registry (under its lower-case name)."""
    REGISTRY[spec.name.lower()] = spec
    return spec


def lookup(name: str, q: int) -> TestSpec:
    """The spec of a test by (case-insensitive) name, checked against the dimension q."""
    if not isinstance(name, str):
        raise TypeError(f"test must be a string (a test name), got {type(name).__name__}")
    spec = REGISTRY.get(name.strip().lower())
    if spec is None:
        raise ValueError(f"unknown test {name!r}; test must be one of {', '.join(available_tests())}")
    if spec.domain == "circle" and q != 2:
        raise ValueError(f"test {spec.name!r} is a circular test (q = 2); the data have q = {q}")
    if spec.domain == "sphere" and q < 3:
        raise ValueError(f"test {spec.name!r} needs q >= 3; the data have q = {q}")
    return spec


def available_tests(q: int | None = None) -> tuple[str, ...]:
    """sphunif's names of the registered tests (those that apply in dimension q, if given)."""
    out = []
    for spec in REGISTRY.values():
        if q is None:
            out.append(spec.name)
        elif q == 2 and spec.domain != "sphere" and spec.circular_battery:
            out.append(spec.name)
        elif q > 2 and spec.domain != "circle":
            out.append(spec.name)
    return tuple(sorted(out, key=str.lower))


# =================================================================================================================
# helpers for the specs


def _sum(key, fn) -> PairTerm:
    return PairTerm(key, fn, "sum")


def _wcs(weights, dofs, *, shift=0.0, tail=0.0, method="imhof"):
    from ..nulls import WeightedChiSquare

    w = np.asarray(weights, dtype=np.float64)
    d = np.asarray(dofs, dtype=np.float64)
    keep = w > 0
    method = "imhof" if method == "asymptotic" else method
    return WeightedChiSquare(w[keep], d[keep], method=method, shift=shift, tail_bound=abs(tail))


def _circular_sobolev_null(test: str, param=None, degree: int = 4096):
    def null(n, q, params, method):
        v, total = C.sobolev_weights(test, degree, params.get(param) if param else None)
        tail = total - 2.0 * math.fsum(v)
        return _wcs(v, np.full(v.size, 2.0), shift=tail, tail=tail, method=method)

    return null


def _no_pairs(q, params):
    return []


# ------------------------------------------------------------------------------------------ kernel (Sobolev) tests


def _gine_constant(q: int) -> float:
    return (q - 1.0) / 2.0 * math.exp(2.0 * (special.gammaln(0.5 * (q - 1)) - special.gammaln(0.5 * q)))


def _riesz_tau(q: int, s: float) -> float:
    r""":math:`E\|X - Y\|^s` (sphunif's bias term of the Riesz statistic), in log space (no overflow at large q)."""
    if q == 2:
        log_tau = s * math.log(2.0)
    else:
        log_tau = (q + s - 3) * math.log(2.0) + math.log(q - 2) + special.gammaln(0.5 * q - 1)
    return math.exp(
        log_tau + special.gammaln(0.5 * (q - 1 + s)) - special.gammaln(q - 1 + 0.5 * s) - 0.5 * math.log(math.pi)
    )


def _softmax_b0(q: int, kappa: float) -> float:
    nu = 0.5 * q - 1.0
    # Gamma(q/2) (2/kappa)^nu I_nu(kappa) e^{-kappa}
    return math.exp(special.gammaln(0.5 * q) + nu * math.log(2.0 / kappa) + float(log_iv(nu, kappa)) - kappa)


def _poisson_b0(q: int, rho: float) -> float:
    return math.exp((q - 1) * math.log1p(-rho) - math.log1p(rho))


def _softmax_pairs(t: np.ndarray, kappa: float) -> np.ndarray:
    out = np.multiply(t, kappa)
    out -= kappa
    return np.exp(out, out=out)


def _kernel_null(test: str):
    """Null law of the kernel tests from the uniformity module's machinery (tail folded in)."""

    def null(n, q, params, method):
        from . import _core as U

        kernel, estimator = U.uniformity_kernel(test, q=q, **({} if test == "rayleigh" else params))
        # an infinite series truncated at degree 1024 with its neglected mean in the shift: the remaining centred
        # part has variance below 1e-12 of the law's for these kernels (p-values equal the automatic truncation's
        # to ~1e-12) and the law is built in milliseconds instead of seconds
        degree = None if kernel.degree is not None else _KERNEL_NULL_DEGREE
        return U.sobolev_null(kernel, q=q, estimator=estimator, method=method, degree=degree)

    return null


def _check_riesz(params, q):
    s = check_real(params["s"], "s")
    if not 0 < s <= 2:
        raise ValueError(f"s must lie in (0, 2] for the Riesz test, got {s}")
    return {"s": s}


def _check_rho(params, q):
    rho = check_real(params["rho"], "rho")
    if not 0 < rho < 1:
        raise ValueError(f"rho must lie in (0, 1) for the Poisson test, got {rho}")
    return {"rho": rho}


def _check_kappa(params, q):
    kappa = check_real(params["kappa"], "kappa", positive=True)
    return {"kappa": kappa}


def _check_vk2(params, q):
    try:
        vk2 = np.asarray(params["vk2"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError("vk2 must be a sequence of real weights v_1^2, ..., v_K^2") from exc
    if vk2.ndim != 1 or vk2.size == 0 or not np.all(np.isfinite(vk2)) or np.any(vk2 < 0) or not np.any(vk2 > 0):
        raise ValueError("vk2 must be a non-empty 1-d sequence of non-negative finite weights, not all zero")
    return {"vk2": tuple(vk2.tolist())}


def _sobolev_coefficients(q: int, vk2) -> np.ndarray:
    k = np.arange(1, len(vk2) + 1)
    return np.concatenate([[0.0], np.asarray(vk2) * np.exp(log_harmonic_dimension(k, q=q))])


def rayleigh_statistic(sample: Sample, modified: bool = False) -> float:
    r"""Rayleigh's :math:`R_n = n q \|\bar X\|^2`, or Jupp's (2001) finite-n modification
    :math:`(1 - \tfrac{1}{2n}) R_n + \tfrac{R_n^2}{2n(q+2)}`, whose :math:`\chi^2_q` approximation has error
    :math:`O(n^{-3/2})` instead of :math:`O(n^{-1})`."""
    r = sample.n * sample.q * float(sample.mean @ sample.mean)
    if modified:
        r = (1.0 - 0.5 / sample.n) * r + r * r / (2.0 * sample.n * (sample.q + 2))
    return float(r)


def _check_modified(params, q):
    modified = params["modified"]
    if not isinstance(modified, (bool, np.bool_)):
        raise TypeError(f"modified must be True or False (Jupp's finite-n modification), got {modified!r}")
    return {"modified": bool(modified)}


register(
    TestSpec(
        "Rayleigh",
        "any",
        {"modified": False},
        _no_pairs,
        lambda s, sums, p: rayleigh_statistic(s, p["modified"]),
        _kernel_null("rayleigh"),
        "n q ||mean||^2 (modified=True: Jupp 2001); chi^2_q",
        _check_modified,
    )
)
register(
    TestSpec(
        "Bingham",
        "any",
        {},
        _no_pairs,
        lambda s, sums, p: float(
            0.5 * s.n * s.q * (s.q + 2) * (float(np.sum(s.second_moment * s.second_moment)) - 1.0 / s.q)
        ),
        _kernel_null("bingham"),
        "n q (q+2)/2 (tr S^2 - 1/q); chi^2_{(q-1)(q+2)/2}",
    )
)
register(
    TestSpec(
        "Ajne",
        "any",
        {},
        lambda q, p: [_sum(("psi",), lambda b: b.psi)],
        lambda s, sums, p: float(0.25 * s.n - sums[("psi",)] / (math.pi * s.n)),
        _kernel_null("ajne"),
        "n/4 - (1/(n pi)) sum_{i<j} theta_ij",
    )
)
register(
    TestSpec(
        "Gine_Gn",
        "any",
        {},
        lambda q, p: [_sum(("sin",), lambda b: b.sin_psi)],
        lambda s, sums, p: float(0.5 * s.n - _gine_constant(s.q) / s.n * sums[("sin",)]),
        _kernel_null("gine_gn"),
        "n/2 - (q-1)/(2n) (Gamma((q-1)/2)/Gamma(q/2))^2 sum_{i<j} sin theta_ij",
    )
)
register(
    TestSpec(
        "Gine_Fn",
        "any",
        {},
        lambda q, p: [_sum(("psi",), lambda b: b.psi), _sum(("sin",), lambda b: b.sin_psi)],
        lambda s, sums, p: float(
            4.0 * (0.25 * s.n - sums[("psi",)] / (math.pi * s.n))
            + 0.5 * s.n
            - _gine_constant(s.q) / s.n * sums[("sin",)]
        ),
        _kernel_null("gine_fn"),
        "4 Ajne + Gine_Gn",
    )
)
register(
    TestSpec(
        "Bakshaev",
        "any",
        {},
        lambda q, p: [_sum(("dist", 1.0), lambda b: b.distance)],
        lambda s, sums, p: float(-2.0 / s.n * sums[("dist", 1.0)] + s.n * _riesz_tau(s.q, 1.0)),
        _kernel_null("bakshaev"),
        "Riesz with s = 1 (energy distance)",
    )
)


def _riesz_pairs(q, p):
    s = p["s"]
    return [_sum(("dist", s), (lambda b: b.distance) if s == 1.0 else (lambda b, s=s: b.distance**s))]


register(
    TestSpec(
        "Riesz",
        "any",
        {"s": 1.0},
        _riesz_pairs,
        lambda s, sums, p: float(-2.0 / s.n * sums[("dist", p["s"])] + s.n * _riesz_tau(s.q, p["s"])),
        _kernel_null("riesz"),
        "-(2/n) sum_{i<j} ||X_i - X_j||^s + n E||X - Y||^s, 0 < s <= 2",
        _check_riesz,
    )
)


def _poisson_pairs(q, p):
    rho = p["rho"]
    c = (1.0 - rho) ** 2
    half = 0.5 * q

    def fn(b):
        r = np.multiply(b.t, -2.0 * rho)
        r += 1.0 + rho * rho
        np.divide(c, r, out=r)
        if half == int(half) and half <= 64:
            return np.power(r, int(half), out=r)
        np.log(r, out=r)
        r *= half
        return np.exp(r, out=r)

    return [_sum(("poisson", rho), fn)]


register(
    TestSpec(
        "Poisson",
        "any",
        {"rho": 0.5},
        _poisson_pairs,
        lambda s, sums, p: float(2.0 / s.n * sums[("poisson", p["rho"])] - (s.n - 1) * _poisson_b0(s.q, p["rho"])),
        _kernel_null("poisson"),
        "(2/n) sum_{i<j} (psi_rho(t_ij) - b_0), psi_rho(t) = ((1-rho)^2/(1 - 2 rho t + rho^2))^{q/2}",
        _check_rho,
    )
)
register(
    TestSpec(
        "Softmax",
        "any",
        {"kappa": 1.0},
        lambda q, p: [_sum(("softmax", p["kappa"]), lambda b, k=p["kappa"]: _softmax_pairs(b.t, k))],
        lambda s, sums, p: float(2.0 / s.n * sums[("softmax", p["kappa"])] - (s.n - 1) * _softmax_b0(s.q, p["kappa"])),
        _kernel_null("softmax"),
        "(2/n) sum_{i<j} (exp(kappa (t_ij - 1)) - b_0)",
        _check_kappa,
    )
)


def _sobolev_pairs(q, p):
    coef = _sobolev_coefficients(q, p["vk2"])
    return [_sum(("sobolev", p["vk2"]), lambda b, c=coef: legendre_series(c, b.t, q=q, validate=False))]


register(
    TestSpec(
        "Sobolev",
        "any",
        {"vk2": (0.0, 0.0, 1.0)},
        _sobolev_pairs,
        lambda s, sums, p: float(
            math.fsum(_sobolev_coefficients(s.q, p["vk2"])) + 2.0 / s.n * sums[("sobolev", p["vk2"])]
        ),
        lambda n, q, p, m: _wcs(
            np.asarray(p["vk2"]), [harmonic_dimension(k, q=q) for k in range(1, len(p["vk2"]) + 1)], method=m
        ),
        "(1/n) sum_{i,j} sum_k v_k^2 N(q, k) P_k(t_ij); null sum_k v_k^2 chi^2_{N(q,k)}",
        _check_vk2,
    )
)


def _check_stein(params, q):
    K = check_integer(params["K"], "K", minimum=1, requirement="a positive number of terms K")
    cf = params["cf"]
    if not isinstance(cf, (bool, np.bool_)):
        raise TypeError(f"cf must be True or False (characteristic instead of moment generating function), got {cf!r}")
    return {"K": K, "cf": bool(cf)}


def _stein_vk2(q: int, p: dict) -> tuple:
    return tuple(S.stein_weights(p["K"], q=q, cf=p["cf"]).tolist())


register(
    TestSpec(
        "Stein",
        "any",
        {"K": 10, "cf": False},
        lambda q, p: _sobolev_pairs(q, {"vk2": _stein_vk2(q, p)}),
        lambda s, sums, p: float(
            math.fsum(_sobolev_coefficients(s.q, _stein_vk2(s.q, p)))
            + 2.0 / s.n * sums[("sobolev", _stein_vk2(s.q, p))]
        ),
        lambda n, q, p, m: _wcs(
            np.asarray(_stein_vk2(q, p)),
            [harmonic_dimension(k, q=q) for k in range(1, p["K"] + 1)],
            method=m,
        ),
        "Stein's test: finite Sobolev test with weights (k(k+q-2) Gamma(q/2) 2^(q/2-1) I_{k+q/2-1}(1))^2, k <= K",
        _check_stein,
    )
)


# ------------------------------------------------------------------------------------------ projected-ecdf tests


def _check_t(params, q):
    t = check_real(params["t"], "t")
    if not 0 < t < 1:
        raise ValueError(f"t must lie in (0, 1), got {t}")
    return {"t": t}


def _rothman_term(t: float) -> PairTerm:
    tm = min(t, 1.0 - t)
    return _sum(("rothman", t), lambda b: np.minimum(b.psi / C.TWO_PI - tm * (1.0 - tm), tm * tm))


def _projected_spec(name, test, defaults, check, description):
    def pairs(q, p):
        if q == 2:
            if test == "pcvm":
                return []
            if test == "pad":
                return [_sum(("cpad",), lambda b: C.pad_kernel(b.psi))]
            return [_rothman_term(p["t"])]
        t = p.get("t", 1.0 / 3.0)
        return [_sum(("proj", test, t), lambda b: S.projected_kernel(b.psi, test, q=q, t=t, position=b.grid))]

    def finish(s, sums, p):
        n, q = s.n, s.q
        if q == 2:
            if test == "pcvm":
                return C.pcvm(s.angles)
            if test == "pad":
                return float(2.0 / n * (sums[("cpad",)] / math.pi - math.log(C.TWO_PI) * n * (n - 1.0)) + n)
            t = min(p["t"], 1 - p["t"])
            return float(-2.0 / n * sums[("rothman", p["t"])] + t * (1 - t))
        t = p.get("t", 1.0 / 3.0)
        mean, _ = S.projected_kernel_mean(test, t=t)
        g0 = float(S.projected_kernel(np.zeros(1), test, q=q, t=t)[0])
        return float(2.0 / n * sums[("proj", test, t)] + g0 - n * mean)

    def null(n, q, p, method):
        if q == 2:
            circ = {"pcvm": "pcvm", "pad": "pad", "prt": "rothman"}[test]
            return _circular_sobolev_null(circ, "t" if test == "prt" else None)(n, q, p, method)
        return S.projected_null(test, q=q, t=p.get("t", 1.0 / 3.0), method=method)

    prefixes = ("rothman",) if test == "prt" else ()
    return TestSpec(name, "any", defaults, pairs, finish, null, description, check, prefixes=prefixes)


register(_projected_spec("PCvM", "pcvm", {}, lambda p, q: p, "projected Cramer-von Mises"))
register(_projected_spec("PAD", "pad", {}, lambda p, q: p, "projected Anderson-Darling"))
register(_projected_spec("PRt", "prt", {"t": 1.0 / 3.0}, _check_t, "projected Rothman"))

# ------------------------------------------------------------------------------------------ other spherical tests

register(
    TestSpec(
        "Rayleigh_HD",
        "any",
        {},
        _no_pairs,
        lambda s, sums, p: float((s.n * s.q * float(s.mean @ s.mean) - s.q) / math.sqrt(2.0 * s.q)),
        lambda n, q, p, m: stats.chi2(q, loc=-q / math.sqrt(2.0 * q), scale=1.0 / math.sqrt(2.0 * q)),
        "(Rayleigh - q)/sqrt(2 q); the standardised chi^2_q (sphunif: its q -> infinity limit N(0, 1))",
        circular_battery=False,
    )
)


def _check_cj12(params, q):
    regime = S.check_regime(params["regime"])
    beta = check_real(params["beta"], "beta", nonnegative=True)
    return {"regime": regime, "beta": beta}


def _cj12_law(n, q, p, m):
    beta = p["beta"]
    fact = S.cj12_constant(p["regime"], beta)
    # F(x) = 1 - exp(-fact e^{(x + 8 beta)/2}): Gumbel for minima in x/2. Small values reject (the statistic falls
    # as the largest coherence grows), so the p-value is the lower tail F(x); sphunif reports 1 - F (_calibrated)
    from ._calibrated import LowerTail

    return LowerTail(stats.gumbel_l(loc=-2.0 * math.log(fact) - 8.0 * beta, scale=2.0))


def _cj12_finish(s, sums, p):
    n, q = s.n, s.q
    m = sums[("maxabs",)]
    with np.errstate(divide="ignore"):
        c = float(np.log1p(-m * m))
    if p["regime"] == 3:
        return math.inf if q == 2 else q * c + 4.0 * q / (q - 2.0) * math.log(n) - math.log(q)
    return q * c + 4.0 * math.log(n) - math.log(math.log(n))


register(
    TestSpec(
        "CJ12",
        "sphere",
        {"regime": 3, "beta": 0.0},
        lambda q, p: [PairTerm(("maxabs",), lambda b: np.abs(b.t), "max")],
        _cj12_finish,
        _cj12_law,
        "Cai & Jiang (2012): q log(1 - max_{i<j} (X_i^T X_j)^2) + centring; small values reject; exact union bound",
        _check_cj12,
    )
)


def _pycke_pairs(q, p):
    if q == 2:
        return [_sum(("log2sin2",), lambda b: -2.0 * np.log(4.0 * np.sin(0.5 * b.psi) ** 2))]
    return [_sum(("log1m",), lambda b: np.log(b.one_minus_t))]


def _pycke_finish(s, sums, p):
    n, q = s.n, s.q
    if q == 2:
        return float(sums[("log2sin2",)] / (n - 1.0))
    total = sums[("log1m",)]
    if q == 3:
        return float(
            -total / (2.0 * math.pi * (n - 1.0))
            - (math.log(2.0) / (4 * math.pi) + (1 - math.log(4.0)) / (4 * math.pi)) * n
        )
    return float(-total / n - 0.5 * math.log(2.0) * (n - 1.0) + n * S.riesz0_tau(q))


register(
    TestSpec(
        "Pycke",
        "any",
        {},
        _pycke_pairs,
        _pycke_finish,
        lambda n, q, p, m: stats.gumbel_r(loc=-2.0 * np.euler_gamma, scale=2.0) if q == 2 else None,
        "Pycke's log-kernel statistic (q = 2, 3; Riesz s = 0 for q > 3, as sphunif); Gumbel at q = 2",
    )
)


def _check_ccf09(params, q):
    dirs = params["directions"]
    n_proj = check_integer(params["n_proj"], "n_proj", minimum=1)
    if dirs is not None:
        d = np.asarray(dirs, dtype=np.float64)
        if d.ndim == 1:
            d = d[None, :]
        if d.ndim != 2 or (q is not None and d.shape[1] != q):
            raise ValueError(f"directions must be an array (k, q) of projection directions with q = {q}")
        norms = np.linalg.norm(d, axis=1)
        if np.any(norms == 0) or not np.all(np.isfinite(d)):
            raise ValueError("directions must be finite non-zero vectors")
        dirs = d / norms[:, None]
    return {"directions": dirs, "n_proj": n_proj, "rng": params["rng"]}


def draw_random_directions(spec: TestSpec, params: dict, q: int) -> dict:
    """CCF09 without fixed directions: ``n_proj`` uniform directions drawn from its ``rng``."""
    if spec.name != "CCF09" or params["directions"] is not None:
        return params
    g = check_rng(params["rng"]).standard_normal((params["n_proj"], q))
    return {**params, "directions": g / np.linalg.norm(g, axis=1, keepdims=True)}


register(
    TestSpec(
        "CCF09",
        "any",
        {"directions": None, "n_proj": 50, "rng": None},
        _no_pairs,
        lambda s, sums, p: S.ccf09(s.Z, p["directions"]),
        None,
        "Cuesta-Albertos et al. (2009): largest KS statistic over random projections; Monte Carlo",
        _check_ccf09,
    )
)


def _check_stereo(params, q):
    return {"a": S.check_stereo_a(params["a"])}


register(
    TestSpec(
        "Stereo",
        "sphere",
        {"a": 0.0},
        lambda q, p: [_sum(("stereo", p["a"]), lambda b, a=p["a"], q=q: S.stereo_pair_kernel(b.t, a, q))],
        lambda s, sums, p: float(2.0 / s.n * sums[("stereo", p["a"])]),
        lambda n, q, p, m: S.stereo_null(q=q, a=p["a"], method=m) if q > 3 else None,
        "stereographic projection test: (2/n) sum_{i<j} (cot + a tan)(theta_ij/2) - (1 + a) E; Monte Carlo at q = 3",
        _check_stereo,
    )
)

# ------------------------------------------------------------------------------------------ circular tests


def _circ(name, fn, null, description, defaults=None, check=None, key=None):
    defaults = defaults or {}
    return register(
        TestSpec(
            name,
            "circle",
            defaults,
            _no_pairs,
            lambda s, sums, p: float(fn(s.angles, **p)),
            null,
            description,
            check or (lambda p, q: p),
        )
    )


def _check_cov_a(params, q):
    return {"a": check_real(params["a"], "a", positive=True)}


def _check_cressie(params, q):
    return _check_t(params, q)


_circ("Kuiper", C.kuiper, lambda n, q, p, m: C.KUIPER(n), "Kuiper's V_n; law to first order in 1/sqrt(n)")
_circ("Watson", C.watson, lambda n, q, p, m: C.WATSON_U2(), "Watson's U^2; exact limit law")
_circ("Watson_1976", C.watson_1976, lambda n, q, p, m: C.WATSON_1976(), "Watson's (1976) M_n; limit law")
_circ(
    "Hodges_Ajne",
    C.hodges_ajne,
    lambda n, q, p, m: C.HODGES_AJNE(n),
    "largest count in a half-circle; exact law (p-value P(H >= h), sphunif: P(H > h))",
)
_circ(
    "Cressie",
    lambda th, t: C.cressie(th, t),
    None,
    "largest count in an arc of length 2 pi t; Monte Carlo",
    {"t": 1.0 / 3.0},
    _check_cressie,
)
_circ("FG01", C.feltz_goldin, None, "Feltz & Goldin's 4-point Cramer-von Mises; Monte Carlo")
_circ("Range", C.range_statistic, lambda n, q, p, m: C.RANGE(n), "largest gap; exact law")
_circ("Rao", C.rao, lambda n, q, p, m: stats.norm(scale=C.RAO_SD), "Rao's spacing test; normal law")
_circ("Greenwood", C.greenwood, lambda n, q, p, m: stats.norm(scale=2.0), "Greenwood's statistic; normal law")
_circ(
    "Log_gaps",
    C.log_gaps,
    lambda n, q, p, m: stats.halfnorm(scale=C.LOG_GAPS_SD),
    "Darling's log-gaps; half-normal law",
)
_circ(
    "Vacancy",
    lambda th, a: C.vacancy(th, a),
    lambda n, q, p, m: stats.norm(),
    "vacancy of the arcs of length a/n; normal law",
    {"a": C.TWO_PI},
    _check_cov_a,
)
_circ(
    "Max_uncover",
    lambda th, a: C.max_uncover(th, a),
    lambda n, q, p, m: stats.gumbel_r(),
    "maximum uncovered spacing; Gumbel law",
    {"a": C.TWO_PI},
    _check_cov_a,
)


def _num_uncover_law(n, q, p, m):
    """Normal law of the standardised count, with the continuity correction of P(L >= l) (a discrete count)."""
    from ._calibrated import ContinuityCorrected

    a1 = p["a"] / C.TWO_PI
    e = math.exp(-a1)
    return ContinuityCorrected(stats.norm(), 0.5 / math.sqrt(n * e * (1.0 - e * (1.0 + a1 * a1))))


_circ(
    "Num_uncover",
    lambda th, a: C.num_uncover(th, a),
    _num_uncover_law,
    "number of uncovered spacings; normal law with continuity correction (p-value P(L >= l))",
    {"a": C.TWO_PI},
    _check_cov_a,
)
_circ("Gini", C.gini, lambda n, q, p, m: stats.norm(scale=3**-0.5), "Gini mean difference of the gaps; normal")
_circ("Gini_squared", C.gini_squared, lambda n, q, p, m: stats.norm(scale=4.0), "Gini squared; normal law")


def _circ_pair(name, key, fn, finish, null, description, defaults=None, check=None):
    register(
        TestSpec(
            name,
            "circle",
            defaults or {},
            lambda q, p: [_sum(key(p), lambda b, p=p: fn(b, p))],
            lambda s, sums, p: float(finish(s.n, sums[key(p)], p)),
            null,
            description,
            check or (lambda p, q: p),
        )
    )


_circ_pair(
    "Hermans_Rasson",
    lambda p: ("hr",),
    lambda b, p: b.psi + C.HR_BETA2 * np.sin(b.psi),
    lambda n, total, p: -2.0 / n * total + n * C.HR_CONST,
    _circular_sobolev_null("hermans_rasson"),
    "Hermans & Rasson; Sobolev weights",
)


def _check_pycke_q_param(params, q):
    return {"pycke_q": C.check_pycke_q(params["pycke_q"])}


_circ_pair(
    "Pycke_q",
    lambda p: ("pycke_q", p["pycke_q"]),
    lambda b, p: (b.t - p["pycke_q"]) / (1.0 - 2.0 * p["pycke_q"] * b.t + p["pycke_q"] ** 2),
    lambda n, total, p: 4.0 / n * total + 2.0 / (1.0 - p["pycke_q"]),
    _circular_sobolev_null("pycke_q", "pycke_q"),
    "Pycke's q-test (parameter pycke_q, sphunif's Pycke_q); Sobolev weights pycke_q^(k-1)",
    {"pycke_q": 0.5},
    _check_pycke_q_param,
)
register(
    TestSpec(
        "Rothman",
        "circle",
        {"t": 1.0 / 3.0},
        lambda q, p: [_rothman_term(p["t"])],
        lambda s, sums, p: float(
            -2.0 / s.n * sums[("rothman", p["t"])] + min(p["t"], 1 - p["t"]) * (1 - min(p["t"], 1 - p["t"]))
        ),
        _circular_sobolev_null("rothman", "t"),
        "Rothman's test (= PRt on the circle); Sobolev weights",
        _check_t,
    )
)


# =================================================================================================================
# the one-pass computation


def resolve_params(spec: TestSpec, params: Mapping[str, Any], q: int, *, strict: bool) -> dict:
    """The test's parameters: ``<Name>_<param>`` (sphunif's style, any case) before ``<param>``."""
    out = dict(spec.defaults)
    lower = {k.lower(): v for k, v in params.items()}
    for key in spec.defaults:
        for prefix in (spec.name, *spec.prefixes):
            prefixed = f"{prefix.lower()}_{key.lower()}"
            if prefixed in lower:
                out[key] = lower[prefixed]
                break
        else:
            if key.lower() in lower:
                out[key] = lower[key.lower()]
    if strict:
        unknown = sorted(k for k in params if k.lower() not in {d.lower() for d in spec.defaults})
        if unknown:
            takes = f"takes only {', '.join(spec.defaults)}" if spec.defaults else "takes no parameters"
            raise TypeError(f"unexpected parameter(s) {', '.join(unknown)} for test {spec.name!r}; it {takes}")
    return spec.check(out, q)


def battery_statistics(
    sample: Sample, requests: Sequence[tuple[TestSpec, dict]], *, block_rows: int = BLOCK_ROWS
) -> list[float]:
    """Statistics of several tests on one sample with one pass over the pairs (shared pairwise quantities)."""
    terms: dict[tuple, PairTerm] = {}
    for spec, params in requests:
        for term in spec.pairs(sample.q, params):
            terms.setdefault(term.key, term)
    sums: dict[tuple, float] = {}
    if terms:
        partial: dict[tuple, list[float]] = {key: [] for key in terms}
        for block in sample.pair_blocks(block_rows):
            if block.t.size == 0:
                continue
            for key, term in terms.items():
                values = term.fn(block)
                # numpy's pairwise summation within a block (error ~ eps log(size)), fsum across blocks
                partial[key].append(float(np.max(values)) if term.reduce == "max" else float(np.sum(values)))
        for key, term in terms.items():
            vals = partial[key]
            sums[key] = (max(vals) if vals else 0.0) if term.reduce == "max" else math.fsum(vals)
    return [float(spec.finish(sample, sums, params)) for spec, params in requests]
