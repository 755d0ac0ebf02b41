r"""Samples of a Gaussian-process prior :math:`f \sim \mathcal{GP}(0, k)` at points of the sphere.

Two routes: the exact one (a Cholesky factor of the n x n kernel matrix, :math:`O(n^3)`), and the feature route
(:class:`~dotkernels.RandomGegenbauerFeatures`: :math:`f = \Phi(X) z`, :math:`z \sim N(0, I)`, :math:`O(n m)`
memory), for point sets too large for the first.
"""

from __future__ import annotations

import warnings
from typing import Any

import array_api_compat
import numpy as np

from ._array_api import to_numpy
from ._validate import check_dimension, check_integer, check_points, check_real, check_rng
from .features import RandomGegenbauerFeatures, RandomMaclaurinFeatures, _as_kernel
from .kernels import DotProductKernel

__all__ = ["sample_gp_prior"]

#: "auto" samples exactly up to this many points, through features beyond
EXACT_POINTS = 4000
#: the default feature map has one feature per direction and degree up to this many feature values (n times the
#: number of features), one per direction (the sum over degrees) beyond
FEATURE_VALUES = 1 << 27
#: the largest jitter tried, relative to phi(1)
MAX_JITTER = 1e-6
_METHODS = ("auto", "cholesky", "features")


def _cholesky(K: np.ndarray, scale: float, jitter: float) -> tuple[np.ndarray, float]:
    """The Cholesky factor of K + eps I, eps = jitter * scale, raised tenfold until it exists (up to MAX_JITTER)."""
    relative = jitter
    while True:
        try:
            return np.linalg.cholesky(K + (relative * scale) * np.eye(K.shape[0])), relative
        except np.linalg.LinAlgError:
            if relative >= MAX_JITTER:
                raise ValueError(
                    f"the kernel matrix is not positive definite even with jitter {relative:g} * phi(1); is the kernel "
                    "positive semi-definite on this sphere?"
                ) from None
            relative = min(max(relative * 10.0, 1e-12), MAX_JITTER)


def sample_gp_prior(
    X: Any,
    kernel: DotProductKernel | str,
    n_samples: int = 1,
    *,
    method: str = "auto",
    n_directions: int = 1000,
    features: RandomGegenbauerFeatures | RandomMaclaurinFeatures | None = None,
    jitter: float = 1e-10,
    normalize: bool = False,
    rng: Any = None,
) -> Any:
    r"""Samples of the zero-mean Gaussian process with covariance :math:`k(x, y) = \varphi(\langle x, y\rangle)` at
    the rows of X.

    Parameters
    ----------
    X : array, shape (n, q)
        Points on the sphere, any array-API library (the result has its library, dtype and device).
    kernel : DotProductKernel or str
        A positive semi-definite kernel.
    n_samples : int
        Number of independent sample paths, >= 1.
    method : {"auto", "cholesky", "features"}
        - ``"cholesky"``: exact, :math:`f = L z` with :math:`L L^\top = K + \epsilon I`, :math:`\epsilon` =
          ``jitter`` times :math:`\varphi(1)` (raised tenfold, with a warning, until the factor exists, up to
          1e-6 :math:`\varphi(1)`); :math:`O(n^3)` time, :math:`O(n^2)` memory, host float64 (K is formed from the
          points in float64 whatever their dtype);
        - ``"features"``: :math:`f = \Phi(X) z` with the random Gegenbauer features of ``n_directions``
          directions (or the given ``features``), :math:`O(n m (q + L))` time, memory n times the number of
          features (one per direction and degree, or one per direction when that would exceed 2^27 values);
          all samples share one draw of the features;
        - ``"auto"``: ``"cholesky"`` up to 4000 points, ``"features"`` beyond.
    n_directions : int
        Directions of the default feature map (``"features"``).
    features : RandomGegenbauerFeatures or RandomMaclaurinFeatures, optional
        A feature map to use instead (it must belong to the same kernel and q); implies ``"features"``.
    jitter : float
        Relative diagonal jitter of ``"cholesky"``, >= 0.
    normalize : bool
        Project the rows onto the sphere first; otherwise rows that are not unit vectors raise ValueError.
    rng : numpy.random.Generator, int, SeedSequence or None
        Source of randomness (SPEC 7).

    Returns
    -------
    array
        ``(n_samples, n)``: row s is one sample path :math:`(f_s(x_1), \dots, f_s(x_n))` (the layout of
        :meth:`numpy.random.Generator.multivariate_normal`).

    Notes
    -----
    Accuracy: ``"cholesky"`` draws exactly from :math:`N(0, K + \epsilon I)`, K accurate to the profile's
    accuracy. ``"features"`` draws exactly from :math:`N(0, \Phi\Phi^\top)` given the features, and
    :math:`E[\Phi\Phi^\top] = K_L`, the kernel truncated at the map's degree (within ``features.truncation_error``
    of K): each entry of the covariance is off by a random error of standard deviation
    :math:`\sqrt{\text{features.variance}}` (over the draw of the directions), which grows with q for kernels
    peaked at t = 1 (see :class:`~dotkernels.RandomGegenbauerFeatures`).

    See Also
    --------
    RandomGegenbauerFeatures : the feature map of the ``"features"`` route.
    DotProductKernel.gram : the kernel matrix of the ``"cholesky"`` route.

    References
    ----------
    .. [1] C. E. Rasmussen and C. K. I. Williams, "Gaussian Processes for Machine Learning", MIT Press 2006,
       appendix A.2 (sampling by a Cholesky factor).
    .. [2] J. T. Wilson, V. Borovitskiy, A. Terenin, P. Mostowsky and M. P. Deisenroth, "Efficiently sampling
       functions from Gaussian process posteriors", ICML 2020 (prior samples from random features).

    Examples
    --------
    >>> import numpy as np
    >>> from dotkernels import GaussianKernel, sample_uniform
    >>> X = sample_uniform(50, q=3, rng=0)
    >>> f = sample_gp_prior(X, GaussianKernel(gamma=2.0), 4000, rng=1)
    >>> f.shape
    (4000, 50)
    >>> C = f.T @ f / 4000  # the sample covariance, within Monte Carlo error of the kernel matrix
    >>> bool(np.abs(C - GaussianKernel(gamma=2.0).gram(X)).max() < 6 * np.sqrt(2 / 4000))
    True
    """
    kernel = _as_kernel(kernel)
    n_samples = check_integer(n_samples, "n_samples", minimum=1)
    if method not in _METHODS:
        raise ValueError(f"method must be 'auto', 'cholesky' or 'features', got {method!r}")
    jitter = check_real(jitter, "jitter", nonnegative=True)
    if features is not None and not isinstance(features, (RandomGegenbauerFeatures, RandomMaclaurinFeatures)):
        raise TypeError(
            f"features must be a RandomGegenbauerFeatures or RandomMaclaurinFeatures, got {type(features).__name__}"
        )
    X, xp = check_points(X, "X", normalize=normalize, float64=False)
    n, q = int(X.shape[0]), check_dimension(int(X.shape[1]), "the number of columns of X")
    if features is not None and (features.kernel != kernel or features.q != q):
        raise ValueError(f"features were drawn for {features.kernel!r} at q={features.q}, not {kernel!r} at q={q}")
    if method == "auto":
        method = "features" if features is not None or n > EXACT_POINTS else "cholesky"
    rng = check_rng(rng)
    device = array_api_compat.device(X)
    if method == "cholesky":
        if features is not None:
            raise ValueError("features is given: use method='features' (or 'auto')")
        if kernel.is_positive_semidefinite(q=q) is False:
            raise ValueError(f"{kernel!r} is not positive semi-definite on S^{q - 1}: it is no covariance")
        # the kernel matrix in float64 whatever X's dtype: a float32 one is indefinite far above the jitter
        K = kernel.gram(np.asarray(to_numpy(X), dtype=np.float64), normalize=True)
        if not np.isfinite(K).all():
            raise ValueError(f"the kernel matrix of {kernel!r} at X is beyond float64 (its phi(1) overflows)")
        factor, used = _cholesky(K, abs(kernel.phi_at_one(q=q)), jitter)
        if used > jitter:
            warnings.warn(
                f"the kernel matrix needed a jitter of {used:g} * phi(1) on its diagonal to be factored",
                RuntimeWarning,
                stacklevel=2,
            )
        samples = rng.standard_normal((n_samples, n)) @ factor.T
        return xp.asarray(samples, dtype=X.dtype, device=device)
    if features is None:
        features = RandomGegenbauerFeatures(kernel, q=q, n_directions=n_directions, rng=rng)
        if n * features.n_features > FEATURE_VALUES:
            features = RandomGegenbauerFeatures(kernel, q=q, n_directions=n_directions, per_degree=False, rng=rng)
    F = features.transform(X)
    z = xp.asarray(rng.standard_normal((features.n_features, n_samples)), dtype=X.dtype, device=device)
    return xp.matrix_transpose(xp.matmul(F, z))
