r"""Finite random feature maps of dot-product kernels, and the linear-time MMD to the uniform law they give.

A feature map :math:`\Phi: S^{q-1} \to \mathbb{R}^m` with :math:`\Phi(x)^\top \Phi(y) \approx k(x, y)` turns
kernel computations that cost :math:`O(n^2)` into :math:`O(n m)` ones: prior samples of a Gaussian process
(:func:`~dotkernels.sample_gp_prior`), kernel sums over huge point sets (:func:`mmd2_uniform_features`), linear
models in place of kernel machines. Both maps here are unbiased for a truncation of the kernel, and state the
variance of every entry of the approximate Gram matrix and the truncation error.

Random Gegenbauer ("random phase") features
-------------------------------------------
For :math:`\varphi(t) = \sum_l a_l P_{l,q}(t)` with every :math:`a_l \ge 0` (a positive semi-definite kernel,
Schoenberg), :math:`m` directions :math:`u_j` uniform on :math:`S^{q-1}` and a degree L, one feature per
direction and degree,

.. math::

    \Phi_{j,l}(x) = \sqrt{\frac{a_l N(q, l)}{m}}\, P_{l,q}(\langle x, u_j\rangle), \qquad l \le L.

The addition theorem gives :math:`E_u[P_{l,q}(\langle x, u\rangle) P_{l,q}(\langle y, u\rangle)] =
P_{l,q}(\langle x, y\rangle) / N(q, l)`, hence :math:`E[\Phi(x)^\top \Phi(y)] = \varphi_L(\langle x, y\rangle)
= \sum_{l \le L} a_l P_{l,q}(\langle x, y\rangle)`, at every q (the map stores only the m directions). The square
roots need :math:`a_l \ge 0`: a kernel with a negative coefficient has no such map. These are the random phase
features of compact spaces (Borovitskiy et al. 2020; GeometricKernels' ``RandomPhaseFeatureMapCompact``) on the
sphere, normalised so that their expectation is the kernel itself.

Random Maclaurin features
-------------------------
For :math:`\varphi(t) = \sum_p c_p t^p` with every :math:`c_p \ge 0` (Kar & Karnick 2012), each feature draws a
power :math:`p` with probability :math:`c_p / S`, :math:`S = \sum_{p \le P} c_p`, and p independent vectors
:math:`w_i` (Rademacher or standard Gaussian), and is :math:`\sqrt{S/m} \prod_{i \le p} \langle w_i, x\rangle`.
Since :math:`E[\langle w, x\rangle \langle w, y\rangle] = \langle x, y\rangle`, the expectation of
:math:`\Phi(x)^\top\Phi(y)` is :math:`\sum_{p \le P} c_p \langle x, y\rangle^p`.

Which one
---------
Both are unbiased; their variances (stated exactly by their ``variance`` methods) differ by orders of magnitude.
One direction / feature of ``GaussianKernel(gamma)``, variance of the estimate of k(x, x):

========  =========  ==========  ===========  ============  ======================
gamma     q = 3      q = 10      q = 100      q = 1000      Maclaurin (Gaussian w)
========  =========  ==========  ===========  ============  ======================
0.25      0.10       0.30        0.55         0.60          1.7
1         0.41       4.1         55           114           53
4         0.76       118         4.7e7        9.0e10        5.6e6
========  =========  ==========  ===========  ============  ======================

The Gegenbauer features win by far in low dimension; in high dimension the harmonics of degree l are spiky and
the variance on the diagonal grows (off the diagonal, at t = 0, it stays below 0.2 in every case above, against
0.6 to 1 for Maclaurin). Sharply peaked kernels in high dimension are expensive to approximate by any of these
maps: use the exact Gram matrix where n allows.

References
----------
.. [1] P. Kar and H. Karnick, "Random feature maps for dot product kernels", AISTATS 2012.
.. [2] A. Rahimi and B. Recht, "Random features for large-scale kernel machines", NeurIPS 2007.
.. [3] V. Borovitskiy, A. Terenin, P. Mostowsky and M. P. Deisenroth, "Matérn Gaussian processes on Riemannian
   manifolds", NeurIPS 2020 (the random phase features of compact spaces).
.. [4] A. Gretton, K. M. Borgwardt, M. J. Rasch, B. Schölkopf and A. Smola, "A kernel two-sample test", JMLR 13,
   2012.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from ._array_api import array_namespace, as_array, to_numpy
from ._validate import (
    check_block_size,
    check_dimension,
    check_estimator,
    check_integer,
    check_points,
    check_real,
    check_rng,
)
from .gegenbauer import legendre_all, legendre_series, legendre_to_monomial, log_harmonic_dimension
from .kernels import DotProductKernel, SpectrumAccuracyWarning, parse_kernel, power_series
from .quadrature import projected_quadrature
from .sampling import sample_uniform

__all__ = ["FeatureMMDResult", "RandomGegenbauerFeatures", "RandomMaclaurinFeatures", "mmd2_uniform_features"]

#: the largest degree (Gegenbauer) or power (Maclaurin) searched for when ``degree`` is None
MAX_DEGREE = 4096


def _as_kernel(kernel: Any) -> DotProductKernel:
    if isinstance(kernel, (DotProductKernel, str)):
        return parse_kernel(kernel)
    raise TypeError(f"kernel must be a DotProductKernel or a kernel string, got {type(kernel).__name__}")


def _finite_phi_at_one(kernel: DotProductKernel, q: int) -> float:
    """phi(1), the scale the truncation is chosen against; ValueError where it is beyond float64 (no rtol can be
    met: every tail would compare as inf)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        phi1 = kernel.phi_at_one(q=q)
    if not math.isfinite(phi1):
        raise ValueError(
            f"phi(1) of {kernel!r} at q={q} is beyond float64 (ln phi(1) = {kernel.log_phi_at_one(q=q):.6g}): no "
            "truncation degree can be chosen by rtol; pass degree"
        )
    return phi1


def _gegenbauer_degree(kernel: DotProductKernel, q: int, degree: Any, rtol: float) -> int:
    """The given degree, or the smallest L whose tail phi(1) - sum_{l <= L} a_l is at most rtol phi(1)."""
    if degree is not None:
        return check_integer(degree, "degree", minimum=0, requirement="a non-negative integer degree or None")
    if kernel.degree is not None:
        return int(kernel.degree)
    phi1 = _finite_phi_at_one(kernel, q)
    L = 16
    while True:
        a = kernel.spectrum(L, q=q)
        if np.any(a < 0):
            return L  # rejected with its message by the caller
        tail = phi1 - np.cumsum(a)
        below = np.nonzero(tail <= rtol * abs(phi1))[0]
        if below.size:
            return int(below[0])
        if L >= MAX_DEGREE:
            warnings.warn(
                f"{kernel!r} at q={q}: the series is still {tail[-1]:.3g} short of phi(1) at degree {L}; the feature "
                f"map stops there (its truncation_error states it)",
                SpectrumAccuracyWarning,
                stacklevel=3,
            )
            return L
        L = min(2 * L, MAX_DEGREE)


def _check_features(X: Any, q: int, normalize: bool, name: str = "X") -> tuple[Any, Any]:
    X, xp = check_points(X, name, normalize=normalize, float64=False)
    if int(X.shape[1]) != q:
        raise ValueError(
            f"{name} must have q = {q} columns (the dimension the feature map was drawn for), got {X.shape[1]}"
        )
    return X, xp


class RandomGegenbauerFeatures:
    r"""Random Gegenbauer ("random phase") features of a positive semi-definite dot-product kernel on
    :math:`S^{q-1}`.

    One feature per direction :math:`u_j` and degree l with :math:`a_l > 0`:

    .. math::

        \Phi_{j,l}(x) = \sqrt{\frac{a_l N(q, l)}{m}}\, P_{l,q}(\langle x, u_j\rangle),
        \qquad u_1, \dots, u_m \text{ uniform on } S^{q-1}, \quad 0 \le l \le L,

    so that :math:`E[\Phi(x)^\top\Phi(y)] = \sum_{l \le L} a_l P_{l,q}(\langle x, y\rangle)` exactly (addition
    theorem, see :mod:`dotkernels.features`). The directions are drawn once, at construction; :meth:`transform`
    costs :math:`O(n m (q + L))` time and :math:`O(n m L)` memory (n times the number of features) at any q, or
    :math:`O(n m)` with ``per_degree=False`` (one feature per direction, the sum over degrees).

    Parameters
    ----------
    kernel : DotProductKernel or str
        A kernel whose coefficients :math:`a_0, \dots, a_L` in dimension q are all non-negative.
    q : int
        Dimension of the points (the sphere :math:`S^{q-1}`), >= 2.
    n_directions : int
        Number m of random directions, >= 1.
    degree : int, optional
        The degree L of the truncation. Default: the kernel's degree for a polynomial kernel, else the smallest L
        whose :meth:`~DotProductKernel.truncation_error` is at most ``rtol * phi(1)`` (searched up to 4096).
    rtol : float
        Relative truncation error aimed at when ``degree`` is None.
    per_degree : bool
        One feature per direction and degree (default: the smaller variance), or one per direction, the sum over
        the degrees (``n_directions`` features whatever L: the choice when L is large, e.g. for kernels whose
        spectrum decays slowly, at the price of the cross-degree products in the variance).
    rng : numpy.random.Generator, int, SeedSequence or None
        Source of the directions (SPEC 7).

    Attributes
    ----------
    directions : ndarray
        The ``(n_directions, q)`` directions :math:`u_j` (float64).
    degree : int
        The truncation degree L.
    degrees : ndarray
        The degrees l <= L with :math:`a_l > 0`, one feature per direction each.
    n_features : int
        ``n_directions * len(degrees)`` (``n_directions`` with ``per_degree=False``), the columns of
        :meth:`transform`.
    weights : ndarray
        :math:`\sqrt{a_l N(q, l)}` for ``degrees``.
    truncation_error : float
        :math:`\varphi(1) - \sum_{l \le L} a_l`, the largest error of the truncated kernel on [-1, 1].

    Notes
    -----
    Accuracy: every entry of :meth:`gram` is an unbiased estimate of the truncated kernel
    :math:`\varphi_L(\langle x, y\rangle)`, with variance :meth:`variance` (one direction's variance over m),
    computed exactly by a tensor Gauss rule; the truncated kernel differs from the kernel by at most
    ``truncation_error`` (attained at t = 1, since every :math:`a_l \ge 0`).

    The variance grows with q for kernels concentrated near t = 1: a harmonic of degree l is spiky in high
    dimension (:math:`N(q,l)\,E[P_{l,q}^4]` grows with q). For ``GaussianKernel(gamma=1)`` the variance of one
    direction at t = 1 is 0.41 at q = 3, 4.1 at q = 10, 55 at q = 100 and 114 at q = 1000 (at t = 0: 0.14 to
    0.19); for ``gamma=4`` it is 0.76 at q = 3 but 1.2e2 at q = 10. Features per degree (rather than one sum per
    direction) keep the cross-degree products, zero in expectation, out of the estimate: at q = 1000, gamma = 1
    the summed form has variance 2.6e3. :class:`RandomMaclaurinFeatures` has 53 there, whatever q.

    See Also
    --------
    RandomMaclaurinFeatures : features from the power series of the profile.
    sample_gp_prior : prior samples of a Gaussian process, through these features for large n.
    mmd2_uniform_features : the linear-time MMD to the uniform law built on them.

    References
    ----------
    .. [1] V. Borovitskiy, A. Terenin, P. Mostowsky and M. P. Deisenroth, "Matérn Gaussian processes on
       Riemannian manifolds", NeurIPS 2020.
    .. [2] A. Rahimi and B. Recht, "Random features for large-scale kernel machines", NeurIPS 2007.

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels import GaussianKernel, sample_uniform
    >>> kernel = GaussianKernel(gamma=1.0)
    >>> features = RandomGegenbauerFeatures(kernel, q=3, n_directions=20000, rng=0)
    >>> X = sample_uniform(5, q=3, rng=1)
    >>> error = np.abs(features.gram(X) - kernel.gram(X)).max()
    >>> bool(error < 6 * np.sqrt(features.variance(X).max()) + features.truncation_error)
    True
    """

    def __init__(
        self,
        kernel: DotProductKernel | str,
        *,
        q: int,
        n_directions: int = 1000,
        degree: int | None = None,
        rtol: float = 1e-6,
        per_degree: bool = True,
        rng: Any = None,
    ):
        self.kernel = _as_kernel(kernel)
        self.q = check_dimension(q)
        self.n_directions = check_integer(n_directions, "n_directions", minimum=1)
        if not isinstance(per_degree, (bool, np.bool_)):
            raise TypeError(f"per_degree must be a bool, got {per_degree!r}")
        self.per_degree = bool(per_degree)
        rtol = check_real(rtol, "rtol", positive=True)
        self.degree = _gegenbauer_degree(self.kernel, self.q, degree, rtol)
        log_a, sign = self.kernel.log_spectrum(self.degree, q=self.q)
        if np.any(sign < 0):
            l = int(np.nonzero(sign < 0)[0][0])
            raise ValueError(
                f"kernel {self.kernel!r} has a_{l} < 0 in q={self.q}: random features need a positive semi-definite "
                "kernel (every Gegenbauer coefficient a_l >= 0, Schoenberg)"
            )
        degrees = np.nonzero(sign > 0)[0]
        if degrees.size == 0:
            raise ValueError(f"kernel {self.kernel!r} has no positive coefficient up to degree {self.degree}")
        weights = np.exp(0.5 * (log_a[degrees] + log_harmonic_dimension(degrees, q=self.q)))
        if not np.all(np.isfinite(weights)):
            raise ValueError(f"sqrt(a_l N(q, l)) overflows float64 for {self.kernel!r} at q={self.q}: lower degree")
        weights.setflags(write=False)
        degrees.setflags(write=False)
        self.degrees = degrees
        self.weights = weights
        self.n_features = self.n_directions * (int(degrees.size) if self.per_degree else 1)
        self.truncation_error = max(self.kernel.truncation_error(self.degree, q=self.q), 0.0)
        self.directions = sample_uniform(self.n_directions, q=self.q, rng=check_rng(rng))

    def transform(self, X: Any, *, normalize: bool = False) -> Any:
        r"""The features :math:`\Phi(x_i)` of the rows of X, an ``(n, n_features)`` array.

        Column ``j * len(degrees) + k`` is :math:`\Phi_{j,l}` with l = ``degrees[k]`` (``per_degree=True``), or
        column j is :math:`\sum_l \Phi_{j,l}` (``per_degree=False``, by Clenshaw's algorithm).

        Parameters
        ----------
        X : array, shape (n, q)
            Points on the sphere, any array-API library (the result has its type, dtype and device and is
            differentiable in X under autograd).
        normalize : bool
            Project the rows onto the sphere first; otherwise rows that are not unit vectors raise ValueError.

        Returns
        -------
        array
            ``(n, n_features)`` features.

        See Also
        --------
        RandomGegenbauerFeatures.gram : the approximate kernel matrix :math:`\Phi(X) \Phi(Y)^\top`.

        Examples
        --------
        >>> from dotkernels import sample_uniform
        >>> features = RandomGegenbauerFeatures("legendre:0,1,2", q=1000, n_directions=64, rng=0)
        >>> features.transform(sample_uniform(10, q=1000, rng=1)).shape  # degrees 1 and 2
        (10, 128)
        """
        X, xp = _check_features(X, self.q, normalize)
        device = array_api_compat.device(X)
        U = xp.asarray(self.directions, dtype=X.dtype, device=device)
        S = xp.clip(xp.matmul(X, xp.matrix_transpose(U)), -1.0, 1.0)
        if not self.per_degree:
            return legendre_series(self._series_weights() / math.sqrt(self.n_directions), S, q=self.q, validate=False)
        P = legendre_all(self.degree, S, q=self.q, validate=False)  # (L + 1, n, m)
        if self.degrees.size != self.degree + 1:
            P = xp.take(P, xp.asarray(self.degrees.copy(), device=device), axis=0)
        w = xp.asarray(self.weights / math.sqrt(self.n_directions), dtype=X.dtype, device=device)
        F = xp.permute_dims(P * w[:, None, None], (1, 2, 0))  # (n, m, degrees)
        return xp.reshape(F, (int(X.shape[0]), self.n_features))

    def gram(self, X: Any, Y: Any = None, *, normalize: bool = False) -> Any:
        r"""The approximate kernel matrix :math:`\Phi(X)\Phi(Y)^\top`, unbiased for the truncated kernel.

        Parameters
        ----------
        X : array, shape (n, q)
            Points on the sphere.
        Y : array, shape (n', q), optional
            Points on the sphere of the same library; default X.
        normalize : bool
            Project the rows onto the sphere first.

        Returns
        -------
        array
            ``(n, n')``; entry (i, j) has expectation :math:`\varphi_L(\langle x_i, y_j\rangle)` and variance
            entry (i, j) of :meth:`variance`.

        See Also
        --------
        RandomGegenbauerFeatures.variance : the variance of each entry.

        Examples
        --------
        >>> from dotkernels import sample_uniform
        >>> features = RandomGegenbauerFeatures("legendre:1,2,3", q=4, n_directions=100, rng=0)
        >>> features.gram(sample_uniform(3, q=4, rng=1)).shape
        (3, 3)
        """
        FX = self.transform(X, normalize=normalize)
        FY = FX if Y is None else self.transform(Y, normalize=normalize)
        xp = array_namespace(FX, FY)
        return xp.matmul(FX, xp.matrix_transpose(FY))

    def _series_weights(self) -> np.ndarray:
        """sqrt(a_l N(q, l)) for every l = 0..L (zero where a_l = 0): the series of one summed feature."""
        w = np.zeros(self.degree + 1)
        w[self.degrees] = self.weights
        return w

    def _second_moment(self, t: float, s: np.ndarray, ws: np.ndarray, v: np.ndarray, wv: np.ndarray) -> float:
        """E_u[(one direction's product)^2] at <x, y> = t by the tensor rule (s, ws) x (v, wv): the product is
        sum_l w_l^2 P_l(<x,u>) P_l(<y,u>) per degree, f(<x,u>) f(<y,u>) with f = sum_l w_l P_l summed."""
        L, q = self.degree, self.q
        s2 = t * s[:, None] + math.sqrt(max(1.0 - t * t, 0.0)) * np.sqrt(np.clip(1.0 - s * s, 0.0, None))[:, None] * v
        if not self.per_degree:
            w = self._series_weights()
            f1 = np.asarray(legendre_series(w, s, q=q, validate=False))
            f2 = np.asarray(legendre_series(w, np.clip(s2, -1.0, 1.0), q=q, validate=False))
            return float(ws @ ((f1 * f1)[:, None] * f2 * f2) @ wv)
        P1 = legendre_all(L, s, q=q, validate=False)[self.degrees]
        P2 = legendre_all(L, np.clip(s2, -1.0, 1.0), q=q, validate=False)[self.degrees]
        product = np.einsum("l,li,lij->ij", self.weights**2, P1, P2)
        return float(ws @ (product * product) @ wv)

    def variance(self, X: Any, Y: Any = None, *, normalize: bool = False) -> np.ndarray:
        r"""Variance of each entry of :meth:`gram`, exactly (a function of :math:`t = \langle x, y\rangle` only).

        .. math::

            \operatorname{Var}[\Phi(x)^\top\Phi(y)] = \frac{1}{m}\Big(E_u\Big[\Big(\sum_{l} a_l N(q,l)
            P_{l,q}(\langle x, u\rangle) P_{l,q}(\langle y, u\rangle)\Big)^2\Big] - \varphi_L(t)^2\Big)

        per degree, and with :math:`f(\langle x, u\rangle)^2 f(\langle y, u\rangle)^2`,
        :math:`f = \sum_l \sqrt{a_l N(q,l)} P_{l,q}`, in the expectation with ``per_degree=False``; the
        expectation over u uniform on the sphere: with :math:`s = \langle x, u\rangle \sim \nu_q` and
        :math:`\langle y, u\rangle = t s + \sqrt{1-t^2}\sqrt{1-s^2}\, v`, v independent of s with law
        :math:`\nu_{q-1}` (:math:`\pm 1` for q = 2), the integrand is a polynomial of degree 4L in (s, v) once the
        odd powers of v vanish, integrated exactly by the (2L + 1)-point rules of
        :func:`~dotkernels.projected_quadrature`.

        Parameters
        ----------
        X : array, shape (n, q)
            Points on the sphere (copied to the host).
        Y : array, shape (n', q), optional
            Default X.
        normalize : bool
            Project the rows onto the sphere first.

        Returns
        -------
        ndarray
            ``(n, n')`` float64 variances (m = ``n_directions``).

        Notes
        -----
        Accuracy: the rule is exact in exact arithmetic; rounding leaves a relative error of about
        :math:`10^{-12}` of the second moment. Cost :math:`O(L^3)` per distinct inner product.

        See Also
        --------
        RandomGegenbauerFeatures.gram : the estimate whose variance this is.

        Examples
        --------
        >>> import numpy as np
        >>> features = RandomGegenbauerFeatures("legendre:0,1", q=3, n_directions=1, rng=0)
        >>> features.variance(np.array([[0.0, 0.0, 1.0]])).round(12)  # 3 s^2, s ~ U(-1, 1): E[9 s^4] - 1 = 4/5
        array([[0.8]])
        """
        Xh = to_numpy(_check_features(X, self.q, normalize)[0]).astype(np.float64)
        Yh = Xh if Y is None else to_numpy(_check_features(Y, self.q, normalize, "Y")[0]).astype(np.float64)
        return self._variance_at(np.clip(Xh @ Yh.T, -1.0, 1.0))

    def _variance_at(self, t: np.ndarray) -> np.ndarray:
        nodes = 2 * self.degree + 1  # the integrand has degree 4L in s and in v: n nodes are exact to 2n - 1
        s, ws = projected_quadrature(nodes, q=self.q)
        if self.q == 2:  # the component orthogonal to x is +-sqrt(1 - s^2) with probability 1/2 each
            v, wv = np.array([-1.0, 1.0]), np.array([0.5, 0.5])
        else:
            v, wv = projected_quadrature(nodes, q=self.q - 1)
        values, inverse = np.unique(t.reshape(-1), return_inverse=True)
        second = np.array([self._second_moment(float(x), s, ws, v, wv) for x in values])
        a = self.kernel.spectrum(self.degree, q=self.q)
        mean = np.asarray(legendre_series(a, values, q=self.q, validate=False))
        out = np.clip(second - mean * mean, 0.0, None) / self.n_directions
        return out[inverse].reshape(t.shape)

    def __repr__(self) -> str:
        return (
            f"RandomGegenbauerFeatures({self.kernel!r}, q={self.q}, n_directions={self.n_directions}, "
            f"degree={self.degree})"
        )


def _maclaurin_series(kernel: DotProductKernel, q: int, degree: Any, rtol: float) -> tuple[np.ndarray, float]:
    """Non-negative power-series coefficients c_0..c_P and the bound on phi - sum c_p t^p on [-1, 1]."""
    if degree is not None:
        degree = check_integer(degree, "degree", minimum=0, requirement="a non-negative integer power or None")
    found = power_series(kernel, (degree if degree is not None else 16) + 1)
    if found is None:
        if kernel.degree is None:
            raise ValueError(
                f"no power series with non-negative coefficients is known for {kernel!r}: random Maclaurin features "
                "need phi(t) = sum_p c_p t^p with every c_p >= 0; use RandomGegenbauerFeatures"
            )
        exact = legendre_to_monomial(kernel.spectrum(kernel.degree, q=q).tolist(), q=q, exact=True)
        negative = [p for p, c in enumerate(exact) if c < 0]
        if negative:
            p = negative[0]
            raise ValueError(
                f"kernel {kernel!r} has the power-series coefficient c_{p} = {float(exact[p]):.6g} < 0 in q={q}: "
                "random Maclaurin features need every c_p >= 0; use RandomGegenbauerFeatures"
            )
        c = np.array([float(x) for x in exact])
        if degree is not None and degree < c.size - 1:
            return c[: degree + 1], float(math.fsum(c[degree + 1 :]))
        return c, 0.0
    if degree is not None:
        return found[0], found[1]
    terms = 17
    scale = abs(_finite_phi_at_one(kernel, q))
    while True:
        c, remainder, _ = found
        tail = remainder + np.concatenate([np.cumsum(c[::-1])[::-1][1:], [0.0]])  # bound after stopping at p
        below = np.nonzero(tail <= rtol * scale)[0]
        if below.size:
            P = int(below[0])
            return c[: P + 1], float(tail[P])
        if terms > MAX_DEGREE:
            warnings.warn(
                f"{kernel!r}: the power series is still {remainder:.3g} short of phi(1) after {terms} terms",
                SpectrumAccuracyWarning,
                stacklevel=3,
            )
            return c, float(remainder)
        terms *= 2
        found = power_series(kernel, terms)


_DISTRIBUTIONS = ("rademacher", "gaussian")


class RandomMaclaurinFeatures:
    r"""Random Maclaurin features (Kar & Karnick 2012) of a kernel whose profile has non-negative power-series
    coefficients.

    For :math:`\varphi(t) = \sum_p c_p t^p`, :math:`c_p \ge 0`, truncated at the power P: each of the m features
    draws a power p with probability :math:`c_p / S` (:math:`S = \sum_{p \le P} c_p`) and p independent vectors
    :math:`w_i` with :math:`E[w w^\top] = I`, and is :math:`\sqrt{S/m} \prod_{i \le p}\langle w_i, x\rangle`. Then
    :math:`E[\Phi(x)^\top\Phi(y)] = \sum_{p \le P} c_p \langle x, y\rangle^p`. The powers are drawn proportionally to
    the coefficients (the paper draws them with probability :math:`2^{-(p+1)}` and weights them), so that every
    feature has the same weight :math:`\sqrt{S/m}`.

    Parameters
    ----------
    kernel : DotProductKernel or str
        A kernel with a known non-negative power series (:func:`~dotkernels.power_series`: exponential,
        Gaussian, polynomial with c >= 0, monomial, inverse multiquadric, arc-cosine, the network kernels, their
        sums, products and compositions) or a polynomial Legendre series whose monomial coefficients in dimension q
        are all non-negative (checked exactly). A negative coefficient is a ValueError.
    q : int
        Dimension of the points, >= 2.
    n_features : int
        Number m of features, >= 1.
    degree : int, optional
        The largest power P. Default: the smallest P with truncation error at most ``rtol * phi(1)``.
    rtol : float
        Relative truncation error aimed at when ``degree`` is None.
    distribution : {"rademacher", "gaussian"}
        Law of the entries of :math:`w_i`: random signs (the paper's choice, smaller variance) or standard normal.
    rng : numpy.random.Generator, int, SeedSequence or None
        Source of the powers and vectors (SPEC 7).

    Attributes
    ----------
    coefficients : ndarray
        :math:`c_0, \dots, c_P`.
    degree : int
        The largest power P.
    counts : ndarray
        Number of features of each power (sums to ``n_features``).
    truncation_error : float
        Bound on :math:`\varphi(t) - \sum_{p \le P} c_p t^p` on [-1, 1] (the remainder is a series with
        non-negative coefficients: largest at t = 1).

    Notes
    -----
    Accuracy: each entry of :meth:`gram` is unbiased for :math:`\sum_{p \le P} c_p t^p` with variance
    :meth:`variance`, :math:`\frac1m\big(S \sum_p c_p \mu^p - (\sum_p c_p t^p)^2\big)`,
    :math:`\mu = E[\langle w, x\rangle^2 \langle w, y\rangle^2] = 1 + 2t^2 - 2\sum_i x_i^2 y_i^2` (Rademacher) or
    :math:`1 + 2t^2` (Gaussian). Memory :math:`O(n m)` for the features plus :math:`O(q \sum_p p\,
    \mathrm{counts}_p)` for the vectors.

    See Also
    --------
    RandomGegenbauerFeatures : features from the Gegenbauer expansion (any positive semi-definite kernel).
    power_series : the power series used here.

    References
    ----------
    .. [1] P. Kar and H. Karnick, "Random feature maps for dot product kernels", AISTATS 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels import ExponentialKernel, sample_uniform
    >>> kernel = ExponentialKernel(kappa=1.0)
    >>> features = RandomMaclaurinFeatures(kernel, q=3, n_features=20000, rng=0)
    >>> X = sample_uniform(4, q=3, rng=1)
    >>> error = np.abs(features.gram(X) - kernel.gram(X)).max()
    >>> bool(error < 6 * np.sqrt(features.variance(X).max()) + features.truncation_error)
    True
    """

    def __init__(
        self,
        kernel: DotProductKernel | str,
        *,
        q: int,
        n_features: int = 1000,
        degree: int | None = None,
        rtol: float = 1e-6,
        distribution: str = "rademacher",
        rng: Any = None,
    ):
        self.kernel = _as_kernel(kernel)
        self.q = check_dimension(q)
        self.n_features = check_integer(n_features, "n_features", minimum=1)
        rtol = check_real(rtol, "rtol", positive=True)
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(f"distribution must be 'rademacher' or 'gaussian', got {distribution!r}")
        self.distribution = distribution
        c, truncation = _maclaurin_series(self.kernel, self.q, degree, rtol)
        c = np.asarray(c, dtype=np.float64)
        total = math.fsum(c)
        if not total > 0:
            raise ValueError(
                f"kernel {self.kernel!r} has no positive power-series coefficient up to the power {c.size - 1}"
            )
        c.setflags(write=False)
        self.coefficients = c
        self.degree = c.size - 1
        self.truncation_error = float(truncation)
        self._total = total
        rng = check_rng(rng)
        self.counts = rng.multinomial(self.n_features, c / total)
        # vectors of the features of power p: an array (p, counts[p], q)
        self._vectors = {}
        for p in np.nonzero(self.counts)[0].tolist():
            shape = (p, int(self.counts[p]), self.q)
            if distribution == "rademacher":
                self._vectors[p] = rng.integers(0, 2, size=shape).astype(np.float64) * 2.0 - 1.0
            else:
                self._vectors[p] = rng.standard_normal(shape)

    def transform(self, X: Any, *, normalize: bool = False) -> Any:
        r"""The features :math:`\Phi(x_i)` of the rows of X, an ``(n, n_features)`` array (grouped by power).

        Parameters
        ----------
        X : array, shape (n, q)
            Points on the sphere, any array-API library (the result has its type, dtype and device).
        normalize : bool
            Project the rows onto the sphere first; otherwise rows that are not unit vectors raise ValueError.

        Returns
        -------
        array
            ``(n, n_features)`` features.

        See Also
        --------
        RandomMaclaurinFeatures.gram : the approximate kernel matrix.

        Examples
        --------
        >>> from dotkernels import sample_uniform
        >>> features = RandomMaclaurinFeatures("exponential:kappa=1", q=1000, n_features=64, rng=0)
        >>> features.transform(sample_uniform(10, q=1000, rng=1)).shape
        (10, 64)
        """
        X, xp = _check_features(X, self.q, normalize)
        device = array_api_compat.device(X)
        blocks = []
        for p, W in self._vectors.items():
            block = xp.ones((int(X.shape[0]), W.shape[1]), dtype=X.dtype, device=device)
            for i in range(p):
                Wi = xp.asarray(W[i], dtype=X.dtype, device=device)
                block = block * xp.matmul(X, xp.matrix_transpose(Wi))
            blocks.append(block)
        return xp.concat(blocks, axis=1) * math.sqrt(self._total / self.n_features)

    def gram(self, X: Any, Y: Any = None, *, normalize: bool = False) -> Any:
        r"""The approximate kernel matrix :math:`\Phi(X)\Phi(Y)^\top`, unbiased for the truncated power series.

        Parameters
        ----------
        X : array, shape (n, q)
            Points on the sphere.
        Y : array, shape (n', q), optional
            Points of the same library; default X.
        normalize : bool
            Project the rows onto the sphere first.

        Returns
        -------
        array
            ``(n, n')``, entry (i, j) with expectation :math:`\sum_{p \le P} c_p \langle x_i, y_j\rangle^p` and the
            variance of :meth:`variance`.

        See Also
        --------
        RandomMaclaurinFeatures.variance : the variance of each entry.

        Examples
        --------
        >>> from dotkernels import sample_uniform
        >>> features = RandomMaclaurinFeatures("polynomial:p=2,c=1", q=5, n_features=100, rng=0)
        >>> features.gram(sample_uniform(3, q=5, rng=1)).shape
        (3, 3)
        """
        FX = self.transform(X, normalize=normalize)
        FY = FX if Y is None else self.transform(Y, normalize=normalize)
        xp = array_namespace(FX, FY)
        return xp.matmul(FX, xp.matrix_transpose(FY))

    def variance(self, X: Any, Y: Any = None, *, normalize: bool = False) -> np.ndarray:
        r"""Variance of each entry of :meth:`gram`, in closed form.

        .. math::

            \operatorname{Var}[\Phi(x)^\top\Phi(y)] = \frac{1}{m}\Big(S \sum_{p \le P} c_p\, \mu^p -
            \Big(\sum_{p \le P} c_p t^p\Big)^2\Big), \qquad t = \langle x, y\rangle,

        with :math:`\mu = E[\langle w, x\rangle^2\langle w, y\rangle^2] = 1 + 2t^2 - 2\sum_i x_i^2 y_i^2` for
        Rademacher vectors and :math:`1 + 2t^2` for Gaussian ones (fourth moments of independent entries).

        Parameters
        ----------
        X : array, shape (n, q)
            Points on the sphere (copied to the host).
        Y : array, shape (n', q), optional
            Default X.
        normalize : bool
            Project the rows onto the sphere first.

        Returns
        -------
        ndarray
            ``(n, n')`` float64 variances.

        Notes
        -----
        Accuracy: exact formula, evaluated in float64 (relative error a few eps times :math:`\sum_p c_p \mu^p /
        \mathrm{Var}`).

        See Also
        --------
        RandomMaclaurinFeatures.gram : the estimate whose variance this is.

        Examples
        --------
        >>> import numpy as np
        >>> features = RandomMaclaurinFeatures("monomial:p=1", q=2, n_features=1, distribution="gaussian", rng=0)
        >>> features.variance(np.array([[1.0, 0.0]])).tolist()  # <w, x>^2 with w ~ N(0, I): Var = 2
        [[2.0]]
        """
        Xh = to_numpy(_check_features(X, self.q, normalize)[0]).astype(np.float64)
        Yh = Xh if Y is None else to_numpy(_check_features(Y, self.q, normalize, "Y")[0]).astype(np.float64)
        t = np.clip(Xh @ Yh.T, -1.0, 1.0)
        mu = 1.0 + 2.0 * t * t
        if self.distribution == "rademacher":
            mu -= 2.0 * (Xh * Xh) @ (Yh * Yh).T
        c = self.coefficients
        second = self._total * np.polynomial.polynomial.polyval(mu, c)
        mean = np.polynomial.polynomial.polyval(t, c)
        return np.clip(second - mean * mean, 0.0, None) / self.n_features

    def __repr__(self) -> str:
        return (
            f"RandomMaclaurinFeatures({self.kernel!r}, q={self.q}, n_features={self.n_features}, "
            f"degree={self.degree}, distribution={self.distribution!r})"
        )


# =================================================================================================================
# linear-time MMD to the uniform law


class FeatureMMDResult(NamedTuple):
    r"""Result of :func:`mmd2_uniform_features`.

    Parameters
    ----------
    estimate : float
        The estimate of the squared MMD to the uniform law.
    standard_error : float
        Its standard deviation over the random directions given the data (estimated from the m directions).
    truncation_error : float
        Bound on the bias: the difference between the expectation of ``estimate`` and the exact statistic of
        :func:`~dotkernels.mmd2_uniform` is at most this in absolute value.
    degree : int
        The truncation degree L.
    n_directions : int
        The number m of directions.

    See Also
    --------
    mmd2_uniform_features : the function that returns it.

    Examples
    --------
    >>> result = FeatureMMDResult(0.25, 0.01, 1e-7, 9, 256)
    >>> result.estimate, result.n_directions
    (0.25, 256)
    """

    estimate: float
    standard_error: float
    truncation_error: float
    degree: int
    n_directions: int


def mmd2_uniform_features(
    Z: Any,
    kernel: DotProductKernel | str,
    *,
    estimator: str = "v",
    n_directions: int = 256,
    degree: int | None = None,
    rtol: float = 1e-6,
    block_size: int | None = None,
    normalize: bool = False,
    rng: Any = None,
) -> FeatureMMDResult:
    r"""Linear-time estimate of the squared MMD between the rows of Z and the uniform law on :math:`S^{q-1}`.

    With the random Gegenbauer features of :math:`\varphi - a_0` (degrees 1..L, m directions :math:`u_j`,
    :class:`RandomGegenbauerFeatures`), each direction gives the U-statistic

    .. math::

        g_j = \sum_{l=1}^{L} a_l N(q,l) \frac{(\sum_i P_{l,q}(\langle z_i, u_j\rangle))^2 -
        \sum_i P_{l,q}(\langle z_i, u_j\rangle)^2}{n(n-1)}, \qquad
        E_u[g_j \mid Z] = \frac{1}{n(n-1)} \sum_{i \ne k} \big(\varphi_L(t_{ik}) - a_0\big),

    the exact :math:`\mathrm{MMD}_U^2` of the truncated kernel. The estimate is :math:`\bar g` (``"u"``) or
    :math:`((n-1)\bar g + \varphi(1) - a_0)/n` (``"v"``, the diagonal added exactly), in :math:`O(n m (q + L))`
    time and :math:`O(\text{block\_size} \cdot m L)` memory: n = 10^6 points take seconds where the n x n route of
    :func:`~dotkernels.mmd2_uniform` needs :math:`10^{12}` kernel values.

    Parameters
    ----------
    Z : array, shape (n, q)
        Points on the sphere (n >= 2), any array-API library; processed block by block on the host in float64.
    kernel : DotProductKernel or str
        A positive semi-definite kernel (every :math:`a_l \ge 0`).
    estimator : {"v", "u"}
        The statistic estimated: V (diagonal included) or U, as in :func:`~dotkernels.mmd2_uniform`.
    n_directions : int
        Number m of random directions, >= 2.
    degree : int, optional
        Truncation degree L (default as in :class:`RandomGegenbauerFeatures`).
    rtol : float
        Relative truncation error aimed at when ``degree`` is None.
    block_size : int, optional
        Rows per block (default: about 32 MB of Gegenbauer values per block).
    normalize : bool
        Project the rows onto the sphere first; otherwise non-unit rows raise ValueError.
    rng : numpy.random.Generator, int, SeedSequence or None
        Source of the directions (SPEC 7).

    Returns
    -------
    FeatureMMDResult
        ``(estimate, standard_error, truncation_error, degree, n_directions)``.

    Notes
    -----
    Accuracy: unbiased over the directions for the statistic of the truncated kernel, whose difference from the
    exact statistic is at most ``truncation_error`` (:math:`\sum_{l > L} a_l`); random error ``standard_error``,
    the sample standard deviation of the :math:`g_j` over :math:`\sqrt m` (times :math:`(n-1)/n` for ``"v"``),
    a consistent estimate of the standard deviation given Z. Under the uniform law the statistic itself
    fluctuates by :math:`\sqrt{2 \sum_{l \ge 1} a_l^2 / N(q,l) / (n(n-1))}` (U) around 0.

    See Also
    --------
    mmd2_uniform : the exact statistic, :math:`O(n^2)`.
    RandomGegenbauerFeatures : the features used.

    References
    ----------
    .. [1] A. Gretton, K. M. Borgwardt, M. J. Rasch, B. Schölkopf and A. Smola, "A kernel two-sample test",
       JMLR 13, 2012.
    .. [2] A. Rahimi and B. Recht, "Random features for large-scale kernel machines", NeurIPS 2007.

    Examples
    --------
    >>> from dotkernels import GaussianKernel, mmd2_uniform, sample_vmf
    >>> Z = sample_vmf(2000, mu=[0.0, 0.0, 1.0], kappa=2.0, rng=0)
    >>> result = mmd2_uniform_features(Z, GaussianKernel(gamma=1.0), n_directions=512, rng=1)
    >>> exact = mmd2_uniform(Z, GaussianKernel(gamma=1.0))
    >>> bool(abs(result.estimate - exact) < 5 * result.standard_error + result.truncation_error)
    True
    """
    kernel = _as_kernel(kernel)
    estimator = check_estimator(estimator)
    m = check_integer(n_directions, "n_directions", minimum=2)
    block_size = check_block_size(block_size)
    Z, _ = as_array(Z, "Z")
    if Z.ndim != 2:
        raise ValueError(f"Z must be a 2-d array of points (n, q), got shape {tuple(Z.shape)}")
    n, q = int(Z.shape[0]), int(Z.shape[1])
    if n < 2:
        raise ValueError(f"Z must contain at least 2 points, got {n}")
    q = check_dimension(q, "the number of columns of Z")
    features = RandomGegenbauerFeatures(kernel, q=q, n_directions=m, degree=degree, rtol=rtol, rng=rng)
    keep = features.degrees > 0  # phi - a_0: the constant adds a_0 exactly
    degrees, weights = features.degrees[keep], features.weights[keep]
    L, U = features.degree, features.directions
    block = block_size or max(1, (1 << 22) // (m * (L + 1)))
    column_sum = np.zeros((degrees.size, m))
    square_sum = np.zeros((degrees.size, m))
    for start in range(0, n, block):
        Zb, _ = check_points(to_numpy(Z[start : start + block, :]), "Z", normalize=normalize)
        P = legendre_all(L, np.clip(Zb @ U.T, -1.0, 1.0), q=q, validate=False)[degrees]  # (degrees, rows, m)
        column_sum += P.sum(axis=1)
        square_sum += np.einsum("lij,lij->lj", P, P)
    g = (weights**2) @ (column_sum * column_sum - square_sum) / (n * (n - 1.0))
    u = float(g.mean())
    se = float(g.std(ddof=1) / math.sqrt(m))
    tail = features.truncation_error
    if estimator == "u":
        return FeatureMMDResult(u, se, tail, features.degree, m)
    diagonal = kernel.phi_at_one(q=q) - kernel.uniform_mean_embedding(q=q)
    return FeatureMMDResult(((n - 1) * u + diagonal) / n, se * (n - 1) / n, tail * (n - 1) / n, features.degree, m)
