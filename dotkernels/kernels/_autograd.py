r"""Differentiable table lookups: a function read from a table (evaluated without a graph) whose derivative in t is
given by the caller, for torch autograd and jax (``custom_jvp``), and a jax Clenshaw sum that ``jax.jit`` compiles
in a time independent of the degree.

:func:`tabulated` takes three functions of the same array t:

``value(t)``
    the function itself, evaluated without a graph (a :class:`~dotkernels.kernels._tabulated.ChebyshevTable`);
``slope(t)``
    its derivative in t, without a graph (the table of the derivative, or the direct derivative series); None to
    differentiate ``exact`` instead;
``exact(t)``
    the same function by a route that the array library differentiates to any order (the direct sum): it gives the
    derivative where ``slope`` is None, and the graph of the gradient when one is asked for (torch
    ``create_graph=True``, jax derivatives of order two and more), so that second derivatives are those of the
    direct route, never a derivative of a derivative that was treated as a constant.

torch tensors that require grad go through an ``autograd.Function`` (forward: ``value``; backward:
``grad * slope(t)``), jax arrays through ``jax.custom_jvp`` (tangent: ``slope(t) * dt``); other arrays get
``value(t)``. dotkernels never imports torch or jax itself: both are imported on first use.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import array_api_compat
import numpy as np

from .._validate import host_float
from ..gegenbauer import _recurrence_float

__all__: list[str] = []

Fn = Callable[[Any], Any]


def tabulated(t: Any, value: Fn, slope: Fn | None, exact: Fn) -> Any:
    """``value(t)``, differentiable in t with the derivative ``slope(t)`` (see the module docstring)."""
    if array_api_compat.is_torch_array(t):
        import torch

        if torch.is_grad_enabled() and t.requires_grad:
            return _torch_function().apply(t, value, slope, exact)
        return value(t)
    if array_api_compat.is_jax_array(t):
        return _jax_tabulated(t, value, slope, exact)
    return value(t)


@lru_cache(maxsize=1)
def _torch_function() -> Any:
    """The autograd function, defined on first use."""
    import torch

    class TabulatedFunction(torch.autograd.Function):
        @staticmethod
        def forward(t, value, slope, exact):
            return value(t.detach())

        @staticmethod
        def setup_context(ctx, inputs, output):
            t, _, slope, exact = inputs
            ctx.slope, ctx.exact = slope, exact
            ctx.save_for_backward(t)

        @staticmethod
        def backward(ctx, grad):
            (t,) = ctx.saved_tensors
            graph = torch.is_grad_enabled()  # create_graph=True: the gradient must itself be differentiable
            if ctx.slope is not None and not graph:
                return grad * ctx.slope(t.detach()), None, None, None
            # the direct route, differentiated by autograd (with a graph of its own when one is asked for)
            with torch.enable_grad():
                s = t if graph else t.detach().requires_grad_(True)
                out = ctx.exact(s)
                (grad_t,) = torch.autograd.grad(out, s, grad, create_graph=graph)
            return grad_t, None, None, None

    return TabulatedFunction


def _jax_tabulated(t: Any, value: Fn, slope: Fn | None, exact: Fn) -> Any:
    import jax

    f = jax.custom_jvp(value)

    def f_jvp(primals, tangents):
        (s,), (ds,) = primals, tangents
        return f(s), _jax_slope(s, slope, exact) * ds

    f.defjvp(f_jvp)
    return f(t)


def _jax_slope(s: Any, slope: Fn | None, exact: Fn) -> Any:
    """The derivative of ``exact`` at s (elementwise): ``slope(s)``, whose own derivative is that of the direct
    route, or forward-mode differentiation of ``exact`` (O(size of s) memory)."""
    import jax
    import jax.numpy as jnp

    def exact_slope(x):
        return jax.jvp(exact, (x,), (jnp.ones_like(x),))[1]

    if slope is None:
        return exact_slope(s)
    g = jax.custom_jvp(slope)

    def g_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        return g(x), _jax_slope(x, None, exact_slope) * dx

    g.defjvp(g_jvp)
    return g(s)


@lru_cache(maxsize=32)
def matern_bounded_derivative_table(c: float, nu: float, q: int) -> Any:
    """nu <= 1: the table of the derivative in t of the Matérn plan ``_matern_plan(c, nu, q)`` without its references
    of exponent a <= 1 (whose derivatives are unbounded at t = 1; the caller adds them in closed form): the head's
    derivative and the other references', bounded (cached)."""
    from . import matern

    plan = matern._matern_plan(c, nu, q)
    bounded = plan._replace(refs=tuple(ref for ref in plan.refs if ref[0] > 1.0))
    return matern._build_derivative_table(bounded, q)


def check_concrete(value: Any, name: str, owner: Any) -> None:
    """TypeError naming the hyperparameter when it is a jax array without a value on the host under ``jax.jit``
    (traced, or read inside the jitted function)."""
    if isinstance(value, float):
        return
    jax = sys.modules.get("jax")
    if jax is None or not isinstance(value, jax.Array):
        return
    try:
        host_float(value)
    except jax.errors.ConcretizationTypeError as exc:
        raise TypeError(
            f"the {name} of {type(owner).__name__} is a jax array whose value is not known under jax.jit: the "
            f"profile's summation plan is built on the host from the {name}'s value. Under jax.jit pass the {name} "
            f"as a Python float (e.g. a static argument); take gradients in the {name} with jax.grad outside jax.jit"
        ) from exc


@lru_cache(maxsize=1)
def _jax_clenshaw() -> Any:
    import jax
    import jax.numpy as jnp

    @jax.jit
    def clenshaw(coef: Any, alpha: Any, beta_next: Any, t: Any) -> Any:
        # b_k = c_k + alpha_k t b_{k+1} - beta_{k+1} b_{k+2}, k = L..0; the sum is b_0 (as gegenbauer's Clenshaw)
        def step(carry, x):
            b1, b2 = carry
            c, a, b = x
            return (c + a * t * b1 - b * b2, b1), None

        zero = jnp.zeros_like(t)
        (b0, _), _ = jax.lax.scan(step, (zero, zero), (coef, alpha, beta_next), reverse=True)
        return b0

    return clenshaw


def jax_legendre_series(coefficients: np.ndarray, t: Any, q: int) -> Any:
    r""":math:`\sum_l a_l P_{l,q}(t)` for a jax array t and host coefficients, by ``jax.lax.scan`` (compiled once per
    degree and shape, also under ``jax.jit``; differentiable to any order in t)."""
    import jax.numpy as jnp

    coef = np.asarray(coefficients, dtype=np.float64)
    L = coef.size - 1
    if L == 0:
        return jnp.full_like(t, coef[0])
    alpha, beta = _recurrence_float(L, q)
    beta_next = np.append(beta[1:], 0.0)  # beta_{k+1} multiplies b_{k+2}; b_{L+2} = 0
    dtype = t.dtype
    return _jax_clenshaw()(
        jnp.asarray(coef, dtype=dtype), jnp.asarray(alpha[: L + 1], dtype=dtype), jnp.asarray(beta_next, dtype=dtype), t
    )
