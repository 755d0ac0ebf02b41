r"""Mean embeddings and squared maximum mean discrepancies (MMD) on the sphere :math:`S^{q-1}`.

For a dot-product kernel :math:`k(x, y) = \varphi(\langle x, y\rangle) = \sum_l a_l P_{l,q}(\langle x, y\rangle)`
the mean embedding of a law P is :math:`\mu_P(y) = E_{x \sim P}\, \varphi(\langle x, y\rangle)` and

.. math::

    \mathrm{MMD}^2(P, Q) = E_{P \times P} \varphi + E_{Q \times Q} \varphi - 2 E_{P \times Q} \varphi.

Closed forms used here (the math page of the documentation, ``docs/math.md``):

- uniform law :math:`\sigma`: :math:`\mu_\sigma \equiv a_0` and :math:`\|\mu_\sigma\|^2 = a_0`, so
  :math:`\mathrm{MMD}^2(P, \sigma) = E_{P \times P}\varphi - a_0 = \sum_{l \ge 1} (a_l/N(q,l)) \sum_m (E_P Y_{lm})^2`;
- von Mises–Fisher(mu, kappa): :math:`\mu_{vMF}(y) = \sum_l a_l \rho_l(\kappa) P_{l,q}(\langle y, \mu\rangle)`,
  :math:`\rho_l = I_{l+q/2-1}(\kappa) / I_{q/2-1}(\kappa) = E_{vMF}[P_{l,q}(\mu^T x)]`, and
  :math:`\|\mu_{vMF}\|^2 = \sum_l a_l \rho_l^2`.

Estimators of :math:`E_{P\times P}\varphi` from a sample :math:`z_1, \dots, z_n`, with
:math:`t_{ij} = \langle z_i, z_j\rangle`: the V-statistic :math:`n^{-2}\sum_{i,j} \varphi(t_{ij})` (diagonal
included, SFRIK's choice) and the U-statistic
:math:`(n(n-1))^{-1}\sum_{i \ne j} \varphi(t_{ij})` (unbiased). They are tied by
:math:`n\,\mathrm{MMD}_V^2 = (n-1)\,\mathrm{MMD}_U^2 + \varphi(1) - a_0`.

Every function accepts any array-API array (numpy, torch, cupy, jax, array-api-strict) and returns the backend's
arrays on the input's device. The input is promoted (exactly) to float64 before any arithmetic, whatever its dtype:
MMD^2 can be ~1e-5 while its terms are O(1), which float32 cannot resolve. Under torch autograd the results are
differentiable with respect to the points (the gradient flows back in the input's dtype).

The diagonal terms are put in analytically: :math:`t_{ii} = 1` exactly (the rows are on the sphere up to the
validation tolerance), so every method gives the same value and the V–U relation holds to rounding. Kernels with a
corner at t = 1 (arc-cosine, distance) never meet their infinite derivative: their profile is evaluated on
:math:`[-1+\epsilon, 1-\epsilon]`, and inner products within :math:`\epsilon` of :math:`\pm 1` (duplicate or
antipodal points) take the exact value :math:`\varphi(\pm 1)` with zero gradient.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import array_api_compat
import numpy as np

from ._array_api import as_array, is_numpy, to_numpy
from ._validate import check_block_size, check_degree, check_dimension, check_estimator, check_points, check_real
from .gegenbauer import legendre_series
from .kernels import DotProductKernel, SpectrumAccuracyWarning, parse_kernel
from .special import log_iv

__all__ = [
    "mean_embedding",
    "mmd2",
    "mmd2_uniform",
    "mmd2_vmf",
    "uniform_mean_embedding",
    "vmf_mean_embedding",
    "vmf_mean_embedding_norm2",
]

#: bytes of one (block x n) float64 slab in the blocked evaluation (the default block size targets this)
BLOCK_BYTES = 64 * 2**20
#: "auto" uses a single n x n Gram matrix while it takes at most this many bytes (float64)
GRAM_BYTES = 512 * 2**20
#: largest degree tried by the automatic truncation of the vMF series
_VMF_MAX_DEGREE = 1 << 15

_METHODS = ("auto", "gram", "moments", "blocked")


# =================================================================================================================
# validation and backend helpers


def _kernel(kernel: Any) -> DotProductKernel:
    return parse_kernel(kernel)


def _method(method: Any) -> str:
    if not isinstance(method, str) or method.lower() not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _METHODS))}; got {method!r}")
    return method.lower()


def _same_namespace(xp: Any, other: Any, names: str) -> None:
    if xp is not other:
        raise TypeError(f"{names} must be arrays of the same library, got {xp.__name__} and {other.__name__}")


def _scalar_out(value: Any, xp: Any) -> Any:
    """A NumPy scalar (np.float64) on numpy, the backend's 0-d array elsewhere."""
    return np.float64(value) if is_numpy(xp) else value


def _profile(G: Any, kernel: DotProductKernel, q: int, xp: Any, ends: tuple[float, float] | None) -> Any:
    r""":math:`\varphi(G)` for a block of inner products, safe for autograd.

    Inner products are clipped to [-1, 1]. For kernels with a corner (``ends = (phi(-1), phi(1))``) the profile
    is evaluated on the open interval :math:`[-1 + \epsilon, 1 - \epsilon]` (finite derivative) and the entries
    within :math:`\epsilon` of :math:`\pm 1` (duplicate or antipodal points) are then replaced by the exact
    :math:`\varphi(\pm 1)` with zero gradient, so values are exact and gradients finite.
    """
    if ends is None:
        return kernel.profile(xp.clip(G, -1.0, 1.0), q=q, validate=False)
    eps = float(np.finfo(np.float64).eps)
    K = kernel.profile(xp.clip(G, -1.0 + eps, 1.0 - eps), q=q, validate=False)
    top = xp.astype(G >= 1.0 - eps, K.dtype)
    bottom = xp.astype(G <= -1.0 + eps, K.dtype)
    return K + top * (ends[1] - K) + bottom * (ends[0] - K)


def _ends(kernel: DotProductKernel, q: int) -> tuple[float, float] | None:
    if not kernel.has_corner:
        return None
    values = to_numpy(kernel.profile(np.array([-1.0, 1.0]), q=q, validate=False))
    return float(values[0]), float(values[1])


def _default_block(n_cols: int) -> int:
    return max(1, BLOCK_BYTES // (8 * max(n_cols, 1)))


def _centred_pair_sum(
    X: Any, Y: Any, kernel: DotProductKernel, q: int, xp: Any, *, centre: float, same: bool, block: int
) -> Any:
    r""":math:`\sum_{i,j} (\varphi(\langle x_i, y_j\rangle) - c)` over rows of X in blocks, without i = j when ``same``.

    Extra memory: a few (block x m) float64 arrays. The diagonal is removed by subtracting the block's own diagonal
    entries (``take`` on the flattened block), so its gradient is exactly zero.
    """
    n, m = int(X.shape[0]), int(Y.shape[0])
    ends = _ends(kernel, q)
    Yt = xp.matrix_transpose(Y)
    device = array_api_compat.device(X)
    total = None
    for start in range(0, n, block):
        stop = min(n, start + block)
        K = _profile(xp.matmul(X[start:stop, :], Yt), kernel, q, xp, ends)
        if centre != 0.0:
            K = K - centre
        part = xp.sum(K)
        if same:
            idx = xp.arange(stop - start, device=device) * (m + 1) + start
            part = part - xp.sum(xp.take(xp.reshape(K, (-1,)), idx, axis=0))
        total = part if total is None else total + part
    return total


# =================================================================================================================
# MMD to the uniform distribution


def _choose_method(kernel: DotProductKernel, n: int, q: int) -> str:
    degree = kernel.degree
    if degree is not None and degree <= 2 and q <= n and 8 * q * q <= GRAM_BYTES:
        return "moments"
    if 8 * n * n <= GRAM_BYTES:
        return "gram"
    return "blocked"


def _moments_v(Z: Any, xp: Any, a1: float, a2: float, q: int) -> Any:
    r""":math:`n^{-2}\sum_{ij} (a_1 t_{ij} + a_2 P_{2,q}(t_{ij}))` with :math:`t_{ii} := 1`, in O(n q^2).

    :math:`n^{-2}\sum_{ij} t_{ij} = \|\bar z\|^2 + n^{-2}\sum_i (1 - \|z_i\|^2)` and
    :math:`n^{-2}\sum_{ij} P_2(t_{ij}) = \frac{q}{q-1}\big(\|S - I/q\|_F^2 + \tfrac{2}{q}(\operatorname{tr} S - 1)
    + n^{-2}\sum_i (1 - \|z_i\|^4)\big)` with :math:`S = Z^T Z / n`; the correction terms put the exact diagonal
    in place of the computed one and vanish for exactly unit rows.
    """
    n = int(Z.shape[0])
    r2 = xp.sum(Z * Z, axis=1)
    out = None
    if a1 != 0.0:
        s = xp.sum(Z, axis=0)
        m1 = (xp.sum(s * s) + xp.sum(1.0 - r2)) / (n * n)
        out = a1 * m1
    if a2 != 0.0:
        eye = xp.eye(q, dtype=Z.dtype, device=array_api_compat.device(Z))
        C = xp.matmul(xp.matrix_transpose(Z), Z) / n - eye / q
        trace_minus_one = -xp.sum(1.0 - r2) / n
        m2 = (q / (q - 1)) * (xp.sum(C * C) + (2.0 / q) * trace_minus_one + xp.sum(1.0 - r2 * r2) / (n * n))
        out = a2 * m2 if out is None else out + a2 * m2
    if out is None:
        out = xp.sum(Z[0, :] * 0.0)  # a constant kernel: MMD = 0, keep the graph and device
    return out


def mmd2_uniform(
    Z: Any,
    kernel: DotProductKernel | str,
    *,
    estimator: str = "v",
    method: str = "auto",
    block_size: int | None = None,
    normalize: bool = False,
) -> Any:
    r"""Squared MMD between the empirical law of the rows of Z and the uniform distribution on :math:`S^{q-1}`.

    .. math::

        \mathrm{MMD}_V^2 = \frac{1}{n^2}\sum_{i,j} \varphi(t_{ij}) - a_0, \qquad
        \mathrm{MMD}_U^2 = \frac{1}{n(n-1)}\sum_{i \ne j} \varphi(t_{ij}) - a_0,

    :math:`t_{ij} = \langle z_i, z_j\rangle`, :math:`t_{ii} = 1`, :math:`a_0 = ` ``kernel.uniform_mean_embedding(q=q)``.
    Under the uniform law :math:`E[n\,\mathrm{MMD}_V^2] = \sum_{l \ge 1} a_l` and :math:`E[\mathrm{MMD}_U^2] = 0`.

    Parameters
    ----------
    Z : array, shape (n, q)
        Points on the sphere (n >= 2), any array-API library; float32 input is promoted to float64.
    kernel : DotProductKernel or str
        The kernel (a string is passed to :func:`parse_kernel`, e.g. ``"legendre:1,40"``).
    estimator : {"v", "u"}
        V-statistic (diagonal included) or U-statistic (unbiased).
    method : {"auto", "gram", "moments", "blocked"}
        - ``"gram"``: one n x n matrix, O(n^2 q) time, O(n^2) memory;
        - ``"blocked"``: the same sum over blocks of ``block_size`` rows, O(block_size * n) extra memory
          (default block: ``block_size * n * 8`` bytes ~ 64 MB);
        - ``"moments"``: kernels of degree <= 2 only,
          :math:`\varphi = a_0 + a_1 t + a_2 P_{2,q}(t)` and
          :math:`\mathrm{MMD}_V^2 = a_1 \|\bar z\|^2 + a_2 \frac{q}{q-1} \|Z^T Z/n - I/q\|_F^2` (plus exact
          diagonal corrections), O(n q^2) time and O(q^2) memory: the right choice when q << n;
        - ``"auto"``: moments when the degree is <= 2 and q <= n, else gram when the n x n matrix takes at most
          ``GRAM_BYTES`` (512 MB), else blocked.
    block_size : int, optional
        Rows per block for ``"blocked"``.
    normalize : bool
        Project the rows onto the sphere first; otherwise rows whose norm differs from 1 by more than
        ``10 sqrt(eps)`` of their dtype raise ValueError.

    Returns
    -------
    numpy.float64 or array
        A NumPy scalar on numpy input; a 0-d float64 array of Z's library on Z's device otherwise
        (differentiable under torch autograd).

    See Also
    --------
    mmd2 : the squared MMD between two samples.
    dotkernels.uniformity_test : the uniformity tests built on this statistic.

    Accuracy
    --------
    The kernel values are summed in float64 whatever the input dtype: absolute error a few times eps * max|phi|
    (~1e-15 for kernels of size 1; tested against mpmath at 30 digits). All methods agree to that accuracy.
    Domain: n >= 2 unit rows, q >= 2.

    References
    ----------
    .. [1] A. Gretton, K. M. Borgwardt, M. J. Rasch, B. Scholkopf and A. Smola, "A kernel two-sample test", Journal
       of Machine Learning Research 13, 723-773 (2012).

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels import LegendreSeriesKernel
    >>> from dotkernels.sampling import sample_uniform
    >>> Z = sample_uniform(500, q=8, rng=0)
    >>> k = LegendreSeriesKernel([0.0, 1.0, 40.0])
    >>> v_gram = mmd2_uniform(Z, k, method="gram")
    >>> bool(np.isclose(v_gram, mmd2_uniform(Z, k, method="moments"), rtol=1e-12))
    True
    >>> u = mmd2_uniform(Z, k, estimator="u")
    >>> bool(np.isclose(500 * v_gram, 499 * u + 41.0))  # n V = (n - 1) U + phi(1) - a_0
    True
    """
    kernel = _kernel(kernel)
    estimator = check_estimator(estimator)
    method = _method(method)
    block_size = check_block_size(block_size)
    Z, xp = check_points(Z, "Z", normalize=bool(normalize), min_rows=2)
    n, q = int(Z.shape[0]), int(Z.shape[1])
    if method == "auto":
        method = _choose_method(kernel, n, q)
    if method == "moments":
        degree = kernel.degree
        if degree is None or degree > 2:
            raise ValueError(
                f"method='moments' needs a polynomial kernel of degree <= 2, got {kernel!r} with degree {degree}; "
                "use method='gram', 'blocked' or 'auto'"
            )
        _, a1, a2 = (float(v) for v in kernel.spectrum(2, q=q))
        v = _moments_v(Z, xp, a1, a2, q)
        if estimator == "v":
            return _scalar_out(v, xp)
        return _scalar_out((n * v - (a1 + a2)) / (n - 1), xp)
    a0 = kernel.uniform_mean_embedding(q=q)
    block = n if method == "gram" else (block_size or _default_block(n))
    off = _centred_pair_sum(Z, Z, kernel, q, xp, centre=a0, same=True, block=block)
    if estimator == "v":
        value = (off + n * (kernel.phi_at_one(q=q) - a0)) / (n * n)
    else:
        value = off / (n * (n - 1))
    return _scalar_out(value, xp)


# =================================================================================================================
# two-sample MMD


def mmd2(
    X: Any,
    Y: Any,
    kernel: DotProductKernel | str,
    *,
    estimator: str = "v",
    block_size: int | None = None,
    normalize: bool = False,
) -> Any:
    r"""Squared MMD between the empirical laws of two samples on the sphere.

    .. math::

        \mathrm{MMD}_V^2 = \frac{1}{n^2}\sum_{i,i'} \varphi(\langle x_i, x_{i'}\rangle)
        + \frac{1}{m^2}\sum_{j,j'} \varphi(\langle y_j, y_{j'}\rangle)
        - \frac{2}{nm}\sum_{i,j} \varphi(\langle x_i, y_j\rangle);

    the U-statistic replaces the within-sample means by means over :math:`i \ne i'` and :math:`j \ne j'` (unbiased
    for :math:`\mathrm{MMD}^2(P, Q)`); the cross term is the full mean in both.

    Parameters
    ----------
    X, Y : arrays, shapes (n, q) and (m, q)
        Points on the sphere from the same array library, n, m >= 2.
    kernel : DotProductKernel or str
    estimator : {"v", "u"}
    block_size : int, optional
        Rows per block (default: blocks of ~64 MB, a single block when the matrices are small).
    normalize : bool
        Project the rows onto the sphere first.

    Returns
    -------
    numpy.float64 or array
        A NumPy scalar on numpy input; a 0-d float64 array of the inputs' library and device otherwise.

    See Also
    --------
    mmd2_uniform : the squared MMD to the uniform law.

    Accuracy
    --------
    As :func:`mmd2_uniform`: float64 sums, absolute error a few times eps * max|phi|. Domain: n, m >= 2 unit
    rows of the same q.

    References
    ----------
    .. [1] A. Gretton, K. M. Borgwardt, M. J. Rasch, B. Scholkopf and A. Smola, "A kernel two-sample test", Journal
       of Machine Learning Research 13, 723-773 (2012).

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels import GaussianKernel
    >>> from dotkernels.sampling import sample_uniform, sample_vmf
    >>> X = sample_uniform(300, q=3, rng=0)
    >>> Y = sample_vmf(300, mu=np.array([0.0, 0.0, 1.0]), kappa=5.0, rng=1)
    >>> X2 = sample_uniform(300, q=3, rng=2)
    >>> bool(mmd2(X, Y, GaussianKernel(gamma=1.0)) > mmd2(X, X2, GaussianKernel(gamma=1.0)))
    True
    """
    kernel = _kernel(kernel)
    estimator = check_estimator(estimator)
    block_size = check_block_size(block_size)
    X, xp = check_points(X, "X", normalize=bool(normalize), min_rows=2)
    Y, yp = check_points(Y, "Y", normalize=bool(normalize), min_rows=2)
    _same_namespace(xp, yp, "X and Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same dimension q, got {X.shape[1]} and {Y.shape[1]}")
    n, m, q = int(X.shape[0]), int(Y.shape[0]), int(X.shape[1])
    centre = float(to_numpy(kernel.profile(np.zeros(1), q=q, validate=False))[0])  # any constant cancels
    phi1 = kernel.phi_at_one(q=q)

    def within(A: Any, k: int) -> Any:
        off = _centred_pair_sum(A, A, kernel, q, xp, centre=centre, same=True, block=block_size or _default_block(k))
        if estimator == "v":
            return (off + k * (phi1 - centre)) / (k * k)
        return off / (k * (k - 1))

    cross = _centred_pair_sum(X, Y, kernel, q, xp, centre=centre, same=False, block=block_size or _default_block(m))
    value = within(X, n) + within(Y, m) - 2.0 * cross / (n * m)
    return _scalar_out(value, xp)


# =================================================================================================================
# mean embeddings


def _querycheck_points(at: Any, q: int | None, *, normalize: bool, source: str = "the sample") -> tuple[Any, Any, bool]:
    """Validate evaluation points: (m, q) or a single (q,) point; returns (float64 2-d array, xp, was_1d)."""
    at_arr, xp = as_array(at, "at")
    single = at_arr.ndim == 1
    if single:
        at_arr = xp.reshape(at_arr, (1, -1))
    at_arr, xp = check_points(at_arr, "at", normalize=normalize, min_rows=0)
    if q is not None and at_arr.shape[1] != q:
        raise ValueError(f"at must have the dimension q = {q} of {source}, got {at_arr.shape[1]} columns")
    return at_arr, xp, single


def uniform_mean_embedding(kernel: DotProductKernel | str, *, q: int) -> float:
    r"""Mean embedding of the uniform distribution on :math:`S^{q-1}`: the constant :math:`a_0 = E_{\nu_q}\varphi`.

    It is also :math:`\|\mu_\sigma\|^2` (the RKHS norm squared).

    Parameters
    ----------
    kernel : DotProductKernel or str
        The kernel (or a string of :func:`~dotkernels.kernels.parse_kernel`).
    q : int
        Dimension of :math:`\mathbb{R}^q`, >= 2 (keyword-only).

    Returns
    -------
    float
        :math:`a_0`.

    See Also
    --------
    mean_embedding : the empirical mean embedding of a sample.
    DotProductKernel.uniform_mean_embedding : the same on the kernel.

    Accuracy
    --------
    That of the kernel's ``uniform_mean_embedding`` (closed forms, ~1e-15 relative). Domain: q >= 2.

    Examples
    --------
    >>> from dotkernels import MonomialKernel
    >>> uniform_mean_embedding(MonomialKernel(2), q=4)  # E[t^2] = 1/q
    0.25
    """
    return float(_kernel(kernel).uniform_mean_embedding(q=check_dimension(q)))


def mean_embedding(
    Z: Any,
    kernel: DotProductKernel | str,
    *,
    at: Any,
    normalize: bool = False,
    block_size: int | None = None,
) -> Any:
    r"""Empirical mean embedding :math:`\hat\mu(y) = \frac{1}{n}\sum_i \varphi(\langle z_i, y\rangle)` at the rows
    y of ``at``.

    Parameters
    ----------
    Z : array, shape (n, q)
        Sample on the sphere (n >= 1).
    kernel : DotProductKernel or str
    at : array, shape (m, q) or (q,)
        Evaluation points on the sphere, same library as Z.
    normalize : bool
        Project the rows of Z and ``at`` onto the sphere first.
    block_size : int, optional
        Rows of ``at`` per block (default ~64 MB blocks).

    Returns
    -------
    array
        float64, shape (m,) (a NumPy scalar or 0-d array for a single point), Z's library and device.
        Kernels with a corner are handled as in :func:`mmd2_uniform` (exact values at coinciding points, finite
        gradients).

    See Also
    --------
    uniform_mean_embedding : the constant embedding of the uniform law.
    vmf_mean_embedding : the embedding of a von Mises-Fisher law.

    Accuracy
    --------
    float64 means: absolute error a few times eps * max|phi|. Domain: n >= 1 unit rows, evaluation points on the
    same sphere.

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels import MonomialKernel
    >>> Z = np.eye(3)
    >>> mean_embedding(Z, MonomialKernel(2), at=np.array([1.0, 0.0, 0.0]))  # (1 + 0 + 0) / 3
    np.float64(0.3333333333333333)
    """
    kernel = _kernel(kernel)
    block_size = check_block_size(block_size)
    Z, xp = check_points(Z, "Z", normalize=bool(normalize), min_rows=1)
    q, n = int(Z.shape[1]), int(Z.shape[0])
    A, ap, single = _querycheck_points(at, q, normalize=bool(normalize))
    _same_namespace(xp, ap, "Z and at")
    ends = _ends(kernel, q)
    block = block_size or _default_block(n)
    parts = []
    Zt = xp.matrix_transpose(Z)
    m = int(A.shape[0])
    for start in range(0, m, block):
        K = _profile(xp.matmul(A[start : min(m, start + block), :], Zt), kernel, q, xp, ends)
        parts.append(xp.mean(K, axis=1))
    if not parts:
        out = xp.zeros((0,), dtype=xp.float64, device=array_api_compat.device(Z))
    else:
        out = xp.concat(parts) if len(parts) > 1 else parts[0]
    return _scalar_out(out[0], xp) if single else out


# =================================================================================================================
# von Mises–Fisher


def _tolerance(tol: Any) -> float:
    tol = check_real(tol, "tol")
    if not 0 < tol < 1:
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    return tol


def _log_rho(q: int, kappa: float, L: int) -> np.ndarray:
    r"""log rho_l(kappa) = log I_{l+q/2-1}(kappa) - log I_{q/2-1}(kappa), l = 0..L (rho_0 = 1; kappa = 0: rho_l = 0)."""
    degrees = np.arange(L + 1, dtype=np.float64)
    if kappa == 0.0:
        return np.where(degrees == 0, 0.0, -np.inf)
    nu = 0.5 * q - 1.0
    out = log_iv(degrees + nu, kappa) - log_iv(nu, kappa)
    out[0] = 0.0
    return out


def _vmf_series(
    kernel: DotProductKernel, q: int, kappa: float, degree: int | None, tol: float, power: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""(a_l, rho_l) for l = 0..L, L such that the tail bound of sum a_l rho_l^power is below tol.

    The bound (see :func:`vmf_mean_embedding`): :math:`\rho_{L+1}^p |\varphi(1) - \sum_{l \le L} a_l|`, plus the
    rounding error of that difference, at most ``tol`` times :math:`\sum_{l \le L} |a_l| \rho_l^p`.
    """
    if degree is not None:
        degree = check_degree(degree)
        if degree > _VMF_MAX_DEGREE:
            raise ValueError(
                f"degree must be <= {_VMF_MAX_DEGREE} (the largest automatic truncation; the Legendre sums cost "
                f"O(degree) per point), got {degree}"
            )
    elif kernel.degree is not None:
        degree = kernel.degree
    if degree is not None:
        L = int(degree)
        return kernel.spectrum(L, q=q), np.exp(_log_rho(q, kappa, L))
    phi1 = kernel.phi_at_one(q=q)
    eps = float(np.finfo(np.float64).eps)
    L = 16
    while True:
        a = kernel.spectrum(L, q=q)
        rho = np.exp(_log_rho(q, kappa, L + 1))
        weight = rho**power
        # tail after degree l: rho_{l+1}^p * |phi(1) - sum_{k<=l} a_k| (+ the rounding error of that difference)
        tail_a = np.abs(phi1 - np.cumsum(a)) + 4.0 * eps * (abs(phi1) + np.cumsum(np.abs(a)))
        bound = weight[1:] * tail_a
        total = np.cumsum(np.abs(a) * weight[:-1])
        ok = np.nonzero(bound <= tol * np.maximum(total, np.finfo(np.float64).tiny))[0]
        if ok.size:
            stop = int(ok[0]) + 1
            return a[:stop], rho[:stop]
        if L >= _VMF_MAX_DEGREE:
            achieved = float(bound[-1] / max(float(total[-1]), np.finfo(np.float64).tiny))
            warnings.warn(
                f"vMF mean embedding of {kernel!r} (q={q}, kappa={kappa:g}): truncated at degree {L} "
                f"(the largest tried) with a relative tail bound of {achieved:.3g} > tol = {tol:g}; the result is "
                f"accurate to about {achieved:.2g} relative",
                SpectrumAccuracyWarning,
                stacklevel=3,
            )
            return a, rho[:-1]
        L *= 2


def _unit_direction(mu: Any, q: int | None) -> np.ndarray:
    try:
        mu = np.asarray(to_numpy(mu), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"mu must be a real 1-d unit vector, got {mu!r}") from exc
    if mu.ndim != 1 or mu.size < 2:
        raise ValueError(f"mu must be a 1-d unit vector of length q >= 2, got shape {mu.shape}")
    if q is not None and mu.size != q:
        raise ValueError(f"mu must have length q = {q}, got {mu.size}")
    if not np.all(np.isfinite(mu)):
        raise ValueError("mu contains NaN or inf")
    norm = float(np.linalg.norm(mu))
    if abs(norm - 1.0) > 1e-6:
        raise ValueError(f"mu must be a unit vector, got norm {norm:.6g}")
    return mu / norm


def vmf_mean_embedding(
    kernel: DotProductKernel | str,
    *,
    mu: Any,
    kappa: float,
    at: Any,
    degree: int | None = None,
    tol: float = 1e-14,
    normalize: bool = False,
) -> Any:
    r"""Mean embedding of the von Mises–Fisher law vMF(mu, kappa) at the rows y of ``at``.

    .. math::

        \mu_{vMF}(y) = E_{x \sim vMF}\, \varphi(\langle x, y\rangle)
        = \sum_{l \ge 0} a_l\, \rho_l(\kappa)\, P_{l,q}(\langle y, \mu\rangle), \qquad
        \rho_l(\kappa) = \frac{I_{l+q/2-1}(\kappa)}{I_{q/2-1}(\kappa)},

    (Funk–Hecke: :math:`E_{vMF} P_{l,q}(\langle x, y\rangle) = \rho_l P_{l,q}(\langle y, \mu\rangle)`), with
    :math:`\rho_l` from :func:`dotkernels.special.log_iv` in log space (finite at any q and kappa). kappa = 0 gives
    the constant :math:`a_0`.

    Truncation: for polynomial kernels the sum is exact; otherwise it stops at the first degree L with

    .. math::

        \sum_{l > L} |a_l| \rho_l \le \rho_{L+1} \Big|\varphi(1) - \sum_{l \le L} a_l\Big|
        \le \mathrm{tol} \sum_{l \le L} |a_l| \rho_l,

    valid because :math:`\rho_l` decreases in l (:math:`I_\nu(\kappa)` decreases in :math:`\nu`) and
    :math:`\sum_l a_l = \varphi(1)`, provided the coefficients beyond L share one sign (true for every positive
    definite kernel and for the distance kernels). Since :math:`|P_{l,q}| \le 1`, the error at every y is at most
    that bound.

    Parameters
    ----------
    kernel : DotProductKernel or str
    mu : array_like, shape (q,)
        Mean direction (unit vector; numpy or any library, read on the host).
    kappa : float
        Concentration >= 0.
    at : array, shape (m, q) or (q,)
        Evaluation points on the sphere (any array-API library; the result follows it).
    degree : int, optional
        Fixed truncation degree instead of the automatic one.
    tol : float
        Relative accuracy of the automatic truncation.
    normalize : bool
        Project the rows of ``at`` onto the sphere first.

    Returns
    -------
    array
        float64, shape (m,) (a NumPy scalar or 0-d array for a single point), ``at``'s library and device.

    See Also
    --------
    vmf_mean_embedding_norm2 : its squared RKHS norm.
    mmd2_vmf : the squared MMD between a sample and a von Mises-Fisher law.
    dotkernels.sample_vmf : samples of the law.

    Accuracy
    --------
    Relative ``tol`` (default 1e-14) of :math:`\sum_l |a_l| \rho_l` from the truncation bound, plus ~1e-15
    relative rounding of the Legendre series; a :class:`~dotkernels.kernels.SpectrumAccuracyWarning` gives the
    bound reached when degree 32768 does not meet ``tol``. Domain: kappa >= 0 finite, q >= 2.

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels import MonomialKernel
    >>> mu = np.array([0.0, 0.0, 1.0])
    >>> # phi(t) = t: mu_vMF(y) = A_3(kappa) <y, mu>, A_3(kappa) = coth(kappa) - 1/kappa
    >>> val = vmf_mean_embedding(MonomialKernel(1), mu=mu, kappa=2.0, at=mu)
    >>> bool(np.isclose(val, 1 / np.tanh(2.0) - 0.5))
    True
    """
    kernel = _kernel(kernel)
    kappa = check_real(kappa, "kappa", nonnegative=True)
    tol = _tolerance(tol)
    direction = _unit_direction(mu, None)
    q = int(direction.size)
    A, xp, single = _querycheck_points(at, q, normalize=bool(normalize), source="mu")
    a, rho = _vmf_series(kernel, q, kappa, degree, tol, power=1)
    coef = a * rho
    mu_x = xp.asarray(direction, dtype=xp.float64, device=array_api_compat.device(A))
    t = xp.clip(xp.matmul(A, mu_x), -1.0, 1.0)
    out = legendre_series(coef, t, q=q, validate=False)
    return _scalar_out(out[0], xp) if single else out


def vmf_mean_embedding_norm2(
    kernel: DotProductKernel | str, *, q: int, kappa: float, degree: int | None = None, tol: float = 1e-14
) -> float:
    r""":math:`\|\mu_{vMF}\|^2 = E_{x, x' \sim vMF}\,\varphi(\langle x, x'\rangle) = \sum_l a_l \rho_l(\kappa)^2`.

    Truncated like :func:`vmf_mean_embedding` with :math:`\rho_l^2` in place of :math:`\rho_l` (tail bound
    :math:`\rho_{L+1}^2 |\varphi(1) - \sum_{l\le L} a_l|`). It does not depend on mu; kappa = 0 gives :math:`a_0`.

    Parameters
    ----------
    kernel : DotProductKernel or str
        The kernel (or a string of :func:`~dotkernels.kernels.parse_kernel`).
    q : int
        Dimension of :math:`\mathbb{R}^q`, >= 2 (keyword-only).
    kappa : float
        Concentration >= 0.
    degree : int, optional
        Fixed truncation degree instead of the automatic one.
    tol : float
        Relative accuracy of the automatic truncation.

    Returns
    -------
    float
        :math:`\|\mu_{vMF}\|^2`.

    See Also
    --------
    vmf_mean_embedding : the embedding itself.

    Accuracy
    --------
    Relative ``tol`` (default 1e-14) of :math:`\sum_l |a_l| \rho_l^2` plus the kernel's spectrum accuracy
    (warned as in :func:`vmf_mean_embedding`). Domain: kappa >= 0 finite, q >= 2.

    Examples
    --------
    >>> from dotkernels import MonomialKernel
    >>> import numpy as np
    >>> k = 3.0
    >>> bool(np.isclose(vmf_mean_embedding_norm2(MonomialKernel(1), q=3, kappa=k), (1 / np.tanh(k) - 1 / k) ** 2))
    True
    """
    kernel = _kernel(kernel)
    kappa = check_real(kappa, "kappa", nonnegative=True)
    tol = _tolerance(tol)
    q = check_dimension(q)
    a, rho = _vmf_series(kernel, q, kappa, degree, tol, power=2)
    return float(math.fsum((a * rho * rho).tolist()))


def mmd2_vmf(
    Z: Any,
    kernel: DotProductKernel | str,
    *,
    mu: Any,
    kappa: float,
    estimator: str = "v",
    degree: int | None = None,
    tol: float = 1e-14,
    block_size: int | None = None,
    normalize: bool = False,
) -> Any:
    r"""Squared MMD between the empirical law of the rows of Z and vMF(mu, kappa).

    .. math::

        \mathrm{MMD}^2 = \widehat{E}\varphi(\langle z_i, z_j\rangle)
        - \frac{2}{n}\sum_i \mu_{vMF}(z_i) + \sum_l a_l \rho_l(\kappa)^2,

    with :math:`\widehat{E}` the V-statistic mean over all (i, j) (:math:`t_{ii} = 1`) or the U-statistic mean
    over :math:`i \ne j`; the U version is unbiased (its expectation is 0 for a vMF(mu, kappa) sample).

    Parameters
    ----------
    Z : array, shape (n, q)
        Points on the sphere, n >= 2.
    kernel : DotProductKernel or str
    mu : array_like, shape (q,)
        Mean direction (unit vector).
    kappa : float
        Concentration >= 0 (0: the uniform law, as :func:`mmd2_uniform`).
    estimator : {"v", "u"}
    degree, tol :
        Truncation of the vMF series, see :func:`vmf_mean_embedding`.
    block_size : int, optional
        Rows per block of the pair sum (default ~64 MB blocks).
    normalize : bool
        Project the rows of Z onto the sphere first.

    Returns
    -------
    numpy.float64 or array
        A NumPy scalar on numpy input; a 0-d float64 array of Z's library and device otherwise.

    See Also
    --------
    vmf_mean_embedding : the mean embedding of the law.
    mmd2_uniform : the case kappa = 0.

    Accuracy
    --------
    The pair sum as in :func:`mmd2_uniform` plus the vMF series truncation (relative ``tol``, see
    :func:`vmf_mean_embedding`). Domain: n >= 2 unit rows, kappa >= 0 finite.

    References
    ----------
    .. [1] A. Gretton, K. M. Borgwardt, M. J. Rasch, B. Scholkopf and A. Smola, "A kernel two-sample test", Journal
       of Machine Learning Research 13, 723-773 (2012).

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels import GaussianKernel
    >>> from dotkernels.sampling import sample_vmf
    >>> mu = np.array([0.0, 1.0, 0.0])
    >>> Z = sample_vmf(400, mu=mu, kappa=4.0, rng=0)
    >>> near = float(mmd2_vmf(Z, GaussianKernel(gamma=1.0), mu=mu, kappa=4.0))
    >>> far = float(mmd2_vmf(Z, GaussianKernel(gamma=1.0), mu=-mu, kappa=4.0))
    >>> near < far
    True
    """
    kernel = _kernel(kernel)
    estimator = check_estimator(estimator)
    kappa = check_real(kappa, "kappa", nonnegative=True)
    tol = _tolerance(tol)
    block_size = check_block_size(block_size)
    Z, xp = check_points(Z, "Z", normalize=bool(normalize), min_rows=2)
    n, q = int(Z.shape[0]), int(Z.shape[1])
    direction = _unit_direction(mu, q)
    # one series for both terms: truncated for sum |a_l| rho_l, so sum a_l rho_l^2 (rho_l <= 1) is as accurate
    a, rho = _vmf_series(kernel, q, kappa, degree, tol, power=1)
    norm2 = float(math.fsum((a * rho * rho).tolist()))
    off = _centred_pair_sum(Z, Z, kernel, q, xp, centre=norm2, same=True, block=block_size or _default_block(n))
    if estimator == "v":
        within = (off + n * (kernel.phi_at_one(q=q) - norm2)) / (n * n)
    else:
        within = off / (n * (n - 1))
    mu_x = xp.asarray(direction, dtype=xp.float64, device=array_api_compat.device(Z))
    t = xp.clip(xp.matmul(Z, mu_x), -1.0, 1.0)
    embedding = legendre_series(a * rho, t, q=q, validate=False)
    value = within - 2.0 * xp.mean(embedding - norm2)
    return _scalar_out(value, xp)
