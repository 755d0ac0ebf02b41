r"""Dot-product kernels on the sphere and their Gegenbauer spectra.

A kernel :math:`k(x, y) = \varphi(\langle x, y\rangle)` on :math:`S^{q-1}` expands as

.. math::

    \varphi(t) = \sum_{l \ge 0} a_l P_{l,q}(t), \qquad a_l = N(q, l)\, E_{\nu_q}[\varphi(t) P_{l,q}(t)]
    \quad\text{(Funk–Hecke)},

with Mercer eigenvalues :math:`a_l / N(q, l)` of multiplicity :math:`N(q, l)`. The kernel is positive
semi-definite on :math:`S^{q-1}` iff every :math:`a_l \ge 0` (Schoenberg), strictly positive definite under the
stronger condition of :meth:`DotProductKernel.is_strictly_positive_definite`; the uniform distribution's mean
embedding is the constant :math:`a_0`, and :math:`\sum_l a_l = \varphi(1)`.

One kernel object serves every dimension: the dimension comes from the data (``gram``) or is passed as the keyword
``q`` (``spectrum(degree, q=q)``; ``profile(t, q=q)`` for the kernels whose profile depends on q, flagged by
``dimension_dependent``). Spectra are computed host-side in float64 and in log space, from closed forms where they
exist; profiles run on any array-API array (numpy, torch, cupy, jax, array-api-strict) with its dtype and device,
and are differentiable under torch autograd.

Modules: :mod:`~dotkernels.kernels._base` (the base class and the contract of a family),
:mod:`~dotkernels.kernels.closed_form` (Bessel / hypergeometric / binomial closed forms),
:mod:`~dotkernels.kernels.series` (kernels defined by their coefficients), :mod:`~dotkernels.kernels.profile`
(any profile, by quadrature), :mod:`~dotkernels.kernels.algebra` (sums, multiples, truncations),
:mod:`~dotkernels.kernels.parsing` (:func:`parse_kernel`).

Kernel strings
--------------
:func:`parse_kernel` (and every ``kernel=`` option that accepts a string) reads ``NAME`` or ``NAME:ARGS``, ARGS being
``key=value`` pairs or values in the order of the parameters column, comma separated. This is the one table of the
grammar:

=====================================  ======================================  ========================================
string                                 kernel                                  profile :math:`\varphi(t)`
=====================================  ======================================  ========================================
``exponential:kappa=1`` (``exp``)      ``ExponentialKernel(kappa)``            :math:`e^{\kappa t}`
``gaussian:gamma=1`` (``rbf``)         ``GaussianKernel(gamma)``               :math:`e^{-2\gamma(1-t)}`
``polynomial:p=2,c=1``                 ``PolynomialKernel(p, c)``              :math:`(c + t)^p`
``monomial:p=2``                       ``MonomialKernel(p)``                   :math:`t^p`
``heat:time=0.1``                      ``HeatKernel(time)``                    :math:`a_l = N(q,l) e^{-\tau l(l+q-2)}`
``matern:nu=1.5,lengthscale=0.5``      ``MaternKernel(nu, lengthscale)``       :math:`\propto N (c + l(l+q-2))^{-s}`
``poisson:rho=0.5[,normalized=true]``  ``PoissonKernel(rho, normalized=..)``   :math:`(1-\rho^2) / |x-\rho y|^q`
``generating:rho=0.5``                 ``GeneratingFunctionKernel(rho)``       :math:`|x - \rho y|^{2-q}`
``imq:c=1,beta=0.5``                   ``InverseMultiquadricKernel(c, beta)``  :math:`(c^2 + 2 - 2t)^{-\beta}`
``distance:s=1`` (``riesz``)           ``DistanceKernel(s)``                   :math:`-(2 - 2t)^{s/2}`
``energy``                             ``DistanceKernel(s=1)``                 :math:`-\sqrt{2 - 2t}`
``arccos:order=0`` (``arccosine``)     ``ArcCosineKernel(order)``              :math:`1 - \arccos(t)/\pi` (order 0)
``bandlimited:degree=2``               ``BandLimitedKernel(degree)``           :math:`\sum_{l\le degree} N(q,l) P_{l,q}`
``legendre:a0,a1,...,aL``              ``LegendreSeriesKernel([a0,..,aL])``    :math:`\sum_{l=0}^{L} a_l P_{l,q}`
``sfrik`` or ``sfrik:b1,...,bL``       ``SFRIKKernel([b1, ..., bL])``          :math:`\sum_{l=1}^{L} b_l P_{l,q}`
``gine``                               ``GineKernel()``                        :math:`-c_q\sqrt{1-t^2}`
``nngp:depth=1``                       ``NNGPKernel(depth)``                   ReLU network's NNGP :math:`K_L`
``ntk:depth=1``                        ``NTKKernel(depth)``                    ReLU network's NTK :math:`\Theta_L`
=====================================  ======================================  ========================================

Here :math:`\tau` = ``time``, :math:`c = 2\nu/\ell^2` and :math:`s = \nu + (q-1)/2` (``nu=inf``: the heat
kernel with :math:`\tau = \ell^2/2`), and :math:`|x - \rho y|^2 = 1 - 2\rho t + \rho^2`. ``legendre`` starts at
degree 0, like :class:`LegendreSeriesKernel`; ``sfrik`` at degree 1, like :class:`SFRIKKernel` (default ``1,40,40``);
``nngp`` and ``ntk`` also take ``weight_variance=`` and ``bias_variance=`` (other activations: the classes). The
``repr`` of a kernel is accepted too (``parse_kernel(repr(k)) == k`` for every kernel not built from a callable).

Examples
--------
>>> from dotkernels.kernels import parse_kernel
>>> k = parse_kernel("gaussian:gamma=2.5")
>>> k, parse_kernel(repr(k)) == k
(GaussianKernel(gamma=2.5), True)
"""

from ._base import *  # noqa: F403
from ._base import __all__ as _base_all
from .algebra import *  # noqa: F403
from .algebra import __all__ as _algebra_all
from .closed_form import *  # noqa: F403
from .closed_form import __all__ as _closed_form_all
from .matern import *  # noqa: F403
from .matern import __all__ as _matern_all
from .network import *  # noqa: F403
from .network import __all__ as _network_all
from .parsing import *  # noqa: F403
from .parsing import __all__ as _parsing_all
from .products import *  # noqa: F403
from .products import __all__ as _products_all
from .profile import *  # noqa: F403
from .profile import __all__ as _profile_all
from .series import *  # noqa: F403
from .series import __all__ as _series_all

__all__ = sorted(
    {*_base_all, *_algebra_all, *_closed_form_all, *_network_all, *_parsing_all, *_products_all, *_profile_all}
    | {*_series_all, *_matern_all}
)
