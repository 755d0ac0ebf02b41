r"""Gauss quadrature for the projected law :math:`\nu_q` of :math:`\langle x, e\rangle`, x uniform on the sphere.

:math:`\nu_q` has density :math:`c_q (1-t^2)^{(q-3)/2}` on (-1, 1), with
:math:`c_q = \Gamma(q/2) / (\sqrt{\pi}\,\Gamma((q-1)/2))`; it is the weight under which the normalised Gegenbauer
polynomials are orthogonal, :math:`E_{\nu_q}[P_{l,q} P_{k,q}] = \delta_{lk} / N(q, l)`.

``scipy.special.roots_jacobi(n, a, a)`` silently returns NaN past a q-dependent number of nodes (about 94 at
q = 65536), and plain Golub–Welsch weights (first eigenvector components) lose relative accuracy in the tails at
large q. This module computes the nodes as eigenvalues of the Jacobi matrix of the orthonormal Gegenbauer
polynomials and the weights from the Christoffel function,

.. math::

    w_i = \Big(\sum_{k=0}^{n-1} N(q, k)\, P_{k,q}(x_i)^2\Big)^{-1},

summed in log space so that the huge :math:`N(q,k)` never overflow. The result is finite at every q.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import eigh_tridiagonal

from ._validate import check_dimension, check_integer
from .gegenbauer import recurrence_coefficients
from .special import log_gamma_ratio

__all__ = ["projected_density", "projected_quadrature"]


def projected_density(t: ArrayLike, *, q: int) -> np.ndarray | np.float64:
    r"""Density of :math:`\nu_q`: :math:`c_q (1 - t^2)^{(q-3)/2}` on (-1, 1), zero outside.

    Computed as :math:`\exp(\ln c_q + \frac{q-3}{2}\operatorname{log1p}(-t^2))` with :math:`\ln c_q` from
    :func:`dotkernels.special.log_gamma_ratio`, so that it neither overflows nor underflows early at large q.

    Parameters
    ----------
    t : array_like
        Points (float64; any real values).
    q : int
        Dimension, >= 2. At t = +-1 the density is 0 (q = 2 has an integrable singularity there, returned as 0).

    Returns
    -------
    ndarray or numpy.float64
        The density, float64, of ``t``'s shape.

    See Also
    --------
    projected_quadrature : Gauss quadrature for this law.
    dotkernels.sampling.sample_uniform : Uniform points, whose projections follow this law.

    Accuracy
    --------
    Relative error at most :math:`(8 + \ln q + |q-3|\, t^2/(1-t^2))\,\epsilon`, the last term being the condition
    of :math:`(1-t^2)^{(q-3)/2}` in t; tested against mpmath for q in [2, 65536] including t near +-1.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.integrate import quad
    >>> round(quad(lambda t: projected_density(t, q=7), -1, 1)[0], 12)
    1.0
    """
    q = check_dimension(q)
    t = np.asarray(t, dtype=np.float64)
    log_c = float(log_gamma_ratio(q / 2, (q - 1) / 2)) - 0.5 * np.log(np.pi)
    inside = np.abs(t) < 1
    out = np.zeros_like(t)
    with np.errstate(divide="ignore"):
        out[inside] = np.exp(log_c + 0.5 * (q - 3) * np.log1p(-(t[inside] ** 2)))
    return out if out.ndim else out[()]


def _log_christoffel_sum(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log sum_{k<n} p_k(x)^2 for the orthonormal polynomials of the Jacobi matrix with off-diagonal ``b``.

    The orthonormal recurrence b_{k+1} p_{k+1} = x p_k - b_k p_{k-1} is run with a per-point power-of-two
    rescaling, since p_k(x)^2 = N(q,k) P_{k,q}(x)^2 can exceed the float64 range while P_{k,q}(x) underflows.
    """
    p_prev = np.zeros_like(x)
    p_cur = np.ones_like(x)
    total = np.ones_like(x)
    log_scale = np.zeros_like(x)  # p_true = p_stored * exp(log_scale)
    b_prev = 0.0
    for k in range(len(b)):
        p_next = (x * p_cur - b_prev * p_prev) / b[k]
        p_prev, p_cur, b_prev = p_cur, p_next, b[k]
        total += p_cur * p_cur
        big = np.abs(p_cur) > 1e100
        if np.any(big):
            p_prev[big] *= 1e-100
            p_cur[big] *= 1e-100
            total[big] *= 1e-200
            log_scale[big] += 100 * np.log(10.0)
    return np.log(total) + 2 * log_scale


def _newton_step(x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One Newton correction of the eigenvalue nodes towards the zeros of the degree-n orthonormal polynomial.

    Eigenvalues are accurate to ~eps absolutely, which is not enough for the tiny Christoffel weights near +-1
    at large n; the Newton step on the (rescaled) recurrence restores full relative accuracy there.
    """
    p_prev, p_cur = np.zeros_like(x), np.ones_like(x)
    d_prev, d_cur = np.zeros_like(x), np.zeros_like(x)
    b_prev = 0.0
    b_ext = np.append(b, 1.0)  # the last step only needs the zeros, so any positive b_n will do
    for k in range(len(b_ext)):
        p_next = (x * p_cur - b_prev * p_prev) / b_ext[k]
        d_next = (p_cur + x * d_cur - b_prev * d_prev) / b_ext[k]
        p_prev, p_cur, d_prev, d_cur, b_prev = p_cur, p_next, d_cur, d_next, b_ext[k]
        big = np.abs(p_cur) + np.abs(d_cur) > 1e100
        if np.any(big):
            for arr in (p_prev, p_cur, d_prev, d_cur):
                arr[big] *= 1e-100
    return x - p_cur / d_cur


@lru_cache(maxsize=64)
def _cached_rule(n: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    if q == 2:  # the arcsine law: Chebyshev–Gauss nodes and equal weights in closed form
        nodes = np.sort(np.cos((2 * np.arange(1, n + 1) - 1) * np.pi / (2 * n)))
        nodes = 0.5 * (nodes - nodes[::-1])
        weights = np.full(n, 1.0 / n)
        nodes.setflags(write=False)
        weights.setflags(write=False)
        return nodes, weights
    # Jacobi matrix of the orthonormal polynomials (zero diagonal): with P_{k+1} = alpha_k t P_k - beta_k P_{k-1},
    # the monic recurrence p_{k+1} = t p_k - b_k^2 p_{k-1} has b_k^2 = beta_k / (alpha_{k-1} alpha_k)
    alpha, beta = recurrence_coefficients(max(n - 1, 0), q=q)
    b = np.sqrt(beta[1:] / (alpha[:-1] * alpha[1:]))
    nodes = eigh_tridiagonal(np.zeros(n), b, eigvals_only=True) if n > 1 else np.zeros(1)
    if n > 1:
        nodes = _newton_step(nodes, b)
    nodes = np.sort(0.5 * (nodes - nodes[::-1]))  # enforce the exact symmetry of the rule
    weights = np.exp(-_log_christoffel_sum(nodes, b))
    weights = 0.5 * (weights + weights[::-1])
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


def projected_quadrature(n: int, *, q: int) -> tuple[np.ndarray, np.ndarray]:
    r"""n-point Gauss rule for :math:`\nu_q`: :math:`E_{\nu_q}[f] \approx \sum_i w_i f(x_i)`.

    Exact for polynomials of degree <= 2n - 1; the weights are positive and sum to 1.

    Parameters
    ----------
    n : int
        Number of nodes, >= 1.
    q : int
        Dimension, >= 2 (any size; finite at q = 65536 with thousands of nodes).

    Returns
    -------
    nodes, weights : ndarray
        Read-only float64 arrays of length n, nodes increasing in (-1, 1).

    See Also
    --------
    projected_density : The density of the law.
    scipy.special.roots_jacobi : Gauss-Jacobi nodes (which fail at large degree and dimension).

    Accuracy
    --------
    Nodes to a few eps absolute (Newton-polished eigenvalues), weights to about 1e-13 relative including the
    tiny weights of the tails; the rule integrates :math:`t^{2k}`, 2k <= 2n - 1, to 1e-12 relative (tested for
    n up to 2000 and q from 2 to 65536 against the exact moments :math:`(1/2)_k / (q/2)_k`). Any n >= 1, q >= 2.

    Examples
    --------
    >>> x, w = projected_quadrature(10, q=5)
    >>> round(float(w @ x**2), 14)  # E[t^2] = 1/q
    0.2
    """
    n = check_integer(n, "n", minimum=1, requirement="a positive number of nodes")
    q = check_dimension(q)
    return _cached_rule(n, q)
