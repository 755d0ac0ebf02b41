"""dotkernels: rotation-invariant (dot-product) kernels on the hypersphere.

The library follows the theory's order: Gegenbauer polynomials (:mod:`dotkernels.gegenbauer`) and quadrature for
the projected law (:mod:`dotkernels.quadrature`) give the spectra of the kernel families (:mod:`dotkernels.kernels`),
which give mean embeddings and MMD estimators (:mod:`dotkernels.mmd`), null laws (:mod:`dotkernels.nulls`) and
uniformity tests (:mod:`dotkernels.uniformity`, whose measured sizes and power :mod:`dotkernels.calibration`
computes); :mod:`dotkernels.sampling` draws from the laws on the sphere, :mod:`dotkernels.features` gives finite
random feature maps of the kernels (and a linear-time MMD), :mod:`dotkernels.prior` samples Gaussian-process priors,
:mod:`dotkernels.regularizers` writes the classic SSL regularisers as kernel MMDs and :mod:`dotkernels.symbolic`
derives them with sympy (imported on demand).

Where to import from: the package re-exports the names of its core modules (``from dotkernels import
GaussianKernel, uniformity_test``); the names of the other modules (:mod:`dotkernels.alternatives`,
:mod:`dotkernels.regularizers`, :mod:`dotkernels.symbolic`, :mod:`dotkernels.plotting`, ...) are imported from
their module (``from dotkernels.alternatives import sample_acg``). The documentation's table of the public API
states the import path of every name.

Conventions (every public signature follows them)
-------------------------------------------------
- **Degree first, dimension by keyword.** A function or method that takes a degree (or a maximal degree) takes it
  first, as :func:`scipy.special.eval_gegenbauer` does, and the dimension ``q`` of the ambient space R^q (the sphere
  S^(q-1)) is keyword-only everywhere: ``legendre(3, t, q=8)``, ``harmonic_dimension(12, q=64)``,
  ``kernel.spectrum(5, q=8192)``. Two integers can therefore never be swapped silently.
- **One name per concept.** ``degree`` is a (maximal) degree l or L; ``q`` the dimension; ``estimator`` is ``"v"``
  or ``"u"``; ``block_size`` a number of rows per block; ``rng`` the source of randomness (a
  :class:`numpy.random.Generator`, a seed or None, SPEC 7); ``kappa`` a concentration (von Mises–Fisher, the
  exponential kernel); ``gamma`` the Gaussian kernel's inverse squared length, exp(-gamma ||u - v||^2); ``s`` a
  distance exponent, ||u - v||^s; ``rho`` a radius in (0, 1) of the Poisson-type kernels.
- **Data first, options by keyword.** Arrays of points come first; every option after them is keyword-only.
- **Any array library.** Functions of points or inner products take any array-API array (numpy, torch, jax,
  array-api-strict, ...) and return one of the same library, dtype and device; on numpy input a scalar result is
  a NumPy scalar. Spectra, null laws and other host computations are float64 NumPy.
"""

from . import (
    features,
    gegenbauer,
    kernels,
    mmd,
    nulls,
    prior,
    quadrature,
    regularizers,  # noqa: F401  (a public submodule, listed in __all__)
    sampling,
    special,
    uniformity,
)
from .features import *  # noqa: F403
from .gegenbauer import *  # noqa: F403
from .kernels import *  # noqa: F403
from .mmd import *  # noqa: F403
from .nulls import *  # noqa: F403
from .prior import *  # noqa: F403
from .quadrature import *  # noqa: F403
from .sampling import *  # noqa: F403
from .special import *  # noqa: F403
from .uniformity import *  # noqa: F403

__version__ = "0.1.0"

__all__ = sorted(
    [
        *features.__all__,
        *gegenbauer.__all__,
        *kernels.__all__,
        *mmd.__all__,
        *nulls.__all__,
        *prior.__all__,
        *quadrature.__all__,
        *sampling.__all__,
        *special.__all__,
        *uniformity.__all__,
        "regularizers",
    ]
)
