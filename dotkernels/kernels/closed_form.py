r"""Kernel families whose Gegenbauer spectrum has a closed form (Bessel, hypergeometric, binomial, Gamma ratios).

Every spectrum is computed host-side in float64 and in log space, so that :math:`a_l = N(q, l) \lambda_l` keeps
its relative accuracy where :math:`N(q, l)` is astronomically large (q up to 65536 and beyond).

Accuracy
--------
:math:`\ln|a_l|` is a sum of logarithms (:math:`\ln N(q, l)`, log-gamma differences, :math:`l \ln\gamma`, the
logarithm of a positive series, ...), each rounded to a few ulps of its own size. The relative error of
:math:`a_l` (to first order the absolute error of :math:`\ln|a_l|` that ``log_spectrum`` returns) is therefore at most
:math:`\max(10^{-12}, 2\epsilon M_l)`, where :math:`M_l` is the sum of the absolute values of the logarithms
combined (including the internal terms of the Bessel functions' Debye expansion and of the series); since
:math:`M_l \ge |\ln a_l|`, the bound is never below an ulp of :math:`\ln|a_l|` (9.1e-13 for
:math:`|\ln a_l| \in [4096, 8192)`). 1e-12 holds while :math:`M_l \le 2250`: at low degree and moderate
parameters; beyond, :math:`M_l` grows like :math:`l \ln(l + q)` and with the parameter. ``spectrum_error`` returns
the bound times :math:`|a_l|` per degree; ``tests/test_kernels_accuracy.py`` holds it against 50-digit mpmath
references at every degree up to the underflow of :math:`a_l`, on dense grids of q and of the parameters up to the
edges of each family's domain (worst corners: the Gaussian kernel at q = 1000, gamma = 300; the exponential kernel
at q = 1000, kappa = 500; :math:`t^{2000}` at q = 1000).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import bernoulli, gammaln, ive, logsumexp, roots_legendre

from .._validate import check_integer, check_real
from ..gegenbauer import log_harmonic_dimension
from ..special import log_gamma_ratio, log_iv, log_ive_hankel, log_rising
from ._base import DotProductKernel, Hyperparameter, clip_through

__all__ = [
    "ArcCosineKernel",
    "DistanceKernel",
    "ExponentialKernel",
    "GaussianKernel",
    "GeneratingFunctionKernel",
    "GineKernel",
    "InverseMultiquadricKernel",
    "MonomialKernel",
    "PoissonKernel",
    "PolynomialKernel",
]

# below this order scipy's ive is used directly (it is scaled by exp(-x): no cancellation); above, log_iv's
# uniform asymptotic expansion
_IVE_MAX_ORDER = 150.0

_LOG_FLOAT_MAX = math.log(np.finfo(np.float64).max)


def log_gaussian_lambda(
    gamma: np.ndarray, q: int, degrees: np.ndarray, *, scaled: bool = True, with_magnitude: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    r"""``log lambda_l`` of :math:`e^{-2\gamma(1-t)}` in dimension q, broadcast over ``gamma`` (> 0) and ``degrees``.

    With ``scaled=False``, of :math:`e^{2\gamma t}` instead (the same without the factor :math:`e^{-2\gamma}`).

    .. math::

        \lambda_l = \frac{\gamma^l}{(q/2)_l}\, e^{-2\gamma}\, {}_0F_1(; l + q/2; \gamma^2)
        = \Gamma(q/2)\, \gamma^{-(q/2-1)}\, \mathrm{ive}(l + q/2 - 1, 2\gamma).

    The hypergeometric series (positive terms) is summed where :math:`\gamma^2 \le 50 (l + q/2) + 1000`, free of
    the cancellation between :math:`\ln\Gamma(q/2)` and :math:`\ln I_\nu` at large q; beyond, ``ive`` (orders
    below 150: scaled, no cancellation) or :func:`~dotkernels.special.log_iv`. With ``with_magnitude``, also the
    sum of the absolute values of the logarithms combined (the scale of the result's rounding error).
    """
    gamma, degrees = np.broadcast_arrays(np.asarray(gamma, dtype=np.float64), np.asarray(degrees, dtype=np.float64))
    b = degrees + 0.5 * q
    with np.errstate(over="ignore"):  # gamma > 1e154: z = inf takes the Bessel route, as it should
        z = gamma * gamma
    out = np.empty(b.shape, dtype=np.float64)
    magnitude = np.empty(b.shape, dtype=np.float64)
    series = z <= 50.0 * b + 1000.0
    if np.any(series):
        bs, zs = b[series], z[series]
        term = np.ones_like(bs)
        total = np.ones_like(bs)
        k = 0
        while True:
            term = term * zs / ((bs + k) * (k + 1))
            total = total + term
            k += 1
            if np.all((term <= 1e-17 * total) | (zs < 1e-300)) and np.all(zs < (bs + k) * (k + 1)):
                break
        ls, gs = degrees[series], gamma[series]
        parts = (ls * np.log(gs), log_rising(0.5 * q, ls), np.log(total), (2.0 * gs if scaled else 0.0 * gs))
        out[series] = parts[0] - parts[1] + parts[2] - parts[3]
        # each term of the series carries ~3 roundings per step of its recurrence: k steps, counted as k units
        magnitude[series] = sum(np.abs(x) for x in parts) + k
    bessel = ~series
    if np.any(bessel):
        with np.errstate(over="ignore"):
            nu, x = b[bessel] - 1.0, 2.0 * gamma[bessel]
        vals = np.full(nu.shape, np.nan)
        small = nu < _IVE_MAX_ORDER
        with np.errstate(divide="ignore", under="ignore"):
            vals[small] = np.log(ive(nu[small], x[small]))
        # scipy's ive returns NaN beyond x ~ 1e9; there x >> nu^2 and Hankel's expansion converges at once
        huge = np.isnan(vals) & (x > 1e3 * (nu + 1.0) ** 2)
        vals[huge] = log_ive_hankel(nu[huge], x[huge])
        # 2 gamma beyond float64 (gamma > 9e307): Hankel's leading term, the others are below 1e-290 relative
        vals[np.isinf(x)] = -0.5 * (math.log(4.0 * math.pi) + np.log(gamma[bessel][np.isinf(x)]))
        bad = ~np.isfinite(vals) | (vals < -600.0)
        vals[bad] = log_iv(nu[bad], x[bad]) - x[bad]
        if not scaled:
            vals = vals + x
        power = (0.5 * q - 1.0) * np.log(gamma[bessel])
        out[bessel] = math.lgamma(0.5 * q) - power + vals
        # the Bessel function's own rounding: 100 units for scipy's ive; the Debye expansion of log_iv sums
        # nu (sqrt(1 + z^2) + ln z - ln(1 + sqrt(1 + z^2))), z = x / nu, whose terms are larger than their sum
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            z_nu = x / np.maximum(nu, 1.0)
            root = np.hypot(1.0, z_nu)
            debye = np.where(bad & (nu >= 150.0), nu * (root + np.abs(np.log(z_nu)) + np.log1p(root)) + x, 0.0)
        magnitude[bessel] = (
            abs(math.lgamma(0.5 * q)) + np.abs(power) + np.abs(vals) + (x if not scaled else 0.0) + 100 + debye
        )
    return (out, magnitude) if with_magnitude else out


def log_monomial_lambda(j: np.ndarray, degrees: np.ndarray, q: int) -> np.ndarray:
    r"""``log lambda_l`` of :math:`t^j` (:math:`E_{\nu_q}[t^j P_{l,q}]`), broadcast; ``-inf`` unless l <= j, j - l even.

    :math:`\lambda_l(t^j) = j!\, \Gamma(q/2) / (2^j ((j-l)/2)!\, \Gamma((j+l+q)/2))`.
    """
    j, ll = np.broadcast_arrays(np.asarray(j, dtype=np.float64), np.asarray(degrees, dtype=np.float64))
    out = np.full(j.shape, -np.inf)
    ok = (ll <= j) & (np.mod(j - ll, 2) == 0)
    jj, lo = j[ok], ll[ok]
    out[ok] = gammaln(jj + 1) - jj * math.log(2.0) - gammaln((jj - lo) / 2 + 1) - log_rising(q / 2, (jj + lo) / 2)
    return out


def log_monomial_magnitude(j: np.ndarray, degrees: np.ndarray, q: int) -> np.ndarray:
    """Sum of the absolute values of the logarithms combined in :func:`log_monomial_lambda` (0 where it is -inf)."""
    j, ll = np.broadcast_arrays(np.asarray(j, dtype=np.float64), np.asarray(degrees, dtype=np.float64))
    half = np.maximum(j - ll, 0.0) / 2
    return (
        gammaln(j + 1) + j * math.log(2.0) + gammaln(half + 1) + np.abs(log_rising(q / 2, np.maximum(j + ll, 0.0) / 2))
    )


_BERNOULLI = bernoulli(14)


def _log_gamma_shift(z: np.ndarray, a: float) -> np.ndarray:
    r""":math:`\ln\Gamma(z + a) - \ln\Gamma(z)` for exactly representable z > 0 and a shift a > -z given apart.

    Forming z + a first rounds it, an error of ulp(z) times :math:`\psi(z)` (3e-13 at z = 512, 8e-11 at z = 32768);
    for z >= 30 and |a| <= z / 8 the expansion :math:`a \ln z + \sum_{k \ge 2} (-1)^k (B_k(a) - B_k) /
    (k (k-1) z^{k-1})` (DLMF 5.11.8) avoids it (13 terms: below 1e-17 relative); elsewhere the plain difference.
    """
    z = np.asarray(z, dtype=np.float64)
    out = np.asarray(log_gamma_ratio(z + a, z), dtype=np.float64).copy()
    big = (z >= 30.0) & (abs(a) <= z / 8.0)
    if np.any(big):
        zb = z[big]
        total = a * np.log(zb)
        for k in range(2, 15):
            bk = sum(math.comb(k, j) * _BERNOULLI[j] * a ** (k - j) for j in range(k))  # B_k(a) - B_k(0)
            total = total + (-1) ** k * bk / (k * (k - 1) * zb ** (k - 1))
        out[big] = total
    return out


#: rounding of a coefficient formed in log space: its relative error is at most this many eps per unit of the
#: magnitude M_l of the logarithms summed (``_log_magnitude``), held against mpmath on dense grids
ROUNDING_EPS_PER_UNIT = 2.0
_EPS = float(np.finfo(np.float64).eps)


class _LogSpaceKernel(DotProductKernel):
    r"""A family whose :math:`\ln|a_l|` is a sum of logarithms: its error bound is proportional to their size."""

    def _log_magnitude(self, q: int, degree: int) -> np.ndarray:
        """M_l: the sum of the absolute values of the logarithms that form ln|a_l|, ln N(q, l) included."""
        raise NotImplementedError

    def _spectrum_error(self, q, degree):
        relative = np.maximum(self.spectrum_rtol, ROUNDING_EPS_PER_UNIT * _EPS * self._log_magnitude(q, degree))
        return relative * np.abs(self.spectrum(degree, q=q))


def _distance_power(t, xp, a: float):
    """:math:`(2 - 2t)^a` for autograd: the one-sided derivative at t = +-1 (a clip that keeps the gradient), and at
    t = 1 the gradient -2 (a = 1), 0 (a > 1, where the derivative is 0) or 0 (a < 1, where it is infinite: the
    finite part), never inf or NaN."""
    x = clip_through(2.0 - 2.0 * t, xp, 0.0)
    if a == 1.0:
        return x
    positive = x > 0.0
    return xp.where(positive, xp.where(positive, x, xp.ones_like(x)) ** a, xp.zeros_like(x))


def _exp_or_inf(log_value: float) -> float:
    """exp(log_value), +inf beyond float64's range (the public phi_at_one warns and points to log_phi_at_one)."""
    return math.exp(log_value) if log_value < _LOG_FLOAT_MAX else math.inf


def _check_rho(rho: float) -> float:
    return check_real(rho, "rho", nonnegative=True, below=1.0)


def _positive_sign(log_a: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(log_a), 1.0, 0.0)


class ExponentialKernel(_LogSpaceKernel):
    r"""Exponential kernel :math:`\varphi(t) = e^{\kappa t}`, kappa > 0 (the von Mises–Fisher kernel).

    Spectrum: :math:`a_l = N(q,l)\, \Gamma(q/2) (2/\kappa)^{q/2-1} I_{l+q/2-1}(\kappa)` (q = 2: :math:`2 I_l`);
    :math:`a_l \to \kappa^l / l!` as q grows. Strictly positive definite on every sphere.

    Parameters
    ----------
    kappa : float
        Concentration :math:`\kappa > 0` (a float, or a torch/jax scalar for a learnable value).

    See Also
    --------
    GaussianKernel : the same spectrum times :math:`e^{-\kappa}` (gamma = kappa / 2).
    vmf_mean_embedding : the kernel's mean embedding under a von Mises-Fisher law.

    Accuracy
    --------
    Relative error of each :math:`a_l` that is a normal float64 (and absolute error of :math:`\ln|a_l|`) at most
    :math:`\max(10^{-12}, 2\epsilon M_l)`, :math:`M_l` the size of the logarithms combined (module docstring);
    :meth:`~DotProductKernel.spectrum_error` returns this bound per degree, held against mpmath on dense grids.
    1e-12 at low degree; 9.5e-12 at q = 1000, kappa = 500 (l ~ 1400); the bound grows with l and kappa.

    References
    ----------
    .. [1] I. J. Schoenberg, "Positive definite functions on spheres", Duke Mathematical Journal 9(1), 96-108
       (1942).
    .. [2] A. J. Smola, Z. L. Ovari and R. C. Williamson, "Regularization with dot-product kernels", Advances in
       Neural Information Processing Systems 13 (2001).

    Examples
    --------
    >>> ExponentialKernel(kappa=1.0).spectrum(2, q=3).round(6).tolist()
    [1.175201, 1.103638, 0.357814]
    """

    name = "exponential"
    kappa = Hyperparameter(positive=True)

    def __init__(self, kappa: float = 1.0):
        self.kappa = kappa  # a float, or a torch/jax scalar (learnable): see Hyperparameter

    def _params(self):
        return (self.kappa,)

    def _named_params(self):
        return [("kappa", self.kappa)]

    def _profile(self, t, xp, q):
        return xp.exp(self._hyper("kappa", t, xp) * t)

    def _derivative(self, t, xp, q):
        kappa = self._hyper("kappa", t, xp)
        return kappa * xp.exp(kappa * t)

    def _phi_at_one(self, q):
        return _exp_or_inf(self.kappa)

    def _log_phi_at_one(self, q):
        return self.kappa

    def _log_spectrum(self, q, degree):
        degrees = np.arange(degree + 1)
        log_lam = log_gaussian_lambda(0.5 * self.kappa, q, degrees, scaled=False)
        return log_harmonic_dimension(degrees, q=q) + log_lam, np.ones(degree + 1)

    def _log_magnitude(self, q, degree):
        degrees = np.arange(degree + 1)
        _, magnitude = log_gaussian_lambda(0.5 * self.kappa, q, degrees, scaled=False, with_magnitude=True)
        return log_harmonic_dimension(degrees, q=q) + magnitude

    def _positive_semidefinite(self, q):
        return True

    def _strictly_positive_definite(self, q):
        return True


class GaussianKernel(_LogSpaceKernel):
    r"""Gaussian kernel :math:`\exp(-\gamma \|x - y\|^2) = \varphi(t) = e^{-2\gamma(1 - t)}`, gamma > 0.

    :math:`a_l = N(q,l)\, \Gamma(q/2)\, \gamma^{-(q/2-1)}\, \mathrm{ive}(l+q/2-1, 2\gamma)`; uniform mean embedding
    :math:`a_0 = e^{-2\gamma}\, {}_0F_1(; q/2; \gamma^2)`. With gamma = Wang & Isola's t, the uniformity loss is
    :math:`\log(a_0 + \mathrm{MMD}^2)`. Strictly positive definite on every sphere.

    Parameters
    ----------
    gamma : float
        Scale :math:`\gamma > 0` of :math:`\exp(-\gamma\|x - y\|^2)` (a float, or a torch/jax scalar).

    See Also
    --------
    ExponentialKernel : :math:`e^{\kappa t}`, the same spectrum up to the factor :math:`e^{-2\gamma}`.
    HeatKernel : the heat kernel of the sphere, another smooth strictly positive definite kernel.

    Accuracy
    --------
    Relative error of each :math:`a_l` that is a normal float64 (and absolute error of :math:`\ln|a_l|`) at most
    :math:`\max(10^{-12}, 2\epsilon M_l)`, :math:`M_l` the size of the logarithms combined (module docstring);
    :meth:`~DotProductKernel.spectrum_error` returns this bound per degree, held against mpmath on dense grids.
    1e-12 at low degree (every degree for gamma <= 10 and q <= 64); 1.8e-12 at q = 64, gamma = 30; 8.6e-12 at
    q = 1000, gamma = 300 (l ~ 1300): the bound grows with l and gamma. Any gamma > 0 up to 1.8e308 (the
    coefficients underflow correctly).

    References
    ----------
    .. [1] I. J. Schoenberg, "Positive definite functions on spheres", Duke Mathematical Journal 9(1), 96-108
       (1942).
    .. [2] T. Wang and P. Isola, "Understanding contrastive representation learning through alignment and
       uniformity on the hypersphere", Proceedings of ICML (2020).

    Examples
    --------
    >>> round(GaussianKernel(gamma=1.0).uniform_mean_embedding(q=3), 12)  # (1 - e^-4) / 4 on S^2
    0.245421090278
    """

    name = "gaussian"
    gamma = Hyperparameter(positive=True)

    def __init__(self, gamma: float = 1.0):
        self.gamma = gamma  # a float, or a torch/jax scalar (learnable): see Hyperparameter

    def _params(self):
        return (self.gamma,)

    def _named_params(self):
        return [("gamma", self.gamma)]

    def _profile(self, t, xp, q):
        return xp.exp(-2.0 * self._hyper("gamma", t, xp) * (1.0 - t))

    def _derivative(self, t, xp, q):
        gamma = self._hyper("gamma", t, xp)
        return 2.0 * gamma * xp.exp(-2.0 * gamma * (1.0 - t))

    def _phi_at_one(self, q):
        return 1.0

    def _log_spectrum(self, q, degree):
        degrees = np.arange(degree + 1)
        log_a = log_harmonic_dimension(degrees, q=q) + log_gaussian_lambda(self.gamma, q, degrees)
        return log_a, np.ones(degree + 1)

    def _log_magnitude(self, q, degree):
        degrees = np.arange(degree + 1)
        _, magnitude = log_gaussian_lambda(self.gamma, q, degrees, with_magnitude=True)
        return log_harmonic_dimension(degrees, q=q) + magnitude

    def _positive_semidefinite(self, q):
        return True

    def _strictly_positive_definite(self, q):
        return True


class MonomialKernel(_LogSpaceKernel):
    r"""Monomial kernel :math:`\varphi(t) = t^p`, p a non-negative integer.

    :math:`\lambda_l = p!\,\Gamma(q/2) / (2^p ((p-l)/2)!\,\Gamma((p+l+q)/2))` for l <= p with p - l even, else 0;
    :math:`a_l = N(q,l) \lambda_l`. Positive semi-definite on every sphere (a polynomial: never strictly).
    :math:`(u^T v)^2` is the repulsive term of the spectral contrastive loss.

    Parameters
    ----------
    p : int
        The power, a non-negative integer.

    See Also
    --------
    PolynomialKernel : :math:`(c + t)^p`, a positive combination of monomials.

    Accuracy
    --------
    Relative error of each :math:`a_l` that is a normal float64 (and absolute error of :math:`\ln|a_l|`) at most
    :math:`\max(10^{-12}, 2\epsilon M_l)`, :math:`M_l` the size of the logarithms combined (module docstring);
    :meth:`~DotProductKernel.spectrum_error` returns this bound per degree, held against mpmath on dense grids.
    1e-12 up to p = 100 at every q; the bound grows like :math:`p \ln p` (3e-12 for p = 300 at q = 65536, 1.4e-11
    for p = 2000 at q = 1000).

    References
    ----------
    .. [1] A. J. Smola, Z. L. Ovari and R. C. Williamson, "Regularization with dot-product kernels", Advances in
       Neural Information Processing Systems 13 (2001).

    Examples
    --------
    >>> MonomialKernel(p=2).spectrum(2, q=3).round(12).tolist()
    [0.333333333333, 0.0, 0.666666666667]
    """

    name = "monomial"

    def __init__(self, p: int = 2):
        self.p = check_integer(p, "p", minimum=0, requirement="a non-negative integer")
        self.degree = self.p

    def _params(self):
        return (self.p,)

    def _named_params(self):
        return [("p", self.p)]

    def _profile(self, t, xp, q):
        return t**self.p if self.p else xp.ones_like(t)

    def _derivative(self, t, xp, q):
        return self.p * t ** (self.p - 1) if self.p > 1 else xp.full_like(t, float(self.p))

    def _phi_at_one(self, q):
        return 1.0

    def _log_spectrum(self, q, degree):
        degrees = np.arange(degree + 1)
        log_a = log_harmonic_dimension(degrees, q=q) + log_monomial_lambda(self.p, degrees, q)
        return log_a, _positive_sign(log_a)

    def _log_magnitude(self, q, degree):
        degrees = np.arange(degree + 1)
        return log_harmonic_dimension(degrees, q=q) + log_monomial_magnitude(self.p, degrees, q)

    def _positive_semidefinite(self, q):
        return True


class PolynomialKernel(_LogSpaceKernel):
    r"""Polynomial kernel :math:`\varphi(t) = (c + t)^p`, c >= 0, p a non-negative integer.

    :math:`\lambda_l = \sum_j \binom{p}{j} c^{p-j} \lambda_l(t^j)`, a sum of non-negative terms done in log space.
    Positive semi-definite on every sphere.

    Parameters
    ----------
    p : int
        The degree, a non-negative integer.
    c : float
        Offset :math:`c \ge 0` (a float, or a torch/jax scalar).

    See Also
    --------
    MonomialKernel : the terms of the expansion.

    Accuracy
    --------
    Relative error of each :math:`a_l` that is a normal float64 (and absolute error of :math:`\ln|a_l|`) at most
    :math:`\max(10^{-12}, 2\epsilon M_l)`, :math:`M_l` the size of the logarithms combined (module docstring);
    :meth:`~DotProductKernel.spectrum_error` returns this bound per degree, held against mpmath on dense grids.
    1e-12 up to p = 100; the bound grows like :math:`p \ln p` (2e-12 at p = 200, 2.6e-12 at p = 300).

    References
    ----------
    .. [1] A. J. Smola, Z. L. Ovari and R. C. Williamson, "Regularization with dot-product kernels", Advances in
       Neural Information Processing Systems 13 (2001).

    Examples
    --------
    >>> PolynomialKernel(p=1, c=2.0).spectrum(1, q=5).round(12).tolist()
    [2.0, 1.0]
    """

    name = "polynomial"
    c = Hyperparameter(nonnegative=True)

    def __init__(self, p: int = 2, c: float = 1.0):
        self.p = check_integer(p, "p", minimum=0, requirement="a non-negative integer")
        self.c = c  # a float, or a torch/jax scalar (learnable): see Hyperparameter
        self.degree = self.p

    def _params(self):
        return (self.p, self.c)

    def _named_params(self):
        return [("p", self.p), ("c", self.c)]

    def _profile(self, t, xp, q):
        return (self._hyper("c", t, xp) + t) ** self.p if self.p else xp.ones_like(t)

    def _derivative(self, t, xp, q):
        if self.p <= 1:
            return xp.full_like(t, float(self.p))
        return self.p * (self._hyper("c", t, xp) + t) ** (self.p - 1)

    def _phi_at_one(self, q):
        return _exp_or_inf(self._log_phi_at_one(q))

    def _log_phi_at_one(self, q):
        return self.p * math.log1p(self.c)

    def _terms(self, q: int, degrees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ln of the terms C(p, j) c^(p-j) lambda_l(t^j) (rows j, columns l) and the sizes of their logarithms."""
        j = np.arange(self.p + 1, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_binom = gammaln(self.p + 1) - gammaln(j + 1) - gammaln(self.p - j + 1)
            log_c = (self.p - j) * np.log(self.c) if self.c > 0 else np.where(j == self.p, 0.0, -np.inf)
            terms = (log_binom + log_c)[:, None] + log_monomial_lambda(j[:, None], degrees[None, :], q)
            sizes = (
                gammaln(self.p + 1)
                + gammaln(j + 1)
                + gammaln(self.p - j + 1)
                + np.where(np.isfinite(log_c), np.abs(log_c), 0)
            )[:, None] + log_monomial_magnitude(j[:, None], degrees[None, :], q)
        return terms, sizes

    def _log_spectrum(self, q, degree):
        degrees = np.arange(degree + 1)
        terms, _ = self._terms(q, degrees)
        log_a = log_harmonic_dimension(degrees, q=q) + logsumexp(terms, axis=0)
        return log_a, _positive_sign(log_a)

    def _log_magnitude(self, q, degree):
        degrees = np.arange(degree + 1)
        terms, sizes = self._terms(q, degrees)
        total = logsumexp(terms, axis=0)
        with np.errstate(invalid="ignore"):
            weights = np.where(np.isfinite(total), np.exp(terms - np.where(np.isfinite(total), total, 0.0)), 0.0)
        # first-order rounding of a log-sum-exp: the weighted mean size of its terms, plus the sum's own rounding
        return log_harmonic_dimension(degrees, q=q) + np.sum(weights * sizes, axis=0) + np.log1p(self.p)

    def _positive_semidefinite(self, q):
        return True


class PoissonKernel(_LogSpaceKernel):
    r"""Poisson kernel :math:`\varphi(t) = (1 - \rho^2) / (1 - 2 \rho t + \rho^2)^{q/2}`, 0 <= rho < 1.

    :math:`\lambda_l = \rho^l`, so :math:`a_l = N(q,l)\, \rho^l` and :math:`a_0 = 1`. Dimension dependent; its value
    at t = 1, :math:`(1+\rho)/(1-\rho)^{q-1}`, grows exponentially with q, so use rho ~ 1/q in high dimension.

    With ``normalized=True`` it is the kernel of the Poisson uniformity test (sphunif's normalisation)
    :math:`\psi_\rho(t) = ((1-\rho)^2/(1 - 2\rho t + \rho^2))^{q/2}`, the classical kernel times
    :math:`(1-\rho)^{q-1}/(1+\rho)`: :math:`\psi_\rho(1) = 1`, :math:`a_l = N(q,l)\, \rho^l (1-\rho)^{q-1}/(1+\rho)`.

    Strictly positive definite for rho > 0 (rho = 0 is a constant).

    Parameters
    ----------
    rho : float
        :math:`0 \le \rho < 1`.
    normalized : bool
        Use the normalisation of the Poisson uniformity test (:math:`\psi_\rho(1) = 1`).

    See Also
    --------
    GeneratingFunctionKernel : the generating function of the Gegenbauer polynomials.
    DotProductKernel.log_phi_at_one : :math:`\ln\varphi(1)` where it overflows (rho = 1/2, q = 8192).

    Accuracy
    --------
    Relative error of each :math:`a_l` that is a normal float64 (and absolute error of :math:`\ln|a_l|`) at most
    :math:`\max(10^{-12}, 2\epsilon M_l)`, :math:`M_l` the size of the logarithms combined (module docstring);
    :meth:`~DotProductKernel.spectrum_error` returns this bound per degree, held against mpmath on dense grids.
    1e-12 wherever :math:`\ln N(q, l) + l|\ln\rho| \le 2250`; 1.5e-12 at q = 1000, rho = 0.5, l = 2000.

    References
    ----------
    .. [1] K. Atkinson and W. Han, "Spherical Harmonics and Approximations on the Unit Sphere: An Introduction",
       Lecture Notes in Mathematics 2044, Springer (2012).

    Examples
    --------
    >>> PoissonKernel(rho=0.5).spectrum(2, q=3).round(12).tolist()
    [1.0, 1.5, 1.25]
    >>> PoissonKernel(rho=0.5, normalized=True).phi_at_one(q=3)
    1.0
    """

    name = "poisson"
    dimension_dependent = True

    def __init__(self, rho: float = 0.5, *, normalized: bool = False):
        self.rho = _check_rho(rho)
        if not isinstance(normalized, (bool, np.bool_)):
            raise TypeError(f"normalized must be a bool, got {normalized!r}")
        self.normalized = bool(normalized)

    def _params(self):
        return (self.rho, self.normalized)

    def _named_params(self):
        return [("rho", self.rho)] + ([("normalized", True)] if self.normalized else [])

    def _log_scale(self, q: int) -> float:
        return (q - 1) * math.log1p(-self.rho) - math.log1p(self.rho) if self.normalized else 0.0

    def _profile(self, t, xp, q):
        r = self.rho
        log_num = 2.0 * math.log1p(-r) if self.normalized else math.log1p(-r * r) * 2.0 / q
        return xp.exp(0.5 * q * (log_num - xp.log(1.0 - 2.0 * r * t + r * r)))

    def _derivative(self, t, xp, q):
        r = self.rho
        return q * r * self._profile(t, xp, q) / (1.0 - 2.0 * r * t + r * r)

    def _phi_at_one(self, q):
        # beyond float64's range (e.g. rho = 1/2 at q = 8192) the value is +inf (phi_at_one warns)
        return 1.0 if self.normalized else _exp_or_inf(self._log_phi_at_one(q))

    def _log_phi_at_one(self, q):
        if self.normalized:
            return 0.0
        return math.log1p(self.rho) - (q - 1) * math.log1p(-self.rho)

    def _uniform_mean_embedding(self, q):
        return math.exp(self._log_scale(q))

    def _log_spectrum(self, q, degree):
        degrees = np.arange(degree + 1)
        with np.errstate(divide="ignore"):
            log_rho = math.log(self.rho) if self.rho > 0 else -np.inf
        log_l = np.concatenate([[0.0], degrees[1:] * log_rho])  # rho^0 = 1 also at rho = 0
        log_a = log_harmonic_dimension(degrees, q=q) + log_l + self._log_scale(q)
        return log_a, _positive_sign(log_a)

    def _log_magnitude(self, q, degree):
        degrees = np.arange(degree + 1)
        log_rho = abs(math.log(self.rho)) if self.rho > 0 else 0.0
        return log_harmonic_dimension(degrees, q=q) + degrees * log_rho + abs(self._log_scale(q)) + 1.0

    def _positive_semidefinite(self, q):
        return True

    def _strictly_positive_definite(self, q):
        return self.rho > 0


class GeneratingFunctionKernel(_LogSpaceKernel):
    r"""Gegenbauer generating function :math:`\varphi(t) = (1 - 2 \rho t + \rho^2)^{-(q-2)/2}`, 0 <= rho < 1.

    The generating function of :math:`C_l^{(q-2)/2}`, so :math:`a_l = \binom{l+q-3}{l} \rho^l`. In terms of the
    distance, :math:`\varphi = \rho^{-(q-2)/2} (c^2 + \|x-y\|^2)^{-(q-2)/2}` with :math:`c^2 = (1-\rho)^2/\rho`: the
    inverse multiquadric kernel with the dimension's own exponent (the constant 1 on the circle, q = 2). Strictly
    positive definite for q >= 3 and rho > 0.

    Parameters
    ----------
    rho : float
        :math:`0 \le \rho < 1`.

    See Also
    --------
    PoissonKernel : the Poisson kernel of the sphere.
    InverseMultiquadricKernel : the same kernel for a general exponent.

    Accuracy
    --------
    Relative error of each :math:`a_l` that is a normal float64 (and absolute error of :math:`\ln|a_l|`) at most
    :math:`\max(10^{-12}, 2\epsilon M_l)`, :math:`M_l` the size of the logarithms combined (module docstring);
    :meth:`~DotProductKernel.spectrum_error` returns this bound per degree, held against mpmath on dense grids.
    1e-12 for q <= 64 (every degree); the bound grows with l at large q (6.7e-12 at q = 1000, rho = 0.5, l = 2000).

    References
    ----------
    .. [1] NIST Digital Library of Mathematical Functions, equation 18.12.4 (generating function of the
       Gegenbauer polynomials), https://dlmf.nist.gov/18.12.
    .. [2] I. J. Schoenberg, "Positive definite functions on spheres", Duke Mathematical Journal 9(1), 96-108
       (1942).

    Examples
    --------
    >>> GeneratingFunctionKernel(rho=0.5).spectrum(2, q=4).round(12).tolist()
    [1.0, 1.0, 0.75]
    """

    name = "generating"
    dimension_dependent = True

    def __init__(self, rho: float = 0.5):
        self.rho = _check_rho(rho)

    def _params(self):
        return (self.rho,)

    def _named_params(self):
        return [("rho", self.rho)]

    def _profile(self, t, xp, q):
        r = self.rho
        return xp.exp(-0.5 * (q - 2) * xp.log(1 - 2 * r * t + r * r))

    def _derivative(self, t, xp, q):
        r = self.rho
        return (q - 2) * r * xp.exp(-0.5 * q * xp.log(1 - 2 * r * t + r * r))

    def _phi_at_one(self, q):
        return _exp_or_inf(self._log_phi_at_one(q))

    def _log_phi_at_one(self, q):
        return -(q - 2) * math.log1p(-self.rho)

    def _uniform_mean_embedding(self, q):
        return 1.0

    def _log_spectrum(self, q, degree):
        degrees = np.arange(degree + 1, dtype=np.float64)
        with np.errstate(divide="ignore"):
            log_rho = math.log(self.rho) if self.rho > 0 else -np.inf
            if q == 2:
                log_binom = np.where(degrees == 0, 0.0, -np.inf)
            else:
                # ln C(l + q - 3, l): the difference of the smaller lgamma pair, so that nothing large cancels
                log_binom = np.where(
                    degrees <= q - 2,
                    log_rising(q - 2, degrees) - gammaln(degrees + 1),
                    log_gamma_ratio(degrees + q - 2, degrees + 1) - math.lgamma(q - 2),
                )
        log_a = log_binom + np.concatenate([[0.0], degrees[1:] * log_rho])
        return log_a, _positive_sign(log_a)

    def _log_magnitude(self, q, degree):
        degrees = np.arange(degree + 1, dtype=np.float64)
        log_rho = abs(math.log(self.rho)) if self.rho > 0 else 0.0
        if q == 2:
            return np.ones(degree + 1)
        binom = np.where(
            degrees <= q - 2,
            np.abs(log_rising(q - 2, degrees)) + gammaln(degrees + 1),
            np.abs(log_gamma_ratio(degrees + q - 2, degrees + 1)) + abs(math.lgamma(q - 2)),
        )
        return binom + degrees * log_rho + 1.0

    def _positive_semidefinite(self, q):
        return True

    def _strictly_positive_definite(self, q):
        return q >= 3 and self.rho > 0


# Gauss–Legendre panels in x = log s for the Gaussian-mixture integral of the inverse multiquadric kernel: the
# integrand is analytic in |Im x| < pi/2, so 24 nodes on panels of width 2 are exact to far below 1e-16
_PANEL_WIDTH = 2.0
_PANEL_NODES, _PANEL_WEIGHTS = roots_legendre(24)
#: largest number of (node, degree) pairs of that quadrature (about ten seconds on one core)
_MIXTURE_WORK_LIMIT = 4e6


class InverseMultiquadricKernel(_LogSpaceKernel):
    r"""Inverse multiquadric kernel :math:`(c^2 + \|x - y\|^2)^{-\beta} = (c^2 + 2 - 2t)^{-\beta}`, c > 0, beta > 0.

    A mixture of Gaussian kernels,

    .. math::

        \varphi(t) = \frac{1}{\Gamma(\beta)} \int_0^\infty s^{\beta-1} e^{-c^2 s} e^{-2 s (1 - t)}\, ds,
        \qquad \lambda_l = \frac{1}{\Gamma(\beta)} \int_0^\infty s^{\beta-1} e^{-c^2 s}
        \lambda_l^{\mathrm{Gauss}}(s)\, ds,

    so every :math:`\lambda_l` is the integral of a positive function. Where the positive hypergeometric series of
    :math:`\lambda_l` (see ``_log_lambda_series``) converges within 3000 terms (large q, or c not small) it is summed;
    otherwise the integral is computed by composite Gauss–Legendre quadrature in :math:`\log s` down to
    :math:`s_0 = 10^{-8}/(2 + c^2)`, below which the integrand's two-term expansion
    :math:`s^{\beta+l-1} (1 - (2 + c^2) s) / (q/2)_l` is integrated exactly. Strictly positive definite on every
    sphere.

    Parameters
    ----------
    c : float
        :math:`c > 0`.
    beta : float
        Exponent :math:`\beta > 0`.

    See Also
    --------
    GaussianKernel : the kernels mixed.
    GeneratingFunctionKernel : the case :math:`\beta = (q-2)/2`.

    Accuracy
    --------
    Relative error of each :math:`a_l` that is a normal float64 (and absolute error of :math:`\ln|a_l|`) at most
    :math:`\max(10^{-12}, 2\epsilon M_l)`, :math:`M_l` the size of the logarithms combined (module docstring);
    :meth:`~DotProductKernel.spectrum_error` returns this bound per degree, held against mpmath on dense grids.
    Held against mpmath's hypergeometric function for q >= 2, 1e-4 <= c <= 1e4, 0 < beta <= 100 up to degree 300
    (2.5e-12 at q = 1024, beta = 100); as c -> 0 below that domain the quadrature's rounding grows like ``2e-16 / c``.

    References
    ----------
    .. [1] I. J. Schoenberg, "Positive definite functions on spheres", Duke Mathematical Journal 9(1), 96-108
       (1942).

    Examples
    --------
    >>> k = InverseMultiquadricKernel(c=0.003, beta=0.5)
    >>> bool(abs(k.uniform_mean_embedding(q=3) - ((0.003**2 + 4) ** 0.5 - 0.003) / 2) < 1e-13)
    True
    """

    name = "imq"

    def __init__(self, c: float = 1.0, beta: float = 0.5):
        self.c = check_real(c, "c", positive=True)
        self.beta = check_real(beta, "beta", positive=True)

    def _params(self):
        return (self.c, self.beta)

    def _named_params(self):
        return [("c", self.c), ("beta", self.beta)]

    def _profile(self, t, xp, q):
        return xp.exp(-self.beta * xp.log(self.c**2 + 2.0 - 2.0 * t))

    def _derivative(self, t, xp, q):
        return 2.0 * self.beta * xp.exp(-(self.beta + 1.0) * xp.log(self.c**2 + 2.0 - 2.0 * t))

    def _phi_at_one(self, q):
        return _exp_or_inf(self._log_phi_at_one(q))

    def _log_phi_at_one(self, q):
        return -2.0 * self.beta * math.log(self.c)

    def _log_spectrum(self, q, degree):
        degrees = np.arange(degree + 1, dtype=np.float64)
        log_lam, done = self._log_lambda_series(q, degrees)
        if not np.all(done):
            log_lam[~done] = self._log_lambda_mixture(q, degrees[~done])
        return log_harmonic_dimension(degrees, q=q) + log_lam, np.ones(degree + 1)

    def _log_lambda_series(self, q: int, degrees: np.ndarray, max_terms: int = 3000) -> tuple[np.ndarray, np.ndarray]:
        r"""The hypergeometric form, where its positive series converges within ``max_terms`` terms.

        With :math:`r + 1/r = c^2 + 2` and :math:`u = 2r/(1+r^2)`,
        :math:`\lambda_l = r^\beta (1+r^2)^{-\beta} (\beta)_l (u/2)^l / (q/2)_l\,
        {}_2F_1(\tfrac{\beta+l}{2}, \tfrac{\beta+l+1}{2}; l + \tfrac q2; u^2)`; the terms decay like
        :math:`m^{\beta - (q+1)/2} u^{2m}`: fast at large q or large c, slowly for small q and c -> 0.
        """
        beta, c = self.beta, self.c
        # r = 2 / (c^2 + 2 + sqrt((c^2 + 2)^2 - 4)) = 2 / (c^2 + 2 + c sqrt(c^2 + 4)), in log space for large c
        if c <= 1.0:
            log_r = math.log(2.0 / (c * c + 2.0 + c * math.hypot(c, 2.0)))
        else:
            w = 2.0 / c
            log_r = math.log(2.0) - 2.0 * math.log(c) - math.log1p(0.5 * w * w + math.hypot(1.0, w))
        r = math.exp(log_r)
        log_u = math.log(2.0) + log_r - math.log1p(r * r)
        z = math.exp(2.0 * log_u)
        a, b, cc = (beta + degrees) / 2, (beta + degrees + 1) / 2, degrees + q / 2
        term = np.ones_like(degrees)
        total = np.ones_like(degrees)
        log_scale = np.zeros_like(degrees)
        done = np.zeros(degrees.shape, dtype=bool)
        for m in range(max_terms):
            ratio = (a + m) * (b + m) / ((cc + m) * (m + 1)) * z
            term = term * ratio
            total = total + term
            # the ratios tend to z, monotonically for large m (from above or from below): every later ratio is at
            # most rmax = max(next ratio, z), so the tail is at most term * rmax / (1 - rmax)
            rmax = np.maximum((a + m + 1) * (b + m + 1) / ((cc + m + 1) * (m + 2)) * z, z)
            done |= (rmax < 1) & (term * rmax <= 1e-17 * (1 - rmax) * total)
            big = total > 1e200
            if np.any(big):
                term[big] *= 1e-200
                total[big] *= 1e-200
                log_scale[big] += 200 * math.log(10.0)
            if np.all(done):
                break
        log_pref = beta * log_r - beta * math.log1p(r * r) + degrees * (log_u - math.log(2.0))
        log_lam = log_pref + log_rising(beta, degrees) - log_rising(q / 2, degrees) + np.log(total) + log_scale
        return log_lam, done

    def _log_lambda_mixture(self, q: int, degrees: np.ndarray) -> np.ndarray:
        """The Gaussian-mixture integral over s, by composite Gauss–Legendre quadrature in x = log s."""
        beta, c2 = self.beta, self.c * self.c
        if c2 == 0.0:
            raise ValueError(
                f"{self!r}: c^2 underflows float64 (c < 1.5e-154) and the hypergeometric series does not converge "
                f"in q={q}; the stated domain is c >= 1e-4"
            )
        s0 = 1e-8 / (2.0 + c2)
        # beyond s_hi the factor s^beta e^{-c^2 s} has fallen by more than e^-75 from its maximum
        s_hi = max((2.0 * beta + 80.0) / c2, 10.0 * s0)
        x0, x1 = math.log(s0), math.log(s_hi)
        # the integrand's peak narrows like 1/sqrt(beta) in x: so do the panels
        panels = max(1, math.ceil((x1 - x0) * max(1.0, math.sqrt(beta)) / _PANEL_WIDTH))
        if panels * _PANEL_NODES.size * degrees.size > _MIXTURE_WORK_LIMIT:
            raise ValueError(
                f"{self!r}: in q={q} the spectrum needs the Gaussian-mixture quadrature with {panels} panels for "
                f"{degrees.size} degrees (the hypergeometric series converges only for larger c or q), beyond the "
                f"limit of {_MIXTURE_WORK_LIMIT:.3g} node-degree pairs (about ten seconds on one core); ask for fewer "
                "degrees (the stated domain is beta <= 100)"
            )
        h = (x1 - x0) / panels
        left = x0 + h * np.arange(panels)
        x = (left[:, None] + 0.5 * h * (_PANEL_NODES[None, :] + 1.0)).ravel()
        log_w = np.log(np.tile(0.5 * h * _PANEL_WEIGHTS, panels))
        s = np.exp(x)
        log_f = (log_w + beta * x - c2 * s)[:, None] + log_gaussian_lambda(s[:, None], q, degrees[None, :])
        body = logsumexp(log_f, axis=0)
        # int_0^{s0} s^{beta+l-1} (1 - (2 + c^2) s) ds / (q/2)_l
        e = beta + degrees
        tail = e * math.log(s0) - np.log(e) + np.log1p(-(2.0 + c2) * s0 * e / (e + 1.0)) - log_rising(q / 2, degrees)
        return np.logaddexp(body, tail) - math.lgamma(beta)

    def _log_magnitude(self, q, degree):
        degrees = np.arange(degree + 1, dtype=np.float64)
        log_abs, _ = self.log_spectrum(degree, q=q)
        log_n = log_harmonic_dimension(degrees, q=q)
        # the hypergeometric route: prefactors, two rising factorials, the positive series (up to 3000 terms) or
        # the mixture quadrature; both bounded by the sizes of the logarithms of the Gaussian-series route
        c2 = self.c * self.c
        return (
            2.0 * log_n
            + np.abs(log_abs)
            + np.abs(log_rising(self.beta, degrees))
            + np.abs(log_rising(q / 2, degrees))
            + degrees * abs(math.log(2.0 + c2))
            + self.beta * abs(math.log(2.0 + c2))
            + 200.0
        )

    def _positive_semidefinite(self, q):
        return True

    def _strictly_positive_definite(self, q):
        return True


class DistanceKernel(_LogSpaceKernel):
    r"""Distance (Riesz / energy) kernel :math:`\varphi(t) = -\|x - y\|^{s} = -(2 - 2t)^{s/2}`, s > 0.

    With a = s/2: :math:`\lambda_l(\|x-y\|^{s}) = (-a)_l\, 4^a\, \Gamma(a + \tfrac{q-1}{2})\, \Gamma(q-1) /
    (\Gamma(\tfrac{q-1}{2})\, \Gamma(a + l + q - 1))`. For 0 < s < 2 every :math:`a_l`, l >= 1, is positive while
    :math:`a_0 < 0`: conditionally positive definite (not positive semi-definite), and its MMD to the uniform
    distribution is a valid (characteristic) energy distance. s = 1 is the energy distance; n times its MMD is
    Bakshaev's statistic. For s < 2, :math:`\varphi'(1)` is infinite (:meth:`~DotProductKernel.derivative` returns
    inf there); torch and jax autograd of the profile at t = 1 then give 0 (the finite part), never inf or NaN, and
    the one-sided derivative wherever it is finite (s >= 2, t = -1).

    Parameters
    ----------
    s : float
        Exponent :math:`s > 0` of the distance.

    See Also
    --------
    GineKernel : the kernel of Gine's test.
    mmd2_uniform : the energy distance to the uniform law.

    Accuracy
    --------
    Relative error of each :math:`a_l` that is a normal float64 (and absolute error of :math:`\ln|a_l|`) at most
    :math:`\max(10^{-12}, 2\epsilon M_l)`, :math:`M_l` the size of the logarithms combined (module docstring);
    :meth:`~DotProductKernel.spectrum_error` returns this bound per degree, held against mpmath on dense grids.
    1e-12 at every degree for q <= 64 (1e-14 in low dimension); at large q the bound grows with l (6.7e-12 at
    q = 1000, l = 1500).

    References
    ----------
    .. [1] G. J. Szekely and M. L. Rizzo, "Energy statistics: a class of statistics based on distances", Journal
       of Statistical Planning and Inference 143(8), 1249-1272 (2013).
    .. [2] M. Bakshaev, "N-distance tests of uniformity on the hypersphere", Nonlinear Analysis: Modelling and
       Control 15(1), 15-28 (2010).

    Examples
    --------
    >>> round(float(DistanceKernel(s=1.0).uniform_mean_embedding(q=3)), 12)  # -E||x - y|| = -4/3
    -1.333333333333
    """

    name = "distance"
    has_corner = True

    def __init__(self, s: float = 1.0):
        self.s = check_real(s, "s", positive=True)
        a = self.s / 2.0
        self.degree = int(a) if a.is_integer() else None

    def _params(self):
        return (self.s,)

    def _named_params(self):
        return [("s", self.s)]

    def _profile(self, t, xp, q):
        return -_distance_power(t, xp, 0.5 * self.s)

    def _derivative(self, t, xp, q):
        return self.s * clip_through(2.0 - 2.0 * t, xp, 0.0) ** (0.5 * self.s - 1.0)

    def _phi_at_one(self, q):
        return 0.0

    def _log_lambda(self, q: int, degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""(ln|lambda_l|, sign of (-a)_l, magnitude of the logarithms combined) for l = 0..degree.

        :math:`|(-a)_l| = \Gamma(a+1)/\Gamma(a+1-m)\cdot\Gamma(l-a)/\Gamma(m-a)` with m = min(l, ceil(a))
        factors of sign -1 (no running sum of logarithms). Then either
        :math:`\Gamma(l-a)/\Gamma(m-a) / ((q-1)_l\, \Gamma(a+l+q-1)/\Gamma(l+q-1))` (rising factorials, for l
        small against q) or :math:`\Gamma(q-1)/\Gamma(m-a) \cdot \Gamma(l-a)/\Gamma(a+l+q-1)` (one ratio of
        nearby Gamma functions, for l large against q), whichever combines smaller logarithms.
        """
        a = 0.5 * self.s
        degrees = np.arange(degree + 1, dtype=np.float64)
        top = math.ceil(a)
        m = np.minimum(degrees, top)
        sign = np.where(m % 2 == 1, -1.0, 1.0)
        out = np.full(degree + 1, -np.inf)
        magnitude = np.ones(degree + 1)
        # integer a: (-a)_l = 0 beyond l = a (a polynomial); (m - a) = 0 there
        live = ~((degrees > a) & (m - a == 0))
        ll, mm = degrees[live], m[live]
        # a (a - 1) ... (a - m + 1); a - (m - 1) is exact (no 1 + a that would lose a tiny a)
        head = log_gamma_ratio(a + 1.0, a - (mm - 1.0))
        beyond = ll > mm
        constant = a * math.log(4.0) + float(_log_gamma_shift(np.array([(q - 1) / 2]), a)[0])
        # l - a and l + q - 1 + a are never formed (their rounding, ulp(l) psi(l), would be 1e-12 at l ~ 1500):
        # ln Gamma(l - a) = ln Gamma(l) + shift(l, -a), ln Gamma(l + q - 1 + a) = ln Gamma(l + q - 1) + shift(., a)
        safe_l = np.where(beyond, ll, 1.0)
        down = np.zeros_like(ll)
        down[beyond] = _log_gamma_shift(ll[beyond], -a)
        shift = _log_gamma_shift(ll + q - 1, a)
        rising = log_rising(q - 1, ll)
        lg_mm = np.where(beyond, gammaln(np.where(beyond, mm - a, 1.0)), 0.0)
        # (m - a)_(l - m) / (q - 1)_l / (Gamma(a + l + q - 1) / Gamma(l + q - 1))
        rest = np.where(beyond, log_gamma_ratio(safe_l, np.where(beyond, mm - a, 1.0)), 0.0)
        first = rest + down - rising - shift
        size_first = np.abs(rest) + np.abs(down) + np.abs(rising) + np.abs(shift)
        # Gamma(q - 1) / Gamma(m - a) * Gamma(l - a) / Gamma(a + l + q - 1)
        between = log_rising(safe_l, q - 1)  # ln Gamma(l + q - 1) - ln Gamma(l)
        ratio = down - between - shift + math.lgamma(q - 1) - lg_mm
        size_second = np.abs(down) + np.abs(between) + np.abs(shift) + abs(math.lgamma(q - 1)) + np.abs(lg_mm)
        use_ratio = beyond & (size_second < size_first)
        out[live] = head + constant + np.where(use_ratio, ratio, first)
        magnitude[live] = np.abs(head) + abs(constant) + np.where(use_ratio, size_second, size_first) + 1.0
        return out, np.where(live, sign, 0.0), magnitude

    def _log_spectrum(self, q, degree):
        log_lambda, sign, _ = self._log_lambda(q, degree)
        log_a = log_harmonic_dimension(np.arange(degree + 1), q=q) + log_lambda
        return log_a, -sign  # the kernel is MINUS the power

    def _log_magnitude(self, q, degree):
        return log_harmonic_dimension(np.arange(degree + 1), q=q) + self._log_lambda(q, degree)[2]

    def _positive_semidefinite(self, q):
        return False


class ArcCosineKernel(_LogSpaceKernel):
    r"""Arc-cosine kernel of order 0 or 1 (Cho & Saul), normalised to :math:`\varphi(1) = 1`.

    Order 0: :math:`\varphi(t) = 1 - \theta/\pi`; order 1:
    :math:`\varphi(t) = (\sin\theta + (\pi - \theta)\cos\theta)/\pi`, :math:`\theta = \arccos t`. They are
    :math:`2 E_w[\sigma(w\cdot x)\sigma(w\cdot y)]` for Gaussian w and :math:`\sigma` the step / ReLU, hence
    :math:`a_l = 2 E[r^{2n}] N(q,l)\, m_l^2` with :math:`E[r^0] = 1`, :math:`E[r^2] = q` and
    :math:`m_l = E_{\nu_q}[\sigma(t) P_{l,q}(t)]`, in closed form from Rodrigues' formula. :math:`m_l = 0` for every
    even l >= 2 (order 0) or odd l >= 3 (order 1): these kernels are positive semi-definite but neither
    characteristic nor strictly positive definite. At t = +-1, torch and jax autograd of the profile give the
    one-sided derivative where it is finite (order 1: 1 at t = 1, 0 at t = -1) and 0 where it is infinite (order 0,
    whose :meth:`~DotProductKernel.derivative` is inf there), never NaN.

    Parameters
    ----------
    order : {0, 1}
        0: the step activation, 1: ReLU.

    See Also
    --------
    NNGPKernel : the kernels of deeper networks built on these.

    Accuracy
    --------
    Relative error of each :math:`a_l` that is a normal float64 (and absolute error of :math:`\ln|a_l|`) at most
    :math:`\max(10^{-12}, 2\epsilon M_l)`, :math:`M_l` the size of the logarithms combined (module docstring);
    :meth:`~DotProductKernel.spectrum_error` returns this bound per degree, held against mpmath on dense grids.
    1e-12 at low degree; the bound grows with l (3.9e-12 at l = 300; on the 2-sphere the error reaches 7.5e-12 at
    l ~ 1500, held against exact Legendre integrals at every degree up to 1500).

    References
    ----------
    .. [1] Y. Cho and L. K. Saul, "Kernel methods for deep learning", Advances in Neural Information Processing
       Systems 22 (2009).

    Examples
    --------
    >>> ArcCosineKernel(order=0).spectrum(2, q=3).round(6).tolist()
    [0.5, 0.375, 0.0]
    """

    name = "arccos"
    has_corner = True

    def __init__(self, order: int = 0):
        order = check_integer(order, "order", minimum=0, requirement="0 or 1")
        if order not in (0, 1):
            raise ValueError(f"order must be 0 or 1, got {order}")
        self.order = order

    def _params(self):
        return (self.order,)

    def _named_params(self):
        return [("order", self.order)]

    def _profile(self, t, xp, q):
        # the values at +-1 apart, so that autograd meets no infinite derivative of acos: there it gives the
        # one-sided derivative where finite (order 1: 1 at t = 1, 0 at t = -1) and 0 where infinite (order 0)
        t = clip_through(t, xp, -1.0, 1.0)
        inside = (t > -1.0) & (t < 1.0)
        theta = xp.acos(xp.where(inside, t, xp.zeros_like(t)))
        if self.order == 0:
            ends = xp.where(t > 0.0, xp.ones_like(t), xp.zeros_like(t))
            return xp.where(inside, 1.0 - theta / math.pi, ends)
        ends = xp.where(t > 0.0, t, 0.0 * t)  # phi(t) = 1 + (t - 1) + ... at t = 1, phi(-1) = phi'(-1) = 0
        return xp.where(inside, (xp.sin(theta) + (math.pi - theta) * xp.cos(theta)) / math.pi, ends)

    def _derivative(self, t, xp, q):
        t = xp.clip(t, -1.0, 1.0)
        if self.order == 0:
            return 1.0 / (math.pi * xp.sqrt(1.0 - t * t))
        return 1.0 - xp.acos(t) / math.pi

    def _phi_at_one(self, q):
        return 1.0

    def _log_spectrum(self, q, degree):
        n = self.order
        degrees = np.arange(degree + 1)
        log_m = np.full(degree + 1, -np.inf)
        log_cq = float(log_gamma_ratio(q / 2, (q - 1) / 2)) - 0.5 * math.log(math.pi)
        log_abs_t = log_cq + math.log(2.0 / (q - 1))  # log E|t|
        if n == 0:
            log_m[0] = math.log(0.5)
            start = 1  # odd degrees l = 2j + 1
        else:
            log_m[0] = log_abs_t - math.log(2.0)
            if degree >= 1:
                log_m[1] = -math.log(2.0 * q)
            start = 2  # even degrees l = 2j + 2
        ls = np.arange(start, degree + 1, 2, dtype=np.float64)
        if ls.size:
            jj = (ls - start) / 2
            beta = ls + (q - 3) / 2
            log_m[ls.astype(int)] = (
                log_cq
                - ls * math.log(2.0)
                + log_gamma_ratio((q - 1) / 2, ls + (q - 1) / 2)
                + gammaln(ls - start + 1)
                + log_gamma_ratio(beta + 1, beta - jj + 1)
                - gammaln(jj + 1)
            )
        log_moment = 0.0 if n == 0 else math.log(q)
        log_a = math.log(2.0) + log_moment + log_harmonic_dimension(degrees, q=q) + 2 * log_m
        return log_a, _positive_sign(log_a)

    def _log_magnitude(self, q, degree):
        degrees = np.arange(degree + 1, dtype=np.float64)
        # the squared moment m_l: twice the sizes of its logarithms (Gamma ratios and factorials of order l)
        half = 0.5 * degrees
        sizes = (
            degrees * math.log(2.0)
            + np.abs(log_gamma_ratio((q - 1) / 2, degrees + (q - 1) / 2))
            + gammaln(degrees + 1)
            + np.abs(log_gamma_ratio(degrees + (q - 1) / 2, half + (q - 1) / 2))
            + gammaln(half + 1)
            + abs(float(log_gamma_ratio(q / 2, (q - 1) / 2)))
            + 2.0
        )
        return log_harmonic_dimension(degrees.astype(int), q=q) + 2.0 * sizes + math.log(q)

    def _positive_semidefinite(self, q):
        return True

    def _strictly_positive_definite(self, q):
        return False


class GineKernel(_LogSpaceKernel):
    r"""Kernel of Giné's :math:`G_n` test: :math:`\varphi(t) = -c_q \sqrt{1 - t^2} = -c_q \sin\theta`.

    :math:`c_q = \tfrac{q-1}{4} (\Gamma(\tfrac{q-1}{2}) / \Gamma(\tfrac q2))^2`, so that :math:`a_0 = -1/2`. Even
    degrees only: :math:`a_{2k}/N(q, 2k) = \frac{(q-1)(2k-1)}{8\pi(2k+q-1)}
    \bigl(\Gamma(\tfrac{q-1}{2}) \Gamma(k - \tfrac12) / \Gamma(k + \tfrac{q-1}{2})\bigr)^2` (sphunif's weights).
    Not positive semi-definite (:math:`a_0 < 0`). At t = +-1, where :math:`\varphi'` is infinite, torch and jax
    autograd of the profile give 0 (never inf or NaN).

    See Also
    --------
    DistanceKernel : the energy (Bakshaev) kernel.
    uniformity_test : Gine's test among the uniformity tests.

    Accuracy
    --------
    Relative error of each :math:`a_l` that is a normal float64 (and absolute error of :math:`\ln|a_l|`) at most
    :math:`\max(10^{-12}, 2\epsilon M_l)`, :math:`M_l` the size of the logarithms combined (module docstring);
    :meth:`~DotProductKernel.spectrum_error` returns this bound per degree, held against mpmath on dense grids.
    1e-12 at low degree; the bound grows with l (1.7e-12 at q = 1000, l = 300).

    References
    ----------
    .. [1] E. Gine, "Invariant tests for uniformity on compact Riemannian manifolds based on Sobolev norms",
       The Annals of Statistics 3(6), 1243-1266 (1975).

    Examples
    --------
    >>> GineKernel().uniform_mean_embedding(q=3)
    -0.5
    """

    name = "gine"
    has_corner = True
    dimension_dependent = True

    @staticmethod
    def _log_c(q: int) -> float:
        return math.log((q - 1) / 4.0) + 2.0 * float(log_gamma_ratio((q - 1) / 2.0, q / 2.0))

    def _profile(self, t, xp, q):
        # at t = +-1 the derivative is infinite: autograd gives 0 there (never inf or NaN)
        u = 1.0 - t * t
        positive = u > 0.0
        root = xp.where(positive, xp.sqrt(xp.where(positive, u, xp.ones_like(u))), xp.zeros_like(u))
        return -math.exp(self._log_c(q)) * root

    def _derivative(self, t, xp, q):
        return math.exp(self._log_c(q)) * t / xp.sqrt(xp.clip(1.0 - t * t, 0.0, None))

    def _phi_at_one(self, q):
        return 0.0

    def _uniform_mean_embedding(self, q):
        return -0.5

    def _log_spectrum(self, q, degree):
        degrees = np.arange(degree + 1)
        log_a = np.full(degree + 1, -np.inf)
        sign = np.zeros(degree + 1)
        log_a[0], sign[0] = math.log(0.5), -1.0
        even = degrees[2::2]
        if even.size:
            k = even / 2.0
            log_v2 = (
                math.log(q - 1.0)
                + np.log(2.0 * k - 1.0)
                - np.log(8.0 * math.pi * (2.0 * k + q - 1.0))
                # Gamma((q-1)/2) / Gamma(k + (q-1)/2) as a rising factorial: no cancellation of two huge lgammas
                + 2.0 * (gammaln(k - 0.5) - log_rising((q - 1) / 2.0, k))
            )
            log_a[even] = log_v2 + log_harmonic_dimension(even, q=q)
            sign[even] = 1.0
        return log_a, sign

    def _log_magnitude(self, q, degree):
        degrees = np.arange(degree + 1, dtype=np.float64)
        k = np.maximum(0.5 * degrees, 1.0)
        sizes = np.abs(gammaln(k - 0.5)) + np.abs(log_rising((q - 1) / 2.0, k))
        return (
            log_harmonic_dimension(degrees.astype(int), q=q)
            + 2.0 * sizes
            + np.log(8.0 * math.pi * (2.0 * k + q))
            + math.log(q)
            + 1.0
        )

    def _positive_semidefinite(self, q):
        return False
